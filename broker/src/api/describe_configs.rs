//! DescribeConfigs (v1–v4): topic configs (overrides and defaults) and broker configs.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::{RequestContext, str_bytes};
use crate::admin::TopicDescription;
use crate::config::{TOPIC_CONFIG_KEYS, topic_config_value};
use crate::{Broker, topic_log_config};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Kafka's `ConfigSource` values.
const SOURCE_TOPIC_CONFIG: i8 = 1;
const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
const SOURCE_DEFAULT_CONFIG: i8 = 5;

/// Kafka's `ConfigType` values (v3+).
fn config_type(key: &str) -> i8 {
    match key {
        "cleanup.policy" => 7,            // LIST
        "min.cleanable.dirty.ratio" => 6, // DOUBLE
        "index.interval.bytes"
        | "max.message.bytes"
        | "min.insync.replicas"
        | "segment.bytes"
        | "segment.index.bytes" => 3, // INT
        _ => 5,                           // LONG
    }
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut results = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        // A null or empty key list means every config, as in Kafka.
        let wanted = |key: &str| {
            resource
                .configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| k.as_str() == key))
        };
        let mut result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        match resource.resource_type {
            RESOURCE_TOPIC => match describe_topic(broker, resource.resource_name.as_str()).await {
                None => {
                    result.error_code = ResponseError::UnknownTopicOrPartition.code();
                    result.error_message = Some(str_bytes(format!(
                        "Topic {} does not exist",
                        resource.resource_name.as_str()
                    )));
                }
                Some(topic) => {
                    let effective =
                        topic_log_config(&broker.config.log, &topic.name, &topic.configs);
                    for (key, broker_key) in TOPIC_CONFIG_KEYS {
                        if !wanted(key) {
                            continue;
                        }
                        let Some(value) = topic_config_value(&effective, key) else {
                            continue;
                        };
                        let overridden = topic.configs.contains_key(*key);
                        let from_broker = broker.config.explicit.contains_key(*broker_key);
                        let source = if overridden {
                            SOURCE_TOPIC_CONFIG
                        } else if from_broker {
                            SOURCE_STATIC_BROKER_CONFIG
                        } else {
                            SOURCE_DEFAULT_CONFIG
                        };
                        let mut entry = DescribeConfigsResourceResult::default()
                            .with_name(str_bytes(*key))
                            .with_value(Some(str_bytes(value)))
                            .with_config_source(source);
                        if ctx.version >= 3 {
                            entry.config_type = config_type(key);
                        }
                        if request.include_synonyms {
                            let mut synonyms = Vec::new();
                            if overridden {
                                synonyms.push(
                                    DescribeConfigsSynonym::default()
                                        .with_name(str_bytes(*key))
                                        .with_value(
                                            topic.configs.get(*key).map(|v| str_bytes(v.clone())),
                                        )
                                        .with_source(SOURCE_TOPIC_CONFIG),
                                );
                            }
                            if let Some(v) = broker.config.explicit.get(*broker_key) {
                                synonyms.push(
                                    DescribeConfigsSynonym::default()
                                        .with_name(str_bytes(*broker_key))
                                        .with_value(Some(str_bytes(v.clone())))
                                        .with_source(SOURCE_STATIC_BROKER_CONFIG),
                                );
                            }
                            entry.synonyms = synonyms;
                        }
                        result.configs.push(entry);
                    }
                }
            },
            RESOURCE_BROKER => {
                let name = resource.resource_name.as_str();
                if !name.is_empty() && name != broker.config.broker_id.to_string() {
                    result.error_code = ResponseError::InvalidRequest.code();
                    result.error_message = Some(str_bytes(format!(
                        "Unexpected broker id, expected {} or empty string, but received {name}",
                        broker.config.broker_id
                    )));
                } else {
                    for (key, value, is_default) in broker.config.describe() {
                        if !wanted(&key) {
                            continue;
                        }
                        result.configs.push(
                            DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(key))
                                .with_value(Some(str_bytes(value)))
                                .with_read_only(true)
                                .with_config_source(if is_default {
                                    SOURCE_DEFAULT_CONFIG
                                } else {
                                    SOURCE_STATIC_BROKER_CONFIG
                                }),
                        );
                    }
                }
            }
            other => {
                result.error_code = ResponseError::InvalidRequest.code();
                result.error_message =
                    Some(str_bytes(format!("resource type {other} is not supported")));
            }
        }
        results.push(result);
    }
    DescribeConfigsResponse::default().with_results(results)
}

/// The topic with its overrides as the store has them now (another broker may have
/// changed them a moment ago).
async fn describe_topic(broker: &Broker, name: &str) -> Option<TopicDescription> {
    let mut topic = broker.topic(name)?;
    if let Ok(configs) = broker.topic_overrides(name).await {
        topic.configs = configs;
    }
    Some(topic)
}
