//! Sends leaders' ISR changes to the controller (Kafka's `AlterPartitionManager`).
//!
//! Partitions submit proposals; one task batches everything pending into a single
//! AlterPartition request, one request in flight at a time, and hands each partition the
//! controller's answer. A request that fails as a whole (no controller, a lost connection,
//! NOT_CONTROLLER) is retried after a short backoff with whatever is pending by then.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use kafka_protocol::messages::{AlterPartitionRequest, BrokerId};
use tokio::sync::Notify;
use tracing::{debug, warn};
use uuid::Uuid;

use super::isr::{AlterPartitionProposal, AlterPartitionResult};
use super::partition::Partition;
use crate::controller::client::{ControllerClient, ControllerClientError};
use crate::metadata::{MetadataCache, TopicPartition};
use crate::now_ms;

struct Pending {
    partition: Arc<Partition>,
    proposal: AlterPartitionProposal,
}

pub struct AlterPartitionManager {
    broker_id: i32,
    broker_epoch: Arc<AtomicI64>,
    pending: Mutex<BTreeMap<TopicPartition, Pending>>,
    wake: Notify,
}

impl AlterPartitionManager {
    pub fn new(broker_id: i32, broker_epoch: Arc<AtomicI64>) -> Arc<AlterPartitionManager> {
        Arc::new(AlterPartitionManager {
            broker_id,
            broker_epoch,
            pending: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
        })
    }

    /// Queues a partition's proposal (replacing an older one of the same partition).
    pub fn submit(&self, partition: Arc<Partition>, proposal: AlterPartitionProposal) {
        let tp = (partition.topic.clone(), partition.partition);
        self.pending.lock().expect("alter partition lock").insert(
            tp,
            Pending {
                partition,
                proposal,
            },
        );
        self.wake.notify_one();
    }

    /// Sends pending proposals until `shutdown` fires.
    pub async fn run(
        self: Arc<Self>,
        client: Arc<ControllerClient>,
        cache: Arc<MetadataCache>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => return,
            }
            let batch: Vec<(TopicPartition, Pending)> =
                std::mem::take(&mut *self.pending.lock().expect("alter partition lock"))
                    .into_iter()
                    .collect();
            if batch.is_empty() {
                continue;
            }
            let request = self.request(&batch);
            match client.alter_partition(request).await {
                Ok(response) => {
                    let mut results: BTreeMap<(Uuid, i32), AlterPartitionResult> = BTreeMap::new();
                    for topic in &response.topics {
                        for p in &topic.partitions {
                            let result = match ResponseError::try_from_code(p.error_code) {
                                Some(e) => AlterPartitionResult::Failed(e),
                                None => AlterPartitionResult::Committed {
                                    leader_epoch: p.leader_epoch,
                                    partition_epoch: p.partition_epoch,
                                    isr: p.isr.iter().map(|b| b.0).collect(),
                                    leader_recovery_state: p.leader_recovery_state,
                                },
                            };
                            results.insert((topic.topic_id, p.partition_index), result);
                        }
                    }
                    let snapshot = cache.snapshot();
                    let is_alive = |b: i32| snapshot.is_alive(b) || b == self.broker_id;
                    for (tp, pending) in batch {
                        let key = (pending.partition.topic_id(), tp.1);
                        let result = results.remove(&key).unwrap_or(AlterPartitionResult::Failed(
                            ResponseError::UnknownServerError,
                        ));
                        let outcome = pending.partition.on_alter_partition_result(
                            &pending.proposal,
                            &result,
                            now_ms(),
                            &is_alive,
                        );
                        debug!(topic = %tp.0, partition = tp.1, ?result, "AlterPartition answered");
                        if outcome.retry {
                            self.requeue(tp, pending);
                        }
                    }
                }
                Err(e) => {
                    // The controller moving is routine: the next UpdateMetadata names the
                    // new one. Anything else is worth a warning.
                    match &e {
                        ControllerClientError::NoController
                        | ControllerClientError::Network(_)
                        | ControllerClientError::Error(ResponseError::NotController) => {
                            debug!(error = %e, "AlterPartition: controller unavailable; retrying")
                        }
                        _ => warn!(error = %e, "AlterPartition failed; retrying"),
                    }
                    for (tp, pending) in batch {
                        self.requeue(tp, pending);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Puts a proposal back unless a newer one for the same partition arrived meanwhile.
    fn requeue(&self, tp: TopicPartition, pending: Pending) {
        self.pending
            .lock()
            .expect("alter partition lock")
            .entry(tp)
            .or_insert(pending);
        self.wake.notify_one();
    }

    fn request(&self, batch: &[(TopicPartition, Pending)]) -> AlterPartitionRequest {
        let mut topics: Vec<TopicData> = Vec::new();
        for (tp, pending) in batch {
            let topic_id = pending.partition.topic_id();
            let p = &pending.proposal;
            let data = PartitionData::default()
                .with_partition_index(tp.1)
                .with_leader_epoch(p.leader_epoch)
                .with_new_isr_with_epochs(
                    p.new_isr
                        .iter()
                        .map(|b| {
                            BrokerState::default()
                                .with_broker_id(BrokerId(*b))
                                .with_broker_epoch(-1)
                        })
                        .collect(),
                )
                .with_leader_recovery_state(p.leader_recovery_state)
                .with_partition_epoch(p.partition_epoch);
            match topics.iter_mut().find(|t| t.topic_id == topic_id) {
                Some(t) => t.partitions.push(data),
                None => topics.push(
                    TopicData::default()
                        .with_topic_id(topic_id)
                        .with_partitions(vec![data]),
                ),
            }
        }
        AlterPartitionRequest::default()
            .with_broker_id(BrokerId(self.broker_id))
            .with_broker_epoch(self.broker_epoch.load(Ordering::Acquire))
            .with_topics(topics)
    }
}
