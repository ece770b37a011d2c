//! Kafka's classic group coordinator, as a pure state machine, and the
//! `__consumer_offsets` record formats.
//!
//! The broker decodes JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! TxnOffsetCommit, OffsetFetch, DescribeGroups, ListGroups, DeleteGroups, OffsetDelete
//! and FindCoordinator requests and hands them to [`GroupCoordinator`] together with the
//! current time. The coordinator answers with [`Output`]s: responses (some of them much
//! later — a JoinGroup is answered when the rebalance's join phase ends) and records to
//! append to `__consumer_offsets`. It owns no clock, socket or thread, and its only
//! randomness (member ids) comes from a seed, so tests assert exact output lists.
//!
//! # Group states
//!
//! A classic group is in one of five states (Kafka's `GroupState`):
//!
//! - **Empty** — no members. The group may still hold committed offsets (for instance a
//!   consumer that assigns partitions manually and only commits). Offsets of an Empty
//!   group expire `offsets.retention.minutes` after it became Empty; the group itself is
//!   then removed.
//! - **PreparingRebalance** — the *join phase*. Every member must send JoinGroup again
//!   (heartbeats answer REBALANCE_IN_PROGRESS to tell them). It ends when all known
//!   members have rejoined, or when the rebalance timeout (the longest member
//!   `max.poll.interval.ms`) runs out; dynamic members that did not rejoin are then
//!   removed. The first rebalance of an Empty group waits
//!   `group.initial.rebalance.delay.ms` instead, extended while new members keep
//!   arriving, so a fleet starting together forms one generation.
//! - **CompletingRebalance** — the *sync phase*. The generation id was incremented, a
//!   protocol (assignor) supported by every member was chosen by vote, and every member
//!   got its JoinGroup answer; the leader's carries all members' subscriptions. The
//!   leader computes the assignment (assignors run in the client, so range, roundrobin,
//!   sticky and cooperative-sticky all work: the broker only carries bytes) and sends it
//!   in SyncGroup; the others' SyncGroups wait for it. Members that do not send SyncGroup
//!   within the rebalance timeout are removed and the group rebalances again.
//! - **Stable** — the leader's assignment was stored in `__consumer_offsets` and sent to
//!   every member. Members heartbeat within `session.timeout.ms`.
//! - **Dead** — the group was deleted (DeleteGroups, or expiry of an Empty group) and is
//!   being removed.
//!
//! | from | to | when |
//! |---|---|---|
//! | Empty | PreparingRebalance | the first member joins |
//! | PreparingRebalance | CompletingRebalance | the join phase ends with members |
//! | PreparingRebalance | Empty | the join phase ends with nobody (all left or expired) |
//! | CompletingRebalance | Stable | the leader's assignment is stored |
//! | CompletingRebalance, Stable | PreparingRebalance | a rebalance trigger (below) |
//! | Empty | Dead | DeleteGroups, or its last offset expired or was deleted |
//!
//! # What triggers a rebalance
//!
//! From Stable or CompletingRebalance (and the first join of an Empty group):
//! a new member joins; a member rejoins with different protocols or metadata; the leader
//! rejoins (how a consumer asks for a new assignment when its topic metadata changed); a
//! member leaves (LeaveGroup) or its session expires without a heartbeat; a member of the
//! new generation does not send SyncGroup in time. A static member (`group.instance.id`,
//! KIP-345) that restarts and rejoins a Stable group with unchanged protocols takes over
//! its old member id's place *without* a rebalance and gets its old assignment back.
//!
//! Cooperative rebalancing (KIP-429, `cooperative-sticky`) needs nothing from the
//! coordinator beyond this: the client revokes partitions and rejoins, and the second
//! rebalance hands them out.
//!
//! # Member ids
//!
//! A member joining with an empty member id on JoinGroup v4+ gets MEMBER_ID_REQUIRED and
//! a fresh id (`client.id` + "-" + a UUID) and must join again with it (KIP-394); until
//! then the id is *pending* and the join phase waits for it (for at most the session
//! timeout). Static members skip this step: their `group.instance.id` identifies them.
//!
//! # Durability
//!
//! Offsets and group metadata live in the compacted `__consumer_offsets` topic, in
//! Kafka's own key and value schemas ([`offsets_topic`]), in partition
//! [`offsets_topic::partition_for`] of the group. Commits are acknowledged, and
//! assignments handed out, only after their records are appended (see [`Output`]).
//! [`GroupCoordinator::load_partition`] rebuilds the groups at start-up.
//!
//! # Transactional offsets
//!
//! A transactional producer that consumes and produces exactly once (Kafka Streams,
//! `sendOffsetsToTransaction`) commits the consumer's offsets *inside* its transaction
//! with TxnOffsetCommit (KIP-98; KIP-447 adds the consumer's generation, member id and
//! group instance id from v3, checked like OffsetCommit's). The offsets must count if and
//! only if the transaction commits:
//!
//! - [`GroupCoordinator::handle_txn_offset_commit`] appends them to the group's
//!   `__consumer_offsets` partition as a **transactional batch** of the producer's id and
//!   epoch ([`Output::Append`] with `transactional` set) and answers once written. They
//!   are then **pending** for `(group, producer id)`: OffsetFetch does not return them.
//!   A group that does not exist is created Empty.
//! - When the transaction coordinator writes the producer's COMMIT or ABORT marker to
//!   that partition, the broker calls [`GroupCoordinator::complete_transaction`]. On
//!   COMMIT every group of the partition with offsets pending for the producer makes
//!   them its committed offsets — unless a plain OffsetCommit of the same partition was
//!   appended *after* the transactional record, which then stays (Kafka keeps the latest
//!   record of the log; here each successful append, and each loaded record, takes the
//!   next value of a coordinator-wide counter, which orders a group's records as their
//!   log offsets do). On ABORT they are dropped.
//! - OffsetFetch v7+ with `require_stable` (KIP-447, sent by `read_committed`
//!   consumers) answers UNSTABLE_OFFSET_COMMIT, a retriable error, for a partition with a
//!   pending transactional offset (or a commit still being written) instead of an offset
//!   that is about to change; per partition, and from v8 per group and partition.
//!   Without `require_stable` the last committed offset is returned.
//! - Loading replays the log's transactions ([`LoadedRecord`]): transactional offset
//!   records stay pending until their producer's marker; a transaction still open at the
//!   end of the log stays pending after the load.
//! - An Empty group with pending transactional offsets is not removed by offset
//!   retention, and a committed offset whose partition has one does not expire.
//!   DeleteGroups and OffsetDelete drop pending offsets of the partitions they delete
//!   and tombstone them, so a COMMIT marker written later cannot bring them back, live
//!   or after a reload.
//!
//! Producer ids, epochs and fencing belong to the log and the transaction coordinator:
//! the append of a transactional batch fails with the log's error (for instance
//! INVALID_PRODUCER_EPOCH), which is answered as is.
//!
//! # Driving it from the broker
//!
//! 1. At start-up (or when becoming leader of a `__consumer_offsets` partition), read the
//!    partition's records in offset order, up to the log end and including open
//!    transactions' records and control batches, and call
//!    [`GroupCoordinator::load_partition`] with [`LoadedRecord`]s; a partition with no
//!    data is loaded with no records. Until then its groups get NOT_COORDINATOR and FindCoordinator answers
//!    COORDINATOR_NOT_AVAILABLE. `__consumer_offsets` itself is an ordinary compacted
//!    topic with `offsets.topic.num.partitions` partitions.
//! 2. Hand each decoded request to its handler with the request's API version, a
//!    `request_id` that identifies the waiting connection, and the time in
//!    milliseconds. Versions served (the ranges of the `kafka-protocol` codecs):
//!
//!    | API | key | versions | handler |
//!    |---|---|---|---|
//!    | FindCoordinator | 10 | 0–6 | [`GroupCoordinator::handle_find_coordinator`] |
//!    | JoinGroup | 11 | 0–9 | [`GroupCoordinator::handle_join_group`] |
//!    | Heartbeat | 12 | 0–4 | [`GroupCoordinator::handle_heartbeat`] |
//!    | LeaveGroup | 13 | 0–5 | [`GroupCoordinator::handle_leave_group`] |
//!    | SyncGroup | 14 | 0–5 | [`GroupCoordinator::handle_sync_group`] |
//!    | OffsetCommit | 8 | 2–9 | [`GroupCoordinator::handle_offset_commit`] |
//!    | TxnOffsetCommit | 28 | 0–5 | [`GroupCoordinator::handle_txn_offset_commit`] |
//!    | OffsetFetch | 9 | 1–9 | [`GroupCoordinator::handle_offset_fetch`] |
//!    | DescribeGroups | 15 | 0–6 | [`GroupCoordinator::handle_describe_groups`] |
//!    | ListGroups | 16 | 0–5 | [`GroupCoordinator::handle_list_groups`] |
//!    | DeleteGroups | 42 | 0–2 | [`GroupCoordinator::handle_delete_groups`] |
//!    | OffsetDelete | 47 | 0 | [`GroupCoordinator::handle_offset_delete`] |
//!
//!    Read-only APIs and Heartbeat answer directly; the others return [`Output`]s.
//!    Authorization, and rejecting commits for topics that do not exist
//!    (UNKNOWN_TOPIC_OR_PARTITION), are the broker's business before the call.
//!    `client_host` is shown by DescribeGroups as Kafka shows it (`/127.0.0.1`).
//! 3. Perform outputs in order: send each `Respond` on its connection (drop it if the
//!    connection is gone) and append each `Append` to `__consumer_offsets` (as a
//!    transactional batch of the given producer when `transactional` is set), then
//!    report it with [`GroupCoordinator::on_append_completed`] and perform what that
//!    returns. Appends to one partition must be written and reported in output order.
//! 4. When a COMMIT or ABORT marker of a producer is durable in a `__consumer_offsets`
//!    partition this broker leads (WriteTxnMarkers), call
//!    [`GroupCoordinator::complete_transaction`].
//! 5. Call [`GroupCoordinator::tick`] every few hundred milliseconds and perform its
//!    outputs: sessions, rebalance timeouts and offset retention run from there.
//! 6. Export [`GroupCoordinator::stats`] as metrics; consumer lag is a log end offset
//!    minus [`GroupCoordinator::committed_offsets`].

mod config;
mod coordinator;
mod group;
pub mod offsets_topic;

pub use config::GroupCoordinatorConfig;
pub use coordinator::{
    CoordinatorNode, GroupCoordinator, GroupCoordinatorStats, GroupResponse, Output,
    ProducerIdAndEpoch, RECENT_REBALANCES,
};
pub use group::{CONSUMER_PROTOCOL_TYPE, GroupState};
pub use offsets_topic::{LoadedRecord, OffsetAndMetadata, OffsetsTopicRecord, RecordError};

#[cfg(test)]
mod tests;
