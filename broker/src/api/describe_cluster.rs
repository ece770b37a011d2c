//! DescribeCluster (v0–v1): the live brokers and the controller, from the metadata
//! cache, on the listener the client came in on, and what the requester may do with the
//! cluster when asked (KIP-430). The endpoint type is left at its default (brokers).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{RequestContext, str_bytes};
use crate::Broker;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    if !ctx.cluster_authorized(broker, Operation::Describe) {
        return DescribeClusterResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let snapshot = broker.cache.snapshot();
    let mut response = DescribeClusterResponse::default();
    if request.include_cluster_authorized_operations {
        response.cluster_authorized_operations =
            ctx.authorized_operations(broker, ResourceType::Cluster, CLUSTER_NAME);
    }
    response
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
