//! The records the coordinator keeps in `__transaction_state`, byte for byte as Kafka
//! writes them, and the rule that maps a transactional id to one of the topic's
//! partitions.
//!
//! Every record is keyed by its transactional id; the value is the whole
//! [`TransactionLogValue`] after the transition, so the last record of an id is its state
//! and compaction keeps only that one. A removed (expired) id is a tombstone: a null value.
//! Keys and values start with a big-endian `int16` version:
//!
//! | schema | version | layout |
//! |---|---|---|
//! | `TransactionLogKey` | 0 | `transactional_id: string` |
//! | `TransactionLogValue` | 0 | `producer_id: int64, producer_epoch: int16, transaction_timeout_ms: int32, transaction_status: int8, transaction_partitions: nullable [topic: string, partition_ids: [int32]], last_update_timestamp_ms: int64, start_timestamp_ms: int64` |
//! | `TransactionLogValue` | 1 | the same fields in Kafka's "flexible" encoding (compact strings and arrays, tagged fields); tags 0 `previous_producer_id`, 1 `next_producer_id`, 2 `client_transaction_version`, 3 `next_producer_epoch` |
//!
//! `transaction_partitions` is null for the Empty state and an array (possibly empty)
//! otherwise. Kafka writes version 0 unless the cluster's `transaction.version` feature is
//! 1 or more (Kafka 4 with KIP-890 transactions), then version 1; this coordinator serves
//! transaction version 0 and so writes version 0, and reads both. The encodings are
//! checked byte for byte against records produced by Kafka's own serializers
//! (`testdata/transaction-log-records.txt`).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Name of the topic holding the transaction coordinator's state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// Name of the topic holding consumer offsets; AddOffsetsToTxn adds one of its partitions.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The only `TransactionLogKey` version.
const KEY_VERSION: i16 = 0;
/// `TransactionLogValue` version written (Kafka's, with `transaction.version` 0).
pub const VALUE_VERSION: i16 = 0;
/// First flexible `TransactionLogValue` version, written by Kafka 4 with
/// `transaction.version` 1 or 2.
pub const FLEXIBLE_VALUE_VERSION: i16 = 1;

const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
const TAG_NEXT_PRODUCER_ID: u32 = 1;
const TAG_CLIENT_TRANSACTION_VERSION: u32 = 2;
const TAG_NEXT_PRODUCER_EPOCH: u32 = 3;

/// Why a record of `__transaction_state` could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record ends early while reading {0}")]
    Truncated(&'static str),
    #[error("string field {0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    #[error("field {0} is null but its schema does not allow null")]
    UnexpectedNull(&'static str),
    #[error("unknown {schema} version {version}")]
    UnknownVersion { schema: &'static str, version: i16 },
    #[error("unknown transaction status {0}")]
    UnknownStatus(i8),
}

/// One record to append to (or read from) `__transaction_state`. A `None` value is a
/// tombstone: the transactional id was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionLogRecord {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// The states of a transactional id, with the status codes `__transaction_state` stores
/// and the names DescribeTransactions and ListTransactions use (Kafka's
/// `TransactionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TransactionState {
    /// Initialized (InitProducerId), no transaction started.
    Empty,
    /// Partitions were added: a transaction is open.
    Ongoing,
    /// EndTxn(commit) is durable; markers are being written.
    PrepareCommit,
    /// EndTxn(abort), a timeout or a fencing InitProducerId is durable; markers are being
    /// written.
    PrepareAbort,
    /// Commit markers written.
    CompleteCommit,
    /// Abort markers written.
    CompleteAbort,
    /// Being removed (expired); never stored.
    Dead,
    /// Fencing the producer before aborting; transient, never stored.
    PrepareEpochFence,
}

impl TransactionState {
    /// Every state, in status-code order.
    pub const ALL: [TransactionState; 8] = [
        TransactionState::Empty,
        TransactionState::Ongoing,
        TransactionState::PrepareCommit,
        TransactionState::PrepareAbort,
        TransactionState::CompleteCommit,
        TransactionState::CompleteAbort,
        TransactionState::Dead,
        TransactionState::PrepareEpochFence,
    ];

    /// The `transaction_status` code stored in `TransactionLogValue`.
    pub fn id(self) -> i8 {
        match self {
            TransactionState::Empty => 0,
            TransactionState::Ongoing => 1,
            TransactionState::PrepareCommit => 2,
            TransactionState::PrepareAbort => 3,
            TransactionState::CompleteCommit => 4,
            TransactionState::CompleteAbort => 5,
            TransactionState::Dead => 6,
            TransactionState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TransactionState> {
        usize::try_from(id)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The name the admin APIs and `kafka-transactions.sh` show.
    pub fn name(self) -> &'static str {
        match self {
            TransactionState::Empty => "Empty",
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
            TransactionState::Dead => "Dead",
            TransactionState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TransactionState> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether an idle transactional id in this state may expire
    /// (`transactional.id.expiration.ms`).
    pub fn is_expiration_allowed(self) -> bool {
        matches!(
            self,
            TransactionState::Empty
                | TransactionState::CompleteCommit
                | TransactionState::CompleteAbort
        )
    }

    /// Kafka's `validPreviousStates`: whether `self` may follow `previous`.
    pub fn may_follow(self, previous: TransactionState) -> bool {
        use TransactionState::*;
        match self {
            Empty => matches!(previous, Empty | CompleteCommit | CompleteAbort),
            Ongoing => matches!(previous, Ongoing | Empty | CompleteCommit | CompleteAbort),
            PrepareCommit => previous == Ongoing,
            PrepareAbort => matches!(previous, Ongoing | PrepareEpochFence),
            CompleteCommit => previous == PrepareCommit,
            CompleteAbort => previous == PrepareAbort,
            Dead => matches!(previous, Empty | CompleteCommit | CompleteAbort),
            PrepareEpochFence => previous == Ongoing,
        }
    }
}

impl std::fmt::Display for TransactionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The partitions of one topic in a transaction (`PartitionsSchema`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitions {
    pub topic: String,
    pub partition_ids: Vec<i32>,
}

/// A decoded `TransactionLogValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionLogValue {
    pub producer_id: i64,
    /// Version 1 only (tag 0): the producer id before the last rotation; -1 otherwise.
    pub previous_producer_id: i64,
    /// Version 1 only (tag 1): KIP-890's producer id to switch to after the markers; -1.
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    /// Version 1 only (tag 3, Kafka 4.1+): epoch that goes with `next_producer_id`; -1.
    pub next_producer_epoch: i16,
    pub transaction_timeout_ms: i32,
    pub state: TransactionState,
    /// Null (`None`) for Empty, as Kafka writes it.
    pub partitions: Option<Vec<TopicPartitions>>,
    pub last_update_timestamp_ms: i64,
    /// When the first partition was added; -1 when no transaction ever started.
    pub start_timestamp_ms: i64,
    /// Version 1 only (tag 2): the client's transaction version; 0 otherwise.
    pub client_transaction_version: i16,
}

impl TransactionLogValue {
    /// The partitions as `(topic, partition)` pairs.
    pub fn topic_partitions(&self) -> impl Iterator<Item = (String, i32)> + '_ {
        self.partitions
            .iter()
            .flatten()
            .flat_map(|t| t.partition_ids.iter().map(move |p| (t.topic.clone(), *p)))
    }
}

/// A decoded key of `__transaction_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionLogKey {
    Transaction {
        transactional_id: String,
    },
    /// A key version this coordinator does not know; loading skips it, as Kafka does.
    Unknown {
        version: i16,
    },
}

/// The partition of `__transaction_state` holding a transactional id (whose leader is its
/// coordinator), or of `__consumer_offsets` holding a group: the same rule, Kafka's
/// `Utils.abs(id.hashCode) % partitions`, as the group coordinator's.
pub use strata_group_coordinator::offsets_topic::{java_string_hash_code, partition_for};

/// The key of a transactional id (`TransactionLogKey` v0).
pub fn key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + transactional_id.len());
    buf.put_i16(KEY_VERSION);
    put_string(&mut buf, transactional_id);
    buf.freeze()
}

/// The tombstone that removes `transactional_id`.
pub fn tombstone(transactional_id: &str) -> TransactionLogRecord {
    TransactionLogRecord {
        key: key(transactional_id),
        value: None,
    }
}

/// A value as Kafka writes it with `transaction.version` 0 (version 0).
pub fn value(value: &TransactionLogValue) -> Bytes {
    encode_value(value, VALUE_VERSION)
}

/// A value at `version` (0, or 1 with the tagged fields that differ from their
/// defaults, as Kafka writes them).
///
/// # Panics
///
/// On a version other than 0 and 1.
pub fn encode_value(value: &TransactionLogValue, version: i16) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(version);
    buf.put_i64(value.producer_id);
    buf.put_i16(value.producer_epoch);
    buf.put_i32(value.transaction_timeout_ms);
    buf.put_i8(value.state.id());
    match version {
        0 => match &value.partitions {
            None => buf.put_i32(-1),
            Some(topics) => {
                buf.put_i32(len_i32(topics.len()));
                for topic in topics {
                    put_string(&mut buf, &topic.topic);
                    buf.put_i32(len_i32(topic.partition_ids.len()));
                    for p in &topic.partition_ids {
                        buf.put_i32(*p);
                    }
                }
            }
        },
        1 => match &value.partitions {
            None => put_unsigned_varint(&mut buf, 0),
            Some(topics) => {
                put_unsigned_varint(&mut buf, len_u32(topics.len()) + 1);
                for topic in topics {
                    put_compact_string(&mut buf, &topic.topic);
                    put_unsigned_varint(&mut buf, len_u32(topic.partition_ids.len()) + 1);
                    for p in &topic.partition_ids {
                        buf.put_i32(*p);
                    }
                    put_unsigned_varint(&mut buf, 0);
                }
            }
        },
        other => panic!("TransactionLogValue version {other} is not written"),
    }
    buf.put_i64(value.last_update_timestamp_ms);
    buf.put_i64(value.start_timestamp_ms);
    if version >= FLEXIBLE_VALUE_VERSION {
        let mut tags: Vec<(u32, Vec<u8>)> = Vec::new();
        if value.previous_producer_id != -1 {
            tags.push((
                TAG_PREVIOUS_PRODUCER_ID,
                value.previous_producer_id.to_be_bytes().to_vec(),
            ));
        }
        if value.next_producer_id != -1 {
            tags.push((
                TAG_NEXT_PRODUCER_ID,
                value.next_producer_id.to_be_bytes().to_vec(),
            ));
        }
        if value.client_transaction_version != 0 {
            tags.push((
                TAG_CLIENT_TRANSACTION_VERSION,
                value.client_transaction_version.to_be_bytes().to_vec(),
            ));
        }
        if value.next_producer_epoch != -1 {
            tags.push((
                TAG_NEXT_PRODUCER_EPOCH,
                value.next_producer_epoch.to_be_bytes().to_vec(),
            ));
        }
        put_unsigned_varint(&mut buf, len_u32(tags.len()));
        for (tag, data) in tags {
            put_unsigned_varint(&mut buf, tag);
            put_unsigned_varint(&mut buf, len_u32(data.len()));
            buf.put_slice(&data);
        }
    }
    buf.freeze()
}

/// Decodes a key; unknown key versions are reported, not rejected.
pub fn decode_key(key: &[u8]) -> Result<TransactionLogKey, RecordError> {
    let mut buf = key;
    let version = get_i16(&mut buf, "key version")?;
    if version != KEY_VERSION {
        return Ok(TransactionLogKey::Unknown { version });
    }
    Ok(TransactionLogKey::Transaction {
        transactional_id: get_string(&mut buf, "transactional_id")?,
    })
}

/// Decodes a value of version 0 or 1. Unknown tagged fields are skipped.
pub fn decode_value(value: &[u8]) -> Result<TransactionLogValue, RecordError> {
    let mut buf = value;
    let version = get_i16(&mut buf, "value version")?;
    if !(0..=FLEXIBLE_VALUE_VERSION).contains(&version) {
        return Err(RecordError::UnknownVersion {
            schema: "TransactionLogValue",
            version,
        });
    }
    let flexible = version >= FLEXIBLE_VALUE_VERSION;
    let producer_id = get_i64(&mut buf, "producer_id")?;
    let producer_epoch = get_i16(&mut buf, "producer_epoch")?;
    let transaction_timeout_ms = get_i32(&mut buf, "transaction_timeout_ms")?;
    let status = get_i8(&mut buf, "transaction_status")?;
    let state = TransactionState::from_id(status).ok_or(RecordError::UnknownStatus(status))?;
    let count = if flexible {
        get_unsigned_varint(&mut buf, "transaction_partitions")?
            .checked_sub(1)
            .map(i64::from)
            .unwrap_or(-1)
    } else {
        i64::from(get_i32(&mut buf, "transaction_partitions")?)
    };
    let partitions = if count < 0 {
        None
    } else {
        let mut topics = Vec::new();
        for _ in 0..count {
            let topic = if flexible {
                get_compact_string(&mut buf, "topic")?
            } else {
                get_string(&mut buf, "topic")?
            };
            let ids = if flexible {
                i64::from(get_unsigned_varint(&mut buf, "partition_ids")?) - 1
            } else {
                i64::from(get_i32(&mut buf, "partition_ids")?)
            };
            if ids < 0 {
                return Err(RecordError::UnexpectedNull("partition_ids"));
            }
            let mut partition_ids = Vec::new();
            for _ in 0..ids {
                partition_ids.push(get_i32(&mut buf, "partition_ids")?);
            }
            if flexible {
                skip_tagged_fields(&mut buf)?;
            }
            topics.push(TopicPartitions {
                topic,
                partition_ids,
            });
        }
        Some(topics)
    };
    let last_update_timestamp_ms = get_i64(&mut buf, "last_update_timestamp_ms")?;
    let start_timestamp_ms = get_i64(&mut buf, "start_timestamp_ms")?;
    let mut decoded = TransactionLogValue {
        producer_id,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch,
        next_producer_epoch: -1,
        transaction_timeout_ms,
        state,
        partitions,
        last_update_timestamp_ms,
        start_timestamp_ms,
        client_transaction_version: 0,
    };
    if flexible {
        let tags = get_unsigned_varint(&mut buf, "tagged fields")?;
        for _ in 0..tags {
            let tag = get_unsigned_varint(&mut buf, "tag")?;
            let size = get_unsigned_varint(&mut buf, "tag size")? as usize;
            if buf.remaining() < size {
                return Err(RecordError::Truncated("tagged field"));
            }
            let mut data = &buf[..size];
            match tag {
                TAG_PREVIOUS_PRODUCER_ID => {
                    decoded.previous_producer_id = get_i64(&mut data, "previous_producer_id")?
                }
                TAG_NEXT_PRODUCER_ID => {
                    decoded.next_producer_id = get_i64(&mut data, "next_producer_id")?
                }
                TAG_CLIENT_TRANSACTION_VERSION => {
                    decoded.client_transaction_version =
                        get_i16(&mut data, "client_transaction_version")?
                }
                TAG_NEXT_PRODUCER_EPOCH => {
                    decoded.next_producer_epoch = get_i16(&mut data, "next_producer_epoch")?
                }
                _ => {}
            }
            buf.advance(size);
        }
    }
    Ok(decoded)
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).expect("length fits an int32")
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).expect("length fits an unsigned varint")
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(i16::try_from(s.len()).expect("string fits an int16 length"));
    buf.put_slice(s.as_bytes());
}

fn put_compact_string(buf: &mut BytesMut, s: &str) {
    put_unsigned_varint(buf, len_u32(s.len()) + 1);
    buf.put_slice(s.as_bytes());
}

fn put_unsigned_varint(buf: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

fn get_i8(buf: &mut &[u8], field: &'static str) -> Result<i8, RecordError> {
    if buf.remaining() < 1 {
        return Err(RecordError::Truncated(field));
    }
    Ok(buf.get_i8())
}

fn get_i16(buf: &mut &[u8], field: &'static str) -> Result<i16, RecordError> {
    if buf.remaining() < 2 {
        return Err(RecordError::Truncated(field));
    }
    Ok(buf.get_i16())
}

fn get_i32(buf: &mut &[u8], field: &'static str) -> Result<i32, RecordError> {
    if buf.remaining() < 4 {
        return Err(RecordError::Truncated(field));
    }
    Ok(buf.get_i32())
}

fn get_i64(buf: &mut &[u8], field: &'static str) -> Result<i64, RecordError> {
    if buf.remaining() < 8 {
        return Err(RecordError::Truncated(field));
    }
    Ok(buf.get_i64())
}

fn get_unsigned_varint(buf: &mut &[u8], field: &'static str) -> Result<u32, RecordError> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        if buf.remaining() < 1 {
            return Err(RecordError::Truncated(field));
        }
        let byte = buf.get_u8();
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(RecordError::Truncated(field))
}

fn get_bytes<'a>(
    buf: &mut &'a [u8],
    len: usize,
    field: &'static str,
) -> Result<&'a [u8], RecordError> {
    if buf.len() < len {
        return Err(RecordError::Truncated(field));
    }
    let (head, tail) = buf.split_at(len);
    *buf = tail;
    Ok(head)
}

fn get_string(buf: &mut &[u8], field: &'static str) -> Result<String, RecordError> {
    let len = get_i16(buf, field)?;
    let len = usize::try_from(len).map_err(|_| RecordError::UnexpectedNull(field))?;
    let bytes = get_bytes(buf, len, field)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| RecordError::InvalidUtf8(field))
}

fn get_compact_string(buf: &mut &[u8], field: &'static str) -> Result<String, RecordError> {
    let len = get_unsigned_varint(buf, field)?;
    let len = len
        .checked_sub(1)
        .ok_or(RecordError::UnexpectedNull(field))? as usize;
    let bytes = get_bytes(buf, len, field)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| RecordError::InvalidUtf8(field))
}

fn skip_tagged_fields(buf: &mut &[u8]) -> Result<(), RecordError> {
    let tags = get_unsigned_varint(buf, "tagged fields")?;
    for _ in 0..tags {
        get_unsigned_varint(buf, "tag")?;
        let size = get_unsigned_varint(buf, "tag size")? as usize;
        get_bytes(buf, size, "tagged field")?;
    }
    Ok(())
}
