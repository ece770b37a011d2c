//! IncrementalAlterConfigs (v0–v1): SET, DELETE, APPEND, SUBTRACT on topic configs, and
//! on the dynamic configs of a broker (its id) or of every broker (empty name) — the
//! replication throttle rates (see [`crate::config::dynamic`]).
//!
//! All operations on one resource are validated together and applied atomically; an
//! invalid key or value refuses the whole resource and changes nothing.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC, config_denied};
use super::{RequestContext, str_bytes};
use crate::Broker;
use crate::admin::AdminError;
use crate::config::dynamic;
use crate::config::{REPLICATION_TOPIC_CONFIG_KEYS, TOPIC_CONFIG_KEYS};
use crate::metadata::config_type;
use crate::security::acl::Operation;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let mut response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let name = resource.resource_name.as_str();
        let denied = config_denied(
            broker,
            ctx,
            Operation::AlterConfigs,
            resource.resource_type,
            name,
        );
        let outcome = match resource.resource_type {
            _ if denied.is_some() => Err((
                denied.expect("refused"),
                "Authorization failed.".to_string(),
            )),
            RESOURCE_TOPIC => {
                alter_topic(broker, name, &resource.configs, request.validate_only).await
            }
            RESOURCE_BROKER => {
                alter_broker(broker, name, &resource.configs, request.validate_only).await
            }
            other => Err((
                ResponseError::InvalidRequest,
                format!("resource type {other} cannot be altered on this broker"),
            )),
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
    ops: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), AdminError> {
    if broker.topic(name).is_none() {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("Topic {name} does not exist"),
        ));
    }
    let mut configs = broker.topic_overrides(name).await?;
    let known = |key: &str| {
        TOPIC_CONFIG_KEYS.iter().any(|(k, _)| *k == key)
            || REPLICATION_TOPIC_CONFIG_KEYS.iter().any(|(k, _)| *k == key)
    };
    for op in ops {
        let key = op.name.as_str();
        if !known(key) {
            return Err((
                ResponseError::InvalidConfig,
                format!("Unknown topic config name: {key}"),
            ));
        }
        apply(&mut configs, op)?;
    }
    broker.validate_topic_configs(&configs)?;
    if validate_only {
        return Ok(());
    }
    broker.set_topic_configs(name, configs).await
}

/// Dynamic configs of one broker (`name` = its id, sent to that broker, as Kafka's admin
/// client does) or of every broker (`name` empty: the cluster default).
async fn alter_broker(
    broker: &Broker,
    name: &str,
    ops: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), AdminError> {
    let entity = if name.is_empty() {
        dynamic::DEFAULT_ENTITY.to_string()
    } else if name == broker.config.broker_id.to_string() {
        name.to_string()
    } else {
        return Err((
            ResponseError::InvalidRequest,
            format!(
                "Unexpected broker id, expected {} or empty string, but received {name}",
                broker.config.broker_id
            ),
        ));
    };
    let mut configs = broker
        .store
        .entity_configs(config_type::BROKER.to_string(), entity.clone())
        .await
        .map_err(|e| (ResponseError::UnknownServerError, e.to_string()))?;
    for op in ops {
        let key = op.name.as_str();
        if !dynamic::DYNAMIC_BROKER_KEYS.contains(&key) {
            return Err((
                ResponseError::InvalidRequest,
                format!("Cannot update these configs dynamically: Set({key})"),
            ));
        }
        if op.config_operation == OP_SET {
            let value = op.value.as_ref().map(|v| v.as_str()).unwrap_or_default();
            dynamic::validate(key, value).map_err(|e| (ResponseError::InvalidConfig, e))?;
        }
        apply(&mut configs, op)?;
    }
    if validate_only {
        return Ok(());
    }
    broker
        .store
        .set_entity_configs(config_type::BROKER.to_string(), entity, configs)
        .await
        .map_err(|e| (ResponseError::UnknownServerError, e.to_string()))
}

/// The value a list config has when it is not set, for APPEND and SUBTRACT; `None` for
/// configs that are not lists.
fn list_default(key: &str) -> Option<&'static str> {
    match key {
        "cleanup.policy" => Some("delete"),
        "leader.replication.throttled.replicas" | "follower.replication.throttled.replicas" => {
            Some("")
        }
        _ => None,
    }
}

/// Applies one operation to a resource's overrides.
fn apply(configs: &mut BTreeMap<String, String>, op: &AlterableConfig) -> Result<(), AdminError> {
    let key = op.name.to_string();
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
        OP_APPEND | OP_SUBTRACT => {
            let Some(default) = list_default(&key) else {
                return Err((
                    ResponseError::InvalidConfig,
                    format!("Config value append/subtract is not allowed for config key: {key}"),
                ));
            };
            let current = configs
                .get(&key)
                .cloned()
                .unwrap_or_else(|| default.to_string());
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
        other => {
            return Err((
                ResponseError::InvalidRequest,
                format!("unknown config operation {other}"),
            ));
        }
    }
    Ok(())
}
