//! The [`GroupCoordinator`]: every group of the loaded `__consumer_offsets` partitions,
//! what the broker asks of it, and what it must do in return ([`Output`]).
//!
//! The API handlers live in submodules by Kafka API: `membership` (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup), `offsets` (OffsetCommit, OffsetFetch,
//! OffsetDelete, retention), `txn_offsets` (TxnOffsetCommit and the end of
//! transactions) and `admin` (FindCoordinator, DescribeGroups, ListGroups,
//! DeleteGroups).

mod admin;
mod membership;
mod offsets;
mod txn_offsets;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    DeleteGroupsResponse, DescribeGroupsResponse, FindCoordinatorResponse, HeartbeatResponse,
    JoinGroupResponse, LeaveGroupResponse, ListGroupsResponse, OffsetCommitResponse,
    OffsetDeleteResponse, OffsetFetchResponse, SyncGroupResponse, TxnOffsetCommitResponse,
};

use crate::config::GroupCoordinatorConfig;
use crate::group::{
    ClassicGroup, CommittedOffset, GroupState, Member, NEW_MEMBER_JOIN_TIMEOUT_MS,
    PendingTxnOffset, TxnRecord,
};
use crate::offsets_topic::{
    self, LoadedRecord, OffsetAndMetadata, OffsetsTopicKey, OffsetsTopicRecord, RecordError,
};

/// A response to one of the group APIs, ready to be encoded at the request's version.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupResponse {
    FindCoordinator(FindCoordinatorResponse),
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    DescribeGroups(DescribeGroupsResponse),
    ListGroups(ListGroupsResponse),
    DeleteGroups(DeleteGroupsResponse),
    OffsetDelete(OffsetDeleteResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
}

/// What the broker must do after a call into the coordinator, in list order.
///
/// **Appends before acknowledgements.** An `Append` must be written to the given
/// partition of `__consumer_offsets` and then reported back with
/// [`GroupCoordinator::on_append_completed`] (success or failure). Answers that depend on
/// the write being durable — OffsetCommit, the leader's SyncGroup and the rejoin of a
/// static member — are held back by the coordinator and only come out of
/// `on_append_completed`. Answers that follow an `Append` in the same list (DeleteGroups,
/// OffsetDelete) do not depend on it, exactly as in Kafka, where losing such a tombstone
/// is harmless: the group is removed again by expiry.
///
/// **Log order.** The appends to one partition must reach the log in the order they are
/// output, and be reported in that order: the coordinator orders a transaction's offsets
/// against plain commits of the same partition by the order of their successful appends
/// (see [`GroupCoordinator::complete_transaction`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send `response` on the connection waiting under `request_id`.
    Respond {
        request_id: u64,
        response: GroupResponse,
    },
    /// Append `records` (in order, as one batch) to partition `partition` of
    /// `__consumer_offsets`, then call `on_append_completed(append_id, ..)`.
    ///
    /// `transactional` is `None` for the coordinator's own writes: an ordinary batch
    /// without producer id (-1/-1). `Some` for the offsets of a TxnOffsetCommit: a
    /// transactional batch of that producer id and epoch, part of the producer's ongoing
    /// transaction (so the log's producer state, last stable offset and later COMMIT or
    /// ABORT marker cover it).
    Append {
        append_id: u64,
        partition: i32,
        records: Vec<OffsetsTopicRecord>,
        transactional: Option<ProducerIdAndEpoch>,
    },
}

/// The producer whose transaction a transactional append belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// Where the group coordinator for a key lives, for FindCoordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorNode {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

/// Counters and gauges the broker exports as metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupCoordinatorStats {
    /// Number of groups in each state (every state present, zero included).
    pub groups_by_state: BTreeMap<GroupState, usize>,
    /// Members of each group.
    pub members_by_group: BTreeMap<String, usize>,
    /// Rebalances started (entries into PreparingRebalance).
    pub rebalances_total: u64,
    /// Rebalances that ended with the group Stable or Empty.
    pub rebalances_completed_total: u64,
    /// Sum of the durations of completed rebalances.
    pub rebalance_time_ms_total: i64,
    /// Durations of the most recent completed rebalances, oldest first
    /// (at most [`RECENT_REBALANCES`]).
    pub recent_rebalance_durations_ms: Vec<i64>,
    /// Offsets acknowledged to committers.
    pub offset_commits_total: u64,
    /// Offsets deleted by `offsets.retention.minutes`.
    pub offsets_expired_total: u64,
    /// Committed offsets currently held.
    pub committed_offsets: usize,
    /// Transactional offsets waiting for their transaction's COMMIT or ABORT marker.
    pub pending_transactional_offsets: usize,
}

/// How many rebalance durations [`GroupCoordinatorStats`] keeps.
pub const RECENT_REBALANCES: usize = 64;

/// What the coordinator does when an append it asked for completes.
#[derive(Debug)]
enum PendingAppend {
    /// Offsets are applied (and the commit acknowledged) only once durable.
    OffsetCommit {
        group_id: String,
        request_id: u64,
        /// The response, in request order, with errors already decided for partitions
        /// that were not written; the written ones are filled in on completion.
        response: OffsetCommitResponse,
        offsets: Vec<((String, i32), OffsetAndMetadata)>,
    },
    /// The leader's assignment, sent to the members once stored.
    GroupAssignment {
        group_id: String,
        generation_id: i32,
        assignment: Vec<(String, Bytes)>,
    },
    /// A static member rejoined a Stable group under a new member id (KIP-345); its
    /// JoinGroup is answered once the new id is stored.
    StaticMemberRejoin(StaticMemberRejoin),
    /// Transactional offsets are written (and pending for their producer): answer.
    TxnOffsetCommit {
        group_id: String,
        request_id: u64,
        producer_id: i64,
        /// The response, in request order, with the errors of partitions that were not
        /// written; the written ones get the append's outcome.
        response: TxnOffsetCommitResponse,
        offsets: Vec<((String, i32), OffsetAndMetadata)>,
    },
    /// Nobody waits (tombstones, the metadata of a group that became Empty).
    Unobserved,
}

#[derive(Debug)]
struct StaticMemberRejoin {
    group_id: String,
    member_id: String,
    /// Leader before the rejoin: what pre-v9 clients are told (see the handler).
    previous_leader: String,
    /// JoinGroup v9+: the leader is told it leads but must not assign (KIP-814).
    skip_assignment: bool,
}

/// Deterministic member-id randomness (SplitMix64), seeded by the caller so that a test or
/// a simulation replays exactly.
#[derive(Debug, Clone)]
struct MemberIdGenerator {
    state: u64,
}

impl MemberIdGenerator {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random (version 4) UUID in its usual text form, as Java's `UUID.randomUUID()`.
    fn uuid(&mut self) -> String {
        let hi = (self.next_u64() & !0xf000) | 0x4000;
        let lo = (self.next_u64() & !(0xc << 60)) | (0x8 << 60);
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        )
    }
}

/// Kafka's classic group coordinator as a pure state machine: requests and time go in,
/// [`Output`]s come out. No clocks, sockets or threads: `now_ms` is passed to every call,
/// and the broker calls [`GroupCoordinator::tick`] regularly (every few hundred
/// milliseconds is plenty) to fire session, rebalance and retention timers.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: GroupCoordinatorConfig,
    groups: BTreeMap<String, ClassicGroup>,
    /// `__consumer_offsets` partitions this broker leads and has loaded; groups of other
    /// partitions get NOT_COORDINATOR.
    loaded_partitions: BTreeSet<i32>,
    pending_appends: BTreeMap<u64, PendingAppend>,
    next_append_id: u64,
    member_ids: MemberIdGenerator,
    next_retention_check_ms: Option<i64>,
    rebalances_total: u64,
    rebalances_completed_total: u64,
    rebalance_time_ms_total: i64,
    recent_rebalance_durations_ms: VecDeque<i64>,
    offset_commits_total: u64,
    offsets_expired_total: u64,
    /// Where the next successfully appended (or loaded) record sits in log order. One
    /// counter for every partition: positions are only ever compared within a group, and
    /// a group's records are written, reported and loaded in their log order.
    next_record_position: u64,
}

impl GroupCoordinator {
    /// A coordinator with no partition loaded. `seed` feeds member-id generation.
    pub fn new(config: GroupCoordinatorConfig, seed: u64) -> Self {
        assert!(config.offsets_topic_num_partitions > 0);
        assert!(config.group_min_session_timeout_ms <= config.group_max_session_timeout_ms);
        GroupCoordinator {
            config,
            groups: BTreeMap::new(),
            loaded_partitions: BTreeSet::new(),
            pending_appends: BTreeMap::new(),
            next_append_id: 0,
            member_ids: MemberIdGenerator { state: seed },
            next_retention_check_ms: None,
            rebalances_total: 0,
            rebalances_completed_total: 0,
            rebalance_time_ms_total: 0,
            recent_rebalance_durations_ms: VecDeque::new(),
            offset_commits_total: 0,
            offsets_expired_total: 0,
            next_record_position: 0,
        }
    }

    pub fn config(&self) -> &GroupCoordinatorConfig {
        &self.config
    }

    /// The `__consumer_offsets` partition holding `group_id`.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        offsets_topic::partition_for(group_id, self.config.offsets_topic_num_partitions)
    }

    pub fn is_partition_loaded(&self, partition: i32) -> bool {
        self.loaded_partitions.contains(&partition)
    }

    /// Takes over partition `partition` of `__consumer_offsets` (this broker became its
    /// leader), rebuilding its groups and offsets from `records` in log order: later
    /// records replace earlier ones, tombstones delete.
    ///
    /// As in Kafka, a group whose last metadata has members comes back Stable with those
    /// members and their assignment, and each member gets a fresh session timeout: after
    /// a broker restart, consumers that keep heartbeating carry on without a rebalance,
    /// and those that are gone expire and trigger one. Groups with only offsets come
    /// back Empty.
    ///
    /// Transactions are replayed as Kafka's `GroupMetadataManager.doLoadGroupsAndOffsets`
    /// does: pass the partition's whole log up to its end, *including* records of open
    /// transactions and control batches, as [`LoadedRecord`]s (plain
    /// [`OffsetsTopicRecord`]s are taken as records of non-transactional batches). Offsets
    /// of a transactional batch stay pending for its producer until the producer's
    /// marker: COMMIT makes them committed unless a plain commit of the same partition
    /// comes later in the log, ABORT drops them; a transaction still open at the end of
    /// the log stays pending, to be completed by
    /// [`GroupCoordinator::complete_transaction`]. An offset tombstone also drops the
    /// partition's pending transactional offsets (the tombstone of a deletion).
    ///
    /// Loading a partition that is already loaded replaces its groups; call
    /// [`GroupCoordinator::unload_partition`] first to answer their parked requests.
    pub fn load_partition<R: Into<LoadedRecord>>(
        &mut self,
        partition: i32,
        records: impl IntoIterator<Item = R>,
        now_ms: i64,
    ) -> Result<(), RecordError> {
        type GroupOffsets = BTreeMap<String, BTreeMap<(String, i32), CommittedOffset>>;
        let mut offsets: GroupOffsets = BTreeMap::new();
        // Open transactions: producer id -> group -> partition -> offset.
        let mut pending: BTreeMap<i64, GroupOffsets> = BTreeMap::new();
        let mut metadata: BTreeMap<String, offsets_topic::GroupMetadataValue> = BTreeMap::new();
        for record in records {
            let position = self.next_position();
            let (record, producer_id) = match record.into() {
                LoadedRecord::Record {
                    record,
                    transactional_producer_id,
                } => (record, transactional_producer_id),
                LoadedRecord::Marker {
                    producer_id,
                    commit,
                } => {
                    let Some(completed) = pending.remove(&producer_id) else {
                        continue;
                    };
                    if commit {
                        for (group, group_pending) in completed {
                            let group_offsets = offsets.entry(group).or_default();
                            for (key, offset) in group_pending {
                                commit_if_newer(group_offsets, key, offset);
                            }
                        }
                    }
                    continue;
                }
            };
            match offsets_topic::decode_key(&record.key)? {
                OffsetsTopicKey::OffsetCommit {
                    group,
                    topic,
                    partition,
                } => {
                    let key = (topic, partition);
                    let value = record
                        .value
                        .map(|v| offsets_topic::decode_offset_commit_value(&v))
                        .transpose()?;
                    match (producer_id, value) {
                        (None, Some(offset)) => {
                            offsets
                                .entry(group)
                                .or_default()
                                .insert(key, CommittedOffset { offset, position });
                        }
                        (None, None) => {
                            if let Some(group_offsets) = offsets.get_mut(&group) {
                                group_offsets.remove(&key);
                            }
                            for producer in pending.values_mut() {
                                if let Some(group_pending) = producer.get_mut(&group) {
                                    group_pending.remove(&key);
                                }
                            }
                        }
                        (Some(producer_id), Some(offset)) => {
                            pending
                                .entry(producer_id)
                                .or_default()
                                .entry(group)
                                .or_default()
                                .insert(key, CommittedOffset { offset, position });
                        }
                        (Some(producer_id), None) => {
                            if let Some(group_pending) = pending
                                .get_mut(&producer_id)
                                .and_then(|p| p.get_mut(&group))
                            {
                                group_pending.remove(&key);
                            }
                        }
                    }
                }
                OffsetsTopicKey::GroupMetadata { group } => match record.value {
                    Some(value) => {
                        metadata.insert(group, offsets_topic::decode_group_metadata_value(&value)?);
                    }
                    None => {
                        metadata.remove(&group);
                    }
                },
                OffsetsTopicKey::Other { version } => {
                    tracing::debug!(partition, version, "skipping record of another group type");
                }
            }
        }

        // Open transactions per group.
        let mut pending_by_group: BTreeMap<String, BTreeMap<i64, _>> = BTreeMap::new();
        for (producer_id, groups) in pending {
            for (group, group_pending) in groups {
                if group_pending.is_empty() {
                    continue;
                }
                let group_pending: BTreeMap<(String, i32), PendingTxnOffset> = group_pending
                    .into_iter()
                    .map(|(key, c)| {
                        let pending = PendingTxnOffset {
                            offset: c.offset,
                            record: TxnRecord::Appended(c.position),
                        };
                        (key, pending)
                    })
                    .collect();
                pending_by_group
                    .entry(group)
                    .or_default()
                    .insert(producer_id, group_pending);
            }
        }

        let group_ids: BTreeSet<String> = offsets
            .iter()
            .filter(|(_, o)| !o.is_empty())
            .map(|(g, _)| g.clone())
            .chain(metadata.keys().cloned())
            .chain(pending_by_group.keys().cloned())
            .collect();
        let num_partitions = self.config.offsets_topic_num_partitions;
        self.groups
            .retain(|g, _| offsets_topic::partition_for(g, num_partitions) != partition);
        for group_id in group_ids {
            let mut group = ClassicGroup::new(group_id.clone(), now_ms);
            group.offsets = offsets.remove(&group_id).unwrap_or_default();
            group.pending_txn_offsets = pending_by_group.remove(&group_id).unwrap_or_default();
            if let Some(value) = metadata.remove(&group_id) {
                group.protocol_type = Some(value.protocol_type).filter(|t| !t.is_empty());
                group.generation_id = value.generation;
                group.protocol_name = value.protocol;
                group.leader_id = value.leader;
                if value.current_state_timestamp_ms >= 0 {
                    group.state_timestamp_ms = value.current_state_timestamp_ms;
                }
                let protocol = group.protocol_name.clone().unwrap_or_default();
                group.members = value
                    .members
                    .into_iter()
                    .map(|m| Member {
                        member_id: m.member_id,
                        group_instance_id: m.group_instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        rebalance_timeout_ms: m.rebalance_timeout_ms,
                        session_timeout_ms: m.session_timeout_ms,
                        protocol_type: group.protocol_type.clone().unwrap_or_default(),
                        protocols: vec![(protocol.clone(), m.subscription)],
                        assignment: m.assignment,
                        awaiting_join: None,
                        awaiting_sync: None,
                        is_new: false,
                        session_deadline_ms: Some(now_ms + i64::from(m.session_timeout_ms)),
                    })
                    .collect();
                if !group.members.is_empty() {
                    group.state = GroupState::Stable;
                }
                group.subscribed_topics = group.compute_subscribed_topics();
            }
            self.groups.insert(group_id, group);
        }
        self.loaded_partitions.insert(partition);
        Ok(())
    }

    /// Gives up partition `partition` (leadership moved): its groups are forgotten and
    /// their waiting requests answered with NOT_COORDINATOR so the clients look again.
    #[must_use = "the broker must perform every output"]
    pub fn unload_partition(&mut self, partition: i32) -> Vec<Output> {
        let mut out = Vec::new();
        self.loaded_partitions.remove(&partition);
        let group_ids: Vec<String> = self
            .groups
            .keys()
            .filter(|g| self.partition_for(g) == partition)
            .cloned()
            .collect();
        for group_id in group_ids {
            if let Some(group) = self.groups.remove(&group_id) {
                for member in &group.members {
                    respond_to_waiters(member, ResponseError::NotCoordinator, &mut out);
                }
            }
        }
        out
    }

    /// Fires every timer due at `now_ms`: session expiry, pending member expiry, the
    /// end of the join phase (rebalance timeout and initial delay), the SyncGroup
    /// deadline and, every `offsets.retention.check.interval.ms`, offset retention.
    #[must_use = "the broker must perform every output"]
    pub fn tick(&mut self, now_ms: i64) -> Vec<Output> {
        let mut out = Vec::new();
        let group_ids: Vec<String> = self.groups.keys().cloned().collect();
        for group_id in &group_ids {
            self.expire_pending_members(group_id, now_ms, &mut out);
            self.expire_sessions(group_id, now_ms, &mut out);
            self.expire_join(group_id, now_ms, &mut out);
            self.expire_pending_sync(group_id, now_ms, &mut out);
        }
        let check_due = self.next_retention_check_ms.is_none_or(|due| now_ms >= due);
        if check_due {
            self.next_retention_check_ms =
                Some(now_ms + self.config.offsets_retention_check_interval_ms);
            self.expire_offsets(now_ms, &mut out);
        }
        out
    }

    /// Reports the outcome of an [`Output::Append`]. `error` is the produce error of the
    /// write, if it failed.
    #[must_use = "the broker must perform every output"]
    pub fn on_append_completed(
        &mut self,
        append_id: u64,
        error: Option<ResponseError>,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(pending) = self.pending_appends.remove(&append_id) else {
            return out;
        };
        match pending {
            PendingAppend::OffsetCommit {
                group_id,
                request_id,
                response,
                offsets,
            } => self.complete_offset_commit(
                append_id, &group_id, request_id, response, offsets, error, &mut out,
            ),
            PendingAppend::TxnOffsetCommit {
                group_id,
                request_id,
                producer_id,
                response,
                offsets,
            } => self.complete_txn_offset_commit(
                append_id,
                &group_id,
                request_id,
                producer_id,
                response,
                offsets,
                error,
                &mut out,
            ),
            PendingAppend::GroupAssignment {
                group_id,
                generation_id,
                assignment,
            } => self.complete_group_assignment(
                &group_id,
                generation_id,
                assignment,
                error,
                now_ms,
                &mut out,
            ),
            PendingAppend::StaticMemberRejoin(rejoin) => {
                self.complete_static_member_rejoin(rejoin, error, now_ms, &mut out)
            }
            PendingAppend::Unobserved => {
                if let Some(error) = error {
                    tracing::warn!(append_id, %error, "write to __consumer_offsets failed");
                }
            }
        }
        out
    }

    /// Metrics: groups by state, members per group, rebalance counts and durations.
    pub fn stats(&self) -> GroupCoordinatorStats {
        let mut groups_by_state: BTreeMap<GroupState, usize> =
            GroupState::ALL.iter().map(|s| (*s, 0)).collect();
        let mut members_by_group = BTreeMap::new();
        let mut committed_offsets = 0;
        let mut pending_transactional_offsets = 0;
        for group in self.groups.values() {
            *groups_by_state.entry(group.state).or_default() += 1;
            members_by_group.insert(group.group_id.clone(), group.members.len());
            committed_offsets += group.offsets.len();
            pending_transactional_offsets += group
                .pending_txn_offsets
                .values()
                .map(BTreeMap::len)
                .sum::<usize>();
        }
        GroupCoordinatorStats {
            groups_by_state,
            members_by_group,
            rebalances_total: self.rebalances_total,
            rebalances_completed_total: self.rebalances_completed_total,
            rebalance_time_ms_total: self.rebalance_time_ms_total,
            recent_rebalance_durations_ms: self
                .recent_rebalance_durations_ms
                .iter()
                .copied()
                .collect(),
            offset_commits_total: self.offset_commits_total,
            offsets_expired_total: self.offsets_expired_total,
            committed_offsets,
            pending_transactional_offsets,
        }
    }

    /// The committed offsets of a group as `(topic, partition, offset)`, for lag metrics
    /// and the consumer-groups tooling. Offsets of open transactions are not included.
    pub fn committed_offsets(&self, group_id: &str) -> Vec<(String, i32, i64)> {
        self.groups
            .get(group_id)
            .map(|g| {
                g.offsets
                    .iter()
                    .map(|((topic, partition), o)| (topic.clone(), *partition, o.offset.offset))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The state of a group, if the coordinator knows it.
    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.get(group_id).map(|g| g.state)
    }

    /// Kafka's `validateGroupStatus`: the group id must be well formed for the API and
    /// its partition loaded here.
    fn validate_group_status(
        &self,
        group_id: &str,
        require_non_empty_id: bool,
    ) -> Option<ResponseError> {
        if require_non_empty_id && group_id.is_empty() {
            return Some(ResponseError::InvalidGroupId);
        }
        if !self.is_partition_loaded(self.partition_for(group_id)) {
            return Some(ResponseError::NotCoordinator);
        }
        None
    }

    /// The log position of a record that was just appended (or loaded).
    fn next_position(&mut self) -> u64 {
        let position = self.next_record_position;
        self.next_record_position += 1;
        position
    }

    fn next_append(&mut self, pending: PendingAppend) -> u64 {
        let id = self.next_append_id;
        self.next_append_id += 1;
        self.pending_appends.insert(id, pending);
        id
    }

    /// Emits the group's metadata record, remembering what to do when it is durable.
    fn store_group(
        &mut self,
        group_id: &str,
        assignment: &dyn Fn(&Member) -> Bytes,
        pending: PendingAppend,
        out: &mut Vec<Output>,
    ) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        let value = offsets_topic::group_metadata_value(&group.to_metadata_value(assignment));
        let partition = self.partition_for(group_id);
        let append_id = self.next_append(pending);
        out.push(Output::Append {
            append_id,
            partition,
            records: vec![OffsetsTopicRecord {
                key: offsets_topic::group_metadata_key(group_id),
                value: Some(value),
            }],
            transactional: None,
        });
    }

    fn record_rebalance_started(group: &mut ClassicGroup, rebalances_total: &mut u64, now_ms: i64) {
        if group.rebalance_started_ms.is_none() {
            group.rebalance_started_ms = Some(now_ms);
            *rebalances_total += 1;
        }
    }

    fn record_rebalance_completed(&mut self, group_id: &str, now_ms: i64) {
        let Some(started) = self
            .groups
            .get_mut(group_id)
            .and_then(|g| g.rebalance_started_ms.take())
        else {
            return;
        };
        let duration = (now_ms - started).max(0);
        self.rebalances_completed_total += 1;
        self.rebalance_time_ms_total += duration;
        if self.recent_rebalance_durations_ms.len() == RECENT_REBALANCES {
            self.recent_rebalance_durations_ms.pop_front();
        }
        self.recent_rebalance_durations_ms.push_back(duration);
    }

    fn new_member_id(&mut self, client_id: &str, group_instance_id: Option<&str>) -> String {
        let prefix = group_instance_id.unwrap_or(client_id);
        format!("{prefix}-{}", self.member_ids.uuid())
    }
}

/// Kafka's rule for a committed transaction's offset (`completePendingTxnOffsetCommit`):
/// it replaces the committed offset only if that one was written earlier in the log, so a
/// plain commit appended after the transactional one wins. True if it was applied.
fn commit_if_newer(
    offsets: &mut BTreeMap<(String, i32), CommittedOffset>,
    key: (String, i32),
    offset: CommittedOffset,
) -> bool {
    if offsets
        .get(&key)
        .is_some_and(|current| current.position > offset.position)
    {
        return false;
    }
    offsets.insert(key, offset);
    true
}

/// Schedules the member's next session deadline (Kafka's
/// `completeAndScheduleNextHeartbeatExpiration`).
fn schedule_session_expiry(member: &mut Member, now_ms: i64) {
    let timeout_ms = if member.is_new {
        NEW_MEMBER_JOIN_TIMEOUT_MS
    } else {
        i64::from(member.session_timeout_ms)
    };
    member.session_deadline_ms = Some(now_ms + timeout_ms);
}

/// Answers whatever JoinGroup or SyncGroup a departing member left waiting.
fn respond_to_waiters(member: &Member, error: ResponseError, out: &mut Vec<Output>) {
    if let Some(waiter) = member.awaiting_join {
        out.push(Output::Respond {
            request_id: waiter.request_id,
            response: GroupResponse::JoinGroup(membership::join_error(waiter.version, "", error)),
        });
    }
    if let Some(waiter) = member.awaiting_sync {
        out.push(Output::Respond {
            request_id: waiter.request_id,
            response: GroupResponse::SyncGroup(membership::sync_error(error)),
        });
    }
}

/// Kafka's translation of a failed group-metadata write into the error the group APIs
/// return (`GroupMetadataManager.storeGroup`).
fn store_group_error(error: ResponseError) -> ResponseError {
    use ResponseError::*;
    match error {
        UnknownTopicOrPartition
        | NotEnoughReplicas
        | NotEnoughReplicasAfterAppend
        | RequestTimedOut => CoordinatorNotAvailable,
        NotLeaderOrFollower | KafkaStorageError => NotCoordinator,
        MessageTooLarge | RecordListTooLarge | InvalidFetchSize => UnknownServerError,
        other => other,
    }
}

/// Kafka's translation of a failed offset write into OffsetCommit's errors.
fn store_offsets_error(error: ResponseError) -> ResponseError {
    use ResponseError::*;
    match error {
        UnknownTopicOrPartition
        | NotEnoughReplicas
        | NotEnoughReplicasAfterAppend
        | RequestTimedOut => CoordinatorNotAvailable,
        NotLeaderOrFollower | KafkaStorageError => NotCoordinator,
        MessageTooLarge | RecordListTooLarge | InvalidFetchSize => InvalidCommitOffsetSize,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_look_like_java_uuids_and_replay_from_the_seed() {
        let mut a = MemberIdGenerator { state: 7 };
        let mut b = MemberIdGenerator { state: 7 };
        let id = a.uuid();
        assert_eq!(id, b.uuid());
        assert_eq!(id.len(), 36);
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "version 4: {id}");
        assert!(
            matches!(&parts[3][..1], "8" | "9" | "a" | "b"),
            "variant: {id}"
        );
        assert_ne!(a.uuid(), id);
    }
}
