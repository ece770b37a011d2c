//! Requests brokers forward to the controller, and the automatic leader rebalance.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_partition_response::{
    PartitionData as AlterPartitionData, TopicData as AlterTopicData,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsResponse, AlterPartitionRequest, AlterPartitionResponse, BrokerId,
    ElectLeadersRequest, ElectLeadersResponse, ListPartitionReassignmentsResponse, TopicName,
};
use tracing::info;
use uuid::Uuid;

use crate::api::str_bytes;
use crate::controller::{ControllerCall, PRODUCER_ID_BLOCK_SIZE, election};
use crate::metadata::{LeaderAndIsr, MetadataError, TopicPartition};

use super::{EventLoop, Outcome, PREFERRED, UNCLEAN};

impl EventLoop {
    pub(super) async fn on_call(&mut self, call: ControllerCall) -> Outcome {
        match call {
            ControllerCall::AlterPartition(request, reply) => {
                let (response, outcome) = if self.ctx.is_none() {
                    (
                        AlterPartitionResponse::default()
                            .with_error_code(ResponseError::NotController.code()),
                        Ok(()),
                    )
                } else {
                    self.alter_partition(request).await
                };
                let _ = reply.send(response);
                outcome
            }
            ControllerCall::ControlledShutdown {
                broker_id,
                broker_epoch,
                reply,
            } => {
                if self.ctx.is_none() {
                    let _ = reply.send(Err(ResponseError::NotController));
                    return Ok(());
                }
                let result = self.controlled_shutdown(broker_id, broker_epoch).await;
                match result {
                    Ok(remaining) => {
                        let _ = reply.send(Ok(remaining));
                        Ok(())
                    }
                    Err(e) => {
                        let _ = reply.send(Err(ResponseError::UnknownServerError));
                        Err(e)
                    }
                }
            }
            ControllerCall::AllocateProducerIds {
                broker_id,
                broker_epoch,
                reply,
            } => {
                let Some(ctx) = &self.ctx else {
                    let _ = reply.send(Err(ResponseError::NotController));
                    return Ok(());
                };
                match ctx.brokers.get(&broker_id) {
                    Some(b) if broker_epoch == -1 || b.epoch == broker_epoch => {}
                    _ => {
                        let _ = reply.send(Err(ResponseError::StaleBrokerEpoch));
                        return Ok(());
                    }
                }
                match self
                    .store
                    .allocate_producer_ids(broker_id, PRODUCER_ID_BLOCK_SIZE)
                    .await
                {
                    Ok(first) => {
                        let _ = reply.send(Ok((first, PRODUCER_ID_BLOCK_SIZE)));
                        Ok(())
                    }
                    Err(e) => {
                        let _ = reply.send(Err(ResponseError::UnknownServerError));
                        Err(e)
                    }
                }
            }
            ControllerCall::ElectLeaders(request, version, reply) => {
                if self.ctx.is_none() {
                    let _ = reply.send(
                        ElectLeadersResponse::default()
                            .with_error_code(ResponseError::NotController.code()),
                    );
                    return Ok(());
                }
                let (response, outcome) = self.elect_leaders(request, version).await;
                let _ = reply.send(response);
                outcome
            }
            ControllerCall::AlterReassignments(request, reply) => {
                if self.ctx.is_none() {
                    let _ = reply.send(
                        AlterPartitionReassignmentsResponse::default()
                            .with_error_code(ResponseError::NotController.code()),
                    );
                    return Ok(());
                }
                let (response, outcome) = self.alter_reassignments(request).await;
                let _ = reply.send(response);
                outcome
            }
            ControllerCall::ListReassignments(request, reply) => {
                let response = match &self.ctx {
                    None => ListPartitionReassignmentsResponse::default()
                        .with_error_code(ResponseError::NotController.code()),
                    Some(ctx) => super::reassignment::list_reassignments(ctx, &request),
                };
                let _ = reply.send(response);
                Ok(())
            }
            ControllerCall::Shutdown(_) => Ok(()),
        }
    }

    /// Kafka's `processAlterPartition` (ZooKeeper mode, AlterPartition v2+).
    pub(super) async fn alter_partition(
        &mut self,
        request: AlterPartitionRequest,
    ) -> (AlterPartitionResponse, Outcome) {
        let broker_id = request.broker_id.0;
        let ctx = self.ctx.as_ref().expect("active");
        let epoch_ok = ctx
            .brokers
            .get(&broker_id)
            .is_some_and(|b| request.broker_epoch == -1 || b.epoch <= request.broker_epoch);
        if !epoch_ok {
            return (
                AlterPartitionResponse::default()
                    .with_error_code(ResponseError::StaleBrokerEpoch.code()),
                Ok(()),
            );
        }
        let mut results: Vec<(Uuid, AlterPartitionData)> = Vec::new();
        let mut updates = Vec::new();
        for topic in &request.topics {
            let ctx = self.ctx.as_ref().expect("active");
            let name = ctx.topic_name(topic.topic_id).map(str::to_string);
            for p in &topic.partitions {
                let fail = |e: ResponseError| {
                    AlterPartitionData::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(e.code())
                };
                let Some(name) = &name else {
                    results.push((topic.topic_id, fail(ResponseError::UnknownTopicId)));
                    continue;
                };
                let tp = (name.clone(), p.partition_index);
                let Some(state) = ctx.states.get(&tp) else {
                    results.push((topic.topic_id, fail(ResponseError::UnknownTopicOrPartition)));
                    continue;
                };
                let current = &state.leader_and_isr;
                let new_isr: Vec<i32> = if p.new_isr_with_epochs.is_empty() {
                    p.new_isr.iter().map(|b| b.0).collect()
                } else {
                    p.new_isr_with_epochs
                        .iter()
                        .map(|b| b.broker_id.0)
                        .collect()
                };
                let proposed = LeaderAndIsr {
                    leader: broker_id,
                    leader_epoch: p.leader_epoch,
                    isr: new_isr.clone(),
                    leader_recovery_state: p.leader_recovery_state,
                    partition_epoch: p.partition_epoch,
                };
                if ctx.is_deleting(&tp.0) {
                    results.push((topic.topic_id, fail(ResponseError::OperationNotAttempted)));
                } else if current.leader != broker_id {
                    results.push((topic.topic_id, fail(ResponseError::NotLeaderOrFollower)));
                } else if p.leader_epoch != current.leader_epoch {
                    results.push((topic.topic_id, fail(ResponseError::FencedLeaderEpoch)));
                } else if proposed.isr == current.isr
                    && proposed.leader_recovery_state == current.leader_recovery_state
                {
                    // The same state: already applied (a retry), answer with it.
                    results.push((topic.topic_id, committed(p.partition_index, current)));
                } else if p.partition_epoch != current.partition_epoch {
                    results.push((topic.topic_id, fail(ResponseError::InvalidUpdateVersion)));
                } else if proposed.leader_recovery_state == 1 && current.leader_recovery_state == 0
                {
                    results.push((topic.topic_id, fail(ResponseError::InvalidRequest)));
                } else {
                    let replicas = ctx.replicas(&tp);
                    let ineligible = new_isr
                        .iter()
                        .any(|r| !replicas.contains(r) || !ctx.is_live(*r));
                    if ineligible {
                        results.push((topic.topic_id, fail(ResponseError::IneligibleReplica)));
                    } else {
                        updates.push((topic.topic_id, p.partition_index, tp, proposed));
                    }
                }
            }
        }
        let to_write: Vec<(TopicPartition, LeaderAndIsr)> = updates
            .iter()
            .map(|(_, _, tp, l)| (tp.clone(), l.clone()))
            .collect();
        let written = match self.write_states(to_write).await {
            Ok(w) => w,
            Err(e) => {
                for (id, index, _, _) in updates {
                    results.push((
                        id,
                        AlterPartitionData::default()
                            .with_partition_index(index)
                            .with_error_code(ResponseError::NotController.code()),
                    ));
                }
                return (response_of(results), Err(e));
            }
        };
        for (id, index, tp, _) in updates {
            let ctx = self.ctx.as_ref().expect("active");
            if written.contains(&tp) {
                let state = &ctx.states[&tp].leader_and_isr;
                results.push((id, committed(index, state)));
                let brokers: Vec<i32> = ctx.brokers.keys().copied().collect();
                self.batch
                    .add_update_metadata(&brokers, std::iter::once(tp));
            } else {
                results.push((
                    id,
                    AlterPartitionData::default()
                        .with_partition_index(index)
                        .with_error_code(ResponseError::InvalidUpdateVersion.code()),
                ));
            }
        }
        let outcome = self.maybe_complete_reassignments().await;
        (response_of(results), outcome)
    }

    /// Kafka's `doControlledShutdown`: moves leaderships off the broker and takes it out
    /// of ISRs; returns the partitions it still leads.
    pub(super) async fn controlled_shutdown(
        &mut self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<Vec<TopicPartition>, MetadataError> {
        let ctx = self.ctx();
        match ctx.brokers.get(&broker_id) {
            Some(b) if broker_epoch == -1 || b.epoch == broker_epoch => {}
            _ => {
                info!(
                    broker = broker_id,
                    "controlled shutdown from an unknown or stale broker"
                );
                return Ok(Vec::new());
            }
        }
        ctx.shutting_down.insert(broker_id);
        info!(broker = broker_id, "controlled shutdown requested");
        let ctx = self.ctx.as_ref().expect("active");
        let mut leader_moves = Vec::new();
        let mut isr_removals = Vec::new();
        for tp in ctx.partitions_on(broker_id) {
            if ctx.is_deleting(&tp.0) || ctx.replicas(&tp).len() <= 1 {
                continue;
            }
            let Some(state) = ctx.states.get(&tp) else {
                continue;
            };
            let current = &state.leader_and_isr;
            if current.leader == broker_id {
                if let Some(next) = election::controlled_shutdown(
                    current,
                    &ctx.replicas(&tp),
                    |r| ctx.is_live_or_shutting_down(r),
                    |r| ctx.shutting_down.contains(&r),
                ) {
                    leader_moves.push((tp, next));
                }
            } else if current.isr.contains(&broker_id) {
                isr_removals.push((
                    tp.clone(),
                    election::remove_replicas_from_isr(current, &[broker_id]),
                ));
            }
        }
        self.apply_elections(leader_moves).await?;
        let written = self.write_states(isr_removals).await?;
        for tp in written {
            let ctx = self.ctx.as_ref().expect("active");
            let recipients: Vec<i32> = ctx
                .replicas(&tp)
                .into_iter()
                .filter(|r| *r != broker_id)
                .collect();
            self.batch.add_leader_and_isr(ctx, &recipients, &tp, false);
            self.batch.add_stop_replica(broker_id, &tp, false);
        }
        let ctx = self.ctx.as_ref().expect("active");
        let brokers: Vec<i32> = ctx.brokers.keys().copied().collect();
        self.batch.add_update_metadata(&brokers, std::iter::empty());
        Ok(ctx
            .states
            .iter()
            .filter(|(tp, s)| s.leader_and_isr.leader == broker_id && ctx.replicas(tp).len() > 1)
            .map(|(tp, _)| tp.clone())
            .collect())
    }

    /// ElectLeaders: preferred or unclean elections for the given partitions (all, when
    /// none are given).
    pub(super) async fn elect_leaders(
        &mut self,
        request: ElectLeadersRequest,
        version: i16,
    ) -> (ElectLeadersResponse, Outcome) {
        let ctx = self.ctx.as_ref().expect("active");
        let election_type = if version >= 1 {
            request.election_type
        } else {
            PREFERRED
        };
        let requested: Vec<TopicPartition> = match &request.topic_partitions {
            None => ctx.states.keys().cloned().collect(),
            Some(topics) => topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(move |p| (t.topic.0.to_string(), *p))
                })
                .collect(),
        };
        // None: elected.
        let mut results: BTreeMap<TopicPartition, Option<(ResponseError, Option<String>)>> =
            BTreeMap::new();
        let mut updates = Vec::new();
        for tp in requested {
            let Some(state) = ctx.states.get(&tp) else {
                results.insert(tp, Some((ResponseError::UnknownTopicOrPartition, None)));
                continue;
            };
            if ctx.is_deleting(&tp.0) {
                results.insert(
                    tp,
                    Some((
                        ResponseError::InvalidTopicException,
                        Some("The topic is being deleted".into()),
                    )),
                );
                continue;
            }
            let current = &state.leader_and_isr;
            let replicas = ctx.replicas(&tp);
            let next = if election_type == UNCLEAN {
                if ctx.is_live(current.leader) {
                    results.insert(tp, Some((ResponseError::ElectionNotNeeded, None)));
                    continue;
                }
                election::offline(current, &replicas, |r| ctx.is_live(r), true)
            } else {
                if replicas.first() == Some(&current.leader) {
                    results.insert(tp, Some((ResponseError::ElectionNotNeeded, None)));
                    continue;
                }
                election::preferred(current, &replicas, |r| ctx.is_live(r))
            };
            match next {
                Some(next) => updates.push((tp, next)),
                None => {
                    let error = if election_type == UNCLEAN {
                        ResponseError::EligibleLeadersNotAvailable
                    } else {
                        ResponseError::PreferredLeaderNotAvailable
                    };
                    let message = format!(
                        "Failed to elect leader for partition {}-{} under strategy {}",
                        tp.0,
                        tp.1,
                        if election_type == UNCLEAN {
                            "UncleanElection"
                        } else {
                            "PreferredReplicaPartitionLeaderElectionStrategy"
                        }
                    );
                    results.insert(tp, Some((error, Some(message))));
                }
            }
        }
        let wanted: Vec<TopicPartition> = updates.iter().map(|(tp, _)| tp.clone()).collect();
        let outcome = match self.apply_elections(updates).await {
            Ok(written) => {
                for tp in wanted {
                    let failed = (!written.contains(&tp)).then(|| {
                        (
                            ResponseError::UnknownServerError,
                            Some("The partition state changed concurrently; retry".to_string()),
                        )
                    });
                    results.insert(tp, failed);
                }
                Ok(())
            }
            Err(e) => {
                for tp in wanted {
                    results.insert(tp, Some((ResponseError::NotController, None)));
                }
                Err(e)
            }
        };
        let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
        for ((topic, partition), result) in results {
            let (code, message) = match result {
                None => (0, None),
                Some((error, message)) => (error.code(), message),
            };
            by_topic.entry(topic).or_default().push(
                PartitionResult::default()
                    .with_partition_id(partition)
                    .with_error_code(code)
                    .with_error_message(message.map(str_bytes)),
            );
        }
        let response = ElectLeadersResponse::default().with_replica_election_results(
            by_topic
                .into_iter()
                .map(|(t, p)| {
                    ReplicaElectionResult::default()
                        .with_topic(TopicName(str_bytes(t)))
                        .with_partition_result(p)
                })
                .collect(),
        );
        (response, outcome)
    }

    /// `auto.leader.rebalance.enable`: moves leadership back to preferred replicas on
    /// brokers whose share of lost preferred leaderships exceeds
    /// `leader.imbalance.per.broker.percentage` (Kafka's `checkAndTriggerAutoLeaderRebalance`).
    pub(super) async fn maybe_rebalance_leaders(&mut self) -> Outcome {
        if !self.config.auto_leader_rebalance_enable {
            return Ok(());
        }
        let Some(ctx) = &self.ctx else { return Ok(()) };
        if !ctx.shutting_down.is_empty() {
            return Ok(());
        }
        let mut by_preferred: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        for (tp, state) in &ctx.states {
            let Some(a) = ctx.assignment(tp) else {
                continue;
            };
            if ctx.is_deleting(&tp.0) || a.is_being_reassigned() {
                continue;
            }
            if let Some(&preferred) = a.replicas.first() {
                by_preferred.entry(preferred).or_default().push(tp.clone());
                let _ = state;
            }
        }
        let mut updates = Vec::new();
        for (broker, partitions) in by_preferred {
            if !ctx.is_live(broker) {
                continue;
            }
            let imbalanced: Vec<&TopicPartition> = partitions
                .iter()
                .filter(|tp| ctx.leader(tp) != Some(broker))
                .collect();
            let ratio = imbalanced.len() as f64 / partitions.len() as f64;
            if ratio * 100.0 <= f64::from(self.config.leader_imbalance_per_broker_percentage) {
                continue;
            }
            for tp in imbalanced {
                let current = &ctx.states[tp].leader_and_isr;
                if let Some(next) =
                    election::preferred(current, &ctx.replicas(tp), |r| ctx.is_live(r))
                {
                    updates.push((tp.clone(), next));
                }
            }
        }
        if !updates.is_empty() {
            info!(
                partitions = updates.len(),
                "moving leaderships back to preferred replicas"
            );
        }
        self.apply_elections(updates).await.map(|_| ())
    }
}

fn committed(partition_index: i32, state: &LeaderAndIsr) -> AlterPartitionData {
    AlterPartitionData::default()
        .with_partition_index(partition_index)
        .with_leader_id(BrokerId(state.leader))
        .with_leader_epoch(state.leader_epoch)
        .with_isr(state.isr.iter().map(|b| BrokerId(*b)).collect())
        .with_leader_recovery_state(state.leader_recovery_state)
        .with_partition_epoch(state.partition_epoch)
}

fn response_of(results: Vec<(Uuid, AlterPartitionData)>) -> AlterPartitionResponse {
    let mut topics: Vec<AlterTopicData> = Vec::new();
    for (id, data) in results {
        match topics.iter_mut().find(|t| t.topic_id == id) {
            Some(t) => t.partitions.push(data),
            None => topics.push(
                AlterTopicData::default()
                    .with_topic_id(id)
                    .with_partitions(vec![data]),
            ),
        }
    }
    AlterPartitionResponse::default().with_topics(topics)
}
