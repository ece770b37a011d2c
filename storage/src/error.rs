//! The one error type of the storage layer.
//!
//! Each variant corresponds to one Kafka error code, so the broker maps them at the edge:
//! `Io` → KAFKA_STORAGE_ERROR, `CorruptRecord` → CORRUPT_MESSAGE, `RecordTooLarge` →
//! MESSAGE_TOO_LARGE, `OffsetOutOfRange` → OFFSET_OUT_OF_RANGE, `OutOfOrderSequence` →
//! OUT_OF_ORDER_SEQUENCE_NUMBER, `InvalidProducerEpoch` → INVALID_PRODUCER_EPOCH,
//! `UnknownProducerId` → UNKNOWN_PRODUCER_ID, `InvalidRecord` → INVALID_RECORD,
//! `DecompressedTooLarge` → MESSAGE_TOO_LARGE, `InvalidTxnState` → INVALID_TXN_STATE,
//! `TransactionCoordinatorFenced` → TRANSACTION_COORDINATOR_FENCED.

/// Everything that can go wrong in a log operation.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The filesystem refused a read or write (ENOSPC, EIO, ...). The log stays consistent:
    /// a failed append is rolled back before this is returned.
    #[error("log I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A batch failed its structural checks (length, magic, CRC-32C).
    #[error("corrupt record: {0}")]
    CorruptRecord(String),
    /// A batch is larger than `max.message.bytes` (or than a whole segment).
    #[error("record batch of {size} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge { size: usize, max: usize },
    /// The requested offset is not inside `[log_start_offset, log_end_offset]`.
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// An idempotent producer skipped or reordered a sequence number.
    #[error(
        "out of order sequence for producer {producer_id} epoch {producer_epoch}: \
         got {first_sequence}, expected {expected_sequence}"
    )]
    OutOfOrderSequence {
        producer_id: i64,
        producer_epoch: i16,
        first_sequence: i32,
        expected_sequence: i32,
    },
    /// A producer was fenced: a newer epoch of the same producer id already wrote.
    #[error(
        "producer {producer_id} epoch {producer_epoch} is older than the current epoch {current_epoch}"
    )]
    InvalidProducerEpoch {
        producer_id: i64,
        producer_epoch: i16,
        current_epoch: i16,
    },
    /// The producer id is not known to this partition. The leader path accepts unknown
    /// producers (see `ProducerStateManager`), so this is only raised for requests that
    /// require existing state.
    #[error("unknown producer id {producer_id}")]
    UnknownProducerId { producer_id: i64 },
    /// A batch is well formed but not acceptable (bad offset range, control batch from a
    /// client, missing key on a compacted topic, ...).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// A batch's records decompress to more than a compacted topic takes per batch (see
    /// [`crate::records`]).
    #[error("the batch's records decompress to more than {max} bytes")]
    DecompressedTooLarge { max: u64 },
    /// A write that the producer's transaction state does not allow (a non-transactional
    /// batch from a producer with an open transaction).
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    /// An end-transaction marker from a coordinator older than the one that wrote the
    /// producer's last marker.
    #[error(
        "transaction marker from coordinator epoch {coordinator_epoch} is older than {current_epoch}"
    )]
    TransactionCoordinatorFenced {
        coordinator_epoch: i32,
        current_epoch: i32,
    },
}
