//! Kafka's transaction coordinator, as a pure state machine, and the
//! `__transaction_state` record formats.
//!
//! A transactional producer (`transactional.id` set) talks to the coordinator of its
//! id: the leader of partition [`transaction_log::partition_for`] of
//! `__transaction_state`. The broker decodes InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn, EndTxn, DescribeTransactions and ListTransactions requests and hands
//! them to [`TransactionCoordinator`] together with the current time. The coordinator
//! answers with [`Output`]s: responses (most of them only after a record is durable),
//! records to append to `__transaction_state`, and transaction markers to write to the
//! partitions of a transaction. It owns no clock, socket or thread, so tests assert exact
//! output lists.
//!
//! # How a transaction runs
//!
//! 1. `initTransactions()` sends InitProducerId: the coordinator assigns the id a
//!    producer id (once) and bumps its epoch (every time). The bump fences older
//!    instances of the same application: their requests now carry a stale epoch and get
//!    PRODUCER_FENCED. A transaction the old instance left open is aborted first.
//! 2. Before writing to a partition the producer sends AddPartitionsToTxn; before
//!    committing consumer offsets in the transaction, AddOffsetsToTxn (which adds the
//!    group's `__consumer_offsets` partition). The first addition starts the transaction
//!    and its timeout (`transaction.timeout.ms`).
//! 3. EndTxn commits or aborts: the decision is stored (PrepareCommit/PrepareAbort) and
//!    the producer answered; the coordinator then has a *marker* (a control record)
//!    written to every partition of the transaction, which is what makes the data
//!    visible to `read_committed` consumers or discards it; then it stores
//!    CompleteCommit/CompleteAbort.
//!
//! # States of a transactional id
//!
//! | from | to | when |
//! |---|---|---|
//! | (none) | Empty | first InitProducerId (new producer id, epoch 0) |
//! | Empty, CompleteCommit, CompleteAbort | Empty | InitProducerId: epoch bumped, or a new producer id at epoch 0 once the epoch has reached `i16::MAX - 1` (exhausted) |
//! | Empty, CompleteCommit, CompleteAbort | Ongoing | AddPartitionsToTxn / AddOffsetsToTxn: a transaction starts |
//! | Ongoing | Ongoing | more partitions added |
//! | Ongoing | PrepareCommit | EndTxn(commit) |
//! | Ongoing | PrepareAbort | EndTxn(abort); the transaction timeout ran out (epoch bumped); InitProducerId from a new instance (epoch bumped) |
//! | PrepareCommit | CompleteCommit | all commit markers written |
//! | PrepareAbort | CompleteAbort | all abort markers written |
//! | Empty, CompleteCommit, CompleteAbort | (removed) | idle for `transactional.id.expiration.ms` (tombstone) |
//!
//! Dead and PrepareEpochFence exist (and have status codes) but are transient and never
//! stored. Each transition is first *pending*: prepared, written to
//! `__transaction_state`, and applied only once the write succeeded; while one is
//! pending (and while markers are being written) other changes are refused with
//! CONCURRENT_TRANSACTIONS, which clients retry.
//!
//! # Fencing and KIP-360
//!
//! Every InitProducerId bumps the epoch. A producer that hit an error may call
//! InitProducerId with its current producer id and epoch (KIP-360, v3+) to continue
//! under the same transactional id: accepted when they are the current ones (or those
//! just superseded by the bump being retried, or the previous producer id with an
//! exhausted epoch), PRODUCER_FENCED otherwise. When a transaction is open, the
//! coordinator aborts it with a bumped epoch (so the markers fence the old producer on
//! the partitions, too) and answers CONCURRENT_TRANSACTIONS; the retry finds it
//! CompleteAbort and bumps once more.
//!
//! # Durability
//!
//! A transactional id's state is one record of the compacted `__transaction_state` topic
//! (key: the id; value: [`transaction_log::TransactionLogValue`]), written with
//! `acks=all`. [`TransactionCoordinator::load_partition`] rebuilds the state of a
//! partition when this broker becomes its leader, and resumes the markers of
//! transactions that were PrepareCommit or PrepareAbort.
//!
//! # Driving it from the broker
//!
//! 1. When this broker becomes leader of a `__transaction_state` partition, call
//!    [`TransactionCoordinator::begin_loading`], read the partition's records in offset
//!    order, and call [`TransactionCoordinator::load_partition`] with the partition's
//!    leader epoch as coordinator epoch (a partition with no data is loaded with no
//!    records). Until loaded, its ids get COORDINATOR_LOAD_IN_PROGRESS; ids of partitions
//!    not loaded here get NOT_COORDINATOR. When leadership moves away, call
//!    [`TransactionCoordinator::unload_partition`]. `__transaction_state` is an ordinary
//!    compacted topic with `transaction.state.log.num.partitions` partitions.
//! 2. Hand each decoded request to its handler with the request's API version, a
//!    `request_id` that identifies the waiting connection, and the time in milliseconds.
//!    Versions served (the ranges of the `kafka-protocol` codecs):
//!
//!    | API | key | versions | handler |
//!    |---|---|---|---|
//!    | InitProducerId | 22 | 0–5 | [`TransactionCoordinator::handle_init_producer_id`] |
//!    | AddPartitionsToTxn | 24 | 0–5 | [`TransactionCoordinator::handle_add_partitions_to_txn`] |
//!    | AddOffsetsToTxn | 25 | 0–4 | [`TransactionCoordinator::handle_add_offsets_to_txn`] |
//!    | EndTxn | 26 | 0–5 (version 0 semantics) | [`TransactionCoordinator::handle_end_txn`] |
//!    | DescribeTransactions | 65 | 0 | [`TransactionCoordinator::handle_describe_transactions`] |
//!    | ListTransactions | 66 | 0–2 | [`TransactionCoordinator::handle_list_transactions`] |
//!
//!    InitProducerId needs a producer id allocated beforehand, used only if needed.
//!    Describe and List answer directly; the others return [`Output`]s. Authorization
//!    and unknown-topic checks are the broker's business before the call; so are
//!    FindCoordinator (key type 1: the leader of [`TransactionCoordinator::partition_for`])
//!    and TxnOffsetCommit (the group coordinator's).
//! 3. Perform outputs in order: send each `Respond` on its connection (drop it if the
//!    connection is gone); append each `Append` to `__transaction_state` with `acks=all`
//!    and report it with [`TransactionCoordinator::on_append_completed`]; for each
//!    `WriteMarkers`, write the markers (WriteTxnMarkers to the partition leaders, with
//!    retries) and report with [`TransactionCoordinator::on_markers_written`]. Perform
//!    what those return.
//! 4. Call [`TransactionCoordinator::tick`] every second or so and perform its outputs:
//!    transaction timeouts and transactional-id expiry run from there, at the configured
//!    intervals.
//! 5. Export [`TransactionCoordinator::stats`] as metrics.
//!
//! Not implemented: transaction version 2 (KIP-890 part 2: epoch bump on every EndTxn,
//! implicit AddPartitions from Produce), KIP-939 (`keep_prepared_txn`, two-phase commit
//! with external coordinators), and the per-partition marker bookkeeping of Kafka's
//! marker channel manager (the broker reports all markers of a transaction at once).

mod config;
mod coordinator;
mod metadata;
pub mod transaction_log;

pub use config::TransactionCoordinatorConfig;
pub use coordinator::{
    Output, TransactionCoordinator, TransactionCoordinatorStats, TransactionResult, TxnResponse,
};
pub use metadata::{NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TransactionMetadata, is_epoch_exhausted};
pub use transaction_log::{RecordError, TransactionLogRecord, TransactionState};

#[cfg(test)]
mod tests;
