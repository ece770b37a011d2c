//! IncrementalAlterConfigs (v0–v1) for topic configs: SET, DELETE, APPEND, SUBTRACT.
//!
//! All operations on one resource are validated together and applied atomically; an
//! invalid key or value refuses the whole resource with INVALID_CONFIG and changes nothing.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::describe_configs::RESOURCE_TOPIC;
use super::{RequestContext, str_bytes};
use crate::Broker;
use crate::admin::AdminError;
use crate::config::TOPIC_CONFIG_KEYS;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub async fn handle(
    broker: &Broker,
    _: &RequestContext<'_>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let mut response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let outcome = if resource.resource_type != RESOURCE_TOPIC {
            Err((
                ResponseError::InvalidRequest,
                "only topic configs can be altered on this broker".to_string(),
            ))
        } else {
            alter_topic(
                broker,
                resource.resource_name.as_str(),
                &resource.configs,
                request.validate_only,
            )
            .await
        };
        if let Err((code, message)) = outcome {
            response.error_code = code.code();
            response.error_message = Some(str_bytes(message));
        }
        responses.push(response);
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

async fn alter_topic(
    broker: &Broker,
    name: &str,
    ops: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
    validate_only: bool,
) -> Result<(), AdminError> {
    if broker.topic(name).is_none() {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("Topic {name} does not exist"),
        ));
    }
    let mut configs = broker.topic_overrides(name).await?;
    for op in ops {
        let key = op.name.to_string();
        if !TOPIC_CONFIG_KEYS.iter().any(|(k, _)| *k == key) {
            return Err((
                ResponseError::InvalidConfig,
                format!("Unknown topic config name: {key}"),
            ));
        }
        let value = op.value.as_ref().map(|v| v.to_string());
        match op.config_operation {
            OP_SET => {
                let Some(v) = value else {
                    return Err((
                        ResponseError::InvalidConfig,
                        format!("Null value not supported for: {key}"),
                    ));
                };
                configs.insert(key, v);
            }
            OP_DELETE => {
                configs.remove(&key);
            }
            OP_APPEND | OP_SUBTRACT if key == "cleanup.policy" => {
                let current = configs
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| "delete".to_string());
                let mut items: Vec<String> = current
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                for item in value
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    if op.config_operation == OP_APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                configs.insert(key, items.join(","));
            }
            OP_APPEND | OP_SUBTRACT => {
                return Err((
                    ResponseError::InvalidConfig,
                    format!("Config value append/subtract is not allowed for config key: {key}"),
                ));
            }
            other => {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("unknown config operation {other}"),
                ));
            }
        }
    }
    broker.validate_topic_configs(&configs)?;
    if validate_only {
        return Ok(());
    }
    broker.set_topic_configs(name, configs).await
}
