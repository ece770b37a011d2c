//! The brokers' rolling restart, the IO around [`crate::roller::next_step`].
//!
//! The broker StatefulSet uses `updateStrategy: OnDelete`: a changed pod template (config,
//! image, the `strata.dev/restart` annotation) gives it a new update revision and restarts
//! nothing by itself. Each pass this observes the broker pods (revision, Ready, being
//! deleted), the partitions (Metadata: replicas, ISR, leader, the controller; DescribeConfigs:
//! `min.insync.replicas`), reads the roll's progress from `status.operation`, asks the pure
//! roller for the next step and takes it:
//!
//! - restart a broker: the progress (broker, pod UID, now) is written to the status first,
//!   then the pod is deleted with a UID precondition, so an operator that dies in between
//!   deletes it on its next pass instead of forgetting a pod that is going down. The
//!   broker's SIGTERM runs Kafka's controlled shutdown (its leaderships move while it still
//!   serves), so the roller's "move leadership away" step is taken by the same delete;
//! - wait: a `Reconciling` condition says for what;
//! - stuck: a `Degraded` condition and a Warning Event name the broker and why, and nothing
//!   else restarts until it recovers or the spec changes;
//! - done: the status forgets the roll, and a preferred leader election gives leaderships
//!   back to the brokers the controlled shutdowns took them from.
//!
//! When the brokers cannot be asked (all down, e.g. a bad config everywhere), only pods that
//! are not Ready are restarted: that cannot take a serving replica out of an ISR.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Preconditions};
use kube::runtime::events::EventType;

use super::cluster::{publish, report_blocked};
use super::{Context, Error, condition};
use crate::crd::{
    ClusterOperation, KafkaCluster, KafkaClusterStatus, OperationKind, OperationPhase,
    set_condition,
};
use crate::kafka::{KafkaConnector, PartitionStates, ReplicaAdmin, TopicPartition};
use crate::resources::{ClusterNames, Component};
use crate::roller::{self, BrokerPod, Observed, PartitionState, Progress, Step};

pub(super) const REVISION_LABEL: &str = "controller-revision-hash";

/// One pass of the roll. Returns when to look again, or `None` when no roll runs.
pub async fn reconcile<K: KafkaConnector>(
    ctx: &Context<K>,
    kc: &KafkaCluster,
    brokers: &StatefulSet,
    previous: Option<&ClusterOperation>,
    status: &mut KafkaClusterStatus,
    now: &str,
) -> Result<Option<Duration>, Error> {
    let Some(update_revision) = brokers
        .status
        .as_ref()
        .and_then(|s| s.update_revision.clone())
    else {
        return Ok(None);
    };
    let namespace = kc.namespace().unwrap_or_default();
    let names = ClusterNames::new(&kc.name_any(), &namespace);
    let replicas = brokers.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let by_ordinal = pods_by_ordinal(&pods, &names, Component::Broker).await?;
    let progress = progress_of(previous);
    let needs_restart = |pod: &Pod| pod.labels().get(REVISION_LABEL) != Some(&update_revision);
    let any_outdated = (0..replicas).any(|i| by_ordinal.get(&i).is_some_and(needs_restart));
    if progress == Progress::Idle && !any_outdated {
        if previous.is_some_and(|op| op.kind == OperationKind::RollingRestart) {
            finish(ctx, kc, status, now, None).await;
        }
        return Ok(None);
    }

    let states = match ctx
        .kafka
        .connect(&ctx.bootstrap_for(names.bootstrap_servers(kc.spec.listeners.plain.port)))
        .await
    {
        Ok(admin) => admin.partition_states().await,
        Err(e) => Err(e),
    };
    let (states, unreachable) = match states {
        Ok(states) => (states, None),
        Err(e) => (PartitionStates::default(), Some(e)),
    };
    let mut observed = Observed {
        now: SystemTime::now(),
        timeouts: ctx.roll_timeouts,
        brokers: (0..replicas)
            .map(|i| {
                let pod = by_ordinal.get(&i);
                let broker = BrokerPod {
                    uid: pod.and_then(|p| p.metadata.uid.clone()),
                    needs_restart: pod.is_some_and(needs_restart),
                    ready: pod.is_some_and(is_ready),
                    terminating: pod.is_some_and(|p| p.metadata.deletion_timestamp.is_some()),
                    controller: states.controller == Some(i),
                };
                (i, broker)
            })
            .collect(),
        partitions: states.partitions,
    };
    if let Some(e) = &unreachable {
        // Without the ISRs, only brokers that serve nothing may restart.
        if observed.brokers.values().any(|b| b.ready) {
            let op = rolling(
                previous,
                &progress,
                OperationPhase::Waiting,
                now,
                format!("cannot read the partitions' ISR from the brokers ({e}); waiting"),
            );
            return Ok(Some(waiting(status, kc, op, "BrokersUnreachable", now)));
        }
        observed.partitions.clear();
    }

    let step = roller::next_step(&observed, &progress);
    match &step {
        Step::Done => {
            if previous.is_some_and(|op| op.kind == OperationKind::RollingRestart) {
                // The partitions were just read (unless the brokers were unreachable).
                let known = unreachable
                    .is_none()
                    .then(|| not_preferred(&observed.partitions));
                finish(ctx, kc, status, now, known).await;
            }
            Ok(None)
        }
        Step::Wait { .. } => {
            let op = rolling(
                previous,
                &progress,
                OperationPhase::Waiting,
                now,
                step.to_string(),
            );
            Ok(Some(waiting(status, kc, op, step.reason(), now)))
        }
        Step::MoveLeadershipAway { broker, pod_uid } | Step::RestartPod { broker, pod_uid } => {
            let mut op = rolling(
                previous,
                &progress,
                OperationPhase::Restarting,
                now,
                format!("restarting broker {broker} onto revision {update_revision}"),
            );
            op.brokers = vec![*broker];
            op.pod_uid = Some(pod_uid.clone());
            op.since = Some(now.to_string());
            // Recorded before the delete: see the module documentation.
            let mut recorded = status.clone();
            recorded.operation = Some(op.clone());
            super::cluster::patch_status(kc, &ctx.client, &recorded).await?;
            let pod_name = format!("{}-{broker}", names.component(Component::Broker));
            delete_pod(&pods, &pod_name, pod_uid).await?;
            let note = format!(
                "restarting broker {broker} (pod {pod_name}) onto revision {update_revision}"
            );
            publish(
                ctx,
                kc,
                EventType::Normal,
                "RestartingBroker",
                "Roll",
                &note,
            )
            .await;
            Ok(Some(waiting(status, kc, op, step.reason(), now)))
        }
        Step::Stuck { broker, .. } => {
            let mut op = rolling(
                previous,
                &progress,
                OperationPhase::Blocked,
                now,
                step.to_string(),
            );
            op.brokers = vec![*broker];
            // A Warning Event when the roll becomes stuck, not on every pass while it is.
            let news = previous.is_none_or(|p| p.phase != OperationPhase::Blocked);
            report_blocked(
                ctx,
                kc,
                status,
                "Roll",
                step.reason(),
                &op.message,
                news,
                now,
            )
            .await;
            status.operation = Some(op);
            Ok(Some(Duration::from_secs(30)))
        }
    }
}

/// The roll's operation for the status, keeping the pod being restarted and when.
fn rolling(
    previous: Option<&ClusterOperation>,
    progress: &Progress,
    phase: OperationPhase,
    now: &str,
    message: String,
) -> ClusterOperation {
    let started = previous
        .filter(|op| op.kind == OperationKind::RollingRestart)
        .map_or_else(|| now.to_string(), |op| op.started.clone());
    let mut op = ClusterOperation {
        kind: OperationKind::RollingRestart,
        brokers: Vec::new(),
        phase,
        throttled_topics: Vec::new(),
        started,
        message,
        pod_uid: None,
        since: None,
    };
    if let Progress::Restarting {
        broker,
        pod_uid,
        since,
    } = progress
    {
        op.brokers = vec![*broker];
        op.pod_uid = Some(pod_uid.clone());
        op.since =
            Some(Timestamp::try_from(*since).map_or_else(|_| now.to_string(), |t| t.to_string()));
    }
    op
}

fn waiting(
    status: &mut KafkaClusterStatus,
    kc: &KafkaCluster,
    op: ClusterOperation,
    reason: &str,
    now: &str,
) -> Duration {
    reconciling(status, kc, reason, &op.message, now);
    status.operation = Some(op);
    Duration::from_secs(5)
}

/// The component's pods by ordinal (pods of other names are left out).
pub(super) async fn pods_by_ordinal(
    pods: &Api<Pod>,
    names: &ClusterNames,
    component: Component,
) -> Result<BTreeMap<i32, Pod>, Error> {
    let listed = pods
        .list(&ListParams::default().labels(&names.selector(component)))
        .await?;
    let prefix = format!("{}-", names.component(component));
    Ok(listed
        .items
        .into_iter()
        .filter_map(|pod| {
            let ordinal = pod.name_any().strip_prefix(&prefix)?.parse().ok()?;
            Some((ordinal, pod))
        })
        .collect())
}

/// Deletes the pod if it is still the one with `uid`; a pod gone or replaced already is
/// no error (the roll waits for the new one).
pub(super) async fn delete_pod(pods: &Api<Pod>, name: &str, uid: &str) -> Result<(), Error> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    super::delete_if_present(pods, name, &params).await
}

/// A roll waits: the `Reconciling` condition says for what.
pub(super) fn reconciling(
    status: &mut KafkaClusterStatus,
    kc: &KafkaCluster,
    reason: &str,
    message: &str,
    now: &str,
) {
    set_condition(
        &mut status.conditions,
        condition(
            "Reconciling",
            true,
            reason,
            message.to_string(),
            kc.metadata.generation,
            now,
        ),
    );
}

/// Partitions led by another replica than their first (preferred) one.
fn not_preferred(partitions: &BTreeMap<TopicPartition, PartitionState>) -> Vec<TopicPartition> {
    partitions
        .iter()
        .filter(|(_, s)| s.replicas.first().is_some_and(|&p| s.leader != Some(p)))
        .map(|(tp, _)| tp.clone())
        .collect()
}

/// The roll is over: forget it and give leaderships back to the preferred replicas
/// (`moved` when the caller has just read the partitions, else they are read here).
async fn finish<K: KafkaConnector>(
    ctx: &Context<K>,
    kc: &KafkaCluster,
    status: &mut KafkaClusterStatus,
    now: &str,
    moved: Option<Vec<TopicPartition>>,
) {
    status.operation = None;
    set_condition(
        &mut status.conditions,
        condition(
            "Reconciling",
            false,
            "RollComplete",
            "every broker runs the current revision",
            kc.metadata.generation,
            now,
        ),
    );
    let names = ClusterNames::new(&kc.name_any(), &kc.namespace().unwrap_or_default());
    let bootstrap = ctx.bootstrap_for(names.bootstrap_servers(kc.spec.listeners.plain.port));
    let elected = async {
        let admin = ctx.kafka.connect(&bootstrap).await?;
        let moved = match moved {
            Some(moved) => moved,
            None => not_preferred(&admin.partition_states().await?.partitions),
        };
        admin.elect_preferred_leaders(&moved).await
    };
    if let Err(e) = elected.await {
        tracing::info!(cluster = %kc.name_any(), %e, "preferred leader election after the roll");
    }
    publish(
        ctx,
        kc,
        EventType::Normal,
        "RollComplete",
        "Roll",
        "every broker runs the current revision",
    )
    .await;
}

pub(super) fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What the status says the roll was doing.
fn progress_of(op: Option<&ClusterOperation>) -> Progress {
    let Some(op) = op.filter(|op| op.kind == OperationKind::RollingRestart) else {
        return Progress::Idle;
    };
    match (op.brokers.first(), &op.pod_uid, &op.since) {
        (Some(&broker), Some(uid), Some(since)) => {
            let since = Timestamp::from_str(since).map_or(SystemTime::now(), SystemTime::from);
            Progress::Restarting {
                broker,
                pod_uid: uid.clone(),
                since,
            }
        }
        _ => Progress::Idle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(brokers: Vec<i32>, uid: Option<&str>, since: Option<&str>) -> ClusterOperation {
        ClusterOperation {
            kind: OperationKind::RollingRestart,
            brokers,
            phase: OperationPhase::Restarting,
            throttled_topics: Vec::new(),
            started: "2026-12-06T10:00:00Z".into(),
            message: String::new(),
            pod_uid: uid.map(String::from),
            since: since.map(String::from),
        }
    }

    #[test]
    fn progress_survives_the_status_round_trip() {
        let saved = op(vec![2], Some("uid-2"), Some("2026-12-06T10:05:00Z"));
        let Progress::Restarting {
            broker,
            pod_uid,
            since,
        } = progress_of(Some(&saved))
        else {
            panic!()
        };
        assert_eq!((broker, pod_uid.as_str()), (2, "uid-2"));
        let again = rolling(
            Some(&saved),
            &progress_of(Some(&saved)),
            OperationPhase::Waiting,
            "now",
            "m".into(),
        );
        assert_eq!(again.since.as_deref(), Some("2026-12-06T10:05:00Z"));
        assert_eq!(again.started, "2026-12-06T10:00:00Z");
        assert_eq!(again.pod_uid.as_deref(), Some("uid-2"));
        assert_eq!(
            since,
            SystemTime::from(Timestamp::from_str("2026-12-06T10:05:00Z").unwrap())
        );
    }

    #[test]
    fn a_roll_without_a_pod_in_flight_or_another_operation_is_idle() {
        assert_eq!(progress_of(None), Progress::Idle);
        assert_eq!(progress_of(Some(&op(vec![], None, None))), Progress::Idle);
        let mut drain = op(vec![3], Some("u"), Some("2026-12-06T10:05:00Z"));
        drain.kind = OperationKind::Drain;
        assert_eq!(progress_of(Some(&drain)), Progress::Idle);
    }
}
