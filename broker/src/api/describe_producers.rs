//! DescribeProducers (v0, KIP-664): the producers a partition leader has state for, with
//! the start of their open transaction — what `kafka-transactions.sh describe-producers`
//! shows, and how a hanging transaction is found. Needs READ on the topic.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.as_str();
            let authorized = ctx.authorized(broker, Operation::Read, ResourceType::Topic, name);
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&index| {
                    let response = PartitionResponse::default().with_partition_index(index);
                    if !authorized {
                        return response
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    match broker.replica_manager.leader_partition(name, index, -1) {
                        Err(e) => response.with_error_code(e.code()),
                        Ok(partition) => response.with_active_producers(
                            partition
                                .active_producers()
                                .into_iter()
                                .map(|(id, epoch, last_seq, last_ts, coord_epoch, txn_start)| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(id))
                                        .with_producer_epoch(i32::from(epoch))
                                        .with_last_sequence(last_seq)
                                        .with_last_timestamp(last_ts)
                                        .with_coordinator_epoch(coord_epoch)
                                        .with_current_txn_start_offset(txn_start)
                                })
                                .collect(),
                        ),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
