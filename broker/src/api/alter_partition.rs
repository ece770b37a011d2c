//! AlterPartition (v2–v3), to the controller: a leader's ISR change (KIP-497).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{AlterPartitionRequest, AlterPartitionResponse};

use super::RequestContext;
use crate::Broker;
use crate::security::acl::Operation;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: AlterPartitionRequest,
) -> AlterPartitionResponse {
    if !ctx.cluster_authorized(broker, Operation::ClusterAction) {
        return AlterPartitionResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    broker.controller.alter_partition(request).await
}
