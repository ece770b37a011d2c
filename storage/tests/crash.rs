//! A real crash: a child process appends idempotent batches and is killed with SIGKILL
//! mid-stream. After restart, the producer's retries of everything it may have in flight
//! must never duplicate a record.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{BatchSpec, encode_batch};
use strata_storage::{LogConfig, LogManager};

const CHILD_ENV: &str = "STRATA_STORAGE_CRASH_CHILD_DIR";
const PRODUCER_ID: i64 = 77;
const ACKS_BEFORE_KILL: usize = 300;
/// The idempotent producer keeps at most this many batches in flight.
const MAX_IN_FLIGHT: i32 = 5;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        ..LogConfig::default()
    }
}

fn batch(seq: i32) -> bytes::Bytes {
    encode_batch(&BatchSpec {
        count: 1,
        producer_id: PRODUCER_ID,
        producer_epoch: 0,
        base_sequence: seq,
        value_size: 40,
        ..BatchSpec::default()
    })
}

fn start(dir: &Path) -> LogManager {
    LogManager::startup(vec![dir.to_path_buf()], config(), |_| config(), 0).unwrap()
}

/// The child: append forever (bounded), acknowledging each batch on stdout.
fn run_child(dir: PathBuf) {
    let manager = start(&dir);
    let log = manager.get_or_create_log("crash", 0, config()).unwrap();
    for seq in 0..1_000_000 {
        let info = log
            .lock()
            .unwrap()
            .append_as_leader(&batch(seq), 0, 0)
            .unwrap();
        println!("acked {seq} {}", info.first_offset);
    }
}

#[test]
fn sigkill_during_idempotent_production_never_duplicates_acknowledged_records() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        run_child(PathBuf::from(dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigkill_during_idempotent_production_never_duplicates_acknowledged_records",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked: Vec<(i32, i64)> = Vec::new();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    while acked.len() < ACKS_BEFORE_KILL {
        let line = lines.next().expect("child exited early").unwrap();
        if let Some(rest) = line.strip_prefix("acked ") {
            let (seq, offset) = rest.split_once(' ').unwrap();
            acked.push((seq.parse().unwrap(), offset.parse().unwrap()));
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Acks already written to the pipe before the kill count too.
    for line in lines {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("acked ")
            && let Some((seq, offset)) = rest.split_once(' ')
            && let (Ok(seq), Ok(offset)) = (seq.parse(), offset.parse())
        {
            acked.push((seq, offset));
        }
    }
    let last_acked = acked.last().unwrap().0;

    // Restart without a clean-shutdown marker, then do what the producer does: retry
    // the newest acknowledged batch (its ack may have been lost on the wire) and every
    // batch it may have had in flight after it. The child may have appended the first of
    // those without living to acknowledge it. Retries of batches already in the log are
    // duplicates, answered with their original offsets.
    let manager = start(dir.path());
    let log = manager.get_log("crash", 0).expect("log recovered");
    let mut log = log.lock().unwrap();
    let recovered_end = log.log_end_offset();
    let (newest, newest_offset) = *acked.last().unwrap();
    let info = log.append_as_leader(&batch(newest), 0, 0).unwrap();
    assert!(
        info.duplicate,
        "acknowledged sequence {newest} appended twice"
    );
    assert_eq!(info.first_offset, newest_offset);
    for seq in last_acked + 1..=last_acked + MAX_IN_FLIGHT {
        let info = log.append_as_leader(&batch(seq), 0, 0).unwrap();
        if info.first_offset < recovered_end {
            assert!(
                info.duplicate,
                "sequence {seq}, already in the log, appended twice"
            );
        }
    }

    // Every sequence is in the log exactly once, in order, at the acknowledged offset.
    let mut stored: Vec<(i32, i64)> = Vec::new();
    let mut offset = 0;
    while offset < log.log_end_offset() {
        // A read returns batches of one segment at most.
        let read = log.read(offset, usize::MAX, true, i64::MAX).unwrap();
        for b in strata_storage::batch::batches(&read.records) {
            let b = b.unwrap();
            b.validate().unwrap();
            stored.push((b.base_sequence(), b.base_offset()));
            offset = b.next_offset();
        }
    }
    assert!(log.number_of_segments() > 1);
    let expected: Vec<i32> = (0..=last_acked + MAX_IN_FLIGHT).collect();
    assert_eq!(stored.iter().map(|s| s.0).collect::<Vec<_>>(), expected);
    for (seq, offset) in &acked {
        assert_eq!(stored[*seq as usize], (*seq, *offset));
    }
}
