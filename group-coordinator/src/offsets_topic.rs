//! The records the coordinator keeps in `__consumer_offsets`, byte for byte as Kafka
//! writes them, and the rule that maps a group to one of the topic's partitions.
//!
//! Every record has a key and (unless it is a tombstone) a value. Both start with a
//! big-endian `int16` version. The key version says what the record is:
//!
//! | key version | key schema | value schema |
//! |---|---|---|
//! | 0, 1 | `OffsetCommitKey`: group, topic, partition | `OffsetCommitValue` v0–v4 |
//! | 2 | `GroupMetadataKey`: group | `GroupMetadataValue` v0–v4 |
//!
//! Later key versions belong to Kafka's newer group types (KIP-848) and are skipped on
//! load. Values are written at the versions Apache Kafka 4.3 writes, checked byte for
//! byte against records produced by Kafka's own code (`testdata/kafka-records.txt`):
//! `OffsetCommitValue` v4, Kafka's first "flexible" version (compact strings, tagged
//! fields), or v1 when the commit carried an explicit retention time, because only v1
//! has `expireTimestamp`; and `GroupMetadataValue` v3. Every version Kafka ever wrote
//! (0–4 of both) is read.
//!
//! TxnOffsetCommit writes the same `OffsetCommitKey`/`OffsetCommitValue` records, in
//! transactional batches of the producer; they count once the producer's COMMIT marker
//! follows ([`LoadedRecord`] is what a load reads back).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Key version of an `OffsetCommitKey` as Kafka writes it.
const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version of a `GroupMetadataKey`.
const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// `OffsetCommitValue` version written for ordinary commits.
const OFFSET_COMMIT_VALUE_VERSION: i16 = 4;
/// `OffsetCommitValue` version written when the commit has an explicit expire timestamp
/// (OffsetCommit v2–v4 with `retention_time_ms` set); v1 is the only version with the field.
const OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY: i16 = 1;
/// `GroupMetadataValue` version written (carries `groupInstanceId`, KIP-345).
const GROUP_METADATA_VALUE_VERSION: i16 = 3;
/// First flexible version of both value schemas (KIP-915).
const FIRST_FLEXIBLE_VALUE_VERSION: i16 = 4;

/// Why a record of `__consumer_offsets` could not be decoded.
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
}

/// One record to append to (or read from) `__consumer_offsets`. A `None` value is a
/// tombstone: compaction eventually removes the key altogether.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetsTopicRecord {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// One entry of `__consumer_offsets` as read back by
/// [`GroupCoordinator::load_partition`](crate::GroupCoordinator::load_partition): a record
/// together with what its batch says about transactions, or a transaction marker.
///
/// Transactional offset commits (TxnOffsetCommit) are written in transactional batches of
/// the producer; they only count once that producer's COMMIT marker follows in the
/// partition, and are dropped at its ABORT marker. A loader that only has plain records
/// (no transactions ever written) can pass [`OffsetsTopicRecord`]s, which convert into
/// [`LoadedRecord::Record`] of a non-transactional batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadedRecord {
    /// A key/value record (or tombstone) of a data batch.
    Record {
        record: OffsetsTopicRecord,
        /// The batch's producer id when the batch is transactional; `None` for an ordinary
        /// (possibly idempotent) batch.
        transactional_producer_id: Option<i64>,
    },
    /// The control record of a control batch: the end of `producer_id`'s transaction in
    /// this partition, committed (`commit`) or aborted.
    Marker { producer_id: i64, commit: bool },
}

impl LoadedRecord {
    /// A record of an ordinary (non-transactional) batch.
    pub fn record(record: OffsetsTopicRecord) -> Self {
        LoadedRecord::Record {
            record,
            transactional_producer_id: None,
        }
    }

    /// A record of a transactional batch of `producer_id`.
    pub fn transactional(record: OffsetsTopicRecord, producer_id: i64) -> Self {
        LoadedRecord::Record {
            record,
            transactional_producer_id: Some(producer_id),
        }
    }

    /// A COMMIT (`commit`) or ABORT marker of `producer_id`.
    pub fn marker(producer_id: i64, commit: bool) -> Self {
        LoadedRecord::Marker {
            producer_id,
            commit,
        }
    }
}

impl From<OffsetsTopicRecord> for LoadedRecord {
    fn from(record: OffsetsTopicRecord) -> Self {
        LoadedRecord::record(record)
    }
}

/// A committed offset as kept in memory and in `OffsetCommitValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    pub offset: i64,
    /// Leader epoch of the record the offset points after; -1 when unknown (KIP-320).
    pub leader_epoch: i32,
    /// The client's free-form metadata string, returned unchanged by OffsetFetch.
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Only set for commits made with an explicit retention time (OffsetCommit v2–v4);
    /// such offsets expire at this time instead of `offsets.retention.minutes` after the
    /// group became empty.
    pub expire_timestamp_ms: Option<i64>,
}

/// A decoded `GroupMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// When the group last changed state; -1 when written by a version without the field.
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadataValue>,
}

/// One member inside a `GroupMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's selected protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A decoded key of `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsTopicKey {
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
    },
    GroupMetadata {
        group: String,
    },
    /// A record type of a newer Kafka (e.g. KIP-848 consumer groups) this coordinator does
    /// not serve; loading skips it.
    Other {
        version: i16,
    },
}

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units
/// with 32-bit wrapping arithmetic.
pub fn java_string_hash_code(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__consumer_offsets` partition that holds `group_id` and whose leader is its
/// coordinator: Kafka's `Utils.abs(groupId.hashCode) % offsets.topic.num.partitions`.
/// `Utils.abs` maps `Integer.MIN_VALUE` to 0 (it is not the `& 0x7fffffff` the
/// producer's partitioner uses), and that is what is matched here.
pub fn partition_for(group_id: &str, num_partitions: i32) -> i32 {
    assert!(
        num_partitions > 0,
        "offsets.topic.num.partitions must be positive"
    );
    let hash = java_string_hash_code(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % num_partitions
}

/// Key of a committed offset (`OffsetCommitKey` v1).
pub fn offset_commit_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::with_capacity(2 + 2 + group.len() + 2 + topic.len() + 4);
    buf.put_i16(OFFSET_COMMIT_KEY_VERSION);
    put_string(&mut buf, group);
    put_string(&mut buf, topic);
    buf.put_i32(partition);
    buf.freeze()
}

/// Key of a group's metadata (`GroupMetadataKey` v2).
pub fn group_metadata_key(group: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(2 + 2 + group.len());
    buf.put_i16(GROUP_METADATA_KEY_VERSION);
    put_string(&mut buf, group);
    buf.freeze()
}

/// Value of a committed offset: `OffsetCommitValue` v4, or v1 when the offset carries an
/// explicit expire timestamp.
pub fn offset_commit_value(offset: &OffsetAndMetadata) -> Bytes {
    let mut buf = BytesMut::with_capacity(2 + 8 + 4 + 2 + offset.metadata.len() + 16);
    match offset.expire_timestamp_ms {
        Some(expire_timestamp_ms) => {
            buf.put_i16(OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY);
            buf.put_i64(offset.offset);
            put_string(&mut buf, &offset.metadata);
            buf.put_i64(offset.commit_timestamp_ms);
            buf.put_i64(expire_timestamp_ms);
        }
        None => {
            buf.put_i16(OFFSET_COMMIT_VALUE_VERSION);
            buf.put_i64(offset.offset);
            buf.put_i32(offset.leader_epoch);
            put_compact_string(&mut buf, &offset.metadata);
            buf.put_i64(offset.commit_timestamp_ms);
            // No tagged fields (Kafka's optional topicId is not written).
            put_unsigned_varint(&mut buf, 0);
        }
    }
    buf.freeze()
}

/// Value of a group's metadata (`GroupMetadataValue` v3).
pub fn group_metadata_value(value: &GroupMetadataValue) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(GROUP_METADATA_VALUE_VERSION);
    put_string(&mut buf, &value.protocol_type);
    buf.put_i32(value.generation);
    put_nullable_string(&mut buf, value.protocol.as_deref());
    put_nullable_string(&mut buf, value.leader.as_deref());
    buf.put_i64(value.current_state_timestamp_ms);
    buf.put_i32(i32::try_from(value.members.len()).expect("member count fits an int32"));
    for member in &value.members {
        put_string(&mut buf, &member.member_id);
        put_nullable_string(&mut buf, member.group_instance_id.as_deref());
        put_string(&mut buf, &member.client_id);
        put_string(&mut buf, &member.client_host);
        buf.put_i32(member.rebalance_timeout_ms);
        buf.put_i32(member.session_timeout_ms);
        put_bytes(&mut buf, &member.subscription);
        put_bytes(&mut buf, &member.assignment);
    }
    buf.freeze()
}

/// Decodes a key of `__consumer_offsets`.
pub fn decode_key(key: &[u8]) -> Result<OffsetsTopicKey, RecordError> {
    let mut r = Reader::new(key, false);
    let version = r.i16("key version")?;
    match version {
        0 | 1 => Ok(OffsetsTopicKey::OffsetCommit {
            group: r.string("group")?,
            topic: r.string("topic")?,
            partition: r.i32("partition")?,
        }),
        2 => Ok(OffsetsTopicKey::GroupMetadata {
            group: r.string("group")?,
        }),
        other => Ok(OffsetsTopicKey::Other { version: other }),
    }
}

/// Decodes an `OffsetCommitValue` of any version Kafka has written (0–4).
pub fn decode_offset_commit_value(value: &[u8]) -> Result<OffsetAndMetadata, RecordError> {
    let mut r = Reader::new(value, false);
    let version = r.i16("OffsetCommitValue version")?;
    if !(0..=FIRST_FLEXIBLE_VALUE_VERSION).contains(&version) {
        return Err(RecordError::UnknownVersion {
            schema: "OffsetCommitValue",
            version,
        });
    }
    r.flexible = version >= FIRST_FLEXIBLE_VALUE_VERSION;
    let offset = r.i64("offset")?;
    let leader_epoch = if version >= 3 {
        r.i32("leaderEpoch")?
    } else {
        -1
    };
    let metadata = r.string("metadata")?;
    let commit_timestamp_ms = r.i64("commitTimestamp")?;
    let expire_timestamp_ms = if version == 1 {
        Some(r.i64("expireTimestamp")?).filter(|ts| *ts != -1)
    } else {
        None
    };
    r.tagged_fields()?;
    Ok(OffsetAndMetadata {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

/// Decodes a `GroupMetadataValue` of any version Kafka has written (0–4).
pub fn decode_group_metadata_value(value: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let mut r = Reader::new(value, false);
    let version = r.i16("GroupMetadataValue version")?;
    if !(0..=FIRST_FLEXIBLE_VALUE_VERSION).contains(&version) {
        return Err(RecordError::UnknownVersion {
            schema: "GroupMetadataValue",
            version,
        });
    }
    r.flexible = version >= FIRST_FLEXIBLE_VALUE_VERSION;
    let protocol_type = r.string("protocolType")?;
    let generation = r.i32("generation")?;
    let protocol = r.nullable_string("protocol")?;
    let leader = r.nullable_string("leader")?;
    let current_state_timestamp_ms = if version >= 2 {
        r.i64("currentStateTimestamp")?
    } else {
        -1
    };
    let count = r.array_len("members")?;
    let mut members = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let member_id = r.string("memberId")?;
        let group_instance_id = if version >= 3 {
            r.nullable_string("groupInstanceId")?
        } else {
            None
        };
        let client_id = r.string("clientId")?;
        let client_host = r.string("clientHost")?;
        let session_timeout_first = version == 0;
        let (rebalance_timeout_ms, session_timeout_ms) = if session_timeout_first {
            // v0 has no rebalance timeout; Kafka used the session timeout for both.
            let session = r.i32("sessionTimeout")?;
            (session, session)
        } else {
            let rebalance = r.i32("rebalanceTimeout")?;
            (rebalance, r.i32("sessionTimeout")?)
        };
        let subscription = r.bytes("subscription")?;
        let assignment = r.bytes("assignment")?;
        r.tagged_fields()?;
        members.push(MemberMetadataValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    r.tagged_fields()?;
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(i16::try_from(s.len()).expect("string field longer than 32767 bytes"));
    buf.put_slice(s.as_bytes());
}

/// A flexible version's string: its length + 1 as an unsigned varint, then the bytes.
fn put_compact_string(buf: &mut BytesMut, s: &str) {
    let len = u32::try_from(s.len()).expect("string field longer than 4 GiB");
    put_unsigned_varint(buf, len + 1);
    buf.put_slice(s.as_bytes());
}

fn put_unsigned_varint(buf: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

fn put_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(i32::try_from(b.len()).expect("bytes field larger than 2 GiB"));
    buf.put_slice(b);
}

/// Reads Kafka's primitive types in either the classic or the flexible (compact) form.
struct Reader<'a> {
    buf: &'a [u8],
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], flexible: bool) -> Self {
        Reader { buf, flexible }
    }

    fn need(&self, n: usize, field: &'static str) -> Result<(), RecordError> {
        if self.buf.remaining() < n {
            return Err(RecordError::Truncated(field));
        }
        Ok(())
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, RecordError> {
        self.need(2, field)?;
        Ok(self.buf.get_i16())
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, RecordError> {
        self.need(4, field)?;
        Ok(self.buf.get_i32())
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, RecordError> {
        self.need(8, field)?;
        Ok(self.buf.get_i64())
    }

    fn unsigned_varint(&mut self, field: &'static str) -> Result<u32, RecordError> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            self.need(1, field)?;
            let byte = self.buf.get_u8();
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::Truncated(field))
    }

    /// Length of a string, bytes or array field; `None` for null.
    fn length(&mut self, field: &'static str, wide: bool) -> Result<Option<usize>, RecordError> {
        let len = if self.flexible {
            i64::from(self.unsigned_varint(field)?) - 1
        } else if wide {
            i64::from(self.i32(field)?)
        } else {
            i64::from(self.i16(field)?)
        };
        Ok(usize::try_from(len).ok())
    }

    fn nullable_string(&mut self, field: &'static str) -> Result<Option<String>, RecordError> {
        let Some(len) = self.length(field, false)? else {
            return Ok(None);
        };
        self.need(len, field)?;
        let s = std::str::from_utf8(&self.buf[..len])
            .map_err(|_| RecordError::InvalidUtf8(field))?
            .to_owned();
        self.buf.advance(len);
        Ok(Some(s))
    }

    fn string(&mut self, field: &'static str) -> Result<String, RecordError> {
        self.nullable_string(field)?
            .ok_or(RecordError::UnexpectedNull(field))
    }

    fn bytes(&mut self, field: &'static str) -> Result<Bytes, RecordError> {
        let len = self
            .length(field, true)?
            .ok_or(RecordError::UnexpectedNull(field))?;
        self.need(len, field)?;
        let b = Bytes::copy_from_slice(&self.buf[..len]);
        self.buf.advance(len);
        Ok(b)
    }

    fn array_len(&mut self, field: &'static str) -> Result<usize, RecordError> {
        self.length(field, true)?
            .ok_or(RecordError::UnexpectedNull(field))
    }

    /// Skips a flexible version's tagged fields; none are defined for these schemas yet.
    fn tagged_fields(&mut self) -> Result<(), RecordError> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.unsigned_varint("tagged fields")?;
        for _ in 0..count {
            self.unsigned_varint("tag")?;
            let size = self.unsigned_varint("tag size")? as usize;
            self.need(size, "tagged field")?;
            self.buf.advance(size);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_code_matches_java() {
        // Values computed with Java's String.hashCode().
        assert_eq!(java_string_hash_code(""), 0);
        assert_eq!(java_string_hash_code("a"), 97);
        assert_eq!(java_string_hash_code("hello"), 99_162_322);
        assert_eq!(java_string_hash_code("console-consumer-12345"), 158_455_506);
        assert_eq!(java_string_hash_code("my-group"), -1_906_497_762);
        // "polygenelubricants" is the classic string whose hash is Integer.MIN_VALUE.
        assert_eq!(java_string_hash_code("polygenelubricants"), i32::MIN);
        // A character outside the BMP hashes as its two UTF-16 surrogates.
        assert_eq!(java_string_hash_code("\u{1F600}"), 0xD83D * 31 + 0xDE00);
    }

    #[test]
    fn partition_for_uses_kafka_utils_abs() {
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
        // Utils.abs(Integer.MIN_VALUE) is 0, not 2^31 - 1 masked.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("my-group", 50), 12);
        assert_eq!(partition_for("group-1", 50), 49);
    }

    #[test]
    fn offset_commit_key_bytes() {
        let key = offset_commit_key("g", "t", 3);
        assert_eq!(
            key.as_ref(),
            &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3][..]
        );
        assert_eq!(
            decode_key(&key).unwrap(),
            OffsetsTopicKey::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 3
            }
        );
    }

    #[test]
    fn group_metadata_key_bytes() {
        let key = group_metadata_key("grp");
        assert_eq!(key.as_ref(), &[0, 2, 0, 3, b'g', b'r', b'p'][..]);
        assert_eq!(
            decode_key(&key).unwrap(),
            OffsetsTopicKey::GroupMetadata {
                group: "grp".into()
            }
        );
    }

    #[test]
    fn newer_key_versions_are_reported_not_rejected() {
        assert_eq!(
            decode_key(&[0, 3, 0, 0]).unwrap(),
            OffsetsTopicKey::Other { version: 3 }
        );
    }

    #[test]
    fn offset_commit_value_v4_bytes() {
        let value = OffsetAndMetadata {
            offset: 42,
            leader_epoch: 7,
            metadata: "m".into(),
            commit_timestamp_ms: 1000,
            expire_timestamp_ms: None,
        };
        let bytes = offset_commit_value(&value);
        let expected: Vec<u8> = [
            &[0, 4][..],
            &42i64.to_be_bytes(),
            &7i32.to_be_bytes(),
            &[2, b'm'],
            &1000i64.to_be_bytes(),
            &[0],
        ]
        .concat();
        assert_eq!(bytes.as_ref(), expected.as_slice());
        assert_eq!(decode_offset_commit_value(&bytes).unwrap(), value);
    }

    #[test]
    fn long_metadata_uses_a_multi_byte_length() {
        let value = OffsetAndMetadata {
            offset: 1,
            leader_epoch: -1,
            metadata: "x".repeat(300),
            commit_timestamp_ms: 2,
            expire_timestamp_ms: None,
        };
        let bytes = offset_commit_value(&value);
        // 301 = 0b10_0101101 as a varint: 0xad 0x02.
        assert_eq!(&bytes[14..16], &[0xad, 0x02]);
        assert_eq!(decode_offset_commit_value(&bytes).unwrap(), value);
    }

    #[test]
    fn offset_commit_value_with_expiry_is_v1() {
        let value = OffsetAndMetadata {
            offset: 5,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 10,
            expire_timestamp_ms: Some(20),
        };
        let bytes = offset_commit_value(&value);
        assert_eq!(&bytes[..2], &[0, 1]);
        assert_eq!(bytes.len(), 2 + 8 + 2 + 8 + 8);
        assert_eq!(decode_offset_commit_value(&bytes).unwrap(), value);
    }

    #[test]
    fn offset_commit_value_v0_and_v4_decode() {
        let v0: Vec<u8> = [
            &[0, 0][..],
            &9i64.to_be_bytes(),
            &[0, 2, b'h', b'i'],
            &77i64.to_be_bytes(),
        ]
        .concat();
        let decoded = decode_offset_commit_value(&v0).unwrap();
        assert_eq!(decoded.offset, 9);
        assert_eq!(decoded.leader_epoch, -1);
        assert_eq!(decoded.metadata, "hi");
        assert_eq!(decoded.commit_timestamp_ms, 77);

        // v4: compact string (length + 1 as a varint) and an empty tagged-field section,
        // plus one unknown tagged field that must be skipped.
        let v4: Vec<u8> = [
            &[0, 4][..],
            &9i64.to_be_bytes(),
            &3i32.to_be_bytes(),
            &[3, b'h', b'i'],
            &77i64.to_be_bytes(),
            &[1, 5, 2, 0xAA, 0xBB],
        ]
        .concat();
        let decoded = decode_offset_commit_value(&v4).unwrap();
        assert_eq!(decoded.leader_epoch, 3);
        assert_eq!(decoded.metadata, "hi");
        assert_eq!(decoded.commit_timestamp_ms, 77);
    }

    #[test]
    fn group_metadata_value_round_trip_and_layout() {
        let value = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 1234,
            members: vec![MemberMetadataValue {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(&[1, 2]),
                assignment: Bytes::from_static(&[3]),
            }],
        };
        let bytes = group_metadata_value(&value);
        let expected: Vec<u8> = [
            &[0, 3][..],
            &[0, 8],
            b"consumer",
            &3i32.to_be_bytes(),
            &[0, 5],
            b"range",
            &[0, 2, b'm', b'1'],
            &1234i64.to_be_bytes(),
            &1i32.to_be_bytes(),
            &[0, 2, b'm', b'1'],
            &[0, 2, b'i', b'1'],
            &[0, 1, b'c'],
            &[0, 10],
            b"/127.0.0.1",
            &300_000i32.to_be_bytes(),
            &45_000i32.to_be_bytes(),
            &2i32.to_be_bytes(),
            &[1, 2],
            &1i32.to_be_bytes(),
            &[3],
        ]
        .concat();
        assert_eq!(bytes.as_ref(), expected.as_slice());
        assert_eq!(decode_group_metadata_value(&bytes).unwrap(), value);
    }

    #[test]
    fn empty_group_metadata_has_null_protocol_and_leader() {
        let value = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: None,
            leader: None,
            current_state_timestamp_ms: 99,
            members: vec![],
        };
        let bytes = group_metadata_value(&value);
        let expected: Vec<u8> = [
            &[0, 3][..],
            &[0, 8],
            b"consumer",
            &4i32.to_be_bytes(),
            &[0xff, 0xff, 0xff, 0xff],
            &99i64.to_be_bytes(),
            &0i32.to_be_bytes(),
        ]
        .concat();
        assert_eq!(bytes.as_ref(), expected.as_slice());
        assert_eq!(decode_group_metadata_value(&bytes).unwrap(), value);
    }

    #[test]
    fn truncated_records_are_errors() {
        let bytes = offset_commit_value(&OffsetAndMetadata {
            offset: 1,
            leader_epoch: -1,
            metadata: "abc".into(),
            commit_timestamp_ms: 1,
            expire_timestamp_ms: None,
        });
        assert!(matches!(
            decode_offset_commit_value(&bytes[..bytes.len() - 1]),
            Err(RecordError::Truncated(_))
        ));
        assert_eq!(
            decode_offset_commit_value(&[0, 9]),
            Err(RecordError::UnknownVersion {
                schema: "OffsetCommitValue",
                version: 9
            })
        );
    }

    /// Records serialized by Apache Kafka's own group coordinator
    /// (`testdata/KafkaRecords.java`).
    fn kafka_record(name: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        let hex = |h: &str| -> Vec<u8> {
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        };
        let line = include_str!("../testdata/kafka-records.txt")
            .lines()
            .find(|l| l.split(' ').next() == Some(name))
            .unwrap_or_else(|| panic!("no record {name} in kafka-records.txt"));
        let fields: Vec<&str> = line.split(' ').collect();
        let value = (fields[2] != "null").then(|| hex(fields[2]));
        (hex(fields[1]), value)
    }

    #[test]
    fn offset_commits_match_kafka_byte_for_byte() {
        let (key, value) = kafka_record("offset_commit");
        assert_eq!(offset_commit_key("g", "t", 3).as_ref(), key.as_slice());
        let offset = OffsetAndMetadata {
            offset: 42,
            leader_epoch: 7,
            metadata: "m".into(),
            commit_timestamp_ms: 1000,
            expire_timestamp_ms: None,
        };
        assert_eq!(
            offset_commit_value(&offset).as_ref(),
            value.as_deref().unwrap()
        );

        // A commit by topic id carries it as a tagged field, which is skipped.
        let (_, value) = kafka_record("offset_commit_topic_id");
        assert_eq!(
            decode_offset_commit_value(value.as_deref().unwrap()).unwrap(),
            offset
        );

        let (_, value) = kafka_record("offset_commit_no_epoch");
        let offset = OffsetAndMetadata {
            leader_epoch: -1,
            metadata: String::new(),
            ..offset
        };
        assert_eq!(
            offset_commit_value(&offset).as_ref(),
            value.as_deref().unwrap()
        );

        let (_, value) = kafka_record("offset_commit_expiry");
        let offset = OffsetAndMetadata {
            offset: 5,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 10,
            expire_timestamp_ms: Some(20),
        };
        assert_eq!(
            offset_commit_value(&offset).as_ref(),
            value.as_deref().unwrap()
        );
        assert_eq!(
            decode_offset_commit_value(value.as_deref().unwrap()).unwrap(),
            offset
        );

        let (key, value) = kafka_record("offset_commit_tombstone");
        assert_eq!(offset_commit_key("g", "t", 3).as_ref(), key.as_slice());
        assert_eq!(value, None);
    }

    #[test]
    fn group_metadata_matches_kafka_byte_for_byte() {
        let (key, value) = kafka_record("group_metadata");
        assert_eq!(group_metadata_key("grp").as_ref(), key.as_slice());
        let expected = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 1,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 1234,
            members: vec![MemberMetadataValue {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(&[1, 2]),
                assignment: Bytes::from_static(&[3]),
            }],
        };
        assert_eq!(
            group_metadata_value(&expected).as_ref(),
            value.as_deref().unwrap()
        );
        assert_eq!(
            decode_group_metadata_value(value.as_deref().unwrap()).unwrap(),
            expected
        );

        let (_, value) = kafka_record("empty_group_metadata");
        let empty = GroupMetadataValue {
            protocol_type: String::new(),
            generation: 0,
            protocol: None,
            leader: None,
            current_state_timestamp_ms: 1234,
            members: vec![],
        };
        assert_eq!(
            group_metadata_value(&empty).as_ref(),
            value.as_deref().unwrap()
        );

        let (key, value) = kafka_record("group_metadata_tombstone");
        assert_eq!(group_metadata_key("grp").as_ref(), key.as_slice());
        assert_eq!(value, None);
    }
}
