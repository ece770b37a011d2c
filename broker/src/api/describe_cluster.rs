//! DescribeCluster (v0–v1): the live brokers and the controller, from the metadata
//! cache, on the listener the client came in on. The endpoint type is left at its
//! default (brokers).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{RequestContext, str_bytes};
use crate::Broker;
use crate::security::acl::Operation;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    _: DescribeClusterRequest,
) -> DescribeClusterResponse {
    if !ctx.cluster_authorized(broker, Operation::Describe) {
        return DescribeClusterResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let snapshot = broker.cache.snapshot();
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(broker.cluster_id.clone()))
        .with_controller_id(BrokerId(snapshot.controller_id.unwrap_or(-1)))
        .with_brokers(
            snapshot
                .brokers
                .values()
                .filter_map(|b| {
                    let (host, port) = b.endpoint(ctx.listener)?;
                    Some(
                        DescribeClusterBroker::default()
                            .with_broker_id(BrokerId(b.id))
                            .with_host(str_bytes(host))
                            .with_port(i32::from(port))
                            .with_rack(b.rack.clone().map(str_bytes)),
                    )
                })
                .collect(),
        )
}
