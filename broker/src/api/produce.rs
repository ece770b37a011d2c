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

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use strata_storage::LogError;
use tracing::warn;

use super::{RequestContext, log_error_code, node_endpoints, str_bytes};
use crate::Broker;
use crate::metadata::cache::{LeaderHints, MetadataSnapshot};
use crate::replica::Partition;
use crate::replica::partition::PartitionError;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: ProduceRequest,
) -> ProduceResponse {
    let acks = request.acks;
    let mut topics = Vec::with_capacity(request.topic_data.len());
    // (topic index, partition index in it, partition, offset that must be committed)
    let mut waits: Vec<(usize, usize, Arc<Partition>, i64)> = Vec::new();
    let snapshot = broker.cache.snapshot();
    let mut hints = LeaderHints::default();
    // A transactional producer needs Write on its transactional id (Kafka's rule).
    let transactional_id_authorized = request.transactional_id.as_ref().is_none_or(|id| {
        ctx.authorized(
            broker,
            Operation::Write,
            ResourceType::TransactionalId,
            id.0.as_str(),
        )
    });
    for (t, topic) in request.topic_data.into_iter().enumerate() {
        let name = topic.name.0.to_string();
        let authorized = ctx.authorized(broker, Operation::Write, ResourceType::Topic, &name);
        let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
        for (p, data) in topic.partition_data.into_iter().enumerate() {
            let mut response = PartitionProduceResponse::default().with_index(data.index);
            let outcome: Result<(), (ResponseError, Option<String>)> = if !matches!(acks, -1..=1) {
                Err((ResponseError::InvalidRequiredAcks, None))
            } else if !authorized {
                Err((ResponseError::TopicAuthorizationFailed, None))
            } else if is_internal(&name) && ctx.client_id() != ADMIN_CLIENT_ID {
                // The group coordinator writes __consumer_offsets itself; a client's
                // records there would be read back as group metadata on the next load.
                Err((
                    ResponseError::InvalidTopicException,
                    Some(format!("Cannot append to internal topic {name}")),
                ))
            } else if !transactional_id_authorized {
                Err((ResponseError::TransactionalIdAuthorizationFailed, None))
            } else {
                match broker
                    .replica_manager
                    .leader_partition(&name, data.index, -1)
                {
                    Err(e) => Err((e, None)),
                    Ok(partition) => {
                        let records = data.records.unwrap_or_default();
                        match broker
                            .replica_manager
                            .append_to_leader(&partition, &records, acks)
                        {
                            Ok((info, log_start_offset)) => {
                                if !info.duplicate {
                                    broker
                                        .metrics
                                        .bytes_in
                                        .fetch_add(records.len() as u64, Ordering::Relaxed);
                                    broker.metrics.records_in.fetch_add(
                                        u64::from(info.records_count),
                                        Ordering::Relaxed,
                                    );
                                }
                                response.base_offset = info.first_offset;
                                // log_start_offset arrived in v5.
                                if ctx.version >= 5 {
                                    response.log_start_offset = log_start_offset;
                                }
                                if acks == -1 {
                                    waits.push((t, p, partition, info.last_offset + 1));
                                }
                                Ok(())
                            }
                            Err(PartitionError::Kafka(code, message)) => Err((code, message)),
                            Err(PartitionError::Log(e)) => {
                                if matches!(e, LogError::Io(_)) {
                                    broker
                                        .metrics
                                        .storage_errors
                                        .fetch_add(1, Ordering::Relaxed);
                                    warn!(topic = %name, partition = data.index, error = %e, "append failed on disk");
                                }
                                Err((log_error_code(&e), Some(e.to_string())))
                            }
                        }
                    }
                }
            };
            if let Err((code, message)) = outcome {
                set_error(broker, ctx, &mut response, code, message);
                hint_leader(broker, ctx, &mut hints, &snapshot, &name, &mut response);
                if code == ResponseError::UnknownTopicOrPartition {
                    tracing::debug!(client = ctx.client_id(), topic = %name, "produce to unknown topic or partition");
                }
            }
            partition_responses.push(response);
        }
        topics.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partition_responses),
        );
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
                let topic = &mut topics[t];
                let response = &mut topic.partition_responses[p];
                set_error(broker, ctx, response, code, None);
                hint_leader(broker, ctx, &mut hints, &snapshot, &topic.name.0, response);
            }
        }
    }
    let mut response = ProduceResponse::default().with_responses(topics);
    // node_endpoints arrived in v10 (KIP-951).
    if ctx.version >= 10 {
        response.node_endpoints = node_endpoints!(NodeEndpoint, hints, snapshot, ctx.listener);
    }
    response
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
