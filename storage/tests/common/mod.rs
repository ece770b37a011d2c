//! Builds real v2 record batches (real CRCs, any codec) with kafka-protocol's encoder, for
//! the unit tests in `src/` and the integration tests in `tests/`.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// What one test batch looks like.
#[derive(Debug, Clone)]
pub struct BatchSpec {
    pub base_offset: i64,
    pub count: usize,
    /// Timestamp of the first record; record `i` gets `timestamp + i`.
    pub timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub value_size: usize,
    pub compression: Compression,
    pub transactional: bool,
}

impl Default for BatchSpec {
    fn default() -> Self {
        BatchSpec {
            base_offset: 0,
            count: 1,
            timestamp: 1_000,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            value_size: 16,
            compression: Compression::None,
            transactional: false,
        }
    }
}

fn record(spec: &BatchSpec, i: usize, key: Option<Bytes>, value: Option<Bytes>, ts: i64) -> Record {
    // The encoder keeps records in one batch while `offset - sequence` stays constant, and
    // derives the batch's base sequence from the first record, so -1 (no idempotence)
    // counts up like a real sequence would.
    let sequence = spec.base_sequence.wrapping_add(i as i32);
    Record {
        transactional: spec.transactional,
        control: false,
        partition_leader_epoch: 0,
        producer_id: spec.producer_id,
        producer_epoch: spec.producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: spec.base_offset + i as i64,
        sequence,
        timestamp: ts,
        key,
        value,
        headers: IndexMap::new(),
        delete_horizon: false,
    }
}

fn encode(records: &[Record], compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode record batch");
    buf.freeze()
}

/// One batch of `spec.count` records with keys `k<i>` and `value_size`-byte values.
pub fn encode_batch(spec: &BatchSpec) -> Bytes {
    let records: Vec<Record> = (0..spec.count)
        .map(|i| {
            let value = vec![b'a' + (i % 26) as u8; spec.value_size];
            record(
                spec,
                i,
                Some(Bytes::from(format!("k{i}"))),
                Some(Bytes::from(value)),
                spec.timestamp + i as i64,
            )
        })
        .collect();
    encode(&records, spec.compression)
}

/// One batch with explicit `(key, value, timestamp)` records (a `None` value is a tombstone).
pub fn encode_keyed(spec: &BatchSpec, records: &[(Option<&str>, Option<&str>, i64)]) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v, ts))| {
            record(
                spec,
                i,
                k.map(|k| Bytes::copy_from_slice(k.as_bytes())),
                v.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                *ts,
            )
        })
        .collect();
    encode(&records, spec.compression)
}
