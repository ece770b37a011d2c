//! The leader epoch cache (Kafka's `LeaderEpochFileCache`): for each leader epoch that
//! wrote to this log, the offset of its first record.
//!
//! It is what lets a replica that was partitioned away find where its log diverges from
//! the new leader's (KIP-101, KIP-279): a follower asks "where does epoch E end on your
//! log?" (OffsetForLeaderEpoch, or the diverging epoch of a Fetch response, KIP-595) and
//! truncates to the answer. The cache is kept in memory and in
//! `<partition dir>/leader-epoch-checkpoint`:
//!
//! ```text
//! 0             version
//! 2             number of entries
//! 0 0           <epoch> <start offset>, ascending
//! 3 1204
//! ```
//!
//! Entries stay monotonic in both epoch and start offset: assigning an entry removes the
//! entries it conflicts with (same or larger epoch, same or larger start offset).
//! Truncating the log from the end drops entries that start at or after the new end;
//! raising the log start offset moves the first entry up to it.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::LogError;
use crate::producer_state::write_atomically;

/// The checkpoint file's name inside a partition directory.
pub const LEADER_EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
const CHECKPOINT_VERSION: u32 = 0;

/// "No epoch" in Kafka's protocol (`UNDEFINED_EPOCH`).
pub const UNDEFINED_EPOCH: i32 = -1;
/// "No offset" in Kafka's protocol (`UNDEFINED_EPOCH_OFFSET`).
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// The epochs of one log and where each began.
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    /// epoch → start offset; both strictly increasing.
    epochs: BTreeMap<i32, i64>,
    /// Written since the last sync: a new epoch's entry reaches the disk with the next
    /// log flush, as in Kafka since KAFKA-15046 (recovery re-assigns epochs from the
    /// batches of the segments it recovers, so an entry lost in a power failure comes
    /// back). Truncations are synced at once.
    unsynced: bool,
}

impl LeaderEpochCache {
    /// Loads `<dir>/leader-epoch-checkpoint` (empty when absent).
    pub fn load(dir: &Path) -> Result<LeaderEpochCache, LogError> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT_FILE);
        let epochs = match fs::read_to_string(&path) {
            Ok(text) => parse(&text).map_err(|what| {
                LogError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("malformed {}: {what}", path.display()),
                ))
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(LeaderEpochCache {
            path,
            epochs,
            unsynced: false,
        })
    }

    /// An empty cache that lives only in memory until the first write.
    pub fn empty(dir: &Path) -> LeaderEpochCache {
        LeaderEpochCache {
            path: dir.join(LEADER_EPOCH_CHECKPOINT_FILE),
            epochs: BTreeMap::new(),
            unsynced: false,
        }
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> Vec<(i32, i64)> {
        self.epochs.iter().map(|(e, o)| (*e, *o)).collect()
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.keys().next_back().copied()
    }

    /// Records that `epoch` began at `start_offset`. Returns whether the cache changed
    /// (and was written). A no-op when `epoch` is already the latest with an equal or
    /// earlier start.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<bool, LogError> {
        if epoch < 0 || start_offset < 0 {
            return Ok(false);
        }
        if let Some((&latest, &latest_start)) = self.epochs.iter().next_back()
            && latest == epoch
            && start_offset >= latest_start
        {
            return Ok(false);
        }
        // Drop what the new entry contradicts, newest first, until an entry that is
        // strictly older in both epoch and offset.
        while let Some((&e, &o)) = self.epochs.iter().next_back() {
            if e >= epoch || o >= start_offset {
                self.epochs.remove(&e);
            } else {
                break;
            }
        }
        self.epochs.insert(epoch, start_offset);
        self.write(false)?;
        Ok(true)
    }

    /// Syncs the file if an assignment was written since the last sync.
    pub fn flush(&mut self) -> Result<(), LogError> {
        if self.unsynced {
            self.write(true)?;
        }
        Ok(())
    }

    /// Where `requested_epoch` ends on a log whose end offset is `log_end_offset`, as
    /// `(epoch, end offset)` — Kafka's `endOffsetFor`:
    /// - the latest epoch ends at the log end offset;
    /// - an older known epoch ends where the next larger epoch starts, answered with the
    ///   largest epoch ≤ the requested one;
    /// - an epoch older than every entry ends where the first entry starts;
    /// - an unknown or undefined epoch gives `(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)`.
    pub fn end_offset_for(&self, requested_epoch: i32, log_end_offset: i64) -> (i32, i64) {
        if requested_epoch == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested_epoch) {
            return (requested_epoch, log_end_offset);
        }
        let Some((_, &higher_start)) = self.epochs.range(requested_epoch + 1..).next() else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        match self.epochs.range(..=requested_epoch).next_back() {
            Some((&floor, _)) => (floor, higher_start),
            None => (requested_epoch, higher_start),
        }
    }

    /// The epoch that wrote `offset`, if known.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.epochs
            .iter()
            .rev()
            .find(|(_, start)| **start <= offset)
            .map(|(e, _)| *e)
    }

    /// The log was truncated to end at `end_offset`: drop epochs that start at or after it.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<(), LogError> {
        let before = self.epochs.len();
        self.epochs.retain(|_, start| *start < end_offset);
        if self.epochs.len() != before {
            self.write(true)?;
        }
        Ok(())
    }

    /// The log now starts at `start_offset`: drop epochs that ended before it and move the
    /// epoch in force at `start_offset` to begin there.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<(), LogError> {
        let covered: Vec<(i32, i64)> = self
            .epochs
            .iter()
            .take_while(|(_, start)| **start <= start_offset)
            .map(|(e, o)| (*e, *o))
            .collect();
        let Some(&(last_epoch, last_start)) = covered.last() else {
            return Ok(());
        };
        if covered.len() == 1 && last_start == start_offset {
            return Ok(());
        }
        for (e, _) in &covered {
            self.epochs.remove(e);
        }
        self.epochs.insert(last_epoch, start_offset);
        self.write(true)
    }

    /// Forgets every epoch (the log was emptied and restarted at a new offset).
    pub fn clear(&mut self) -> Result<(), LogError> {
        if self.epochs.is_empty() && !self.path.exists() {
            return Ok(());
        }
        self.epochs.clear();
        self.write(true)
    }

    fn write(&mut self, sync: bool) -> Result<(), LogError> {
        let mut text = format!("{CHECKPOINT_VERSION}\n{}\n", self.epochs.len());
        for (epoch, offset) in &self.epochs {
            text.push_str(&format!("{epoch} {offset}\n"));
        }
        match write_atomically(&self.path, text.as_bytes(), sync) {
            // The partition directory is being deleted: nothing left to record.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => {
                other?;
                self.unsynced = !sync;
                Ok(())
            }
        }
    }
}

fn parse(text: &str) -> Result<BTreeMap<i32, i64>, String> {
    let mut lines = text.lines();
    let version: u32 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("missing version")?;
    if version != CHECKPOINT_VERSION {
        return Err(format!("unknown version {version}"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("missing entry count")?;
    let mut epochs = BTreeMap::new();
    for _ in 0..count {
        let line = lines.next().ok_or("fewer entries than the count")?;
        let mut fields = line.split_whitespace();
        let epoch: i32 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("bad entry '{line}'"))?;
        let offset: i64 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("bad entry '{line}'"))?;
        epochs.insert(epoch, offset);
    }
    Ok(epochs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> (tempfile::TempDir, LeaderEpochCache) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochCache::empty(dir.path());
        for (e, o) in entries {
            c.assign(*e, *o).unwrap();
        }
        (dir, c)
    }

    #[test]
    fn assign_keeps_entries_monotonic() {
        let (_d, mut c) = cache(&[(0, 0), (2, 10), (4, 20)]);
        // The same epoch at a later offset changes nothing.
        assert!(!c.assign(4, 25).unwrap());
        // A new epoch starting inside epoch 2 drops epoch 4 (it started later).
        assert!(c.assign(3, 15).unwrap());
        assert_eq!(c.entries(), [(0, 0), (2, 10), (3, 15)]);
        // A larger epoch at an offset below existing starts replaces them.
        assert!(c.assign(5, 5).unwrap());
        assert_eq!(c.entries(), [(0, 0), (5, 5)]);
        // A smaller epoch than the latest replaces every later one.
        assert!(c.assign(1, 7).unwrap());
        assert_eq!(c.entries(), [(0, 0), (1, 7)]);
        // Negative values are ignored.
        assert!(!c.assign(-1, 9).unwrap());
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let (_d, c) = cache(&[(1, 0), (3, 100), (6, 250)]);
        assert_eq!(
            c.end_offset_for(6, 400),
            (6, 400),
            "latest epoch ends at LEO"
        );
        assert_eq!(c.end_offset_for(3, 400), (3, 250));
        assert_eq!(c.end_offset_for(4, 400), (3, 250), "unknown middle epoch");
        assert_eq!(c.end_offset_for(0, 400), (0, 0), "older than every entry");
        assert_eq!(
            c.end_offset_for(7, 400),
            (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
        );
        assert_eq!(
            c.end_offset_for(UNDEFINED_EPOCH, 400),
            (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
        );
        let (_d, empty) = cache(&[]);
        assert_eq!(
            empty.end_offset_for(0, 5),
            (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
        );
    }

    #[test]
    fn truncation_from_both_ends() {
        let (_d, mut c) = cache(&[(1, 0), (3, 100), (6, 250)]);
        c.truncate_from_end(250).unwrap();
        assert_eq!(c.entries(), [(1, 0), (3, 100)]);
        c.truncate_from_end(500).unwrap();
        assert_eq!(c.entries(), [(1, 0), (3, 100)]);
        c.truncate_from_start(120).unwrap();
        assert_eq!(c.entries(), [(3, 120)]);
        c.truncate_from_start(50).unwrap();
        assert_eq!(c.entries(), [(3, 120)]);
        assert_eq!(c.epoch_for_offset(130), Some(3));
        assert_eq!(c.epoch_for_offset(10), None);
        c.clear().unwrap();
        assert!(c.entries().is_empty());
    }

    #[test]
    fn checkpoint_round_trips_in_kafkas_format() {
        let (dir, _c) = cache(&[(0, 0), (2, 17)]);
        let text = fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE)).unwrap();
        assert_eq!(text, "0\n2\n0 0\n2 17\n");
        let loaded = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(loaded.entries(), [(0, 0), (2, 17)]);
        fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE), "0\n3\n0 0\n").unwrap();
        assert!(LeaderEpochCache::load(dir.path()).is_err());
    }
}
