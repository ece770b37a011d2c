//! The broker side of consumer groups: runs the pure `GroupCoordinator` state machine,
//! persists what it asks for in `__consumer_offsets`, parks requests whose answers come
//! later, and follows the leadership of the offsets partitions.
//!
//! - **Leadership.** A group's coordinator is the leader of its `__consumer_offsets`
//!   partition. When LeaderAndIsr makes this broker a partition's leader, the partition is
//!   read back and its groups loaded; when it becomes a follower, the groups are unloaded
//!   and their waiting requests answered NOT_COORDINATOR (Kafka's
//!   `onElection`/`onResignation`).
//! - **Appends off the lock.** Calls into the coordinator run under one mutex, which is
//!   never held across IO: an `Output::Append` is queued to an appender task that writes
//!   the records (in order) as leader with acks=all, waits until they are replicated
//!   (`offsets.commit.timeout.ms`) and reports the outcome with `on_append_completed`,
//!   which may release held-back OffsetCommit or SyncGroup answers.
//! - **Answers.** A `Respond` completes the oneshot channel of the waiting connection; if
//!   that connection went away, the answer is dropped, as Kafka drops responses to closed
//!   channels.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafka_protocol::ResponseError;
use strata_group_coordinator::{
    GroupCoordinator, GroupCoordinatorConfig, GroupResponse, LoadedRecord, OffsetsTopicRecord,
    Output, ProducerIdAndEpoch,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::internal_log::{self, LogEntry};
use crate::replica::{LeadershipChanges, Partition};
use crate::{Broker, now_ms};

/// Kafka's name for the internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

struct AppendJob {
    append_id: u64,
    partition: i32,
    records: Vec<OffsetsTopicRecord>,
    transactional: Option<ProducerIdAndEpoch>,
}

pub struct GroupManager {
    inner: Mutex<Inner>,
    next_request_id: AtomicU64,
    appends: mpsc::UnboundedSender<AppendJob>,
    appends_rx: Mutex<Option<mpsc::UnboundedReceiver<AppendJob>>>,
    /// `offsets.commit.timeout.ms`.
    commit_timeout: Duration,
}

struct Inner {
    coordinator: GroupCoordinator,
    waiting: HashMap<u64, oneshot::Sender<GroupResponse>>,
}

impl GroupManager {
    pub fn new(
        config: GroupCoordinatorConfig,
        seed: u64,
        commit_timeout: Duration,
    ) -> GroupManager {
        let (appends, rx) = mpsc::unbounded_channel();
        GroupManager {
            inner: Mutex::new(Inner {
                coordinator: GroupCoordinator::new(config, seed),
                waiting: HashMap::new(),
            }),
            next_request_id: AtomicU64::new(1),
            appends,
            appends_rx: Mutex::new(Some(rx)),
            commit_timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` against the coordinator, synchronously, for calls that answer at once.
    pub fn query<T>(&self, f: impl FnOnce(&GroupCoordinator) -> T) -> T {
        f(&self.lock().coordinator)
    }

    /// Runs a mutating call that answers at once and emits no outputs (Heartbeat).
    pub fn call_sync<T>(&self, f: impl FnOnce(&mut GroupCoordinator) -> T) -> T {
        f(&mut self.lock().coordinator)
    }

    /// Runs a call whose answer comes as an `Output::Respond` for a fresh request id —
    /// maybe now, maybe after a rebalance — and waits for it.
    pub async fn call(
        &self,
        f: impl FnOnce(&mut GroupCoordinator, u64, i64) -> Vec<Output>,
    ) -> Option<GroupResponse> {
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.lock();
            inner.waiting.insert(request_id, tx);
            let outputs = f(&mut inner.coordinator, request_id, now_ms());
            self.execute(&mut inner, outputs);
        }
        rx.await.ok()
    }

    /// Carries out outputs in order: answers now, appends queued for the appender.
    fn execute(&self, inner: &mut Inner, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Respond {
                    request_id,
                    response,
                } => {
                    if let Some(tx) = inner.waiting.remove(&request_id) {
                        let _ = tx.send(response);
                    }
                }
                Output::Append {
                    append_id,
                    partition,
                    records,
                    transactional,
                } => {
                    let _ = self.appends.send(AppendJob {
                        append_id,
                        partition,
                        records,
                        transactional,
                    });
                }
            }
        }
    }

    fn complete_append(&self, append_id: u64, error: Option<ResponseError>) {
        let mut inner = self.lock();
        let outputs = inner
            .coordinator
            .on_append_completed(append_id, error, now_ms());
        self.execute(&mut inner, outputs);
    }

    /// Writes queued appends in order and completes each once it is replicated.
    pub async fn run_appender(
        self: Arc<Self>,
        broker: Arc<Broker>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let Some(mut rx) = self.appends_rx.lock().expect("appender").take() else {
            return;
        };
        loop {
            let job = tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
                _ = shutdown.changed() => return,
            };
            let records = job.records.into_iter().map(|r| (r.key, r.value));
            let transactional = job.transactional.map(|p| (p.producer_id, p.producer_epoch));
            match internal_log::append(
                &broker,
                OFFSETS_TOPIC,
                job.partition,
                records,
                transactional,
            ) {
                Err(error) => self.complete_append(job.append_id, Some(error)),
                Ok((partition, required_offset)) => {
                    let manager = self.clone();
                    let broker = broker.clone();
                    let timeout = self.commit_timeout;
                    tokio::spawn(async move {
                        let error = broker
                            .replica_manager
                            .wait_for_replication(vec![(partition, required_offset)], timeout)
                            .await
                            .pop()
                            .flatten();
                        manager.complete_append(job.append_id, error);
                    });
                }
            }
        }
    }

    /// Drives time: session expiry, rebalance timeouts, offset retention.
    pub async fn run_ticks(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    let mut inner = self.lock();
                    let outputs = inner.coordinator.tick(now_ms());
                    self.execute(&mut inner, outputs);
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Follows LeaderAndIsr for `__consumer_offsets`: loads the groups of partitions this
    /// broker now leads, unloads those it no longer does.
    pub fn on_leadership_changes(self: &Arc<Self>, broker: &Broker, changes: &LeadershipChanges) {
        for ((topic, partition), _) in &changes.became_follower {
            if topic == OFFSETS_TOPIC {
                let mut inner = self.lock();
                if inner.coordinator.is_partition_loaded(*partition) {
                    let outputs = inner.coordinator.unload_partition(*partition);
                    self.execute(&mut inner, outputs);
                    info!(partition, "unloaded consumer groups: no longer the leader");
                }
            }
        }
        for ((topic, partition), epoch) in &changes.became_leader {
            if topic != OFFSETS_TOPIC {
                continue;
            }
            let Some(p) = broker.replica_manager.get_partition(topic, *partition) else {
                continue;
            };
            let (partition, epoch) = (*partition, *epoch);
            let manager = self.clone();
            tokio::task::spawn_blocking(move || manager.load_partition(&p, partition, epoch));
        }
    }

    /// Reads a partition this broker leads and loads its groups, unless leadership moved
    /// on meanwhile.
    fn load_partition(&self, p: &Partition, partition: i32, epoch: i32) {
        let records: Vec<LoadedRecord> = match internal_log::read_all(p) {
            Ok(entries) => entries.into_iter().map(loaded_record).collect(),
            Err(e) => {
                warn!(partition, error = %e, "cannot read __consumer_offsets partition; its groups are unavailable");
                return;
            }
        };
        let count = records.len();
        let mut inner = self.lock();
        let (leader, current_epoch) = p.leader_and_epoch();
        if !p.is_leader() || current_epoch != epoch || leader.is_none() {
            return;
        }
        if inner.coordinator.is_partition_loaded(partition) {
            let outputs = inner.coordinator.unload_partition(partition);
            self.execute(&mut inner, outputs);
        }
        match inner
            .coordinator
            .load_partition(partition, records, now_ms())
        {
            Ok(()) if count > 0 => info!(partition, records = count, "loaded consumer groups"),
            Ok(()) => debug!(partition, "loaded an empty __consumer_offsets partition"),
            Err(e) => warn!(partition, error = %e, "bad record in __consumer_offsets"),
        }
    }

    /// A COMMIT or ABORT marker of `producer_id` is durable in `__consumer_offsets`
    /// partition `partition`: its transactional offset commits there become committed or
    /// vanish.
    pub fn complete_transaction(&self, partition: i32, producer_id: i64, commit: bool) {
        let groups =
            self.lock()
                .coordinator
                .complete_transaction(partition, producer_id, commit, now_ms());
        if groups > 0 {
            debug!(
                partition,
                producer_id, commit, groups, "completed transactional offset commits"
            );
        }
    }

    pub fn stats(&self) -> strata_group_coordinator::GroupCoordinatorStats {
        self.lock().coordinator.stats()
    }

    pub fn committed_offsets(&self) -> BTreeMap<String, Vec<(String, i32, i64)>> {
        let inner = self.lock();
        let stats = inner.coordinator.stats();
        let mut groups: Vec<String> = stats.members_by_group.keys().cloned().collect();
        groups.sort();
        groups
            .into_iter()
            .map(|g| {
                let offsets = inner.coordinator.committed_offsets(&g);
                (g, offsets)
            })
            .collect()
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
