//! How the broker runs a coordinator — the group coordinator and the transaction
//! coordinator alike: a pure state machine that takes requests and the time and returns
//! outputs, its state kept in an internal topic (`__consumer_offsets`,
//! `__transaction_state`) whose partition leaders are the coordinators.
//!
//! - **One mutex, never held across IO.** Calls run under it; a request whose answer comes
//!   later parks a oneshot channel under a fresh request id, and `Respond` outputs
//!   complete them (an answer to a connection that went away is dropped, as Kafka drops
//!   responses to closed channels).
//! - **Appends in order, off the lock.** An `Append` output goes to the appender task,
//!   which writes the records as the partition's leader with acks=all
//!   ([`internal_log::append`]), waits until they are replicated (the append timeout)
//!   and reports the outcome to the state machine, which may release held-back answers.
//! - **Leadership.** When LeaderAndIsr makes this broker a partition's leader, the
//!   partition is read back and loaded (the leader epoch passed along); when it becomes a
//!   follower, or the replica is stopped, it is unloaded and its waiting requests
//!   answered NOT_COORDINATOR (Kafka's `onElection`/`onResignation`).
//! - **Time.** A tick every `tick_interval` drives sessions, timeouts and expiry.
//! - Outputs of other kinds (the transaction coordinator's markers) go to the owner
//!   through [`CoordinatorRuntime::take_other_outputs`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use strata_storage::VerificationGuard;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::internal_log::{self, LogEntry};
use crate::replica::{LeadershipChanges, Partition};
use crate::{Broker, now_ms};

/// A coordinator state machine as the runtime drives it.
pub trait StateMachine: Send + 'static {
    type Output: Send + 'static;
    type Response: Send + 'static;
    /// The internal topic the state lives in.
    const TOPIC: &'static str;

    /// What an output asks for.
    fn route(output: Self::Output) -> Step<Self::Response, Self::Output>;
    fn on_append_completed(
        &mut self,
        append_id: u64,
        error: Option<ResponseError>,
        now_ms: i64,
    ) -> Vec<Self::Output>;
    fn tick(&mut self, now_ms: i64) -> Vec<Self::Output>;
    fn is_partition_loaded(&self, partition: i32) -> bool;
    /// Called when the partition is about to be read (requests for it may be told to
    /// retry until it is loaded).
    fn begin_loading(&mut self, _partition: i32) -> Vec<Self::Output> {
        Vec::new()
    }
    fn load_partition(
        &mut self,
        partition: i32,
        leader_epoch: i32,
        entries: Vec<LogEntry>,
        now_ms: i64,
    ) -> Result<Vec<Self::Output>, String>;
    fn unload_partition(&mut self, partition: i32) -> Vec<Self::Output>;
}

/// What one output asks the runtime to do.
pub enum Step<R, O> {
    Respond {
        request_id: u64,
        response: R,
    },
    Append(AppendJob),
    /// Left to the owner (see [`CoordinatorRuntime::take_other_outputs`]).
    Other(O),
}

/// Records to append, as one batch, to a partition of the state machine's topic — a
/// transactional batch of `transactional` (producer id, epoch) when given.
pub struct AppendJob {
    pub append_id: u64,
    pub partition: i32,
    pub records: Vec<(Bytes, Option<Bytes>)>,
    pub transactional: Option<(i64, i16)>,
    /// The verification of a transactional append that opens the producer's
    /// transaction on the partition (set by [`CoordinatorRuntime::call_verified`]).
    pub guard: Option<VerificationGuard>,
}

pub struct CoordinatorRuntime<S: StateMachine> {
    inner: Mutex<Inner<S>>,
    next_request_id: AtomicU64,
    appends: mpsc::UnboundedSender<AppendJob>,
    appends_rx: Mutex<Option<mpsc::UnboundedReceiver<AppendJob>>>,
    others: mpsc::UnboundedSender<S::Output>,
    others_rx: Mutex<Option<mpsc::UnboundedReceiver<S::Output>>>,
    /// How long an append may wait for its replicas (`offsets.commit.timeout.ms`, ...).
    append_timeout: Duration,
    tick_interval: Duration,
}

struct Inner<S: StateMachine> {
    state: S,
    waiting: HashMap<u64, oneshot::Sender<S::Response>>,
}

impl<S: StateMachine> CoordinatorRuntime<S> {
    pub fn new(state: S, append_timeout: Duration, tick_interval: Duration) -> Self {
        let (appends, appends_rx) = mpsc::unbounded_channel();
        let (others, others_rx) = mpsc::unbounded_channel();
        CoordinatorRuntime {
            inner: Mutex::new(Inner {
                state,
                waiting: HashMap::new(),
            }),
            next_request_id: AtomicU64::new(1),
            appends,
            appends_rx: Mutex::new(Some(appends_rx)),
            others,
            others_rx: Mutex::new(Some(others_rx)),
            append_timeout,
            tick_interval,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` against the state machine, for calls that answer at once.
    pub fn query<T>(&self, f: impl FnOnce(&S) -> T) -> T {
        f(&self.lock().state)
    }

    /// Runs a mutating call that answers at once and emits no outputs.
    pub fn call_sync<T>(&self, f: impl FnOnce(&mut S) -> T) -> T {
        f(&mut self.lock().state)
    }

    /// Runs a mutating call and carries out the outputs it returns.
    pub fn update(&self, f: impl FnOnce(&mut S, i64) -> Vec<S::Output>) {
        let mut inner = self.lock();
        let outputs = f(&mut inner.state, now_ms());
        self.execute(&mut inner, outputs);
    }

    /// Runs a call whose answer comes as a `Respond` for a fresh request id — maybe now,
    /// maybe after an append or a rebalance — and waits for it. `None` when the state
    /// machine dropped the request.
    pub async fn call(
        &self,
        f: impl FnOnce(&mut S, u64, i64) -> Vec<S::Output>,
    ) -> Option<S::Response> {
        self.call_verified(None, f).await
    }

    /// [`Self::call`] for a request whose transactional appends carry `guard`, the
    /// verification of the producer's transaction on the partition (KIP-890).
    pub async fn call_verified(
        &self,
        guard: Option<VerificationGuard>,
        f: impl FnOnce(&mut S, u64, i64) -> Vec<S::Output>,
    ) -> Option<S::Response> {
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.lock();
            inner.waiting.insert(request_id, tx);
            let outputs = f(&mut inner.state, request_id, now_ms());
            self.execute_verified(&mut inner, outputs, guard);
        }
        rx.await.ok()
    }

    /// Carries out outputs in order: answers now, appends queued for the appender,
    /// others for the owner.
    fn execute(&self, inner: &mut Inner<S>, outputs: Vec<S::Output>) {
        self.execute_verified(inner, outputs, None);
    }

    fn execute_verified(
        &self,
        inner: &mut Inner<S>,
        outputs: Vec<S::Output>,
        guard: Option<VerificationGuard>,
    ) {
        for output in outputs {
            match S::route(output) {
                Step::Respond {
                    request_id,
                    response,
                } => {
                    if let Some(tx) = inner.waiting.remove(&request_id) {
                        let _ = tx.send(response);
                    }
                }
                Step::Append(mut job) => {
                    if job.transactional.is_some() {
                        job.guard = guard;
                    }
                    let _ = self.appends.send(job);
                }
                Step::Other(output) => {
                    let _ = self.others.send(output);
                }
            }
        }
    }

    /// The outputs the runtime does not carry out itself, in order; once.
    pub fn take_other_outputs(&self) -> Option<mpsc::UnboundedReceiver<S::Output>> {
        self.others_rx.lock().expect("other outputs").take()
    }

    fn complete_append(&self, append_id: u64, error: Option<ResponseError>) {
        self.update(|state, now| state.on_append_completed(append_id, error, now));
    }

    /// Writes queued appends in order and completes each once it is replicated.
    pub async fn run_appender(
        self: Arc<Self>,
        broker: Arc<Broker>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let Some(mut rx) = self.appends_rx.lock().expect("appender").take() else {
            return;
        };
        loop {
            let job = tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
                _ = shutdown.changed() => return,
            };
            match internal_log::append(
                &broker,
                S::TOPIC,
                job.partition,
                job.records.into_iter(),
                job.transactional,
                job.guard,
            ) {
                Err(error) => self.complete_append(job.append_id, Some(error)),
                Ok((partition, required_offset)) => {
                    let runtime = self.clone();
                    let broker = broker.clone();
                    let timeout = self.append_timeout;
                    tokio::spawn(async move {
                        let error = broker
                            .replica_manager
                            .wait_for_replication(vec![(partition, required_offset)], timeout)
                            .await
                            .pop()
                            .flatten();
                        runtime.complete_append(job.append_id, error);
                    });
                }
            }
        }
    }

    /// Drives time.
    pub async fn run_ticks(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(self.tick_interval);
        loop {
            tokio::select! {
                _ = interval.tick() => self.update(|state, now| state.tick(now)),
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Follows LeaderAndIsr (and StopReplica) for the state machine's topic: loads the
    /// partitions this broker now leads, unloads those it no longer does.
    pub fn on_leadership_changes(self: &Arc<Self>, broker: &Broker, changes: &LeadershipChanges) {
        for ((topic, partition), _) in &changes.became_follower {
            if topic != S::TOPIC {
                continue;
            }
            let mut inner = self.lock();
            let loaded = inner.state.is_partition_loaded(*partition);
            // Also ends a load in progress.
            let outputs = inner.state.unload_partition(*partition);
            self.execute(&mut inner, outputs);
            if loaded {
                info!(
                    topic = S::TOPIC,
                    partition, "unloaded: no longer the leader"
                );
            }
        }
        for ((topic, partition), epoch) in &changes.became_leader {
            if topic != S::TOPIC {
                continue;
            }
            let Some(p) = broker.replica_manager.get_partition(topic, *partition) else {
                continue;
            };
            let (partition, epoch) = (*partition, *epoch);
            self.update(|state, _| state.begin_loading(partition));
            let runtime = self.clone();
            tokio::task::spawn_blocking(move || runtime.load_partition(&p, partition, epoch));
        }
    }

    /// Reads a partition this broker leads and loads it, unless leadership moved on
    /// meanwhile.
    fn load_partition(&self, p: &Partition, partition: i32, epoch: i32) {
        let entries = match internal_log::read_all(p) {
            Ok(entries) => entries,
            Err(e) => {
                warn!(topic = S::TOPIC, partition, error = %e, "cannot read the partition; what it holds is unavailable");
                return;
            }
        };
        let count = entries.len();
        let mut inner = self.lock();
        let (leader, current_epoch) = p.leader_and_epoch();
        if !p.is_leader() || current_epoch != epoch || leader.is_none() {
            return;
        }
        if inner.state.is_partition_loaded(partition) {
            let outputs = inner.state.unload_partition(partition);
            self.execute(&mut inner, outputs);
        }
        match inner
            .state
            .load_partition(partition, epoch, entries, now_ms())
        {
            Ok(outputs) => {
                self.execute(&mut inner, outputs);
                if count > 0 {
                    info!(topic = S::TOPIC, partition, records = count, "loaded");
                } else {
                    debug!(topic = S::TOPIC, partition, "loaded an empty partition");
                }
            }
            Err(e) => warn!(topic = S::TOPIC, partition, error = %e, "bad record"),
        }
    }
}
