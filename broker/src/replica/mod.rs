//! Replication: the partitions this broker hosts, as leader or follower.
//!
//! - [`isr`]: the pure rules (followers' progress, ISR changes, high watermark, acks=all).
//! - [`truncation`]: where a follower's log diverges from its leader's (pure).
//! - [`partition`]: `Partition`, one replica with its log and its rules under one lock.
//! - [`fetcher`]: followers fetching from leaders.
//! - [`alter_partition`]: leaders' ISR changes sent to the controller.
//! - [`ReplicaManager`] (here): the partitions by name, LeaderAndIsr and StopReplica, and
//!   the waits of acks=all produce and long-poll fetch.

pub mod alter_partition;
pub mod fetcher;
pub mod isr;
pub mod partition;
pub mod quota;
pub mod truncation;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::ResponseError;
use strata_storage::{LogConfig, LogError, LogManager};
use tokio::time::Instant;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::metadata::{MetadataCache, TopicPartition};
use crate::now_ms;
use crate::protocol::{
    LeaderAndIsrRequest, LeaderAndIsrResponse, PartitionError, StopReplicaRequest,
    StopReplicaResponse,
};
use alter_partition::AlterPartitionManager;
use fetcher::ReplicaFetcherManager;
use isr::LeaderAndIsrState;
pub use partition::{Partition, PartitionInfo, PartitionOffsets};
use quota::ReplicationQuotas;

/// The hosted partitions by topic and index, looked up with a borrowed topic name: the
/// produce and fetch paths find a partition without building a key.
#[derive(Default)]
struct PartitionMap {
    topics: HashMap<String, BTreeMap<i32, Arc<Partition>>>,
}

impl PartitionMap {
    fn get(&self, topic: &str, partition: i32) -> Option<&Arc<Partition>> {
        self.topics.get(topic)?.get(&partition)
    }

    /// A topic's partitions, by index.
    fn topic(&self, topic: &str) -> impl Iterator<Item = &Arc<Partition>> {
        self.topics.get(topic).into_iter().flat_map(|p| p.values())
    }

    fn values(&self) -> impl Iterator<Item = &Arc<Partition>> {
        self.topics.values().flat_map(|p| p.values())
    }

    fn insert(&mut self, p: Arc<Partition>) {
        self.topics
            .entry(p.topic.clone())
            .or_default()
            .insert(p.partition, p);
    }

    fn remove(&mut self, topic: &str, partition: i32) {
        if let Some(partitions) = self.topics.get_mut(topic) {
            partitions.remove(&partition);
            if partitions.is_empty() {
                self.topics.remove(topic);
            }
        }
    }
}

/// Replication settings of the broker.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    pub broker_id: i32,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: i64,
}

/// What a LeaderAndIsr changed, for those who follow leadership (the group coordinator
/// follows `__consumer_offsets`).
#[derive(Debug, Default)]
pub struct LeadershipChanges {
    pub became_leader: Vec<(TopicPartition, i32)>,
    pub became_follower: Vec<(TopicPartition, i32)>,
}

/// Replication counters for metrics.
#[derive(Debug, Default)]
pub struct ReplicaMetrics {
    pub isr_shrinks: AtomicU64,
    pub isr_expands: AtomicU64,
}

pub struct ReplicaManager {
    config: ReplicaConfig,
    log_manager: LogManager,
    cache: Arc<MetadataCache>,
    partitions: RwLock<PartitionMap>,
    /// The newest controller epoch seen; requests from older controllers are refused.
    controller_epoch: AtomicI32,
    pub fetchers: Arc<ReplicaFetcherManager>,
    pub alter_partition: Arc<AlterPartitionManager>,
    pub metrics: ReplicaMetrics,
    /// Replication throttles (KIP-73), shared with the fetchers.
    pub quotas: Arc<ReplicationQuotas>,
}

/// `STALE_CONTROLLER_EPOCH` for a whole request.
fn stale(controller_epoch: i32, current: i32) -> bool {
    controller_epoch < current
}

impl ReplicaManager {
    pub fn new(
        config: ReplicaConfig,
        log_manager: LogManager,
        cache: Arc<MetadataCache>,
        fetchers: Arc<ReplicaFetcherManager>,
        alter_partition: Arc<AlterPartitionManager>,
    ) -> ReplicaManager {
        let quotas = fetchers.quotas.clone();
        ReplicaManager {
            config,
            log_manager,
            cache,
            partitions: RwLock::new(PartitionMap::default()),
            controller_epoch: AtomicI32::new(-1),
            fetchers,
            alter_partition,
            metrics: ReplicaMetrics::default(),
            quotas,
        }
    }

    pub fn broker_id(&self) -> i32 {
        self.config.broker_id
    }

    pub fn log_manager(&self) -> &LogManager {
        &self.log_manager
    }

    pub fn cache(&self) -> &Arc<MetadataCache> {
        &self.cache
    }

    pub fn controller_epoch(&self) -> i32 {
        self.controller_epoch.load(Ordering::Acquire)
    }

    /// Brokers the metadata cache lists as alive (this one always counts).
    fn is_alive_fn(&self) -> impl Fn(i32) -> bool + use<> {
        let snapshot = self.cache.snapshot();
        let me = self.config.broker_id;
        move |b| b == me || snapshot.is_alive(b)
    }

    pub fn get_partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .expect("partitions lock")
            .get(topic, partition)
            .cloned()
    }

    /// The partition a leader-only request addresses, checked as Kafka checks it.
    pub fn leader_partition(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
    ) -> Result<Arc<Partition>, ResponseError> {
        match self.get_partition(topic, partition) {
            Some(p) => {
                p.check_leader(current_leader_epoch)?;
                Ok(p)
            }
            // A partition the cluster has but this broker does not host.
            None if self.cache.snapshot().partition(topic, partition).is_some() => {
                Err(ResponseError::NotLeaderOrFollower)
            }
            None => Err(ResponseError::UnknownTopicOrPartition),
        }
    }

    pub fn partitions_of(&self, topic: &str) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .expect("partitions lock")
            .topic(topic)
            .cloned()
            .collect()
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        let mut v: Vec<_> = self
            .partitions
            .read()
            .expect("partitions lock")
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        v
    }

    /// The partition, created (with its log) if this broker does not host it yet.
    fn get_or_create_partition(
        &self,
        topic: &str,
        partition: i32,
        topic_id: Uuid,
        config: LogConfig,
    ) -> Result<Arc<Partition>, LogError> {
        if let Some(p) = self.get_partition(topic, partition) {
            return Ok(p);
        }
        let mut partitions = self.partitions.write().expect("partitions lock");
        if let Some(p) = partitions.get(topic, partition) {
            return Ok(p.clone());
        }
        let log = self
            .log_manager
            .get_or_create_log(topic, partition, config.clone())?;
        let p = Arc::new(Partition::new(
            topic,
            partition,
            topic_id,
            self.config.broker_id,
            log,
            &config,
            self.config.replica_lag_time_max_ms,
        ));
        partitions.insert(p.clone());
        Ok(p)
    }

    /// Kafka's `becomeLeaderOrFollower`: applies a LeaderAndIsr request.
    pub fn become_leader_or_follower(
        &self,
        request: &LeaderAndIsrRequest,
        log_config: &dyn Fn(&str) -> LogConfig,
    ) -> (LeaderAndIsrResponse, LeadershipChanges) {
        let mut response = LeaderAndIsrResponse::default();
        let mut changes = LeadershipChanges::default();
        let current = self.controller_epoch();
        if stale(request.controller_epoch, current) {
            warn!(
                controller = request.controller_id,
                epoch = request.controller_epoch,
                current,
                "ignoring LeaderAndIsr from a stale controller"
            );
            response.error_code = ResponseError::StaleControllerEpoch.code();
            return (response, changes);
        }
        self.controller_epoch
            .store(request.controller_epoch, Ordering::Release);
        let now = now_ms();
        let is_alive = self.is_alive_fn();
        let me = self.config.broker_id;
        let mut followers: BTreeMap<i32, Vec<(Arc<Partition>, i32)>> = BTreeMap::new();
        for topic in &request.topic_states {
            let config = log_config(&topic.topic_name);
            for state in &topic.partition_states {
                let tp = (topic.topic_name.clone(), state.partition_index);
                let mut error = None;
                if !state.replicas.contains(&me) {
                    error = Some(ResponseError::UnknownTopicOrPartition);
                } else if let Some(existing) = self.get_partition(&tp.0, tp.1) {
                    let (_, epoch) = existing.leader_and_epoch();
                    // Only a newer leader epoch is applied, as in Kafka: the ZooKeeper-mode
                    // controller bumps the epoch with every change it makes, so the same
                    // epoch again is a retried or resent request. Applying it would reset
                    // a leader's ISR change in flight, whose AlterPartition the controller
                    // may still commit: an ISR member the leader no longer waits for.
                    if state.leader_epoch <= epoch && state.leader_epoch >= 0 {
                        error = Some(ResponseError::StaleControllerEpoch);
                    }
                }
                if error.is_none() {
                    let target = LeaderAndIsrState {
                        controller_epoch: state.controller_epoch,
                        leader: state.leader,
                        leader_epoch: state.leader_epoch,
                        isr: state.isr.clone(),
                        partition_epoch: state.partition_epoch,
                        replicas: state.replicas.clone(),
                        adding_replicas: state.adding_replicas.clone(),
                        removing_replicas: state.removing_replicas.clone(),
                        leader_recovery_state: state.leader_recovery_state,
                    };
                    match self.get_or_create_partition(&tp.0, tp.1, topic.topic_id, config.clone())
                    {
                        Err(e) => {
                            warn!(topic = %tp.0, partition = tp.1, error = %e, "cannot open the partition's log");
                            error = Some(ResponseError::KafkaStorageError);
                        }
                        Ok(partition) if state.leader == me => {
                            self.fetchers.remove_partitions(std::slice::from_ref(&tp));
                            match partition.make_leader(&target, topic.topic_id, now, &is_alive) {
                                Ok(change) if !change.skipped => {
                                    if change.new_leader_epoch {
                                        debug!(topic = %tp.0, partition = tp.1, epoch = state.leader_epoch, isr = ?state.isr, "leading");
                                    }
                                    changes.became_leader.push((tp.clone(), state.leader_epoch));
                                }
                                Ok(_) => {}
                                Err(e) => {
                                    warn!(topic = %tp.0, partition = tp.1, error = %e, "becoming leader failed");
                                    error = Some(ResponseError::KafkaStorageError);
                                }
                            }
                        }
                        Ok(partition) => {
                            let change = partition.make_follower(&target, topic.topic_id);
                            if !change.skipped {
                                changes
                                    .became_follower
                                    .push((tp.clone(), state.leader_epoch));
                                // A new epoch restarts fetching, so the fetch position and
                                // the leader it targets are fresh.
                                if change.new_leader_epoch || !self.is_fetching(&tp, state.leader) {
                                    self.fetchers.remove_partitions(std::slice::from_ref(&tp));
                                    if state.leader >= 0 {
                                        followers
                                            .entry(state.leader)
                                            .or_default()
                                            .push((partition, state.leader_epoch));
                                    }
                                }
                            }
                        }
                    }
                }
                response.partition_errors.push(PartitionError {
                    topic_name: tp.0,
                    partition_index: tp.1,
                    error_code: error.map_or(0, |e| e.code()),
                });
            }
        }
        if !changes.became_leader.is_empty() || !changes.became_follower.is_empty() {
            info!(
                controller = request.controller_id,
                controller_epoch = request.controller_epoch,
                leading = changes.became_leader.len(),
                following = changes.became_follower.len(),
                "applied LeaderAndIsr"
            );
        }
        for (leader, partitions) in followers {
            debug!(leader, count = partitions.len(), "following");
            self.fetchers.add_partitions(leader, partitions);
        }
        (response, changes)
    }

    fn is_fetching(&self, tp: &TopicPartition, leader: i32) -> bool {
        self.fetchers
            .fetching()
            .iter()
            .any(|(t, l)| t == tp && *l == leader)
    }

    /// Kafka's `stopReplicas`: stop fetching, and with `delete_partition` remove the
    /// partition and its log.
    pub fn stop_replicas(
        &self,
        request: &StopReplicaRequest,
    ) -> (StopReplicaResponse, Vec<TopicPartition>) {
        let mut response = StopReplicaResponse::default();
        let mut deleted = Vec::new();
        let current = self.controller_epoch();
        if stale(request.controller_epoch, current) {
            response.error_code = ResponseError::StaleControllerEpoch.code();
            return (response, deleted);
        }
        self.controller_epoch
            .store(request.controller_epoch, Ordering::Release);
        for topic in &request.topic_states {
            for state in &topic.partition_states {
                let tp = (topic.topic_name.clone(), state.partition_index);
                let mut error = None;
                if let Some(p) = self.get_partition(&tp.0, tp.1) {
                    let (_, epoch) = p.leader_and_epoch();
                    // -1: no epoch; -2: the topic is being deleted.
                    if state.leader_epoch >= 0 && state.leader_epoch < epoch {
                        error = Some(ResponseError::FencedLeaderEpoch);
                    }
                }
                if error.is_none() {
                    self.fetchers.remove_partitions(std::slice::from_ref(&tp));
                    if state.delete_partition {
                        self.partitions
                            .write()
                            .expect("partitions lock")
                            .remove(&tp.0, tp.1);
                        match self.log_manager.delete_log(&tp.0, tp.1) {
                            Ok(()) => deleted.push(tp.clone()),
                            Err(e) => {
                                warn!(topic = %tp.0, partition = tp.1, error = %e, "deleting the log failed");
                                error = Some(ResponseError::KafkaStorageError);
                            }
                        }
                    }
                }
                response.partition_errors.push(PartitionError {
                    topic_name: tp.0,
                    partition_index: tp.1,
                    error_code: error.map_or(0, |e| e.code()),
                });
            }
        }
        (response, deleted)
    }

    /// Notes a controller epoch seen in UpdateMetadata; `false` when it is stale.
    pub fn accept_controller_epoch(&self, epoch: i32) -> bool {
        let current = self.controller_epoch();
        if stale(epoch, current) {
            return false;
        }
        self.controller_epoch.fetch_max(epoch, Ordering::AcqRel);
        true
    }

    /// Appends to a leader partition; an ISR expansion it enables is submitted.
    pub fn append_to_leader(
        &self,
        partition: &Arc<Partition>,
        records: &[u8],
        required_acks: i16,
        guard: Option<strata_storage::VerificationGuard>,
    ) -> Result<(strata_storage::LogAppendInfo, i64), partition::PartitionError> {
        let is_alive = self.is_alive_fn();
        partition.append_records_to_leader(
            records,
            required_acks,
            false,
            guard,
            now_ms(),
            &is_alive,
        )
    }

    /// Appends records a coordinator of this broker wrote (to `__consumer_offsets` or
    /// `__transaction_state`), with acks=all; `guard`: the verification of a
    /// transactional offset commit.
    pub fn append_coordinator_records(
        &self,
        partition: &Arc<Partition>,
        records: &[u8],
        guard: Option<strata_storage::VerificationGuard>,
    ) -> Result<(strata_storage::LogAppendInfo, i64), partition::PartitionError> {
        let is_alive = self.is_alive_fn();
        partition.append_records_to_leader(records, -1, true, guard, now_ms(), &is_alive)
    }

    /// Appends an end-transaction marker on a partition led here; see
    /// [`Partition::append_marker_to_leader`].
    pub fn append_marker(
        &self,
        partition: &Arc<Partition>,
        marker: &strata_storage::EndTxnMarker,
    ) -> Result<i64, partition::PartitionError> {
        let is_alive = self.is_alive_fn();
        partition.append_marker_to_leader(marker, now_ms(), &is_alive)
    }

    /// A follower fetched: record it, and submit an ISR expansion if it qualifies.
    pub fn record_follower_fetch(
        &self,
        partition: &Arc<Partition>,
        replica_id: i32,
        fetch_offset: i64,
        log_start_offset: i64,
        leader_log_end_offset: i64,
        broker_epoch: Option<i64>,
    ) -> Result<(), ResponseError> {
        let is_alive = self.is_alive_fn();
        let proposal = partition.update_follower_fetch_state(
            replica_id,
            fetch_offset,
            log_start_offset,
            now_ms(),
            leader_log_end_offset,
            broker_epoch,
            &is_alive,
        )?;
        if let Some(proposal) = proposal {
            info!(topic = %partition.topic, partition = partition.partition, replica = replica_id, isr = ?proposal.new_isr, "expanding ISR");
            self.metrics.isr_expands.fetch_add(1, Ordering::Relaxed);
            self.alter_partition.submit(partition.clone(), proposal);
        }
        Ok(())
    }

    /// acks=all: waits until each `(partition, required offset)` is committed, or the
    /// timeout passes (REQUEST_TIMED_OUT), as Kafka's `DelayedProduce` does.
    pub async fn wait_for_replication(
        &self,
        waits: Vec<(Arc<Partition>, i64)>,
        timeout: Duration,
    ) -> Vec<Option<ResponseError>> {
        let deadline = Instant::now() + timeout;
        let mut watches: Vec<_> = waits.iter().map(|(p, _)| p.subscribe_hw()).collect();
        let mut results: Vec<Option<Option<ResponseError>>> = vec![None; waits.len()];
        loop {
            for (i, (partition, required)) in waits.iter().enumerate() {
                if results[i].is_some() {
                    continue;
                }
                watches[i].borrow_and_update();
                let (done, error) = partition.check_enough_replicas_reach_offset(*required);
                if done || error.is_some() {
                    results[i] = Some(error);
                }
            }
            if results.iter().all(Option::is_some) {
                break;
            }
            let mut changed: FuturesUnordered<_> = watches
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| results[*i].is_none())
                .map(|(_, w)| w.changed())
                .collect();
            let woke = tokio::time::timeout_at(deadline, changed.next()).await;
            drop(changed);
            if woke.is_err() {
                break;
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Some(ResponseError::RequestTimedOut)))
            .collect()
    }

    /// Every `replica.lag.time.max.ms / 2`: leaders drop followers that fell behind
    /// (Kafka's `isr-expiration` task).
    pub fn shrink_isrs(&self) {
        let now = now_ms();
        for partition in self.all_partitions() {
            if let Some(proposal) = partition.maybe_shrink_isr(now) {
                info!(topic = %partition.topic, partition = partition.partition, isr = ?proposal.new_isr, "shrinking ISR");
                self.metrics.isr_shrinks.fetch_add(1, Ordering::Relaxed);
                self.alter_partition.submit(partition, proposal);
            }
        }
    }

    pub fn shrink_interval(&self) -> Duration {
        Duration::from_millis((self.config.replica_lag_time_max_ms / 2).max(10) as u64)
    }

    /// Partitions led here, for controlled shutdown's progress.
    pub fn leader_partitions(&self) -> Vec<Arc<Partition>> {
        self.all_partitions()
            .into_iter()
            .filter(|p| p.is_leader())
            .collect()
    }
}
