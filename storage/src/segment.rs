//! `LogSegment`: one `.log` file of back-to-back record batches plus its `.index` and
//! `.timeindex`, named by the 20-digit base offset of its first batch.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{BatchHeader, RECORD_BATCH_OVERHEAD, RecordBatch};
use crate::error::LogError;
use crate::index::{OffsetIndex, TimeIndex};
use crate::records;
use crate::txn::{AbortedTxn, TXN_INDEX_FILE_SUFFIX, TransactionIndex};

/// Suffix of the record data file.
pub const LOG_FILE_SUFFIX: &str = ".log";
/// Suffix of the offset index.
pub const INDEX_FILE_SUFFIX: &str = ".index";
/// Suffix of the time index.
pub const TIME_INDEX_FILE_SUFFIX: &str = ".timeindex";

/// Smallest window a fetch reads at once: small `max_bytes` fetches would otherwise need
/// several reads just to walk from the index entry to the fetch offset.
const MIN_READ_WINDOW_BYTES: usize = 16 * 1024;
/// What [`LogSegment::read_region`] reads at a time: batch headers only, several of them
/// when batches are small.
const HEADER_READ_WINDOW_BYTES: usize = 4 * 1024;
/// How much a sequential scan (recovery, producer-state replay) reads per syscall.
const SCAN_CHUNK_BYTES: usize = 1024 * 1024;

/// `00000000000000000042`: Kafka names every segment file by its base offset this way.
pub fn filename_prefix(offset: i64) -> String {
    format!("{offset:020}")
}

/// `<dir>/<20-digit offset><suffix>`.
pub fn file_path(dir: &Path, offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{}{suffix}", filename_prefix(offset)))
}

/// What a scan visitor wants next.
pub(crate) enum Scan {
    Continue,
    Stop,
}

/// Where a scan ended.
#[derive(Debug)]
pub(crate) enum ScanEnd {
    /// Reached the end of the segment (or the visitor stopped).
    Done,
    /// Found a torn or invalid batch starting at `position`.
    Invalid { position: u64, reason: LogError },
}

/// Records left in a segment file: `len` bytes from `position`. The file stays open while
/// a region refers to it, so a segment deleted meanwhile (retention, compaction) is still
/// read whole; a file truncated meanwhile (a follower's truncation) is shorter than the
/// region, which [`FileRegion::read`] reports and a sender must treat as an error.
#[derive(Debug, Clone)]
pub struct FileRegion {
    pub file: Arc<File>,
    pub position: u64,
    pub len: usize,
}

impl FileRegion {
    /// The region's bytes, read into memory.
    pub fn read(&self) -> Result<Bytes, LogError> {
        Ok(Bytes::from(read_fresh(
            &self.file,
            self.position,
            self.len,
        )?))
    }
}

/// `len` bytes of `file` from `position`, read into memory that is not zeroed first: a
/// fetch reads up to a megabyte per partition, and clearing it before `pread` overwrites
/// it cost as much as the read. Fails with `UnexpectedEof` if the file ends first.
fn read_fresh(file: &File, position: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        let at = position + buf.len() as u64;
        // Reads into the spare capacity and extends the length by what was read.
        let n = rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// Test-only fault injection: the next write stops after this many bytes with ENOSPC, as a
/// full disk would.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct WriteFault {
    pub fail_after_bytes: Option<usize>,
}

/// One segment of a partition's log.
#[derive(Debug)]
pub struct LogSegment {
    base_offset: i64,
    log_path: PathBuf,
    /// Shared with the file regions reads hand out (see [`FileRegion`]).
    log: Arc<File>,
    /// Bytes of whole batches in `.log`; reads never go past it, and appends write here.
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    index_interval_bytes: u32,
    /// Bytes appended since the last index entry; an entry is added once this passes
    /// `index.interval.bytes`, which is what keeps the index sparse.
    bytes_since_last_index_entry: u64,
    /// Offset after the last batch (the base offset when empty).
    next_offset: i64,
    /// Largest batch timestamp in the segment (-1 when none): drives time retention and
    /// ListOffsets, and is written to the time index when the segment goes inactive.
    max_timestamp_so_far: i64,
    /// Last offset of the batch where `max_timestamp_so_far` was first reached.
    offset_of_max_timestamp_so_far: i64,
    /// Timestamp `segment.ms` is measured from: the first batch's max timestamp (Kafka's
    /// rule, so replicas roll at the same records), else the time the segment was created
    /// or opened.
    rolling_based_timestamp: i64,
    /// Bytes cut off by a recovery that `open` had to run (a trusted segment whose files
    /// turned out inconsistent); the log drops the segments after one that lost data.
    truncated_on_open: u64,
    /// The aborted transactions whose markers are in this segment (`.txnindex`).
    txn_index: TransactionIndex,
    #[cfg(test)]
    pub(crate) write_fault: WriteFault,
}

impl LogSegment {
    /// Creates an empty segment (replacing any stale files of the same base offset).
    pub fn create(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u32,
        max_index_bytes: u32,
        now_ms: i64,
    ) -> Result<LogSegment, LogError> {
        let log_path = file_path(dir, base_offset, LOG_FILE_SUFFIX);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)?;
        for suffix in [INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX] {
            remove_if_exists(&file_path(dir, base_offset, suffix))?;
        }
        let offset_index = OffsetIndex::open(
            &file_path(dir, base_offset, INDEX_FILE_SUFFIX),
            base_offset,
            max_index_bytes,
        )?;
        let time_index = TimeIndex::open(
            &file_path(dir, base_offset, TIME_INDEX_FILE_SUFFIX),
            base_offset,
            max_index_bytes,
        )?;
        Ok(LogSegment {
            base_offset,
            log_path,
            log: Arc::new(log),
            size: 0,
            offset_index,
            time_index,
            index_interval_bytes,
            bytes_since_last_index_entry: 0,
            next_offset: base_offset,
            max_timestamp_so_far: -1,
            offset_of_max_timestamp_so_far: base_offset,
            rolling_based_timestamp: now_ms,
            truncated_on_open: 0,
            txn_index: TransactionIndex::create(file_path(
                dir,
                base_offset,
                TXN_INDEX_FILE_SUFFIX,
            ))?,
            #[cfg(test)]
            write_fault: WriteFault::default(),
        })
    }

    /// Opens an existing segment, trusting its files: the indexes are loaded as they are,
    /// and only the tail after the last index entry is read to find the next offset. Use
    /// [`LogSegment::recover`] when the files cannot be trusted.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u32,
        max_index_bytes: u32,
        now_ms: i64,
    ) -> Result<LogSegment, LogError> {
        let log_path = file_path(dir, base_offset, LOG_FILE_SUFFIX);
        let log = OpenOptions::new().read(true).write(true).open(&log_path)?;
        let size = log.metadata()?.len();
        let index_path = file_path(dir, base_offset, INDEX_FILE_SUFFIX);
        let time_index_path = file_path(dir, base_offset, TIME_INDEX_FILE_SUFFIX);
        let indexes_exist = index_path.exists() && time_index_path.exists();
        let offset_index = OffsetIndex::open(&index_path, base_offset, max_index_bytes)?;
        let time_index = TimeIndex::open(&time_index_path, base_offset, max_index_bytes)?;
        let mut segment = LogSegment {
            base_offset,
            log_path,
            log: Arc::new(log),
            size,
            offset_index,
            time_index,
            index_interval_bytes,
            bytes_since_last_index_entry: 0,
            next_offset: base_offset,
            max_timestamp_so_far: -1,
            offset_of_max_timestamp_so_far: base_offset,
            rolling_based_timestamp: now_ms,
            truncated_on_open: 0,
            txn_index: TransactionIndex::open(file_path(dir, base_offset, TXN_INDEX_FILE_SUFFIX))?,
            #[cfg(test)]
            write_fault: WriteFault::default(),
        };
        if !indexes_exist || !segment.offset_index.is_consistent_with(size) {
            // A missing or impossible index is rebuilt, as Kafka does on a failed sanity check.
            segment.truncated_on_open = segment.recover()?;
            return Ok(segment);
        }
        if let Some((ts, offset)) = segment.time_index.last_entry() {
            segment.max_timestamp_so_far = ts;
            segment.offset_of_max_timestamp_so_far = offset;
        }
        if size > 0 {
            let first = segment.read_header(0)?;
            if first.max_timestamp >= 0 {
                segment.rolling_based_timestamp = first.max_timestamp;
            }
        }
        // Walk the tail after the last index entry to learn the next offset and any
        // timestamp newer than the time index knows.
        let (_, tail_start) = segment.offset_index.lookup(i64::MAX);
        let mut next_offset = base_offset;
        let mut max_ts = (
            segment.max_timestamp_so_far,
            segment.offset_of_max_timestamp_so_far,
        );
        let end = segment.scan_from(u64::from(tail_start), false, |_, batch| {
            next_offset = batch.next_offset();
            if batch.max_timestamp() > max_ts.0 {
                max_ts = (batch.max_timestamp(), batch.last_offset());
            }
            Ok(Scan::Continue)
        })?;
        if let ScanEnd::Invalid { .. } = end {
            // The files said clean but the tail is not: fall back to full recovery.
            segment.truncated_on_open = segment.recover()?;
            return Ok(segment);
        }
        segment.next_offset = next_offset.max(base_offset);
        (
            segment.max_timestamp_so_far,
            segment.offset_of_max_timestamp_so_far,
        ) = max_ts;
        Ok(segment)
    }

    /// Kafka's segment recovery: validates every batch from the start (sane length, magic
    /// 2, CRC-32C, offsets increasing), rebuilds both indexes from the valid batches and
    /// truncates the file at the first torn or invalid batch. Returns the bytes cut off.
    pub fn recover(&mut self) -> Result<u64, LogError> {
        self.recover_with(|_| {})
    }

    /// [`Self::recover`], telling `on_batch` the header of every valid batch.
    pub fn recover_with(
        &mut self,
        mut on_batch: impl FnMut(&BatchHeader),
    ) -> Result<u64, LogError> {
        self.offset_index.reset()?;
        self.time_index.reset()?;
        self.bytes_since_last_index_entry = 0;
        self.max_timestamp_so_far = -1;
        self.offset_of_max_timestamp_so_far = self.base_offset;
        self.next_offset = self.base_offset;
        let mut expected_next = self.base_offset;
        let mut first_ts = None;
        let mut rebuilt = Vec::new();
        let end = self.scan_from(0, true, |position, batch| {
            if batch.base_offset() < expected_next || batch.last_offset() < batch.base_offset() {
                return Err(LogError::CorruptRecord(format!(
                    "batch at position {position} has offsets {}..={} but {expected_next} was expected next",
                    batch.base_offset(),
                    batch.last_offset()
                )));
            }
            expected_next = batch.next_offset();
            if batch.max_timestamp() >= 0 {
                first_ts.get_or_insert(batch.max_timestamp());
            }
            on_batch(batch.header());
            rebuilt.push((position, *batch.header()));
            Ok(Scan::Continue)
        });
        let (valid_size, truncated) = match end {
            Ok(ScanEnd::Done) => (self.size, 0),
            Ok(ScanEnd::Invalid { position, reason }) => {
                tracing::warn!(
                    segment = %self.log_path.display(),
                    position,
                    %reason,
                    "truncating log segment at invalid batch"
                );
                (position, self.size - position)
            }
            Err(LogError::CorruptRecord(reason)) => {
                // Offsets going backwards: cut at the offending batch.
                let position = rebuilt.last().map_or(0, |(p, h): &(u64, BatchHeader)| {
                    p + h.size_in_bytes() as u64
                });
                tracing::warn!(segment = %self.log_path.display(), position, %reason, "truncating log segment");
                (position, self.size - position)
            }
            Err(e) => return Err(e),
        };
        if truncated > 0 {
            self.log.set_len(valid_size)?;
            self.size = valid_size;
        }
        let next_offset = rebuilt
            .last()
            .map_or(self.base_offset, |(_, h)| h.next_offset());
        self.txn_index.truncate_to(next_offset)?;
        for (position, header) in rebuilt {
            self.index_batch(position as u32, &header);
        }
        self.offset_index.persist()?;
        self.time_index.persist()?;
        if let Some(ts) = first_ts {
            self.rolling_based_timestamp = ts;
        }
        Ok(truncated)
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Bytes `open` cut off while recovering inconsistent files (0 normally).
    pub fn truncated_on_open(&self) -> u64 {
        self.truncated_on_open
    }

    /// Offset the next appended batch will get (the base offset when empty).
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn offset_index(&self) -> &OffsetIndex {
        &self.offset_index
    }

    pub fn time_index(&self) -> &TimeIndex {
        &self.time_index
    }

    /// Largest record timestamp, or -1 if the segment has no timestamped records.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp_so_far
    }

    /// Last offset of the batch holding the largest timestamp.
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp_so_far
    }

    /// The timestamp retention compares against: the largest record timestamp, or the
    /// file's modification time when the records carry none (Kafka's rule).
    pub fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp_so_far >= 0 {
            return self.max_timestamp_so_far;
        }
        self.log
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(-1, |d| d.as_millis() as i64)
    }

    /// Modification time of the `.log` file in ms since the epoch. The log cleaner sets it
    /// to the time it cleaned the segment; tombstone retention counts from there.
    pub fn last_modified_ms(&self) -> Result<i64, LogError> {
        let modified = self.log.metadata()?.modified()?;
        Ok(modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64))
    }

    /// Sets the `.log` file's modification time (see [`LogSegment::last_modified_ms`]).
    pub fn set_last_modified_ms(&self, ms: i64) -> Result<(), LogError> {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
        self.log.set_modified(time)?;
        Ok(())
    }

    /// Whether appending `append_bytes` ending at `last_offset` needs a new segment first:
    /// size, age (`segment.ms`), a full index, or offsets that no longer fit in the index's
    /// 32-bit relative offsets.
    pub fn should_roll(
        &self,
        append_bytes: u64,
        last_offset: i64,
        segment_bytes: u64,
        segment_ms: i64,
        now_ms: i64,
    ) -> bool {
        if self.is_empty() {
            return false;
        }
        self.size + append_bytes > segment_bytes
            || self.time_waited_for_roll(now_ms) >= segment_ms
            || self.offset_index.is_full()
            || self.time_index.is_full()
            || last_offset - self.base_offset > i64::from(u32::MAX)
            || self.size + append_bytes > i32::MAX as u64
    }

    /// Milliseconds since the segment's rolling-based timestamp.
    pub fn time_waited_for_roll(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(self.rolling_based_timestamp)
    }

    /// Appends batches whose offsets are already assigned (`records` are whole v2 batches).
    /// One positional write for the data and one for any new index entries. If either
    /// fails, the file is cut back to its old size and the index entries are dropped, so
    /// the segment is exactly as before and the next append can succeed.
    pub fn append(&mut self, records: &[u8]) -> Result<(), LogError> {
        let start_size = self.size;
        let saved = (
            self.offset_index.entries(),
            self.time_index.entries(),
            self.bytes_since_last_index_entry,
            self.next_offset,
            self.max_timestamp_so_far,
            self.offset_of_max_timestamp_so_far,
            self.rolling_based_timestamp,
        );
        let result = self.write_at(records, start_size).and_then(|()| {
            let mut position = start_size;
            for batch in crate::batch::batches(records) {
                let batch = batch?;
                if position == 0 && batch.max_timestamp() >= 0 {
                    self.rolling_based_timestamp = batch.max_timestamp();
                }
                self.index_batch(position as u32, batch.header());
                position += batch.size_in_bytes() as u64;
            }
            // The index entries reach their files at the next flush, roll or close.
            self.size = position;
            Ok(())
        });
        if let Err(e) = result {
            self.size = start_size;
            let restore = self
                .log
                .set_len(start_size)
                .and_then(|()| self.offset_index.truncate_entries(saved.0))
                .and_then(|()| self.time_index.truncate_entries(saved.1));
            if let Err(restore_err) = restore {
                // Positional writes keep the in-memory size authoritative: the next append
                // overwrites whatever is past `start_size`, and recovery would cut it.
                tracing::error!(segment = %self.log_path.display(), %restore_err, "rolling back failed append");
            }
            (
                _,
                _,
                self.bytes_since_last_index_entry,
                self.next_offset,
                self.max_timestamp_so_far,
                self.offset_of_max_timestamp_so_far,
                self.rolling_based_timestamp,
            ) = saved;
            return Err(e);
        }
        Ok(())
    }

    fn write_at(&mut self, buf: &[u8], position: u64) -> Result<(), LogError> {
        #[cfg(test)]
        if let Some(limit) = self.write_fault.fail_after_bytes.take() {
            let partial = limit.min(buf.len());
            self.log.write_all_at(&buf[..partial], position)?;
            return Err(LogError::Io(io::Error::from_raw_os_error(28)));
        }
        self.log.write_all_at(buf, position)?;
        Ok(())
    }

    /// Kafka's indexing rule: once more than `index.interval.bytes` were appended since the
    /// last entry, the next batch gets an offset-index entry (its last offset → its
    /// position) and the time index records the largest timestamp so far.
    fn index_batch(&mut self, position: u32, header: &BatchHeader) {
        if header.max_timestamp > self.max_timestamp_so_far {
            self.max_timestamp_so_far = header.max_timestamp;
            self.offset_of_max_timestamp_so_far = header.last_offset();
        }
        if self.bytes_since_last_index_entry > u64::from(self.index_interval_bytes) {
            self.offset_index.append(header.last_offset(), position);
            if self.max_timestamp_so_far >= 0 {
                self.time_index.maybe_append(
                    self.max_timestamp_so_far,
                    self.offset_of_max_timestamp_so_far,
                    false,
                );
            }
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += header.size_in_bytes() as u64;
        self.next_offset = header.next_offset();
    }

    /// Reads the header of the batch at `position`.
    pub fn read_header(&self, position: u64) -> Result<BatchHeader, LogError> {
        let mut buf = [0u8; RECORD_BATCH_OVERHEAD];
        self.log.read_exact_at(&mut buf, position)?;
        BatchHeader::parse(&buf)
    }

    /// Walks whole batches from byte `from` to the end of the segment, reading large
    /// chunks. With `validate`, each batch's CRC is checked too. A torn or invalid batch
    /// ends the walk with [`ScanEnd::Invalid`]; an error from `visit` is returned as is.
    pub(crate) fn scan_from(
        &self,
        from: u64,
        validate: bool,
        mut visit: impl FnMut(u64, &RecordBatch<'_>) -> Result<Scan, LogError>,
    ) -> Result<ScanEnd, LogError> {
        let mut position = from;
        while position < self.size {
            let chunk_len = (self.size - position).min(SCAN_CHUNK_BYTES as u64) as usize;
            let chunk = read_fresh(&self.log, position, chunk_len)?;
            let mut offset = 0usize;
            while offset < chunk.len() {
                let rest = &chunk[offset..];
                if rest.len() < RECORD_BATCH_OVERHEAD
                    && (position + offset as u64 + rest.len() as u64) < self.size
                {
                    break; // header straddles the chunk: re-read from here
                }
                let header = match BatchHeader::parse(rest) {
                    Ok(h) => h,
                    Err(reason) => {
                        return Ok(ScanEnd::Invalid {
                            position: position + offset as u64,
                            reason,
                        });
                    }
                };
                let batch_size = header.size_in_bytes();
                let batch_position = position + offset as u64;
                if batch_position + batch_size as u64 > self.size {
                    return Ok(ScanEnd::Invalid {
                        position: batch_position,
                        reason: LogError::CorruptRecord(format!(
                            "batch of {batch_size} bytes at {batch_position} runs past the end of the segment ({} bytes)",
                            self.size
                        )),
                    });
                }
                let owned;
                let bytes: &[u8] = if batch_size <= rest.len() {
                    &rest[..batch_size]
                } else if offset == 0 {
                    // A batch larger than the chunk: read it on its own.
                    owned = read_fresh(&self.log, batch_position, batch_size)?;
                    &owned
                } else {
                    break;
                };
                let batch = RecordBatch::parse(bytes)?;
                if validate && let Err(reason) = batch.validate() {
                    return Ok(ScanEnd::Invalid {
                        position: batch_position,
                        reason,
                    });
                }
                if let Scan::Stop = visit(batch_position, &batch)? {
                    return Ok(ScanEnd::Done);
                }
                offset += batch_size;
            }
            position += offset as u64;
        }
        Ok(ScanEnd::Done)
    }

    /// Reads whole batches starting with the one that contains `start_offset`, at most
    /// `max_size` bytes (but one whole batch anyway when `min_one_message`), stopping before
    /// the first batch that reaches `max_offset`. `None` when `start_offset` is past this
    /// segment. Typically one `pread`: the index narrows the start to within
    /// `index.interval.bytes`, and that window plus `max_size` is read at once.
    pub fn read(
        &self,
        start_offset: i64,
        max_size: usize,
        max_offset: i64,
        min_one_message: bool,
    ) -> Result<Option<(Bytes, Option<i64>)>, LogError> {
        let window = (self.index_interval_bytes as usize + RECORD_BATCH_OVERHEAD)
            .saturating_add(max_size)
            .max(MIN_READ_WINDOW_BYTES);
        let mut reader = ChunkReader::new(self, window);
        let Some((start, end, first)) = self.locate(
            &mut reader,
            start_offset,
            max_size,
            max_offset,
            min_one_message,
        )?
        else {
            return Ok(None);
        };
        if end == start {
            return Ok(Some((Bytes::new(), None)));
        }
        Ok(Some((reader.slice(start, end)?, first)))
    }

    /// [`Self::read`], leaving the records in the file: the region of it to send as is
    /// (`sendfile`). Only batch headers are read. `None` past the segment's end; an empty
    /// region when nothing fits.
    pub fn read_region(
        &self,
        start_offset: i64,
        max_size: usize,
        max_offset: i64,
        min_one_message: bool,
    ) -> Result<Option<FileRegion>, LogError> {
        let mut reader = ChunkReader::new(self, HEADER_READ_WINDOW_BYTES);
        let located = self.locate(
            &mut reader,
            start_offset,
            max_size,
            max_offset,
            min_one_message,
        )?;
        Ok(located.map(|(start, end, _)| FileRegion {
            file: self.log.clone(),
            position: start,
            len: (end - start) as usize,
        }))
    }

    /// The byte range `[start, end)` of the whole batches a read returns, with the first
    /// batch's base offset (`None` when nothing fits); `None` past the segment's end.
    fn locate(
        &self,
        reader: &mut ChunkReader<'_>,
        start_offset: i64,
        max_size: usize,
        max_offset: i64,
        min_one_message: bool,
    ) -> Result<Option<(u64, u64, Option<i64>)>, LogError> {
        if start_offset >= self.next_offset {
            return Ok(None);
        }
        let (_, index_position) = self.offset_index.lookup(start_offset);
        let mut position = u64::from(index_position);
        let first = loop {
            let Some(header) = reader.header_at(position)? else {
                return Ok(None);
            };
            if header.last_offset() >= start_offset {
                break header;
            }
            position += header.size_in_bytes() as u64;
        };
        let start = position;
        let mut end = start;
        let mut header = first;
        loop {
            if header.last_offset() >= max_offset {
                break;
            }
            let size = header.size_in_bytes() as u64;
            let taken = end - start;
            if taken + size > max_size as u64 && !(taken == 0 && min_one_message) {
                break;
            }
            end += size;
            if end - start + RECORD_BATCH_OVERHEAD as u64 > max_size as u64 {
                break; // no batch is smaller than its header: the next cannot fit
            }
            match reader.header_at(end)? {
                Some(next) => header = next,
                None => break,
            }
        }
        let first = (end > start).then_some(first.base_offset);
        Ok(Some((start, end, first)))
    }

    /// The first record at or after `starting_offset` whose timestamp is ≥ `target`, as
    /// `(timestamp, offset)`. The time index narrows the start; the batch found is decoded
    /// to locate the exact record.
    pub fn find_offset_by_timestamp(
        &self,
        target: i64,
        starting_offset: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        if self.max_timestamp_so_far < target {
            return Ok(None);
        }
        let from_offset = self
            .time_index
            .lookup(target)
            .unwrap_or(self.base_offset)
            .max(starting_offset);
        let (_, position) = self.offset_index.lookup(from_offset);
        let mut found = None;
        self.scan_from(u64::from(position), false, |_, batch| {
            if batch.max_timestamp() < target || batch.last_offset() < starting_offset {
                return Ok(Scan::Continue);
            }
            // Streamed: a stored batch may be a zip bomb (only compacted topics' batches
            // are looked inside when they arrive).
            records::visit(batch, records::MAX_LOOKUP_DECOMPRESSED_BYTES, |record| {
                let timestamp = if batch.header().is_log_append_time() {
                    batch.max_timestamp()
                } else {
                    batch
                        .base_timestamp()
                        .saturating_add(record.timestamp_delta)
                };
                let offset = batch.base_offset().saturating_add(record.offset_delta);
                if timestamp >= target && offset >= starting_offset {
                    found = Some((timestamp, offset));
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            })?;
            Ok(if found.is_some() {
                Scan::Stop
            } else {
                Scan::Continue
            })
        })?;
        Ok(found)
    }

    /// Removes every batch that contains an offset ≥ `offset` (truncation is by whole
    /// batches). Returns the bytes removed.
    pub fn truncate_to(&mut self, offset: i64) -> Result<u64, LogError> {
        if offset >= self.next_offset {
            return Ok(0);
        }
        let (_, index_position) = self.offset_index.lookup(offset);
        let mut cut = None;
        self.scan_from(u64::from(index_position), false, |position, batch| {
            if batch.last_offset() >= offset {
                cut = Some(position);
                return Ok(Scan::Stop);
            }
            Ok(Scan::Continue)
        })?;
        let Some(cut) = cut else { return Ok(0) };
        let removed = self.size - cut;
        self.log.set_len(cut)?;
        self.size = cut;
        // Re-derive indexes and the tail state from the remaining data.
        self.recover()?;
        Ok(removed)
    }

    /// Called when the segment stops being the active one: records its final largest
    /// timestamp in the time index and trims both indexes to their real size.
    pub fn on_become_inactive(&mut self) -> Result<(), LogError> {
        if self.max_timestamp_so_far >= 0 {
            self.time_index.maybe_append(
                self.max_timestamp_so_far,
                self.offset_of_max_timestamp_so_far,
                true,
            );
        }
        self.offset_index.trim()?;
        self.time_index.trim()?;
        Ok(())
    }

    /// Makes the segment appendable again after a restart (indexes preallocated).
    pub fn on_become_active(&mut self) -> Result<(), LogError> {
        self.offset_index.preallocate()?;
        self.time_index.preallocate()?;
        Ok(())
    }

    /// What syncing this (inactive, trimmed) segment takes, without the log's lock: its
    /// data file and the paths of both index files.
    pub fn files_to_sync(&self) -> (Arc<File>, [PathBuf; 2]) {
        (
            self.log.clone(),
            [
                self.offset_index.path().to_path_buf(),
                self.time_index.path().to_path_buf(),
            ],
        )
    }

    /// fsyncs the data and both indexes.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.log.sync_data()?;
        self.offset_index.flush()?;
        self.time_index.flush()?;
        self.txn_index.flush()?;
        Ok(())
    }

    /// The aborted transactions whose markers are in this segment.
    pub fn aborted_txns(&self) -> &[AbortedTxn] {
        self.txn_index.entries()
    }

    /// Records an aborted transaction whose marker was appended to this segment.
    pub fn append_aborted_txn(&mut self, txn: AbortedTxn) -> Result<(), LogError> {
        self.txn_index.append(txn)
    }

    /// Renames all its files by appending `suffix` (`.deleted`, `.cleaned`, `.swap`).
    pub fn add_suffix(&mut self, suffix: &str) -> Result<(), LogError> {
        let log_path = with_suffix(&self.log_path, suffix);
        std::fs::rename(&self.log_path, &log_path)?;
        self.log_path = log_path;
        let index_path = with_suffix(self.offset_index.path(), suffix);
        self.offset_index.rename_to(&index_path)?;
        let time_index_path = with_suffix(self.time_index.path(), suffix);
        self.time_index.rename_to(&time_index_path)?;
        let txn_index_path = with_suffix(self.txn_index.path(), suffix);
        self.txn_index.rename_to(txn_index_path)?;
        Ok(())
    }

    /// The paths of the segment's files (the transaction index's whether or not it
    /// exists).
    pub fn paths(&self) -> [PathBuf; 4] {
        [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
            self.txn_index.path().to_path_buf(),
        ]
    }

    /// Deletes the segment's files.
    pub fn delete_files(self) -> Result<(), LogError> {
        for path in self.paths() {
            remove_if_exists(&path)?;
        }
        Ok(())
    }
}

/// Reads a segment through a window that is refilled on demand, so that locating the
/// start of a fetch and collecting its batches usually costs one `pread`.
struct ChunkReader<'a> {
    segment: &'a LogSegment,
    window: usize,
    chunk: Bytes,
    chunk_start: u64,
}

impl<'a> ChunkReader<'a> {
    fn new(segment: &'a LogSegment, window: usize) -> Self {
        ChunkReader {
            segment,
            window,
            chunk: Bytes::new(),
            chunk_start: 0,
        }
    }

    fn load(&mut self, position: u64, min_len: usize) -> Result<(), LogError> {
        let len = (self.segment.size - position).min(self.window.max(min_len) as u64) as usize;
        self.chunk = Bytes::from(read_fresh(&self.segment.log, position, len)?);
        self.chunk_start = position;
        Ok(())
    }

    fn contains(&self, start: u64, end: u64) -> bool {
        start >= self.chunk_start && end <= self.chunk_start + self.chunk.len() as u64
    }

    /// The header of the batch at `position`, or `None` at the end of the segment.
    fn header_at(&mut self, position: u64) -> Result<Option<BatchHeader>, LogError> {
        if position >= self.segment.size {
            return Ok(None);
        }
        let end = position + RECORD_BATCH_OVERHEAD as u64;
        if end > self.segment.size {
            return Err(LogError::CorruptRecord(format!(
                "torn batch header at position {position} of {}",
                self.segment.log_path.display()
            )));
        }
        if !self.contains(position, end) {
            self.load(position, RECORD_BATCH_OVERHEAD)?;
        }
        let at = (position - self.chunk_start) as usize;
        BatchHeader::parse(&self.chunk[at..at + RECORD_BATCH_OVERHEAD]).map(Some)
    }

    /// Bytes `[start, end)`, zero-copy when the window already holds them.
    fn slice(&mut self, start: u64, end: u64) -> Result<Bytes, LogError> {
        if !self.contains(start, end) {
            self.load(start, (end - start) as usize)?;
        }
        let at = (start - self.chunk_start) as usize;
        Ok(self.chunk.slice(at..at + (end - start) as usize))
    }
}

pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub(crate) fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
