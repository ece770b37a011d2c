//! Topic administration shared by CreateTopics, auto-creation in Metadata, DeleteTopics,
//! CreatePartitions and IncrementalAlterConfigs (Kafka's `ZkAdminManager`).
//!
//! Every operation validates fully before changing anything, then records the change in
//! the metadata store before touching logs, so a crash in between leaves metadata that
//! the next start-up completes (missing partition logs are created on open).

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use tracing::info;
use uuid::Uuid;

use crate::Broker;
use crate::config::apply_topic_config;
use crate::metadata::{TopicMetadata, validate_topic_name};

/// An admin failure: the Kafka error code and a message for the client.
pub type AdminError = (ResponseError, String);

fn storage_error(e: impl std::fmt::Display) -> AdminError {
    (ResponseError::KafkaStorageError, e.to_string())
}

impl Broker {
    /// Validates topic configs the way they will be applied.
    pub fn validate_topic_configs(
        &self,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), AdminError> {
        let mut scratch = self.config.log.clone();
        for (key, value) in configs {
            apply_topic_config(&mut scratch, key, value)
                .map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
        }
        Ok(())
    }

    /// Creates a topic (CreateTopics and auto-creation). `partitions`/`replication_factor`
    /// of -1 mean the broker defaults.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMetadata, AdminError> {
        validate_topic_name(name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
        if self.metadata.topic(name).is_some() {
            return Err((
                ResponseError::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ));
        }
        let partitions = if partitions == -1 {
            self.config.num_partitions
        } else {
            partitions
        };
        if partitions <= 0 {
            return Err((
                ResponseError::InvalidPartitions,
                format!(
                    "Number of partitions was set to an invalid non-positive value: {partitions}."
                ),
            ));
        }
        let replication_factor = if replication_factor == -1 {
            self.config.default_replication_factor
        } else {
            replication_factor
        };
        if replication_factor <= 0 {
            return Err((
                ResponseError::InvalidReplicationFactor,
                format!("Replication factor must be larger than 0, was {replication_factor}."),
            ));
        }
        let live_brokers = 1;
        if i32::from(replication_factor) > live_brokers {
            return Err((
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} cannot be reached because only {live_brokers} broker(s) are registered."
                ),
            ));
        }
        self.validate_topic_configs(&configs)?;
        let topic = TopicMetadata {
            name: name.to_string(),
            topic_id: Uuid::new_v4(),
            partitions,
            replication_factor,
            configs,
            internal: name.starts_with("__"),
        };
        if validate_only {
            return Ok(topic);
        }
        if !self
            .metadata
            .create_topic(topic.clone())
            .map_err(storage_error)?
        {
            return Err((
                ResponseError::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ));
        }
        self.open_partitions(&topic, 0).map_err(storage_error)?;
        info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Deletes a topic and its logs.
    pub fn delete_topic(&self, name: &str) -> Result<TopicMetadata, AdminError> {
        let Some(topic) = self.metadata.topic(name) else {
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
        self.metadata.delete_topic(name).map_err(storage_error)?;
        for p in 0..topic.partitions {
            self.replica_manager
                .delete_partition(name, p)
                .map_err(storage_error)?;
        }
        info!(topic = name, "deleted topic");
        Ok(topic)
    }

    /// Grows a topic to `count` partitions. Partitions never shrink.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let Some(mut topic) = self.metadata.topic(name) else {
            return Err((
                ResponseError::UnknownTopicOrPartition,
                format!("The topic '{name}' does not exist."),
            ));
        };
        if count < topic.partitions {
            return Err((
                ResponseError::InvalidPartitions,
                format!(
                    "Topic currently has {} partitions, which is higher than the requested {count}.",
                    topic.partitions
                ),
            ));
        }
        if count == topic.partitions {
            return Err((
                ResponseError::InvalidPartitions,
                format!("Topic already has {count} partitions."),
            ));
        }
        if validate_only {
            return Ok(());
        }
        let from = topic.partitions;
        topic.partitions = count;
        self.metadata
            .update_topic(topic.clone())
            .map_err(storage_error)?;
        self.open_partitions(&topic, from).map_err(storage_error)?;
        info!(topic = name, from, to = count, "added partitions");
        Ok(())
    }

    /// Replaces a topic's config overrides and applies them to its open logs.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), AdminError> {
        let Some(mut topic) = self.metadata.topic(name) else {
            return Err((
                ResponseError::UnknownTopicOrPartition,
                format!("The topic '{name}' does not exist."),
            ));
        };
        self.validate_topic_configs(&configs)?;
        topic.configs = configs;
        self.metadata
            .update_topic(topic.clone())
            .map_err(storage_error)?;
        let config = self.log_config_for(&topic);
        for partition in self.replica_manager.partitions_of(name) {
            partition.update_config(config.clone());
        }
        info!(topic = name, "updated topic configs");
        Ok(())
    }
}
