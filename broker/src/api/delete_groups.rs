//! DeleteGroups (v0–v2): only empty groups can be deleted (NON_EMPTY_GROUP otherwise).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use strata_group_coordinator::GroupResponse;

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    mut request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    // DELETE on each group; the others are answered without reaching the coordinator.
    let (allowed, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut request.groups_names)
        .into_iter()
        .partition(|g| ctx.authorized(broker, Operation::Delete, ResourceType::Group, g.as_str()));
    request.groups_names = allowed;
    let denied: Vec<DeletableGroupResult> = denied
        .into_iter()
        .map(|g| {
            DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(ResponseError::GroupAuthorizationFailed.code())
        })
        .collect();
    if request.groups_names.is_empty() {
        return DeleteGroupsResponse::default().with_results(denied);
    }
    let unavailable = DeleteGroupsResponse::default().with_results(
        request
            .groups_names
            .iter()
            .map(|g| {
                DeletableGroupResult::default()
                    .with_group_id(g.clone())
                    .with_error_code(ResponseError::CoordinatorNotAvailable.code())
            })
            .collect(),
    );
    let mut response = match broker
        .groups
        .call(|c, id, now| c.handle_delete_groups(request, id, now))
        .await
    {
        Some(GroupResponse::DeleteGroups(response)) => response,
        _ => unavailable,
    };
    response.results.extend(denied);
    response
}
