//! The broker settings the transaction coordinator obeys, under Kafka's names.

/// Transaction coordinator settings. Field names are Kafka's broker properties with dots
/// turned into underscores; defaults are Kafka's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionCoordinatorConfig {
    /// `transaction.max.timeout.ms`: InitProducerId with a longer (or a non-positive)
    /// `transaction.timeout.ms` gets INVALID_TRANSACTION_TIMEOUT, so a producer cannot keep
    /// a transaction (and every consumer reading `read_committed` behind it) open for long.
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: a transactional id with no transaction in
    /// progress (Empty, CompleteCommit, CompleteAbort) and no update for this long is
    /// removed (a tombstone is written).
    pub transactional_id_expiration_ms: i64,
    /// `transaction.state.log.num.partitions`: partitions of `__transaction_state`; fixes
    /// which partition (and so which coordinator) holds a transactional id.
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often `tick`
    /// looks for transactions open longer than their timeout and aborts them.
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`: how often `tick`
    /// looks for transactional ids to expire.
    pub transaction_remove_expired_transaction_cleanup_interval_ms: i64,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`; AddOffsetsToTxn
    /// adds the group's partition of it to the transaction.
    pub offsets_topic_num_partitions: i32,
}

impl Default for TransactionCoordinatorConfig {
    fn default() -> Self {
        TransactionCoordinatorConfig {
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 604_800_000,
            transaction_state_log_num_partitions: 50,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            transaction_remove_expired_transaction_cleanup_interval_ms: 3_600_000,
            offsets_topic_num_partitions: 50,
        }
    }
}
