//! InitProducerId: a transactional producer starting (or recovering, KIP-360) gets its
//! producer id and a bumped epoch, which fences every older instance.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::InitProducerIdRequest;

use super::{Output, Step, TransactionCoordinator, Waiter};
use crate::metadata::{
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TransactionMetadata, Transit, is_epoch_exhausted,
};
use crate::transaction_log::TransactionState;

/// What InitProducerId does with the metadata.
enum InitTransit {
    /// Write this Empty state (bumped epoch or new producer id) and answer with it.
    Write(Transit),
    /// A transaction is open: abort it with a bumped epoch first.
    FenceOngoing,
}

impl TransactionCoordinator {
    /// InitProducerId (API key 22, versions 0–5).
    ///
    /// `fresh_producer_id` is a producer id the broker allocated beforehand (from its
    /// producer-id block); it is used only when one is needed — a transactional id seen
    /// for the first time, the epoch of the current one exhausted, or a request without
    /// transactional id (an idempotent producer, answered at once with epoch 0). An unused
    /// one is simply skipped: producer ids are plentiful and need not be dense. Pass a
    /// negative value when none could be allocated; requests that need one then get
    /// COORDINATOR_LOAD_IN_PROGRESS and retry, as with Kafka's producer-id manager.
    ///
    /// With a transactional id, the answer follows the append of the new state, except
    /// for errors: INVALID_REQUEST (empty id, or only one of producer id and epoch set),
    /// INVALID_TRANSACTION_TIMEOUT (above `transaction.max.timeout.ms` or not positive),
    /// NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS (a state
    /// change or the markers of the last transaction are in flight: retry), and
    /// PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v4) for a KIP-360 request whose
    /// producer id and epoch are neither the current ones nor those of the bump being
    /// retried. A transaction still open is aborted with a bumped epoch, and the caller
    /// answered CONCURRENT_TRANSACTIONS once the abort is durable so that it retries.
    #[must_use = "the broker must perform every output"]
    pub fn handle_init_producer_id(
        &mut self,
        request: InitProducerIdRequest,
        version: i16,
        request_id: u64,
        fresh_producer_id: i64,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let waiter = Waiter::InitProducerId {
            request_id,
            version,
        };
        let Some(transactional_id) = request.transactional_id else {
            let outcome = if fresh_producer_id >= 0 {
                Ok((fresh_producer_id, 0))
            } else {
                Err(ResponseError::CoordinatorLoadInProgress)
            };
            self.answer(waiter, outcome, &mut out);
            return out;
        };
        let transactional_id = transactional_id.0.to_string();
        if transactional_id.is_empty() {
            self.answer(waiter, Err(ResponseError::InvalidRequest), &mut out);
            return out;
        }
        let expected = match (request.producer_id.0, request.producer_epoch) {
            (NO_PRODUCER_ID, NO_PRODUCER_EPOCH) => None,
            (NO_PRODUCER_ID, _) | (_, NO_PRODUCER_EPOCH) => {
                self.answer(waiter, Err(ResponseError::InvalidRequest), &mut out);
                return out;
            }
            (producer_id, epoch) => Some((producer_id, epoch)),
        };
        let timeout_ms = request.transaction_timeout_ms;
        if timeout_ms <= 0 || timeout_ms > self.config.transaction_max_timeout_ms {
            self.answer(
                waiter,
                Err(ResponseError::InvalidTransactionTimeout),
                &mut out,
            );
            return out;
        }
        let partition = match self.owned_partition(&transactional_id) {
            Ok(partition) => partition,
            Err(error) => {
                self.answer(waiter, Err(error), &mut out);
                return out;
            }
        };
        let loaded = self
            .partitions
            .get_mut(&partition)
            .expect("owned partition");
        if !loaded.transactions.contains_key(&transactional_id) {
            if fresh_producer_id < 0 {
                self.answer(
                    waiter,
                    Err(ResponseError::CoordinatorLoadInProgress),
                    &mut out,
                );
                return out;
            }
            // Kept even if the first append fails, as in Kafka: the retry reuses the id.
            loaded.transactions.insert(
                transactional_id.clone(),
                TransactionMetadata::new(
                    transactional_id.clone(),
                    fresh_producer_id,
                    timeout_ms,
                    now_ms,
                ),
            );
        }
        let metadata = loaded
            .transactions
            .get_mut(&transactional_id)
            .expect("just inserted");
        match prepare_init_producer_id(metadata, timeout_ms, expected, fresh_producer_id, now_ms) {
            Err(error) => self.answer(waiter, Err(error), &mut out),
            Ok(InitTransit::Write(transit)) => {
                self.append_transition(
                    partition,
                    &transactional_id,
                    transit,
                    Step::InitProducerId,
                    waiter,
                    &mut out,
                );
            }
            Ok(InitTransit::FenceOngoing) => {
                self.producer_fences_total += 1;
                self.fence_and_abort(
                    partition,
                    &transactional_id,
                    Waiter::FencingInitProducerId {
                        request_id,
                        version,
                    },
                    now_ms,
                    &mut out,
                );
            }
        }
        out
    }
}

/// Kafka's `prepareInitProducerIdTransit`.
fn prepare_init_producer_id(
    metadata: &mut TransactionMetadata,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    fresh_producer_id: i64,
    now_ms: i64,
) -> Result<InitTransit, ResponseError> {
    if metadata.pending_state.is_some() {
        return Err(ResponseError::ConcurrentTransactions);
    }
    if let Some((producer_id, epoch)) = expected {
        // KIP-360: a producer recovering from an error may re-initialise only as the
        // current producer (its epoch is checked below), as the producer of a metadata
        // just created, or as the previous producer id whose epoch ran out and whose
        // rotation it never heard about.
        let valid = metadata.producer_epoch == NO_PRODUCER_EPOCH
            || producer_id == metadata.producer_id
            || (producer_id == metadata.previous_producer_id && is_epoch_exhausted(epoch));
        if !valid {
            return Err(ResponseError::ProducerFenced);
        }
    }
    match metadata.state {
        TransactionState::PrepareCommit | TransactionState::PrepareAbort => {
            Err(ResponseError::ConcurrentTransactions)
        }
        TransactionState::Empty
        | TransactionState::CompleteCommit
        | TransactionState::CompleteAbort => {
            let rotate = metadata.is_producer_epoch_exhausted()
                && expected.is_none_or(|(_, epoch)| epoch == metadata.producer_epoch);
            if rotate {
                if fresh_producer_id < 0 {
                    return Err(ResponseError::CoordinatorLoadInProgress);
                }
                Ok(InitTransit::Write(metadata.prepare_producer_id_rotation(
                    fresh_producer_id,
                    timeout_ms,
                    now_ms,
                    expected.is_some(),
                )))
            } else {
                metadata
                    .prepare_increment_producer_epoch(
                        timeout_ms,
                        expected.map(|(_, epoch)| epoch),
                        now_ms,
                    )
                    .map(InitTransit::Write)
            }
        }
        TransactionState::Ongoing => Ok(InitTransit::FenceOngoing),
        // Never kept in memory by this coordinator; a retry finds the id gone or settled.
        TransactionState::Dead | TransactionState::PrepareEpochFence => {
            Err(ResponseError::ConcurrentTransactions)
        }
    }
}
