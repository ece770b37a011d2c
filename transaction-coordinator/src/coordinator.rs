//! The [`TransactionCoordinator`]: every transactional id of the loaded
//! `__transaction_state` partitions, what the broker asks of it, and what it must do in
//! return ([`Output`]).
//!
//! The API handlers live in submodules by Kafka API: `producer_id` (InitProducerId),
//! `partitions` (AddPartitionsToTxn, AddOffsetsToTxn), `end_txn` (EndTxn, the markers,
//! timeouts and expiry) and `admin` (DescribeTransactions, ListTransactions).

mod admin;
mod end_txn;
mod partitions;
mod producer_id;

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnResponse, AddPartitionsToTxnResponse, EndTxnResponse, InitProducerIdResponse,
    ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::config::TransactionCoordinatorConfig;
use crate::metadata::{NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TransactionMetadata, Transit};
use crate::transaction_log::{self, TransactionLogRecord, TransactionState};

/// A response to one of the transaction APIs that change state, ready to be encoded at
/// the request's version.
#[derive(Debug, Clone, PartialEq)]
pub enum TxnResponse {
    InitProducerId(InitProducerIdResponse),
    AddPartitionsToTxn(AddPartitionsToTxnResponse),
    AddOffsetsToTxn(AddOffsetsToTxnResponse),
    EndTxn(EndTxnResponse),
}

/// How a transaction ends: the control record (marker) written to its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TransactionResult {
    Commit,
    Abort,
}

/// What the broker must do after a call into the coordinator, in list order.
///
/// **Appends before answers.** An `Append` must be written to the given partition of
/// `__transaction_state` with `acks=all` and then reported back with
/// [`TransactionCoordinator::on_append_completed`] (success or failure). Every answer
/// that depends on the write (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
/// EndTxn) is held back and only comes out of `on_append_completed`.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send `response` on the connection waiting under `request_id`.
    Respond {
        request_id: u64,
        response: TxnResponse,
    },
    /// Append `records` (in order, as one batch) to partition `partition` of
    /// `__transaction_state`, then call `on_append_completed(append_id, ..)`.
    Append {
        append_id: u64,
        partition: i32,
        records: Vec<TransactionLogRecord>,
    },
    /// Write a `result` marker (an end-transaction control batch with this producer id,
    /// epoch and coordinator epoch) to the end of each of `partitions` — WriteTxnMarkers
    /// to their leaders, or a local append for partitions this broker leads — retrying
    /// until every one is written (a partition whose topic was deleted counts as written),
    /// then call [`TransactionCoordinator::on_markers_written`].
    WriteMarkers {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        result: TransactionResult,
        partitions: Vec<(String, i32)>,
    },
}

/// Counters and gauges the broker exports as metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransactionCoordinatorStats {
    /// Transactional ids in each state (every state present, zero included).
    pub transactions_by_state: BTreeMap<TransactionState, usize>,
    /// Transactions open (Ongoing).
    pub ongoing_transactions: usize,
    /// Transactions whose markers are being written.
    pub transactions_awaiting_markers: usize,
    /// `__transaction_state` partitions loaded here.
    pub loaded_partitions: usize,
    /// `__transaction_state` partitions being loaded.
    pub loading_partitions: usize,
    /// Transactions completed with commit markers.
    pub commits_total: u64,
    /// Transactions completed with abort markers (by the producer, a timeout or a fence).
    pub aborts_total: u64,
    /// Transactions aborted because they outlived their timeout.
    pub timed_out_aborts_total: u64,
    /// Ongoing transactions aborted because a new producer with the same transactional id
    /// called InitProducerId.
    pub producer_fences_total: u64,
    /// Transactional ids removed by `transactional.id.expiration.ms`.
    pub expired_transactional_ids_total: u64,
}

/// Who waits for the outcome of a state change, and how to answer them.
#[derive(Debug, Clone, PartialEq)]
enum Waiter {
    /// The coordinator's own change (a timeout abort, the completion after the markers).
    Nobody,
    InitProducerId {
        request_id: u64,
        version: i16,
    },
    /// An InitProducerId that found a transaction open and aborts it first: answered
    /// CONCURRENT_TRANSACTIONS once the abort is durable, so the producer retries.
    FencingInitProducerId {
        request_id: u64,
        version: i16,
    },
    /// AddPartitionsToTxn v0–v3: one transaction, every partition gets the outcome.
    AddPartitions {
        request_id: u64,
        version: i16,
        topics: Vec<(String, Vec<i32>)>,
    },
    /// One transaction of an AddPartitionsToTxn v4+ batch.
    AddPartitionsBatch {
        request_id: u64,
        index: usize,
        transactional_id: String,
        topics: Vec<(String, Vec<i32>)>,
    },
    AddOffsets {
        request_id: u64,
        version: i16,
    },
    EndTxn {
        request_id: u64,
        version: i16,
    },
}

/// What a successful append of a transition leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    InitProducerId,
    AddPartitions,
    /// PrepareCommit / PrepareAbort; `epoch_fence` when the coordinator bumped the epoch
    /// to fence the producer (timeout or InitProducerId).
    EndTxn {
        result: TransactionResult,
        epoch_fence: bool,
    },
    /// CompleteCommit / CompleteAbort after the markers.
    Complete,
}

#[derive(Debug)]
enum PendingAppend {
    Transition {
        transactional_id: String,
        partition: i32,
        coordinator_epoch: i32,
        transit: Transit,
        step: Step,
        waiter: Waiter,
    },
    /// Tombstones of expired transactional ids, with the epoch each had.
    Expiration {
        partition: i32,
        coordinator_epoch: i32,
        expired: Vec<(String, i16)>,
    },
}

/// A transaction whose markers are being written.
#[derive(Debug, Clone)]
struct AwaitingMarkers {
    producer_id: i64,
    producer_epoch: i16,
    /// The CompleteCommit / CompleteAbort transition to write once they are.
    complete: Transit,
}

/// A loaded `__transaction_state` partition.
#[derive(Debug)]
struct LoadedPartition {
    /// The partition's leader epoch when it was loaded; markers carry it so partition
    /// leaders can reject those of a deposed coordinator.
    coordinator_epoch: i32,
    transactions: BTreeMap<String, TransactionMetadata>,
    awaiting_markers: BTreeMap<String, AwaitingMarkers>,
}

/// AddPartitionsToTxn v4+ results, answered once every transaction has one.
#[derive(Debug)]
struct PendingBatch {
    results: Vec<Option<AddPartitionsToTxnResult>>,
}

/// Kafka's transaction coordinator as a pure state machine: requests and time go in,
/// [`Output`]s come out. No clocks, sockets or threads: `now_ms` is passed to every call,
/// and the broker calls [`TransactionCoordinator::tick`] regularly (every second is
/// plenty) to abort timed-out transactions and expire idle transactional ids.
#[derive(Debug)]
pub struct TransactionCoordinator {
    config: TransactionCoordinatorConfig,
    partitions: BTreeMap<i32, LoadedPartition>,
    loading: BTreeSet<i32>,
    pending_appends: BTreeMap<u64, PendingAppend>,
    next_append_id: u64,
    batches: BTreeMap<u64, PendingBatch>,
    next_abort_check_ms: Option<i64>,
    next_expiration_check_ms: Option<i64>,
    commits_total: u64,
    aborts_total: u64,
    timed_out_aborts_total: u64,
    producer_fences_total: u64,
    expired_transactional_ids_total: u64,
}

impl TransactionCoordinator {
    /// A coordinator with no partition loaded.
    ///
    /// # Panics
    ///
    /// On a configuration with no partitions or a non-positive maximum timeout.
    pub fn new(config: TransactionCoordinatorConfig) -> Self {
        assert!(config.transaction_state_log_num_partitions > 0);
        assert!(config.offsets_topic_num_partitions > 0);
        assert!(config.transaction_max_timeout_ms > 0);
        TransactionCoordinator {
            config,
            partitions: BTreeMap::new(),
            loading: BTreeSet::new(),
            pending_appends: BTreeMap::new(),
            next_append_id: 0,
            batches: BTreeMap::new(),
            next_abort_check_ms: None,
            next_expiration_check_ms: None,
            commits_total: 0,
            aborts_total: 0,
            timed_out_aborts_total: 0,
            producer_fences_total: 0,
            expired_transactional_ids_total: 0,
        }
    }

    pub fn config(&self) -> &TransactionCoordinatorConfig {
        &self.config
    }

    /// The `__transaction_state` partition holding `transactional_id`.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        transaction_log::partition_for(
            transactional_id,
            self.config.transaction_state_log_num_partitions,
        )
    }

    pub fn is_partition_loaded(&self, partition: i32) -> bool {
        self.partitions.contains_key(&partition)
    }

    /// The loaded `__transaction_state` partitions and their coordinator epochs, in
    /// partition order.
    pub fn loaded_partitions(&self) -> Vec<(i32, i32)> {
        self.partitions
            .iter()
            .map(|(p, loaded)| (*p, loaded.coordinator_epoch))
            .collect()
    }

    /// The state of a transactional id, if its partition is loaded and it exists.
    pub fn transaction(&self, transactional_id: &str) -> Option<&TransactionMetadata> {
        self.partitions
            .get(&self.partition_for(transactional_id))
            .and_then(|loaded| loaded.transactions.get(transactional_id))
    }

    /// This broker became leader of `partition` and is reading it: until
    /// [`TransactionCoordinator::load_partition`], its transactional ids get
    /// COORDINATOR_LOAD_IN_PROGRESS (instead of NOT_COORDINATOR), so clients wait rather
    /// than look for another coordinator. Whatever was loaded before is unloaded.
    #[must_use = "the broker must perform every output"]
    pub fn begin_loading(&mut self, partition: i32) -> Vec<Output> {
        let out = self.unload_partition(partition);
        self.loading.insert(partition);
        out
    }

    /// Takes over partition `partition` of `__transaction_state` at leader epoch
    /// `coordinator_epoch`, rebuilding its transactional ids from `records` in offset
    /// order: later records replace earlier ones, tombstones delete, records with an
    /// unknown key version are skipped.
    ///
    /// Transactions found in PrepareCommit or PrepareAbort had their outcome decided but
    /// maybe not all markers written when the previous coordinator stopped: their markers
    /// are written again ([`Output::WriteMarkers`]), as Kafka does on load. Writing a
    /// marker twice is harmless.
    ///
    /// On a record that cannot be decoded nothing is loaded and the error returned.
    pub fn load_partition(
        &mut self,
        partition: i32,
        coordinator_epoch: i32,
        records: impl IntoIterator<Item = TransactionLogRecord>,
        now_ms: i64,
    ) -> Result<Vec<Output>, transaction_log::RecordError> {
        let mut transactions: BTreeMap<String, TransactionMetadata> = BTreeMap::new();
        for record in records {
            match transaction_log::decode_key(&record.key)? {
                transaction_log::TransactionLogKey::Transaction { transactional_id } => {
                    match record.value {
                        Some(value) => {
                            let value = transaction_log::decode_value(&value)?;
                            let metadata = TransactionMetadata::from_log_value(
                                transactional_id.clone(),
                                &value,
                            );
                            transactions.insert(transactional_id, metadata);
                        }
                        None => {
                            transactions.remove(&transactional_id);
                        }
                    }
                }
                transaction_log::TransactionLogKey::Unknown { version } => {
                    tracing::warn!(
                        partition,
                        version,
                        "skipping record with unknown key version"
                    );
                }
            }
        }
        let mut out = self.unload_partition(partition);
        self.partitions.insert(
            partition,
            LoadedPartition {
                coordinator_epoch,
                transactions,
                awaiting_markers: BTreeMap::new(),
            },
        );
        let to_complete: Vec<(String, TransactionResult)> = self.partitions[&partition]
            .transactions
            .values()
            .filter_map(|m| match m.state {
                TransactionState::PrepareCommit => {
                    Some((m.transactional_id.clone(), TransactionResult::Commit))
                }
                TransactionState::PrepareAbort => {
                    Some((m.transactional_id.clone(), TransactionResult::Abort))
                }
                _ => None,
            })
            .collect();
        for (transactional_id, result) in to_complete {
            tracing::info!(partition, %transactional_id, ?result, "completing transaction after load");
            self.start_markers(
                partition,
                &transactional_id,
                result,
                Waiter::Nobody,
                now_ms,
                &mut out,
            );
        }
        Ok(out)
    }

    /// Gives up partition `partition` (leadership moved): its transactional ids are
    /// forgotten, requests waiting on its appends are answered NOT_COORDINATOR so the
    /// clients look for the new coordinator, and markers still being written for it are
    /// abandoned (the new coordinator writes them again; late
    /// [`TransactionCoordinator::on_markers_written`] and
    /// [`TransactionCoordinator::on_append_completed`] calls for it are ignored).
    #[must_use = "the broker must perform every output"]
    pub fn unload_partition(&mut self, partition: i32) -> Vec<Output> {
        let mut out = Vec::new();
        self.loading.remove(&partition);
        self.partitions.remove(&partition);
        let ids: Vec<u64> = self
            .pending_appends
            .iter()
            .filter(|(_, pending)| match pending {
                PendingAppend::Transition { partition: p, .. }
                | PendingAppend::Expiration { partition: p, .. } => *p == partition,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(PendingAppend::Transition { waiter, .. }) = self.pending_appends.remove(&id)
            {
                self.answer(waiter, Err(ResponseError::NotCoordinator), &mut out);
            }
        }
        out
    }

    /// Fires the timers due at `now_ms`: every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`, transactions open
    /// longer than their timeout are aborted (the producer's epoch is bumped, fencing it:
    /// its next request gets PRODUCER_FENCED); every
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`, transactional ids
    /// idle for `transactional.id.expiration.ms` are removed.
    #[must_use = "the broker must perform every output"]
    pub fn tick(&mut self, now_ms: i64) -> Vec<Output> {
        let mut out = Vec::new();
        if self.next_abort_check_ms.is_none_or(|due| now_ms >= due) {
            self.next_abort_check_ms = Some(
                now_ms
                    + self
                        .config
                        .transaction_abort_timed_out_transaction_cleanup_interval_ms,
            );
            self.abort_timed_out_transactions(now_ms, &mut out);
        }
        if self
            .next_expiration_check_ms
            .is_none_or(|due| now_ms >= due)
        {
            self.next_expiration_check_ms = Some(
                now_ms
                    + self
                        .config
                        .transaction_remove_expired_transaction_cleanup_interval_ms,
            );
            self.expire_transactional_ids(now_ms, &mut out);
        }
        out
    }

    /// Reports the outcome of an [`Output::Append`]: `Ok(())`, or the produce error of the
    /// write. Errors are translated as Kafka does for the waiting client
    /// (NOT_LEADER_OR_FOLLOWER becomes NOT_COORDINATOR, NOT_ENOUGH_REPLICAS and timeouts
    /// COORDINATOR_NOT_AVAILABLE, ...) and the change is dropped — except the completion
    /// after the markers, which is appended again on COORDINATOR_NOT_AVAILABLE.
    #[must_use = "the broker must perform every output"]
    pub fn on_append_completed(
        &mut self,
        append_id: u64,
        result: Result<(), ResponseError>,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(pending) = self.pending_appends.remove(&append_id) else {
            return out;
        };
        match pending {
            PendingAppend::Transition {
                transactional_id,
                partition,
                coordinator_epoch,
                transit,
                step,
                waiter,
            } => {
                let error = result.err().map(append_error);
                self.complete_transition_append(
                    transactional_id,
                    partition,
                    coordinator_epoch,
                    transit,
                    step,
                    waiter,
                    error,
                    now_ms,
                    &mut out,
                );
            }
            PendingAppend::Expiration {
                partition,
                coordinator_epoch,
                expired,
            } => self.complete_expiration(partition, coordinator_epoch, expired, result),
        }
        out
    }

    /// Metrics: transactional ids by state, transactions in flight, totals.
    pub fn stats(&self) -> TransactionCoordinatorStats {
        let mut transactions_by_state: BTreeMap<TransactionState, usize> =
            TransactionState::ALL.iter().map(|s| (*s, 0)).collect();
        let mut transactions_awaiting_markers = 0;
        for loaded in self.partitions.values() {
            for metadata in loaded.transactions.values() {
                *transactions_by_state.entry(metadata.state).or_default() += 1;
            }
            transactions_awaiting_markers += loaded.awaiting_markers.len();
        }
        TransactionCoordinatorStats {
            ongoing_transactions: transactions_by_state[&TransactionState::Ongoing],
            transactions_by_state,
            transactions_awaiting_markers,
            loaded_partitions: self.partitions.len(),
            loading_partitions: self.loading.len(),
            commits_total: self.commits_total,
            aborts_total: self.aborts_total,
            timed_out_aborts_total: self.timed_out_aborts_total,
            producer_fences_total: self.producer_fences_total,
            expired_transactional_ids_total: self.expired_transactional_ids_total,
        }
    }

    /// Kafka's `getTransactionState` before the lookup: the partition of
    /// `transactional_id`, if loaded here.
    fn owned_partition(&self, transactional_id: &str) -> Result<i32, ResponseError> {
        let partition = self.partition_for(transactional_id);
        if self.loading.contains(&partition) {
            Err(ResponseError::CoordinatorLoadInProgress)
        } else if self.partitions.contains_key(&partition) {
            Ok(partition)
        } else {
            Err(ResponseError::NotCoordinator)
        }
    }

    fn metadata_mut(
        &mut self,
        partition: i32,
        transactional_id: &str,
    ) -> Option<&mut TransactionMetadata> {
        self.partitions
            .get_mut(&partition)
            .and_then(|loaded| loaded.transactions.get_mut(transactional_id))
    }

    /// Writes `transit` for `transactional_id`, remembering what to do once it is durable.
    fn append_transition(
        &mut self,
        partition: i32,
        transactional_id: &str,
        transit: Transit,
        step: Step,
        waiter: Waiter,
        out: &mut Vec<Output>,
    ) {
        let coordinator_epoch = self
            .partitions
            .get(&partition)
            .map(|loaded| loaded.coordinator_epoch)
            .unwrap_or_default();
        let record = TransactionLogRecord {
            key: transaction_log::key(transactional_id),
            value: Some(transaction_log::value(&transit.log_value())),
        };
        let append_id = self.next_append_id;
        self.next_append_id += 1;
        self.pending_appends.insert(
            append_id,
            PendingAppend::Transition {
                transactional_id: transactional_id.to_owned(),
                partition,
                coordinator_epoch,
                transit,
                step,
                waiter,
            },
        );
        out.push(Output::Append {
            append_id,
            partition,
            records: vec![record],
        });
    }

    /// Kafka's `appendTransactionToLog` callback.
    #[allow(clippy::too_many_arguments)]
    fn complete_transition_append(
        &mut self,
        transactional_id: String,
        partition: i32,
        coordinator_epoch: i32,
        transit: Transit,
        step: Step,
        waiter: Waiter,
        error: Option<ResponseError>,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let same_epoch = self
            .partitions
            .get(&partition)
            .is_some_and(|loaded| loaded.coordinator_epoch == coordinator_epoch);
        if !same_epoch {
            // The partition moved (and maybe came back) meanwhile.
            let error = error.unwrap_or(ResponseError::NotCoordinator);
            self.answer(waiter, Err(error), out);
            return;
        }
        let Some(metadata) = self.metadata_mut(partition, &transactional_id) else {
            self.answer(waiter, Err(ResponseError::NotCoordinator), out);
            return;
        };
        if let Some(error) = error {
            if step == Step::Complete && error == ResponseError::CoordinatorNotAvailable {
                tracing::info!(%transactional_id, "completion not written, retrying");
                self.append_transition(partition, &transactional_id, transit, step, waiter, out);
                return;
            }
            tracing::info!(%transactional_id, %error, state = %transit.state, "transition not written");
            metadata.pending_state = None;
            if matches!(
                step,
                Step::EndTxn {
                    epoch_fence: true,
                    ..
                }
            ) {
                metadata.has_failed_epoch_fence = true;
            }
            self.answer(waiter, Err(error), out);
            return;
        }
        metadata.complete_transition(&transit);
        let producer = (metadata.producer_id, metadata.producer_epoch);
        match step {
            Step::InitProducerId | Step::AddPartitions => self.answer(waiter, Ok(producer), out),
            Step::EndTxn { result, .. } => {
                self.start_markers(partition, &transactional_id, result, waiter, now_ms, out)
            }
            Step::Complete => match transit.state {
                TransactionState::CompleteCommit => self.commits_total += 1,
                _ => self.aborts_total += 1,
            },
        }
    }

    /// Answers whoever waits for a state change.
    fn answer(
        &mut self,
        waiter: Waiter,
        outcome: Result<(i64, i16), ResponseError>,
        out: &mut Vec<Output>,
    ) {
        let error_code =
            |outcome: &Result<(i64, i16), ResponseError>, fenced_since: i16, version: i16| {
                match outcome {
                    Ok(_) => 0,
                    Err(error) => client_error(*error, version, fenced_since).code(),
                }
            };
        match waiter {
            Waiter::Nobody => {}
            Waiter::InitProducerId {
                request_id,
                version,
            } => {
                let mut response = InitProducerIdResponse::default();
                response.error_code = error_code(&outcome, 4, version);
                let (producer_id, producer_epoch) =
                    outcome.unwrap_or((NO_PRODUCER_ID, NO_PRODUCER_EPOCH));
                response.producer_id = ProducerId(producer_id);
                response.producer_epoch = producer_epoch;
                out.push(Output::Respond {
                    request_id,
                    response: TxnResponse::InitProducerId(response),
                });
            }
            Waiter::FencingInitProducerId {
                request_id,
                version,
            } => {
                let outcome = match outcome {
                    Ok(_) => Err(ResponseError::ConcurrentTransactions),
                    Err(error) => Err(error),
                };
                self.answer(
                    Waiter::InitProducerId {
                        request_id,
                        version,
                    },
                    outcome,
                    out,
                );
            }
            Waiter::AddPartitions {
                request_id,
                version,
                topics,
            } => {
                let code = error_code(&outcome, 2, version);
                let mut response = AddPartitionsToTxnResponse::default();
                response.results_by_topic_v3_and_below = topic_results(&topics, |_, _| code);
                out.push(Output::Respond {
                    request_id,
                    response: TxnResponse::AddPartitionsToTxn(response),
                });
            }
            Waiter::AddPartitionsBatch {
                request_id,
                index,
                transactional_id,
                topics,
            } => {
                let code = error_code(&outcome, 2, 4);
                let mut result = AddPartitionsToTxnResult::default();
                result.transactional_id = TransactionalId(StrBytes::from_string(transactional_id));
                result.topic_results = topic_results(&topics, |_, _| code);
                self.fill_batch(request_id, index, result, out);
            }
            Waiter::AddOffsets {
                request_id,
                version,
            } => {
                let mut response = AddOffsetsToTxnResponse::default();
                response.error_code = error_code(&outcome, 2, version);
                out.push(Output::Respond {
                    request_id,
                    response: TxnResponse::AddOffsetsToTxn(response),
                });
            }
            Waiter::EndTxn {
                request_id,
                version,
            } => {
                let mut response = EndTxnResponse::default();
                response.error_code = error_code(&outcome, 2, version);
                let (producer_id, producer_epoch) =
                    outcome.unwrap_or((NO_PRODUCER_ID, NO_PRODUCER_EPOCH));
                response.producer_id = ProducerId(producer_id);
                response.producer_epoch = producer_epoch;
                out.push(Output::Respond {
                    request_id,
                    response: TxnResponse::EndTxn(response),
                });
            }
        }
    }

    /// Records one transaction's result of an AddPartitionsToTxn v4+ batch; the response
    /// goes out with the last one.
    fn fill_batch(
        &mut self,
        request_id: u64,
        index: usize,
        result: AddPartitionsToTxnResult,
        out: &mut Vec<Output>,
    ) {
        let Some(batch) = self.batches.get_mut(&request_id) else {
            return;
        };
        if let Some(slot) = batch.results.get_mut(index) {
            *slot = Some(result);
        }
        if batch.results.iter().all(Option::is_some) {
            let batch = self.batches.remove(&request_id).expect("batch present");
            let mut response = AddPartitionsToTxnResponse::default();
            response.results_by_transaction = batch.results.into_iter().flatten().collect();
            out.push(Output::Respond {
                request_id,
                response: TxnResponse::AddPartitionsToTxn(response),
            });
        }
    }
}

/// Per-partition results of AddPartitionsToTxn, in request order.
fn topic_results(
    topics: &[(String, Vec<i32>)],
    code: impl Fn(&str, i32) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|(topic, partitions)| {
            let mut result = AddPartitionsToTxnTopicResult::default();
            result.name = TopicName(StrBytes::from_string(topic.clone()));
            result.results_by_partition = partitions
                .iter()
                .map(|p| {
                    let mut partition = AddPartitionsToTxnPartitionResult::default();
                    partition.partition_index = *p;
                    partition.partition_error_code = code(topic, *p);
                    partition
                })
                .collect();
            result
        })
        .collect()
}

/// PRODUCER_FENCED is INVALID_PRODUCER_EPOCH for clients older than the API version that
/// introduced it (`fenced_since`), as Kafka's request handlers translate it.
fn client_error(error: ResponseError, version: i16, fenced_since: i16) -> ResponseError {
    if error == ResponseError::ProducerFenced && version < fenced_since {
        ResponseError::InvalidProducerEpoch
    } else {
        error
    }
}

/// Kafka's translation of a failed `__transaction_state` write into the error the
/// transaction APIs return (`TransactionStateManager.appendTransactionToLog`).
fn append_error(error: ResponseError) -> ResponseError {
    use ResponseError::*;
    match error {
        UnknownTopicOrPartition
        | NotEnoughReplicas
        | NotEnoughReplicasAfterAppend
        | RequestTimedOut => CoordinatorNotAvailable,
        NotLeaderOrFollower | KafkaStorageError => NotCoordinator,
        MessageTooLarge | RecordListTooLarge => UnknownServerError,
        other => other,
    }
}

/// `(topic, partitions)` groups of a request, as the caller sent them.
type RequestedTopics = Vec<(String, Vec<i32>)>;

/// `(topic, partitions)` groups of a request, as the caller sent them, and the set of
/// partitions they name.
fn requested_partitions<'a>(
    topics: impl Iterator<Item = (&'a str, &'a [i32])>,
) -> (RequestedTopics, BTreeSet<(String, i32)>) {
    let mut listed = Vec::new();
    let mut set = BTreeSet::new();
    for (topic, partitions) in topics {
        listed.push((topic.to_owned(), partitions.to_vec()));
        for p in partitions {
            set.insert((topic.to_owned(), *p));
        }
    }
    (listed, set)
}
