//! OffsetCommit (v2–v9): acknowledged once the offsets are in `__consumer_offsets`.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use strata_group_coordinator::GroupResponse;

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let version = ctx.version;
    // READ on the group for every partition; READ on each topic for its own.
    let group_ok = ctx.authorized(
        broker,
        Operation::Read,
        ResourceType::Group,
        request.group_id.as_str(),
    );
    let mut request = request;
    let refused: Vec<_> = if !group_ok {
        std::mem::take(&mut request.topics)
            .into_iter()
            .map(|t| (t, ResponseError::GroupAuthorizationFailed))
            .collect()
    } else {
        let (allowed, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
            .into_iter()
            .partition(|t| {
                ctx.authorized(
                    broker,
                    Operation::Read,
                    ResourceType::Topic,
                    t.name.as_str(),
                )
            });
        request.topics = allowed;
        denied
            .into_iter()
            .map(|t| (t, ResponseError::TopicAuthorizationFailed))
            .collect()
    };
    let refused: Vec<OffsetCommitResponseTopic> = refused
        .into_iter()
        .map(|(t, error)| {
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(error.code())
                        })
                        .collect(),
                )
        })
        .collect();
    if request.topics.is_empty() {
        return OffsetCommitResponse::default().with_topics(refused);
    }
    // If the coordinator drops the request (its partition was unloaded), every
    // partition is told to retry against the coordinator it finds next.
    let unavailable = OffsetCommitResponse::default().with_topics(
        request
            .topics
            .iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(ResponseError::CoordinatorNotAvailable.code())
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    let mut response = match broker
        .groups
        .call(|c, id, now| c.handle_offset_commit(request, version, id, now))
        .await
    {
        Some(GroupResponse::OffsetCommit(response)) => response,
        _ => unavailable,
    };
    response.topics.extend(refused);
    response
}
