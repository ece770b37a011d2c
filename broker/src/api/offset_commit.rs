//! OffsetCommit (v2–v9): acknowledged once the offsets are in `__consumer_offsets`.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use strata_group_coordinator::GroupResponse;

use super::RequestContext;
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let version = ctx.version;
    // If the coordinator drops the request (its partition was unloaded), every
    // partition is told to retry against the coordinator it finds next.
    let unavailable = OffsetCommitResponse::default().with_topics(
        request
            .topics
            .iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(ResponseError::CoordinatorNotAvailable.code())
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    match broker
        .groups
        .call(|c, id, now| c.handle_offset_commit(request, version, id, now))
        .await
    {
        Some(GroupResponse::OffsetCommit(response)) => response,
        _ => unavailable,
    }
}
