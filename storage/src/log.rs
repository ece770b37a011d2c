//! `Log`: one partition's log, a sequence of `LogSegment`s of which the last is active.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{self, RecordBatch};
use crate::config::LogConfig;
use crate::error::LogError;
use crate::leader_epoch::LeaderEpochCache;
use crate::producer_state::{
    AppendOrigin, CompletedTxn, ProducerAppendInfo, ProducerStateManager, SNAPSHOT_FILE_SUFFIX,
    SequenceCheck, Verification, VerificationGuard,
};
use crate::records;
use crate::segment::{
    FileRegion, INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX, LogSegment, Scan, TIME_INDEX_FILE_SUFFIX,
    remove_if_exists,
};
use crate::txn::{AbortedTxn, EndTxnMarker, TXN_INDEX_FILE_SUFFIX};

/// Suffix of segment files waiting for `file.delete.delay.ms` before removal.
pub const DELETED_FILE_SUFFIX: &str = ".deleted";
/// Suffix of segment files being written by the log cleaner.
pub const CLEANED_FILE_SUFFIX: &str = ".cleaned";
/// Suffix of cleaned segment files about to replace the originals.
pub const SWAP_FILE_SUFFIX: &str = ".swap";

/// The outcome of an append as leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogAppendInfo {
    /// Offset assigned to the first record.
    pub first_offset: i64,
    /// Offset assigned to the last record.
    pub last_offset: i64,
    /// Largest batch timestamp of the append (-1 if none).
    pub max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    /// Records appended.
    pub records_count: u32,
    /// Bytes appended.
    pub valid_bytes: usize,
    /// An idempotent retry: nothing was appended, and `first_offset`/`last_offset` are
    /// the offsets the batch got when it was first written.
    pub duplicate: bool,
}

/// The result of a read: whole batches, exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchDataInfo {
    pub records: Bytes,
    /// Base offset of the first batch returned (which may be below the fetch offset when
    /// the fetch offset points inside a batch).
    pub first_batch_offset: Option<i64>,
}

/// One partition's log.
#[derive(Debug)]
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    /// By base offset; the last one is the active segment, and there is always one.
    pub(crate) segments: BTreeMap<i64, LogSegment>,
    /// First offset visible to consumers; raised by retention and DeleteRecords.
    pub(crate) log_start_offset: i64,
    /// Everything below this offset is known to be fsynced; recovery after a crash
    /// starts from the segment holding it.
    recovery_point: i64,
    /// The high watermark: offsets below it are replicated to the whole ISR (committed).
    /// Owned by the replication layer, which moves it; kept here, as Kafka's `UnifiedLog`
    /// keeps it, so it is checkpointed with the log and clamped by truncation.
    high_watermark: i64,
    /// Which leader epoch wrote which offsets, for follower truncation (KIP-101).
    leader_epoch_cache: LeaderEpochCache,
    producer_state: ProducerStateManager,
    /// Records appended since the last flush, for `flush.messages`.
    unflushed_messages: u64,
    /// When the log was last flushed, for `flush.ms`.
    last_flush_ms: i64,
    /// Renamed `.deleted` files and when they may be removed (`file.delete.delay.ms`).
    pending_deletes: Vec<(i64, PathBuf)>,
    /// The log cleaner's checkpoint: offsets below it were compacted before (the "clean"
    /// section), offsets from it on are "dirty".
    pub(crate) first_dirty_offset: i64,
    /// When the tombstones the last cleaning had to keep become removable
    /// (`delete.retention.ms` after they were cleaned). The cleaner runs again then even
    /// with no new dirty data, as Kafka's cleaner does for logs with an expired delete
    /// horizon (KIP-534). Not persisted: after a restart the next cleaning (new data or
    /// a forced one) drops them.
    pub(crate) tombstone_horizon_ms: Option<i64>,
    /// Test-only: make `clean` stop as if the process died at this step.
    #[cfg(test)]
    pub(crate) clean_crash_point: Option<crate::cleaner::CleanStep>,
}

impl Log {
    /// Opens (or creates) the log in `dir`.
    ///
    /// With `had_clean_shutdown` the segment files are trusted. Without it, every segment
    /// from the one holding `recovery_point` onwards (and always the active segment) is
    /// recovered: each batch is validated and the segment is cut at the first torn or
    /// corrupt one; later segments are then dropped, since a log must be contiguous.
    /// Producer state is loaded from the newest snapshot and the batches after it replayed.
    pub fn open(
        dir: PathBuf,
        config: LogConfig,
        had_clean_shutdown: bool,
        recovery_point: i64,
        log_start_offset: i64,
        now_ms: i64,
    ) -> Result<Log, LogError> {
        fs::create_dir_all(&dir)?;
        let base_offsets = remove_temporary_files_and_list_segments(&dir)?;
        let mut segments = BTreeMap::new();
        let mut truncated_at = None;
        for base_offset in base_offsets {
            let segment = LogSegment::open(
                &dir,
                base_offset,
                config.index_interval_bytes,
                config.segment_index_bytes,
                now_ms,
            )?;
            if segment.truncated_on_open() > 0 && truncated_at.is_none() {
                truncated_at = Some(base_offset);
            }
            segments.insert(base_offset, segment);
        }
        let leader_epoch_cache = LeaderEpochCache::load(&dir)?;
        let mut log = Log {
            producer_state: ProducerStateManager::new(&dir),
            leader_epoch_cache,
            high_watermark: 0,
            dir,
            config,
            segments,
            log_start_offset: log_start_offset.max(0),
            recovery_point,
            unflushed_messages: 0,
            last_flush_ms: now_ms,
            pending_deletes: Vec::new(),
            first_dirty_offset: 0,
            tombstone_horizon_ms: None,
            #[cfg(test)]
            clean_crash_point: None,
        };
        if !had_clean_shutdown {
            log.recover_unflushed_segments(recovery_point, &mut truncated_at)?;
        }
        if let Some(cut) = truncated_at {
            log.delete_segments_after(cut)?;
        }
        if log.segments.is_empty() {
            let segment = LogSegment::create(
                &log.dir,
                log.log_start_offset,
                log.config.index_interval_bytes,
                log.config.segment_index_bytes,
                now_ms,
            )?;
            log.segments.insert(log.log_start_offset, segment);
        }
        let first_base = *log.segments.keys().next().expect("log has a segment");
        let log_end_offset = log.log_end_offset();
        log.log_start_offset = log.log_start_offset.max(first_base).min(log_end_offset);
        log.recovery_point = log_end_offset;
        log.first_dirty_offset = log.log_start_offset;
        log.leader_epoch_cache.truncate_from_end(log_end_offset)?;
        log.leader_epoch_cache
            .truncate_from_start(log.log_start_offset)?;
        log.high_watermark = log.log_start_offset;
        log.active_segment_mut().on_become_active()?;
        log.rebuild_producer_state()?;
        Ok(log)
    }

    /// Recovers every segment from the one holding `recovery_point` (at least the active
    /// one), noting in `truncated_at` the first segment that lost data.
    fn recover_unflushed_segments(
        &mut self,
        recovery_point: i64,
        truncated_at: &mut Option<i64>,
    ) -> Result<(), LogError> {
        let Some(&last_base) = self.segments.keys().next_back() else {
            return Ok(());
        };
        let start = self.unflushed_from(recovery_point).min(last_base);
        let to_recover: Vec<i64> = self.segments.range(start..).map(|(b, _)| *b).collect();
        for base in to_recover {
            if truncated_at.is_some_and(|cut| base > cut) {
                break; // deleted below anyway
            }
            let segment = self.segments.get_mut(&base).expect("segment listed");
            // Epochs newer than the checkpoint's, from the recovered batches: an entry
            // written but not yet synced may have been lost with the machine.
            let mut latest = self.leader_epoch_cache.latest_epoch();
            let mut new_epochs = Vec::new();
            let truncated = segment.recover_with(|header| {
                let epoch = header.partition_leader_epoch;
                if latest.is_none_or(|e| epoch > e) {
                    latest = Some(epoch);
                    new_epochs.push((epoch, header.base_offset));
                }
            })?;
            for (epoch, start) in new_epochs {
                self.leader_epoch_cache.assign(epoch, start)?;
            }
            if base != last_base {
                segment.on_become_inactive()?;
            }
            segment.flush()?;
            if truncated > 0 {
                tracing::warn!(dir = %self.dir.display(), base, truncated, "recovered log segment");
                truncated_at.get_or_insert(base);
            }
        }
        Ok(())
    }

    /// Deletes every segment after `cut`: once a segment lost its tail, what follows it is
    /// unreachable (a log has no holes).
    fn delete_segments_after(&mut self, cut: i64) -> Result<(), LogError> {
        let doomed: Vec<i64> = self.segments.range(cut + 1..).map(|(b, _)| *b).collect();
        for base in doomed {
            let segment = self.segments.remove(&base).expect("segment listed");
            tracing::warn!(dir = %self.dir.display(), base, "deleting segment after a truncated one");
            segment.delete_files()?;
        }
        Ok(())
    }

    /// Loads the newest producer snapshot at or below the log end offset and replays the
    /// batches after it.
    fn rebuild_producer_state(&mut self) -> Result<(), LogError> {
        let log_end_offset = self.log_end_offset();
        self.producer_state.delete_snapshots_after(log_end_offset)?;
        let first_base = *self.segments.keys().next().expect("log has a segment");
        let from = self
            .producer_state
            .load_latest_snapshot(log_end_offset)?
            .unwrap_or(first_base);
        let Log {
            segments,
            producer_state,
            ..
        } = self;
        for segment in segments.values_mut().filter(|s| s.next_offset() > from) {
            let (_, position) = segment.offset_index().lookup(from);
            let mut aborted = Vec::new();
            segment.scan_from(u64::from(position), false, |_, batch| {
                if batch.last_offset() >= from
                    && let Some(txn) = producer_state.replay(batch)
                {
                    aborted.extend(aborted_entry(producer_state, &txn));
                }
                Ok(Scan::Continue)
            })?;
            // Already there unless the index file was lost: appends are idempotent.
            for txn in aborted {
                segment.append_aborted_txn(txn)?;
            }
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.segments
            .values()
            .next_back()
            .map_or(self.log_start_offset, LogSegment::next_offset)
    }

    /// Offset below which everything is fsynced (what `recovery-point-offset-checkpoint`
    /// stores).
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    pub fn size_in_bytes(&self) -> u64 {
        self.segments.values().map(LogSegment::size).sum()
    }

    pub fn number_of_segments(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producer_state
    }

    /// Offsets below the high watermark are committed (replicated to the whole ISR).
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// Sets the high watermark, clamped to `[log start offset, log end offset]` (a
    /// follower takes the leader's, which may be ahead of its own log). Returns the value
    /// set.
    pub fn update_high_watermark(&mut self, high_watermark: i64) -> i64 {
        self.set_high_watermark(
            high_watermark
                .min(self.log_end_offset())
                .max(self.log_start_offset),
        );
        self.high_watermark
    }

    /// Moves the high watermark up to `high_watermark` (never down, never past the log
    /// end offset). Returns the previous value when it moved.
    pub fn maybe_increment_high_watermark(&mut self, high_watermark: i64) -> Option<i64> {
        let new = high_watermark.min(self.log_end_offset());
        if new > self.high_watermark {
            let old = self.high_watermark;
            self.set_high_watermark(new);
            Some(old)
        } else {
            None
        }
    }

    /// Every change of the high watermark goes through here: ended transactions whose
    /// marker it passes stop holding the last stable offset back.
    fn set_high_watermark(&mut self, high_watermark: i64) {
        self.high_watermark = high_watermark;
        self.producer_state
            .on_high_watermark_updated(high_watermark);
    }

    /// The last stable offset: what `read_committed` consumers may read up to — the
    /// first offset of the oldest transaction still open (or ended by a marker not yet
    /// replicated), or the high watermark when that is lower.
    pub fn last_stable_offset(&self) -> i64 {
        self.producer_state
            .first_unstable_offset()
            .map_or(self.high_watermark, |first| first.min(self.high_watermark))
            .max(self.log_start_offset)
    }

    /// The aborted transactions a `read_committed` fetch from `fetch_offset` that returns
    /// records below `upper_bound` must tell the client about: those whose marker is at or
    /// after `fetch_offset` and whose first record is below `upper_bound`, in marker order.
    pub fn collect_aborted_txns(&self, fetch_offset: i64, upper_bound: i64) -> Vec<AbortedTxn> {
        let start = self
            .segments
            .range(..=fetch_offset)
            .next_back()
            .map_or(i64::MIN, |(base, _)| *base);
        let mut found = Vec::new();
        for segment in self.segments.range(start..).map(|(_, s)| s) {
            for txn in segment.aborted_txns() {
                if txn.last_offset >= fetch_offset && txn.first_offset < upper_bound {
                    found.push(*txn);
                }
                if txn.last_stable_offset > upper_bound {
                    // Nothing later can start below the bound (Kafka's `isComplete`).
                    return found;
                }
            }
        }
        found
    }

    /// Appends an end-transaction marker as the partition leader (what WriteTxnMarkers
    /// asks for): fenced when its producer epoch or coordinator epoch is older than the
    /// last one seen; the producer's open transaction ends, and an aborted one goes into
    /// the aborted transaction index.
    pub fn append_marker_as_leader(
        &mut self,
        marker: &EndTxnMarker,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo, LogError> {
        self.producer_state.check_marker(marker)?;
        let mut buf = marker.to_batch(leader_epoch, now_ms);
        let offset = self.log_end_offset();
        batch::set_base_offset(&mut buf, offset);
        self.write_as_leader(&buf, offset, offset, leader_epoch, now_ms)?;
        if let Some(txn) = self.producer_state.apply_marker(marker, offset, now_ms) {
            self.index_completed_txn(&txn)?;
        }
        self.count_unflushed(1, now_ms)?;
        Ok(LogAppendInfo {
            first_offset: offset,
            last_offset: offset,
            max_timestamp: now_ms,
            offset_of_max_timestamp: offset,
            records_count: 1,
            valid_bytes: buf.len(),
            duplicate: false,
        })
    }

    /// Writes batches given offsets `first_offset..=last_offset` at the log end, as the
    /// leader of `leader_epoch`: rolls first if they do not fit the active segment, then
    /// one write, and the epoch's start offset.
    fn write_as_leader(
        &mut self,
        buf: &[u8],
        first_offset: i64,
        last_offset: i64,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<(), LogError> {
        if self.active_segment().should_roll(
            buf.len() as u64,
            last_offset,
            self.config.segment_bytes,
            self.config.segment_ms,
            now_ms,
        ) {
            self.roll(now_ms)?;
        }
        self.active_segment_mut().append(buf)?;
        self.leader_epoch_cache.assign(leader_epoch, first_offset)?;
        Ok(())
    }

    /// Counts appended records towards `flush.messages`, flushing when it is reached.
    fn count_unflushed(&mut self, records: u64, now_ms: i64) -> Result<(), LogError> {
        self.unflushed_messages += records;
        if self.unflushed_messages >= self.config.flush_interval_messages {
            self.flush()?;
            self.last_flush_ms = now_ms;
        }
        Ok(())
    }

    /// Puts an aborted transaction into the active segment's index.
    fn index_completed_txn(&mut self, txn: &CompletedTxn) -> Result<(), LogError> {
        if let Some(entry) = aborted_entry(&self.producer_state, txn) {
            self.active_segment_mut().append_aborted_txn(entry)?;
        }
        Ok(())
    }

    /// The leader epochs of this log and their start offsets, oldest first.
    pub fn leader_epoch_entries(&self) -> Vec<(i32, i64)> {
        self.leader_epoch_cache.entries()
    }

    /// The newest leader epoch that wrote to (or was assigned on) this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.leader_epoch_cache.latest_epoch()
    }

    /// Where `epoch` ends on this log, as `(largest epoch ≤ it, end offset)` (see
    /// [`LeaderEpochCache::end_offset_for`]).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.leader_epoch_cache
            .end_offset_for(epoch, self.log_end_offset())
    }

    /// A new leader records that its epoch begins at its log end offset, so followers with
    /// entries from a later, failed epoch can find where to truncate.
    pub fn maybe_assign_epoch_start_offset(
        &mut self,
        epoch: i32,
        start_offset: i64,
    ) -> Result<(), LogError> {
        self.leader_epoch_cache.assign(epoch, start_offset)?;
        Ok(())
    }

    pub fn update_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    pub fn last_flush_ms(&self) -> i64 {
        self.last_flush_ms
    }

    /// The log cleaner's checkpoint (what `cleaner-offset-checkpoint` stores): offsets below
    /// it have been compacted.
    pub fn first_dirty_offset(&self) -> i64 {
        self.first_dirty_offset
    }

    /// Restores the cleaner checkpoint after a restart.
    pub fn set_first_dirty_offset(&mut self, offset: i64) {
        self.first_dirty_offset = offset.clamp(self.log_start_offset, self.log_end_offset());
    }

    pub(crate) fn active_segment(&self) -> &LogSegment {
        self.segments
            .values()
            .next_back()
            .expect("log has a segment")
    }

    fn active_segment_mut(&mut self) -> &mut LogSegment {
        self.segments
            .values_mut()
            .next_back()
            .expect("log has a segment")
    }

    /// Validates every batch in `records` (v2 batches as received in a ProduceRequest),
    /// checks idempotent producer sequences, assigns offsets (rewriting `baseOffset` to
    /// the log end offset and `partitionLeaderEpoch` to `leader_epoch`, both outside the
    /// CRC), rolls if needed and appends with one write. All or nothing.
    ///
    /// A transactional batch that would open a transaction needs a verification guard
    /// (see [`Log::append_as_leader_verified`]) unless verification is disabled.
    pub fn append_as_leader(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo, LogError> {
        self.append_as_leader_verified(records, leader_epoch, now_ms, None)
    }

    /// [`Self::append_as_leader`] carrying the guard of the transaction verification the
    /// request obtained (KIP-890 part 1): a batch that opens its producer's transaction is
    /// appended only if the guard is still the producer's current one.
    pub fn append_as_leader_verified(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
        guard: Option<VerificationGuard>,
    ) -> Result<LogAppendInfo, LogError> {
        self.append_as_leader_from(records, leader_epoch, now_ms, AppendOrigin::Client, guard)
    }

    /// Starts the verification of a producer's transactional write (KIP-890 part 1):
    /// `None` when none is needed — verification disabled, or the producer's transaction
    /// already open here — else the guard to append with once the coordinator confirmed
    /// the partition is in the transaction.
    pub fn maybe_start_transaction_verification(
        &mut self,
        producer_id: i64,
        sequence: i32,
        producer_epoch: i16,
        now_ms: i64,
    ) -> Option<VerificationGuard> {
        if !self.config.transaction_partition_verification_enable {
            return None;
        }
        self.producer_state
            .maybe_start_verification(producer_id, sequence, producer_epoch, now_ms)
    }

    /// [`Self::append_as_leader`] for batches a coordinator of this broker wrote (Kafka's
    /// `AppendOrigin.COORDINATOR`): a transactional offset commit carries the producer's
    /// id and epoch but no sequence of the producer's own, so sequences are not checked;
    /// epochs are, and the batch takes part in the producer's transaction.
    ///
    /// A transactional offset commit that opens the producer's transaction here needs
    /// the guard of its verification, as a producer's write does.
    pub fn append_as_coordinator(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
        guard: Option<VerificationGuard>,
    ) -> Result<LogAppendInfo, LogError> {
        self.append_as_leader_from(
            records,
            leader_epoch,
            now_ms,
            AppendOrigin::Coordinator,
            guard,
        )
    }

    fn append_as_leader_from(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
        guard: Option<VerificationGuard>,
    ) -> Result<LogAppendInfo, LogError> {
        let verification = if self.config.transaction_partition_verification_enable {
            Verification::Required(guard)
        } else {
            Verification::Off
        };
        if records.is_empty() {
            return Err(LogError::InvalidRecord(
                "produce request has no record batches".into(),
            ));
        }
        let mut buf = records.to_vec();
        let mut next_offset = self.log_end_offset();
        let first_offset = next_offset;
        let mut producer_info = ProducerAppendInfo::default();
        let mut max_timestamp = -1;
        let mut offset_of_max_timestamp = -1;
        let mut records_count: u32 = 0;
        let mut position = 0;
        while position < buf.len() {
            let batch = RecordBatch::parse(&buf[position..])?;
            self.validate_client_batch(&batch)?;
            let size = batch.size_in_bytes();
            let count = batch.records_count();
            batch::set_base_offset(&mut buf[position..], next_offset);
            batch::set_partition_leader_epoch(&mut buf[position..], leader_epoch);
            let batch = RecordBatch::parse(&buf[position..])?;
            if let SequenceCheck::Duplicate(original) = producer_info.validate(
                &self.producer_state,
                batch.header(),
                origin,
                verification,
            )? {
                return Ok(LogAppendInfo {
                    first_offset: original.first_offset,
                    last_offset: original.last_offset,
                    max_timestamp: original.timestamp,
                    offset_of_max_timestamp: original.last_offset,
                    records_count: 0,
                    valid_bytes: 0,
                    duplicate: true,
                });
            }
            if batch.max_timestamp() > max_timestamp {
                max_timestamp = batch.max_timestamp();
                offset_of_max_timestamp = batch.last_offset();
            }
            records_count += count as u32;
            next_offset = batch.next_offset();
            position += size;
        }
        let last_offset = next_offset - 1;
        self.write_as_leader(&buf, first_offset, last_offset, leader_epoch, now_ms)?;
        self.producer_state.commit(producer_info);
        self.count_unflushed(u64::from(records_count), now_ms)?;
        Ok(LogAppendInfo {
            first_offset,
            last_offset,
            max_timestamp,
            offset_of_max_timestamp,
            records_count,
            valid_bytes: buf.len(),
            duplicate: false,
        })
    }

    /// Appends batches fetched from the leader (a follower replica): offsets, leader epochs
    /// and producer ids are the leader's and are kept as they are. Every batch must pass
    /// its CRC and start at or after the log end offset, in increasing order; producer
    /// state is updated from the batches without sequence checks (the leader made them).
    /// All or nothing, like [`Log::append_as_leader`].
    pub fn append_as_follower(
        &mut self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<LogAppendInfo, LogError> {
        if records.is_empty() {
            return Err(LogError::InvalidRecord(
                "no record batches to append".into(),
            ));
        }
        let mut expected = self.log_end_offset();
        let mut first_offset = None;
        let mut max_timestamp = -1;
        let mut offset_of_max_timestamp = -1;
        let mut records_count: u32 = 0;
        for batch in batch::batches(records) {
            let batch = batch?;
            batch.validate()?;
            if batch.base_offset() < expected || batch.last_offset() < batch.base_offset() {
                return Err(LogError::InvalidRecord(format!(
                    "replicated batch {}..={} does not follow offset {expected}",
                    batch.base_offset(),
                    batch.last_offset()
                )));
            }
            let size = batch.size_in_bytes();
            if size as u64 > self.config.segment_bytes {
                return Err(LogError::RecordTooLarge {
                    size,
                    max: self.config.segment_bytes as usize,
                });
            }
            first_offset.get_or_insert(batch.base_offset());
            if batch.max_timestamp() > max_timestamp {
                max_timestamp = batch.max_timestamp();
                offset_of_max_timestamp = batch.last_offset();
            }
            records_count += batch.records_count().max(0) as u32;
            expected = batch.next_offset();
        }
        let first_offset = first_offset.expect("at least one batch");
        let last_offset = expected - 1;
        // A batch that does not start right at the log end offset (the leader compacted the
        // range) begins a new segment, so segment base offsets stay exact.
        let gap = first_offset > self.log_end_offset() && !self.active_segment().is_empty();
        if gap
            || self.active_segment().should_roll(
                records.len() as u64,
                last_offset,
                self.config.segment_bytes,
                self.config.segment_ms,
                now_ms,
            )
        {
            self.roll_at(first_offset, now_ms)?;
        }
        self.active_segment_mut().append(records)?;
        // The batches were validated above: the leader's epochs and producer state.
        for batch in batch::batches(records) {
            let batch = batch?;
            self.leader_epoch_cache
                .assign(batch.partition_leader_epoch(), batch.base_offset())?;
            if let Some(txn) = self.producer_state.replay(&batch) {
                self.index_completed_txn(&txn)?;
            }
        }
        self.count_unflushed(u64::from(records_count), now_ms)?;
        Ok(LogAppendInfo {
            first_offset,
            last_offset,
            max_timestamp,
            offset_of_max_timestamp,
            records_count,
            valid_bytes: records.len(),
            duplicate: false,
        })
    }

    /// Kafka's `LogValidator` checks for batches coming from clients.
    fn validate_client_batch(&self, batch: &RecordBatch<'_>) -> Result<(), LogError> {
        let size = batch.size_in_bytes();
        let max = self.config.max_message_bytes as usize;
        if size > max {
            return Err(LogError::RecordTooLarge { size, max });
        }
        if size as u64 > self.config.segment_bytes {
            return Err(LogError::RecordTooLarge {
                size,
                max: self.config.segment_bytes as usize,
            });
        }
        batch.validate()?;
        let count = batch.records_count();
        if count <= 0 {
            return Err(LogError::InvalidRecord(format!(
                "invalid reported count {count} for record batch"
            )));
        }
        if i64::from(batch.last_offset_delta()) + 1 != i64::from(count) {
            return Err(LogError::InvalidRecord(format!(
                "record batch has last offset delta {} but {count} records",
                batch.last_offset_delta()
            )));
        }
        if batch.is_control() {
            return Err(LogError::InvalidRecord(
                "clients are not allowed to write control records".into(),
            ));
        }
        if batch.producer_id() >= 0 && batch.base_sequence() < 0 {
            return Err(LogError::InvalidRecord(format!(
                "invalid sequence number {} for producer {}",
                batch.base_sequence(),
                batch.producer_id()
            )));
        }
        if self.config.cleanup_policy.compacts() {
            // Streamed, and bounded: the cleaner will rewrite this batch in memory.
            let scan = records::scan(batch, records::MAX_DECOMPRESSED_BATCH_BYTES)?;
            if scan.without_key > 0 {
                return Err(LogError::InvalidRecord(
                    "compacted topic cannot accept message without key".into(),
                ));
            }
        }
        Ok(())
    }

    /// Starts a new active segment at the log end offset: the old one's indexes are
    /// trimmed and a producer state snapshot is written at the new base offset.
    pub fn roll(&mut self, now_ms: i64) -> Result<(), LogError> {
        if self.active_segment().is_empty() {
            return Ok(());
        }
        self.roll_at(self.log_end_offset(), now_ms)
    }

    /// Rolls to a new active segment based at `new_base` (≥ the log end offset). An empty
    /// active segment is replaced rather than kept.
    fn roll_at(&mut self, new_base: i64, now_ms: i64) -> Result<(), LogError> {
        if self.active_segment().is_empty() {
            if self.active_segment().base_offset() == new_base {
                return Ok(());
            }
            let (_, empty) = self.segments.pop_last().expect("log has a segment");
            empty.delete_files()?;
        } else {
            self.active_segment_mut().on_become_inactive()?;
        }
        self.producer_state.take_snapshot(new_base)?;
        let mut segment = LogSegment::create(
            &self.dir,
            new_base,
            self.config.index_interval_bytes,
            self.config.segment_index_bytes,
            now_ms,
        )?;
        segment.on_become_active()?;
        self.segments.insert(new_base, segment);
        let first_base = *self.segments.keys().next().expect("log has a segment");
        self.log_start_offset = self.log_start_offset.max(first_base);
        tracing::debug!(dir = %self.dir.display(), new_base, "rolled log segment");
        Ok(())
    }

    /// Reads whole batches starting with the one containing `fetch_offset`, up to
    /// `max_bytes` (but one whole batch anyway when `min_one_message`), never including a
    /// batch that reaches `max_offset` (exclusive; the broker passes the high watermark).
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_message: bool,
        max_offset: i64,
    ) -> Result<FetchDataInfo, LogError> {
        let found = self.read_with(fetch_offset, max_offset, |segment, max_offset| {
            segment.read(fetch_offset, max_bytes, max_offset, min_one_message)
        })?;
        Ok(
            found.map_or_else(FetchDataInfo::default, |(records, first_batch_offset)| {
                FetchDataInfo {
                    records,
                    first_batch_offset,
                }
            }),
        )
    }

    /// [`Self::read`], leaving the records in their segment file: the region to send from
    /// there. `None` when there is nothing to read.
    pub fn read_region(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_message: bool,
        max_offset: i64,
    ) -> Result<Option<FileRegion>, LogError> {
        let found = self.read_with(fetch_offset, max_offset, |segment, max_offset| {
            segment.read_region(fetch_offset, max_bytes, max_offset, min_one_message)
        })?;
        Ok(found.filter(|r| r.len > 0))
    }

    /// The bounds checks of a read, then `read` on the segments from the one holding
    /// `fetch_offset` until one answers. `max_offset` is capped at the log end.
    fn read_with<T>(
        &self,
        fetch_offset: i64,
        max_offset: i64,
        mut read: impl FnMut(&LogSegment, i64) -> Result<Option<T>, LogError>,
    ) -> Result<Option<T>, LogError> {
        let log_end_offset = self.log_end_offset();
        if fetch_offset < self.log_start_offset || fetch_offset > log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset: fetch_offset,
                log_start_offset: self.log_start_offset,
                log_end_offset,
            });
        }
        let max_offset = max_offset.min(log_end_offset);
        if fetch_offset >= max_offset {
            return Ok(None);
        }
        let start_base = self
            .segments
            .range(..=fetch_offset)
            .next_back()
            .map_or(i64::MIN, |(base, _)| *base);
        for segment in self.segments.range(start_base..).map(|(_, s)| s) {
            if let Some(found) = read(segment, max_offset)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// ListOffsets by timestamp: the first offset at or after the log start whose record
    /// timestamp is ≥ `timestamp`, returned as `(offset, timestamp)`.
    pub fn fetch_offset_by_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        for segment in self.segments.values() {
            if segment.max_timestamp() < timestamp || segment.next_offset() <= self.log_start_offset
            {
                continue;
            }
            if let Some((ts, offset)) =
                segment.find_offset_by_timestamp(timestamp, self.log_start_offset)?
            {
                return Ok(Some((offset, ts)));
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP (-3): the largest record timestamp and the offset of the
    /// first record carrying it, as `(timestamp, offset)`.
    pub fn max_timestamp_and_offset(&self) -> Option<(i64, i64)> {
        let segment = self
            .segments
            .values()
            .filter(|s| s.max_timestamp() >= 0)
            .max_by_key(|s| s.max_timestamp())?;
        let timestamp = segment.max_timestamp();
        let batch_last_offset = segment.offset_of_max_timestamp();
        // The segment remembers the batch; find the exact record inside it.
        let exact = segment
            .find_offset_by_timestamp(timestamp, self.log_start_offset)
            .ok()
            .flatten()
            .map_or(batch_last_offset, |(_, offset)| offset);
        Some((timestamp, exact))
    }

    /// DeleteRecords: raises the log start offset to `offset` (never beyond the log end
    /// offset) and deletes the segments that lie entirely below it. Returns the new log
    /// start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        let log_end_offset = self.log_end_offset();
        if offset > log_end_offset || offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.set_high_watermark(self.high_watermark.max(offset));
            self.leader_epoch_cache.truncate_from_start(offset)?;
            self.delete_segments_below_log_start(i64::MAX)?;
        }
        Ok(self.log_start_offset)
    }

    fn delete_segments_below_log_start(&mut self, now_ms: i64) -> Result<usize, LogError> {
        let mut deletable = 0;
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for next in bases.iter().skip(1) {
            if *next <= self.log_start_offset {
                deletable += 1;
            } else {
                break;
            }
        }
        self.delete_oldest_segments(deletable, now_ms)
    }

    /// Retention: deletes whole segments, oldest first and never the active one, whose
    /// newest record is older than `retention.ms` or that push the log past
    /// `retention.bytes`; rolls the active segment once `segment.ms` has passed; expires
    /// idle producer state. Returns the number of segments deleted.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        self.delete_expired_files(now_ms)?;
        self.producer_state
            .remove_expired(now_ms, self.config.producer_id_expiration_ms);
        if !self.active_segment().is_empty()
            && self.active_segment().time_waited_for_roll(now_ms) >= self.config.segment_ms
        {
            self.roll(now_ms)?;
        }
        let mut deleted = self.delete_segments_below_log_start(now_ms)?;
        if !self.config.cleanup_policy.deletes() {
            return Ok(deleted);
        }
        // Only segments wholly below the high watermark may go: a record not yet
        // replicated to the whole ISR must stay where a follower can fetch it.
        let high_watermark = self.high_watermark;
        let inactive: Vec<(i64, u64)> = self
            .segments
            .values()
            .take(self.segments.len() - 1)
            .take_while(|s| s.next_offset() <= high_watermark)
            .map(|s| (s.largest_timestamp(), s.size()))
            .collect();
        let by_time = if self.config.retention_ms >= 0 {
            inactive
                .iter()
                .take_while(|(ts, _)| now_ms - ts > self.config.retention_ms)
                .count()
        } else {
            0
        };
        let by_size = if self.config.retention_bytes >= 0 {
            let mut excess = self.size_in_bytes() as i64 - self.config.retention_bytes;
            inactive
                .iter()
                .take_while(|(_, size)| {
                    excess -= *size as i64;
                    excess >= 0
                })
                .count()
        } else {
            0
        };
        deleted += self.delete_oldest_segments(by_time.max(by_size), now_ms)?;
        Ok(deleted)
    }

    /// Removes the `count` oldest segments (never the active one): they leave the segment
    /// map at once (so readers stop seeing them), the log start offset moves up to the next
    /// segment, and the files are renamed `.deleted` and removed after
    /// `file.delete.delay.ms`.
    fn delete_oldest_segments(&mut self, count: usize, now_ms: i64) -> Result<usize, LogError> {
        let count = count.min(self.segments.len() - 1);
        for _ in 0..count {
            let (_, mut segment) = self.segments.pop_first().expect("segment to delete");
            segment.add_suffix(DELETED_FILE_SUFFIX)?;
            let due = now_ms.saturating_add(self.config.file_delete_delay_ms);
            for path in segment.paths() {
                self.pending_deletes.push((due, path));
            }
            drop(segment);
        }
        if count > 0 {
            let first_base = *self.segments.keys().next().expect("log has a segment");
            self.log_start_offset = self.log_start_offset.max(first_base);
            self.recovery_point = self.recovery_point.max(first_base);
            self.set_high_watermark(self.high_watermark.max(self.log_start_offset));
            self.leader_epoch_cache
                .truncate_from_start(self.log_start_offset)?;
            self.delete_expired_files(now_ms)?;
        }
        Ok(count)
    }

    fn delete_expired_files(&mut self, now_ms: i64) -> Result<(), LogError> {
        let mut result = Ok(());
        self.pending_deletes.retain(|(due, path)| {
            if *due > now_ms {
                return true;
            }
            if let Err(e) = remove_if_exists(path) {
                result = Err(e);
            }
            false
        });
        Ok(result?)
    }

    /// fsyncs every segment that may hold unflushed data and advances the recovery point
    /// to the log end offset.
    pub fn flush(&mut self) -> Result<(), LogError> {
        let log_end_offset = self.log_end_offset();
        if self.recovery_point >= log_end_offset && self.unflushed_messages == 0 {
            return Ok(());
        }
        self.flush_segments()
    }

    fn flush_segments(&mut self) -> Result<(), LogError> {
        let log_end_offset = self.log_end_offset();
        let start = self.unflushed_from(self.recovery_point);
        for segment in self.segments.range_mut(start..).map(|(_, s)| s) {
            segment.flush()?;
        }
        self.leader_epoch_cache.flush()?;
        // Rolled segments are new directory entries: make them durable too.
        fs::File::open(&self.dir)?.sync_all()?;
        self.recovery_point = log_end_offset;
        self.unflushed_messages = 0;
        Ok(())
    }

    /// The base offset of the segment holding `recovery_point` (`i64::MIN` below the
    /// first segment): the segments from there on may hold what is not yet synced.
    fn unflushed_from(&self, recovery_point: i64) -> i64 {
        self.segments
            .range(..=recovery_point)
            .next_back()
            .map_or(i64::MIN, |(base, _)| *base)
    }

    /// The segments rolled since the recovery point, to be synced off the append path;
    /// afterwards [`Self::rolled_synced`] moves the recovery point to the active segment,
    /// as Kafka flushes a segment when it rolls. `None` when nothing was rolled.
    pub fn rolled_unsynced(&self) -> Option<RolledSegments> {
        let active = self.active_segment().base_offset();
        if self.recovery_point >= active {
            return None;
        }
        let start = self.unflushed_from(self.recovery_point);
        Some(RolledSegments {
            dir: self.dir.clone(),
            files: self
                .segments
                .range(start..active)
                .map(|(_, s)| s.files_to_sync())
                .collect(),
            up_to: active,
        })
    }

    /// The segments of `rolled` are synced: everything below its end is durable, unless
    /// the log was truncated below it meanwhile.
    pub fn rolled_synced(&mut self, rolled: &RolledSegments) -> Result<(), LogError> {
        if rolled.up_to > self.recovery_point && rolled.up_to <= self.log_end_offset() {
            // An epoch that began in those segments must be as durable as they are.
            self.leader_epoch_cache.flush()?;
            self.recovery_point = rolled.up_to;
        }
        Ok(())
    }

    /// Flushes if `flush.ms` has passed since the last flush; returns whether it did.
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<bool, LogError> {
        if now_ms.saturating_sub(self.last_flush_ms) < self.config.flush_interval_ms {
            return Ok(false);
        }
        self.flush()?;
        self.last_flush_ms = now_ms;
        Ok(true)
    }

    /// Truncates the log so that its end offset is at most `offset` (a follower diverging
    /// from its leader, KIP-101). Removes whole batches; producer state is rebuilt.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        if offset >= self.log_end_offset() {
            // No record goes, but an epoch that starts at the log end does: this replica
            // was elected leader (its epoch assigned at its log end) and lost leadership
            // before appending anything. Left in place it would be reported as the last
            // fetched epoch and the leader would answer "diverging" forever.
            return self
                .leader_epoch_cache
                .truncate_from_end(self.log_end_offset());
        }
        let first_base = *self.segments.keys().next().expect("log has a segment");
        if offset <= first_base {
            return self.truncate_fully_and_start_at(
                offset.max(self.log_start_offset),
                self.last_flush_ms,
            );
        }
        let doomed: Vec<i64> = self.segments.range(offset..).map(|(b, _)| *b).collect();
        for base in doomed {
            if let Some(segment) = self.segments.remove(&base) {
                segment.delete_files()?;
            }
        }
        let active = self.active_segment_mut();
        active.truncate_to(offset)?;
        active.on_become_active()?;
        let log_end_offset = self.log_end_offset();
        self.recovery_point = self.recovery_point.min(log_end_offset);
        self.log_start_offset = self.log_start_offset.min(log_end_offset);
        self.high_watermark = self.high_watermark.min(log_end_offset);
        self.leader_epoch_cache.truncate_from_end(log_end_offset)?;
        self.rebuild_producer_state()
    }

    /// Deletes every segment and starts an empty log at `offset` (a follower whose fetch
    /// offset fell below its leader's log start).
    pub fn truncate_fully_and_start_at(
        &mut self,
        offset: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        while let Some((_, segment)) = self.segments.pop_first() {
            segment.delete_files()?;
        }
        let mut segment = LogSegment::create(
            &self.dir,
            offset,
            self.config.index_interval_bytes,
            self.config.segment_index_bytes,
            now_ms,
        )?;
        segment.on_become_active()?;
        self.segments.insert(offset, segment);
        self.log_start_offset = offset;
        self.recovery_point = offset;
        self.high_watermark = offset;
        self.leader_epoch_cache.clear()?;
        self.producer_state.delete_snapshots_after(-1)?;
        self.producer_state.clear();
        Ok(())
    }

    /// Flushes everything, writes a producer state snapshot at the log end offset (so the
    /// next open replays nothing) and trims the active segment's indexes.
    pub fn close(&mut self) -> Result<(), LogError> {
        let log_end_offset = self.log_end_offset();
        self.active_segment_mut().on_become_inactive()?;
        self.flush_segments()?;
        self.producer_state.take_snapshot(log_end_offset)?;
        self.delete_expired_files(i64::MAX)?;
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn active_segment_for_test(&mut self) -> &mut LogSegment {
        self.active_segment_mut()
    }
}

/// A `<base>.log.swap` is a fully written, fsynced cleaned segment whose swap-in was cut
/// short: it replaces the original `<base>.log` (whose indexes are stale and are dropped
/// to be rebuilt), with its `<base>.txnindex.swap` if that was not renamed yet. A
/// `.txnindex.swap` without its log swap belongs to a swap that never reached that point
/// and is deleted.
fn complete_interrupted_swaps(dir: &Path) -> Result<(), LogError> {
    let swap_suffix = |suffix: &str| format!("{suffix}{SWAP_FILE_SUFFIX}");
    let mut log_swaps = Vec::new();
    let mut txn_swaps = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let base = |suffix: &str| {
            name.strip_suffix(&swap_suffix(suffix))
                .and_then(|stem| stem.parse::<i64>().ok())
        };
        if let Some(base) = base(LOG_FILE_SUFFIX) {
            log_swaps.push((base, path));
        } else if let Some(base) = base(TXN_INDEX_FILE_SUFFIX) {
            txn_swaps.push((base, path));
        }
    }
    for (base, path) in &txn_swaps {
        if log_swaps.iter().any(|(b, _)| b == base) {
            fs::rename(
                path,
                crate::segment::file_path(dir, *base, TXN_INDEX_FILE_SUFFIX),
            )?;
        } else {
            remove_if_exists(path)?;
        }
    }
    for (base, path) in log_swaps {
        tracing::info!(dir = %dir.display(), base, "completing interrupted segment swap");
        for suffix in [INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX] {
            remove_if_exists(&crate::segment::file_path(dir, base, suffix))?;
        }
        fs::rename(&path, crate::segment::file_path(dir, base, LOG_FILE_SUFFIX))?;
    }
    Ok(())
}

/// Deletes what an interrupted operation left behind (`.cleaned`, `.deleted`, `.tmp`,
/// index files without a `.log`) and returns the base offsets of the segments present.
fn remove_temporary_files_and_list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    complete_interrupted_swaps(dir)?;
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(DELETED_FILE_SUFFIX)
            || name.ends_with(CLEANED_FILE_SUFFIX)
            || name.ends_with(".tmp")
        {
            remove_if_exists(&path)?;
        } else if let Some(stem) = name.strip_suffix(LOG_FILE_SUFFIX) {
            if let Ok(base) = stem.parse::<i64>() {
                logs.push(base);
            }
        } else if let Some(stem) = name
            .strip_suffix(INDEX_FILE_SUFFIX)
            .or_else(|| name.strip_suffix(TIME_INDEX_FILE_SUFFIX))
            .or_else(|| name.strip_suffix(TXN_INDEX_FILE_SUFFIX))
            && let Ok(base) = stem.parse::<i64>()
        {
            indexes.push((base, path.clone()));
        } else if name.ends_with(SNAPSHOT_FILE_SUFFIX) {
            // Producer state snapshots are handled by the ProducerStateManager.
        }
    }
    logs.sort_unstable();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            remove_if_exists(&path)?;
        }
    }
    Ok(logs)
}

/// Segments rolled and not yet synced (see [`Log::rolled_unsynced`]).
pub struct RolledSegments {
    dir: PathBuf,
    files: Vec<(Arc<File>, [PathBuf; 2])>,
    up_to: i64,
}

impl RolledSegments {
    /// fsyncs the segments' data and index files and the log directory. A file deleted
    /// meanwhile (retention) is skipped.
    pub fn sync(&self) -> io::Result<()> {
        for (log, indexes) in &self.files {
            log.sync_data()?;
            for path in indexes {
                match File::open(path) {
                    Ok(f) => f.sync_data()?,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        File::open(&self.dir)?.sync_all()
    }
}

/// The aborted transaction index entry for an ended transaction (none for a commit).
fn aborted_entry(producer_state: &ProducerStateManager, txn: &CompletedTxn) -> Option<AbortedTxn> {
    txn.aborted.then(|| AbortedTxn {
        producer_id: txn.producer_id,
        first_offset: txn.first_offset,
        last_offset: txn.last_offset,
        last_stable_offset: producer_state.last_stable_offset_after(txn),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{BatchSpec, encode_batch};

    fn idempotent(seq: i32, count: usize) -> Bytes {
        encode_batch(&BatchSpec {
            count,
            producer_id: 9,
            producer_epoch: 0,
            base_sequence: seq,
            value_size: 300,
            ..BatchSpec::default()
        })
    }

    #[test]
    fn a_failed_write_is_rolled_back_and_the_next_append_works() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            index_interval_bytes: 100,
            ..LogConfig::default()
        };
        let mut log = Log::open(dir.path().join("t-0"), config.clone(), true, 0, 0, 0).unwrap();
        for i in 0..4 {
            log.append_as_leader(&idempotent(i * 2, 2), 0, 0).unwrap();
        }
        let size_before = log.size_in_bytes();
        let index_entries = log.active_segment().offset_index().entries();
        let segment_path = log.active_segment().log_path().to_path_buf();

        // The disk fills up halfway through the write.
        log.active_segment_for_test().write_fault.fail_after_bytes = Some(150);
        let err = log.append_as_leader(&idempotent(8, 2), 0, 0).unwrap_err();
        match err {
            LogError::Io(e) => assert_eq!(e.raw_os_error(), Some(28)),
            other => panic!("expected an I/O error, got {other:?}"),
        }
        assert_eq!(log.log_end_offset(), 8);
        assert_eq!(log.size_in_bytes(), size_before);
        assert_eq!(fs::metadata(&segment_path).unwrap().len(), size_before);
        assert_eq!(log.active_segment().offset_index().entries(), index_entries);

        // Space is back: the same batch is appended (it was never acknowledged, so it is
        // neither a duplicate nor out of sequence).
        let info = log.append_as_leader(&idempotent(8, 2), 0, 0).unwrap();
        assert!(!info.duplicate);
        assert_eq!((info.first_offset, info.last_offset), (8, 9));
        let read = log.read(0, usize::MAX, true, i64::MAX).unwrap();
        let offsets: Vec<i64> = batch::batches(&read.records)
            .map(|b| {
                let b = b.unwrap();
                b.validate().unwrap();
                b.base_offset()
            })
            .collect();
        assert_eq!(offsets, vec![0, 2, 4, 6, 8]);

        // And a crash now recovers exactly those batches.
        drop(log);
        let log = Log::open(dir.path().join("t-0"), config, false, 0, 0, 0).unwrap();
        assert_eq!(log.log_end_offset(), 10);
    }
}
