//! The broker settings the group coordinator obeys, under Kafka's names.

/// Group coordinator settings. Field names are Kafka's broker properties with dots
/// turned into underscores; defaults are Kafka's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCoordinatorConfig {
    /// `group.min.session.timeout.ms`: JoinGroup with a shorter session timeout is
    /// rejected with INVALID_SESSION_TIMEOUT, so a client cannot make the coordinator
    /// check liveness too often.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: upper bound, so a dead member cannot hold its
    /// partitions for too long.
    pub group_max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an Empty group
    /// waits for more members (extended while new members keep arriving, up to the
    /// rebalance timeout), so a fleet starting together rebalances once, not N times.
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.max.size`: members per group; joins beyond it get GROUP_MAX_SIZE_REACHED.
    pub group_max_size: usize,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`; fixes which
    /// partition (and so which coordinator) holds a group.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.retention.minutes`: committed offsets of a group that has been Empty this
    /// long (or of a standalone consumer, since its last commit) are deleted.
    pub offsets_retention_minutes: i64,
    /// `offsets.retention.check.interval.ms`: how often `tick` looks for expired offsets.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes`: commits whose metadata string is longer get
    /// OFFSET_METADATA_TOO_LARGE for that partition.
    pub offset_metadata_max_bytes: usize,
}

impl Default for GroupCoordinatorConfig {
    fn default() -> Self {
        GroupCoordinatorConfig {
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_max_size: i32::MAX as usize,
            offsets_topic_num_partitions: 50,
            offsets_retention_minutes: 7 * 24 * 60,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
        }
    }
}

impl GroupCoordinatorConfig {
    /// `offsets.retention.minutes` in milliseconds.
    pub fn offsets_retention_ms(&self) -> i64 {
        self.offsets_retention_minutes.saturating_mul(60_000)
    }
}
