//! `tick`: transaction timeouts and transactional-id expiry.

use super::*;

const ABORT_INTERVAL_MS: i64 = 10_000;
const EXPIRATION_MS: i64 = 604_800_000;
const EXPIRATION_INTERVAL_MS: i64 = 3_600_000;

#[test]
fn a_transaction_open_past_its_timeout_is_aborted_with_a_bumped_epoch() {
    let mut h = Harness::new();
    h.tick(); // Starts the check intervals at 0.
    let producer = h.begin("txn", &[("t", &[0])]);
    h.now_ms = i64::from(TIMEOUT_MS);
    h.tick();
    h.now_ms = 6 * ABORT_INTERVAL_MS;
    h.tick();
    assert_eq!(
        h.state("txn"),
        TransactionState::Ongoing,
        "not yet past the timeout"
    );
    h.now_ms = 7 * ABORT_INTERVAL_MS;
    h.tick();
    let value = h.last_value("txn").unwrap();
    assert_eq!(value.state, TransactionState::PrepareAbort);
    assert_eq!(value.producer_epoch, producer.1 + 1);
    assert_eq!(h.markers.len(), 1);
    assert_eq!(h.markers[0].result, TransactionResult::Abort);
    assert_eq!(h.markers[0].producer_epoch, producer.1 + 1);
    assert_eq!(h.coordinator.stats().timed_out_aborts_total, 1);

    // The producer is fenced, whatever it tries next.
    assert_eq!(
        h.end("txn", producer, true),
        code(ResponseError::ProducerFenced)
    );
    h.write_markers();
    assert_eq!(h.state("txn"), TransactionState::CompleteAbort);
    assert_eq!(
        h.add("txn", producer, &[("t", &[0])]),
        code(ResponseError::ProducerFenced)
    );
    assert_eq!(
        h.end("txn", producer, false),
        code(ResponseError::ProducerFenced)
    );
    // A new instance carries on.
    assert_eq!(h.init("txn"), (producer.0, producer.1 + 2));
}

#[test]
fn timeouts_are_checked_only_every_cleanup_interval() {
    let mut h = Harness::new();
    h.tick();
    h.begin("txn", &[("t", &[0])]);
    h.now_ms = i64::from(TIMEOUT_MS) + 1;
    h.tick(); // 60 001 >= 10 000: a check, and the transaction timed out.
    assert_eq!(h.state("txn"), TransactionState::PrepareAbort);

    let mut h = Harness::new();
    h.begin("txn", &[("t", &[0])]);
    h.tick(); // First check at 0; next at 10 000.
    h.now_ms = i64::from(TIMEOUT_MS) + 1;
    let before = h.values("txn").len();
    let out = h.coordinator.tick(i64::from(TIMEOUT_MS) + 1);
    h.perform(out);
    assert!(h.values("txn").len() > before);

    let mut h = Harness::new();
    h.begin("txn", &[("t", &[0])]);
    h.now_ms = 55_000;
    h.tick(); // Checks; next at 65 000.
    h.now_ms = 61_000;
    h.tick();
    assert_eq!(h.state("txn"), TransactionState::Ongoing, "between checks");
    h.now_ms = 65_000;
    h.tick();
    assert_eq!(h.state("txn"), TransactionState::PrepareAbort);
}

#[test]
fn the_timeout_counts_from_the_first_partition() {
    let mut h = Harness::new();
    let producer = h.init("txn");
    h.now_ms = 50_000;
    assert_eq!(h.add("txn", producer, &[("t", &[0])]), 0);
    h.now_ms = 100_000;
    h.tick();
    assert_eq!(h.state("txn"), TransactionState::Ongoing);
    h.now_ms = 110_001;
    h.tick();
    assert_eq!(h.state("txn"), TransactionState::PrepareAbort);
}

#[test]
fn a_transaction_with_a_change_in_flight_is_not_aborted() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    h.hold_appends = true;
    let request_id = h.send_add("txn", producer, &[("t", &[1])], ADD_VERSION);
    h.now_ms = 100_000;
    h.tick();
    assert_eq!(h.held.len(), 1, "no abort appended");
    h.release_appends();
    assert_eq!(
        h.add_response(request_id).results_by_topic_v3_and_below[0].results_by_partition[0]
            .partition_error_code,
        0
    );
    h.now_ms = 110_000;
    h.tick();
    assert_eq!(h.state("txn"), TransactionState::PrepareAbort);
}

#[test]
fn a_failed_timeout_abort_is_retried_without_another_bump() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    h.fail_appends = Some(ResponseError::NotEnoughReplicas);
    h.now_ms = 100_000;
    h.tick();
    let metadata = h.coordinator.transaction("txn").unwrap();
    assert_eq!(metadata.state, TransactionState::Ongoing);
    assert_eq!(metadata.producer_epoch, producer.1 + 1);
    assert!(metadata.has_failed_epoch_fence);
    // The old producer is fenced already.
    h.fail_appends = None;
    assert_eq!(
        h.end("txn", producer, true),
        code(ResponseError::ProducerFenced)
    );
    h.now_ms += ABORT_INTERVAL_MS;
    h.tick();
    assert_eq!(h.state("txn"), TransactionState::PrepareAbort);
    assert_eq!(h.last_value("txn").unwrap().producer_epoch, producer.1 + 1);
    assert_eq!(h.coordinator.stats().timed_out_aborts_total, 2);
}

#[test]
fn idle_transactional_ids_expire_with_a_tombstone() {
    let mut h = Harness::new();
    h.tick();
    h.init("empty");
    let producer = h.begin("committed", &[("t", &[0])]);
    assert_eq!(h.end("committed", producer, true), 0);
    h.write_markers();
    h.begin("ongoing", &[("t", &[1])]);
    h.init("recent");
    // "recent" is used again later than the others.
    h.now_ms = EXPIRATION_INTERVAL_MS;
    h.init("recent");

    h.now_ms = EXPIRATION_MS;
    h.tick();
    // "ongoing" was aborted by its timeout at this tick; its markers are still being
    // written, so it is not expired.
    assert!(h.coordinator.transaction("empty").is_none());
    assert!(h.coordinator.transaction("committed").is_none());
    assert!(h.coordinator.transaction("recent").is_some());
    assert!(h.coordinator.transaction("ongoing").is_some());
    assert_eq!(h.last_value("empty"), None);
    assert_eq!(h.last_value("committed"), None);
    assert_eq!(h.coordinator.stats().expired_transactional_ids_total, 2);

    h.now_ms = EXPIRATION_MS + EXPIRATION_INTERVAL_MS;
    h.tick();
    assert!(
        h.coordinator.transaction("recent").is_none(),
        "idle exactly the expiration"
    );

    // An expired id starts over with a new producer id.
    let next = h.next_producer_id;
    assert_eq!(h.init("empty"), (next, 0));
}

#[test]
fn expiry_batches_tombstones_per_partition_and_waits_for_the_write() {
    let mut h = Harness::with_config(TransactionCoordinatorConfig {
        transaction_state_log_num_partitions: 1,
        ..TransactionCoordinatorConfig::default()
    });
    h.init("a");
    h.init("b");
    h.hold_appends = true;
    h.now_ms = EXPIRATION_MS;
    h.tick();
    assert_eq!(h.held.len(), 1);
    assert_eq!(
        h.held[0].2,
        vec![
            transaction_log::tombstone("a"),
            transaction_log::tombstone("b")
        ]
    );
    assert_eq!(
        h.coordinator.transaction("a").unwrap().pending_state,
        Some(TransactionState::Dead)
    );
    // Meanwhile the id is busy.
    h.hold_appends = false;
    let response = h.init_full("a", None, INIT_VERSION);
    assert_eq!(
        response.error_code,
        code(ResponseError::ConcurrentTransactions)
    );
    h.hold_appends = true;
    h.release_appends();
    assert!(h.coordinator.transaction("a").is_none());
    assert!(h.coordinator.transaction("b").is_none());
}

#[test]
fn a_failed_tombstone_write_keeps_the_id() {
    let mut h = Harness::new();
    let producer = h.init("txn");
    h.fail_appends = Some(ResponseError::NotEnoughReplicas);
    h.now_ms = EXPIRATION_MS;
    h.tick();
    let metadata = h.coordinator.transaction("txn").unwrap();
    assert!(metadata.pending_state.is_none());
    h.fail_appends = None;
    assert_eq!(h.init("txn"), (producer.0, producer.1 + 1));
    assert_eq!(h.coordinator.stats().expired_transactional_ids_total, 0);
}

#[test]
fn open_transactions_never_expire() {
    let mut h = Harness::with_config(TransactionCoordinatorConfig {
        transaction_max_timeout_ms: i32::MAX,
        ..TransactionCoordinatorConfig::default()
    });
    let request_id = h.send_init(Some("txn"), i32::MAX, None, INIT_VERSION);
    let response = h.init_response(request_id);
    let producer = (response.producer_id.0, response.producer_epoch);
    assert_eq!(h.add("txn", producer, &[("t", &[0])]), 0);
    h.now_ms = 2 * EXPIRATION_MS;
    h.tick();
    assert_eq!(h.state("txn"), TransactionState::Ongoing);
}
