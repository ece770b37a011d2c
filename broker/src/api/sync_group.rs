//! SyncGroup (v0–v5): members wait for the leader's assignment to be stored.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use strata_group_coordinator::GroupResponse;

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    if !ctx.authorized(
        broker,
        Operation::Read,
        ResourceType::Group,
        request.group_id.as_str(),
    ) {
        return SyncGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let version = ctx.version;
    match broker
        .groups
        .call(|c, id, now| c.handle_sync_group(request, version, id, now))
        .await
    {
        Some(GroupResponse::SyncGroup(response)) => response,
        _ => SyncGroupResponse::default()
            .with_error_code(ResponseError::CoordinatorNotAvailable.code()),
    }
}
