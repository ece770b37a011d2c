//! CreateTopics (v2–v7).

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::{RequestContext, str_bytes};
use crate::Broker;
use crate::config::{TOPIC_CONFIG_KEYS, topic_config_value};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatableTopicResult::default().with_name(topic.name.clone());
        let configs: BTreeMap<String, String> = topic
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        let outcome = if !topic.assignments.is_empty() {
            // Manual assignment: every partition must be on this (the only) broker.
            let ok = topic
                .assignments
                .iter()
                .all(|a| a.broker_ids.len() == 1 && a.broker_ids[0].0 == broker.config.broker_id);
            if ok && topic.num_partitions == -1 && topic.replication_factor == -1 {
                broker.create_topic(
                    &name,
                    topic.assignments.len() as i32,
                    1,
                    configs,
                    request.validate_only,
                )
            } else {
                Err((
                    kafka_protocol::ResponseError::InvalidReplicaAssignment,
                    "Replica assignment must name only live brokers, with num_partitions and replication_factor -1.".to_string(),
                ))
            }
        } else {
            broker.create_topic(
                &name,
                topic.num_partitions,
                topic.replication_factor,
                configs,
                request.validate_only,
            )
        };
        match outcome {
            // Before v5 a success carries nothing but the name.
            Ok(_) if ctx.version < 5 => {}
            Ok(created) => {
                if ctx.version >= 7 {
                    result.topic_id = created.topic_id;
                }
                result.num_partitions = created.partitions;
                result.replication_factor = created.replication_factor;
                let config = broker.log_config_for(&created);
                result.configs = Some(
                    TOPIC_CONFIG_KEYS
                        .iter()
                        .filter_map(|(key, _)| {
                            topic_config_value(&config, key).map(|v| {
                                CreatableTopicConfigs::default()
                                    .with_name(str_bytes(*key))
                                    .with_value(Some(str_bytes(v)))
                                    .with_config_source(if created.configs.contains_key(*key) {
                                        1
                                    } else {
                                        5
                                    })
                            })
                        })
                        .collect(),
                );
            }
            Err((code, message)) => {
                result.error_code = code.code();
                result.error_message = Some(str_bytes(message));
                result.num_partitions = -1;
                result.replication_factor = -1;
            }
        }
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}
