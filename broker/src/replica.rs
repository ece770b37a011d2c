//! Partitions and the `ReplicaManager` that owns them.
//!
//! A `Partition` is one replica of one topic-partition on this broker: its `Log`, its
//! leader epoch, and the offsets Kafka exposes — `log_end_offset` (LEO, next offset to be
//! written) and `high_watermark` (HW, the offset below which records are committed and
//! visible to consumers). On a single node the in-sync replica set is this broker alone,
//! so the HW advances with every append; when followers arrive, the HW becomes the minimum
//! LEO across the ISR and `acks=all` waits for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use kafka_protocol::ResponseError;
use strata_storage::{
    CleanStats, FetchDataInfo, Log, LogAppendInfo, LogConfig, LogError, LogManager,
};
use tokio::sync::watch;
use uuid::Uuid;

/// One replica of a topic-partition, led by this broker.
pub struct Partition {
    pub topic: String,
    pub partition: i32,
    pub topic_id: Uuid,
    /// The leader epoch clients see in Metadata and send back in Produce/Fetch.
    pub leader_epoch: i32,
    /// Brokers holding a replica; this broker first, as the preferred leader.
    pub replicas: Vec<i32>,
    /// The topic's `min.insync.replicas`, kept here so acks=all checks need no lookup.
    min_insync_replicas: AtomicI32,
    log: Arc<Mutex<Log>>,
}

impl Partition {
    fn log(&self) -> MutexGuard<'_, Log> {
        // A poisoned lock means a panic mid-append; the log's own invariants (all-or-nothing
        // appends) still hold, so keep serving rather than failing every later request.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The in-sync replica set: every replica, while this broker is the only one.
    pub fn isr(&self) -> &[i32] {
        &self.replicas
    }

    /// Appends as leader; also returns the log start offset, read under the same lock
    /// so a produce response needs no second trip to the log.
    pub fn append_records_to_leader(
        &self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<(LogAppendInfo, i64), LogError> {
        let mut log = self.log();
        let info = log.append_as_leader(records, self.leader_epoch, now_ms)?;
        Ok((info, log.log_start_offset()))
    }

    /// KIP-320's check of the leader epoch a client sent (-1: the client does not know
    /// it): newer than ours is UNKNOWN_LEADER_EPOCH (our metadata lags), older is
    /// FENCED_LEADER_EPOCH (the client's does).
    pub fn check_leader_epoch(&self, current_leader_epoch: i32) -> Result<(), ResponseError> {
        if current_leader_epoch > self.leader_epoch {
            Err(ResponseError::UnknownLeaderEpoch)
        } else if current_leader_epoch >= 0 && current_leader_epoch < self.leader_epoch {
            Err(ResponseError::FencedLeaderEpoch)
        } else {
            Ok(())
        }
    }

    /// Reads committed records (below the high watermark).
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_message: bool,
    ) -> Result<(FetchDataInfo, PartitionOffsets), LogError> {
        let log = self.log();
        let offsets = PartitionOffsets::of(&log);
        let data = log.read(
            fetch_offset,
            max_bytes,
            min_one_message,
            offsets.high_watermark,
        )?;
        Ok((data, offsets))
    }

    pub fn offsets(&self) -> PartitionOffsets {
        PartitionOffsets::of(&self.log())
    }

    pub fn fetch_offset_by_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        self.log().fetch_offset_by_timestamp(timestamp)
    }

    pub fn max_timestamp_and_offset(&self) -> Option<(i64, i64)> {
        self.log().max_timestamp_and_offset()
    }

    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        self.log().delete_records_before(offset)
    }

    pub fn min_insync_replicas(&self) -> i32 {
        self.min_insync_replicas.load(Ordering::Relaxed)
    }

    pub fn update_config(&self, config: LogConfig) {
        self.min_insync_replicas
            .store(config.min_insync_replicas, Ordering::Relaxed);
        self.log().update_config(config);
    }

    /// Compacts the log when its policy compacts and it is due (or `force`).
    pub fn clean(&self, now_ms: i64, force: bool) -> Result<CleanStats, LogError> {
        self.log().clean(now_ms, force)
    }

    pub fn size_and_segments(&self) -> (u64, usize) {
        let log = self.log();
        (log.size_in_bytes(), log.number_of_segments())
    }
}

/// A consistent snapshot of a partition's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
}

impl PartitionOffsets {
    fn of(log: &Log) -> PartitionOffsets {
        let log_end_offset = log.log_end_offset();
        PartitionOffsets {
            log_start_offset: log.log_start_offset(),
            log_end_offset,
            // Single replica: everything written is replicated to the whole ISR.
            high_watermark: log_end_offset,
        }
    }
}

/// Owns every partition this broker hosts and wakes long-polling fetchers on appends.
pub struct ReplicaManager {
    broker_id: i32,
    log_manager: LogManager,
    partitions: RwLock<HashMap<(String, i32), Arc<Partition>>>,
    /// Bumped after every append; Fetch requests waiting for `min_bytes` watch it.
    appended: watch::Sender<u64>,
}

impl ReplicaManager {
    pub fn new(broker_id: i32, log_manager: LogManager) -> ReplicaManager {
        ReplicaManager {
            broker_id,
            log_manager,
            partitions: RwLock::new(HashMap::new()),
            appended: watch::channel(0).0,
        }
    }

    pub fn log_manager(&self) -> &LogManager {
        &self.log_manager
    }

    pub fn get_partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .expect("partitions lock")
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    /// The partition a client request addresses, checked as Kafka checks it: it must be
    /// hosted here and the client's leader epoch must match ours.
    pub fn leader_partition(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
    ) -> Result<Arc<Partition>, ResponseError> {
        let p = self
            .get_partition(topic, partition)
            .ok_or(ResponseError::UnknownTopicOrPartition)?;
        p.check_leader_epoch(current_leader_epoch)?;
        Ok(p)
    }

    /// Opens (creating if needed) the log of a partition this broker leads.
    pub fn make_leader(
        &self,
        topic: &str,
        partition: i32,
        topic_id: Uuid,
        config: LogConfig,
    ) -> Result<Arc<Partition>, LogError> {
        if let Some(existing) = self.get_partition(topic, partition) {
            return Ok(existing);
        }
        let min_insync_replicas = AtomicI32::new(config.min_insync_replicas);
        let log = self
            .log_manager
            .get_or_create_log(topic, partition, config)?;
        let p = Arc::new(Partition {
            topic: topic.to_string(),
            partition,
            topic_id,
            leader_epoch: 0,
            replicas: vec![self.broker_id],
            min_insync_replicas,
            log,
        });
        self.partitions
            .write()
            .expect("partitions lock")
            .insert((topic.to_string(), partition), p.clone());
        Ok(p)
    }

    /// Stops hosting a partition and deletes its log.
    pub fn delete_partition(&self, topic: &str, partition: i32) -> Result<(), LogError> {
        self.partitions
            .write()
            .expect("partitions lock")
            .remove(&(topic.to_string(), partition));
        self.log_manager.delete_log(topic, partition)
    }

    pub fn partitions_of(&self, topic: &str) -> Vec<Arc<Partition>> {
        let mut v: Vec<_> = self
            .partitions
            .read()
            .expect("partitions lock")
            .values()
            .filter(|p| p.topic == topic)
            .cloned()
            .collect();
        v.sort_by_key(|p| p.partition);
        v
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        let mut v: Vec<_> = self
            .partitions
            .read()
            .expect("partitions lock")
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        v
    }

    /// Tells waiting fetchers that new records may be available.
    pub fn notify_appended(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }
}
