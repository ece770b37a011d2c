//! CreatePartitions (v0–v3): grow a topic; shrinking is refused with INVALID_PARTITIONS.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

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
        let assignment_ok = topic.assignments.as_ref().is_none_or(|assignments| {
            assignments
                .iter()
                .all(|a| a.broker_ids.iter().all(|b| b.0 == broker.config.broker_id))
        });
        let outcome = if assignment_ok {
            broker.create_partitions(&name, topic.count, request.validate_only)
        } else {
            Err((
                ResponseError::InvalidReplicaAssignment,
                "Replica assignment names a broker that is not registered.".to_string(),
            ))
        };
        if let Err((code, message)) = outcome {
            result.error_code = code.code();
            result.error_message = Some(str_bytes(message));
        }
        results.push(result);
    }
    CreatePartitionsResponse::default().with_results(results)
}
