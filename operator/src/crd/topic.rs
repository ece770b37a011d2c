//! `Topic`: a Kafka topic owned by a `KafkaCluster` in the same namespace.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// A topic the operator creates, grows and configures over the Kafka admin APIs, and
/// deletes when the resource goes away.
// Every `printcolumn(...)` names a `type_`; the lint mistakes that for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "strata.dev",
    version = "v1alpha1",
    kind = "Topic",
    plural = "topics",
    shortname = "kt",
    namespaced,
    status = "TopicStatus",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterRef"),
    printcolumn(name = "Partitions", type_ = "integer", json_path = ".spec.partitions"),
    printcolumn(
        name = "Replication",
        type_ = "integer",
        json_path = ".spec.replicationFactor"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TopicSpec {
    /// Name of the `KafkaCluster` in this namespace.
    #[schemars(length(min = 1))]
    pub cluster_ref: String,
    /// The Kafka topic name; `metadata.name` when unset (Kubernetes names cannot hold
    /// every legal topic name, e.g. `_` or upper case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// Partitions only ever grow: Kafka cannot remove a partition without losing its data.
    #[schemars(range(min = 1))]
    pub partitions: i32,
    #[schemars(range(min = 1))]
    pub replication_factor: i16,
    /// Topic-level configs (`retention.ms`, `cleanup.policy`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

impl Topic {
    /// The name the brokers know the topic by.
    pub fn kafka_name(&self) -> String {
        self.spec
            .topic_name
            .clone()
            .or_else(|| self.metadata.name.clone())
            .unwrap_or_default()
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Partitions the brokers report for the topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
}
