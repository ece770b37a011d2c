//! The broker side of consumer groups: runs the pure `GroupCoordinator` state machine,
//! persists what it asks for in `__consumer_offsets`, and parks requests whose answers
//! come later (JoinGroup and SyncGroup wait for the rebalance).
//!
//! Every call into the coordinator happens under one mutex and its outputs are carried
//! out before the lock is released, in order: an `Append` is written to the offsets
//! topic partition and reported back with `on_append_completed` (which may release the
//! held-back OffsetCommit or SyncGroup answers), a `Respond` completes the oneshot channel
//! of the waiting connection. If that connection went away, the answer is dropped, as
//! Kafka drops responses to closed channels.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strata_group_coordinator::{
    GroupCoordinator, GroupCoordinatorConfig, GroupResponse, OffsetsTopicRecord, Output,
};
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use crate::{Broker, now_ms};

/// Kafka's name for the internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

pub struct GroupManager {
    inner: Mutex<Inner>,
    next_request_id: AtomicU64,
}

struct Inner {
    coordinator: GroupCoordinator,
    waiting: HashMap<u64, oneshot::Sender<GroupResponse>>,
}

impl GroupManager {
    pub fn new(config: GroupCoordinatorConfig, seed: u64) -> GroupManager {
        GroupManager {
            inner: Mutex::new(Inner {
                coordinator: GroupCoordinator::new(config, seed),
                waiting: HashMap::new(),
            }),
            next_request_id: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` against the coordinator, synchronously, for calls that answer at once.
    pub fn query<T>(&self, f: impl FnOnce(&GroupCoordinator) -> T) -> T {
        f(&self.lock().coordinator)
    }

    /// Runs a mutating call that answers at once and emits no outputs (Heartbeat).
    pub fn call_sync<T>(&self, f: impl FnOnce(&mut GroupCoordinator) -> T) -> T {
        f(&mut self.lock().coordinator)
    }

    /// Runs a call whose answer comes as an `Output::Respond` for a fresh request id —
    /// maybe now, maybe after a rebalance — and waits for it.
    pub async fn call(
        &self,
        broker: &Broker,
        f: impl FnOnce(&mut GroupCoordinator, u64, i64) -> Vec<Output>,
    ) -> Option<GroupResponse> {
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.lock();
            inner.waiting.insert(request_id, tx);
            let outputs = f(&mut inner.coordinator, request_id, now_ms());
            self.execute(&mut inner, broker, outputs);
        }
        rx.await.ok()
    }

    /// Carries out outputs in order; appends may produce further outputs.
    fn execute(&self, inner: &mut Inner, broker: &Broker, outputs: Vec<Output>) {
        let mut queue: std::collections::VecDeque<Output> = outputs.into();
        while let Some(output) = queue.pop_front() {
            match output {
                Output::Respond {
                    request_id,
                    response,
                } => {
                    if let Some(tx) = inner.waiting.remove(&request_id) {
                        let _ = tx.send(response);
                    }
                }
                Output::Append {
                    append_id,
                    partition,
                    records,
                } => {
                    let error = append_offsets_records(broker, partition, &records).err();
                    let more = inner
                        .coordinator
                        .on_append_completed(append_id, error, now_ms());
                    // The released answers go before anything that followed the append.
                    for o in more.into_iter().rev() {
                        queue.push_front(o);
                    }
                }
            }
        }
    }

    /// Drives time: session expiry, rebalance timeouts, offset retention.
    pub async fn run_ticks(
        self: Arc<Self>,
        broker: Arc<Broker>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    let mut inner = self.lock();
                    let outputs = inner.coordinator.tick(now_ms());
                    self.execute(&mut inner, &broker, outputs);
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Rebuilds groups and offsets from every partition of `__consumer_offsets`.
    pub fn load(&self, broker: &Broker) {
        let partitions = broker.replica_manager.partitions_of(OFFSETS_TOPIC);
        let mut inner = self.lock();
        let mut groups_loaded = 0usize;
        for partition in partitions {
            let records = match read_all_records(&partition) {
                Ok(r) => r,
                Err(e) => {
                    warn!(partition = partition.partition, error = %e, "cannot read __consumer_offsets partition; its groups are unavailable");
                    continue;
                }
            };
            groups_loaded += records.len();
            if let Err(e) = inner
                .coordinator
                .load_partition(partition.partition, records, now_ms())
            {
                warn!(partition = partition.partition, error = %e, "bad record in __consumer_offsets");
            }
        }
        info!(
            records = groups_loaded,
            "loaded consumer groups from __consumer_offsets"
        );
    }

    pub fn stats(&self) -> strata_group_coordinator::GroupCoordinatorStats {
        self.lock().coordinator.stats()
    }

    pub fn committed_offsets(&self) -> BTreeMap<String, Vec<(String, i32, i64)>> {
        let inner = self.lock();
        let stats = inner.coordinator.stats();
        let mut groups: Vec<String> = stats.members_by_group.keys().cloned().collect();
        groups.sort();
        groups
            .into_iter()
            .map(|g| {
                let offsets = inner.coordinator.committed_offsets(&g);
                (g, offsets)
            })
            .collect()
    }
}

/// Writes coordinator records as one batch to a partition of the offsets topic.
fn append_offsets_records(
    broker: &Broker,
    partition: i32,
    records: &[OffsetsTopicRecord],
) -> Result<(), ResponseError> {
    let Some(p) = broker
        .replica_manager
        .get_partition(OFFSETS_TOPIC, partition)
    else {
        return Err(ResponseError::NotCoordinator);
    };
    let now = now_ms();
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: p.leader_epoch,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: now,
            key: Some(r.key.clone()),
            value: r.value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|_| ResponseError::UnknownServerError)?;
    match p.append_records_to_leader(&buf, now) {
        Ok(_) => {
            broker.replica_manager.notify_appended();
            Ok(())
        }
        Err(e) => {
            warn!(partition, error = %e, "appending to __consumer_offsets failed");
            // Kafka maps storage failures of the offsets topic to a retriable error.
            Err(ResponseError::CoordinatorNotAvailable)
        }
    }
}

/// Reads a whole partition as (key, value) records, in offset order.
fn read_all_records(
    partition: &crate::replica::Partition,
) -> Result<Vec<OffsetsTopicRecord>, strata_storage::LogError> {
    let mut out = Vec::new();
    let mut position = partition.offsets().log_start_offset;
    loop {
        let (data, offsets) = partition.read(position, 1024 * 1024, true)?;
        if data.records.is_empty() || position >= offsets.high_watermark {
            return Ok(out);
        }
        let mut bytes: Bytes = data.records;
        let before = position;
        while bytes.len() >= 61 {
            // Advance past the whole batch even when compaction left its tail empty.
            let base_offset = i64::from_be_bytes(bytes[0..8].try_into().expect("8 bytes"));
            let last_offset_delta = i32::from_be_bytes(bytes[23..27].try_into().expect("4 bytes"));
            let set = RecordBatchDecoder::decode(&mut bytes)
                .map_err(|e| strata_storage::LogError::CorruptRecord(e.to_string()))?;
            for r in set.records {
                if r.offset >= position
                    && let Some(key) = r.key
                {
                    out.push(OffsetsTopicRecord {
                        key,
                        value: r.value,
                    });
                }
            }
            position = position.max(base_offset + i64::from(last_offset_delta) + 1);
        }
        if position == before {
            return Ok(out);
        }
    }
}
