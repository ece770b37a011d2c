//! DescribeLogDirs (v1–v4): each log dir, the partitions it holds and their sizes, and
//! the disk's total and usable bytes (v4). `kafka-reassign-partitions` and
//! `kafka-log-dirs` use it.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::{RequestContext, str_bytes};
use crate::Broker;
use crate::security::acl::Operation;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    if !ctx.cluster_authorized(broker, Operation::Describe) {
        // Kafka answers with no log dirs (and, from v3, the error).
        let mut response = DescribeLogDirsResponse::default();
        if ctx.version >= 3 {
            response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        }
        return response;
    }
    // None: every partition.
    let wanted: Option<BTreeSet<(String, i32)>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.topic.0.to_string(), *p))
            })
            .collect()
    });
    let results = broker
        .replica_manager
        .log_manager()
        .logs_by_dir()
        .into_iter()
        .map(|(dir, logs)| {
            let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
            for ((topic, partition), size) in logs {
                if wanted
                    .as_ref()
                    .is_some_and(|w| !w.contains(&(topic.clone(), partition)))
                {
                    continue;
                }
                topics.entry(topic).or_default().push(
                    DescribeLogDirsPartition::default()
                        .with_partition_index(partition)
                        .with_partition_size(size as i64)
                        .with_offset_lag(0)
                        .with_is_future_key(false),
                );
            }
            let mut result = DescribeLogDirsResult::default()
                .with_log_dir(str_bytes(dir.display().to_string()))
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(name, partitions)| {
                            DescribeLogDirsTopic::default()
                                .with_name(TopicName(str_bytes(name)))
                                .with_partitions(partitions)
                        })
                        .collect(),
                );
            if ctx.version >= 4 {
                let (total, usable) = disk_space(&dir).unwrap_or((-1, -1));
                result.total_bytes = total;
                result.usable_bytes = usable;
            }
            result
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}

/// `(total, usable)` bytes of the filesystem holding `dir`.
fn disk_space(dir: &std::path::Path) -> Option<(i64, i64)> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    let block = stat.f_frsize as i64;
    Some((stat.f_blocks as i64 * block, stat.f_bavail as i64 * block))
}
