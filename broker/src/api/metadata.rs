//! Metadata (v0–v12): live brokers, the controller, and topics with their partitions'
//! leaders, replicas and ISR — from the metadata cache, so every broker answers alike.
//! Brokers are described by their endpoint on the listener the client came in on.
//!
//! Unknown topics are auto-created when the request allows it and
//! `auto.create.topics.enable` is on; such a topic is answered LEADER_NOT_AVAILABLE until
//! the controller has elected its leaders, and the client asks again.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use tracing::info;

use super::{RequestContext, str_bytes};
use crate::Broker;
use crate::admin::NewTopic;
use crate::metadata::cache::{CachedTopic, MetadataSnapshot};
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: MetadataRequest,
) -> MetadataResponse {
    let all_topics = match &request.topics {
        None => true,
        Some(t) => t.is_empty() && ctx.version == 0,
    };
    // Before v4 every Metadata request allowed auto-creation.
    let allow_auto_create = (ctx.version < 4 || request.allow_auto_topic_creation)
        && broker.config.auto_create_topics_enable;
    let snapshot = broker.cache.snapshot();

    let mut topics = Vec::new();
    if all_topics {
        // Only the topics the principal may describe, without logging the others.
        for (name, topic) in &snapshot.topics {
            if ctx.may_see(broker, Operation::Describe, ResourceType::Topic, name) {
                topics.push(describe_topic(&snapshot, name, topic, ctx.version));
            }
        }
    } else {
        for requested in request.topics.iter().flatten() {
            let name = match &requested.name {
                Some(n) => n.0.to_string(),
                None => match snapshot.topic_name(requested.topic_id) {
                    Some(t) => t.to_string(),
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
            let error = if !ctx.authorized(broker, Operation::Describe, ResourceType::Topic, &name)
            {
                ResponseError::TopicAuthorizationFailed
            } else if let Some(topic) = snapshot.topics.get(&name) {
                topics.push(describe_topic(&snapshot, &name, topic, ctx.version));
                continue;
            } else if allow_auto_create {
                if ctx.may_see(
                    broker,
                    Operation::Create,
                    ResourceType::Cluster,
                    CLUSTER_NAME,
                ) || ctx.authorized(broker, Operation::Create, ResourceType::Topic, &name)
                {
                    auto_create(broker, ctx, &name).await
                } else {
                    ResponseError::TopicAuthorizationFailed
                }
            } else {
                ResponseError::UnknownTopicOrPartition
            };
            topics.push(
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(str_bytes(name))))
                    .with_is_internal(false)
                    .with_error_code(error.code()),
            );
        }
    }

    // KIP-430 (v8+): what the requester may do with each topic it sees, and (v8–v10)
    // with the cluster, when asked.
    if ctx.version >= 8 && request.include_topic_authorized_operations {
        for topic in &mut topics {
            if let (0, Some(name)) = (topic.error_code, &topic.name) {
                topic.topic_authorized_operations =
                    ctx.authorized_operations(broker, ResourceType::Topic, name.0.as_str());
            }
        }
    }
    // Fields newer than the request's version must stay at their defaults.
    let mut response = MetadataResponse::default().with_topics(topics);
    if (8..=10).contains(&ctx.version) && request.include_cluster_authorized_operations {
        response.cluster_authorized_operations =
            ctx.authorized_operations(broker, ResourceType::Cluster, CLUSTER_NAME);
    }
    if ctx.version >= 1 {
        response.controller_id = BrokerId(snapshot.controller_id.unwrap_or(-1));
    }
    if ctx.version >= 2 {
        response.cluster_id = Some(str_bytes(broker.cluster_id.clone()));
    }
    response.with_brokers(
        snapshot
            .brokers
            .values()
            .filter_map(|b| {
                let (host, port) = b.endpoint(ctx.listener)?;
                let mut node = MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id))
                    .with_host(str_bytes(host))
                    .with_port(i32::from(port));
                if ctx.version >= 1 {
                    node.rack = b.rack.clone().map(str_bytes);
                }
                Some(node)
            })
            .collect(),
    )
}

/// Creates a topic a client asked for by name, with the broker defaults; returns the
/// error to report for it now.
async fn auto_create(broker: &Broker, ctx: &RequestContext<'_>, name: &str) -> ResponseError {
    let new = NewTopic {
        name: name.to_string(),
        partitions: -1,
        replication_factor: -1,
        assignment: None,
        configs: BTreeMap::new(),
    };
    match broker.create_topic(new, false).await {
        Ok(_) => {
            info!(topic = name, client = ctx.client_id(), "auto-created topic");
            ResponseError::LeaderNotAvailable
        }
        Err((ResponseError::TopicAlreadyExists, _)) => ResponseError::LeaderNotAvailable,
        Err((code, _)) => code,
    }
}

fn describe_topic(
    snapshot: &MetadataSnapshot,
    name: &str,
    topic: &CachedTopic,
    version: i16,
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .values()
        .map(|p| {
            let leader_alive = p.leader >= 0 && snapshot.is_alive(p.leader);
            let mut partition = MetadataResponsePartition::default()
                .with_partition_index(p.partition_index)
                .with_leader_id(BrokerId(if leader_alive { p.leader } else { -1 }))
                .with_replica_nodes(p.replicas.iter().map(|b| BrokerId(*b)).collect())
                .with_isr_nodes(p.isr.iter().map(|b| BrokerId(*b)).collect());
            if !leader_alive {
                partition.error_code = ResponseError::LeaderNotAvailable.code();
            }
            if version >= 7 {
                partition.leader_epoch = p.leader_epoch;
            }
            if version >= 5 {
                partition.offline_replicas =
                    p.offline_replicas.iter().map(|b| BrokerId(*b)).collect();
            }
            partition
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(name.to_string()))))
        .with_topic_id(if version >= 10 {
            topic.topic_id
        } else {
            uuid::Uuid::nil()
        })
        .with_is_internal(version >= 1 && name.starts_with("__"))
        .with_partitions(partitions)
}
