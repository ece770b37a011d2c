//! CreatePartitions (v0–v3): grow a topic (its new partitions assigned as Kafka would, or
//! as given); shrinking is refused with INVALID_PARTITIONS. Answered once the controller
//! has elected the new partitions' leaders.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use std::time::Duration;

use super::{RequestContext, str_bytes};
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    _: &RequestContext<'_>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        // An empty list is no assignment at all (some clients send [] for null).
        let manual = topic
            .assignments
            .as_ref()
            .filter(|a| !a.is_empty())
            .map(|assignments| {
                assignments
                    .iter()
                    .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            });
        let mut outcome = broker
            .create_partitions(&name, topic.count, manual, request.validate_only)
            .await;
        // A timeout of 0 answers at once, as Kafka's does.
        if outcome.is_ok() && !request.validate_only && request.timeout_ms > 0 {
            let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
            if !broker.wait_for_leaders(&name, topic.count, timeout).await {
                outcome = Err((
                    ResponseError::RequestTimedOut,
                    format!("Timed out waiting for the new partitions of topic {name}"),
                ));
            }
        }
        if let Err((code, message)) = outcome {
            result.error_code = code.code();
            result.error_message = Some(str_bytes(message));
        }
        results.push(result);
    }
    CreatePartitionsResponse::default().with_results(results)
}
