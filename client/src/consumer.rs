//! A consumer of explicitly assigned partitions: seek with ListOffsets, read with Fetch.
//!
//! The consumer keeps a position per assigned partition and nothing else, so a group
//! consumer (JoinGroup/SyncGroup/Heartbeat/OffsetCommit) can sit on top of it: the
//! group layer decides the assignment, calls [`Consumer::assign`] and
//! [`Consumer::seek`] with committed offsets, and commits [`Consumer::position`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::{Buf, Bytes};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{RecordBatchDecoder, TimestampType};
use tokio::task::JoinSet;

use crate::cluster::{ClientConfig, Cluster};
use crate::connection::Connection;
use crate::error::{Error, Result};

/// ListOffsets' special timestamp for the log start offset.
const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets' special timestamp for the log end offset (high watermark).
const LATEST_TIMESTAMP: i64 = -1;
/// Fetch v13 (KIP-516) names topics by id instead of by name.
const LAST_FETCH_VERSION_WITH_NAMES: i16 = 12;
/// Size of a record batch's `base_offset` and `batch_length` fields.
const BATCH_LENGTH_PREFIX_BYTES: usize = 12;

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The end of the log: only records produced from now on.
    Latest,
    /// A given offset.
    Offset(i64),
}

/// What to do when the position is outside the log (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// Jump to the log start.
    #[default]
    Earliest,
    /// Jump to the log end.
    Latest,
    /// Report OFFSET_OUT_OF_RANGE.
    None,
}

/// Consumer settings, named after the Java consumer's.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `fetch.max.wait.ms`: how long the broker may hold a Fetch waiting for data.
    pub max_wait: Duration,
    /// `fetch.min.bytes`.
    pub min_bytes: i32,
    /// `fetch.max.bytes`.
    pub max_bytes: i32,
    /// `max.partition.fetch.bytes`.
    pub partition_max_bytes: i32,
    /// `isolation.level`: 0 read_uncommitted, 1 read_committed.
    pub isolation_level: i8,
    /// `auto.offset.reset`.
    pub offset_reset: OffsetReset,
    /// How long [`Consumer::partitions_for`] waits for an unknown topic to appear in
    /// the metadata (Java's `default.api.timeout.ms`, shortened).
    pub metadata_max_wait: Duration,
    /// `retry.backoff.ms`: pause before polling again when no partition could be
    /// fetched (leaders not elected yet), so a poll loop does not spin.
    pub retry_backoff: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
            isolation_level: 0,
            offset_reset: OffsetReset::Earliest,
            metadata_max_wait: Duration::from_secs(5),
            retry_backoff: Duration::from_millis(100),
        }
    }
}

/// A record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Timestamp in ms since the epoch.
    pub timestamp_ms: i64,
    /// Whether the timestamp is the producer's or the broker's append time.
    pub timestamp_type: TimestampType,
    /// Key.
    pub key: Option<Bytes>,
    /// Value; `None` for tombstones.
    pub value: Option<Bytes>,
    /// Headers, in record order.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Where the consumer is in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Waiting for ListOffsets to turn a seek into an offset.
    Seek(OffsetSpec),
    /// Next offset to fetch.
    At(i64),
}

/// A consumer of assigned partitions.
#[derive(Debug)]
pub struct Consumer {
    cluster: Cluster,
    config: ConsumerConfig,
    positions: BTreeMap<TopicPartition, Position>,
}

impl Consumer {
    /// Connects to the cluster.
    pub async fn connect(client: ClientConfig, config: ConsumerConfig) -> Result<Self> {
        Ok(Consumer::new(Cluster::connect(client).await?, config))
    }

    /// A consumer over an existing cluster connection.
    pub fn new(cluster: Cluster, config: ConsumerConfig) -> Self {
        Consumer {
            cluster,
            config,
            positions: BTreeMap::new(),
        }
    }

    /// The underlying cluster connection.
    pub fn cluster(&mut self) -> &mut Cluster {
        &mut self.cluster
    }

    /// Partition indexes of `topic`, fetching metadata if needed.
    pub async fn partitions_for(&mut self, topic: &str) -> Result<Vec<i32>> {
        let max_wait = self.config.metadata_max_wait;
        Ok(self
            .cluster
            .wait_for_topic(topic, max_wait)
            .await?
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect())
    }

    /// Replaces the assignment. Partitions already assigned keep their position; new
    /// ones start per `auto.offset.reset` unless sought.
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        let reset = match self.config.offset_reset {
            OffsetReset::Latest => OffsetSpec::Latest,
            OffsetReset::Earliest | OffsetReset::None => OffsetSpec::Earliest,
        };
        let old = std::mem::take(&mut self.positions);
        for tp in partitions {
            let position = old.get(&tp).copied().unwrap_or(Position::Seek(reset));
            self.positions.insert(tp, position);
        }
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.positions.keys().cloned().collect()
    }

    /// Moves an assigned partition's position.
    pub fn seek(&mut self, tp: &TopicPartition, spec: OffsetSpec) -> Result<()> {
        let position = self
            .positions
            .get_mut(tp)
            .ok_or_else(|| Error::Invalid(format!("{tp} is not assigned")))?;
        *position = match spec {
            OffsetSpec::Offset(offset) => Position::At(offset),
            spec => Position::Seek(spec),
        };
        Ok(())
    }

    /// The next offset to be read from `tp`, once known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        match self.positions.get(tp) {
            Some(Position::At(offset)) => Some(*offset),
            _ => None,
        }
    }

    /// Earliest or latest offsets of partitions (ListOffsets to each leader).
    pub async fn list_offsets(
        &mut self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.list_offsets_per_partition(partitions, spec)
            .await?
            .into_iter()
            .map(|(tp, offset)| offset.map(|offset| (tp, offset)))
            .collect()
    }

    /// Like [`Consumer::list_offsets`], with each partition's own outcome, so one
    /// partition without a leader yet does not hold up the others.
    async fn list_offsets_per_partition(
        &mut self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, Result<i64>>> {
        let timestamp = match spec {
            OffsetSpec::Earliest => EARLIEST_TIMESTAMP,
            OffsetSpec::Latest => LATEST_TIMESTAMP,
            OffsetSpec::Offset(offset) => {
                return Ok(partitions
                    .iter()
                    .map(|tp| (tp.clone(), Ok(offset)))
                    .collect());
            }
        };
        list_offsets_at(
            &mut self.cluster,
            partitions,
            timestamp,
            self.config.isolation_level,
        )
        .await
    }

    /// One round of Fetch requests, one per leader; returns the records that arrived
    /// (possibly none, after `max_wait`), in offset order per partition.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>> {
        self.resolve_seeks().await?;
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, i64)>> = BTreeMap::new();
        let assigned: Vec<(TopicPartition, i64)> = self
            .positions
            .iter()
            .filter_map(|(tp, pos)| match pos {
                Position::At(offset) => Some((tp.clone(), *offset)),
                Position::Seek(_) => None,
            })
            .collect();
        for (tp, offset) in assigned {
            match self.cluster.leader(&tp.topic, tp.partition).await {
                Ok(leader) => by_leader.entry(leader).or_default().push((tp, offset)),
                Err(err) if err.is_retriable() => {
                    tracing::debug!(%tp, %err, "no leader yet");
                    self.cluster.invalidate(&tp.topic);
                }
                Err(err) => return Err(err),
            }
        }
        if by_leader.is_empty() {
            tokio::time::sleep(self.config.retry_backoff).await;
        }
        // One Fetch per leader, all in flight at once: each may be held for max_wait,
        // so asking leaders one after another would add their waits up.
        let mut in_flight = JoinSet::new();
        for (leader, partitions) in by_leader {
            let conn = match self.cluster.take_broker(leader).await {
                Ok(conn) => conn,
                Err(err) if err.is_retriable() => {
                    tracing::debug!(leader, %err, "leader unreachable; refreshing metadata");
                    for (tp, _) in &partitions {
                        self.cluster.invalidate(&tp.topic);
                    }
                    continue;
                }
                Err(err) => return Err(err),
            };
            let (request, version, ids) = match self.fetch_request(&conn, &partitions) {
                Ok(built) => built,
                Err(err) => {
                    self.cluster.restore_broker(leader, conn);
                    return Err(err);
                }
            };
            // The broker may hold the request for max_wait on purpose.
            let timeout = self.config.max_wait + conn.request_timeout();
            in_flight.spawn(async move {
                let mut conn = conn;
                let result = conn.send_with_timeout(&request, version, timeout).await;
                (leader, conn, ids, partitions, result)
            });
        }
        let mut records = Vec::new();
        let mut first_error = None;
        while let Some(done) = in_flight.join_next().await {
            let (leader, conn, ids, partitions, result) =
                done.map_err(|err| Error::Invalid(format!("fetch task failed: {err}")))?;
            self.cluster.restore_broker(leader, conn);
            let applied = result.and_then(|response| {
                self.apply_fetch_response(leader, response, &ids, &mut records)
            });
            match applied {
                Ok(()) => {}
                // A broken connection or a timeout: reconnect on the next poll.
                Err(err) if err.is_retriable() => {
                    tracing::debug!(leader, %err, "fetch failed; will retry");
                    for (tp, _) in &partitions {
                        self.cluster.invalidate(&tp.topic);
                    }
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(records),
        }
    }

    /// Turns pending seeks (earliest/latest) into offsets.
    async fn resolve_seeks(&mut self) -> Result<()> {
        for spec in [OffsetSpec::Earliest, OffsetSpec::Latest] {
            let pending: Vec<TopicPartition> = self
                .positions
                .iter()
                .filter(|(_, pos)| **pos == Position::Seek(spec))
                .map(|(tp, _)| tp.clone())
                .collect();
            if pending.is_empty() {
                continue;
            }
            let offsets = self.list_offsets_per_partition(&pending, spec).await?;
            for (tp, offset) in offsets {
                match offset {
                    Ok(offset) => {
                        if let Some(position) = self.positions.get_mut(&tp) {
                            *position = Position::At(offset);
                        }
                    }
                    // No leader yet (a new topic): the seek stays pending for the
                    // next poll.
                    Err(err) if err.is_retriable() => tracing::debug!(%tp, %err, "seek postponed"),
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(())
    }

    /// Builds the Fetch for `partitions` at the version `conn` speaks; returns it with
    /// that version and the topic ids it may name topics by.
    fn fetch_request(
        &self,
        conn: &Connection,
        partitions: &[(TopicPartition, i64)],
    ) -> Result<(FetchRequest, i16, HashMap<uuid::Uuid, String>)> {
        let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
        for (tp, offset) in partitions {
            by_topic
                .entry(tp.topic.as_str())
                .or_default()
                .push((tp.partition, *offset));
        }
        let mut ids: HashMap<uuid::Uuid, String> = HashMap::new();
        for topic in by_topic.keys() {
            if let Some(metadata) = self.cluster.cached_topic(topic) {
                ids.insert(metadata.topic_id, (*topic).to_owned());
            }
        }
        let mut version = conn.version::<FetchRequest>()?;
        // A broker that gave no topic ids in Metadata cannot be addressed by id.
        if ids.len() < by_topic.len() || ids.keys().any(uuid::Uuid::is_nil) {
            version = version.min(LAST_FETCH_VERSION_WITH_NAMES);
        }
        let config = &self.config;
        let topics = by_topic
            .iter()
            .map(|(topic, parts)| {
                let mut fetch_topic = FetchTopic::default().with_partitions(
                    parts
                        .iter()
                        .map(|(p, offset)| {
                            FetchPartition::default()
                                .with_partition(*p)
                                .with_fetch_offset(*offset)
                                .with_partition_max_bytes(config.partition_max_bytes)
                        })
                        .collect(),
                );
                if version > LAST_FETCH_VERSION_WITH_NAMES {
                    fetch_topic.topic_id = ids
                        .iter()
                        .find(|(_, name)| name == topic)
                        .map(|(id, _)| *id)
                        .unwrap_or_default();
                } else {
                    fetch_topic.topic = TopicName(StrBytes::from_string((*topic).to_owned()));
                }
                fetch_topic
            })
            .collect();
        let max_wait_ms = i32::try_from(config.max_wait.as_millis()).unwrap_or(i32::MAX);
        let request = FetchRequest::default()
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(config.min_bytes)
            .with_max_bytes(config.max_bytes)
            .with_isolation_level(config.isolation_level)
            .with_topics(topics);
        Ok((request, version, ids))
    }

    /// Takes in one leader's Fetch response: appends its records to `out` and moves
    /// positions, resets out-of-range ones, and drops stale metadata.
    fn apply_fetch_response(
        &mut self,
        leader: i32,
        response: FetchResponse,
        ids: &HashMap<uuid::Uuid, String>,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<()> {
        Error::check(
            response.error_code,
            || format!("fetch from broker {leader}"),
            None,
        )?;
        for topic in response.responses {
            let name = if topic.topic.0.is_empty() {
                ids.get(&topic.topic_id).cloned().unwrap_or_default()
            } else {
                topic.topic.0.to_string()
            };
            for partition in topic.partitions {
                let tp = TopicPartition::new(name.clone(), partition.partition_index);
                let Some(Position::At(position)) = self.positions.get(&tp).copied() else {
                    continue;
                };
                match ResponseError::try_from_code(partition.error_code) {
                    None => {}
                    Some(ResponseError::OffsetOutOfRange) => {
                        let spec = match self.config.offset_reset {
                            OffsetReset::Earliest => OffsetSpec::Earliest,
                            OffsetReset::Latest => OffsetSpec::Latest,
                            OffsetReset::None => {
                                return Err(Error::Kafka {
                                    code: ResponseError::OffsetOutOfRange,
                                    context: format!("fetch {tp} at offset {position}"),
                                    message: None,
                                });
                            }
                        };
                        self.positions.insert(tp, Position::Seek(spec));
                        continue;
                    }
                    Some(code) if code.is_retriable() => {
                        tracing::debug!(%tp, ?code, "fetch will be retried after a metadata refresh");
                        self.cluster.invalidate(&name);
                        continue;
                    }
                    Some(code) => {
                        return Err(Error::Kafka {
                            code,
                            context: format!("fetch {tp}"),
                            message: None,
                        });
                    }
                }
                let Some(records) = partition.records else {
                    continue;
                };
                let next = decode_records(&tp, records, position, out).map_err(|message| {
                    Error::Protocol {
                        addr: format!("broker {leader}"),
                        message,
                    }
                })?;
                self.positions.insert(tp, Position::At(next));
            }
        }
        Ok(())
    }
}

/// ListOffsets for `partitions` at `timestamp` (a time in ms, or Kafka's special -1
/// latest / -2 earliest), one request per leader, with each partition's own outcome so
/// one partition without a leader yet does not hold up the others. For a time, the
/// offset is that of the first record at or after it, -1 when there is none.
pub(crate) async fn list_offsets_at(
    cluster: &mut Cluster,
    partitions: &[TopicPartition],
    timestamp: i64,
    isolation_level: i8,
) -> Result<BTreeMap<TopicPartition, Result<i64>>> {
    let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
    let mut offsets = BTreeMap::new();
    for tp in partitions {
        let leader = match cluster.leader(&tp.topic, tp.partition).await {
            Ok(leader) => leader,
            Err(err) if err.is_retriable() => {
                offsets.insert(tp.clone(), Err(err));
                continue;
            }
            Err(err) => return Err(err),
        };
        by_leader
            .entry(leader)
            .or_default()
            .entry(tp.topic.clone())
            .or_default()
            .push(tp.partition);
    }
    for (leader, topics) in by_leader {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(isolation_level)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        ListOffsetsTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic)))
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|p| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(p)
                                            .with_timestamp(timestamp)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let result = async { cluster.broker(leader).await?.send(&request).await }.await;
        let response = cluster.settle(Some(leader), result)?;
        for topic in response.topics {
            let name = topic.name.0.to_string();
            for p in topic.partitions {
                let tp = TopicPartition::new(name.clone(), p.partition_index);
                let context = || format!("list offsets of {tp}");
                let result = Error::check(p.error_code, context, None).map(|()| p.offset);
                if result.is_err() {
                    cluster.invalidate(&name);
                }
                offsets.insert(tp, result);
            }
        }
    }
    Ok(offsets)
}

/// Decodes the complete record batches in `records`, appends the records at or after
/// `position` to `out`, and returns the next position.
///
/// A Fetch may return a batch that starts before the requested offset (batches are
/// never split on the broker) and may end with a partial batch cut off by
/// `partition_max_bytes`; both are normal. Control records (transaction markers) are
/// skipped but still move the position.
pub fn decode_records(
    tp: &TopicPartition,
    mut records: Bytes,
    position: i64,
    out: &mut Vec<ConsumerRecord>,
) -> Result<i64, String> {
    let mut next = position;
    let mut decoded_any = false;
    while records.len() >= BATCH_LENGTH_PREFIX_BYTES {
        let batch_length = (&records[8..12]).get_i32();
        let Ok(batch_length) = usize::try_from(batch_length) else {
            return Err(format!("{tp}: negative batch length {batch_length}"));
        };
        let total = BATCH_LENGTH_PREFIX_BYTES + batch_length;
        if records.len() < total {
            if !decoded_any {
                // Not even one whole batch: the broker cut the first batch short, and
                // fetching again from the same offset would get the same bytes.
                return Err(format!(
                    "{tp}: record batch at offset {position} is {total} bytes, more than the {} returned; raise max.partition.fetch.bytes",
                    records.len()
                ));
            }
            break; // partial batch at the end of the response
        }
        decoded_any = true;
        let mut batch = records.split_to(total);
        let set = RecordBatchDecoder::decode(&mut batch)
            .map_err(|err| format!("{tp}: cannot decode record batch: {err}"))?;
        for record in set.records {
            if record.offset < next {
                continue;
            }
            next = record.offset + 1;
            if record.control {
                continue;
            }
            out.push(ConsumerRecord {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset: record.offset,
                timestamp_ms: record.timestamp,
                timestamp_type: record.timestamp_type,
                key: record.key,
                value: record.value,
                headers: record
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::PartitionBatch;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::records::Compression;

    /// A batch of `count` records whose base offset is rewritten to `base_offset`, as a
    /// broker stores it.
    fn batch_at(base_offset: i64, count: usize) -> Bytes {
        let mut batch = PartitionBatch::default();
        for i in 0..count {
            batch.push(
                None,
                Some(Bytes::from(format!("v{}", base_offset + i as i64))),
                vec![],
                1000,
            );
        }
        let encoded = batch.encode(Compression::None).unwrap();
        let mut bytes = BytesMut::from(&encoded[..]);
        bytes[..8].copy_from_slice(&base_offset.to_be_bytes());
        bytes.freeze()
    }

    fn values(records: &[ConsumerRecord]) -> Vec<String> {
        records
            .iter()
            .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn records_before_the_position_are_skipped() {
        let tp = TopicPartition::new("t", 0);
        let mut all = BytesMut::new();
        all.put(batch_at(0, 5));
        all.put(batch_at(5, 5));
        let mut out = Vec::new();
        let next = decode_records(&tp, all.freeze(), 3, &mut out).unwrap();
        assert_eq!(next, 10);
        assert_eq!(values(&out), ["v3", "v4", "v5", "v6", "v7", "v8", "v9"]);
        assert_eq!(out[0].offset, 3);
        assert_eq!(out[0].partition, 0);
    }

    #[test]
    fn a_partial_trailing_batch_is_left_for_the_next_fetch() {
        let tp = TopicPartition::new("t", 1);
        let mut all = BytesMut::new();
        all.put(batch_at(0, 2));
        let second = batch_at(2, 3);
        all.put(&second[..second.len() - 7]);
        let mut out = Vec::new();
        let next = decode_records(&tp, all.freeze(), 0, &mut out).unwrap();
        assert_eq!(next, 2);
        assert_eq!(values(&out), ["v0", "v1"]);
    }

    #[test]
    fn a_lone_truncated_batch_is_an_error_not_a_stall() {
        let tp = TopicPartition::new("t", 0);
        let batch = batch_at(0, 3);
        let mut out = Vec::new();
        let err = decode_records(&tp, batch.slice(..batch.len() - 1), 0, &mut out).unwrap_err();
        assert!(err.contains("max.partition.fetch.bytes"), "{err}");
    }

    #[test]
    fn empty_fetch_keeps_the_position() {
        let mut out = Vec::new();
        let next =
            decode_records(&TopicPartition::new("t", 0), Bytes::new(), 42, &mut out).unwrap();
        assert_eq!(next, 42);
        assert!(out.is_empty());
    }

    #[test]
    fn corrupt_batches_are_errors() {
        let mut bytes = BytesMut::from(&batch_at(0, 2)[..]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff; // breaks the CRC
        let mut out = Vec::new();
        assert!(decode_records(&TopicPartition::new("t", 0), bytes.freeze(), 0, &mut out).is_err());
    }
}
