//! JoinGroup (v0–v9): answered when the rebalance's join phase ends.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use strata_group_coordinator::GroupResponse;

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    if !ctx.authorized(
        broker,
        Operation::Read,
        ResourceType::Group,
        request.group_id.as_str(),
    ) {
        return JoinGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let version = ctx.version;
    let client_id = ctx.client_id().to_string();
    let client_host = format!("/{}", ctx.peer.ip());
    match broker
        .groups
        .call(|c, id, now| c.handle_join_group(request, version, &client_id, &client_host, id, now))
        .await
    {
        Some(GroupResponse::JoinGroup(response)) => response,
        _ => JoinGroupResponse::default()
            .with_error_code(ResponseError::CoordinatorNotAvailable.code()),
    }
}
