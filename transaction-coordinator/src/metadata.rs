//! The state of one transactional id (Kafka's `TransactionMetadata`) and the transitions
//! between its states.
//!
//! Every change follows Kafka's two steps: `prepare_*` computes the target
//! ([`Transit`]) and sets the *pending state*, which blocks any other change; the target
//! is written to `__transaction_state`, and only when the write succeeded is it applied
//! ([`TransactionMetadata::complete_transition`]). A failed write clears the pending state
//! and leaves the metadata as it was.

use std::collections::BTreeSet;

use crate::transaction_log::{TopicPartitions, TransactionLogValue, TransactionState};

/// No producer id (Kafka's `RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;
/// No producer epoch (Kafka's `RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// Whether `epoch` leaves no room for another bump: a client never gets `i16::MAX`, so the
/// coordinator can always fence it by bumping once more (Kafka's `isEpochExhausted`).
pub fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// A transactional id as the coordinator keeps it in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the last rotation (epoch exhaustion), for KIP-360 retries;
    /// -1 when unknown (it is not stored by the version 0 record).
    pub previous_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump made for a KIP-360 InitProducerId, so a retry of that
    /// bump gets the same answer; -1 otherwise (not stored in `__transaction_state`).
    pub last_producer_epoch: i16,
    pub transaction_timeout_ms: i32,
    pub state: TransactionState,
    /// Partitions in the transaction, ordered.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the first partition of the current (or last) transaction was added; -1 if none.
    pub start_timestamp_ms: i64,
    pub last_update_timestamp_ms: i64,
    /// The state a write in flight will move to; every other change is refused meanwhile.
    pub pending_state: Option<TransactionState>,
    /// A fencing epoch bump was not written (the write failed): the in-memory epoch is
    /// already bumped and is not bumped again by the next fence.
    pub has_failed_epoch_fence: bool,
}

/// The target of a transition, as written to `__transaction_state` (Kafka's
/// `TxnTransitMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transit {
    pub producer_id: i64,
    /// The producer id before this transition.
    pub previous_producer_id: i64,
    pub producer_epoch: i16,
    pub last_producer_epoch: i16,
    pub transaction_timeout_ms: i32,
    pub state: TransactionState,
    pub partitions: BTreeSet<(String, i32)>,
    pub start_timestamp_ms: i64,
    pub last_update_timestamp_ms: i64,
}

impl Transit {
    /// The `__transaction_state` value of this target.
    pub(crate) fn log_value(&self) -> TransactionLogValue {
        let partitions = (self.state != TransactionState::Empty).then(|| group(&self.partitions));
        TransactionLogValue {
            producer_id: self.producer_id,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: self.producer_epoch,
            next_producer_epoch: -1,
            transaction_timeout_ms: self.transaction_timeout_ms,
            state: self.state,
            partitions,
            last_update_timestamp_ms: self.last_update_timestamp_ms,
            start_timestamp_ms: self.start_timestamp_ms,
            client_transaction_version: 0,
        }
    }
}

/// Partitions grouped by topic, topics and partitions in order.
pub(crate) fn group(partitions: &BTreeSet<(String, i32)>) -> Vec<TopicPartitions> {
    let mut topics: Vec<TopicPartitions> = Vec::new();
    for (topic, partition) in partitions {
        match topics.last_mut() {
            Some(last) if &last.topic == topic => last.partition_ids.push(*partition),
            _ => topics.push(TopicPartitions {
                topic: topic.clone(),
                partition_ids: vec![*partition],
            }),
        }
    }
    topics
}

impl TransactionMetadata {
    /// A transactional id seen for the first time: the fresh producer id, no epoch yet.
    pub(crate) fn new(
        transactional_id: String,
        producer_id: i64,
        transaction_timeout_ms: i32,
        now_ms: i64,
    ) -> Self {
        TransactionMetadata {
            transactional_id,
            producer_id,
            previous_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            transaction_timeout_ms,
            state: TransactionState::Empty,
            partitions: BTreeSet::new(),
            start_timestamp_ms: -1,
            last_update_timestamp_ms: now_ms,
            pending_state: None,
            has_failed_epoch_fence: false,
        }
    }

    /// The metadata a `__transaction_state` value describes (Kafka's
    /// `readTxnRecordValue`); the partitions of an Empty value are ignored.
    pub fn from_log_value(transactional_id: String, value: &TransactionLogValue) -> Self {
        let partitions = if value.state == TransactionState::Empty {
            BTreeSet::new()
        } else {
            value.topic_partitions().collect()
        };
        TransactionMetadata {
            transactional_id,
            producer_id: value.producer_id,
            previous_producer_id: value.previous_producer_id,
            producer_epoch: value.producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            transaction_timeout_ms: value.transaction_timeout_ms,
            state: value.state,
            partitions,
            start_timestamp_ms: value.start_timestamp_ms,
            last_update_timestamp_ms: value.last_update_timestamp_ms,
            pending_state: None,
            has_failed_epoch_fence: false,
        }
    }

    pub fn is_producer_epoch_exhausted(&self) -> bool {
        is_epoch_exhausted(self.producer_epoch)
    }

    /// InitProducerId on a transactional id with no transaction in progress: bump the
    /// epoch (Kafka's `prepareIncrementProducerEpoch`). With KIP-360's expected epoch, a
    /// retry of the last bump gets the same epoch again and a stale epoch is fenced.
    ///
    /// The caller has checked that no transition is pending and that the epoch is not
    /// exhausted (or, for a retry, that it needs no bump).
    pub(crate) fn prepare_increment_producer_epoch(
        &mut self,
        timeout_ms: i32,
        expected_epoch: Option<i16>,
        now_ms: i64,
    ) -> Result<Transit, kafka_protocol::ResponseError> {
        let bumped = self.producer_epoch.wrapping_add(1);
        let (epoch, last_epoch) = match expected_epoch {
            None => (bumped, NO_PRODUCER_EPOCH),
            Some(expected)
                if self.producer_epoch == NO_PRODUCER_EPOCH || expected == self.producer_epoch =>
            {
                (bumped, self.producer_epoch)
            }
            Some(expected) if expected == self.last_producer_epoch => {
                (self.producer_epoch, self.last_producer_epoch)
            }
            Some(_) => return Err(kafka_protocol::ResponseError::ProducerFenced),
        };
        if epoch != self.producer_epoch && self.is_producer_epoch_exhausted() {
            // Not reachable through the handlers (they rotate the producer id first), kept
            // as the guard Kafka has.
            return Err(kafka_protocol::ResponseError::ProducerFenced);
        }
        Ok(self.prepare_transition(
            TransactionState::Empty,
            self.producer_id,
            epoch,
            last_epoch,
            timeout_ms,
            BTreeSet::new(),
            -1,
            now_ms,
        ))
    }

    /// InitProducerId when the epoch is exhausted: a new producer id at epoch 0 (Kafka's
    /// `prepareProducerIdRotation`). `record_last_epoch` (a KIP-360 request) keeps the old
    /// epoch so that a retry with the old producer id and epoch is recognised.
    pub(crate) fn prepare_producer_id_rotation(
        &mut self,
        new_producer_id: i64,
        timeout_ms: i32,
        now_ms: i64,
        record_last_epoch: bool,
    ) -> Transit {
        let last_epoch = if record_last_epoch {
            self.producer_epoch
        } else {
            NO_PRODUCER_EPOCH
        };
        self.prepare_transition(
            TransactionState::Empty,
            new_producer_id,
            0,
            last_epoch,
            timeout_ms,
            BTreeSet::new(),
            -1,
            now_ms,
        )
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the transaction is (or stays) Ongoing with
    /// the union of partitions. A new transaction starts its clock now.
    pub(crate) fn prepare_add_partitions(
        &mut self,
        added: &BTreeSet<(String, i32)>,
        now_ms: i64,
    ) -> Transit {
        let start = match self.state {
            TransactionState::Empty
            | TransactionState::CompleteAbort
            | TransactionState::CompleteCommit => now_ms,
            _ => self.start_timestamp_ms,
        };
        let partitions = self.partitions.union(added).cloned().collect();
        self.prepare_transition(
            TransactionState::Ongoing,
            self.producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.transaction_timeout_ms,
            partitions,
            start,
            now_ms,
        )
    }

    /// EndTxn (or an abort by the coordinator): PrepareCommit or PrepareAbort with the
    /// same partitions.
    pub(crate) fn prepare_abort_or_commit(
        &mut self,
        state: TransactionState,
        now_ms: i64,
    ) -> Transit {
        self.prepare_transition(
            state,
            self.producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.transaction_timeout_ms,
            self.partitions.clone(),
            self.start_timestamp_ms,
            now_ms,
        )
    }

    /// The markers are written: CompleteCommit or CompleteAbort with no partitions.
    pub(crate) fn prepare_complete(&mut self, now_ms: i64) -> Transit {
        let state = if self.state == TransactionState::PrepareCommit {
            TransactionState::CompleteCommit
        } else {
            TransactionState::CompleteAbort
        };
        self.has_failed_epoch_fence = false;
        self.prepare_transition(
            state,
            self.producer_id,
            self.producer_epoch,
            self.producer_epoch,
            self.transaction_timeout_ms,
            BTreeSet::new(),
            self.start_timestamp_ms,
            now_ms,
        )
    }

    /// Expiry of an idle transactional id.
    pub(crate) fn prepare_dead(&mut self) -> Transit {
        self.prepare_transition(
            TransactionState::Dead,
            self.producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.transaction_timeout_ms,
            BTreeSet::new(),
            self.start_timestamp_ms,
            self.last_update_timestamp_ms,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn prepare_transition(
        &mut self,
        state: TransactionState,
        producer_id: i64,
        producer_epoch: i16,
        last_producer_epoch: i16,
        transaction_timeout_ms: i32,
        partitions: BTreeSet<(String, i32)>,
        start_timestamp_ms: i64,
        now_ms: i64,
    ) -> Transit {
        debug_assert!(
            self.pending_state.is_none(),
            "{}: transition to {state} while {:?} is pending",
            self.transactional_id,
            self.pending_state
        );
        debug_assert!(
            state.may_follow(self.state),
            "{}: {state} cannot follow {}",
            self.transactional_id,
            self.state
        );
        self.pending_state = Some(state);
        Transit {
            producer_id,
            previous_producer_id: self.producer_id,
            producer_epoch,
            last_producer_epoch,
            transaction_timeout_ms,
            state,
            partitions,
            start_timestamp_ms,
            last_update_timestamp_ms: now_ms,
        }
    }

    /// Applies a transition whose record is durable (Kafka's `completeTransitionTo`).
    pub(crate) fn complete_transition(&mut self, transit: &Transit) {
        match transit.state {
            TransactionState::Empty => {
                self.transaction_timeout_ms = transit.transaction_timeout_ms;
                self.producer_epoch = transit.producer_epoch;
                self.last_producer_epoch = transit.last_producer_epoch;
                self.previous_producer_id = transit.previous_producer_id;
                self.producer_id = transit.producer_id;
                self.partitions.clear();
                self.start_timestamp_ms = -1;
            }
            TransactionState::Ongoing => {
                self.start_timestamp_ms = transit.start_timestamp_ms;
                self.partitions = transit.partitions.clone();
            }
            TransactionState::PrepareCommit | TransactionState::PrepareAbort => {}
            TransactionState::CompleteCommit | TransactionState::CompleteAbort => {
                self.start_timestamp_ms = transit.start_timestamp_ms;
                self.partitions.clear();
            }
            TransactionState::Dead | TransactionState::PrepareEpochFence => {}
        }
        self.last_update_timestamp_ms = transit.last_update_timestamp_ms;
        self.pending_state = None;
        self.state = transit.state;
    }
}
