//! `ConsumerGroup`: a window onto a Kafka consumer group, and the one place to reset its
//! committed offsets declaratively.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

// Every `printcolumn(...)` names a `type_`; the lint mistakes that for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "strata.dev",
    version = "v1alpha1",
    kind = "ConsumerGroup",
    plural = "consumergroups",
    shortname = "kcg",
    namespaced,
    status = "ConsumerGroupStatus",
    printcolumn(name = "Group", type_ = "string", json_path = ".spec.groupId"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Members", type_ = "integer", json_path = ".status.members"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerGroupSpec {
    #[schemars(length(min = 1))]
    pub cluster_ref: String,
    #[schemars(length(min = 1))]
    pub group_id: String,
    /// Move the group's committed offsets once per change of this field. Kafka only
    /// accepts it while the group has no members, as `kafka-consumer-groups --reset-offsets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_offsets: Option<ResetOffsets>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.to != 'timestamp' || has(self.timestamp)", "message": "to: timestamp needs timestamp (milliseconds since the epoch)"},
    {"rule": "self.to != 'offset' || has(self.offset)", "message": "to: offset needs offset"}
]))]
pub struct ResetOffsets {
    pub to: OffsetResetTarget,
    /// Milliseconds since the epoch, for `to: timestamp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// An absolute offset, for `to: offset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub offset: Option<i64>,
    /// Topics whose partitions are reset (all their partitions).
    #[schemars(length(min = 1))]
    pub topics: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OffsetResetTarget {
    Earliest,
    Latest,
    Timestamp,
    Offset,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerGroupStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The coordinator's group state: `Stable`, `Empty`, `PreparingRebalance`, `Dead`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<i32>,
    #[serde(default)]
    pub lag: Vec<TopicLag>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// `metadata.generation` whose `resetOffsets` has been carried out, so a reset happens
    /// once and not on every resync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_generation: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicLag {
    pub topic: String,
    pub total_lag: i64,
    pub partitions: Vec<PartitionLag>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionLag {
    pub partition: i32,
    pub committed_offset: i64,
    pub log_end_offset: i64,
    pub lag: i64,
}
