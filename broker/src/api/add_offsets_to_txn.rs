//! AddOffsetsToTxn (v0–v4): a transactional producer about to commit a consumer group's
//! offsets in its transaction (`sendOffsetsToTransaction`) adds the group's
//! `__consumer_offsets` partition to it. Needs WRITE on the transactional id and READ on
//! the group.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use strata_transaction_coordinator::TxnResponse;

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let refused = |e: ResponseError| AddOffsetsToTxnResponse::default().with_error_code(e.code());
    if !ctx.authorized(
        broker,
        Operation::Write,
        ResourceType::TransactionalId,
        request.transactional_id.0.as_str(),
    ) {
        return refused(ResponseError::TransactionalIdAuthorizationFailed);
    }
    if !ctx.authorized(
        broker,
        Operation::Read,
        ResourceType::Group,
        request.group_id.0.as_str(),
    ) {
        return refused(ResponseError::GroupAuthorizationFailed);
    }
    let version = ctx.version;
    match broker
        .txns
        .call(|c, id, now| c.handle_add_offsets_to_txn(request, version, id, now))
        .await
    {
        Some(TxnResponse::AddOffsetsToTxn(response)) => response,
        _ => refused(ResponseError::NotCoordinator),
    }
}
