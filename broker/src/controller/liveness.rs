//! A failure detector faster than the ZooKeeper session, for the commonest failure: a
//! broker process that died on a host that is still up (a crash, an OOM kill, a container
//! restarting in its pod). Its listener is gone, so connecting to it is refused at once,
//! while its ZooKeeper session lives on until `zookeeper.session.timeout.ms` (18 s by
//! default) — all that time its partitions would have no leader.
//!
//! The active controller connects to every other registered broker's inter-broker
//! listener every [`PROBE_INTERVAL`]. [`REFUSALS`] refusals in a row mark the broker
//! *refusing*: the controller then treats it as failed (new leaders from the ISR, out of
//! every ISR), exactly as when its registration goes, but remembers the registration. A
//! connection accepted again, or the registration replaced or gone, ends that.
//!
//! Only a refusal counts. A timeout or an unreachable network says nothing (a paused
//! process or a partition looks like that, and the session decides those, as in Kafka).
//! Acting on a refusal is safe even if the broker were somehow still serving elsewhere:
//! leaders are elected from the ISR with a new leader epoch, so the old leader's epoch is
//! fenced for followers and for the controller, exactly as after a preferred election.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::time::Duration;

use futures::future::join_all;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// How often each broker is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// How long a probe may take to connect; longer is "no answer", which counts for nothing.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Refusals in a row that make a broker refusing.
pub const REFUSALS: u32 = 2;

/// A broker to probe: its registration's epoch, its inter-broker endpoint, and whether
/// the controller treats it as refusing now (the controller's view is the reference:
/// after a reload it may know less than the detector).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub epoch: i64,
    pub address: String,
    pub refusing: bool,
}

/// What the detector tells the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reachability {
    /// The broker's listener refuses connections.
    Refusing { broker: i32, epoch: i64 },
    /// A broker that was refusing accepts connections again.
    Answering { broker: i32, epoch: i64 },
}

/// The outcome of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Accepted,
    Refused,
    /// Timed out, unreachable, or any other error: no evidence either way.
    NoAnswer,
}

/// One broker's probe history (pure).
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    refusals: u32,
    refusing: bool,
}

impl Tracker {
    /// A tracker that starts from what the controller believes.
    pub fn starting(refusing: bool) -> Tracker {
        Tracker {
            refusals: 0,
            refusing,
        }
    }

    /// Takes one probe's outcome; returns `Some(refusing)` when the broker's state changes.
    pub fn observe(&mut self, probe: Probe) -> Option<bool> {
        match probe {
            Probe::Refused => {
                self.refusals = self.refusals.saturating_add(1);
                if !self.refusing && self.refusals >= REFUSALS {
                    self.refusing = true;
                    return Some(true);
                }
            }
            Probe::Accepted => {
                self.refusals = 0;
                if self.refusing {
                    self.refusing = false;
                    return Some(false);
                }
            }
            Probe::NoAnswer => {}
        }
        None
    }

    pub fn is_refusing(&self) -> bool {
        self.refusing
    }
}

async fn probe(address: &str) -> Probe {
    match tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(address)).await {
        Ok(Ok(_)) => Probe::Accepted,
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => Probe::Refused,
        _ => Probe::NoAnswer,
    }
}

/// Probes the brokers in `targets` (replaced by the controller as its view changes) until
/// `reports` is closed; a broker whose epoch changes starts over.
pub async fn run(
    mut targets: watch::Receiver<BTreeMap<i32, Target>>,
    reports: mpsc::UnboundedSender<Reachability>,
) {
    let mut trackers: BTreeMap<i32, (i64, Tracker)> = BTreeMap::new();
    let mut ticker = tokio::time::interval(PROBE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            changed = targets.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        let current = targets.borrow_and_update().clone();
        // A tracker goes with a registration, and starts over where the controller's view
        // differs from it (a reloaded controller knows of no refusing broker).
        trackers.retain(|id, (epoch, tracker)| {
            current
                .get(id)
                .is_some_and(|t| t.epoch == *epoch && t.refusing == tracker.is_refusing())
        });
        let outcomes = join_all(
            current
                .iter()
                .map(|(id, t)| async move { (*id, t.epoch, probe(&t.address).await) }),
        )
        .await;
        for (broker, epoch, outcome) in outcomes {
            let refusing = current[&broker].refusing;
            let (_, tracker) = trackers
                .entry(broker)
                .or_insert_with(|| (epoch, Tracker::starting(refusing)));
            let report = match tracker.observe(outcome) {
                Some(true) => Reachability::Refusing { broker, epoch },
                Some(false) => Reachability::Answering { broker, epoch },
                None => continue,
            };
            if reports.send(report).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_in_a_row_make_a_broker_refusing_and_an_accept_ends_it() {
        let mut t = Tracker::default();
        assert_eq!(t.observe(Probe::Refused), None);
        assert_eq!(
            t.observe(Probe::Accepted),
            None,
            "one refusal is not enough"
        );
        assert_eq!(t.observe(Probe::Refused), None);
        assert_eq!(t.observe(Probe::Refused), Some(true));
        assert!(t.is_refusing());
        // Reported once, however long it lasts.
        assert_eq!(t.observe(Probe::Refused), None);
        assert_eq!(t.observe(Probe::Accepted), Some(false));
        assert!(!t.is_refusing());
    }

    #[test]
    fn no_answer_is_no_evidence() {
        let mut t = Tracker::default();
        for _ in 0..10 {
            assert_eq!(t.observe(Probe::NoAnswer), None);
        }
        assert!(!t.is_refusing());
        // Nor does it break a run of refusals, or end a refusing state.
        assert_eq!(t.observe(Probe::Refused), None);
        assert_eq!(t.observe(Probe::NoAnswer), None);
        assert_eq!(t.observe(Probe::Refused), Some(true));
        assert_eq!(t.observe(Probe::NoAnswer), None);
        assert!(t.is_refusing());
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_and_a_listening_one_accepted() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap().to_string();
        assert_eq!(probe(&open).await, Probe::Accepted);
        drop(listener);
        assert_eq!(probe(&open).await, Probe::Refused);
    }
}
