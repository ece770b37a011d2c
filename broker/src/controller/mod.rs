//! The controller, in Kafka's ZooKeeper-mode design (`KafkaController`).
//!
//! Every broker runs one; the one that creates `/controller` is active. It keeps a
//! [`context::ControllerContext`] of the cluster, reacts to the metadata store's
//! notifications (brokers coming and going, topics created, partitions added, deletions
//! requested) and to brokers' requests (AlterPartition, ControlledShutdown,
//! AllocateProducerIds, ElectLeaders, reassignments), decides leaders with the pure
//! functions of [`election`], writes each decision to the store fenced by its controller
//! epoch, and tells brokers through [`channel`]: LeaderAndIsr to the replicas,
//! UpdateMetadata to everyone, StopReplica to replicas that go away.
//!
//! All of it happens on one task, one event at a time, as Kafka's controller event
//! thread does. When a write finds the fence broken (another controller was elected) the
//! controller resigns; when the store reports an error it reloads everything on the next
//! tick, which is safe because every decision is re-derived from the stored state.

pub mod assignment;
pub mod batch;
pub mod channel;
pub mod client;
pub mod context;
pub mod election;
mod event_loop;
pub mod liveness;
pub mod reassign;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, AlterPartitionRequest,
    AlterPartitionResponse, ElectLeadersRequest, ElectLeadersResponse,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use tokio::sync::{mpsc, oneshot};

use crate::metadata::{MetadataStore, TopicPartition};
use crate::network::Connector;
use channel::LocalBroker;

/// What the controller needs from the broker's configuration.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub broker_id: i32,
    /// `inter.broker.listener.name`: where the controller reaches brokers.
    pub inter_broker_listener: String,
    /// `socket.connection.setup.timeout.ms`, `controller.socket.timeout.ms`, and the
    /// inter-broker listener's security.
    pub connector: Connector,
    /// `unclean.leader.election.enable` (a topic may override it).
    pub unclean_leader_election_enable: bool,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.per.broker.percentage`.
    pub leader_imbalance_per_broker_percentage: i32,
    /// `leader.imbalance.check.interval.seconds`.
    pub leader_imbalance_check_interval: Duration,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
}

/// Requests a broker forwards to the controller.
pub(crate) enum ControllerCall {
    AlterPartition(
        AlterPartitionRequest,
        oneshot::Sender<AlterPartitionResponse>,
    ),
    ControlledShutdown {
        broker_id: i32,
        broker_epoch: i64,
        reply: oneshot::Sender<Result<Vec<TopicPartition>, ResponseError>>,
    },
    AllocateProducerIds {
        broker_id: i32,
        broker_epoch: i64,
        reply: oneshot::Sender<Result<(i64, i32), ResponseError>>,
    },
    ElectLeaders(
        ElectLeadersRequest,
        i16,
        oneshot::Sender<ElectLeadersResponse>,
    ),
    AlterReassignments(
        AlterPartitionReassignmentsRequest,
        oneshot::Sender<AlterPartitionReassignmentsResponse>,
    ),
    ListReassignments(
        ListPartitionReassignmentsRequest,
        oneshot::Sender<ListPartitionReassignmentsResponse>,
    ),
    Shutdown(oneshot::Sender<()>),
}

/// The handle the broker holds.
pub struct Controller {
    calls: mpsc::UnboundedSender<ControllerCall>,
    active: Arc<AtomicBool>,
    broker_id: i32,
    /// The task's pieces until [`Controller::start`].
    pending:
        std::sync::Mutex<Option<(event_loop::Pending, mpsc::UnboundedReceiver<ControllerCall>)>>,
}

/// How many producer ids one AllocateProducerIds hands out (Kafka's block size).
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;

impl Controller {
    /// A controller that does nothing until started; requests made before are queued.
    pub fn new(config: ControllerConfig, store: Arc<dyn MetadataStore>) -> Controller {
        let (calls, calls_rx) = mpsc::unbounded_channel();
        let active = Arc::new(AtomicBool::new(false));
        let broker_id = config.broker_id;
        let pending = event_loop::Pending {
            config,
            store,
            active: active.clone(),
        };
        Controller {
            calls,
            active,
            broker_id,
            pending: std::sync::Mutex::new(Some((pending, calls_rx))),
        }
    }

    /// Starts the controller task, with `local` as the broker it runs on. It tries to get
    /// elected at once and whenever the controller znode goes away.
    pub fn start(&self, local: std::sync::Weak<dyn LocalBroker>) {
        let Some((pending, calls_rx)) = self.pending.lock().expect("controller lock").take() else {
            return;
        };
        let event_loop = event_loop::EventLoop::new(pending, local);
        tokio::spawn(event_loop.run(calls_rx));
    }

    pub fn broker_id(&self) -> i32 {
        self.broker_id
    }

    /// Whether this broker is the active controller.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    pub async fn alter_partition(&self, request: AlterPartitionRequest) -> AlterPartitionResponse {
        let (tx, rx) = oneshot::channel();
        let _ = self.calls.send(ControllerCall::AlterPartition(request, tx));
        rx.await.unwrap_or_else(|_| {
            AlterPartitionResponse::default().with_error_code(ResponseError::NotController.code())
        })
    }

    pub async fn controlled_shutdown(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<Vec<TopicPartition>, ResponseError> {
        let (reply, rx) = oneshot::channel();
        let _ = self.calls.send(ControllerCall::ControlledShutdown {
            broker_id,
            broker_epoch,
            reply,
        });
        rx.await.unwrap_or(Err(ResponseError::NotController))
    }

    pub async fn allocate_producer_ids(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<(i64, i32), ResponseError> {
        let (reply, rx) = oneshot::channel();
        let _ = self.calls.send(ControllerCall::AllocateProducerIds {
            broker_id,
            broker_epoch,
            reply,
        });
        rx.await.unwrap_or(Err(ResponseError::NotController))
    }

    pub async fn elect_leaders(
        &self,
        request: ElectLeadersRequest,
        version: i16,
    ) -> ElectLeadersResponse {
        let (tx, rx) = oneshot::channel();
        let _ = self
            .calls
            .send(ControllerCall::ElectLeaders(request, version, tx));
        rx.await.unwrap_or_else(|_| {
            ElectLeadersResponse::default().with_error_code(ResponseError::NotController.code())
        })
    }

    pub async fn alter_reassignments(
        &self,
        request: AlterPartitionReassignmentsRequest,
    ) -> AlterPartitionReassignmentsResponse {
        let (tx, rx) = oneshot::channel();
        let _ = self
            .calls
            .send(ControllerCall::AlterReassignments(request, tx));
        rx.await.unwrap_or_else(|_| {
            AlterPartitionReassignmentsResponse::default()
                .with_error_code(ResponseError::NotController.code())
        })
    }

    pub async fn list_reassignments(
        &self,
        request: ListPartitionReassignmentsRequest,
    ) -> ListPartitionReassignmentsResponse {
        let (tx, rx) = oneshot::channel();
        let _ = self
            .calls
            .send(ControllerCall::ListReassignments(request, tx));
        rx.await.unwrap_or_else(|_| {
            ListPartitionReassignmentsResponse::default()
                .with_error_code(ResponseError::NotController.code())
        })
    }

    /// Stops the controller task (resigning if active) and waits for it.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.calls.send(ControllerCall::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}
