//! DescribeGroups (v0–v5): state, protocol and members with their assignments.

use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::RequestContext;
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    broker
        .groups
        .query(|c| c.handle_describe_groups(request, ctx.version))
}
