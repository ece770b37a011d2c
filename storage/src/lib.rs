//! Kafka's log storage: how a broker keeps each partition on disk.
//!
//! # Layout
//!
//! Every partition is a directory `<log.dir>/<topic>-<partition>` (the partition number is
//! after the last `-`; topic names may contain `-`, `.` and `_`). Its log is split into
//! **segments**, each named by the 20-digit, zero-padded offset of its first record (its
//! *base offset*):
//!
//! ```text
//! orders-0/
//!   00000000000000000000.log        record batches, back to back, exactly as on the wire
//!   00000000000000000000.index      OffsetIndex: (relative offset u32, position u32) BE
//!   00000000000000000000.timeindex  TimeIndex:   (timestamp i64, relative offset u32) BE
//!   00000000000000052311.log        ... the active segment: the only one appended to
//!   00000000000000052311.index
//!   00000000000000052311.timeindex
//!   00000000000000052311.snapshot   producer state as of offset 52311
//!   leader-epoch-checkpoint         "0\n<count>\n<epoch> <start offset>\n..." (see [`leader_epoch`])
//! .kafka_cleanshutdown              in <log.dir>: written by a clean shutdown
//! recovery-point-offset-checkpoint  in <log.dir>: "0\n<count>\n<topic> <partition> <offset>\n..."
//! log-start-offset-checkpoint       in <log.dir>: same format
//! replication-offset-checkpoint     in <log.dir>: same format, the high watermarks
//! ```
//!
//! The `.log` file holds magic v2 record batches (see [`batch`]). The leader assigns
//! offsets by rewriting each batch's `baseOffset` (and `partitionLeaderEpoch`); both lie
//! outside the CRC, so the client's checksum stays valid and the bytes are stored and
//! later served to consumers unchanged.
//!
//! The indexes are **sparse**: after more than `index.interval.bytes` (4096) bytes have been
//! appended since the last entry, the next batch gets an offset-index entry (its last
//! offset → its byte position) and the time index records the largest timestamp seen so
//! far, if it grew. To find an offset, binary-search the greatest entry ≤ the target and
//! scan forward at most about one interval. Indexes live in memory (a `Vec`) and on disk;
//! the active segment's index files are preallocated to `segment.index.bytes` and trimmed
//! when the segment is rolled. A full index forces a roll, as do `segment.bytes`,
//! `segment.ms` and offsets too far from the base offset for a 32-bit relative offset.
//!
//! # Durability and recovery
//!
//! Appends go to the page cache with one `pwrite`; `fsync` happens on `flush` (driven by
//! `flush.messages` / `flush.ms`, by default never: like Kafka, durability comes from
//! replication). Each log tracks its **recovery point**: everything below it is known to
//! be on disk. The `LogManager` checkpoints recovery points and log start offsets, and a
//! clean shutdown writes `.kafka_cleanshutdown` after flushing everything.
//!
//! At startup the marker decides:
//! - **present**: the files are trusted. Indexes are loaded as they are (and rebuilt only
//!   if missing or inconsistent), the producer state comes from the snapshot written at
//!   close. The marker is then removed, so a crash from here on is noticed.
//! - **absent**: the broker crashed. Every segment from the one holding the recovery point
//!   onwards (always including the active one) is **recovered**: each batch is checked
//!   for a sane length, magic 2, a matching CRC-32C and increasing offsets; the segment is
//!   truncated at the first batch that fails (a torn write or garbage from a crash), its
//!   indexes are rebuilt from the valid batches, and any later segments are deleted
//!   (a log has no holes). The producer state is then rebuilt from the newest snapshot at
//!   or below the new log end offset plus a replay of the batches after it.
//!
//! Interrupted file operations are finished at open: `.deleted` and `.cleaned` files are
//! removed, a `.swap` (a compacted segment whose swap-in was cut short) replaces its
//! original, and `<topic>-<partition>.<id>-delete` directories are removed by the
//! `LogManager`.
//!
//! # Compaction
//!
//! Logs with `cleanup.policy=compact` are compacted by [`Log::clean`] (Kafka's
//! `LogCleaner`): only the latest record per key survives, tombstones after
//! `delete.retention.ms`. See [`cleaner`].
//!
//! A failed write (ENOSPC, EIO) is rolled back before the error is returned: the segment
//! is cut back to its previous size and the new index entries dropped, so nothing already
//! appended is lost and the next append works once space is free.
//!
//! # Idempotent producers
//!
//! See [`producer_state`]: per producer id the epoch and the last five batches'
//! sequence ranges, so a retried batch is answered with its original offsets instead of
//! being appended twice, also after a crash (the state is rebuilt from the log).

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod config;
pub mod error;
pub mod index;
pub mod leader_epoch;
pub mod log;
pub mod manager;
pub mod producer_state;
pub mod records;
pub mod segment;
pub mod txn;

pub use batch::{BatchHeader, RecordBatch};
pub use cleaner::CleanStats;
pub use config::{CleanupPolicy, LogConfig};
pub use error::LogError;
pub use index::{OffsetIndex, TimeIndex};
pub use leader_epoch::{LeaderEpochCache, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};
pub use log::{FetchDataInfo, Log, LogAppendInfo};
pub use manager::LogManager;
pub use producer_state::{ProducerStateManager, Verification, VerificationGuard};
pub use segment::{FileRegion, LogSegment};
pub use txn::{AbortedTxn, ControlType, EndTxnMarker};

#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod test_util;
