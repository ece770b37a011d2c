//! EndTxn and everything that ends transactions: the two-phase commit (Prepare* record,
//! markers, Complete* record), aborts of timed-out or fenced transactions, and expiry of
//! idle transactional ids.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::EndTxnRequest;

use super::{
    AwaitingMarkers, Output, PendingAppend, Step, TransactionCoordinator, TransactionResult, Waiter,
};
use crate::transaction_log::{self, TransactionState};

impl TransactionCoordinator {
    /// EndTxn (API key 26, versions 0–5): commit or abort the open transaction.
    ///
    /// From Ongoing, PrepareCommit or PrepareAbort is appended; once durable the producer
    /// is answered (it may start its next transaction: the partitions are blocked for it
    /// until their markers are written) and [`Output::WriteMarkers`] asks for the markers.
    /// [`TransactionCoordinator::on_markers_written`] then appends CompleteCommit or
    /// CompleteAbort.
    ///
    /// A retry of a commit (abort) that already completed answers NONE; one whose markers
    /// are still being written answers CONCURRENT_TRANSACTIONS. Ending a transaction the
    /// other way, or one that never started (Empty), is INVALID_TXN_STATE. Another producer
    /// id is INVALID_PRODUCER_ID_MAPPING, another epoch PRODUCER_FENCED
    /// (INVALID_PRODUCER_EPOCH before v2).
    ///
    /// Version 5 (KIP-890 part 2, "transaction version 2") makes Kafka bump the epoch on
    /// every EndTxn; this coordinator serves transaction version 0 semantics at every
    /// version and answers with the unchanged epoch, so the broker must not finalize the
    /// `transaction.version` feature at 2.
    #[must_use = "the broker must perform every output"]
    pub fn handle_end_txn(
        &mut self,
        request: EndTxnRequest,
        version: i16,
        request_id: u64,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let result = if request.committed {
            TransactionResult::Commit
        } else {
            TransactionResult::Abort
        };
        let transactional_id = request.transactional_id.0.to_string();
        let waiter = Waiter::EndTxn {
            request_id,
            version,
        };
        match self.prepare_end_txn(
            &transactional_id,
            request.producer_id.0,
            request.producer_epoch,
            result,
            now_ms,
        ) {
            Ok(EndTxnPlan::Write(partition, transit)) => self.append_transition(
                partition,
                &transactional_id,
                transit,
                Step::EndTxn {
                    result,
                    epoch_fence: false,
                },
                waiter,
                &mut out,
            ),
            Ok(EndTxnPlan::AlreadyDone(producer)) => self.answer(waiter, Ok(producer), &mut out),
            Err(error) => self.answer(waiter, Err(error), &mut out),
        }
        out
    }

    /// The markers of the transaction of `transactional_id` with this producer id and
    /// epoch are written to every partition of [`Output::WriteMarkers`]: the transaction
    /// completes (CompleteCommit or CompleteAbort is appended, stamped `now_ms`). Calls
    /// that match no transaction awaiting markers (a partition unloaded since, a
    /// duplicate) are ignored.
    #[must_use = "the broker must perform every output"]
    pub fn on_markers_written(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let partition = self.partition_for(transactional_id);
        let Some(loaded) = self.partitions.get_mut(&partition) else {
            return out;
        };
        let matches = loaded
            .awaiting_markers
            .get(transactional_id)
            .is_some_and(|a| a.producer_id == producer_id && a.producer_epoch == producer_epoch);
        if !matches {
            tracing::debug!(
                transactional_id,
                producer_id,
                producer_epoch,
                "no transaction awaits these markers"
            );
            return out;
        }
        let awaiting = loaded
            .awaiting_markers
            .remove(transactional_id)
            .expect("checked above");
        let mut complete = awaiting.complete;
        complete.last_update_timestamp_ms = complete.last_update_timestamp_ms.max(now_ms);
        self.append_transition(
            partition,
            transactional_id,
            complete,
            Step::Complete,
            Waiter::Nobody,
            &mut out,
        );
        out
    }

    /// Kafka's `endTransaction` for a client request, up to the append.
    fn prepare_end_txn(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        result: TransactionResult,
        now_ms: i64,
    ) -> Result<EndTxnPlan, ResponseError> {
        if transactional_id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        let partition = self.owned_partition(transactional_id)?;
        let metadata = self
            .metadata_mut(partition, transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if metadata.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if metadata.producer_epoch != producer_epoch {
            return Err(ResponseError::ProducerFenced);
        }
        if metadata.pending_state.is_some() {
            return Err(ResponseError::ConcurrentTransactions);
        }
        let commit = result == TransactionResult::Commit;
        match metadata.state {
            TransactionState::Ongoing => {
                let target = if commit {
                    TransactionState::PrepareCommit
                } else {
                    TransactionState::PrepareAbort
                };
                Ok(EndTxnPlan::Write(
                    partition,
                    metadata.prepare_abort_or_commit(target, now_ms),
                ))
            }
            TransactionState::CompleteCommit if commit => Ok(EndTxnPlan::AlreadyDone((
                metadata.producer_id,
                metadata.producer_epoch,
            ))),
            TransactionState::CompleteAbort if !commit => Ok(EndTxnPlan::AlreadyDone((
                metadata.producer_id,
                metadata.producer_epoch,
            ))),
            TransactionState::PrepareCommit if commit => Err(ResponseError::ConcurrentTransactions),
            TransactionState::PrepareAbort if !commit => Err(ResponseError::ConcurrentTransactions),
            state => {
                tracing::debug!(transactional_id, %state, ?result, "EndTxn in an invalid state");
                Err(ResponseError::InvalidTxnState)
            }
        }
    }

    /// Aborts the open transaction of `transactional_id` on the coordinator's own
    /// initiative (a timeout, or InitProducerId from a new producer), bumping the epoch
    /// first so that the old producer is fenced (Kafka's `prepareFenceProducerEpoch`
    /// followed by an abort). The bump is in memory at once; if its write fails, the next
    /// fence does not bump again, since the bumped epoch was never handed out.
    ///
    /// The caller has checked that the transaction is Ongoing with nothing pending.
    pub(super) fn fence_and_abort(
        &mut self,
        partition: i32,
        transactional_id: &str,
        waiter: Waiter,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let Some(metadata) = self.metadata_mut(partition, transactional_id) else {
            return;
        };
        if !metadata.has_failed_epoch_fence {
            metadata.producer_epoch = metadata.producer_epoch.saturating_add(1);
        }
        metadata.last_producer_epoch = crate::metadata::NO_PRODUCER_EPOCH;
        let transit = metadata.prepare_abort_or_commit(TransactionState::PrepareAbort, now_ms);
        self.append_transition(
            partition,
            transactional_id,
            transit,
            Step::EndTxn {
                result: TransactionResult::Abort,
                epoch_fence: true,
            },
            waiter,
            out,
        );
    }

    /// PrepareCommit / PrepareAbort is durable (or was found on load): answer the waiter
    /// and have the markers written; with no partitions there is nothing to mark and the
    /// transaction completes at once.
    pub(super) fn start_markers(
        &mut self,
        partition: i32,
        transactional_id: &str,
        result: TransactionResult,
        waiter: Waiter,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let Some(loaded) = self.partitions.get_mut(&partition) else {
            return;
        };
        let coordinator_epoch = loaded.coordinator_epoch;
        let Some(metadata) = loaded.transactions.get_mut(transactional_id) else {
            return;
        };
        let complete = metadata.prepare_complete(now_ms);
        let producer_id = metadata.producer_id;
        let producer_epoch = metadata.producer_epoch;
        let partitions: Vec<(String, i32)> = metadata.partitions.iter().cloned().collect();
        self.answer(waiter, Ok((producer_id, producer_epoch)), out);
        if partitions.is_empty() {
            self.append_transition(
                partition,
                transactional_id,
                complete,
                Step::Complete,
                Waiter::Nobody,
                out,
            );
            return;
        }
        let loaded = self.partitions.get_mut(&partition).expect("checked above");
        loaded.awaiting_markers.insert(
            transactional_id.to_owned(),
            AwaitingMarkers {
                producer_id,
                producer_epoch,
                complete,
            },
        );
        out.push(Output::WriteMarkers {
            transactional_id: transactional_id.to_owned(),
            producer_id,
            producer_epoch,
            coordinator_epoch,
            result,
            partitions,
        });
    }

    /// Kafka's `abortTimedOutTransactions`: Ongoing, nothing pending, started more than
    /// the transaction timeout ago.
    pub(super) fn abort_timed_out_transactions(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let timed_out: Vec<(i32, String)> = self
            .partitions
            .iter()
            .flat_map(|(partition, loaded)| {
                loaded
                    .transactions
                    .values()
                    .filter(|m| {
                        m.state == TransactionState::Ongoing
                            && m.pending_state.is_none()
                            && m.start_timestamp_ms + i64::from(m.transaction_timeout_ms) < now_ms
                    })
                    .map(|m| (*partition, m.transactional_id.clone()))
            })
            .collect();
        for (partition, transactional_id) in timed_out {
            tracing::info!(%transactional_id, "aborting transaction that outlived its timeout");
            self.timed_out_aborts_total += 1;
            self.fence_and_abort(partition, &transactional_id, Waiter::Nobody, now_ms, out);
        }
    }

    /// Kafka's `removeExpiredTransactionalIds`: one batch of tombstones per partition for
    /// the ids idle (Empty, CompleteCommit, CompleteAbort, nothing pending) for
    /// `transactional.id.expiration.ms`. They are marked Dead (pending) until written.
    pub(super) fn expire_transactional_ids(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let cutoff = now_ms.saturating_sub(self.config.transactional_id_expiration_ms);
        for (partition, loaded) in self.partitions.iter_mut() {
            let mut expired = Vec::new();
            let mut records = Vec::new();
            for metadata in loaded.transactions.values_mut() {
                if metadata.pending_state.is_none()
                    && metadata.state.is_expiration_allowed()
                    && metadata.last_update_timestamp_ms <= cutoff
                {
                    metadata.prepare_dead();
                    expired.push((metadata.transactional_id.clone(), metadata.producer_epoch));
                    records.push(transaction_log::tombstone(&metadata.transactional_id));
                }
            }
            if expired.is_empty() {
                continue;
            }
            let append_id = self.next_append_id;
            self.next_append_id += 1;
            self.pending_appends.insert(
                append_id,
                PendingAppend::Expiration {
                    partition: *partition,
                    coordinator_epoch: loaded.coordinator_epoch,
                    expired,
                },
            );
            out.push(Output::Append {
                append_id,
                partition: *partition,
                records,
            });
        }
    }

    /// The tombstones are written (or not): remove the ids that are still Dead-pending
    /// with the same epoch, release the others.
    pub(super) fn complete_expiration(
        &mut self,
        partition: i32,
        coordinator_epoch: i32,
        expired: Vec<(String, i16)>,
        result: Result<(), ResponseError>,
    ) {
        let Some(loaded) = self
            .partitions
            .get_mut(&partition)
            .filter(|l| l.coordinator_epoch == coordinator_epoch)
        else {
            return;
        };
        for (transactional_id, epoch) in expired {
            let Some(metadata) = loaded.transactions.get_mut(&transactional_id) else {
                continue;
            };
            if metadata.pending_state != Some(TransactionState::Dead) {
                continue;
            }
            if result.is_ok() && metadata.producer_epoch == epoch {
                loaded.transactions.remove(&transactional_id);
                self.expired_transactional_ids_total += 1;
            } else {
                tracing::warn!(%transactional_id, ?result, "transactional id not expired");
                metadata.pending_state = None;
            }
        }
    }
}

/// What a valid EndTxn leads to.
enum EndTxnPlan {
    /// Append PrepareCommit / PrepareAbort to this partition.
    Write(i32, crate::metadata::Transit),
    /// A retry of an end that completed: answer success with this producer id and epoch.
    AlreadyDone((i64, i16)),
}
