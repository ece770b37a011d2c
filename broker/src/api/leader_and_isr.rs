//! LeaderAndIsr (v4–v7), from the controller: which partitions this broker leads and
//! which it follows, at which epochs (Kafka's `becomeLeaderOrFollower`). New topics' logs
//! are created here, with the topic's configs read from the store first; leadership of
//! `__consumer_offsets` partitions moves the group coordinator with it.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;

use crate::Broker;
use crate::protocol::{LeaderAndIsrRequest, LeaderAndIsrResponse};

/// A request for an older incarnation of this broker (Kafka's `isBrokerEpochStale`).
pub(crate) fn is_broker_epoch_stale(broker: &Broker, epoch_in_request: i64) -> bool {
    epoch_in_request != -1 && epoch_in_request < broker.broker_epoch()
}

pub async fn apply(broker: &Broker, request: LeaderAndIsrRequest) -> LeaderAndIsrResponse {
    if is_broker_epoch_stale(broker, request.broker_epoch) {
        return LeaderAndIsrResponse {
            error_code: ResponseError::StaleBrokerEpoch.code(),
            partition_errors: Vec::new(),
        };
    }
    // A replica being added by a reassignment starts copying at once: the throttles
    // (the topic's `*.replication.throttled.replicas`, the brokers' rates), set by the
    // tool just before, must hold from the first fetch, not from whenever their change
    // notifications arrive. Kafka reads the log config from ZooKeeper when it creates the
    // log; the leader and the added replicas do here, and their dynamic configs too.
    let me = broker.config.broker_id;
    let added: BTreeSet<&str> = request
        .topic_states
        .iter()
        .filter(|t| {
            t.partition_states.iter().any(|p| {
                !p.adding_replicas.is_empty() && (p.leader == me || p.adding_replicas.contains(&me))
            })
        })
        .map(|t| t.topic_name.as_str())
        .collect();
    if !added.is_empty() {
        broker.reload_dynamic_configs().await;
    }
    broker
        .prefetch_topic_configs(
            request.topic_states.iter().map(|t| t.topic_name.as_str()),
            &added,
        )
        .await;
    let (response, changes) = broker
        .replica_manager
        .become_leader_or_follower(&request, &|topic| broker.log_config_for_topic(topic));
    broker.groups.on_leadership_changes(broker, &changes);
    broker.txns.on_leadership_changes(broker, &changes);
    response
}
