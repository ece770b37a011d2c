//! TxnOffsetCommit (v0–v4): a transactional producer commits a consumer group's offsets
//! inside its transaction (`sendOffsetsToTransaction`). The group coordinator writes them
//! to `__consumer_offsets` as part of the producer's transaction; they become the group's
//! committed offsets when the COMMIT marker reaches that partition and vanish on ABORT.
//! Needs WRITE on the transactional id, READ on the group and on each topic.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestTopic;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use strata_group_coordinator::GroupResponse;

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

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
    let mut response = match broker
        .groups
        .call(|c, id, now| c.handle_txn_offset_commit(request, version, id, now))
        .await
    {
        Some(GroupResponse::TxnOffsetCommit(response)) => response,
        _ => unavailable,
    };
    response.topics.extend(refused);
    response
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
