//! The broker side of consumer groups: the pure `GroupCoordinator` state machine run by
//! the [`CoordinatorRuntime`] over `__consumer_offsets` — its records appended there, its
//! groups loaded from the partitions this broker leads, its late answers (a JoinGroup at
//! the end of the join phase, an OffsetCommit once durable) parked until they come. The
//! appends wait for replication up to `offsets.commit.timeout.ms`; a 100 ms tick drives
//! sessions, rebalance timeouts and offset retention.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::ResponseError;
use strata_group_coordinator::{
    GroupCoordinator, GroupCoordinatorConfig, GroupResponse, LoadedRecord, OffsetsTopicRecord,
    Output,
};
use tracing::debug;

use crate::coordinator_runtime::{AppendJob, CoordinatorRuntime, StateMachine, Step};
use crate::internal_log::LogEntry;
use crate::now_ms;

/// Kafka's name for the internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

pub type GroupManager = CoordinatorRuntime<GroupCoordinator>;

impl StateMachine for GroupCoordinator {
    type Output = Output;
    type Response = GroupResponse;
    const TOPIC: &'static str = OFFSETS_TOPIC;

    fn route(output: Output) -> Step<GroupResponse, Output> {
        match output {
            Output::Respond {
                request_id,
                response,
            } => Step::Respond {
                request_id,
                response,
            },
            Output::Append {
                append_id,
                partition,
                records,
                transactional,
            } => Step::Append(AppendJob {
                append_id,
                partition,
                records: records.into_iter().map(|r| (r.key, r.value)).collect(),
                transactional: transactional.map(|p| (p.producer_id, p.producer_epoch)),
                guard: None,
            }),
        }
    }

    fn on_append_completed(
        &mut self,
        append_id: u64,
        error: Option<ResponseError>,
        now_ms: i64,
    ) -> Vec<Output> {
        GroupCoordinator::on_append_completed(self, append_id, error, now_ms)
    }

    fn tick(&mut self, now_ms: i64) -> Vec<Output> {
        GroupCoordinator::tick(self, now_ms)
    }

    fn is_partition_loaded(&self, partition: i32) -> bool {
        GroupCoordinator::is_partition_loaded(self, partition)
    }

    fn load_partition(
        &mut self,
        partition: i32,
        _leader_epoch: i32,
        entries: Vec<LogEntry>,
        now_ms: i64,
    ) -> Result<Vec<Output>, String> {
        let records = entries.into_iter().map(loaded_record);
        GroupCoordinator::load_partition(self, partition, records, now_ms)
            .map(|()| Vec::new())
            .map_err(|e| e.to_string())
    }

    fn unload_partition(&mut self, partition: i32) -> Vec<Output> {
        GroupCoordinator::unload_partition(self, partition)
    }
}

impl CoordinatorRuntime<GroupCoordinator> {
    pub fn for_groups(config: GroupCoordinatorConfig, seed: u64, commit_timeout: Duration) -> Self {
        CoordinatorRuntime::new(
            GroupCoordinator::new(config, seed),
            commit_timeout,
            Duration::from_millis(100),
        )
    }

    /// A COMMIT or ABORT marker of `producer_id` is durable in `__consumer_offsets`
    /// partition `partition`: its transactional offset commits there become committed or
    /// vanish.
    pub fn complete_transaction(&self, partition: i32, producer_id: i64, commit: bool) {
        let groups =
            self.call_sync(|c| c.complete_transaction(partition, producer_id, commit, now_ms()));
        if groups > 0 {
            debug!(
                partition,
                producer_id, commit, groups, "completed transactional offset commits"
            );
        }
    }

    pub fn stats(&self) -> strata_group_coordinator::GroupCoordinatorStats {
        self.query(|c| c.stats())
    }

    pub fn committed_offsets(&self) -> BTreeMap<String, Vec<(String, i32, i64)>> {
        self.query(|c| {
            let mut groups: Vec<String> = c.stats().members_by_group.keys().cloned().collect();
            groups.sort();
            groups
                .into_iter()
                .map(|g| {
                    let offsets = c.committed_offsets(&g);
                    (g, offsets)
                })
                .collect()
        })
    }
}

/// A `__consumer_offsets` entry as the group coordinator loads it.
fn loaded_record(entry: LogEntry) -> LoadedRecord {
    match entry {
        LogEntry::Record {
            key,
            value,
            transactional_producer,
        } => {
            let record = OffsetsTopicRecord { key, value };
            match transactional_producer {
                Some(producer_id) => LoadedRecord::transactional(record, producer_id),
                None => LoadedRecord::record(record),
            }
        }
        LogEntry::Marker {
            producer_id,
            commit,
        } => LoadedRecord::marker(producer_id, commit),
    }
}
