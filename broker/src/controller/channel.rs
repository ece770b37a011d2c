//! The controller's channel to every live broker (Kafka's `ControllerChannelManager`):
//! one queue and one sender task per broker, so requests to a broker arrive in the order
//! the controller made its decisions, and a slow or dead broker holds up only its own
//! queue. A request is retried on a new connection until it is answered or the broker is
//! removed (it died, and the controller will start over when it registers again).
//!
//! The broker the controller runs on gets its requests in-process through
//! [`LocalBroker`], through the same handlers the network path reaches, so a cluster of
//! one needs no listener to elect its leaders.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::metadata::BrokerRegistration;
use crate::network::{BrokerConnection, Connector, host_port};
use crate::protocol::{
    LEADER_AND_ISR_KEY, LeaderAndIsrRequest, LeaderAndIsrResponse, STOP_REPLICA_KEY,
    StopReplicaRequest, StopReplicaResponse, UPDATE_METADATA_KEY, UPDATE_METADATA_VERSIONS,
    UpdateMetadataRequest, decode_error_only_response,
};

/// The versions the controller sends, as a Kafka 3.9 controller does (inter-broker
/// protocol 3.4 and later).
pub const LEADER_AND_ISR_VERSION: i16 = 7;
pub const UPDATE_METADATA_VERSION: i16 = 8;
pub const STOP_REPLICA_VERSION: i16 = 4;

#[derive(Debug, Clone)]
pub enum ControllerRequest {
    LeaderAndIsr(LeaderAndIsrRequest),
    UpdateMetadata(UpdateMetadataRequest),
    StopReplica(StopReplicaRequest),
}

#[derive(Debug, Clone)]
pub enum ControllerResponse {
    LeaderAndIsr(LeaderAndIsrResponse),
    UpdateMetadata(i16),
    StopReplica(StopReplicaResponse),
}

/// The broker the controller runs on, reached without the network.
pub trait LocalBroker: Send + Sync {
    fn handle(&self, request: ControllerRequest) -> BoxFuture<'_, ControllerResponse>;
}

/// A response for the controller's event loop: which broker answered what.
pub type ResponseEvent = (i32, ControllerRequest, ControllerResponse);

struct Queue {
    tx: mpsc::UnboundedSender<ControllerRequest>,
    task: tokio::task::JoinHandle<()>,
    status: Arc<QueueStatus>,
}

/// What [`ControllerChannel::drain`] looks at, kept by the sender task.
#[derive(Default)]
struct QueueStatus {
    /// Requests queued and not yet answered.
    pending: AtomicUsize,
    /// Set while the broker refuses connections (it is going away).
    unreachable: AtomicBool,
}

pub struct ControllerChannel {
    local_broker_id: i32,
    local: Weak<dyn LocalBroker>,
    listener: String,
    connector: Connector,
    queues: Mutex<HashMap<i32, Queue>>,
    responses: mpsc::UnboundedSender<ResponseEvent>,
}

impl ControllerChannel {
    pub fn new(
        local_broker_id: i32,
        local: Weak<dyn LocalBroker>,
        listener: String,
        connector: Connector,
        responses: mpsc::UnboundedSender<ResponseEvent>,
    ) -> ControllerChannel {
        ControllerChannel {
            local_broker_id,
            local,
            listener,
            connector,
            queues: Mutex::new(HashMap::new()),
            responses,
        }
    }

    /// Starts (or restarts, for a new incarnation) the queue of a broker.
    pub fn add_broker(&self, broker: &BrokerRegistration) {
        self.remove_broker(broker.id);
        let (tx, rx) = mpsc::unbounded_channel();
        let status = Arc::new(QueueStatus::default());
        let task = if broker.id == self.local_broker_id {
            tokio::spawn(run_local(
                broker.id,
                self.local.clone(),
                rx,
                self.responses.clone(),
                status.clone(),
            ))
        } else {
            let address = broker
                .endpoint(&self.listener)
                .map(|e| host_port(&e.host, e.port));
            tokio::spawn(run_remote(
                broker.id,
                address,
                self.local_broker_id,
                self.connector.clone(),
                rx,
                self.responses.clone(),
                status.clone(),
            ))
        };
        self.queues
            .lock()
            .expect("channel lock")
            .insert(broker.id, Queue { tx, task, status });
    }

    pub fn remove_broker(&self, broker_id: i32) {
        if let Some(q) = self.queues.lock().expect("channel lock").remove(&broker_id) {
            q.task.abort();
        }
    }

    /// Waits (at most `timeout`) until every queued request was answered: a controller
    /// that resigns on shutdown first delivers what it decided. Brokers that refuse
    /// connections are not waited for: they are going away too.
    pub async fn drain(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pending: usize = self
                .queues
                .lock()
                .expect("channel lock")
                .values()
                .filter(|q| !q.status.unreachable.load(Ordering::Acquire))
                .map(|q| q.status.pending.load(Ordering::Acquire))
                .sum();
            if pending == 0 || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn remove_all(&self) {
        for (_, q) in self.queues.lock().expect("channel lock").drain() {
            q.task.abort();
        }
    }

    pub fn send(&self, broker_id: i32, request: ControllerRequest) {
        match self.queues.lock().expect("channel lock").get(&broker_id) {
            Some(q) => {
                q.status.pending.fetch_add(1, Ordering::AcqRel);
                let _ = q.tx.send(request);
            }
            None => debug!(broker = broker_id, "no channel to broker; request dropped"),
        }
    }
}

async fn run_local(
    broker_id: i32,
    local: Weak<dyn LocalBroker>,
    mut rx: mpsc::UnboundedReceiver<ControllerRequest>,
    responses: mpsc::UnboundedSender<ResponseEvent>,
    status: Arc<QueueStatus>,
) {
    while let Some(request) = rx.recv().await {
        let Some(broker) = local.upgrade() else {
            return;
        };
        let response = broker.handle(request.clone()).await;
        let _ = responses.send((broker_id, request, response));
        status.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

fn encode(request: &ControllerRequest) -> (i16, i16, bytes::BytesMut) {
    let encoded = match request {
        ControllerRequest::LeaderAndIsr(r) => r
            .encode(LEADER_AND_ISR_VERSION)
            .map(|b| (LEADER_AND_ISR_KEY, LEADER_AND_ISR_VERSION, b)),
        ControllerRequest::UpdateMetadata(r) => r
            .encode(UPDATE_METADATA_VERSION)
            .map(|b| (UPDATE_METADATA_KEY, UPDATE_METADATA_VERSION, b)),
        ControllerRequest::StopReplica(r) => r
            .encode(STOP_REPLICA_VERSION)
            .map(|b| (STOP_REPLICA_KEY, STOP_REPLICA_VERSION, b)),
    };
    encoded.expect("the controller's own requests encode at the versions it sends")
}

fn decode(
    request: &ControllerRequest,
    body: bytes::Bytes,
) -> Result<ControllerResponse, crate::protocol::WireError> {
    Ok(match request {
        ControllerRequest::LeaderAndIsr(r) => {
            let names: HashMap<Uuid, String> = r
                .topic_states
                .iter()
                .map(|t| (t.topic_id, t.topic_name.clone()))
                .collect();
            ControllerResponse::LeaderAndIsr(LeaderAndIsrResponse::decode(
                body,
                LEADER_AND_ISR_VERSION,
                |id| names.get(&id).cloned(),
            )?)
        }
        ControllerRequest::UpdateMetadata(_) => {
            ControllerResponse::UpdateMetadata(decode_error_only_response(
                "UpdateMetadata",
                body,
                UPDATE_METADATA_VERSION,
                UPDATE_METADATA_VERSIONS,
            )?)
        }
        ControllerRequest::StopReplica(_) => ControllerResponse::StopReplica(
            StopReplicaResponse::decode(body, STOP_REPLICA_VERSION)?,
        ),
    })
}

async fn run_remote(
    broker_id: i32,
    address: Option<String>,
    controller_id: i32,
    connector: Connector,
    mut rx: mpsc::UnboundedReceiver<ControllerRequest>,
    responses: mpsc::UnboundedSender<ResponseEvent>,
    status: Arc<QueueStatus>,
) {
    let Some(address) = address else {
        warn!(
            broker = broker_id,
            "broker has no endpoint on the inter-broker listener; the controller cannot reach it"
        );
        return;
    };
    let client_id = format!("controller-{controller_id}-to-broker-{broker_id}");
    let mut connection: Option<BrokerConnection> = None;
    let mut backoff = Duration::from_millis(100);
    while let Some(request) = rx.recv().await {
        let (key, version, body) = encode(&request);
        loop {
            if connection.is_none() {
                match connector.connect(&address, &client_id).await {
                    Ok(c) => {
                        status.unreachable.store(false, Ordering::Release);
                        connection = Some(c);
                    }
                    Err(e) => {
                        status.unreachable.store(true, Ordering::Release);
                        debug!(broker = broker_id, error = %e, "controller cannot connect to broker; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                }
            }
            let conn = connection.as_mut().expect("connected");
            match conn.send_raw(key, version, true, &body).await {
                Ok(response) => {
                    backoff = Duration::from_millis(100);
                    match decode(&request, response) {
                        Ok(r) => {
                            let _ = responses.send((broker_id, request, r));
                        }
                        Err(e) => {
                            warn!(broker = broker_id, error = %e, "undecodable response to a controller request")
                        }
                    }
                    status.pending.fetch_sub(1, Ordering::AcqRel);
                    break;
                }
                Err(e) => {
                    debug!(broker = broker_id, error = %e, "controller request failed; reconnecting");
                    connection = None;
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }
}

/// Keeps the compiler honest about the local path: an `Arc<dyn LocalBroker>` coerces.
pub fn weak_local<T: LocalBroker + 'static>(broker: &Arc<T>) -> Weak<dyn LocalBroker> {
    let weak: Weak<T> = Arc::downgrade(broker);
    weak
}
