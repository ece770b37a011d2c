//! The coordinator ensemble's next membership step when `spec.coordinator.replicas` or
//! `observers` change (pure).
//!
//! ZooKeeper's dynamic reconfiguration, driven the way its guide describes: a server
//! joins by starting with a configuration that names the ensemble and itself (the
//! ConfigMap's `zoo.cfg` always names the desired members); it syncs as a follower that
//! does not vote; once every joining member is in the quorum, one `reconfig` adds the
//! joining members, changes roles and removes the leaving ones; only after it committed
//! do the leaving members' pods go. Membership is never changed by restarting members
//! with a new file, so no moment exists when two configurations could each elect a
//! leader.
//!
//! Server ids are StatefulSet ordinals + 1: voters `1..=replicas`, observers after them.
//! Everything the step depends on is observed again on every pass (the active
//! configuration from `/zookeeper/config`, the StatefulSet's size, which members are in
//! the quorum), so an operator that restarts resumes where the ensemble is.

use std::collections::{BTreeMap, BTreeSet};

use strata_coordinator::config::{PeerRole, parse_config_text};

/// Members by server id.
pub type Members = BTreeMap<i32, PeerRole>;

/// Voters `1..=voters`, observers after them.
pub fn desired_members(voters: i32, observers: i32) -> Members {
    (1..=voters)
        .map(|id| (id, PeerRole::Participant))
        .chain((voters + 1..=voters + observers).map(|id| (id, PeerRole::Observer)))
        .collect()
}

/// The ensemble's active configuration, as `/zookeeper/config` states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveConfig {
    pub members: Members,
    /// The zxid of the reconfiguration that made it; 0 for the configuration the
    /// members started with.
    pub version: i64,
}

/// `/zookeeper/config` read; `None` if it is not a configuration.
pub fn parse_active(text: &str) -> Option<ActiveConfig> {
    let (members, version) = parse_config_text(text).ok()?;
    if members.is_empty() {
        return None;
    }
    let members = members
        .into_values()
        .map(|m| Some((i32::try_from(m.id).ok()?, m.role)))
        .collect::<Option<Members>>()?;
    Some(ActiveConfig { members, version })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipStep {
    /// The active configuration is the desired one: the StatefulSet holds exactly its
    /// members (a shrink's last step removes the pods of members that left).
    Settled { replicas: i32 },
    /// The active configuration is not known (no member answers): nothing changes.
    Unknown { replicas: i32 },
    /// Members about to join need their pods, and to be in the quorum as followers,
    /// before the reconfiguration: these server ids are not yet.
    Starting { replicas: i32, waiting: Vec<i32> },
    /// One `reconfig`: add or change `joining`, remove `leaving`, from `from_version`
    /// (so a pass acting on a stale view is refused, not applied twice). The pods of
    /// leaving members stay until it committed.
    Reconfigure {
        replicas: i32,
        joining: Vec<(i32, PeerRole)>,
        leaving: Vec<i32>,
        from_version: i64,
    },
}

impl MembershipStep {
    /// The coordinator StatefulSet's size for this step.
    pub fn replicas(&self) -> i32 {
        match self {
            MembershipStep::Settled { replicas }
            | MembershipStep::Unknown { replicas }
            | MembershipStep::Starting { replicas, .. }
            | MembershipStep::Reconfigure { replicas, .. } => *replicas,
        }
    }
}

/// The next step from what runs: the desired members, the active configuration (if a
/// member answered), the StatefulSet's size (`None`: not created yet) and the server
/// ids whose pods are Ready (a coordinator pod is Ready only while in the quorum).
pub fn next_step(
    desired: &Members,
    active: Option<&ActiveConfig>,
    statefulset_replicas: Option<i32>,
    in_quorum: &BTreeSet<i32>,
) -> MembershipStep {
    let wanted = desired.len() as i32;
    let Some(current) = statefulset_replicas else {
        // A new ensemble starts with the desired configuration in its zoo.cfg.
        return MembershipStep::Settled { replicas: wanted };
    };
    let Some(active) = active else {
        return MembershipStep::Unknown { replicas: current };
    };
    if active.members == *desired {
        return MembershipStep::Settled { replicas: wanted };
    }
    // Pods for every member of either configuration (ids are ordinal + 1).
    let highest = desired
        .keys()
        .chain(active.members.keys())
        .max()
        .copied()
        .unwrap_or(0);
    let replicas = current.max(highest);
    let joining: Vec<(i32, PeerRole)> = desired
        .iter()
        .filter(|(id, role)| active.members.get(id) != Some(role))
        .map(|(id, role)| (*id, *role))
        .collect();
    let leaving: Vec<i32> = active
        .members
        .keys()
        .filter(|id| !desired.contains_key(id))
        .copied()
        .collect();
    let waiting: Vec<i32> = joining
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !active.members.contains_key(id) && !in_quorum.contains(id))
        .collect();
    if !waiting.is_empty() {
        return MembershipStep::Starting { replicas, waiting };
    }
    MembershipStep::Reconfigure {
        replicas,
        joining,
        leaving,
        from_version: active.version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PeerRole::{Observer, Participant};

    fn active(members: &[(i32, PeerRole)], version: i64) -> ActiveConfig {
        ActiveConfig {
            members: members.iter().copied().collect(),
            version,
        }
    }

    fn ids(v: &[i32]) -> BTreeSet<i32> {
        v.iter().copied().collect()
    }

    const THREE: [(i32, PeerRole); 3] = [(1, Participant), (2, Participant), (3, Participant)];
    const FIVE: [(i32, PeerRole); 5] = [
        (1, Participant),
        (2, Participant),
        (3, Participant),
        (4, Participant),
        (5, Participant),
    ];

    #[test]
    fn desired_members_are_voters_then_observers() {
        assert_eq!(
            desired_members(3, 2),
            [
                (1, Participant),
                (2, Participant),
                (3, Participant),
                (4, Observer),
                (5, Observer)
            ]
            .into_iter()
            .collect()
        );
    }

    #[test]
    fn a_new_ensemble_starts_with_its_configuration() {
        let step = next_step(&desired_members(3, 0), None, None, &ids(&[]));
        assert_eq!(step, MembershipStep::Settled { replicas: 3 });
    }

    #[test]
    fn nothing_changes_while_no_member_says_what_the_configuration_is() {
        let step = next_step(&desired_members(5, 0), None, Some(3), &ids(&[]));
        assert_eq!(step, MembershipStep::Unknown { replicas: 3 });
    }

    #[test]
    fn growing_three_to_five_starts_the_pods_then_reconfigures_once_they_follow() {
        let desired = desired_members(5, 0);
        let three = active(&THREE, 0);
        // The StatefulSet grows first; the new members are not in the quorum yet.
        let step = next_step(&desired, Some(&three), Some(3), &ids(&[1, 2, 3]));
        assert_eq!(
            step,
            MembershipStep::Starting {
                replicas: 5,
                waiting: vec![4, 5]
            }
        );
        // One is following, one not yet.
        let step = next_step(&desired, Some(&three), Some(5), &ids(&[1, 2, 3, 4]));
        assert_eq!(
            step,
            MembershipStep::Starting {
                replicas: 5,
                waiting: vec![5]
            }
        );
        let step = next_step(&desired, Some(&three), Some(5), &ids(&[1, 2, 3, 4, 5]));
        assert_eq!(
            step,
            MembershipStep::Reconfigure {
                replicas: 5,
                joining: vec![(4, Participant), (5, Participant)],
                leaving: vec![],
                from_version: 0
            }
        );
        // Committed: settled at five.
        let five = active(&FIVE, 0x1_0000_0007);
        let step = next_step(&desired, Some(&five), Some(5), &ids(&[1, 2, 3, 4, 5]));
        assert_eq!(step, MembershipStep::Settled { replicas: 5 });
    }

    #[test]
    fn shrinking_reconfigures_first_and_removes_the_pods_after() {
        let desired = desired_members(3, 0);
        let five = active(&FIVE, 0x1_0000_0007);
        // Leaving members need not be in the quorum for their removal.
        let step = next_step(&desired, Some(&five), Some(5), &ids(&[1, 2, 3]));
        assert_eq!(
            step,
            MembershipStep::Reconfigure {
                replicas: 5,
                joining: vec![],
                leaving: vec![4, 5],
                from_version: 0x1_0000_0007
            }
        );
        let three = active(&THREE, 0x1_0000_0009);
        let step = next_step(&desired, Some(&three), Some(5), &ids(&[1, 2, 3, 4, 5]));
        assert_eq!(step, MembershipStep::Settled { replicas: 3 });
    }

    #[test]
    fn an_observer_becomes_a_voter_and_a_new_observer_joins_in_one_reconfiguration() {
        // 3 voters + 1 observer (id 4) become 5 voters + 1 observer (id 6): server 4
        // changes role, 5 and 6 join.
        let before = active(
            &[
                (1, Participant),
                (2, Participant),
                (3, Participant),
                (4, Observer),
            ],
            0,
        );
        let desired = desired_members(5, 1);
        let step = next_step(&desired, Some(&before), Some(4), &ids(&[1, 2, 3, 4]));
        assert_eq!(
            step,
            MembershipStep::Starting {
                replicas: 6,
                waiting: vec![5, 6]
            },
            "a member changing role is in the configuration already"
        );
        let step = next_step(&desired, Some(&before), Some(6), &ids(&[1, 2, 3, 4, 5, 6]));
        assert_eq!(
            step,
            MembershipStep::Reconfigure {
                replicas: 6,
                joining: vec![(4, Participant), (5, Participant), (6, Observer)],
                leaving: vec![],
                from_version: 0
            }
        );
    }

    #[test]
    fn the_pods_of_both_configurations_run_until_it_settles() {
        // A shrink that also turns a voter into an observer: 5 voters -> 3 voters + 1
        // observer (id 4); id 5 leaves. Pods stay at 5 until the reconfiguration commits.
        let five = active(&FIVE, 0x2_0000_0001);
        let desired = desired_members(3, 1);
        let step = next_step(&desired, Some(&five), Some(5), &ids(&[1, 2, 3, 4, 5]));
        assert_eq!(
            step,
            MembershipStep::Reconfigure {
                replicas: 5,
                joining: vec![(4, Observer)],
                leaving: vec![5],
                from_version: 0x2_0000_0001
            }
        );
        assert_eq!(step.replicas(), 5);
    }

    #[test]
    fn the_active_configuration_is_read_as_zookeeper_writes_it() {
        let text = "server.1=c-0.c.ns.svc:2888:3888:participant;0.0.0.0:2181\n\
                    server.2=c-1.c.ns.svc:2888:3888:participant;0.0.0.0:2181\n\
                    server.4=c-3.c.ns.svc:2888:3888:observer;0.0.0.0:2181\n\
                    version=100000003";
        assert_eq!(
            parse_active(text),
            Some(active(
                &[(1, Participant), (2, Participant), (4, Observer)],
                0x1_0000_0003
            ))
        );
        assert_eq!(parse_active(""), None);
        assert_eq!(parse_active("not a configuration"), None);
    }
}
