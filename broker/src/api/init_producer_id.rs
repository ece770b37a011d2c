//! InitProducerId (v0–v5).
//!
//! An idempotent producer gets a never-reused producer id with epoch 0 (from blocks the
//! controller reserves cluster-wide). One that passes its current id and epoch (KIP-360,
//! v3+) gets the epoch bumped, which resets its sequence numbers; when the epoch would
//! overflow it gets a fresh id instead.
//!
//! A transactional producer asks the coordinator of its transactional id (WRITE on it
//! needed), which keeps one producer id per transactional id and bumps its epoch on every
//! InitProducerId — fencing the previous instance and aborting a transaction it left open
//! (see [`crate::txn`]).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use strata_transaction_coordinator::TxnResponse;

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    if let Some(transactional_id) = &request.transactional_id {
        response.producer_id = ProducerId(-1);
        response.producer_epoch = -1;
        if !ctx.authorized(
            broker,
            Operation::Write,
            ResourceType::TransactionalId,
            transactional_id.0.as_str(),
        ) {
            response.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
            return response;
        }
        // Used only if the coordinator needs a new id; -1 makes it answer
        // COORDINATOR_LOAD_IN_PROGRESS if it does and none could be had.
        let fresh = broker
            .producer_ids
            .next_producer_id(broker)
            .await
            .unwrap_or(-1);
        let version = ctx.version;
        return match broker
            .txns
            .call(|c, id, now| c.handle_init_producer_id(request, version, id, fresh, now))
            .await
        {
            Some(TxnResponse::InitProducerId(answer)) => answer,
            _ => {
                response.error_code = ResponseError::NotCoordinator.code();
                response
            }
        };
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
