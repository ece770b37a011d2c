//! TxnOffsetCommit (v0–v4): a transactional producer commits a consumer group's offsets
//! inside its transaction (`sendOffsetsToTransaction`). The group coordinator writes them
//! to `__consumer_offsets` as part of the producer's transaction; they become the group's
//! committed offsets when the COMMIT marker reaches that partition and vanish on ABORT.
//! Needs WRITE on the transactional id, READ on the group and on each topic.
//!
//! Like a producer's first write to a partition (KIP-890 part 1), the first offset
//! commit of a transaction is verified with the transaction coordinator — the group's
//! `__consumer_offsets` partition must be in the transaction (AddOffsetsToTxn put it
//! there) — and appended with the verification's guard, so a commit delayed past the
//! end of its transaction cannot leave one open there for ever. Errors are translated as
//! Kafka's group coordinator does.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestTopic;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use strata_group_coordinator::GroupResponse;
use strata_storage::VerificationGuard;

use super::RequestContext;
use crate::group::OFFSETS_TOPIC;
use crate::security::acl::{Operation, ResourceType};
use crate::{Broker, now_ms};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    mut request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let version = ctx.version;
    let everything = |topics: &[TxnOffsetCommitRequestTopic], error: ResponseError| {
        answer(topics.iter().map(|t| (t, error)))
    };
    if !ctx.authorized(
        broker,
        Operation::Write,
        ResourceType::TransactionalId,
        request.transactional_id.0.as_str(),
    ) {
        return TxnOffsetCommitResponse::default().with_topics(everything(
            &request.topics,
            ResponseError::TransactionalIdAuthorizationFailed,
        ));
    }
    if !ctx.authorized(
        broker,
        Operation::Read,
        ResourceType::Group,
        request.group_id.0.as_str(),
    ) {
        return TxnOffsetCommitResponse::default().with_topics(everything(
            &request.topics,
            ResponseError::GroupAuthorizationFailed,
        ));
    }
    let (allowed, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
        .into_iter()
        .partition(|t| {
            ctx.authorized(
                broker,
                Operation::Read,
                ResourceType::Topic,
                t.name.0.as_str(),
            )
        });
    let refused = answer(
        denied
            .iter()
            .map(|t| (t, ResponseError::TopicAuthorizationFailed)),
    );
    request.topics = allowed;
    if request.topics.is_empty() {
        return TxnOffsetCommitResponse::default().with_topics(refused);
    }
    // If the coordinator drops the request (its partition was unloaded), the producer is
    // told to find the coordinator again.
    let unavailable = TxnOffsetCommitResponse::default().with_topics(everything(
        &request.topics,
        ResponseError::CoordinatorNotAvailable,
    ));
    let guard = match verify(broker, &request).await {
        Ok(guard) => guard,
        Err(error) => {
            let mut response =
                TxnOffsetCommitResponse::default().with_topics(everything(&request.topics, error));
            response.topics.extend(refused);
            return response;
        }
    };
    let mut response = match broker
        .groups
        .call_verified(guard, |c, id, now| {
            c.handle_txn_offset_commit(request, version, id, now)
        })
        .await
    {
        Some(GroupResponse::TxnOffsetCommit(response)) => response,
        _ => unavailable,
    };
    response.topics.extend(refused);
    response
}

/// Starts and completes the verification of the commit's transaction on the group's
/// `__consumer_offsets` partition: the guard to append with (`None` when the transaction
/// is open there already, or verification is off), or the error to answer with.
async fn verify(
    broker: &Broker,
    request: &TxnOffsetCommitRequest,
) -> Result<Option<VerificationGuard>, ResponseError> {
    let partition_index = broker
        .groups
        .query(|c| c.partition_for(&request.group_id.0));
    let partition = broker
        .replica_manager
        .leader_partition(OFFSETS_TOPIC, partition_index, -1)
        .map_err(|_| ResponseError::NotCoordinator)?;
    let (producer_id, producer_epoch) = (request.producer_id.0, request.producer_epoch);
    let guard = partition
        .maybe_start_transaction_verification(producer_id, -1, producer_epoch, now_ms())
        .map_err(|_| ResponseError::NotCoordinator)?;
    let Some(guard) = guard else {
        return Ok(None);
    };
    let key = (OFFSETS_TOPIC.to_string(), partition_index);
    let failed = broker
        .txns
        .verify(
            broker,
            &request.transactional_id.0,
            producer_id,
            producer_epoch,
            std::slice::from_ref(&key),
            // TRANSACTION_ABORTABLE arrived in TxnOffsetCommit v5 (not served).
            false,
        )
        .await;
    match failed.get(&key) {
        None => Ok(Some(guard)),
        // Kafka's `maybeConvertOffsetCommitError`: errors every client retries.
        Some(ResponseError::NetworkException) => Err(ResponseError::CoordinatorLoadInProgress),
        Some(
            ResponseError::UnknownTopicOrPartition
            | ResponseError::NotEnoughReplicas
            | ResponseError::NotEnoughReplicasAfterAppend,
        ) => Err(ResponseError::CoordinatorNotAvailable),
        Some(ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError) => {
            Err(ResponseError::NotCoordinator)
        }
        Some(error) => Err(*error),
    }
}

fn answer<'a>(
    topics: impl Iterator<Item = (&'a TxnOffsetCommitRequestTopic, ResponseError)>,
) -> Vec<TxnOffsetCommitResponseTopic> {
    topics
        .map(|(t, error)| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(error.code())
                        })
                        .collect(),
                )
        })
        .collect()
}
