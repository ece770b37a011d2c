//! Transactions in the log: end-transaction markers (control batches) and the aborted
//! transaction index.
//!
//! A transactional producer's batches carry the *transactional* attribute bit. The
//! transaction coordinator ends a transaction by having every partition leader append a
//! **control batch** for the producer: one record whose key is
//! `ControlRecordType {version: i16 = 0, type: i16}` (ABORT = 0, COMMIT = 1) and whose
//! value is `EndTransactionMarker {version: i16 = 0, coordinatorEpoch: i32}`, with the
//! control and transactional bits set, the producer's id and epoch and no sequence.
//!
//! Consumers reading `read_committed` stop at the **last stable offset** (LSO): the
//! first offset of the oldest transaction not yet ended and replicated. Records of
//! aborted transactions below it are still returned; the Fetch answer lists those
//! transactions (producer id and first offset) so the client drops them. That list comes
//! from the **aborted transaction index**, one `<base offset>.txnindex` per segment holding
//! an ABORT marker, in Kafka's format: entries of 34 bytes, big-endian —
//! `version i16 (0) | producerId i64 | firstOffset i64 | lastOffset i64 | lastStableOffset i64`
//! — where `lastOffset` is the marker's offset and `lastStableOffset` the LSO right after
//! the marker was written. The file is created with its first entry; segments without
//! aborted transactions have none.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::batch::{self, BatchHeader, MAGIC_V2, NO_SEQUENCE, RECORD_BATCH_OVERHEAD, RecordBatch};
use crate::error::LogError;
use crate::segment::remove_if_exists;

/// Suffix of aborted transaction index files.
pub const TXN_INDEX_FILE_SUFFIX: &str = ".txnindex";
const ENTRY_SIZE: usize = 34;
const ENTRY_VERSION: i16 = 0;
const CONTROL_ATTRIBUTES: i16 = 0x10 | 0x20;

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    Abort,
    Commit,
}

impl ControlType {
    fn code(self) -> i16 {
        match self {
            ControlType::Abort => 0,
            ControlType::Commit => 1,
        }
    }
}

/// An end-transaction marker as written to a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub control: ControlType,
}

impl EndTxnMarker {
    /// The control batch carrying this marker, at offset 0 (the log assigns the real one).
    pub fn to_batch(&self, leader_epoch: i32, timestamp: i64) -> Vec<u8> {
        self.encode(leader_epoch, timestamp, None)
    }

    /// The control batch of this marker as the cleaner rewrites it once the marker may be
    /// removed (its transaction's records are gone): the same, at `base_offset`, with its
    /// delete horizon — Kafka's format, the horizon in the base timestamp and the
    /// record's timestamp relative to it.
    pub fn to_batch_with_delete_horizon(
        &self,
        base_offset: i64,
        leader_epoch: i32,
        timestamp: i64,
        delete_horizon_ms: i64,
    ) -> Vec<u8> {
        let mut buf = self.encode(leader_epoch, timestamp, Some(delete_horizon_ms));
        batch::set_base_offset(&mut buf, base_offset);
        buf
    }

    fn encode(&self, leader_epoch: i32, timestamp: i64, delete_horizon_ms: Option<i64>) -> Vec<u8> {
        let base_timestamp = delete_horizon_ms.unwrap_or(timestamp);
        let mut record = Vec::with_capacity(20);
        record.push(0); // attributes
        write_varint(&mut record, timestamp - base_timestamp); // timestamp delta
        write_varint(&mut record, 0); // offset delta
        write_varint(&mut record, 4);
        record.extend_from_slice(&0i16.to_be_bytes());
        record.extend_from_slice(&self.control.code().to_be_bytes());
        write_varint(&mut record, 6);
        record.extend_from_slice(&0i16.to_be_bytes());
        record.extend_from_slice(&self.coordinator_epoch.to_be_bytes());
        write_varint(&mut record, 0); // headers
        let mut records = Vec::with_capacity(record.len() + 2);
        write_varint(&mut records, record.len() as i64);
        records.extend_from_slice(&record);

        let attributes = if delete_horizon_ms.is_some() {
            CONTROL_ATTRIBUTES | batch::DELETE_HORIZON_MASK
        } else {
            CONTROL_ATTRIBUTES
        };
        let mut buf = Vec::with_capacity(RECORD_BATCH_OVERHEAD + records.len());
        buf.extend_from_slice(&0i64.to_be_bytes());
        let length = (RECORD_BATCH_OVERHEAD - batch::LOG_OVERHEAD + records.len()) as i32;
        buf.extend_from_slice(&length.to_be_bytes());
        buf.extend_from_slice(&leader_epoch.to_be_bytes());
        buf.push(MAGIC_V2 as u8);
        buf.extend_from_slice(&0u32.to_be_bytes()); // crc, below
        buf.extend_from_slice(&attributes.to_be_bytes());
        buf.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
        buf.extend_from_slice(&base_timestamp.to_be_bytes());
        buf.extend_from_slice(&timestamp.to_be_bytes());
        buf.extend_from_slice(&self.producer_id.to_be_bytes());
        buf.extend_from_slice(&self.producer_epoch.to_be_bytes());
        buf.extend_from_slice(&NO_SEQUENCE.to_be_bytes());
        buf.extend_from_slice(&1i32.to_be_bytes());
        buf.extend_from_slice(&records);
        let crc = crc32c::crc32c(&buf[21..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        buf
    }

    /// The marker a control batch carries, or `None` for data batches and control
    /// batches of other kinds. Control batches are never compressed.
    pub fn from_batch(batch: &RecordBatch<'_>) -> Option<EndTxnMarker> {
        let header = batch.header();
        if !header.is_control() || header.compression() != 0 || header.records_count < 1 {
            return None;
        }
        let mut r = &batch.as_bytes()[RECORD_BATCH_OVERHEAD..];
        let _length = read_varint(&mut r)?;
        let _attributes = take(&mut r, 1)?;
        let _timestamp_delta = read_varint(&mut r)?;
        let _offset_delta = read_varint(&mut r)?;
        let key_length = read_varint(&mut r)?;
        if key_length < 4 {
            return None;
        }
        let key = take(&mut r, key_length as usize)?;
        let control = match i16::from_be_bytes([key[2], key[3]]) {
            0 => ControlType::Abort,
            1 => ControlType::Commit,
            _ => return None,
        };
        let value_length = read_varint(&mut r)?;
        let coordinator_epoch = if value_length >= 6 {
            let value = take(&mut r, value_length as usize)?;
            i32::from_be_bytes([value[2], value[3], value[4], value[5]])
        } else {
            -1
        };
        Some(EndTxnMarker {
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            coordinator_epoch,
            control,
        })
    }

    /// [`Self::from_batch`] for a batch of which only bytes are at hand.
    pub fn from_bytes(bytes: &[u8]) -> Option<EndTxnMarker> {
        let header = BatchHeader::parse(bytes).ok()?;
        if !header.is_control() {
            return None;
        }
        RecordBatch::parse(bytes)
            .ok()
            .and_then(|b| Self::from_batch(&b))
    }
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if r.len() < n {
        return None;
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Some(head)
}

fn read_varint(r: &mut &[u8]) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *take(r, 1)?.first()?;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

fn write_varint(buf: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// A transaction that ended with an ABORT marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of the ABORT marker.
    pub last_offset: i64,
    /// The last stable offset right after the marker.
    pub last_stable_offset: i64,
}

/// The aborted transactions whose markers lie in one segment, in marker order, kept in
/// memory and in the segment's `.txnindex` file.
#[derive(Debug)]
pub struct TransactionIndex {
    path: PathBuf,
    entries: Vec<AbortedTxn>,
}

impl TransactionIndex {
    /// Loads `path` if it exists. A torn last entry (a crash mid-write) is dropped.
    pub fn open(path: PathBuf) -> Result<TransactionIndex, LogError> {
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut entries = Vec::with_capacity(bytes.len() / ENTRY_SIZE);
        for chunk in bytes.chunks_exact(ENTRY_SIZE) {
            let i64_at = |at: usize| i64::from_be_bytes(chunk[at..at + 8].try_into().unwrap());
            let version = i16::from_be_bytes([chunk[0], chunk[1]]);
            if version != ENTRY_VERSION {
                return Err(LogError::CorruptRecord(format!(
                    "{}: transaction index entry version {version}",
                    path.display()
                )));
            }
            entries.push(AbortedTxn {
                producer_id: i64_at(2),
                first_offset: i64_at(10),
                last_offset: i64_at(18),
                last_stable_offset: i64_at(26),
            });
        }
        let index = TransactionIndex { path, entries };
        if bytes.len() % ENTRY_SIZE != 0 {
            index.rewrite()?;
        }
        Ok(index)
    }

    /// An empty index for a new segment (removing any stale file).
    pub fn create(path: PathBuf) -> Result<TransactionIndex, LogError> {
        remove_if_exists(&path)?;
        Ok(TransactionIndex {
            path,
            entries: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends an entry; an entry whose marker is not after the last one is already
    /// there (a replay after a restart) and is skipped.
    pub fn append(&mut self, txn: AbortedTxn) -> Result<(), LogError> {
        if self
            .entries
            .last()
            .is_some_and(|last| txn.last_offset <= last.last_offset)
        {
            return Ok(());
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(&encode(&txn))?;
        self.entries.push(txn);
        Ok(())
    }

    /// Drops the entries whose marker is at or after `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        let keep = self.entries.partition_point(|t| t.last_offset < offset);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.rewrite()?;
        }
        Ok(())
    }

    /// Renames the file (if there is one) to `path`.
    pub fn rename_to(&mut self, path: PathBuf) -> Result<(), LogError> {
        match fs::rename(&self.path, &path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        self.path = path;
        Ok(())
    }

    /// fsyncs the file, if there is one.
    pub fn flush(&self) -> Result<(), LogError> {
        if self.entries.is_empty() {
            return Ok(());
        }
        match fs::File::open(&self.path) {
            Ok(file) => Ok(file.sync_all()?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn rewrite(&self) -> Result<(), LogError> {
        if self.entries.is_empty() {
            remove_if_exists(&self.path)?;
            return Ok(());
        }
        let bytes: Vec<u8> = self.entries.iter().flat_map(encode).collect();
        crate::producer_state::write_atomically(&self.path, &bytes, false)?;
        Ok(())
    }
}

/// Writes `entries` as a whole index file at `path` (empty when there are none) and
/// fsyncs it: the cleaner's new index, swapped in with its segment.
pub fn write_index_file(path: &Path, entries: &[AbortedTxn]) -> Result<(), LogError> {
    let bytes: Vec<u8> = entries.iter().flat_map(encode).collect();
    let mut file = fs::File::create(path)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    Ok(())
}

fn encode(txn: &AbortedTxn) -> [u8; ENTRY_SIZE] {
    let mut buf = [0u8; ENTRY_SIZE];
    buf[0..2].copy_from_slice(&ENTRY_VERSION.to_be_bytes());
    buf[2..10].copy_from_slice(&txn.producer_id.to_be_bytes());
    buf[10..18].copy_from_slice(&txn.first_offset.to_be_bytes());
    buf[18..26].copy_from_slice(&txn.last_offset.to_be_bytes());
    buf[26..34].copy_from_slice(&txn.last_stable_offset.to_be_bytes());
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_round_trips_through_its_control_batch() {
        for control in [ControlType::Abort, ControlType::Commit] {
            let marker = EndTxnMarker {
                producer_id: 4001,
                producer_epoch: 7,
                coordinator_epoch: 3,
                control,
            };
            let bytes = marker.to_batch(5, 1_700_000_000_000);
            let batch = RecordBatch::parse(&bytes).unwrap();
            batch.validate().unwrap();
            assert!(batch.is_control() && batch.is_transactional());
            assert_eq!(batch.records_count(), 1);
            assert_eq!(batch.partition_leader_epoch(), 5);
            assert_eq!(batch.base_sequence(), NO_SEQUENCE);
            assert_eq!(EndTxnMarker::from_batch(&batch), Some(marker));
            assert_eq!(EndTxnMarker::from_bytes(&bytes), Some(marker));
        }
    }

    #[test]
    fn the_control_record_is_laid_out_as_kafka_defines_it() {
        // length 16, attributes 0, timestamp and offset deltas 0, key (version 0, COMMIT),
        // value (version 0, coordinator epoch 3), no headers; varints zigzag-encoded.
        let marker = EndTxnMarker {
            producer_id: 4001,
            producer_epoch: 7,
            coordinator_epoch: 3,
            control: ControlType::Commit,
        };
        let bytes = marker.to_batch(0, 1000);
        assert_eq!(
            &bytes[RECORD_BATCH_OVERHEAD..],
            &[
                0x20, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x0c, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x03, 0x00
            ]
        );
        assert_eq!(bytes.len(), RECORD_BATCH_OVERHEAD + 17);
    }

    #[test]
    fn data_batches_carry_no_marker() {
        let marker = EndTxnMarker {
            producer_id: 1,
            producer_epoch: 0,
            coordinator_epoch: 0,
            control: ControlType::Abort,
        };
        let mut bytes = marker.to_batch(0, 0);
        bytes[21..23].copy_from_slice(&0x10i16.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(EndTxnMarker::from_bytes(&bytes), None);
    }

    #[test]
    fn the_index_persists_skips_replays_and_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.txnindex");
        let mut index = TransactionIndex::create(path.clone()).unwrap();
        assert!(!path.exists(), "no file until the first entry");
        let t = |pid, first, last| AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        };
        index.append(t(1, 0, 5)).unwrap();
        index.append(t(2, 3, 9)).unwrap();
        index.append(t(1, 0, 5)).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 2 * ENTRY_SIZE as u64);
        let reopened = TransactionIndex::open(path.clone()).unwrap();
        assert_eq!(reopened.entries(), &[t(1, 0, 5), t(2, 3, 9)]);

        // A torn tail is dropped on open.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[0, 0, 1]).unwrap();
        let mut reopened = TransactionIndex::open(path.clone()).unwrap();
        assert_eq!(reopened.entries().len(), 2);
        assert_eq!(fs::metadata(&path).unwrap().len(), 2 * ENTRY_SIZE as u64);

        reopened.truncate_to(9).unwrap();
        assert_eq!(reopened.entries(), &[t(1, 0, 5)]);
        assert_eq!(
            TransactionIndex::open(path.clone()).unwrap().entries(),
            &[t(1, 0, 5)]
        );
        reopened.truncate_to(0).unwrap();
        assert!(!path.exists());
    }
}
