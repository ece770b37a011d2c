//! The cluster's durable facts, kept as Apache Kafka kept them in ZooKeeper.
//!
//! | znode | holds |
//! |---|---|
//! | `/cluster/id` | `{"version":"1","id":"<cluster id>"}` |
//! | `/brokers/ids/<id>` | ephemeral broker registration (v5 JSON); its czxid is the broker epoch |
//! | `/controller` | ephemeral `{"version":2,"brokerid":N,"timestamp":"...","kraftControllerEpoch":-1}` |
//! | `/controller_epoch` | the controller epoch as a decimal string; its zkVersion fences every controller write |
//! | `/brokers/topics/<topic>` | replica assignment, topic id, adding/removing replicas (v3 JSON) |
//! | `/brokers/topics/<topic>/partitions/<p>/state` | leader, leader epoch, ISR, controller epoch (v1 JSON); its zkVersion is the partition epoch |
//! | `/config/<type>/<name>` | config overrides (`{"version":1,"config":{...}}`) |
//! | `/config/changes/config_change_<seq>` | `{"version":2,"entity_path":"topics/<name>"}`, so every broker reloads |
//! | `/admin/delete_topics/<topic>` | a topic waiting for deletion |
//! | `/isr_change_notification/isr_change_<seq>` | ISR changes from brokers without AlterPartition |
//! | `/kafka-acl/<Type>/<name>`, `/kafka-acl-extended/prefixed/<Type>/<prefix>` | ACLs (`{"version":1,"acls":[...]}`) |
//! | `/kafka-acl-changes/acl_changes_<seq>`, `/kafka-acl-extended-changes/...` | ACL change notifications |
//! | `/latest_producer_id_block` | the last producer-id block handed out (conditional setData) |
//! | `/feature` | finalized features (`{"version":2,"status":1,"features":{}}`) |
//!
//! [`MetadataStore`] is the one interface the broker and the controller use. Two backings
//! implement it: [`zk::ZkMetadataStore`] keeps the znodes above in a ZooKeeper ensemble
//! (strata-coordinator or Apache ZooKeeper) through the `zookeeper-client` crate;
//! [`local::LocalMetadataStore`] keeps the same facts in a file for a broker without
//! `zookeeper.connect`, which is then a one-broker cluster run by the very same
//! controller. [`json`] holds the JSON documents, [`cache`] the broker's `MetadataCache`
//! (what UpdateMetadata tells it).
//!
//! Every write the controller makes passes its [`ControllerFence`]: the zkVersion of
//! `/controller_epoch` it saw when elected. The ZooKeeper backing puts a check of that
//! version into the same `multi` as the write, as Kafka does, so a controller that lost
//! its election cannot change anything.

pub mod cache;
pub mod json;
pub mod local;
pub mod zk;

use std::collections::{BTreeMap, BTreeSet};

use futures::future::BoxFuture;
use tokio::sync::broadcast;
use uuid::Uuid;

pub use cache::MetadataCache;

use crate::security::acl::{AclEntry, AclSet, ResourcePattern};

/// `(topic, partition)`, as the storage layer names partitions.
pub type TopicPartition = (String, i32);

/// Kafka's security protocols, with their wire ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    Plaintext = 0,
    Ssl = 1,
    SaslPlaintext = 2,
    SaslSsl = 3,
}

impl SecurityProtocol {
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        match name.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    pub fn id(self) -> i16 {
        self as i16
    }

    pub fn from_id(id: i16) -> Option<SecurityProtocol> {
        [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ]
        .into_iter()
        .find(|p| p.id() == id)
    }
}

/// One advertised listener of a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: SecurityProtocol,
}

/// What `/brokers/ids/<id>` says about a live broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub id: i32,
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    /// The czxid of the registration znode: a new value every time the broker registers,
    /// so a request stamped with an older epoch is from a previous incarnation.
    pub epoch: i64,
}

impl BrokerRegistration {
    pub fn endpoint(&self, listener: &str) -> Option<&BrokerEndpoint> {
        self.endpoints.iter().find(|e| e.listener == listener)
    }
}

/// Where a partition's replicas are, and where they are going during a reassignment.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ReplicaAssignment {
    /// During a reassignment: the target replicas followed by those being removed.
    pub replicas: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding_replicas: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_replicas: Vec<i32>,
}

impl ReplicaAssignment {
    pub fn new(replicas: Vec<i32>) -> ReplicaAssignment {
        ReplicaAssignment {
            replicas,
            ..ReplicaAssignment::default()
        }
    }

    pub fn is_being_reassigned(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas once the reassignment completes.
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing_replicas.contains(r))
            .collect()
    }

    /// The replicas before the reassignment started.
    pub fn origin_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.adding_replicas.contains(r))
            .collect()
    }
}

/// `/brokers/topics/<topic>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicAssignment {
    pub topic_id: Uuid,
    pub partitions: BTreeMap<i32, ReplicaAssignment>,
    /// The znode's zkVersion when read; writes back are conditional on it.
    pub version: i32,
}

/// Kafka's `LeaderAndIsr`: the leadership state of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderAndIsr {
    /// -1 when the partition has no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    /// 1 (`RECOVERING`) after an unclean election, 0 otherwise.
    pub leader_recovery_state: i8,
    /// The zkVersion of the state znode, which Kafka calls the partition epoch.
    pub partition_epoch: i32,
}

pub const NO_LEADER: i32 = -1;
/// Leader id sent in UpdateMetadata while a topic is being deleted.
pub const LEADER_DURING_DELETE: i32 = -2;
/// Leader epoch sent in StopReplica while a topic is being deleted.
pub const EPOCH_DURING_DELETE: i32 = -2;

impl LeaderAndIsr {
    /// A first state: the leader with the given ISR, epoch 0.
    pub fn initial(leader: i32, isr: Vec<i32>) -> LeaderAndIsr {
        LeaderAndIsr {
            leader,
            leader_epoch: 0,
            isr,
            leader_recovery_state: 0,
            partition_epoch: 0,
        }
    }

    /// A new leader (or none) and ISR: the leader epoch goes up by one.
    pub fn new_leader_and_isr(&self, leader: i32, isr: Vec<i32>) -> LeaderAndIsr {
        LeaderAndIsr {
            leader,
            leader_epoch: self.leader_epoch + 1,
            isr,
            leader_recovery_state: self.leader_recovery_state,
            partition_epoch: self.partition_epoch,
        }
    }

    pub fn has_leader(&self) -> bool {
        self.leader >= 0
    }
}

/// A partition's state znode: its `LeaderAndIsr` and the epoch of the controller that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub leader_and_isr: LeaderAndIsr,
    pub controller_epoch: i32,
}

/// What an elected controller passes with every write: its epoch and the zkVersion of
/// `/controller_epoch` that the write is conditional on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerFence {
    pub epoch: i32,
    pub epoch_zk_version: i32,
}

/// The outcome of creating one partition's state znode: its partition epoch, or why not.
pub type CreatedState = (TopicPartition, Result<i32, MetadataError>);

/// One `/isr_change_notification` entry: its znode name and the partitions it names.
pub type IsrChangeNotification = (String, Vec<TopicPartition>);

/// The outcome of one conditional partition-state write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateWrite {
    /// Written; the new partition epoch.
    Updated(i32),
    /// Someone else changed it since it was read.
    BadVersion,
    /// The state znode does not exist.
    NoNode,
}

/// Something changed in the metadata store. Readers re-read what they need: like
/// ZooKeeper watches, events say *that* something changed, not *what* it became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataEvent {
    /// `/brokers/ids` children: a broker registered or went away.
    BrokersChanged,
    /// `/brokers/topics` children: a topic was created or removed.
    TopicsChanged,
    /// `/brokers/topics/<topic>` data: partitions were added or a reassignment written.
    TopicChanged(String),
    /// `/admin/delete_topics` children.
    TopicDeletionsChanged,
    /// `/controller` was created, changed or deleted.
    ControllerChanged,
    /// `/isr_change_notification` children.
    IsrChangeNotification,
    /// ACLs changed (`/kafka-acl-changes`, `/kafka-acl-extended-changes`).
    AclsChanged,
    /// A config entity changed (`/config/changes`).
    ConfigChanged {
        entity_type: String,
        entity_name: String,
    },
    /// The connection came back after a disconnect: notifications may have been missed,
    /// so everything watched must be re-read.
    Reconnected,
    /// The session expired: this broker's ephemeral znodes (its registration,
    /// `/controller` if it was the controller) are gone. A controller resigns at once.
    SessionExpired,
    /// A new session replaced the expired one and the broker registered again, with the
    /// broker epoch carried here.
    SessionReestablished { broker_epoch: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("cannot write cluster metadata to {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cluster metadata {path} is unreadable: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("ZooKeeper: {0}")]
    ZooKeeper(String),
    #[error("{0} already exists")]
    NodeExists(String),
    #[error("{0} does not exist")]
    NoNode(String),
    #[error("{0} was changed concurrently")]
    BadVersion(String),
    /// The fence did not hold: another controller was elected.
    #[error("the controller moved: controller epoch zkVersion {expected} is no longer current")]
    ControllerMoved { expected: i32 },
    #[error("broker {0} is registered by another process")]
    BrokerIdInUse(i32),
}

/// The durable cluster metadata, as the broker and the controller see it.
///
/// Methods are futures because the ZooKeeper backing talks to the ensemble; the file
/// backing answers at once. Every method is safe to call concurrently.
pub trait MetadataStore: Send + Sync {
    /// Changes as they happen (see [`MetadataEvent`]). A receiver that lags behind gets
    /// `RecvError::Lagged` and must treat everything as changed.
    fn subscribe(&self) -> broadcast::Receiver<MetadataEvent>;

    /// Whether the store is shared with other brokers (ZooKeeper) or private to this
    /// broker (the file backing).
    fn is_shared(&self) -> bool;

    /// The cluster id, created from `proposed` on first use.
    fn cluster_id(&self, proposed: String) -> BoxFuture<'_, Result<String, MetadataError>>;

    /// Registers this broker (ephemeral) and returns its broker epoch.
    fn register_broker(
        &self,
        registration: BrokerRegistration,
    ) -> BoxFuture<'_, Result<i64, MetadataError>>;

    /// Every registered broker with its epoch, by id.
    fn brokers(&self) -> BoxFuture<'_, Result<Vec<BrokerRegistration>, MetadataError>>;

    /// The broker id in `/controller`, if any.
    fn controller_id(&self) -> BoxFuture<'_, Result<Option<i32>, MetadataError>>;

    /// Tries to become the controller: creates `/controller` and increments
    /// `/controller_epoch` in one `multi`. `None` when another broker won.
    fn elect_controller(
        &self,
        broker_id: i32,
    ) -> BoxFuture<'_, Result<Option<ControllerFence>, MetadataError>>;

    /// Every topic with an assignment.
    fn topics(&self) -> BoxFuture<'_, Result<Vec<String>, MetadataError>>;

    /// The assignments of the given topics (missing topics are left out).
    fn topic_assignments(
        &self,
        topics: Vec<String>,
    ) -> BoxFuture<'_, Result<BTreeMap<String, TopicAssignment>, MetadataError>>;

    /// Creates a topic as `AdminZkClient.createTopic` does: its config znode, then its
    /// assignment. `Ok(false)` when a topic of that name exists.
    fn create_topic(
        &self,
        topic: String,
        topic_id: Uuid,
        assignment: BTreeMap<i32, Vec<i32>>,
        configs: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<bool, MetadataError>>;

    /// Writes a topic's assignment back, conditional on `assignment.version` (and the
    /// fence, when the controller writes). Returns the new version.
    fn set_topic_assignment(
        &self,
        topic: String,
        assignment: TopicAssignment,
        fence: Option<ControllerFence>,
    ) -> BoxFuture<'_, Result<i32, MetadataError>>;

    /// The state znodes of the given partitions (missing ones are left out).
    fn partition_states(
        &self,
        partitions: Vec<TopicPartition>,
    ) -> BoxFuture<'_, Result<BTreeMap<TopicPartition, PartitionState>, MetadataError>>;

    /// Creates state znodes for new partitions; per partition the new partition epoch or
    /// `NodeExists`.
    fn create_partition_states(
        &self,
        fence: ControllerFence,
        states: Vec<(TopicPartition, PartitionState)>,
    ) -> BoxFuture<'_, Result<Vec<CreatedState>, MetadataError>>;

    /// Conditional updates of state znodes: each is written only if its zkVersion still
    /// equals `leader_and_isr.partition_epoch`.
    fn update_partition_states(
        &self,
        fence: ControllerFence,
        states: Vec<(TopicPartition, PartitionState)>,
    ) -> BoxFuture<'_, Result<Vec<(TopicPartition, StateWrite)>, MetadataError>>;

    /// Topics in `/admin/delete_topics`.
    fn topic_deletions(&self) -> BoxFuture<'_, Result<Vec<String>, MetadataError>>;

    /// Queues topics for deletion by the controller.
    fn mark_topics_for_deletion(
        &self,
        topics: Vec<String>,
    ) -> BoxFuture<'_, Result<(), MetadataError>>;

    /// Removes a deleted topic's znodes: assignment and partition states, config, and the
    /// deletion marker.
    fn delete_topic(
        &self,
        topic: String,
        fence: ControllerFence,
    ) -> BoxFuture<'_, Result<(), MetadataError>>;

    /// Drops deletion markers (of topics that do not exist).
    fn remove_deletion_markers(
        &self,
        topics: Vec<String>,
        fence: ControllerFence,
    ) -> BoxFuture<'_, Result<(), MetadataError>>;

    /// Every ACL (`/kafka-acl`, `/kafka-acl-extended/prefixed`).
    fn acls(&self) -> BoxFuture<'_, Result<AclSet, MetadataError>>;

    /// Adds and removes entries of one pattern's ACLs in one conditional write, announces
    /// the change to every broker, and returns the pattern's entries after it.
    fn update_acls(
        &self,
        pattern: ResourcePattern,
        add: BTreeSet<AclEntry>,
        remove: BTreeSet<AclEntry>,
    ) -> BoxFuture<'_, Result<BTreeSet<AclEntry>, MetadataError>>;

    /// The entities of a type with configs (`/config/<entity_type>`'s children).
    fn entity_names(
        &self,
        entity_type: String,
    ) -> BoxFuture<'_, Result<Vec<String>, MetadataError>>;

    /// `/config/<entity_type>/<entity_name>`, empty when absent.
    fn entity_configs(
        &self,
        entity_type: String,
        entity_name: String,
    ) -> BoxFuture<'_, Result<BTreeMap<String, String>, MetadataError>>;

    /// Replaces an entity's config overrides and notifies every broker.
    fn set_entity_configs(
        &self,
        entity_type: String,
        entity_name: String,
        configs: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<(), MetadataError>>;

    /// Pending `/isr_change_notification` entries: (znode name, partitions).
    fn isr_change_notifications(
        &self,
    ) -> BoxFuture<'_, Result<Vec<IsrChangeNotification>, MetadataError>>;

    fn delete_isr_change_notifications(
        &self,
        names: Vec<String>,
    ) -> BoxFuture<'_, Result<(), MetadataError>>;

    /// Reserves the next block of `block_size` producer ids for `broker_id`, as Kafka's
    /// controller does with a conditional write of `/latest_producer_id_block`. Returns
    /// the first id of the block.
    fn allocate_producer_ids(
        &self,
        broker_id: i32,
        block_size: i32,
    ) -> BoxFuture<'_, Result<i64, MetadataError>>;

    /// Ends the session, so this broker's ephemeral znodes go at once rather than after
    /// the session timeout.
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// A cluster id in Kafka's form: 16 random bytes, URL-safe base64 without padding.
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = *Uuid::new_v4().as_bytes();
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

/// Kafka's topic name rules: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-' ('{c}')"
        ));
    }
    Ok(())
}

/// Config entity types, as Kafka names the `/config/<type>` znodes.
pub mod config_type {
    pub const TOPIC: &str = "topics";
    pub const CLIENT: &str = "clients";
    pub const USER: &str = "users";
    pub const BROKER: &str = "brokers";
    pub const IP: &str = "ips";
    pub const ALL: [&str; 5] = [TOPIC, CLIENT, USER, BROKER, IP];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_name_rules() {
        assert!(validate_topic_name("my-topic_1.v2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("bad topic").is_err());
        assert!(validate_topic_name("bad/topic").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
    }

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn reassignment_views() {
        let a = ReplicaAssignment {
            replicas: vec![4, 5, 1, 2],
            adding_replicas: vec![4, 5],
            removing_replicas: vec![1, 2],
        };
        assert!(a.is_being_reassigned());
        assert_eq!(a.target_replicas(), vec![4, 5]);
        assert_eq!(a.origin_replicas(), vec![1, 2]);
    }
}
