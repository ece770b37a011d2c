//! `LogManager`: every partition log of one broker, spread over its `log.dirs`.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::checkpoint::{
    CLEANER_OFFSET_CHECKPOINT_FILE, HIGH_WATERMARK_CHECKPOINT_FILE,
    LOG_START_OFFSET_CHECKPOINT_FILE, RECOVERY_POINT_CHECKPOINT_FILE, read_checkpoint,
    write_checkpoint,
};
use crate::config::LogConfig;
use crate::error::LogError;
use crate::log::Log;

/// Written to each log dir by a clean shutdown and removed at startup; its absence at
/// startup means the broker crashed and unflushed segments must be recovered.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
/// Suffix of a partition directory scheduled for deletion.
pub const DELETE_DIR_SUFFIX: &str = "-delete";

/// `(topic, partition)`.
pub type TopicPartition = (String, i32);

/// One loaded log and the log dir (index into `log_dirs`) it lives in.
#[derive(Debug, Clone)]
struct LogEntry {
    dir_index: usize,
    log: Arc<Mutex<Log>>,
}

/// Owns all logs of one broker.
#[derive(Debug)]
pub struct LogManager {
    log_dirs: Vec<PathBuf>,
    default_config: LogConfig,
    /// Logs by topic-partition. Never held while a log's own mutex is taken, so the
    /// broker may hold a log and still call into the manager.
    logs: Mutex<HashMap<TopicPartition, LogEntry>>,
}

/// Splits a partition directory name `<topic>-<partition>` at the last `-`. Topic names
/// may themselves contain `-`, `.` and `_`; anything else (`lost+found`, `x-delete`,
/// `x-future`) is not a partition directory.
pub fn parse_topic_partition(name: &str) -> Option<(String, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    if topic.is_empty()
        || topic.len() > 249
        || !topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return None;
    }
    if partition.is_empty() || !partition.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let partition: i32 = partition.parse().ok()?;
    Some((topic.to_string(), partition))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a log's lock leaves the log as it was after its last
    // completed operation; carrying on is what Kafka's synchronized blocks do too.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl LogManager {
    /// Loads every `<topic>-<partition>` directory of every log dir. Without the
    /// clean-shutdown marker, each log recovers from its checkpointed recovery point.
    /// The marker is removed once all logs are loaded.
    pub fn startup(
        log_dirs: Vec<PathBuf>,
        default_config: LogConfig,
        topic_configs: impl Fn(&str) -> LogConfig,
        now_ms: i64,
    ) -> Result<LogManager, LogError> {
        let mut logs = HashMap::new();
        for (dir_index, log_dir) in log_dirs.iter().enumerate() {
            fs::create_dir_all(log_dir)?;
            let marker = log_dir.join(CLEAN_SHUTDOWN_FILE);
            let had_clean_shutdown = marker.exists();
            let recovery_points =
                read_checkpoint_or_empty(&log_dir.join(RECOVERY_POINT_CHECKPOINT_FILE));
            let log_start_offsets =
                read_checkpoint_or_empty(&log_dir.join(LOG_START_OFFSET_CHECKPOINT_FILE));
            let cleaner_offsets =
                read_checkpoint_or_empty(&log_dir.join(CLEANER_OFFSET_CHECKPOINT_FILE));
            let high_watermarks =
                read_checkpoint_or_empty(&log_dir.join(HIGH_WATERMARK_CHECKPOINT_FILE));
            let mut entries: Vec<_> = fs::read_dir(log_dir)?.collect::<Result<_, _>>()?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                if !entry.file_type()?.is_dir() {
                    continue;
                }
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if name.ends_with(DELETE_DIR_SUFFIX) {
                    // A deletion interrupted by the crash: finish it.
                    fs::remove_dir_all(entry.path())?;
                    continue;
                }
                let Some(tp) = parse_topic_partition(&name) else {
                    continue;
                };
                let mut log = Log::open(
                    entry.path(),
                    topic_configs(&tp.0),
                    had_clean_shutdown,
                    recovery_points.get(&tp).copied().unwrap_or(0),
                    log_start_offsets.get(&tp).copied().unwrap_or(0),
                    now_ms,
                )?;
                if let Some(offset) = cleaner_offsets.get(&tp) {
                    log.set_first_dirty_offset(*offset);
                }
                if let Some(offset) = high_watermarks.get(&tp) {
                    log.update_high_watermark(*offset);
                }
                let entry = LogEntry {
                    dir_index,
                    log: Arc::new(Mutex::new(log)),
                };
                if let Some(previous) = logs.insert(tp.clone(), entry) {
                    return Err(LogError::Io(io::Error::other(format!(
                        "duplicate log directories for {}-{}: {} and {}",
                        tp.0,
                        tp.1,
                        log_dirs[previous.dir_index].display(),
                        log_dir.display()
                    ))));
                }
            }
            tracing::info!(dir = %log_dir.display(), had_clean_shutdown, "loaded log dir");
        }
        for log_dir in &log_dirs {
            crate::segment::remove_if_exists(&log_dir.join(CLEAN_SHUTDOWN_FILE))?;
        }
        Ok(LogManager {
            log_dirs,
            default_config,
            logs: Mutex::new(logs),
        })
    }

    pub fn log_dirs(&self) -> &[PathBuf] {
        &self.log_dirs
    }

    pub fn default_config(&self) -> &LogConfig {
        &self.default_config
    }

    pub fn get_log(&self, topic: &str, partition: i32) -> Option<Arc<Mutex<Log>>> {
        lock(&self.logs)
            .get(&(topic.to_string(), partition))
            .map(|e| e.log.clone())
    }

    /// Returns the log, creating it in the log dir holding the fewest partitions.
    pub fn get_or_create_log(
        &self,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<Arc<Mutex<Log>>, LogError> {
        let mut logs = lock(&self.logs);
        let tp = (topic.to_string(), partition);
        if let Some(entry) = logs.get(&tp) {
            return Ok(entry.log.clone());
        }
        let name = format!("{topic}-{partition}");
        if parse_topic_partition(&name) != Some(tp.clone()) {
            return Err(LogError::InvalidRecord(format!(
                "invalid topic partition {topic}-{partition}"
            )));
        }
        let mut counts = vec![0usize; self.log_dirs.len()];
        for entry in logs.values() {
            counts[entry.dir_index] += 1;
        }
        let dir_index = (0..self.log_dirs.len())
            .min_by_key(|i| counts[*i])
            .ok_or_else(|| LogError::Io(io::Error::other("no log dirs configured")))?;
        // The log's files carry no data yet, so the clock only seeds segment.ms.
        let log = Log::open(
            self.log_dirs[dir_index].join(&name),
            config,
            true,
            0,
            0,
            wall_clock_ms(),
        )?;
        let log = Arc::new(Mutex::new(log));
        logs.insert(
            tp,
            LogEntry {
                dir_index,
                log: log.clone(),
            },
        );
        Ok(log)
    }

    /// Deletes a partition's log: renamed to `<topic>-<partition>.<uuid>-delete` first (so a
    /// crash midway is finished at the next startup), then removed.
    pub fn delete_log(&self, topic: &str, partition: i32) -> Result<(), LogError> {
        let Some(entry) = lock(&self.logs).remove(&(topic.to_string(), partition)) else {
            return Ok(());
        };
        let log = lock(&entry.log);
        let dir = log.dir().to_path_buf();
        let renamed = self.log_dirs[entry.dir_index].join(format!(
            "{topic}-{partition}.{}{DELETE_DIR_SUFFIX}",
            uuid::Uuid::new_v4().simple()
        ));
        fs::rename(&dir, &renamed)?;
        drop(log);
        fs::remove_dir_all(&renamed)?;
        Ok(())
    }

    fn entries(&self) -> Vec<(TopicPartition, LogEntry)> {
        lock(&self.logs)
            .iter()
            .map(|(tp, e)| (tp.clone(), e.clone()))
            .collect()
    }

    pub fn all_logs(&self) -> Vec<(TopicPartition, Arc<Mutex<Log>>)> {
        self.entries()
            .into_iter()
            .map(|(tp, e)| (tp, e.log))
            .collect()
    }

    /// Each log dir with the logs it holds and their sizes in bytes (DescribeLogDirs).
    pub fn logs_by_dir(&self) -> Vec<(PathBuf, Vec<(TopicPartition, u64)>)> {
        let mut out: Vec<(PathBuf, Vec<(TopicPartition, u64)>)> = self
            .log_dirs
            .iter()
            .map(|d| (d.clone(), Vec::new()))
            .collect();
        for (tp, entry) in self.entries() {
            let size = lock(&entry.log).size_in_bytes();
            out[entry.dir_index].1.push((tp, size));
        }
        for (_, logs) in &mut out {
            logs.sort();
        }
        out
    }

    /// Flushes the logs whose `flush.ms` has passed, and syncs the segments each log
    /// rolled since its last flush (without holding the log's lock while syncing), which
    /// moves its recovery point up: a restart after a crash then recovers only the active
    /// segment and what rolled since the last checkpoint, as in Kafka.
    pub fn flush_dirty_logs(&self, now_ms: i64) {
        for (tp, entry) in self.entries() {
            let rolled = {
                let mut log = lock(&entry.log);
                if let Err(e) = log.flush_if_due(now_ms) {
                    tracing::error!(topic = %tp.0, partition = tp.1, error = %e, "flushing log");
                }
                log.rolled_unsynced()
            };
            let Some(rolled) = rolled else { continue };
            let synced = rolled
                .sync()
                .map_err(LogError::from)
                .and_then(|()| lock(&entry.log).rolled_synced(&rolled));
            if let Err(e) = synced {
                tracing::error!(topic = %tp.0, partition = tp.1, error = %e, "syncing rolled segments");
            }
        }
    }

    /// Runs retention on every log; returns the number of segments deleted.
    pub fn cleanup_logs(&self, now_ms: i64) -> usize {
        let mut deleted = 0;
        for (tp, entry) in self.entries() {
            match lock(&entry.log).enforce_retention(now_ms) {
                Ok(n) => deleted += n,
                Err(e) => {
                    tracing::error!(topic = %tp.0, partition = tp.1, error = %e, "enforcing retention");
                }
            }
        }
        deleted
    }

    /// Writes `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint` and
    /// `replication-offset-checkpoint` in every log dir.
    pub fn checkpoint(&self) -> Result<(), LogError> {
        let mut recovery_points = vec![Vec::new(); self.log_dirs.len()];
        let mut log_start_offsets = vec![Vec::new(); self.log_dirs.len()];
        let mut high_watermarks = vec![Vec::new(); self.log_dirs.len()];
        for (tp, entry) in self.entries() {
            let log = lock(&entry.log);
            recovery_points[entry.dir_index].push((tp.clone(), log.recovery_point()));
            high_watermarks[entry.dir_index].push((tp.clone(), log.high_watermark()));
            log_start_offsets[entry.dir_index].push((tp, log.log_start_offset()));
        }
        for (i, dir) in self.log_dirs.iter().enumerate() {
            write_checkpoint(
                &dir.join(RECOVERY_POINT_CHECKPOINT_FILE),
                &recovery_points[i],
            )?;
            write_checkpoint(
                &dir.join(LOG_START_OFFSET_CHECKPOINT_FILE),
                &log_start_offsets[i],
            )?;
            write_checkpoint(
                &dir.join(HIGH_WATERMARK_CHECKPOINT_FILE),
                &high_watermarks[i],
            )?;
        }
        Ok(())
    }

    /// Closes every log (flush, producer snapshots), writes the checkpoints and then the
    /// clean-shutdown marker of each log dir whose logs all closed cleanly.
    pub fn shutdown(&self) -> Result<(), LogError> {
        let mut failed = vec![false; self.log_dirs.len()];
        let mut first_error = None;
        for (tp, entry) in self.entries() {
            if let Err(e) = lock(&entry.log).close() {
                tracing::error!(topic = %tp.0, partition = tp.1, error = %e, "closing log");
                failed[entry.dir_index] = true;
                first_error.get_or_insert(e);
            }
        }
        self.checkpoint()?;
        for (dir, failed) in self.log_dirs.iter().zip(failed) {
            if !failed {
                write_marker(&dir.join(CLEAN_SHUTDOWN_FILE))?;
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn read_checkpoint_or_empty(path: &Path) -> HashMap<(String, i32), i64> {
    read_checkpoint(path).unwrap_or_else(|e| {
        // Without a checkpoint, logs recover from offset 0 and start at their first
        // segment: slower, never wrong.
        tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable checkpoint");
        HashMap::new()
    })
}

fn write_marker(path: &Path) -> Result<(), LogError> {
    let file = fs::File::create(path)?;
    file.sync_all()?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_directory_names() {
        assert_eq!(
            parse_topic_partition("orders-0"),
            Some(("orders".into(), 0))
        );
        assert_eq!(
            parse_topic_partition("my-dashed.topic_x-12"),
            Some(("my-dashed.topic_x".into(), 12))
        );
        assert_eq!(
            parse_topic_partition("__consumer_offsets-49"),
            Some(("__consumer_offsets".into(), 49))
        );
        assert_eq!(parse_topic_partition("lost+found"), None);
        assert_eq!(parse_topic_partition("orders"), None);
        assert_eq!(parse_topic_partition("-3"), None);
        assert_eq!(parse_topic_partition("orders-x"), None);
        assert_eq!(parse_topic_partition("orders-0.abc-delete"), None);
    }
}
