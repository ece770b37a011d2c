//! [`KafkaAdmin`] over `strata-client`'s [`Admin`], the project's Kafka client.
//!
//! The client routes each request where Kafka wants it (controller, group coordinator,
//! partition leaders) and negotiates versions with ApiVersions. The one thing read here
//! with a raw request is a topic's *overrides*: the controller compares the spec with the
//! topic-level configs only (`DYNAMIC_TOPIC_CONFIG`), and the client's `ConfigEntry` does
//! not carry the config source.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::protocol::StrBytes;
use strata_client::{
    Admin, AlterConfig, ClientConfig, NewTopic, TopicPartition as ClientPartition,
    kafka_error_name, topic_id_string,
};
use tokio::sync::Mutex;

use super::{
    ClusterLayout, GroupDescription, KafkaAdmin, KafkaConnector, KafkaError, OffsetSpec,
    PartitionStates, ReplicaAdmin, TopicDescription, TopicPartition,
};
use crate::roller::PartitionState;

/// Kafka's `ConfigResource.Type.TOPIC`.
const RESOURCE_TOPIC: i8 = 2;
/// `DescribeConfigsResponse.ConfigSource.DYNAMIC_TOPIC_CONFIG`: a topic-level override.
const SOURCE_DYNAMIC_TOPIC_CONFIG: i8 = 1;
/// Kafka's state of a group the coordinator does not know.
const STATE_DEAD: &str = "Dead";

#[derive(Clone, Debug)]
pub struct ClientConnector {
    /// `client.id` in every request header, so broker logs and quotas name the operator.
    pub client_id: String,
}

impl Default for ClientConnector {
    fn default() -> Self {
        Self {
            client_id: "strata-operator".into(),
        }
    }
}

impl KafkaConnector for ClientConnector {
    type Admin = ClientAdmin;

    async fn connect(&self, bootstrap_servers: &str) -> Result<ClientAdmin, KafkaError> {
        let mut config = ClientConfig::new(bootstrap_servers);
        config.connection.client_id = self.client_id.clone();
        let admin = Admin::connect(config)
            .await
            .map_err(|e| map_error("connect", bootstrap_servers, e))?;
        Ok(ClientAdmin {
            admin: Mutex::new(admin),
            bootstrap: bootstrap_servers.to_string(),
        })
    }
}

/// One connected admin client; calls take turns on it (the client needs `&mut`).
pub struct ClientAdmin {
    admin: Mutex<Admin>,
    bootstrap: String,
}

/// Broker error codes keep Kafka's name; everything else means the brokers could not be
/// talked to (or refused the request before sending it, which the client reports as
/// `Invalid`).
fn map_error(operation: &'static str, bootstrap: &str, error: strata_client::Error) -> KafkaError {
    match error {
        strata_client::Error::Kafka { code, message, .. } => KafkaError::Broker {
            operation,
            code: kafka_error_name(code),
            message,
        },
        strata_client::Error::Invalid(message) => KafkaError::Broker {
            operation,
            code: "INVALID_REQUEST".into(),
            message: Some(message),
        },
        other => KafkaError::Unreachable {
            bootstrap: bootstrap.to_string(),
            reason: other.to_string(),
        },
    }
}

fn from_client(offsets: BTreeMap<ClientPartition, i64>) -> BTreeMap<TopicPartition, i64> {
    offsets
        .into_iter()
        .map(|(tp, offset)| ((tp.topic, tp.partition), offset))
        .collect()
}

impl ClientAdmin {
    fn err(&self, operation: &'static str) -> impl Fn(strata_client::Error) -> KafkaError + '_ {
        move |e| map_error(operation, &self.bootstrap, e)
    }

    async fn topic_overrides(
        &self,
        admin: &mut Admin,
        topic: &str,
    ) -> Result<BTreeMap<String, String>, KafkaError> {
        // Keys null (not empty): every config of the topic.
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configuration_keys(None),
        ]);
        let cluster = admin.cluster();
        let sent = async { cluster.any_connection().await?.send(&request).await }.await;
        let response = cluster
            .settle(None, sent)
            .map_err(self.err("DescribeConfigs"))?;
        let mut config = BTreeMap::new();
        for result in response.results {
            strata_client::Error::check(
                result.error_code,
                || format!("topic {topic}"),
                result.error_message.as_deref(),
            )
            .map_err(self.err("DescribeConfigs"))?;
            for entry in result.configs {
                if entry.config_source == SOURCE_DYNAMIC_TOPIC_CONFIG
                    && let Some(value) = entry.value
                {
                    config.insert(entry.name.to_string(), value.to_string());
                }
            }
        }
        Ok(config)
    }

    /// Every partition of `topics`, from fresh metadata.
    async fn partitions(
        &self,
        admin: &mut Admin,
        topics: &[String],
    ) -> Result<Vec<ClientPartition>, KafkaError> {
        let metadata = admin
            .cluster()
            .metadata(Some(topics))
            .await
            .map_err(self.err("Metadata"))?;
        Ok(metadata
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| ClientPartition {
                    topic: t.name.clone(),
                    partition: p.partition,
                })
            })
            .collect())
    }
}

impl KafkaAdmin for ClientAdmin {
    async fn describe_topic(&self, name: &str) -> Result<Option<TopicDescription>, KafkaError> {
        let mut admin = self.admin.lock().await;
        let metadata = admin
            .cluster()
            .metadata(Some(&[name.to_string()]))
            .await
            .map_err(self.err("Metadata"))?;
        let Some(topic) = metadata.topics.into_iter().find(|t| t.name == name) else {
            return Ok(None);
        };
        let replication_factor = topic
            .partitions
            .iter()
            .map(|p| p.replicas.len())
            .max()
            .unwrap_or(0);
        Ok(Some(TopicDescription {
            name: name.to_string(),
            topic_id: (!topic.topic_id.is_nil()).then(|| topic_id_string(&topic.topic_id)),
            partitions: i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX),
            replication_factor: i16::try_from(replication_factor).unwrap_or(i16::MAX),
            config: self.topic_overrides(&mut admin, name).await?,
        }))
    }

    async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        config: &BTreeMap<String, String>,
    ) -> Result<Option<String>, KafkaError> {
        let mut admin = self.admin.lock().await;
        let topic = NewTopic {
            name: name.to_string(),
            partitions,
            replication_factor,
            configs: config.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        admin
            .create_topic(&topic, false)
            .await
            .map_err(self.err("CreateTopics"))?;
        let metadata = admin
            .cluster()
            .metadata(Some(&[name.to_string()]))
            .await
            .map_err(self.err("Metadata"))?;
        Ok(metadata
            .topics
            .iter()
            .find(|t| t.name == name && !t.topic_id.is_nil())
            .map(|t| topic_id_string(&t.topic_id)))
    }

    async fn create_partitions(&self, name: &str, total: i32) -> Result<(), KafkaError> {
        let mut admin = self.admin.lock().await;
        admin
            .create_partitions(name, total)
            .await
            .map_err(self.err("CreatePartitions"))
    }

    async fn alter_topic_config(
        &self,
        name: &str,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), KafkaError> {
        let mut admin = self.admin.lock().await;
        admin
            .alter_topic_configs(name, &changes(set, delete))
            .await
            .map_err(self.err("IncrementalAlterConfigs"))
    }

    async fn delete_topic(&self, name: &str) -> Result<(), KafkaError> {
        let mut admin = self.admin.lock().await;
        admin
            .delete_topics(&[name.to_string()])
            .await
            .map_err(self.err("DeleteTopics"))
    }

    async fn describe_group(&self, group_id: &str) -> Result<Option<GroupDescription>, KafkaError> {
        let mut admin = self.admin.lock().await;
        let group = admin
            .describe_group(group_id)
            .await
            .map_err(self.err("DescribeGroups"))?;
        if group.state == STATE_DEAD && group.members.is_empty() {
            return Ok(None);
        }
        Ok(Some(GroupDescription {
            state: group.state,
            members: i32::try_from(group.members.len()).unwrap_or(i32::MAX),
        }))
    }

    async fn committed_offsets(
        &self,
        group_id: &str,
    ) -> Result<BTreeMap<TopicPartition, i64>, KafkaError> {
        let mut admin = self.admin.lock().await;
        Ok(from_client(
            admin
                .committed_offsets(group_id)
                .await
                .map_err(self.err("OffsetFetch"))?,
        ))
    }

    async fn list_offsets(
        &self,
        topics: &[String],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, i64>, KafkaError> {
        let mut admin = self.admin.lock().await;
        let partitions = self.partitions(&mut admin, topics).await?;
        let offsets =
            match spec {
                OffsetSpec::Earliest => admin.log_start_offsets(&partitions).await,
                OffsetSpec::Latest => admin.log_end_offsets(&partitions).await,
                OffsetSpec::Timestamp(ts) => admin
                    .offsets_for_timestamp(&partitions, ts)
                    .await
                    .map(|found| {
                        found
                            .into_iter()
                            .map(|(tp, offset)| (tp, offset.unwrap_or(-1)))
                            .collect()
                    }),
            };
        Ok(from_client(offsets.map_err(self.err("ListOffsets"))?))
    }

    async fn commit_offsets(
        &self,
        group_id: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), KafkaError> {
        let offsets: BTreeMap<ClientPartition, i64> = offsets
            .iter()
            .map(|((topic, partition), &offset)| {
                (
                    ClientPartition {
                        topic: topic.clone(),
                        partition: *partition,
                    },
                    offset,
                )
            })
            .collect();
        let mut admin = self.admin.lock().await;
        admin
            .alter_group_offsets(group_id, &offsets)
            .await
            .map_err(self.err("OffsetCommit"))
    }
}

fn changes(set: &BTreeMap<String, String>, delete: &[String]) -> Vec<AlterConfig> {
    set.iter()
        .map(|(k, v)| AlterConfig::Set(k.clone(), v.clone()))
        .chain(delete.iter().map(|k| AlterConfig::Delete(k.clone())))
        .collect()
}

impl ReplicaAdmin for ClientAdmin {
    async fn cluster_layout(&self) -> Result<ClusterLayout, KafkaError> {
        let mut admin = self.admin.lock().await;
        let metadata = admin
            .cluster()
            .metadata(None)
            .await
            .map_err(self.err("Metadata"))?;
        let mut layout = ClusterLayout {
            brokers: metadata
                .brokers
                .iter()
                .map(|b| (b.node_id, b.rack.clone()))
                .collect(),
            ..ClusterLayout::default()
        };
        for topic in &metadata.topics {
            let partitions = layout.assignment.entry(topic.name.clone()).or_default();
            for p in &topic.partitions {
                partitions.insert(p.partition, p.replicas.clone());
                if p.leader >= 0 {
                    layout
                        .leaders
                        .insert((topic.name.clone(), p.partition), p.leader);
                }
            }
        }
        Ok(layout)
    }

    async fn ongoing_reassignments(&self) -> Result<BTreeSet<TopicPartition>, KafkaError> {
        let mut admin = self.admin.lock().await;
        Ok(admin
            .list_partition_reassignments()
            .await
            .map_err(self.err("ListPartitionReassignments"))?
            .into_keys()
            .collect())
    }

    async fn reassign_partitions(
        &self,
        targets: &BTreeMap<TopicPartition, Vec<i32>>,
    ) -> Result<(), KafkaError> {
        let targets = targets
            .iter()
            .map(|(tp, replicas)| (tp.clone(), Some(replicas.clone())))
            .collect();
        let mut admin = self.admin.lock().await;
        admin
            .alter_partition_reassignments(&targets)
            .await
            .map_err(self.err("AlterPartitionReassignments"))
    }

    async fn elect_preferred_leaders(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<(), KafkaError> {
        let mut admin = self.admin.lock().await;
        admin
            .elect_preferred_leaders(partitions)
            .await
            .map_err(self.err("ElectLeaders"))
    }

    async fn partition_states(&self) -> Result<PartitionStates, KafkaError> {
        let mut admin = self.admin.lock().await;
        let metadata = admin
            .cluster()
            .metadata(None)
            .await
            .map_err(self.err("Metadata"))?;
        let topics: Vec<String> = metadata.topics.iter().map(|t| t.name.clone()).collect();
        let min_isr = admin
            .topics_config_value(&topics, "min.insync.replicas")
            .await
            .map_err(self.err("DescribeConfigs"))?;
        let mut states = PartitionStates {
            controller: (metadata.controller_id >= 0).then_some(metadata.controller_id),
            partitions: BTreeMap::new(),
        };
        for topic in &metadata.topics {
            // Kafka's default when a broker does not say.
            let min = min_isr
                .get(&topic.name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            for p in &topic.partitions {
                states.partitions.insert(
                    (topic.name.clone(), p.partition),
                    PartitionState {
                        replicas: p.replicas.clone(),
                        isr: p.isr.clone(),
                        leader: (p.leader >= 0).then_some(p.leader),
                        min_insync_replicas: min,
                    },
                );
            }
        }
        Ok(states)
    }

    async fn alter_broker_default_config(
        &self,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), KafkaError> {
        let mut admin = self.admin.lock().await;
        admin
            .alter_broker_configs(None, &changes(set, delete))
            .await
            .map_err(self.err("IncrementalAlterConfigs"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_errors_keep_kafka_names_and_the_rest_is_unreachable() {
        let kafka = strata_client::Error::Kafka {
            code: strata_client::ResponseError::TopicAlreadyExists,
            context: "topic orders".into(),
            message: Some("exists".into()),
        };
        assert_eq!(
            map_error("CreateTopics", "b:9092", kafka).to_string(),
            "CreateTopics: TOPIC_ALREADY_EXISTS (exists)"
        );
        let down = map_error(
            "connect",
            "b:9092",
            strata_client::Error::NoBootstrapServers,
        );
        assert!(
            matches!(down, KafkaError::Unreachable { ref bootstrap, .. } if bootstrap == "b:9092"),
            "{down}"
        );
    }

    #[tokio::test]
    async fn unreachable_bootstrap_names_the_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = ClientConnector::default()
            .connect(&addr)
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&err, KafkaError::Unreachable { bootstrap, .. } if *bootstrap == addr),
            "{err}"
        );
    }
}
