//! Topic and cluster administration, what `kafka-topics.sh` and `kafka-configs.sh` do.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest, ElectLeadersRequest,
    IncrementalAlterConfigsRequest, ListPartitionReassignmentsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{BrokerMetadata, ClientConfig, Cluster, TopicMetadata};
use crate::error::{Error, Result};

/// Kafka's `ConfigResource.Type.TOPIC`.
const RESOURCE_TOPIC: i8 = 2;
/// Kafka's `ConfigResource.Type.BROKER`.
const RESOURCE_BROKER: i8 = 4;
/// Kafka's `ElectionType.PREFERRED`.
const ELECTION_PREFERRED: i8 = 0;
/// Kafka's `ConfigEntry.ConfigSource.DEFAULT_CONFIG`: the built-in default.
const SOURCE_DEFAULT: i8 = 5;
/// How long the controller may take to create or delete topics.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partition count; -1 takes the broker's `num.partitions`.
    pub partitions: i32,
    /// Replication factor; -1 takes the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic configs, e.g. `cleanup.policy=compact`.
    pub configs: Vec<(String, String)>,
}

/// One topic config entry as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config name.
    pub name: String,
    /// Value; `None` for sensitive entries.
    pub value: Option<String>,
    /// Whether the value is Kafka's built-in default rather than set somewhere.
    pub is_default: bool,
    /// Whether the value is hidden (passwords).
    pub is_sensitive: bool,
    /// Whether the entry cannot be changed.
    pub read_only: bool,
}

/// A topic with its partitions and configs, what `kafka-topics --describe` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Partitions, leaders, replicas, ISR, topic id.
    pub metadata: TopicMetadata,
    /// Every config entry of the topic.
    pub configs: Vec<ConfigEntry>,
}

/// A change to one topic config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfig {
    /// Set `name` to `value`.
    Set(String, String),
    /// Remove the topic-level override of `name`.
    Delete(String),
}

/// A partition reassignment in progress, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    /// The full replica set while it runs (target and leaving replicas).
    pub replicas: Vec<i32>,
    /// Replicas being added (catching up).
    pub adding: Vec<i32>,
    /// Replicas that leave once the added ones are in sync.
    pub removing: Vec<i32>,
}

/// A partition, `(topic, partition)`, as the admin calls take and report them.
pub type Partition = (String, i32);

/// The cluster as DescribeCluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Controller node id, if known.
    pub controller_id: Option<i32>,
    /// Brokers, by node id.
    pub brokers: Vec<BrokerMetadata>,
}

/// An admin client.
#[derive(Debug)]
pub struct Admin {
    cluster: Cluster,
}

impl Admin {
    /// Connects to the cluster.
    pub async fn connect(config: ClientConfig) -> Result<Self> {
        Ok(Admin {
            cluster: Cluster::connect(config).await?,
        })
    }

    /// The underlying cluster connection (metadata, raw requests).
    pub fn cluster(&mut self) -> &mut Cluster {
        &mut self.cluster
    }

    /// Creates a topic. With `validate_only` the controller checks the request and
    /// creates nothing.
    pub async fn create_topic(&mut self, topic: &NewTopic, validate_only: bool) -> Result<()> {
        let configs = topic
            .configs
            .iter()
            .map(|(name, value)| {
                CreatableTopicConfig::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_value(Some(StrBytes::from_string(value.clone())))
            })
            .collect();
        let request = CreateTopicsRequest::default()
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(topic_name(&topic.name))
                    .with_num_partitions(topic.partitions)
                    .with_replication_factor(topic.replication_factor)
                    .with_configs(configs),
            ])
            .with_timeout_ms(ADMIN_TIMEOUT_MS)
            .with_validate_only(validate_only);
        let node = self.cluster.controller_id();
        let result = async { self.cluster.controller().await?.send(&request).await }.await;
        let response = self.cluster.settle(node, result)?;
        for result in &response.topics {
            Error::check(
                result.error_code,
                || format!("create topic {}", result.name.0),
                result.error_message.as_deref(),
            )?;
        }
        self.cluster.invalidate(&topic.name);
        Ok(())
    }

    /// Deletes topics by name.
    pub async fn delete_topics(&mut self, names: &[String]) -> Result<()> {
        let node = self.cluster.controller_id();
        let result = async {
            let conn = self.cluster.controller().await?;
            let version = conn.version::<DeleteTopicsRequest>()?;
            let mut request = DeleteTopicsRequest::default().with_timeout_ms(ADMIN_TIMEOUT_MS);
            // v6 names topics by (name, id) pairs, older versions by name only.
            if version >= 6 {
                request.topics = names
                    .iter()
                    .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                    .collect();
            } else {
                request.topic_names = names.iter().map(|n| topic_name(n)).collect();
            }
            conn.send_at(&request, version).await
        }
        .await;
        let response = self.cluster.settle(node, result)?;
        for result in &response.responses {
            let name = result
                .name
                .as_ref()
                .map(|n| n.0.to_string())
                .unwrap_or_default();
            Error::check(
                result.error_code,
                || format!("delete topic {name}"),
                result.error_message.as_deref(),
            )?;
        }
        for name in names {
            self.cluster.invalidate(name);
        }
        Ok(())
    }

    /// Names of all topics, sorted; internal topics only with `include_internal`.
    pub async fn list_topics(&mut self, include_internal: bool) -> Result<Vec<String>> {
        let metadata = self.cluster.metadata(None).await?;
        Ok(metadata
            .topics
            .into_iter()
            .filter(|t| include_internal || !t.is_internal)
            .map(|t| t.name)
            .collect())
    }

    /// Describes the given topics, or every topic when `names` is `None`. A named topic
    /// that does not exist is an UNKNOWN_TOPIC_OR_PARTITION error.
    pub async fn describe_topics(
        &mut self,
        names: Option<&[String]>,
    ) -> Result<Vec<TopicDescription>> {
        let metadata = self.cluster.metadata(names).await?;
        if let Some(names) = names {
            for name in names {
                if !metadata.topics.iter().any(|t| &t.name == name) {
                    return Err(Error::Kafka {
                        code: kafka_protocol::ResponseError::UnknownTopicOrPartition,
                        context: format!("topic {name}"),
                        message: Some("topic does not exist".to_owned()),
                    });
                }
            }
        }
        let mut descriptions = Vec::with_capacity(metadata.topics.len());
        for topic in metadata.topics {
            let configs = self.describe_topic_configs(&topic.name).await?;
            descriptions.push(TopicDescription {
                metadata: topic,
                configs,
            });
        }
        Ok(descriptions)
    }

    /// Every config entry of a topic (DescribeConfigs).
    pub async fn describe_topic_configs(&mut self, topic: &str) -> Result<Vec<ConfigEntry>> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(StrBytes::from_string(topic.to_owned()))
                .with_configuration_keys(None),
        ]);
        let result = async { self.cluster.any_connection().await?.send(&request).await }.await;
        let response = self.cluster.settle(None, result)?;
        let mut entries = Vec::new();
        for result in response.results {
            Error::check(
                result.error_code,
                || format!("describe configs of topic {topic}"),
                result.error_message.as_deref(),
            )?;
            entries.extend(result.configs.into_iter().map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                is_default: c.config_source == SOURCE_DEFAULT,
                is_sensitive: c.is_sensitive,
                read_only: c.read_only,
            }));
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// One config's effective value for each of `topics` (a single DescribeConfigs):
    /// the topic's override or the broker default it falls back to.
    pub async fn topics_config_value(
        &mut self,
        topics: &[String],
        key: &str,
    ) -> Result<BTreeMap<String, String>> {
        if topics.is_empty() {
            return Ok(BTreeMap::new());
        }
        let request = DescribeConfigsRequest::default().with_resources(
            topics
                .iter()
                .map(|topic| {
                    DescribeConfigsResource::default()
                        .with_resource_type(RESOURCE_TOPIC)
                        .with_resource_name(StrBytes::from_string(topic.clone()))
                        .with_configuration_keys(Some(vec![StrBytes::from_string(key.to_owned())]))
                })
                .collect(),
        );
        let result = async { self.cluster.any_connection().await?.send(&request).await }.await;
        let response = self.cluster.settle(None, result)?;
        let mut values = BTreeMap::new();
        for result in response.results {
            let topic = result.resource_name.to_string();
            Error::check(
                result.error_code,
                || format!("describe configs of topic {topic}"),
                result.error_message.as_deref(),
            )?;
            if let Some(value) = result
                .configs
                .into_iter()
                .find(|c| c.name.as_str() == key)
                .and_then(|c| c.value)
            {
                values.insert(topic, value.to_string());
            }
        }
        Ok(values)
    }

    /// Grows a topic to `total_partitions` partitions (Kafka cannot shrink one).
    pub async fn create_partitions(&mut self, topic: &str, total_partitions: i32) -> Result<()> {
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(topic_name(topic))
                    .with_count(total_partitions)
                    .with_assignments(None),
            ])
            .with_timeout_ms(ADMIN_TIMEOUT_MS);
        let node = self.cluster.controller_id();
        let result = async { self.cluster.controller().await?.send(&request).await }.await;
        let response = self.cluster.settle(node, result)?;
        for result in &response.results {
            Error::check(
                result.error_code,
                || format!("create partitions for topic {topic}"),
                result.error_message.as_deref(),
            )?;
        }
        self.cluster.invalidate(topic);
        Ok(())
    }

    /// Sets and deletes topic configs (IncrementalAlterConfigs).
    pub async fn alter_topic_configs(
        &mut self,
        topic: &str,
        changes: &[AlterConfig],
    ) -> Result<()> {
        self.alter_configs(RESOURCE_TOPIC, topic, changes).await
    }

    /// Sets and deletes dynamic broker configs (IncrementalAlterConfigs on a BROKER
    /// resource): of one broker, or the cluster-wide default with `None` — what
    /// `kafka-configs --entity-type brokers [--entity-name N | --entity-default]` does.
    pub async fn alter_broker_configs(
        &mut self,
        broker: Option<i32>,
        changes: &[AlterConfig],
    ) -> Result<()> {
        let name = broker.map(|b| b.to_string()).unwrap_or_default();
        self.alter_configs(RESOURCE_BROKER, &name, changes).await
    }

    async fn alter_configs(
        &mut self,
        resource_type: i8,
        resource: &str,
        changes: &[AlterConfig],
    ) -> Result<()> {
        const SET: i8 = 0;
        const DELETE: i8 = 1;
        let configs = changes
            .iter()
            .map(|change| match change {
                AlterConfig::Set(name, value) => AlterableConfig::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_config_operation(SET)
                    .with_value(Some(StrBytes::from_string(value.clone()))),
                AlterConfig::Delete(name) => AlterableConfig::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_config_operation(DELETE)
                    .with_value(None),
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(resource.to_owned()))
                .with_configs(configs),
        ]);
        let node = self.cluster.controller_id();
        let result = async { self.cluster.controller().await?.send(&request).await }.await;
        let response = self.cluster.settle(node, result)?;
        let what = match resource_type {
            RESOURCE_TOPIC => format!("topic {resource}"),
            _ if resource.is_empty() => "the brokers' default".to_owned(),
            _ => format!("broker {resource}"),
        };
        for result in &response.responses {
            Error::check(
                result.error_code,
                || format!("alter configs of {what}"),
                result.error_message.as_deref(),
            )?;
        }
        Ok(())
    }

    /// Starts (`Some(replicas)`) or cancels (`None`) partition reassignments
    /// (AlterPartitionReassignments, KIP-455). The first failing partition's error is
    /// returned; the others were still submitted.
    pub async fn alter_partition_reassignments(
        &mut self,
        targets: &BTreeMap<Partition, Option<Vec<i32>>>,
    ) -> Result<()> {
        let topics = by_topic(targets.iter().map(|((topic, partition), replicas)| {
            let partition = ReassignablePartition::default()
                .with_partition_index(*partition)
                .with_replicas(
                    replicas
                        .as_ref()
                        .map(|r| r.iter().map(|&b| BrokerId(b)).collect()),
                );
            (topic.as_str(), partition)
        }));
        let request = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(ADMIN_TIMEOUT_MS)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        ReassignableTopic::default()
                            .with_name(topic_name(topic))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let node = self.cluster.controller_id();
        let result = async { self.cluster.controller().await?.send(&request).await }.await;
        let response = self.cluster.settle(node, result)?;
        Error::check(
            response.error_code,
            || "alter partition reassignments".to_owned(),
            response.error_message.as_deref(),
        )?;
        for topic in &response.responses {
            for p in &topic.partitions {
                Error::check(
                    p.error_code,
                    || format!("reassign partition {}-{}", topic.name.0, p.partition_index),
                    p.error_message.as_deref(),
                )?;
            }
        }
        Ok(())
    }

    /// Every partition reassignment in progress (ListPartitionReassignments).
    pub async fn list_partition_reassignments(
        &mut self,
    ) -> Result<BTreeMap<Partition, OngoingReassignment>> {
        let request = ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(ADMIN_TIMEOUT_MS)
            .with_topics(None);
        let node = self.cluster.controller_id();
        let result = async { self.cluster.controller().await?.send(&request).await }.await;
        let response = self.cluster.settle(node, result)?;
        Error::check(
            response.error_code,
            || "list partition reassignments".to_owned(),
            response.error_message.as_deref(),
        )?;
        let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
        let mut ongoing = BTreeMap::new();
        for topic in response.topics {
            for p in topic.partitions {
                ongoing.insert(
                    (topic.name.0.to_string(), p.partition_index),
                    OngoingReassignment {
                        replicas: ids(&p.replicas),
                        adding: ids(&p.adding_replicas),
                        removing: ids(&p.removing_replicas),
                    },
                );
            }
        }
        Ok(ongoing)
    }

    /// Preferred leader election (ElectLeaders, KIP-460) for these partitions. A partition
    /// already led by its preferred replica is not an error (ELECTION_NOT_NEEDED); one
    /// whose preferred replica is not in sync is (PREFERRED_LEADER_NOT_AVAILABLE) and is
    /// returned after the others were tried.
    pub async fn elect_preferred_leaders(&mut self, partitions: &[Partition]) -> Result<()> {
        if partitions.is_empty() {
            return Ok(());
        }
        let topics = by_topic(partitions.iter().map(|(t, p)| (t.as_str(), *p)));
        let request = ElectLeadersRequest::default()
            .with_election_type(ELECTION_PREFERRED)
            .with_timeout_ms(ADMIN_TIMEOUT_MS)
            .with_topic_partitions(Some(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        TopicPartitions::default()
                            .with_topic(topic_name(topic))
                            .with_partitions(partitions)
                    })
                    .collect(),
            ));
        let node = self.cluster.controller_id();
        let result = async { self.cluster.controller().await?.send(&request).await }.await;
        let response = self.cluster.settle(node, result)?;
        Error::check(response.error_code, || "elect leaders".to_owned(), None)?;
        let mut first_error = None;
        for topic in &response.replica_election_results {
            for p in &topic.partition_result {
                if p.error_code == ResponseError::ElectionNotNeeded.code() {
                    continue;
                }
                let checked = Error::check(
                    p.error_code,
                    || {
                        format!(
                            "elect the preferred leader of {}-{}",
                            topic.topic.0, p.partition_id
                        )
                    },
                    p.error_message.as_deref(),
                );
                if let Err(e) = checked {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Cluster id, controller and brokers: DescribeCluster where the broker speaks it,
    /// Metadata otherwise.
    pub async fn describe_cluster(&mut self) -> Result<ClusterDescription> {
        let supported = {
            let conn = self.cluster.any_connection().await?;
            conn.version::<DescribeClusterRequest>().ok()
        };
        let Some(version) = supported else {
            let metadata = self.cluster.metadata(Some(&[])).await?;
            return Ok(ClusterDescription {
                cluster_id: metadata.cluster_id,
                controller_id: (metadata.controller_id >= 0).then_some(metadata.controller_id),
                brokers: metadata.brokers,
            });
        };
        let request = DescribeClusterRequest::default();
        let result = async {
            self.cluster
                .any_connection()
                .await?
                .send_at(&request, version)
                .await
        }
        .await;
        let response = self.cluster.settle(None, result)?;
        Error::check(
            response.error_code,
            || "describe cluster".to_owned(),
            response.error_message.as_deref(),
        )?;
        let mut brokers: Vec<BrokerMetadata> = response
            .brokers
            .into_iter()
            .map(|b| BrokerMetadata {
                node_id: b.broker_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
            })
            .collect();
        brokers.sort_by_key(|b| b.node_id);
        Ok(ClusterDescription {
            cluster_id: Some(response.cluster_id.to_string()),
            controller_id: (response.controller_id.0 >= 0).then_some(response.controller_id.0),
            brokers,
        })
    }
}

/// Items grouped by topic, topics in name order, items in the order given.
fn by_topic<'a, T>(items: impl Iterator<Item = (&'a str, T)>) -> BTreeMap<&'a str, Vec<T>> {
    let mut topics: BTreeMap<&str, Vec<T>> = BTreeMap::new();
    for (topic, item) in items {
        topics.entry(topic).or_default().push(item);
    }
    topics
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}
