//! AddPartitionsToTxn (v0–v4): a transactional producer adds the partitions it is about to
//! write to its transaction, so the coordinator knows where to write the markers.
//!
//! v0–v3 come from producers and need WRITE on the transactional id and on every topic;
//! a partition of an unknown topic, or one the producer may not write, fails the whole
//! request (the other partitions answer OPERATION_NOT_ATTEMPTED), as Kafka does. v4
//! batches several transactions and comes from brokers verifying a producer's write
//! (KIP-890), which needs CLUSTER_ACTION.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use strata_transaction_coordinator::TxnResponse;

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let version = ctx.version;
    if version >= 4 {
        if !ctx.cluster_authorized(broker, Operation::ClusterAction) {
            return AddPartitionsToTxnResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
        }
    } else if let Some(refused) = refuse(broker, ctx, &request) {
        return refused;
    }
    match broker
        .txns
        .call(|c, id, now| c.handle_add_partitions_to_txn(request, version, id, now))
        .await
    {
        Some(TxnResponse::AddPartitionsToTxn(response)) => response,
        _ => AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::NotCoordinator.code()),
    }
}

/// The answer to a producer's request that may not go ahead: no WRITE on the
/// transactional id or on a topic, or a topic that does not exist.
fn refuse(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: &AddPartitionsToTxnRequest,
) -> Option<AddPartitionsToTxnResponse> {
    let transactional_id = request.v3_and_below_transactional_id.0.as_str();
    let id_ok = ctx.authorized(
        broker,
        Operation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    );
    let snapshot = broker.cache.snapshot();
    let errors: Vec<Option<ResponseError>> = request
        .v3_and_below_topics
        .iter()
        .map(|t| {
            let name = t.name.0.as_str();
            if !id_ok {
                Some(ResponseError::TransactionalIdAuthorizationFailed)
            } else if !ctx.authorized(broker, Operation::Write, ResourceType::Topic, name) {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if !snapshot.topics.get(name).is_some_and(|topic| {
                t.partitions
                    .iter()
                    .all(|p| topic.partitions.contains_key(p))
            }) {
                Some(ResponseError::UnknownTopicOrPartition)
            } else {
                None
            }
        })
        .collect();
    if errors.iter().all(Option::is_none) {
        return None;
    }
    let topics = request
        .v3_and_below_topics
        .iter()
        .zip(errors)
        .map(|(t, error)| {
            let code = error.unwrap_or(ResponseError::OperationNotAttempted).code();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    Some(AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics))
}
