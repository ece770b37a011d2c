//! Transactional offset commits (TxnOffsetCommit, KIP-98/KIP-447): pending offsets, the
//! COMMIT/ABORT markers that complete them, `require_stable` fetches, and replaying
//! transactions when `__consumer_offsets` is loaded.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, ProducerId, TransactionalId, TxnOffsetCommitResponse,
};

use super::static_membership::stable_static_group;
use super::*;
use crate::{GroupState, OffsetAndMetadata, ProducerIdAndEpoch, offsets_topic};

const TXN_VERSION: i16 = 4;
const PRODUCER: i64 = 1000;
const EPOCH: i16 = 3;

/// A TxnOffsetCommit under construction.
struct TxnCommit<'a> {
    group: &'a str,
    producer_id: i64,
    member_id: &'a str,
    generation_id: i32,
    instance_id: Option<&'a str>,
    offsets: Vec<(&'a str, i32, i64, Option<&'a str>)>,
    version: i16,
}

impl<'a> TxnCommit<'a> {
    fn new(group: &'a str, offsets: &[(&'a str, i32, i64)]) -> Self {
        TxnCommit {
            group,
            producer_id: PRODUCER,
            member_id: "",
            generation_id: -1,
            instance_id: None,
            offsets: offsets.iter().map(|(t, p, o)| (*t, *p, *o, None)).collect(),
            version: TXN_VERSION,
        }
    }

    fn producer(mut self, producer_id: i64) -> Self {
        self.producer_id = producer_id;
        self
    }

    fn member(mut self, member_id: &'a str, generation_id: i32) -> Self {
        self.member_id = member_id;
        self.generation_id = generation_id;
        self
    }

    fn instance(mut self, instance_id: &'a str) -> Self {
        self.instance_id = Some(instance_id);
        self
    }

    fn metadata(mut self, metadata: &'a str) -> Self {
        for offset in &mut self.offsets {
            offset.3 = Some(metadata);
        }
        self
    }

    fn version(mut self, version: i16) -> Self {
        self.version = version;
        self
    }

    fn request(&self) -> TxnOffsetCommitRequest {
        let mut request = TxnOffsetCommitRequest::default();
        request.transactional_id = TransactionalId(s("txn"));
        request.group_id = GroupId(s(self.group));
        request.producer_id = ProducerId(self.producer_id);
        request.producer_epoch = EPOCH;
        request.generation_id = self.generation_id;
        request.member_id = s(self.member_id);
        request.group_instance_id = self.instance_id.map(s);
        let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
        for (topic, partition, offset, metadata) in &self.offsets {
            let mut p = TxnOffsetCommitRequestPartition::default();
            p.partition_index = *partition;
            p.committed_offset = *offset;
            p.committed_leader_epoch = 4;
            p.committed_metadata = metadata.map(s);
            match topics.iter_mut().find(|t| t.name.as_str() == *topic) {
                Some(t) => t.partitions.push(p),
                None => {
                    let mut t = TxnOffsetCommitRequestTopic::default();
                    t.name = TopicName(s(topic));
                    t.partitions = vec![p];
                    topics.push(t);
                }
            }
        }
        request.topics = topics;
        request
    }
}

fn txn_errors(response: &TxnOffsetCommitResponse) -> Vec<i16> {
    response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

impl Harness {
    /// Sends a TxnOffsetCommit, performs its outputs and returns the per-partition errors.
    fn txn_commit(&mut self, commit: TxnCommit<'_>) -> Vec<i16> {
        let request_id = self.request_id();
        let outputs = self.coordinator.handle_txn_offset_commit(
            commit.request(),
            commit.version,
            request_id,
            self.now_ms,
        );
        self.perform(outputs);
        match self.take_response(request_id) {
            Some(GroupResponse::TxnOffsetCommit(response)) => txn_errors(&response),
            other => panic!("expected a TxnOffsetCommit response, got {other:?}"),
        }
    }

    /// Writes `producer_id`'s COMMIT or ABORT marker to the group's partition and tells
    /// the coordinator, as the broker does for WriteTxnMarkers.
    fn write_marker(&mut self, group: &str, producer_id: i64, commit: bool) -> usize {
        let partition = offsets_topic::partition_for(group, 50);
        self.full_log
            .entry(partition)
            .or_default()
            .push(LoadedRecord::marker(producer_id, commit));
        self.coordinator
            .complete_transaction(partition, producer_id, commit, self.now_ms)
    }

    /// OffsetFetch v7 with `require_stable`: (partition error, offset).
    fn fetch_stable(&self, group: &str, topic: &str, partition: i32) -> (i16, i64) {
        let mut request = OffsetFetchRequest::default();
        request.group_id = GroupId(s(group));
        request.require_stable = true;
        let mut t = OffsetFetchRequestTopic::default();
        t.name = TopicName(s(topic));
        t.partition_indexes = vec![partition];
        request.topics = Some(vec![t]);
        let response = self.coordinator.handle_offset_fetch(request, 7);
        assert_eq!(response.error_code, 0);
        let p = &response.topics[0].partitions[0];
        (p.error_code, p.committed_offset)
    }

    fn pending_txn_offsets(&self) -> usize {
        self.coordinator.stats().pending_transactional_offsets
    }

    /// A new coordinator loading every partition from `full_log`.
    fn reloaded(&self) -> Harness {
        let mut coordinator = GroupCoordinator::new(GroupCoordinatorConfig::default(), 9);
        for partition in 0..50 {
            let records = self.full_log.get(&partition).cloned().unwrap_or_default();
            coordinator
                .load_partition(partition, records, self.now_ms)
                .unwrap();
        }
        Harness {
            coordinator,
            now_ms: self.now_ms,
            ..Harness::new()
        }
    }
}

fn unstable() -> i16 {
    code(ResponseError::UnstableOffsetCommit)
}

#[test]
fn txn_offsets_are_written_transactionally_and_pending_until_the_commit_marker() {
    let mut h = Harness::new();
    h.advance(1_000);
    let commit = TxnCommit::new("g", &[("orders", 0, 42), ("orders", 1, 17)]).metadata("m");
    let outputs =
        h.coordinator
            .handle_txn_offset_commit(commit.request(), TXN_VERSION, 77, h.now_ms);
    let value = |offset| {
        Some(offsets_topic::offset_commit_value(&OffsetAndMetadata {
            offset,
            leader_epoch: 4,
            metadata: "m".into(),
            commit_timestamp_ms: 1_000,
            expire_timestamp_ms: None,
        }))
    };
    let append_id = match outputs.as_slice() {
        [
            Output::Append {
                append_id,
                partition,
                records,
                transactional,
            },
        ] => {
            assert_eq!(*partition, offsets_topic::partition_for("g", 50));
            assert_eq!(
                *transactional,
                Some(ProducerIdAndEpoch {
                    producer_id: PRODUCER,
                    producer_epoch: EPOCH
                })
            );
            assert_eq!(
                records,
                &[
                    OffsetsTopicRecord {
                        key: offsets_topic::offset_commit_key("g", "orders", 0),
                        value: value(42),
                    },
                    OffsetsTopicRecord {
                        key: offsets_topic::offset_commit_key("g", "orders", 1),
                        value: value(17),
                    },
                ]
            );
            *append_id
        }
        other => panic!("expected one transactional append, got {other:?}"),
    };
    // Pending (and unstable) already while being written.
    assert_eq!(h.pending_txn_offsets(), 2);
    assert_eq!(h.fetch_stable("g", "orders", 0), (unstable(), -1));

    // Answered once written; still not visible: the transaction is open.
    let outputs = h.coordinator.on_append_completed(append_id, None, h.now_ms);
    match outputs.as_slice() {
        [
            Output::Respond {
                request_id: 77,
                response: GroupResponse::TxnOffsetCommit(response),
            },
        ] => assert_eq!(txn_errors(response), [0, 0]),
        other => panic!("expected the answer, got {other:?}"),
    }
    assert_eq!(h.fetch("g", "orders", 0), (-1, String::new()));
    assert_eq!(h.fetch_stable("g", "orders", 0), (unstable(), -1));
    assert_eq!(h.fetch_stable("g", "orders", 1), (unstable(), -1));
    assert_eq!(h.fetch_stable("g", "orders", 2), (0, -1));
    assert_eq!(h.coordinator.committed_offsets("g"), []);
    assert_eq!(h.coordinator.stats().offset_commits_total, 2);

    // A marker on another partition, or of another producer, changes nothing.
    let partition = offsets_topic::partition_for("g", 50);
    assert_eq!(
        h.coordinator
            .complete_transaction((partition + 1) % 50, PRODUCER, true, h.now_ms),
        0
    );
    assert_eq!(
        h.coordinator
            .complete_transaction(partition, PRODUCER + 1, true, h.now_ms),
        0
    );
    assert_eq!(h.pending_txn_offsets(), 2);

    assert_eq!(h.write_marker("g", PRODUCER, true), 1);
    assert_eq!(h.fetch("g", "orders", 0), (42, "m".to_owned()));
    assert_eq!(h.fetch("g", "orders", 1), (17, "m".to_owned()));
    assert_eq!(h.fetch_stable("g", "orders", 0), (0, 42));
    assert_eq!(h.pending_txn_offsets(), 0);
    assert_eq!(h.coordinator.stats().committed_offsets, 2);
    // A second marker for the same producer finds nothing.
    assert_eq!(h.write_marker("g", PRODUCER, true), 0);
}

#[test]
fn an_aborted_transaction_drops_its_offsets() {
    let mut h = Harness::new();
    h.commit("g", "", -1, &[("t", 0, 5, None)]);
    assert_eq!(h.txn_commit(TxnCommit::new("g", &[("t", 0, 10)])), [0]);
    assert_eq!(h.fetch("g", "t", 0).0, 5, "the last committed offset");
    assert_eq!(h.fetch_stable("g", "t", 0), (unstable(), -1));
    assert_eq!(h.write_marker("g", PRODUCER, false), 1);
    assert_eq!(h.fetch_stable("g", "t", 0), (0, 5));
    assert_eq!(h.pending_txn_offsets(), 0);
    // The next transaction of the producer starts afresh.
    assert_eq!(h.txn_commit(TxnCommit::new("g", &[("t", 0, 11)])), [0]);
    assert_eq!(h.write_marker("g", PRODUCER, true), 1);
    assert_eq!(h.fetch("g", "t", 0).0, 11);
}

#[test]
fn a_plain_commit_written_after_the_txn_record_wins_over_the_committed_transaction() {
    let mut h = Harness::new();
    // Transactional record first, plain commit after it: the plain one stays.
    assert_eq!(h.txn_commit(TxnCommit::new("g", &[("t", 0, 10)])), [0]);
    assert_eq!(h.commit("g", "", -1, &[("t", 0, 20, None)]), [0]);
    assert_eq!(h.fetch("g", "t", 0).0, 20);
    assert_eq!(h.fetch_stable("g", "t", 0), (unstable(), -1));
    assert_eq!(h.write_marker("g", PRODUCER, true), 1);
    assert_eq!(h.fetch_stable("g", "t", 0), (0, 20));

    // Plain commit first, transactional record after it: the transaction's offset wins.
    assert_eq!(h.commit("g", "", -1, &[("t", 1, 20, None)]), [0]);
    assert_eq!(h.txn_commit(TxnCommit::new("g", &[("t", 1, 10)])), [0]);
    assert_eq!(h.write_marker("g", PRODUCER, true), 1);
    assert_eq!(h.fetch("g", "t", 1).0, 10);

    // A reload orders them the same way.
    let h2 = h.reloaded();
    assert_eq!(h2.fetch("g", "t", 0).0, 20);
    assert_eq!(h2.fetch("g", "t", 1).0, 10);
    assert_eq!(h2.pending_txn_offsets(), 0);
}

#[test]
fn the_latest_txn_commit_of_a_partition_within_a_transaction_counts() {
    let mut h = Harness::new();
    assert_eq!(h.txn_commit(TxnCommit::new("g", &[("t", 0, 10)])), [0]);
    assert_eq!(h.txn_commit(TxnCommit::new("g", &[("t", 0, 12)])), [0]);
    assert_eq!(h.pending_txn_offsets(), 1);
    assert_eq!(h.write_marker("g", PRODUCER, true), 1);
    assert_eq!(h.fetch("g", "t", 0).0, 12);
    assert_eq!(h.reloaded().fetch("g", "t", 0).0, 12);
}

#[test]
fn markers_complete_only_their_producer_in_their_partition() {
    let mut h = Harness::new();
    let partition = offsets_topic::partition_for("g", 50);
    let same_partition = (0..1000)
        .map(|i| format!("g{i}"))
        .find(|g| offsets_topic::partition_for(g, 50) == partition)
        .unwrap();
    let other_partition = (0..1000)
        .map(|i| format!("g{i}"))
        .find(|g| offsets_topic::partition_for(g, 50) != partition)
        .unwrap();
    assert_eq!(h.txn_commit(TxnCommit::new("g", &[("t", 0, 1)])), [0]);
    assert_eq!(
        h.txn_commit(TxnCommit::new("g", &[("t", 1, 2)]).producer(7)),
        [0]
    );
    assert_eq!(
        h.txn_commit(TxnCommit::new(&same_partition, &[("t", 0, 3)])),
        [0]
    );
    assert_eq!(
        h.txn_commit(TxnCommit::new(&other_partition, &[("t", 0, 4)])),
        [0]
    );

    // One transaction may span groups of a partition: both complete.
    assert_eq!(h.write_marker("g", PRODUCER, true), 2);
    assert_eq!(h.fetch("g", "t", 0).0, 1);
    assert_eq!(h.fetch(&same_partition, "t", 0).0, 3);
    // The other producer's transaction and the other partition's group are still open.
    assert_eq!(h.fetch_stable("g", "t", 1), (unstable(), -1));
    assert_eq!(h.fetch_stable(&other_partition, "t", 0), (unstable(), -1));
    assert_eq!(h.pending_txn_offsets(), 2);

    assert_eq!(h.write_marker("g", 7, false), 1);
    assert_eq!(h.fetch_stable("g", "t", 1), (0, -1));
    assert_eq!(h.write_marker(&other_partition, PRODUCER, true), 1);
    assert_eq!(h.fetch(&other_partition, "t", 0).0, 4);
    assert_eq!(h.pending_txn_offsets(), 0);
}

#[test]
fn require_stable_flags_only_partitions_with_pending_offsets() {
    let mut h = Harness::new();
    h.commit("g", "", -1, &[("a", 0, 1, None), ("a", 1, 2, None)]);
    h.commit("h", "", -1, &[("a", 0, 3, None)]);
    assert_eq!(h.txn_commit(TxnCommit::new("g", &[("a", 1, 5)])), [0]);
    assert_eq!(h.txn_commit(TxnCommit::new("g", &[("b", 0, 6)])), [0]);

    // v7, chosen partitions: only those with a pending offset are unstable.
    assert_eq!(h.fetch_stable("g", "a", 0), (0, 1));
    assert_eq!(h.fetch_stable("g", "a", 1), (unstable(), -1));
    assert_eq!(h.fetch_stable("g", "b", 0), (unstable(), -1));
    // Without require_stable the committed offset is returned.
    assert_eq!(h.fetch("g", "a", 1).0, 2);
    assert_eq!(h.fetch("g", "b", 0).0, -1);
    // Before v7 there is no require_stable: the flag is ignored.
    let mut old = OffsetFetchRequest::default();
    old.group_id = GroupId(s("g"));
    old.topics = None;
    old.require_stable = true;
    let response = h.coordinator.handle_offset_fetch(old, 6);
    assert_eq!(response.topics[0].partitions.len(), 2);
    assert!(
        response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .all(|p| p.error_code == 0)
    );

    // v7, all partitions: the committed ones, the unstable one flagged (a partition that
    // only has an offset in the open transaction is not listed, as in Kafka).
    let mut all = OffsetFetchRequest::default();
    all.group_id = GroupId(s("g"));
    all.topics = None;
    all.require_stable = true;
    let response = h.coordinator.handle_offset_fetch(all, 7);
    let listed: Vec<(String, i32, i16, i64)> = response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.to_string(),
                    p.partition_index,
                    p.error_code,
                    p.committed_offset,
                )
            })
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("a".to_owned(), 0, 0, 1),
            ("a".to_owned(), 1, unstable(), -1)
        ]
    );

    // v8: per group and partition.
    let mut request = OffsetFetchRequest::default();
    request.require_stable = true;
    request.groups = ["g", "h"]
        .iter()
        .map(|g| {
            let mut group = OffsetFetchRequestGroup::default();
            group.group_id = GroupId(s(g));
            let mut topic = OffsetFetchRequestTopics::default();
            topic.name = TopicName(s("a"));
            topic.partition_indexes = vec![0, 1];
            group.topics = Some(vec![topic]);
            group
        })
        .collect();
    let response = h.coordinator.handle_offset_fetch(request, 8);
    let per_group: Vec<(String, Vec<(i16, i64)>)> = response
        .groups
        .iter()
        .map(|g| {
            assert_eq!(g.error_code, 0);
            (
                g.group_id.to_string(),
                g.topics[0]
                    .partitions
                    .iter()
                    .map(|p| (p.error_code, p.committed_offset))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        per_group,
        [
            ("g".to_owned(), vec![(0, 1), (unstable(), -1)]),
            ("h".to_owned(), vec![(0, 3), (0, -1)]),
        ]
    );
}

#[test]
fn a_plain_commit_being_written_is_unstable_too() {
    // Kafka's classic coordinator also counts commits in flight
    // (`hasPendingOffsetCommitsForTopicPartition`).
    let mut h = Harness::new();
    h.commit("g", "", -1, &[("t", 0, 1, None)]);
    let request = Harness::commit_request("g", "", -1, &[("t", 0, 2, None)]);
    let outputs = h
        .coordinator
        .handle_offset_commit(request, COMMIT_VERSION, 900, h.now_ms);
    assert_eq!(h.fetch_stable("g", "t", 0), (unstable(), -1));
    assert_eq!(h.fetch("g", "t", 0).0, 1);
    h.perform(outputs);
    assert_eq!(h.fetch_stable("g", "t", 0), (0, 2));
}

#[test]
fn a_failed_append_drops_the_pending_offsets_and_answers_the_error() {
    let mut h = Harness::new();
    h.fail_appends = Some(ResponseError::NotLeaderOrFollower);
    assert_eq!(
        h.txn_commit(TxnCommit::new("g", &[("t", 0, 1), ("t", 1, 2)])),
        [code(ResponseError::NotCoordinator); 2]
    );
    assert_eq!(h.pending_txn_offsets(), 0);
    assert_eq!(h.fetch_stable("g", "t", 0), (0, -1));
    assert_eq!(h.coordinator.stats().offset_commits_total, 0);
    h.fail_appends = Some(ResponseError::RequestTimedOut);
    assert_eq!(
        h.txn_commit(TxnCommit::new("g", &[("t", 0, 1)])),
        [code(ResponseError::CoordinatorNotAvailable)]
    );
    h.fail_appends = Some(ResponseError::MessageTooLarge);
    assert_eq!(
        h.txn_commit(TxnCommit::new("g", &[("t", 0, 1)])),
        [code(ResponseError::InvalidCommitOffsetSize)]
    );
    // The log's own verdicts (a fenced producer) pass through.
    h.fail_appends = Some(ResponseError::InvalidProducerEpoch);
    assert_eq!(
        h.txn_commit(TxnCommit::new("g", &[("t", 0, 1)])),
        [code(ResponseError::InvalidProducerEpoch)]
    );
    h.fail_appends = None;
    assert_eq!(h.write_marker("g", PRODUCER, true), 0);
    assert_eq!(h.fetch("g", "t", 0).0, -1);

    // A failed retry drops only what it wrote, not the earlier appended offset of
    // another partition.
    assert_eq!(h.txn_commit(TxnCommit::new("g", &[("t", 0, 5)])), [0]);
    h.fail_appends = Some(ResponseError::NotLeaderOrFollower);
    assert_eq!(
        h.txn_commit(TxnCommit::new("g", &[("t", 1, 6)])),
        [code(ResponseError::NotCoordinator)]
    );
    h.fail_appends = None;
    assert_eq!(h.write_marker("g", PRODUCER, true), 1);
    assert_eq!(h.fetch("g", "t", 0).0, 5);
    assert_eq!(h.fetch("g", "t", 1).0, -1);
}

#[test]
fn metadata_too_large_rejects_only_that_partition() {
    let mut h = Harness::with_config(GroupCoordinatorConfig {
        offset_metadata_max_bytes: 3,
        group_initial_rebalance_delay_ms: 0,
        ..GroupCoordinatorConfig::default()
    });
    let mut commit = TxnCommit::new("g", &[("t", 0, 1), ("t", 1, 2)]);
    commit.offsets[1].3 = Some("toolong");
    assert_eq!(
        h.txn_commit(commit),
        [0, code(ResponseError::OffsetMetadataTooLarge)]
    );
    assert_eq!(h.pending_txn_offsets(), 1);
    // Nothing acceptable: answered at once, nothing written.
    let mut commit = TxnCommit::new("g", &[("t", 1, 2)]);
    commit.offsets[0].3 = Some("toolong");
    let outputs =
        h.coordinator
            .handle_txn_offset_commit(commit.request(), TXN_VERSION, 5, h.now_ms);
    assert!(matches!(outputs.as_slice(), [Output::Respond { .. }]));
}

#[test]
fn a_txn_commit_creates_an_unknown_group_empty() {
    let mut h = Harness::new();
    assert_eq!(h.coordinator.group_state("new"), None);
    assert_eq!(h.txn_commit(TxnCommit::new("new", &[("t", 0, 1)])), [0]);
    assert_eq!(h.coordinator.group_state("new"), Some(GroupState::Empty));
    // Old versions carry no generation: created too.
    assert_eq!(
        h.txn_commit(TxnCommit::new("old", &[("t", 0, 1)]).version(0)),
        [0]
    );
    assert_eq!(h.coordinator.group_state("old"), Some(GroupState::Empty));
    // The group can then be joined as usual, and commits stay pending meanwhile.
    let (_, generation) = h.stable_group("new", &["c1"]);
    assert_eq!(generation, 1);
    assert_eq!(h.fetch_stable("new", "t", 0), (unstable(), -1));
    assert_eq!(h.write_marker("new", PRODUCER, true), 1);
    assert_eq!(h.fetch("new", "t", 0).0, 1);

    // A generation for a group that does not exist is stale: nothing is created.
    assert_eq!(
        h.txn_commit(TxnCommit::new("ghost", &[("t", 0, 1)]).member("m", 2)),
        [code(ResponseError::IllegalGeneration)]
    );
    assert_eq!(h.coordinator.group_state("ghost"), None);
}

#[test]
fn requests_are_validated_like_offset_commits() {
    let mut h = Harness::new();
    assert_eq!(
        h.txn_commit(TxnCommit::new("", &[("t", 0, 1)])),
        [code(ResponseError::InvalidGroupId)]
    );
    assert_eq!(
        h.txn_commit(TxnCommit::new("g", &[("t", 0, 1)]).producer(-1)),
        [code(ResponseError::InvalidRequest)]
    );
    let partition = offsets_topic::partition_for("g", 50);
    let outputs = h.coordinator.unload_partition(partition);
    h.perform(outputs);
    assert_eq!(
        h.txn_commit(TxnCommit::new("g", &[("t", 0, 1)])),
        [code(ResponseError::NotCoordinator)]
    );
    assert_eq!(h.coordinator.group_state("g"), None);
}

#[test]
fn v3_carries_the_consumer_generation_and_it_is_checked() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["c1", "c2"]);
    let ok = |h: &mut Harness, commit: TxnCommit<'_>| h.txn_commit(commit) == [0];
    assert!(ok(
        &mut h,
        TxnCommit::new("g", &[("t", 0, 1)])
            .member(&ids[0], generation)
            .version(3)
    ));
    assert_eq!(
        h.txn_commit(
            TxnCommit::new("g", &[("t", 0, 1)])
                .member(&ids[0], generation - 1)
                .version(3)
        ),
        [code(ResponseError::IllegalGeneration)]
    );
    assert_eq!(
        h.txn_commit(
            TxnCommit::new("g", &[("t", 0, 1)])
                .member("stranger", generation)
                .version(5)
        ),
        [code(ResponseError::UnknownMemberId)]
    );
    // A generation without member id is someone outside the group.
    assert_eq!(
        h.txn_commit(TxnCommit::new("g", &[("t", 0, 1)]).member("", generation)),
        [code(ResponseError::UnknownMemberId)]
    );
    // Producers older than KIP-447 (or not consuming through the group) send neither:
    // accepted even though the group has members.
    assert!(ok(&mut h, TxnCommit::new("g", &[("t", 1, 1)])));
    // Before v3 the fields are not on the wire, so they are not checked.
    assert!(ok(
        &mut h,
        TxnCommit::new("g", &[("t", 2, 1)])
            .member("stranger", 99)
            .version(2)
    ));

    // During the sync phase the current generation may still commit transactionally
    // (OffsetCommit would get REBALANCE_IN_PROGRESS).
    let r1 = h.send_join(Join::new("g", &ids[0]).client("c1"));
    let r2 = h.send_join(Join::new("g", &ids[1]).client("c2"));
    h.join_response(r1).unwrap();
    h.join_response(r2).unwrap();
    assert_eq!(
        h.coordinator.group_state("g"),
        Some(GroupState::CompletingRebalance)
    );
    assert!(ok(
        &mut h,
        TxnCommit::new("g", &[("t", 3, 1)]).member(&ids[1], generation + 1)
    ));
    assert_eq!(
        h.txn_commit(TxnCommit::new("g", &[("t", 3, 1)]).member(&ids[1], generation)),
        [code(ResponseError::IllegalGeneration)]
    );
}

#[test]
fn a_fenced_static_member_cannot_commit_transactionally() {
    let mut h = Harness::new();
    let ids = stable_static_group(&mut h, "g", &["i1", "i2"], 8);
    assert_eq!(
        h.txn_commit(
            TxnCommit::new("g", &[("t", 0, 1)])
                .member(&ids[0], 1)
                .instance("i1")
        ),
        [0]
    );
    // An old instance of i1 (another member id) is a zombie.
    assert_eq!(
        h.txn_commit(
            TxnCommit::new("g", &[("t", 0, 1)])
                .member("i1-old", 1)
                .instance("i1")
        ),
        [code(ResponseError::FencedInstanceId)]
    );
    // Before v3 there is no instance id to check.
    assert_eq!(
        h.txn_commit(
            TxnCommit::new("g", &[("t", 0, 1)])
                .member("i1-old", 1)
                .instance("i1")
                .version(2)
        ),
        [0]
    );
}

#[test]
fn loading_replays_transactions_up_to_their_markers() {
    let offset = |offset: i64| OffsetAndMetadata {
        offset,
        leader_epoch: -1,
        metadata: format!("m{offset}"),
        commit_timestamp_ms: 0,
        expire_timestamp_ms: None,
    };
    let record = |group: &str, partition: i32, value: Option<i64>| OffsetsTopicRecord {
        key: offsets_topic::offset_commit_key(group, "t", partition),
        value: value.map(|v| offsets_topic::offset_commit_value(&offset(v))),
    };
    let plain = |group: &str, partition: i32, value: i64| {
        LoadedRecord::record(record(group, partition, Some(value)))
    };
    let txn = |group: &str, partition: i32, value: i64, producer: i64| {
        LoadedRecord::transactional(record(group, partition, Some(value)), producer)
    };
    let log = vec![
        plain("g", 0, 1),
        plain("g", 1, 1),
        plain("g", 2, 1),
        // Producer 1 commits partitions 0 and 1 (and offsets of "txn-only", a group known
        // from nothing else).
        txn("g", 0, 10, 1),
        txn("g", 1, 10, 1),
        txn("txn-only", 0, 7, 1),
        // Producer 2 aborts.
        txn("g", 2, 20, 2),
        // A plain commit written after producer 1's record: it wins over the transaction.
        plain("g", 1, 11),
        // Records of producer 3, open at the end of the log.
        txn("g", 3, 30, 3),
        txn("g", 2, 31, 3),
        // A plain record of an idempotent (non-transactional) batch counts at once.
        LoadedRecord::record(record("g", 4, Some(40))),
        LoadedRecord::marker(2, false),
        LoadedRecord::marker(1, true),
        // A marker without pending offsets is ignored.
        LoadedRecord::marker(99, true),
        // Producer 4 commits an offset that a later tombstone deletes before its marker.
        txn("g", 5, 50, 4),
        LoadedRecord::record(record("g", 5, None)),
        LoadedRecord::marker(4, true),
        // Producer 5's group is deleted while the transaction is open.
        txn("deleted", 0, 60, 5),
        LoadedRecord::record(record("deleted", 0, None)),
    ];
    let mut coordinator = GroupCoordinator::new(GroupCoordinatorConfig::default(), 0);
    for partition in 0..50 {
        let records: Vec<LoadedRecord> = log
            .iter()
            .filter(|r| match r {
                LoadedRecord::Record { record, .. } => {
                    match offsets_topic::decode_key(&record.key).unwrap() {
                        offsets_topic::OffsetsTopicKey::OffsetCommit { group, .. } => {
                            offsets_topic::partition_for(&group, 50) == partition
                        }
                        _ => false,
                    }
                }
                LoadedRecord::Marker { .. } => true,
            })
            .cloned()
            .collect();
        coordinator.load_partition(partition, records, 0).unwrap();
    }
    let mut h = Harness {
        coordinator,
        ..Harness::new()
    };
    assert_eq!(h.fetch("g", "t", 0), (10, "m10".to_owned()));
    assert_eq!(h.fetch("g", "t", 1), (11, "m11".to_owned()));
    assert_eq!(h.fetch("g", "t", 2), (1, "m1".to_owned()));
    assert_eq!(h.fetch("g", "t", 3), (-1, String::new()));
    assert_eq!(h.fetch("g", "t", 4).0, 40);
    assert_eq!(h.fetch("g", "t", 5).0, -1);
    assert_eq!(h.fetch("txn-only", "t", 0).0, 7);
    assert_eq!(
        h.coordinator.group_state("txn-only"),
        Some(GroupState::Empty)
    );
    assert_eq!(h.coordinator.group_state("deleted"), None);

    // Producer 3's transaction is still open.
    assert_eq!(h.fetch_stable("g", "t", 2), (unstable(), -1));
    assert_eq!(h.fetch_stable("g", "t", 3), (unstable(), -1));
    assert_eq!(h.fetch_stable("g", "t", 0), (0, 10));
    assert_eq!(h.pending_txn_offsets(), 2);
    // Its marker arrives after the load.
    assert_eq!(h.write_marker("g", 3, true), 1);
    assert_eq!(h.fetch("g", "t", 2).0, 31);
    assert_eq!(h.fetch("g", "t", 3).0, 30);
    assert_eq!(h.pending_txn_offsets(), 0);
}

#[test]
fn a_group_known_only_from_an_open_transaction_is_loaded_with_it() {
    let mut h = Harness::new();
    assert_eq!(h.txn_commit(TxnCommit::new("g", &[("t", 0, 5)])), [0]);
    let mut h2 = h.reloaded();
    assert_eq!(h2.coordinator.group_state("g"), Some(GroupState::Empty));
    assert_eq!(h2.fetch_stable("g", "t", 0), (unstable(), -1));
    assert_eq!(h2.write_marker("g", PRODUCER, false), 1);
    assert_eq!(h2.fetch_stable("g", "t", 0), (0, -1));

    // An aborted transaction leaves nothing to load.
    assert_eq!(h.write_marker("g", PRODUCER, false), 1);
    let h3 = h.reloaded();
    assert_eq!(h3.coordinator.group_state("g"), None);
}

#[test]
fn a_reload_rebuilds_what_the_running_coordinator_holds() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["c1"]);
    h.commit("g", &ids[0], generation, &[("t", 0, 1, None)]);
    assert_eq!(
        h.txn_commit(TxnCommit::new("g", &[("t", 0, 2), ("t", 1, 2)]).member(&ids[0], generation)),
        [0, 0]
    );
    assert_eq!(
        h.txn_commit(TxnCommit::new("g", &[("t", 2, 3)]).producer(8)),
        [0]
    );
    h.commit("g", &ids[0], generation, &[("t", 1, 4, None)]);
    assert_eq!(h.write_marker("g", PRODUCER, true), 1);
    assert_eq!(
        h.txn_commit(TxnCommit::new("g", &[("t", 3, 5)]).producer(9)),
        [0]
    );
    assert_eq!(h.write_marker("g", 9, false), 1);
    h.commit("other", "", -1, &[("t", 0, 6, None)]);
    assert_eq!(h.txn_commit(TxnCommit::new("other", &[("t", 0, 7)])), [0]);

    let h2 = h.reloaded();
    for group in ["g", "other"] {
        assert_eq!(
            h2.coordinator.committed_offsets(group),
            h.coordinator.committed_offsets(group),
            "{group}"
        );
        for partition in 0..4 {
            assert_eq!(
                h2.fetch_stable(group, "t", partition),
                h.fetch_stable(group, "t", partition),
                "{group} t-{partition}"
            );
        }
    }
    assert_eq!(
        h.coordinator.committed_offsets("g"),
        [("t".to_owned(), 0, 2), ("t".to_owned(), 1, 4),]
    );
    assert_eq!(h2.pending_txn_offsets(), 2);
    assert_eq!(h2.coordinator.group_state("g"), Some(GroupState::Stable));
}

fn retention_config() -> GroupCoordinatorConfig {
    GroupCoordinatorConfig {
        group_initial_rebalance_delay_ms: 0,
        offsets_retention_minutes: 1,
        offsets_retention_check_interval_ms: 1_000,
        ..GroupCoordinatorConfig::default()
    }
}

#[test]
fn retention_keeps_a_group_and_partitions_with_an_open_transaction() {
    let mut h = Harness::with_config(retention_config());
    h.commit("g", "", -1, &[("t", 0, 1, None), ("t", 1, 1, None)]);
    assert_eq!(h.txn_commit(TxnCommit::new("g", &[("t", 1, 2)])), [0]);
    assert_eq!(
        h.txn_commit(TxnCommit::new("txn-only", &[("t", 0, 3)])),
        [0]
    );
    h.advance(61_000);
    // The offset without a pending transactional one expired; the other is kept.
    assert_eq!(h.fetch("g", "t", 0).0, -1);
    assert_eq!(h.fetch("g", "t", 1).0, 1);
    // A group that only has offsets in an open transaction is not removed.
    assert_eq!(
        h.coordinator.group_state("txn-only"),
        Some(GroupState::Empty)
    );
    assert_eq!(h.pending_txn_offsets(), 2);

    assert_ne!(
        offsets_topic::partition_for("g", 50),
        offsets_topic::partition_for("txn-only", 50)
    );
    assert_eq!(h.write_marker("g", PRODUCER, true), 1);
    assert_eq!(h.write_marker("txn-only", PRODUCER, true), 1);
    assert_eq!(h.fetch("g", "t", 1).0, 2);
    assert_eq!(h.fetch("txn-only", "t", 0).0, 3);
    // Committed at the marker, but their commit time is the TxnOffsetCommit's.
    h.advance(1_000);
    assert_eq!(h.coordinator.group_state("g"), None);
    assert_eq!(h.coordinator.group_state("txn-only"), None);
}

#[test]
fn an_aborted_transaction_lets_its_empty_group_expire() {
    let mut h = Harness::with_config(retention_config());
    assert_eq!(h.txn_commit(TxnCommit::new("g", &[("t", 0, 3)])), [0]);
    h.advance(120_000);
    assert_eq!(h.coordinator.group_state("g"), Some(GroupState::Empty));
    assert_eq!(h.write_marker("g", PRODUCER, false), 1);
    h.advance(1_000);
    assert_eq!(h.coordinator.group_state("g"), None);
}

#[test]
fn deleting_a_group_drops_and_tombstones_its_open_transactional_offsets() {
    let mut h = Harness::new();
    h.commit("g", "", -1, &[("t", 0, 1, None)]);
    assert_eq!(
        h.txn_commit(TxnCommit::new("g", &[("t", 0, 2), ("t", 1, 2)])),
        [0, 0]
    );
    let partition = offsets_topic::partition_for("g", 50);
    let before = h.log[&partition].len();
    let mut request = DeleteGroupsRequest::default();
    request.groups_names = vec![GroupId(s("g"))];
    let outputs = h.coordinator.handle_delete_groups(request, 600, h.now_ms);
    h.perform(outputs);
    match h.take_response(600) {
        Some(GroupResponse::DeleteGroups(response)) => {
            assert_eq!(response.results[0].error_code, 0)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        h.log[&partition][before..],
        [
            OffsetsTopicRecord {
                key: offsets_topic::offset_commit_key("g", "t", 0),
                value: None,
            },
            OffsetsTopicRecord {
                key: offsets_topic::offset_commit_key("g", "t", 1),
                value: None,
            },
        ]
    );
    assert_eq!(h.coordinator.group_state("g"), None);
    assert_eq!(h.pending_txn_offsets(), 0);
    // The transaction's COMMIT marker finds nothing, now and after a reload.
    assert_eq!(h.write_marker("g", PRODUCER, true), 0);
    assert_eq!(h.fetch("g", "t", 1).0, -1);
    let h2 = h.reloaded();
    assert_eq!(h2.coordinator.group_state("g"), None);
    assert_eq!(h2.fetch("g", "t", 1).0, -1);
}

#[test]
fn offset_delete_drops_open_transactional_offsets_of_the_partition() {
    let mut h = Harness::new();
    h.commit("g", "", -1, &[("t", 0, 1, None)]);
    assert_eq!(h.txn_commit(TxnCommit::new("g", &[("u", 0, 2)])), [0]);
    let mut request = OffsetDeleteRequest::default();
    request.group_id = GroupId(s("g"));
    let mut topic = OffsetDeleteRequestTopic::default();
    topic.name = TopicName(s("u"));
    let mut partition = OffsetDeleteRequestPartition::default();
    partition.partition_index = 0;
    topic.partitions = vec![partition];
    request.topics = vec![topic];
    let outputs = h.coordinator.handle_offset_delete(request, 700, h.now_ms);
    h.perform(outputs);
    let partition = offsets_topic::partition_for("g", 50);
    assert_eq!(
        h.log[&partition].last().unwrap(),
        &OffsetsTopicRecord {
            key: offsets_topic::offset_commit_key("g", "u", 0),
            value: None,
        }
    );
    assert_eq!(h.pending_txn_offsets(), 0);
    assert_eq!(h.fetch_stable("g", "u", 0), (0, -1));
    assert_eq!(h.write_marker("g", PRODUCER, true), 0);
    assert_eq!(h.fetch("g", "u", 0).0, -1);
    assert_eq!(h.reloaded().fetch("g", "u", 0).0, -1);
    assert_eq!(h.fetch("g", "t", 0).0, 1);
}

#[test]
fn a_plain_commit_in_flight_during_offset_delete_is_not_applied() {
    // Kafka applies only staged commits: the tombstone follows the commit in the log.
    let mut h = Harness::new();
    h.commit("g", "", -1, &[("t", 0, 1, None), ("t", 1, 1, None)]);
    let request = Harness::commit_request("g", "", -1, &[("t", 0, 9, None)]);
    let commit = h
        .coordinator
        .handle_offset_commit(request, COMMIT_VERSION, 800, h.now_ms);
    let mut request = OffsetDeleteRequest::default();
    request.group_id = GroupId(s("g"));
    let mut topic = OffsetDeleteRequestTopic::default();
    topic.name = TopicName(s("t"));
    let mut partition = OffsetDeleteRequestPartition::default();
    partition.partition_index = 0;
    topic.partitions = vec![partition];
    request.topics = vec![topic];
    let delete = h.coordinator.handle_offset_delete(request, 801, h.now_ms);
    h.perform(commit);
    h.perform(delete);
    match h.take_response(800) {
        Some(GroupResponse::OffsetCommit(response)) => assert_eq!(commit_errors(&response), [0]),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.fetch("g", "t", 0).0, -1);
    assert_eq!(h.fetch("g", "t", 1).0, 1);
    let mut reloaded = GroupCoordinator::new(GroupCoordinatorConfig::default(), 1);
    let partition = offsets_topic::partition_for("g", 50);
    reloaded
        .load_partition(partition, h.log[&partition].clone(), 0)
        .unwrap();
    assert_eq!(
        reloaded.committed_offsets("g"),
        h.coordinator.committed_offsets("g")
    );
}

#[test]
fn a_marker_before_the_txn_record_is_written_commits_nothing() {
    let mut h = Harness::new();
    let commit = TxnCommit::new("g", &[("t", 0, 1)]);
    let outputs =
        h.coordinator
            .handle_txn_offset_commit(commit.request(), TXN_VERSION, 900, h.now_ms);
    assert_eq!(h.write_marker("g", PRODUCER, true), 1);
    assert_eq!(h.pending_txn_offsets(), 0);
    h.perform(outputs);
    match h.take_response(900) {
        Some(GroupResponse::TxnOffsetCommit(response)) => assert_eq!(txn_errors(&response), [0]),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.fetch_stable("g", "t", 0), (0, -1));
    assert_eq!(h.pending_txn_offsets(), 0);
}

#[test]
fn unloading_forgets_open_transactions_and_loading_brings_them_back() {
    let mut h = Harness::new();
    assert_eq!(h.txn_commit(TxnCommit::new("g", &[("t", 0, 5)])), [0]);
    let partition = offsets_topic::partition_for("g", 50);
    let outputs = h.coordinator.unload_partition(partition);
    h.perform(outputs);
    assert_eq!(h.write_marker("g", PRODUCER, true), 0);
    let records = h.full_log[&partition].clone();
    h.coordinator
        .load_partition(partition, records, h.now_ms)
        .unwrap();
    // The log has the marker written while unloaded.
    assert_eq!(h.fetch_stable("g", "t", 0), (0, 5));
}

#[test]
fn txn_offset_commit_answers_encode_at_every_version() {
    let mut h = Harness::new();
    for version in 0..=5 {
        let ok = TxnCommit::new("g", &[("t", 0, 1), ("u", 1, 2)]).version(version);
        let request_id = h.request_id();
        let outputs =
            h.coordinator
                .handle_txn_offset_commit(ok.request(), version, request_id, h.now_ms);
        h.perform(outputs);
        let response = h.take_response(request_id).unwrap();
        let GroupResponse::TxnOffsetCommit(r) = &response else {
            panic!("{response:?}");
        };
        assert_eq!(txn_errors(r), [0, 0]);
        super::encoding::encodes_response(&response, version);

        let rejected = TxnCommit::new("", &[("t", 0, 1)]).version(version);
        let request_id = h.request_id();
        let outputs = h.coordinator.handle_txn_offset_commit(
            rejected.request(),
            version,
            request_id,
            h.now_ms,
        );
        h.perform(outputs);
        super::encoding::encodes_response(&h.take_response(request_id).unwrap(), version);
    }
}

#[test]
fn a_partition_named_twice_in_one_commit_keeps_its_last_offset_as_the_log_does() {
    let mut h = Harness::new();
    assert_eq!(
        h.commit("g", "", -1, &[("t", 0, 1, None), ("t", 0, 2, None)]),
        [0, 0]
    );
    assert_eq!(h.fetch("g", "t", 0).0, 2);
    assert_eq!(
        h.txn_commit(TxnCommit::new("g", &[("t", 1, 3), ("t", 1, 4)])),
        [0, 0]
    );
    assert_eq!(h.write_marker("g", PRODUCER, true), 1);
    assert_eq!(h.fetch("g", "t", 1).0, 4);
    let h2 = h.reloaded();
    assert_eq!(
        h2.coordinator.committed_offsets("g"),
        h.coordinator.committed_offsets("g")
    );
}

#[test]
fn plain_records_load_as_records_of_ordinary_batches() {
    let record = OffsetsTopicRecord {
        key: offsets_topic::offset_commit_key("g", "t", 0),
        value: None,
    };
    assert_eq!(
        LoadedRecord::from(record.clone()),
        LoadedRecord::Record {
            record: record.clone(),
            transactional_producer_id: None,
        }
    );
    assert_eq!(
        LoadedRecord::transactional(record.clone(), 5),
        LoadedRecord::Record {
            record,
            transactional_producer_id: Some(5),
        }
    );
    assert_eq!(
        LoadedRecord::marker(5, false),
        LoadedRecord::Marker {
            producer_id: 5,
            commit: false,
        }
    );
}
