//! Fetch (v4–v17), from consumers and from followers.
//!
//! From v13 topics are named by id (resolved through the metadata cache; an unknown id is
//! UNKNOWN_TOPIC_ID), from v15 a follower names itself in `replica_state` rather than
//! `replica_id` (KIP-903), and from v16 a NOT_LEADER_OR_FOLLOWER answer carries the new
//! leader's endpoint (KIP-951). A Kafka 3.9 follower sends v17.
//!
//! - **Consumers** (replica id -1) read committed records, below the high watermark, from
//!   the partition's leader; `read_committed` consumers (isolation level 1) read below the
//!   last stable offset and are told the aborted transactions among what they get, whose
//!   records they drop. A partition led elsewhere is NOT_LEADER_OR_FOLLOWER with the
//!   current leader as a hint (KIP-951).
//! - **Followers** (replica id = their broker id) read up to the log end offset; the read
//!   records their progress (fetch offset = their log end offset), which may expand the
//!   ISR and move the high watermark. A follower whose last fetched epoch the leader's log
//!   does not agree with gets the diverging epoch instead of records (KIP-595), and
//!   truncates.
//!
//! Reads return whole batches: a fetch at an offset inside a batch gets the whole batch
//! (clients skip the records before their position, as with Kafka). Limits: each
//! partition gets at most `partition_max_bytes`, the response at most `max_bytes`,
//! except that the first partition with data always returns at least one whole batch so
//! a consumer can never be stuck behind a batch larger than its limits (KIP-74).
//!
//! With fewer than `min_bytes` available the request waits, up to `max_wait_ms`, for the
//! high watermark (consumers) or the log end (followers) of one of its partitions to
//! move.
//!
//! From v7 a client may fetch in an incremental fetch session (KIP-227,
//! [`crate::fetch_session`]): the request then names only the partitions that changed,
//! every partition of the session is read, and the response carries only those with
//! something new.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use strata_frames::RecordsRef;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{RequestContext, log_error_code, node_endpoints};
use crate::fetch_session::{FetchContext, INVALID_SESSION_ID};
use crate::metadata::cache::LeaderHints;
use crate::replica::Partition;
use crate::replica::partition::{FetchIsolation, PartitionError, ReadParams};
use crate::security::acl::{Operation, ResourceType};
use crate::{Broker, now_ms};

/// The response, and its record sets in the order it encodes them: the response's records
/// fields hold their stand-ins (see [`strata_frames`]).
pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    mut request: FetchRequest,
) -> (FetchResponse, Vec<RecordsRef>) {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let min_bytes = request.min_bytes.max(0) as usize;
    let replica_id = if ctx.version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let mut context = broker
        .fetch_sessions
        .lock()
        .expect("fetch sessions")
        .new_context(
            ctx.version,
            request.session_id,
            request.session_epoch,
            &request.topics,
            &request.forgotten_topics_data,
            now_ms(),
        );
    let topics = match &mut context {
        FetchContext::Error(error) => {
            let response = FetchResponse::default()
                .with_error_code(error.code())
                .with_session_id(INVALID_SESSION_ID);
            return (response, Vec::new());
        }
        FetchContext::Incremental { topics, .. } => std::mem::take(topics),
        FetchContext::Sessionless | FetchContext::Full => std::mem::take(&mut request.topics),
    };
    let denied = denied_topics(broker, ctx, &topics, replica_id);
    let mut watches: Option<Vec<watch::Receiver<u64>>> = None;
    loop {
        // Subscribe (and mark the current state as seen) *before* reading, so a change
        // between the read and the wait still wakes us.
        if let Some(w) = watches.as_mut() {
            for rx in w.iter_mut() {
                rx.borrow_and_update();
            }
        }
        let pass = read_once(
            broker,
            ctx,
            &topics,
            request.max_bytes,
            replica_id,
            request.isolation_level == READ_COMMITTED,
            &denied,
        );
        let now = Instant::now();
        if pass.bytes >= min_bytes || pass.has_error || now >= deadline {
            broker
                .metrics
                .bytes_out
                .fetch_add(pass.bytes as u64, Ordering::Relaxed);
            if pass.throttled_bytes > 0 {
                broker
                    .replica_manager
                    .quotas
                    .leader()
                    .record(pass.throttled_bytes as u64, now_ms());
            }
            let mut response = pass.response;
            let mut sessions = broker.fetch_sessions.lock().expect("fetch sessions");
            response.session_id = match context {
                FetchContext::Full => sessions.create(
                    ctx.version,
                    replica_id >= 0,
                    &topics,
                    &response.responses,
                    now_ms(),
                ),
                FetchContext::Incremental { session_id, .. } => {
                    // Only partitions with records are dropped, so the record sets
                    // stay as they are.
                    sessions.complete(session_id, &mut response.responses);
                    session_id
                }
                FetchContext::Sessionless | FetchContext::Error(_) => INVALID_SESSION_ID,
            };
            return (response, pass.records);
        }
        if watches.is_none() {
            // First pass: start watching the partitions, and read again so nothing that
            // happened before the subscription is missed.
            watches = Some(
                pass.partitions
                    .iter()
                    .map(|p| {
                        if replica_id >= 0 {
                            p.subscribe_leo()
                        } else {
                            p.subscribe_hw()
                        }
                    })
                    .collect(),
            );
            continue;
        }
        let w = watches.as_mut().expect("watching");
        if w.is_empty() {
            tokio::time::sleep_until(deadline).await;
            continue;
        }
        let mut changed: FuturesUnordered<_> = w.iter_mut().map(|rx| rx.changed()).collect();
        let _ = tokio::time::timeout_at(deadline, changed.next()).await;
    }
}

struct Pass {
    response: FetchResponse,
    /// The record sets, in encoding order.
    records: Vec<RecordsRef>,
    /// Record bytes in the response.
    bytes: usize,
    /// Of those, bytes of partitions the leader throttles for this follower.
    throttled_bytes: usize,
    /// Any partition carried an error (errors are returned at once).
    has_error: bool,
    /// The partitions read, to wait on.
    partitions: Vec<Arc<Partition>>,
}

/// The requested topics the principal may not fetch from: READ on the topic for a
/// consumer, CLUSTER_ACTION on the cluster for a follower (all of them, without it).
fn denied_topics(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    topics: &[FetchTopic],
    replica_id: i32,
) -> BTreeSet<String> {
    if broker.authorizer.is_none() {
        return BTreeSet::new();
    }
    let snapshot = broker.cache.snapshot();
    let names = topics.iter().filter_map(|t| {
        if ctx.version >= 13 {
            snapshot.topic_name(t.topic_id).map(str::to_string)
        } else {
            Some(t.topic.0.to_string())
        }
    });
    if replica_id >= 0 {
        if ctx.cluster_authorized(broker, Operation::ClusterAction) {
            return BTreeSet::new();
        }
        return names.collect();
    }
    names
        .filter(|n| !ctx.authorized(broker, Operation::Read, ResourceType::Topic, n))
        .collect()
}

/// A partition answered with an error and no records.
fn partition_error(partition: i32, error: ResponseError) -> PartitionData {
    let mut data = PartitionData::default().with_partition_index(partition);
    data.aborted_transactions = None;
    data.error_code = error.code();
    data.high_watermark = -1;
    data.last_stable_offset = -1;
    data.log_start_offset = -1;
    data.records = Some(Bytes::new());
    data
}

/// `isolation_level` of a `read_committed` consumer.
const READ_COMMITTED: i8 = 1;

/// One pass over the partitions to fetch.
fn read_once(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    fetch_topics: &[FetchTopic],
    max_bytes: i32,
    replica_id: i32,
    read_committed: bool,
    denied: &BTreeSet<String>,
) -> Pass {
    let version = ctx.version;
    // log_start_offset exists from v5; older versions must leave it at its default.
    let with_log_start = version >= 5;
    let mut remaining = max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut throttled_bytes = 0usize;
    let mut has_error = false;
    let mut read = Vec::new();
    let mut records = Vec::new();
    let mut topics = Vec::with_capacity(fetch_topics.len());
    let snapshot = broker.cache.snapshot();
    let mut hints = LeaderHints::default();
    for topic in fetch_topics {
        let name = if version >= 13 {
            snapshot.topic_name(topic.topic_id)
        } else {
            Some(topic.topic.0.as_str())
        };
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let error = match name {
                None => Some(ResponseError::UnknownTopicId),
                Some(n) if denied.contains(n) => Some(ResponseError::TopicAuthorizationFailed),
                Some(_) => None,
            };
            let (Some(name), None) = (name, error) else {
                has_error = true;
                partitions.push(partition_error(p.partition, error.expect("an error")));
                continue;
            };
            let mut data = PartitionData::default().with_partition_index(p.partition);
            data.aborted_transactions = None;
            let limit = (p.partition_max_bytes.max(0) as usize).min(remaining);
            let mut throttled = false;
            let mut params = ReadParams {
                fetch_offset: p.fetch_offset,
                current_leader_epoch: p.current_leader_epoch,
                last_fetched_epoch: (version >= 12 && p.last_fetched_epoch >= 0)
                    .then_some(p.last_fetched_epoch),
                max_bytes: limit,
                min_one_message: total == 0,
                isolation: if replica_id >= 0 {
                    FetchIsolation::LogEnd
                } else if read_committed {
                    FetchIsolation::TxnCommitted
                } else {
                    FetchIsolation::HighWatermark
                },
            };
            let outcome = broker
                .replica_manager
                .leader_partition(name, p.partition, p.current_leader_epoch)
                .map_err(PartitionError::from)
                .and_then(|partition| {
                    if replica_id >= 0 {
                        let mut quota = broker.replica_manager.quotas.leader();
                        if quota.is_throttled(name, p.partition) {
                            throttled = true;
                            // A throttled follower out of the ISR gets nothing while the
                            // leader's replication rate is exceeded (KIP-73).
                            if quota.is_exceeded(now_ms()) && !partition.is_in_sync(replica_id) {
                                params.max_bytes = 0;
                                params.min_one_message = false;
                            }
                        }
                    }
                    let result = partition.read_records(params)?;
                    if replica_id >= 0 && result.diverging_epoch.is_none() {
                        broker
                            .replica_manager
                            .record_follower_fetch(
                                &partition,
                                replica_id,
                                p.fetch_offset,
                                p.log_start_offset,
                                result.log_end_offset,
                                None,
                            )
                            .map_err(PartitionError::from)?;
                    }
                    Ok((partition, result))
                });
            match outcome {
                Ok((partition, result)) => {
                    data.high_watermark = result.high_watermark;
                    data.last_stable_offset = result.last_stable_offset;
                    data.aborted_transactions = result.aborted_transactions.map(|txns| {
                        txns.iter()
                            .map(|t| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(t.producer_id))
                                    .with_first_offset(t.first_offset)
                            })
                            .collect()
                    });
                    if with_log_start {
                        data.log_start_offset = result.log_start_offset;
                    }
                    if let Some((epoch, end_offset)) = result.diverging_epoch {
                        data.diverging_epoch = EpochEndOffset::default()
                            .with_epoch(epoch)
                            .with_end_offset(end_offset);
                    }
                    let n = result.records.as_ref().map_or(0, |r| r.len);
                    total += n;
                    if throttled {
                        throttled_bytes += n;
                    }
                    remaining = remaining.saturating_sub(n);
                    // Sent from the segment file; a region too large to stand in the
                    // response is read into memory.
                    data.records = Some(match result.records.map(RecordsRef::file) {
                        None => Bytes::new(),
                        Some(Ok(region)) => {
                            let stand_in = region.stand_in();
                            records.push(region);
                            stand_in
                        }
                        Some(Err(region)) => match region.read() {
                            // A record set is registered only for a non-empty field:
                            // an incremental response drops partitions without records.
                            Ok(bytes) if bytes.is_empty() => bytes,
                            Ok(bytes) => {
                                records.push(RecordsRef::memory(bytes.clone()));
                                bytes
                            }
                            Err(e) => {
                                data.error_code = log_error_code(&e).code();
                                has_error = true;
                                Bytes::new()
                            }
                        },
                    });
                    read.push(partition);
                }
                Err(error) => {
                    let code = match &error {
                        PartitionError::Kafka(code, _) => *code,
                        PartitionError::Log(e) => log_error_code(e),
                    };
                    data.error_code = code.code();
                    data.high_watermark = -1;
                    data.last_stable_offset = -1;
                    if with_log_start {
                        data.log_start_offset = -1;
                    }
                    if let PartitionError::Log(_) = error
                        && let Some(partition) =
                            broker.replica_manager.get_partition(name, p.partition)
                    {
                        // OFFSET_OUT_OF_RANGE and friends: report the offsets we have.
                        let offsets = partition.offsets();
                        data.high_watermark = offsets.high_watermark;
                        data.last_stable_offset = offsets.last_stable_offset;
                        if with_log_start {
                            data.log_start_offset = offsets.log_start_offset;
                        }
                    }
                    if version >= 12
                        && matches!(
                            code,
                            ResponseError::NotLeaderOrFollower | ResponseError::FencedLeaderEpoch
                        )
                        && let Some((leader, epoch)) = hints.leader(
                            &snapshot,
                            name,
                            p.partition,
                            broker
                                .replica_manager
                                .get_partition(name, p.partition)
                                .map(|local| local.leader_and_epoch()),
                        )
                    {
                        data.current_leader = LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(leader))
                            .with_leader_epoch(epoch);
                    }
                    data.records = Some(Bytes::new());
                    has_error = true;
                }
            }
            partitions.push(data);
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(TopicName(topic.topic.0.clone()))
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    let mut response = FetchResponse::default().with_responses(topics);
    if version >= 16 {
        response.node_endpoints = node_endpoints!(NodeEndpoint, hints, snapshot, ctx.listener);
    }
    Pass {
        response,
        records,
        bytes: total,
        throttled_bytes,
        has_error,
        partitions: read,
    }
}
