//! DeleteRecords (v0–v2): raise a partition's log start offset on its leader; -1 means
//! the high watermark. Followers follow through the log start offset in fetch responses.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::{RequestContext, log_error_code};
use crate::Broker;
use crate::replica::partition::PartitionError;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let authorized = ctx.authorized(
            broker,
            Operation::Delete,
            ResourceType::Topic,
            topic.name.as_str(),
        );
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let mut result =
                DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            if !authorized {
                partitions.push(
                    result
                        .with_low_watermark(-1)
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
                );
                continue;
            }
            let outcome = broker
                .replica_manager
                .leader_partition(topic.name.0.as_str(), p.partition_index, -1)
                .map_err(PartitionError::from)
                .and_then(|partition| {
                    if p.offset < -1 {
                        return Err(ResponseError::OffsetOutOfRange.into());
                    }
                    partition.delete_records_on_leader(p.offset)
                });
            match outcome {
                Ok(low_watermark) => result.low_watermark = low_watermark,
                Err(e) => {
                    result.error_code = match e {
                        PartitionError::Kafka(code, _) => code.code(),
                        PartitionError::Log(e) => log_error_code(&e).code(),
                    };
                    result.low_watermark = -1;
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
