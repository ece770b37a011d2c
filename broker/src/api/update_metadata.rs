//! UpdateMetadata (v6–v8), from the controller: live brokers and every partition's leader
//! and ISR, kept in the metadata cache that Metadata, FindCoordinator and DescribeCluster
//! answer from.

use kafka_protocol::ResponseError;

use super::leader_and_isr::is_broker_epoch_stale;
use crate::Broker;
use crate::protocol::UpdateMetadataRequest;

/// Applies the request; returns its error code.
pub fn apply(broker: &Broker, request: &UpdateMetadataRequest) -> i16 {
    if is_broker_epoch_stale(broker, request.broker_epoch) {
        return ResponseError::StaleBrokerEpoch.code();
    }
    if !broker
        .replica_manager
        .accept_controller_epoch(request.controller_epoch)
    {
        return ResponseError::StaleControllerEpoch.code();
    }
    broker.cache.update(request);
    broker.cache_updates.send_modify(|n| *n = n.wrapping_add(1));
    0
}
