//! `LogManager`: log dirs, startup, checkpoints, the clean-shutdown marker.

mod common;

use std::path::PathBuf;

use common::{BatchSpec, encode_batch};
use strata_storage::checkpoint::read_checkpoint;
use strata_storage::manager::CLEAN_SHUTDOWN_FILE;
use strata_storage::{LogConfig, LogManager};

fn batch(count: usize) -> bytes::Bytes {
    encode_batch(&BatchSpec {
        count,
        ..BatchSpec::default()
    })
}

fn start(dirs: &[PathBuf]) -> LogManager {
    LogManager::startup(
        dirs.to_vec(),
        LogConfig::default(),
        |_| LogConfig::default(),
        0,
    )
    .unwrap()
}

const PARTITIONS: [(&str, i32); 5] = [
    ("orders", 0),
    ("orders", 1),
    ("my-dashed-topic", 3),
    ("dotted.topic.name", 0),
    ("__consumer_offsets", 49),
];

#[test]
fn partitions_survive_a_clean_restart_across_log_dirs() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("d1"), root.path().join("d2")];
    let manager = start(&dirs);
    for (i, (topic, partition)) in PARTITIONS.iter().enumerate() {
        let log = manager
            .get_or_create_log(topic, *partition, LogConfig::default())
            .unwrap();
        let mut log = log.lock().unwrap();
        for _ in 0..=i {
            log.append_as_leader(&batch(2), 0, 0).unwrap();
        }
    }
    // New partitions go to the dir with the fewest: 3 and 2.
    let count = |d: &PathBuf| {
        std::fs::read_dir(d)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count()
    };
    assert_eq!(count(&dirs[0]) + count(&dirs[1]), 5);
    assert!(count(&dirs[0]).abs_diff(count(&dirs[1])) <= 1);
    // Stray directories are not partitions.
    std::fs::create_dir_all(dirs[0].join("lost+found")).unwrap();
    manager.shutdown().unwrap();
    for d in &dirs {
        assert!(d.join(CLEAN_SHUTDOWN_FILE).exists());
        let checkpoint = read_checkpoint(&d.join("recovery-point-offset-checkpoint")).unwrap();
        assert!(!checkpoint.is_empty());
    }
    drop(manager);

    let manager = start(&dirs);
    for d in &dirs {
        assert!(!d.join(CLEAN_SHUTDOWN_FILE).exists());
    }
    assert_eq!(manager.all_logs().len(), 5);
    for (i, (topic, partition)) in PARTITIONS.iter().enumerate() {
        let log = manager.get_log(topic, *partition).expect("loaded");
        let log = log.lock().unwrap();
        assert_eq!(
            log.log_end_offset(),
            2 * (i as i64 + 1),
            "{topic}-{partition}"
        );
        assert_eq!(log.recovery_point(), log.log_end_offset());
    }
    assert!(manager.get_log("orders", 7).is_none());
}

#[test]
fn restart_without_the_marker_recovers_torn_tails() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("d1")];
    let manager = start(&dirs);
    let log = manager
        .get_or_create_log("a.b-c", 0, LogConfig::default())
        .unwrap();
    for _ in 0..3 {
        log.lock()
            .unwrap()
            .append_as_leader(&batch(1), 0, 0)
            .unwrap();
    }
    manager.checkpoint().unwrap();
    drop(log);
    drop(manager); // a crash: no shutdown, no marker
    let segment = dirs[0].join("a.b-c-0/00000000000000000000.log");
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let manager = start(&dirs);
    let log = manager.get_log("a.b-c", 0).unwrap();
    assert_eq!(log.lock().unwrap().log_end_offset(), 2);
}

#[test]
fn delete_records_survives_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("d1")];
    let manager = start(&dirs);
    let log = manager
        .get_or_create_log("t", 0, LogConfig::default())
        .unwrap();
    for _ in 0..5 {
        log.lock()
            .unwrap()
            .append_as_leader(&batch(2), 0, 0)
            .unwrap();
    }
    assert_eq!(log.lock().unwrap().delete_records_before(7).unwrap(), 7);
    manager.shutdown().unwrap();
    drop(log);
    drop(manager);
    let checkpoint = read_checkpoint(&dirs[0].join("log-start-offset-checkpoint")).unwrap();
    assert_eq!(checkpoint[&("t".to_string(), 0)], 7);

    let manager = start(&dirs);
    let log = manager.get_log("t", 0).unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log.log_start_offset(), 7);
    assert_eq!(log.log_end_offset(), 10);
    assert!(log.read(5, 1000, true, i64::MAX).is_err());
    assert_eq!(
        log.read(7, 1000, true, i64::MAX)
            .unwrap()
            .first_batch_offset,
        Some(6)
    );
}

#[test]
fn delete_log_removes_the_directory() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("d1")];
    let manager = start(&dirs);
    let log = manager
        .get_or_create_log("gone", 2, LogConfig::default())
        .unwrap();
    log.lock()
        .unwrap()
        .append_as_leader(&batch(1), 0, 0)
        .unwrap();
    drop(log);
    manager.delete_log("gone", 2).unwrap();
    assert!(manager.get_log("gone", 2).is_none());
    assert_eq!(std::fs::read_dir(&dirs[0]).unwrap().count(), 0);
    // An interrupted delete is finished at startup.
    std::fs::create_dir_all(dirs[0].join("x-0.0123abcd-delete")).unwrap();
    drop(manager);
    let manager = start(&dirs);
    assert!(!dirs[0].join("x-0.0123abcd-delete").exists());
    assert!(manager.all_logs().is_empty());
}

#[test]
fn retention_and_flush_through_the_manager() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("d1")];
    let size = batch(1).len() as u64;
    let config = LogConfig {
        segment_bytes: size,
        retention_bytes: 0,
        file_delete_delay_ms: 0,
        flush_interval_ms: 1_000,
        ..LogConfig::default()
    };
    let manager =
        LogManager::startup(dirs.clone(), config.clone(), |_| LogConfig::default(), 0).unwrap();
    let log = manager.get_or_create_log("r", 0, config).unwrap();
    for _ in 0..4 {
        log.lock()
            .unwrap()
            .append_as_leader(&batch(1), 0, 0)
            .unwrap();
    }
    {
        let mut log = log.lock().unwrap();
        let end = log.log_end_offset();
        log.update_high_watermark(end);
    }
    assert_eq!(manager.cleanup_logs(10), 3);
    assert_eq!(log.lock().unwrap().number_of_segments(), 1);
    let last_flush = log.lock().unwrap().last_flush_ms();
    manager.flush_dirty_logs(last_flush + 10);
    // Retention raised the recovery point to the new log start, no further.
    assert_eq!(log.lock().unwrap().recovery_point(), 3);
    manager.flush_dirty_logs(last_flush + 1_000);
    assert_eq!(log.lock().unwrap().recovery_point(), 4);
}

#[test]
fn rolled_segments_are_synced_in_the_background_and_only_the_rest_is_recovered() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("d1")];
    let manager = start(&dirs);
    let size = batch(2).len() as u64;
    let config = LogConfig {
        segment_bytes: size * 2,
        ..LogConfig::default()
    };
    let log = manager.get_or_create_log("rolled", 0, config).unwrap();
    for _ in 0..5 {
        log.lock()
            .unwrap()
            .append_as_leader(&batch(2), 0, 0)
            .unwrap();
    }
    assert_eq!(log.lock().unwrap().segment_base_offsets(), vec![0, 4, 8]);
    assert_eq!(log.lock().unwrap().recovery_point(), 0);
    // flush.ms is unbounded by default: only the rolled segments are synced.
    manager.flush_dirty_logs(0);
    assert_eq!(log.lock().unwrap().recovery_point(), 8);
    manager.checkpoint().unwrap();
    drop(log);
    drop(manager); // a crash
    // Segments below the recovery point are trusted, as in Kafka: a byte flipped in the
    // first one's last batch is not looked for (recovering it would cut the log at 2).
    let first = dirs[0].join("rolled-0/00000000000000000000.log");
    let mut bytes = std::fs::read(&first).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&first, &bytes).unwrap();
    // The active segment is recovered: its torn tail is cut.
    let active = dirs[0].join("rolled-0/00000000000000000008.log");
    let len = std::fs::metadata(&active).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&active)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let manager = start(&dirs);
    let log = manager.get_log("rolled", 0).unwrap();
    assert_eq!(log.lock().unwrap().log_end_offset(), 8);
    assert_eq!(log.lock().unwrap().segment_base_offsets(), vec![0, 4, 8]);
}
