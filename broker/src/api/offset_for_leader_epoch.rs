//! OffsetForLeaderEpoch (v2–v4): where a leader epoch ends on this replica (KIP-101,
//! KIP-320), from its leader-epoch cache: the latest epoch ends at the log end offset, an
//! older one where the next epoch began, an unknown newer one is (-1, -1).
//!
//! Consumers ask the leader to validate their position after a leader change; followers
//! (replica id ≥ 0) may ask any replica (Kafka's `fetchOnlyFromLeader = false`).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    // replica_id arrived in v3; before it every caller is a consumer.
    let from_leader_only = ctx.version < 3 || request.replica_id.0 < 0;
    // A follower needs ClusterAction; a consumer Describe on the topic.
    let follower_ok = from_leader_only || ctx.cluster_authorized(broker, Operation::ClusterAction);
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let authorized = follower_ok
            && (!from_leader_only
                || ctx.authorized(
                    broker,
                    Operation::Describe,
                    ResourceType::Topic,
                    topic.topic.as_str(),
                ));
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let mut result = EpochEndOffset::default().with_partition(p.partition);
            let outcome = match broker
                .replica_manager
                .get_partition(topic.topic.0.as_str(), p.partition)
                .filter(|_| authorized)
            {
                None if !authorized => Err(ResponseError::TopicAuthorizationFailed),
                None => Err(ResponseError::UnknownTopicOrPartition),
                Some(partition) => partition.last_offset_for_leader_epoch(
                    p.current_leader_epoch,
                    p.leader_epoch,
                    from_leader_only,
                ),
            };
            match outcome {
                Ok((epoch, end_offset)) => {
                    result.leader_epoch = epoch;
                    result.end_offset = end_offset;
                }
                Err(error) => {
                    result.error_code = error.code();
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
