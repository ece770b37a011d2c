//! EndTxn: two-phase commit and abort, retries, markers.

use super::*;

#[test]
fn commit_prepares_answers_writes_markers_then_completes() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0, 1]), ("u", &[2])]);
    h.advance(10);
    h.hold_appends = true;
    let request_id = h.send_end("txn", producer, true, END_VERSION);
    assert!(
        h.responses.is_empty(),
        "answered before PrepareCommit was written"
    );
    assert!(
        h.markers.is_empty(),
        "markers before PrepareCommit was written"
    );
    h.release_appends();
    let response = h.end_response(request_id);
    assert_eq!(response.error_code, 0);
    assert_eq!((response.producer_id.0, response.producer_epoch), producer);
    let value = h.last_value("txn").unwrap();
    assert_eq!(value.state, TransactionState::PrepareCommit);
    assert_eq!(value.topic_partitions().count(), 3);
    assert_eq!(h.state("txn"), TransactionState::PrepareCommit);
    assert_eq!(
        h.markers,
        vec![Markers {
            transactional_id: "txn".into(),
            producer_id: producer.0,
            producer_epoch: producer.1,
            coordinator_epoch: COORDINATOR_EPOCH,
            result: TransactionResult::Commit,
            partitions: vec![tp("t", 0), tp("t", 1), tp("u", 2)],
        }]
    );
    let stats = h.coordinator.stats();
    assert_eq!(stats.transactions_awaiting_markers, 1);
    assert_eq!(stats.commits_total, 0);

    h.advance(20);
    h.write_markers();
    let value = h.last_value("txn").unwrap();
    assert_eq!(value.state, TransactionState::CompleteCommit);
    assert_eq!(value.partitions, Some(vec![]));
    assert_eq!(value.last_update_timestamp_ms, 30);
    assert_eq!(value.start_timestamp_ms, 0);
    let metadata = h.coordinator.transaction("txn").unwrap();
    assert_eq!(metadata.state, TransactionState::CompleteCommit);
    assert!(metadata.partitions.is_empty());
    assert!(metadata.pending_state.is_none());
    let stats = h.coordinator.stats();
    assert_eq!(stats.transactions_awaiting_markers, 0);
    assert_eq!(stats.commits_total, 1);
    assert_eq!(stats.aborts_total, 0);
    let states: Vec<TransactionState> = h
        .values("txn")
        .iter()
        .map(|v| v.as_ref().unwrap().state)
        .collect();
    assert_eq!(
        states,
        [
            TransactionState::Empty,
            TransactionState::Ongoing,
            TransactionState::PrepareCommit,
            TransactionState::CompleteCommit
        ]
    );
}

#[test]
fn abort_runs_the_same_way() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    assert_eq!(h.end("txn", producer, false), 0);
    assert_eq!(h.state("txn"), TransactionState::PrepareAbort);
    assert_eq!(h.markers[0].result, TransactionResult::Abort);
    h.write_markers();
    assert_eq!(h.state("txn"), TransactionState::CompleteAbort);
    assert_eq!(h.coordinator.stats().aborts_total, 1);
}

#[test]
fn retries_of_a_completed_end_succeed_and_the_other_outcome_is_invalid() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    assert_eq!(h.end("txn", producer, true), 0);
    // Markers in flight: a retry waits.
    assert_eq!(
        h.end("txn", producer, true),
        code(ResponseError::ConcurrentTransactions)
    );
    assert_eq!(
        h.end("txn", producer, false),
        code(ResponseError::ConcurrentTransactions)
    );
    h.write_markers();
    let retry = h.end_at("txn", producer, true, END_VERSION);
    assert_eq!(retry.error_code, 0);
    assert_eq!((retry.producer_id.0, retry.producer_epoch), producer);
    let other = h.end_at("txn", producer, false, END_VERSION);
    assert_eq!(other.error_code, code(ResponseError::InvalidTxnState));
    assert_eq!((other.producer_id.0, other.producer_epoch), (-1, -1));
    // Only one PrepareCommit and one CompleteCommit were written.
    assert_eq!(h.values("txn").len(), 4);

    let producer = h.begin("txn2", &[("t", &[0])]);
    assert_eq!(h.end("txn2", producer, false), 0);
    h.write_markers();
    assert_eq!(h.end("txn2", producer, false), 0);
    assert_eq!(
        h.end("txn2", producer, true),
        code(ResponseError::InvalidTxnState)
    );
}

#[test]
fn prepare_states_without_pending_markers_answer_by_outcome() {
    // PrepareCommit whose completion failed to be written (nothing pending any more).
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    assert_eq!(h.end("txn", producer, true), 0);
    h.fail_appends = Some(ResponseError::NotLeaderOrFollower);
    h.write_markers();
    h.fail_appends = None;
    let metadata = h.coordinator.transaction("txn").unwrap();
    assert_eq!(metadata.state, TransactionState::PrepareCommit);
    assert!(metadata.pending_state.is_none());
    assert_eq!(
        h.end("txn", producer, true),
        code(ResponseError::ConcurrentTransactions)
    );
    assert_eq!(
        h.end("txn", producer, false),
        code(ResponseError::InvalidTxnState)
    );
}

#[test]
fn ending_a_transaction_that_never_started_is_invalid() {
    let mut h = Harness::new();
    let producer = h.init("txn");
    assert_eq!(
        h.end("txn", producer, true),
        code(ResponseError::InvalidTxnState)
    );
    assert_eq!(
        h.end("txn", producer, false),
        code(ResponseError::InvalidTxnState)
    );
}

#[test]
fn end_checks_the_producer() {
    let mut h = Harness::new();
    assert_eq!(
        h.end("nobody", (1, 0), true),
        code(ResponseError::InvalidProducerIdMapping)
    );
    assert_eq!(h.end("", (1, 0), true), code(ResponseError::InvalidRequest));
    let producer = h.begin("txn", &[("t", &[0])]);
    assert_eq!(
        h.end("txn", (producer.0 + 1, producer.1), true),
        code(ResponseError::InvalidProducerIdMapping)
    );
    assert_eq!(
        h.end("txn", (producer.0, producer.1 + 1), true),
        code(ResponseError::ProducerFenced)
    );
    assert_eq!(
        h.end_at("txn", (producer.0, producer.1 + 1), true, 1)
            .error_code,
        code(ResponseError::InvalidProducerEpoch)
    );
    assert_eq!(h.state("txn"), TransactionState::Ongoing);
}

#[test]
fn end_txn_v5_is_served_with_version_0_semantics() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    let response = h.end_at("txn", producer, true, 5);
    assert_eq!(response.error_code, 0);
    assert_eq!((response.producer_id.0, response.producer_epoch), producer);
}

#[test]
fn a_failed_prepare_leaves_the_transaction_open() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    h.fail_appends = Some(ResponseError::NotEnoughReplicas);
    assert_eq!(
        h.end("txn", producer, true),
        code(ResponseError::CoordinatorNotAvailable)
    );
    assert!(h.markers.is_empty());
    let metadata = h.coordinator.transaction("txn").unwrap();
    assert_eq!(metadata.state, TransactionState::Ongoing);
    assert!(metadata.pending_state.is_none());
    h.fail_appends = None;
    assert_eq!(h.end("txn", producer, true), 0);
}

#[test]
fn markers_reported_for_another_epoch_are_ignored() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    assert_eq!(h.end("txn", producer, true), 0);
    let out = h
        .coordinator
        .on_markers_written("txn", producer.0, producer.1 + 1, h.now_ms);
    assert!(out.is_empty());
    let out = h
        .coordinator
        .on_markers_written("txn", producer.0 + 1, producer.1, h.now_ms);
    assert!(out.is_empty());
    let out = h.coordinator.on_markers_written("unknown", 1, 0, h.now_ms);
    assert!(out.is_empty());
    assert_eq!(h.state("txn"), TransactionState::PrepareCommit);
    h.write_markers();
    assert_eq!(h.state("txn"), TransactionState::CompleteCommit);
    // A duplicate report changes nothing.
    let out = h
        .coordinator
        .on_markers_written("txn", producer.0, producer.1, h.now_ms);
    assert!(out.is_empty());
}

#[test]
fn the_completion_is_retried_while_the_log_is_unavailable() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    assert_eq!(h.end("txn", producer, true), 0);
    let markers = h.markers.remove(0);
    let out = h.coordinator.on_markers_written(
        "txn",
        markers.producer_id,
        markers.producer_epoch,
        h.now_ms,
    );
    let Some(Output::Append { append_id, .. }) = out.first().cloned() else {
        panic!("expected an append, got {out:?}");
    };
    let retry = h.coordinator.on_append_completed(
        append_id,
        Err(ResponseError::NotEnoughReplicas),
        h.now_ms,
    );
    assert!(
        matches!(retry.as_slice(), [Output::Append { append_id: again, .. }] if *again != append_id),
        "{retry:?}"
    );
    assert_eq!(
        h.coordinator.transaction("txn").unwrap().pending_state,
        Some(TransactionState::CompleteCommit)
    );
    h.perform(retry);
    assert_eq!(h.state("txn"), TransactionState::CompleteCommit);
}

#[test]
fn a_transaction_without_partitions_completes_without_markers() {
    let mut h = Harness::new();
    let producer = h.init("txn");
    assert_eq!(h.add("txn", producer, &[]), 0);
    assert_eq!(h.state("txn"), TransactionState::Ongoing);
    assert_eq!(h.end("txn", producer, true), 0);
    assert!(h.markers.is_empty());
    assert_eq!(h.state("txn"), TransactionState::CompleteCommit);
}

#[test]
fn the_producer_may_start_its_next_transaction_after_completion() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    assert_eq!(h.end("txn", producer, true), 0);
    h.write_markers();
    h.advance(1000);
    assert_eq!(h.add("txn", producer, &[("u", &[9])]), 0);
    let metadata = h.coordinator.transaction("txn").unwrap();
    assert_eq!(
        metadata.partitions.iter().cloned().collect::<Vec<_>>(),
        vec![tp("u", 9)]
    );
    assert_eq!(metadata.start_timestamp_ms, 1000);
    assert_eq!(h.end("txn", producer, false), 0);
    assert_eq!(h.markers[0].partitions, vec![tp("u", 9)]);
}
