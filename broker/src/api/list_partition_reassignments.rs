//! ListPartitionReassignments (v0): the reassignments in progress, from the controller.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use super::RequestContext;
use crate::Broker;
use crate::security::acl::Operation;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    if !ctx.cluster_authorized(broker, Operation::Describe) {
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    if !broker.controller.is_active() {
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::NotController.code());
    }
    broker.controller.list_reassignments(request).await
}
