//! `Partition`: one replica of one topic-partition on this broker, leader or follower.
//!
//! Its leadership state (leader, leader epoch, partition epoch, replicas, ISR, followers'
//! progress) is a [`ReplicaState`] under one lock, as Kafka's `Partition` keeps it under
//! its `leaderIsrUpdateLock`; the log has its own lock, always taken after the state
//! lock. Every change that a waiting request may care about bumps a watch: `hw` when the
//! high watermark or the leadership moves (acks=all producers, consumers), `leo` when
//! records are appended (followers' long polls).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use strata_storage::{
    AbortedTxn, CleanStats, EndTxnMarker, FileRegion, Log, LogAppendInfo, LogConfig, LogError,
    VerificationGuard,
};
use tokio::sync::watch;
use uuid::Uuid;

use super::isr::{
    AlterPartitionOutcome, AlterPartitionProposal, AlterPartitionResult, LeaderAndIsrState,
    LeadershipChange, ReplicaState,
};
use super::truncation;

/// Why a partition operation was refused, as the Kafka error the client gets.
#[derive(Debug)]
pub enum PartitionError {
    /// A Kafka error code with an optional message.
    Kafka(ResponseError, Option<String>),
    Log(LogError),
}

impl From<LogError> for PartitionError {
    fn from(e: LogError) -> Self {
        PartitionError::Log(e)
    }
}

impl From<ResponseError> for PartitionError {
    fn from(e: ResponseError) -> Self {
        PartitionError::Kafka(e, None)
    }
}

/// Which records a read may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchIsolation {
    /// Consumers: committed records only (below the high watermark).
    HighWatermark,
    /// `read_committed` consumers: below the last stable offset, with the aborted
    /// transactions in the range.
    TxnCommitted,
    /// Followers: everything the leader has.
    LogEnd,
}

/// A read request against this replica.
#[derive(Debug, Clone, Copy)]
pub struct ReadParams {
    pub fetch_offset: i64,
    /// The leader epoch the fetcher believes in; -1 when it does not know.
    pub current_leader_epoch: i32,
    /// KIP-595: the epoch of the fetcher's last record, to detect divergence (followers).
    pub last_fetched_epoch: Option<i32>,
    pub max_bytes: usize,
    pub min_one_message: bool,
    pub isolation: FetchIsolation,
}

/// What a read found.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// The records, left in their segment file (`None`: nothing to return).
    pub records: Option<FileRegion>,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// The leader's log end offset when the read happened.
    pub log_end_offset: i64,
    /// `read_committed` reads: the aborted transactions among the records returned.
    pub aborted_transactions: Option<Vec<AbortedTxn>>,
    /// Set instead of records when the fetcher's log diverged: `(epoch, end offset)`.
    pub diverging_epoch: Option<(i32, i64)>,
}

/// A consistent view of the partition for Metadata, metrics and admin APIs.
#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub leader: Option<i32>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub is_leader: bool,
    pub under_min_isr: bool,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
}

/// A consistent snapshot of a partition's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
}

impl PartitionOffsets {
    fn of(log: &Log) -> PartitionOffsets {
        PartitionOffsets {
            log_start_offset: log.log_start_offset(),
            log_end_offset: log.log_end_offset(),
            high_watermark: log.high_watermark(),
            last_stable_offset: log.last_stable_offset(),
        }
    }
}

struct State {
    replica: ReplicaState,
    topic_id: Uuid,
    /// The log end offset when this broker became leader in the current epoch (Kafka's
    /// `leaderEpochStartOffsetOpt`); `None` while following.
    leader_epoch_start_offset: Option<i64>,
}

pub struct Partition {
    pub topic: String,
    pub partition: i32,
    state: RwLock<State>,
    log: Arc<Mutex<Log>>,
    /// The topic's `min.insync.replicas`, read on every acks=all append.
    min_insync_replicas: AtomicI32,
    /// `replica.lag.time.max.ms`.
    replica_lag_time_max_ms: i64,
    /// Bumped when the high watermark or the leadership changes.
    hw_changed: watch::Sender<u64>,
    /// Bumped when records are appended.
    leo_changed: watch::Sender<u64>,
}

fn bump(w: &watch::Sender<u64>) {
    w.send_modify(|n| *n = n.wrapping_add(1));
}

impl Partition {
    pub fn new(
        topic: &str,
        partition: i32,
        topic_id: Uuid,
        local_broker_id: i32,
        log: Arc<Mutex<Log>>,
        config: &LogConfig,
        replica_lag_time_max_ms: i64,
    ) -> Partition {
        Partition {
            topic: topic.to_string(),
            partition,
            state: RwLock::new(State {
                replica: ReplicaState::new(local_broker_id),
                topic_id,
                leader_epoch_start_offset: None,
            }),
            log,
            min_insync_replicas: AtomicI32::new(config.min_insync_replicas),
            replica_lag_time_max_ms,
            hw_changed: watch::channel(0).0,
            leo_changed: watch::channel(0).0,
        }
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        // A poisoned lock means a panic mid-operation; the log's own invariants
        // (all-or-nothing appends) still hold, so keep serving.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn topic_id(&self) -> Uuid {
        self.read_state().topic_id
    }

    pub fn subscribe_hw(&self) -> watch::Receiver<u64> {
        self.hw_changed.subscribe()
    }

    pub fn subscribe_leo(&self) -> watch::Receiver<u64> {
        self.leo_changed.subscribe()
    }

    pub fn min_insync_replicas(&self) -> i32 {
        self.min_insync_replicas.load(Ordering::Relaxed)
    }

    pub fn update_config(&self, config: LogConfig) {
        self.min_insync_replicas
            .store(config.min_insync_replicas, Ordering::Relaxed);
        self.log().update_config(config);
    }

    pub fn is_leader(&self) -> bool {
        self.read_state().replica.is_leader()
    }

    /// Whether `replica` is in the committed ISR.
    pub fn is_in_sync(&self, replica: i32) -> bool {
        self.read_state().replica.isr.isr().contains(&replica)
    }

    /// `(leader, leader epoch)`.
    pub fn leader_and_epoch(&self) -> (Option<i32>, i32) {
        let s = self.read_state();
        (s.replica.leader, s.replica.leader_epoch)
    }

    pub fn info(&self) -> PartitionInfo {
        let s = self.read_state();
        let log = self.log();
        PartitionInfo {
            leader: s.replica.leader,
            leader_epoch: s.replica.leader_epoch,
            partition_epoch: s.replica.partition_epoch,
            replicas: s.replica.replicas.clone(),
            isr: s.replica.isr.isr().to_vec(),
            is_leader: s.replica.is_leader(),
            under_min_isr: s.replica.is_under_min_isr(self.min_insync_replicas()),
            log_start_offset: log.log_start_offset(),
            log_end_offset: log.log_end_offset(),
            high_watermark: log.high_watermark(),
        }
    }

    pub fn offsets(&self) -> PartitionOffsets {
        PartitionOffsets::of(&self.log())
    }

    /// Whether a new leader's high watermark is still below where its epoch began: until
    /// the followers catch up, the offsets it would give a client are stale (Kafka
    /// answers ListOffsets with OFFSET_NOT_AVAILABLE then, KIP-207).
    pub fn high_watermark_lags_epoch_start(&self) -> bool {
        let start = self.read_state().leader_epoch_start_offset;
        start.is_some_and(|start| start > self.log().high_watermark())
    }

    /// The replica lists (replicas, ISR) and whether this broker leads, for metrics.
    pub fn replica_counts(&self) -> (usize, usize, bool) {
        let s = self.read_state();
        (
            s.replica.replicas.len(),
            s.replica.isr.isr().len(),
            s.replica.is_leader(),
        )
    }

    /// Recomputes the high watermark under the state lock (held by the caller) and sets
    /// it on the log if it moved. Returns whether it moved.
    fn maybe_increment_hw(
        &self,
        state: &State,
        log: &mut Log,
        now_ms: i64,
        is_alive: &dyn Fn(i32) -> bool,
    ) -> bool {
        let new = state.replica.new_high_watermark(
            log.log_end_offset(),
            log.high_watermark(),
            now_ms,
            self.replica_lag_time_max_ms,
            self.min_insync_replicas(),
            is_alive,
        );
        match new {
            Some(hw) => log.maybe_increment_high_watermark(hw).is_some(),
            None => false,
        }
    }

    /// Becomes (or stays) the leader as LeaderAndIsr says (Kafka's `makeLeader`).
    pub fn make_leader(
        &self,
        request: &LeaderAndIsrState,
        topic_id: Uuid,
        now_ms: i64,
        is_alive: &dyn Fn(i32) -> bool,
    ) -> Result<LeadershipChange, LogError> {
        let change = {
            let mut state = self.write_state();
            let mut log = self.log();
            let leo = log.log_end_offset();
            let change = state.replica.make_leader(request, leo, now_ms);
            if change.skipped {
                return Ok(change);
            }
            if !topic_id.is_nil() {
                state.topic_id = topic_id;
            }
            if change.new_leader_epoch {
                // Followers that have records from a later, failed epoch must find where
                // this epoch begins.
                log.maybe_assign_epoch_start_offset(request.leader_epoch, leo)?;
                state.leader_epoch_start_offset = Some(leo);
            }
            self.maybe_increment_hw(&state, &mut log, now_ms, is_alive);
            change
        };
        bump(&self.hw_changed);
        Ok(change)
    }

    /// Becomes a follower of the leader LeaderAndIsr names (Kafka's `makeFollower`).
    pub fn make_follower(&self, request: &LeaderAndIsrState, topic_id: Uuid) -> LeadershipChange {
        let change = {
            let mut state = self.write_state();
            let change = state.replica.make_follower(request);
            if !change.skipped {
                state.leader_epoch_start_offset = None;
                if !topic_id.is_nil() {
                    state.topic_id = topic_id;
                }
            }
            change
        };
        bump(&self.hw_changed);
        change
    }

    /// KIP-320's check of the leader epoch a fetcher sent (-1: it does not know):
    /// newer than ours is UNKNOWN_LEADER_EPOCH (our metadata lags), older is
    /// FENCED_LEADER_EPOCH (the fetcher's does).
    fn check_leader_epoch(
        replica: &ReplicaState,
        current_leader_epoch: i32,
    ) -> Result<(), ResponseError> {
        if current_leader_epoch > replica.leader_epoch {
            Err(ResponseError::UnknownLeaderEpoch)
        } else if current_leader_epoch >= 0 && current_leader_epoch < replica.leader_epoch {
            Err(ResponseError::FencedLeaderEpoch)
        } else {
            Ok(())
        }
    }

    /// For client requests served only by the leader (Produce, ListOffsets, Fetch): the
    /// partition must be led here and the client's epoch must match.
    pub fn check_leader(&self, current_leader_epoch: i32) -> Result<(), ResponseError> {
        let s = self.read_state();
        if !s.replica.is_leader() {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        Self::check_leader_epoch(&s.replica, current_leader_epoch)
    }

    /// Appends a producer's records (Kafka's `appendRecordsToLeader`). With acks=all the
    /// ISR must hold `min.insync.replicas` replicas before anything is written. Returns
    /// the append and the log start offset.
    /// `from_coordinator`: written by a coordinator of this broker, not by a producer (see
    /// `Log::append_as_coordinator`).
    /// `guard`: the transaction verification the producer's request obtained, if any
    /// (see [`Partition::maybe_start_transaction_verification`]).
    pub fn append_records_to_leader(
        &self,
        records: &[u8],
        required_acks: i16,
        from_coordinator: bool,
        guard: Option<VerificationGuard>,
        now_ms: i64,
        is_alive: &dyn Fn(i32) -> bool,
    ) -> Result<(LogAppendInfo, i64), PartitionError> {
        self.append_as_leader(required_acks, now_ms, is_alive, |log, epoch| {
            if from_coordinator {
                log.append_as_coordinator(records, epoch, now_ms, guard)
            } else {
                log.append_as_leader_verified(records, epoch, now_ms, guard)
            }
        })
    }

    /// Starts the verification of a producer's transactional write on this leader
    /// (KIP-890 part 1): `None` when none is needed, else the guard to append with once
    /// the transaction coordinator confirmed the partition is in the transaction.
    pub fn maybe_start_transaction_verification(
        &self,
        producer_id: i64,
        sequence: i32,
        producer_epoch: i16,
        now_ms: i64,
    ) -> Result<Option<VerificationGuard>, PartitionError> {
        let state = self.read_state();
        if !state.replica.is_leader() {
            return Err(ResponseError::NotLeaderOrFollower.into());
        }
        Ok(self.log().maybe_start_transaction_verification(
            producer_id,
            sequence,
            producer_epoch,
            now_ms,
        ))
    }

    /// Appends an end-transaction marker as the leader (what WriteTxnMarkers asks for;
    /// its handler waits for the ISR). Returns the marker's offset.
    pub fn append_marker_to_leader(
        &self,
        marker: &EndTxnMarker,
        now_ms: i64,
        is_alive: &dyn Fn(i32) -> bool,
    ) -> Result<i64, PartitionError> {
        let (info, _) = self.append_as_leader(1, now_ms, is_alive, |log, epoch| {
            log.append_marker_as_leader(marker, epoch, now_ms)
        })?;
        Ok(info.last_offset)
    }

    /// An append as the leader: refused unless leading (and, for acks=all, unless the ISR
    /// holds `min.insync.replicas`); then the high watermark moves if it can and waiting
    /// fetches are woken. Returns the append and the log start offset.
    fn append_as_leader(
        &self,
        required_acks: i16,
        now_ms: i64,
        is_alive: &dyn Fn(i32) -> bool,
        append: impl FnOnce(&mut Log, i32) -> Result<LogAppendInfo, LogError>,
    ) -> Result<(LogAppendInfo, i64), PartitionError> {
        let (info, log_start, hw_moved) = {
            let state = self.read_state();
            if !state.replica.is_leader() {
                return Err(ResponseError::NotLeaderOrFollower.into());
            }
            let min_isr = state.replica.effective_min_isr(self.min_insync_replicas());
            let isr = state.replica.isr.isr().len();
            if required_acks == -1 && isr < min_isr {
                return Err(PartitionError::Kafka(
                    ResponseError::NotEnoughReplicas,
                    Some(format!(
                        "The size of the current ISR {isr} is insufficient to satisfy the min.isr requirement of {min_isr} for partition {}-{}",
                        self.topic, self.partition
                    )),
                ));
            }
            let mut log = self.log();
            let info = append(&mut log, state.replica.leader_epoch)?;
            let hw_moved =
                !info.duplicate && self.maybe_increment_hw(&state, &mut log, now_ms, is_alive);
            (info, log.log_start_offset(), hw_moved)
        };
        if !info.duplicate {
            bump(&self.leo_changed);
        }
        if hw_moved {
            bump(&self.hw_changed);
        }
        Ok((info, log_start))
    }

    /// The producers this replica has state for (DescribeProducers): id, epoch, last
    /// sequence, last timestamp, coordinator epoch and the first offset of an open
    /// transaction (-1 when none).
    pub fn active_producers(&self) -> Vec<(i64, i16, i32, i64, i32, i64)> {
        let log = self.log();
        let mut producers: Vec<_> = log
            .producer_state()
            .active_producers()
            .map(|e| {
                (
                    e.producer_id,
                    e.producer_epoch,
                    e.last_seq(),
                    e.last_timestamp,
                    e.coordinator_epoch,
                    e.current_txn_first_offset.unwrap_or(-1),
                )
            })
            .collect();
        producers.sort_unstable();
        producers
    }

    /// Reads records for a consumer or a follower (Kafka's `fetchRecords` minus the
    /// follower bookkeeping, which [`Partition::update_follower_fetch_state`] does).
    pub fn read_records(&self, params: ReadParams) -> Result<ReadResult, PartitionError> {
        let state = self.read_state();
        if !state.replica.is_leader() {
            return Err(ResponseError::NotLeaderOrFollower.into());
        }
        Self::check_leader_epoch(&state.replica, params.current_leader_epoch)?;
        let log = self.log();
        let offsets = PartitionOffsets::of(&log);
        if let Some(last_epoch) = params.last_fetched_epoch
            && last_epoch >= 0
        {
            let end = log.end_offset_for_epoch(last_epoch);
            if let Some(diverging) =
                truncation::diverging_epoch(params.fetch_offset, last_epoch, end)
            {
                return Ok(ReadResult {
                    records: None,
                    high_watermark: offsets.high_watermark,
                    last_stable_offset: offsets.last_stable_offset,
                    log_start_offset: offsets.log_start_offset,
                    log_end_offset: offsets.log_end_offset,
                    diverging_epoch: Some(diverging),
                    aborted_transactions: None,
                });
            }
        }
        let max_offset = match params.isolation {
            FetchIsolation::HighWatermark => offsets.high_watermark,
            FetchIsolation::TxnCommitted => offsets.last_stable_offset,
            FetchIsolation::LogEnd => offsets.log_end_offset,
        };
        let records = log.read_region(
            params.fetch_offset,
            params.max_bytes,
            params.min_one_message,
            max_offset,
        )?;
        let aborted_transactions =
            (params.isolation == FetchIsolation::TxnCommitted).then(|| match &records {
                Some(_) => log.collect_aborted_txns(params.fetch_offset, max_offset),
                None => Vec::new(),
            });
        Ok(ReadResult {
            records,
            high_watermark: offsets.high_watermark,
            last_stable_offset: offsets.last_stable_offset,
            log_start_offset: offsets.log_start_offset,
            log_end_offset: offsets.log_end_offset,
            diverging_epoch: None,
            aborted_transactions,
        })
    }

    /// Records a follower's fetch at `fetch_offset` and what follows from it (Kafka's
    /// `updateFollowerFetchState`): an ISR expansion to propose, and the high watermark
    /// moving. `Err` when the fetching broker is not a replica.
    #[allow(clippy::too_many_arguments)]
    pub fn update_follower_fetch_state(
        &self,
        replica_id: i32,
        fetch_offset: i64,
        follower_log_start_offset: i64,
        fetch_time_ms: i64,
        leader_log_end_offset: i64,
        broker_epoch: Option<i64>,
        is_alive: &dyn Fn(i32) -> bool,
    ) -> Result<Option<AlterPartitionProposal>, ResponseError> {
        let (proposal, hw_moved) = {
            let mut state = self.write_state();
            if !state.replica.is_leader() {
                return Err(ResponseError::NotLeaderOrFollower);
            }
            if !state.replica.update_follower_fetch_state(
                replica_id,
                fetch_offset,
                follower_log_start_offset,
                fetch_time_ms,
                leader_log_end_offset,
                broker_epoch,
            ) {
                return Err(ResponseError::NotLeaderOrFollower);
            }
            let mut log = self.log();
            let hw = log.high_watermark();
            let proposal = state.replica.maybe_expand_isr(replica_id, hw, is_alive);
            let hw_moved = self.maybe_increment_hw(&state, &mut log, fetch_time_ms, is_alive);
            (proposal, hw_moved)
        };
        if hw_moved {
            bump(&self.hw_changed);
        }
        Ok(proposal)
    }

    /// Proposes dropping followers that fell behind (Kafka's `maybeShrinkIsr`).
    pub fn maybe_shrink_isr(&self, now_ms: i64) -> Option<AlterPartitionProposal> {
        let mut state = self.write_state();
        if !state.replica.is_leader() || state.replica.isr.is_inflight() {
            return None;
        }
        let leo = self.log().log_end_offset();
        state
            .replica
            .maybe_shrink_isr(leo, now_ms, self.replica_lag_time_max_ms)
    }

    /// The in-flight AlterPartition proposal, if any.
    pub fn pending_proposal(&self) -> Option<AlterPartitionProposal> {
        self.read_state().replica.proposal()
    }

    /// Applies the controller's answer to an AlterPartition.
    pub fn on_alter_partition_result(
        &self,
        proposal: &AlterPartitionProposal,
        result: &AlterPartitionResult,
        now_ms: i64,
        is_alive: &dyn Fn(i32) -> bool,
    ) -> AlterPartitionOutcome {
        let (outcome, hw_moved) = {
            let mut state = self.write_state();
            let outcome = state.replica.on_alter_partition_result(proposal, result);
            let hw_moved = outcome.isr_changed && {
                let mut log = self.log();
                self.maybe_increment_hw(&state, &mut log, now_ms, is_alive)
            };
            (outcome, hw_moved)
        };
        if outcome.isr_changed || hw_moved {
            bump(&self.hw_changed);
        }
        outcome
    }

    /// acks=all: whether `required_offset` is committed, and the error to return with it.
    pub fn check_enough_replicas_reach_offset(
        &self,
        required_offset: i64,
    ) -> (bool, Option<ResponseError>) {
        let state = self.read_state();
        let hw = self.log().high_watermark();
        state.replica.check_enough_replicas_reach_offset(
            required_offset,
            hw,
            self.min_insync_replicas(),
        )
    }

    /// OffsetForLeaderEpoch: where `leader_epoch` ends on this replica.
    pub fn last_offset_for_leader_epoch(
        &self,
        current_leader_epoch: i32,
        leader_epoch: i32,
        fetch_only_from_leader: bool,
    ) -> Result<(i32, i64), ResponseError> {
        let state = self.read_state();
        if fetch_only_from_leader && !state.replica.is_leader() {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        Self::check_leader_epoch(&state.replica, current_leader_epoch)?;
        Ok(self.log().end_offset_for_epoch(leader_epoch))
    }

    // --- follower side --------------------------------------------------------------

    /// The fetcher's view: `(log end offset, last fetched epoch, log start offset)`.
    pub fn follower_fetch_position(&self) -> (i64, Option<i32>, i64) {
        let log = self.log();
        (
            log.log_end_offset(),
            log.latest_epoch(),
            log.log_start_offset(),
        )
    }

    /// Appends records fetched from the leader. `expected_offset` is the fetch offset the
    /// records answer: if the log moved since (a truncation), they are dropped.
    pub fn append_records_as_follower(
        &self,
        records: &[u8],
        expected_offset: i64,
        now_ms: i64,
    ) -> Result<Option<LogAppendInfo>, LogError> {
        let state = self.read_state();
        if state.replica.is_leader() {
            return Ok(None);
        }
        let mut log = self.log();
        if log.log_end_offset() != expected_offset {
            return Ok(None);
        }
        let info = log.append_as_follower(records, now_ms)?;
        drop(log);
        drop(state);
        bump(&self.leo_changed);
        Ok(Some(info))
    }

    /// The leader's high watermark and log start offset, as of a fetch response.
    pub fn follower_update_offsets(
        &self,
        leader_high_watermark: i64,
        leader_log_start_offset: i64,
    ) -> Result<(), LogError> {
        let mut log = self.log();
        let hw = leader_high_watermark.min(log.log_end_offset());
        let moved = hw != log.high_watermark();
        log.update_high_watermark(hw);
        // DeleteRecords on the leader reaches followers through the log start offset.
        if leader_log_start_offset > log.log_start_offset()
            && leader_log_start_offset <= log.high_watermark()
        {
            log.delete_records_before(leader_log_start_offset)?;
        }
        drop(log);
        if moved {
            bump(&self.hw_changed);
        }
        Ok(())
    }

    /// Where the follower must truncate after the leader reported `(epoch, end offset)`.
    pub fn truncation_point(
        &self,
        leader_epoch_end: (i32, i64),
        fetch_offset: i64,
    ) -> truncation::TruncationPoint {
        let log = self.log();
        let (epoch, end) = log.end_offset_for_epoch(leader_epoch_end.0);
        let follower = (end >= 0).then_some((epoch, end));
        truncation::truncation_point(
            leader_epoch_end,
            follower,
            log.log_end_offset(),
            fetch_offset,
        )
    }

    pub fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        self.log().truncate_to(offset)?;
        bump(&self.hw_changed);
        Ok(())
    }

    pub fn truncate_fully_and_start_at(&self, offset: i64, now_ms: i64) -> Result<(), LogError> {
        self.log().truncate_fully_and_start_at(offset, now_ms)?;
        bump(&self.hw_changed);
        Ok(())
    }

    // --- log access for the other APIs ----------------------------------------------

    pub fn fetch_offset_by_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        self.log().fetch_offset_by_timestamp(timestamp)
    }

    pub fn max_timestamp_and_offset(&self) -> Option<(i64, i64)> {
        self.log().max_timestamp_and_offset()
    }

    /// DeleteRecords on the leader: only committed records may be deleted.
    pub fn delete_records_on_leader(&self, offset: i64) -> Result<i64, PartitionError> {
        let state = self.read_state();
        if !state.replica.is_leader() {
            return Err(ResponseError::NotLeaderOrFollower.into());
        }
        let mut log = self.log();
        let target = if offset == -1 {
            log.high_watermark()
        } else {
            offset
        };
        if target > log.high_watermark() {
            return Err(ResponseError::OffsetOutOfRange.into());
        }
        Ok(log.delete_records_before(target)?)
    }

    /// Compacts the log when its policy compacts and it is due (or `force`).
    pub fn clean(&self, now_ms: i64, force: bool) -> Result<CleanStats, LogError> {
        self.log().clean(now_ms, force)
    }

    pub fn size_and_segments(&self) -> (u64, usize) {
        let log = self.log();
        (log.size_in_bytes(), log.number_of_segments())
    }

    /// Reads committed records from `from` on, as stored (the group coordinator loads
    /// `__consumer_offsets` this way); `max_offset` bounds the read.
    pub fn read_committed(
        &self,
        from: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<(Bytes, PartitionOffsets), LogError> {
        let log = self.log();
        let offsets = PartitionOffsets::of(&log);
        let data = log.read(from, max_bytes, true, max_offset)?;
        Ok((data.records, offsets))
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    use super::*;

    fn batch(n: i64) -> bytes::BytesMut {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: i as i32 - 1,
                timestamp: 1,
                key: None,
                value: Some(bytes::Bytes::from_static(b"v")),
                headers: Default::default(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf
    }

    fn state(leader: i32, leader_epoch: i32) -> LeaderAndIsrState {
        LeaderAndIsrState {
            controller_epoch: 1,
            leader,
            leader_epoch,
            isr: vec![1, 2],
            partition_epoch: leader_epoch,
            replicas: vec![1, 2],
            adding_replicas: vec![],
            removing_replicas: vec![],
            leader_recovery_state: 0,
        }
    }

    #[test]
    fn a_new_leader_below_its_epoch_start_says_its_offsets_are_not_available() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig::default();
        let log = Log::open(dir.path().join("t-0"), config.clone(), true, 0, 0, 0).unwrap();
        let p = Partition::new(
            "t",
            0,
            Uuid::nil(),
            1,
            Arc::new(Mutex::new(log)),
            &config,
            30_000,
        );
        // A follower of broker 2 with 10 records, of which the leader said 4 are committed.
        p.make_follower(&state(2, 1), Uuid::nil());
        p.append_records_as_follower(&batch(10), 0, 0)
            .unwrap()
            .unwrap();
        p.follower_update_offsets(4, 0).unwrap();
        assert!(!p.high_watermark_lags_epoch_start());
        // Broker 2 dies: this broker leads epoch 2 from offset 10, but its high watermark
        // stays at 4 until broker 2 is back and has fetched.
        let alive = |id: i32| id == 1;
        p.make_leader(&state(1, 2), Uuid::nil(), 0, &alive).unwrap();
        assert_eq!(p.offsets().high_watermark, 4);
        assert!(p.high_watermark_lags_epoch_start());
        // Following again clears it.
        p.make_follower(&state(2, 3), Uuid::nil());
        assert!(!p.high_watermark_lags_epoch_start());
    }
}
