//! Fetch (v4–v12): read committed records, long-polling until `min_bytes` or `max_wait_ms`.
//!
//! Reads return whole batches: a fetch at an offset inside a batch gets the whole batch
//! (clients skip the records before their position, as with Kafka). Limits: each
//! partition gets at most `partition_max_bytes`, the response at most `max_bytes`,
//! except that the first partition with data always returns at least one whole batch
//! so a consumer can never be stuck behind a batch larger than its limits (KIP-74).
//! Fetch sessions (KIP-227) are not kept: every response carries session id 0, which
//! tells clients to send full fetch requests.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use tokio::time::Instant;

use super::{RequestContext, log_error_code};
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: FetchRequest,
) -> FetchResponse {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let min_bytes = request.min_bytes.max(0) as usize;
    let mut appended = broker.replica_manager.subscribe_appends();
    loop {
        // Mark the current append generation as seen *before* reading, so an append that
        // lands between the read and the wait still wakes us.
        appended.borrow_and_update();
        let (response, bytes, has_error) = read_once(broker, &request, ctx.version);
        let now = Instant::now();
        if bytes >= min_bytes || has_error || now >= deadline {
            broker
                .metrics
                .bytes_out
                .fetch_add(bytes as u64, Ordering::Relaxed);
            return response;
        }
        if tokio::time::timeout_at(deadline, appended.changed())
            .await
            .is_err()
        {
            let (response, bytes, _) = read_once(broker, &request, ctx.version);
            broker
                .metrics
                .bytes_out
                .fetch_add(bytes as u64, Ordering::Relaxed);
            return response;
        }
    }
}

/// One pass over the requested partitions. Returns the response, the record bytes in
/// it, and whether any partition carried an error (errors are returned immediately).
fn read_once(
    broker: &Broker,
    request: &FetchRequest,
    version: i16,
) -> (FetchResponse, usize, bool) {
    // log_start_offset exists from v5; older versions must leave it at its default.
    let with_log_start = version >= 5;
    let mut remaining = request.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut has_error = false;
    let mut topics = Vec::with_capacity(request.topics.len());
    // Topic ids are only sent at v13+, which we don't advertise; names always resolve.
    for topic in &request.topics {
        let name = topic.topic.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let mut data = PartitionData::default().with_partition_index(p.partition);
            data.aborted_transactions = None;
            match broker
                .replica_manager
                .leader_partition(name, p.partition, p.current_leader_epoch)
            {
                Err(error) => {
                    data.error_code = error.code();
                    data.high_watermark = -1;
                    has_error = true;
                }
                Ok(partition) => {
                    let limit = (p.partition_max_bytes.max(0) as usize).min(remaining);
                    let min_one_message = total == 0;
                    match partition.read(p.fetch_offset, limit, min_one_message) {
                        Ok((info, offsets)) => {
                            data.high_watermark = offsets.high_watermark;
                            data.last_stable_offset = offsets.high_watermark;
                            if with_log_start {
                                data.log_start_offset = offsets.log_start_offset;
                            }
                            let n = info.records.len();
                            total += n;
                            remaining = remaining.saturating_sub(n);
                            data.records = Some(info.records);
                        }
                        Err(e) => {
                            let offsets = partition.offsets();
                            data.error_code = log_error_code(&e).code();
                            data.high_watermark = offsets.high_watermark;
                            data.last_stable_offset = offsets.high_watermark;
                            if with_log_start {
                                data.log_start_offset = offsets.log_start_offset;
                            }
                            data.records = Some(Bytes::new());
                            has_error = true;
                        }
                    }
                }
            }
            partitions.push(data);
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(TopicName(topic.topic.0.clone()))
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    (
        FetchResponse::default().with_responses(topics),
        total,
        has_error,
    )
}
