//! A producer: records are partitioned, collected into one batch per partition and sent
//! to each partition's leader in Produce requests.
//!
//! There is no background sender: [`Producer::send`] buffers and sends whatever batches
//! are full, [`Producer::flush`] sends the rest. That keeps the producer a plain value
//! the caller drives, with back-pressure by construction.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use tokio::task::JoinSet;

use crate::batch::{PartitionBatch, record_size};
use crate::cluster::{ClientConfig, Cluster};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::partitioner::{PartitionChooser, Partitioner};

/// How many replicas must have a record before the leader answers (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: the broker sends no response at all.
    None,
    /// `acks=1`: the leader has written it.
    Leader,
    /// `acks=-1` / `all`: every in-sync replica has it.
    #[default]
    All,
}

impl Acks {
    /// The wire value.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Producer settings, named after the Java producer's.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `acks`.
    pub acks: Acks,
    /// `compression.type`.
    pub compression: Compression,
    /// `partitioner.class`, in spirit.
    pub partitioner: Partitioner,
    /// `batch.size`: a partition's batch is sent once it holds this many bytes.
    pub batch_size_bytes: usize,
    /// Upper bound on buffered bytes across partitions before everything is sent.
    pub buffer_memory_bytes: usize,
    /// `request.timeout.ms` as sent to the broker in the Produce request.
    pub produce_timeout: Duration,
    /// `max.block.ms`: how long `send` waits for an unknown topic to appear in the
    /// metadata before failing with UNKNOWN_TOPIC_OR_PARTITION.
    pub max_block: Duration,
    /// `retries` for retriable errors (leader moved, not yet elected).
    pub retries: u32,
    /// `retry.backoff.ms`: the first pause; it doubles per attempt.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`: the longest pause.
    pub retry_backoff_max: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            compression: Compression::None,
            partitioner: Partitioner::Murmur2,
            batch_size_bytes: 16 * 1024,
            buffer_memory_bytes: 32 * 1024 * 1024,
            produce_timeout: Duration::from_secs(30),
            max_block: Duration::from_secs(5),
            // With the backoff below, about half a minute: enough for a new topic's
            // leaders to be elected, or for the controller to notice a dead leader
            // (KRaft's broker.session.timeout.ms is 9 s) and move leadership.
            retries: 32,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
        }
    }
}

/// A record to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Topic.
    pub topic: String,
    /// Explicit partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// Key, hashed by the default partitioner.
    pub key: Option<Bytes>,
    /// Value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Record headers.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Creation time in ms since the epoch; `None` takes the current time.
    pub timestamp_ms: Option<i64>,
}

impl ProducerRecord {
    /// A record with just a topic and value.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            value: Some(value.into()),
            ..ProducerRecord::default()
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Pins the partition.
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }
}

/// What the leader acknowledged for one sent batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceAck {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset of the batch's first record; -1 with `acks=0`.
    pub base_offset: i64,
    /// Records in the batch.
    pub record_count: usize,
}

type TopicPartition = (String, i32);

/// Produce v13 (KIP-516) names topics by id instead of by name.
const LAST_PRODUCE_VERSION_WITH_NAMES: i16 = 12;

/// A producer bound to one cluster.
#[derive(Debug)]
pub struct Producer {
    cluster: Cluster,
    config: ProducerConfig,
    chooser: PartitionChooser,
    /// Open batches, ordered so requests are built deterministically.
    batches: BTreeMap<TopicPartition, PartitionBatch>,
    /// Sum of the open batches' record sizes, bounded by `buffer_memory_bytes`.
    buffered_bytes: usize,
}

impl Producer {
    /// Connects to the cluster.
    pub async fn connect(client: ClientConfig, config: ProducerConfig) -> Result<Self> {
        let cluster = Cluster::connect(client).await?;
        Ok(Producer::new(cluster, config))
    }

    /// A producer over an existing cluster connection.
    pub fn new(cluster: Cluster, config: ProducerConfig) -> Self {
        Producer {
            cluster,
            chooser: PartitionChooser::new(config.partitioner, config.batch_size_bytes),
            config,
            batches: BTreeMap::new(),
            buffered_bytes: 0,
        }
    }

    /// Buffers `record`, sending any batch that became full. Returns the acks of
    /// batches sent on the way (often none).
    pub async fn send(&mut self, record: ProducerRecord) -> Result<Vec<ProduceAck>> {
        let max_block = self.config.max_block;
        let metadata = self
            .cluster
            .wait_for_topic(&record.topic, max_block)
            .await?;
        let num_partitions = metadata.partitions.len() as i32;
        if num_partitions == 0 {
            return Err(Error::Invalid(format!(
                "topic {} has no partitions",
                record.topic
            )));
        }
        let size = record_size(record.key.as_ref(), record.value.as_ref(), &record.headers);
        let partition = match record.partition {
            Some(p) if (0..num_partitions).contains(&p) => p,
            Some(p) => {
                return Err(Error::Invalid(format!(
                    "partition {p} of topic {} does not exist (it has {num_partitions})",
                    record.topic
                )));
            }
            None => self
                .chooser
                .choose(&record.topic, record.key.as_deref(), size, num_partitions),
        };
        let timestamp = record.timestamp_ms.unwrap_or_else(now_ms);
        let batch = self.batches.entry((record.topic, partition)).or_default();
        batch.push(record.key, record.value, record.headers, timestamp);
        self.buffered_bytes += size;
        let full = batch.size_bytes() >= self.config.batch_size_bytes;
        if self.buffered_bytes >= self.config.buffer_memory_bytes {
            self.flush().await
        } else if full {
            self.send_batches(true).await
        } else {
            Ok(Vec::new())
        }
    }

    /// Sends every buffered record and waits for the acknowledgements.
    pub async fn flush(&mut self) -> Result<Vec<ProduceAck>> {
        self.send_batches(false).await
    }

    /// Sends full batches (`only_full`) or all of them, retrying retriable errors after
    /// a metadata refresh.
    async fn send_batches(&mut self, only_full: bool) -> Result<Vec<ProduceAck>> {
        let limit = self.config.batch_size_bytes;
        let keys: Vec<TopicPartition> = self
            .batches
            .iter()
            .filter(|(_, b)| !only_full || b.size_bytes() >= limit)
            .map(|(k, _)| k.clone())
            .collect();
        let mut pending: Vec<(TopicPartition, PartitionBatch)> = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(batch) = self.batches.remove(&key) {
                self.buffered_bytes = self.buffered_bytes.saturating_sub(batch.records_bytes());
                pending.push((key, batch));
            }
        }
        let mut acks = Vec::new();
        let mut attempt = 0;
        while !pending.is_empty() {
            let Some((failed, err)) = self.send_once(pending, &mut acks).await? else {
                break;
            };
            attempt += 1;
            if attempt > self.config.retries {
                return Err(err);
            }
            tracing::debug!(%err, attempt, "retrying produce");
            for ((topic, _), _) in &failed {
                self.cluster.invalidate(topic);
            }
            let backoff = self
                .config
                .retry_backoff
                .saturating_mul(1 << (attempt - 1).min(16));
            tokio::time::sleep(backoff.min(self.config.retry_backoff_max)).await;
            pending = failed;
        }
        Ok(acks)
    }

    /// One Produce round: a request per leader, all in flight at once. Returns the
    /// batches that failed with a retriable error together with the first such error;
    /// a non-retriable error ends the call (after every request has finished).
    async fn send_once(
        &mut self,
        pending: Vec<(TopicPartition, PartitionBatch)>,
        acks: &mut Vec<ProduceAck>,
    ) -> Result<Option<(Vec<(TopicPartition, PartitionBatch)>, Error)>> {
        let mut failed = Vec::new();
        let mut first_error = None;
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, PartitionBatch)>> = BTreeMap::new();
        for (tp, batch) in pending {
            match self.cluster.leader(&tp.0, tp.1).await {
                Ok(leader) => by_leader.entry(leader).or_default().push((tp, batch)),
                Err(err) if err.is_retriable() => {
                    first_error.get_or_insert(err);
                    failed.push((tp, batch));
                }
                Err(err) => return Err(err),
            }
        }
        let mut in_flight = JoinSet::new();
        for (leader, batches) in by_leader {
            let mut conn = match self.cluster.take_broker(leader).await {
                Ok(conn) => conn,
                Err(err) if err.is_retriable() => {
                    first_error.get_or_insert(err);
                    failed.extend(batches);
                    continue;
                }
                Err(err) => return Err(err),
            };
            let (request, version, topic_ids) = match self.produce_request(&conn, &batches) {
                Ok(built) => built,
                Err(err) => {
                    self.cluster.restore_broker(leader, conn);
                    return Err(err);
                }
            };
            let acks = self.config.acks;
            in_flight.spawn(async move {
                let result = if acks == Acks::None {
                    conn.send_without_response(&request, version)
                        .await
                        .map(|()| None)
                } else {
                    conn.send_at(&request, version).await.map(Some)
                };
                (leader, conn, batches, topic_ids, result)
            });
        }
        let mut fatal = None;
        while let Some(done) = in_flight.join_next().await {
            let (leader, conn, batches, topic_ids, result) =
                done.map_err(|err| Error::Invalid(format!("produce task failed: {err}")))?;
            self.cluster.restore_broker(leader, conn);
            let results = match result {
                Ok(Some(response)) => partition_results(leader, response, &batches, &topic_ids),
                Ok(None) => batches.iter().map(|_| Ok(-1)).collect(),
                Err(err) if err.is_retriable() => {
                    first_error.get_or_insert(err);
                    failed.extend(batches);
                    continue;
                }
                Err(err) => {
                    fatal.get_or_insert(err);
                    continue;
                }
            };
            for ((tp, batch), result) in batches.into_iter().zip(results) {
                match result {
                    Ok(base_offset) => acks.push(ProduceAck {
                        topic: tp.0,
                        partition: tp.1,
                        base_offset,
                        record_count: batch.len(),
                    }),
                    Err(err) if err.is_retriable() => {
                        first_error.get_or_insert(err);
                        failed.push((tp, batch));
                    }
                    Err(err) => {
                        fatal.get_or_insert(err);
                    }
                }
            }
        }
        if let Some(err) = fatal {
            return Err(err);
        }
        Ok(first_error.map(|err| (failed, err)))
    }

    /// Builds the Produce request for `batches` at the version `conn` speaks; returns
    /// it with that version and the topic ids it may name topics by.
    fn produce_request(
        &self,
        conn: &Connection,
        batches: &[(TopicPartition, PartitionBatch)],
    ) -> Result<(ProduceRequest, i16, HashMap<String, uuid::Uuid>)> {
        let mut encoded: BTreeMap<&str, Vec<(i32, Bytes)>> = BTreeMap::new();
        for ((topic, partition), batch) in batches {
            let bytes = batch.encode(self.config.compression)?;
            encoded
                .entry(topic.as_str())
                .or_default()
                .push((*partition, bytes));
        }
        let topic_ids: HashMap<String, uuid::Uuid> = encoded
            .keys()
            .filter_map(|t| {
                self.cluster
                    .cached_topic(t)
                    .map(|m| (t.to_string(), m.topic_id))
            })
            .collect();
        let mut version = conn.version::<ProduceRequest>()?;
        // A broker that gave no topic ids in Metadata cannot be addressed by id.
        if topic_ids.len() < encoded.len() || topic_ids.values().any(uuid::Uuid::is_nil) {
            version = version.min(LAST_PRODUCE_VERSION_WITH_NAMES);
        }
        let topic_data = encoded
            .iter()
            .map(|(topic, partitions)| {
                let mut data = TopicProduceData::default().with_partition_data(
                    partitions
                        .iter()
                        .map(|(p, bytes)| {
                            PartitionProduceData::default()
                                .with_index(*p)
                                .with_records(Some(bytes.clone()))
                        })
                        .collect(),
                );
                if version > LAST_PRODUCE_VERSION_WITH_NAMES {
                    data.topic_id = topic_ids.get(*topic).copied().unwrap_or_default();
                } else {
                    data.name = TopicName(StrBytes::from_string((*topic).to_owned()));
                }
                data
            })
            .collect();
        let timeout_ms = i32::try_from(self.config.produce_timeout.as_millis()).unwrap_or(i32::MAX);
        let request = ProduceRequest::default()
            .with_acks(self.config.acks.as_i16())
            .with_timeout_ms(timeout_ms)
            .with_topic_data(topic_data);
        Ok((request, version, topic_ids))
    }

    /// The underlying cluster connection.
    pub fn cluster(&mut self) -> &mut Cluster {
        &mut self.cluster
    }
}

/// Per batch, in order: the base offset the leader assigned, or the partition's error.
fn partition_results(
    leader: i32,
    response: ProduceResponse,
    batches: &[(TopicPartition, PartitionBatch)],
    topic_ids: &HashMap<String, uuid::Uuid>,
) -> Vec<Result<i64>> {
    let mut results: HashMap<(String, i32), Result<i64>> = HashMap::new();
    for topic in response.responses {
        // Produce v13 answers with topic ids instead of names.
        let name = if topic.name.0.is_empty() {
            topic_ids
                .iter()
                .find(|(_, id)| **id == topic.topic_id)
                .map(|(n, _)| n.clone())
                .unwrap_or_default()
        } else {
            topic.name.0.to_string()
        };
        for p in topic.partition_responses {
            let result = Error::check(
                p.error_code,
                || format!("produce to {name}-{}", p.index),
                p.error_message.as_deref(),
            )
            .map(|()| p.base_offset);
            results.insert((name.clone(), p.index), result);
        }
    }
    batches
        .iter()
        .map(|((topic, partition), _)| {
            results
                .remove(&(topic.clone(), *partition))
                .unwrap_or_else(|| {
                    Err(Error::Invalid(format!(
                        "broker {leader} did not answer for {topic}-{partition}"
                    )))
                })
        })
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
