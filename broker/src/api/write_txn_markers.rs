//! WriteTxnMarkers (v1): a transaction coordinator — this broker's own or another
//! broker's, Strata or Apache Kafka — ends a transaction on the partitions this broker
//! leads.
//!
//! For every marker and partition the leader appends a COMMIT or ABORT control batch for
//! the producer (fenced when an older producer or coordinator epoch asks), then the
//! answer waits until the markers are replicated to the ISR (acks=all, as Kafka's
//! `handleWriteTxnMarkersRequest`). A marker on a `__consumer_offsets` partition also
//! completes the producer's transactional offset commits there: committed offsets become
//! visible, aborted ones vanish. Brokers only: CLUSTER_ACTION on the cluster.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use strata_storage::{ControlType, EndTxnMarker};
use tracing::debug;

use super::{RequestContext, log_error_code};
use crate::Broker;
use crate::group::OFFSETS_TOPIC;
use crate::replica::Partition;
use crate::replica::partition::PartitionError;
use crate::security::acl::Operation;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    if !ctx.cluster_authorized(broker, Operation::ClusterAction) {
        return answer_all(&request, ResponseError::ClusterAuthorizationFailed);
    }
    write_markers(broker, &request, broker.config.request_timeout()).await
}

/// Every partition of the request answered with `error`.
fn answer_all(request: &WriteTxnMarkersRequest, error: ResponseError) -> WriteTxnMarkersResponse {
    answer(request, |_, _, _| Some(error))
}

/// The response to `request`, each partition with `error_of(marker, topic, partition)`
/// (indexes into the request).
fn answer(
    request: &WriteTxnMarkersRequest,
    error_of: impl Fn(usize, usize, usize) -> Option<ResponseError>,
) -> WriteTxnMarkersResponse {
    let markers = request
        .markers
        .iter()
        .enumerate()
        .map(|(m, marker)| {
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(
                    marker
                        .topics
                        .iter()
                        .enumerate()
                        .map(|(t, topic)| {
                            WritableTxnMarkerTopicResult::default()
                                .with_name(topic.name.clone())
                                .with_partitions(
                                    topic
                                        .partition_indexes
                                        .iter()
                                        .enumerate()
                                        .map(|(i, index)| {
                                            WritableTxnMarkerPartitionResult::default()
                                                .with_partition_index(*index)
                                                .with_error_code(
                                                    error_of(m, t, i).map_or(0, |e| e.code()),
                                                )
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                )
        })
        .collect();
    WriteTxnMarkersResponse::default().with_markers(markers)
}

/// Appends the markers this broker leads and waits for their replication; also what the
/// local transaction coordinator calls for partitions led here.
pub async fn write_markers(
    broker: &Broker,
    request: &WriteTxnMarkersRequest,
    timeout: Duration,
) -> WriteTxnMarkersResponse {
    // (marker index, topic index, partition index in topic) → outcome
    let mut results: Vec<Vec<Vec<Option<ResponseError>>>> = Vec::new();
    let mut waits: Vec<(usize, usize, usize, Arc<Partition>, i64)> = Vec::new();
    for (m, marker) in request.markers.iter().enumerate() {
        let end = EndTxnMarker {
            producer_id: marker.producer_id.0,
            producer_epoch: marker.producer_epoch,
            coordinator_epoch: marker.coordinator_epoch,
            control: if marker.transaction_result {
                ControlType::Commit
            } else {
                ControlType::Abort
            },
        };
        let mut topics = Vec::with_capacity(marker.topics.len());
        for (t, topic) in marker.topics.iter().enumerate() {
            let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
            for (i, &index) in topic.partition_indexes.iter().enumerate() {
                let outcome = broker
                    .replica_manager
                    .leader_partition(topic.name.0.as_str(), index, -1)
                    .map_err(PartitionError::from)
                    .and_then(|p| {
                        let offset = broker.replica_manager.append_marker(&p, &end)?;
                        Ok((p, offset))
                    });
                partitions.push(match outcome {
                    Ok((p, offset)) => {
                        waits.push((m, t, i, p, offset + 1));
                        None
                    }
                    Err(PartitionError::Kafka(code, _)) => Some(code),
                    Err(PartitionError::Log(e)) => {
                        debug!(topic = %topic.name.0, partition = index, error = %e, "transaction marker refused");
                        Some(log_error_code(&e))
                    }
                });
            }
            topics.push(partitions);
        }
        results.push(topics);
    }
    if !waits.is_empty() {
        let outcomes = broker
            .replica_manager
            .wait_for_replication(
                waits
                    .iter()
                    .map(|(_, _, _, p, offset)| (p.clone(), *offset))
                    .collect(),
                timeout,
            )
            .await;
        for ((m, t, i, p, _), error) in waits.into_iter().zip(outcomes) {
            results[m][t][i] = error;
            if error.is_none() && p.topic == OFFSETS_TOPIC {
                let marker = &request.markers[m];
                broker.groups.complete_transaction(
                    p.partition,
                    marker.producer_id.0,
                    marker.transaction_result,
                );
            }
        }
    }
    answer(request, |m, t, i| results[m][t][i])
}
