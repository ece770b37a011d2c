//! The `KafkaCluster` controller.
//!
//! Apply order, each step a server-side apply under [`FIELD_MANAGER`]:
//! 1. ConfigMaps (`zoo.cfg`, `server.properties`): pods must find their configuration;
//! 2. Services (headless ones first): members resolve each other by stable DNS name;
//! 3. PodDisruptionBudgets: in place before there is anything to disrupt;
//! 4. the ServiceMonitor, when metrics are on and its CRD is served;
//! 5. with `spec.brokers.rack`, the brokers' ServiceAccount and the ClusterRoleBinding that
//!    lets their init container read the node's topology label (without racks, a binding
//!    left from before is deleted);
//! 6. the coordinator StatefulSet, then the broker StatefulSet: brokers need the ensemble,
//!    and StatefulSets come last so their pods start with everything above in place.
//!
//! Deletion runs behind the `strata.dev/cleanup` finalizer in the reverse order instead of
//! leaving the order to the garbage collector: the broker StatefulSet goes first, in the
//! foreground, and nothing else is deleted until its pods are gone, so brokers shut down
//! while the ensemble they deregister from and the controller they hand leadership to
//! still run. Then the rest, including the ClusterRoleBinding no namespaced object can
//! own. PersistentVolumeClaims are kept: data outlives a mistaken delete.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{
    Context, Error, condition, coordinator_roll, ensemble, is_true, membership, now_rfc3339, roll,
    scaling, storage,
};
use crate::crd::{
    BrokerStatus, ClusterOperation, CoordinatorStatus, KafkaCluster, KafkaClusterStatus,
    OperationKind, OperationPhase, set_condition,
};
use crate::kafka::KafkaConnector;
use crate::membership::{ActiveConfig, MembershipStep, desired_members};
use crate::resources::{
    ClusterNames, Component, Desired, FIELD_MANAGER, annotate_tls_digest, config_hash,
    rack_cluster_role_binding,
};
use crate::validate::validate_cluster;

pub const CONTROLLER: &str = "kafkacluster";
pub const FINALIZER: &str = "strata.dev/cleanup";

pub async fn reconcile<K: KafkaConnector>(
    kc: Arc<KafkaCluster>,
    ctx: Arc<Context<K>>,
) -> Result<Action, Error> {
    let started = tokio::time::Instant::now();
    let namespace = kc.namespace().unwrap_or_default();
    let api: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &namespace);
    // The finalizer helper drops the finalizer as soon as cleanup returns, so waiting for
    // the brokers to stop happens before it is called.
    let deleting =
        kc.metadata.deletion_timestamp.is_some() && kc.finalizers().iter().any(|f| f == FINALIZER);
    if deleting && brokers_stopping(&kc, &ctx).await? {
        ctx.metrics.reconciled(CONTROLLER, started.elapsed());
        // The StatefulSet's deletion wakes the controller; this is the safety net.
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let result = finalizer(&api, FINALIZER, kc, |event| async {
        match event {
            FinalizerEvent::Apply(kc) => apply(&kc, &ctx).await,
            FinalizerEvent::Cleanup(kc) => cleanup(&kc, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.reconciled(CONTROLLER, started.elapsed());
    result
}

pub fn error_policy<K>(_kc: Arc<KafkaCluster>, error: &Error, ctx: Arc<Context<K>>) -> Action {
    ctx.on_error(CONTROLLER, error)
}

async fn apply<K: KafkaConnector>(
    cached: &KafkaCluster,
    ctx: &Context<K>,
) -> Result<Action, Error> {
    let namespace = cached.namespace().unwrap_or_default();
    let client = &ctx.client;
    // Read fresh, not from the watch cache: a pass started by a StatefulSet event can run
    // before the cache has seen the status the previous pass wrote, and an operation in
    // progress (status.operation) lives only there — a stale read would drop it.
    let api: Api<KafkaCluster> = Api::namespaced(client.clone(), &namespace);
    let Some(fresh) = api.get_opt(&cached.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let kc = &fresh;
    let names = ClusterNames::new(&kc.name_any(), &namespace);
    let now = now_rfc3339();
    let generation = kc.metadata.generation;
    let previous = kc.status.clone().unwrap_or_default();

    // Dereference: what runs now decides which Events this pass publishes.
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    let old_brokers = sts_api.get_opt(&names.component(Component::Broker)).await?;
    let old_coordinator = sts_api
        .get_opt(&names.component(Component::Coordinator))
        .await?;

    // Validate.
    let problems = validate_cluster(&kc.spec);
    if !problems.is_empty() {
        report_invalid(ctx, kc, &previous, &problems.join("; "), &now).await?;
        // Nothing to retry until someone edits the spec.
        return Ok(Action::await_change());
    }
    // The TLS listener's certificate: its digest goes into the broker pod template, so a
    // renewed certificate restarts the brokers onto it through the ISR-safe roll.
    let tls_digest = match &kc.spec.listeners.tls {
        None => None,
        Some(tls) => match tls_secret_digest(client, &namespace, &tls.secret_name).await? {
            Ok(digest) => Some(digest),
            Err(problem) => {
                let message = format!("spec.listeners.tls.secretName: {problem}");
                report_invalid(ctx, kc, &previous, &message, &now).await?;
                // The Secret may appear at any time: its watch brings the next pass,
                // this retry is the safety net.
                return Ok(Action::requeue(Duration::from_secs(30)));
            }
        },
    };

    // Build, then apply in the documented order.
    let desired = Desired::build(kc)?;
    for cm in &desired.config_maps {
        apply_object(client, &namespace, cm).await?;
    }
    for svc in &desired.services {
        apply_object(client, &namespace, svc).await?;
    }
    for pdb in &desired.pod_disruption_budgets {
        apply_object(client, &namespace, pdb).await?;
    }
    if let Some(monitor) = &desired.service_monitor {
        apply_service_monitor(ctx, kc, &namespace, monitor).await?;
    }
    match &desired.broker_service_account {
        Some(account) => {
            apply_object(client, &namespace, account).await?;
            let binding = rack_cluster_role_binding(&names, &ctx.broker_cluster_role);
            apply_cluster_object(client, &binding).await?;
        }
        None => {
            delete_cluster_object::<ClusterRoleBinding>(client, &names.rack_cluster_role_binding())
                .await?
        }
    }
    // A scale-down keeps every broker pod until the brokers that go are drained.
    let begun = scaling::begin(
        kc.spec.brokers.replicas,
        old_brokers.as_ref().map(desired_replicas),
        previous.operation.clone(),
        &now,
    );
    // The ensemble's membership: pods for joining members before the reconfiguration
    // that adds them, the pods of leaving ones only after the one that removes them.
    let owner = kc
        .controller_owner_ref(&())
        .ok_or(crate::resources::BuildError::MissingMetadata("uid"))?;
    let admin = membership::admin_credential(client, &names, &owner).await?;
    let coordinator_pods = roll::pods_by_ordinal(
        &Api::namespaced(client.clone(), &namespace),
        &names,
        Component::Coordinator,
    )
    .await?;
    let ready_ordinals: BTreeSet<i32> = coordinator_pods
        .iter()
        .filter(|(_, pod)| roll::is_ready(pod))
        .map(|(ordinal, _)| *ordinal)
        .collect();
    let active = match &old_coordinator {
        Some(_) => membership::read_active(&names, &ready_ordinals).await,
        None => None,
    };
    let membership_step = crate::membership::next_step(
        &desired_members(kc.spec.coordinator.replicas, kc.spec.coordinator.observers),
        active.as_ref(),
        old_coordinator.as_ref().map(desired_replicas),
        &ready_ordinals.iter().map(|o| o + 1).collect(),
    );
    let mut coordinator_set = desired.coordinator.clone();
    set_replicas(&mut coordinator_set, membership_step.replicas());
    let mut broker_set = desired.brokers.clone();
    set_replicas(&mut broker_set, begun.statefulset_replicas);
    if let Some(digest) = &tls_digest {
        annotate_tls_digest(&mut broker_set, digest);
    }

    // Volumes that grew: claims first, then the StatefulSet is re-created (storage.rs).
    let mut storage_problem = None;
    let mut recreating = false;
    for (component, old, set) in [
        (
            Component::Coordinator,
            &old_coordinator,
            &mut coordinator_set,
        ),
        (Component::Broker, &old_brokers, &mut broker_set),
    ] {
        let Some(old) = old else { continue };
        if old.metadata.deletion_timestamp.is_some() {
            // Our orphaning delete is still being carried out.
            recreating = true;
            continue;
        }
        match storage::compare(old, set) {
            storage::SizeChange::Same => {}
            storage::SizeChange::Shrink { from, to } => {
                storage::keep_size(set, &from);
                storage_problem = Some(format!(
                    "{} storage cannot shrink from {from} to {to}: Kubernetes cannot shrink a volume",
                    component.as_str()
                ));
            }
            storage::SizeChange::Grow { from, to } => {
                let selector = names.selector(component);
                match storage::grow(client, &namespace, old, &selector, &to).await? {
                    storage::Grown::Recreating { claims } => {
                        let note = format!(
                            "growing {claims} {} claim(s) from {from} to {to}; re-creating the StatefulSet without restarting its pods",
                            component.as_str()
                        );
                        publish(
                            ctx,
                            kc,
                            EventType::Normal,
                            "ResizingStorage",
                            "Resize",
                            &note,
                        )
                        .await;
                        recreating = true;
                    }
                    storage::Grown::Refused(why) => {
                        storage::keep_size(set, &from);
                        storage_problem = Some(why);
                    }
                }
            }
        }
    }
    if recreating {
        // Applied again once the API server has removed the old StatefulSet.
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    let coordinator = apply_object(client, &namespace, &coordinator_set).await?;
    let brokers = apply_object(client, &namespace, &broker_set).await?;

    // Events for the decisions this pass made.
    if old_coordinator.is_none() && old_brokers.is_none() {
        let note = format!(
            "created {} coordinators and {} brokers",
            desired_replicas(&coordinator),
            desired_replicas(&brokers)
        );
        publish(ctx, kc, EventType::Normal, "Created", "Apply", &note).await;
    }
    for (what, old, new) in [
        ("brokers", &old_brokers, &brokers),
        ("coordinators", &old_coordinator, &coordinator),
    ] {
        if let Some(old) = old {
            let (from, to) = (desired_replicas(old), desired_replicas(new));
            if from != to {
                let note = format!("scaled {what} from {from} to {to}");
                publish(ctx, kc, EventType::Normal, "Scaled", "Scale", &note).await;
            }
        }
    }

    let mut status = observed_status(
        previous.clone(),
        &names,
        kc,
        coordinator.status.as_ref(),
        brokers.status.as_ref(),
        begun.statefulset_replicas,
        &now,
    );
    // Ask for the leader only once every member is ready; before that there may be none.
    if let Some(coordinator) = status.coordinator.as_mut()
        && coordinator.ready == coordinator.desired
    {
        coordinator.leader = ensemble::find_leader(&names, coordinator.desired).await;
    }
    let reconfiguring = reconfigure_ensemble(
        ctx,
        kc,
        &names,
        &membership_step,
        active.as_ref(),
        &ready_ordinals,
        &admin,
        &mut status,
        &now,
    )
    .await;
    if let Some(problem) = &storage_problem {
        set_condition(
            &mut status.conditions,
            condition(
                "Degraded",
                true,
                "StorageNotResized",
                problem.clone(),
                generation,
                &now,
            ),
        );
    }
    let mut growing = Vec::new();
    for (component, sts) in [
        (Component::Coordinator, &coordinator),
        (Component::Broker, &brokers),
    ] {
        growing.extend(
            storage::still_growing(client, &namespace, sts, &names.selector(component)).await?,
        );
    }
    if !growing.is_empty() {
        set_condition(
            &mut status.conditions,
            condition(
                "Reconciling",
                true,
                "ResizingStorage",
                format!(
                    "waiting for the storage provider to grow {}",
                    growing.join(", ")
                ),
                generation,
                &now,
            ),
        );
    }
    status.operation = None;
    let requeue = if let Some(op) = begun.operation {
        let started = op.clone();
        let pods = begun.statefulset_replicas;
        let pods_ready = brokers
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        let driven = if pods_ready < pods {
            scaling::Driven::Running(scaling::waiting_for_pods(op, pods, pods_ready))
        } else {
            let bootstrap =
                ctx.bootstrap_for(names.bootstrap_servers(kc.spec.listeners.plain.port));
            let throttle = kc
                .spec
                .rebalance
                .as_ref()
                .and_then(|r| r.throttle_bytes_per_second);
            let attempt = async {
                let admin = ctx.kafka.connect(&bootstrap).await?;
                scaling::drive(&admin, op.clone(), pods, throttle).await
            };
            match attempt.await {
                Ok(driven) => driven,
                // The brokers are unreachable or refused: the operation stays, says why,
                // and is tried again.
                Err(e) => {
                    let mut op = op;
                    op.message = e.to_string();
                    scaling::Driven::Running(op)
                }
            }
        };
        Some(finish_step(ctx, kc, &mut status, &mut broker_set, started, driven, &now).await?)
    } else {
        // No scaling in progress: bring every pod onto the current revision, the
        // coordinators first (as Kafka's were rolled before the brokers): a broker roll
        // waits, keeping its progress, while a coordinator roll runs.
        let coordinator_roll = previous.coordinator.as_ref().and_then(|c| c.roll.as_ref());
        match coordinator_roll::reconcile(
            ctx,
            kc,
            &coordinator,
            coordinator_roll,
            &mut status,
            &now,
        )
        .await?
        {
            Some(requeue) => {
                status.operation = previous.operation.clone();
                Some(requeue)
            }
            None => {
                roll::reconcile(
                    ctx,
                    kc,
                    &brokers,
                    previous.operation.as_ref(),
                    &mut status,
                    &now,
                )
                .await?
            }
        }
    };
    let ready = is_true(&status.conditions, "Ready");
    if ready && !is_true(&previous.conditions, "Ready") {
        publish(
            ctx,
            kc,
            EventType::Normal,
            "Ready",
            "Observe",
            "every broker and coordinator is ready",
        )
        .await;
    }
    patch_status(kc, client, &status).await?;
    // StatefulSet changes trigger a pass through the watch; the requeue is a safety net
    // (and, while replicas move or claims grow, the way progress is noticed: neither
    // changes a watched object).
    let mut requeue = requeue.unwrap_or(Duration::from_secs(if ready { 300 } else { 30 }));
    if !growing.is_empty() || reconfiguring {
        requeue = requeue.min(Duration::from_secs(5));
    }
    Ok(Action::requeue(requeue))
}

/// The membership step's IO and what it says in the status: the `reconfig` when every
/// joining member is in the quorum, a Reconciling condition while the ensemble is not yet
/// what the spec asks for. Returns whether a change is under way (look again soon).
#[allow(clippy::too_many_arguments)]
async fn reconfigure_ensemble<K: KafkaConnector>(
    ctx: &Context<K>,
    kc: &KafkaCluster,
    names: &ClusterNames,
    step: &MembershipStep,
    active: Option<&ActiveConfig>,
    ready_ordinals: &BTreeSet<i32>,
    admin: &str,
    status: &mut KafkaClusterStatus,
    now: &str,
) -> bool {
    if let (Some(coordinator), Some(active)) = (status.coordinator.as_mut(), active) {
        coordinator.config_version = Some(format!("{:x}", active.version));
    }
    let message = match step {
        MembershipStep::Settled { .. } => return false,
        MembershipStep::Unknown { replicas } => {
            // No member answered (all restarting, or an operator outside the pod network):
            // only worth saying when the spec asks for another membership.
            if kc.spec.coordinator.replicas + kc.spec.coordinator.observers == *replicas {
                return false;
            }
            "no coordinator told its configuration; the ensemble's membership cannot change until one does".to_string()
        }
        MembershipStep::Starting { waiting, .. } => format!(
            "waiting for coordinators {} to join the quorum as followers before the reconfiguration",
            join_ids(waiting)
        ),
        MembershipStep::Reconfigure {
            joining,
            leaving,
            from_version,
            ..
        } => {
            let joining_ids: Vec<i32> = joining.iter().map(|(id, _)| *id).collect();
            match membership::reconfigure(
                names,
                ready_ordinals,
                admin,
                joining,
                leaving,
                *from_version,
            )
            .await
            {
                Ok(config) => {
                    if let Some(coordinator) = status.coordinator.as_mut() {
                        coordinator.config_version = Some(format!("{:x}", config.version));
                    }
                    let note = format!(
                        "reconfigured the coordinator ensemble (joining: {}; leaving: {}) to version {:x}",
                        join_ids(&joining_ids),
                        join_ids(leaving),
                        config.version
                    );
                    publish(
                        ctx,
                        kc,
                        EventType::Normal,
                        "Reconfigured",
                        "Reconfigure",
                        &note,
                    )
                    .await;
                    note
                }
                Err(why) => format!(
                    "reconfiguring the coordinator ensemble (joining: {}; leaving: {}): {why}",
                    join_ids(&joining_ids),
                    join_ids(leaving)
                ),
            }
        }
    };
    set_condition(
        &mut status.conditions,
        condition(
            "Reconciling",
            true,
            "Reconfiguring",
            message,
            kc.metadata.generation,
            now,
        ),
    );
    true
}

fn join_ids(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "none".into();
    }
    ids.iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn desired_replicas(sts: &StatefulSet) -> i32 {
    sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn set_replicas(sts: &mut StatefulSet, replicas: i32) {
    if let Some(spec) = sts.spec.as_mut() {
        spec.replicas = Some(replicas);
    }
}

/// Records what a step of a rebalance or drain concluded in the status, and acts on a
/// finished drain: the StatefulSet shrinks and, with `deleteClaim`, the removed brokers'
/// claims go. Returns when to look again.
async fn finish_step<K: KafkaConnector>(
    ctx: &Context<K>,
    kc: &KafkaCluster,
    status: &mut KafkaClusterStatus,
    broker_set: &mut StatefulSet,
    op: ClusterOperation,
    driven: scaling::Driven,
    now: &str,
) -> Result<Duration, Error> {
    let generation = kc.metadata.generation;
    let previous = kc.status.as_ref().and_then(|s| s.operation.as_ref());
    match driven {
        scaling::Driven::Running(op) => {
            if starts_or_resumes(previous, &op) {
                let note = match op.kind {
                    OperationKind::Rebalance | OperationKind::RollingRestart => {
                        format!("moving replicas onto brokers {:?}", op.brokers)
                    }
                    OperationKind::Drain => format!(
                        "draining brokers {:?} before their pods are removed",
                        op.brokers
                    ),
                };
                publish(
                    ctx,
                    kc,
                    EventType::Normal,
                    operation_reason(&op),
                    "Scale",
                    &note,
                )
                .await;
            }
            set_condition(
                &mut status.conditions,
                condition(
                    "Reconciling",
                    true,
                    &format!("{:?}", op.phase),
                    op.message.clone(),
                    generation,
                    now,
                ),
            );
            status.operation = Some(op);
            Ok(Duration::from_secs(5))
        }
        scaling::Driven::Blocked(op) => {
            let reason = match op.kind {
                OperationKind::Rebalance | OperationKind::RollingRestart => "RebalanceBlocked",
                OperationKind::Drain => "DrainBlocked",
            };
            let news = previous.is_none_or(|p| p.message != op.message);
            report_blocked(ctx, kc, status, "Scale", reason, &op.message, news, now).await;
            status.operation = Some(op);
            Ok(Duration::from_secs(60))
        }
        scaling::Driven::Done => {
            match op.kind {
                OperationKind::Rebalance | OperationKind::RollingRestart => {
                    let note = format!(
                        "replicas and leaders balanced over brokers including {:?}",
                        op.brokers
                    );
                    publish(ctx, kc, EventType::Normal, "Rebalanced", "Scale", &note).await;
                }
                OperationKind::Drain => {
                    let want = kc.spec.brokers.replicas;
                    let from = desired_replicas(broker_set);
                    set_replicas(broker_set, want);
                    let namespace = kc.namespace().unwrap_or_default();
                    let names = ClusterNames::new(&kc.name_any(), &namespace);
                    apply_object(&ctx.client, &namespace, broker_set).await?;
                    let note = format!(
                        "brokers {:?} drained; scaled brokers from {from} to {want}",
                        op.brokers
                    );
                    publish(ctx, kc, EventType::Normal, "Drained", "Scale", &note).await;
                    if kc.spec.brokers.storage.delete_claim {
                        // A claim still mounted waits for its pod (pvc-protection).
                        for broker in &op.brokers {
                            let claim =
                                format!("data-{}-{broker}", names.component(Component::Broker));
                            delete::<PersistentVolumeClaim>(&ctx.client, &namespace, &claim)
                                .await?;
                        }
                    }
                }
            }
            set_condition(
                &mut status.conditions,
                condition(
                    "Reconciling",
                    false,
                    "UpToDate",
                    "no operation in progress",
                    generation,
                    now,
                ),
            );
            status.operation = None;
            Ok(Duration::from_secs(5))
        }
    }
}

/// Whether `op`, running, is news against the operation the status held before: it has
/// just started, or it goes on after having been blocked (a drain that waited for a
/// metadata view to settle is announced when it really begins).
fn starts_or_resumes(previous: Option<&ClusterOperation>, op: &ClusterOperation) -> bool {
    previous.is_none_or(|p| {
        p.kind != op.kind || p.brokers != op.brokers || p.phase == OperationPhase::Blocked
    })
}

fn operation_reason(op: &ClusterOperation) -> &'static str {
    match op.kind {
        OperationKind::Rebalance | OperationKind::RollingRestart => "Rebalancing",
        OperationKind::Drain => "Draining",
    }
}

/// Status for a spec that failed validation: `Degraded` says what is wrong, nothing was
/// applied, and the last observed replica counts stay as they were.
/// Marks the cluster Degraded (and not Ready) for `message`, with a Warning Event the
/// first time.
async fn report_invalid<K: KafkaConnector>(
    ctx: &Context<K>,
    kc: &KafkaCluster,
    previous: &KafkaClusterStatus,
    message: &str,
    now: &str,
) -> Result<(), Error> {
    let generation = kc.metadata.generation;
    let status = invalid_status(previous.clone(), message, generation, now);
    let already_reported = previous
        .conditions
        .iter()
        .any(|c| c.type_ == "Degraded" && c.message == message);
    if !already_reported {
        publish(
            ctx,
            kc,
            EventType::Warning,
            "InvalidSpec",
            "Validate",
            message,
        )
        .await;
    }
    patch_status(kc, &ctx.client, &status).await?;
    Ok(())
}

/// The digest of a `kubernetes.io/tls` Secret's certificate (and CA, if it has one), or
/// why the Secret cannot serve a TLS listener. The private key is not hashed: a new key
/// comes with a new certificate.
async fn tls_secret_digest(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Result<String, String>, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let Some(secret) = api.get_opt(name).await? else {
        return Ok(Err(format!("Secret {name} does not exist")));
    };
    let data = secret.data.unwrap_or_default();
    let missing: Vec<&str> = ["tls.crt", "tls.key"]
        .into_iter()
        .filter(|key| data.get(*key).is_none_or(|v| v.0.is_empty()))
        .collect();
    if !missing.is_empty() {
        return Ok(Err(format!(
            "Secret {name} has no {} (a kubernetes.io/tls Secret has both)",
            missing.join(" and ")
        )));
    }
    let text = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .unwrap_or_default()
    };
    Ok(Ok(config_hash(&[&text("tls.crt"), &text("ca.crt")])))
}

pub fn invalid_status(
    mut status: KafkaClusterStatus,
    message: &str,
    generation: Option<i64>,
    now: &str,
) -> KafkaClusterStatus {
    status.observed_generation = generation;
    set_condition(
        &mut status.conditions,
        condition("Degraded", true, "InvalidSpec", message, generation, now),
    );
    set_condition(
        &mut status.conditions,
        condition(
            "Ready",
            false,
            "InvalidSpec",
            "the spec is invalid; see the Degraded condition",
            generation,
            now,
        ),
    );
    set_condition(
        &mut status.conditions,
        condition(
            "Reconciling",
            false,
            "InvalidSpec",
            "waiting for a valid spec",
            generation,
            now,
        ),
    );
    status
}

/// Status from the StatefulSets' own status (written by the StatefulSet controller from
/// the kubelet's pod readiness).
pub fn observed_status(
    mut status: KafkaClusterStatus,
    names: &ClusterNames,
    kc: &KafkaCluster,
    coordinator: Option<&StatefulSetStatus>,
    brokers: Option<&StatefulSetStatus>,
    broker_pods: i32,
    now: &str,
) -> KafkaClusterStatus {
    let generation = kc.metadata.generation;
    let spec = &kc.spec;
    let coordinators_desired = spec.coordinator.replicas + spec.coordinator.observers;
    let ready_of = |s: Option<&StatefulSetStatus>| s.and_then(|s| s.ready_replicas).unwrap_or(0);
    let brokers_ready = ready_of(brokers);
    let coordinators_ready = ready_of(coordinator);
    status.observed_generation = generation;
    status.brokers = Some(BrokerStatus {
        desired: spec.brokers.replicas,
        ready: brokers_ready,
        selector: Some(names.selector(Component::Broker)),
    });
    let (leader, roll, config_version) = status
        .coordinator
        .take()
        .map_or((None, None, None), |c| (c.leader, c.roll, c.config_version));
    status.coordinator = Some(CoordinatorStatus {
        desired: coordinators_desired,
        ready: coordinators_ready,
        leader,
        roll,
        config_version,
    });
    status.bootstrap_servers = Some(names.bootstrap_servers(spec.listeners.plain.port));

    // During a drain the StatefulSet keeps more pods than the spec asks for; readiness is
    // about the pods that run.
    let all_ready = brokers_ready == broker_pods && coordinators_ready == coordinators_desired;
    let progress = format!(
        "{brokers_ready}/{broker_pods} brokers and {coordinators_ready}/{coordinators_desired} coordinators ready"
    );
    set_condition(
        &mut status.conditions,
        condition(
            "Degraded",
            false,
            "SpecValid",
            "the spec is valid and applied",
            generation,
            now,
        ),
    );
    if all_ready {
        set_condition(
            &mut status.conditions,
            condition(
                "Ready",
                true,
                "AllReplicasReady",
                progress.clone(),
                generation,
                now,
            ),
        );
        set_condition(
            &mut status.conditions,
            condition("Reconciling", false, "UpToDate", progress, generation, now),
        );
    } else {
        set_condition(
            &mut status.conditions,
            condition(
                "Ready",
                false,
                "WaitingForPods",
                progress.clone(),
                generation,
                now,
            ),
        );
        set_condition(
            &mut status.conditions,
            condition(
                "Reconciling",
                true,
                "WaitingForPods",
                progress,
                generation,
                now,
            ),
        );
    }
    status
}

pub(super) async fn patch_status(
    kc: &KafkaCluster,
    client: &kube::Client,
    status: &KafkaClusterStatus,
) -> Result<(), Error> {
    let api: Api<KafkaCluster> =
        Api::namespaced(client.clone(), &kc.namespace().unwrap_or_default());
    if kc.status.as_ref() == Some(status) {
        return Ok(());
    }
    let mut patch = serde_json::to_value(status)?;
    // A merge patch keeps what it leaves out: a finished operation or coordinator roll,
    // and a leader no member claims, are removed explicitly.
    if status.operation.is_none() {
        patch["operation"] = serde_json::Value::Null;
    }
    if let Some(coordinator) = &status.coordinator {
        if coordinator.roll.is_none() {
            patch["coordinator"]["roll"] = serde_json::Value::Null;
        }
        if coordinator.leader.is_none() {
            patch["coordinator"]["leader"] = serde_json::Value::Null;
        }
    }
    api.patch_status(
        &kc.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": patch })),
    )
    .await?;
    Ok(())
}

/// Server-side apply with `force`: the operator owns these objects, so a field another
/// manager took (`kubectl edit`) is taken back rather than failing with a conflict.
async fn apply_with<T>(api: Api<T>, obj: &T) -> Result<T, Error>
where
    T: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    Ok(api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await?)
}

async fn apply_object<T>(client: &kube::Client, namespace: &str, obj: &T) -> Result<T, Error>
where
    T: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    apply_with(Api::namespaced(client.clone(), namespace), obj).await
}

async fn apply_cluster_object<T>(client: &kube::Client, obj: &T) -> Result<T, Error>
where
    T: Resource<Scope = ClusterResourceScope, DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    apply_with(Api::all(client.clone()), obj).await
}

const MONITORING_GROUP: &str = "monitoring.coreos.com";

fn service_monitor_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(MONITORING_GROUP, "v1", "ServiceMonitor"),
        "servicemonitors",
    )
}

/// The ServiceMonitor CRD belongs to the Prometheus Operator and may not be installed; then
/// the cluster goes on without one.
async fn apply_service_monitor<K>(
    ctx: &Context<K>,
    kc: &KafkaCluster,
    namespace: &str,
    monitor: &serde_json::Value,
) -> Result<(), Error> {
    let groups = ctx.client.list_api_groups().await?;
    if !groups.groups.iter().any(|g| g.name == MONITORING_GROUP) {
        tracing::debug!(cluster = %kc.name_any(), "ServiceMonitor CRD not served; skipping");
        return Ok(());
    }
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &service_monitor_resource());
    let obj: DynamicObject = serde_json::from_value(monitor.clone())?;
    api.patch(
        &kc.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&obj),
    )
    .await?;
    Ok(())
}

/// The first step of a deletion: the broker StatefulSet is deleted in the foreground (it
/// stays, marked, until the garbage collector removed its pods). True while it is there.
async fn brokers_stopping<K>(kc: &KafkaCluster, ctx: &Context<K>) -> Result<bool, Error> {
    let namespace = kc.namespace().unwrap_or_default();
    let names = ClusterNames::new(&kc.name_any(), &namespace);
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(brokers) = api.get_opt(&names.component(Component::Broker)).await? else {
        return Ok(false);
    };
    if brokers.metadata.deletion_timestamp.is_none() {
        publish(
            ctx,
            kc,
            EventType::Normal,
            "Deleting",
            "Cleanup",
            "stopping the brokers; the coordinator ensemble goes once they are gone",
        )
        .await;
        match api
            .delete(
                &names.component(Component::Broker),
                &DeleteParams::foreground(),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

async fn cleanup<K: KafkaConnector>(kc: &KafkaCluster, ctx: &Context<K>) -> Result<Action, Error> {
    let namespace = kc.namespace().unwrap_or_default();
    let names = ClusterNames::new(&kc.name_any(), &namespace);
    let client = &ctx.client;
    // Gone already (see `brokers_stopping`), unless the operator was not there to wait.
    delete::<StatefulSet>(client, &namespace, &names.component(Component::Broker)).await?;
    delete::<StatefulSet>(client, &namespace, &names.component(Component::Coordinator)).await?;
    for component in [Component::Broker, Component::Coordinator] {
        delete::<PodDisruptionBudget>(client, &namespace, &names.component(component)).await?;
        delete::<Service>(client, &namespace, &names.component(component)).await?;
        delete::<ConfigMap>(client, &namespace, &names.config_map(component)).await?;
    }
    delete::<Service>(client, &namespace, &names.bootstrap()).await?;
    delete::<ServiceAccount>(client, &namespace, &names.broker_service_account()).await?;
    delete_cluster_object::<ClusterRoleBinding>(client, &names.rack_cluster_role_binding()).await?;
    if client
        .list_api_groups()
        .await?
        .groups
        .iter()
        .any(|g| g.name == MONITORING_GROUP)
    {
        let monitors: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &namespace, &service_monitor_resource());
        match monitors
            .delete(&names.cluster, &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Action::await_change())
}

/// Deletes an owned object if it is still there; gone already is success. Background
/// propagation: the object goes at once and the garbage collector removes its pods, rather
/// than the object lingering until every dependent is gone.
async fn delete_with<T>(api: Api<T>, name: &str) -> Result<(), Error>
where
    T: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    super::delete_if_present(&api, name, &DeleteParams::background()).await
}

async fn delete<T>(client: &kube::Client, namespace: &str, name: &str) -> Result<(), Error>
where
    T: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    delete_with(Api::<T>::namespaced(client.clone(), namespace), name).await
}

async fn delete_cluster_object<T>(client: &kube::Client, name: &str) -> Result<(), Error>
where
    T: Resource<Scope = ClusterResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    delete_with(Api::<T>::all(client.clone()), name).await
}

/// An operation that cannot go on: a `Degraded` condition, and a Warning Event when that
/// is news.
#[allow(clippy::too_many_arguments)]
pub(super) async fn report_blocked<K: KafkaConnector>(
    ctx: &Context<K>,
    kc: &KafkaCluster,
    status: &mut KafkaClusterStatus,
    action: &str,
    reason: &str,
    message: &str,
    news: bool,
    now: &str,
) {
    if news {
        publish(ctx, kc, EventType::Warning, reason, action, message).await;
    }
    set_condition(
        &mut status.conditions,
        condition(
            "Degraded",
            true,
            reason,
            message.to_string(),
            kc.metadata.generation,
            now,
        ),
    );
}

/// Events are best effort: a failure to record one must not fail the reconciliation.
pub async fn publish<K, R>(
    ctx: &Context<K>,
    obj: &R,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) where
    R: Resource<DynamicType = ()>,
{
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.into()),
        action: action.into(),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(%err, reason, "could not publish event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ConditionStatus;
    use crate::resources::tests::{sample_cluster, sample_spec};

    fn sts_status(ready: i32) -> StatefulSetStatus {
        StatefulSetStatus {
            ready_replicas: Some(ready),
            replicas: ready,
            ..StatefulSetStatus::default()
        }
    }

    fn cond<'a>(s: &'a KafkaClusterStatus, t: &str) -> &'a crate::crd::Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    fn operation(kind: OperationKind, brokers: &[i32], phase: OperationPhase) -> ClusterOperation {
        ClusterOperation {
            kind,
            brokers: brokers.to_vec(),
            phase,
            throttled_topics: Vec::new(),
            started: "t0".into(),
            pod_uid: None,
            since: None,
            message: String::new(),
        }
    }

    #[test]
    fn an_operation_is_announced_when_it_starts_and_when_it_resumes() {
        use OperationKind::{Drain, Rebalance};
        use OperationPhase::{Blocked, ElectingLeaders, Reassigning, WaitingForBrokers};
        let running = operation(Drain, &[3, 4], Reassigning);
        assert!(starts_or_resumes(None, &running));
        // A drain that was blocked (e.g. on a transient metadata view) begins now.
        assert!(starts_or_resumes(
            Some(&operation(Drain, &[3, 4], Blocked)),
            &running
        ));
        assert!(starts_or_resumes(
            Some(&operation(Rebalance, &[3, 4], Reassigning)),
            &running
        ));
        assert!(starts_or_resumes(
            Some(&operation(Drain, &[4], Reassigning)),
            &running
        ));
        // Steps of the same operation are not news.
        for phase in [WaitingForBrokers, Reassigning, ElectingLeaders] {
            assert!(!starts_or_resumes(
                Some(&operation(Drain, &[3, 4], phase)),
                &running
            ));
        }
    }

    #[test]
    fn ready_only_when_every_replica_is_ready() {
        let mut kc = sample_cluster(sample_spec());
        kc.metadata.generation = Some(4);
        let names = ClusterNames::new("events", "prod");
        let waiting = observed_status(
            KafkaClusterStatus::default(),
            &names,
            &kc,
            Some(&sts_status(3)),
            Some(&sts_status(2)),
            3,
            "t1",
        );
        assert_eq!(cond(&waiting, "Ready").status, ConditionStatus::False);
        assert_eq!(
            cond(&waiting, "Ready").message,
            "2/3 brokers and 3/3 coordinators ready"
        );
        assert_eq!(cond(&waiting, "Reconciling").status, ConditionStatus::True);
        assert_eq!(waiting.observed_generation, Some(4));
        assert_eq!(waiting.brokers.as_ref().unwrap().ready, 2);
        assert_eq!(
            waiting.bootstrap_servers.as_deref(),
            Some("events-bootstrap.prod.svc:9092")
        );

        let ready = observed_status(
            waiting,
            &names,
            &kc,
            Some(&sts_status(3)),
            Some(&sts_status(3)),
            3,
            "t2",
        );
        assert_eq!(cond(&ready, "Ready").status, ConditionStatus::True);
        assert_eq!(cond(&ready, "Ready").last_transition_time, "t2");
        assert_eq!(cond(&ready, "Reconciling").status, ConditionStatus::False);
        assert_eq!(cond(&ready, "Degraded").status, ConditionStatus::False);
    }

    #[test]
    fn missing_statefulset_status_counts_as_nothing_ready() {
        let kc = sample_cluster(sample_spec());
        let s = observed_status(
            KafkaClusterStatus::default(),
            &ClusterNames::new("events", "prod"),
            &kc,
            None,
            None,
            3,
            "t",
        );
        assert_eq!(s.coordinator.as_ref().unwrap().ready, 0);
        assert_eq!(cond(&s, "Ready").reason, "WaitingForPods");
    }

    #[test]
    fn invalid_spec_is_degraded_and_keeps_observed_counts() {
        let before = KafkaClusterStatus {
            brokers: Some(BrokerStatus {
                desired: 3,
                ready: 3,
                selector: None,
            }),
            ..KafkaClusterStatus::default()
        };
        let s = invalid_status(
            before,
            "spec.coordinator.replicas is 2; it must be odd",
            Some(7),
            "t",
        );
        assert_eq!(cond(&s, "Degraded").status, ConditionStatus::True);
        assert_eq!(cond(&s, "Degraded").reason, "InvalidSpec");
        assert_eq!(cond(&s, "Ready").status, ConditionStatus::False);
        assert_eq!(s.brokers.unwrap().ready, 3);
        assert_eq!(s.observed_generation, Some(7));
    }
}
