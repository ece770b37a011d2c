//! ListGroups (v0–v5): every group, optionally filtered by state (v4+) and type (v5).

use kafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse};

use super::RequestContext;
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    broker
        .groups
        .query(|c| c.handle_list_groups(request, ctx.version))
}
