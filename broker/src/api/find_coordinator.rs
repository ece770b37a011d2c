//! FindCoordinator (v0–v5): the broker leading the group's `__consumer_offsets`
//! partition, on the listener the client came in on. The first request creates
//! `__consumer_offsets` (`offsets.topic.num.partitions`, `offsets.topic.replication.factor`),
//! as Kafka does; until its partitions have leaders the answer is
//! COORDINATOR_NOT_AVAILABLE and the client asks again.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use strata_group_coordinator::CoordinatorNode;
use tracing::{debug, info};

use super::RequestContext;
use crate::admin::NewTopic;
use crate::group::OFFSETS_TOPIC;
use crate::security::acl::{Operation, ResourceType};
use crate::{Broker, offsets_topic_configs, offsets_topic_replication_factor};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    if broker.topic(OFFSETS_TOPIC).is_none() {
        create_offsets_topic(broker).await;
    }
    let snapshot = broker.cache.snapshot();
    let key_type = request.key_type;
    let key = request.key.clone();
    let mut response = broker.groups.query(|c| {
        c.handle_find_coordinator(request, ctx.version, |partition| {
            let (leader, host, port) =
                snapshot.leader_endpoint(OFFSETS_TOPIC, partition, ctx.listener)?;
            Some(CoordinatorNode {
                node_id: leader,
                host: host.to_string(),
                port: i32::from(port),
            })
        })
    });
    // DESCRIBE on the group (or transactional id) whose coordinator is asked for.
    let (resource_type, denied) = match key_type {
        0 => (ResourceType::Group, ResponseError::GroupAuthorizationFailed),
        _ => (
            ResourceType::TransactionalId,
            ResponseError::TransactionalIdAuthorizationFailed,
        ),
    };
    let allowed = |key: &str| ctx.authorized(broker, Operation::Describe, resource_type, key);
    if ctx.version >= 4 {
        for c in &mut response.coordinators {
            if !allowed(c.key.as_str()) {
                *c = Coordinator::default()
                    .with_key(c.key.clone())
                    .with_node_id(BrokerId(-1))
                    .with_port(-1)
                    .with_error_code(denied.code());
            }
        }
    } else if !allowed(key.as_str()) {
        response = FindCoordinatorResponse::default()
            .with_node_id(BrokerId(-1))
            .with_port(-1)
            .with_error_code(denied.code());
    }
    response
}

async fn create_offsets_topic(broker: &Broker) {
    let new = NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        partitions: broker.config.offsets_topic_num_partitions,
        replication_factor: offsets_topic_replication_factor(broker),
        assignment: None,
        configs: offsets_topic_configs(),
    };
    match broker.create_topic(new, false).await {
        Ok(t) => info!(
            partitions = t.partitions,
            replication_factor = t.replication_factor,
            "created {OFFSETS_TOPIC}"
        ),
        Err((code, message)) => debug!(?code, %message, "{OFFSETS_TOPIC} not created"),
    }
}
