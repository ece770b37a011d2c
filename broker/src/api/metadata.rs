//! Metadata (v0–v12): brokers, controller, topics with partitions, leaders and ISR.
//! Unknown topics are auto-created when the request allows it and
//! `auto.create.topics.enable` is on.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use std::collections::BTreeMap;
use tracing::info;

use super::{RequestContext, str_bytes};
use crate::Broker;
use crate::metadata::TopicMetadata;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: MetadataRequest,
) -> MetadataResponse {
    let endpoint = broker.config.advertised_endpoint();
    let me = BrokerId(broker.config.broker_id);
    let all_topics = match &request.topics {
        None => true,
        Some(t) => t.is_empty() && ctx.version == 0,
    };
    // Before v4 every Metadata request allowed auto-creation.
    let allow_auto_create = (ctx.version < 4 || request.allow_auto_topic_creation)
        && broker.config.auto_create_topics_enable;

    let mut topics = Vec::new();
    if all_topics {
        for topic in broker.metadata.topics() {
            topics.push(describe_topic(broker, &topic, ctx.version));
        }
    } else {
        for requested in request.topics.iter().flatten() {
            let name = match &requested.name {
                Some(n) => n.0.to_string(),
                None => match broker.metadata.topic_by_id(requested.topic_id) {
                    Some(t) => t.name,
                    None => {
                        topics.push(
                            MetadataResponseTopic::default()
                                .with_name(None)
                                .with_topic_id(requested.topic_id)
                                .with_error_code(ResponseError::UnknownTopicId.code()),
                        );
                        continue;
                    }
                },
            };
            let topic = match broker.metadata.topic(&name) {
                Some(t) => Some(t),
                None if allow_auto_create => {
                    match broker.create_topic(&name, -1, -1, BTreeMap::new(), false) {
                        Ok(t) => {
                            info!(topic = %name, client = ctx.client_id(), "auto-created topic");
                            Some(t)
                        }
                        Err((ResponseError::TopicAlreadyExists, _)) => broker.metadata.topic(&name),
                        Err((code, _)) => {
                            topics.push(
                                MetadataResponseTopic::default()
                                    .with_name(Some(TopicName(str_bytes(name))))
                                    .with_error_code(code.code()),
                            );
                            continue;
                        }
                    }
                }
                None => None,
            };
            match topic {
                Some(t) => topics.push(describe_topic(broker, &t, ctx.version)),
                None => topics.push(
                    MetadataResponseTopic::default()
                        .with_name(Some(TopicName(str_bytes(name))))
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                ),
            }
        }
    }

    // Fields newer than the request's version must stay at their defaults.
    let mut response = MetadataResponse::default().with_topics(topics);
    if ctx.version >= 1 {
        response.controller_id = me;
    }
    if ctx.version >= 2 {
        response.cluster_id = Some(str_bytes(broker.cluster_id.clone()));
    }
    response.with_brokers(vec![
        MetadataResponseBroker::default()
            .with_node_id(me)
            .with_host(str_bytes(endpoint.host))
            .with_port(i32::from(endpoint.port)),
    ])
}

fn describe_topic(broker: &Broker, topic: &TopicMetadata, version: i16) -> MetadataResponseTopic {
    let partitions = (0..topic.partitions)
        .map(
            |index| match broker.replica_manager.get_partition(&topic.name, index) {
                Some(p) => MetadataResponsePartition::default()
                    .with_partition_index(index)
                    .with_leader_id(BrokerId(broker.config.broker_id))
                    .with_leader_epoch(if version >= 7 { p.leader_epoch } else { -1 })
                    .with_replica_nodes(p.replicas.iter().map(|b| BrokerId(*b)).collect())
                    .with_isr_nodes(p.isr().iter().map(|b| BrokerId(*b)).collect()),
                None => MetadataResponsePartition::default()
                    .with_partition_index(index)
                    .with_error_code(ResponseError::LeaderNotAvailable.code())
                    .with_leader_id(BrokerId(-1)),
            },
        )
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(topic.name.clone()))))
        .with_topic_id(if version >= 10 {
            topic.topic_id
        } else {
            uuid::Uuid::nil()
        })
        .with_is_internal(version >= 1 && topic.internal)
        .with_partitions(partitions)
}
