//! OffsetCommit, OffsetFetch, OffsetDelete, loading `__consumer_offsets` and retention.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};

use super::*;
use crate::{GroupState, OffsetAndMetadata, offsets_topic};

#[test]
fn a_commit_is_acknowledged_only_after_its_records_are_written() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["c1"]);
    h.advance(1_000);
    let request = Harness::commit_request(
        "g",
        &ids[0],
        generation,
        &[("orders", 0, 42, Some("batch-7")), ("orders", 1, 17, None)],
    );
    let outputs = h
        .coordinator
        .handle_offset_commit(request, 9, 500, h.now_ms);
    let commit_value = |offset, metadata: &str| {
        Some(offsets_topic::offset_commit_value(&OffsetAndMetadata {
            offset,
            leader_epoch: -1,
            metadata: metadata.into(),
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
                transactional: None,
            },
        ] => {
            assert_eq!(*partition, offsets_topic::partition_for("g", 50));
            assert_eq!(
                records,
                &[
                    OffsetsTopicRecord {
                        key: offsets_topic::offset_commit_key("g", "orders", 0),
                        value: commit_value(42, "batch-7"),
                    },
                    OffsetsTopicRecord {
                        key: offsets_topic::offset_commit_key("g", "orders", 1),
                        value: commit_value(17, ""),
                    },
                ]
            );
            *append_id
        }
        other => panic!("expected one append, got {other:?}"),
    };
    // Not yet durable: not visible either.
    assert_eq!(h.fetch("g", "orders", 0), (-1, String::new()));

    let outputs = h.coordinator.on_append_completed(append_id, None, h.now_ms);
    match outputs.as_slice() {
        [
            Output::Respond {
                request_id: 500,
                response: GroupResponse::OffsetCommit(response),
            },
        ] => assert_eq!(commit_errors(response), [0, 0]),
        other => panic!("expected the commit answer, got {other:?}"),
    }
    assert_eq!(h.fetch("g", "orders", 0), (42, "batch-7".to_owned()));
    assert_eq!(h.fetch("g", "orders", 1), (17, String::new()));
    assert_eq!(h.fetch("g", "orders", 2), (-1, String::new()));
    assert_eq!(h.coordinator.stats().offset_commits_total, 2);
}

#[test]
fn commits_from_stale_generations_or_unknown_members_are_rejected() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["c1", "c2"]);
    let offsets = [("orders", 0, 1, None)];
    assert_eq!(
        h.commit("g", &ids[0], generation - 1, &offsets),
        [code(ResponseError::IllegalGeneration)]
    );
    assert_eq!(
        h.commit("g", "someone-else", generation, &offsets),
        [code(ResponseError::UnknownMemberId)]
    );
    // A standalone commit (generation -1, no member id) while the group has members.
    assert_eq!(
        h.commit("g", "", -1, &offsets),
        [code(ResponseError::UnknownMemberId)]
    );
    // A generation of a group that does not exist.
    assert_eq!(
        h.commit("other", "m", 3, &offsets),
        [code(ResponseError::IllegalGeneration)]
    );
    // During the sync phase the member must finish the rebalance first.
    let r1 = h.send_join(Join::new("g", &ids[0]).client("c1"));
    let r2 = h.send_join(Join::new("g", &ids[1]).client("c2"));
    h.join_response(r1).unwrap();
    h.join_response(r2).unwrap();
    assert_eq!(
        h.commit("g", &ids[0], generation + 1, &offsets),
        [code(ResponseError::RebalanceInProgress)]
    );
    assert_eq!(h.fetch("g", "orders", 0).0, -1);
}

#[test]
fn commits_are_allowed_during_the_join_phase() {
    // Kafka lets the current generation commit while the group prepares to rebalance,
    // so consumers can commit what they processed before revoking partitions.
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["c1", "c2"]);
    h.send_join(Join::new("g", &ids[0]).client("c1"));
    assert_eq!(
        h.coordinator.group_state("g"),
        Some(GroupState::PreparingRebalance)
    );
    assert_eq!(
        h.commit("g", &ids[1], generation, &[("orders", 3, 9, None)]),
        [0]
    );
    assert_eq!(h.fetch("g", "orders", 3).0, 9);
}

#[test]
fn standalone_consumers_commit_without_joining() {
    let mut h = Harness::new();
    let metadata = "x".repeat(4097);
    assert_eq!(
        h.commit(
            "manual",
            "",
            -1,
            &[("t", 0, 10, Some("m")), ("t", 1, 11, Some(&metadata))]
        ),
        [0, code(ResponseError::OffsetMetadataTooLarge)]
    );
    assert_eq!(h.fetch("manual", "t", 0), (10, "m".to_owned()));
    assert_eq!(h.fetch("manual", "t", 1).0, -1);
    assert_eq!(h.coordinator.group_state("manual"), Some(GroupState::Empty));
}

#[test]
fn a_failed_offset_write_is_reported_and_not_applied() {
    let mut h = Harness::new();
    h.fail_appends = Some(ResponseError::NotEnoughReplicas);
    assert_eq!(
        h.commit("g", "", -1, &[("t", 0, 10, None)]),
        [code(ResponseError::CoordinatorNotAvailable)]
    );
    h.fail_appends = Some(ResponseError::MessageTooLarge);
    assert_eq!(
        h.commit("g", "", -1, &[("t", 0, 10, None)]),
        [code(ResponseError::InvalidCommitOffsetSize)]
    );
    assert_eq!(h.fetch("g", "t", 0).0, -1);
}

#[test]
fn offsets_and_groups_survive_a_reload_of_the_log() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["c1", "c2"]);
    h.commit(
        "g",
        &ids[0],
        generation,
        &[("orders", 0, 100, Some("meta-0"))],
    );
    h.commit("g", &ids[1], generation, &[("orders", 1, 200, None)]);
    h.commit(
        "g",
        &ids[0],
        generation,
        &[("orders", 0, 150, Some("meta-1"))],
    );
    h.commit("manual", "", -1, &[("t", 5, 7, None)]);
    // A deleted offset must stay deleted after the reload.
    h.commit("gone", "", -1, &[("t", 0, 1, None)]);
    let request_id = h.request_id();
    let mut delete = kafka_protocol::messages::DeleteGroupsRequest::default();
    delete.groups_names = vec![GroupId(s("gone"))];
    let outputs = h
        .coordinator
        .handle_delete_groups(delete, request_id, h.now_ms);
    h.perform(outputs);

    // A broker restart: a new coordinator reads __consumer_offsets back.
    let mut restarted = GroupCoordinator::new(GroupCoordinatorConfig::default(), 9);
    for partition in 0..50 {
        let records = h.log.get(&partition).cloned().unwrap_or_default();
        restarted
            .load_partition(partition, records, 1_000_000)
            .unwrap();
    }
    let mut h2 = Harness {
        coordinator: restarted,
        now_ms: 1_000_000,
        ..Harness::new()
    };
    assert_eq!(h2.fetch("g", "orders", 0), (150, "meta-1".to_owned()));
    assert_eq!(h2.fetch("g", "orders", 1), (200, String::new()));
    assert_eq!(h2.fetch("manual", "t", 5), (7, String::new()));
    assert_eq!(h2.fetch("gone", "t", 0), (-1, String::new()));
    assert_eq!(h2.coordinator.group_state("gone"), None);

    // The group comes back Stable with its members, who carry on heartbeating.
    assert_eq!(h2.coordinator.group_state("g"), Some(GroupState::Stable));
    assert_eq!(
        h2.coordinator.group_state("manual"),
        Some(GroupState::Empty)
    );
    assert_eq!(h2.heartbeat("g", &ids[0], generation), 0);
    let sync = h2.send_sync("g", &ids[1], generation, &[]);
    assert_eq!(
        h2.sync_response(sync).unwrap().assignment.as_ref(),
        ids[1].as_bytes()
    );
    // Members that do not come back expire, and the group rebalances and empties.
    h2.advance(i64::from(SESSION_TIMEOUT_MS));
    assert_eq!(h2.coordinator.group_state("g"), Some(GroupState::Empty));
    assert_eq!(h2.fetch("g", "orders", 0), (150, "meta-1".to_owned()));
}

#[test]
fn loading_skips_record_types_of_newer_group_protocols() {
    let mut coordinator = GroupCoordinator::new(GroupCoordinatorConfig::default(), 0);
    let records = vec![
        OffsetsTopicRecord {
            key: bytes::Bytes::from_static(&[0, 5, 0, 1, b'x']),
            value: Some(bytes::Bytes::from_static(&[0, 0, 1])),
        },
        OffsetsTopicRecord {
            key: offsets_topic::offset_commit_key("g", "t", 0),
            value: Some(offsets_topic::offset_commit_value(&OffsetAndMetadata {
                offset: 3,
                leader_epoch: 2,
                metadata: String::new(),
                commit_timestamp_ms: 0,
                expire_timestamp_ms: None,
            })),
        },
    ];
    let partition = offsets_topic::partition_for("g", 50);
    coordinator.load_partition(partition, records, 0).unwrap();
    assert_eq!(coordinator.committed_offsets("g"), [("t".to_owned(), 0, 3)]);
    // A corrupt record is an error, not a silent loss.
    let corrupt = vec![OffsetsTopicRecord {
        key: offsets_topic::offset_commit_key("g", "t", 0),
        value: Some(bytes::Bytes::from_static(&[0, 3, 0])),
    }];
    assert!(coordinator.load_partition(partition, corrupt, 0).is_err());
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
fn standalone_offsets_expire_after_retention_since_their_commit() {
    let mut h = Harness::with_config(retention_config());
    h.commit("manual", "", -1, &[("t", 0, 10, None)]);
    h.advance(59_000);
    assert_eq!(h.fetch("manual", "t", 0).0, 10);
    let partition = offsets_topic::partition_for("manual", 50);
    let before = h.log[&partition].len();
    h.advance(1_000);
    assert_eq!(h.fetch("manual", "t", 0).0, -1);
    // One tombstone for the offset; the group only stored offsets, so it has no
    // metadata to tombstone.
    assert_eq!(
        h.log[&partition][before..],
        [OffsetsTopicRecord {
            key: offsets_topic::offset_commit_key("manual", "t", 0),
            value: None,
        }]
    );
    assert_eq!(h.coordinator.group_state("manual"), None);
    assert_eq!(h.coordinator.stats().offsets_expired_total, 1);
}

#[test]
fn offsets_of_an_empty_group_expire_after_retention_since_it_emptied() {
    let mut h = Harness::with_config(retention_config());
    let (ids, generation) = h.stable_group("g", &["c1"]);
    h.commit("g", &ids[0], generation, &[("orders", 0, 5, None)]);
    for _ in 0..5 {
        h.advance(5_000);
        assert_eq!(h.heartbeat("g", &ids[0], generation), 0);
    }
    assert_eq!(h.leave("g", &ids[0]), 0);
    assert_eq!(h.coordinator.group_state("g"), Some(GroupState::Empty));
    // 60 s after the commit, but only 35 s after the group emptied: kept.
    h.advance(35_000);
    assert_eq!(h.fetch("g", "orders", 0).0, 5);
    h.advance(25_000);
    assert_eq!(h.fetch("g", "orders", 0).0, -1);
    let partition = offsets_topic::partition_for("g", 50);
    let log = &h.log[&partition];
    assert_eq!(
        log[log.len() - 2..],
        [
            OffsetsTopicRecord {
                key: offsets_topic::offset_commit_key("g", "orders", 0),
                value: None,
            },
            OffsetsTopicRecord {
                key: offsets_topic::group_metadata_key("g"),
                value: None,
            },
        ]
    );
    assert_eq!(h.coordinator.group_state("g"), None);
}

#[test]
fn a_stable_group_keeps_offsets_of_subscribed_topics_only() {
    let mut h = Harness::with_config(retention_config());
    let (ids, generation) = h.stable_group("g", &["c1"]);
    h.commit(
        "g",
        &ids[0],
        generation,
        &[("orders", 0, 5, None), ("old-topic", 0, 9, None)],
    );
    for _ in 0..12 {
        h.advance(5_000);
        assert_eq!(h.heartbeat("g", &ids[0], generation), 0);
    }
    assert_eq!(h.fetch("g", "orders", 0).0, 5);
    assert_eq!(h.fetch("g", "old-topic", 0).0, -1);
}

#[test]
fn offset_commit_v2_retention_time_is_stored_as_an_expire_timestamp() {
    let mut h = Harness::with_config(retention_config());
    let mut request = Harness::commit_request("g", "", -1, &[("t", 0, 1, None)]);
    request.retention_time_ms = 10_000;
    let outputs = h.coordinator.handle_offset_commit(request, 2, 77, h.now_ms);
    let [Output::Append { records, .. }] = outputs.as_slice() else {
        panic!("{outputs:?}");
    };
    let value = records[0].value.as_ref().unwrap();
    assert_eq!(
        &value[..2],
        &[0, 1],
        "OffsetCommitValue v1 carries expireTimestamp"
    );
    h.perform(outputs);
    h.advance(9_000);
    assert_eq!(h.fetch("g", "t", 0).0, 1);
    h.advance(1_000);
    assert_eq!(h.fetch("g", "t", 0).0, -1);
}

#[test]
fn offset_fetch_v8_answers_several_groups_and_all_partitions() {
    let mut h = Harness::new();
    h.commit(
        "a",
        "",
        -1,
        &[("t", 1, 11, None), ("t", 0, 10, None), ("u", 0, 20, None)],
    );
    let mut request = OffsetFetchRequest::default();
    let mut all = OffsetFetchRequestGroup::default();
    all.group_id = GroupId(s("a"));
    all.topics = None;
    let mut some = OffsetFetchRequestGroup::default();
    some.group_id = GroupId(s("b"));
    let mut topic = OffsetFetchRequestTopics::default();
    topic.name = TopicName(s("t"));
    topic.partition_indexes = vec![0];
    some.topics = Some(vec![topic]);
    request.groups = vec![all, some];
    let response = h.coordinator.handle_offset_fetch(request, 8);
    type Summary = Vec<(String, Vec<(String, Vec<(i32, i64)>)>)>;
    let summary: Summary = response
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.to_string(),
                g.topics
                    .iter()
                    .map(|t| {
                        (
                            t.name.to_string(),
                            t.partitions
                                .iter()
                                .map(|p| (p.partition_index, p.committed_offset))
                                .collect(),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "a".to_owned(),
                vec![
                    ("t".to_owned(), vec![(0, 10), (1, 11)]),
                    ("u".to_owned(), vec![(0, 20)])
                ]
            ),
            ("b".to_owned(), vec![("t".to_owned(), vec![(0, -1)])]),
        ]
    );
}

fn offset_delete(h: &mut Harness, group: &str, topic: &str, partition: i32) -> (i16, Vec<i16>) {
    let mut request = OffsetDeleteRequest::default();
    request.group_id = GroupId(s(group));
    let mut t = OffsetDeleteRequestTopic::default();
    t.name = TopicName(s(topic));
    let mut p = OffsetDeleteRequestPartition::default();
    p.partition_index = partition;
    t.partitions = vec![p];
    request.topics = vec![t];
    let request_id = h.request_id();
    let outputs = h
        .coordinator
        .handle_offset_delete(request, request_id, h.now_ms);
    h.perform(outputs);
    match h.take_response(request_id) {
        Some(GroupResponse::OffsetDelete(response)) => (
            response.error_code,
            response
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn offset_delete_spares_topics_an_active_group_consumes() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["c1"]);
    h.commit(
        "g",
        &ids[0],
        generation,
        &[("orders", 0, 5, None), ("old-topic", 0, 9, None)],
    );
    assert_eq!(
        offset_delete(&mut h, "g", "orders", 0),
        (0, vec![code(ResponseError::GroupSubscribedToTopic)])
    );
    assert_eq!(offset_delete(&mut h, "g", "old-topic", 0), (0, vec![0]));
    assert_eq!(h.fetch("g", "orders", 0).0, 5);
    assert_eq!(h.fetch("g", "old-topic", 0).0, -1);
    assert_eq!(
        offset_delete(&mut h, "missing", "t", 0),
        (code(ResponseError::GroupIdNotFound), vec![])
    );
    // Once the group is Empty any offset can go.
    h.leave("g", &ids[0]);
    assert_eq!(offset_delete(&mut h, "g", "orders", 0), (0, vec![0]));
    assert_eq!(h.fetch("g", "orders", 0).0, -1);
    // Having lost its last offset, the Empty group is gone too.
    assert_eq!(h.coordinator.group_state("g"), None);
}

#[test]
fn reloading_a_partition_replaces_its_groups() {
    let mut h = Harness::new();
    h.commit("g", "", -1, &[("t", 0, 1, None)]);
    let partition = offsets_topic::partition_for("g", 50);
    // The log lost nothing: reloading it gives the same offsets.
    let log = h.log[&partition].clone();
    h.coordinator
        .load_partition(partition, log, h.now_ms)
        .unwrap();
    assert_eq!(h.fetch("g", "t", 0).0, 1);
    // Loaded from an empty log, the group is gone rather than left over.
    h.coordinator
        .load_partition(partition, NO_RECORDS, h.now_ms)
        .unwrap();
    assert_eq!(h.coordinator.group_state("g"), None);
}
