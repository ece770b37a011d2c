//! DeleteGroups (v0–v2): only empty groups can be deleted (NON_EMPTY_GROUP otherwise).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use strata_group_coordinator::GroupResponse;

use super::RequestContext;
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    _: &RequestContext<'_>,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
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
    match broker
        .groups
        .call(|c, id, now| c.handle_delete_groups(request, id, now))
        .await
    {
        Some(GroupResponse::DeleteGroups(response)) => response,
        _ => unavailable,
    }
}
