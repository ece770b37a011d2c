//! `Log`: appends, reads, indexes, rolling, retention, timestamps, DeleteRecords.

mod common;

use std::path::Path;

use common::{BatchSpec, encode_batch};
use kafka_protocol::records::Compression;
use strata_storage::{CleanupPolicy, Log, LogConfig, LogError};

fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(dir.join("t-0"), config, true, 0, 0, 0).unwrap()
}

fn batch(count: usize, timestamp: i64) -> bytes::Bytes {
    encode_batch(&BatchSpec {
        count,
        timestamp,
        ..BatchSpec::default()
    })
}

/// A log of `appends` batches of `records` records each, `per_segment` of them to a
/// segment; `config`, given one batch's size, sets everything else. The log and that size.
fn filled(
    dir: &Path,
    records: usize,
    per_segment: u64,
    appends: usize,
    config: impl FnOnce(u64) -> LogConfig,
) -> (Log, u64) {
    let size = batch(records, 0).len() as u64;
    let mut log = open(
        dir,
        LogConfig {
            segment_bytes: size * per_segment,
            ..config(size)
        },
    );
    for _ in 0..appends {
        log.append_as_leader(&batch(records, 0), 0, 0).unwrap();
    }
    (log, size)
}

fn offsets_in(records: &[u8]) -> Vec<(i64, i64)> {
    strata_storage::batch::batches(records)
        .map(|b| {
            let b = b.unwrap();
            b.validate().unwrap();
            (b.base_offset(), b.last_offset())
        })
        .collect()
}

#[test]
fn append_assigns_offsets_and_leader_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let mut request = batch(3, 100).to_vec();
    request.extend_from_slice(&batch(2, 200));
    let info = log.append_as_leader(&request, 7, 0).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 4));
    assert_eq!(info.records_count, 5);
    assert_eq!(info.valid_bytes, request.len());
    assert_eq!(info.max_timestamp, 201);
    assert_eq!(info.offset_of_max_timestamp, 4);
    assert!(!info.duplicate);
    assert_eq!(log.log_end_offset(), 5);

    let read = log.read(0, 1 << 20, true, i64::MAX).unwrap();
    assert_eq!(offsets_in(&read.records), vec![(0, 2), (3, 4)]);
    for b in strata_storage::batch::batches(&read.records) {
        assert_eq!(b.unwrap().partition_leader_epoch(), 7);
    }
    assert_eq!(read.first_batch_offset, Some(0));
}

#[test]
fn invalid_batches_are_rejected_and_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            max_message_bytes: 200,
            ..LogConfig::default()
        },
    );
    let good = batch(1, 0);
    let mut corrupt = good.to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let mut request = good.to_vec();
    request.extend_from_slice(&corrupt);
    assert!(matches!(
        log.append_as_leader(&request, 0, 0),
        Err(LogError::CorruptRecord(_))
    ));
    let mut torn = good.to_vec();
    torn.extend_from_slice(&good[..20]);
    assert!(matches!(
        log.append_as_leader(&torn, 0, 0),
        Err(LogError::CorruptRecord(_))
    ));
    let big = encode_batch(&BatchSpec {
        value_size: 500,
        ..BatchSpec::default()
    });
    assert!(matches!(
        log.append_as_leader(&big, 0, 0),
        Err(LogError::RecordTooLarge { max: 200, .. })
    ));
    assert!(matches!(
        log.append_as_leader(&[], 0, 0),
        Err(LogError::InvalidRecord(_))
    ));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_in_bytes(), 0);
}

#[test]
fn compacted_topics_require_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            cleanup_policy: CleanupPolicy::Compact,
            ..LogConfig::default()
        },
    );
    let keyless = common::encode_keyed(&BatchSpec::default(), &[(None, Some("v"), 5)]);
    assert!(matches!(
        log.append_as_leader(&keyless, 0, 0),
        Err(LogError::InvalidRecord(_))
    ));
    let keyed = common::encode_keyed(&BatchSpec::default(), &[(Some("k"), Some("v"), 5)]);
    log.append_as_leader(&keyed, 0, 0).unwrap();
}

#[test]
fn sparse_index_cadence_and_reads_at_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            index_interval_bytes: 300,
            ..LogConfig::default()
        },
    );
    let one = batch(2, 0);
    let batch_size = one.len();
    for _ in 0..100 {
        log.append_as_leader(&batch(2, 0), 0, 0).unwrap();
    }
    assert_eq!(log.log_end_offset(), 200);
    // An entry whenever more than 300 bytes were appended since the last one.
    let per_entry = 300 / batch_size + 1;
    let index = dir.path().join("t-0/00000000000000000000.index");
    log.flush().unwrap();
    let expected_entries = (100 - 1) / per_entry;
    let index_bytes = std::fs::read(&index).unwrap();
    let nonzero = index_bytes
        .chunks(8)
        .take_while(|c| c.iter().any(|b| *b != 0))
        .count();
    assert_eq!(nonzero, expected_entries);
    for offset in 0..200 {
        let read = log.read(offset, 1, true, i64::MAX).unwrap();
        let batches = offsets_in(&read.records);
        assert_eq!(batches.len(), 1, "offset {offset}");
        assert!(
            batches[0].0 <= offset && offset <= batches[0].1,
            "offset {offset}"
        );
    }
}

#[test]
fn read_inside_a_batch_returns_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&batch(5, 0), 0, 0).unwrap();
    log.append_as_leader(&batch(5, 0), 0, 0).unwrap();
    let read = log.read(7, 1 << 20, true, i64::MAX).unwrap();
    assert_eq!(read.first_batch_offset, Some(5));
    assert_eq!(offsets_in(&read.records), vec![(5, 9)]);
}

#[test]
fn max_bytes_min_one_message_and_max_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    for _ in 0..5 {
        log.append_as_leader(&batch(1, 0), 0, 0).unwrap();
    }
    let size = batch(1, 0).len();
    let read = log.read(0, size * 5 / 2, false, i64::MAX).unwrap();
    assert_eq!(offsets_in(&read.records), vec![(0, 0), (1, 1)]);
    let read = log.read(0, size - 1, true, i64::MAX).unwrap();
    assert_eq!(offsets_in(&read.records), vec![(0, 0)]);
    let read = log.read(0, size - 1, false, i64::MAX).unwrap();
    assert!(read.records.is_empty());
    // The high watermark bounds what is returned.
    let read = log.read(1, 1 << 20, true, 3).unwrap();
    assert_eq!(offsets_in(&read.records), vec![(1, 1), (2, 2)]);
    let read = log.read(3, 1 << 20, true, 3).unwrap();
    assert!(read.records.is_empty());
    // At the log end: empty; past it or below the start: out of range.
    assert!(log.read(5, 100, true, i64::MAX).unwrap().records.is_empty());
    assert!(matches!(
        log.read(6, 100, true, i64::MAX),
        Err(LogError::OffsetOutOfRange {
            offset: 6,
            log_start_offset: 0,
            log_end_offset: 5
        })
    ));
}

#[test]
fn read_spans_no_more_than_one_segment_but_continues_across_them() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = filled(dir.path(), 1, 2, 6, |_| LogConfig::default());
    assert_eq!(log.number_of_segments(), 3);
    let mut offset = 0;
    let mut seen = Vec::new();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 20, true, i64::MAX).unwrap();
        let batches = offsets_in(&read.records);
        assert!(!batches.is_empty());
        seen.extend(batches.iter().map(|b| b.0));
        offset = batches.last().unwrap().1 + 1;
    }
    assert_eq!(seen, vec![0, 1, 2, 3, 4, 5]);
}

/// The region a fetch sends from the file holds exactly the bytes a read into memory
/// returns, at every offset, limit and bound, across segments, and nothing past the end.
#[test]
fn read_region_is_what_read_returns_left_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch(3, 0).len();
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_bytes: (one * 4) as u64,
            index_interval_bytes: 100,
            ..LogConfig::default()
        },
    );
    for i in 0..12 {
        log.append_as_leader(&batch(1 + i % 3, 0), 0, 0).unwrap();
    }
    assert!(log.number_of_segments() > 2);
    let end = log.log_end_offset();
    for offset in 0..=end {
        for max_bytes in [1, one - 1, one, one * 2 + 5, 1 << 20] {
            for min_one in [true, false] {
                for max_offset in [end, end - 3, offset + 1] {
                    let read = log.read(offset, max_bytes, min_one, max_offset).unwrap();
                    let region = log
                        .read_region(offset, max_bytes, min_one, max_offset)
                        .unwrap();
                    let from_file = region.map(|r| r.read().unwrap()).unwrap_or_default();
                    assert_eq!(
                        from_file, read.records,
                        "offset {offset} max_bytes {max_bytes} min_one {min_one} max_offset {max_offset}"
                    );
                }
            }
        }
    }
    assert!(matches!(
        log.read_region(end + 1, 1 << 20, true, i64::MAX),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn roll_by_size_names_segments_by_base_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (log, size) = filled(dir.path(), 3, 3, 7, |_| LogConfig::default());
    assert_eq!(log.segment_base_offsets(), vec![0, 9, 18]);
    for base in [0, 9, 18] {
        for suffix in ["log", "index", "timeindex"] {
            assert!(dir.path().join(format!("t-0/{base:020}.{suffix}")).exists());
        }
    }
    assert_eq!(log.size_in_bytes(), size * 7);
    // Indexes of inactive segments are trimmed to their real size.
    let index_len = std::fs::metadata(dir.path().join("t-0/00000000000000000000.index"))
        .unwrap()
        .len();
    assert!(index_len < 1024);
}

#[test]
fn roll_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_ms: 1_000,
            ..LogConfig::default()
        },
    );
    log.append_as_leader(&batch(1, 10_000), 0, 10_000).unwrap();
    log.append_as_leader(&batch(1, 10_500), 0, 10_500).unwrap();
    assert_eq!(log.number_of_segments(), 1);
    log.append_as_leader(&batch(1, 11_000), 0, 11_000).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
    // Retention's tick also rolls an old active segment.
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.enforce_retention(12_500).unwrap(), 0);
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 3]);
}

#[test]
fn roll_when_the_index_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_index_bytes: 24, // three offset-index entries
            index_interval_bytes: 1,
            ..LogConfig::default()
        },
    );
    for _ in 0..10 {
        log.append_as_leader(&batch(1, 0), 0, 0).unwrap();
    }
    // First batch never gets an entry, the next three fill the index, then a roll.
    assert_eq!(log.segment_base_offsets(), vec![0, 4, 8]);
}

#[test]
fn retention_by_time_never_deletes_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let size = batch(1, 0).len() as u64;
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_bytes: size,
            retention_ms: 1_000,
            file_delete_delay_ms: 0,
            ..LogConfig::default()
        },
    );
    for ts in [1_000, 2_000, 3_000, 4_000] {
        log.append_as_leader(&batch(1, ts), 0, ts).unwrap();
    }
    assert_eq!(log.number_of_segments(), 4);
    // Segments whose newest record is more than 1s older than now go.
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.enforce_retention(3_500).unwrap(), 2);
    assert_eq!(log.segment_base_offsets(), vec![2, 3]);
    assert_eq!(log.log_start_offset(), 2);
    assert!(!dir.path().join("t-0/00000000000000000000.log").exists());
    assert!(matches!(
        log.read(1, 100, true, i64::MAX),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    // Far in the future everything but the active segment goes.
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.enforce_retention(1_000_000).unwrap(), 1);
    assert_eq!(log.segment_base_offsets(), vec![3]);
    assert_eq!(
        log.read(3, 1000, true, i64::MAX)
            .unwrap()
            .first_batch_offset,
        Some(3)
    );
}

#[test]
fn retention_keeps_segments_above_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let size = batch(1, 0).len() as u64;
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_bytes: size,
            retention_ms: 1_000,
            file_delete_delay_ms: 0,
            ..LogConfig::default()
        },
    );
    for ts in [1_000, 2_000, 3_000, 4_000] {
        log.append_as_leader(&batch(1, ts), 0, ts).unwrap();
    }
    // Only offset 0 is replicated: the segment holding it may go, not the ones after it.
    log.update_high_watermark(1);
    assert_eq!(log.enforce_retention(1_000_000).unwrap(), 1);
    assert_eq!(log.segment_base_offsets(), vec![1, 2, 3]);
    log.update_high_watermark(3);
    assert_eq!(log.enforce_retention(1_000_000).unwrap(), 2);
    assert_eq!(log.segment_base_offsets(), vec![3]);
}

#[test]
fn leader_epochs_follow_appends_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&batch(2, 0), 0, 0).unwrap();
    log.append_as_leader(&batch(2, 0), 3, 0).unwrap();
    log.append_as_leader(&batch(1, 0), 3, 0).unwrap();
    assert_eq!(log.leader_epoch_entries(), vec![(0, 0), (3, 2)]);
    assert_eq!(log.end_offset_for_epoch(0), (0, 2));
    assert_eq!(log.end_offset_for_epoch(3), (3, 5));
    log.update_high_watermark(5);
    log.truncate_to(2).unwrap();
    assert_eq!(log.leader_epoch_entries(), vec![(0, 0)]);
    assert_eq!(log.high_watermark(), 2);
    // A follower appends the leader's batches and learns their epochs.
    let mut replicated = batch(2, 0).to_vec();
    strata_storage::batch::set_base_offset(&mut replicated, 2);
    strata_storage::batch::set_partition_leader_epoch(&mut replicated, 5);
    log.append_as_follower(&replicated, 0).unwrap();
    assert_eq!(log.leader_epoch_entries(), vec![(0, 0), (5, 2)]);
    drop(log);
    // The checkpoint survives a reopen.
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.leader_epoch_entries(), vec![(0, 0), (5, 2)]);
}

#[test]
fn truncating_to_the_log_end_drops_an_epoch_that_never_got_a_record() {
    // Elected leader at epoch 4 (its start assigned at the log end), deposed before any
    // append: the new leader knows epoch 0 to end at 2, and truncation there must leave
    // epoch 0 as this replica's last epoch, or it would diverge again on every fetch.
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&batch(2, 0), 0, 0).unwrap();
    log.maybe_assign_epoch_start_offset(4, 2).unwrap();
    assert_eq!(log.latest_epoch(), Some(4));
    log.truncate_to(2).unwrap();
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(log.leader_epoch_entries(), vec![(0, 0)]);
    assert_eq!(log.latest_epoch(), Some(0));
    // Past the end nothing changes.
    log.truncate_to(10).unwrap();
    assert_eq!(log.leader_epoch_entries(), vec![(0, 0)]);
}

#[test]
fn retention_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = filled(dir.path(), 1, 2, 7, |size| LogConfig {
        retention_bytes: (size * 3) as i64,
        retention_ms: -1,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    });
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4, 6]);
    // 7 batches, limit 3: deleting [0,2) and [2,4) leaves 3; one more would leave 1.
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.enforce_retention(0).unwrap(), 2);
    assert_eq!(log.segment_base_offsets(), vec![4, 6]);
    assert_eq!(log.log_start_offset(), 4);
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.enforce_retention(0).unwrap(), 0);
}

#[test]
fn deleted_segments_linger_for_file_delete_delay() {
    let dir = tempfile::tempdir().unwrap();
    let size = batch(1, 0).len() as u64;
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_bytes: size,
            retention_bytes: 0,
            file_delete_delay_ms: 60_000,
            ..LogConfig::default()
        },
    );
    log.append_as_leader(&batch(1, 0), 0, 0).unwrap();
    log.append_as_leader(&batch(1, 0), 0, 0).unwrap();
    log.update_high_watermark(log.log_end_offset());
    assert_eq!(log.enforce_retention(1_000).unwrap(), 1);
    let deleted = dir.path().join("t-0/00000000000000000000.log.deleted");
    assert!(deleted.exists());
    log.update_high_watermark(log.log_end_offset());
    log.enforce_retention(30_000).unwrap();
    assert!(deleted.exists());
    log.update_high_watermark(log.log_end_offset());
    log.enforce_retention(61_000).unwrap();
    assert!(!deleted.exists());
}

#[test]
fn delete_records_before_moves_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = filled(dir.path(), 2, 2, 5, |_| LogConfig {
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    });
    assert_eq!(log.segment_base_offsets(), vec![0, 4, 8]);
    assert_eq!(log.delete_records_before(5).unwrap(), 5);
    assert_eq!(log.segment_base_offsets(), vec![4, 8]);
    assert!(matches!(
        log.read(4, 100, true, i64::MAX),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    // Reading at the new start returns the batch that contains it.
    assert_eq!(
        log.read(5, 1000, true, i64::MAX)
            .unwrap()
            .first_batch_offset,
        Some(4)
    );
    // Lower requests are no-ops; beyond the end is out of range.
    assert_eq!(log.delete_records_before(2).unwrap(), 5);
    assert!(matches!(
        log.delete_records_before(11),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.delete_records_before(10).unwrap(), 10);
    assert_eq!(log.segment_base_offsets(), vec![8]);
    assert!(
        log.read(10, 1000, true, i64::MAX)
            .unwrap()
            .records
            .is_empty()
    );
}

#[test]
fn offsets_by_timestamp_across_segments_and_codecs() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_bytes: 600,
            index_interval_bytes: 100,
            ..LogConfig::default()
        },
    );
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    // Batch i holds 4 records with timestamps 1000*i + 0..4.
    for i in 0..20i64 {
        let bytes = encode_batch(&BatchSpec {
            count: 4,
            timestamp: 1_000 * i,
            compression: codecs[i as usize % codecs.len()],
            ..BatchSpec::default()
        });
        log.append_as_leader(&bytes, 0, 0).unwrap();
    }
    assert!(log.number_of_segments() > 2);
    assert_eq!(log.fetch_offset_by_timestamp(0).unwrap(), Some((0, 0)));
    assert_eq!(
        log.fetch_offset_by_timestamp(5_002).unwrap(),
        Some((22, 5_002))
    );
    assert_eq!(
        log.fetch_offset_by_timestamp(5_004).unwrap(),
        Some((24, 6_000))
    );
    assert_eq!(
        log.fetch_offset_by_timestamp(19_003).unwrap(),
        Some((79, 19_003))
    );
    assert_eq!(log.fetch_offset_by_timestamp(19_004).unwrap(), None);
    assert_eq!(log.max_timestamp_and_offset(), Some((19_003, 79)));
}

#[test]
fn max_timestamp_points_at_the_exact_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let bytes = common::encode_keyed(
        &BatchSpec::default(),
        &[
            (Some("a"), Some("1"), 50),
            (Some("b"), Some("2"), 90),
            (Some("c"), Some("3"), 70),
        ],
    );
    log.append_as_leader(&bytes, 0, 0).unwrap();
    log.append_as_leader(&batch(1, 10), 0, 0).unwrap();
    assert_eq!(log.max_timestamp_and_offset(), Some((90, 1)));
    assert_eq!(log.fetch_offset_by_timestamp(60).unwrap(), Some((1, 90)));
}

#[test]
fn truncate_to_removes_whole_batches_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = filled(dir.path(), 2, 2, 5, |_| LogConfig::default());
    log.truncate_to(7).unwrap();
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.segment_base_offsets(), vec![0, 4]);
    let info = log.append_as_leader(&batch(1, 0), 0, 0).unwrap();
    assert_eq!(info.first_offset, 6);
    log.truncate_fully_and_start_at(100, 0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 100));
    assert_eq!(
        log.append_as_leader(&batch(1, 0), 0, 0)
            .unwrap()
            .first_offset,
        100
    );
}

#[test]
fn follower_appends_keep_the_leaders_offsets() {
    let leader_dir = tempfile::tempdir().unwrap();
    let mut leader = open(leader_dir.path(), LogConfig::default());
    let idempotent = |seq: i32| {
        encode_batch(&BatchSpec {
            count: 2,
            producer_id: 5,
            producer_epoch: 0,
            base_sequence: seq,
            ..BatchSpec::default()
        })
    };
    leader.append_as_leader(&idempotent(0), 3, 0).unwrap();
    leader.append_as_leader(&idempotent(2), 3, 0).unwrap();
    let fetched = leader.read(0, 1 << 20, true, i64::MAX).unwrap().records;

    let follower_dir = tempfile::tempdir().unwrap();
    let mut follower = open(follower_dir.path(), LogConfig::default());
    let info = follower.append_as_follower(&fetched, 0).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.records_count),
        (0, 3, 4)
    );
    assert_eq!(
        follower.read(0, 1 << 20, true, i64::MAX).unwrap().records,
        fetched
    );
    // Producer state came along: the follower, once leader, spots a retry.
    assert!(
        follower
            .append_as_leader(&idempotent(2), 4, 0)
            .unwrap()
            .duplicate
    );
    // Offsets must move forward.
    assert!(matches!(
        follower.append_as_follower(&fetched, 0),
        Err(LogError::InvalidRecord(_))
    ));
    // A jump (the leader compacted a range away) starts a new segment at the batch.
    let mut later = batch(1, 0).to_vec();
    strata_storage::batch::set_base_offset(&mut later, 10);
    follower.append_as_follower(&later, 0).unwrap();
    assert_eq!(follower.segment_base_offsets(), vec![0, 10]);
    assert_eq!(follower.log_end_offset(), 11);
    assert_eq!(
        follower
            .read(5, 1000, true, i64::MAX)
            .unwrap()
            .first_batch_offset,
        Some(10)
    );
}

/// The files of `dir` this process holds open, by name.
fn open_files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .map(|target| target.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_segment_holds_only_its_log_file_open_and_indexes_reach_disk_when_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, size) = filled(dir.path(), 3, 3, 8, |_| LogConfig {
        index_interval_bytes: 1,
        ..LogConfig::default()
    });
    assert_eq!(log.segment_base_offsets(), vec![0, 9, 18]);
    // Three segments: three open files, no index among them.
    assert_eq!(
        open_files_in(dir.path()),
        [
            "00000000000000000000.log",
            "00000000000000000009.log",
            "00000000000000000018.log"
        ]
    );
    // The active segment's index entries are in memory until the flush.
    let active = dir.path().join("t-0/00000000000000000018.index");
    let entries = |path: &Path| {
        std::fs::read(path)
            .unwrap()
            .chunks(8)
            .take_while(|e| e.iter().any(|b| *b != 0))
            .count()
    };
    // Two batches in the active segment: an entry for the second, used by reads.
    let read = log.read(21, 1 << 20, false, i64::MAX).unwrap();
    assert_eq!(read.records.len() as u64, size);
    assert_eq!(entries(&active), 0);
    log.flush().unwrap();
    assert_eq!(entries(&active), 1);
    // Rolled segments' entries were written when they rolled.
    assert_eq!(
        entries(&dir.path().join("t-0/00000000000000000000.index")),
        2
    );
    assert_eq!(open_files_in(dir.path()).len(), 3);
}
