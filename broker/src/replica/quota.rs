//! Replication throttles (KIP-73), as pure state: which replicas are throttled and whether
//! the bytes they moved lately exceed the rate allowed.
//!
//! A reassignment tool (`kafka-reassign-partitions --throttle`) sets two things:
//! - per broker, `leader.replication.throttled.rate` and
//!   `follower.replication.throttled.rate` (bytes/s, dynamic broker configs);
//! - per topic, `leader.replication.throttled.replicas` and
//!   `follower.replication.throttled.replicas`: `partition:broker` pairs (or `*`) naming
//!   the replicas a leader on that broker throttles when serving them, and the replicas
//!   that broker throttles when fetching them.
//!
//! A throttled partition counts its bytes against the broker's rate, measured the way
//! Kafka's `Rate` measures it: over `replication.quota.window.num` windows of
//! `replication.quota.window.size.seconds`, never over less than all windows but the
//! current one (so a fresh throttle lets a burst of up to that many seconds' worth
//! through). While the rate is exceeded, a leader returns no records to a throttled
//! follower, and a throttled follower leaves the partition out of its fetches — but only
//! for replicas out of the ISR: replicas in sync are never throttled.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// Kafka's defaults: `replication.quota.window.num`, `replication.quota.window.size.seconds`.
pub const DEFAULT_WINDOWS: usize = 11;
pub const DEFAULT_WINDOW_MS: i64 = 1_000;

/// Bytes per second over a sliding set of windows (Kafka's `Rate` over `SampledStat`).
#[derive(Debug, Clone)]
pub struct Rate {
    windows: usize,
    window_ms: i64,
    /// (window start, bytes), oldest first.
    samples: VecDeque<(i64, u64)>,
}

impl Rate {
    pub fn new(windows: usize, window_ms: i64) -> Rate {
        Rate {
            windows: windows.max(2),
            window_ms: window_ms.max(1),
            samples: VecDeque::new(),
        }
    }

    pub fn record(&mut self, bytes: u64, now_ms: i64) {
        self.purge(now_ms);
        match self.samples.back_mut() {
            Some((start, total)) if now_ms < *start + self.window_ms => *total += bytes,
            _ => self.samples.push_back((now_ms, bytes)),
        }
    }

    /// Bytes per second at `now_ms`.
    pub fn measure(&mut self, now_ms: i64) -> f64 {
        self.purge(now_ms);
        let total: u64 = self.samples.iter().map(|(_, b)| b).sum();
        let oldest = self.samples.front().map_or(now_ms, |(start, _)| *start);
        let mut elapsed = now_ms - oldest;
        let full = elapsed / self.window_ms;
        let min_full = self.windows as i64 - 1;
        if full < min_full {
            elapsed += (min_full - full) * self.window_ms;
        }
        total as f64 * 1000.0 / elapsed.max(1) as f64
    }

    /// Drops windows that started `windows` windows ago or earlier.
    fn purge(&mut self, now_ms: i64) {
        let horizon = now_ms - self.windows as i64 * self.window_ms;
        while self
            .samples
            .front()
            .is_some_and(|(start, _)| *start <= horizon)
        {
            self.samples.pop_front();
        }
    }
}

/// The replicas of one topic a broker throttles, from a `*.replication.throttled.replicas`
/// value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThrottledReplicas {
    All,
    Partitions(BTreeSet<i32>),
}

impl ThrottledReplicas {
    /// Checks a `*.replication.throttled.replicas` value: empty, `*`, or
    /// `partition:broker` pairs separated by commas (Kafka's
    /// `ThrottledReplicaListValidator`).
    pub fn validate(value: &str) -> Result<(), String> {
        let value = value.trim();
        if value.is_empty() || value == "*" {
            return Ok(());
        }
        for pair in value.split(',') {
            let ok = pair.trim().split_once(':').is_some_and(|(p, b)| {
                p.trim().parse::<i32>().is_ok_and(|p| p >= 0)
                    && b.trim().parse::<i32>().is_ok_and(|b| b >= 0)
            });
            if !ok {
                return Err(format!(
                    "must be the literal '*' or a list of replicas in the following format: \
                     [partitionId]:[brokerId],[partitionId]:[brokerId],... (found '{}')",
                    pair.trim()
                ));
            }
        }
        Ok(())
    }

    /// The partitions `value` throttles on broker `broker_id`; `None` when none.
    pub fn for_broker(value: &str, broker_id: i32) -> Option<ThrottledReplicas> {
        let value = value.trim();
        if value == "*" {
            return Some(ThrottledReplicas::All);
        }
        let partitions: BTreeSet<i32> = value
            .split(',')
            .filter_map(|pair| {
                let (p, b) = pair.trim().split_once(':')?;
                (b.trim().parse::<i32>().ok()? == broker_id)
                    .then(|| p.trim().parse::<i32>().ok())
                    .flatten()
            })
            .collect();
        (!partitions.is_empty()).then_some(ThrottledReplicas::Partitions(partitions))
    }

    pub fn contains(&self, partition: i32) -> bool {
        match self {
            ThrottledReplicas::All => true,
            ThrottledReplicas::Partitions(p) => p.contains(&partition),
        }
    }
}

/// One direction of throttling on one broker (Kafka's `ReplicationQuotaManager`): the
/// leader side or the follower side.
#[derive(Debug, Clone)]
pub struct ReplicationQuota {
    /// Bytes per second; `None` is unthrottled.
    limit: Option<u64>,
    rate: Rate,
    throttled: HashMap<String, ThrottledReplicas>,
}

impl Default for ReplicationQuota {
    fn default() -> ReplicationQuota {
        ReplicationQuota::new(DEFAULT_WINDOWS, DEFAULT_WINDOW_MS)
    }
}

impl ReplicationQuota {
    pub fn new(windows: usize, window_ms: i64) -> ReplicationQuota {
        ReplicationQuota {
            limit: None,
            rate: Rate::new(windows, window_ms),
            throttled: HashMap::new(),
        }
    }

    /// The broker's `*.replication.throttled.rate`; `None` (or Long.MAX_VALUE, Kafka's
    /// default) removes the limit.
    pub fn set_limit(&mut self, limit: Option<u64>) {
        self.limit = limit.filter(|l| *l < i64::MAX as u64);
    }

    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// The topic's `*.replication.throttled.replicas`, as they concern this broker.
    pub fn set_throttled(&mut self, topic: &str, replicas: Option<ThrottledReplicas>) {
        match replicas {
            Some(r) => {
                self.throttled.insert(topic.to_string(), r);
            }
            None => {
                self.throttled.remove(topic);
            }
        }
    }

    pub fn is_throttled(&self, topic: &str, partition: i32) -> bool {
        self.throttled
            .get(topic)
            .is_some_and(|r| r.contains(partition))
    }

    /// Whether the bytes recorded lately exceed the limit.
    pub fn is_exceeded(&mut self, now_ms: i64) -> bool {
        match self.limit {
            None => false,
            Some(limit) => self.rate.measure(now_ms) > limit as f64,
        }
    }

    /// Whether a replica out of the ISR must wait: its partition is throttled and the
    /// rate is exceeded (Kafka's `shouldLeaderThrottle` / `shouldFollowerThrottle`).
    pub fn should_throttle(
        &mut self,
        topic: &str,
        partition: i32,
        in_sync: bool,
        now_ms: i64,
    ) -> bool {
        !in_sync && self.is_throttled(topic, partition) && self.is_exceeded(now_ms)
    }

    /// Counts bytes moved for throttled partitions.
    pub fn record(&mut self, bytes: u64, now_ms: i64) {
        if bytes > 0 {
            self.rate.record(bytes, now_ms);
        }
    }
}

/// A broker's two throttles, shared by its fetch handler (leader side) and its fetchers
/// (follower side).
#[derive(Debug, Default)]
pub struct ReplicationQuotas {
    leader: Mutex<ReplicationQuota>,
    follower: Mutex<ReplicationQuota>,
}

impl ReplicationQuotas {
    /// Quotas measured over `windows` windows of `window_ms`.
    pub fn new(windows: usize, window_ms: i64) -> ReplicationQuotas {
        ReplicationQuotas {
            leader: Mutex::new(ReplicationQuota::new(windows, window_ms)),
            follower: Mutex::new(ReplicationQuota::new(windows, window_ms)),
        }
    }

    pub fn leader(&self) -> MutexGuard<'_, ReplicationQuota> {
        self.leader.lock().expect("leader quota lock")
    }

    pub fn follower(&self) -> MutexGuard<'_, ReplicationQuota> {
        self.follower.lock().expect("follower quota lock")
    }

    /// Applies a topic's `leader.` and `follower.replication.throttled.replicas` as they
    /// concern broker `broker_id` (absent keys remove the throttles).
    pub fn set_topic_throttles(
        &self,
        topic: &str,
        leader: Option<&str>,
        follower: Option<&str>,
        broker_id: i32,
    ) {
        self.leader().set_throttled(
            topic,
            leader.and_then(|v| ThrottledReplicas::for_broker(v, broker_id)),
        );
        self.follower().set_throttled(
            topic,
            follower.and_then(|v| ThrottledReplicas::for_broker(v, broker_id)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_never_measures_over_less_than_all_but_one_window() {
        let mut rate = Rate::new(11, 1_000);
        rate.record(10_000, 0);
        // One second in, a fresh rate divides by ten seconds, as Kafka's does.
        assert_eq!(rate.measure(1_000), 1_000.0);
        assert_eq!(rate.measure(5_000), 1_000.0);
        // After eleven windows the sample is gone.
        assert_eq!(rate.measure(12_000), 0.0);
    }

    #[test]
    fn rate_over_a_steady_stream() {
        let mut rate = Rate::new(11, 1_000);
        for second in 0..30 {
            rate.record(500, second * 1_000);
        }
        // Eleven windows of 500 bytes over (11 windows minus the start of the current).
        let measured = rate.measure(29_500);
        assert!((measured - 5_500.0 / 10.5).abs() < 1.0, "{measured}");
    }

    #[test]
    fn throttled_replica_lists() {
        assert!(ThrottledReplicas::validate("").is_ok());
        assert!(ThrottledReplicas::validate("*").is_ok());
        assert!(ThrottledReplicas::validate("0:1, 1:2,2:3").is_ok());
        assert!(ThrottledReplicas::validate("0:1,x").is_err());
        assert!(ThrottledReplicas::validate("0-1").is_err());
        assert!(ThrottledReplicas::validate("-1:2").is_err());
        assert_eq!(
            ThrottledReplicas::for_broker("0:1,1:2,2:1", 1),
            Some(ThrottledReplicas::Partitions([0, 2].into()))
        );
        assert_eq!(ThrottledReplicas::for_broker("0:1,1:2", 3), None);
        assert_eq!(ThrottledReplicas::for_broker("", 3), None);
        assert_eq!(
            ThrottledReplicas::for_broker(" * ", 3),
            Some(ThrottledReplicas::All)
        );
    }

    #[test]
    fn only_throttled_replicas_out_of_sync_wait_while_the_rate_is_exceeded() {
        let mut quota = ReplicationQuota::default();
        quota.set_throttled("t", ThrottledReplicas::for_broker("0:1", 1));
        // No limit: nothing waits, however much moved.
        quota.record(u32::MAX as u64, 0);
        assert!(!quota.should_throttle("t", 0, false, 0));
        quota.set_limit(Some(1_000));
        assert!(quota.should_throttle("t", 0, false, 0));
        // In sync, another partition, another topic: never throttled.
        assert!(!quota.should_throttle("t", 0, true, 0));
        assert!(!quota.should_throttle("t", 1, false, 0));
        assert!(!quota.should_throttle("u", 0, false, 0));
        // Kafka's default (Long.MAX_VALUE) is no limit.
        quota.set_limit(Some(i64::MAX as u64));
        assert_eq!(quota.limit(), None);
        assert!(!quota.should_throttle("t", 0, false, 0));
        quota.set_throttled("t", None);
        quota.set_limit(Some(1_000));
        assert!(!quota.should_throttle("t", 0, false, 0));
    }

    #[test]
    fn a_throttle_holds_the_long_run_rate_to_its_limit() {
        // A follower that fetches 100 KB whenever the quota allows, for a minute, at a
        // limit of 200 KB/s: what moved is the limit times the time, plus the burst a
        // fresh rate allows (ten windows' worth).
        let mut quota = ReplicationQuota::default();
        quota.set_throttled("t", ThrottledReplicas::for_broker("*", 1));
        quota.set_limit(Some(200_000));
        let mut moved = 0u64;
        for tick in 0..6_000 {
            let now = tick * 10;
            if !quota.should_throttle("t", 0, false, now) {
                quota.record(100_000, now);
                moved += 100_000;
            }
        }
        let expected = 200_000 * 60 + 200_000 * 10;
        let error = moved as f64 / expected as f64;
        assert!(
            (0.9..1.1).contains(&error),
            "moved {moved}, expected about {expected}"
        );
    }
}
