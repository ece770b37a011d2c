//! CreatePartitions (v0–v3): grow a topic (its new partitions assigned as Kafka would, or
//! as given); shrinking is refused with INVALID_PARTITIONS, more than
//! [`MAX_PARTITIONS_PER_BATCH`] new partitions in one request with POLICY_VIOLATION, as
//! Kafka does. Answered once the controller has elected the new partitions' leaders.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use std::time::Duration;

use super::{RequestContext, str_bytes};
use crate::Broker;
use crate::admin::{EXCESSIVE_PARTITIONS, MAX_PARTITIONS_PER_BATCH};
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    let total: i64 = request
        .topics
        .iter()
        .map(|t| {
            let current = broker
                .topic(t.name.0.as_str())
                .map_or(0, |d| i64::from(d.partitions));
            (i64::from(t.count) - current).max(0)
        })
        .sum();
    if total > MAX_PARTITIONS_PER_BATCH {
        for topic in request.topics {
            results.push(
                CreatePartitionsTopicResult::default()
                    .with_name(topic.name)
                    .with_error_code(ResponseError::PolicyViolation.code())
                    .with_error_message(Some(str_bytes(EXCESSIVE_PARTITIONS))),
            );
        }
        return CreatePartitionsResponse::default().with_results(results);
    }
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        if !ctx.authorized(broker, Operation::Alter, ResourceType::Topic, &name) {
            results.push(result.with_error_code(ResponseError::TopicAuthorizationFailed.code()));
            continue;
        }
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
