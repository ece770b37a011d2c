//! AddPartitionsToTxn (client and broker versions) and AddOffsetsToTxn.

use super::*;
use crate::transaction_log::CONSUMER_OFFSETS_TOPIC;

#[test]
fn adding_partitions_starts_the_transaction_after_the_append() {
    let mut h = Harness::new();
    let producer = h.init("txn");
    h.advance(100);
    h.hold_appends = true;
    let request_id = h.send_add("txn", producer, &[("t", &[1, 0]), ("u", &[3])], ADD_VERSION);
    assert!(h.responses.is_empty());
    assert_eq!(h.state("txn"), TransactionState::Empty);
    assert_eq!(
        h.coordinator.transaction("txn").unwrap().pending_state,
        Some(TransactionState::Ongoing)
    );
    h.release_appends();
    let response = h.add_response(request_id);
    // Answered per partition in request order.
    let answered: Vec<(String, Vec<(i32, i16)>)> = response
        .results_by_topic_v3_and_below
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.results_by_partition
                    .iter()
                    .map(|p| (p.partition_index, p.partition_error_code))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        answered,
        vec![
            ("t".to_owned(), vec![(1, 0), (0, 0)]),
            ("u".to_owned(), vec![(3, 0)])
        ]
    );
    let metadata = h.coordinator.transaction("txn").unwrap();
    assert_eq!(metadata.state, TransactionState::Ongoing);
    assert_eq!(metadata.start_timestamp_ms, 100);
    let value = h.last_value("txn").unwrap();
    assert_eq!(value.state, TransactionState::Ongoing);
    assert_eq!(
        value.topic_partitions().collect::<Vec<_>>(),
        vec![tp("t", 0), tp("t", 1), tp("u", 3)]
    );
    assert_eq!(value.start_timestamp_ms, 100);
    assert_eq!(h.coordinator.stats().ongoing_transactions, 1);
}

#[test]
fn more_partitions_extend_the_transaction_and_keep_its_start() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    h.advance(500);
    assert_eq!(h.add("txn", producer, &[("t", &[1])]), 0);
    let value = h.last_value("txn").unwrap();
    assert_eq!(
        value.topic_partitions().collect::<Vec<_>>(),
        vec![tp("t", 0), tp("t", 1)]
    );
    assert_eq!(
        (value.start_timestamp_ms, value.last_update_timestamp_ms),
        (0, 500)
    );
}

#[test]
fn partitions_already_in_the_transaction_are_acknowledged_without_an_append() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0, 1])]);
    let records = h.values("txn").len();
    assert_eq!(h.add("txn", producer, &[("t", &[1])]), 0);
    assert_eq!(h.values("txn").len(), records);
}

#[test]
fn producer_id_and_epoch_must_be_the_current_ones() {
    let mut h = Harness::new();
    assert_eq!(
        h.add("unknown", (1, 0), &[("t", &[0])]),
        code(ResponseError::InvalidProducerIdMapping)
    );
    let producer = h.init("txn");
    assert_eq!(
        h.add("txn", (producer.0 + 1, producer.1), &[("t", &[0])]),
        code(ResponseError::InvalidProducerIdMapping)
    );
    h.init("txn");
    assert_eq!(
        h.add("txn", producer, &[("t", &[0])]),
        code(ResponseError::ProducerFenced)
    );
    // Before v2 a fenced producer hears INVALID_PRODUCER_EPOCH.
    assert_eq!(
        h.add_at("txn", producer, &[("t", &[0])], 1),
        code(ResponseError::InvalidProducerEpoch)
    );
    assert_eq!(
        h.add("", producer, &[("t", &[0])]),
        code(ResponseError::InvalidRequest)
    );
    assert_eq!(h.state("txn"), TransactionState::Empty);
}

#[test]
fn adding_while_the_last_transaction_completes_is_concurrent() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    assert_eq!(h.end("txn", producer, true), 0);
    assert_eq!(
        h.add("txn", producer, &[("t", &[0])]),
        code(ResponseError::ConcurrentTransactions)
    );
    h.write_markers();
    h.advance(10);
    // The next transaction starts now.
    assert_eq!(h.add("txn", producer, &[("t", &[0])]), 0);
    assert_eq!(
        h.coordinator.transaction("txn").unwrap().start_timestamp_ms,
        10
    );
}

#[test]
fn adding_while_an_add_is_being_written_is_concurrent() {
    let mut h = Harness::new();
    let producer = h.init("txn");
    h.hold_appends = true;
    let first = h.send_add("txn", producer, &[("t", &[0])], ADD_VERSION);
    h.hold_appends = false;
    assert_eq!(
        h.add("txn", producer, &[("t", &[1])]),
        code(ResponseError::ConcurrentTransactions)
    );
    h.hold_appends = true;
    h.release_appends();
    let response = h.add_response(first);
    assert_eq!(
        response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
}

#[test]
fn a_failed_add_leaves_the_transaction_unchanged() {
    let mut h = Harness::new();
    let producer = h.init("txn");
    h.fail_appends = Some(ResponseError::NotEnoughReplicasAfterAppend);
    assert_eq!(
        h.add("txn", producer, &[("t", &[0])]),
        code(ResponseError::CoordinatorNotAvailable)
    );
    let metadata = h.coordinator.transaction("txn").unwrap();
    assert_eq!(metadata.state, TransactionState::Empty);
    assert!(metadata.partitions.is_empty());
    assert!(metadata.pending_state.is_none());
    h.fail_appends = None;
    assert_eq!(h.add("txn", producer, &[("t", &[0])]), 0);
}

#[test]
fn add_offsets_adds_the_groups_consumer_offsets_partition() {
    let mut h = Harness::new();
    let producer = h.init("txn");
    assert_eq!(
        h.add_offsets("txn", producer, "my-group", ADD_OFFSETS_VERSION),
        0
    );
    let partition = transaction_log::partition_for("my-group", 50);
    assert_eq!(
        h.coordinator
            .transaction("txn")
            .unwrap()
            .partitions
            .iter()
            .cloned()
            .collect::<Vec<_>>(),
        vec![tp(CONSUMER_OFFSETS_TOPIC, partition)]
    );
    assert_eq!(h.state("txn"), TransactionState::Ongoing);
    // The offsets partition gets a marker at the end.
    assert_eq!(h.end("txn", producer, true), 0);
    assert_eq!(
        h.markers[0].partitions,
        vec![tp(CONSUMER_OFFSETS_TOPIC, partition)]
    );
}

#[test]
fn add_offsets_uses_the_configured_offsets_partition_count() {
    let mut h = Harness::with_config(TransactionCoordinatorConfig {
        offsets_topic_num_partitions: 3,
        ..TransactionCoordinatorConfig::default()
    });
    let producer = h.init("txn");
    assert_eq!(
        h.add_offsets("txn", producer, "my-group", ADD_OFFSETS_VERSION),
        0
    );
    let expected = transaction_log::partition_for("my-group", 3);
    assert!(
        h.coordinator
            .transaction("txn")
            .unwrap()
            .partitions
            .contains(&tp(CONSUMER_OFFSETS_TOPIC, expected))
    );
}

#[test]
fn add_offsets_errors_follow_add_partitions() {
    let mut h = Harness::new();
    assert_eq!(
        h.add_offsets("txn", (1, 0), "g", ADD_OFFSETS_VERSION),
        code(ResponseError::InvalidProducerIdMapping)
    );
    let producer = h.init("txn");
    h.init("txn");
    assert_eq!(
        h.add_offsets("txn", producer, "g", ADD_OFFSETS_VERSION),
        code(ResponseError::ProducerFenced)
    );
    assert_eq!(
        h.add_offsets("txn", producer, "g", 1),
        code(ResponseError::InvalidProducerEpoch)
    );
}

fn send_batch(
    h: &mut Harness,
    transactions: Vec<
        kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTransaction,
    >,
) -> u64 {
    let mut request = AddPartitionsToTxnRequest::default();
    request.transactions = transactions;
    let request_id = h.request_id();
    let out = h
        .coordinator
        .handle_add_partitions_to_txn(request, 5, request_id, h.now_ms);
    h.perform(out);
    request_id
}

/// `(transactional id, [(topic, partition, error)])` of a v4+ answer.
/// `(topic, partition, error)` per partition.
type PartitionErrors = Vec<(String, i32, i16)>;

fn batch_results(response: &AddPartitionsToTxnResponse) -> Vec<(String, PartitionErrors)> {
    response
        .results_by_transaction
        .iter()
        .map(|r| {
            (
                r.transactional_id.0.to_string(),
                r.topic_results
                    .iter()
                    .flat_map(|t| {
                        t.results_by_partition.iter().map(|p| {
                            (
                                t.name.0.to_string(),
                                p.partition_index,
                                p.partition_error_code,
                            )
                        })
                    })
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn verify_only_answers_whether_partitions_are_in_the_transaction() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    let other = h.init("other");
    let records = h.log.values().map(Vec::len).sum::<usize>();
    let request_id = send_batch(
        &mut h,
        vec![
            batch_transaction("txn", producer, &[("t", &[0, 1])], true),
            batch_transaction("txn-unknown", (5, 0), &[("t", &[0])], true),
            batch_transaction("other", (other.0, other.1 + 1), &[("t", &[0])], true),
            batch_transaction("other", other, &[("t", &[0])], true),
        ],
    );
    let response = h.add_response(request_id);
    assert_eq!(response.error_code, 0);
    assert_eq!(
        batch_results(&response),
        vec![
            (
                "txn".to_owned(),
                vec![
                    ("t".to_owned(), 0, 0),
                    ("t".to_owned(), 1, code(ResponseError::TransactionAbortable))
                ]
            ),
            (
                "txn-unknown".to_owned(),
                vec![(
                    "t".to_owned(),
                    0,
                    code(ResponseError::InvalidProducerIdMapping)
                )]
            ),
            (
                "other".to_owned(),
                vec![("t".to_owned(), 0, code(ResponseError::ProducerFenced))]
            ),
            (
                "other".to_owned(),
                vec![("t".to_owned(), 0, code(ResponseError::TransactionAbortable))]
            ),
        ]
    );
    // Nothing changed.
    assert_eq!(h.log.values().map(Vec::len).sum::<usize>(), records);
    assert_eq!(h.state("other"), TransactionState::Empty);
}

#[test]
fn verify_only_during_the_markers_is_concurrent() {
    let mut h = Harness::new();
    let producer = h.begin("txn", &[("t", &[0])]);
    assert_eq!(h.end("txn", producer, true), 0);
    let request_id = send_batch(
        &mut h,
        vec![batch_transaction("txn", producer, &[("t", &[0])], true)],
    );
    let response = h.add_response(request_id);
    assert_eq!(
        batch_results(&response)[0].1,
        vec![(
            "t".to_owned(),
            0,
            code(ResponseError::ConcurrentTransactions)
        )]
    );
}

#[test]
fn a_batch_is_answered_once_every_transaction_has_its_result() {
    let mut h = Harness::new();
    let a = h.init("a");
    let b = h.begin("b", &[("t", &[0])]);
    h.hold_appends = true;
    let request_id = send_batch(
        &mut h,
        vec![
            batch_transaction("a", a, &[("t", &[5])], false),
            batch_transaction("b", b, &[("t", &[0])], true),
        ],
    );
    assert!(h.responses.is_empty(), "answered before the append");
    h.release_appends();
    let response = h.add_response(request_id);
    assert_eq!(
        batch_results(&response),
        vec![
            ("a".to_owned(), vec![("t".to_owned(), 5, 0)]),
            ("b".to_owned(), vec![("t".to_owned(), 0, 0)]),
        ]
    );
    assert_eq!(h.state("a"), TransactionState::Ongoing);
}

#[test]
fn an_empty_batch_is_answered_at_once() {
    let mut h = Harness::new();
    let request_id = send_batch(&mut h, vec![]);
    assert!(h.add_response(request_id).results_by_transaction.is_empty());
}
