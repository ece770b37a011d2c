//! Collects the requests one controller event produces and sends them together, per
//! broker, in Kafka's order: LeaderAndIsr, then UpdateMetadata, then StopReplica (Kafka's
//! `ControllerBrokerRequestBatch`). Every partition in a LeaderAndIsr is also announced to
//! every live broker in UpdateMetadata, so their metadata caches follow leadership.

use std::collections::{BTreeMap, BTreeSet};

use super::channel::{ControllerChannel, ControllerRequest};
use super::context::ControllerContext;
use crate::metadata::{EPOCH_DURING_DELETE, LEADER_DURING_DELETE, TopicPartition};
use crate::protocol::{
    LeaderAndIsrPartitionState, LeaderAndIsrRequest, LeaderAndIsrTopicState, LiveLeader,
    StopReplicaPartitionState, StopReplicaRequest, StopReplicaTopicState, UpdateMetadataBroker,
    UpdateMetadataEndpoint, UpdateMetadataPartitionState, UpdateMetadataRequest,
    UpdateMetadataTopicState, request_type,
};

#[derive(Default)]
pub struct RequestBatch {
    /// broker → partition → is_new.
    leader_and_isr: BTreeMap<i32, BTreeMap<TopicPartition, bool>>,
    /// brokers → partitions to describe (`None`: every partition).
    update_metadata: BTreeMap<i32, Option<BTreeSet<TopicPartition>>>,
    /// broker → partition → delete.
    stop_replica: BTreeMap<i32, BTreeMap<TopicPartition, bool>>,
}

impl RequestBatch {
    pub fn is_empty(&self) -> bool {
        self.leader_and_isr.is_empty()
            && self.update_metadata.is_empty()
            && self.stop_replica.is_empty()
    }

    pub fn clear(&mut self) {
        *self = RequestBatch::default();
    }

    /// LeaderAndIsr for `tp` to `brokers` (those that are live), plus UpdateMetadata for
    /// `tp` to every live broker.
    pub fn add_leader_and_isr(
        &mut self,
        ctx: &ControllerContext,
        brokers: &[i32],
        tp: &TopicPartition,
        is_new: bool,
    ) {
        for b in brokers.iter().filter(|b| ctx.is_live_or_shutting_down(**b)) {
            let entry = self.leader_and_isr.entry(*b).or_default();
            let new = entry.get(tp).copied().unwrap_or(false) || is_new;
            entry.insert(tp.clone(), new);
        }
        let all: Vec<i32> = ctx.brokers.keys().copied().collect();
        self.add_update_metadata(&all, std::iter::once(tp.clone()));
    }

    /// UpdateMetadata to `brokers` for `partitions` (an empty iterator still sends the
    /// broker list, which is how brokers learn of each other).
    pub fn add_update_metadata(
        &mut self,
        brokers: &[i32],
        partitions: impl Iterator<Item = TopicPartition>,
    ) {
        let partitions: Vec<TopicPartition> = partitions.collect();
        for b in brokers {
            match self
                .update_metadata
                .entry(*b)
                .or_insert_with(|| Some(BTreeSet::new()))
            {
                None => {}
                Some(set) => set.extend(partitions.iter().cloned()),
            }
        }
    }

    /// UpdateMetadata with every partition to `brokers`.
    pub fn add_update_metadata_all(&mut self, brokers: &[i32]) {
        for b in brokers {
            self.update_metadata.insert(*b, None);
        }
    }

    pub fn add_stop_replica(&mut self, broker: i32, tp: &TopicPartition, delete: bool) {
        let entry = self.stop_replica.entry(broker).or_default();
        let delete = entry.get(tp).copied().unwrap_or(false) || delete;
        entry.insert(tp.clone(), delete);
    }

    fn partition_state(
        ctx: &ControllerContext,
        tp: &TopicPartition,
    ) -> Option<UpdateMetadataPartitionState> {
        let state = ctx.states.get(tp)?;
        let l = &state.leader_and_isr;
        let replicas = ctx.replicas(tp);
        let offline = replicas
            .iter()
            .copied()
            .filter(|r| !ctx.is_live_or_shutting_down(*r))
            .collect();
        Some(UpdateMetadataPartitionState {
            partition_index: tp.1,
            controller_epoch: state.controller_epoch,
            leader: if ctx.is_deleting(&tp.0) {
                LEADER_DURING_DELETE
            } else {
                l.leader
            },
            leader_epoch: l.leader_epoch,
            isr: l.isr.clone(),
            zk_version: l.partition_epoch,
            replicas,
            offline_replicas: offline,
        })
    }

    fn live_brokers(ctx: &ControllerContext, listener: &str) -> Vec<UpdateMetadataBroker> {
        let _ = listener;
        ctx.brokers
            .values()
            .map(|b| UpdateMetadataBroker {
                id: b.id,
                endpoints: b
                    .endpoints
                    .iter()
                    .map(|e| UpdateMetadataEndpoint {
                        port: i32::from(e.port),
                        host: e.host.clone(),
                        listener: e.listener.clone(),
                        security_protocol: e.security_protocol.id(),
                    })
                    .collect(),
                rack: b.rack.clone(),
            })
            .collect()
    }

    /// Sends everything collected and empties the batch.
    pub fn send(
        &mut self,
        ctx: &ControllerContext,
        channel: &ControllerChannel,
        controller_id: i32,
        listener: &str,
    ) {
        let epoch = ctx.fence.epoch;
        let broker_epoch = |b: i32| ctx.brokers.get(&b).map_or(-1, |r| r.epoch);
        for (broker, partitions) in std::mem::take(&mut self.leader_and_isr) {
            let mut topics: BTreeMap<String, LeaderAndIsrTopicState> = BTreeMap::new();
            let mut leaders = BTreeSet::new();
            for (tp, is_new) in partitions {
                let (Some(state), Some(assignment)) = (ctx.states.get(&tp), ctx.assignment(&tp))
                else {
                    continue;
                };
                let l = &state.leader_and_isr;
                leaders.insert(l.leader);
                let topic = topics
                    .entry(tp.0.clone())
                    .or_insert_with(|| LeaderAndIsrTopicState {
                        topic_name: tp.0.clone(),
                        topic_id: ctx
                            .topics
                            .get(&tp.0)
                            .map(|t| t.topic_id)
                            .unwrap_or_default(),
                        partition_states: Vec::new(),
                    });
                topic.partition_states.push(LeaderAndIsrPartitionState {
                    partition_index: tp.1,
                    controller_epoch: state.controller_epoch,
                    leader: l.leader,
                    leader_epoch: l.leader_epoch,
                    isr: l.isr.clone(),
                    partition_epoch: l.partition_epoch,
                    replicas: assignment.replicas.clone(),
                    adding_replicas: assignment.adding_replicas.clone(),
                    removing_replicas: assignment.removing_replicas.clone(),
                    is_new,
                    leader_recovery_state: l.leader_recovery_state,
                });
            }
            if topics.is_empty() {
                continue;
            }
            let live_leaders = leaders
                .into_iter()
                .filter_map(|id| {
                    let b = ctx.brokers.get(&id)?;
                    let e = b.endpoint(listener).or(b.endpoints.first())?;
                    Some(LiveLeader {
                        broker_id: id,
                        host_name: e.host.clone(),
                        port: i32::from(e.port),
                    })
                })
                .collect();
            channel.send(
                broker,
                ControllerRequest::LeaderAndIsr(LeaderAndIsrRequest {
                    controller_id,
                    is_kraft_controller: false,
                    controller_epoch: epoch,
                    broker_epoch: broker_epoch(broker),
                    request_type: request_type::INCREMENTAL,
                    topic_states: topics.into_values().collect(),
                    live_leaders,
                }),
            );
        }
        let live = Self::live_brokers(ctx, listener);
        for (broker, partitions) in std::mem::take(&mut self.update_metadata) {
            let partitions: Vec<TopicPartition> = match partitions {
                None => ctx.states.keys().cloned().collect(),
                Some(set) => set.into_iter().collect(),
            };
            let mut topics: BTreeMap<String, UpdateMetadataTopicState> = BTreeMap::new();
            for tp in partitions {
                let Some(state) = Self::partition_state(ctx, &tp) else {
                    continue;
                };
                topics
                    .entry(tp.0.clone())
                    .or_insert_with(|| UpdateMetadataTopicState {
                        topic_name: tp.0.clone(),
                        topic_id: ctx
                            .topics
                            .get(&tp.0)
                            .map(|t| t.topic_id)
                            .unwrap_or_default(),
                        partition_states: Vec::new(),
                    })
                    .partition_states
                    .push(state);
            }
            channel.send(
                broker,
                ControllerRequest::UpdateMetadata(UpdateMetadataRequest {
                    controller_id,
                    is_kraft_controller: false,
                    request_type: request_type::INCREMENTAL,
                    controller_epoch: epoch,
                    broker_epoch: broker_epoch(broker),
                    topic_states: topics.into_values().collect(),
                    live_brokers: live.clone(),
                }),
            );
        }
        for (broker, partitions) in std::mem::take(&mut self.stop_replica) {
            let mut topics: BTreeMap<String, StopReplicaTopicState> = BTreeMap::new();
            for (tp, delete) in partitions {
                let leader_epoch = if ctx.is_deleting(&tp.0) {
                    EPOCH_DURING_DELETE
                } else {
                    ctx.states
                        .get(&tp)
                        .map_or(-1, |s| s.leader_and_isr.leader_epoch)
                };
                topics
                    .entry(tp.0.clone())
                    .or_insert_with(|| StopReplicaTopicState {
                        topic_name: tp.0.clone(),
                        partition_states: Vec::new(),
                    })
                    .partition_states
                    .push(StopReplicaPartitionState {
                        partition_index: tp.1,
                        leader_epoch,
                        delete_partition: delete,
                    });
            }
            channel.send(
                broker,
                ControllerRequest::StopReplica(StopReplicaRequest {
                    controller_id,
                    is_kraft_controller: false,
                    controller_epoch: epoch,
                    broker_epoch: broker_epoch(broker),
                    topic_states: topics.into_values().collect(),
                }),
            );
        }
    }
}
