//! The custom resources the operator serves, group `strata.dev`, version `v1alpha1`.
//!
//! The Rust types are the source of truth: `strata-operator crds` prints the
//! CustomResourceDefinitions generated from them and `crds/` holds a checked-in copy that a
//! test keeps in step.

mod condition;
mod consumer_group;
mod kafka_cluster;
mod topic;

pub use condition::{Condition, ConditionStatus, set_condition};
pub use consumer_group::{
    ConsumerGroup, ConsumerGroupSpec, ConsumerGroupStatus, OffsetResetTarget, PartitionLag,
    ResetOffsets, TopicLag,
};
pub use kafka_cluster::{
    BrokerStatus, BrokersSpec, ClusterOperation, CoordinatorRoll, CoordinatorSpec,
    CoordinatorStatus, KafkaCluster, KafkaClusterSpec, KafkaClusterStatus, ListenersSpec,
    MetricsSpec, OperationKind, OperationPhase, PlainListener, RackSpec, RebalanceSpec, Resources,
    StorageSpec, TlsListener,
};
pub use topic::{Topic, TopicSpec, TopicStatus};

use kube::CustomResourceExt;

/// File names under `crds/`, one per kind, paired with their YAML, in a stable order.
pub fn crd_files() -> Result<Vec<(&'static str, String)>, serde_yaml::Error> {
    Ok(vec![
        (
            "kafkaclusters.strata.dev.yaml",
            serde_yaml::to_string(&KafkaCluster::crd())?,
        ),
        (
            "topics.strata.dev.yaml",
            serde_yaml::to_string(&Topic::crd())?,
        ),
        (
            "consumergroups.strata.dev.yaml",
            serde_yaml::to_string(&ConsumerGroup::crd())?,
        ),
    ])
}

/// Every CRD as one multi-document YAML stream (what `strata-operator crds` prints).
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for (_, yaml) in crd_files()? {
        out.push_str("---\n");
        out.push_str(&yaml);
    }
    Ok(out)
}
