//! OffsetDelete (v0): drop committed offsets of partitions the group no longer consumes.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use strata_group_coordinator::GroupResponse;

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    mut request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    // DELETE on the group; READ on each topic whose offsets go.
    if !ctx.authorized(
        broker,
        Operation::Delete,
        ResourceType::Group,
        request.group_id.as_str(),
    ) {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
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
    let denied: Vec<OffsetDeleteResponseTopic> = denied
        .into_iter()
        .map(|t| {
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                        })
                        .collect(),
                )
        })
        .collect();
    let mut response = match broker
        .groups
        .call(|c, id, now| c.handle_offset_delete(request, id, now))
        .await
    {
        Some(GroupResponse::OffsetDelete(response)) => response,
        _ => OffsetDeleteResponse::default()
            .with_error_code(ResponseError::CoordinatorNotAvailable.code()),
    };
    response.topics.extend(denied);
    response
}
