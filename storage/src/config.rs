//! `LogConfig`: the per-topic settings that govern one partition's log, with Kafka's
//! defaults.

/// `cleanup.policy`: what happens to old segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CleanupPolicy {
    /// Delete whole segments by `retention.ms` / `retention.bytes`.
    #[default]
    Delete,
    /// Keep the latest record per key (log compaction).
    Compact,
    /// Both: compact, and also delete by retention.
    CompactDelete,
}

impl CleanupPolicy {
    /// Parses Kafka's config value (`delete`, `compact`, `compact,delete`, in any order).
    pub fn parse(value: &str) -> Option<CleanupPolicy> {
        let mut delete = false;
        let mut compact = false;
        for part in value.split(',').map(str::trim) {
            match part {
                "delete" => delete = true,
                "compact" => compact = true,
                _ => return None,
            }
        }
        match (compact, delete) {
            (true, true) => Some(CleanupPolicy::CompactDelete),
            (true, false) => Some(CleanupPolicy::Compact),
            (false, true) => Some(CleanupPolicy::Delete),
            (false, false) => None,
        }
    }

    /// Whether retention by time and size deletes segments.
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }

    /// Whether the log cleaner compacts this log (and keys are mandatory).
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }

    /// Kafka's spelling of the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        }
    }
}

/// The settings of one log. Field names are Kafka's topic configs with `.` → `_`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first record is this old.
    pub segment_ms: i64,
    /// `segment.index.bytes`: size limit of each `.index`/`.timeindex`; a full index rolls.
    pub segment_index_bytes: u32,
    /// `index.interval.bytes`: bytes appended between two sparse index entries.
    pub index_interval_bytes: u32,
    /// `retention.ms`: delete segments whose newest record is older; -1 keeps forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest segments while the log is larger; -1 = unlimited.
    pub retention_bytes: i64,
    /// `max.message.bytes`: the largest record batch accepted.
    pub max_message_bytes: u32,
    /// `flush.messages`: fsync after this many appended records.
    pub flush_interval_messages: u64,
    /// `flush.ms`: fsync when the last flush is this old.
    pub flush_interval_ms: i64,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `min.insync.replicas`: stored here for the broker's acks=all check.
    pub min_insync_replicas: i32,
    /// `file.delete.delay.ms`: how long a deleted segment lingers as `.deleted`.
    pub file_delete_delay_ms: i64,
    /// `min.cleanable.dirty.ratio`: compaction starts when this share of the log is dirty.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: records younger than this are never compacted.
    pub min_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long tombstones survive after their segment was cleaned.
    pub delete_retention_ms: i64,
    /// `producer.id.expiration.ms` (a broker setting in Kafka): idempotent producer state
    /// is forgotten once the producer's last batch is this old, which bounds its memory.
    pub producer_id_expiration_ms: i64,
    /// `transaction.partition.verification.enable` (a broker setting in Kafka): a
    /// producer's write that would open a transaction on the partition is appended only
    /// once the transaction coordinator confirmed the partition is in the transaction
    /// (KIP-890 part 1; see [`crate::producer_state`]).
    pub transaction_partition_verification_enable: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1024 * 1024 + 12,
            flush_interval_messages: u64::MAX,
            flush_interval_ms: i64::MAX,
            cleanup_policy: CleanupPolicy::Delete,
            min_insync_replicas: 1,
            file_delete_delay_ms: 60_000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            producer_id_expiration_ms: 24 * 60 * 60 * 1000,
            transaction_partition_verification_enable: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_policy_parses_kafka_spellings() {
        assert_eq!(CleanupPolicy::parse("delete"), Some(CleanupPolicy::Delete));
        assert_eq!(
            CleanupPolicy::parse("compact"),
            Some(CleanupPolicy::Compact)
        );
        assert_eq!(
            CleanupPolicy::parse("delete, compact"),
            Some(CleanupPolicy::CompactDelete)
        );
        assert_eq!(CleanupPolicy::parse("bogus"), None);
        assert_eq!(CleanupPolicy::parse(""), None);
    }
}
