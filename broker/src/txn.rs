//! The broker side of transactions: runs the pure `TransactionCoordinator` state machine,
//! persists what it asks for in `__transaction_state`, writes transaction markers to the
//! partition leaders, and follows the leadership of the transaction log's partitions.
//!
//! - **Leadership.** A transactional id's coordinator is the leader of its
//!   `__transaction_state` partition; the partition's leader epoch is the coordinator
//!   epoch stamped on every marker, so a deposed coordinator's markers are fenced. When
//!   LeaderAndIsr makes this broker a partition's leader, the partition is read back and
//!   its transactions loaded (those caught half-way through a commit or abort get their
//!   markers written again); when it becomes a follower, they are unloaded and waiting
//!   requests answered NOT_COORDINATOR.
//! - **Appends off the lock.** As for groups: calls into the coordinator run under one
//!   mutex never held across IO, and an `Output::Append` goes to an appender task that
//!   writes the records as leader with acks=all and reports the outcome.
//! - **Markers.** An `Output::WriteMarkers` becomes a task that sends WriteTxnMarkers to
//!   the current leader of every partition of the transaction — appended directly for
//!   partitions led here — and retries the partitions that fail (no leader, leadership
//!   moving, replication timing out) every `MARKER_RETRY_BACKOFF` until all are written,
//!   then reports it with `on_markers_written`. Partitions of deleted topics are skipped.
//!   The task gives up when this broker stops coordinating the transaction (its
//!   `__transaction_state` partition moved): the next coordinator writes the markers.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;
use strata_transaction_coordinator::{
    Output, TransactionCoordinator, TransactionCoordinatorConfig, TransactionLogRecord,
    TransactionResult, TxnResponse,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::internal_log::{self, LogEntry};
use crate::network::{BrokerConnection, host_port};
use crate::replica::{LeadershipChanges, Partition};
use crate::{Broker, now_ms};

/// Kafka's name for the internal topic holding transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// How long a failed marker write waits before it is tried again.
const MARKER_RETRY_BACKOFF: Duration = Duration::from_millis(100);

struct AppendJob {
    append_id: u64,
    partition: i32,
    records: Vec<TransactionLogRecord>,
}

/// One transaction's markers to write.
struct MarkerJob {
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    commit: bool,
    partitions: Vec<(String, i32)>,
}

pub struct TransactionManager {
    inner: Mutex<Inner>,
    next_request_id: AtomicU64,
    appends: mpsc::UnboundedSender<AppendJob>,
    appends_rx: Mutex<Option<mpsc::UnboundedReceiver<AppendJob>>>,
    markers: mpsc::UnboundedSender<MarkerJob>,
    markers_rx: Mutex<Option<mpsc::UnboundedReceiver<MarkerJob>>>,
    /// Connections to the other brokers for WriteTxnMarkers, by broker id.
    connections: tokio::sync::Mutex<HashMap<i32, BrokerConnection>>,
    num_partitions: i32,
}

struct Inner {
    coordinator: TransactionCoordinator,
    waiting: HashMap<u64, oneshot::Sender<TxnResponse>>,
}

impl TransactionManager {
    pub fn new(config: TransactionCoordinatorConfig) -> TransactionManager {
        let (appends, appends_rx) = mpsc::unbounded_channel();
        let (markers, markers_rx) = mpsc::unbounded_channel();
        let num_partitions = config.transaction_state_log_num_partitions;
        TransactionManager {
            inner: Mutex::new(Inner {
                coordinator: TransactionCoordinator::new(config),
                waiting: HashMap::new(),
            }),
            next_request_id: AtomicU64::new(1),
            appends,
            appends_rx: Mutex::new(Some(appends_rx)),
            markers,
            markers_rx: Mutex::new(Some(markers_rx)),
            connections: tokio::sync::Mutex::new(HashMap::new()),
            num_partitions,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `__transaction_state` partition of a transactional id.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        strata_transaction_coordinator::transaction_log::partition_for(
            transactional_id,
            self.num_partitions,
        )
    }

    /// Runs `f` against the coordinator, for calls that answer at once.
    pub fn query<T>(&self, f: impl FnOnce(&TransactionCoordinator) -> T) -> T {
        f(&self.lock().coordinator)
    }

    /// Runs a call whose answer comes as an `Output::Respond` for a fresh request id —
    /// maybe now, maybe after an append — and waits for it.
    pub async fn call(
        &self,
        f: impl FnOnce(&mut TransactionCoordinator, u64, i64) -> Vec<Output>,
    ) -> Option<TxnResponse> {
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.lock();
            inner.waiting.insert(request_id, tx);
            let outputs = f(&mut inner.coordinator, request_id, now_ms());
            self.execute(&mut inner, outputs);
        }
        rx.await.ok()
    }

    /// Carries out outputs in order: answers now, appends and markers queued.
    fn execute(&self, inner: &mut Inner, outputs: Vec<Output>) {
        for output in outputs {
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
                    let _ = self.appends.send(AppendJob {
                        append_id,
                        partition,
                        records,
                    });
                }
                Output::WriteMarkers {
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    coordinator_epoch,
                    result,
                    partitions,
                } => {
                    let _ = self.markers.send(MarkerJob {
                        transactional_id,
                        producer_id,
                        producer_epoch,
                        coordinator_epoch,
                        commit: result == TransactionResult::Commit,
                        partitions,
                    });
                }
            }
        }
    }

    fn complete_append(&self, append_id: u64, error: Option<ResponseError>) {
        let mut inner = self.lock();
        let result = match error {
            None => Ok(()),
            Some(e) => Err(e),
        };
        let outputs = inner
            .coordinator
            .on_append_completed(append_id, result, now_ms());
        self.execute(&mut inner, outputs);
    }

    /// Whether this broker still coordinates `__transaction_state` partition
    /// `partition` at `coordinator_epoch`.
    fn coordinates(&self, partition: i32, coordinator_epoch: i32) -> bool {
        Self::coordinates_locked(&self.lock(), partition, coordinator_epoch)
    }

    fn coordinates_locked(inner: &Inner, partition: i32, coordinator_epoch: i32) -> bool {
        inner
            .coordinator
            .loaded_partitions()
            .contains(&(partition, coordinator_epoch))
    }

    /// Writes queued appends in order and completes each once it is replicated.
    pub async fn run_appender(
        self: Arc<Self>,
        broker: Arc<Broker>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let Some(mut rx) = self.appends_rx.lock().expect("appender").take() else {
            return;
        };
        loop {
            let job = tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
                _ = shutdown.changed() => return,
            };
            let records = job.records.into_iter().map(|r| (r.key, r.value));
            match internal_log::append(
                &broker,
                TRANSACTION_STATE_TOPIC,
                job.partition,
                records,
                None,
            ) {
                Err(error) => self.complete_append(job.append_id, Some(error)),
                Ok((partition, required_offset)) => {
                    let manager = self.clone();
                    let broker = broker.clone();
                    let timeout = broker.config.request_timeout();
                    tokio::spawn(async move {
                        let error = broker
                            .replica_manager
                            .wait_for_replication(vec![(partition, required_offset)], timeout)
                            .await
                            .pop()
                            .flatten();
                        manager.complete_append(job.append_id, error);
                    });
                }
            }
        }
    }

    /// Starts a marker-writing task for every transaction that ends.
    pub async fn run_marker_writer(
        self: Arc<Self>,
        broker: Arc<Broker>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let Some(mut rx) = self.markers_rx.lock().expect("markers").take() else {
            return;
        };
        loop {
            let job = tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
                _ = shutdown.changed() => return,
            };
            let manager = self.clone();
            let broker = broker.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { manager.write_markers(&broker, job, shutdown).await });
        }
    }

    /// Writes one transaction's markers to every partition's leader until all are
    /// written, this broker stops coordinating the transaction, or it shuts down.
    async fn write_markers(
        &self,
        broker: &Broker,
        job: MarkerJob,
        shutdown: watch::Receiver<bool>,
    ) {
        let log_partition = self.partition_for(&job.transactional_id);
        let mut pending = job.partitions.clone();
        let mut attempts = 0u32;
        loop {
            if *shutdown.borrow() || !self.coordinates(log_partition, job.coordinator_epoch) {
                debug!(transactional_id = %job.transactional_id, "no longer the coordinator: markers left to the next one");
                return;
            }
            let snapshot = broker.cache.snapshot();
            let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
            pending.retain(|(topic, partition)| {
                let Some(t) = snapshot.topics.get(topic) else {
                    // The topic was deleted: its partitions need no marker.
                    info!(transactional_id = %job.transactional_id, %topic, "skipping the transaction marker of a deleted topic");
                    return false;
                };
                match t
                    .partitions
                    .get(partition)
                    .map(|p| p.leader)
                    .filter(|l| *l >= 0)
                {
                    Some(leader) => {
                        by_leader
                            .entry(leader)
                            .or_default()
                            .push((topic.clone(), *partition));
                        true
                    }
                    // No leader now: tried again after the backoff.
                    None => true,
                }
            });
            let listener = &broker.inter_broker_listener;
            for (leader, partitions) in by_leader {
                let request = marker_request(&job, &partitions);
                let response = if leader == broker.config.broker_id {
                    Ok(crate::api::write_txn_markers::write_markers(
                        broker,
                        &request,
                        broker.config.request_timeout(),
                    )
                    .await)
                } else {
                    let addr = snapshot
                        .brokers
                        .get(&leader)
                        .and_then(|b| b.endpoint(listener))
                        .map(|(host, port)| host_port(host, port));
                    match addr {
                        Some(addr) => self.send(broker, leader, &addr, &request).await,
                        None => Err(format!("broker {leader} has no {listener} endpoint")),
                    }
                };
                match response {
                    Ok(response) => {
                        for marker in response.markers {
                            for topic in marker.topics {
                                for p in topic.partitions {
                                    let error = ResponseError::try_from_code(p.error_code);
                                    if let Some(error) = error {
                                        debug!(transactional_id = %job.transactional_id, topic = %topic.name.0, partition = p.partition_index, ?error, "transaction marker not written; retrying");
                                        continue;
                                    }
                                    pending.retain(|(t, i)| {
                                        !(t.as_str() == topic.name.0.as_str()
                                            && *i == p.partition_index)
                                    });
                                }
                            }
                        }
                    }
                    Err(reason) => {
                        debug!(transactional_id = %job.transactional_id, leader, %reason, "WriteTxnMarkers failed; retrying");
                    }
                }
            }
            if pending.is_empty() {
                let mut inner = self.lock();
                if Self::coordinates_locked(&inner, log_partition, job.coordinator_epoch) {
                    let outputs = inner.coordinator.on_markers_written(
                        &job.transactional_id,
                        job.producer_id,
                        job.producer_epoch,
                        now_ms(),
                    );
                    self.execute(&mut inner, outputs);
                }
                return;
            }
            attempts += 1;
            if attempts.is_multiple_of(100) {
                warn!(transactional_id = %job.transactional_id, pending = ?pending, attempts, "transaction markers still not written");
            }
            tokio::time::sleep(MARKER_RETRY_BACKOFF).await;
        }
    }

    /// Sends WriteTxnMarkers to broker `id`, over a kept connection.
    async fn send(
        &self,
        broker: &Broker,
        id: i32,
        addr: &str,
        request: &WriteTxnMarkersRequest,
    ) -> Result<kafka_protocol::messages::WriteTxnMarkersResponse, String> {
        let mut connections = self.connections.lock().await;
        if connections.get(&id).is_none_or(|c| c.addr() != addr) {
            let client_id = format!("broker-{}-txn-marker-sender", broker.config.broker_id);
            let connection = broker
                .inter_broker_connector
                .connect(addr, &client_id)
                .await
                .map_err(|e| e.to_string())?;
            connections.insert(id, connection);
        }
        let connection = connections.get_mut(&id).expect("connected");
        match connection.send(request, 1).await {
            Ok(response) => Ok(response),
            Err(e) => {
                connections.remove(&id);
                Err(e.to_string())
            }
        }
    }

    /// Drives time: transaction timeouts and transactional id expiry (each checked at its
    /// own configured interval by the coordinator).
    pub async fn run_ticks(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    let mut inner = self.lock();
                    let outputs = inner.coordinator.tick(now_ms());
                    self.execute(&mut inner, outputs);
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Follows LeaderAndIsr for `__transaction_state`: loads the transactions of
    /// partitions this broker now leads, unloads those it no longer does.
    pub fn on_leadership_changes(self: &Arc<Self>, broker: &Broker, changes: &LeadershipChanges) {
        for ((topic, partition), _) in &changes.became_follower {
            if topic == TRANSACTION_STATE_TOPIC {
                let mut inner = self.lock();
                let loaded = inner.coordinator.is_partition_loaded(*partition);
                // Also ends a load in progress.
                let outputs = inner.coordinator.unload_partition(*partition);
                self.execute(&mut inner, outputs);
                if loaded {
                    info!(partition, "unloaded transactions: no longer the leader");
                }
            }
        }
        for ((topic, partition), epoch) in &changes.became_leader {
            if topic != TRANSACTION_STATE_TOPIC {
                continue;
            }
            let Some(p) = broker.replica_manager.get_partition(topic, *partition) else {
                continue;
            };
            let (partition, epoch) = (*partition, *epoch);
            {
                // Until it is read, its transactional ids are told to retry
                // (COORDINATOR_LOAD_IN_PROGRESS).
                let mut inner = self.lock();
                let outputs = inner.coordinator.begin_loading(partition);
                self.execute(&mut inner, outputs);
            }
            let manager = self.clone();
            tokio::task::spawn_blocking(move || manager.load_partition(&p, partition, epoch));
        }
    }

    /// Reads a partition this broker leads and loads its transactions, unless leadership
    /// moved on meanwhile.
    fn load_partition(&self, p: &Partition, partition: i32, epoch: i32) {
        let records: Vec<TransactionLogRecord> = match internal_log::read_all(p) {
            Ok(entries) => entries
                .into_iter()
                .filter_map(|e| match e {
                    LogEntry::Record { key, value, .. } => {
                        Some(TransactionLogRecord { key, value })
                    }
                    LogEntry::Marker { .. } => None,
                })
                .collect(),
            Err(e) => {
                warn!(partition, error = %e, "cannot read __transaction_state partition; its transactions are unavailable");
                return;
            }
        };
        let count = records.len();
        let mut inner = self.lock();
        let (leader, current_epoch) = p.leader_and_epoch();
        if !p.is_leader() || current_epoch != epoch || leader.is_none() {
            return;
        }
        match inner
            .coordinator
            .load_partition(partition, epoch, records, now_ms())
        {
            Ok(outputs) => {
                self.execute(&mut inner, outputs);
                if count > 0 {
                    info!(partition, records = count, "loaded transactions");
                }
            }
            Err(e) => warn!(partition, error = %e, "bad record in __transaction_state"),
        }
    }

    pub fn stats(&self) -> strata_transaction_coordinator::TransactionCoordinatorStats {
        self.lock().coordinator.stats()
    }
}

fn marker_request(job: &MarkerJob, partitions: &[(String, i32)]) -> WriteTxnMarkersRequest {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        topics.entry(topic).or_default().push(*partition);
    }
    WriteTxnMarkersRequest::default().with_markers(vec![
        WritableTxnMarker::default()
            .with_producer_id(ProducerId(job.producer_id))
            .with_producer_epoch(job.producer_epoch)
            .with_transaction_result(job.commit)
            .with_coordinator_epoch(job.coordinator_epoch)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        WritableTxnMarkerTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                            .with_partition_indexes(partitions)
                    })
                    .collect(),
            ),
    ])
}
