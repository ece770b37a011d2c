//! Idempotent producers through `Log::append_as_leader`, and their state after restarts.

mod common;

use std::path::Path;

use common::{BatchSpec, encode_batch};
use strata_storage::{Log, LogConfig, LogError};

const PID: i64 = 1000;

fn batch(epoch: i16, seq: i32, count: usize) -> bytes::Bytes {
    encode_batch(&BatchSpec {
        count,
        producer_id: PID,
        producer_epoch: epoch,
        base_sequence: seq,
        ..BatchSpec::default()
    })
}

fn open(path: &Path, clean: bool, config: LogConfig) -> Log {
    Log::open(path.to_path_buf(), config, clean, 0, 0, 0).unwrap()
}

#[test]
fn duplicate_out_of_order_and_fencing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir.path().join("t-0"), true, LogConfig::default());
    let first = log.append_as_leader(&batch(0, 0, 3), 0, 0).unwrap();
    assert_eq!((first.first_offset, first.last_offset), (0, 2));
    log.append_as_leader(&batch(0, 3, 2), 0, 0).unwrap();

    let retry = log.append_as_leader(&batch(0, 0, 3), 0, 0).unwrap();
    assert!(retry.duplicate);
    assert_eq!((retry.first_offset, retry.last_offset), (0, 2));
    assert_eq!(log.log_end_offset(), 5);

    assert!(matches!(
        log.append_as_leader(&batch(0, 9, 1), 0, 0),
        Err(LogError::OutOfOrderSequence {
            producer_id: PID,
            first_sequence: 9,
            expected_sequence: 5,
            ..
        })
    ));
    // A bumped epoch starts over at 0 and fences the old one.
    assert_eq!(
        log.append_as_leader(&batch(1, 0, 1), 0, 0)
            .unwrap()
            .first_offset,
        5
    );
    assert!(matches!(
        log.append_as_leader(&batch(0, 5, 1), 0, 0),
        Err(LogError::InvalidProducerEpoch {
            producer_epoch: 0,
            current_epoch: 1,
            ..
        })
    ));
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(
        log.producer_state().last_entry(PID).unwrap().producer_epoch,
        1
    );
}

#[test]
fn a_request_with_an_invalid_batch_appends_nothing_and_leaves_state_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir.path().join("t-0"), true, LogConfig::default());
    let mut request = batch(0, 0, 1).to_vec();
    request.extend_from_slice(&batch(0, 5, 1));
    assert!(matches!(
        log.append_as_leader(&request, 0, 0),
        Err(LogError::OutOfOrderSequence { .. })
    ));
    assert_eq!(log.log_end_offset(), 0);
    assert!(log.producer_state().last_entry(PID).is_none());
    // Two in-sequence batches in one request are fine.
    let mut request = batch(0, 0, 1).to_vec();
    request.extend_from_slice(&batch(0, 1, 2));
    let info = log.append_as_leader(&request, 0, 0).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 2));
}

#[test]
fn state_is_rebuilt_from_the_log_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let size = batch(0, 0, 2).len() as u64;
    let config = LogConfig {
        segment_bytes: size * 3,
        ..LogConfig::default()
    };
    {
        let mut log = open(&path, true, config.clone());
        for i in 0..8 {
            log.append_as_leader(&batch(0, i * 2, 2), 0, 0).unwrap();
        }
        assert!(log.number_of_segments() > 1);
        // Dropped without close: the crash loses no acknowledged data (page cache), but
        // no final snapshot is written either.
    }
    let mut log = open(&path, false, config.clone());
    assert_eq!(log.log_end_offset(), 16);
    // Retrying any of the last five batches is still recognised.
    let retry = log.append_as_leader(&batch(0, 14, 2), 0, 0).unwrap();
    assert!(retry.duplicate);
    assert_eq!((retry.first_offset, retry.last_offset), (14, 15));
    let retry = log.append_as_leader(&batch(0, 6, 2), 0, 0).unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.first_offset, 6);
    assert!(matches!(
        log.append_as_leader(&batch(0, 20, 1), 0, 0),
        Err(LogError::OutOfOrderSequence {
            expected_sequence: 16,
            ..
        })
    ));
    assert_eq!(
        log.append_as_leader(&batch(0, 16, 1), 0, 0)
            .unwrap()
            .first_offset,
        16
    );
    log.close().unwrap();

    // After a clean close the snapshot at the log end offset is enough.
    let snapshot = path.join("00000000000000000017.snapshot");
    assert!(snapshot.exists());
    let mut log = open(&path, true, config);
    assert!(
        log.append_as_leader(&batch(0, 16, 1), 0, 0)
            .unwrap()
            .duplicate
    );
}

#[test]
fn a_stale_snapshot_beyond_a_truncated_log_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    {
        let mut log = open(&path, true, LogConfig::default());
        for i in 0..4 {
            log.append_as_leader(&batch(0, i, 1), 0, 0).unwrap();
        }
        log.close().unwrap();
    }
    // The last batch is torn by the crash, but the snapshot at offset 4 survived.
    let segment = path.join("00000000000000000000.log");
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let mut log = open(&path, false, LogConfig::default());
    assert_eq!(log.log_end_offset(), 3);
    assert!(!path.join("00000000000000000004.snapshot").exists());
    // Sequence 3 was lost with the torn batch; the producer's retry is appended, not a
    // duplicate.
    let info = log.append_as_leader(&batch(0, 3, 1), 0, 0).unwrap();
    assert!(!info.duplicate);
    assert_eq!(info.first_offset, 3);
}

#[test]
fn unknown_producers_may_start_at_any_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir.path().join("t-0"), true, LogConfig::default());
    assert_eq!(
        log.append_as_leader(&batch(3, 500, 1), 0, 0)
            .unwrap()
            .first_offset,
        0
    );
    assert_eq!(
        log.append_as_leader(&batch(3, 501, 1), 0, 0)
            .unwrap()
            .first_offset,
        1
    );
}
