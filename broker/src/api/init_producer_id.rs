//! InitProducerId (v0–v5) for idempotent producers.
//!
//! A new producer gets a never-reused producer id with epoch 0 (from blocks the
//! controller reserves cluster-wide). A producer that passes
//! its current id and epoch (KIP-360, v3+) gets the epoch bumped, which resets its
//! sequence numbers; when the epoch would overflow it gets a fresh id instead.
//! Transactional ids are refused: transactions are not supported yet.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tracing::warn;

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    if request.transactional_id.is_some() {
        warn!(
            client = ctx.client_id(),
            "refusing a transactional producer: transactions are not supported"
        );
        response.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        response.producer_id = ProducerId(-1);
        response.producer_epoch = -1;
        return response;
    }
    // IdempotentWrite on the cluster, or Write on some topic (Kafka 3's rule, KIP-679).
    if !ctx.authorized_on_any(broker, Operation::Write, ResourceType::Topic)
        && !ctx.cluster_authorized(broker, Operation::IdempotentWrite)
    {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.producer_id = ProducerId(-1);
        response.producer_epoch = -1;
        return response;
    }
    if request.producer_id.0 >= 0
        && request.producer_epoch >= 0
        && request.producer_epoch < i16::MAX - 1
    {
        response.producer_id = request.producer_id;
        response.producer_epoch = request.producer_epoch + 1;
        return response;
    }
    match broker.producer_ids.next_producer_id(broker).await {
        Ok(id) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
        }
        Err(e) => {
            response.error_code = e.code();
            response.producer_id = ProducerId(-1);
            response.producer_epoch = -1;
        }
    }
    response
}
