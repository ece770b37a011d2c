//! An in-memory Kafka for the controllers' tests: topics, configs, group offsets, and a log
//! of every mutating call so tests assert exactly what was asked of the brokers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{
    GroupDescription, KafkaAdmin, KafkaConnector, KafkaError, OffsetSpec, TopicDescription,
    TopicPartition,
};

#[derive(Debug, Default)]
pub struct State {
    pub topics: BTreeMap<String, TopicDescription>,
    pub groups: BTreeMap<String, GroupDescription>,
    pub committed: BTreeMap<String, BTreeMap<TopicPartition, i64>>,
    /// Per partition: (log start offset, log end offset).
    pub log_offsets: BTreeMap<TopicPartition, (i64, i64)>,
    /// Mutating calls in order, e.g. `create_partitions events 6`.
    pub calls: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct FakeKafka {
    pub state: Arc<Mutex<State>>,
}

impl FakeKafka {
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

fn broker_error(operation: &'static str, code: &str) -> KafkaError {
    KafkaError::Broker {
        operation,
        code: code.into(),
        message: None,
    }
}

impl KafkaAdmin for FakeKafka {
    async fn describe_topic(&self, name: &str) -> Result<Option<TopicDescription>, KafkaError> {
        Ok(self.with(|s| s.topics.get(name).cloned()))
    }

    async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        config: &BTreeMap<String, String>,
    ) -> Result<Option<String>, KafkaError> {
        self.with(|s| {
            s.calls.push(format!(
                "create_topic {name} {partitions} {replication_factor}"
            ));
            if s.topics.contains_key(name) {
                return Err(broker_error("CreateTopics", "TOPIC_ALREADY_EXISTS"));
            }
            let id = format!("id-{name}");
            s.topics.insert(
                name.to_string(),
                TopicDescription {
                    name: name.to_string(),
                    topic_id: Some(id.clone()),
                    partitions,
                    replication_factor,
                    config: config.clone(),
                },
            );
            for p in 0..partitions {
                s.log_offsets.insert((name.to_string(), p), (0, 0));
            }
            Ok(Some(id))
        })
    }

    async fn create_partitions(&self, name: &str, total: i32) -> Result<(), KafkaError> {
        self.with(|s| {
            s.calls.push(format!("create_partitions {name} {total}"));
            let topic = s
                .topics
                .get_mut(name)
                .ok_or_else(|| broker_error("CreatePartitions", "UNKNOWN_TOPIC_OR_PARTITION"))?;
            if total <= topic.partitions {
                return Err(broker_error("CreatePartitions", "INVALID_PARTITIONS"));
            }
            topic.partitions = total;
            Ok(())
        })
    }

    async fn alter_topic_config(
        &self,
        name: &str,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), KafkaError> {
        self.with(|s| {
            s.calls.push(format!(
                "alter_topic_config {name} set={set:?} delete={delete:?}"
            ));
            let topic = s.topics.get_mut(name).ok_or_else(|| {
                broker_error("IncrementalAlterConfigs", "UNKNOWN_TOPIC_OR_PARTITION")
            })?;
            topic
                .config
                .extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
            for key in delete {
                topic.config.remove(key);
            }
            Ok(())
        })
    }

    async fn delete_topic(&self, name: &str) -> Result<(), KafkaError> {
        self.with(|s| {
            s.calls.push(format!("delete_topic {name}"));
            s.topics
                .remove(name)
                .map(|_| ())
                .ok_or_else(|| broker_error("DeleteTopics", "UNKNOWN_TOPIC_OR_PARTITION"))
        })
    }

    async fn describe_group(&self, group_id: &str) -> Result<Option<GroupDescription>, KafkaError> {
        Ok(self.with(|s| s.groups.get(group_id).cloned()))
    }

    async fn committed_offsets(
        &self,
        group_id: &str,
    ) -> Result<BTreeMap<TopicPartition, i64>, KafkaError> {
        Ok(self.with(|s| s.committed.get(group_id).cloned().unwrap_or_default()))
    }

    async fn list_offsets(
        &self,
        topics: &[String],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, i64>, KafkaError> {
        Ok(self.with(|s| {
            s.log_offsets
                .iter()
                .filter(|((topic, _), _)| topics.contains(topic))
                .map(|(tp, &(start, end))| {
                    let offset = match spec {
                        OffsetSpec::Earliest => start,
                        OffsetSpec::Latest => end,
                        // The fake's records carry timestamp == offset.
                        OffsetSpec::Timestamp(ts) if ts < end => ts.max(start),
                        OffsetSpec::Timestamp(_) => -1,
                    };
                    (tp.clone(), offset)
                })
                .collect()
        }))
    }

    async fn commit_offsets(
        &self,
        group_id: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), KafkaError> {
        self.with(|s| {
            s.calls
                .push(format!("commit_offsets {group_id} {offsets:?}"));
            if s.groups.get(group_id).is_some_and(|g| g.members > 0) {
                return Err(broker_error("OffsetCommit", "UNKNOWN_MEMBER_ID"));
            }
            s.committed
                .entry(group_id.to_string())
                .or_default()
                .extend(offsets.clone());
            Ok(())
        })
    }
}

impl KafkaConnector for FakeKafka {
    type Admin = FakeKafka;

    async fn connect(&self, _bootstrap_servers: &str) -> Result<FakeKafka, KafkaError> {
        Ok(self.clone())
    }
}
