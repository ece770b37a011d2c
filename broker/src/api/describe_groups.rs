//! DescribeGroups (v0–v5): state, protocol and members with their assignments, and
//! what the requester may do with each group when asked (KIP-430).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    // KIP-430 (v3+): what the requester may do with each group it may describe.
    let with_operations = ctx.version >= 3 && request.include_authorized_operations;
    let mut response = broker
        .groups
        .query(|c| c.handle_describe_groups(request, ctx.version));
    for group in &mut response.groups {
        if !ctx.authorized(
            broker,
            Operation::Describe,
            ResourceType::Group,
            group.group_id.as_str(),
        ) {
            *group = DescribedGroup::default()
                .with_group_id(group.group_id.clone())
                .with_error_code(ResponseError::GroupAuthorizationFailed.code());
        } else if with_operations {
            group.authorized_operations =
                ctx.authorized_operations(broker, ResourceType::Group, group.group_id.as_str());
        }
    }
    response
}
