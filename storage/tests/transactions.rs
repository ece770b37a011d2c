//! Transactions in the log: open transactions hold the last stable offset back, markers
//! end them, aborted ones are indexed in `.txnindex` (Kafka's format) and survive restarts,
//! crashes, truncation, replication to a follower and compaction.

mod common;

use std::path::Path;

use common::{BatchSpec, encode_batch, encode_keyed};
use strata_storage::{
    AbortedTxn, CleanupPolicy, ControlType, EndTxnMarker, Log, LogConfig, LogError, RecordBatch,
};

fn txn_batch(pid: i64, epoch: i16, seq: i32, count: usize) -> bytes::Bytes {
    encode_batch(&BatchSpec {
        count,
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        transactional: true,
        ..BatchSpec::default()
    })
}

fn plain_batch(count: usize) -> bytes::Bytes {
    encode_batch(&BatchSpec {
        count,
        ..BatchSpec::default()
    })
}

fn marker(pid: i64, epoch: i16, control: ControlType) -> EndTxnMarker {
    EndTxnMarker {
        producer_id: pid,
        producer_epoch: epoch,
        coordinator_epoch: 0,
        control,
    }
}

/// Appends a producer's batches as the leader the way the broker does when the transaction
/// coordinator confirms the partition: verification first, then the append with its guard.
fn append_verified(
    log: &mut Log,
    records: &[u8],
    leader_epoch: i32,
) -> Result<strata_storage::LogAppendInfo, LogError> {
    let header = *RecordBatch::parse(records).unwrap().header();
    let guard = log.maybe_start_transaction_verification(
        header.producer_id,
        header.base_sequence,
        header.producer_epoch,
        0,
    );
    log.append_as_leader_verified(records, leader_epoch, 0, guard)
}

fn open(path: &Path, clean: bool, config: LogConfig) -> Log {
    Log::open(path.to_path_buf(), config, clean, 0, 0, 0).unwrap()
}

fn commit_all(log: &mut Log) {
    let leo = log.log_end_offset();
    log.maybe_increment_high_watermark(leo);
}

#[test]
fn an_open_transaction_holds_the_last_stable_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir.path().join("t-0"), true, LogConfig::default());
    log.append_as_leader(&plain_batch(2), 0, 0).unwrap(); // 0..=1
    append_verified(&mut log, &txn_batch(7, 0, 0, 3), 0).unwrap(); // 2..=4
    log.append_as_leader(&plain_batch(1), 0, 0).unwrap(); // 5
    commit_all(&mut log);
    assert_eq!(log.high_watermark(), 6);
    assert_eq!(log.last_stable_offset(), 2);
    assert_eq!(
        log.producer_state()
            .ongoing_transactions()
            .collect::<Vec<_>>(),
        [(7, 2)]
    );

    let info = log
        .append_marker_as_leader(&marker(7, 0, ControlType::Commit), 0, 10)
        .unwrap();
    assert_eq!((info.first_offset, info.last_offset), (6, 6));
    // The marker is not replicated yet: the transaction is not stable.
    assert_eq!(log.last_stable_offset(), 2);
    commit_all(&mut log);
    assert_eq!(log.last_stable_offset(), 7);
    assert!(log.collect_aborted_txns(0, 7).is_empty());

    let read = log.read(6, 1 << 20, true, 7).unwrap();
    let batch = RecordBatch::parse(&read.records).unwrap();
    batch.validate().unwrap();
    assert_eq!(
        EndTxnMarker::from_batch(&batch),
        Some(marker(7, 0, ControlType::Commit))
    );
}

#[test]
fn aborted_transactions_are_indexed_and_collected_for_a_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = open(&path, true, LogConfig::default());
    append_verified(&mut log, &txn_batch(1, 0, 0, 2), 0).unwrap(); // 0..=1 pid 1
    append_verified(&mut log, &txn_batch(2, 0, 0, 2), 0).unwrap(); // 2..=3 pid 2
    log.append_marker_as_leader(&marker(1, 0, ControlType::Abort), 0, 0)
        .unwrap(); // 4
    log.append_as_leader(&plain_batch(1), 0, 0).unwrap(); // 5
    log.append_marker_as_leader(&marker(2, 0, ControlType::Abort), 0, 0)
        .unwrap(); // 6
    commit_all(&mut log);
    assert_eq!(log.last_stable_offset(), 7);
    let first = AbortedTxn {
        producer_id: 1,
        first_offset: 0,
        last_offset: 4,
        // pid 2's transaction was still open when pid 1's marker was written.
        last_stable_offset: 2,
    };
    let second = AbortedTxn {
        producer_id: 2,
        first_offset: 2,
        last_offset: 6,
        last_stable_offset: 7,
    };
    assert_eq!(log.collect_aborted_txns(0, 7), [first, second]);
    assert_eq!(log.collect_aborted_txns(5, 7), [second]);
    assert_eq!(log.collect_aborted_txns(0, 1), [first]);
    assert!(log.collect_aborted_txns(7, 7).is_empty());

    // Kafka's file format: 34-byte entries.
    let index = std::fs::read(path.join("00000000000000000000.txnindex")).unwrap();
    assert_eq!(index.len(), 68);
    assert_eq!(&index[0..2], &[0, 0]);
    assert_eq!(&index[2..10], &1i64.to_be_bytes());
    assert_eq!(&index[18..26], &4i64.to_be_bytes());
    assert_eq!(&index[26..34], &2i64.to_be_bytes());

    log.close().unwrap();
    let log = open(&path, true, LogConfig::default());
    assert_eq!(log.collect_aborted_txns(0, 7), [first, second]);
}

#[test]
fn writes_against_the_transaction_state_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir.path().join("t-0"), true, LogConfig::default());
    append_verified(&mut log, &txn_batch(3, 1, 0, 1), 0).unwrap();
    // A non-transactional write of a producer whose transaction is open.
    let plain = encode_batch(&BatchSpec {
        producer_id: 3,
        producer_epoch: 1,
        base_sequence: 1,
        ..BatchSpec::default()
    });
    assert!(matches!(
        log.append_as_leader(&plain, 0, 0),
        Err(LogError::InvalidTxnState(_))
    ));
    // A marker of an older epoch is fenced.
    assert!(matches!(
        log.append_marker_as_leader(&marker(3, 0, ControlType::Commit), 0, 0),
        Err(LogError::InvalidProducerEpoch { .. })
    ));
    // A marker from an older coordinator is fenced once a newer one wrote.
    let mut newer = marker(3, 1, ControlType::Abort);
    newer.coordinator_epoch = 5;
    log.append_marker_as_leader(&newer, 0, 0).unwrap();
    let mut older = marker(3, 1, ControlType::Abort);
    older.coordinator_epoch = 4;
    assert!(matches!(
        log.append_marker_as_leader(&older, 0, 0),
        Err(LogError::TransactionCoordinatorFenced { .. })
    ));
    // The next transaction of the producer continues its sequence.
    append_verified(&mut log, &txn_batch(3, 1, 1, 1), 0).unwrap();
    assert_eq!(log.producer_state().ongoing_transactions().count(), 1);
}

#[test]
fn open_transactions_survive_a_clean_restart_and_a_crash() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        let config = LogConfig {
            segment_bytes: 400,
            ..LogConfig::default()
        };
        let mut log = open(&path, true, config.clone());
        append_verified(&mut log, &txn_batch(1, 0, 0, 2), 0).unwrap();
        for _ in 0..6 {
            log.append_as_leader(&plain_batch(2), 0, 0).unwrap();
        }
        append_verified(&mut log, &txn_batch(2, 0, 0, 1), 0).unwrap();
        log.append_marker_as_leader(&marker(2, 0, ControlType::Abort), 0, 0)
            .unwrap();
        let leo = log.log_end_offset();
        assert!(
            log.number_of_segments() > 1,
            "the transactions span segments"
        );
        if clean {
            log.close().unwrap();
        } else {
            drop(log); // no close: the snapshot at the end is missing
        }
        let mut log = open(&path, clean, config);
        assert_eq!(log.log_end_offset(), leo);
        assert_eq!(
            log.producer_state()
                .ongoing_transactions()
                .collect::<Vec<_>>(),
            [(1, 0)],
            "clean={clean}"
        );
        log.update_high_watermark(leo);
        assert_eq!(log.last_stable_offset(), 0);
        assert_eq!(log.collect_aborted_txns(0, leo).len(), 1);
        log.append_marker_as_leader(&marker(1, 0, ControlType::Commit), 0, 0)
            .unwrap();
        commit_all(&mut log);
        assert_eq!(log.last_stable_offset(), log.log_end_offset());
    }
}

#[test]
fn truncation_reopens_a_transaction_whose_marker_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir.path().join("t-0"), true, LogConfig::default());
    append_verified(&mut log, &txn_batch(1, 0, 0, 2), 0).unwrap(); // 0..=1
    log.append_marker_as_leader(&marker(1, 0, ControlType::Abort), 0, 0)
        .unwrap(); // 2
    assert_eq!(log.collect_aborted_txns(0, 3).len(), 1);
    log.truncate_to(2).unwrap();
    assert!(log.collect_aborted_txns(0, 3).is_empty());
    assert_eq!(
        log.producer_state()
            .ongoing_transactions()
            .collect::<Vec<_>>(),
        [(1, 0)]
    );
}

#[test]
fn a_follower_learns_transactions_from_the_leaders_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = open(&dir.path().join("leader"), true, LogConfig::default());
    let mut follower = open(&dir.path().join("follower"), true, LogConfig::default());
    append_verified(&mut leader, &txn_batch(9, 2, 0, 3), 4).unwrap();
    leader
        .append_marker_as_leader(&marker(9, 2, ControlType::Abort), 4, 0)
        .unwrap();
    append_verified(&mut leader, &txn_batch(9, 2, 3, 1), 4).unwrap();
    let fetched = leader.read(0, 1 << 20, true, i64::MAX).unwrap();
    follower.append_as_follower(&fetched.records, 0).unwrap();
    assert_eq!(
        follower.collect_aborted_txns(0, 10),
        leader.collect_aborted_txns(0, 10)
    );
    assert_eq!(follower.collect_aborted_txns(0, 10).len(), 1);
    assert_eq!(
        follower
            .producer_state()
            .ongoing_transactions()
            .collect::<Vec<_>>(),
        [(9, 4)]
    );
}

#[test]
fn compaction_drops_aborted_records_and_keeps_markers_and_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-0");
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 300,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    };
    let mut log = open(&path, true, config.clone());
    let keyed = |pid: i64, seq: i32, transactional: bool, key: &str, value: &str| {
        encode_keyed(
            &BatchSpec {
                producer_id: pid,
                producer_epoch: if pid >= 0 { 0 } else { -1 },
                base_sequence: if pid >= 0 { seq } else { -1 },
                transactional,
                ..BatchSpec::default()
            },
            &[(Some(key), Some(value), 1_000)],
        )
    };
    log.append_as_leader(&keyed(-1, 0, false, "k", "committed"), 0, 0)
        .unwrap(); // 0
    append_verified(&mut log, &keyed(5, 0, true, "k", "aborted"), 0).unwrap(); // 1
    log.append_marker_as_leader(&marker(5, 0, ControlType::Abort), 0, 0)
        .unwrap(); // 2
    append_verified(&mut log, &keyed(6, 0, true, "j", "open"), 0).unwrap(); // 3: stays open
    for i in 0..8 {
        log.append_as_leader(&keyed(-1, 0, false, &format!("x{i}"), "v"), 0, 0)
            .unwrap();
    }
    commit_all(&mut log);
    assert_eq!(log.last_stable_offset(), 3);
    log.clean(10_000, true).unwrap();

    let read = log.read(0, 1 << 20, true, 3).unwrap();
    let mut values = Vec::new();
    let mut markers = 0;
    for batch in strata_storage::batch::batches(&read.records) {
        let batch = batch.unwrap();
        if batch.is_control() {
            markers += 1;
            continue;
        }
        let mut buf = bytes::Bytes::copy_from_slice(batch.as_bytes());
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).unwrap();
        for record in set.records {
            values.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
        }
    }
    assert_eq!(values, ["committed"], "the aborted write shadows nothing");
    assert_eq!(markers, 1);
    assert_eq!(log.collect_aborted_txns(0, 3).len(), 1);
    // Nothing at or after the open transaction was touched.
    assert_eq!(log.last_stable_offset(), 3);
    log.close().unwrap();
    let log = open(&path, true, config);
    assert_eq!(log.collect_aborted_txns(0, 3).len(), 1);
}

#[test]
fn a_transactions_first_write_needs_a_current_verification() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir.path().join("t-0"), true, LogConfig::default());
    // Unverified: refused, nothing written, no transaction opened.
    not_in_txn(log.append_as_leader(&txn_batch(1, 0, 0, 2), 0, 0));
    assert_eq!(log.log_end_offset(), 0);

    // Verified: appended; later writes of the open transaction need no guard.
    let guard = log.maybe_start_transaction_verification(1, 0, 0, 0);
    assert!(guard.is_some());
    log.append_as_leader_verified(&txn_batch(1, 0, 0, 2), 0, 0, guard)
        .unwrap();
    assert_eq!(log.maybe_start_transaction_verification(1, 2, 0, 0), None);
    log.append_as_leader(&txn_batch(1, 0, 2, 1), 0, 0).unwrap();
    // The guard was spent by the first write.
    log.append_marker_as_leader(&marker(1, 0, ControlType::Commit), 0, 0)
        .unwrap();
    not_in_txn(log.append_as_leader_verified(&txn_batch(1, 0, 3, 1), 0, 0, guard));

    // A confirmation that arrives after the transaction ended is stale: the marker
    // retired the guard (the hanging-transaction case KIP-890 closes).
    let stale = log.maybe_start_transaction_verification(1, 3, 0, 0);
    log.append_marker_as_leader(&marker(1, 0, ControlType::Abort), 0, 0)
        .unwrap();
    let leo = log.log_end_offset();
    not_in_txn(log.append_as_leader_verified(&txn_batch(1, 0, 3, 1), 0, 0, stale));
    assert_eq!(log.log_end_offset(), leo);
    // A new verification of the same producer hands out a different guard.
    let fresh = log.maybe_start_transaction_verification(1, 3, 0, 0);
    assert_ne!(fresh, stale);
    log.append_as_leader_verified(&txn_batch(1, 0, 3, 1), 0, 0, fresh)
        .unwrap();

    // While a verification is in progress, a higher sequence may not overtake the lowest
    // one it saw (the lower batch would fail out of order for ever).
    let g2 = log.maybe_start_transaction_verification(2, 5, 0, 0);
    assert!(matches!(
        log.append_as_leader_verified(&txn_batch(2, 0, 6, 1), 0, 0, g2),
        Err(LogError::OutOfOrderSequence { .. })
    ));
    log.append_as_leader_verified(&txn_batch(2, 0, 5, 1), 0, 0, g2)
        .unwrap();

    // Plain and idempotent writes are never checked; with verification disabled neither
    // are transactional ones.
    log.append_as_leader(&plain_batch(1), 0, 0).unwrap();
    let mut unverified = open(
        &dir.path().join("t-1"),
        true,
        LogConfig {
            transaction_partition_verification_enable: false,
            ..LogConfig::default()
        },
    );
    assert_eq!(
        unverified.maybe_start_transaction_verification(3, 0, 0, 0),
        None
    );
    unverified
        .append_as_leader(&txn_batch(3, 0, 0, 1), 0, 0)
        .unwrap();
    commit_all(&mut unverified);
    assert_eq!(unverified.last_stable_offset(), 0);
}

#[test]
fn an_unused_verification_expires_with_the_producer_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir.path().join("t-0"), true, LogConfig::default());
    let guard = log.maybe_start_transaction_verification(1, 0, 0, 0);
    let expiration = LogConfig::default().producer_id_expiration_ms;
    log.enforce_retention(expiration).unwrap();
    not_in_txn(log.append_as_leader_verified(&txn_batch(1, 0, 0, 1), 0, 0, guard));
}

fn not_in_txn(r: Result<strata_storage::LogAppendInfo, LogError>) {
    assert!(
        matches!(r, Err(LogError::InvalidTxnState(_))),
        "expected INVALID_TXN_STATE, got {r:?}"
    );
}

#[test]
fn compaction_removes_a_marker_once_its_records_are_gone_and_its_horizon_passed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-0");
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 300,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 100,
        ..LogConfig::default()
    };
    let mut log = open(&path, true, config.clone());
    let keyed = |pid: i64, seq: i32, key: &str, value: &str| {
        encode_keyed(
            &BatchSpec {
                producer_id: pid,
                producer_epoch: 0,
                base_sequence: seq,
                transactional: pid >= 0,
                ..BatchSpec::default()
            },
            &[(Some(key), Some(value), 1_000)],
        )
    };
    append_verified(&mut log, &keyed(7, 0, "k", "first"), 0).unwrap(); // 0
    log.append_marker_as_leader(&marker(7, 0, ControlType::Commit), 0, 0)
        .unwrap(); // 1: its only record is superseded below
    append_verified(&mut log, &keyed(7, 1, "k", "second"), 0).unwrap(); // 2
    log.append_marker_as_leader(&marker(7, 0, ControlType::Commit), 0, 0)
        .unwrap(); // 3: its record stays
    append_verified(&mut log, &keyed(8, 0, "j", "aborted"), 0).unwrap(); // 4
    log.append_marker_as_leader(&marker(8, 0, ControlType::Abort), 0, 0)
        .unwrap(); // 5
    for i in 0..8 {
        log.append_as_leader(
            &encode_keyed(
                &BatchSpec::default(),
                &[(Some(&format!("x{i}")), Some("v"), 1_000)],
            ),
            0,
            0,
        )
        .unwrap();
    }
    commit_all(&mut log);
    let end = log.log_end_offset();
    // Every batch of the log, read segment by segment.
    let everything = |log: &Log| -> Vec<u8> {
        let mut out = Vec::new();
        let mut from = 0;
        while from < end {
            let read = log.read(from, 1 << 20, true, end).unwrap();
            let Some(last) = strata_storage::batch::batches(&read.records)
                .map(|b| b.unwrap().last_offset())
                .last()
            else {
                break;
            };
            out.extend_from_slice(&read.records);
            from = last + 1;
        }
        out
    };
    let markers = |log: &Log| -> Vec<(i64, bool)> {
        strata_storage::batch::batches(&everything(log))
            .map(|b| b.unwrap())
            .filter(|b| b.is_control())
            .map(|b| (b.base_offset(), b.delete_horizon_ms().is_some()))
            .collect()
    };

    // First cleaning: "first" and the aborted record go; the markers left without records
    // get their delete horizon, the one whose record stays does not.
    let stats = log.clean(1_000, true).unwrap();
    assert_eq!(stats.markers_removed, 0);
    assert_eq!(markers(&log), [(1, true), (3, false), (5, true)]);
    assert_eq!(log.collect_aborted_txns(0, end).len(), 1);
    // Before the horizon nothing more goes.
    assert_eq!(log.clean(1_099, true).unwrap().markers_removed, 0);
    assert_eq!(markers(&log).len(), 3);

    // After it, those two markers and the aborted transaction's index entry go.
    let stats = log.clean(1_100, true).unwrap();
    assert_eq!(stats.markers_removed, 2);
    assert_eq!(markers(&log), [(3, false)]);
    assert!(log.collect_aborted_txns(0, end).is_empty());
    assert_eq!(log.last_stable_offset(), log.high_watermark());

    // The rewritten log replicates and reopens as it is.
    let mut follower = open(&dir.path().join("f-0"), true, LogConfig::default());
    follower.append_as_follower(&everything(&log), 0).unwrap();
    commit_all(&mut follower);
    assert_eq!(follower.last_stable_offset(), follower.high_watermark());
    log.close().unwrap();
    let log = open(&path, false, config);
    assert_eq!(markers(&log), [(3, false)]);
    assert!(log.collect_aborted_txns(0, end).is_empty());
}
