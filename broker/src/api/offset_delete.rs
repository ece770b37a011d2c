//! OffsetDelete (v0): drop committed offsets of partitions the group no longer consumes.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use strata_group_coordinator::GroupResponse;

use super::RequestContext;
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    _: &RequestContext<'_>,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    match broker
        .groups
        .call(|c, id, now| c.handle_offset_delete(request, id, now))
        .await
    {
        Some(GroupResponse::OffsetDelete(response)) => response,
        _ => OffsetDeleteResponse::default()
            .with_error_code(ResponseError::CoordinatorNotAvailable.code()),
    }
}
