//! `ProducerStateManager`: per-producer sequence state that makes idempotent produce
//! exactly-once per partition.
//!
//! For every producer id the partition remembers the producer epoch and the metadata of
//! the last [`NUM_BATCHES_TO_RETAIN`] batches (first/last sequence, first/last offset), as
//! Kafka does. A retry of any of those batches is recognised as a duplicate and answered
//! with the original offsets instead of being appended again.
//!
//! The state is derived from the log, so it is rebuilt from the log: on open the newest
//! `<20-digit offset>.snapshot` at or below the log end offset is loaded and every batch
//! after that offset is replayed. Snapshots are written when a segment is rolled and when
//! the log is closed. A snapshot file is our own format: a version (i16), a CRC-32C of the
//! rest (u32), the producer count (u32), then per producer its id (i64), epoch (i16),
//! last timestamp (i64), batch count (u8) and per batch first sequence (i32), last
//! sequence (i32), first offset (i64), last offset (i64), timestamp (i64) — all big-endian.
//! A snapshot that fails its CRC is ignored (replay starts from an older one).
//! Version 2 adds, after the last timestamp, the coordinator epoch (i32) and the first
//! offset of the producer's open transaction (i64, -1 when none); version 1 files are
//! still read (no open transactions).
//!
//! # Transactions
//!
//! A producer whose batch carries the transactional bit has an *open transaction* from
//! that batch's offset until an end-transaction marker of it is appended (see
//! [`crate::txn`]). The manager keeps the open transactions by first offset, and the
//! ended ones until the high watermark passes their marker: the smallest of those first
//! offsets is the *first unstable offset*, and the last stable offset is that or the high
//! watermark, whichever is lower (Kafka's `ProducerStateManager`).
//!
//! # Verification of a transaction's first write (KIP-890 part 1)
//!
//! A transactional batch of a producer with no open transaction here would open one the
//! transaction coordinator may know nothing about — a produce request delayed past the
//! abort of its transaction, say — and hold the last stable offset back for ever (a
//! *hanging transaction*). So, with `transaction.partition.verification.enable`, such a
//! batch is appended only with the [`VerificationGuard`] this manager handed out before
//! the leader asked the coordinator whether the partition is in the transaction. Any
//! transactional batch or marker of the producer retires the guard, so a confirmation
//! that arrives after the transaction ended can no longer be used (Kafka's
//! `VerificationStateEntry`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::batch::{BatchHeader, NO_SEQUENCE, RecordBatch};
use crate::error::LogError;
use crate::segment::{filename_prefix, remove_if_exists};
use crate::txn::{ControlType, EndTxnMarker};

/// How many recent batches per producer are kept for duplicate detection (Kafka: 5, the
/// producer's `max.in.flight.requests.per.connection` limit for idempotence).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
/// Suffix of producer state snapshot files.
pub const SNAPSHOT_FILE_SUFFIX: &str = ".snapshot";
const SNAPSHOT_VERSION: i16 = 2;
/// Snapshots kept after a new one is written; older ones only speed up nothing.
const SNAPSHOTS_TO_RETAIN: usize = 2;

/// Proof, handed to a leader append, that the transaction coordinator was asked whether
/// this partition is in the producer's transaction (see the module documentation). Each
/// guard is unique: one retired and replaced never matches again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationGuard(u64);

static NEXT_VERIFICATION_GUARD: AtomicU64 = AtomicU64::new(1);

/// A producer's verification in progress on this partition.
#[derive(Debug)]
struct VerificationStateEntry {
    guard: VerificationGuard,
    created_ms: i64,
    /// The lowest sequence seen while verifying: a later batch with a higher sequence
    /// must not overtake it (Kafka's out-of-order-sequence loop protection).
    lowest_sequence: i32,
    epoch: i16,
}

/// What is remembered of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

/// The state of one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Oldest first, at most [`NUM_BATCHES_TO_RETAIN`].
    pub batches: VecDeque<BatchMetadata>,
    pub last_timestamp: i64,
    /// Epoch of the transaction coordinator that wrote the producer's last marker (-1
    /// before any); a marker from an older coordinator is fenced.
    pub coordinator_epoch: i32,
    /// First offset of the producer's open transaction.
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerStateEntry {
    fn new(producer_id: i64, producer_epoch: i16) -> Self {
        ProducerStateEntry {
            producer_id,
            producer_epoch,
            batches: VecDeque::new(),
            last_timestamp: -1,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }

    /// A data batch's effect on the open transaction: the first transactional batch
    /// opens one.
    fn track_transaction(&mut self, header: &BatchHeader) {
        if header.is_transactional() && self.current_txn_first_offset.is_none() {
            self.current_txn_first_offset = Some(header.base_offset);
        }
    }

    fn set_epoch(&mut self, epoch: i16) {
        if epoch != self.producer_epoch {
            self.producer_epoch = epoch;
            self.batches.clear();
        }
    }

    /// Last sequence written, or -1 when no batch is remembered.
    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    fn find_duplicate(&self, first_seq: i32, last_seq: i32) -> Option<BatchMetadata> {
        self.batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            .copied()
    }

    fn push(&mut self, batch: BatchMetadata) {
        if self.batches.len() == NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.last_timestamp = batch.timestamp;
        self.batches.push_back(batch);
    }
}

/// Sequence numbers wrap from `i32::MAX` to 0.
fn next_sequence(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

/// How a leader append relates to what the producer already wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not idempotent, or the next batch in sequence: append it.
    Append,
    /// A retry of a batch already in the log: append nothing, answer with these offsets.
    Duplicate(BatchMetadata),
}

/// Who wrote a batch appended as leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer: sequences are checked.
    Client,
    /// A coordinator of this broker (transactional offset commits): no sequences of the
    /// producer's own, so none are checked.
    Coordinator,
}

/// The producer state changes of one append, validated but not yet applied. The Log
/// validates every batch of a request into one of these, writes the batches, and only
/// then commits it, so a failed write leaves the producer state untouched.
#[derive(Debug, Default)]
pub struct ProducerAppendInfo {
    updates: HashMap<i64, ProducerStateEntry>,
}

impl ProducerAppendInfo {
    /// Checks a client batch (offsets already assigned in `header`) against the state,
    /// following Kafka's rules:
    /// - an epoch older than the known one is fenced (`InvalidProducerEpoch`);
    /// - a newer epoch must start at sequence 0;
    /// - with the same epoch, a batch equal to one of the last five is a duplicate,
    ///   anything else must continue the sequence (`OutOfOrderSequence`);
    /// - an unknown producer is accepted at any sequence. Kafka does the same since 2.5:
    ///   its state may have been removed by retention, DeleteRecords or producer expiry,
    ///   and rejecting would wedge the producer with no way forward;
    /// - with `verification` (the broker verifies transactions), a batch that would open
    ///   its producer's transaction — a producer's, or a coordinator's transactional
    ///   offset commit — needs the guard of a verification still current
    ///   (`InvalidTxnState` otherwise), and while one is in progress no producer batch
    ///   may carry a higher sequence than the lowest one it saw.
    pub fn validate(
        &mut self,
        manager: &ProducerStateManager,
        header: &BatchHeader,
        origin: AppendOrigin,
        verification: Verification,
    ) -> Result<SequenceCheck, LogError> {
        let producer_id = header.producer_id;
        if producer_id < 0 {
            return Ok(SequenceCheck::Append);
        }
        let epoch = header.producer_epoch;
        let first_seq = header.base_sequence;
        let last_seq = header.last_sequence();
        let entry = match self.updates.get(&producer_id) {
            Some(entry) => entry.clone(),
            None => match manager.producers.get(&producer_id) {
                Some(entry) => entry.clone(),
                None => ProducerStateEntry::new(producer_id, epoch),
            },
        };
        let mut entry = entry;
        if epoch < entry.producer_epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id,
                producer_epoch: epoch,
                current_epoch: entry.producer_epoch,
            });
        }
        if origin == AppendOrigin::Coordinator {
            entry.set_epoch(epoch);
        } else if epoch > entry.producer_epoch {
            if first_seq != 0 && !entry.batches.is_empty() {
                return Err(LogError::OutOfOrderSequence {
                    producer_id,
                    producer_epoch: epoch,
                    first_sequence: first_seq,
                    expected_sequence: 0,
                });
            }
            entry.set_epoch(epoch);
        } else if let Some(duplicate) = entry.find_duplicate(first_seq, last_seq) {
            return Ok(SequenceCheck::Duplicate(duplicate));
        } else if !entry.batches.is_empty() {
            let expected = next_sequence(entry.last_seq());
            if first_seq != expected {
                return Err(LogError::OutOfOrderSequence {
                    producer_id,
                    producer_epoch: epoch,
                    first_sequence: first_seq,
                    expected_sequence: expected,
                });
            }
        }
        let checks_sequences =
            origin == AppendOrigin::Client && matches!(verification, Verification::Required(_));
        if checks_sequences
            && let Some(pending) = manager.verification_states.get(&producer_id)
            && epoch == pending.epoch
            && first_seq > pending.lowest_sequence
        {
            return Err(LogError::OutOfOrderSequence {
                producer_id,
                producer_epoch: epoch,
                first_sequence: first_seq,
                expected_sequence: pending.lowest_sequence,
            });
        }
        if let Verification::Required(guard) = verification
            && header.is_transactional()
            && entry.current_txn_first_offset.is_none()
            && (guard.is_none() || manager.verification_guard(producer_id) != guard)
        {
            return Err(LogError::InvalidTxnState(format!(
                "record of producer {producer_id} was not part of an ongoing transaction"
            )));
        }
        if !header.is_transactional() && entry.current_txn_first_offset.is_some() {
            return Err(LogError::InvalidTxnState(format!(
                "expected a transactional write from producer {producer_id}: its transaction \
                 is open"
            )));
        }
        entry.track_transaction(header);
        entry.push(BatchMetadata {
            first_seq,
            last_seq,
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            timestamp: header.max_timestamp,
        });
        self.updates.insert(producer_id, entry);
        Ok(SequenceCheck::Append)
    }

    pub fn is_empty(&self) -> bool {
        self.updates.is_empty()
    }
}

/// Whether a leader append checks that a transaction's first write was verified with its
/// coordinator (`transaction.partition.verification.enable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Not checked (disabled, or an append that is not a producer's).
    Off,
    /// Checked; the guard the request's verification obtained, if it needed one.
    Required(Option<VerificationGuard>),
}

/// A transaction that an end marker closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub aborted: bool,
}

/// Producer state of one partition, plus its snapshot files in the partition directory.
#[derive(Debug)]
pub struct ProducerStateManager {
    dir: PathBuf,
    producers: HashMap<i64, ProducerStateEntry>,
    /// Open transactions: first offset → producer id.
    ongoing_txns: BTreeMap<i64, i64>,
    /// Ended transactions whose marker the high watermark has not passed yet: first
    /// offset → marker offset.
    unreplicated_txns: BTreeMap<i64, i64>,
    /// Verifications of a transaction's first write in progress, by producer id.
    verification_states: HashMap<i64, VerificationStateEntry>,
}

impl ProducerStateManager {
    pub fn new(dir: &Path) -> Self {
        ProducerStateManager {
            dir: dir.to_path_buf(),
            producers: HashMap::new(),
            ongoing_txns: BTreeMap::new(),
            unreplicated_txns: BTreeMap::new(),
            verification_states: HashMap::new(),
        }
    }

    /// Starts (or joins) the verification of a producer's transactional write: `None` when
    /// its transaction is already open here (nothing to verify), else the guard the append
    /// must carry once the coordinator confirmed the partition. A newer epoch restarts the
    /// lowest sequence; a lower sequence of the same epoch lowers it.
    pub fn maybe_start_verification(
        &mut self,
        producer_id: i64,
        sequence: i32,
        epoch: i16,
        now_ms: i64,
    ) -> Option<VerificationGuard> {
        if self
            .producers
            .get(&producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some())
        {
            return None;
        }
        let entry = self
            .verification_states
            .entry(producer_id)
            .or_insert_with(|| VerificationStateEntry {
                guard: VerificationGuard(NEXT_VERIFICATION_GUARD.fetch_add(1, Ordering::Relaxed)),
                created_ms: now_ms,
                lowest_sequence: sequence,
                epoch,
            });
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.lowest_sequence = sequence;
        } else if epoch == entry.epoch && sequence < entry.lowest_sequence {
            entry.lowest_sequence = sequence;
        }
        Some(entry.guard)
    }

    /// The guard of a producer's verification in progress.
    pub fn verification_guard(&self, producer_id: i64) -> Option<VerificationGuard> {
        self.verification_states.get(&producer_id).map(|e| e.guard)
    }

    /// The first offset of the oldest transaction that is open, or ended with a marker
    /// not yet below the high watermark.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let ongoing = self.ongoing_txns.keys().next().copied();
        let unreplicated = self.unreplicated_txns.keys().next().copied();
        match (ongoing, unreplicated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Forgets ended transactions whose marker is below the new high watermark.
    pub fn on_high_watermark_updated(&mut self, high_watermark: i64) {
        if !self.unreplicated_txns.is_empty() {
            self.unreplicated_txns
                .retain(|_, marker| *marker >= high_watermark);
        }
    }

    /// The open transactions, oldest first: (producer id, first offset).
    pub fn ongoing_transactions(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing_txns.iter().map(|(first, pid)| (*pid, *first))
    }

    /// The last stable offset an aborted transaction index entry records for `txn`: the
    /// first offset of the oldest transaction of another producer still open, else the
    /// offset after the marker.
    pub fn last_stable_offset_after(&self, txn: &CompletedTxn) -> i64 {
        self.ongoing_txns
            .iter()
            .find(|(_, pid)| **pid != txn.producer_id)
            .map_or(txn.last_offset + 1, |(first, _)| *first)
    }

    /// Checks that a marker may be written (the leader's path): a marker of an older
    /// producer epoch is fenced, as is one from an older coordinator.
    pub fn check_marker(&self, marker: &EndTxnMarker) -> Result<(), LogError> {
        let Some(entry) = self.producers.get(&marker.producer_id) else {
            return Ok(());
        };
        if marker.producer_epoch < entry.producer_epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id: marker.producer_id,
                producer_epoch: marker.producer_epoch,
                current_epoch: entry.producer_epoch,
            });
        }
        if marker.coordinator_epoch < entry.coordinator_epoch {
            return Err(LogError::TransactionCoordinatorFenced {
                coordinator_epoch: marker.coordinator_epoch,
                current_epoch: entry.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Applies a marker appended at `offset`: the producer's open transaction (if any)
    /// ends.
    pub fn apply_marker(
        &mut self,
        marker: &EndTxnMarker,
        offset: i64,
        timestamp: i64,
    ) -> Option<CompletedTxn> {
        // The transaction ended: a verification of it can no longer be used.
        self.verification_states.remove(&marker.producer_id);
        let entry = self
            .producers
            .entry(marker.producer_id)
            .or_insert_with(|| ProducerStateEntry::new(marker.producer_id, marker.producer_epoch));
        entry.set_epoch(marker.producer_epoch);
        entry.coordinator_epoch = marker.coordinator_epoch;
        entry.last_timestamp = entry.last_timestamp.max(timestamp);
        let first_offset = entry.current_txn_first_offset.take()?;
        self.ongoing_txns.remove(&first_offset);
        self.unreplicated_txns.insert(first_offset, offset);
        Some(CompletedTxn {
            producer_id: marker.producer_id,
            first_offset,
            last_offset: offset,
            aborted: marker.control == ControlType::Abort,
        })
    }

    /// The state of one producer, if any batch of it is remembered.
    pub fn last_entry(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    /// All producers with state.
    pub fn active_producers(&self) -> impl Iterator<Item = &ProducerStateEntry> {
        self.producers.values()
    }

    /// Applies a validated append (after its batches are safely in the segment).
    pub fn commit(&mut self, info: ProducerAppendInfo) {
        for entry in info.updates.values() {
            if let Some(first) = entry.current_txn_first_offset {
                // Open now: later writes need no verification, and this one is spent.
                self.ongoing_txns.insert(first, entry.producer_id);
                self.verification_states.remove(&entry.producer_id);
            }
        }
        self.producers.extend(info.updates);
    }

    /// Replays one batch read back from the log (recovery, or a follower's append): no
    /// validation, the log is the truth. A newer epoch replaces what was known; a marker
    /// ends its producer's transaction, which is returned.
    pub fn replay(&mut self, batch: &RecordBatch<'_>) -> Option<CompletedTxn> {
        let header = batch.header();
        if header.producer_id < 0 {
            return None;
        }
        if header.is_control() {
            let marker = EndTxnMarker::from_batch(batch)?;
            return self.apply_marker(&marker, header.base_offset, header.max_timestamp);
        }
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerStateEntry::new(header.producer_id, header.producer_epoch));
        if header.producer_epoch > entry.producer_epoch {
            entry.set_epoch(header.producer_epoch);
        } else if header.producer_epoch < entry.producer_epoch {
            return None;
        }
        entry.track_transaction(header);
        if let Some(first) = entry.current_txn_first_offset {
            self.ongoing_txns.insert(first, header.producer_id);
            self.verification_states.remove(&header.producer_id);
        }
        entry.push(BatchMetadata {
            first_seq: header.base_sequence,
            last_seq: header.last_sequence(),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            timestamp: header.max_timestamp,
        });
        None
    }

    /// Forgets producers whose last batch is older than `expiration_ms` (Kafka's
    /// `producer.id.expiration.ms`); a later batch of theirs is accepted as from an unknown
    /// producer. A producer with an open transaction is kept. Returns how many were
    /// removed.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        // Verifications never followed by a write are dropped after as long.
        self.verification_states
            .retain(|_, v| now_ms.saturating_sub(v.created_ms) < expiration_ms);
        let before = self.producers.len();
        self.producers.retain(|_, entry| {
            entry.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(entry.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Forgets everything (before a rebuild).
    pub fn clear(&mut self) {
        self.producers.clear();
        self.ongoing_txns.clear();
        self.unreplicated_txns.clear();
        self.verification_states.clear();
    }

    /// Offsets of the snapshot files present, ascending.
    pub fn snapshot_offsets(&self) -> Result<Vec<i64>, LogError> {
        let mut offsets = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(stem) = name.strip_suffix(SNAPSHOT_FILE_SUFFIX)
                && let Ok(offset) = stem.parse::<i64>()
            {
                offsets.push(offset);
            }
        }
        offsets.sort_unstable();
        Ok(offsets)
    }

    fn snapshot_path(&self, offset: i64) -> PathBuf {
        self.dir
            .join(format!("{}{SNAPSHOT_FILE_SUFFIX}", filename_prefix(offset)))
    }

    /// Writes the state as of `offset` (every batch below it applied) durably, then prunes
    /// older snapshots.
    pub fn take_snapshot(&self, offset: i64) -> Result<(), LogError> {
        let mut body = Vec::new();
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let entry = &self.producers[id];
            body.extend_from_slice(&entry.producer_id.to_be_bytes());
            body.extend_from_slice(&entry.producer_epoch.to_be_bytes());
            body.extend_from_slice(&entry.last_timestamp.to_be_bytes());
            body.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&entry.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
            body.push(entry.batches.len() as u8);
            for b in &entry.batches {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
                body.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        let mut file_bytes = Vec::with_capacity(body.len() + 6);
        file_bytes.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        file_bytes.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        file_bytes.extend_from_slice(&body);
        let path = self.snapshot_path(offset);
        write_atomically(&path, &file_bytes, true)?;
        let offsets = self.snapshot_offsets()?;
        if offsets.len() > SNAPSHOTS_TO_RETAIN {
            for old in &offsets[..offsets.len() - SNAPSHOTS_TO_RETAIN] {
                remove_if_exists(&self.snapshot_path(*old))?;
            }
        }
        Ok(())
    }

    /// Deletes snapshots above `offset` (they describe data that no longer exists).
    pub fn delete_snapshots_after(&self, offset: i64) -> Result<(), LogError> {
        for snapshot in self.snapshot_offsets()? {
            if snapshot > offset {
                remove_if_exists(&self.snapshot_path(snapshot))?;
            }
        }
        Ok(())
    }

    /// Replaces the state with the newest readable snapshot at or below `max_offset` and
    /// returns its offset (replay continues from there), or `None` when there is none.
    pub fn load_latest_snapshot(&mut self, max_offset: i64) -> Result<Option<i64>, LogError> {
        self.clear();
        for offset in self.snapshot_offsets()?.into_iter().rev() {
            if offset > max_offset {
                continue;
            }
            let bytes = fs::read(self.snapshot_path(offset))?;
            match decode_snapshot(&bytes) {
                Some(producers) => {
                    self.ongoing_txns = producers
                        .values()
                        .filter_map(|e| Some((e.current_txn_first_offset?, e.producer_id)))
                        .collect();
                    self.producers = producers;
                    return Ok(Some(offset));
                }
                None => {
                    tracing::warn!(dir = %self.dir.display(), offset, "ignoring corrupt producer state snapshot");
                }
            }
        }
        Ok(None)
    }
}

fn decode_snapshot(bytes: &[u8]) -> Option<HashMap<i64, ProducerStateEntry>> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.i16()?;
    if !(1..=SNAPSHOT_VERSION).contains(&version) {
        return None;
    }
    let crc = r.u32()?;
    if crc32c::crc32c(&bytes[r.at..]) != crc {
        return None;
    }
    let count = r.u32()?;
    let mut producers = HashMap::new();
    for _ in 0..count {
        let producer_id = r.i64()?;
        let producer_epoch = r.i16()?;
        let last_timestamp = r.i64()?;
        let (coordinator_epoch, current_txn_first_offset) = if version >= 2 {
            (r.i32()?, Some(r.i64()?).filter(|o| *o >= 0))
        } else {
            (-1, None)
        };
        let n = r.u8()?;
        let mut batches = VecDeque::with_capacity(usize::from(n));
        for _ in 0..n {
            batches.push_back(BatchMetadata {
                first_seq: r.i32()?,
                last_seq: r.i32()?,
                first_offset: r.i64()?,
                last_offset: r.i64()?,
                timestamp: r.i64()?,
            });
        }
        producers.insert(
            producer_id,
            ProducerStateEntry {
                producer_id,
                producer_epoch,
                batches,
                last_timestamp,
                coordinator_epoch,
                current_txn_first_offset,
            },
        );
    }
    (r.at == bytes.len()).then_some(producers)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let slice = self.bytes.get(self.at..self.at + N)?;
        self.at += N;
        slice.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
}

/// Writes `bytes` to `<path>.tmp` and renames it over `path`, so readers see either the
/// old or the new file in full; with `sync`, the file and the rename are fsynced too.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
    }
    fs::rename(&tmp, path)?;
    if sync
        && let Some(parent) = path.parent()
        && let Ok(dir) = fs::File::open(parent)
    {
        dir.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::RecordBatch;
    use crate::test_util::{BatchSpec, encode_batch};

    fn header(base_offset: i64, epoch: i16, seq: i32, count: usize) -> BatchHeader {
        let bytes = encode_batch(&BatchSpec {
            base_offset,
            count,
            producer_id: 42,
            producer_epoch: epoch,
            base_sequence: seq,
            ..BatchSpec::default()
        });
        *RecordBatch::parse(&bytes).unwrap().header()
    }

    fn append(
        manager: &mut ProducerStateManager,
        h: &BatchHeader,
    ) -> Result<SequenceCheck, LogError> {
        let mut info = ProducerAppendInfo::default();
        let check = info.validate(manager, h, AppendOrigin::Client, Verification::Off)?;
        manager.commit(info);
        Ok(check)
    }

    #[test]
    fn sequence_rules() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ProducerStateManager::new(dir.path());
        assert_eq!(
            append(&mut m, &header(0, 0, 0, 2)).unwrap(),
            SequenceCheck::Append
        );
        assert_eq!(
            append(&mut m, &header(2, 0, 2, 3)).unwrap(),
            SequenceCheck::Append
        );
        // A retry of the first batch is a duplicate carrying the original offsets.
        match append(&mut m, &header(99, 0, 0, 2)).unwrap() {
            SequenceCheck::Duplicate(b) => assert_eq!((b.first_offset, b.last_offset), (0, 1)),
            other => panic!("expected duplicate, got {other:?}"),
        }
        assert!(matches!(
            append(&mut m, &header(5, 0, 7, 1)),
            Err(LogError::OutOfOrderSequence {
                expected_sequence: 5,
                ..
            })
        ));
        // New epoch must restart at 0; then the old epoch is fenced.
        assert!(matches!(
            append(&mut m, &header(5, 1, 5, 1)),
            Err(LogError::OutOfOrderSequence {
                expected_sequence: 0,
                ..
            })
        ));
        assert_eq!(
            append(&mut m, &header(5, 1, 0, 1)).unwrap(),
            SequenceCheck::Append
        );
        assert!(matches!(
            append(&mut m, &header(6, 0, 5, 1)),
            Err(LogError::InvalidProducerEpoch {
                current_epoch: 1,
                ..
            })
        ));
        // Unknown producers are accepted at any sequence.
        let mut other = header(7, 3, 77, 1);
        other.producer_id = 43;
        assert_eq!(append(&mut m, &other).unwrap(), SequenceCheck::Append);
    }

    #[test]
    fn producers_expire_after_their_last_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ProducerStateManager::new(dir.path());
        append(&mut m, &header(0, 0, 0, 1)).unwrap(); // timestamps around 1_000
        assert_eq!(m.remove_expired(1_500, 1_000), 0);
        assert!(m.last_entry(42).is_some());
        assert_eq!(m.remove_expired(2_000, 1_000), 1);
        assert!(m.last_entry(42).is_none());
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ProducerStateManager::new(dir.path());
        for i in 0..7 {
            append(&mut m, &header(i, 0, i as i32, 1)).unwrap();
        }
        assert_eq!(
            m.last_entry(42).unwrap().batches.len(),
            NUM_BATCHES_TO_RETAIN
        );
        assert!(matches!(
            append(&mut m, &header(9, 0, 2, 1)).unwrap(),
            SequenceCheck::Duplicate(_)
        ));
        assert!(matches!(
            append(&mut m, &header(9, 0, 1, 1)),
            Err(LogError::OutOfOrderSequence { .. })
        ));
    }

    #[test]
    fn snapshots_round_trip_and_corrupt_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ProducerStateManager::new(dir.path());
        append(&mut m, &header(0, 0, 0, 2)).unwrap();
        m.take_snapshot(2).unwrap();
        append(&mut m, &header(2, 0, 2, 2)).unwrap();
        m.take_snapshot(4).unwrap();
        let expected = m.last_entry(42).cloned();

        let mut loaded = ProducerStateManager::new(dir.path());
        assert_eq!(loaded.load_latest_snapshot(i64::MAX).unwrap(), Some(4));
        assert_eq!(loaded.last_entry(42).cloned(), expected);
        assert_eq!(loaded.load_latest_snapshot(3).unwrap(), Some(2));

        let newest = dir.path().join("00000000000000000004.snapshot");
        let mut bytes = std::fs::read(&newest).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&newest, bytes).unwrap();
        assert_eq!(loaded.load_latest_snapshot(i64::MAX).unwrap(), Some(2));
    }
}
