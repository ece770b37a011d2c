//! AllocateProducerIds (v0), to the controller: a block of producer ids for a broker's
//! InitProducerId (KIP-730).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, ProducerId,
};

use super::RequestContext;
use crate::Broker;
use crate::security::acl::Operation;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: AllocateProducerIdsRequest,
) -> AllocateProducerIdsResponse {
    if !ctx.cluster_authorized(broker, Operation::ClusterAction) {
        return AllocateProducerIdsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    match broker
        .controller
        .allocate_producer_ids(request.broker_id.0, request.broker_epoch)
        .await
    {
        Ok((first, len)) => AllocateProducerIdsResponse::default()
            .with_producer_id_start(ProducerId(first))
            .with_producer_id_len(len),
        Err(e) => AllocateProducerIdsResponse::default().with_error_code(e.code()),
    }
}
