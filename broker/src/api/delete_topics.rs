//! DeleteTopics (v1–v6): by name, or by topic id at v6.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};

use super::{RequestContext, str_bytes};
use crate::Broker;

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
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let mut result = DeletableTopicResult::default();
        let resolved = match &name {
            Some(n) => Some(n.clone()),
            None => broker.metadata.topic_by_id(id).map(|t| t.name),
        };
        match resolved {
            None => {
                // Only v6 requests name topics by id, so only v6 answers carry one.
                result.topic_id = id;
                result.error_code = ResponseError::UnknownTopicId.code();
            }
            Some(n) => match broker.delete_topic(&n) {
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
