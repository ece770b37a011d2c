//! OffsetForLeaderEpoch (v2–v4): the end offset of a leader epoch (KIP-101/KIP-320).
//!
//! Consumers use it to validate their position after a leader change. Partitions here
//! have had a single leader epoch, so the end offset of the current epoch is the log
//! end offset, and an epoch newer than ours is unknown.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::RequestContext;
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    _: &RequestContext<'_>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let mut result = EpochEndOffset::default().with_partition(p.partition);
            match broker.replica_manager.leader_partition(
                topic.topic.0.as_str(),
                p.partition,
                p.current_leader_epoch,
            ) {
                Err(error) => result.error_code = error.code(),
                Ok(partition) if p.leader_epoch <= partition.leader_epoch => {
                    result.leader_epoch = partition.leader_epoch;
                    result.end_offset = partition.offsets().log_end_offset;
                }
                Ok(_) => {
                    result.leader_epoch = -1;
                    result.end_offset = -1;
                }
            }
            partitions.push(result);
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
