//! DescribeTransactions (v0, KIP-664): what `kafka-transactions.sh describe` shows. Needs
//! DESCRIBE on each transactional id; partitions of topics the caller may not describe
//! are left out, as Kafka does.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_transactions_response::TransactionState;
use kafka_protocol::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse};

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let (allowed, denied): (Vec<_>, Vec<_>) =
        request.transactional_ids.into_iter().partition(|id| {
            ctx.authorized(
                broker,
                Operation::Describe,
                ResourceType::TransactionalId,
                id.0.as_str(),
            )
        });
    let mut response = broker.txns.query(|c| {
        c.handle_describe_transactions(
            DescribeTransactionsRequest::default().with_transactional_ids(allowed),
        )
    });
    for state in &mut response.transaction_states {
        state.topics.retain(|t| {
            ctx.authorized(
                broker,
                Operation::Describe,
                ResourceType::Topic,
                t.topic.0.as_str(),
            )
        });
    }
    response
        .transaction_states
        .extend(denied.into_iter().map(|id| {
            TransactionState::default()
                .with_transactional_id(id)
                .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
        }));
    response
}
