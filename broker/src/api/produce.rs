//! Produce (v3+): validate and append record batches on partition leaders.
//!
//! Each partition's records go to its leader replica, which validates every batch (magic,
//! length, CRC-32C, size against `max.message.bytes`), checks idempotent producer
//! sequences and assigns offsets. Errors are per partition: one bad partition never fails
//! another; a partition led elsewhere is NOT_LEADER_OR_FOLLOWER, and from v10 the answer
//! names the leader and its address (KIP-951) so the client need not ask for Metadata
//! first. With acks=all the ISR must hold `min.insync.replicas` replicas before
//! anything is written (NOT_ENOUGH_REPLICAS), and the answer waits — Kafka's
//! `DelayedProduce` — until the high watermark passes the appended records, the ISR
//! shrinks below the minimum (NOT_ENOUGH_REPLICAS_AFTER_APPEND), leadership moves, or the
//! request's timeout passes (REQUEST_TIMED_OUT).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use strata_storage::{BatchHeader, LogError, VerificationGuard};
use tracing::warn;

use super::{RequestContext, log_error_code, node_endpoints, str_bytes};
use crate::Broker;
use crate::metadata::cache::{LeaderHints, MetadataSnapshot};
use crate::replica::Partition;
use crate::replica::partition::PartitionError;
use crate::security::acl::{Operation, ResourceType};

/// A partition's records that passed the checks before the append.
struct Append {
    topic: usize,
    index: usize,
    partition: Arc<Partition>,
    records: bytes::Bytes,
    /// The transaction verification obtained for the producer's first write here.
    guard: Option<VerificationGuard>,
}

/// The answer being built: a response per partition, in the request's order, and the
/// leaders named for refused partitions (KIP-951).
struct Answers<'a> {
    broker: &'a Broker,
    ctx: &'a RequestContext<'a>,
    topics: Vec<TopicProduceResponse>,
    hints: LeaderHints,
    snapshot: Arc<MetadataSnapshot>,
}

impl Answers<'_> {
    fn partition(&mut self, t: usize, p: usize) -> &mut PartitionProduceResponse {
        &mut self.topics[t].partition_responses[p]
    }

    /// Marks partition `p` of topic `t` as failed, with a leader hint where the error
    /// calls for one.
    fn refuse(&mut self, t: usize, p: usize, code: ResponseError, message: Option<String>) {
        let (broker, ctx) = (self.broker, self.ctx);
        let topic = &mut self.topics[t];
        let response = &mut topic.partition_responses[p];
        set_error(broker, ctx, response, code, message);
        hint_leader(
            broker,
            ctx,
            &mut self.hints,
            &self.snapshot,
            &topic.name.0,
            response,
        );
        if code == ResponseError::UnknownTopicOrPartition {
            tracing::debug!(client = ctx.client_id(), topic = %topic.name.0, "produce to unknown topic or partition");
        }
    }
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: ProduceRequest,
) -> ProduceResponse {
    let acks = request.acks;
    // A transactional producer needs Write on its transactional id (Kafka's rule).
    let transactional_id_authorized = request.transactional_id.as_ref().is_none_or(|id| {
        ctx.authorized(
            broker,
            Operation::Write,
            ResourceType::TransactionalId,
            id.0.as_str(),
        )
    });
    let transactional_id = request.transactional_id.map(|id| id.0.to_string());
    let mut answers = Answers {
        broker,
        ctx,
        topics: Vec::with_capacity(request.topic_data.len()),
        hints: LeaderHints::default(),
        snapshot: broker.cache.snapshot(),
    };
    let mut refusals: Vec<(usize, usize, ResponseError, Option<String>)> = Vec::new();
    let mut appends: Vec<Append> = Vec::new();
    for (t, topic) in request.topic_data.into_iter().enumerate() {
        let name = topic.name.0.to_string();
        let authorized = ctx.authorized(broker, Operation::Write, ResourceType::Topic, &name);
        let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
        for (p, data) in topic.partition_data.into_iter().enumerate() {
            partition_responses.push(PartitionProduceResponse::default().with_index(data.index));
            let refused: Option<(ResponseError, Option<String>)> = if !matches!(acks, -1..=1) {
                Some((ResponseError::InvalidRequiredAcks, None))
            } else if !authorized {
                Some((ResponseError::TopicAuthorizationFailed, None))
            } else if is_internal(&name) && ctx.client_id() != ADMIN_CLIENT_ID {
                // The group coordinator writes __consumer_offsets itself; a client's
                // records there would be read back as group metadata on the next load.
                Some((
                    ResponseError::InvalidTopicException,
                    Some(format!("Cannot append to internal topic {name}")),
                ))
            } else if !transactional_id_authorized {
                Some((ResponseError::TransactionalIdAuthorizationFailed, None))
            } else {
                match broker
                    .replica_manager
                    .leader_partition(&name, data.index, -1)
                {
                    Err(e) => Some((e, None)),
                    Ok(partition) => {
                        appends.push(Append {
                            topic: t,
                            index: p,
                            partition,
                            records: data.records.unwrap_or_default(),
                            guard: None,
                        });
                        None
                    }
                }
            };
            if let Some((code, message)) = refused {
                refusals.push((t, p, code, message));
            }
        }
        answers.topics.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partition_responses),
        );
    }
    if let Some(transactional_id) = &transactional_id {
        refusals.extend(verify_transaction(broker, ctx, transactional_id, &mut appends).await);
    }
    for (t, p, code, message) in refusals {
        answers.refuse(t, p, code, message);
    }
    // (topic index, partition index in it, partition, offset that must be committed)
    let mut waits: Vec<(usize, usize, Arc<Partition>, i64)> = Vec::new();
    for append in appends {
        let outcome = broker.replica_manager.append_to_leader(
            &append.partition,
            &append.records,
            acks,
            append.guard,
        );
        let (t, p) = (append.topic, append.index);
        match outcome {
            Ok((info, log_start_offset)) => {
                if !info.duplicate {
                    broker
                        .metrics
                        .bytes_in
                        .fetch_add(append.records.len() as u64, Ordering::Relaxed);
                    broker
                        .metrics
                        .records_in
                        .fetch_add(u64::from(info.records_count), Ordering::Relaxed);
                }
                let response = answers.partition(t, p);
                response.base_offset = info.first_offset;
                // log_start_offset arrived in v5.
                if ctx.version >= 5 {
                    response.log_start_offset = log_start_offset;
                }
                if acks == -1 {
                    waits.push((t, p, append.partition, info.last_offset + 1));
                }
            }
            Err(PartitionError::Kafka(code, message)) => answers.refuse(t, p, code, message),
            Err(PartitionError::Log(e)) => {
                if matches!(e, LogError::Io(_)) {
                    broker
                        .metrics
                        .storage_errors
                        .fetch_add(1, Ordering::Relaxed);
                    warn!(topic = %append.partition.topic, partition = append.partition.partition, error = %e, "append failed on disk");
                }
                answers.refuse(t, p, log_error_code(&e), Some(e.to_string()));
            }
        }
    }
    if !waits.is_empty() {
        let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
        let results = broker
            .replica_manager
            .wait_for_replication(
                waits.iter().map(|(_, _, p, o)| (p.clone(), *o)).collect(),
                timeout,
            )
            .await;
        for ((t, p, _, _), error) in waits.into_iter().zip(results) {
            if let Some(code) = error {
                answers.refuse(t, p, code, None);
            }
        }
    }
    let Answers {
        topics,
        hints,
        snapshot,
        ..
    } = answers;
    let mut response = ProduceResponse::default().with_responses(topics);
    // node_endpoints arrived in v10 (KIP-951).
    if ctx.version >= 10 {
        response.node_endpoints = node_endpoints!(NodeEndpoint, hints, snapshot, ctx.listener);
    }
    response
}

/// KIP-890 part 1, as Kafka's `ReplicaManager.handleProduceAppend`: a producer's
/// transactional write to a partition where its transaction is not open yet is appended
/// only once the transaction coordinator confirmed the partition is in the transaction.
/// Starts the verifications (the log hands out guards), asks the coordinator, and gives
/// each verified append its guard. Returns the partitions refused — removed from
/// `appends` — with their error: INVALID_TXN_STATE when the partition is not in the
/// transaction, NOT_ENOUGH_REPLICAS (retried by every client without a metadata
/// refresh) when the coordinator could not answer.
async fn verify_transaction(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    transactional_id: &str,
    appends: &mut Vec<Append>,
) -> Vec<(usize, usize, ResponseError, Option<String>)> {
    let mut refused = Vec::new();
    // (producer id, epoch) → the appends to verify for it.
    let mut to_verify: BTreeMap<(i64, i16), Vec<usize>> = BTreeMap::new();
    let now = crate::now_ms();
    for (i, append) in appends.iter_mut().enumerate() {
        let Ok(header) = BatchHeader::parse(&append.records) else {
            continue; // the append reports the malformed batch
        };
        if header.producer_id < 0 || !header.is_transactional() {
            continue;
        }
        match append.partition.maybe_start_transaction_verification(
            header.producer_id,
            header.base_sequence,
            header.producer_epoch,
            now,
        ) {
            Ok(None) => {}
            Ok(Some(guard)) => {
                append.guard = Some(guard);
                to_verify
                    .entry((header.producer_id, header.producer_epoch))
                    .or_default()
                    .push(i);
            }
            Err(PartitionError::Kafka(code, message)) => {
                refused.push((append.topic, append.index, code, message))
            }
            Err(PartitionError::Log(e)) => refused.push((
                append.topic,
                append.index,
                log_error_code(&e),
                Some(e.to_string()),
            )),
        }
    }
    for ((producer_id, producer_epoch), indexes) in to_verify {
        let partitions: Vec<(String, i32)> = indexes
            .iter()
            .map(|i| {
                let p = &appends[*i].partition;
                (p.topic.clone(), p.partition)
            })
            .collect();
        let failed = broker
            .txns
            .verify(
                broker,
                transactional_id,
                producer_id,
                producer_epoch,
                &partitions,
                // TRANSACTION_ABORTABLE arrived in Produce v11.
                ctx.version >= 11,
            )
            .await;
        for (i, key) in indexes.into_iter().zip(partitions) {
            if let Some(error) = failed.get(&key) {
                let (code, message) = verification_error(*error);
                refused.push((appends[i].topic, appends[i].index, code, message));
            }
        }
    }
    let refused_keys: HashSet<(usize, usize)> =
        refused.iter().map(|(t, p, _, _)| (*t, *p)).collect();
    appends.retain(|a| !refused_keys.contains(&(a.topic, a.index)));
    refused
}

/// What a producer is told when its write could not be verified (Kafka's translation:
/// older clients retry NOT_ENOUGH_REPLICAS correctly where they might not retry the
/// coordinator's own retriable errors).
fn verification_error(error: ResponseError) -> (ResponseError, Option<String>) {
    match error {
        ResponseError::InvalidTxnState => (
            error,
            Some("Partition was not added to the transaction".to_string()),
        ),
        ResponseError::ConcurrentTransactions
        | ResponseError::NetworkException
        | ResponseError::CoordinatorLoadInProgress
        | ResponseError::CoordinatorNotAvailable
        | ResponseError::NotCoordinator => (
            ResponseError::NotEnoughReplicas,
            Some(format!(
                "Unable to verify the partition has been added to the transaction. Underlying error: {error:?}"
            )),
        ),
        other => (other, None),
    }
}

/// KIP-951 (v10+): a partition refused because this broker does not lead it names the
/// leader this broker knows, so the producer retries there without a Metadata request.
fn hint_leader(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    hints: &mut LeaderHints,
    snapshot: &MetadataSnapshot,
    topic: &str,
    response: &mut PartitionProduceResponse,
) {
    let refused = [
        ResponseError::NotLeaderOrFollower.code(),
        ResponseError::FencedLeaderEpoch.code(),
    ];
    if ctx.version < 10 || !refused.contains(&response.error_code) {
        return;
    }
    let local = broker
        .replica_manager
        .get_partition(topic, response.index)
        .map(|p| p.leader_and_epoch());
    if let Some((leader, epoch)) = hints.leader(snapshot, topic, response.index, local) {
        response.current_leader = LeaderIdAndEpoch::default()
            .with_leader_id(BrokerId(leader))
            .with_leader_epoch(epoch);
    }
}

/// The client id Kafka's own admin tools use; Kafka lets it write internal topics
/// (`ReplicaManager`'s `internalTopicsAllowed`), for repairs by hand.
const ADMIN_CLIENT_ID: &str = "__admin_client";

/// Kafka's internal topics (`Topic.isInternal`): only the broker writes them.
fn is_internal(topic: &str) -> bool {
    topic == crate::group::OFFSETS_TOPIC || topic == crate::txn::TRANSACTION_STATE_TOPIC
}

fn set_error(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    response: &mut PartitionProduceResponse,
    code: ResponseError,
    message: Option<String>,
) {
    broker
        .metrics
        .produce_errors
        .fetch_add(1, Ordering::Relaxed);
    response.error_code = code.code();
    response.base_offset = -1;
    // record_errors and error_message arrived in v8.
    let detailed = ctx.version >= 8;
    if detailed && (code == ResponseError::CorruptMessage || code == ResponseError::InvalidRecord) {
        response.record_errors = vec![
            BatchIndexAndErrorMessage::default()
                .with_batch_index(0)
                .with_batch_index_error_message(message.clone().map(str_bytes)),
        ];
    }
    if detailed {
        response.error_message = message.map(str_bytes);
    }
}
