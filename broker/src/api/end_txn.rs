//! EndTxn (v0–v4): a transactional producer commits or aborts. The coordinator records
//! PrepareCommit/PrepareAbort in `__transaction_state`, answers, and then writes the
//! markers to every partition of the transaction (see [`crate::txn`]). Needs WRITE on the
//! transactional id.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use strata_transaction_coordinator::TxnResponse;

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: EndTxnRequest,
) -> EndTxnResponse {
    let refused = |e: ResponseError| EndTxnResponse::default().with_error_code(e.code());
    if !ctx.authorized(
        broker,
        Operation::Write,
        ResourceType::TransactionalId,
        request.transactional_id.0.as_str(),
    ) {
        return refused(ResponseError::TransactionalIdAuthorizationFailed);
    }
    let version = ctx.version;
    match broker
        .txns
        .call(|c, id, now| c.handle_end_txn(request, version, id, now))
        .await
    {
        Some(TxnResponse::EndTxn(response)) => response,
        _ => refused(ResponseError::NotCoordinator),
    }
}
