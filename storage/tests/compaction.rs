//! Log compaction (`cleanup.policy=compact`): latest value per key, tombstones, lag.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{BatchSpec, encode_keyed};
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use strata_storage::{CleanupPolicy, Log, LogConfig};

const HOUR_MS: i64 = 3_600_000;

fn config() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 600,
        delete_retention_ms: HOUR_MS,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    }
}

type Row = (i64, String, Option<String>);

fn records(log: &Log) -> Vec<Row> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, usize::MAX, true, i64::MAX).unwrap();
        if read.records.is_empty() {
            break;
        }
        for batch in strata_storage::batch::batches(&read.records) {
            let batch = batch.unwrap();
            batch.validate().unwrap();
            let mut bytes = Bytes::copy_from_slice(batch.as_bytes());
            for r in RecordBatchDecoder::decode(&mut bytes).unwrap().records {
                let text = |b: Bytes| String::from_utf8(b.to_vec()).unwrap();
                out.push((r.offset, text(r.key.unwrap()), r.value.map(text)));
            }
            offset = batch.next_offset();
        }
    }
    out
}

/// Appends one batch holding `(key, value)` records.
fn append(log: &mut Log, rows: &[(&str, Option<&str>)], compression: Compression) {
    let rows: Vec<(Option<&str>, Option<&str>, i64)> =
        rows.iter().map(|(k, v)| (Some(*k), *v, 1_000)).collect();
    let batch = encode_keyed(
        &BatchSpec {
            compression,
            ..BatchSpec::default()
        },
        &rows,
    );
    log.append_as_leader(&batch, 0, 0).unwrap();
}

#[test]
fn only_the_latest_record_per_key_survives_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("c-0"), config(), true, 0, 0, 0).unwrap();
    let mut expected = BTreeMap::new();
    let mut offsets = BTreeMap::new();
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for i in 0..120 {
        // Batches of three records, mixed codecs, keys repeating every 10 records.
        let rows: Vec<(String, String)> = (0..3)
            .map(|j| {
                (
                    format!("key-{}", (i * 3 + j) % 10),
                    format!("value-{}", i * 3 + j),
                )
            })
            .collect();
        let refs: Vec<(&str, Option<&str>)> = rows
            .iter()
            .map(|(k, v)| (k.as_str(), Some(v.as_str())))
            .collect();
        let first = log.log_end_offset();
        append(&mut log, &refs, codecs[i % codecs.len()]);
        for (j, (k, v)) in rows.iter().enumerate() {
            expected.insert(k.clone(), Some(v.clone()));
            offsets.insert(v.clone(), first + j as i64);
        }
    }
    let before = records(&log);
    let segments_before = log.number_of_segments();
    let end = log.log_end_offset();
    // A reader's earlier result stays valid whatever the cleaner does.
    let old_view = log.read(0, 10_000, true, i64::MAX).unwrap();

    log.update_high_watermark(log.log_end_offset());
    let stats = log.clean(10_000, false).unwrap();
    assert_eq!(stats.dirty_ratio, 1.0);
    assert!(stats.records_removed > 300, "{stats:?}");
    assert!(stats.bytes_written < stats.bytes_read);

    let after = records(&log);
    assert_eq!(log.log_end_offset(), end);
    let latest: BTreeMap<String, Option<String>> = after
        .iter()
        .map(|(_, k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(latest, expected);
    // Offsets are preserved; only the active segment may still hold older duplicates.
    let active_base = *log.segment_base_offsets().last().unwrap();
    let mut seen = BTreeMap::new();
    for (offset, key, value) in &after {
        assert_eq!(offsets[value.as_ref().unwrap()], *offset);
        if *offset < active_base {
            assert!(seen.insert(key.clone(), *offset).is_none(), "{key} twice");
        }
    }
    assert!(after.len() < before.len() / 4);
    assert!(log.number_of_segments() <= segments_before);
    for batch in strata_storage::batch::batches(&old_view.records) {
        batch.unwrap().validate().unwrap();
    }
    // Nothing dirty any more: not due.
    log.update_high_watermark(log.log_end_offset());
    let again = log.clean(20_000, false).unwrap();
    assert_eq!(again.segments_cleaned, 0);
    // Reads at offsets removed by compaction move on to the next surviving batch.
    let read = log.read(1, 1_000_000, true, i64::MAX).unwrap();
    assert!(read.first_batch_offset.unwrap() >= 1);
}

#[test]
fn tombstones_outlive_one_cleaning_then_go_after_delete_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("c-0"), config(), true, 0, 0, 0).unwrap();
    for i in 0..30 {
        append(
            &mut log,
            &[(&format!("k{}", i % 5), Some("x"))],
            Compression::None,
        );
    }
    append(&mut log, &[("k0", None), ("k1", None)], Compression::None);
    for i in 0..30 {
        append(
            &mut log,
            &[(&format!("other{}", i % 3), Some("y"))],
            Compression::None,
        );
    }
    let t0 = 1_000_000;
    log.update_high_watermark(log.log_end_offset());
    let first = log.clean(t0, true).unwrap();
    assert_eq!(first.tombstones_removed, 0);
    let rows = records(&log);
    let tombstones: Vec<&Row> = rows.iter().filter(|r| r.2.is_none()).collect();
    assert_eq!(tombstones.len(), 2);
    // The values the tombstones delete are gone at once.
    assert!(
        !rows
            .iter()
            .any(|r| (r.1 == "k0" || r.1 == "k1") && r.2.is_some())
    );

    // Not yet: delete.retention.ms has not passed since the cleaning.
    log.update_high_watermark(log.log_end_offset());
    let second = log.clean(t0 + HOUR_MS - 1, true).unwrap();
    assert_eq!(second.tombstones_removed, 0);
    log.update_high_watermark(log.log_end_offset());
    let third = log.clean(t0 + HOUR_MS, true).unwrap();
    assert_eq!(third.tombstones_removed, 2);
    let rows = records(&log);
    assert!(!rows.iter().any(|r| r.1 == "k0" || r.1 == "k1"));
    for k in ["k2", "k3", "k4", "other0", "other1", "other2"] {
        assert!(rows.iter().any(|r| r.1 == k), "{k} lost");
    }
}

#[test]
fn dirty_ratio_and_compaction_lag_gate_cleaning() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(
        dir.path().join("c-0"),
        LogConfig {
            min_compaction_lag_ms: 10_000,
            ..config()
        },
        true,
        0,
        0,
        0,
    )
    .unwrap();
    for i in 0..40 {
        // Record timestamps are 1_000.
        append(
            &mut log,
            &[(&format!("k{}", i % 2), Some("v"))],
            Compression::None,
        );
    }
    // Records are younger than the lag: nothing cleanable.
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.clean(5_000, true).unwrap().segments_cleaned, 0);
    log.update_high_watermark(log.log_end_offset());
    let stats = log.clean(11_000, false).unwrap();
    assert!(stats.segments_cleaned > 0);
    // Policy delete: the cleaner leaves the log alone.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("d-0"), LogConfig::default(), true, 0, 0, 0).unwrap();
    append(&mut log, &[("a", Some("1"))], Compression::None);
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(
        log.clean(0, true).unwrap(),
        strata_storage::CleanStats::default()
    );
}

#[test]
fn cleaned_logs_reopen_cleanly_and_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-0");
    let mut log = Log::open(path.clone(), config(), true, 0, 0, 0).unwrap();
    for i in 0..80 {
        append(
            &mut log,
            &[(&format!("k{}", i % 4), Some(&format!("{i}")))],
            Compression::Snappy,
        );
    }
    log.update_high_watermark(log.log_end_offset());
    log.clean(10_000, true).unwrap();
    let expected = records(&log);
    log.close().unwrap();
    drop(log);
    let log = Log::open(path.clone(), config(), true, 80, 0, 0).unwrap();
    assert_eq!(records(&log), expected);
    drop(log);
    let log = Log::open(path, config(), false, 0, 0, 0).unwrap();
    assert_eq!(records(&log), expected);
    assert_eq!(log.log_end_offset(), 80);
}
