//! AddPartitionsToTxn and AddOffsetsToTxn: partitions join the transaction (and the
//! transaction starts, if it had not) before the producer writes to them.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnResult;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::{
    Output, PendingBatch, Step, TransactionCoordinator, TxnResponse, Waiter, requested_partitions,
    topic_results,
};
use crate::transaction_log::{self, CONSUMER_OFFSETS_TOPIC, TransactionState};

impl TransactionCoordinator {
    /// AddPartitionsToTxn (API key 24, versions 0–5).
    ///
    /// Versions 0–3 come from producers: one transaction, answered after the append of
    /// the Ongoing state with the partitions added (or at once when they already are in
    /// the transaction, or on error). Every partition of the answer carries the same
    /// error: INVALID_PRODUCER_ID_MAPPING (unknown transactional id or another producer
    /// id), PRODUCER_FENCED (another epoch; INVALID_PRODUCER_EPOCH before v2),
    /// CONCURRENT_TRANSACTIONS (a change or the last transaction's markers in flight),
    /// NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS.
    ///
    /// Versions 4+ come from brokers and batch several transactions; the answer goes out
    /// once all have one. A transaction with `verify_only` (KIP-890 part 1: the partition
    /// leader checking a transactional produce) changes nothing: each partition is NONE if
    /// it is in the open transaction and TRANSACTION_ABORTABLE if not.
    ///
    /// Authorization and rejecting unknown topics (the whole transaction answered with
    /// TOPIC_AUTHORIZATION_FAILED / UNKNOWN_TOPIC_OR_PARTITION and OPERATION_NOT_ATTEMPTED
    /// for the rest) are the broker's business before the call.
    #[must_use = "the broker must perform every output"]
    pub fn handle_add_partitions_to_txn(
        &mut self,
        request: AddPartitionsToTxnRequest,
        version: i16,
        request_id: u64,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if version < 4 {
            let (topics, partitions) = requested_partitions(
                request
                    .v3_and_below_topics
                    .iter()
                    .map(|t| (t.name.0.as_str(), t.partitions.as_slice())),
            );
            let transactional_id = request.v3_and_below_transactional_id.0.to_string();
            self.add_partitions(
                &transactional_id,
                request.v3_and_below_producer_id.0,
                request.v3_and_below_producer_epoch,
                partitions,
                Waiter::AddPartitions {
                    request_id,
                    version,
                    topics,
                },
                now_ms,
                &mut out,
            );
            return out;
        }
        if request.transactions.is_empty() {
            out.push(Output::Respond {
                request_id,
                response: TxnResponse::AddPartitionsToTxn(AddPartitionsToTxnResponse::default()),
            });
            return out;
        }
        self.batches.insert(
            request_id,
            PendingBatch {
                results: vec![None; request.transactions.len()],
            },
        );
        for (index, transaction) in request.transactions.iter().enumerate() {
            let transactional_id = transaction.transactional_id.0.to_string();
            let (topics, partitions) = requested_partitions(
                transaction
                    .topics
                    .iter()
                    .map(|t| (t.name.0.as_str(), t.partitions.as_slice())),
            );
            if transaction.verify_only {
                let result = self.verify_partitions(
                    &transactional_id,
                    transaction.producer_id.0,
                    transaction.producer_epoch,
                    &topics,
                    &partitions,
                );
                self.fill_batch(request_id, index, result, &mut out);
            } else {
                self.add_partitions(
                    &transactional_id,
                    transaction.producer_id.0,
                    transaction.producer_epoch,
                    partitions,
                    Waiter::AddPartitionsBatch {
                        request_id,
                        index,
                        transactional_id: transactional_id.clone(),
                        topics,
                    },
                    now_ms,
                    &mut out,
                );
            }
        }
        out
    }

    /// AddOffsetsToTxn (API key 25, versions 0–4): adds the partition of
    /// `__consumer_offsets` holding the group's offsets
    /// (`partition_for(group, offsets.topic.num.partitions)`), so that TxnOffsetCommit can
    /// follow and the offsets commit or abort with the transaction. Errors as for
    /// AddPartitionsToTxn v0–v3 (INVALID_PRODUCER_EPOCH for PRODUCER_FENCED before v2);
    /// group authorization is the broker's business.
    #[must_use = "the broker must perform every output"]
    pub fn handle_add_offsets_to_txn(
        &mut self,
        request: AddOffsetsToTxnRequest,
        version: i16,
        request_id: u64,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let offsets_partition = transaction_log::partition_for(
            request.group_id.0.as_str(),
            self.config.offsets_topic_num_partitions,
        );
        let partitions = BTreeSet::from([(CONSUMER_OFFSETS_TOPIC.to_owned(), offsets_partition)]);
        self.add_partitions(
            request.transactional_id.0.as_str(),
            request.producer_id.0,
            request.producer_epoch,
            partitions,
            Waiter::AddOffsets {
                request_id,
                version,
            },
            now_ms,
            &mut out,
        );
        out
    }

    /// Kafka's `handleAddPartitionsToTransaction`.
    #[allow(clippy::too_many_arguments)]
    fn add_partitions(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: BTreeSet<(String, i32)>,
        waiter: Waiter,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        if transactional_id.is_empty() {
            self.answer(waiter, Err(ResponseError::InvalidRequest), out);
            return;
        }
        let partition = match self.owned_partition(transactional_id) {
            Ok(partition) => partition,
            Err(error) => {
                self.answer(waiter, Err(error), out);
                return;
            }
        };
        let Some(metadata) = self.metadata_mut(partition, transactional_id) else {
            self.answer(waiter, Err(ResponseError::InvalidProducerIdMapping), out);
            return;
        };
        let refusal = if metadata.producer_id != producer_id {
            Some(ResponseError::InvalidProducerIdMapping)
        } else if metadata.producer_epoch != producer_epoch {
            Some(ResponseError::ProducerFenced)
        } else if metadata.pending_state.is_some()
            || !TransactionState::Ongoing.may_follow(metadata.state)
        {
            // A change in flight, or PrepareCommit/PrepareAbort: the producer retries.
            Some(ResponseError::ConcurrentTransactions)
        } else {
            None
        };
        if let Some(error) = refusal {
            self.answer(waiter, Err(error), out);
            return;
        }
        if metadata.state == TransactionState::Ongoing && partitions.is_subset(&metadata.partitions)
        {
            let producer = (metadata.producer_id, metadata.producer_epoch);
            self.answer(waiter, Ok(producer), out);
            return;
        }
        let transit = metadata.prepare_add_partitions(&partitions, now_ms);
        self.append_transition(
            partition,
            transactional_id,
            transit,
            Step::AddPartitions,
            waiter,
            out,
        );
    }

    /// Kafka's `handleVerifyPartitionsInTransaction`.
    fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topics: &[(String, Vec<i32>)],
        partitions: &BTreeSet<(String, i32)>,
    ) -> AddPartitionsToTxnResult {
        let outcome: Result<(), ResponseError> = if transactional_id.is_empty() {
            Err(ResponseError::InvalidRequest)
        } else {
            self.owned_partition(transactional_id)
                .and_then(|partition| {
                    let metadata = self.partitions[&partition]
                        .transactions
                        .get(transactional_id)
                        .ok_or(ResponseError::InvalidProducerIdMapping)?;
                    if metadata.producer_id != producer_id {
                        Err(ResponseError::InvalidProducerIdMapping)
                    } else if metadata.producer_epoch != producer_epoch {
                        Err(ResponseError::ProducerFenced)
                    } else if matches!(
                        metadata.state,
                        TransactionState::PrepareCommit | TransactionState::PrepareAbort
                    ) {
                        Err(ResponseError::ConcurrentTransactions)
                    } else {
                        Ok(())
                    }
                })
        };
        let in_transaction = |topic: &str, partition: i32| -> bool {
            self.transaction(transactional_id).is_some_and(|m| {
                m.partitions.contains(&(topic.to_owned(), partition))
                    && partitions.contains(&(topic.to_owned(), partition))
            })
        };
        let mut result = AddPartitionsToTxnResult::default();
        result.transactional_id =
            TransactionalId(StrBytes::from_string(transactional_id.to_owned()));
        result.topic_results = topic_results(topics, |topic, partition| match outcome {
            Err(error) => error.code(),
            Ok(()) if in_transaction(topic, partition) => 0,
            Ok(()) => ResponseError::TransactionAbortable.code(),
        });
        result
    }
}
