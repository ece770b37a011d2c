//! CreateTopics (v2–v7): validated and written to the metadata store by this broker,
//! answered once the controller has elected the new partitions' leaders (or the
//! request's timeout passed). A request for more than
//! [`MAX_PARTITIONS_PER_BATCH`] partitions in all is refused whole, as Kafka does.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use std::time::Duration;

use kafka_protocol::ResponseError;

use super::{RequestContext, str_bytes};
use crate::admin::{EXCESSIVE_PARTITIONS, MAX_PARTITIONS_PER_BATCH, NewTopic};
use crate::config::{TOPIC_CONFIG_KEYS, topic_config_value};
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};
use crate::{Broker, topic_log_config};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    let total: i64 = request
        .topics
        .iter()
        .map(|t| match (t.assignments.len(), t.num_partitions) {
            (0, -1) => i64::from(broker.config.num_partitions),
            (0, n) => i64::from(n.max(0)),
            (assigned, _) => assigned as i64,
        })
        .sum();
    if total > MAX_PARTITIONS_PER_BATCH {
        for topic in request.topics {
            results.push(
                CreatableTopicResult::default()
                    .with_name(topic.name)
                    .with_error_code(ResponseError::PolicyViolation.code())
                    .with_error_message(Some(str_bytes(EXCESSIVE_PARTITIONS)))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1),
            );
        }
        return CreateTopicsResponse::default().with_topics(results);
    }
    // CREATE on the cluster, or on each topic.
    let cluster_create = ctx.may_see(
        broker,
        Operation::Create,
        ResourceType::Cluster,
        CLUSTER_NAME,
    );
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatableTopicResult::default().with_name(topic.name.clone());
        if !cluster_create && !ctx.authorized(broker, Operation::Create, ResourceType::Topic, &name)
        {
            results.push(
                result
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_num_partitions(-1)
                    .with_replication_factor(-1),
            );
            continue;
        }
        let configs: BTreeMap<String, String> = topic
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        let assignment = (!topic.assignments.is_empty()).then(|| {
            topic
                .assignments
                .iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.iter().map(|b| b.0).collect(),
                    )
                })
                .collect()
        });
        let new = NewTopic {
            name: name.clone(),
            partitions: topic.num_partitions,
            replication_factor: topic.replication_factor,
            assignment,
            configs,
        };
        let mut outcome = broker.create_topic(new, request.validate_only).await;
        // Like Kafka's DelayedCreatePartitions: answer once the leaders are known.
        // A timeout of 0 answers at once, as Kafka's does.
        if let Ok(created) = &outcome
            && !request.validate_only
            && request.timeout_ms > 0
        {
            let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
            if !broker
                .wait_for_leaders(&name, created.partitions, timeout)
                .await
            {
                outcome = Err((
                    ResponseError::RequestTimedOut,
                    format!("Timed out waiting for the leaders of topic {name}"),
                ));
            }
        }
        match outcome {
            // Before v5 a success carries nothing but the name.
            Ok(_) if ctx.version < 5 => {}
            Ok(created) => {
                if ctx.version >= 7 {
                    result.topic_id = created.topic_id;
                }
                result.num_partitions = created.partitions;
                result.replication_factor = created.replication_factor;
                let config = topic_log_config(&broker.config.log, &created.name, &created.configs);
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
