//! Topic administration as Kafka's ZooKeeper-mode brokers do it (`ZkAdminManager`):
//! the broker that receives CreateTopics, DeleteTopics, CreatePartitions or a config
//! change validates it and writes it to the metadata store; the controller notices and
//! does the rest (elects leaders, tells brokers, deletes logs). CreateTopics,
//! CreatePartitions and DeleteTopics then wait — up to the request's timeout — until this
//! broker's metadata cache shows the result, as Kafka's delayed admin operations do.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::ResponseError;
use rand::Rng;
use tracing::info;
use uuid::Uuid;

use crate::Broker;

/// Most partitions one CreateTopics or CreatePartitions request may create, across its
/// topics; beyond it the whole request fails with POLICY_VIOLATION, as Kafka's controller
/// answers since KAFKA-17870 and KAFKA-19673. Without it one request asking for 2^31
/// partitions would take the broker's memory while assigning them.
pub const MAX_PARTITIONS_PER_BATCH: i64 = 10_000;

/// Kafka's message for a request over [`MAX_PARTITIONS_PER_BATCH`].
pub const EXCESSIVE_PARTITIONS: &str = "Excessively large number of partitions per request.";
use crate::config::{
    apply_topic_config, validate_replication_topic_config, validate_unapplied_topic_config,
};
use crate::controller::assignment::{AssignmentError, Candidate, assign_replicas};
use crate::metadata::{MetadataError, config_type, validate_topic_name};

/// An admin failure: the Kafka error code and a message for the client.
pub type AdminError = (ResponseError, String);

fn store_error(e: MetadataError) -> AdminError {
    (ResponseError::UnknownServerError, e.to_string())
}

fn assignment_error(e: AssignmentError) -> AdminError {
    let code = match e {
        AssignmentError::InvalidPartitions => ResponseError::InvalidPartitions,
        AssignmentError::InvalidReplicationFactor | AssignmentError::NotEnoughBrokers { .. } => {
            ResponseError::InvalidReplicationFactor
        }
        AssignmentError::PartialRackInformation => ResponseError::InvalidReplicaAssignment,
    };
    (code, e.to_string())
}

/// One topic as the admin APIs describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicDescription {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: i32,
    pub replication_factor: i16,
    /// Topic-level overrides, as the user gave them.
    pub configs: BTreeMap<String, String>,
    pub internal: bool,
}

/// What a CreateTopics asks for.
pub struct NewTopic {
    pub name: String,
    /// -1: `num.partitions`.
    pub partitions: i32,
    /// -1: `default.replication.factor`.
    pub replication_factor: i16,
    /// Manual assignment (partition → replicas), when given.
    pub assignment: Option<BTreeMap<i32, Vec<i32>>>,
    pub configs: BTreeMap<String, String>,
}

impl Broker {
    /// Validates topic configs the way they will be applied.
    pub fn validate_topic_configs(
        &self,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), AdminError> {
        let mut scratch = self.config.log.clone();
        for (key, value) in configs {
            validate_replication_topic_config(key, value)
                .or_else(|| validate_unapplied_topic_config(key, value))
                .unwrap_or_else(|| apply_topic_config(&mut scratch, key, value))
                .map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
        }
        Ok(())
    }

    /// Live brokers as replica candidates (with their racks).
    fn candidates(&self) -> Vec<Candidate> {
        self.cache
            .snapshot()
            .brokers
            .values()
            .map(|b| Candidate {
                id: b.id,
                rack: b.rack.clone(),
            })
            .collect()
    }

    /// Checks a manual assignment the way Kafka's `validateReplicaAssignment` does.
    fn validate_assignment(
        &self,
        assignment: &BTreeMap<i32, Vec<i32>>,
        first_partition: i32,
    ) -> Result<(), AdminError> {
        let live = self.cache.snapshot();
        let mut factor = None;
        for (expected, (partition, replicas)) in (first_partition..).zip(assignment) {
            if *partition != expected {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    "Partitions should be a consecutive 0-based integer sequence".into(),
                ));
            }
            if replicas.is_empty() {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!("Replica list of partition {partition} is empty"),
                ));
            }
            let mut sorted = replicas.clone();
            sorted.sort();
            sorted.dedup();
            if sorted.len() != replicas.len() {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Duplicate brokers not allowed in replica assignment: {replicas:?} for partition id {partition}."
                    ),
                ));
            }
            if let Some(unknown) = replicas.iter().find(|b| !live.is_alive(**b)) {
                return Err((
                    ResponseError::BrokerNotAvailable,
                    format!(
                        "Some brokers specified for partition id {partition} are not available. Specified brokers: {replicas:?}, unknown: {unknown}"
                    ),
                ));
            }
            if *factor.get_or_insert(replicas.len()) != replicas.len() {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    "All partitions should have the same number of replicas".into(),
                ));
            }
        }
        Ok(())
    }

    /// Creates a topic (CreateTopics and auto-creation): validates, assigns replicas and
    /// writes the assignment and configs to the store. The controller elects leaders.
    pub async fn create_topic(
        &self,
        new: NewTopic,
        validate_only: bool,
    ) -> Result<TopicDescription, AdminError> {
        let name = new.name.clone();
        validate_topic_name(&name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
        if self.topic(&name).is_some() {
            return Err((
                ResponseError::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ));
        }
        let assignment = match new.assignment {
            Some(assignment) => {
                if new.partitions != -1 || new.replication_factor != -1 {
                    return Err((
                        ResponseError::InvalidRequest,
                        "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                    ));
                }
                self.validate_assignment(&assignment, 0)?;
                assignment
            }
            None => {
                let partitions = if new.partitions == -1 {
                    self.config.num_partitions
                } else {
                    new.partitions
                };
                let replication_factor = if new.replication_factor == -1 {
                    self.config.default_replication_factor
                } else {
                    new.replication_factor
                };
                let candidates = self.candidates();
                let n = candidates.len().max(1);
                let mut rng = rand::rng();
                let start = (rng.random_range(0..n), rng.random_range(0..n));
                assign_replicas(
                    &candidates,
                    partitions,
                    i32::from(replication_factor),
                    start,
                    0,
                )
                .map_err(assignment_error)?
            }
        };
        self.validate_topic_configs(&new.configs)?;
        let topic = TopicDescription {
            name: name.clone(),
            topic_id: Uuid::new_v4(),
            partitions: assignment.len() as i32,
            replication_factor: assignment.values().next().map_or(0, |r| r.len() as i16),
            configs: new.configs.clone(),
            internal: name.starts_with("__"),
        };
        if validate_only {
            return Ok(topic);
        }
        let created = self
            .store
            .create_topic(
                name.clone(),
                topic.topic_id,
                assignment,
                new.configs.clone(),
            )
            .await
            .map_err(store_error)?;
        if !created {
            return Err((
                ResponseError::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ));
        }
        self.cache_topic_configs(&name, new.configs);
        info!(topic = %name, partitions = topic.partitions, replication_factor = topic.replication_factor, "created topic");
        Ok(topic)
    }

    /// Waits until every partition of `topic` has a leader in the metadata cache (Kafka's
    /// `DelayedCreatePartitions`); false on timeout.
    pub async fn wait_for_leaders(&self, topic: &str, partitions: i32, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut updates = self.cache_updates.subscribe();
        loop {
            let snapshot = self.cache.snapshot();
            let ready = snapshot.topics.get(topic).is_some_and(|t| {
                t.partitions.len() as i32 >= partitions
                    && t.partitions.values().all(|p| p.leader >= 0)
            });
            if ready {
                return true;
            }
            if tokio::time::timeout_at(deadline, updates.changed())
                .await
                .is_err()
            {
                return false;
            }
        }
    }

    /// Waits until `topic` is gone from the metadata cache (Kafka's `DelayedDeleteTopics`).
    pub async fn wait_for_deletion(&self, topic: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut updates = self.cache_updates.subscribe();
        loop {
            if !self.cache.snapshot().topics.contains_key(topic) {
                return true;
            }
            if tokio::time::timeout_at(deadline, updates.changed())
                .await
                .is_err()
            {
                return false;
            }
        }
    }

    /// Queues a topic for deletion by the controller.
    pub async fn delete_topic(&self, name: &str) -> Result<TopicDescription, AdminError> {
        let Some(topic) = self.topic(name) else {
            return Err((
                ResponseError::UnknownTopicOrPartition,
                "This server does not host this topic-partition.".to_string(),
            ));
        };
        if topic.internal {
            return Err((
                ResponseError::InvalidTopicException,
                format!("Topic '{name}' is an internal topic and cannot be deleted."),
            ));
        }
        if !self.config.delete_topic_enable {
            return Err((
                ResponseError::TopicDeletionDisabled,
                "Topic deletion is disabled.".to_string(),
            ));
        }
        self.store
            .mark_topics_for_deletion(vec![name.to_string()])
            .await
            .map_err(store_error)?;
        info!(topic = name, "topic marked for deletion");
        Ok(topic)
    }

    /// Grows a topic to `count` partitions (CreatePartitions); partitions never shrink.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        manual: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let Some(mut topic) = self
            .store
            .topic_assignments(vec![name.to_string()])
            .await
            .map_err(store_error)?
            .remove(name)
        else {
            return Err((
                ResponseError::UnknownTopicOrPartition,
                format!("The topic '{name}' does not exist."),
            ));
        };
        let current = topic.partitions.len() as i32;
        if count < current {
            return Err((
                ResponseError::InvalidPartitions,
                format!(
                    "Topic currently has {current} partitions, which is higher than the requested {count}."
                ),
            ));
        }
        if count == current {
            return Err((
                ResponseError::InvalidPartitions,
                format!("Topic already has {count} partitions."),
            ));
        }
        let replication_factor = topic
            .partitions
            .get(&0)
            .map_or(1, |a| a.target_replicas().len() as i32);
        let added: BTreeMap<i32, Vec<i32>> = match manual {
            Some(assignments) => {
                if assignments.len() as i32 != count - current {
                    return Err((
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "Increasing the number of partitions by {} but {} assignments provided.",
                            count - current,
                            assignments.len()
                        ),
                    ));
                }
                let added: BTreeMap<i32, Vec<i32>> = (current..).zip(assignments).collect();
                self.validate_assignment(&added, current)?;
                added
            }
            None => {
                let candidates = self.candidates();
                // Continue the layout of partition 0, as Kafka does.
                let mut ids: Vec<i32> = candidates.iter().map(|c| c.id).collect();
                ids.sort();
                let first = topic
                    .partitions
                    .get(&0)
                    .and_then(|a| a.replicas.first())
                    .and_then(|leader| ids.iter().position(|id| id >= leader))
                    .unwrap_or(0);
                assign_replicas(
                    &candidates,
                    count - current,
                    replication_factor,
                    (first, first),
                    current,
                )
                .map_err(assignment_error)?
            }
        };
        if validate_only {
            return Ok(());
        }
        for (p, replicas) in added {
            topic
                .partitions
                .insert(p, crate::metadata::ReplicaAssignment::new(replicas));
        }
        self.store
            .set_topic_assignment(name.to_string(), topic, None)
            .await
            .map_err(|e| match e {
                MetadataError::BadVersion(_) => (
                    ResponseError::ReassignmentInProgress,
                    "The topic's assignment changed concurrently; retry".to_string(),
                ),
                other => store_error(other),
            })?;
        info!(topic = name, from = current, to = count, "added partitions");
        Ok(())
    }

    /// A topic's config overrides, as the store has them.
    pub async fn topic_overrides(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, String>, AdminError> {
        let configs = self
            .store
            .entity_configs(config_type::TOPIC.to_string(), name.to_string())
            .await
            .map_err(store_error)?;
        self.cache_topic_configs(name, configs.clone());
        Ok(configs)
    }

    /// Replaces a topic's config overrides; every broker applies them when notified.
    pub async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), AdminError> {
        if self.topic(name).is_none() {
            return Err((
                ResponseError::UnknownTopicOrPartition,
                format!("The topic '{name}' does not exist."),
            ));
        }
        self.validate_topic_configs(&configs)?;
        self.store
            .set_entity_configs(
                config_type::TOPIC.to_string(),
                name.to_string(),
                configs.clone(),
            )
            .await
            .map_err(store_error)?;
        self.apply_topic_configs(name, configs);
        info!(topic = name, "updated topic configs");
        Ok(())
    }
}
