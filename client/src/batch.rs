//! Building v2 record batches for one partition.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, Record,
    RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::error::{Error, Result};

/// Per-record overhead of the v2 format beyond key, value and headers (attributes,
/// varint deltas and lengths), used to estimate batch sizes before encoding.
const RECORD_OVERHEAD_BYTES: usize = 21;
/// Fixed size of a v2 batch header.
pub const BATCH_HEADER_BYTES: usize = 61;

/// Records collected for one partition, in send order.
#[derive(Debug, Clone, Default)]
pub struct PartitionBatch {
    records: Vec<Record>,
    /// Estimated encoded size before compression.
    size_bytes: usize,
}

impl PartitionBatch {
    /// Adds a record. Offsets are relative to the batch: the broker assigns real ones.
    ///
    /// Without idempotence there is no sequence number: the batch's base sequence must
    /// be -1 (NO_SEQUENCE). The encoder derives it from the first record and starts a
    /// new batch whenever `offset - sequence` changes, so record `i` carries sequence
    /// `i - 1`, which keeps all records in one batch with base sequence -1.
    pub fn push(
        &mut self,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: Vec<(String, Option<Bytes>)>,
        timestamp: i64,
    ) {
        let size = record_size(key.as_ref(), value.as_ref(), &headers);
        let offset = self.records.len() as i64;
        let headers: IndexMap<StrBytes, Option<Bytes>> = headers
            .into_iter()
            .map(|(k, v)| (StrBytes::from_string(k), v))
            .collect();
        self.records.push(Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: NO_SEQUENCE.wrapping_add(offset as i32),
            timestamp,
            key,
            value,
            headers,
        });
        self.size_bytes += size;
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Estimated uncompressed size of the records alone.
    pub fn records_bytes(&self) -> usize {
        self.size_bytes
    }

    /// Estimated uncompressed size in bytes, header included.
    pub fn size_bytes(&self) -> usize {
        BATCH_HEADER_BYTES + self.size_bytes
    }

    /// Encodes the records as one v2 record batch.
    pub fn encode(&self, compression: Compression) -> Result<Bytes> {
        let mut buf = BytesMut::with_capacity(self.size_bytes());
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, self.records.iter(), &options)
            .map_err(|err| Error::Invalid(format!("cannot encode record batch: {err}")))?;
        Ok(buf.freeze())
    }
}

/// Estimated encoded size of one record.
pub fn record_size(
    key: Option<&Bytes>,
    value: Option<&Bytes>,
    headers: &[(String, Option<Bytes>)],
) -> usize {
    let header_bytes: usize = headers
        .iter()
        .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len) + 10)
        .sum();
    RECORD_OVERHEAD_BYTES + key.map_or(0, Bytes::len) + value.map_or(0, Bytes::len) + header_bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    fn sample() -> PartitionBatch {
        let mut batch = PartitionBatch::default();
        for i in 0..100 {
            let key = (i % 2 == 0).then(|| Bytes::from(format!("key-{i}")));
            batch.push(
                key,
                Some(Bytes::from(format!(
                    "value number {i} with some repetition repetition"
                ))),
                vec![("h".to_owned(), Some(Bytes::from_static(b"v")))],
                1_700_000_000_000 + i,
            );
        }
        batch
    }

    #[test]
    fn batches_round_trip_with_every_codec() {
        let batch = sample();
        assert_eq!(batch.len(), 100);
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut encoded = batch.encode(compression).unwrap();
            let info = RecordBatchDecoder::decode_batch_info(&mut encoded.clone()).unwrap();
            assert_eq!(info.len(), 1, "all records in one batch");
            assert_eq!(info[0].record_count, 100);
            assert_eq!(info[0].base_sequence, -1, "no idempotence, no sequence");
            assert_eq!(info[0].producer_id, -1);
            let decoded = RecordBatchDecoder::decode(&mut encoded).unwrap();
            assert!(encoded.is_empty(), "one batch, nothing left over");
            assert_eq!(decoded.compression, compression);
            assert_eq!(decoded.records.len(), 100);
            for (i, record) in decoded.records.iter().enumerate() {
                assert_eq!(record.offset, i as i64);
                assert_eq!(record.timestamp, 1_700_000_000_000 + i as i64);
                assert_eq!(record.key.is_some(), i % 2 == 0);
                assert_eq!(
                    record.value.as_deref(),
                    Some(format!("value number {i} with some repetition repetition").as_bytes())
                );
                assert_eq!(record.headers.len(), 1);
            }
        }
    }

    #[test]
    fn compression_shrinks_repetitive_batches() {
        let batch = sample();
        let plain = batch.encode(Compression::None).unwrap().len();
        let zstd = batch.encode(Compression::Zstd).unwrap().len();
        assert!(zstd < plain / 2, "zstd {zstd} vs plain {plain}");
    }

    #[test]
    fn size_estimate_bounds_the_encoding() {
        let batch = sample();
        let encoded = batch.encode(Compression::None).unwrap().len();
        assert!(
            batch.size_bytes() >= encoded,
            "estimate {} < {encoded}",
            batch.size_bytes()
        );
    }
}
