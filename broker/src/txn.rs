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
//! - **Markers.** A `WriteMarkers` output becomes a task that has the current leader of
//!   every partition of the transaction write its marker — all leaders at once — and
//!   retries the partitions that fail (no leader, leadership moving, replication timing
//!   out) every `MARKER_RETRY_BACKOFF` until all are written, then reports it with
//!   `on_markers_written`. Partitions of deleted topics are skipped. The task gives up
//!   when this broker stops coordinating the transaction (its `__transaction_state`
//!   partition moved): the next coordinator writes the markers.
//!   Markers go through one queue per leader, as Kafka's `TransactionMarkerChannelManager`
//!   sends them: one WriteTxnMarkers at a time per broker, carrying every marker queued
//!   for it meanwhile, so many transactions ending together cost a few requests instead
//!   of one each (appended in-process for partitions led here).
//! - **Verification** (KIP-890 part 1, Kafka's `AddPartitionsToTxnManager`). A partition
//!   leader about to append a producer's first write of a transaction asks the
//!   transactional id's coordinator — in-process, or with AddPartitionsToTxn v4
//!   `verify_only` over the inter-broker listener — whether the partition is in the open
//!   transaction, and answers the producer as Kafka's leader does when it is not.
//!
//! Other brokers are reached over one kept connection per broker and purpose (markers,
//! verification), so a verification never queues behind a marker write that waits for
//! its replicas.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::write_txn_markers_response::WritableTxnMarkerResult;
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ProducerId, TopicName, TransactionalId,
    WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::{Request, StrBytes};
use strata_transaction_coordinator::{
    Output, TransactionCoordinator, TransactionCoordinatorConfig, TransactionLogRecord,
    TransactionResult, TxnResponse,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::Broker;
use crate::coordinator_runtime::{AppendJob, CoordinatorRuntime, StateMachine, Step};
use crate::internal_log::LogEntry;
use crate::network::{KeptConnection, host_port};
use crate::replica::LeadershipChanges;

/// Kafka's name for the internal topic holding transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// How long a failed marker write waits before it is tried again.
const MARKER_RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// The most markers one WriteTxnMarkers carries.
const MAX_MARKERS_PER_REQUEST: usize = 1000;

/// A marker queued for a leader, and where its outcome goes.
type QueuedMarker = (
    WritableTxnMarker,
    oneshot::Sender<Result<WritableTxnMarkerResult, String>>,
);

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
                guard: None,
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

/// What a connection to another broker is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Channel {
    Markers,
    Verification,
}

impl Channel {
    fn client_id(self, broker_id: i32) -> String {
        match self {
            Channel::Markers => format!("broker-{broker_id}-txn-marker-sender"),
            Channel::Verification => format!("broker-{broker_id}-add-partitions-to-txn-sender"),
        }
    }
}

/// The version of AddPartitionsToTxn that batches transactions and can verify.
const ADD_PARTITIONS_TO_TXN_VERIFY_VERSION: i16 = 4;

pub struct TransactionManager {
    runtime: Arc<CoordinatorRuntime<TransactionCoordinator>>,
    /// Connections to the other brokers, by broker id and purpose.
    connections: std::sync::Mutex<HashMap<(i32, Channel), Arc<KeptConnection>>>,
    /// Markers waiting to be sent, one queue (and sending task) per leader.
    marker_queues: std::sync::Mutex<HashMap<i32, mpsc::UnboundedSender<QueuedMarker>>>,
    num_partitions: i32,
    /// Partitions verified with their coordinator, and those that were not.
    pub verified_total: AtomicU64,
    pub verification_failures_total: AtomicU64,
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
            connections: std::sync::Mutex::new(HashMap::new()),
            marker_queues: std::sync::Mutex::new(HashMap::new()),
            num_partitions,
            verified_total: AtomicU64::new(0),
            verification_failures_total: AtomicU64::new(0),
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
        self: &Arc<Self>,
        broker: &Arc<Broker>,
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
            let writes = by_leader.into_iter().map(|(leader, partitions)| {
                let marker = marker_for(&job, &partitions);
                async move { (leader, self.write_marker(broker, leader, marker).await) }
            });
            for (leader, outcome) in futures::future::join_all(writes).await {
                match outcome {
                    Ok(result) => {
                        for topic in result.topics {
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

    /// Has `leader` write one transaction's marker, through its queue.
    async fn write_marker(
        self: &Arc<Self>,
        broker: &Arc<Broker>,
        leader: i32,
        marker: WritableTxnMarker,
    ) -> Result<WritableTxnMarkerResult, String> {
        let queue = self
            .marker_queues
            .lock()
            .expect("marker queues lock")
            .entry(leader)
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(self.clone().send_markers(broker.clone(), leader, rx));
                tx
            })
            .clone();
        let (tx, rx) = oneshot::channel();
        queue
            .send((marker, tx))
            .map_err(|_| "the marker queue stopped".to_string())?;
        rx.await
            .map_err(|_| "the marker queue stopped".to_string())?
    }

    /// The sending side of `leader`'s queue: one WriteTxnMarkers at a time, each with
    /// every marker queued since the last one went out.
    async fn send_markers(
        self: Arc<Self>,
        broker: Arc<Broker>,
        leader: i32,
        mut queue: mpsc::UnboundedReceiver<QueuedMarker>,
    ) {
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_MARKERS_PER_REQUEST {
                match queue.try_recv() {
                    Ok(queued) => batch.push(queued),
                    Err(_) => break,
                }
            }
            let (markers, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let request = WriteTxnMarkersRequest::default().with_markers(markers);
            let response = if leader == broker.config.broker_id {
                Ok(crate::api::write_txn_markers::write_markers(
                    &broker,
                    &request,
                    broker.config.request_timeout(),
                )
                .await)
            } else {
                self.send(&broker, leader, Channel::Markers, &request, 1)
                    .await
            };
            match response {
                // Answered in the request's order, one result per marker.
                Ok(response) => {
                    let mut results = response.markers.into_iter();
                    for reply in replies {
                        let result = results
                            .next()
                            .ok_or_else(|| "WriteTxnMarkers answered fewer markers".to_string());
                        let _ = reply.send(result);
                    }
                }
                Err(reason) => {
                    for reply in replies {
                        let _ = reply.send(Err(reason.clone()));
                    }
                }
            }
        }
    }

    /// Asks the coordinator of `transactional_id` whether `partitions` are in the
    /// producer's open transaction (KIP-890 part 1). Returns the partitions that are not
    /// verified, with the error the coordinator gave — translated as Kafka's
    /// `AddPartitionsToTxnManager` does: PRODUCER_FENCED is INVALID_PRODUCER_EPOCH, and
    /// TRANSACTION_ABORTABLE INVALID_TXN_STATE for a request version that predates it
    /// (`abortable_known` false: Produce before v11, TxnOffsetCommit before v5).
    /// A coordinator that cannot be reached fails them all (NETWORK_EXCEPTION,
    /// COORDINATOR_NOT_AVAILABLE).
    pub async fn verify(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        abortable_known: bool,
    ) -> HashMap<(String, i32), ResponseError> {
        let all = |error: ResponseError| -> HashMap<(String, i32), ResponseError> {
            partitions.iter().map(|p| (p.clone(), error)).collect()
        };
        let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(
                    transactional_id.to_string(),
                )))
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(producer_epoch)
                .with_verify_only(true)
                .with_topics(
                    by_topic(partitions)
                        .into_iter()
                        .map(|(topic, partitions)| {
                            AddPartitionsToTxnTopic::default()
                                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                                .with_partitions(partitions)
                        })
                        .collect(),
                ),
        ]);
        let snapshot = broker.cache.snapshot();
        let coordinator = snapshot
            .topics
            .get(TRANSACTION_STATE_TOPIC)
            .and_then(|t| t.partitions.get(&self.partition_for(transactional_id)))
            .map(|p| p.leader)
            .filter(|leader| *leader >= 0);
        let response: Result<AddPartitionsToTxnResponse, ResponseError> = match coordinator {
            None => Err(ResponseError::CoordinatorNotAvailable),
            Some(leader) if leader == broker.config.broker_id => {
                let version = ADD_PARTITIONS_TO_TXN_VERIFY_VERSION;
                match self
                    .call(|c, id, now| c.handle_add_partitions_to_txn(request, version, id, now))
                    .await
                {
                    Some(TxnResponse::AddPartitionsToTxn(response)) => Ok(response),
                    _ => Err(ResponseError::NotCoordinator),
                }
            }
            Some(leader) => self
                .send(
                    broker,
                    leader,
                    Channel::Verification,
                    &request,
                    ADD_PARTITIONS_TO_TXN_VERIFY_VERSION,
                )
                .await
                .map_err(|reason| {
                    debug!(transactional_id, leader, %reason, "transaction verification failed to reach the coordinator");
                    ResponseError::NetworkException
                }),
        };
        let failed = match response {
            Err(error) => all(error),
            Ok(response) if response.error_code != 0 => {
                // A producer is never told about the brokers' own authorization.
                match ResponseError::try_from_code(response.error_code) {
                    Some(ResponseError::ClusterAuthorizationFailed) | None => {
                        all(ResponseError::InvalidTxnState)
                    }
                    Some(error) => all(error),
                }
            }
            Ok(response) => {
                let mut failed = HashMap::new();
                for result in response.results_by_transaction {
                    for topic in result.topic_results {
                        for p in topic.results_by_partition {
                            let error = match ResponseError::try_from_code(p.partition_error_code) {
                                None => continue,
                                Some(ResponseError::ProducerFenced) => {
                                    ResponseError::InvalidProducerEpoch
                                }
                                Some(ResponseError::TransactionAbortable) if !abortable_known => {
                                    ResponseError::InvalidTxnState
                                }
                                Some(error) => error,
                            };
                            failed.insert((topic.name.0.to_string(), p.partition_index), error);
                        }
                    }
                }
                failed
            }
        };
        self.verified_total
            .fetch_add((partitions.len() - failed.len()) as u64, Ordering::Relaxed);
        self.verification_failures_total
            .fetch_add(failed.len() as u64, Ordering::Relaxed);
        failed
    }

    /// Sends a request to broker `id` at its inter-broker endpoint, over the connection
    /// kept for `channel`, opening it (again) when there is none or the broker moved.
    async fn send<R: Request>(
        &self,
        broker: &Broker,
        id: i32,
        channel: Channel,
        request: &R,
        version: i16,
    ) -> Result<R::Response, String> {
        let listener = &broker.inter_broker_listener;
        let addr = broker
            .cache
            .snapshot()
            .brokers
            .get(&id)
            .and_then(|b| b.endpoint(listener))
            .map(|(host, port)| host_port(host, port))
            .ok_or_else(|| format!("broker {id} has no {listener} endpoint"))?;
        let connection = self
            .connections
            .lock()
            .expect("connections lock")
            .entry((id, channel))
            .or_default()
            .clone();
        let client_id = channel.client_id(broker.config.broker_id);
        connection
            .exchange(
                &broker.inter_broker_connector,
                &addr,
                &client_id,
                async |c| c.send(request, version).await,
            )
            .await
            .map_err(|e| e.to_string())
    }
}

/// Partition indexes by topic, topics in name order.
fn by_topic(partitions: &[(String, i32)]) -> BTreeMap<&str, Vec<i32>> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        topics.entry(topic).or_default().push(*partition);
    }
    topics
}

fn marker_for(job: &MarkerJob, partitions: &[(String, i32)]) -> WritableTxnMarker {
    WritableTxnMarker::default()
        .with_producer_id(ProducerId(job.producer_id))
        .with_producer_epoch(job.producer_epoch)
        .with_transaction_result(job.commit)
        .with_coordinator_epoch(job.coordinator_epoch)
        .with_topics(
            by_topic(partitions)
                .into_iter()
                .map(|(topic, partitions)| {
                    WritableTxnMarkerTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partition_indexes(partitions)
                })
                .collect(),
        )
}
