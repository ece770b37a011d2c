//! The two sparse indexes of a segment: `OffsetIndex` (`.index`) and `TimeIndex`
//! (`.timeindex`).
//!
//! Both are kept twice: as a `Vec` in memory, so lookups never touch the filesystem, and as
//! a file of fixed-size big-endian entries, so a clean restart need not rebuild them. New
//! entries reach the file when the segment is flushed, rolled or closed (one positional
//! write for all entries since the last time), as Kafka's memory-mapped indexes reach the
//! disk when they are flushed: after a crash, recovery rebuilds the indexes of every
//! segment past the recovery point anyway. No index file is held open between those
//! writes, so a partition costs one open file (its active `.log`) rather than three,
//! which is what lets a broker hold 10,000 partitions within a common descriptor limit.
//! The file of the active segment is preallocated to
//! `segment.index.bytes` and trimmed to its real size when the segment is rolled or closed,
//! as Kafka does; zero-filled slots past the last entry are never valid entries (relative
//! offsets strictly increase and the first entry never sits at position 0), which is how a
//! loader tells the real entries from the preallocated tail.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One fixed-size index entry.
trait Entry: Copy + std::fmt::Debug {
    const SIZE: usize;
    fn write_to(&self, out: &mut Vec<u8>);
    fn read_from(bytes: &[u8]) -> Self;
    /// Whether `self` may follow `prev` (entries are strictly increasing).
    fn follows(&self, prev: &Self) -> bool;
    fn is_zero(&self) -> bool;
}

/// `.index` entry: offset relative to the segment's base offset, and the byte position of
/// the batch in the `.log` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OffsetPosition {
    relative_offset: u32,
    position: u32,
}

impl Entry for OffsetPosition {
    const SIZE: usize = 8;

    fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }

    fn read_from(b: &[u8]) -> Self {
        OffsetPosition {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    fn follows(&self, prev: &Self) -> bool {
        self.relative_offset > prev.relative_offset && self.position > prev.position
    }

    fn is_zero(&self) -> bool {
        self.relative_offset == 0 && self.position == 0
    }
}

/// `.timeindex` entry: the largest timestamp seen up to (and first reached at) the batch
/// ending at `relative_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimestampOffset {
    timestamp: i64,
    relative_offset: u32,
}

impl Entry for TimestampOffset {
    const SIZE: usize = 12;

    fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }

    fn read_from(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimestampOffset {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }

    fn follows(&self, prev: &Self) -> bool {
        self.timestamp > prev.timestamp && self.relative_offset >= prev.relative_offset
    }

    fn is_zero(&self) -> bool {
        self.timestamp == 0 && self.relative_offset == 0
    }
}

/// The file and in-memory copy shared by both index kinds.
#[derive(Debug)]
struct IndexFile<E: Entry> {
    path: PathBuf,
    entries: Vec<E>,
    /// How many of `entries` are already written to the file.
    persisted: usize,
    /// `segment.index.bytes / entry size`: a full index forces a roll.
    max_entries: usize,
    /// Whether the file is currently extended to `max_entries` (active segment only).
    preallocated: bool,
    /// Entries written since the last sync.
    unsynced: bool,
}

impl<E: Entry> IndexFile<E> {
    fn open(path: &Path, max_index_bytes: u32) -> io::Result<IndexFile<E>> {
        let file = Self::open_file(path)?;
        let len = file.metadata()?.len() as usize;
        let mut raw = vec![0u8; len - len % E::SIZE];
        file.read_exact_at(&mut raw, 0)?;
        let mut entries: Vec<E> = Vec::with_capacity(raw.len() / E::SIZE);
        for chunk in raw.chunks_exact(E::SIZE) {
            let entry = E::read_from(chunk);
            let valid = match entries.last() {
                None => !entry.is_zero(),
                Some(prev) => entry.follows(prev),
            };
            if !valid {
                break;
            }
            entries.push(entry);
        }
        let max_entries = (max_index_bytes as usize / E::SIZE).max(1);
        let persisted = entries.len();
        Ok(IndexFile {
            path: path.to_path_buf(),
            entries,
            persisted,
            max_entries,
            preallocated: false,
            unsynced: false,
        })
    }

    fn open_file(path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    }

    /// The file, opened for one operation and closed when dropped.
    fn file(&self) -> io::Result<File> {
        Self::open_file(&self.path)
    }

    fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    fn push(&mut self, entry: E) {
        self.entries.push(entry);
    }

    /// Writes the entries appended since the last call with one positional write; the
    /// file, if it had to be opened, for a following sync.
    fn persist(&mut self) -> io::Result<Option<File>> {
        if self.persisted == self.entries.len() {
            return Ok(None);
        }
        let mut buf = Vec::with_capacity((self.entries.len() - self.persisted) * E::SIZE);
        for entry in &self.entries[self.persisted..] {
            entry.write_to(&mut buf);
        }
        let file = self.file()?;
        file.write_all_at(&buf, (self.persisted * E::SIZE) as u64)?;
        self.persisted = self.entries.len();
        self.unsynced = true;
        Ok(Some(file))
    }

    /// Drops the entries from `len` on, in memory and on disk.
    fn truncate_entries(&mut self, len: usize) -> io::Result<()> {
        if len >= self.entries.len() {
            return Ok(());
        }
        self.entries.truncate(len);
        if self.persisted > len {
            self.persisted = len;
            let file = self.file()?;
            file.set_len((len * E::SIZE) as u64)?;
            if self.preallocated {
                file.set_len((self.max_entries * E::SIZE) as u64)?;
            }
        }
        Ok(())
    }

    /// Drops every entry and empties the file, whatever it held (even bytes that never
    /// parsed as entries).
    fn clear(&mut self) -> io::Result<()> {
        self.entries.clear();
        self.persisted = 0;
        let file = self.file()?;
        file.set_len(0)?;
        if self.preallocated {
            file.set_len((self.max_entries * E::SIZE) as u64)?;
        }
        Ok(())
    }

    fn preallocate(&mut self) -> io::Result<()> {
        self.file()?.set_len((self.max_entries * E::SIZE) as u64)?;
        self.preallocated = true;
        Ok(())
    }

    fn trim(&mut self) -> io::Result<()> {
        let file = match self.persist()? {
            Some(file) => file,
            None => self.file()?,
        };
        file.set_len((self.entries.len() * E::SIZE) as u64)?;
        self.preallocated = false;
        Ok(())
    }

    /// Writes what the file lacks, and syncs whatever was written since the last sync.
    fn flush(&mut self) -> io::Result<()> {
        let file = self.persist()?;
        if !self.unsynced {
            return Ok(());
        }
        match file {
            Some(file) => file.sync_data()?,
            None => self.file()?.sync_data()?,
        }
        self.unsynced = false;
        Ok(())
    }

    fn rename_to(&mut self, path: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, path)?;
        self.path = path.to_path_buf();
        Ok(())
    }
}

/// Maps offsets to byte positions in the segment's `.log` file (Kafka's `OffsetIndex`).
#[derive(Debug)]
pub struct OffsetIndex {
    base_offset: i64,
    inner: IndexFile<OffsetPosition>,
}

impl OffsetIndex {
    /// Opens (or creates) the index file and loads its valid entries.
    pub fn open(path: &Path, base_offset: i64, max_index_bytes: u32) -> io::Result<OffsetIndex> {
        Ok(OffsetIndex {
            base_offset,
            inner: IndexFile::open(path, max_index_bytes)?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn entries(&self) -> usize {
        self.inner.entries.len()
    }

    pub fn is_full(&self) -> bool {
        self.inner.is_full()
    }

    /// Largest offset indexed so far.
    pub fn last_offset(&self) -> Option<i64> {
        self.inner
            .entries
            .last()
            .map(|e| self.base_offset + i64::from(e.relative_offset))
    }

    /// Records that the batch ending at `offset` starts at byte `position`. Entries must be
    /// strictly increasing; an entry that is not is ignored rather than corrupting lookups.
    pub fn append(&mut self, offset: i64, position: u32) {
        let relative_offset = (offset - self.base_offset) as u32;
        let entry = OffsetPosition {
            relative_offset,
            position,
        };
        let ok = match self.inner.entries.last() {
            None => !entry.is_zero(),
            Some(prev) => entry.follows(prev),
        };
        if ok && !self.inner.is_full() {
            self.inner.push(entry);
        }
    }

    /// The greatest indexed `(offset, position)` with offset ≤ `target`, or the segment's
    /// start when there is none. Scanning forward from there finds `target`.
    pub fn lookup(&self, target: i64) -> (i64, u32) {
        let relative = target - self.base_offset;
        if relative < 0 {
            return (self.base_offset, 0);
        }
        let relative = relative.min(i64::from(u32::MAX)) as u32;
        let entries = &self.inner.entries;
        let idx = entries.partition_point(|e| e.relative_offset <= relative);
        if idx == 0 {
            (self.base_offset, 0)
        } else {
            let e = entries[idx - 1];
            (self.base_offset + i64::from(e.relative_offset), e.position)
        }
    }

    /// Removes every entry for an offset ≥ `offset` (used when truncating the log).
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let relative = (offset - self.base_offset).max(0);
        let keep = self
            .inner
            .entries
            .partition_point(|e| i64::from(e.relative_offset) < relative);
        self.inner.truncate_entries(keep)
    }

    /// Drops entries beyond the first `len` (rollback of a failed append).
    pub fn truncate_entries(&mut self, len: usize) -> io::Result<()> {
        self.inner.truncate_entries(len)
    }

    pub fn reset(&mut self) -> io::Result<()> {
        self.inner.clear()
    }

    /// Writes the entries not yet in the file.
    pub fn persist(&mut self) -> io::Result<()> {
        self.inner.persist().map(drop)
    }

    pub fn preallocate(&mut self) -> io::Result<()> {
        self.inner.preallocate()
    }

    pub fn trim(&mut self) -> io::Result<()> {
        self.inner.trim()
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    pub fn rename_to(&mut self, path: &Path) -> io::Result<()> {
        self.inner.rename_to(path)
    }

    /// Checks every entry lies inside a log of `log_size` bytes (Kafka's sanity check on a
    /// trusted index before it is used).
    pub fn is_consistent_with(&self, log_size: u64) -> bool {
        self.inner
            .entries
            .iter()
            .all(|e| u64::from(e.position) < log_size)
    }
}

/// Maps timestamps to offsets (Kafka's `TimeIndex`): each entry says the largest timestamp
/// up to that offset; timestamps only ever increase from entry to entry.
#[derive(Debug)]
pub struct TimeIndex {
    base_offset: i64,
    inner: IndexFile<TimestampOffset>,
}

impl TimeIndex {
    /// Opens (or creates) the index file and loads its valid entries.
    pub fn open(path: &Path, base_offset: i64, max_index_bytes: u32) -> io::Result<TimeIndex> {
        Ok(TimeIndex {
            base_offset,
            inner: IndexFile::open(path, max_index_bytes)?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn entries(&self) -> usize {
        self.inner.entries.len()
    }

    pub fn is_full(&self) -> bool {
        self.inner.is_full()
    }

    /// The last `(timestamp, offset)` entry.
    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.inner
            .entries
            .last()
            .map(|e| (e.timestamp, self.base_offset + i64::from(e.relative_offset)))
    }

    /// Adds an entry if `timestamp` is newer than the last one (Kafka only indexes
    /// increasing timestamps). `force` ignores the size limit: it is used once, when the
    /// segment becomes inactive, to record its final largest timestamp.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64, force: bool) {
        let entry = TimestampOffset {
            timestamp,
            relative_offset: (offset - self.base_offset) as u32,
        };
        let ok = match self.inner.entries.last() {
            None => !entry.is_zero(),
            Some(prev) => entry.follows(prev),
        };
        if ok && (force || !self.inner.is_full()) {
            self.inner.push(entry);
        }
    }

    /// The entry with the largest timestamp ≤ `target`: every record before its offset is
    /// older than `target`, so a scan for `target` may start there. `None` means scan from
    /// the segment's start.
    pub fn lookup(&self, target: i64) -> Option<i64> {
        let entries = &self.inner.entries;
        let idx = entries.partition_point(|e| e.timestamp <= target);
        if idx == 0 {
            None
        } else {
            Some(self.base_offset + i64::from(entries[idx - 1].relative_offset))
        }
    }

    /// Removes every entry for an offset ≥ `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let relative = (offset - self.base_offset).max(0);
        let keep = self
            .inner
            .entries
            .partition_point(|e| i64::from(e.relative_offset) < relative);
        self.inner.truncate_entries(keep)
    }

    pub fn truncate_entries(&mut self, len: usize) -> io::Result<()> {
        self.inner.truncate_entries(len)
    }

    pub fn reset(&mut self) -> io::Result<()> {
        self.inner.clear()
    }

    /// Writes the entries not yet in the file.
    pub fn persist(&mut self) -> io::Result<()> {
        self.inner.persist().map(drop)
    }

    pub fn preallocate(&mut self) -> io::Result<()> {
        self.inner.preallocate()
    }

    pub fn trim(&mut self) -> io::Result<()> {
        self.inner.trim()
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    pub fn rename_to(&mut self, path: &Path) -> io::Result<()> {
        self.inner.rename_to(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_finds_greatest_entry_at_or_below_target() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = OffsetIndex::open(&dir.path().join("a.index"), 100, 1024).unwrap();
        index.append(110, 4200);
        index.append(120, 8400);
        index.append(130, 12600);
        assert_eq!(index.lookup(99), (100, 0));
        assert_eq!(index.lookup(105), (100, 0));
        assert_eq!(index.lookup(110), (110, 4200));
        assert_eq!(index.lookup(119), (110, 4200));
        assert_eq!(index.lookup(120), (120, 8400));
        assert_eq!(index.lookup(1_000_000), (130, 12600));
    }

    #[test]
    fn entries_survive_reopen_and_preallocated_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.index");
        {
            let mut index = OffsetIndex::open(&path, 0, 800).unwrap();
            index.preallocate().unwrap();
            index.append(5, 100);
            index.append(9, 200);
            index.persist().unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 800);
        }
        let mut index = OffsetIndex::open(&path, 0, 800).unwrap();
        assert_eq!(index.entries(), 2);
        assert_eq!(index.lookup(9), (9, 200));
        index.trim().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
    }

    #[test]
    fn offset_index_fills_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = OffsetIndex::open(&dir.path().join("c.index"), 0, 24).unwrap();
        for i in 1..=3 {
            assert!(!index.is_full());
            index.append(i, i as u32 * 10);
        }
        assert!(index.is_full());
        index.append(4, 40);
        assert_eq!(index.entries(), 3);
    }

    #[test]
    fn truncation_drops_entries_in_memory_and_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.index");
        let mut index = OffsetIndex::open(&path, 0, 1024).unwrap();
        index.append(10, 100);
        index.append(20, 200);
        index.append(30, 300);
        index.persist().unwrap();
        index.truncate_to(20).unwrap();
        assert_eq!(index.entries(), 1);
        drop(index);
        assert_eq!(OffsetIndex::open(&path, 0, 1024).unwrap().entries(), 1);
    }

    #[test]
    fn time_index_only_accepts_increasing_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TimeIndex::open(&dir.path().join("e.timeindex"), 50, 1200).unwrap();
        index.maybe_append(1000, 55, false);
        index.maybe_append(900, 60, false);
        index.maybe_append(1000, 61, false);
        index.maybe_append(2000, 70, false);
        assert_eq!(index.entries(), 2);
        assert_eq!(index.lookup(999), None);
        assert_eq!(index.lookup(1000), Some(55));
        assert_eq!(index.lookup(1999), Some(55));
        assert_eq!(index.lookup(5000), Some(70));
        assert_eq!(index.last_entry(), Some((2000, 70)));
    }
}
