//! AlterPartitionReassignments (v0): start, replace or cancel reassignments (KIP-455),
//! run by the controller.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};

use super::RequestContext;
use crate::Broker;
use crate::security::acl::Operation;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    if !ctx.cluster_authorized(broker, Operation::Alter) {
        return AlterPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    if !broker.controller.is_active() {
        return AlterPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::NotController.code());
    }
    broker.controller.alter_reassignments(request).await
}
