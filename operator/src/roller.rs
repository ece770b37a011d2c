//! The rolling restart of brokers and coordinators as pure decisions:
//! [`next_step`]`(observed, progress)` says what to do next for brokers,
//! [`next_coordinator_step`] for the coordinator ensemble. Nothing here does IO or keeps
//! state: the caller observes, persists [`Progress`], and acts.
//!
//! Broker rules and where they come from:
//!
//! - **One pod at a time**, and the next only once the last one restarted is Ready and
//!   back in the ISR of every partition it has a replica of. Strimzi's `KafkaRoller` waits
//!   for readiness only, and a Ready broker may still be catching up: the next restart
//!   then took partitions offline (strimzi#3749).
//! - **Availability** (Strimzi's `KafkaAvailability.canRoll`): a broker may restart only
//!   if no partition it is in the ISR of would drop below `min.insync.replicas`, i.e.
//!   for every such partition `|ISR| > min.insync.replicas`. A partition already below
//!   its minimum does not hold back a broker outside its ISR: restarting that broker
//!   cannot make it worse. (Strimzi holds such a broker back too, reasoning that it might
//!   be the first to catch up; then one replica out for reasons of its own blocks the
//!   whole roll, as users report in strimzi#6052.)
//! - **What can never be rolled is reported, not retried** (strimzi#2964): a partition
//!   whose replication factor is at most its `min.insync.replicas` can never have an ISR
//!   larger than its minimum, so a broker in its ISR can never restart safely. The roll
//!   restarts every other broker it can and then answers [`Step::Stuck`] naming the
//!   partition, rather than waiting forever (Strimzi's old behaviour) or forcing the
//!   restart (Strimzi's since strimzi#2968). Raising the replication factor or lowering
//!   the topic's `min.insync.replicas` (a dynamic config, no restart needed) unblocks it.
//! - **Unready pods first**, as Strimzi's `KafkaRoller` takes them (a roll that waits for
//!   unready pods never finishes, strimzi#3710): a broker that needs a restart and is not
//!   Ready is restarted before the Ready ones, still under the availability rule (an
//!   unready broker is rarely in an ISR, so the rule seldom holds it). That is how a pod
//!   crash-looping on a bad config gets the fixed one (strimzi#3848). A pod that does not
//!   need a restart is never touched, starting or not (strimzi#6690).
//! - **The controller last** (Strimzi's rule, seen holding a roll in strimzi#4090): the
//!   broker that is the Kafka controller restarts after every other broker that can, so
//!   the controller moves once. While another broker waits on the availability rule the
//!   controller waits too; a broker that can never restart does not hold it. An unready
//!   controller counts as unready first: it is not serving anyway.
//! - **Leaderships move first** ([`Step::MoveLeadershipAway`]): before the pod goes, its
//!   leaderships are moved with a controlled shutdown (Kafka's ControlledShutdown, what
//!   the broker itself sends when SIGTERM stops it). Deleting the pod does the same
//!   anyway; asking ahead lets the roll see the leaderships gone before the broker stops,
//!   so a shutdown that outlasts the grace period cannot leave partitions leaderless. If
//!   they have not moved within [`Timeouts::leadership`] the delete goes ahead: it runs
//!   the same controlled shutdown. A broker that was asked to shut down is restarted
//!   even if it no longer needs to be: it sits outside every ISR until it registers again.
//! - **A pod that does not come back stops the roll** (strimzi#1001, where each
//!   reconciliation took down one more ZooKeeper): not Ready, or not back in its ISRs,
//!   within [`Timeouts::ready`] of its deletion → [`Step::Stuck`] naming it, and nothing
//!   else restarts. Stuck is not sticky: it is recomputed from what is observed, so the
//!   roll resumes by itself when the pod recovers, and a spec fix that changes the pod's
//!   revision restarts it again.
//! - **A pod being deleted by someone else** (an eviction, a person) holds the roll until
//!   it is back: its broker may still count in ISRs it is about to leave.
//!
//! Coordinators ([`next_coordinator_step`]) roll the same way with the quorum in place of
//! the ISR: members outside the quorum first, then observers, then followers, the leader
//! last; a voter in the quorum restarts only if the voters left in the quorum are still a
//! majority; each restarted member must be back in the quorum (its `srvr` mode) before the
//! next — except that other members outside the quorum may restart meanwhile, which
//! cannot cost the quorum anything: when a bad config took every member down, the fixed
//! one reaches them all instead of waiting forever for a first member that cannot form a
//! quorum alone. An ensemble of fewer than three voters can never lose one: that is
//! reported.
//!
//! The controller drives both (`controller::roll`, `controller::coordinator_roll`). Both
//! StatefulSets use `updateStrategy: OnDelete`; a pod needs a restart when its
//! `controller-revision-hash` differs from the StatefulSet's `updateRevision` (config,
//! image and the `strata.dev/restart` annotation all change the template). Each pass
//! observes pods, Metadata and DescribeConfigs (or `srvr` for coordinators), calls the
//! function with the progress kept in the status, and acts: a restart is recorded in the
//! status before the pod is deleted with a UID precondition (an operator that dies
//! between the two re-issues the delete instead of forgetting a pod that is going down);
//! `Wait` → a `Reconciling` condition with the reason; `Stuck` → a `Degraded` condition
//! and a Warning Event; `Done` → the progress is cleared (for brokers, with a preferred
//! leader election, since controlled shutdowns moved leaderships away).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use crate::kafka::TopicPartition;

/// `broker.id`; a Strata broker's is its pod ordinal.
pub type BrokerId = i32;

/// How long the roll waits before it asks a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From a pod's deletion until its replacement is Ready and back in every ISR (or, for
    /// a coordinator, back in the quorum).
    pub ready: Duration,
    /// From the first request to move a broker's leaderships until the pod is deleted
    /// regardless.
    pub leadership: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            ready: Duration::from_secs(10 * 60),
            leadership: Duration::from_secs(2 * 60),
        }
    }
}

/// A broker pod as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerPod {
    /// `metadata.uid`; `None` while the pod does not exist (deleted, not yet re-created).
    pub uid: Option<String>,
    /// Its revision differs from the StatefulSet's update revision, or its restart
    /// annotation from the cluster's.
    pub needs_restart: bool,
    /// The pod's Ready condition.
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set: the pod is going down. Its Ready condition
    /// can stay true until the container exits, so a terminating pod counts as not Ready.
    pub terminating: bool,
    /// This broker is the Kafka controller (`/controller` in the coordinator).
    pub controller: bool,
}

impl BrokerPod {
    fn serving(&self) -> bool {
        self.uid.is_some() && self.ready && !self.terminating
    }
}

/// A partition as Metadata and DescribeConfigs report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    /// `None` when the partition has no leader (offline).
    pub leader: Option<BrokerId>,
    /// The topic's effective `min.insync.replicas`.
    pub min_insync_replicas: usize,
}

/// What the controller observed in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub now: SystemTime,
    pub timeouts: Timeouts,
    /// Every broker pod the StatefulSet should have (ordinals below its replica count),
    /// whether or not the pod exists right now.
    pub brokers: BTreeMap<BrokerId, BrokerPod>,
    pub partitions: BTreeMap<TopicPartition, PartitionState>,
}

/// What the controller persisted of the roll (`status.operation`): only what cannot be
/// observed again, i.e. which pod the roll is acting on and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Idle,
    /// The broker's leaderships are being moved; its pod is next.
    MovingLeadership {
        broker: BrokerId,
        pod_uid: String,
        since: SystemTime,
    },
    /// The pod with this UID was deleted (or is about to be) at `since`.
    Restarting {
        broker: BrokerId,
        pod_uid: String,
        since: SystemTime,
    },
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Every broker runs the current revision; nothing of the roll is left.
    Done,
    /// Nothing to do now; look again later.
    Wait { reason: WaitReason },
    /// Ask the Kafka controller to move this broker's leaderships away (ControlledShutdown
    /// on its behalf). Deleting the pod would do the same as its first act.
    MoveLeadershipAway { broker: BrokerId, pod_uid: String },
    /// Delete this pod (with a UID precondition); the StatefulSet re-creates it on the
    /// current revision, and its SIGTERM runs a controlled shutdown.
    RestartPod { broker: BrokerId, pod_uid: String },
    /// The roll cannot go on without a person; nothing else restarts meanwhile.
    Stuck {
        broker: BrokerId,
        reason: StuckReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitReason {
    /// A pod is being deleted and not yet replaced.
    Terminating { broker: BrokerId },
    /// The restarted broker is not Ready yet.
    NotReady { broker: BrokerId },
    /// The restarted broker is Ready but not yet back in these ISRs.
    NotInIsr {
        broker: BrokerId,
        partitions: Vec<TopicPartition>,
    },
    /// Restarting this broker would take the partition below its `min.insync.replicas`.
    BelowMinIsr {
        broker: BrokerId,
        partition: TopicPartition,
        isr: Vec<BrokerId>,
        min_insync_replicas: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StuckReason {
    /// The deleted pod is still there, terminating.
    NotReplaced { waited: Duration },
    /// The re-created pod did not become Ready.
    NotReady { waited: Duration },
    /// The re-created broker is Ready but did not rejoin these ISRs.
    NotInIsr {
        waited: Duration,
        partitions: Vec<TopicPartition>,
    },
    /// The broker is in the ISR of a partition that can never have an ISR larger than its
    /// minimum, so it can never restart without that partition going below it.
    ReplicationFactorNotAboveMinIsr {
        partition: TopicPartition,
        replication_factor: usize,
        min_insync_replicas: usize,
    },
}

/// Broker rolls: the next step from what is observed and what was persisted.
pub fn next_step(observed: &Observed, progress: &Progress) -> Step {
    match progress {
        Progress::Idle => choose_broker(observed),
        Progress::MovingLeadership {
            broker,
            pod_uid,
            since,
        } => moving_leadership(observed, *broker, pod_uid, *since),
        Progress::Restarting {
            broker,
            pod_uid,
            since,
        } => restarting(observed, *broker, pod_uid, *since),
    }
}

fn waited(now: SystemTime, since: SystemTime) -> Duration {
    now.duration_since(since).unwrap_or_default()
}

/// The leaderships of `broker` are being moved away: again while some remain (the request
/// is idempotent and the last one may have failed), then the delete.
fn moving_leadership(o: &Observed, broker: BrokerId, uid: &str, since: SystemTime) -> Step {
    let same_pod = o
        .brokers
        .get(&broker)
        .is_some_and(|p| p.uid.as_deref() == Some(uid) && !p.terminating);
    if !same_pod {
        // Someone else restarted it meanwhile: wait for it like for one of ours.
        return restarting(o, broker, uid, since);
    }
    if let Err(hold) = may_restart(o, broker) {
        return hold;
    }
    if leads_any(o, broker) && waited(o.now, since) <= o.timeouts.leadership {
        Step::MoveLeadershipAway {
            broker,
            pod_uid: uid.to_string(),
        }
    } else {
        Step::RestartPod {
            broker,
            pod_uid: uid.to_string(),
        }
    }
}

/// The pod `uid` of `broker` was deleted at `since`, or was about to be.
fn restarting(o: &Observed, broker: BrokerId, uid: &str, since: SystemTime) -> Step {
    let Some(pod) = o.brokers.get(&broker) else {
        // The broker is gone from the StatefulSet (scaled down): nothing to wait for.
        return choose_broker(o);
    };
    let waited = waited(o.now, since);
    let timed_out = waited > o.timeouts.ready;
    if pod.uid.as_deref() == Some(uid) {
        if pod.terminating {
            return if timed_out {
                Step::Stuck {
                    broker,
                    reason: StuckReason::NotReplaced { waited },
                }
            } else {
                Step::Wait {
                    reason: WaitReason::Terminating { broker },
                }
            };
        }
        if pod.needs_restart {
            // Recorded but not deleted: the operator stopped in between. Delete it now.
            return match may_restart(o, broker) {
                Ok(()) => Step::RestartPod {
                    broker,
                    pod_uid: uid.to_string(),
                },
                Err(hold) => hold,
            };
        }
    }
    if pod.uid.is_some() && pod.needs_restart && !pod.terminating {
        // The revision moved on while this pod started (a fixed spec): restart it again
        // rather than wait for a pod the roll replaces anyway.
        return start_restart(o, broker);
    }
    let missing = missing_isr(o, broker);
    if pod.serving() && missing.is_empty() {
        return choose_broker(o);
    }
    match (pod.serving(), timed_out) {
        (false, false) => Step::Wait {
            reason: WaitReason::NotReady { broker },
        },
        (false, true) => Step::Stuck {
            broker,
            reason: StuckReason::NotReady { waited },
        },
        (true, false) => Step::Wait {
            reason: WaitReason::NotInIsr {
                broker,
                partitions: missing,
            },
        },
        (true, true) => Step::Stuck {
            broker,
            reason: StuckReason::NotInIsr {
                waited,
                partitions: missing,
            },
        },
    }
}

/// Nothing in flight: the next broker to restart, if any may.
fn choose_broker(o: &Observed) -> Step {
    if let Some(broker) = terminating(o, None) {
        return Step::Wait {
            reason: WaitReason::Terminating { broker },
        };
    }
    let mut candidates: Vec<(BrokerId, &BrokerPod)> = o
        .brokers
        .iter()
        .filter(|(_, p)| p.needs_restart && p.uid.is_some())
        .map(|(&b, p)| (b, p))
        .collect();
    if candidates.is_empty() {
        return Step::Done;
    }
    // Unready first, the controller last, then by ordinal.
    candidates.sort_by_key(|&(b, p)| (p.ready, p.controller, b));
    let mut waiting: Option<Step> = None;
    let mut stuck: Option<Step> = None;
    for (broker, pod) in candidates {
        match may_restart(o, broker) {
            Ok(()) if pod.ready && pod.controller && waiting.is_some() => break,
            Ok(()) => return start_restart(o, broker),
            Err(hold @ Step::Stuck { .. }) => {
                stuck.get_or_insert(hold);
            }
            Err(hold) => {
                waiting.get_or_insert(hold);
            }
        }
    }
    waiting.or(stuck).unwrap_or(Step::Done)
}

/// The first step of restarting `broker`: its leaderships first, if it has any.
fn start_restart(o: &Observed, broker: BrokerId) -> Step {
    if let Err(hold) = may_restart(o, broker) {
        return hold;
    }
    let pod_uid = o.brokers[&broker].uid.clone().unwrap_or_default();
    if leads_any(o, broker) {
        Step::MoveLeadershipAway { broker, pod_uid }
    } else {
        Step::RestartPod { broker, pod_uid }
    }
}

/// Whether `broker` may go down now; otherwise the step that holds it.
fn may_restart(o: &Observed, broker: BrokerId) -> Result<(), Step> {
    if let Some(other) = terminating(o, Some(broker)) {
        return Err(Step::Wait {
            reason: WaitReason::Terminating { broker: other },
        });
    }
    let blockers = || {
        o.partitions
            .iter()
            .filter(|(_, p)| p.isr.contains(&broker) && p.isr.len() <= p.min_insync_replicas)
    };
    if let Some((tp, p)) = blockers().find(|(_, p)| p.replicas.len() <= p.min_insync_replicas) {
        return Err(Step::Stuck {
            broker,
            reason: StuckReason::ReplicationFactorNotAboveMinIsr {
                partition: tp.clone(),
                replication_factor: p.replicas.len(),
                min_insync_replicas: p.min_insync_replicas,
            },
        });
    }
    if let Some((tp, p)) = blockers().next() {
        return Err(Step::Wait {
            reason: WaitReason::BelowMinIsr {
                broker,
                partition: tp.clone(),
                isr: p.isr.clone(),
                min_insync_replicas: p.min_insync_replicas,
            },
        });
    }
    Ok(())
}

/// The lowest broker, other than `except`, whose pod is being deleted.
fn terminating(o: &Observed, except: Option<BrokerId>) -> Option<BrokerId> {
    o.brokers
        .iter()
        .find(|&(&b, p)| p.terminating && Some(b) != except)
        .map(|(&b, _)| b)
}

fn leads_any(o: &Observed, broker: BrokerId) -> bool {
    o.partitions.values().any(|p| p.leader == Some(broker))
}

/// Partitions with a replica on `broker` whose ISR it is not in.
fn missing_isr(o: &Observed, broker: BrokerId) -> Vec<TopicPartition> {
    o.partitions
        .iter()
        .filter(|(_, p)| p.replicas.contains(&broker) && !p.isr.contains(&broker))
        .map(|(tp, _)| tp.clone())
        .collect()
}

// ---- coordinators ----

/// A coordinator's role as its `srvr` four-letter word reports it, declared in the order
/// members roll: observers, followers, the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QuorumMode {
    Observer,
    Follower,
    Leader,
    /// A single server running without a quorum.
    Standalone,
}

/// A coordinator pod as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorPod {
    /// `metadata.uid`; `None` while the pod does not exist.
    pub uid: Option<String>,
    pub needs_restart: bool,
    pub terminating: bool,
    /// A voting member (ordinals below `spec.coordinator.replicas`), not an observer.
    pub voter: bool,
    /// `None` when the member does not answer `srvr` with a mode: it is not in the quorum.
    pub mode: Option<QuorumMode>,
}

impl CoordinatorPod {
    fn in_quorum(&self) -> bool {
        self.uid.is_some() && !self.terminating && self.mode.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedEnsemble {
    pub now: SystemTime,
    /// From a member's deletion until it is back in the quorum.
    pub ready_timeout: Duration,
    /// Every member by `myid`-ordinal, whether or not its pod exists right now.
    pub members: BTreeMap<i32, CoordinatorPod>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorProgress {
    Idle,
    Restarting {
        member: i32,
        pod_uid: String,
        since: SystemTime,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorStep {
    Done,
    Wait {
        reason: CoordinatorWait,
    },
    RestartPod {
        member: i32,
        pod_uid: String,
    },
    Stuck {
        member: i32,
        reason: CoordinatorStuck,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorWait {
    Terminating {
        member: i32,
    },
    /// The restarted member is not back in the quorum yet.
    NotInQuorum {
        member: i32,
    },
    /// Restarting this voter would leave fewer voters in the quorum than a majority.
    QuorumAtMajority {
        member: i32,
        in_quorum: usize,
        voters: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorStuck {
    NotReplaced {
        waited: Duration,
    },
    NotInQuorum {
        waited: Duration,
    },
    /// With this few voters, losing one loses the majority: no restart is safe.
    TooFewVoters {
        voters: usize,
    },
}

/// Coordinator rolls: members outside the quorum first, then observers, followers, and
/// the leader last, each back in the quorum before the next.
pub fn next_coordinator_step(
    observed: &ObservedEnsemble,
    progress: &CoordinatorProgress,
) -> CoordinatorStep {
    match progress {
        CoordinatorProgress::Idle => choose_member(observed),
        CoordinatorProgress::Restarting {
            member,
            pod_uid,
            since,
        } => restarting_member(observed, *member, pod_uid, *since),
    }
}

fn restarting_member(
    o: &ObservedEnsemble,
    member: i32,
    uid: &str,
    since: SystemTime,
) -> CoordinatorStep {
    let Some(pod) = o.members.get(&member) else {
        return choose_member(o);
    };
    let waited = waited(o.now, since);
    let timed_out = waited > o.ready_timeout;
    if pod.uid.as_deref() == Some(uid) {
        if pod.terminating {
            return if timed_out {
                CoordinatorStep::Stuck {
                    member,
                    reason: CoordinatorStuck::NotReplaced { waited },
                }
            } else {
                CoordinatorStep::Wait {
                    reason: CoordinatorWait::Terminating { member },
                }
            };
        }
        if pod.needs_restart {
            return match may_restart_member(o, member) {
                Ok(()) => CoordinatorStep::RestartPod {
                    member,
                    pod_uid: uid.to_string(),
                },
                Err(hold) => hold,
            };
        }
    }
    if pod.uid.is_some() && pod.needs_restart && !pod.terminating {
        return start_member_restart(o, member);
    }
    if pod.in_quorum() {
        return choose_member(o);
    }
    // Another member outside the quorum costs it nothing to restart.
    if let Some(other) = o
        .members
        .iter()
        .find(|&(&m, p)| m != member && p.needs_restart && p.uid.is_some() && !p.in_quorum())
        .map(|(&m, _)| m)
        && terminating_member(o, None).is_none()
    {
        return start_member_restart(o, other);
    }
    match (pod.in_quorum(), timed_out) {
        (true, _) => choose_member(o),
        (false, false) => CoordinatorStep::Wait {
            reason: CoordinatorWait::NotInQuorum { member },
        },
        (false, true) => CoordinatorStep::Stuck {
            member,
            reason: CoordinatorStuck::NotInQuorum { waited },
        },
    }
}

fn choose_member(o: &ObservedEnsemble) -> CoordinatorStep {
    if let Some(member) = terminating_member(o, None) {
        return CoordinatorStep::Wait {
            reason: CoordinatorWait::Terminating { member },
        };
    }
    let mut candidates: Vec<(i32, &CoordinatorPod)> = o
        .members
        .iter()
        .filter(|(_, p)| p.needs_restart && p.uid.is_some())
        .map(|(&m, p)| (m, p))
        .collect();
    if candidates.is_empty() {
        return CoordinatorStep::Done;
    }
    // Outside the quorum first, then observers, followers, the leader; then by ordinal.
    candidates.sort_by_key(|&(m, p)| (p.in_quorum(), p.mode, m));
    let mut waiting = None;
    let mut stuck = None;
    for (member, pod) in candidates {
        let leads = matches!(pod.mode, Some(QuorumMode::Leader | QuorumMode::Standalone));
        match may_restart_member(o, member) {
            Ok(()) if leads && waiting.is_some() => break,
            Ok(()) => return start_member_restart(o, member),
            Err(hold @ CoordinatorStep::Stuck { .. }) => {
                stuck.get_or_insert(hold);
            }
            Err(hold) => {
                waiting.get_or_insert(hold);
            }
        }
    }
    waiting.or(stuck).unwrap_or(CoordinatorStep::Done)
}

fn start_member_restart(o: &ObservedEnsemble, member: i32) -> CoordinatorStep {
    match may_restart_member(o, member) {
        Ok(()) => CoordinatorStep::RestartPod {
            member,
            pod_uid: o.members[&member].uid.clone().unwrap_or_default(),
        },
        Err(hold) => hold,
    }
}

/// Whether `member` may go down now: a voter in the quorum only if the voters left in it
/// still make a majority of all voters.
fn may_restart_member(o: &ObservedEnsemble, member: i32) -> Result<(), CoordinatorStep> {
    if let Some(other) = terminating_member(o, Some(member)) {
        return Err(CoordinatorStep::Wait {
            reason: CoordinatorWait::Terminating { member: other },
        });
    }
    let pod = &o.members[&member];
    if !pod.voter || !pod.in_quorum() {
        return Ok(());
    }
    let voters = o.members.values().filter(|p| p.voter).count();
    let majority = voters / 2 + 1;
    if voters - 1 < majority {
        return Err(CoordinatorStep::Stuck {
            member,
            reason: CoordinatorStuck::TooFewVoters { voters },
        });
    }
    let in_quorum = o
        .members
        .values()
        .filter(|p| p.voter && p.in_quorum())
        .count();
    if in_quorum - 1 < majority {
        return Err(CoordinatorStep::Wait {
            reason: CoordinatorWait::QuorumAtMajority {
                member,
                in_quorum,
                voters,
            },
        });
    }
    Ok(())
}

/// The lowest member, other than `except`, whose pod is being deleted.
fn terminating_member(o: &ObservedEnsemble, except: Option<i32>) -> Option<i32> {
    o.members
        .iter()
        .find(|&(&m, p)| p.terminating && Some(m) != except)
        .map(|(&m, _)| m)
}

// ---- what a person reads ----

fn partitions(list: &[TopicPartition]) -> String {
    let named: Vec<String> = list.iter().map(|(t, p)| format!("{t}-{p}")).collect();
    named.join(", ")
}

fn minutes(d: &Duration) -> String {
    format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
}

impl Step {
    /// The CamelCase reason of the `RollingRestart` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Step::Done => "RollComplete",
            Step::MoveLeadershipAway { .. } => "MovingLeadership",
            Step::RestartPod { .. } => "RestartingBroker",
            Step::Wait { reason } => match reason {
                WaitReason::Terminating { .. } => "WaitingForPodDeletion",
                WaitReason::NotReady { .. } => "WaitingForBrokerReady",
                WaitReason::NotInIsr { .. } => "WaitingForIsr",
                WaitReason::BelowMinIsr { .. } => "WaitingForMinIsr",
            },
            Step::Stuck { reason, .. } => match reason {
                StuckReason::NotReplaced { .. } => "PodNotReplaced",
                StuckReason::NotReady { .. } => "BrokerNotReady",
                StuckReason::NotInIsr { .. } => "BrokerNotInIsr",
                StuckReason::ReplicationFactorNotAboveMinIsr { .. } => {
                    "ReplicationFactorNotAboveMinIsr"
                }
            },
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Done => write!(f, "every broker runs the current revision"),
            Step::MoveLeadershipAway { broker, .. } => {
                write!(f, "moving the leaderships of broker {broker} away")
            }
            Step::RestartPod { broker, .. } => write!(f, "restarting broker {broker}"),
            Step::Wait { reason } => match reason {
                WaitReason::Terminating { broker } => {
                    write!(f, "waiting for the pod of broker {broker} to be replaced")
                }
                WaitReason::NotReady { broker } => {
                    write!(f, "waiting for restarted broker {broker} to be ready")
                }
                WaitReason::NotInIsr {
                    broker,
                    partitions: tps,
                } => write!(
                    f,
                    "waiting for restarted broker {broker} to rejoin the ISR of {}",
                    partitions(tps)
                ),
                WaitReason::BelowMinIsr {
                    broker,
                    partition: (t, p),
                    isr,
                    min_insync_replicas,
                } => write!(
                    f,
                    "broker {broker} waits: {t}-{p} has ISR {isr:?} and min.insync.replicas={min_insync_replicas}, so restarting it would stop acks=all producers"
                ),
            },
            Step::Stuck { broker, reason } => match reason {
                StuckReason::NotReplaced { waited } => write!(
                    f,
                    "the pod of broker {broker} was deleted {} ago and is still terminating; nothing else is restarted until it is replaced",
                    minutes(waited)
                ),
                StuckReason::NotReady { waited } => write!(
                    f,
                    "broker {broker} is not ready {} after its restart; nothing else is restarted until it is (fixing its pod's configuration restarts it again)",
                    minutes(waited)
                ),
                StuckReason::NotInIsr {
                    waited,
                    partitions: tps,
                } => write!(
                    f,
                    "broker {broker} is ready but has not rejoined the ISR of {} {} after its restart; nothing else is restarted until it does",
                    partitions(tps),
                    minutes(waited)
                ),
                StuckReason::ReplicationFactorNotAboveMinIsr {
                    partition: (t, p),
                    replication_factor,
                    min_insync_replicas,
                } => write!(
                    f,
                    "broker {broker} cannot restart safely: {t}-{p} has replication factor {replication_factor} and min.insync.replicas={min_insync_replicas}, so losing any in-sync replica stops acks=all producers; raise the replication factor or lower the topic's min.insync.replicas"
                ),
            },
        }
    }
}

impl CoordinatorStep {
    /// The CamelCase reason of the `RollingRestart` condition for coordinators.
    pub fn reason(&self) -> &'static str {
        match self {
            CoordinatorStep::Done => "RollComplete",
            CoordinatorStep::RestartPod { .. } => "RestartingCoordinator",
            CoordinatorStep::Wait { reason } => match reason {
                CoordinatorWait::Terminating { .. } => "WaitingForPodDeletion",
                CoordinatorWait::NotInQuorum { .. } => "WaitingForQuorum",
                CoordinatorWait::QuorumAtMajority { .. } => "WaitingForQuorumMajority",
            },
            CoordinatorStep::Stuck { reason, .. } => match reason {
                CoordinatorStuck::NotReplaced { .. } => "PodNotReplaced",
                CoordinatorStuck::NotInQuorum { .. } => "CoordinatorNotInQuorum",
                CoordinatorStuck::TooFewVoters { .. } => "TooFewVoters",
            },
        }
    }
}

impl fmt::Display for CoordinatorStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoordinatorStep::Done => write!(f, "every coordinator runs the current revision"),
            CoordinatorStep::RestartPod { member, .. } => {
                write!(f, "restarting coordinator {member}")
            }
            CoordinatorStep::Wait { reason } => match reason {
                CoordinatorWait::Terminating { member } => {
                    write!(
                        f,
                        "waiting for the pod of coordinator {member} to be replaced"
                    )
                }
                CoordinatorWait::NotInQuorum { member } => write!(
                    f,
                    "waiting for restarted coordinator {member} to rejoin the quorum"
                ),
                CoordinatorWait::QuorumAtMajority {
                    member,
                    in_quorum,
                    voters,
                } => write!(
                    f,
                    "coordinator {member} waits: only {in_quorum} of {voters} voters are in the quorum, so restarting it would lose the majority"
                ),
            },
            CoordinatorStep::Stuck { member, reason } => match reason {
                CoordinatorStuck::NotReplaced { waited } => write!(
                    f,
                    "the pod of coordinator {member} was deleted {} ago and is still terminating; nothing else is restarted until it is replaced",
                    minutes(waited)
                ),
                CoordinatorStuck::NotInQuorum { waited } => write!(
                    f,
                    "coordinator {member} is not back in the quorum {} after its restart; nothing else is restarted until it is",
                    minutes(waited)
                ),
                CoordinatorStuck::TooFewVoters { voters } => write!(
                    f,
                    "coordinator {member} cannot restart without losing the quorum: the ensemble has {voters} voter(s); run at least 3"
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::UNIX_EPOCH;

    const T0: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        (topic.to_string(), partition)
    }

    fn uid(broker: BrokerId, generation: u32) -> String {
        format!("pod-{broker}-{generation}")
    }

    fn pod(broker: BrokerId, needs_restart: bool, ready: bool) -> BrokerPod {
        BrokerPod {
            uid: Some(uid(broker, 0)),
            needs_restart,
            ready,
            terminating: false,
            controller: false,
        }
    }

    fn partition(replicas: &[BrokerId], isr: &[BrokerId], min: usize) -> PartitionState {
        PartitionState {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader: isr.first().copied(),
            min_insync_replicas: min,
        }
    }

    fn observed(
        brokers: impl IntoIterator<Item = (BrokerId, BrokerPod)>,
        partitions: impl IntoIterator<Item = (TopicPartition, PartitionState)>,
    ) -> Observed {
        Observed {
            now: at(T0),
            timeouts: Timeouts::default(),
            brokers: brokers.into_iter().collect(),
            partitions: partitions.into_iter().collect(),
        }
    }

    // ---- the rules, stated on their own, for the enumerations to check against ----

    /// Partitions that restarting `broker` would take below their minimum.
    fn would_fall_below(o: &Observed, broker: BrokerId) -> Vec<&PartitionState> {
        o.partitions
            .values()
            .filter(|p| p.isr.contains(&broker) && p.isr.len() - 1 < p.min_insync_replicas)
            .collect()
    }

    fn safe(o: &Observed, broker: BrokerId) -> bool {
        would_fall_below(o, broker).is_empty()
    }

    fn never_safe(o: &Observed, broker: BrokerId) -> bool {
        would_fall_below(o, broker)
            .iter()
            .any(|p| p.replicas.len() <= p.min_insync_replicas)
    }

    fn candidates(o: &Observed) -> Vec<BrokerId> {
        o.brokers
            .iter()
            .filter(|(_, p)| p.needs_restart && p.uid.is_some())
            .map(|(&b, _)| b)
            .collect()
    }

    fn leads(o: &Observed, broker: BrokerId) -> bool {
        o.partitions.values().any(|p| p.leader == Some(broker))
    }

    /// The broker a step takes down, if it takes one down.
    fn takes_down(step: &Step) -> Option<BrokerId> {
        match step {
            Step::MoveLeadershipAway { broker, .. } | Step::RestartPod { broker, .. } => {
                Some(*broker)
            }
            _ => None,
        }
    }

    /// Checked on every step of every enumeration: whatever goes down keeps every
    /// partition at or above its minimum, or was outside the ISR of those below it; and
    /// no pod goes down while another is being deleted.
    fn assert_safe(o: &Observed, step: &Step, context: &dyn fmt::Debug) {
        if let Some(broker) = takes_down(step) {
            assert!(safe(o, broker), "unsafe {step:?} in {context:?}");
            assert!(
                !o.brokers.iter().any(|(&b, p)| b != broker && p.terminating),
                "{step:?} while another pod terminates: {context:?}"
            );
            let pod_uid = match step {
                Step::MoveLeadershipAway { pod_uid, .. } | Step::RestartPod { pod_uid, .. } => {
                    pod_uid
                }
                _ => unreachable!(),
            };
            assert_eq!(
                o.brokers[&broker].uid.as_ref(),
                Some(pod_uid),
                "{context:?}"
            );
        }
        if let Step::Stuck {
            broker,
            reason: StuckReason::ReplicationFactorNotAboveMinIsr { partition, .. },
        } = step
        {
            let p = &o.partitions[partition];
            assert!(p.isr.contains(broker) && p.replicas.len() <= p.min_insync_replicas);
        }
    }

    // ---- enumerating small clusters ----

    /// Every ISR of `replicas` (as a bit mask over it) with every leader among it or none.
    fn partition_states(replicas: &[BrokerId], mins: &[usize]) -> Vec<PartitionState> {
        let mut out = Vec::new();
        for mask in 0..1u32 << replicas.len() {
            let isr: Vec<BrokerId> = replicas
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, &b)| b)
                .collect();
            let leaders = std::iter::once(None).chain(isr.iter().map(|&b| Some(b)));
            for leader in leaders {
                for &min in mins {
                    out.push(PartitionState {
                        replicas: replicas.to_vec(),
                        isr: isr.clone(),
                        leader,
                        min_insync_replicas: min,
                    });
                }
            }
        }
        out
    }

    /// Every pair of states of partition `a` (replicas 0, 1, 2) and `b` (replicas 1, 2),
    /// min.insync.replicas 1 to 3 each: RF above, at and below the minimum.
    fn all_partitions(with_leaders: bool) -> Vec<BTreeMap<TopicPartition, PartitionState>> {
        let keep = |states: Vec<PartitionState>| -> Vec<PartitionState> {
            states
                .into_iter()
                .filter(|p| with_leaders || p.leader == p.isr.first().copied())
                .collect()
        };
        let a = keep(partition_states(&[0, 1, 2], &[1, 2, 3]));
        let b = keep(partition_states(&[1, 2], &[1, 2, 3]));
        let mut out = Vec::new();
        for pa in &a {
            for pb in &b {
                out.push(BTreeMap::from([
                    (tp("a", 0), pa.clone()),
                    (tp("b", 0), pb.clone()),
                ]));
            }
        }
        out
    }

    /// All (needs restart, ready) combinations of three brokers, with each choice of
    /// controller or none.
    fn all_pods() -> Vec<BTreeMap<BrokerId, BrokerPod>> {
        let mut out = Vec::new();
        for bits in 0..64u32 {
            for controller in [None, Some(0), Some(1), Some(2)] {
                let pods = (0..3)
                    .map(|b| {
                        let mut p = pod(b, bits & (1 << (2 * b)) != 0, bits & (2 << (2 * b)) != 0);
                        p.controller = controller == Some(b);
                        (b, p)
                    })
                    .collect();
                out.push(pods);
            }
        }
        out
    }

    #[test]
    fn from_idle_every_cluster_of_three_brokers_gets_the_step_the_rules_give() {
        let partitions = all_partitions(true);
        let mut seen = BTreeMap::<&str, usize>::new();
        for pods in all_pods() {
            for parts in &partitions {
                let o = observed(pods.clone(), parts.clone());
                let step = next_step(&o, &Progress::Idle);
                let context = (&pods, parts);
                assert_safe(&o, &step, &context);
                *seen.entry(step.reason()).or_default() += 1;

                let waiting: Vec<BrokerId> = candidates(&o)
                    .into_iter()
                    .filter(|&b| !safe(&o, b) && !never_safe(&o, b))
                    .collect();
                // Unready first, the controller last (held while another broker waits on
                // the availability rule), then by ordinal.
                let eligible = candidates(&o)
                    .into_iter()
                    .filter(|&b| safe(&o, b))
                    .filter(|&b| {
                        let p = &o.brokers[&b];
                        !(p.ready && p.controller && !waiting.is_empty())
                    })
                    .min_by_key(|&b| (o.brokers[&b].ready, o.brokers[&b].controller, b));
                match (eligible, &step) {
                    (None, Step::Done) => assert!(candidates(&o).is_empty()),
                    (Some(b), Step::MoveLeadershipAway { broker, .. }) => {
                        assert_eq!(*broker, b, "{context:?}");
                        assert!(leads(&o, b));
                    }
                    (Some(b), Step::RestartPod { broker, .. }) => {
                        assert_eq!(*broker, b, "{context:?}");
                        assert!(!leads(&o, b));
                    }
                    (None, Step::Wait { reason }) => {
                        let WaitReason::BelowMinIsr { broker, .. } = reason else {
                            panic!("{step:?} in {context:?}")
                        };
                        assert!(waiting.contains(broker), "{context:?}");
                    }
                    (None, Step::Stuck { broker, .. }) => {
                        assert!(waiting.is_empty(), "{context:?}");
                        assert!(never_safe(&o, *broker));
                        assert!(candidates(&o).iter().all(|&b| never_safe(&o, b)));
                    }
                    _ => panic!("{step:?} where the rules give {eligible:?}: {context:?}"),
                }
            }
        }
        // The enumeration reaches every kind of answer.
        for reason in [
            "RollComplete",
            "MovingLeadership",
            "RestartingBroker",
            "WaitingForMinIsr",
            "ReplicationFactorNotAboveMinIsr",
        ] {
            assert!(
                seen.get(reason).is_some_and(|&n| n > 0),
                "{reason}: {seen:?}"
            );
        }
    }

    #[test]
    fn a_pod_being_deleted_holds_every_other_restart() {
        let partitions = all_partitions(false);
        for pods in all_pods() {
            for parts in &partitions {
                for deleting in 0..3 {
                    let mut pods = pods.clone();
                    pods.get_mut(&deleting).unwrap().terminating = true;
                    let o = observed(pods, parts.clone());
                    let step = next_step(&o, &Progress::Idle);
                    assert_eq!(
                        step,
                        Step::Wait {
                            reason: WaitReason::Terminating { broker: deleting }
                        }
                    );
                }
            }
        }
    }

    /// The pod of the broker being restarted, in every state it can be found in.
    fn restarted_pod_states(broker: BrokerId) -> Vec<BrokerPod> {
        let mut out = Vec::new();
        for needs_restart in [false, true] {
            for ready in [false, true] {
                for (generation, terminating) in [(0, false), (0, true), (1, false)] {
                    out.push(BrokerPod {
                        uid: Some(uid(broker, generation)),
                        needs_restart,
                        ready,
                        terminating,
                        controller: false,
                    });
                }
            }
        }
        out.push(BrokerPod {
            uid: None,
            needs_restart: false,
            ready: false,
            terminating: false,
            controller: false,
        });
        out
    }

    /// Ready, and back in the ISR of every partition it has a replica of.
    fn settled(o: &Observed, broker: BrokerId) -> bool {
        o.brokers[&broker].serving()
            && o.partitions
                .values()
                .all(|p| !p.replicas.contains(&broker) || p.isr.contains(&broker))
    }

    #[test]
    fn while_a_restarted_broker_is_not_back_nothing_else_restarts() {
        let partitions = all_partitions(false);
        let timeout = Timeouts::default().ready.as_secs();
        for broker in 0..3 {
            for restarted in restarted_pod_states(broker) {
                for others in 0..16u32 {
                    for elapsed in [timeout, timeout + 1] {
                        let mut pods: BTreeMap<BrokerId, BrokerPod> = BTreeMap::new();
                        let mut bit = 0;
                        for b in (0..3).filter(|&b| b != broker) {
                            let p = pod(b, others & (1 << bit) != 0, others & (2 << bit) != 0);
                            pods.insert(b, p);
                            bit += 2;
                        }
                        pods.insert(broker, restarted.clone());
                        let progress = Progress::Restarting {
                            broker,
                            pod_uid: uid(broker, 0),
                            since: at(T0 - elapsed),
                        };
                        for parts in &partitions {
                            let o = observed(pods.clone(), parts.clone());
                            let step = next_step(&o, &progress);
                            let context = (&progress, &pods, parts);
                            assert_safe(&o, &step, &context);
                            let timed_out = elapsed > timeout;
                            let same_pod = restarted.uid == Some(uid(broker, 0));
                            let restart_again = restarted.needs_restart && !restarted.terminating;
                            if settled(&o, broker) && !restart_again {
                                // Back: the roll goes on as if idle.
                                assert_eq!(step, next_step(&o, &Progress::Idle), "{context:?}");
                                continue;
                            }
                            if let Some(other) = takes_down(&step) {
                                assert_eq!(other, broker, "{step:?} in {context:?}");
                                assert!(restarted.needs_restart);
                                if same_pod {
                                    // Only a pod recorded and never deleted is deleted again.
                                    assert!(matches!(step, Step::RestartPod { .. }));
                                }
                                continue;
                            }
                            assert_ne!(step, Step::Done, "{context:?}");
                            match &step {
                                Step::Stuck {
                                    broker: stuck,
                                    reason,
                                } => {
                                    assert_eq!(*stuck, broker);
                                    if !matches!(
                                        reason,
                                        StuckReason::ReplicationFactorNotAboveMinIsr { .. }
                                    ) {
                                        assert!(timed_out && !restart_again, "{context:?}");
                                    }
                                }
                                Step::Wait { .. } => {
                                    assert!(!timed_out || restart_again, "{step:?}: {context:?}");
                                }
                                _ => unreachable!(),
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn moving_leadership_goes_on_until_none_is_left_or_time_is_up_then_the_pod() {
        let partitions = all_partitions(true);
        let timeout = Timeouts::default().leadership.as_secs();
        for broker in 0..3 {
            for needs_restart in [false, true] {
                for ready in [false, true] {
                    for others in 0..4u32 {
                        for elapsed in [timeout, timeout + 1] {
                            let pods: BTreeMap<BrokerId, BrokerPod> = (0..3)
                                .map(|b| {
                                    if b == broker {
                                        (b, pod(b, needs_restart, ready))
                                    } else {
                                        (b, pod(b, others & (1 << (b % 2)) != 0, true))
                                    }
                                })
                                .collect();
                            let progress = Progress::MovingLeadership {
                                broker,
                                pod_uid: uid(broker, 0),
                                since: at(T0 - elapsed),
                            };
                            for parts in &partitions {
                                let o = observed(pods.clone(), parts.clone());
                                let step = next_step(&o, &progress);
                                let context = (&progress, &pods, parts);
                                assert_safe(&o, &step, &context);
                                let expected = if !safe(&o, broker) {
                                    assert!(matches!(step, Step::Wait { .. } | Step::Stuck { .. }));
                                    continue;
                                } else if leads(&o, broker) && elapsed <= timeout {
                                    Step::MoveLeadershipAway {
                                        broker,
                                        pod_uid: uid(broker, 0),
                                    }
                                } else {
                                    // Even if it no longer needs a restart: it was told to
                                    // shut down.
                                    Step::RestartPod {
                                        broker,
                                        pod_uid: uid(broker, 0),
                                    }
                                };
                                assert_eq!(step, expected, "{context:?}");
                            }
                        }
                    }
                }
            }
        }
    }

    // ---- a seeded simulation of whole rolls ----

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn range(&mut self, low: u64, high: u64) -> u64 {
            low + self.next() % (high - low + 1)
        }

        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
    }

    /// A cluster the roll acts on: pods that come back after a while, replicas that
    /// rejoin their ISR after a while more, followers that fall out of an ISR now and
    /// then on their own.
    struct Sim {
        rng: Rng,
        now: u64,
        pods: BTreeMap<BrokerId, BrokerPod>,
        generation: BTreeMap<BrokerId, u32>,
        /// When a deleted broker's pod is back (and Ready), and when it rejoins its ISRs.
        back_at: BTreeMap<BrokerId, (u64, u64)>,
        /// Brokers that were told to shut down and stay out of ISRs until restarted.
        shut_down: BTreeSet<BrokerId>,
        /// A follower out of an ISR on its own until then.
        lagging: BTreeMap<(TopicPartition, BrokerId), u64>,
        partitions: BTreeMap<TopicPartition, PartitionState>,
        never_ready: Option<BrokerId>,
        restarts: Vec<BrokerId>,
    }

    impl Sim {
        fn new(seed: u64, never_ready: Option<BrokerId>) -> Sim {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let n = rng.range(2, 5) as BrokerId;
            let controller = rng.range(0, n as u64 - 1) as BrokerId;
            let pods = (0..n)
                .map(|b| {
                    let mut p = pod(b, true, true);
                    p.controller = b == controller;
                    (b, p)
                })
                .collect();
            let mut partitions = BTreeMap::new();
            for t in 0..rng.range(1, 3) {
                let rf = rng.range(2, (n as u64).min(3)) as usize;
                let min = rng.range(1, rf as u64 - 1) as usize;
                for p in 0..rng.range(1, 4) as i32 {
                    let first = rng.range(0, n as u64 - 1) as BrokerId;
                    let replicas: Vec<BrokerId> =
                        (0..rf as BrokerId).map(|i| (first + i) % n).collect();
                    partitions.insert(
                        (format!("t{t}"), p),
                        PartitionState {
                            isr: replicas.clone(),
                            leader: Some(replicas[0]),
                            replicas,
                            min_insync_replicas: min,
                        },
                    );
                }
            }
            Sim {
                rng,
                now: T0,
                pods,
                generation: (0..n).map(|b| (b, 0)).collect(),
                back_at: BTreeMap::new(),
                shut_down: BTreeSet::new(),
                lagging: BTreeMap::new(),
                partitions,
                never_ready,
                restarts: Vec::new(),
            }
        }

        fn observed(&self) -> Observed {
            Observed {
                now: at(self.now),
                timeouts: Timeouts::default(),
                brokers: self.pods.clone(),
                partitions: self.partitions.clone(),
            }
        }

        fn leave_isrs(&mut self, broker: BrokerId) {
            for p in self.partitions.values_mut() {
                p.isr.retain(|&b| b != broker);
                if p.leader == Some(broker) {
                    p.leader = p.isr.first().copied();
                }
            }
        }

        /// Kafka's controlled shutdown: leaderships move to another in-sync replica and
        /// the broker leaves every ISR it is not the last member of.
        fn controlled_shutdown(&mut self, broker: BrokerId) {
            for p in self.partitions.values_mut() {
                if p.isr.contains(&broker) && p.isr.len() > 1 {
                    p.isr.retain(|&b| b != broker);
                    if p.leader == Some(broker) {
                        p.leader = p.isr.first().copied();
                    }
                }
            }
            self.shut_down.insert(broker);
        }

        fn delete_pod(&mut self, broker: BrokerId) {
            assert!(self.pods[&broker].needs_restart || self.shut_down.contains(&broker));
            if self.pods[&broker].controller {
                let others_done = self
                    .pods
                    .iter()
                    .all(|(&b, p)| b == broker || !p.needs_restart);
                assert!(
                    others_done,
                    "the controller restarted before {:?}",
                    self.pods
                );
                let next = *self.pods.keys().find(|&&b| b != broker).unwrap();
                self.pods.get_mut(&broker).unwrap().controller = false;
                self.pods.get_mut(&next).unwrap().controller = true;
            }
            self.restarts.push(broker);
            self.controlled_shutdown(broker);
            self.leave_isrs(broker);
            let ready = self.now + self.rng.range(10, 120);
            let rejoin = ready + self.rng.range(0, 90);
            self.back_at.insert(broker, (ready, rejoin));
            let pod = self.pods.get_mut(&broker).unwrap();
            pod.uid = None;
            pod.ready = false;
        }

        /// Time passes: pods come back, replicas rejoin, followers lag now and then.
        fn tick(&mut self) {
            self.now += 10;
            for (&broker, &(ready, rejoin)) in &self.back_at.clone() {
                if self.never_ready == Some(broker) {
                    let generation = self.generation[&broker] + 1;
                    self.pods.get_mut(&broker).unwrap().uid = Some(uid(broker, generation));
                    self.pods.get_mut(&broker).unwrap().needs_restart = false;
                    continue;
                }
                if self.now >= ready && self.pods[&broker].uid.is_none() {
                    let generation = self.generation.get_mut(&broker).unwrap();
                    *generation += 1;
                    let pod = self.pods.get_mut(&broker).unwrap();
                    pod.uid = Some(uid(broker, *generation));
                    pod.ready = true;
                    pod.needs_restart = false;
                    self.shut_down.remove(&broker);
                }
                if self.now >= rejoin && self.pods[&broker].ready {
                    self.back_at.remove(&broker);
                }
            }
            self.lagging.retain(|_, until| *until > self.now);
            let settling: BTreeSet<BrokerId> = self.back_at.keys().copied().collect();
            for (key, p) in self.partitions.iter_mut() {
                for &b in &p.replicas.clone() {
                    let lagging = self.lagging.contains_key(&(key.clone(), b));
                    let out = settling.contains(&b) || self.shut_down.contains(&b) || lagging;
                    if !out && !p.isr.contains(&b) {
                        p.isr.push(b);
                        p.leader = p.leader.or(Some(b));
                    }
                }
                // A follower falls behind on its own now and then.
                if self.rng.chance(3) && p.isr.len() > 1 {
                    let b = p.isr[p.isr.len() - 1];
                    if p.leader != Some(b) {
                        p.isr.retain(|&x| x != b);
                        let until = self.now + self.rng.range(10, 60);
                        self.lagging.insert((key.clone(), b), until);
                    }
                }
            }
        }

        /// Runs the roll as the controller would, checking at each action that no
        /// partition at or above its minimum goes below it because of the roll.
        fn roll(&mut self) -> Step {
            let mut progress = Progress::Idle;
            for _ in 0..2000 {
                let o = self.observed();
                let step = next_step(&o, &progress);
                assert_safe(&o, &step, &self.restarts);
                let before: Vec<bool> = self
                    .partitions
                    .values()
                    .map(|p| p.isr.len() >= p.min_insync_replicas)
                    .collect();
                match &step {
                    Step::Done | Step::Stuck { .. } => return step,
                    Step::Wait { .. } => {}
                    Step::MoveLeadershipAway { broker, pod_uid } => {
                        if !matches!(progress, Progress::MovingLeadership { broker: b, .. } if b == *broker)
                        {
                            progress = Progress::MovingLeadership {
                                broker: *broker,
                                pod_uid: pod_uid.clone(),
                                since: at(self.now),
                            };
                        }
                        self.controlled_shutdown(*broker);
                    }
                    Step::RestartPod { broker, pod_uid } => {
                        progress = Progress::Restarting {
                            broker: *broker,
                            pod_uid: pod_uid.clone(),
                            since: at(self.now),
                        };
                        self.delete_pod(*broker);
                    }
                }
                for (p, was_enough) in self.partitions.values().zip(before) {
                    if was_enough {
                        assert!(p.isr.len() >= p.min_insync_replicas, "{step:?}: {p:?}");
                    }
                }
                self.tick();
            }
            panic!("the roll did not finish: {:?}", self.restarts);
        }
    }

    #[test]
    fn simulated_rolls_restart_every_broker_once_without_going_below_min_isr() {
        for seed in 0..300 {
            let mut sim = Sim::new(seed, None);
            let brokers = sim.pods.len();
            assert_eq!(sim.roll(), Step::Done, "seed {seed}");
            let restarted: BTreeSet<BrokerId> = sim.restarts.iter().copied().collect();
            assert_eq!(
                sim.restarts.len(),
                brokers,
                "seed {seed}: {:?}",
                sim.restarts
            );
            assert_eq!(restarted.len(), brokers, "seed {seed}");
        }
    }

    #[test]
    fn simulated_rolls_stop_at_a_pod_that_never_comes_back() {
        for seed in 0..100 {
            let mut sim = Sim::new(seed, Some(0));
            let step = sim.roll();
            assert!(
                matches!(
                    step,
                    Step::Stuck {
                        broker: 0,
                        reason: StuckReason::NotReady { .. }
                    }
                ),
                "seed {seed}: {step:?}"
            );
            // Nothing restarted after it.
            assert_eq!(sim.restarts.last(), Some(&0), "seed {seed}");
        }
    }

    // ---- named cases ----

    fn three_brokers(needs_restart: bool) -> BTreeMap<BrokerId, BrokerPod> {
        (0..3).map(|b| (b, pod(b, needs_restart, true))).collect()
    }

    #[test]
    fn a_healthy_cluster_moves_leaderships_then_restarts_the_lowest_broker() {
        let parts = [(tp("orders", 0), partition(&[0, 1, 2], &[0, 1, 2], 2))];
        let o = observed(three_brokers(true), parts.clone());
        assert_eq!(
            next_step(&o, &Progress::Idle),
            Step::MoveLeadershipAway {
                broker: 0,
                pod_uid: uid(0, 0)
            }
        );
        // Broker 1 leads nothing: straight to the delete.
        let parts = [(tp("orders", 0), partition(&[0, 1, 2], &[0, 1, 2], 2))];
        let mut pods = three_brokers(false);
        pods.get_mut(&1).unwrap().needs_restart = true;
        assert_eq!(
            next_step(&observed(pods, parts), &Progress::Idle),
            Step::RestartPod {
                broker: 1,
                pod_uid: uid(1, 0)
            }
        );
        assert_eq!(
            next_step(&observed(three_brokers(false), []), &Progress::Idle),
            Step::Done
        );
    }

    #[test]
    fn an_under_replicated_partition_not_caused_by_the_roll_holds_only_its_isr() {
        // A roll blocked by an under-replicated partition (strimzi#6052). Broker 2 is out
        // of the ISR for reasons of its own; orders-0 is at its minimum. Brokers 0 and 1
        // would take it below: the roll waits and says why.
        let parts = [(tp("orders", 0), partition(&[0, 1, 2], &[0, 1], 2))];
        let mut pods = three_brokers(true);
        pods.get_mut(&2).unwrap().needs_restart = false;
        let step = next_step(&observed(pods.clone(), parts.clone()), &Progress::Idle);
        assert_eq!(
            step,
            Step::Wait {
                reason: WaitReason::BelowMinIsr {
                    broker: 0,
                    partition: tp("orders", 0),
                    isr: vec![0, 1],
                    min_insync_replicas: 2
                }
            }
        );
        assert_eq!(step.reason(), "WaitingForMinIsr");
        assert_eq!(
            step.to_string(),
            "broker 0 waits: orders-0 has ISR [0, 1] and min.insync.replicas=2, so restarting it would stop acks=all producers"
        );
        // Already below its minimum: broker 2 (outside the ISR) may restart, 0 (in it)
        // may not.
        let parts = [(tp("orders", 0), partition(&[0, 1, 2], &[0], 2))];
        let pods = three_brokers(true);
        assert_eq!(
            next_step(&observed(pods, parts), &Progress::Idle),
            Step::RestartPod {
                broker: 1,
                pod_uid: uid(1, 0)
            }
        );
    }

    #[test]
    fn replication_factor_at_or_below_min_isr_is_stuck_after_everything_else() {
        // strimzi#2964: RF 1 with min.insync.replicas 2 (and RF 2 with 2) can never roll.
        let parts = [
            (tp("tiny", 0), partition(&[0], &[0], 2)),
            (tp("pair", 0), partition(&[0, 1], &[0, 1], 2)),
            (tp("orders", 0), partition(&[0, 1, 2], &[1, 2, 0], 2)),
        ];
        let mut pods = three_brokers(true);
        // Broker 2 restarts: nothing holds it.
        let step = next_step(&observed(pods.clone(), parts.clone()), &Progress::Idle);
        assert_eq!(
            step,
            Step::RestartPod {
                broker: 2,
                pod_uid: uid(2, 0)
            }
        );
        pods.get_mut(&2).unwrap().needs_restart = false;
        let step = next_step(&observed(pods, parts), &Progress::Idle);
        assert_eq!(
            step,
            Step::Stuck {
                broker: 0,
                reason: StuckReason::ReplicationFactorNotAboveMinIsr {
                    partition: tp("pair", 0),
                    replication_factor: 2,
                    min_insync_replicas: 2
                }
            }
        );
        assert_eq!(step.reason(), "ReplicationFactorNotAboveMinIsr");
        assert!(step.to_string().contains("raise the replication factor"));
    }

    #[test]
    fn a_pod_that_never_becomes_ready_stops_the_roll_naming_it() {
        // strimzi#3710 and strimzi#1001: broker 0 was deleted 11 minutes ago and its new
        // pod is not ready. Brokers 1 and 2 still need a restart; neither is touched.
        let mut pods = three_brokers(true);
        pods.insert(
            0,
            BrokerPod {
                uid: Some(uid(0, 1)),
                needs_restart: false,
                ready: false,
                terminating: false,
                controller: false,
            },
        );
        let parts = [(tp("orders", 0), partition(&[0, 1, 2], &[1, 2], 1))];
        let progress = Progress::Restarting {
            broker: 0,
            pod_uid: uid(0, 0),
            since: at(T0 - 660),
        };
        let step = next_step(&observed(pods.clone(), parts.clone()), &progress);
        assert_eq!(
            step,
            Step::Stuck {
                broker: 0,
                reason: StuckReason::NotReady {
                    waited: Duration::from_secs(660)
                }
            }
        );
        assert_eq!(
            step.to_string(),
            "broker 0 is not ready 11m00s after its restart; nothing else is restarted until it is (fixing its pod's configuration restarts it again)"
        );
        // strimzi#3848: the spec is fixed, the revision moves on, the stuck pod is
        // restarted again at once.
        pods.get_mut(&0).unwrap().needs_restart = true;
        assert_eq!(
            next_step(&observed(pods, parts), &progress),
            Step::RestartPod {
                broker: 0,
                pod_uid: uid(0, 1)
            }
        );
    }

    #[test]
    fn a_restarted_broker_must_rejoin_every_isr_before_the_next() {
        let pods = three_brokers(true);
        let mut pods = pods;
        pods.insert(
            0,
            BrokerPod {
                uid: Some(uid(0, 1)),
                needs_restart: false,
                ready: true,
                terminating: false,
                controller: false,
            },
        );
        let parts = [
            (tp("a", 0), partition(&[0, 1, 2], &[1, 2, 0], 1)),
            (tp("b", 0), partition(&[0, 1, 2], &[1, 2], 1)),
        ];
        let progress = Progress::Restarting {
            broker: 0,
            pod_uid: uid(0, 0),
            since: at(T0 - 30),
        };
        assert_eq!(
            next_step(&observed(pods.clone(), parts), &progress),
            Step::Wait {
                reason: WaitReason::NotInIsr {
                    broker: 0,
                    partitions: vec![tp("b", 0)]
                }
            }
        );
        let parts = [
            (tp("a", 0), partition(&[0, 1, 2], &[1, 2, 0], 1)),
            (tp("b", 0), partition(&[0, 1, 2], &[1, 2, 0], 1)),
        ];
        assert_eq!(
            next_step(&observed(pods, parts), &progress),
            Step::MoveLeadershipAway {
                broker: 1,
                pod_uid: uid(1, 0)
            }
        );
    }

    #[test]
    fn the_controller_goes_last_and_waits_while_another_broker_waits() {
        // strimzi#4090. Broker 0 is the controller; broker 1 waits on orders-0 (broker 2
        // is lagging); broker 0 could restart but is held.
        let mut pods = three_brokers(true);
        pods.get_mut(&0).unwrap().controller = true;
        pods.get_mut(&2).unwrap().needs_restart = false;
        let parts = [(tp("orders", 0), partition(&[1, 2, 0], &[1, 0], 2))];
        let step = next_step(&observed(pods.clone(), parts), &Progress::Idle);
        assert!(
            matches!(
                step,
                Step::Wait {
                    reason: WaitReason::BelowMinIsr { broker: 1, .. }
                }
            ),
            "{step:?}"
        );
        // Once broker 2 is back the others go first, the controller last.
        let parts = [(tp("orders", 0), partition(&[1, 2, 0], &[1, 0, 2], 2))];
        let step = next_step(&observed(pods.clone(), parts.clone()), &Progress::Idle);
        assert_eq!(
            step,
            Step::MoveLeadershipAway {
                broker: 1,
                pod_uid: uid(1, 0)
            }
        );
        pods.get_mut(&1).unwrap().needs_restart = false;
        assert_eq!(
            next_step(&observed(pods, parts), &Progress::Idle),
            Step::RestartPod {
                broker: 0,
                pod_uid: uid(0, 0)
            }
        );
    }

    #[test]
    fn an_unready_broker_that_needs_a_restart_goes_first_even_the_controller() {
        let mut pods = three_brokers(true);
        pods.insert(2, pod(2, true, false));
        pods.get_mut(&2).unwrap().controller = true;
        let parts = [(tp("orders", 0), partition(&[0, 1, 2], &[0, 1], 2))];
        assert_eq!(
            next_step(&observed(pods, parts), &Progress::Idle),
            Step::RestartPod {
                broker: 2,
                pod_uid: uid(2, 0)
            }
        );
    }

    #[test]
    fn starting_pods_that_run_the_current_revision_are_left_alone() {
        // strimzi#6690: a new cluster's pods are not ready yet, none needs a restart.
        let pods: BTreeMap<BrokerId, BrokerPod> =
            (0..3).map(|b| (b, pod(b, false, false))).collect();
        assert_eq!(next_step(&observed(pods, []), &Progress::Idle), Step::Done);
    }

    #[test]
    fn a_delete_recorded_but_never_sent_is_sent_again() {
        // The operator recorded the restart of broker 1 and stopped before deleting it.
        let o = observed(three_brokers(true), []);
        let progress = Progress::Restarting {
            broker: 1,
            pod_uid: uid(1, 0),
            since: at(T0 - 3600),
        };
        assert_eq!(
            next_step(&o, &progress),
            Step::RestartPod {
                broker: 1,
                pod_uid: uid(1, 0)
            }
        );
        // Deleted but stuck terminating past the timeout (a finalizer, a lost node).
        let mut pods = three_brokers(true);
        pods.get_mut(&1).unwrap().terminating = true;
        let step = next_step(&observed(pods, []), &progress);
        assert_eq!(step.reason(), "PodNotReplaced");
    }

    #[test]
    fn leaderships_that_do_not_move_in_time_go_with_the_delete() {
        let parts = [(tp("orders", 0), partition(&[0, 1, 2], &[0, 1, 2], 1))];
        let o = observed(three_brokers(true), parts);
        let moving = |secs| Progress::MovingLeadership {
            broker: 0,
            pod_uid: uid(0, 0),
            since: at(T0 - secs),
        };
        assert!(matches!(
            next_step(&o, &moving(60)),
            Step::MoveLeadershipAway { broker: 0, .. }
        ));
        assert!(matches!(
            next_step(&o, &moving(121)),
            Step::RestartPod { broker: 0, .. }
        ));
    }

    // ---- coordinators ----

    fn member(voter: bool, needs_restart: bool, mode: Option<QuorumMode>) -> CoordinatorPod {
        CoordinatorPod {
            uid: Some("c0".into()),
            needs_restart,
            terminating: false,
            voter,
            mode,
        }
    }

    fn ensemble(members: impl IntoIterator<Item = (i32, CoordinatorPod)>) -> ObservedEnsemble {
        ObservedEnsemble {
            now: at(T0),
            ready_timeout: Duration::from_secs(600),
            members: members
                .into_iter()
                .map(|(m, mut p)| {
                    p.uid = Some(format!("coordinator-{m}"));
                    (m, p)
                })
                .collect(),
        }
    }

    fn restarted_member(step: &CoordinatorStep) -> Option<i32> {
        match step {
            CoordinatorStep::RestartPod { member, .. } => Some(*member),
            _ => None,
        }
    }

    #[test]
    fn every_ensemble_of_three_voters_and_an_observer_keeps_its_majority() {
        use QuorumMode::*;
        let voter_modes = [None, Some(Follower), Some(Leader)];
        let mut restarts = 0;
        for modes in 0..27 {
            let m: Vec<Option<QuorumMode>> = (0..3)
                .map(|i| voter_modes[modes / 3usize.pow(i) % 3])
                .collect();
            if m.iter().filter(|&&x| x == Some(Leader)).count() > 1 {
                continue;
            }
            for observer_mode in [None, Some(Observer)] {
                for needs in 0..16u32 {
                    let mut members: Vec<(i32, CoordinatorPod)> = (0..3)
                        .map(|i| (i, member(true, needs & (1 << i) != 0, m[i as usize])))
                        .collect();
                    members.push((3, member(false, needs & 8 != 0, observer_mode)));
                    let o = ensemble(members);
                    let step = next_coordinator_step(&o, &CoordinatorProgress::Idle);
                    let in_quorum = |x: &CoordinatorPod| x.mode.is_some();
                    let candidates: Vec<i32> = o
                        .members
                        .iter()
                        .filter(|(_, p)| p.needs_restart)
                        .map(|(&i, _)| i)
                        .collect();
                    assert_eq!(step == CoordinatorStep::Done, candidates.is_empty());
                    let Some(chosen) = restarted_member(&step) else {
                        continue;
                    };
                    restarts += 1;
                    let pod = &o.members[&chosen];
                    assert!(pod.needs_restart);
                    let voters_in = o
                        .members
                        .values()
                        .filter(|p| p.voter && in_quorum(p))
                        .count();
                    if pod.voter && in_quorum(pod) {
                        assert!(voters_in > 2, "majority lost: {step:?} in {o:?}");
                    }
                    // Outside the quorum first, then observers, followers, the leader.
                    let rank = |p: &CoordinatorPod| (in_quorum(p), p.mode);
                    for other in candidates.iter().filter(|&&i| i != chosen) {
                        let q = &o.members[other];
                        let q_safe = !q.voter || !in_quorum(q) || voters_in > 2;
                        if q_safe {
                            assert!(rank(pod) <= rank(q), "{step:?} before {other}: {o:?}");
                        }
                        if pod.mode == Some(Leader) {
                            assert!(q_safe, "leader before waiting {other}: {o:?}");
                        }
                    }
                }
            }
        }
        assert!(restarts > 100);
    }

    #[test]
    fn a_restarted_coordinator_must_rejoin_the_quorum_before_the_next() {
        use QuorumMode::*;
        let mut members = vec![
            (0, member(true, false, None)),
            (1, member(true, true, Some(Follower))),
            (2, member(true, true, Some(Leader))),
        ];
        let progress = |secs| CoordinatorProgress::Restarting {
            member: 0,
            pod_uid: "old".into(),
            since: at(T0 - secs),
        };
        let o = ensemble(members.clone());
        assert_eq!(
            next_coordinator_step(&o, &progress(30)),
            CoordinatorStep::Wait {
                reason: CoordinatorWait::NotInQuorum { member: 0 }
            }
        );
        // strimzi#1001: it never comes back; nothing else is restarted.
        let stuck = next_coordinator_step(&o, &progress(601));
        assert_eq!(stuck.reason(), "CoordinatorNotInQuorum");
        assert!(
            stuck
                .to_string()
                .starts_with("coordinator 0 is not back in the quorum 10m01s")
        );
        // Back as a follower: the other follower next, the leader last.
        members[0].1.mode = Some(Follower);
        let o = ensemble(members.clone());
        assert_eq!(
            restarted_member(&next_coordinator_step(&o, &progress(60))),
            Some(1)
        );
        members[1].1.needs_restart = false;
        let o = ensemble(members);
        assert_eq!(
            restarted_member(&next_coordinator_step(&o, &CoordinatorProgress::Idle)),
            Some(2)
        );
    }

    #[test]
    fn when_no_member_is_in_the_quorum_the_fixed_config_reaches_every_member() {
        // A bad config took all three down; the fix gave member 0 a new pod, which cannot
        // form a quorum alone: the others restart without waiting for it.
        let mut members = vec![
            (0, member(true, false, None)),
            (1, member(true, true, None)),
            (2, member(true, true, None)),
        ];
        let progress = |member, secs| CoordinatorProgress::Restarting {
            member,
            pod_uid: "old".into(),
            since: at(T0 - secs),
        };
        let o = ensemble(members.clone());
        assert_eq!(
            restarted_member(&next_coordinator_step(&o, &progress(0, 30))),
            Some(1)
        );
        // Past the timeout too: restarting beats reporting a member that cannot rejoin.
        assert_eq!(
            restarted_member(&next_coordinator_step(&o, &progress(0, 601))),
            Some(1)
        );
        // 0 and 1 make a quorum; 2, still outside, goes next.
        members[1].1 = member(true, false, Some(QuorumMode::Leader));
        members[0].1.mode = Some(QuorumMode::Follower);
        let o = ensemble(members.clone());
        assert_eq!(
            restarted_member(&next_coordinator_step(&o, &progress(1, 30))),
            Some(2)
        );
        // While one is being deleted, nothing else goes.
        members[2].1.terminating = true;
        members[1].1.mode = None;
        members[0].1.mode = None;
        let o = ensemble(members);
        assert_eq!(
            next_coordinator_step(&o, &progress(1, 30)),
            CoordinatorStep::Wait {
                reason: CoordinatorWait::NotInQuorum { member: 1 }
            }
        );
    }

    #[test]
    fn a_single_voter_is_reported_not_restarted() {
        let o = ensemble([(0, member(true, true, Some(QuorumMode::Standalone)))]);
        let step = next_coordinator_step(&o, &CoordinatorProgress::Idle);
        assert_eq!(
            step,
            CoordinatorStep::Stuck {
                member: 0,
                reason: CoordinatorStuck::TooFewVoters { voters: 1 }
            }
        );
        // Down already, it may restart: that cannot lose a quorum it is not in.
        let o = ensemble([(0, member(true, true, None))]);
        assert_eq!(
            restarted_member(&next_coordinator_step(&o, &CoordinatorProgress::Idle)),
            Some(0)
        );
    }

    #[test]
    fn a_voter_waits_while_another_is_out_of_the_quorum() {
        use QuorumMode::*;
        let o = ensemble([
            (0, member(true, false, None)),
            (1, member(true, true, Some(Follower))),
            (2, member(true, true, Some(Leader))),
        ]);
        let step = next_coordinator_step(&o, &CoordinatorProgress::Idle);
        assert_eq!(
            step,
            CoordinatorStep::Wait {
                reason: CoordinatorWait::QuorumAtMajority {
                    member: 1,
                    in_quorum: 2,
                    voters: 3
                }
            }
        );
        assert_eq!(step.reason(), "WaitingForQuorumMajority");
    }
}
