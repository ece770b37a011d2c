//! Reading and writing the internal topics the coordinators keep their state in
//! (`__consumer_offsets`, `__transaction_state`): one batch of key/value records appended
//! as the partition's leader with acks=all, and a whole partition read back in offset
//! order at load time — transaction markers included, since a group's transactional
//! offset commits become visible only with their producer's COMMIT.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strata_storage::batch::{BatchHeader, RECORD_BATCH_OVERHEAD};
use strata_storage::{ControlType, EndTxnMarker, LogError, VerificationGuard};
use tracing::warn;

use crate::replica::Partition;
use crate::replica::partition::PartitionError;
use crate::{Broker, now_ms};

/// One entry of an internal topic, as a load sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum LogEntry {
    Record {
        key: Bytes,
        value: Option<Bytes>,
        /// The producer whose transaction the record belongs to.
        transactional_producer: Option<i64>,
    },
    /// The end of a producer's transaction.
    Marker { producer_id: i64, commit: bool },
}

/// Appends `records` (key, value) as one batch to `topic`-`partition` as its leader with
/// acks=all — a transactional batch of `transactional` (producer id, epoch) when given.
/// Returns the partition and the offset that must be committed before the write counts.
pub fn append(
    broker: &Broker,
    topic: &str,
    partition: i32,
    records: impl Iterator<Item = (Bytes, Option<Bytes>)>,
    transactional: Option<(i64, i16)>,
    guard: Option<VerificationGuard>,
) -> Result<(Arc<Partition>, i64), ResponseError> {
    let Some(p) = broker.replica_manager.get_partition(topic, partition) else {
        return Err(ResponseError::NotLeaderOrFollower);
    };
    let now = now_ms();
    let (_, leader_epoch) = p.leader_and_epoch();
    let (producer_id, producer_epoch) = transactional.unwrap_or((-1, -1));
    let records: Vec<Record> = records
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: transactional.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: leader_epoch,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Kafka's coordinators write their producers' batches from sequence 0.
            sequence: if transactional.is_some() {
                i as i32
            } else {
                -1
            },
            timestamp: now,
            key: Some(key),
            value,
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|_| ResponseError::UnknownServerError)?;
    match broker
        .replica_manager
        .append_coordinator_records(&p, &buf, guard)
    {
        Ok((info, _)) => Ok((p, info.last_offset + 1)),
        Err(PartitionError::Kafka(e, _)) => Err(e),
        Err(PartitionError::Log(e)) => {
            warn!(topic, partition, error = %e, "appending coordinator records failed");
            Err(crate::api::log_error_code(&e))
        }
    }
}

/// Reads a whole partition, in offset order, up to its log end: every keyed record and
/// every transaction marker.
pub fn read_all(partition: &Partition) -> Result<Vec<LogEntry>, LogError> {
    let mut out = Vec::new();
    let mut position = partition.offsets().log_start_offset;
    loop {
        let (data, offsets) = partition.read_committed(position, 1024 * 1024, i64::MAX)?;
        if data.is_empty() || position >= offsets.log_end_offset {
            return Ok(out);
        }
        let before = position;
        let mut rest: Bytes = data;
        while rest.len() >= RECORD_BATCH_OVERHEAD {
            let header = BatchHeader::parse(&rest)?;
            let size = header.size_in_bytes();
            if size > rest.len() {
                break;
            }
            let batch = rest.split_to(size);
            // Advance past the whole batch even when compaction left its tail empty.
            let next = header.next_offset();
            if header.is_control() {
                if header.base_offset >= position
                    && let Some(marker) = EndTxnMarker::from_bytes(&batch)
                {
                    out.push(LogEntry::Marker {
                        producer_id: marker.producer_id,
                        commit: marker.control == ControlType::Commit,
                    });
                }
            } else {
                let transactional_producer =
                    header.is_transactional().then_some(header.producer_id);
                let mut bytes = batch;
                let set = RecordBatchDecoder::decode(&mut bytes)
                    .map_err(|e| LogError::CorruptRecord(e.to_string()))?;
                for r in set.records {
                    if r.offset >= position
                        && let Some(key) = r.key
                    {
                        out.push(LogEntry::Record {
                            key,
                            value: r.value,
                            transactional_producer,
                        });
                    }
                }
            }
            position = position.max(next);
        }
        if position == before {
            return Ok(out);
        }
    }
}
