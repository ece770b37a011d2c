//! ElectLeaders (v0–v2): preferred or unclean leader elections, run by the controller
//! (`kafka-leader-election.sh`). A broker that is not the controller forwards nothing: as
//! Kafka's ZooKeeper-mode brokers, it answers NOT_CONTROLLER for the client to find it.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};

use super::RequestContext;
use crate::Broker;
use crate::security::acl::Operation;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    if !ctx.cluster_authorized(broker, Operation::Alter) {
        return ElectLeadersResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    if !broker.controller.is_active() {
        return ElectLeadersResponse::default()
            .with_error_code(ResponseError::NotController.code());
    }
    broker.controller.elect_leaders(request, ctx.version).await
}
