//! Kafka's offset checkpoint files (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `cleaner-offset-checkpoint`): a version line `0`, a count line, then one
//! `<topic> <partition> <offset>` line per partition. Written to a temporary file, fsynced
//! and renamed, so a crash leaves either the old or the new checkpoint.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;

use crate::error::LogError;
use crate::producer_state::write_atomically;

/// Recovery points of the logs in one log dir.
pub const RECOVERY_POINT_CHECKPOINT_FILE: &str = "recovery-point-offset-checkpoint";
/// Log start offsets (raised by DeleteRecords and retention) of the logs in one log dir.
pub const LOG_START_OFFSET_CHECKPOINT_FILE: &str = "log-start-offset-checkpoint";
/// High watermarks of the logs in one log dir (Kafka's `replication-offset-checkpoint`).
pub const HIGH_WATERMARK_CHECKPOINT_FILE: &str = "replication-offset-checkpoint";
/// The log cleaner's first dirty offset of each compacted log in one log dir.
pub const CLEANER_OFFSET_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";
const CHECKPOINT_VERSION: u32 = 0;

/// Reads a checkpoint file; a missing file is an empty checkpoint.
pub fn read_checkpoint(path: &Path) -> Result<HashMap<(String, i32), i64>, LogError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e.into()),
    };
    let malformed = |what: &str| {
        LogError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed checkpoint {}: {what}", path.display()),
        ))
    };
    let mut lines = text.lines();
    let version: u32 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| malformed("missing version"))?;
    if version != CHECKPOINT_VERSION {
        return Err(malformed("unsupported version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| malformed("missing count"))?;
    let mut entries = HashMap::with_capacity(count);
    for line in lines.by_ref().take(count) {
        let mut parts = line.split(' ');
        let (Some(topic), Some(partition), Some(offset), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("bad entry line"));
        };
        let partition = partition.parse().map_err(|_| malformed("bad partition"))?;
        let offset = offset.parse().map_err(|_| malformed("bad offset"))?;
        entries.insert((topic.to_string(), partition), offset);
    }
    if entries.len() != count {
        return Err(malformed("entry count does not match"));
    }
    Ok(entries)
}

/// Writes a checkpoint file atomically, entries sorted for stable output.
pub fn write_checkpoint(path: &Path, entries: &[((String, i32), i64)]) -> Result<(), LogError> {
    let mut sorted: Vec<&((String, i32), i64)> = entries.iter().collect();
    sorted.sort();
    let mut text = format!("{CHECKPOINT_VERSION}\n{}\n", sorted.len());
    for ((topic, partition), offset) in sorted {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    write_atomically(path, text.as_bytes(), true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_kafkas_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT_FILE);
        assert!(read_checkpoint(&path).unwrap().is_empty());
        let entries = vec![
            (("my.topic-x".to_string(), 3), 42),
            (("a_b".to_string(), 0), 7),
        ];
        write_checkpoint(&path, &entries).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "0\n2\na_b 0 7\nmy.topic-x 3 42\n"
        );
        let read = read_checkpoint(&path).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[&("my.topic-x".to_string(), 3)], 42);
    }

    #[test]
    fn rejects_truncated_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        fs::write(&path, "0\n2\na 0 1\n").unwrap();
        assert!(read_checkpoint(&path).is_err());
    }
}
