//! DescribeCluster (v0–v1). The endpoint type is left at its default (brokers).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{RequestContext, str_bytes};
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    _: &RequestContext<'_>,
    _: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let endpoint = broker.config.advertised_endpoint();
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(broker.cluster_id.clone()))
        .with_controller_id(BrokerId(broker.config.broker_id))
        .with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(broker.config.broker_id))
                .with_host(str_bytes(endpoint.host))
                .with_port(i32::from(endpoint.port)),
        ])
}
