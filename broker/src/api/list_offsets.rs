//! ListOffsets (v1–v9): earliest (-2), latest (-1), max timestamp (-3), earliest local
//! (-4, the log start: nothing is tiered), latest tiered (-5, none: offset -1), or by
//! timestamp.
//! Answered by the leader. For a consumer "latest" is the high watermark (read
//! uncommitted sees no further), or the last stable offset for a `read_committed` one; a
//! follower asking (replica id ≥ 0) gets the log end
//! offset, which it needs to truncate after an unclean election. A record found by
//! timestamp (or the max-timestamp one) at or past that same bound is not reported —
//! offset and timestamp -1 — as Kafka's `ReplicaManager` does: a consumer is never sent
//! to an offset it may not read yet.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{RequestContext, log_error_code};
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
const LATEST_TIERED_TIMESTAMP: i64 = -5;
/// `isolation_level` of a `read_committed` consumer (v2+).
const READ_COMMITTED: i8 = 1;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.as_str();
        let authorized = ctx.authorized(broker, Operation::Describe, ResourceType::Topic, name);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let mut response =
                ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            if !authorized {
                response.error_code = ResponseError::TopicAuthorizationFailed.code();
                response.offset = -1;
                response.timestamp = -1;
                partitions.push(response);
                continue;
            }
            match broker.replica_manager.leader_partition(
                name,
                p.partition_index,
                p.current_leader_epoch,
            ) {
                Err(error) => response.error_code = error.code(),
                // A client asking a new leader whose high watermark has not reached the
                // start of its epoch gets OFFSET_NOT_AVAILABLE and retries (KIP-207).
                Ok(partition)
                    if request.replica_id.0 < 0 && partition.high_watermark_lags_epoch_start() =>
                {
                    response.error_code = ResponseError::OffsetNotAvailable.code();
                    response.offset = -1;
                    response.timestamp = -1;
                }
                Ok(partition) => {
                    let offsets = partition.offsets();
                    if ctx.version >= 4 {
                        response.leader_epoch = partition.leader_and_epoch().1;
                    }
                    // What this asker may read up to: "latest", and the bound a record
                    // found by timestamp must stay below.
                    let last_fetchable = if request.replica_id.0 >= 0 {
                        offsets.log_end_offset
                    } else if request.isolation_level == READ_COMMITTED {
                        offsets.last_stable_offset
                    } else {
                        offsets.high_watermark
                    };
                    let fetchable = |offset: i64| offset < last_fetchable;
                    match p.timestamp {
                        LATEST_TIMESTAMP => response.offset = last_fetchable,
                        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => {
                            response.offset = offsets.log_start_offset
                        }
                        MAX_TIMESTAMP => {
                            if let Some((timestamp, offset)) = partition
                                .max_timestamp_and_offset()
                                .filter(|(_, offset)| fetchable(*offset))
                            {
                                response.timestamp = timestamp;
                                response.offset = offset;
                            }
                        }
                        LATEST_TIERED_TIMESTAMP => response.leader_epoch = -1,
                        ts if ts < 0 => response.error_code = ResponseError::InvalidRequest.code(),
                        ts => match partition.fetch_offset_by_timestamp(ts) {
                            Ok(Some((offset, timestamp))) if fetchable(offset) => {
                                response.offset = offset;
                                response.timestamp = timestamp;
                            }
                            // No record at or after the timestamp that may be read:
                            // offset and timestamp -1.
                            Ok(_) => {}
                            Err(e) => response.error_code = log_error_code(&e).code(),
                        },
                    }
                }
            }
            partitions.push(response);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}
