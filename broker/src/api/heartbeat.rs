//! Heartbeat (v0–v4): keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::RequestContext;
use crate::{Broker, now_ms};

pub async fn handle(
    broker: &Broker,
    _: &RequestContext<'_>,
    request: HeartbeatRequest,
) -> HeartbeatResponse {
    broker
        .groups
        .call_sync(|c| c.handle_heartbeat(request, now_ms()))
}
