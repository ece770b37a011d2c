//! What the `Topic` and `ConsumerGroup` controllers need from a Kafka cluster, as a trait so
//! their logic is tested against an in-memory fake and runs against real brokers through
//! [`client::ClientConnector`] (strata-client's admin API).

pub mod client;
#[cfg(test)]
pub mod fake;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

/// A Kafka error as the brokers report it (Kafka's error-code name) or a transport failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KafkaError {
    /// The broker answered with an error code, e.g. `INVALID_REPLICATION_FACTOR`.
    #[error("{operation}: {code}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Broker {
        operation: &'static str,
        code: String,
        message: Option<String>,
    },
    /// No broker could be reached or the connection broke.
    #[error("cannot reach the brokers at {bootstrap}: {reason}")]
    Unreachable { bootstrap: String, reason: String },
}

/// A topic as the brokers describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    /// The topic's UUID, when the brokers assign one (KIP-516).
    pub topic_id: Option<String>,
    pub partitions: i32,
    pub replication_factor: i16,
    /// Only the topic-level overrides (`DYNAMIC_TOPIC_CONFIG`), not broker defaults.
    pub config: BTreeMap<String, String>,
}

/// A consumer group as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Kafka's group state name: `Empty`, `Stable`, `PreparingRebalance`, `Dead`, ...
    pub state: String,
    pub members: i32,
}

/// Which offset of a partition `list_offsets` asks for (Kafka's ListOffsets timestamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// The first offset whose record timestamp is at or after this (ms since the epoch).
    Timestamp(i64),
}

/// A topic partition, `(topic, partition)`.
pub type TopicPartition = (String, i32);

/// Where every replica is: what the reassignment planner starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterLayout {
    /// The registered brokers, each with its `broker.rack` if it has one.
    pub brokers: BTreeMap<i32, Option<String>>,
    /// Every partition of every topic, internal ones included: replicas in preference
    /// order.
    pub assignment: BTreeMap<String, BTreeMap<i32, Vec<i32>>>,
    /// The current leader of each partition that has one.
    pub leaders: BTreeMap<TopicPartition, i32>,
}

pub trait KafkaAdmin: Send + Sync {
    /// `None` when the topic does not exist.
    fn describe_topic(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<TopicDescription>, KafkaError>> + Send;

    /// Creates the topic and returns its topic id when the brokers report one.
    fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        config: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<Option<String>, KafkaError>> + Send;

    /// Grows the topic to `total` partitions (Kafka's CreatePartitions).
    fn create_partitions(
        &self,
        name: &str,
        total: i32,
    ) -> impl Future<Output = Result<(), KafkaError>> + Send;

    /// IncrementalAlterConfigs: `set` these keys and `delete` (revert to default) those.
    fn alter_topic_config(
        &self,
        name: &str,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> impl Future<Output = Result<(), KafkaError>> + Send;

    fn delete_topic(&self, name: &str) -> impl Future<Output = Result<(), KafkaError>> + Send;

    /// `None` when the group coordinator does not know the group.
    fn describe_group(
        &self,
        group_id: &str,
    ) -> impl Future<Output = Result<Option<GroupDescription>, KafkaError>> + Send;

    /// The group's committed offsets (OffsetFetch for all its partitions).
    fn committed_offsets(
        &self,
        group_id: &str,
    ) -> impl Future<Output = Result<BTreeMap<TopicPartition, i64>, KafkaError>> + Send;

    /// ListOffsets for every partition of `topics`. For a timestamp with no record at or
    /// after it, Kafka answers -1; callers treat that as the log end.
    fn list_offsets(
        &self,
        topics: &[String],
        spec: OffsetSpec,
    ) -> impl Future<Output = Result<BTreeMap<TopicPartition, i64>, KafkaError>> + Send;

    /// OffsetCommit as an admin (no generation, no member id): only accepted while the
    /// group has no members.
    fn commit_offsets(
        &self,
        group_id: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> impl Future<Output = Result<(), KafkaError>> + Send;
}

/// See [`ReplicaAdmin::partition_states`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionStates {
    pub controller: Option<i32>,
    pub partitions: BTreeMap<TopicPartition, crate::roller::PartitionState>,
}

/// What the `KafkaCluster` controller needs to move replicas: the layout, reassignments
/// (KIP-455), preferred leader elections and replication throttles (KIP-73).
pub trait ReplicaAdmin: Send + Sync {
    fn cluster_layout(&self) -> impl Future<Output = Result<ClusterLayout, KafkaError>> + Send;

    /// The partitions with a reassignment in progress (ListPartitionReassignments).
    fn ongoing_reassignments(
        &self,
    ) -> impl Future<Output = Result<BTreeSet<TopicPartition>, KafkaError>> + Send;

    /// Starts reassigning each partition to its new replica list.
    fn reassign_partitions(
        &self,
        targets: &BTreeMap<TopicPartition, Vec<i32>>,
    ) -> impl Future<Output = Result<(), KafkaError>> + Send;

    /// ElectLeaders(PREFERRED); partitions already led by their preferred replica are fine.
    fn elect_preferred_leaders(
        &self,
        partitions: &[TopicPartition],
    ) -> impl Future<Output = Result<(), KafkaError>> + Send;

    /// The controller's broker id and, for every partition, its replicas, ISR, leader and
    /// topic's effective `min.insync.replicas`: what the rolling restart decides on.
    fn partition_states(&self) -> impl Future<Output = Result<PartitionStates, KafkaError>> + Send;

    /// Sets and deletes the brokers' cluster-wide dynamic configs (`<default>`).
    fn alter_broker_default_config(
        &self,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> impl Future<Output = Result<(), KafkaError>> + Send;
}

/// Opens an admin connection to a cluster given its bootstrap servers.
pub trait KafkaConnector: Send + Sync + 'static {
    type Admin: KafkaAdmin + ReplicaAdmin;

    fn connect(
        &self,
        bootstrap_servers: &str,
    ) -> impl Future<Output = Result<Self::Admin, KafkaError>> + Send;
}
