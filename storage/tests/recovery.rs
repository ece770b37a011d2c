//! Crash recovery: a log reopened without a clean shutdown validates its tail and cuts it
//! at the first torn or corrupt batch.

mod common;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use common::{BatchSpec, encode_batch};
use strata_storage::{Log, LogConfig};

fn batch(count: usize) -> bytes::Bytes {
    encode_batch(&BatchSpec {
        count,
        value_size: 100,
        ..BatchSpec::default()
    })
}

fn config() -> LogConfig {
    LogConfig {
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

/// Appends `n` batches of 2 records, then drops the log without closing it (a crash: the
/// data is in the page cache, no snapshot or index trimming happened).
fn write_and_crash(dir: &Path, config: LogConfig, n: usize) -> PathBuf {
    let path = dir.join("t-0");
    let mut log = Log::open(path.clone(), config, true, 0, 0, 0).unwrap();
    for _ in 0..n {
        log.append_as_leader(&batch(2), 0, 0).unwrap();
    }
    path
}

fn reopen_unclean(path: &Path, config: LogConfig) -> Log {
    Log::open(path.to_path_buf(), config, false, 0, 0, 0).unwrap()
}

fn all_offsets(log: &Log) -> Vec<i64> {
    let read = log
        .read(log.log_start_offset(), usize::MAX, true, i64::MAX)
        .unwrap();
    strata_storage::batch::batches(&read.records)
        .map(|b| b.unwrap().base_offset())
        .collect()
}

#[test]
fn truncated_tail_is_cut_at_the_last_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_and_crash(dir.path(), config(), 10);
    let segment = path.join("00000000000000000000.log");
    let len = std::fs::metadata(&segment).unwrap().len();
    let size = batch(2).len() as u64;
    // Cut the file in the middle of the last batch.
    OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - size / 2)
        .unwrap();
    let mut log = reopen_unclean(&path, config());
    assert_eq!(log.log_end_offset(), 18);
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), size * 9);
    assert_eq!(all_offsets(&log), (0..9).map(|i| i * 2).collect::<Vec<_>>());
    // Appends continue right after the last intact batch.
    assert_eq!(
        log.append_as_leader(&batch(1), 0, 0).unwrap().first_offset,
        18
    );
    for offset in 0..19 {
        assert!(
            !log.read(offset, 1, true, i64::MAX)
                .unwrap()
                .records
                .is_empty()
        );
    }
}

#[test]
fn corrupted_batch_fails_its_crc_and_everything_from_it_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_and_crash(dir.path(), config(), 10);
    let segment = path.join("00000000000000000000.log");
    let size = batch(2).len();
    let mut bytes = std::fs::read(&segment).unwrap();
    // Flip a byte inside the records of the eighth batch.
    bytes[7 * size + 80] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();
    let log = reopen_unclean(&path, config());
    assert_eq!(log.log_end_offset(), 14);
    assert_eq!(all_offsets(&log), (0..7).map(|i| i * 2).collect::<Vec<_>>());
}

#[test]
fn garbage_after_the_last_batch_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_and_crash(dir.path(), config(), 3);
    let segment = path.join("00000000000000000000.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    let good = bytes.len() as u64;
    bytes.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&segment, &bytes).unwrap();
    let log = reopen_unclean(&path, config());
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), good);
}

#[test]
fn corruption_in_an_earlier_segment_drops_the_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let size = batch(2).len() as u64;
    let config = LogConfig {
        segment_bytes: size * 3,
        ..config()
    };
    let path = write_and_crash(dir.path(), config.clone(), 9);
    let segments: Vec<_> = [0, 6, 12]
        .iter()
        .map(|b| path.join(format!("{b:020}.log")))
        .collect();
    assert!(segments.iter().all(|s| s.exists()));
    let mut bytes = std::fs::read(&segments[1]).unwrap();
    bytes[size as usize + 70] ^= 0x01;
    std::fs::write(&segments[1], &bytes).unwrap();
    let log = reopen_unclean(&path, config);
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(log.segment_base_offsets(), vec![0, 6]);
    assert!(!segments[2].exists());
}

#[test]
fn recovery_starts_at_the_recovery_point_segment() {
    let dir = tempfile::tempdir().unwrap();
    let size = batch(2).len() as u64;
    let config = LogConfig {
        segment_bytes: size * 3,
        ..config()
    };
    let path = write_and_crash(dir.path(), config.clone(), 9);
    // Corrupt the first segment, which lies below the recovery point: it is trusted.
    let first = path.join("00000000000000000000.log");
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&first, &bytes).unwrap();
    let log = Log::open(path, config, false, 12, 0, 0).unwrap();
    assert_eq!(log.log_end_offset(), 18);
}

#[test]
fn clean_reopen_trusts_the_files_and_keeps_the_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    {
        let mut log = Log::open(path.clone(), config(), true, 0, 0, 0).unwrap();
        for _ in 0..20 {
            log.append_as_leader(&batch(2), 0, 0).unwrap();
        }
        log.close().unwrap();
    }
    let index = path.join("00000000000000000000.index");
    let trimmed = std::fs::metadata(&index).unwrap().len();
    assert!(trimmed > 0 && trimmed.is_multiple_of(8) && trimmed < 1024);
    let mut log = Log::open(path.clone(), config(), true, 40, 0, 0).unwrap();
    assert_eq!(log.log_end_offset(), 40);
    assert_eq!(log.recovery_point(), 40);
    assert_eq!(all_offsets(&log).len(), 20);
    for offset in 0..40 {
        let read = log.read(offset, 1, true, i64::MAX).unwrap();
        assert_eq!(read.first_batch_offset, Some(offset - offset % 2));
    }
    assert_eq!(
        log.append_as_leader(&batch(1), 0, 0).unwrap().first_offset,
        40
    );
}

#[test]
fn missing_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    {
        let mut log = Log::open(path.clone(), config(), true, 0, 0, 0).unwrap();
        for i in 0..20 {
            let b = encode_batch(&BatchSpec {
                count: 2,
                timestamp: i * 10,
                value_size: 100,
                ..BatchSpec::default()
            });
            log.append_as_leader(&b, 0, 0).unwrap();
        }
        log.close().unwrap();
    }
    std::fs::remove_file(path.join("00000000000000000000.index")).unwrap();
    std::fs::remove_file(path.join("00000000000000000000.timeindex")).unwrap();
    let log = Log::open(path.clone(), config(), true, 40, 0, 0).unwrap();
    assert_eq!(log.log_end_offset(), 40);
    assert!(
        std::fs::metadata(path.join("00000000000000000000.index"))
            .unwrap()
            .len()
            > 0
    );
    assert_eq!(log.fetch_offset_by_timestamp(95).unwrap(), Some((20, 100)));
}

#[test]
fn leftover_temporary_files_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_and_crash(dir.path(), config(), 2);
    for name in [
        "00000000000000000099.log.deleted",
        "00000000000000000099.log.cleaned",
        "00000000000000000077.index",
    ] {
        std::fs::write(path.join(name), b"junk").unwrap();
    }
    let log = reopen_unclean(&path, config());
    assert_eq!(log.log_end_offset(), 4);
    for name in [
        "00000000000000000099.log.deleted",
        "00000000000000000099.log.cleaned",
        "00000000000000000077.index",
    ] {
        assert!(!path.join(name).exists(), "{name}");
    }
}

#[test]
fn a_torn_middle_segment_also_drops_the_segments_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let size = batch(2).len() as u64;
    let config = LogConfig {
        segment_bytes: size * 3,
        ..config()
    };
    let path = write_and_crash(dir.path(), config.clone(), 9);
    let middle = path.join(format!("{:020}.log", 6));
    // Cut the middle segment inside its last batch; opening sees the torn tail at once.
    OpenOptions::new()
        .write(true)
        .open(&middle)
        .unwrap()
        .set_len(size * 2 + 10)
        .unwrap();
    for clean in [false, true] {
        let log = Log::open(path.clone(), config.clone(), clean, 0, 0, 0).unwrap();
        assert_eq!(log.log_end_offset(), 10, "clean={clean}");
        assert_eq!(log.segment_base_offsets(), vec![0, 6]);
        assert!(!path.join(format!("{:020}.log", 12)).exists());
    }
}

#[test]
fn an_epoch_lost_with_the_machine_comes_back_from_the_recovered_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = Log::open(path.clone(), config(), true, 0, 0, 0).unwrap();
    log.append_as_leader(&batch(2), 0, 0).unwrap();
    log.flush().unwrap();
    let synced = std::fs::read(path.join("leader-epoch-checkpoint")).unwrap();
    log.append_as_leader(&batch(2), 3, 0).unwrap();
    log.append_as_leader(&batch(2), 5, 0).unwrap();
    assert_eq!(log.leader_epoch_entries(), vec![(0, 0), (3, 2), (5, 4)]);
    drop(log);
    // A power failure: the epoch entries written since the flush never reached the disk.
    std::fs::write(path.join("leader-epoch-checkpoint"), &synced).unwrap();
    let log = reopen_unclean(&path, config());
    assert_eq!(log.leader_epoch_entries(), vec![(0, 0), (3, 2), (5, 4)]);
    assert_eq!(log.log_end_offset(), 6);
}
