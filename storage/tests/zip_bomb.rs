//! A compressed batch that inflates far beyond its size (a "zip bomb") costs CPU, not
//! memory: a compacted topic walks it through a streaming decompressor and refuses it
//! once it passes 64 MiB; a lookup by timestamp inside a stored one streams it as well, and
//! the cleaner keeps one a topic held before it was compacted whole.
//! Its own test binary, so the process's peak RSS is this test's.

use std::io::Write;

use strata_storage::records::{self, MAX_DECOMPRESSED_BATCH_BYTES};
use strata_storage::{CleanupPolicy, Log, LogConfig, LogError, RecordBatch};

/// One keyed record whose value is `zeros` zero bytes, zstd-compressed as it is written:
/// the batch is a few KiB and never whole in memory.
fn bomb(zeros: usize) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let b = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    let mut head = Vec::new();
    head.push(0); // attributes
    varint(&mut head, 0); // timestamp delta
    varint(&mut head, 0); // offset delta
    varint(&mut head, 1); // key length
    head.push(b'k');
    varint(&mut head, zeros as i64);
    let mut record = Vec::new();
    varint(&mut record, (head.len() + zeros + 1) as i64);
    record.extend_from_slice(&head);
    let mut z = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    z.write_all(&record).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len());
        z.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    z.write_all(&[0]).unwrap(); // no headers
    let body = z.finish().unwrap();

    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes()); // base offset
    batch.extend_from_slice(&((49 + body.len()) as i32).to_be_bytes()); // batch length
    batch.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&0u32.to_be_bytes()); // crc, below
    batch.extend_from_slice(&4i16.to_be_bytes()); // attributes: zstd
    batch.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    batch.extend_from_slice(&1_000i64.to_be_bytes()); // base timestamp
    batch.extend_from_slice(&1_000i64.to_be_bytes()); // max timestamp
    batch.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    batch.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    batch.extend_from_slice(&1i32.to_be_bytes()); // records
    batch.extend_from_slice(&body);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// The process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_zip_bomb_costs_cpu_not_memory() {
    let bytes = bomb(256 << 20);
    assert!(bytes.len() < 256 << 10, "{} bytes", bytes.len());
    let before = peak_rss_kib();

    let batch = RecordBatch::parse(&bytes).unwrap();
    batch.validate().unwrap();
    // Walked whole under a limit above its size ...
    let scan = records::scan(&batch, 1 << 30).unwrap();
    assert_eq!((scan.records, scan.without_key), (1, 0));
    assert!(scan.bytes > 256 << 20);
    // ... and refused by a compacted topic, with MESSAGE_TOO_LARGE's error.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path().join("c-0"), config, true, 0, 0, 0).unwrap();
    let refused = log.append_as_leader(&bytes, 0, 0);
    assert!(
        matches!(refused, Err(LogError::DecompressedTooLarge { max }) if max == MAX_DECOMPRESSED_BATCH_BYTES),
        "{refused:?}"
    );
    assert_eq!(log.log_end_offset(), 0, "nothing appended");
    // Any other topic takes it without looking inside, as Kafka does; a ListOffsets by
    // timestamp that has to look inside it then streams it too.
    let mut log = Log::open(dir.path().join("d-0"), LogConfig::default(), true, 0, 0, 0).unwrap();
    log.append_as_leader(&bytes, 0, 0).unwrap();
    assert_eq!(
        log.fetch_offset_by_timestamp(1_000).unwrap(),
        Some((0, 1_000))
    );
    assert_eq!(log.fetch_offset_by_timestamp(1_001).unwrap(), None);
    // A topic that held it before cleanup.policy became compact: the cleaner keeps the
    // batch whole instead of inflating it (the same key written after it would otherwise
    // supersede it).
    let segment_bytes = (bytes.len() + 64) as u64;
    let delete = LogConfig {
        segment_bytes,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path().join("e-0"), delete, true, 0, 0, 0).unwrap();
    log.append_as_leader(&bytes, 0, 0).unwrap();
    for _ in 0..2 {
        // Same key, one byte: the first rolls the bomb's segment, so it can be cleaned.
        log.append_as_leader(&bomb(1), 0, 0).unwrap();
    }
    log.update_high_watermark(log.log_end_offset());
    log.update_config(LogConfig {
        segment_bytes,
        cleanup_policy: CleanupPolicy::Compact,
        ..LogConfig::default()
    });
    log.clean(2_000, true).unwrap();
    assert_eq!(
        log.fetch_offset_by_timestamp(1_000).unwrap(),
        Some((0, 1_000)),
        "the bomb's batch is still at offset 0"
    );

    let grew = peak_rss_kib().saturating_sub(before);
    assert!(
        grew < 32 * 1024,
        "peak RSS grew by {grew} KiB reading 256 MiB of records"
    );
}
