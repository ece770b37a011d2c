//! The broker side of transactions: the pure `TransactionCoordinator` state machine run
//! by the [`CoordinatorRuntime`] over `__transaction_state`, and the writing of its
//! transaction markers.
//!
//! - **Coordinators.** A transactional id's coordinator is the leader of its
//!   `__transaction_state` partition (created on the first FindCoordinator for a
//!   transactional id); the partition's leader epoch is the coordinator epoch stamped on
//!   every marker, so a deposed coordinator's markers are fenced. Loading a partition
//!   resumes the markers of transactions caught half-way through a commit or abort.
//!   Appends wait for replication up to `request.timeout.ms`; a 1 s tick drives
//!   transaction timeouts and transactional id expiry (each at its configured interval).
//! - **Markers.** A `WriteMarkers` output becomes a task that sends WriteTxnMarkers to
//!   the current leader of every partition of the transaction — appended in-process for
//!   partitions led here — and retries the partitions that fail (no leader, leadership
//!   moving, replication timing out) every `MARKER_RETRY_BACKOFF` until all are written,
//!   then reports it with `on_markers_written`. Partitions of deleted topics are skipped.
//!   The task gives up when this broker stops coordinating the transaction (its
//!   `__transaction_state` partition moved): the next coordinator writes the markers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
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
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::Broker;
use crate::coordinator_runtime::{AppendJob, CoordinatorRuntime, StateMachine, Step};
use crate::internal_log::LogEntry;
use crate::network::{BrokerConnection, host_port};
use crate::replica::LeadershipChanges;

/// Kafka's name for the internal topic holding transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// How long a failed marker write waits before it is tried again.
const MARKER_RETRY_BACKOFF: Duration = Duration::from_millis(100);

impl StateMachine for TransactionCoordinator {
    type Output = Output;
    type Response = TxnResponse;
    const TOPIC: &'static str = TRANSACTION_STATE_TOPIC;

    fn route(output: Output) -> Step<TxnResponse, Output> {
        match output {
            Output::Respond {
                request_id,
                response,
            } => Step::Respond {
                request_id,
                response,
            },
            Output::Append {
                append_id,
                partition,
                records,
            } => Step::Append(AppendJob {
                append_id,
                partition,
                records: records.into_iter().map(|r| (r.key, r.value)).collect(),
                transactional: None,
            }),
            markers @ Output::WriteMarkers { .. } => Step::Other(markers),
        }
    }

    fn on_append_completed(
        &mut self,
        append_id: u64,
        error: Option<ResponseError>,
        now_ms: i64,
    ) -> Vec<Output> {
        TransactionCoordinator::on_append_completed(
            self,
            append_id,
            error.map_or(Ok(()), Err),
            now_ms,
        )
    }

    fn tick(&mut self, now_ms: i64) -> Vec<Output> {
        TransactionCoordinator::tick(self, now_ms)
    }

    fn is_partition_loaded(&self, partition: i32) -> bool {
        TransactionCoordinator::is_partition_loaded(self, partition)
    }

    fn begin_loading(&mut self, partition: i32) -> Vec<Output> {
        TransactionCoordinator::begin_loading(self, partition)
    }

    fn load_partition(
        &mut self,
        partition: i32,
        leader_epoch: i32,
        entries: Vec<LogEntry>,
        now_ms: i64,
    ) -> Result<Vec<Output>, String> {
        let records = entries.into_iter().filter_map(|e| match e {
            LogEntry::Record { key, value, .. } => Some(TransactionLogRecord { key, value }),
            LogEntry::Marker { .. } => None,
        });
        TransactionCoordinator::load_partition(self, partition, leader_epoch, records, now_ms)
            .map_err(|e| e.to_string())
    }

    fn unload_partition(&mut self, partition: i32) -> Vec<Output> {
        TransactionCoordinator::unload_partition(self, partition)
    }
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
    runtime: Arc<CoordinatorRuntime<TransactionCoordinator>>,
    /// Connections to the other brokers for WriteTxnMarkers, by broker id.
    connections: tokio::sync::Mutex<HashMap<i32, BrokerConnection>>,
    num_partitions: i32,
}

impl TransactionManager {
    pub fn new(
        config: TransactionCoordinatorConfig,
        append_timeout: Duration,
    ) -> TransactionManager {
        let num_partitions = config.transaction_state_log_num_partitions;
        TransactionManager {
            runtime: Arc::new(CoordinatorRuntime::new(
                TransactionCoordinator::new(config),
                append_timeout,
                Duration::from_secs(1),
            )),
            connections: tokio::sync::Mutex::new(HashMap::new()),
            num_partitions,
        }
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
        self.runtime.query(f)
    }

    /// Runs a call whose answer comes later (see [`CoordinatorRuntime::call`]).
    pub async fn call(
        &self,
        f: impl FnOnce(&mut TransactionCoordinator, u64, i64) -> Vec<Output>,
    ) -> Option<TxnResponse> {
        self.runtime.call(f).await
    }

    pub fn on_leadership_changes(&self, broker: &Broker, changes: &LeadershipChanges) {
        self.runtime.on_leadership_changes(broker, changes);
    }

    pub fn stats(&self) -> strata_transaction_coordinator::TransactionCoordinatorStats {
        self.query(|c| c.stats())
    }

    /// Whether this broker still coordinates `__transaction_state` partition
    /// `partition` at `coordinator_epoch`.
    fn coordinates(c: &TransactionCoordinator, partition: i32, coordinator_epoch: i32) -> bool {
        c.loaded_partitions()
            .contains(&(partition, coordinator_epoch))
    }

    /// Runs the coordinator: its appender, its clock, and a marker-writing task for every
    /// transaction that ends.
    pub async fn run(self: Arc<Self>, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
        tokio::spawn(
            self.runtime
                .clone()
                .run_appender(broker.clone(), shutdown.clone()),
        );
        tokio::spawn(self.runtime.clone().run_ticks(shutdown.clone()));
        let Some(mut rx) = self.runtime.take_other_outputs() else {
            return;
        };
        loop {
            let output = tokio::select! {
                output = rx.recv() => match output {
                    Some(output) => output,
                    None => return,
                },
                _ = shutdown.changed() => return,
            };
            let Output::WriteMarkers {
                transactional_id,
                producer_id,
                producer_epoch,
                coordinator_epoch,
                result,
                partitions,
            } = output
            else {
                continue;
            };
            let job = MarkerJob {
                transactional_id,
                producer_id,
                producer_epoch,
                coordinator_epoch,
                commit: result == TransactionResult::Commit,
                partitions,
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
            let coordinating = self
                .runtime
                .query(|c| Self::coordinates(c, log_partition, job.coordinator_epoch));
            if *shutdown.borrow() || !coordinating {
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
                self.runtime.update(|c, now| {
                    if Self::coordinates(c, log_partition, job.coordinator_epoch) {
                        c.on_markers_written(
                            &job.transactional_id,
                            job.producer_id,
                            job.producer_epoch,
                            now,
                        )
                    } else {
                        Vec::new()
                    }
                });
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
