//! `__transaction_state` records against Kafka's own serializers
//! (`testdata/transaction-log-records.txt`, made by `generate-transaction-log-records.sh`).

use bytes::Bytes;

use super::*;
use crate::RecordError;
use crate::transaction_log::{TopicPartitions, TransactionLogKey};

const FIXTURE: &str = include_str!("../../testdata/transaction-log-records.txt");

fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex {hex}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// `(name, key, value)` of every record line.
fn fixture_records() -> Vec<(String, Vec<u8>, Option<Vec<u8>>)> {
    FIXTURE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("partition_for"))
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 3, "{line}");
            let value = (fields[2] != "null").then(|| unhex(fields[2]));
            (fields[0].to_owned(), unhex(fields[1]), value)
        })
        .collect()
}

fn fixture(name: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    fixture_records()
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, k, v)| (k, v))
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

fn fixture_value(name: &str) -> TransactionLogValue {
    transaction_log::decode_value(&fixture(name).1.unwrap()).unwrap()
}

#[test]
fn every_fixture_record_decodes_and_encodes_back_to_the_same_bytes() {
    let records = fixture_records();
    assert!(records.len() >= 17, "fixture has {} records", records.len());
    for (name, key, value) in records {
        let TransactionLogKey::Transaction { transactional_id } =
            transaction_log::decode_key(&key).unwrap()
        else {
            panic!("{name}: unknown key");
        };
        assert_eq!(
            transaction_log::key(&transactional_id).as_ref(),
            key.as_slice(),
            "{name}"
        );
        let Some(value) = value else {
            assert_eq!(name, "tombstone");
            assert_eq!(
                transaction_log::tombstone(&transactional_id).key.as_ref(),
                key.as_slice()
            );
            continue;
        };
        let decoded = transaction_log::decode_value(&value).unwrap();
        let version = i16::from_be_bytes([value[0], value[1]]);
        let encoded = transaction_log::encode_value(&decoded, version);
        assert_eq!(
            encoded.as_ref(),
            value.as_slice(),
            "{name} re-encoded at v{version}"
        );
        if version == 0 {
            assert_eq!(
                transaction_log::value(&decoded).as_ref(),
                value.as_slice(),
                "{name}"
            );
        }
    }
}

#[test]
fn version_0_fields_decode_as_kafka_wrote_them() {
    let empty = fixture_value("empty_v0");
    assert_eq!(
        empty,
        TransactionLogValue {
            producer_id: 1000,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: 0,
            next_producer_epoch: -1,
            transaction_timeout_ms: 60_000,
            state: TransactionState::Empty,
            partitions: None,
            last_update_timestamp_ms: 1234,
            start_timestamp_ms: -1,
            client_transaction_version: 0,
        }
    );
    let ongoing = fixture_value("ongoing_v0");
    assert_eq!(ongoing.state, TransactionState::Ongoing);
    assert_eq!(ongoing.producer_epoch, 3);
    assert_eq!(
        ongoing.partitions,
        Some(vec![TopicPartitions {
            topic: "orders".into(),
            partition_ids: vec![0, 2],
        }])
    );
    assert_eq!(
        (ongoing.start_timestamp_ms, ongoing.last_update_timestamp_ms),
        (1000, 1200)
    );
    // Complete states carry an empty, not a null, partition array.
    assert_eq!(fixture_value("complete_commit_v0").partitions, Some(vec![]));
    assert_eq!(
        fixture_value("prepare_abort_v0").state,
        TransactionState::PrepareAbort
    );
    assert_eq!(
        fixture_value("complete_abort_v0").state,
        TransactionState::CompleteAbort
    );
    let unicode = fixture_value("empty_unicode_id_v0");
    assert_eq!(unicode.producer_id, 9_007_199_254_740_993);
    assert_eq!(unicode.producer_epoch, 32766);
    let (key, _) = fixture("empty_unicode_id_v0");
    assert_eq!(
        transaction_log::decode_key(&key).unwrap(),
        TransactionLogKey::Transaction {
            transactional_id: "transäktion".into()
        }
    );
    let two = fixture_value("prepare_commit_two_topics_v0");
    assert_eq!(
        two.topic_partitions().collect::<Vec<_>>(),
        vec![tp("a", 0), tp("a", 1), tp("b", 7)]
    );
}

#[test]
fn version_1_decodes_to_the_same_fields_as_version_0() {
    for (v0, v1) in [
        ("empty_v0", "empty_v1"),
        ("ongoing_v0", "ongoing_v1"),
        ("complete_abort_v0", "complete_abort_v1"),
        (
            "prepare_commit_two_topics_v0",
            "prepare_commit_two_topics_v1",
        ),
    ] {
        assert_eq!(fixture_value(v0), fixture_value(v1), "{v1}");
    }
    assert_eq!(fixture_value("empty_v1").partitions, None);
}

#[test]
fn version_1_tagged_fields_of_kafka_4_are_read() {
    let prepare = fixture_value("prepare_commit_tv2_v1");
    assert_eq!(prepare.producer_id, 2000);
    assert_eq!(prepare.previous_producer_id, 1999);
    assert_eq!(prepare.next_producer_id, 3000);
    assert_eq!(prepare.client_transaction_version, 2);
    assert_eq!(prepare.next_producer_epoch, -1);
    assert_eq!(
        prepare.topic_partitions().collect::<Vec<_>>(),
        vec![tp("orders", 1)]
    );
    let all = fixture_value("ongoing_all_tags_v1");
    assert_eq!(all.next_producer_epoch, 0);
    assert_eq!(all.previous_producer_id, 1999);
    let complete = fixture_value("complete_commit_tv2_v1");
    assert_eq!(
        (complete.producer_id, complete.previous_producer_id),
        (3000, 2000)
    );
    assert_eq!(complete.next_producer_id, -1);
    // Kafka 4 with transaction.version 0 still writes version 0.
    assert_eq!(
        fixture("empty_tv0_written_by_kafka4").1.unwrap()[..2],
        [0, 0]
    );
}

#[test]
fn loading_a_kafka_4_value_keeps_the_previous_producer_id() {
    let value = fixture_value("complete_commit_tv2_v1");
    let metadata = crate::TransactionMetadata::from_log_value("txn-3".into(), &value);
    assert_eq!(metadata.previous_producer_id, 2000);
    assert!(metadata.partitions.is_empty());
}

#[test]
fn partition_for_matches_kafka() {
    let mut checked = 0;
    for line in FIXTURE.lines().filter(|l| l.starts_with("partition_for ")) {
        let fields: Vec<&str> = line.split(' ').collect();
        let id = if fields[1] == "-" {
            String::new()
        } else {
            String::from_utf8(unhex(fields[1])).unwrap()
        };
        let partitions: i32 = fields[2].parse().unwrap();
        let expected: i32 = fields[3].parse().unwrap();
        assert_eq!(
            transaction_log::partition_for(&id, partitions),
            expected,
            "{line}"
        );
        checked += 1;
    }
    assert_eq!(checked, 18);
    // Its hash code is Integer.MIN_VALUE, which Kafka's Utils.abs maps to 0.
    assert_eq!(
        transaction_log::java_string_hash_code("polygenelubricants"),
        i32::MIN
    );
    assert_eq!(transaction_log::partition_for("polygenelubricants", 50), 0);
}

/// The coordinator's own records for a transaction are byte for byte those Kafka writes
/// for the same transitions.
#[test]
fn the_coordinator_writes_the_records_kafka_writes() {
    let mut h = Harness::new();
    h.now_ms = 1234;
    let producer = h.init("txn-1");
    assert_eq!(producer, (FIRST_PRODUCER_ID, 0));
    let partition = h.coordinator.partition_for("txn-1");
    let (key, value) = fixture("empty_v0");
    assert_eq!(h.log[&partition][0].key.as_ref(), key.as_slice());
    assert_eq!(h.log[&partition][0].value.as_deref(), value.as_deref());

    for _ in 0..3 {
        h.init("txn-1");
    }
    let producer = (FIRST_PRODUCER_ID, 3);
    h.now_ms = 1000;
    assert_eq!(h.add("txn-1", producer, &[("orders", &[0])]), 0);
    h.now_ms = 1200;
    assert_eq!(h.add("txn-1", producer, &[("orders", &[2])]), 0);
    let last = |h: &Harness| h.log[&partition].last().unwrap().value.clone().unwrap();
    assert_eq!(Some(last(&h).to_vec()), fixture("ongoing_v0").1);
    h.now_ms = 1300;
    assert_eq!(h.end("txn-1", producer, true), 0);
    assert_eq!(Some(last(&h).to_vec()), fixture("prepare_commit_v0").1);
    h.now_ms = 1500;
    h.write_markers();
    assert_eq!(Some(last(&h).to_vec()), fixture("complete_commit_v0").1);
}

#[test]
fn tombstones_are_null_values() {
    let record = transaction_log::tombstone("txn-1");
    assert_eq!(record.value, None);
    assert_eq!(Some(record.key.to_vec()), Some(fixture("tombstone").0));
}

#[test]
fn malformed_records_are_errors() {
    let value = fixture("ongoing_v0").1.unwrap();
    for cut in [1, 5, 12, 20, value.len() - 1] {
        assert!(
            matches!(
                transaction_log::decode_value(&value[..cut]),
                Err(RecordError::Truncated(_))
            ),
            "cut at {cut}"
        );
    }
    let mut future = value.clone();
    future[1] = 2;
    assert_eq!(
        transaction_log::decode_value(&future),
        Err(RecordError::UnknownVersion {
            schema: "TransactionLogValue",
            version: 2
        })
    );
    let mut bad_status = value.clone();
    bad_status[16] = 9;
    assert_eq!(
        transaction_log::decode_value(&bad_status),
        Err(RecordError::UnknownStatus(9))
    );
    assert_eq!(
        transaction_log::decode_key(&[0, 1, 0, 0]).unwrap(),
        TransactionLogKey::Unknown { version: 1 }
    );
    assert!(matches!(
        transaction_log::decode_key(&[0]),
        Err(RecordError::Truncated(_))
    ));
    assert_eq!(
        transaction_log::decode_key(&[0, 0, 0, 1, 0xff]),
        Err(RecordError::InvalidUtf8("transactional_id"))
    );
}

#[test]
fn unknown_tagged_fields_are_skipped() {
    let mut value = fixture("empty_v1").1.unwrap();
    // Replace "no tagged fields" with one unknown tag 9 of two bytes.
    value.pop();
    value.extend_from_slice(&[1, 9, 2, 0xab, 0xcd]);
    assert_eq!(
        transaction_log::decode_value(&value).unwrap(),
        fixture_value("empty_v1")
    );
}

#[test]
fn state_codes_and_names_are_kafkas() {
    let names: Vec<(&str, i8)> = TransactionState::ALL
        .iter()
        .map(|s| (s.name(), s.id()))
        .collect();
    assert_eq!(
        names,
        [
            ("Empty", 0),
            ("Ongoing", 1),
            ("PrepareCommit", 2),
            ("PrepareAbort", 3),
            ("CompleteCommit", 4),
            ("CompleteAbort", 5),
            ("Dead", 6),
            ("PrepareEpochFence", 7)
        ]
    );
    for state in TransactionState::ALL {
        assert_eq!(TransactionState::from_id(state.id()), Some(state));
        assert_eq!(TransactionState::from_name(state.name()), Some(state));
    }
    assert_eq!(TransactionState::from_id(8), None);
    assert_eq!(TransactionState::from_id(-1), None);
    assert_eq!(TransactionState::from_name("ongoing"), None);
}

#[test]
fn encoding_is_stable_for_long_arrays() {
    // More than 127 partitions: the compact array length takes two varint bytes.
    let value = TransactionLogValue {
        producer_id: 1,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch: 1,
        next_producer_epoch: -1,
        transaction_timeout_ms: 1,
        state: TransactionState::Ongoing,
        partitions: Some(vec![TopicPartitions {
            topic: "t".repeat(200),
            partition_ids: (0..300).collect(),
        }]),
        last_update_timestamp_ms: 1,
        start_timestamp_ms: 1,
        client_transaction_version: 0,
    };
    for version in [0, 1] {
        let bytes: Bytes = transaction_log::encode_value(&value, version);
        assert_eq!(transaction_log::decode_value(&bytes).unwrap(), value);
    }
}
