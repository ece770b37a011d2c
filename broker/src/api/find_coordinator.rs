//! FindCoordinator (v0–v5): this broker coordinates every group.

use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use strata_group_coordinator::CoordinatorNode;

use super::RequestContext;
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let endpoint = broker.config.advertised_endpoint();
    let node = CoordinatorNode {
        node_id: broker.config.broker_id,
        host: endpoint.host,
        port: i32::from(endpoint.port),
    };
    broker
        .groups
        .query(|c| c.handle_find_coordinator(request, ctx.version, &node))
}
