//! LeaveGroup (v0–v5): one or (v3+) several members leave, triggering a rebalance.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use strata_group_coordinator::GroupResponse;

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    if !ctx.authorized(
        broker,
        Operation::Read,
        ResourceType::Group,
        request.group_id.as_str(),
    ) {
        return LeaveGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let version = ctx.version;
    match broker
        .groups
        .call(|c, id, now| c.handle_leave_group(request, version, id, now))
        .await
    {
        Some(GroupResponse::LeaveGroup(response)) => response,
        _ => LeaveGroupResponse::default()
            .with_error_code(ResponseError::CoordinatorNotAvailable.code()),
    }
}
