//! The replication rules of one partition replica, as a pure state machine: leadership
//! changes from LeaderAndIsr, followers' fetch progress, ISR expansion and shrinking,
//! the high watermark, and acks=all completion. No IO and no clock: the caller passes
//! log offsets and the time, and carries out what the functions return (an AlterPartition
//! proposal to send, a high watermark to set). [`super::partition::Partition`] wraps it
//! with the log; the replication simulation drives it directly.
//!
//! The rules are Kafka's (`Partition.scala`, `Replica.scala`, KIP-497 for AlterPartition):
//! - A follower is *caught up* when its log end offset equals the leader's, or when it
//!   was caught up within `replica.lag.time.max.ms` (its fetch offset reached the leader's
//!   log end offset as of its previous fetch).
//! - A follower joins the ISR when its log end offset reaches the high watermark and the
//!   start of the current leader epoch; it leaves when it stops being caught up.
//! - ISR changes are proposed to the controller one at a time. While an expansion is in
//!   flight the high watermark already waits for the new member (the "maximal ISR"); a
//!   shrink only counts once the controller committed it.
//! - The high watermark is the smallest log end offset over the maximal ISR and over
//!   followers that are caught up and could join; it never moves back, and never moves
//!   while the ISR is smaller than `min.insync.replicas` (Kafka 3.9).

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

/// A follower's progress, as the leader sees it from its fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerState {
    /// The follower's log end offset (its fetch offset); -1 until it fetched.
    pub log_end_offset: i64,
    pub log_start_offset: i64,
    /// The leader's log end offset at the follower's previous fetch.
    pub last_fetch_leader_log_end_offset: i64,
    pub last_fetch_time_ms: i64,
    /// When the follower last read up to the leader's log end offset.
    pub last_caught_up_time_ms: i64,
    /// The broker epoch the follower fetched with, when it sent one.
    pub broker_epoch: Option<i64>,
}

impl FollowerState {
    fn empty() -> FollowerState {
        FollowerState {
            log_end_offset: -1,
            log_start_offset: -1,
            last_fetch_leader_log_end_offset: 0,
            last_fetch_time_ms: 0,
            last_caught_up_time_ms: 0,
            broker_epoch: None,
        }
    }

    pub fn is_caught_up(&self, leader_log_end_offset: i64, now_ms: i64, max_lag_ms: i64) -> bool {
        leader_log_end_offset == self.log_end_offset
            || now_ms - self.last_caught_up_time_ms <= max_lag_ms
    }

    /// Kafka's `Replica.updateFetchStateOrThrow` (minus the KRaft broker-epoch fence).
    fn update_fetch_state(
        &mut self,
        fetch_offset: i64,
        log_start_offset: i64,
        fetch_time_ms: i64,
        leader_log_end_offset: i64,
        broker_epoch: Option<i64>,
    ) {
        if fetch_offset >= leader_log_end_offset {
            self.last_caught_up_time_ms = self.last_caught_up_time_ms.max(fetch_time_ms);
        } else if fetch_offset >= self.last_fetch_leader_log_end_offset {
            self.last_caught_up_time_ms = self.last_caught_up_time_ms.max(self.last_fetch_time_ms);
        }
        self.log_start_offset = log_start_offset;
        self.log_end_offset = fetch_offset;
        self.last_fetch_leader_log_end_offset =
            leader_log_end_offset.max(self.last_fetch_leader_log_end_offset);
        self.last_fetch_time_ms = fetch_time_ms;
        self.broker_epoch = broker_epoch;
    }

    /// Kafka's `Replica.resetReplicaState` when this broker becomes (or stays) leader in a
    /// new epoch.
    fn reset(&mut self, now_ms: i64, leader_end_offset: i64, is_new_leader: bool, in_isr: bool) {
        let last_caught_up = if in_isr { now_ms } else { 0 };
        if is_new_leader {
            *self = FollowerState {
                last_caught_up_time_ms: last_caught_up,
                last_fetch_leader_log_end_offset: -1,
                ..FollowerState::empty()
            };
        } else {
            self.last_fetch_leader_log_end_offset = leader_end_offset;
            self.last_fetch_time_ms = if in_isr { now_ms } else { 0 };
            self.last_caught_up_time_ms = last_caught_up;
        }
    }
}

/// The ISR as the leader knows it: committed by the controller, or with one change in
/// flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsrState {
    Committed { isr: Vec<i32> },
    PendingExpand { isr: Vec<i32>, new_replica: i32 },
    PendingShrink { isr: Vec<i32>, removed: Vec<i32> },
}

impl IsrState {
    /// The last ISR the controller committed.
    pub fn isr(&self) -> &[i32] {
        match self {
            IsrState::Committed { isr }
            | IsrState::PendingExpand { isr, .. }
            | IsrState::PendingShrink { isr, .. } => isr,
        }
    }

    /// The ISR the high watermark waits for: a pending expansion counts already.
    pub fn maximal_isr(&self) -> Vec<i32> {
        match self {
            IsrState::PendingExpand { isr, new_replica } => {
                let mut v = isr.clone();
                v.push(*new_replica);
                v
            }
            other => other.isr().to_vec(),
        }
    }

    pub fn is_inflight(&self) -> bool {
        !matches!(self, IsrState::Committed { .. })
    }

    /// The ISR proposed to the controller while in flight.
    fn proposed(&self) -> Option<Vec<i32>> {
        match self {
            IsrState::Committed { .. } => None,
            IsrState::PendingExpand { .. } => Some(self.maximal_isr()),
            IsrState::PendingShrink { isr, removed } => Some(
                isr.iter()
                    .copied()
                    .filter(|r| !removed.contains(r))
                    .collect(),
            ),
        }
    }
}

/// What LeaderAndIsr says about one partition (its `LeaderAndIsrPartitionState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderAndIsrState {
    pub controller_epoch: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub leader_recovery_state: i8,
}

/// An ISR change to send to the controller in AlterPartition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionProposal {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<i32>,
    pub leader_recovery_state: i8,
}

/// The controller's answer to an AlterPartition for this partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterPartitionResult {
    /// The state the controller committed.
    Committed {
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<i32>,
        leader_recovery_state: i8,
    },
    Failed(ResponseError),
}

/// What applying an AlterPartition result asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlterPartitionOutcome {
    /// Send the same proposal again (a transient failure).
    pub retry: bool,
    /// The ISR changed: the high watermark may move.
    pub isr_changed: bool,
}

/// One replica's leadership state.
#[derive(Debug, Clone)]
pub struct ReplicaState {
    pub local_broker_id: i32,
    /// `None` before the first LeaderAndIsr and when the partition has no leader.
    pub leader: Option<i32>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// The epoch of the controller that made the last leadership decision; sent back
    /// in AlterPartition so the controller can fence stale leaders.
    pub controller_epoch: i32,
    pub replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub isr: IsrState,
    pub leader_recovery_state: i8,
    /// Leader only: the followers' progress.
    pub followers: BTreeMap<i32, FollowerState>,
    /// Leader only: the log end offset when this epoch began; a follower must reach it
    /// before joining the ISR.
    pub leader_epoch_start_offset: Option<i64>,
}

/// How `make_leader` / `make_follower` changed the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeadershipChange {
    /// The request was older than the state (a lower partition epoch) and was ignored.
    pub skipped: bool,
    /// Leader: the broker was not the leader before.
    pub became_leader: bool,
    /// The leader epoch went up: the epoch start offset must be recorded (leader) or the
    /// fetcher restarted (follower).
    pub new_leader_epoch: bool,
}

impl ReplicaState {
    pub fn new(local_broker_id: i32) -> ReplicaState {
        ReplicaState {
            local_broker_id,
            leader: None,
            leader_epoch: -1,
            partition_epoch: -1,
            controller_epoch: -1,
            replicas: Vec::new(),
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
            isr: IsrState::Committed { isr: Vec::new() },
            leader_recovery_state: 0,
            followers: BTreeMap::new(),
            leader_epoch_start_offset: None,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader == Some(self.local_broker_id)
    }

    /// `min.insync.replicas`, capped at the replication factor (Kafka's
    /// `effectiveMinIsr`: a larger setting would make the partition unwritable).
    pub fn effective_min_isr(&self, min_insync_replicas: i32) -> usize {
        (min_insync_replicas.max(1) as usize).min(self.replicas.len().max(1))
    }

    pub fn is_under_min_isr(&self, min_insync_replicas: i32) -> bool {
        self.is_leader() && self.isr.isr().len() < self.effective_min_isr(min_insync_replicas)
    }

    fn update_assignment(&mut self, state: &LeaderAndIsrState, is_leader: bool) {
        if is_leader {
            let followers: Vec<i32> = state
                .replicas
                .iter()
                .copied()
                .filter(|r| *r != self.local_broker_id)
                .collect();
            self.followers.retain(|id, _| followers.contains(id));
            for f in followers {
                self.followers.entry(f).or_insert_with(FollowerState::empty);
            }
            self.isr = IsrState::Committed {
                isr: state.isr.clone(),
            };
        } else {
            self.followers.clear();
            self.isr = IsrState::Committed { isr: Vec::new() };
        }
        self.replicas = state.replicas.clone();
        self.adding_replicas = state.adding_replicas.clone();
        self.removing_replicas = state.removing_replicas.clone();
    }

    /// Kafka's `Partition.makeLeader`. `leader_log_end_offset` is the log's end offset,
    /// which becomes the new epoch's start offset.
    pub fn make_leader(
        &mut self,
        state: &LeaderAndIsrState,
        leader_log_end_offset: i64,
        now_ms: i64,
    ) -> LeadershipChange {
        if state.partition_epoch < self.partition_epoch {
            return LeadershipChange {
                skipped: true,
                ..LeadershipChange::default()
            };
        }
        self.controller_epoch = state.controller_epoch;
        let became_leader = !self.is_leader();
        let new_leader_epoch = state.leader_epoch > self.leader_epoch;
        self.update_assignment(state, true);
        // A leader after an unclean election has recovered once it leads.
        self.leader_recovery_state = 0;
        if new_leader_epoch {
            for (id, follower) in self.followers.iter_mut() {
                let in_isr = state.isr.contains(id);
                follower.reset(now_ms, leader_log_end_offset, became_leader, in_isr);
            }
            self.leader_epoch = state.leader_epoch;
            self.leader_epoch_start_offset = Some(leader_log_end_offset);
        }
        self.partition_epoch = state.partition_epoch;
        self.leader = Some(self.local_broker_id);
        LeadershipChange {
            skipped: false,
            became_leader,
            new_leader_epoch,
        }
    }

    /// Kafka's `Partition.makeFollower`.
    pub fn make_follower(&mut self, state: &LeaderAndIsrState) -> LeadershipChange {
        if state.partition_epoch < self.partition_epoch {
            return LeadershipChange {
                skipped: true,
                ..LeadershipChange::default()
            };
        }
        self.controller_epoch = state.controller_epoch;
        let new_leader_epoch = state.leader_epoch > self.leader_epoch;
        self.leader = (state.leader >= 0).then_some(state.leader);
        self.leader_epoch = state.leader_epoch;
        self.leader_epoch_start_offset = None;
        self.partition_epoch = state.partition_epoch;
        self.leader_recovery_state = state.leader_recovery_state;
        self.update_assignment(state, false);
        LeadershipChange {
            skipped: false,
            became_leader: false,
            new_leader_epoch,
        }
    }

    /// Records a follower's fetch. Returns `false` when the fetching broker is not a
    /// replica of this partition (Kafka answers NOT_LEADER_OR_FOLLOWER).
    pub fn update_follower_fetch_state(
        &mut self,
        replica_id: i32,
        fetch_offset: i64,
        log_start_offset: i64,
        fetch_time_ms: i64,
        leader_log_end_offset: i64,
        broker_epoch: Option<i64>,
    ) -> bool {
        match self.followers.get_mut(&replica_id) {
            Some(f) => {
                f.update_fetch_state(
                    fetch_offset,
                    log_start_offset,
                    fetch_time_ms,
                    leader_log_end_offset,
                    broker_epoch,
                );
                true
            }
            None => false,
        }
    }

    /// Kafka's `maybeExpandIsr`: proposes adding `replica_id` once its log end offset
    /// reached the high watermark and the current epoch's start. Moves the ISR to
    /// `PendingExpand` when it does.
    pub fn maybe_expand_isr(
        &mut self,
        replica_id: i32,
        high_watermark: i64,
        is_alive: impl Fn(i32) -> bool,
    ) -> Option<AlterPartitionProposal> {
        if !self.is_leader() || self.isr.is_inflight() || self.isr.isr().contains(&replica_id) {
            return None;
        }
        if !is_alive(replica_id) {
            return None;
        }
        let follower = self.followers.get(&replica_id)?;
        let in_sync = follower.log_end_offset >= high_watermark
            && self
                .leader_epoch_start_offset
                .is_some_and(|start| follower.log_end_offset >= start);
        if !in_sync {
            return None;
        }
        self.isr = IsrState::PendingExpand {
            isr: self.isr.isr().to_vec(),
            new_replica: replica_id,
        };
        self.proposal()
    }

    /// The ISR members (other than the leader) that are no longer caught up.
    pub fn out_of_sync_replicas(
        &self,
        leader_log_end_offset: i64,
        now_ms: i64,
        max_lag_ms: i64,
    ) -> Vec<i32> {
        if self.isr.is_inflight() || !self.is_leader() {
            return Vec::new();
        }
        self.isr
            .isr()
            .iter()
            .copied()
            .filter(|r| *r != self.local_broker_id)
            .filter(|r| {
                self.followers
                    .get(r)
                    .is_none_or(|f| !f.is_caught_up(leader_log_end_offset, now_ms, max_lag_ms))
            })
            .collect()
    }

    /// Kafka's `maybeShrinkIsr`: proposes removing followers that fell behind for longer
    /// than `replica.lag.time.max.ms`.
    pub fn maybe_shrink_isr(
        &mut self,
        leader_log_end_offset: i64,
        now_ms: i64,
        max_lag_ms: i64,
    ) -> Option<AlterPartitionProposal> {
        let removed = self.out_of_sync_replicas(leader_log_end_offset, now_ms, max_lag_ms);
        if removed.is_empty() {
            return None;
        }
        self.isr = IsrState::PendingShrink {
            isr: self.isr.isr().to_vec(),
            removed,
        };
        self.proposal()
    }

    /// The in-flight ISR change as a request, if any.
    pub fn proposal(&self) -> Option<AlterPartitionProposal> {
        Some(AlterPartitionProposal {
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            new_isr: self.isr.proposed()?,
            leader_recovery_state: self.leader_recovery_state,
        })
    }

    /// Applies the controller's answer to `proposal` (Kafka's `handleAlterPartitionUpdate`
    /// and `handleAlterPartitionError`). An answer to a proposal that is no longer the one
    /// in flight (a LeaderAndIsr overtook it) is ignored.
    pub fn on_alter_partition_result(
        &mut self,
        proposal: &AlterPartitionProposal,
        result: &AlterPartitionResult,
    ) -> AlterPartitionOutcome {
        if self.proposal().as_ref() != Some(proposal) {
            return AlterPartitionOutcome::default();
        }
        match result {
            AlterPartitionResult::Committed {
                leader_epoch,
                partition_epoch,
                isr,
                leader_recovery_state,
            } => {
                if *leader_epoch != self.leader_epoch || *partition_epoch < self.partition_epoch {
                    return AlterPartitionOutcome::default();
                }
                self.isr = IsrState::Committed { isr: isr.clone() };
                self.partition_epoch = *partition_epoch;
                self.leader_recovery_state = *leader_recovery_state;
                AlterPartitionOutcome {
                    retry: false,
                    isr_changed: true,
                }
            }
            AlterPartitionResult::Failed(error) => match error {
                // The controller says the partition epoch is right and nothing was
                // applied: back to the committed ISR.
                ResponseError::OperationNotAttempted | ResponseError::IneligibleReplica => {
                    self.isr = IsrState::Committed {
                        isr: self.isr.isr().to_vec(),
                    };
                    AlterPartitionOutcome::default()
                }
                // Our state is stale: stay pending until LeaderAndIsr brings news.
                ResponseError::UnknownTopicOrPartition
                | ResponseError::UnknownTopicId
                | ResponseError::FencedLeaderEpoch
                | ResponseError::InvalidUpdateVersion
                | ResponseError::InvalidRequest
                | ResponseError::NewLeaderElected => AlterPartitionOutcome::default(),
                _ => AlterPartitionOutcome {
                    retry: true,
                    isr_changed: false,
                },
            },
        }
    }

    /// Kafka's `maybeIncrementLeaderHW`: the new high watermark if it moves up.
    #[allow(clippy::too_many_arguments)]
    pub fn new_high_watermark(
        &self,
        leader_log_end_offset: i64,
        current_high_watermark: i64,
        now_ms: i64,
        max_lag_ms: i64,
        min_insync_replicas: i32,
        is_alive: impl Fn(i32) -> bool,
    ) -> Option<i64> {
        if !self.is_leader() || self.is_under_min_isr(min_insync_replicas) {
            return None;
        }
        let maximal = self.isr.maximal_isr();
        let mut hw = leader_log_end_offset;
        for (id, f) in &self.followers {
            let waits = maximal.contains(id)
                || (f.is_caught_up(leader_log_end_offset, now_ms, max_lag_ms) && is_alive(*id));
            if waits && f.log_end_offset < hw {
                hw = f.log_end_offset;
            }
        }
        (hw > current_high_watermark).then_some(hw)
    }

    /// Kafka's `checkEnoughReplicasReachOffset` for acks=all: `(done, error)`.
    pub fn check_enough_replicas_reach_offset(
        &self,
        required_offset: i64,
        high_watermark: i64,
        min_insync_replicas: i32,
    ) -> (bool, Option<ResponseError>) {
        if !self.is_leader() {
            return (false, Some(ResponseError::NotLeaderOrFollower));
        }
        if high_watermark < required_offset {
            return (false, None);
        }
        if self.isr.maximal_isr().len() < self.effective_min_isr(min_insync_replicas) {
            (true, Some(ResponseError::NotEnoughReplicasAfterAppend))
        } else {
            (true, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: i64 = 30_000;
    /// Wall-clock times in tests: far from 0, where "never caught up" lives.
    const T: i64 = 1_000_000_000;

    fn leader_state(epoch: i32, partition_epoch: i32, isr: &[i32]) -> LeaderAndIsrState {
        LeaderAndIsrState {
            controller_epoch: 1,
            leader: 1,
            leader_epoch: epoch,
            isr: isr.to_vec(),
            partition_epoch,
            replicas: vec![1, 2, 3],
            adding_replicas: vec![],
            removing_replicas: vec![],
            leader_recovery_state: 0,
        }
    }

    fn leader(isr: &[i32], leo: i64, now: i64) -> ReplicaState {
        let mut s = ReplicaState::new(1);
        let change = s.make_leader(&leader_state(1, 0, isr), leo, now);
        assert!(change.became_leader && change.new_leader_epoch);
        s
    }

    fn alive(_: i32) -> bool {
        true
    }

    #[test]
    fn high_watermark_is_the_smallest_log_end_offset_in_the_isr() {
        let mut s = leader(&[1, 2, 3], 0, T);
        assert_eq!(
            s.new_high_watermark(10, 0, T, LAG, 1, alive),
            None,
            "followers unknown"
        );
        s.update_follower_fetch_state(2, 10, 0, T + 1, 10, None);
        assert_eq!(s.new_high_watermark(10, 0, T + 1, LAG, 1, alive), None);
        s.update_follower_fetch_state(3, 7, 0, T + 1, 10, None);
        assert_eq!(s.new_high_watermark(10, 0, T + 1, LAG, 1, alive), Some(7));
        assert_eq!(
            s.new_high_watermark(10, 7, T + 1, LAG, 1, alive),
            None,
            "never backwards"
        );
    }

    #[test]
    fn high_watermark_waits_while_under_min_isr() {
        let mut s = leader(&[1], 0, T);
        // Followers 2 and 3 never fetched: not caught up, not waited for.
        assert_eq!(s.new_high_watermark(5, 0, T, LAG, 1, alive), Some(5));
        assert_eq!(s.new_high_watermark(5, 0, T, LAG, 2, alive), None);
        // min.insync.replicas above the replication factor is capped at it.
        s.replicas = vec![1];
        assert_eq!(s.new_high_watermark(5, 0, T, LAG, 3, alive), Some(5));
    }

    #[test]
    fn caught_up_followers_hold_the_high_watermark_even_outside_the_isr() {
        let mut s = leader(&[1], 0, T);
        s.update_follower_fetch_state(2, 4, 0, T + 100, 10, None);
        // Replica 2 fetched up to 4 while the leader was at 10: not caught up yet.
        assert_eq!(
            s.new_high_watermark(10, 0, T + 100, LAG, 1, alive),
            Some(10)
        );
        s.update_follower_fetch_state(2, 10, 0, T + 200, 12, None);
        // Now it reached what the leader had at its previous fetch: caught up, so the
        // HW waits for it (so it can join the ISR).
        assert_eq!(s.new_high_watermark(12, 10, T + 200, LAG, 1, alive), None);
        assert_eq!(
            s.new_high_watermark(12, 10, T + 200, LAG, 1, |id| id != 2),
            Some(12),
            "dead brokers are not waited for"
        );
    }

    #[test]
    fn expansion_needs_the_high_watermark_and_the_epoch_start() {
        let mut s = leader(&[1], 20, 0);
        s.update_follower_fetch_state(2, 15, 0, 10, 20, None);
        assert_eq!(
            s.maybe_expand_isr(2, 10, alive),
            None,
            "below the epoch start (20)"
        );
        s.update_follower_fetch_state(2, 20, 0, 20, 20, None);
        assert_eq!(s.maybe_expand_isr(2, 25, alive), None, "below the HW");
        assert_eq!(s.maybe_expand_isr(2, 20, |_| false), None, "not alive");
        let proposal = s.maybe_expand_isr(2, 20, alive).unwrap();
        assert_eq!(proposal.new_isr, vec![1, 2]);
        assert_eq!(
            s.isr.isr(),
            [1],
            "committed ISR unchanged until the controller answers"
        );
        assert_eq!(s.isr.maximal_isr(), vec![1, 2]);
        assert_eq!(
            s.maybe_expand_isr(3, 0, alive),
            None,
            "one change in flight"
        );
        let outcome = s.on_alter_partition_result(
            &proposal,
            &AlterPartitionResult::Committed {
                leader_epoch: 1,
                partition_epoch: 1,
                isr: vec![1, 2],
                leader_recovery_state: 0,
            },
        );
        assert!(outcome.isr_changed);
        assert_eq!(s.isr, IsrState::Committed { isr: vec![1, 2] });
        assert_eq!(s.partition_epoch, 1);
    }

    #[test]
    fn shrink_removes_followers_that_stopped_catching_up() {
        let mut s = leader(&[1, 2, 3], 0, 1_000);
        s.update_follower_fetch_state(2, 50, 0, 1_000, 50, None);
        s.update_follower_fetch_state(3, 50, 0, 1_000, 50, None);
        // At 50 both are caught up; the leader moves on and only 2 keeps fetching.
        s.update_follower_fetch_state(2, 80, 0, 20_000, 80, None);
        assert_eq!(s.maybe_shrink_isr(90, 20_000, LAG), None);
        s.update_follower_fetch_state(2, 90, 0, 35_000, 90, None);
        let proposal = s.maybe_shrink_isr(95, 35_000, LAG).unwrap();
        assert_eq!(proposal.new_isr, vec![1, 2]);
        // A shrink in flight does not lower what the HW waits for.
        assert_eq!(s.isr.maximal_isr(), vec![1, 2, 3]);
        // The controller refuses without applying: back to the committed ISR.
        let outcome = s.on_alter_partition_result(
            &proposal,
            &AlterPartitionResult::Failed(ResponseError::OperationNotAttempted),
        );
        assert!(!outcome.retry);
        assert_eq!(s.isr, IsrState::Committed { isr: vec![1, 2, 3] });
        // A transient error is retried; a stale one waits for LeaderAndIsr.
        let proposal = s.maybe_shrink_isr(95, 35_000, LAG).unwrap();
        let retry = s.on_alter_partition_result(
            &proposal,
            &AlterPartitionResult::Failed(ResponseError::NotController),
        );
        assert!(retry.retry);
        let stale = s.on_alter_partition_result(
            &proposal,
            &AlterPartitionResult::Failed(ResponseError::FencedLeaderEpoch),
        );
        assert!(!stale.retry && !stale.isr_changed);
        assert!(s.isr.is_inflight());
    }

    #[test]
    fn leader_and_isr_with_an_older_partition_epoch_is_ignored() {
        let mut s = ReplicaState::new(1);
        s.make_leader(&leader_state(1, 3, &[1, 2]), 0, T);
        let change = s.make_leader(&leader_state(1, 2, &[1, 2]), 0, T);
        assert!(change.skipped);
        // The same epoch with a newer partition epoch updates the ISR without resetting.
        let change = s.make_leader(&leader_state(1, 4, &[1, 3]), 0, 0);
        assert!(!change.skipped && !change.new_leader_epoch && !change.became_leader);
        assert_eq!(s.isr.isr(), [1, 3]);
    }

    #[test]
    fn becoming_follower_clears_leader_state() {
        let mut s = leader(&[1, 2], 0, 0);
        let mut state = leader_state(2, 1, &[2]);
        state.leader = 2;
        let change = s.make_follower(&state);
        assert!(change.new_leader_epoch);
        assert!(!s.is_leader());
        assert!(s.followers.is_empty());
        assert_eq!(
            s.check_enough_replicas_reach_offset(0, 10, 1),
            (false, Some(ResponseError::NotLeaderOrFollower))
        );
        // The same epoch again: no fetcher restart needed.
        assert!(!s.make_follower(&state).new_leader_epoch);
    }

    #[test]
    fn acks_all_completion() {
        // Replicas [1, 2, 3], ISR [1, 2].
        let s = leader(&[1, 2], 0, 0);
        assert_eq!(
            s.check_enough_replicas_reach_offset(10, 9, 2),
            (false, None)
        );
        assert_eq!(
            s.check_enough_replicas_reach_offset(10, 10, 2),
            (true, None)
        );
        // The ISR shrank below min.insync.replicas after the append.
        assert_eq!(
            s.check_enough_replicas_reach_offset(10, 10, 3),
            (true, Some(ResponseError::NotEnoughReplicasAfterAppend))
        );
    }
}
