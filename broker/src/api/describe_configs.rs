//! DescribeConfigs (v1–v4): topic configs (overrides and defaults) and broker configs.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::{RequestContext, str_bytes};
use crate::admin::TopicDescription;
use crate::config::dynamic;
use crate::config::{REPLICATION_TOPIC_CONFIG_KEYS, TOPIC_CONFIG_KEYS, topic_config_value};
use crate::security::acl::{Operation, ResourceType};
use crate::{Broker, topic_log_config};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Kafka's check for a config resource: `operation` on the topic, or on the cluster for
/// a broker (and anything else); the error to answer with when refused.
pub fn config_denied(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    operation: Operation,
    resource_type: i8,
    name: &str,
) -> Option<ResponseError> {
    if resource_type == RESOURCE_TOPIC {
        (!ctx.authorized(broker, operation, ResourceType::Topic, name))
            .then_some(ResponseError::TopicAuthorizationFailed)
    } else {
        (!ctx.cluster_authorized(broker, operation))
            .then_some(ResponseError::ClusterAuthorizationFailed)
    }
}

/// Kafka's `ConfigSource` values.
const SOURCE_TOPIC_CONFIG: i8 = 1;
const SOURCE_DYNAMIC_BROKER_CONFIG: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
const SOURCE_DEFAULT_CONFIG: i8 = 5;

/// Kafka's `ConfigType` values (v3+).
fn config_type(key: &str) -> i8 {
    match key {
        "unclean.leader.election.enable" => 1, // BOOLEAN
        "cleanup.policy"
        | "leader.replication.throttled.replicas"
        | "follower.replication.throttled.replicas" => 7, // LIST
        "min.cleanable.dirty.ratio" => 6,      // DOUBLE
        "index.interval.bytes"
        | "max.message.bytes"
        | "min.insync.replicas"
        | "segment.bytes"
        | "segment.index.bytes" => 3, // INT
        _ => 5,                                // LONG
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
        if let Some(error) = config_denied(
            broker,
            ctx,
            Operation::DescribeConfigs,
            resource.resource_type,
            resource.resource_name.as_str(),
        ) {
            results.push(result.with_error_code(error.code()));
            continue;
        }
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
                    for entry in topic_entries(broker, &topic) {
                        if !wanted(entry.key) {
                            continue;
                        }
                        let source = if entry.overridden {
                            SOURCE_TOPIC_CONFIG
                        } else if entry.from_broker.is_some() {
                            SOURCE_STATIC_BROKER_CONFIG
                        } else {
                            SOURCE_DEFAULT_CONFIG
                        };
                        let mut result_entry = DescribeConfigsResourceResult::default()
                            .with_name(str_bytes(entry.key))
                            .with_value(Some(str_bytes(entry.value)))
                            .with_config_source(source);
                        if ctx.version >= 3 {
                            result_entry.config_type = config_type(entry.key);
                        }
                        if request.include_synonyms {
                            let mut synonyms = Vec::new();
                            if entry.overridden {
                                synonyms.push(
                                    DescribeConfigsSynonym::default()
                                        .with_name(str_bytes(entry.key))
                                        .with_value(
                                            topic
                                                .configs
                                                .get(entry.key)
                                                .map(|v| str_bytes(v.clone())),
                                        )
                                        .with_source(SOURCE_TOPIC_CONFIG),
                                );
                            }
                            if let Some((broker_key, v)) = entry.from_broker {
                                synonyms.push(
                                    DescribeConfigsSynonym::default()
                                        .with_name(str_bytes(broker_key))
                                        .with_value(Some(str_bytes(v)))
                                        .with_source(SOURCE_STATIC_BROKER_CONFIG),
                                );
                            }
                            result_entry.synonyms = synonyms;
                        }
                        result.configs.push(result_entry);
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
                    // Dynamic configs in force (`/config/brokers/...`), as Kafka lists them:
                    // only when set.
                    let dynamic = broker.dynamic_configs();
                    for key in dynamic::DYNAMIC_BROKER_KEYS {
                        let Some((value, source)) = dynamic.get(key) else {
                            continue;
                        };
                        if !wanted(key) {
                            continue;
                        }
                        result.configs.push(
                            DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(*key))
                                .with_value(Some(str_bytes(value)))
                                .with_config_source(match source {
                                    dynamic::DynamicSource::Broker => SOURCE_DYNAMIC_BROKER_CONFIG,
                                    dynamic::DynamicSource::ClusterDefault => {
                                        SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG
                                    }
                                }),
                        );
                    }
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

/// One topic config as DescribeConfigs reports it.
struct TopicEntry {
    key: &'static str,
    value: String,
    overridden: bool,
    /// The broker key that supplies the default, when the broker's config sets it.
    from_broker: Option<(&'static str, String)>,
}

/// Every topic config Strata implements, effective values first from the topic's
/// overrides, then from the broker's config, then Kafka's defaults.
fn topic_entries(broker: &Broker, topic: &TopicDescription) -> Vec<TopicEntry> {
    let effective = topic_log_config(&broker.config.log, &topic.name, &topic.configs);
    let from_broker = |broker_key: &'static str| {
        broker
            .config
            .explicit
            .get(broker_key)
            .map(|v| (broker_key, v.clone()))
    };
    let log = TOPIC_CONFIG_KEYS.iter().filter_map(|(key, broker_key)| {
        Some(TopicEntry {
            key,
            value: topic_config_value(&effective, key)?,
            overridden: topic.configs.contains_key(*key),
            from_broker: from_broker(broker_key),
        })
    });
    let replication = REPLICATION_TOPIC_CONFIG_KEYS
        .iter()
        .map(|(key, broker_key)| {
            let from_broker = broker_key.and_then(from_broker);
            let value = match (topic.configs.get(*key), &from_broker) {
                (Some(v), _) => v.clone(),
                (None, Some((_, v))) => v.clone(),
                (None, None) if *key == "unclean.leader.election.enable" => {
                    broker.config.unclean_leader_election_enable.to_string()
                }
                (None, None) => String::new(),
            };
            TopicEntry {
                key,
                value,
                overridden: topic.configs.contains_key(*key),
                from_broker,
            }
        });
    log.chain(replication).collect()
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
