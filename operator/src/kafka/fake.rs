//! An in-memory Kafka for the controllers' tests: topics, configs, group offsets, and a log
//! of every mutating call so tests assert exactly what was asked of the brokers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use super::{
    ClusterLayout, GroupDescription, KafkaAdmin, KafkaConnector, KafkaError, OffsetSpec,
    PartitionStates, ReplicaAdmin, TopicDescription, TopicPartition,
};

#[derive(Debug, Default)]
pub struct State {
    pub topics: BTreeMap<String, TopicDescription>,
    pub groups: BTreeMap<String, GroupDescription>,
    pub committed: BTreeMap<String, BTreeMap<TopicPartition, i64>>,
    /// Per partition: (log start offset, log end offset).
    pub log_offsets: BTreeMap<TopicPartition, (i64, i64)>,
    /// Brokers, replica assignment and leaders (see [`FakeKafka::add_replicated_topic`]).
    pub layout: ClusterLayout,
    /// Reassignments in flight: partition → target replicas, applied to the layout by
    /// [`FakeKafka::complete_reassignments`].
    pub reassigning: BTreeMap<TopicPartition, Vec<i32>>,
    /// The brokers' `<default>` dynamic configs.
    pub broker_defaults: BTreeMap<String, String>,
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

    /// A topic with an explicit assignment (replica lists in order; leader = first).
    pub fn add_replicated_topic(&self, name: &str, assignment: &[&[i32]]) {
        self.with(|s| {
            s.topics.insert(
                name.to_string(),
                TopicDescription {
                    name: name.to_string(),
                    topic_id: Some(format!("id-{name}")),
                    partitions: assignment.len() as i32,
                    replication_factor: assignment[0].len() as i16,
                    config: BTreeMap::new(),
                },
            );
            let partitions = s.layout.assignment.entry(name.to_string()).or_default();
            for (p, replicas) in assignment.iter().enumerate() {
                partitions.insert(p as i32, replicas.to_vec());
                s.layout
                    .leaders
                    .insert((name.to_string(), p as i32), replicas[0]);
            }
        })
    }

    /// Every in-flight reassignment finishes: the partition has its target replicas, and
    /// keeps its leader if that is still a replica (else the first target leads), as
    /// Kafka's controller does.
    pub fn complete_reassignments(&self) {
        self.with(|s| {
            for ((topic, p), target) in std::mem::take(&mut s.reassigning) {
                let leader = s.layout.leaders.get(&(topic.clone(), p)).copied();
                if !leader.is_some_and(|l| target.contains(&l)) {
                    s.layout.leaders.insert((topic.clone(), p), target[0]);
                }
                s.layout
                    .assignment
                    .entry(topic)
                    .or_default()
                    .insert(p, target);
            }
        })
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
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

impl ReplicaAdmin for FakeKafka {
    async fn cluster_layout(&self) -> Result<ClusterLayout, KafkaError> {
        Ok(self.with(|s| s.layout.clone()))
    }

    async fn ongoing_reassignments(&self) -> Result<BTreeSet<TopicPartition>, KafkaError> {
        Ok(self.with(|s| s.reassigning.keys().cloned().collect()))
    }

    async fn reassign_partitions(
        &self,
        targets: &BTreeMap<TopicPartition, Vec<i32>>,
    ) -> Result<(), KafkaError> {
        self.with(|s| {
            for (tp, target) in targets {
                s.calls
                    .push(format!("reassign {}-{} {target:?}", tp.0, tp.1));
                if let Some(b) = target.iter().find(|b| !s.layout.brokers.contains_key(b)) {
                    return Err(KafkaError::Broker {
                        operation: "AlterPartitionReassignments",
                        code: "INVALID_REPLICA_ASSIGNMENT".into(),
                        message: Some(format!("Replica {b} is not an available broker")),
                    });
                }
                s.reassigning.insert(tp.clone(), target.clone());
            }
            Ok(())
        })
    }

    async fn elect_preferred_leaders(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<(), KafkaError> {
        self.with(|s| {
            s.calls.push(format!("elect {partitions:?}"));
            for tp in partitions {
                let preferred = s.layout.assignment.get(&tp.0).and_then(|t| t.get(&tp.1));
                if let Some(&first) = preferred.and_then(|r| r.first()) {
                    s.layout.leaders.insert(tp.clone(), first);
                }
            }
            Ok(())
        })
    }

    /// Every replica in sync, min.insync.replicas from the topic's config (else 1).
    async fn partition_states(&self) -> Result<PartitionStates, KafkaError> {
        Ok(self.with(|s| PartitionStates {
            controller: s.layout.brokers.keys().next().copied(),
            partitions: s
                .layout
                .assignment
                .iter()
                .flat_map(|(topic, partitions)| {
                    let min = s
                        .topics
                        .get(topic)
                        .and_then(|t| t.config.get("min.insync.replicas"))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    let leaders = &s.layout.leaders;
                    partitions.iter().map(move |(p, replicas)| {
                        (
                            (topic.clone(), *p),
                            crate::roller::PartitionState {
                                replicas: replicas.clone(),
                                isr: replicas.clone(),
                                leader: leaders.get(&(topic.clone(), *p)).copied(),
                                min_insync_replicas: min,
                            },
                        )
                    })
                })
                .collect(),
        }))
    }

    async fn alter_broker_default_config(
        &self,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), KafkaError> {
        self.with(|s| {
            s.calls.push(format!(
                "alter_broker_default set={set:?} delete={delete:?}"
            ));
            s.broker_defaults
                .extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
            for key in delete {
                s.broker_defaults.remove(key);
            }
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
