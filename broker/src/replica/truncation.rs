//! Where a follower's log diverges from its leader's (KIP-101, KIP-279, KIP-595), as pure
//! functions of the two sides' leader-epoch caches.
//!
//! The follower sends, with each fetch, the epoch of its last record
//! (`last_fetched_epoch`). The leader looks that epoch up in its own cache: if the leader
//! knows the epoch to end before the follower's fetch offset, or only knows an older
//! epoch, the logs diverge and the response carries `diverging_epoch` = the leader's
//! `(epoch, end offset)` instead of records. The follower then truncates to the smaller
//! of that end offset and its own end offset for that epoch, and fetches again.

/// Leader side: the `(epoch, end offset)` to return as the diverging epoch, or `None` when
/// the follower's log is a prefix of the leader's and records can be returned.
///
/// `leader_end_for_epoch` is the leader's answer for `last_fetched_epoch`
/// (`LeaderEpochCache::end_offset_for`).
pub fn diverging_epoch(
    fetch_offset: i64,
    last_fetched_epoch: i32,
    leader_end_for_epoch: (i32, i64),
) -> Option<(i32, i64)> {
    let (epoch, end_offset) = leader_end_for_epoch;
    (epoch < last_fetched_epoch || end_offset < fetch_offset).then_some(leader_end_for_epoch)
}

/// The follower's truncation after the leader reported `leader` = `(epoch, end offset)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TruncationPoint {
    pub offset: i64,
    /// `false`: the follower did not know the leader's epoch; after truncating to
    /// `offset` it must ask again with its (now older) last epoch.
    pub complete: bool,
}

/// Follower side (Kafka's `getOffsetTruncationState`).
///
/// - `follower_end_for_epoch`: the follower's own `(largest epoch ≤ leader's epoch, end
///   offset)`, `None` when it knows no such epoch;
/// - `follower_log_end_offset`: its current log end offset;
/// - `fetch_offset`: where it was fetching (used when the leader knows no offset).
pub fn truncation_point(
    leader: (i32, i64),
    follower_end_for_epoch: Option<(i32, i64)>,
    follower_log_end_offset: i64,
    fetch_offset: i64,
) -> TruncationPoint {
    const UNDEFINED: i64 = -1;
    let (leader_epoch, leader_end) = leader;
    if leader_end == UNDEFINED {
        return TruncationPoint {
            offset: fetch_offset,
            complete: true,
        };
    }
    if leader_epoch < 0 {
        return TruncationPoint {
            offset: leader_end.min(follower_log_end_offset),
            complete: true,
        };
    }
    match follower_end_for_epoch {
        Some((follower_epoch, follower_end)) if follower_epoch != leader_epoch => TruncationPoint {
            offset: follower_end.min(follower_log_end_offset),
            complete: false,
        },
        Some((_, follower_end)) => TruncationPoint {
            offset: follower_end.min(leader_end).min(follower_log_end_offset),
            complete: true,
        },
        None => TruncationPoint {
            offset: leader_end.min(follower_log_end_offset),
            complete: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_reports_divergence_only_when_logs_differ() {
        // Follower at 100 with last epoch 3; leader's epoch 3 ended at 120: a prefix.
        assert_eq!(diverging_epoch(100, 3, (3, 120)), None);
        // Leader's epoch 3 ended at 90, the follower has 100: diverged.
        assert_eq!(diverging_epoch(100, 3, (3, 90)), Some((3, 90)));
        // The leader never had epoch 3; its largest older epoch is 2, ending at 80.
        assert_eq!(diverging_epoch(100, 3, (2, 80)), Some((2, 80)));
        // Exactly at the end of the epoch: no divergence.
        assert_eq!(diverging_epoch(90, 3, (3, 90)), None);
    }

    #[test]
    fn follower_truncates_to_the_common_prefix() {
        // Both know epoch 3; leader's ended at 90, the follower's at 100.
        assert_eq!(
            truncation_point((3, 90), Some((3, 100)), 100, 100),
            TruncationPoint {
                offset: 90,
                complete: true
            }
        );
        // The follower's epoch 3 ended earlier than the leader's.
        assert_eq!(
            truncation_point((3, 120), Some((3, 95)), 110, 110),
            TruncationPoint {
                offset: 95,
                complete: true
            }
        );
        // The follower does not know epoch 3: cut to its epoch 2 end and ask again.
        assert_eq!(
            truncation_point((3, 120), Some((2, 70)), 110, 110),
            TruncationPoint {
                offset: 70,
                complete: false
            }
        );
        // The follower knows no epoch at or below the leader's: the leader's offset.
        assert_eq!(
            truncation_point((1, 40), None, 60, 60),
            TruncationPoint {
                offset: 40,
                complete: true
            }
        );
        // Never beyond the follower's own log end.
        assert_eq!(
            truncation_point((1, 400), None, 60, 60),
            TruncationPoint {
                offset: 60,
                complete: true
            }
        );
        // The leader knows no offset: keep the fetch offset.
        assert_eq!(
            truncation_point((-1, -1), Some((2, 70)), 110, 105),
            TruncationPoint {
                offset: 105,
                complete: true
            }
        );
    }
}
