//! DeleteRecords (v0–v2): raise a partition's log start offset; -1 means the high watermark.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::{RequestContext, log_error_code};
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    _: &RequestContext<'_>,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let mut result =
                DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            match broker
                .replica_manager
                .get_partition(topic.name.0.as_str(), p.partition_index)
            {
                None => result.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(partition) => {
                    let offsets = partition.offsets();
                    let target = if p.offset == -1 {
                        offsets.high_watermark
                    } else {
                        p.offset
                    };
                    if target < 0 || target > offsets.high_watermark {
                        result.error_code = ResponseError::OffsetOutOfRange.code();
                        result.low_watermark = -1;
                    } else {
                        match partition.delete_records_before(target) {
                            Ok(low_watermark) => result.low_watermark = low_watermark,
                            Err(e) => {
                                result.error_code = log_error_code(&e).code();
                                result.low_watermark = -1;
                            }
                        }
                    }
                }
            }
            partitions.push(result);
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
