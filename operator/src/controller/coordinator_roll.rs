//! The coordinators' rolling restart, the IO around
//! [`crate::roller::next_coordinator_step`].
//!
//! Like the brokers', the coordinator StatefulSet uses `updateStrategy: OnDelete`: the
//! StatefulSet controller would restart members from the highest ordinal down, waiting
//! only for readiness, so the leader could go first and the ensemble would elect twice or
//! three times in one roll. Each pass this observes the coordinator pods (revision, being
//! deleted), asks every member its role with the `srvr` four-letter word, reads the roll's
//! progress from `status.coordinator.roll`, and takes the pure roller's next step:
//! members outside the quorum first, then observers, followers and the leader last, each
//! back in the quorum before the next goes down, and never a voter whose restart would
//! leave less than a majority of the voters in the quorum.
//!
//! A restart is recorded in the status before the pod is deleted (with a UID
//! precondition), so an operator that dies in between finds it on its next pass.
//!
//! A member that does not answer `srvr` (an operator outside the pod network, a loaded
//! node) but is Ready counts as in the quorum with its role unknown: a coordinator pod is
//! Ready only while it is in the quorum, so the roll stays safe, but cannot keep a leader
//! it was not told of for last (the status message says so when no member answers).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use futures::future::join_all;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::events::EventType;

use super::cluster::{publish, report_blocked};
use super::ensemble::ask_mode;
use super::roll::{REVISION_LABEL, delete_pod, is_ready, pods_by_ordinal, reconciling};
use super::{Context, Error, condition};
use crate::crd::{
    CoordinatorRoll, KafkaCluster, KafkaClusterStatus, OperationPhase, set_condition,
};
use crate::kafka::KafkaConnector;
use crate::resources::{COORDINATOR_CLIENT_PORT, ClusterNames, Component};
use crate::roller::{
    self, CoordinatorPod, CoordinatorProgress, CoordinatorStep, ObservedEnsemble, QuorumMode,
};

/// How long a member may take to answer `srvr`.
const SRVR_TIMEOUT: Duration = Duration::from_secs(2);

/// One pass of the coordinators' roll. Returns when to look again, or `None` when no roll
/// runs (then the brokers' roll may go on).
pub async fn reconcile<K: KafkaConnector>(
    ctx: &Context<K>,
    kc: &KafkaCluster,
    coordinators: &StatefulSet,
    previous: Option<&CoordinatorRoll>,
    status: &mut KafkaClusterStatus,
    now: &str,
) -> Result<Option<Duration>, Error> {
    let Some(update_revision) = coordinators
        .status
        .as_ref()
        .and_then(|s| s.update_revision.clone())
    else {
        return Ok(None);
    };
    let namespace = kc.namespace().unwrap_or_default();
    let names = ClusterNames::new(&kc.name_any(), &namespace);
    let members = coordinators
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(0);
    let voters = kc.spec.coordinator.replicas;
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let by_ordinal = pods_by_ordinal(&pods, &names, Component::Coordinator).await?;
    let progress = progress_of(previous);
    let needs_restart = |pod: &Pod| pod.labels().get(REVISION_LABEL) != Some(&update_revision);
    let any_outdated = (0..members).any(|i| by_ordinal.get(&i).is_some_and(needs_restart));
    if progress == CoordinatorProgress::Idle && !any_outdated {
        if previous.is_some() {
            finish(ctx, kc, status, now).await;
        }
        return Ok(None);
    }

    let asked = join_all((0..members).map(|i| {
        let address = format!(
            "{}:{COORDINATOR_CLIENT_PORT}",
            names.pod_dns(Component::Coordinator, i)
        );
        async move { ask_mode(&address, SRVR_TIMEOUT).await }
    }))
    .await;
    let answered = asked.iter().any(Option::is_some);
    // Roles as the members themselves said, for the Events.
    let roles: BTreeMap<i32, Option<QuorumMode>> = (0..members)
        .zip(&asked)
        .map(|(i, a)| (i, a.as_deref().and_then(quorum_mode)))
        .collect();
    let observed = ObservedEnsemble {
        now: SystemTime::now(),
        ready_timeout: ctx.roll_timeouts.ready,
        members: roles
            .iter()
            .map(|(&i, role)| {
                let pod = by_ordinal.get(&i);
                let terminating = pod.is_some_and(|p| p.metadata.deletion_timestamp.is_some());
                // A member that does not answer `srvr` in time (a loaded node, a DNS
                // record not yet updated) but whose pod is Ready counts as in the quorum,
                // its role unknown: taking a member of the quorum for one outside it would
                // let the roll restart it while another is down.
                let ready = pod.is_some_and(|p| is_ready(p) && !terminating);
                let mode = role.or(ready.then_some(QuorumMode::Follower));
                let member = CoordinatorPod {
                    uid: pod.and_then(|p| p.metadata.uid.clone()),
                    needs_restart: pod.is_some_and(needs_restart),
                    terminating,
                    voter: i < voters,
                    mode,
                };
                (i, member)
            })
            .collect(),
    };

    let step = roller::next_coordinator_step(&observed, &progress);
    let mut message = step.to_string();
    if !answered {
        message.push_str(
            " (no member answered srvr: the roll follows readiness and cannot keep the leader for last)",
        );
    }
    match &step {
        CoordinatorStep::Done => {
            if previous.is_some() {
                finish(ctx, kc, status, now).await;
            }
            Ok(None)
        }
        CoordinatorStep::Wait { .. } => {
            let roll = rolling(previous, &progress, OperationPhase::Waiting, now, message);
            Ok(Some(waiting(status, kc, roll, step.reason(), now)))
        }
        CoordinatorStep::RestartPod { member, pod_uid } => {
            let mut roll = rolling(
                previous,
                &progress,
                OperationPhase::Restarting,
                now,
                format!("restarting coordinator {member} onto revision {update_revision}"),
            );
            roll.member = Some(*member);
            roll.pod_uid = Some(pod_uid.clone());
            roll.since = Some(now.to_string());
            // Recorded before the delete: see the module documentation.
            let mut recorded = status.clone();
            if let Some(c) = recorded.coordinator.as_mut() {
                c.roll = Some(roll.clone());
            }
            super::cluster::patch_status(kc, &ctx.client, &recorded).await?;
            let pod_name = format!("{}-{member}", names.component(Component::Coordinator));
            delete_pod(&pods, &pod_name, pod_uid).await?;
            let role = roles[member].map_or(String::new(), |m| format!(", a {}", role_name(m)));
            let note = format!(
                "restarting coordinator {member} (pod {pod_name}{role}) onto revision {update_revision}"
            );
            publish(
                ctx,
                kc,
                EventType::Normal,
                "RestartingCoordinator",
                "Roll",
                &note,
            )
            .await;
            Ok(Some(waiting(status, kc, roll, step.reason(), now)))
        }
        CoordinatorStep::Stuck { member, .. } => {
            let mut roll = rolling(previous, &progress, OperationPhase::Blocked, now, message);
            if roll.member.is_none() {
                roll.member = Some(*member);
            }
            // A Warning Event when the roll becomes stuck, not on every pass while it is.
            let news = previous.is_none_or(|p| p.phase != OperationPhase::Blocked);
            report_blocked(
                ctx,
                kc,
                status,
                "Roll",
                step.reason(),
                &roll.message,
                news,
                now,
            )
            .await;
            set_roll(status, Some(roll));
            Ok(Some(Duration::from_secs(30)))
        }
    }
}

/// A `srvr` mode line's role.
fn quorum_mode(mode: &str) -> Option<QuorumMode> {
    match mode {
        "leader" => Some(QuorumMode::Leader),
        "follower" => Some(QuorumMode::Follower),
        "observer" => Some(QuorumMode::Observer),
        "standalone" => Some(QuorumMode::Standalone),
        _ => None,
    }
}

fn role_name(mode: QuorumMode) -> &'static str {
    match mode {
        QuorumMode::Leader => "leader",
        QuorumMode::Follower => "follower",
        QuorumMode::Observer => "observer",
        QuorumMode::Standalone => "standalone server",
    }
}

fn set_roll(status: &mut KafkaClusterStatus, roll: Option<CoordinatorRoll>) {
    if let Some(c) = status.coordinator.as_mut() {
        c.roll = roll;
    }
}

/// The roll for the status, keeping the member being restarted and when.
fn rolling(
    previous: Option<&CoordinatorRoll>,
    progress: &CoordinatorProgress,
    phase: OperationPhase,
    now: &str,
    message: String,
) -> CoordinatorRoll {
    let started = previous.map_or_else(|| now.to_string(), |r| r.started.clone());
    let mut roll = CoordinatorRoll {
        phase,
        started,
        member: None,
        pod_uid: None,
        since: None,
        message,
    };
    if let CoordinatorProgress::Restarting {
        member,
        pod_uid,
        since,
    } = progress
    {
        roll.member = Some(*member);
        roll.pod_uid = Some(pod_uid.clone());
        roll.since =
            Some(Timestamp::try_from(*since).map_or_else(|_| now.to_string(), |t| t.to_string()));
    }
    roll
}

fn waiting(
    status: &mut KafkaClusterStatus,
    kc: &KafkaCluster,
    roll: CoordinatorRoll,
    reason: &str,
    now: &str,
) -> Duration {
    reconciling(status, kc, reason, &roll.message, now);
    set_roll(status, Some(roll));
    Duration::from_secs(5)
}

async fn finish<K: KafkaConnector>(
    ctx: &Context<K>,
    kc: &KafkaCluster,
    status: &mut KafkaClusterStatus,
    now: &str,
) {
    set_roll(status, None);
    let done = "every coordinator runs the current revision";
    set_condition(
        &mut status.conditions,
        condition(
            "Reconciling",
            false,
            "CoordinatorRollComplete",
            done,
            kc.metadata.generation,
            now,
        ),
    );
    publish(
        ctx,
        kc,
        EventType::Normal,
        "CoordinatorRollComplete",
        "Roll",
        done,
    )
    .await;
}

/// What the status says the roll was doing.
fn progress_of(roll: Option<&CoordinatorRoll>) -> CoordinatorProgress {
    match roll {
        Some(CoordinatorRoll {
            member: Some(member),
            pod_uid: Some(uid),
            since: Some(since),
            ..
        }) => CoordinatorProgress::Restarting {
            member: *member,
            pod_uid: uid.clone(),
            since: Timestamp::from_str(since).map_or(SystemTime::now(), SystemTime::from),
        },
        _ => CoordinatorProgress::Idle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roll(member: Option<i32>, uid: Option<&str>, since: Option<&str>) -> CoordinatorRoll {
        CoordinatorRoll {
            phase: OperationPhase::Restarting,
            started: "2026-12-06T10:00:00Z".into(),
            member,
            pod_uid: uid.map(String::from),
            since: since.map(String::from),
            message: String::new(),
        }
    }

    #[test]
    fn progress_survives_the_status_round_trip() {
        let saved = roll(Some(1), Some("uid-1"), Some("2026-12-06T10:05:00Z"));
        let progress = progress_of(Some(&saved));
        assert_eq!(
            progress,
            CoordinatorProgress::Restarting {
                member: 1,
                pod_uid: "uid-1".into(),
                since: SystemTime::from(Timestamp::from_str("2026-12-06T10:05:00Z").unwrap()),
            }
        );
        let again = rolling(
            Some(&saved),
            &progress,
            OperationPhase::Waiting,
            "now",
            "m".into(),
        );
        assert_eq!(again.started, "2026-12-06T10:00:00Z");
        assert_eq!(
            (
                again.member,
                again.pod_uid.as_deref(),
                again.since.as_deref()
            ),
            (Some(1), Some("uid-1"), Some("2026-12-06T10:05:00Z"))
        );
    }

    #[test]
    fn a_roll_without_a_member_in_flight_is_idle() {
        assert_eq!(progress_of(None), CoordinatorProgress::Idle);
        assert_eq!(
            progress_of(Some(&roll(None, None, None))),
            CoordinatorProgress::Idle
        );
        assert_eq!(
            progress_of(Some(&roll(Some(2), None, Some("2026-12-06T10:05:00Z")))),
            CoordinatorProgress::Idle
        );
    }

    #[test]
    fn srvr_modes_are_roles() {
        assert_eq!(quorum_mode("leader"), Some(QuorumMode::Leader));
        assert_eq!(quorum_mode("observer"), Some(QuorumMode::Observer));
        assert_eq!(quorum_mode("standalone"), Some(QuorumMode::Standalone));
        assert_eq!(quorum_mode("read-only"), None);
    }
}
