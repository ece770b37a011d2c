//! ListGroups (v0–v5): every group, optionally filtered by state (v4+) and type (v5).

use kafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse};

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let mut response = broker
        .groups
        .query(|c| c.handle_list_groups(request, ctx.version));
    // DESCRIBE on the cluster lists every group; otherwise those the principal may
    // describe.
    if !ctx.may_see(
        broker,
        Operation::Describe,
        ResourceType::Cluster,
        CLUSTER_NAME,
    ) {
        response.groups.retain(|g| {
            ctx.may_see(
                broker,
                Operation::Describe,
                ResourceType::Group,
                g.group_id.as_str(),
            )
        });
    }
    response
}
