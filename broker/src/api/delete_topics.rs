//! DeleteTopics (v1–v6): by name, or by topic id at v6. The topic is queued for the
//! controller, which stops and deletes every replica; the answer comes once the topic is
//! gone from this broker's metadata (or the request's timeout passed).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};

use std::time::Duration;

use super::{RequestContext, str_bytes};
use crate::Broker;
use crate::admin::{AdminError, TopicDescription};
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let mut targets: Vec<(Option<String>, uuid::Uuid)> = request
        .topic_names
        .iter()
        .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
        .collect();
    targets.extend(
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)),
    );
    let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let mut result = DeletableTopicResult::default();
        let resolved = match &name {
            Some(n) => Some(n.clone()),
            None => broker.cache.snapshot().topic_name(id).map(str::to_string),
        };
        match resolved {
            None => {
                // Only v6 requests name topics by id, so only v6 answers carry one.
                result.topic_id = id;
                result.error_code = ResponseError::UnknownTopicId.code();
            }
            Some(n) if !ctx.authorized(broker, Operation::Delete, ResourceType::Topic, &n) => {
                result.name = Some(TopicName(str_bytes(n)));
                result.error_code = ResponseError::TopicAuthorizationFailed.code();
            }
            Some(n) => match delete(broker, &n, timeout).await {
                Ok(deleted) => {
                    result.name = Some(TopicName(str_bytes(n)));
                    if ctx.version >= 6 {
                        result.topic_id = deleted.topic_id;
                    }
                }
                Err((code, message)) => {
                    result.name = Some(TopicName(str_bytes(n)));
                    result.error_code = code.code();
                    if ctx.version >= 5 {
                        result.error_message = Some(str_bytes(message));
                    }
                }
            },
        }
        responses.push(result);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

async fn delete(
    broker: &Broker,
    name: &str,
    timeout: Duration,
) -> Result<TopicDescription, AdminError> {
    let topic = broker.delete_topic(name).await?;
    // A timeout of 0 answers at once, as Kafka's does.
    if timeout.is_zero() || broker.wait_for_deletion(name, timeout).await {
        Ok(topic)
    } else {
        Err((
            ResponseError::RequestTimedOut,
            format!("Timed out waiting for the deletion of topic {name}"),
        ))
    }
}
