//! The controller's single task: events in, decisions written to the store, requests
//! out through the channel. See the module documentation of [`super`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tracing::{info, warn};
use uuid::Uuid;

mod deletion;
mod partitions;
mod reassignment;
mod requests;

use super::batch::RequestBatch;
use super::channel::{ControllerChannel, LocalBroker, ResponseEvent};
use super::context::ControllerContext;
use super::liveness::{self, Reachability};
use super::{ControllerCall, ControllerConfig, election};
use crate::metadata::{
    BrokerRegistration, ControllerFence, LeaderAndIsr, MetadataError, MetadataEvent, MetadataStore,
    TopicAssignment, TopicPartition,
};
use crate::network::host_port;

/// `ElectLeaders` election types.
pub(super) const PREFERRED: i8 = 0;
pub(super) const UNCLEAN: i8 = 1;

pub(super) struct EventLoop {
    config: ControllerConfig,
    store: Arc<dyn MetadataStore>,
    channel: ControllerChannel,
    responses: Option<mpsc::UnboundedReceiver<ResponseEvent>>,
    active: Arc<AtomicBool>,
    ctx: Option<ControllerContext>,
    batch: RequestBatch,
    /// A store error left the context possibly stale: reload it on the next tick.
    reload_needed: bool,
    /// The brokers the failure detector probes (while active: every other registered one).
    probed: watch::Sender<BTreeMap<i32, liveness::Target>>,
}

pub(super) type Outcome = Result<(), MetadataError>;

/// What the event loop is built from, before the broker it runs on exists.
pub(super) struct Pending {
    pub(super) config: ControllerConfig,
    pub(super) store: Arc<dyn MetadataStore>,
    pub(super) active: Arc<AtomicBool>,
}

impl EventLoop {
    pub(super) fn new(pending: Pending, local: std::sync::Weak<dyn LocalBroker>) -> EventLoop {
        let Pending {
            config,
            store,
            active,
        } = pending;
        let (tx, rx) = mpsc::unbounded_channel();
        let channel = ControllerChannel::new(
            config.broker_id,
            local,
            config.inter_broker_listener.clone(),
            config.connector.clone(),
            tx,
        );
        EventLoop {
            config,
            store,
            channel,
            responses: Some(rx),
            active,
            ctx: None,
            batch: RequestBatch::default(),
            reload_needed: false,
            probed: watch::channel(BTreeMap::new()).0,
        }
    }

    pub(super) async fn run(mut self, mut calls: mpsc::UnboundedReceiver<ControllerCall>) {
        let mut events = self.store.subscribe();
        let mut responses = self.responses.take().expect("responses receiver");
        let (reports_tx, mut reports) = mpsc::unbounded_channel();
        let prober = tokio::spawn(liveness::run(self.probed.subscribe(), reports_tx));
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut rebalance = tokio::time::interval(self.config.leader_imbalance_check_interval);
        rebalance.tick().await;
        let elected = self.try_elect().await;
        self.after(elected);
        loop {
            let outcome = tokio::select! {
                call = calls.recv() => match call {
                    None => break,
                    Some(ControllerCall::Shutdown(done)) => {
                        // Deliver what was decided (a controlled shutdown's elections)
                        // before resigning.
                        self.channel.drain(Duration::from_secs(5)).await;
                        self.resign("shutting down");
                        let _ = done.send(());
                        break;
                    }
                    Some(call) => self.on_call(call).await,
                },
                event = events.recv() => match event {
                    Ok(event) => self.on_metadata_event(event).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.on_metadata_event(MetadataEvent::Reconnected).await
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                Some(response) = responses.recv() => self.on_broker_response(response).await,
                Some(report) = reports.recv() => self.on_reachability(report).await,
                _ = tick.tick() => self.on_tick().await,
                _ = rebalance.tick() => self.maybe_rebalance_leaders().await,
            };
            self.after(outcome);
        }
        prober.abort();
        self.channel.remove_all();
    }

    /// Sends what the event decided, and handles a failed event: a broken fence resigns,
    /// any other store error schedules a reload.
    fn after(&mut self, outcome: Outcome) {
        match outcome {
            Ok(()) => {}
            Err(MetadataError::ControllerMoved { .. }) => {
                self.resign("another broker was elected controller");
            }
            Err(e) => {
                warn!(error = %e, "controller event failed; reloading the cluster state");
                self.reload_needed = true;
            }
        }
        self.send_batch();
        self.update_probed();
    }

    /// Points the failure detector at every other registered broker, refusing or not.
    fn update_probed(&self) {
        let mut probed = BTreeMap::new();
        if let Some(ctx) = &self.ctx {
            let all = ctx.brokers.values().map(|b| (b, false));
            for (b, refusing) in all.chain(ctx.refusing.values().map(|b| (b, true))) {
                if b.id == self.config.broker_id {
                    continue;
                }
                if let Some(e) = b.endpoint(&self.config.inter_broker_listener) {
                    probed.insert(
                        b.id,
                        liveness::Target {
                            epoch: b.epoch,
                            address: host_port(&e.host, e.port),
                            refusing,
                        },
                    );
                }
            }
        }
        self.probed.send_if_modified(|current| {
            if *current == probed {
                false
            } else {
                *current = probed;
                true
            }
        });
    }

    /// The failure detector's findings: a refusing broker is failed until it answers.
    async fn on_reachability(&mut self, report: Reachability) -> Outcome {
        let Some(ctx) = self.ctx.as_mut() else {
            return Ok(());
        };
        match report {
            Reachability::Refusing { broker, epoch } => {
                if ctx.brokers.get(&broker).is_none_or(|b| b.epoch != epoch) {
                    return Ok(());
                }
                info!(
                    broker,
                    "broker refuses connections: failed until it answers again or its registration goes"
                );
                let registration = ctx.brokers.remove(&broker).expect("checked");
                ctx.shutting_down.remove(&broker);
                ctx.refusing.insert(broker, registration);
                self.channel.remove_broker(broker);
                self.on_brokers_failed(&[broker]).await
            }
            Reachability::Answering { broker, epoch } => {
                if ctx.refusing.get(&broker).is_none_or(|b| b.epoch != epoch) {
                    return Ok(());
                }
                info!(broker, "broker answers again");
                let registration = ctx.refusing.remove(&broker).expect("checked");
                self.channel.add_broker(&registration);
                ctx.brokers.insert(broker, registration);
                self.on_brokers_started(&[broker]).await
            }
        }
    }

    /// Sends the requests decided so far. Within a batch LeaderAndIsr goes before
    /// UpdateMetadata (brokers learn of a leadership before clients are sent to it); an
    /// UpdateMetadata that must arrive first — a new broker has to know the brokers it
    /// will follow — is sent on its own before the rest is decided, as Kafka does.
    fn send_batch(&mut self) {
        if let Some(ctx) = &self.ctx {
            self.batch.send(
                ctx,
                &self.channel,
                self.config.broker_id,
                &self.config.inter_broker_listener,
            );
        } else {
            self.batch.clear();
        }
    }

    fn resign(&mut self, why: &str) {
        if self.ctx.take().is_some() {
            info!(
                broker = self.config.broker_id,
                reason = why,
                "resigning as controller"
            );
        }
        self.active.store(false, Ordering::Release);
        self.channel.remove_all();
        self.batch.clear();
    }

    async fn try_elect(&mut self) -> Outcome {
        if self.ctx.is_some() {
            return Ok(());
        }
        match self.store.elect_controller(self.config.broker_id).await? {
            Some(fence) => self.on_failover(fence).await,
            None => Ok(()),
        }
    }

    fn ctx(&mut self) -> &mut ControllerContext {
        self.ctx.as_mut().expect("active controller")
    }

    fn fence(&self) -> ControllerFence {
        self.ctx.as_ref().expect("active controller").fence
    }

    // ---------------------------------------------------------------------------------
    // Failover: becoming the controller

    /// Kafka's `onControllerFailover`: load everything, tell every broker the whole
    /// state, then bring every partition online.
    async fn on_failover(&mut self, fence: ControllerFence) -> Outcome {
        info!(
            broker = self.config.broker_id,
            epoch = fence.epoch,
            "elected controller"
        );
        let ctx = self.load(fence).await?;
        for b in ctx.brokers.values() {
            self.channel.add_broker(b);
        }
        self.ctx = Some(ctx);
        self.active.store(true, Ordering::Release);
        self.reload_needed = false;
        self.start_cluster().await
    }

    async fn load(&self, fence: ControllerFence) -> Result<ControllerContext, MetadataError> {
        let mut ctx = ControllerContext::new(fence);
        ctx.brokers = self
            .store
            .brokers()
            .await?
            .into_iter()
            .map(|b| (b.id, b))
            .collect();
        let topics = self.store.topics().await?;
        ctx.topics = self.store.topic_assignments(topics).await?;
        ctx.states = self.store.partition_states(ctx.all_partitions()).await?;
        Ok(ctx)
    }

    /// What a newly elected (or reloaded) controller does once its context is loaded.
    async fn start_cluster(&mut self) -> Outcome {
        self.assign_missing_topic_ids().await?;
        let ctx = self.ctx.as_ref().expect("active");
        let brokers: Vec<i32> = ctx.brokers.keys().copied().collect();
        self.batch.add_update_metadata_all(&brokers);
        self.send_batch();
        let ctx = self.ctx.as_ref().expect("active");
        let partitions: Vec<TopicPartition> = ctx.states.keys().cloned().collect();
        for tp in partitions {
            let ctx = self.ctx.as_ref().expect("active");
            if ctx.is_deleting(&tp.0) {
                continue;
            }
            let replicas = ctx.replicas(&tp);
            self.batch.add_leader_and_isr(ctx, &replicas, &tp, false);
        }
        self.bring_partitions_online().await?;
        self.on_topic_deletions_changed().await?;
        self.resume_reassignments().await
    }

    async fn reload(&mut self) -> Outcome {
        let fence = self.fence();
        let ctx = self.load(fence).await?;
        self.channel.remove_all();
        for b in ctx.brokers.values() {
            self.channel.add_broker(b);
        }
        self.ctx = Some(ctx);
        self.reload_needed = false;
        self.start_cluster().await
    }

    /// Topics written by a Kafka older than 2.8 have no id; the controller gives them one.
    async fn assign_missing_topic_ids(&mut self) -> Outcome {
        let fence = self.fence();
        let missing: Vec<(String, TopicAssignment)> = self
            .ctx()
            .topics
            .iter()
            .filter(|(_, a)| a.topic_id.is_nil())
            .map(|(t, a)| (t.clone(), a.clone()))
            .collect();
        for (topic, mut assignment) in missing {
            assignment.topic_id = Uuid::new_v4();
            let version = self
                .store
                .set_topic_assignment(topic.clone(), assignment.clone(), Some(fence))
                .await?;
            assignment.version = version;
            info!(%topic, topic_id = %assignment.topic_id, "assigned a topic id");
            self.ctx().topics.insert(topic, assignment);
        }
        Ok(())
    }

    /// New partitions get their first leader, offline ones a new one, and replicas on
    /// brokers that are gone leave the ISRs.
    async fn bring_partitions_online(&mut self) -> Outcome {
        let new = self.ctx().partitions_without_state();
        self.initialize_partitions(new).await?;
        let offline = self.ctx().partitions_without_live_leader();
        self.elect_offline(offline).await?;
        self.remove_dead_replicas_from_isrs().await
    }

    // ---------------------------------------------------------------------------------
    // Metadata notifications

    async fn on_metadata_event(&mut self, event: MetadataEvent) -> Outcome {
        match event {
            MetadataEvent::ControllerChanged => {
                if self.ctx.is_some() {
                    if self.store.controller_id().await? != Some(self.config.broker_id) {
                        self.resign("the controller znode changed");
                    }
                    Ok(())
                } else {
                    self.try_elect().await
                }
            }
            MetadataEvent::SessionExpired => {
                // The old session's /controller is gone with it.
                self.resign("the metadata session expired");
                Ok(())
            }
            MetadataEvent::SessionReestablished { .. } => self.try_elect().await,
            MetadataEvent::Reconnected => {
                if self.ctx.is_some() {
                    self.reload().await
                } else {
                    self.try_elect().await
                }
            }
            _ if self.ctx.is_none() => Ok(()),
            MetadataEvent::BrokersChanged => self.on_brokers_changed().await,
            MetadataEvent::TopicsChanged => self.on_topics_changed().await,
            MetadataEvent::TopicChanged(topic) => self.on_topic_changed(topic).await,
            MetadataEvent::TopicDeletionsChanged => self.on_topic_deletions_changed().await,
            MetadataEvent::IsrChangeNotification => self.on_isr_change_notification().await,
            MetadataEvent::ConfigChanged { .. } | MetadataEvent::AclsChanged => Ok(()),
        }
    }

    async fn on_tick(&mut self) -> Outcome {
        if self.ctx.is_none() {
            return self.try_elect().await;
        }
        if self.reload_needed {
            return self.reload().await;
        }
        // Partitions that could not be brought online before (no live replica then) are
        // retried; this is cheap when there are none.
        if !self.ctx().partitions_without_state().is_empty()
            || !self.ctx().partitions_without_live_leader().is_empty()
        {
            self.bring_partitions_online().await?;
        }
        self.maybe_complete_reassignments().await
    }

    /// Kafka's `processBrokerChange`.
    async fn on_brokers_changed(&mut self) -> Outcome {
        let current: BTreeMap<i32, BrokerRegistration> = self
            .store
            .brokers()
            .await?
            .into_iter()
            .map(|b| (b.id, b))
            .collect();
        let ctx = self.ctx();
        // A refusing broker was failed already: it only needs forgetting once its
        // registration goes, and is new again when it registers anew.
        ctx.refusing
            .retain(|id, b| current.get(id).is_some_and(|now| now.epoch == b.epoch));
        let ctx = self.ctx.as_ref().expect("active");
        let dead: Vec<i32> = ctx
            .brokers
            .keys()
            .copied()
            .filter(|id| !current.contains_key(id))
            .collect();
        let bounced: Vec<i32> = current
            .iter()
            .filter(|(id, b)| ctx.brokers.get(id).is_some_and(|old| old.epoch != b.epoch))
            .map(|(id, _)| *id)
            .collect();
        let new: Vec<i32> = current
            .keys()
            .copied()
            .filter(|id| !ctx.brokers.contains_key(id) && !ctx.refusing.contains_key(id))
            .collect();
        let failed: Vec<i32> = dead.iter().chain(&bounced).copied().collect();
        if !failed.is_empty() {
            info!(brokers = ?failed, "brokers failed");
            for id in &failed {
                self.channel.remove_broker(*id);
                let ctx = self.ctx();
                ctx.brokers.remove(id);
                ctx.shutting_down.remove(id);
            }
            self.on_brokers_failed(&failed).await?;
        }
        let started: Vec<i32> = new.iter().chain(&bounced).copied().collect();
        if !started.is_empty() {
            info!(brokers = ?started, "brokers started");
            for id in &started {
                let registration = current[id].clone();
                self.channel.add_broker(&registration);
                self.ctx().brokers.insert(*id, registration);
            }
            self.on_brokers_started(&started).await?;
        }
        Ok(())
    }

    /// Kafka's `onBrokerStartup`.
    async fn on_brokers_started(&mut self, started: &[i32]) -> Outcome {
        let ctx = self.ctx.as_ref().expect("active");
        let others: Vec<i32> = ctx
            .brokers
            .keys()
            .copied()
            .filter(|b| !started.contains(b))
            .collect();
        // Existing brokers learn of the new ones; new ones get everything, before any
        // LeaderAndIsr: a broker told to follow a leader it does not know cannot.
        self.batch.add_update_metadata(&others, std::iter::empty());
        self.batch.add_update_metadata_all(started);
        self.send_batch();
        for broker in started {
            let ctx = self.ctx.as_ref().expect("active");
            for tp in ctx.partitions_on(*broker) {
                if ctx.states.contains_key(&tp) && !ctx.is_deleting(&tp.0) {
                    self.batch.add_leader_and_isr(ctx, &[*broker], &tp, false);
                }
            }
        }
        self.bring_partitions_online().await?;
        // Deletions waiting for these brokers can go on.
        self.resend_pending_deletions(started);
        self.resume_reassignments().await
    }

    /// Kafka's `onBrokerFailure` → `onReplicasBecomeOffline`.
    async fn on_brokers_failed(&mut self, failed: &[i32]) -> Outcome {
        let ctx = self.ctx.as_ref().expect("active");
        let leaderless: Vec<TopicPartition> = ctx
            .states
            .iter()
            .filter(|(tp, s)| !ctx.is_deleting(&tp.0) && failed.contains(&s.leader_and_isr.leader))
            .map(|(tp, _)| tp.clone())
            .collect();
        self.elect_offline(leaderless).await?;
        self.remove_dead_replicas_from_isrs().await?;
        let ctx = self.ctx.as_ref().expect("active");
        let brokers: Vec<i32> = ctx.brokers.keys().copied().collect();
        self.batch.add_update_metadata(&brokers, std::iter::empty());
        Ok(())
    }

    /// Replicas on brokers that are gone leave the ISRs they are still in, and a gone
    /// leader leaves its partition leaderless until an election (Kafka's OfflineReplica
    /// transition, on a broker failure and when a new controller starts).
    async fn remove_dead_replicas_from_isrs(&mut self) -> Outcome {
        let ctx = self.ctx.as_ref().expect("active");
        let removals: Vec<(TopicPartition, LeaderAndIsr)> = ctx
            .states
            .iter()
            .filter(|(tp, _)| !ctx.is_deleting(&tp.0))
            .filter_map(|(tp, s)| {
                let current = &s.leader_and_isr;
                let dead: Vec<i32> = current
                    .isr
                    .iter()
                    .chain(std::iter::once(&current.leader).filter(|l| **l >= 0))
                    .copied()
                    .filter(|r| !ctx.is_live_or_shutting_down(*r))
                    .collect();
                if dead.is_empty() {
                    return None;
                }
                let next = election::remove_replicas_from_isr(current, &dead);
                (next.isr != current.isr || next.leader != current.leader)
                    .then(|| (tp.clone(), next))
            })
            .collect();
        let written = self.write_states(removals).await?;
        for tp in written {
            let ctx = self.ctx.as_ref().expect("active");
            let recipients: Vec<i32> = ctx
                .replicas(&tp)
                .into_iter()
                .filter(|r| ctx.is_live_or_shutting_down(*r))
                .collect();
            self.batch.add_leader_and_isr(ctx, &recipients, &tp, false);
        }
        Ok(())
    }

    /// New topics (or removed ones) under `/brokers/topics`.
    async fn on_topics_changed(&mut self) -> Outcome {
        let topics: BTreeSet<String> = self.store.topics().await?.into_iter().collect();
        let ctx = self.ctx();
        let removed: Vec<String> = ctx
            .topics
            .keys()
            .filter(|t| !topics.contains(*t))
            .cloned()
            .collect();
        for t in removed {
            self.ctx().remove_topic(&t);
        }
        let new: Vec<String> = topics
            .into_iter()
            .filter(|t| !self.ctx.as_ref().expect("active").topics.contains_key(t))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let assignments = self.store.topic_assignments(new.clone()).await?;
        let states = {
            let partitions: Vec<TopicPartition> = assignments
                .iter()
                .flat_map(|(t, a)| a.partitions.keys().map(move |p| (t.clone(), *p)))
                .collect();
            self.store.partition_states(partitions).await?
        };
        info!(topics = ?new, "new topics");
        let ctx = self.ctx();
        ctx.topics.extend(assignments);
        ctx.states.extend(states);
        self.assign_missing_topic_ids().await?;
        self.bring_partitions_online().await
    }

    /// `/brokers/topics/<topic>` changed: partitions added (CreatePartitions) or a
    /// reassignment written by another tool.
    async fn on_topic_changed(&mut self, topic: String) -> Outcome {
        let Some(assignment) = self
            .store
            .topic_assignments(vec![topic.clone()])
            .await?
            .remove(&topic)
        else {
            return Ok(());
        };
        let ctx = self.ctx();
        let Some(known) = ctx.topics.get(&topic) else {
            return self.on_topics_changed().await;
        };
        if known.version == assignment.version {
            return Ok(());
        }
        let added: Vec<i32> = assignment
            .partitions
            .keys()
            .copied()
            .filter(|p| !known.partitions.contains_key(p))
            .collect();
        ctx.topics.insert(topic.clone(), assignment);
        if !added.is_empty() {
            info!(%topic, partitions = ?added, "partitions added");
            let tps = added.into_iter().map(|p| (topic.clone(), p)).collect();
            self.initialize_partitions(tps).await?;
        }
        self.resume_reassignments().await
    }

    /// Brokers without AlterPartition report ISR changes through
    /// `/isr_change_notification`; the controller re-reads those partitions and tells
    /// everyone (Kafka's `processIsrChangeNotification`).
    async fn on_isr_change_notification(&mut self) -> Outcome {
        let notifications = self.store.isr_change_notifications().await?;
        if notifications.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = notifications.iter().map(|(n, _)| n.clone()).collect();
        let partitions: Vec<TopicPartition> = notifications
            .into_iter()
            .flat_map(|(_, p)| p)
            .filter(|tp| self.ctx.as_ref().expect("active").assignment(tp).is_some())
            .collect();
        let states = self.store.partition_states(partitions.clone()).await?;
        let ctx = self.ctx();
        ctx.states.extend(states);
        let brokers: Vec<i32> = ctx.brokers.keys().copied().collect();
        self.batch
            .add_update_metadata(&brokers, partitions.into_iter());
        self.store.delete_isr_change_notifications(names).await
    }
}
