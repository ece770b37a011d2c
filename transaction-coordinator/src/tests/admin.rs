//! DescribeTransactions, ListTransactions and stats.

use kafka_protocol::messages::{DescribeTransactionsRequest, ListTransactionsRequest};

use super::*;

fn describe(h: &Harness, ids: &[&str]) -> kafka_protocol::messages::DescribeTransactionsResponse {
    let mut request = DescribeTransactionsRequest::default();
    request.transactional_ids = ids.iter().map(|id| TransactionalId(s(id))).collect();
    h.coordinator.handle_describe_transactions(request)
}

fn list(
    h: &Harness,
    states: &[&str],
    producer_ids: &[i64],
    duration: i64,
    version: i16,
    matches: impl Fn(&str) -> bool,
) -> kafka_protocol::messages::ListTransactionsResponse {
    let mut request = ListTransactionsRequest::default();
    request.state_filters = states.iter().map(|st| s(st)).collect();
    request.producer_id_filters = producer_ids.iter().map(|p| ProducerId(*p)).collect();
    request.duration_filter = duration;
    h.coordinator
        .handle_list_transactions(request, version, h.now_ms, matches)
}

fn listed(
    response: &kafka_protocol::messages::ListTransactionsResponse,
) -> Vec<(String, i64, String)> {
    response
        .transaction_states
        .iter()
        .map(|t| {
            (
                t.transactional_id.0.to_string(),
                t.producer_id.0,
                t.transaction_state.to_string(),
            )
        })
        .collect()
}

#[test]
fn describe_shows_state_producer_timeout_start_and_partitions() {
    let mut h = Harness::new();
    h.advance(250);
    let producer = h.begin("txn", &[("b", &[2, 0]), ("a", &[7])]);
    h.init("idle");
    let response = describe(&h, &["txn", "idle", "unknown", ""]);
    let states = &response.transaction_states;
    assert_eq!(states.len(), 4);

    let txn = &states[0];
    assert_eq!(txn.error_code, 0);
    assert_eq!(txn.transactional_id.0.as_str(), "txn");
    assert_eq!(txn.transaction_state.as_str(), "Ongoing");
    assert_eq!((txn.producer_id.0, txn.producer_epoch), producer);
    assert_eq!(txn.transaction_timeout_ms, TIMEOUT_MS);
    assert_eq!(txn.transaction_start_time_ms, 250);
    let topics: Vec<(String, Vec<i32>)> = txn
        .topics
        .iter()
        .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
        .collect();
    assert_eq!(
        topics,
        vec![("a".to_owned(), vec![7]), ("b".to_owned(), vec![0, 2])]
    );

    let idle = &states[1];
    assert_eq!(idle.transaction_state.as_str(), "Empty");
    assert_eq!(idle.transaction_start_time_ms, -1);
    assert!(idle.topics.is_empty());

    assert_eq!(
        states[2].error_code,
        code(ResponseError::TransactionalIdNotFound)
    );
    assert_eq!(states[2].transactional_id.0.as_str(), "unknown");
    assert_eq!(states[3].error_code, code(ResponseError::InvalidRequest));
}

#[test]
fn describe_reports_coordinator_errors_per_id() {
    let mut h = Harness::new();
    h.init("txn");
    let partition = h.coordinator.partition_for("txn");
    let out = h.coordinator.begin_loading(partition);
    assert!(out.is_empty());
    assert_eq!(
        describe(&h, &["txn"]).transaction_states[0].error_code,
        code(ResponseError::CoordinatorLoadInProgress)
    );
    let out = h.coordinator.unload_partition(partition);
    assert!(out.is_empty());
    assert_eq!(
        describe(&h, &["txn"]).transaction_states[0].error_code,
        code(ResponseError::NotCoordinator)
    );
}

#[test]
fn describe_follows_the_states() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    assert_eq!(h.end("txn", producer, true), 0);
    let state = |h: &Harness| {
        describe(h, &["txn"]).transaction_states[0]
            .transaction_state
            .to_string()
    };
    assert_eq!(state(&h), "PrepareCommit");
    h.write_markers();
    assert_eq!(state(&h), "CompleteCommit");
    assert!(
        describe(&h, &["txn"]).transaction_states[0]
            .topics
            .is_empty()
    );
}

/// Three transactional ids: "a" Ongoing since 0, "b" Empty, "c" CompleteAbort since 1000.
type Producer = (i64, i16);

fn three_transactions() -> (Harness, Producer, Producer, Producer) {
    let mut h = Harness::new();
    let a = h.begin("a", &[("t", &[0])]);
    let b = h.init("b");
    h.advance(1000);
    let c = h.begin("c", &[("t", &[1])]);
    assert_eq!(h.end("c", c, false), 0);
    h.write_markers();
    h.advance(1000);
    (h, a, b, c)
}

#[test]
fn list_shows_every_transaction_in_id_order() {
    let (h, a, b, c) = three_transactions();
    let response = list(&h, &[], &[], -1, 1, |_| true);
    assert_eq!(response.error_code, 0);
    assert_eq!(
        listed(&response),
        vec![
            ("a".to_owned(), a.0, "Ongoing".to_owned()),
            ("b".to_owned(), b.0, "Empty".to_owned()),
            ("c".to_owned(), c.0, "CompleteAbort".to_owned()),
        ]
    );
}

#[test]
fn list_filters_by_state_and_reports_unknown_states() {
    let (h, ..) = three_transactions();
    let response = list(
        &h,
        &["Ongoing", "CompleteAbort", "Bogus"],
        &[],
        -1,
        1,
        |_| true,
    );
    let ids: Vec<String> = listed(&response).into_iter().map(|(id, ..)| id).collect();
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(
        response
            .unknown_state_filters
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        ["Bogus"]
    );
    // Only unknown states: nothing matches.
    let response = list(&h, &["Bogus"], &[], -1, 1, |_| true);
    assert!(response.transaction_states.is_empty());
}

#[test]
fn list_filters_by_producer_id() {
    let (h, _, b, c) = three_transactions();
    let response = list(&h, &[], &[b.0, c.0, 999_999], -1, 1, |_| true);
    let ids: Vec<String> = listed(&response).into_iter().map(|(id, ..)| id).collect();
    assert_eq!(ids, ["b", "c"]);
    let response = list(&h, &["Empty"], &[c.0], -1, 1, |_| true);
    assert!(response.transaction_states.is_empty());
}

#[test]
fn list_filters_by_duration_from_version_1() {
    let (h, ..) = three_transactions();
    // Now 2000: "a" started at 0, "c" at 1000, "b" never (start -1).
    let response = list(&h, &["Ongoing", "CompleteAbort"], &[], 1500, 1, |_| true);
    let ids: Vec<String> = listed(&response).into_iter().map(|(id, ..)| id).collect();
    assert_eq!(ids, ["a"]);
    let response = list(&h, &["Ongoing", "CompleteAbort"], &[], 1000, 1, |_| true);
    let ids: Vec<String> = listed(&response).into_iter().map(|(id, ..)| id).collect();
    assert_eq!(ids, ["a"], "exactly the duration is not longer than it");
    let response = list(&h, &["Ongoing", "CompleteAbort"], &[], 999, 1, |_| true);
    assert_eq!(response.transaction_states.len(), 2);
    // Version 0 has no duration filter.
    let response = list(&h, &["Ongoing", "CompleteAbort"], &[], 1500, 0, |_| true);
    assert_eq!(response.transaction_states.len(), 2);
}

#[test]
fn list_applies_the_callers_id_pattern() {
    let (h, ..) = three_transactions();
    let response = list(&h, &[], &[], -1, 2, |id| id != "b");
    let ids: Vec<String> = listed(&response).into_iter().map(|(id, ..)| id).collect();
    assert_eq!(ids, ["a", "c"]);
}

#[test]
fn list_waits_for_loading_partitions() {
    let (mut h, ..) = three_transactions();
    let out = h.coordinator.begin_loading(0);
    assert!(out.is_empty());
    let response = list(&h, &[], &[], -1, 1, |_| true);
    assert_eq!(
        response.error_code,
        code(ResponseError::CoordinatorLoadInProgress)
    );
    assert!(response.transaction_states.is_empty());
}

#[test]
fn list_skips_partitions_not_loaded_here() {
    let (mut h, ..) = three_transactions();
    let partition = h.coordinator.partition_for("a");
    let out = h.coordinator.unload_partition(partition);
    assert!(out.is_empty());
    let response = list(&h, &[], &[], -1, 1, |_| true);
    assert!(listed(&response).iter().all(|(id, ..)| id != "a"));
}

#[test]
fn stats_count_states() {
    let (h, ..) = three_transactions();
    let stats = h.coordinator.stats();
    assert_eq!(
        stats.transactions_by_state.len(),
        TransactionState::ALL.len()
    );
    assert_eq!(stats.transactions_by_state[&TransactionState::Ongoing], 1);
    assert_eq!(stats.transactions_by_state[&TransactionState::Empty], 1);
    assert_eq!(
        stats.transactions_by_state[&TransactionState::CompleteAbort],
        1
    );
    assert_eq!(stats.ongoing_transactions, 1);
    assert_eq!(stats.aborts_total, 1);
    assert_eq!(stats.loaded_partitions, 50);
}
