//! Loading and unloading `__transaction_state` partitions, and recovery on load.

use super::*;

fn record(transactional_id: &str, value: &TransactionLogValue) -> TransactionLogRecord {
    TransactionLogRecord {
        key: transaction_log::key(transactional_id),
        value: Some(transaction_log::value(value)),
    }
}

fn value(
    state: TransactionState,
    epoch: i16,
    partitions: &[(&str, &[i32])],
) -> TransactionLogValue {
    TransactionLogValue {
        producer_id: 77,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch: epoch,
        next_producer_epoch: -1,
        transaction_timeout_ms: TIMEOUT_MS,
        state,
        partitions: (state != TransactionState::Empty).then(|| {
            partitions
                .iter()
                .map(|(t, p)| transaction_log::TopicPartitions {
                    topic: (*t).to_owned(),
                    partition_ids: p.to_vec(),
                })
                .collect()
        }),
        last_update_timestamp_ms: 5,
        start_timestamp_ms: if state == TransactionState::Empty {
            -1
        } else {
            3
        },
        client_transaction_version: 0,
    }
}

/// A harness with a single `__transaction_state` partition, not loaded.
fn single_partition() -> Harness {
    let mut h = Harness::with_config(TransactionCoordinatorConfig {
        transaction_state_log_num_partitions: 1,
        ..TransactionCoordinatorConfig::default()
    });
    let out = h.coordinator.unload_partition(0);
    assert!(out.is_empty());
    h
}

#[test]
fn load_replays_records_in_order_with_tombstones() {
    let mut h = single_partition();
    let records = vec![
        record("a", &value(TransactionState::Empty, 0, &[])),
        record("a", &value(TransactionState::Ongoing, 0, &[("t", &[0, 1])])),
        record("b", &value(TransactionState::Empty, 4, &[])),
        transaction_log::tombstone("b"),
        record("c", &value(TransactionState::CompleteAbort, 2, &[])),
        TransactionLogRecord {
            key: bytes::Bytes::from_static(&[0, 9, 1, 2]),
            value: Some(bytes::Bytes::from_static(b"from a newer Kafka")),
        },
    ];
    let out = h.coordinator.load_partition(0, 3, records, 100).unwrap();
    assert!(out.is_empty());
    assert_eq!(h.coordinator.loaded_partitions(), vec![(0, 3)]);
    let a = h.coordinator.transaction("a").unwrap();
    assert_eq!(a.state, TransactionState::Ongoing);
    assert_eq!(
        a.partitions.iter().cloned().collect::<Vec<_>>(),
        vec![tp("t", 0), tp("t", 1)]
    );
    assert_eq!(
        (a.producer_id, a.producer_epoch, a.start_timestamp_ms),
        (77, 0, 3)
    );
    assert!(h.coordinator.transaction("b").is_none());
    assert_eq!(h.state("c"), TransactionState::CompleteAbort);

    // The loaded producer carries on.
    assert_eq!(h.end("a", (77, 0), true), 0);
    assert_eq!(h.markers[0].coordinator_epoch, 3);
}

#[test]
fn an_undecodable_record_fails_the_load() {
    let mut h = single_partition();
    let records = vec![
        record("a", &value(TransactionState::Empty, 0, &[])),
        TransactionLogRecord {
            key: transaction_log::key("b"),
            value: Some(bytes::Bytes::from_static(&[0, 0, 1])),
        },
    ];
    assert!(h.coordinator.load_partition(0, 1, records, 0).is_err());
    assert!(!h.coordinator.is_partition_loaded(0));
    assert!(h.coordinator.transaction("a").is_none());
}

#[test]
fn prepared_transactions_get_their_markers_again_on_load() {
    let mut h = single_partition();
    let records = vec![
        record(
            "c",
            &value(
                TransactionState::PrepareCommit,
                2,
                &[("t", &[0]), ("u", &[1])],
            ),
        ),
        record(
            "a",
            &value(TransactionState::PrepareAbort, 5, &[("t", &[3])]),
        ),
        record("o", &value(TransactionState::Ongoing, 1, &[("t", &[4])])),
    ];
    let out = h.coordinator.load_partition(0, 9, records, 100).unwrap();
    h.perform(out);
    assert_eq!(
        h.markers,
        vec![
            Markers {
                transactional_id: "a".into(),
                producer_id: 77,
                producer_epoch: 5,
                coordinator_epoch: 9,
                result: TransactionResult::Abort,
                partitions: vec![tp("t", 3)],
            },
            Markers {
                transactional_id: "c".into(),
                producer_id: 77,
                producer_epoch: 2,
                coordinator_epoch: 9,
                result: TransactionResult::Commit,
                partitions: vec![tp("t", 0), tp("u", 1)],
            },
        ]
    );
    // Meanwhile the producer's retries wait.
    assert_eq!(
        h.end("c", (77, 2), true),
        code(ResponseError::ConcurrentTransactions)
    );
    h.write_markers();
    assert_eq!(h.state("c"), TransactionState::CompleteCommit);
    assert_eq!(h.state("a"), TransactionState::CompleteAbort);
    assert_eq!(h.state("o"), TransactionState::Ongoing);
    assert_eq!(h.end("c", (77, 2), true), 0);
}

#[test]
fn a_prepared_transaction_without_partitions_completes_on_load() {
    let mut h = single_partition();
    let records = vec![record("c", &value(TransactionState::PrepareCommit, 2, &[]))];
    let out = h.coordinator.load_partition(0, 1, records, 100).unwrap();
    h.perform(out);
    assert!(h.markers.is_empty());
    assert_eq!(h.state("c"), TransactionState::CompleteCommit);
}

#[test]
fn the_log_written_by_one_coordinator_rebuilds_the_same_state_in_another() {
    let mut h = Harness::with_config(TransactionCoordinatorConfig {
        transaction_state_log_num_partitions: 1,
        ..TransactionCoordinatorConfig::default()
    });
    h.init("empty");
    let done = h.begin("done", &[("t", &[0])]);
    assert_eq!(h.end("done", done, true), 0);
    h.write_markers();
    h.begin("open", &[("t", &[0]), ("u", &[1, 2])]);
    let prepared = h.begin("prepared", &[("t", &[5])]);
    assert_eq!(h.end("prepared", prepared, false), 0);
    h.init("gone");
    h.init("gone");

    let mut other = TransactionCoordinator::new(TransactionCoordinatorConfig {
        transaction_state_log_num_partitions: 1,
        ..TransactionCoordinatorConfig::default()
    });
    let out = other
        .load_partition(0, 8, h.log[&0].clone(), h.now_ms)
        .unwrap();
    assert_eq!(out.len(), 1, "markers for the prepared abort: {out:?}");
    for id in ["empty", "done", "open", "gone"] {
        let mut expected = h.coordinator.transaction(id).unwrap().clone();
        let loaded = other.transaction(id).unwrap();
        // Not stored in the log.
        expected.last_producer_epoch = loaded.last_producer_epoch;
        expected.previous_producer_id = loaded.previous_producer_id;
        assert_eq!(loaded, &expected, "{id}");
    }
    assert_eq!(
        other.transaction("prepared").unwrap().state,
        TransactionState::PrepareAbort
    );
}

#[test]
fn unloading_answers_waiting_requests_not_coordinator() {
    let mut h = Harness::new();
    let producer = h.init("txn");
    let partition = h.coordinator.partition_for("txn");
    h.hold_appends = true;
    let add = h.send_add("txn", producer, &[("t", &[0])], ADD_VERSION);
    let out = h.coordinator.unload_partition(partition);
    h.perform(out);
    let response = h.add_response(add);
    assert_eq!(
        response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        code(ResponseError::NotCoordinator)
    );
    assert!(h.coordinator.transaction("txn").is_none());
    assert!(!h.coordinator.is_partition_loaded(partition));
    // The late append completion is ignored.
    h.release_appends();
    assert!(h.responses.is_empty());
    assert_eq!(
        h.add("txn", producer, &[("t", &[0])]),
        code(ResponseError::NotCoordinator)
    );
}

#[test]
fn unloading_abandons_markers_and_reloading_resumes_them() {
    let mut h = single_partition();
    let out = h.coordinator.load_partition(0, 1, [], 0).unwrap();
    assert!(out.is_empty());
    let producer = h.begin("txn", &[("t", &[0])]);
    assert_eq!(h.end("txn", producer, true), 0);
    let stale = h.markers.remove(0);
    let out = h.coordinator.unload_partition(0);
    assert!(out.is_empty());
    let out = h
        .coordinator
        .on_markers_written("txn", stale.producer_id, stale.producer_epoch, 0);
    assert!(out.is_empty(), "ignored once unloaded");

    let out = h.coordinator.begin_loading(0);
    assert!(out.is_empty());
    assert_eq!(
        h.end("txn", producer, true),
        code(ResponseError::CoordinatorLoadInProgress)
    );
    let out = h
        .coordinator
        .load_partition(0, 2, h.log[&0].clone(), 0)
        .unwrap();
    h.perform(out);
    assert_eq!(h.markers.len(), 1);
    assert_eq!(h.markers[0].coordinator_epoch, 2);
    h.write_markers();
    assert_eq!(h.state("txn"), TransactionState::CompleteCommit);
}

#[test]
fn an_append_completed_after_a_reload_is_not_applied() {
    let mut h = single_partition();
    let out = h.coordinator.load_partition(0, 1, [], 0).unwrap();
    assert!(out.is_empty());
    let producer = h.init("txn");
    h.hold_appends = true;
    let add = h.send_add("txn", producer, &[("t", &[0])], ADD_VERSION);
    // Leadership bounced: reloaded at a new epoch from the log (without the held add).
    let out = h
        .coordinator
        .load_partition(0, 2, h.log[&0].clone(), 0)
        .unwrap();
    h.perform(out);
    let response = h.add_response(add);
    assert_eq!(
        response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        code(ResponseError::NotCoordinator)
    );
    h.release_appends();
    assert_eq!(h.state("txn"), TransactionState::Empty);
}

#[test]
fn loading_partitions_are_reported() {
    let mut h = Harness::new();
    let out = h.coordinator.begin_loading(4);
    assert!(out.is_empty());
    let stats = h.coordinator.stats();
    assert_eq!((stats.loaded_partitions, stats.loading_partitions), (49, 1));
    assert!(!h.coordinator.is_partition_loaded(4));
    let out = h.coordinator.load_partition(4, 1, [], 0).unwrap();
    assert!(out.is_empty());
    assert_eq!(h.coordinator.loaded_partitions().len(), 50);
    assert_eq!(h.coordinator.stats().loading_partitions, 0);
}
