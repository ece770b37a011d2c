//! FindCoordinator (v0–v5): the broker leading the group's `__consumer_offsets`
//! partition (key type 0), or the transactional id's `__transaction_state` partition (key
//! type 1), on the listener the client came in on. The first request creates the topic
//! (`offsets.topic.*` / `transaction.state.log.*`), as Kafka does; until its partitions
//! have leaders the answer is COORDINATOR_NOT_AVAILABLE and the client asks again.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use strata_group_coordinator::CoordinatorNode;
use tracing::{debug, info};

use super::RequestContext;
use crate::admin::NewTopic;
use crate::group::OFFSETS_TOPIC;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::TRANSACTION_STATE_TOPIC;
use crate::{
    Broker, offsets_topic_configs, offsets_topic_replication_factor, transaction_state_configs,
    transaction_state_replication_factor,
};

/// FindCoordinator's key type of a transactional id.
const TRANSACTION_KEY_TYPE: i8 = 1;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let key_type = request.key_type;
    let topic = if key_type == TRANSACTION_KEY_TYPE {
        TRANSACTION_STATE_TOPIC
    } else {
        OFFSETS_TOPIC
    };
    if broker.topic(topic).is_none() {
        create_internal_topic(broker, topic).await;
    }
    let snapshot = broker.cache.snapshot();
    let key = request.key.clone();
    let node_for = |partition| {
        let (leader, host, port) = snapshot.leader_endpoint(topic, partition, ctx.listener)?;
        Some(CoordinatorNode {
            node_id: leader,
            host: host.to_string(),
            port: i32::from(port),
        })
    };
    let mut response = if key_type == TRANSACTION_KEY_TYPE {
        // Answered as groups are, with the transaction log's partitioning.
        broker.groups.query(|c| {
            c.answer_find_coordinator(request, ctx.version, |key| {
                node_for(broker.txns.partition_for(key))
            })
        })
    } else {
        broker
            .groups
            .query(|c| c.handle_find_coordinator(request, ctx.version, node_for))
    };
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

async fn create_internal_topic(broker: &Broker, topic: &str) {
    let new = if topic == TRANSACTION_STATE_TOPIC {
        NewTopic {
            name: topic.to_string(),
            partitions: broker.config.transaction_state_log_num_partitions,
            replication_factor: transaction_state_replication_factor(broker),
            assignment: None,
            configs: transaction_state_configs(broker),
        }
    } else {
        NewTopic {
            name: topic.to_string(),
            partitions: broker.config.offsets_topic_num_partitions,
            replication_factor: offsets_topic_replication_factor(broker),
            assignment: None,
            configs: offsets_topic_configs(),
        }
    };
    match broker.create_topic(new, false).await {
        Ok(t) => info!(
            partitions = t.partitions,
            replication_factor = t.replication_factor,
            "created {topic}"
        ),
        Err((code, message)) => debug!(?code, %message, "{topic} not created"),
    }
}
