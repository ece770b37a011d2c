//! StopReplica (v3–v4), from the controller: stop following partitions, and delete them
//! when their topic is deleted or a reassignment moved them away.

use kafka_protocol::ResponseError;

use super::leader_and_isr::is_broker_epoch_stale;
use crate::Broker;
use crate::group::OFFSETS_TOPIC;
use crate::protocol::{StopReplicaRequest, StopReplicaResponse};
use crate::replica::LeadershipChanges;

pub fn apply(broker: &Broker, request: &StopReplicaRequest) -> StopReplicaResponse {
    if is_broker_epoch_stale(broker, request.broker_epoch) {
        return StopReplicaResponse {
            error_code: ResponseError::StaleBrokerEpoch.code(),
            partition_errors: Vec::new(),
        };
    }
    let (response, deleted) = broker.replica_manager.stop_replicas(request);
    // A deleted offsets partition takes its groups with it.
    let gone = LeadershipChanges {
        became_leader: Vec::new(),
        became_follower: deleted
            .into_iter()
            .filter(|(t, _)| t == OFFSETS_TOPIC)
            .map(|tp| (tp, -1))
            .collect(),
    };
    broker.groups.on_leadership_changes(broker, &gone);
    broker.txns.on_leadership_changes(broker, &gone);
    response
}
