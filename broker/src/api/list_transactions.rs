//! ListTransactions (v0–v2, KIP-664 and KIP-994): the transactional ids this broker
//! coordinates, filtered by state, producer id, duration (v1) and a regular expression
//! over the id (v2); ids the caller may not DESCRIBE are left out.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse};

use super::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use crate::{Broker, now_ms};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let version = ctx.version;
    let pattern = match request.transactional_id_pattern.as_deref() {
        Some(p) if version >= 2 && !p.is_empty() => {
            match regex::Regex::new(&format!("^(?:{p})$")) {
                Ok(re) => Some(re),
                Err(_) => {
                    return ListTransactionsResponse::default()
                        .with_error_code(ResponseError::InvalidRegularExpression.code());
                }
            }
        }
        _ => None,
    };
    let mut response = broker.txns.query(|c| {
        c.handle_list_transactions(request, version, now_ms(), |id| {
            pattern.as_ref().is_none_or(|re| re.is_match(id))
        })
    });
    response.transaction_states.retain(|s| {
        ctx.authorized(
            broker,
            Operation::Describe,
            ResourceType::TransactionalId,
            s.transactional_id.0.as_str(),
        )
    });
    response
}
