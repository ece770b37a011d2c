//! A zero-copy view of a magic v2 record batch, exactly as it sits on the wire and on disk.
//!
//! ```text
//! baseOffset i64 @0 | batchLength i32 @8 | partitionLeaderEpoch i32 @12 | magic i8 @16
//! crc u32 @17 | attributes i16 @21 | lastOffsetDelta i32 @23 | baseTimestamp i64 @27
//! maxTimestamp i64 @35 | producerId i64 @43 | producerEpoch i16 @51 | baseSequence i32 @53
//! recordsCount i32 @57 | records @61
//! ```
//!
//! `batchLength` counts the bytes after itself, so a batch occupies `batchLength + 12` bytes.
//! The CRC-32C covers bytes `@21..end`; `baseOffset` and `partitionLeaderEpoch` lie outside
//! it, which is what lets the leader assign offsets by rewriting those two fields in place.

use crate::error::LogError;

/// `baseOffset` + `batchLength`: the bytes in front of what `batchLength` counts.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the v2 batch header; the records start here.
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// The only record format this broker stores.
pub const MAGIC_V2: i8 = 2;
/// `producerId` of a batch written without idempotence.
pub const NO_PRODUCER_ID: i64 = -1;
/// `baseSequence` of a batch written without idempotence.
pub const NO_SEQUENCE: i32 = -1;

const BASE_OFFSET: usize = 0;
const LENGTH: usize = 8;
const PARTITION_LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORDS_COUNT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_MASK: i16 = 0x08;
const TRANSACTIONAL_MASK: i16 = 0x10;
const CONTROL_MASK: i16 = 0x20;
/// The attribute saying a batch's base timestamp is its *delete horizon* (KIP-534): when
/// the cleaner may remove it.
pub const DELETE_HORIZON_MASK: i16 = 0x40;

fn i16_at(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

fn i32_at(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn i64_at(buf: &[u8], at: usize) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(bytes)
}

/// The fixed header fields of a batch, copied out. Parsing needs only the first
/// [`RECORD_BATCH_OVERHEAD`] bytes, so a log scan can read headers without the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Reads the header from the start of `buf`, checking only what is needed to walk a log:
    /// the magic byte and a sane `batchLength`.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, LogError> {
        if buf.len() < RECORD_BATCH_OVERHEAD {
            return Err(LogError::CorruptRecord(format!(
                "record batch header needs {RECORD_BATCH_OVERHEAD} bytes, only {} available",
                buf.len()
            )));
        }
        let header = BatchHeader {
            base_offset: i64_at(buf, BASE_OFFSET),
            batch_length: i32_at(buf, LENGTH),
            partition_leader_epoch: i32_at(buf, PARTITION_LEADER_EPOCH),
            magic: buf[MAGIC] as i8,
            crc: i32_at(buf, CRC) as u32,
            attributes: i16_at(buf, ATTRIBUTES),
            last_offset_delta: i32_at(buf, LAST_OFFSET_DELTA),
            base_timestamp: i64_at(buf, BASE_TIMESTAMP),
            max_timestamp: i64_at(buf, MAX_TIMESTAMP),
            producer_id: i64_at(buf, PRODUCER_ID),
            producer_epoch: i16_at(buf, PRODUCER_EPOCH),
            base_sequence: i32_at(buf, BASE_SEQUENCE),
            records_count: i32_at(buf, RECORDS_COUNT),
        };
        if header.magic != MAGIC_V2 {
            return Err(LogError::CorruptRecord(format!(
                "unsupported record batch magic {} (only v2 is stored)",
                header.magic
            )));
        }
        let min_length = (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32;
        if header.batch_length < min_length {
            return Err(LogError::CorruptRecord(format!(
                "record batch length {} is smaller than the header",
                header.batch_length
            )));
        }
        Ok(header)
    }

    /// Bytes the whole batch occupies, header included.
    pub fn size_in_bytes(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD
    }

    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Offset the next batch starts at.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Sequence number of the batch's last record (sequences wrap at `i32::MAX`).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        self.base_sequence.wrapping_add(self.last_offset_delta) & i32::MAX
    }

    /// Compression codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes & COMPRESSION_MASK) as u8
    }

    /// Whether timestamps are LogAppendTime (`true`) or CreateTime.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_MASK != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_MASK != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_MASK != 0
    }

    /// Whether the batch was written by an idempotent or transactional producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

/// A borrowed v2 record batch: `bytes` holds exactly one whole batch.
#[derive(Debug, Clone, Copy)]
pub struct RecordBatch<'a> {
    bytes: &'a [u8],
    header: BatchHeader,
}

impl<'a> RecordBatch<'a> {
    /// Views the batch at the start of `buf`; `buf` may continue with further batches.
    pub fn parse(buf: &'a [u8]) -> Result<RecordBatch<'a>, LogError> {
        let header = BatchHeader::parse(buf)?;
        let size = header.size_in_bytes();
        if buf.len() < size {
            return Err(LogError::CorruptRecord(format!(
                "record batch of {size} bytes is truncated to {}",
                buf.len()
            )));
        }
        Ok(RecordBatch {
            bytes: &buf[..size],
            header,
        })
    }

    /// The batch's bytes, exactly as stored.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    pub fn base_offset(&self) -> i64 {
        self.header.base_offset
    }

    pub fn last_offset(&self) -> i64 {
        self.header.last_offset()
    }

    pub fn next_offset(&self) -> i64 {
        self.header.next_offset()
    }

    pub fn size_in_bytes(&self) -> usize {
        self.bytes.len()
    }

    pub fn partition_leader_epoch(&self) -> i32 {
        self.header.partition_leader_epoch
    }

    pub fn magic(&self) -> i8 {
        self.header.magic
    }

    pub fn crc(&self) -> u32 {
        self.header.crc
    }

    pub fn attributes(&self) -> i16 {
        self.header.attributes
    }

    pub fn compression(&self) -> u8 {
        self.header.compression()
    }

    pub fn is_transactional(&self) -> bool {
        self.header.is_transactional()
    }

    pub fn is_control(&self) -> bool {
        self.header.is_control()
    }

    pub fn last_offset_delta(&self) -> i32 {
        self.header.last_offset_delta
    }

    pub fn base_timestamp(&self) -> i64 {
        self.header.base_timestamp
    }

    /// When the cleaner may remove this batch, if a cleaning set that (KIP-534).
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.header.attributes & DELETE_HORIZON_MASK != 0).then_some(self.header.base_timestamp)
    }

    pub fn max_timestamp(&self) -> i64 {
        self.header.max_timestamp
    }

    pub fn producer_id(&self) -> i64 {
        self.header.producer_id
    }

    pub fn producer_epoch(&self) -> i16 {
        self.header.producer_epoch
    }

    pub fn base_sequence(&self) -> i32 {
        self.header.base_sequence
    }

    pub fn last_sequence(&self) -> i32 {
        self.header.last_sequence()
    }

    pub fn records_count(&self) -> i32 {
        self.header.records_count
    }

    /// CRC-32C of the bytes the stored checksum covers.
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[ATTRIBUTES..])
    }

    /// Checks the batch is intact: v2 magic, sane length (done by `parse`) and a matching
    /// CRC-32C. This is what recovery runs on every batch after the recovery point.
    pub fn validate(&self) -> Result<(), LogError> {
        let computed = self.compute_crc();
        if computed != self.header.crc {
            return Err(LogError::CorruptRecord(format!(
                "record batch at offset {} has CRC {:#010x}, computed {computed:#010x}",
                self.header.base_offset, self.header.crc
            )));
        }
        Ok(())
    }
}

/// Iterates over the batches laid back to back in a buffer. Yields an error (and then stops)
/// at the first batch that is torn or structurally invalid; CRCs are not checked here.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    buf: &'a [u8],
    position: usize,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    /// Byte position (from the start of the buffer) of the next batch to be yielded.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<RecordBatch<'a>, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.buf.len() {
            return None;
        }
        match RecordBatch::parse(&self.buf[self.position..]) {
            Ok(batch) => {
                self.position += batch.size_in_bytes();
                Some(Ok(batch))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The batches in `buf`, in order.
pub fn batches(buf: &[u8]) -> BatchIter<'_> {
    BatchIter {
        buf,
        position: 0,
        failed: false,
    }
}

/// Rewrites `baseOffset` of the batch at the start of `buf` (outside the CRC).
pub fn set_base_offset(buf: &mut [u8], base_offset: i64) {
    buf[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Rewrites `partitionLeaderEpoch` of the batch at the start of `buf` (outside the CRC).
pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) {
    buf[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{BatchSpec, encode_batch};

    #[test]
    fn header_fields_match_what_the_encoder_wrote() {
        let spec = BatchSpec {
            base_offset: 40,
            count: 3,
            timestamp: 1_000,
            producer_id: 7,
            producer_epoch: 2,
            base_sequence: 11,
            ..BatchSpec::default()
        };
        let bytes = encode_batch(&spec);
        let batch = RecordBatch::parse(&bytes).unwrap();
        assert_eq!(batch.size_in_bytes(), bytes.len());
        assert_eq!(batch.base_offset(), 40);
        assert_eq!(batch.last_offset(), 42);
        assert_eq!(batch.records_count(), 3);
        assert_eq!(batch.producer_id(), 7);
        assert_eq!(batch.producer_epoch(), 2);
        assert_eq!(batch.base_sequence(), 11);
        assert_eq!(batch.last_sequence(), 13);
        assert_eq!(batch.base_timestamp(), 1_000);
        assert_eq!(batch.max_timestamp(), 1_002);
        assert_eq!(batch.magic(), MAGIC_V2);
        batch.validate().unwrap();
    }

    #[test]
    fn offset_and_epoch_rewrites_keep_the_crc_valid() {
        let mut bytes = encode_batch(&BatchSpec::default()).to_vec();
        set_base_offset(&mut bytes, 1234);
        set_partition_leader_epoch(&mut bytes, 9);
        let batch = RecordBatch::parse(&bytes).unwrap();
        assert_eq!(batch.base_offset(), 1234);
        assert_eq!(batch.partition_leader_epoch(), 9);
        batch.validate().unwrap();
    }

    #[test]
    fn a_flipped_byte_fails_the_crc() {
        let mut bytes = encode_batch(&BatchSpec::default()).to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        let batch = RecordBatch::parse(&bytes).unwrap();
        assert!(matches!(batch.validate(), Err(LogError::CorruptRecord(_))));
    }

    #[test]
    fn iteration_stops_at_a_torn_batch() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&encode_batch(&BatchSpec::default()));
        buf.extend_from_slice(&encode_batch(&BatchSpec {
            base_offset: 1,
            ..BatchSpec::default()
        }));
        let whole = buf.len();
        buf.extend_from_slice(&encode_batch(&BatchSpec {
            base_offset: 2,
            ..BatchSpec::default()
        }));
        buf.truncate(whole + 30);
        let mut iter = batches(&buf);
        assert_eq!(iter.next().unwrap().unwrap().base_offset(), 0);
        assert_eq!(iter.next().unwrap().unwrap().base_offset(), 1);
        assert_eq!(iter.position(), whole);
        assert!(iter.next().unwrap().is_err());
        assert!(iter.next().is_none());
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let bytes = encode_batch(&BatchSpec {
            count: 3,
            producer_id: 1,
            base_sequence: i32::MAX - 1,
            ..BatchSpec::default()
        });
        let batch = RecordBatch::parse(&bytes).unwrap();
        assert_eq!(batch.last_sequence(), 0);
    }
}
