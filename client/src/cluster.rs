//! Bootstrapping, cluster metadata and one connection per broker.
//!
//! A client starts from any bootstrap server, asks it for Metadata to learn the brokers
//! and the leader of every partition, and from then on sends partition requests to the
//! leader's own connection. Admin requests that change the cluster go to the controller.

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    FindCoordinatorRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;
use uuid::Uuid;

use crate::connection::{Connection, ConnectionConfig};

/// FindCoordinator's `key_type` for a consumer group (1 would be a transaction).
const COORDINATOR_KEY_GROUP: i8 = 0;
/// FindCoordinator v4 (KIP-699) asks for several keys at once and answers per key.
const FIRST_BATCHED_FIND_COORDINATOR_VERSION: i16 = 4;
use crate::error::{Error, Result};

/// Where to start and how to talk.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` entries; any one that answers is enough.
    pub bootstrap_servers: Vec<String>,
    /// Client id and deadlines shared by every connection.
    pub connection: ConnectionConfig,
}

impl ClientConfig {
    /// Config for a comma-separated bootstrap list, like Kafka's `bootstrap.servers`.
    pub fn new(bootstrap_servers: &str) -> Self {
        ClientConfig {
            bootstrap_servers: bootstrap_servers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            connection: ConnectionConfig::default(),
        }
    }
}

/// A broker as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMetadata {
    /// `node.id`.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
}

impl BrokerMetadata {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Partition index.
    pub partition: i32,
    /// Leader's node id, -1 while there is none.
    pub leader: i32,
    /// Leader epoch, -1 when the broker does not say.
    pub leader_epoch: i32,
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas on offline brokers.
    pub offline_replicas: Vec<i32>,
    /// Per-partition error, e.g. LEADER_NOT_AVAILABLE during an election.
    pub error: Option<ResponseError>,
}

/// A topic and its partitions, sorted by partition index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// Topic id (nil when the broker predates topic ids).
    pub topic_id: Uuid,
    /// Whether Kafka manages the topic itself (`__consumer_offsets`).
    pub is_internal: bool,
    /// Partitions, index order.
    pub partitions: Vec<PartitionMetadata>,
}

/// A Metadata response in plain types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// Cluster id, when the broker reports one.
    pub cluster_id: Option<String>,
    /// Node id of the controller, -1 if unknown.
    pub controller_id: i32,
    /// Live brokers, by node id.
    pub brokers: Vec<BrokerMetadata>,
    /// Requested topics that exist.
    pub topics: Vec<TopicMetadata>,
}

/// Metadata cache plus one connection per broker.
#[derive(Debug)]
pub struct Cluster {
    config: ClientConfig,
    /// The connection used before (and besides) broker connections: the first bootstrap
    /// server that answered.
    bootstrap: Option<Connection>,
    /// Known brokers by node id, from the latest Metadata.
    brokers: HashMap<i32, BrokerMetadata>,
    /// Open connections by node id.
    connections: HashMap<i32, Connection>,
    controller_id: i32,
    /// Topics seen in Metadata responses, by name.
    topics: HashMap<String, TopicMetadata>,
}

impl Cluster {
    /// Connects to the first bootstrap server that answers and loads the broker list.
    pub async fn connect(config: ClientConfig) -> Result<Self> {
        if config.bootstrap_servers.is_empty() {
            return Err(Error::NoBootstrapServers);
        }
        let mut last_error = None;
        let mut bootstrap = None;
        for addr in &config.bootstrap_servers {
            match Connection::connect(addr, &config.connection).await {
                Ok(conn) => {
                    bootstrap = Some(conn);
                    break;
                }
                Err(err) => {
                    tracing::debug!(%addr, %err, "bootstrap server unreachable");
                    last_error = Some(err);
                }
            }
        }
        let Some(bootstrap) = bootstrap else {
            return Err(last_error.unwrap_or(Error::NoBootstrapServers));
        };
        let mut cluster = Cluster {
            config,
            bootstrap: Some(bootstrap),
            brokers: HashMap::new(),
            connections: HashMap::new(),
            controller_id: -1,
            topics: HashMap::new(),
        };
        cluster.metadata(Some(&[])).await?;
        Ok(cluster)
    }

    /// The client configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Fetches Metadata for `topics` (`None`: every topic) and refreshes the cache.
    /// Topics that do not exist are left out of the result.
    pub async fn metadata(&mut self, topics: Option<&[String]>) -> Result<ClusterMetadata> {
        let conn = self.any_connection().await?;
        let version = conn.version::<MetadataRequest>()?;
        let request_topics = match topics {
            // v0 has no null list: an empty list means "all topics".
            None if version == 0 => Some(vec![]),
            None => None,
            Some(names) => Some(
                names
                    .iter()
                    .map(|name| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                    })
                    .collect(),
            ),
        };
        let request = MetadataRequest::default()
            .with_topics(request_topics)
            .with_allow_auto_topic_creation(false);
        let response = conn.send_at(&request, version).await;
        let response = self.settle(None, response)?;
        let metadata = metadata_from_response(response)?;
        self.brokers = metadata
            .brokers
            .iter()
            .map(|b| (b.node_id, b.clone()))
            .collect();
        self.controller_id = metadata.controller_id;
        if let Some(names) = topics {
            for name in names {
                self.topics.remove(name);
            }
        }
        for topic in &metadata.topics {
            self.topics.insert(topic.name.clone(), topic.clone());
        }
        Ok(metadata)
    }

    /// Cached metadata of `topic`, fetching it if it has not been seen yet.
    pub async fn topic(&mut self, topic: &str) -> Result<&TopicMetadata> {
        if !self.topics.contains_key(topic) {
            self.metadata(Some(&[topic.to_owned()])).await?;
        }
        self.topics.get(topic).ok_or_else(|| Error::Kafka {
            code: ResponseError::UnknownTopicOrPartition,
            context: format!("topic {topic}"),
            message: Some("topic does not exist".to_owned()),
        })
    }

    /// Metadata of `topic`, asking again with backoff for up to `max_wait` while the
    /// cluster does not know it or it has no partitions yet: a topic just created may
    /// take a moment to reach every broker's metadata cache (the Java clients wait
    /// `max.block.ms` for the same reason).
    pub async fn wait_for_topic(
        &mut self,
        topic: &str,
        max_wait: Duration,
    ) -> Result<&TopicMetadata> {
        let deadline = Instant::now() + max_wait;
        let mut backoff = Duration::from_millis(50);
        loop {
            if self
                .topics
                .get(topic)
                .is_some_and(|t| !t.partitions.is_empty())
            {
                break;
            }
            match self.metadata(Some(&[topic.to_owned()])).await {
                Ok(_) => {
                    if self
                        .topics
                        .get(topic)
                        .is_some_and(|t| !t.partitions.is_empty())
                    {
                        break;
                    }
                }
                Err(err) if err.is_retriable() => {
                    tracing::debug!(%topic, %err, "metadata not ready")
                }
                Err(err) => return Err(err),
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep(backoff.min(deadline - now)).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
        self.topics.get(topic).ok_or_else(|| Error::Kafka {
            code: ResponseError::UnknownTopicOrPartition,
            context: format!("topic {topic}"),
            message: Some("topic does not exist".to_owned()),
        })
    }

    /// Cached metadata of `topic`, without asking the broker.
    pub fn cached_topic(&self, topic: &str) -> Option<&TopicMetadata> {
        self.topics.get(topic)
    }

    /// Forgets `topic` so the next use refetches it (after NOT_LEADER_OR_FOLLOWER and
    /// the like).
    pub fn invalidate(&mut self, topic: &str) {
        self.topics.remove(topic);
    }

    /// Node id of the current leader of a partition.
    pub async fn leader(&mut self, topic: &str, partition: i32) -> Result<i32> {
        let metadata = self.topic(topic).await?;
        let found = metadata
            .partitions
            .iter()
            .find(|p| p.partition == partition);
        match found {
            None => Err(Error::Kafka {
                code: ResponseError::UnknownTopicOrPartition,
                context: format!("{topic}-{partition}"),
                message: Some(format!(
                    "topic has {} partitions",
                    metadata.partitions.len()
                )),
            }),
            Some(p) if p.leader < 0 => Err(Error::Kafka {
                code: p.error.unwrap_or(ResponseError::LeaderNotAvailable),
                context: format!("{topic}-{partition}"),
                message: None,
            }),
            Some(p) => Ok(p.leader),
        }
    }

    /// Node id of the coordinator of consumer group `group` (FindCoordinator). The
    /// coordinator is added to the known brokers, so [`Cluster::broker`] reaches it.
    /// COORDINATOR_NOT_AVAILABLE while `__consumer_offsets` is still being set up is
    /// returned as is; it is retriable.
    pub async fn find_coordinator(&mut self, group: &str) -> Result<i32> {
        let conn = self.any_connection().await?;
        let version = conn.version::<FindCoordinatorRequest>()?;
        let key = StrBytes::from_string(group.to_owned());
        let mut request = FindCoordinatorRequest::default().with_key_type(COORDINATOR_KEY_GROUP);
        if version >= FIRST_BATCHED_FIND_COORDINATOR_VERSION {
            request.coordinator_keys = vec![key];
        } else {
            request.key = key;
        }
        let result = conn.send_at(&request, version).await;
        let response = self.settle(None, result)?;
        let context = || format!("find coordinator of group {group}");
        let coordinator = if version >= FIRST_BATCHED_FIND_COORDINATOR_VERSION {
            let Some(c) = response.coordinators.into_iter().next() else {
                return Err(Error::Invalid(format!(
                    "{}: empty FindCoordinator response",
                    context()
                )));
            };
            Error::check(c.error_code, context, c.error_message.as_deref())?;
            BrokerMetadata {
                node_id: c.node_id.0,
                host: c.host.to_string(),
                port: c.port,
                rack: None,
            }
        } else {
            Error::check(
                response.error_code,
                context,
                response.error_message.as_deref(),
            )?;
            BrokerMetadata {
                node_id: response.node_id.0,
                host: response.host.to_string(),
                port: response.port,
                rack: None,
            }
        };
        let node_id = coordinator.node_id;
        self.brokers.entry(node_id).or_insert(coordinator);
        Ok(node_id)
    }

    /// Node ids of every known broker (ListGroups asks each one for its groups).
    pub fn broker_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.brokers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// `host:port` of broker `node_id`, if known.
    pub fn broker_addr(&self, node_id: i32) -> Option<String> {
        self.brokers.get(&node_id).map(BrokerMetadata::addr)
    }

    /// The controller's node id, if known.
    pub fn controller_id(&self) -> Option<i32> {
        (self.controller_id >= 0).then_some(self.controller_id)
    }

    /// A connection to broker `node_id`, opened on first use and reopened after a
    /// failure.
    pub async fn broker(&mut self, node_id: i32) -> Result<&mut Connection> {
        let usable = self
            .connections
            .get(&node_id)
            .is_some_and(|c| !c.is_broken());
        if !usable {
            let broker = self.brokers.get(&node_id).ok_or_else(|| {
                Error::Invalid(format!("broker {node_id} is not in the cluster metadata"))
            })?;
            let conn = Connection::connect(&broker.addr(), &self.config.connection).await?;
            self.connections.insert(node_id, conn);
        }
        Ok(self.connections.get_mut(&node_id).expect("inserted above"))
    }

    /// Takes broker `node_id`'s connection out of the pool (opening it if needed), so
    /// a request can run on it in its own task; give it back with
    /// [`Cluster::restore_broker`].
    pub async fn take_broker(&mut self, node_id: i32) -> Result<Connection> {
        self.broker(node_id).await?;
        Ok(self
            .connections
            .remove(&node_id)
            .expect("opened by broker()"))
    }

    /// Returns a connection taken with [`Cluster::take_broker`]; a broken one is
    /// dropped and the next use reconnects.
    pub fn restore_broker(&mut self, node_id: i32, conn: Connection) {
        if !conn.is_broken() {
            self.connections.insert(node_id, conn);
        }
    }

    /// A connection to the controller, or to any broker when the controller is unknown
    /// (KRaft brokers forward admin requests to the controller themselves).
    pub async fn controller(&mut self) -> Result<&mut Connection> {
        match self.controller_id() {
            Some(id) if self.brokers.contains_key(&id) => self.broker(id).await,
            _ => self.any_connection().await,
        }
    }

    /// Any working connection: the bootstrap one, another open one, or a new one to a
    /// bootstrap server.
    pub async fn any_connection(&mut self) -> Result<&mut Connection> {
        if self.bootstrap.as_ref().is_some_and(|c| !c.is_broken()) {
            return Ok(self.bootstrap.as_mut().expect("checked above"));
        }
        if let Some(id) = self
            .connections
            .iter()
            .find(|(_, c)| !c.is_broken())
            .map(|(id, _)| *id)
        {
            return Ok(self.connections.get_mut(&id).expect("found above"));
        }
        let mut last_error = Error::NoBootstrapServers;
        let addrs: Vec<String> = self
            .config
            .bootstrap_servers
            .iter()
            .cloned()
            .chain(self.brokers.values().map(BrokerMetadata::addr))
            .collect();
        for addr in addrs {
            match Connection::connect(&addr, &self.config.connection).await {
                Ok(conn) => {
                    self.bootstrap = Some(conn);
                    return Ok(self.bootstrap.as_mut().expect("set above"));
                }
                Err(err) => last_error = err,
            }
        }
        Err(last_error)
    }

    /// Passes a result through, dropping the connection of `node_id` (or the bootstrap
    /// connection) if it broke so the next call reconnects.
    pub fn settle<T>(&mut self, node_id: Option<i32>, result: Result<T>) -> Result<T> {
        if result.is_err() {
            match node_id {
                Some(id) => {
                    if self.connections.get(&id).is_some_and(Connection::is_broken) {
                        self.connections.remove(&id);
                    }
                }
                None => {
                    if self.bootstrap.as_ref().is_some_and(Connection::is_broken) {
                        self.bootstrap = None;
                    }
                }
            }
        }
        result
    }
}

fn metadata_from_response(response: MetadataResponse) -> Result<ClusterMetadata> {
    Error::check(response.error_code, || "Metadata".to_owned(), None)?;
    let mut brokers: Vec<BrokerMetadata> = response
        .brokers
        .into_iter()
        .map(|b| BrokerMetadata {
            node_id: b.node_id.0,
            host: b.host.to_string(),
            port: b.port,
            rack: b.rack.map(|r| r.to_string()),
        })
        .collect();
    brokers.sort_by_key(|b| b.node_id);
    let mut topics = Vec::new();
    for topic in response.topics {
        let name = topic.name.map(|n| n.0.to_string()).unwrap_or_default();
        match ResponseError::try_from_code(topic.error_code) {
            None => {}
            // Missing topics are simply absent; callers decide whether that is an error.
            Some(ResponseError::UnknownTopicOrPartition)
            | Some(ResponseError::InvalidTopicException) => continue,
            Some(code) => {
                return Err(Error::Kafka {
                    code,
                    context: format!("topic {name}"),
                    message: None,
                });
            }
        }
        let mut partitions: Vec<PartitionMetadata> = topic
            .partitions
            .into_iter()
            .map(|p| PartitionMetadata {
                partition: p.partition_index,
                leader: p.leader_id.0,
                leader_epoch: p.leader_epoch,
                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
                error: ResponseError::try_from_code(p.error_code),
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        topics.push(TopicMetadata {
            name,
            topic_id: topic.topic_id,
            is_internal: topic.is_internal,
            partitions,
        });
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ClusterMetadata {
        cluster_id: response.cluster_id.map(|c| c.to_string()),
        controller_id: response.controller_id.0,
        brokers,
        topics,
    })
}

/// Kafka's textual topic id: URL-safe base64 of the 16 bytes without padding, as
/// `kafka-topics --describe` prints it (`TopicId: Q9oogwxkRz68r6T-8coFeA`).
pub fn topic_id_string(id: &Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0_u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_list_is_comma_separated() {
        let config = ClientConfig::new("a:1, b:2,,c:3");
        assert_eq!(config.bootstrap_servers, ["a:1", "b:2", "c:3"]);
    }

    #[test]
    fn topic_ids_print_like_kafka() {
        // Kafka prints this id (bytes 43 da 28 83 ...) as Q9oogwxkRz68r6T-8coFeA.
        let id = Uuid::from_bytes([
            0x43, 0xda, 0x28, 0x83, 0x0c, 0x64, 0x47, 0x3e, 0xbc, 0xaf, 0xa4, 0xfe, 0xf1, 0xca,
            0x05, 0x78,
        ]);
        assert_eq!(topic_id_string(&id), "Q9oogwxkRz68r6T-8coFeA");
        assert_eq!(topic_id_string(&Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
    }
}
