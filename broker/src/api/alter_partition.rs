//! AlterPartition (v2–v3), to the controller: a leader's ISR change (KIP-497).

use kafka_protocol::messages::{AlterPartitionRequest, AlterPartitionResponse};

use super::RequestContext;
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    _: &RequestContext<'_>,
    request: AlterPartitionRequest,
) -> AlterPartitionResponse {
    broker.controller.alter_partition(request).await
}
