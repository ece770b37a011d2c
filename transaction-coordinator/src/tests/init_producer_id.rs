//! InitProducerId: producer ids, epoch bumps, fencing, KIP-360.

use super::*;

#[test]
fn a_new_transactional_id_gets_the_fresh_producer_id_at_epoch_0_after_the_append() {
    let mut h = Harness::new();
    h.hold_appends = true;
    let request_id = h.send_init(Some("txn"), TIMEOUT_MS, None, INIT_VERSION);
    assert!(h.responses.is_empty(), "answered before the append");
    assert_eq!(h.held.len(), 1);
    let (_, partition, records) = &h.held[0];
    assert_eq!(*partition, h.coordinator.partition_for("txn"));
    assert_eq!(records.len(), 1);
    h.release_appends();
    let response = h.init_response(request_id);
    assert_eq!(response.error_code, 0);
    assert_eq!(
        (response.producer_id.0, response.producer_epoch),
        (FIRST_PRODUCER_ID, 0)
    );
    let value = h.last_value("txn").unwrap();
    assert_eq!(value.state, TransactionState::Empty);
    assert_eq!(value.partitions, None);
    assert_eq!(value.transaction_timeout_ms, TIMEOUT_MS);
    assert_eq!(value.start_timestamp_ms, -1);
}

#[test]
fn each_init_bumps_the_epoch_and_skips_the_unused_fresh_id() {
    let mut h = Harness::new();
    assert_eq!(h.init("txn"), (FIRST_PRODUCER_ID, 0));
    assert_eq!(h.init("txn"), (FIRST_PRODUCER_ID, 1));
    assert_eq!(h.init("txn"), (FIRST_PRODUCER_ID, 2));
    // Another id gets a new producer id: those offered meanwhile were skipped.
    assert_eq!(h.init("other"), (FIRST_PRODUCER_ID + 3, 0));
}

#[test]
fn init_after_a_completed_transaction_bumps_the_epoch() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    assert_eq!(h.end("txn", producer, true), 0);
    h.write_markers();
    assert_eq!(h.state("txn"), TransactionState::CompleteCommit);
    assert_eq!(h.init("txn"), (producer.0, producer.1 + 1));
    assert_eq!(h.state("txn"), TransactionState::Empty);
    // The new timeout is taken.
    let response = h.init_full("txn", None, INIT_VERSION);
    assert_eq!(response.error_code, 0);
    let request_id = h.send_init(Some("txn"), 5_000, None, INIT_VERSION);
    assert_eq!(h.init_response(request_id).error_code, 0);
    assert_eq!(
        h.coordinator
            .transaction("txn")
            .unwrap()
            .transaction_timeout_ms,
        5_000
    );
}

#[test]
fn invalid_timeouts_and_ids_are_rejected_without_appending() {
    let mut h = Harness::new();
    for timeout in [0, -1, 900_001] {
        let request_id = h.send_init(Some("txn"), timeout, None, INIT_VERSION);
        let response = h.init_response(request_id);
        assert_eq!(
            response.error_code,
            code(ResponseError::InvalidTransactionTimeout)
        );
        assert_eq!((response.producer_id.0, response.producer_epoch), (-1, -1));
    }
    let request_id = h.send_init(Some("txn"), 900_000, None, INIT_VERSION);
    assert_eq!(h.init_response(request_id).error_code, 0);

    let request_id = h.send_init(Some(""), TIMEOUT_MS, None, INIT_VERSION);
    assert_eq!(
        h.init_response(request_id).error_code,
        code(ResponseError::InvalidRequest)
    );
    // Only one of producer id and epoch set.
    let request_id = h.send_init(Some("txn"), TIMEOUT_MS, Some((5, -1)), INIT_VERSION);
    assert_eq!(
        h.init_response(request_id).error_code,
        code(ResponseError::InvalidRequest)
    );
    let request_id = h.send_init(Some("txn"), TIMEOUT_MS, Some((-1, 3)), INIT_VERSION);
    assert_eq!(
        h.init_response(request_id).error_code,
        code(ResponseError::InvalidRequest)
    );
    assert_eq!(h.values("txn").len(), 1);
}

#[test]
fn an_idempotent_producer_gets_the_fresh_id_at_once() {
    let mut h = Harness::new();
    let request_id = h.send_init(None, TIMEOUT_MS, None, INIT_VERSION);
    let response = h.init_response(request_id);
    assert_eq!(response.error_code, 0);
    assert_eq!(
        (response.producer_id.0, response.producer_epoch),
        (FIRST_PRODUCER_ID, 0)
    );
    assert!(h.log.is_empty());
}

#[test]
fn no_fresh_producer_id_means_retry_later() {
    let mut h = Harness::new();
    let mut request = InitProducerIdRequest::default();
    request.transactional_id = Some(TransactionalId(s("txn")));
    request.transaction_timeout_ms = TIMEOUT_MS;
    request.producer_id = ProducerId(-1);
    request.producer_epoch = -1;
    let out = h
        .coordinator
        .handle_init_producer_id(request, INIT_VERSION, 9, -1, 0);
    h.perform(out);
    assert_eq!(
        h.init_response(9).error_code,
        code(ResponseError::CoordinatorLoadInProgress)
    );
    assert!(h.coordinator.transaction("txn").is_none());
}

#[test]
fn ids_of_partitions_not_loaded_here_are_not_coordinator() {
    let mut h = Harness::new();
    let partition = h.coordinator.partition_for("txn");
    let out = h.coordinator.unload_partition(partition);
    assert!(out.is_empty());
    let response = h.init_full("txn", None, INIT_VERSION);
    assert_eq!(response.error_code, code(ResponseError::NotCoordinator));
    let out = h.coordinator.begin_loading(partition);
    assert!(out.is_empty());
    let response = h.init_full("txn", None, INIT_VERSION);
    assert_eq!(
        response.error_code,
        code(ResponseError::CoordinatorLoadInProgress)
    );
}

#[test]
fn a_second_init_while_the_first_is_being_written_is_concurrent() {
    let mut h = Harness::new();
    h.init("txn");
    h.hold_appends = true;
    let first = h.send_init(Some("txn"), TIMEOUT_MS, None, INIT_VERSION);
    let second = h.send_init(Some("txn"), TIMEOUT_MS, None, INIT_VERSION);
    assert_eq!(
        h.init_response(second).error_code,
        code(ResponseError::ConcurrentTransactions)
    );
    h.release_appends();
    let response = h.init_response(first);
    assert_eq!((response.error_code, response.producer_epoch), (0, 1));
}

#[test]
fn init_while_markers_are_written_is_concurrent() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    assert_eq!(h.end("txn", producer, false), 0);
    assert_eq!(h.state("txn"), TransactionState::PrepareAbort);
    let response = h.init_full("txn", None, INIT_VERSION);
    assert_eq!(
        response.error_code,
        code(ResponseError::ConcurrentTransactions)
    );
    h.write_markers();
    assert_eq!(h.init("txn"), (producer.0, producer.1 + 1));
}

#[test]
fn init_with_a_transaction_open_fences_and_aborts_it_then_the_retry_succeeds() {
    let mut h = Harness::new();
    let old = h.begin("txn", &[("t", &[0, 1]), ("u", &[4])]);
    let response = h.init_full("txn", None, INIT_VERSION);
    assert_eq!(
        response.error_code,
        code(ResponseError::ConcurrentTransactions)
    );
    assert_eq!((response.producer_id.0, response.producer_epoch), (-1, -1));

    // The abort was written with the bumped epoch, and markers asked for with it.
    let value = h.last_value("txn").unwrap();
    assert_eq!(value.state, TransactionState::PrepareAbort);
    assert_eq!(value.producer_epoch, old.1 + 1);
    assert_eq!(
        h.markers,
        vec![Markers {
            transactional_id: "txn".into(),
            producer_id: old.0,
            producer_epoch: old.1 + 1,
            coordinator_epoch: COORDINATOR_EPOCH,
            result: TransactionResult::Abort,
            partitions: vec![tp("t", 0), tp("t", 1), tp("u", 4)],
        }]
    );
    assert_eq!(h.coordinator.stats().producer_fences_total, 1);

    // The old producer is fenced.
    assert_eq!(h.end("txn", old, true), code(ResponseError::ProducerFenced));
    assert_eq!(
        h.add("txn", old, &[("t", &[2])]),
        code(ResponseError::ProducerFenced)
    );

    // The new one retries until the abort completes.
    let response = h.init_full("txn", None, INIT_VERSION);
    assert_eq!(
        response.error_code,
        code(ResponseError::ConcurrentTransactions)
    );
    h.write_markers();
    assert_eq!(h.state("txn"), TransactionState::CompleteAbort);
    assert_eq!(h.init("txn"), (old.0, old.1 + 2));
}

#[test]
fn the_epoch_fence_is_not_repeated_after_its_write_failed() {
    let mut h = Harness::new();
    let old = h.begin("txn", &[("t", &[0])]);
    h.fail_appends = Some(ResponseError::NotLeaderOrFollower);
    let response = h.init_full("txn", None, INIT_VERSION);
    assert_eq!(response.error_code, code(ResponseError::NotCoordinator));
    let metadata = h.coordinator.transaction("txn").unwrap();
    assert_eq!(metadata.state, TransactionState::Ongoing);
    assert_eq!(metadata.producer_epoch, old.1 + 1);
    assert!(metadata.has_failed_epoch_fence);
    assert!(metadata.pending_state.is_none());

    h.fail_appends = None;
    let response = h.init_full("txn", None, INIT_VERSION);
    assert_eq!(
        response.error_code,
        code(ResponseError::ConcurrentTransactions)
    );
    assert_eq!(h.last_value("txn").unwrap().producer_epoch, old.1 + 1);
    h.write_markers();
    assert!(
        !h.coordinator
            .transaction("txn")
            .unwrap()
            .has_failed_epoch_fence
    );
    assert_eq!(h.init("txn"), (old.0, old.1 + 2));
}

/// A loaded transactional id at `epoch`, Empty.
fn harness_with_epoch(epoch: i16) -> Harness {
    let mut h = Harness::new();
    let partition = h.coordinator.partition_for("txn");
    let value = TransactionLogValue {
        producer_id: 500,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch: epoch,
        next_producer_epoch: -1,
        transaction_timeout_ms: TIMEOUT_MS,
        state: TransactionState::Empty,
        partitions: None,
        last_update_timestamp_ms: 0,
        start_timestamp_ms: -1,
        client_transaction_version: 0,
    };
    let record = TransactionLogRecord {
        key: transaction_log::key("txn"),
        value: Some(transaction_log::value(&value)),
    };
    let out = h
        .coordinator
        .load_partition(partition, COORDINATOR_EPOCH, [record], 0)
        .unwrap();
    assert!(out.is_empty());
    h
}

#[test]
fn an_exhausted_epoch_rotates_to_the_fresh_producer_id() {
    let mut h = harness_with_epoch(i16::MAX - 2);
    assert_eq!(h.init("txn"), (500, i16::MAX - 1));
    // i16::MAX - 1 is exhausted: the next init takes a new producer id.
    assert_eq!(h.init("txn"), (FIRST_PRODUCER_ID + 1, 0));
    let metadata = h.coordinator.transaction("txn").unwrap();
    assert_eq!(metadata.previous_producer_id, 500);
    assert_eq!(h.init("txn"), (FIRST_PRODUCER_ID + 1, 1));
}

#[test]
fn an_exhausted_epoch_after_a_fence_rotates_too() {
    let mut h = harness_with_epoch(i16::MAX - 2);
    let producer = h.init("txn");
    assert_eq!(h.add("txn", producer, &[("t", &[0])]), 0);
    // Fencing takes the epoch to i16::MAX, never handed out.
    assert_eq!(
        h.init_full("txn", None, INIT_VERSION).error_code,
        code(ResponseError::ConcurrentTransactions)
    );
    assert_eq!(h.markers[0].producer_epoch, i16::MAX);
    h.write_markers();
    assert_eq!(h.init("txn"), (FIRST_PRODUCER_ID + 2, 0));
}

#[test]
fn kip_360_current_producer_bumps_its_epoch() {
    let mut h = Harness::new();
    let producer = h.init("txn");
    let response = h.init_full("txn", Some(producer), INIT_VERSION);
    assert_eq!(response.error_code, 0);
    assert_eq!(
        (response.producer_id.0, response.producer_epoch),
        (producer.0, 1)
    );
    assert_eq!(
        h.coordinator
            .transaction("txn")
            .unwrap()
            .last_producer_epoch,
        0
    );

    // A retry of that bump (the answer was lost) gets the same epoch, not another bump.
    let retry = h.init_full("txn", Some(producer), INIT_VERSION);
    assert_eq!(retry.error_code, 0);
    assert_eq!(retry.producer_epoch, 1);

    // A stale epoch is fenced.
    let stale = h.init_full("txn", Some((producer.0, 5)), INIT_VERSION);
    assert_eq!(stale.error_code, code(ResponseError::ProducerFenced));
    // Before v4 the same error is INVALID_PRODUCER_EPOCH.
    let stale = h.init_full("txn", Some((producer.0, 5)), 3);
    assert_eq!(stale.error_code, code(ResponseError::InvalidProducerEpoch));
}

#[test]
fn kip_360_a_plain_init_forgets_the_last_epoch() {
    let mut h = Harness::new();
    let producer = h.init("txn");
    assert_eq!(
        h.init_full("txn", Some(producer), INIT_VERSION)
            .producer_epoch,
        1
    );
    // Another instance initialises without an expected epoch: the old retry is fenced.
    assert_eq!(h.init("txn"), (producer.0, 2));
    let retry = h.init_full("txn", Some(producer), INIT_VERSION);
    assert_eq!(retry.error_code, code(ResponseError::ProducerFenced));
}

#[test]
fn kip_360_another_producer_id_is_fenced() {
    let mut h = Harness::new();
    let producer = h.init("txn");
    let response = h.init_full("txn", Some((producer.0 + 77, 0)), INIT_VERSION);
    assert_eq!(response.error_code, code(ResponseError::ProducerFenced));
    assert_eq!(h.coordinator.transaction("txn").unwrap().producer_epoch, 0);
}

#[test]
fn kip_360_on_a_new_transactional_id_is_accepted() {
    let mut h = Harness::new();
    let response = h.init_full("txn", Some((42, 3)), INIT_VERSION);
    assert_eq!(response.error_code, 0);
    assert_eq!(
        (response.producer_id.0, response.producer_epoch),
        (FIRST_PRODUCER_ID, 0)
    );
}

#[test]
fn kip_360_retry_after_a_producer_id_rotation() {
    let exhausted = i16::MAX - 1;
    let mut h = harness_with_epoch(exhausted);
    let response = h.init_full("txn", Some((500, exhausted)), INIT_VERSION);
    assert_eq!(response.error_code, 0);
    let rotated = (response.producer_id.0, response.producer_epoch);
    assert_eq!(rotated, (FIRST_PRODUCER_ID, 0));
    assert_eq!(
        h.coordinator
            .transaction("txn")
            .unwrap()
            .last_producer_epoch,
        exhausted
    );

    // The answer was lost: the producer retries with its old id and exhausted epoch.
    let retry = h.init_full("txn", Some((500, exhausted)), INIT_VERSION);
    assert_eq!(retry.error_code, 0);
    assert_eq!((retry.producer_id.0, retry.producer_epoch), rotated);

    // The old producer id with an epoch that is not exhausted is fenced.
    let stale = h.init_full("txn", Some((500, 3)), INIT_VERSION);
    assert_eq!(stale.error_code, code(ResponseError::ProducerFenced));
}

#[test]
fn kip_360_with_a_transaction_open_fences_it_too() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    let response = h.init_full("txn", Some(producer), INIT_VERSION);
    assert_eq!(
        response.error_code,
        code(ResponseError::ConcurrentTransactions)
    );
    h.write_markers();
    // The epoch was bumped by the fence: the producer's epoch is no longer current.
    let response = h.init_full("txn", Some(producer), INIT_VERSION);
    assert_eq!(response.error_code, code(ResponseError::ProducerFenced));
}

#[test]
fn a_failed_append_answers_the_mapped_error_and_changes_nothing() {
    let mut h = Harness::new();
    h.init("txn");
    for (produce_error, answer) in [
        (
            ResponseError::NotLeaderOrFollower,
            ResponseError::NotCoordinator,
        ),
        (
            ResponseError::NotEnoughReplicas,
            ResponseError::CoordinatorNotAvailable,
        ),
        (
            ResponseError::RequestTimedOut,
            ResponseError::CoordinatorNotAvailable,
        ),
        (
            ResponseError::MessageTooLarge,
            ResponseError::UnknownServerError,
        ),
        (
            ResponseError::KafkaStorageError,
            ResponseError::NotCoordinator,
        ),
    ] {
        h.fail_appends = Some(produce_error);
        let response = h.init_full("txn", None, INIT_VERSION);
        assert_eq!(response.error_code, code(answer), "{produce_error:?}");
        let metadata = h.coordinator.transaction("txn").unwrap();
        assert_eq!(metadata.producer_epoch, 0);
        assert!(metadata.pending_state.is_none());
    }
    h.fail_appends = None;
    assert_eq!(h.init("txn"), (FIRST_PRODUCER_ID, 1));
}

#[test]
fn a_new_id_whose_first_append_failed_keeps_its_producer_id() {
    let mut h = Harness::new();
    h.fail_appends = Some(ResponseError::NotEnoughReplicas);
    let response = h.init_full("txn", None, INIT_VERSION);
    assert_eq!(
        response.error_code,
        code(ResponseError::CoordinatorNotAvailable)
    );
    h.fail_appends = None;
    assert_eq!(h.init("txn"), (FIRST_PRODUCER_ID, 0));
}
