//! Status conditions in the shape of `metav1.Condition`, so `kubectl wait --for=condition=Ready`
//! and every tool that reads conditions understands ours.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Reconciling`, `Degraded`, ... (CamelCase, as Kubernetes does).
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    /// A CamelCase word a program can switch on.
    pub reason: String,
    /// What a person needs to know, including what to change when the spec is wrong.
    pub message: String,
    /// RFC 3339; moves only when `status` changes so it says how long the state has held.
    pub last_transition_time: String,
    /// The `metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Inserts or replaces the condition of the same type, keeping its transition time when
/// the status did not change (the `meta.SetStatusCondition` rule).
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            if old.status == new.status {
                new.last_transition_time = old.last_transition_time.clone();
            }
            *old = new;
        }
        None => conditions.push(new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(type_: &str, status: ConditionStatus, at: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status,
            reason: "R".into(),
            message: "m".into(),
            last_transition_time: at.into(),
            observed_generation: Some(1),
        }
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let mut cs = vec![cond("Ready", ConditionStatus::False, "t1")];
        set_condition(&mut cs, cond("Ready", ConditionStatus::False, "t2"));
        assert_eq!(cs[0].last_transition_time, "t1");
        set_condition(&mut cs, cond("Ready", ConditionStatus::True, "t3"));
        assert_eq!(cs[0].last_transition_time, "t3");
        set_condition(&mut cs, cond("Degraded", ConditionStatus::False, "t4"));
        assert_eq!(cs.len(), 2);
    }
}
