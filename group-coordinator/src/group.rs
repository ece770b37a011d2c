//! One classic group: its state, members and committed offsets (Kafka's
//! `GroupMetadata`/`ClassicGroup` and `MemberMetadata`). Only bookkeeping lives here;
//! the decisions (when to rebalance, what to answer) are in the coordinator's handlers.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

use crate::offsets_topic::{GroupMetadataValue, MemberMetadataValue, OffsetAndMetadata};

/// `protocol_type` of groups formed by Kafka consumers; only their member metadata is
/// parsed (to learn the subscribed topics).
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The state of a classic group. See the crate documentation for the transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub const ALL: [GroupState; 5] = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ];

    /// The name Kafka reports in DescribeGroups and ListGroups.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// The states a group may come from to enter `self` (Kafka's `validPreviousStates`).
    fn valid_previous_states(self) -> &'static [GroupState] {
        use GroupState::*;
        match self {
            Empty => &[PreparingRebalance],
            PreparingRebalance => &[Stable, CompletingRebalance, Empty],
            CompletingRebalance => &[PreparingRebalance],
            Stable => &[CompletingRebalance],
            Dead => &[Stable, PreparingRebalance, CompletingRebalance, Empty, Dead],
        }
    }
}

/// A request the coordinator answers later (JoinGroup and SyncGroup wait for the
/// rebalance to progress).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waiter {
    pub request_id: u64,
    pub version: i16,
}

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// How long the coordinator waits for this member to rejoin during a rebalance
    /// (the consumer's `max.poll.interval.ms`).
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// Supported protocols (assignors) in the member's order of preference, with its
    /// metadata (subscription) for each.
    pub protocols: Vec<(String, Bytes)>,
    /// What the leader assigned to this member in the current generation.
    pub assignment: Bytes,
    pub awaiting_join: Option<Waiter>,
    pub awaiting_sync: Option<Waiter>,
    /// Joined but has not yet completed a join round; such members time out after
    /// [`NEW_MEMBER_JOIN_TIMEOUT_MS`] instead of their session timeout.
    pub is_new: bool,
    /// When the member is removed unless it heartbeats (or joins/syncs) first. `None`
    /// while it is exempt: a member that was awaiting join or sync when its deadline
    /// passed is watched by the rebalance or pending-sync timer instead.
    pub session_deadline_ms: Option<i64>,
}

/// Kafka's `NewMemberJoinTimeoutMs`: a new member's JoinGroup is parked while the group
/// rebalances; if the client gives up and retries, the stale member must not linger.
pub(crate) const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

impl Member {
    pub fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    /// The member's metadata for `protocol` (empty when it does not support it).
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    /// Same protocols with the same metadata in the same order: a rejoin that changes
    /// nothing the leader would assign from.
    pub fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    /// The member's most preferred protocol among `candidates`.
    fn vote<'a>(&'a self, candidates: &BTreeSet<&str>) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| candidates.contains(name))
    }
}

/// Member id handed out with MEMBER_ID_REQUIRED (KIP-394) that has not joined with it yet.
#[derive(Debug, Clone)]
pub(crate) struct PendingMember {
    pub member_id: String,
    pub deadline_ms: i64,
}

/// The timer that ends the PreparingRebalance phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JoinTimer {
    pub deadline_ms: i64,
    /// Set for the first rebalance of an Empty group (Kafka's `InitialDelayedJoin`):
    /// it cannot complete early and is extended while new members arrive.
    pub initial: Option<InitialDelay>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InitialDelay {
    pub delay_ms: i64,
    pub remaining_ms: i64,
}

/// A committed offset and where its record sits in `__consumer_offsets` (Kafka's
/// `CommitRecordMetadataAndOffset`): when a transaction commits, its offset only replaces
/// a committed one written earlier in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommittedOffset {
    pub offset: OffsetAndMetadata,
    /// The record's place in log order (see `GroupCoordinator::next_record_position`).
    pub position: u64,
}

/// A transactional offset waiting for its transaction to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingTxnOffset {
    pub offset: OffsetAndMetadata,
    pub record: TxnRecord,
}

/// Whether a transactional offset's record is in the log yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnRecord {
    /// The append with this id is in flight.
    InFlight(u64),
    /// Written, at this place in log order.
    Appended(u64),
}

#[derive(Debug, Clone)]
pub(crate) struct ClassicGroup {
    pub group_id: String,
    pub state: GroupState,
    /// When the group entered its current state; stored as `currentStateTimestamp` and
    /// the base of offset retention once the group is Empty.
    pub state_timestamp_ms: i64,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    /// In join order, so the first member to join leads a fresh group.
    pub members: Vec<Member>,
    pub pending_members: Vec<PendingMember>,
    /// Members of the new generation that have not sent SyncGroup yet.
    pub pending_sync_members: BTreeSet<String>,
    pub join_timer: Option<JoinTimer>,
    /// A new member joined during the initial delay, so the delay is extended once more.
    pub new_member_added: bool,
    /// Deadline for the pending sync members to send SyncGroup.
    pub sync_deadline_ms: Option<i64>,
    /// Topics the consumers of this generation subscribe to; `None` when unknown (not a
    /// consumer group, or metadata that does not parse).
    pub subscribed_topics: Option<BTreeSet<String>>,
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Commits written to the log but not yet acknowledged, by the ids of their appends;
    /// retention leaves them alone. A deletion of the partition cancels them: they are
    /// not applied when their append completes.
    pub pending_offset_commits: BTreeMap<(String, i32), BTreeSet<u64>>,
    /// Transactional offsets (TxnOffsetCommit) per producer id, waiting for the
    /// producer's COMMIT or ABORT marker (Kafka's `pendingTransactionalOffsetCommits`).
    pub pending_txn_offsets: BTreeMap<i64, BTreeMap<(String, i32), PendingTxnOffset>>,
    /// When the current rebalance began, for the rebalance duration metric.
    pub rebalance_started_ms: Option<i64>,
}

impl ClassicGroup {
    pub fn new(group_id: String, now_ms: i64) -> Self {
        ClassicGroup {
            group_id,
            state: GroupState::Empty,
            state_timestamp_ms: now_ms,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: Vec::new(),
            pending_members: Vec::new(),
            pending_sync_members: BTreeSet::new(),
            join_timer: None,
            new_member_added: false,
            sync_deadline_ms: None,
            subscribed_topics: None,
            offsets: BTreeMap::new(),
            pending_offset_commits: BTreeMap::new(),
            pending_txn_offsets: BTreeMap::new(),
            rebalance_started_ms: None,
        }
    }

    pub fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    /// Kafka's `hasOffsets`: committed offsets, commits in flight or open transactional
    /// offsets. An Empty group without any is removed.
    pub fn has_offsets(&self) -> bool {
        !self.offsets.is_empty()
            || !self.pending_offset_commits.is_empty()
            || !self.pending_txn_offsets.is_empty()
    }

    /// Whether an open transaction holds an offset for the partition.
    pub fn has_pending_txn_offset(&self, key: &(String, i32)) -> bool {
        self.pending_txn_offsets
            .values()
            .any(|offsets| offsets.contains_key(key))
    }

    /// Kafka's `hasPendingOffsetCommitsForTopicPartition`: a commit in flight or an open
    /// transactional offset makes the partition's committed offset unstable.
    pub fn has_pending_offset_commit(&self, key: &(String, i32)) -> bool {
        self.pending_offset_commits.contains_key(key) || self.has_pending_txn_offset(key)
    }

    /// Forgets the partitions' offsets, committed and pending (Kafka's `removeOffsets`):
    /// commits in flight for them are not applied when their append completes. Returns
    /// the partitions that had any of those (and so need a tombstone).
    pub fn remove_offsets(&mut self, keys: &[(String, i32)]) -> Vec<(String, i32)> {
        let mut removed = Vec::new();
        for key in keys {
            let mut had = self.pending_offset_commits.remove(key).is_some();
            had |= self.offsets.remove(key).is_some();
            for offsets in self.pending_txn_offsets.values_mut() {
                had |= offsets.remove(key).is_some();
            }
            if had {
                removed.push(key.clone());
            }
        }
        self.pending_txn_offsets
            .retain(|_, offsets| !offsets.is_empty());
        removed
    }

    /// Every partition with a committed offset, a commit in flight or a transactional
    /// offset.
    pub fn all_offset_keys(&self) -> Vec<(String, i32)> {
        let keys: BTreeSet<&(String, i32)> = self
            .offsets
            .keys()
            .chain(self.pending_offset_commits.keys())
            .chain(self.pending_txn_offsets.values().flat_map(|o| o.keys()))
            .collect();
        keys.into_iter().cloned().collect()
    }

    pub fn transition_to(&mut self, state: GroupState, now_ms: i64) {
        assert!(
            state.valid_previous_states().contains(&self.state),
            "group {} cannot go from {:?} to {:?}",
            self.group_id,
            self.state,
            state
        );
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == member_id)
    }

    pub fn member_mut(&mut self, member_id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.member_id == member_id)
    }

    pub fn has(&self, member_id: &str) -> bool {
        self.member(member_id).is_some()
    }

    pub fn is_pending_member(&self, member_id: &str) -> bool {
        self.pending_members
            .iter()
            .any(|p| p.member_id == member_id)
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    pub fn static_member_id(&self, group_instance_id: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.group_instance_id.as_deref() == Some(group_instance_id))
            .map(|m| m.member_id.as_str())
    }

    /// A static member presenting a member id other than the one registered for its
    /// `group.instance.id` is a zombie of an older instance.
    pub fn is_static_member_fenced(
        &self,
        group_instance_id: Option<&str>,
        member_id: &str,
    ) -> bool {
        group_instance_id
            .and_then(|instance| self.static_member_id(instance))
            .is_some_and(|registered| registered != member_id)
    }

    pub fn num_awaiting_join(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.awaiting_join.is_some())
            .count()
    }

    pub fn has_all_members_joined(&self) -> bool {
        self.members.len() == self.num_awaiting_join() && self.pending_members.is_empty()
    }

    /// The longest rebalance timeout of any member bounds the join phase.
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .iter()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    pub fn can_rebalance(&self) -> bool {
        GroupState::PreparingRebalance
            .valid_previous_states()
            .contains(&self.state)
    }

    /// Whether a member with this protocol type and these protocols may join: an Empty
    /// group takes anything well-formed; otherwise the type must match and at least one
    /// protocol must be supported by every current member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.is(GroupState::Empty) {
            !protocol_type.is_empty() && !protocols.is_empty()
        } else {
            self.protocol_type.as_deref() == Some(protocol_type)
                && protocols
                    .iter()
                    .any(|(name, _)| self.members.iter().all(|m| m.supports(name)))
        }
    }

    pub fn add_member(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        self.pending_members
            .retain(|p| p.member_id != member.member_id);
        self.members.push(member);
    }

    /// Removes a member; a new leader is the longest-standing remaining member.
    pub fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let index = self.members.iter().position(|m| m.member_id == member_id)?;
        let member = self.members.remove(index);
        if self.is_leader(member_id) {
            self.leader_id = self.members.first().map(|m| m.member_id.clone());
        }
        self.pending_sync_members.remove(member_id);
        Some(member)
    }

    /// If the leader has not rejoined, hand leadership to a member that has. False when
    /// no member rejoined (or the group has no leader).
    pub fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.as_deref() else {
            return false;
        };
        if self
            .member(leader)
            .is_some_and(|m| m.awaiting_join.is_some())
        {
            return true;
        }
        match self.members.iter().find(|m| m.awaiting_join.is_some()) {
            Some(joined) => {
                self.leader_id = Some(joined.member_id.clone());
                true
            }
            None => false,
        }
    }

    /// Kafka's protocol vote: among the protocols every member supports, each member
    /// votes for its most preferred one and the most votes win. Ties go to the protocol
    /// the longest-standing voter prefers, so the choice is deterministic.
    pub fn select_protocol(&self) -> Option<String> {
        let candidates: BTreeSet<&str> = self
            .members
            .first()?
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.members.iter().all(|m| m.supports(name)))
            .collect();
        let votes: Vec<&str> = self
            .members
            .iter()
            .filter_map(|m| m.vote(&candidates))
            .collect();
        let mut best: Option<(&str, usize)> = None;
        for vote in &votes {
            let count = votes.iter().filter(|v| *v == vote).count();
            if best.is_none_or(|(_, best_count)| count > best_count) {
                best = Some((vote, count));
            }
        }
        best.map(|(name, _)| name.to_owned())
    }

    /// Parses the consumers' subscriptions for the selected protocol.
    pub fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in &self.members {
            let mut metadata = member.metadata(protocol);
            if metadata.remaining() < 2 {
                return None;
            }
            let version = metadata.get_i16();
            let subscription =
                ConsumerProtocolSubscription::decode(&mut metadata, version.clamp(0, 3)).ok()?;
            topics.extend(subscription.topics.iter().map(|t| t.to_string()));
        }
        Some(topics)
    }

    /// Unknown subscriptions count as subscribed, so nothing is deleted on a guess.
    pub fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        self.subscribed_topics
            .as_ref()
            .is_none_or(|topics| topics.contains(topic))
    }

    /// The group as a `GroupMetadataValue`, with the given assignment per member.
    pub fn to_metadata_value(&self, assignment: &dyn Fn(&Member) -> Bytes) -> GroupMetadataValue {
        let protocol = self.protocol_name.clone();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: protocol.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members
                .iter()
                .map(|m| MemberMetadataValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: protocol
                        .as_deref()
                        .map(|p| m.metadata(p))
                        .unwrap_or_default(),
                    assignment: assignment(m),
                })
                .collect(),
        }
    }
}
