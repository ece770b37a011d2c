//! Heartbeat (v0–v4): keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use crate::{Broker, now_ms};
use kafka_protocol::ResponseError;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: HeartbeatRequest,
) -> HeartbeatResponse {
    if !ctx.authorized(
        broker,
        Operation::Read,
        ResourceType::Group,
        request.group_id.as_str(),
    ) {
        return HeartbeatResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    broker
        .groups
        .call_sync(|c| c.handle_heartbeat(request, now_ms()))
}
