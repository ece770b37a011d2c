//! `LogCleaner`: log compaction for `cleanup.policy=compact` (and `compact,delete`).
//!
//! Compaction keeps, for every key, only its latest record, so a compacted topic (like
//! `__consumer_offsets`) holds the last state per key no matter how long it runs.
//!
//! The log is split at the cleaner checkpoint (`first_dirty_offset`): below it lies the
//! *clean* section, compacted before; from it up to the *first uncleanable offset* lies the
//! *dirty* section. The active segment, every segment reaching past the high watermark
//! (followers may still need its records as written) and every segment holding a record
//! younger than `min.compaction.lag.ms` are never cleaned. A log is cleaned when the dirty share of the
//! cleanable bytes reaches `min.cleanable.dirty.ratio` (or when forced).
//!
//! One cleaning:
//! 1. Build the *offset map*, key → latest offset, over the dirty section.
//! 2. Rewrite every cleanable segment, keeping a record only if no later record of the same
//!    key exists in the map. Offsets are preserved (compacted logs have gaps); batches whose
//!    records all survive are kept byte for byte, others are re-encoded with their
//!    compression, producer id, epoch and partition leader epoch.
//! 3. Tombstones (records with a null value) survive their first cleaning, so consumers
//!    get `delete.retention.ms` to see them; a tombstone in a segment that was cleaned at
//!    least that long ago is dropped. The cleaning time is the segment file's modification
//!    time, which the cleaner sets.
//! 4. Each rewritten segment is swapped in crash-safely, as Kafka does: written to
//!    `<base>.log.cleaned` (and its aborted transaction index to `<base>.txnindex.cleaned`)
//!    and fsynced, the index renamed to `.txnindex.swap` and then the log to
//!    `<base>.log.swap` — the point from which the swap is completed, not undone — the
//!    original's files renamed `.deleted`, the swaps renamed into place (index first),
//!    then the `.deleted` files removed. Opening a log finishes or undoes whatever a crash
//!    interrupted: `.cleaned` files are deleted (the originals are intact), a `.log.swap`
//!    replaces its original together with its `.txnindex.swap` if that is still there,
//!    a `.txnindex.swap` without one is deleted, and `.deleted` files are removed. The
//!    offset and time indexes of a swapped-in segment are rebuilt from it.
//!
//! A batch whose records inflate beyond 64 MiB (`records::MAX_DECOMPRESSED_BATCH_BYTES`;
//! a producer's is refused, but a topic may hold one from before it was compacted, or
//! from its leader) is kept whole and its keys supersede nothing: decoding it would hold
//! all of it in memory.
//!
//! Transactions: nothing at or after the first unstable offset (an open transaction, or
//! one whose marker is not yet replicated) is cleaned, and records of aborted
//! transactions neither enter the offset map nor survive a cleaning, so an aborted write
//! never shadows a committed one. A marker stays while any record of its transaction
//! does; once none is left after a cleaning, the marker is rewritten with a *delete
//! horizon* (`delete.retention.ms` from then, in Kafka's batch format, KIP-534) and a
//! cleaning after the horizon removes it, with its aborted transaction index entry — so a
//! consumer that read the transaction's records still sees how it ended. A rewritten
//! segment keeps the rest of its aborted transaction index.
//!
//! Segments that end up empty are deleted (except the first, which anchors the log start
//! offset); reads skip the gap. Reads copy their bytes out under the partition's lock, so
//! no reader ever holds a view into a file being replaced.
//!
//! Not done (differences from Kafka): small segments are not merged into one; the offset
//! map is an ordinary `HashMap` with no memory bound (`log.cleaner.dedupe.buffer.size`);
//! cleaning runs under the partition lock instead of on a separate thread; re-encoded idempotent batches start at their first surviving record, so their sequence
//! range is narrower than the original batch's.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use crate::batch::RecordBatch;
use crate::error::LogError;
use crate::log::{CLEANED_FILE_SUFFIX, DELETED_FILE_SUFFIX, Log, SWAP_FILE_SUFFIX};
use crate::records;
use crate::segment::{LOG_FILE_SUFFIX, LogSegment, Scan, file_path, remove_if_exists, with_suffix};
use crate::txn::{AbortedTxn, EndTxnMarker, TXN_INDEX_FILE_SUFFIX};

/// What one call to [`Log::clean`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CleanStats {
    /// Dirty bytes / cleanable bytes when the cleaning was considered.
    pub dirty_ratio: f64,
    /// Segments read by the cleaning (0 when the log was not due).
    pub segments_cleaned: usize,
    /// Segments replaced by a compacted copy (or deleted because nothing survived).
    pub segments_rewritten: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Records dropped because a later record has the same key.
    pub records_removed: u64,
    /// Tombstones dropped after `delete.retention.ms`.
    pub tombstones_removed: u64,
    /// Transaction markers removed (their transaction's records gone, horizon passed).
    pub markers_removed: u64,
}

/// What a cleaning learns of transactions while it walks the log in offset order.
#[derive(Default)]
struct TransactionsSeen {
    /// Producers with a record of their current transaction kept since their last marker:
    /// that marker must stay.
    with_records: HashSet<i64>,
}

/// Points in a segment swap; tests stop a cleaning there to simulate a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CleanStep {
    /// `.cleaned` written, nothing renamed.
    Cleaned,
    /// Renamed to `.swap`, originals untouched.
    Swap,
    /// Originals renamed `.deleted`, swap not yet renamed.
    OriginalsDeleted,
    /// The new transaction index in place, the new log not yet.
    TxnIndexSwapped,
}

fn decode(batch: &[u8]) -> Result<kafka_protocol::records::RecordSet, LogError> {
    let mut bytes = Bytes::copy_from_slice(batch);
    RecordBatchDecoder::decode(&mut bytes)
        .map_err(|e| LogError::CorruptRecord(format!("decoding record batch: {e}")))
}

/// `batch` decoded in memory, or `None` when its records inflate beyond
/// [`records::MAX_DECOMPRESSED_BATCH_BYTES`]. A compacted topic refuses such a batch from
/// a producer, but may hold one all the same: written before `cleanup.policy` became
/// `compact`, or copied from a leader. The cleaner keeps it whole, and its keys do not
/// supersede older records: less compaction, never a broker holding gigabytes.
fn decode_bounded(
    batch: &RecordBatch<'_>,
) -> Result<Option<kafka_protocol::records::RecordSet>, LogError> {
    if batch.compression() != 0 {
        match records::scan(batch, records::MAX_DECOMPRESSED_BATCH_BYTES) {
            Ok(_) => {}
            Err(LogError::DecompressedTooLarge { max }) => {
                tracing::warn!(
                    base_offset = batch.base_offset(),
                    max,
                    "a batch inflates beyond the cleaner's bound; kept whole, not compacted"
                );
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
    }
    decode(batch.as_bytes()).map(Some)
}

impl Log {
    /// Compacts the log if it is due (dirty ratio ≥ `min.cleanable.dirty.ratio`) or if
    /// `force`. Does nothing for logs whose policy does not compact.
    pub fn clean(&mut self, now_ms: i64, force: bool) -> Result<CleanStats, LogError> {
        let mut stats = CleanStats::default();
        if !self.config.cleanup_policy.compacts() {
            return Ok(stats);
        }
        let first_dirty = self.first_dirty_offset.max(self.log_start_offset);
        let active_base = self.active_segment().base_offset();
        let lag = self.config.min_compaction_lag_ms;
        let stable = self.last_stable_offset();
        let cleanable: Vec<i64> = self
            .segments
            .range(..active_base)
            .take_while(|(_, s)| s.next_offset() <= stable)
            .take_while(|(_, s)| lag <= 0 || s.largest_timestamp() <= now_ms - lag)
            .map(|(b, _)| *b)
            .collect();
        let Some(&last_cleanable) = cleanable.last() else {
            return Ok(stats);
        };
        let first_uncleanable = self.segments[&last_cleanable].next_offset();
        let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
        for base in &cleanable {
            let segment = &self.segments[base];
            if segment.next_offset() > first_dirty {
                dirty_bytes += segment.size();
            } else {
                clean_bytes += segment.size();
            }
        }
        if clean_bytes + dirty_bytes > 0 {
            stats.dirty_ratio = dirty_bytes as f64 / (clean_bytes + dirty_bytes) as f64;
        }
        // Forcing also cleans a log with nothing dirty, and so does a passed tombstone
        // horizon: that is how expired tombstones in the clean section are dropped when no
        // new data arrives.
        let horizon_passed = self.tombstone_horizon_ms.is_some_and(|h| now_ms >= h);
        if !force
            && !horizon_passed
            && (dirty_bytes == 0 || stats.dirty_ratio < self.config.min_cleanable_dirty_ratio)
        {
            return Ok(stats);
        }
        let mut tombstones_kept = false;

        let aborted = AbortedRanges::of(self);
        let mut transactions = TransactionsSeen::default();
        // 1. The offset map over the dirty section.
        let mut offset_map: HashMap<Bytes, i64> = HashMap::new();
        for base in &cleanable {
            let segment = &self.segments[base];
            if segment.next_offset() <= first_dirty {
                continue;
            }
            segment.scan_from(0, false, |_, batch| {
                if batch.last_offset() < first_dirty
                    || batch.is_control()
                    || aborted.contains(batch)
                {
                    return Ok(Scan::Continue);
                }
                let Some(set) = decode_bounded(batch)? else {
                    return Ok(Scan::Continue);
                };
                for record in set.records {
                    if let Some(key) = record.key
                        && record.offset >= first_dirty
                    {
                        offset_map.insert(key, record.offset);
                    }
                }
                Ok(Scan::Continue)
            })?;
        }

        // 2-4. Rewrite and swap in each cleanable segment.
        for base in cleanable {
            let previously_cleaned = self.segments[&base].next_offset() <= first_dirty;
            let drop_tombstones = previously_cleaned
                && now_ms - self.segments[&base].last_modified_ms()?
                    >= self.config.delete_retention_ms;
            stats.segments_cleaned += 1;
            stats.bytes_read += self.segments[&base].size();
            let (rewritten, kept_tombstones) = self.clean_segment(
                base,
                &offset_map,
                &aborted,
                &mut transactions,
                drop_tombstones,
                now_ms,
                &mut stats,
            )?;
            tombstones_kept |= kept_tombstones;
            if rewritten {
                stats.segments_rewritten += 1;
            } else if !previously_cleaned {
                // Unchanged, but now part of the clean section: tombstone retention counts
                // from this cleaning.
                self.segments[&base].set_last_modified_ms(now_ms)?;
            }
        }
        self.first_dirty_offset = first_uncleanable;
        self.tombstone_horizon_ms =
            tombstones_kept.then(|| now_ms.saturating_add(self.config.delete_retention_ms));
        tracing::info!(
            dir = %self.dir.display(),
            ?stats,
            "cleaned log"
        );
        Ok(stats)
    }

    /// Filters one segment; returns whether it was replaced and whether it still holds
    /// tombstones (or markers waiting for their delete horizon).
    #[allow(clippy::too_many_arguments)]
    fn clean_segment(
        &mut self,
        base: i64,
        offset_map: &HashMap<Bytes, i64>,
        aborted: &AbortedRanges,
        transactions: &mut TransactionsSeen,
        drop_tombstones: bool,
        now_ms: i64,
        stats: &mut CleanStats,
    ) -> Result<(bool, bool), LogError> {
        let delete_retention_ms = self.config.delete_retention_ms;
        let segment = &self.segments[&base];
        let mut output = BytesMut::new();
        let mut changed = false;
        let mut removed = 0u64;
        let mut tombstones = 0u64;
        let mut tombstones_kept = false;
        // Offsets of the ABORT markers removed: their index entries go with them.
        let mut removed_aborts: HashSet<i64> = HashSet::new();
        segment.scan_from(0, false, |_, batch| {
            if batch.is_control() {
                let Some(marker) = EndTxnMarker::from_batch(batch) else {
                    output.extend_from_slice(batch.as_bytes());
                    return Ok(Scan::Continue);
                };
                if transactions.with_records.remove(&marker.producer_id) {
                    // Records of its transaction remain.
                    output.extend_from_slice(batch.as_bytes());
                    return Ok(Scan::Continue);
                }
                match batch.delete_horizon_ms() {
                    Some(horizon) if now_ms >= horizon => {
                        stats.markers_removed += 1;
                        if marker.control == crate::txn::ControlType::Abort {
                            removed_aborts.insert(batch.base_offset());
                        }
                        changed = true;
                    }
                    Some(_) => {
                        tombstones_kept = true;
                        output.extend_from_slice(batch.as_bytes());
                    }
                    None => {
                        tombstones_kept = true;
                        changed = true;
                        output.extend_from_slice(&marker.to_batch_with_delete_horizon(
                            batch.base_offset(),
                            batch.partition_leader_epoch(),
                            batch.max_timestamp(),
                            now_ms.saturating_add(delete_retention_ms),
                        ));
                    }
                }
                return Ok(Scan::Continue);
            }
            if aborted.contains(batch) {
                removed += u64::try_from(batch.records_count()).unwrap_or(0);
                changed = true;
                return Ok(Scan::Continue);
            }
            let Some(set) = decode_bounded(batch)? else {
                if batch.is_transactional() {
                    transactions.with_records.insert(batch.producer_id());
                }
                output.extend_from_slice(batch.as_bytes());
                return Ok(Scan::Continue);
            };
            let total = set.records.len();
            let mut kept: Vec<Record> = Vec::with_capacity(total);
            for record in set.records {
                let superseded = match &record.key {
                    Some(key) => offset_map
                        .get(key)
                        .is_some_and(|latest| record.offset < *latest),
                    None => false,
                };
                if superseded {
                    removed += 1;
                } else if record.value.is_none() && record.key.is_some() && drop_tombstones {
                    tombstones += 1;
                } else {
                    tombstones_kept |= record.value.is_none() && record.key.is_some();
                    kept.push(record);
                }
            }
            if batch.is_transactional() && !kept.is_empty() {
                transactions.with_records.insert(batch.producer_id());
            }
            if kept.len() == total {
                output.extend_from_slice(batch.as_bytes());
                return Ok(Scan::Continue);
            }
            changed = true;
            if kept.is_empty() {
                return Ok(Scan::Continue);
            }
            if batch.producer_id() < 0 {
                // Keep the batch's base sequence at -1: the encoder derives it from the
                // first record and keeps records together while offset - sequence is equal.
                let first = kept[0].offset;
                for record in &mut kept {
                    record.sequence = (record.offset - first) as i32 - 1;
                }
            }
            let options = RecordEncodeOptions {
                version: 2,
                compression: set.compression,
            };
            RecordBatchEncoder::encode(&mut output, kept.iter(), &options)
                .map_err(|e| LogError::InvalidRecord(format!("re-encoding cleaned batch: {e}")))?;
            Ok(Scan::Continue)
        })?;
        stats.records_removed += removed;
        stats.tombstones_removed += tombstones;
        if !changed {
            return Ok((false, tombstones_kept));
        }
        let is_first = self.segments.keys().next() == Some(&base);
        if output.is_empty() && !is_first {
            // Nothing survived: the segment goes, and reads skip the gap.
            let segment = self.segments.remove(&base).expect("segment being cleaned");
            segment.delete_files()?;
            return Ok((true, false));
        }
        stats.bytes_written += output.len() as u64;
        self.swap_in(base, &output, &removed_aborts, now_ms)?;
        Ok((true, tombstones_kept))
    }

    /// Replaces segment `base` with `data` through `.cleaned` → `.swap` → `.log`; its
    /// aborted transaction index stays, but for the markers at `removed_aborts`.
    fn swap_in(
        &mut self,
        base: i64,
        data: &[u8],
        removed_aborts: &HashSet<i64>,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let log_path = file_path(&self.dir, base, LOG_FILE_SUFFIX);
        let txn_path = file_path(&self.dir, base, TXN_INDEX_FILE_SUFFIX);
        let (cleaned, swap) = (
            with_suffix(&log_path, CLEANED_FILE_SUFFIX),
            with_suffix(&log_path, SWAP_FILE_SUFFIX),
        );
        let (txn_cleaned, txn_swap) = (
            with_suffix(&txn_path, CLEANED_FILE_SUFFIX),
            with_suffix(&txn_path, SWAP_FILE_SUFFIX),
        );
        // The new segment keeps the original's aborted transactions, but for the
        // markers this cleaning removed.
        let aborted_txns: Vec<AbortedTxn> = self.segments[&base]
            .aborted_txns()
            .iter()
            .filter(|t| !removed_aborts.contains(&t.last_offset))
            .copied()
            .collect();
        crate::txn::write_index_file(&txn_cleaned, &aborted_txns)?;
        {
            let mut file = fs::File::create(&cleaned)?;
            file.write_all(data)?;
            file.sync_all()?;
            file.set_modified(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(now_ms.max(0) as u64),
            )?;
        }
        self.simulate_crash_at(CleanStep::Cleaned)?;
        fs::rename(&txn_cleaned, &txn_swap)?;
        fs::rename(&cleaned, &swap)?;
        sync_dir(&self.dir)?;
        self.simulate_crash_at(CleanStep::Swap)?;
        let mut original = self.segments.remove(&base).expect("segment being cleaned");
        original.add_suffix(DELETED_FILE_SUFFIX)?;
        self.simulate_crash_at(CleanStep::OriginalsDeleted)?;
        fs::rename(&txn_swap, &txn_path)?;
        self.simulate_crash_at(CleanStep::TxnIndexSwapped)?;
        fs::rename(&swap, &log_path)?;
        sync_dir(&self.dir)?;
        original.delete_files()?;
        if aborted_txns.is_empty() {
            remove_if_exists(&txn_path)?;
        }
        // The new segment's offset and time indexes are built from its data.
        let mut segment = LogSegment::open(
            &self.dir,
            base,
            self.config.index_interval_bytes,
            self.config.segment_index_bytes,
            now_ms,
        )?;
        segment.on_become_inactive()?;
        self.segments.insert(base, segment);
        Ok(())
    }

    #[cfg(test)]
    fn simulate_crash_at(&self, step: CleanStep) -> Result<(), LogError> {
        if self.clean_crash_point == Some(step) {
            return Err(LogError::Io(std::io::Error::other("simulated crash")));
        }
        Ok(())
    }

    #[cfg(not(test))]
    fn simulate_crash_at(&self, _step: CleanStep) -> Result<(), LogError> {
        Ok(())
    }
}

fn sync_dir(dir: &std::path::Path) -> Result<(), LogError> {
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// The offset ranges of aborted transactions, per producer.
struct AbortedRanges(HashMap<i64, Vec<(i64, i64)>>);

impl AbortedRanges {
    fn of(log: &Log) -> AbortedRanges {
        let mut ranges: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for segment in log.segments.values() {
            for AbortedTxn {
                producer_id,
                first_offset,
                last_offset,
                ..
            } in segment.aborted_txns()
            {
                ranges
                    .entry(*producer_id)
                    .or_default()
                    .push((*first_offset, *last_offset));
            }
        }
        AbortedRanges(ranges)
    }

    /// Whether `batch` is a data batch of an aborted transaction.
    fn contains(&self, batch: &RecordBatch<'_>) -> bool {
        batch.is_transactional()
            && !batch.is_control()
            && self.0.get(&batch.producer_id()).is_some_and(|ranges| {
                ranges
                    .iter()
                    .any(|(first, last)| (*first..=*last).contains(&batch.base_offset()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CleanupPolicy, LogConfig};
    use crate::test_util::{BatchSpec, encode_keyed};
    use std::collections::BTreeMap;
    use std::path::Path;

    fn config() -> LogConfig {
        LogConfig {
            cleanup_policy: CleanupPolicy::Compact,
            segment_bytes: 400,
            file_delete_delay_ms: 0,
            ..LogConfig::default()
        }
    }

    /// Every record in the log as (offset, key, value).
    fn records(log: &Log) -> Vec<(i64, String, Option<String>)> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let read = log.read(offset, usize::MAX, true, i64::MAX).unwrap();
            if read.records.is_empty() {
                break;
            }
            for batch in crate::batch::batches(&read.records) {
                let batch = batch.unwrap();
                batch.validate().unwrap();
                for r in decode(batch.as_bytes()).unwrap().records {
                    let text = |b: Bytes| String::from_utf8(b.to_vec()).unwrap();
                    out.push((r.offset, text(r.key.unwrap()), r.value.map(text)));
                }
                offset = batch.next_offset();
            }
        }
        out
    }

    fn latest(records: &[(i64, String, Option<String>)]) -> BTreeMap<String, Option<String>> {
        records
            .iter()
            .map(|(_, k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn fill(log: &mut Log, rounds: usize) {
        for i in 0..rounds {
            let key = format!("k{}", i % 7);
            let value = format!("v{i}");
            let batch = encode_keyed(&BatchSpec::default(), &[(Some(&key), Some(&value), 1_000)]);
            log.append_as_leader(&batch, 0, 0).unwrap();
        }
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap") || n.ends_with(".deleted"))
            .collect()
    }

    #[test]
    fn a_crash_at_any_step_of_a_swap_loses_nothing() {
        for step in [
            CleanStep::Cleaned,
            CleanStep::Swap,
            CleanStep::OriginalsDeleted,
            CleanStep::TxnIndexSwapped,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c-0");
            let mut log = Log::open(path.clone(), config(), true, 0, 0, 0).unwrap();
            fill(&mut log, 60);
            let before = records(&log);
            let end = log.log_end_offset();
            log.clean_crash_point = Some(step);
            log.update_high_watermark(log.log_end_offset());
            assert!(log.clean(5_000, true).is_err(), "{step:?}");
            drop(log); // the process dies here

            let mut log = Log::open(path.clone(), config(), false, 0, 0, 0).unwrap();
            assert!(
                leftovers(&path).is_empty(),
                "{step:?}: {:?}",
                leftovers(&path)
            );
            assert_eq!(log.log_end_offset(), end, "{step:?}");
            let after = records(&log);
            assert_eq!(latest(&after), latest(&before), "{step:?}");
            // Every surviving record is one of the originals, at its original offset.
            for record in &after {
                assert!(before.contains(record), "{step:?}: {record:?}");
            }
            // And cleaning now completes.
            log.update_high_watermark(log.log_end_offset());
            let stats = log.clean(6_000, true).unwrap();
            assert!(stats.records_removed > 0 || step == CleanStep::OriginalsDeleted);
            let cleaned = records(&log);
            assert_eq!(latest(&cleaned), latest(&before), "{step:?}");
            assert!(leftovers(&path).is_empty());
        }
    }

    /// An aborted transaction's index entry survives a crash at any step of the swap of
    /// its segment: read_committed consumers must go on dropping its records.
    #[test]
    fn a_crash_at_any_step_of_a_swap_keeps_the_aborted_transaction_index() {
        use crate::txn::{ControlType, EndTxnMarker};
        for step in [
            CleanStep::Cleaned,
            CleanStep::Swap,
            CleanStep::OriginalsDeleted,
            CleanStep::TxnIndexSwapped,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c-0");
            let mut log = Log::open(path.clone(), config(), true, 0, 0, 0).unwrap();
            // Two aborted transactions of producer 9 in the first segment: the cleaning
            // drops their records and keeps their markers (until a delete horizon a day
            // away) with their index entries; keys it compacts around them.
            for seq in [0, 1] {
                let spec = BatchSpec {
                    producer_id: 9,
                    producer_epoch: 0,
                    base_sequence: seq,
                    transactional: true,
                    ..BatchSpec::default()
                };
                let batch = encode_keyed(&spec, &[(Some("t"), Some("aborted"), 1_000)]);
                let header = *RecordBatch::parse(&batch).unwrap().header();
                let guard = log.maybe_start_transaction_verification(9, header.base_sequence, 0, 0);
                log.append_as_leader_verified(&batch, 0, 0, guard).unwrap();
                let marker = EndTxnMarker {
                    producer_id: 9,
                    producer_epoch: 0,
                    coordinator_epoch: 0,
                    control: ControlType::Abort,
                };
                log.append_marker_as_leader(&marker, 0, 0).unwrap();
            }
            fill(&mut log, 60);
            let end = log.log_end_offset();
            log.update_high_watermark(end);
            let aborted = log.collect_aborted_txns(0, end);
            assert_eq!(aborted.len(), 2);
            log.clean_crash_point = Some(step);
            assert!(log.clean(5_000, true).is_err(), "{step:?}");
            drop(log); // the process dies here

            let mut log = Log::open(path.clone(), config(), false, 0, 0, 0).unwrap();
            assert!(
                leftovers(&path).is_empty(),
                "{step:?}: {:?}",
                leftovers(&path)
            );
            assert_eq!(log.collect_aborted_txns(0, end), aborted, "{step:?}");
            log.update_high_watermark(log.log_end_offset());
            log.clean(6_000, true).unwrap();
            assert_eq!(log.collect_aborted_txns(0, end), aborted, "{step:?}");
            assert!(leftovers(&path).is_empty());
        }
    }
}
