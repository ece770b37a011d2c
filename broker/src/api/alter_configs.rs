//! AlterConfigs (v0–v2), the pre-KIP-339 form: the given configs *replace* all of a
//! topic's overrides (anything not listed returns to its default). Still used by
//! librdkafka's `alter_configs` and older tools.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::describe_configs::{RESOURCE_TOPIC, config_denied};
use super::{RequestContext, str_bytes};
use crate::Broker;
use crate::security::acl::Operation;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let mut response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let name = resource.resource_name.to_string();
        let configs: BTreeMap<String, String> = resource
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        let denied = config_denied(
            broker,
            ctx,
            Operation::AlterConfigs,
            resource.resource_type,
            &name,
        );
        let outcome = if let Some(error) = denied {
            Err((error, "Authorization failed.".to_string()))
        } else if resource.resource_type != RESOURCE_TOPIC {
            Err((
                ResponseError::InvalidRequest,
                "only topic configs can be altered on this broker".to_string(),
            ))
        } else if broker.topic(&name).is_none() {
            Err((
                ResponseError::UnknownTopicOrPartition,
                format!("Topic {name} does not exist"),
            ))
        } else if request.validate_only {
            broker.validate_topic_configs(&configs)
        } else {
            broker.set_topic_configs(&name, configs).await
        };
        if let Err((code, message)) = outcome {
            response.error_code = code.code();
            response.error_message = Some(str_bytes(message));
        }
        responses.push(response);
    }
    AlterConfigsResponse::default().with_responses(responses)
}
