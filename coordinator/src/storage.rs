//! Durability: the transaction log and snapshots, laid out like ZooKeeper's
//! `version-2/` directories (`log.<zxid>`, `snapshot.<zxid>`, zxid in hex).
//!
//! * Log entries are `crc32c(u32) | length(u32) | txn`. Files are preallocated in
//!   `PREALLOC_BYTES` steps, so the zero-filled space after the last entry reads as a
//!   zero length: the end of the log. A torn tail (short entry, bad checksum) ends the
//!   log there and is cut off on recovery.
//! * [`TxnLog::append`] writes a whole batch and fsyncs once (group commit); nothing in a
//!   batch is acknowledged before it returns.
//! * Snapshots are `"ZKSN" | crc32c(u32) | length(u64) | tree`, written to a temporary
//!   name, fsynced and renamed, so a crash never leaves a half snapshot under a real name.
//!   A view of the tree is taken between transactions (znode data shared, not copied) and
//!   streamed into the file in 1 MiB pieces on a blocking thread while the log goes on
//!   in a new file; the body is never whole in memory, and a leader reads the file back
//!   only for a learner that needs a SNAP.
//! * Recovery: the newest snapshot whose checksum holds, then every logged transaction
//!   after it, in zxid order.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::jute::Reader;
use crate::tree::{DataTree, SnapshotView};
use crate::txn::Txn;

/// Log files grow in steps of this size (ZooKeeper's `zookeeper.preAllocSize`, 64 MiB).
pub const PREALLOC_BYTES: u64 = 64 * 1024 * 1024;
const SNAP_MAGIC: &[u8; 4] = b"ZKSN";

fn version_dir(dir: &Path) -> PathBuf {
    dir.join("version-2")
}

fn zxid_of(name: &str, prefix: &str) -> Option<i64> {
    let hex = name.strip_prefix(prefix)?;
    i64::from_str_radix(hex, 16).ok()
}

/// Files in `dir` named `prefix<hex zxid>`, sorted by zxid.
fn list(dir: &Path, prefix: &str) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(z) = zxid_of(&name, prefix) {
            out.push((z, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// A logged entry: the transaction, its bytes, and the file offset just after it.
type RawEntry = (Txn, Vec<u8>, u64);

/// The valid entries of one log file, each with its bytes and the offset just after it,
/// and the offset where the valid part ends.
fn read_log_raw(path: &Path) -> io::Result<(Vec<RawEntry>, u64)> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut txns = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= bytes.len() {
        let crc = u32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes"));
        let len = u32::from_be_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes")) as usize;
        if len == 0 || pos + 8 + len > bytes.len() {
            break;
        }
        let body = &bytes[pos + 8..pos + 8 + len];
        if crc32c::crc32c(body) != crc {
            break;
        }
        let Ok(txn) = Txn::from_bytes(body) else {
            break;
        };
        pos += 8 + len;
        txns.push((txn, body.to_vec(), pos as u64));
    }
    Ok((txns, pos as u64))
}

/// The append side of the transaction log.
pub struct TxnLog {
    dir: PathBuf,
    file: Option<File>,
    /// Where the next entry goes in `file`.
    pos: u64,
    /// How far `file` is preallocated.
    allocated: u64,
    /// fsync durations of recent appends, for metrics (`zk_fsync_threshold_exceed`'s sibling).
    pub last_fsync_micros: u64,
}

/// What recovery found.
pub struct Recovered {
    pub tree: DataTree,
    pub log: TxnLog,
    /// Transactions replayed from the log on top of the snapshot.
    pub replayed: usize,
    /// Bytes cut off a torn log tail.
    pub truncated_bytes: u64,
}

/// What a server finds on disk: the newest valid snapshot, and the logged entries after
/// it (committed or not: replication decides), as `(zxid, txn bytes)`.
pub struct Opened {
    pub snapshot: Option<(i64, Vec<u8>)>,
    pub entries: Vec<(i64, Vec<u8>)>,
    pub log: TxnLog,
    /// Bytes cut off a torn log tail.
    pub truncated_bytes: u64,
}

impl TxnLog {
    /// Open the data directories without applying anything: the newest snapshot whose
    /// checksum holds, every logged entry after it, and the log ready for appending after
    /// its last whole entry (a torn tail is zeroed, so a later scan cannot mistake it for
    /// entries).
    pub fn open(snap_dir: &Path, log_dir: &Path) -> io::Result<Opened> {
        let sdir = version_dir(snap_dir);
        let ldir = version_dir(log_dir);
        fs::create_dir_all(&sdir)?;
        fs::create_dir_all(&ldir)?;
        let mut snapshot = None;
        for (zxid, path) in list(&sdir, "snapshot.")?.into_iter().rev() {
            if let Some(body) = read_snapshot_body(&path)? {
                snapshot = Some((zxid, body));
                break;
            }
        }
        let after = snapshot.as_ref().map_or(0, |s| s.0);
        let mut entries: Vec<(i64, Vec<u8>)> = Vec::new();
        let mut log = TxnLog {
            dir: ldir.clone(),
            file: None,
            pos: 0,
            allocated: 0,
            last_fsync_micros: 0,
        };
        let mut truncated_bytes = 0;
        let logs = list(&ldir, "log.")?;
        for (i, (_, path)) in logs.iter().enumerate() {
            let (txns, end) = read_log_raw(path)?;
            for (t, raw, _) in txns {
                if t.zxid > after && entries.last().is_none_or(|(z, _)| *z < t.zxid) {
                    entries.push((t.zxid, raw));
                }
            }
            if i + 1 == logs.len() {
                let file = OpenOptions::new().read(true).write(true).open(path)?;
                let len = file.metadata()?.len();
                truncated_bytes = read_nonzero_tail(path, end, len)?;
                if truncated_bytes > 0 {
                    file.set_len(end)?;
                    file.set_len(len.max(end))?;
                    file.sync_all()?;
                }
                log.pos = end;
                log.allocated = len;
                log.file = Some(file);
            }
        }
        Ok(Opened {
            snapshot,
            entries,
            log,
            truncated_bytes,
        })
    }

    /// Append entries given as encoded transactions, writing `zxid` over each one's
    /// leading zxid field (the leader assigns zxids after the bytes were made).
    ///
    /// An entry that is not a transaction is refused, and nothing of the batch is written:
    /// leaving it out would leave a gap in the history this server acknowledges.
    pub fn append_raw(&mut self, entries: &[(i64, &[u8])]) -> io::Result<()> {
        let txns = entries
            .iter()
            .map(|(zxid, raw)| {
                let mut t = Txn::from_bytes(raw).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("log entry {zxid:#x} is not a transaction: {e}"),
                    )
                })?;
                t.zxid = *zxid;
                Ok(t)
            })
            .collect::<io::Result<Vec<Txn>>>()?;
        self.append(&txns)
    }

    /// Remove every entry with zxid greater than `zxid` (a leader's TRUNC).
    pub fn truncate_after(&mut self, zxid: i64) -> io::Result<()> {
        self.file = None;
        for (start, path) in list(&self.dir, "log.")? {
            if start > zxid {
                fs::remove_file(&path)?;
                continue;
            }
            let (entries, _) = read_log_raw(&path)?;
            let keep_end = entries
                .iter()
                .take_while(|(t, _, _)| t.zxid <= zxid)
                .last()
                .map_or(0, |(_, _, end)| *end);
            if keep_end < entries.last().map_or(0, |(_, _, end)| *end) {
                let f = OpenOptions::new().write(true).open(&path)?;
                let len = f.metadata()?.len();
                f.set_len(keep_end)?;
                f.set_len(len)?;
                f.sync_all()?;
            }
        }
        File::open(&self.dir)?.sync_all()
    }

    /// Replace everything on disk with one snapshot (a leader's SNAP); `None` is the
    /// empty tree.
    pub fn reset_to_snapshot(
        &mut self,
        snap_dir: &Path,
        snapshot: Option<(i64, &[u8])>,
    ) -> io::Result<()> {
        self.file = None;
        for (_, path) in list(&self.dir, "log.")? {
            fs::remove_file(path)?;
        }
        let keep = snapshot.map(|s| s.0);
        for (zxid, path) in list(&version_dir(snap_dir), "snapshot.")? {
            if Some(zxid) != keep {
                fs::remove_file(path)?;
            }
        }
        if let Some((zxid, body)) = snapshot {
            write_snapshot(snap_dir, zxid, body)?;
        }
        File::open(&self.dir)?.sync_all()
    }

    /// Open the data directories and rebuild the tree: the snapshot with every logged
    /// transaction after it applied (what a server that commits everything it logged
    /// holds; tools and tests use it).
    pub fn recover(snap_dir: &Path, log_dir: &Path) -> io::Result<Recovered> {
        let opened = TxnLog::open(snap_dir, log_dir)?;
        let invalid = |e: crate::jute::JuteError| io::Error::new(io::ErrorKind::InvalidData, e);
        let mut tree = match &opened.snapshot {
            Some((_, body)) => DataTree::deserialize(&mut Reader::new(body)).map_err(invalid)?,
            None => DataTree::new(),
        };
        for (zxid, raw) in &opened.entries {
            let mut txn = Txn::from_bytes(raw).map_err(invalid)?;
            txn.zxid = *zxid;
            tree.apply(&txn);
        }
        Ok(Recovered {
            tree,
            log: opened.log,
            replayed: opened.entries.len(),
            truncated_bytes: opened.truncated_bytes,
        })
    }

    /// Append a batch and fsync once. The first transaction of a new file names it.
    pub fn append(&mut self, txns: &[Txn]) -> io::Result<()> {
        if txns.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for t in txns {
            let body = t.to_bytes();
            buf.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
            buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
            buf.extend_from_slice(&body);
        }
        if self.file.is_none() {
            let path = self.dir.join(format!("log.{:x}", txns[0].zxid));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)?;
            self.file = Some(file);
            self.pos = 0;
            self.allocated = 0;
            File::open(&self.dir)?.sync_all()?;
        }
        let file = self.file.as_mut().expect("opened above");
        let end = self.pos + buf.len() as u64;
        if end > self.allocated {
            self.allocated = end.div_ceil(PREALLOC_BYTES) * PREALLOC_BYTES;
            file.set_len(self.allocated)?;
        }
        file.seek(SeekFrom::Start(self.pos))?;
        file.write_all(&buf)?;
        let started = std::time::Instant::now();
        file.sync_data()?;
        self.last_fsync_micros = started.elapsed().as_micros() as u64;
        self.pos = end;
        Ok(())
    }

    /// Start a new log file with the next append (done at every snapshot, as ZooKeeper
    /// rolls its log, so old files can be purged whole).
    pub fn roll(&mut self) {
        self.file = None;
    }
}

/// Bytes after `end` that are not zero: a torn or corrupt tail.
fn read_nonzero_tail(path: &Path, end: u64, len: u64) -> io::Result<u64> {
    if end >= len {
        return Ok(0);
    }
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(end))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_nonzero = None;
    let mut off = end;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if let Some(i) = buf[..n].iter().rposition(|b| *b != 0) {
            last_nonzero = Some(off + i as u64);
        }
        off += n as u64;
    }
    Ok(last_nonzero.map_or(0, |p| p + 1 - end))
}

/// The body of a snapshot file, if its header and checksum hold.
fn read_snapshot_body(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut file = File::open(path)?;
    let mut header = [0u8; 16];
    match file.read_exact(&mut header) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    if &header[..4] != SNAP_MAGIC {
        return Ok(None);
    }
    let crc = u32::from_be_bytes(header[4..8].try_into().expect("4 bytes"));
    let len = u64::from_be_bytes(header[8..16].try_into().expect("8 bytes"));
    // The body is read straight into its own buffer, never moved after.
    let mut body = Vec::with_capacity(len.min(file.metadata()?.len()) as usize);
    file.take(len).read_to_end(&mut body)?;
    if body.len() as u64 != len || crc32c::crc32c(&body) != crc {
        return Ok(None);
    }
    Ok(Some(body))
}

/// Where the snapshot at `zxid` lives.
pub fn snapshot_path(snap_dir: &Path, zxid: i64) -> PathBuf {
    version_dir(snap_dir).join(format!("snapshot.{zxid:x}"))
}

/// The body of a snapshot file; an error if the file is gone or does not check out.
pub fn snapshot_body(path: &Path) -> io::Result<Vec<u8>> {
    read_snapshot_body(path)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a valid snapshot", path.display()),
        )
    })
}

/// Write `snapshot.<zxid>` durably from a body in memory (a leader's SNAP).
pub fn write_snapshot(snap_dir: &Path, zxid: i64, body: &[u8]) -> io::Result<PathBuf> {
    write_snapshot_with(snap_dir, zxid, |sink| sink(body))
}

/// Serialize a view of the tree straight into `snapshot.<zxid>`, durably: the costly part
/// of a snapshot, done off the request path, and never whole in memory.
pub fn write_snapshot_view(snap_dir: &Path, view: SnapshotView) -> io::Result<(i64, PathBuf)> {
    let zxid = view.last_zxid();
    let path = write_snapshot_with(snap_dir, zxid, |sink| view.serialize_to(sink))?;
    Ok((zxid, path))
}

type Sink<'a> = dyn FnMut(&[u8]) -> io::Result<()> + 'a;

/// Write a snapshot whose body `produce` hands to the sink it is given, in pieces: to a
/// temporary name, header placeholder first, checksum computed on the way, header filled
/// in at the end, fsynced and renamed — a crash never leaves half a snapshot under a real
/// name.
fn write_snapshot_with(
    snap_dir: &Path,
    zxid: i64,
    produce: impl FnOnce(&mut Sink) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let sdir = version_dir(snap_dir);
    fs::create_dir_all(&sdir)?;
    let tmp = sdir.join(format!("snapshot.{zxid:x}.tmp"));
    let mut f = io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    f.write_all(&[0; 16])?;
    let (mut crc, mut len) = (0u32, 0u64);
    produce(&mut |chunk| {
        crc = crc32c::crc32c_append(crc, chunk);
        len += chunk.len() as u64;
        f.write_all(chunk)
    })?;
    let mut file = f.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(SNAP_MAGIC)?;
    file.write_all(&crc.to_be_bytes())?;
    file.write_all(&len.to_be_bytes())?;
    file.sync_all()?;
    let path = snapshot_path(snap_dir, zxid);
    fs::rename(&tmp, &path)?;
    File::open(&sdir)?.sync_all()?;
    Ok(path)
}

/// Autopurge: keep the newest `retain` snapshots and the logs needed after the oldest.
pub fn purge(snap_dir: &Path, log_dir: &Path, retain: usize) -> io::Result<()> {
    let snaps = list(&version_dir(snap_dir), "snapshot.")?;
    if snaps.len() <= retain {
        return Ok(());
    }
    let keep_from = snaps[snaps.len() - retain].0;
    for (_, path) in &snaps[..snaps.len() - retain] {
        fs::remove_file(path)?;
    }
    let logs = list(&version_dir(log_dir), "log.")?;
    // A log is still needed if the next one starts after `keep_from`: it may hold the
    // transactions right after the oldest kept snapshot.
    for pair in logs.windows(2) {
        if pair[1].0 <= keep_from {
            fs::remove_file(&pair[0].1)?;
        }
    }
    Ok(())
}

/// ZAB's two epochs and who the accepted one was promised to, in `dataDir`
/// (`acceptedEpoch`, `currentEpoch`, as ZooKeeper names them).
pub fn read_epochs(data_dir: &Path) -> io::Result<(i64, u64, i64)> {
    let read = |name: &str| -> io::Result<Vec<i64>> {
        match fs::read_to_string(data_dir.join(name)) {
            Ok(s) => Ok(s
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    };
    let accepted = read("acceptedEpoch")?;
    let current = read("currentEpoch")?;
    Ok((
        accepted.first().copied().unwrap_or(0),
        accepted.get(1).copied().unwrap_or(0) as u64,
        current.first().copied().unwrap_or(0),
    ))
}

pub fn write_epochs(data_dir: &Path, accepted: i64, leader: u64, current: i64) -> io::Result<()> {
    for (name, text) in [
        ("acceptedEpoch", format!("{accepted} {leader}\n")),
        ("currentEpoch", format!("{current}\n")),
    ] {
        replace_file(data_dir, name, text.as_bytes())?;
    }
    File::open(data_dir)?.sync_all()
}

/// `data_dir/name` replaced by `body` all at once: written to a temporary file, synced,
/// renamed over it (the directory's sync is the caller's).
fn replace_file(data_dir: &Path, name: &str, body: &[u8]) -> io::Result<()> {
    let tmp = data_dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(body)?;
    f.sync_all()?;
    fs::rename(&tmp, data_dir.join(name))
}

/// The active configuration as this server last knew it (`dataDir/currentConfig`, the
/// text `/zookeeper/config` holds), written when a reconfiguration commits or a leader
/// tells a learner its configuration; read at start.
pub fn read_config(data_dir: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(data_dir.join("currentConfig")) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn write_config(data_dir: &Path, text: &[u8]) -> io::Result<()> {
    replace_file(data_dir, "currentConfig", text)?;
    File::open(data_dir)?.sync_all()
}

pub fn snapshot_count(snap_dir: &Path) -> io::Result<usize> {
    Ok(list(&version_dir(snap_dir), "snapshot.")?.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::Writer;
    use crate::proto::{Acl, CreateOp, Request};
    use crate::txn::TxnBody;

    /// A tree serialized into memory, as a snapshot body.
    fn snapshot_bytes(tree: &DataTree) -> (i64, bytes::Bytes) {
        let mut w = Writer::new();
        tree.serialize(&mut w);
        (tree.last_zxid, w.buf.freeze())
    }

    fn create(zxid: i64, path: &str) -> Txn {
        Txn {
            zxid,
            time_ms: 0,
            session_id: 1,
            cxid: 0,
            auth: vec![],
            body: TxnBody::Write(Request::Create {
                op: CreateOp::Create,
                path: path.into(),
                data: Some(vec![0; 100]),
                acl: Acl::world_anyone(),
                flags: 0,
                ttl: 0,
            }),
        }
    }

    #[test]
    fn recovery_replays_the_log_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = TxnLog::recover(dir.path(), dir.path()).unwrap().log;
        log.append(&[create(1, "/a"), create(2, "/b")]).unwrap();
        log.append(&[create(3, "/c")]).unwrap();
        let end = log.pos;
        drop(log);
        // A torn write: half an entry header and garbage after the last good entry.
        let path = version_dir(dir.path()).join("log.1");
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(&[7, 7, 7, 7, 0, 0, 0, 50, 1, 2], end)
            .unwrap();
        drop(f);
        let r = TxnLog::recover(dir.path(), dir.path()).unwrap();
        assert_eq!(r.replayed, 3);
        assert_eq!(r.truncated_bytes, 10);
        assert!(r.tree.get("/c").is_some());
        let mut log = r.log;
        log.append(&[create(4, "/d")]).unwrap();
        drop(log);
        let r = TxnLog::recover(dir.path(), dir.path()).unwrap();
        assert_eq!(r.replayed, 4);
        assert_eq!(r.truncated_bytes, 0);
        assert_eq!(r.tree.last_zxid, 4);
    }

    #[test]
    fn a_streamed_snapshot_is_the_serialized_tree_and_recovers_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut tree = DataTree::new();
        // Enough data for several chunks, so the checksum spans pieces.
        for zxid in 1..=40 {
            let mut t = create(zxid, &format!("/n{zxid}"));
            if let TxnBody::Write(Request::Create { data, .. }) = &mut t.body {
                *data = Some(vec![zxid as u8; 100 * 1024]);
            }
            tree.apply(&t);
        }
        let (zxid, path) = write_snapshot_view(dir.path(), tree.snapshot_view()).unwrap();
        assert_eq!((zxid, path.clone()), (40, snapshot_path(dir.path(), 40)));
        let body = snapshot_body(&path).unwrap();
        assert!(body.len() > 3 * crate::tree::SNAPSHOT_CHUNK);
        assert_eq!(&body[..], &snapshot_bytes(&tree).1[..]);
        let back = TxnLog::recover(dir.path(), dir.path()).unwrap().tree;
        assert_eq!(back.node_count(), tree.node_count());
        assert_eq!(back.get("/n7").unwrap(), tree.get("/n7").unwrap());
    }

    #[test]
    fn snapshot_plus_log_and_purge_keeps_what_recovery_needs() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = TxnLog::recover(dir.path(), dir.path()).unwrap();
        let mut zxid = 0;
        for round in 0..5 {
            for i in 0..3 {
                zxid += 1;
                let t = create(zxid, &format!("/n{round}-{i}"));
                rec.log.append(std::slice::from_ref(&t)).unwrap();
                rec.tree.apply(&t);
            }
            let (z, body) = snapshot_bytes(&rec.tree);
            rec.log.roll();
            write_snapshot(dir.path(), z, &body).unwrap();
            purge(dir.path(), dir.path(), 3).unwrap();
        }
        zxid += 1;
        let t = create(zxid, "/last");
        rec.log.append(std::slice::from_ref(&t)).unwrap();
        rec.tree.apply(&t);
        assert_eq!(snapshot_count(dir.path()).unwrap(), 3);
        let again = TxnLog::recover(dir.path(), dir.path()).unwrap();
        assert_eq!(again.tree, rec.tree);
        assert_eq!(again.replayed, 1);
    }

    #[test]
    fn truncate_and_reset_for_zab_sync() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = TxnLog::recover(dir.path(), dir.path()).unwrap().log;
        log.append(&[create(1, "/a"), create(2, "/b")]).unwrap();
        log.roll();
        log.append(&[create(3, "/c"), create(4, "/d")]).unwrap();
        log.truncate_after(2).unwrap();
        let raw = create(9, "/e").to_bytes();
        log.append_raw(&[(3, &raw)]).unwrap();
        drop(log);
        let opened = TxnLog::open(dir.path(), dir.path()).unwrap();
        let zxids: Vec<i64> = opened.entries.iter().map(|e| e.0).collect();
        assert_eq!(zxids, vec![1, 2, 3]);
        assert_eq!(Txn::from_bytes(&opened.entries[2].1).unwrap().zxid, 3);
        let mut log = opened.log;
        let (z, body) = snapshot_bytes(&DataTree::new());
        log.reset_to_snapshot(dir.path(), Some((z + 5, &body)))
            .unwrap();
        let opened = TxnLog::open(dir.path(), dir.path()).unwrap();
        assert!(opened.entries.is_empty());
        assert_eq!(opened.snapshot.map(|s| s.0), Some(5));
        write_epochs(dir.path(), 3, 2, 2).unwrap();
        assert_eq!(read_epochs(dir.path()).unwrap(), (3, 2, 2));
    }

    #[test]
    fn an_entry_that_is_not_a_transaction_is_refused_with_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = TxnLog::recover(dir.path(), dir.path()).unwrap().log;
        let good = create(0, "/a").to_bytes();
        let err = log.append_raw(&[(1, &good), (2, &[1, 2, 3])]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("0x2"), "{err}");
        drop(log);
        assert!(
            TxnLog::open(dir.path(), dir.path())
                .unwrap()
                .entries
                .is_empty()
        );
    }

    #[test]
    fn a_corrupt_snapshot_falls_back_to_an_older_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = TxnLog::recover(dir.path(), dir.path()).unwrap();
        for z in 1..=2 {
            let t = create(z, &format!("/s{z}"));
            rec.log.append(std::slice::from_ref(&t)).unwrap();
            rec.tree.apply(&t);
            let (zx, body) = snapshot_bytes(&rec.tree);
            write_snapshot(dir.path(), zx, &body).unwrap();
        }
        let newest = version_dir(dir.path()).join("snapshot.2");
        let mut bytes = fs::read(&newest).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&newest, bytes).unwrap();
        let again = TxnLog::recover(dir.path(), dir.path()).unwrap();
        assert_eq!(again.tree, rec.tree, "older snapshot + log replay");
        assert_eq!(again.replayed, 1);
    }
}
