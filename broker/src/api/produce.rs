//! Produce (v3+): validate and append record batches to partition leaders.
//!
//! Each partition's records go to `Partition::append_records_to_leader`, which validates
//! every batch (magic, length, CRC-32C, size against `max.message.bytes`), checks
//! idempotent producer sequences and assigns offsets. Errors are per partition: one bad
//! partition never fails another. acks=-1 waits for the whole ISR, which on a single
//! node is this broker once the append returns; `min.insync.replicas` is still enforced.

use std::sync::atomic::Ordering;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use strata_storage::LogError;
use tracing::warn;

use super::{RequestContext, log_error_code, str_bytes};
use crate::{Broker, now_ms};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: ProduceRequest,
) -> ProduceResponse {
    let acks = request.acks;
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut appended_any = false;
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let mut response = PartitionProduceResponse::default().with_index(data.index);
            let error = if !matches!(acks, -1..=1) {
                Some((ResponseError::InvalidRequiredAcks, None))
            } else if request.transactional_id.is_some() {
                Some((
                    ResponseError::TransactionalIdAuthorizationFailed,
                    Some("transactions are not supported by this broker".to_string()),
                ))
            } else {
                match broker.replica_manager.get_partition(&name, data.index) {
                    Some(partition) => {
                        let min_isr = partition.min_insync_replicas();
                        if acks == -1 && (partition.isr().len() as i32) < min_isr {
                            Some((
                                ResponseError::NotEnoughReplicas,
                                Some(format!(
                                    "the in-sync replica set has {} replica(s), min.insync.replicas is {min_isr}",
                                    partition.isr().len()
                                )),
                            ))
                        } else {
                            let records = data.records.unwrap_or_default();
                            match partition.append_records_to_leader(&records, now_ms()) {
                                Ok((info, log_start_offset)) => {
                                    if !info.duplicate {
                                        appended_any = true;
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
                                    None
                                }
                                Err(e) => {
                                    if matches!(e, LogError::Io(_)) {
                                        broker
                                            .metrics
                                            .storage_errors
                                            .fetch_add(1, Ordering::Relaxed);
                                        warn!(topic = %name, partition = data.index, error = %e, "append failed on disk");
                                    }
                                    Some((log_error_code(&e), Some(e.to_string())))
                                }
                            }
                        }
                    }
                    None => Some((ResponseError::UnknownTopicOrPartition, None)),
                }
            };
            if let Some((code, message)) = error {
                broker
                    .metrics
                    .produce_errors
                    .fetch_add(1, Ordering::Relaxed);
                response.error_code = code.code();
                response.base_offset = -1;
                // record_errors and error_message arrived in v8.
                let detailed = ctx.version >= 8;
                if detailed
                    && (code == ResponseError::CorruptMessage
                        || code == ResponseError::InvalidRecord)
                {
                    response.record_errors = vec![
                        BatchIndexAndErrorMessage::default()
                            .with_batch_index(0)
                            .with_batch_index_error_message(message.clone().map(str_bytes)),
                    ];
                }
                if detailed {
                    response.error_message = message.map(str_bytes);
                }
                if code == ResponseError::UnknownTopicOrPartition {
                    tracing::debug!(client = ctx.client_id(), topic = %name, "produce to unknown topic or partition");
                }
            }
            partition_responses.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partition_responses),
        );
    }
    if appended_any {
        broker.replica_manager.notify_appended();
    }
    ProduceResponse::default().with_responses(responses)
}
