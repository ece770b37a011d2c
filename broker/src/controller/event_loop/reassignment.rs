//! Partition reassignment (KIP-455): the IO side of [`crate::controller::reassign`].

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use tracing::{debug, info};

use crate::api::str_bytes;
use crate::controller::context::ControllerContext;
use crate::controller::{election, reassign};
use crate::metadata::{MetadataError, ReplicaAssignment, TopicPartition};

use super::{EventLoop, Outcome};

impl EventLoop {
    pub(super) async fn alter_reassignments(
        &mut self,
        request: AlterPartitionReassignmentsRequest,
    ) -> (AlterPartitionReassignmentsResponse, Outcome) {
        let mut responses: Vec<ReassignableTopicResponse> = Vec::new();
        let mut outcome = Ok(());
        for topic in &request.topics {
            let name = topic.name.0.to_string();
            let mut partitions = Vec::new();
            for p in &topic.partitions {
                let tp = (name.clone(), p.partition_index);
                let target: Option<Vec<i32>> =
                    p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
                let result = match self.reassign_partition(&tp, target).await {
                    Ok(r) => r,
                    Err(e) => {
                        outcome = Err(e);
                        Err((ResponseError::NotController, None))
                    }
                };
                let (code, message) = match result {
                    Ok(()) => (0, None),
                    Err((e, m)) => (e.code(), m),
                };
                partitions.push(
                    ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_error_message(message.map(str_bytes)),
                );
                if outcome.is_err() {
                    break;
                }
            }
            responses.push(
                ReassignableTopicResponse::default()
                    .with_name(topic.name.clone())
                    .with_partitions(partitions),
            );
        }
        (
            AlterPartitionReassignmentsResponse::default().with_responses(responses),
            outcome,
        )
    }

    /// Starts, replaces or (with `None`) cancels the reassignment of one partition.
    pub(super) async fn reassign_partition(
        &mut self,
        tp: &TopicPartition,
        target: Option<Vec<i32>>,
    ) -> Result<Result<(), (ResponseError, Option<String>)>, MetadataError> {
        let ctx = self.ctx.as_ref().expect("active");
        let Some(current) = ctx.assignment(tp).cloned() else {
            return Ok(Err((ResponseError::UnknownTopicOrPartition, None)));
        };
        if ctx.is_deleting(&tp.0) {
            return Ok(Err((
                ResponseError::UnknownTopicOrPartition,
                Some("The topic is being deleted".into()),
            )));
        }
        let (next, abandoned) = match &target {
            None => {
                if !current.is_being_reassigned() {
                    return Ok(Err((
                        ResponseError::NoReassignmentInProgress,
                        Some(format!(
                            "No ongoing reassignment for partition {}-{}",
                            tp.0, tp.1
                        )),
                    )));
                }
                reassign::cancel(&current)
            }
            Some(target) => {
                if target.is_empty() {
                    return Ok(Err((
                        ResponseError::InvalidReplicaAssignment,
                        Some("The target replica list is empty".into()),
                    )));
                }
                let distinct: BTreeSet<i32> = target.iter().copied().collect();
                if distinct.len() != target.len() {
                    return Ok(Err((
                        ResponseError::InvalidReplicaAssignment,
                        Some("Duplicate replica ids in the target assignment".into()),
                    )));
                }
                if let Some(unknown) = target.iter().find(|b| !ctx.brokers.contains_key(b)) {
                    return Ok(Err((
                        ResponseError::InvalidReplicaAssignment,
                        Some(format!("Replica {unknown} is not an available broker")),
                    )));
                }
                reassign::start(&current, target)
            }
        };
        info!(topic = %tp.0, partition = tp.1, from = ?current.replicas, to = ?next.replicas, adding = ?next.adding_replicas, removing = ?next.removing_replicas, "reassigning partition");
        self.write_assignment(tp, next).await?;
        for r in abandoned {
            self.batch.add_stop_replica(r, tp, true);
        }
        // Phase A: a new leader epoch tells every replica, including the new ones, the
        // new replica set.
        self.bump_leader_epoch(tp).await?;
        self.maybe_complete_reassignments().await?;
        Ok(Ok(()))
    }

    pub(super) async fn write_assignment(
        &mut self,
        tp: &TopicPartition,
        assignment: ReplicaAssignment,
    ) -> Outcome {
        let fence = self.fence();
        let mut topic = self.ctx().topics[&tp.0].clone();
        topic.partitions.insert(tp.1, assignment);
        let version = self
            .store
            .set_topic_assignment(tp.0.clone(), topic.clone(), Some(fence))
            .await?;
        topic.version = version;
        self.ctx().topics.insert(tp.0.clone(), topic);
        Ok(())
    }

    pub(super) async fn bump_leader_epoch(&mut self, tp: &TopicPartition) -> Outcome {
        let ctx = self.ctx.as_ref().expect("active");
        let Some(state) = ctx.states.get(tp) else {
            return Ok(());
        };
        let current = state.leader_and_isr.clone();
        let next = current.new_leader_and_isr(current.leader, current.isr.clone());
        self.apply_elections(vec![(tp.clone(), next)])
            .await
            .map(|_| ())
    }

    /// Phase B of every reassignment whose target replicas are all in the ISR.
    pub(super) async fn maybe_complete_reassignments(&mut self) -> Outcome {
        let ctx = self.ctx.as_ref().expect("active");
        let complete: Vec<TopicPartition> = ctx
            .all_partitions()
            .into_iter()
            .filter(|tp| {
                let (Some(a), Some(s)) = (ctx.assignment(tp), ctx.states.get(tp)) else {
                    return false;
                };
                a.is_being_reassigned() && reassign::is_complete(a, &s.leader_and_isr.isr)
            })
            .collect();
        for tp in complete {
            self.complete_reassignment(&tp).await?;
        }
        Ok(())
    }

    pub(super) async fn complete_reassignment(&mut self, tp: &TopicPartition) -> Outcome {
        let ctx = self.ctx.as_ref().expect("active");
        let assignment = ctx.assignment(tp).cloned().expect("assignment");
        let state = ctx.states[tp].leader_and_isr.clone();
        let target = assignment.target_replicas();
        let removing = assignment.removing_replicas.clone();
        // B3: a leader outside the target gives way.
        if reassign::needs_new_leader(&assignment, state.leader, |r| ctx.is_live(r)) {
            match election::reassign(&state, &target, |r| ctx.is_live(r)) {
                Some(next) => {
                    self.apply_elections(vec![(tp.clone(), next)]).await?;
                }
                None => {
                    debug!(topic = %tp.0, partition = tp.1, "no target replica can lead yet; reassignment waits");
                    return Ok(());
                }
            }
        }
        // B4: the removed replicas leave the ISR.
        let current = self.ctx().states[tp].leader_and_isr.clone();
        let isr: Vec<i32> = current
            .isr
            .iter()
            .copied()
            .filter(|r| !removing.contains(r))
            .collect();
        if isr != current.isr {
            let next = current.new_leader_and_isr(current.leader, isr);
            self.write_states(vec![(tp.clone(), next)]).await?;
        }
        // B6: the assignment becomes the target.
        self.write_assignment(tp, reassign::completed(&assignment))
            .await?;
        let ctx = self.ctx.as_ref().expect("active");
        self.batch.add_leader_and_isr(ctx, &target, tp, false);
        // B5: the removed replicas stop and delete their logs.
        for r in &removing {
            self.batch.add_stop_replica(*r, tp, true);
        }
        info!(topic = %tp.0, partition = tp.1, replicas = ?target, "reassignment completed");
        Ok(())
    }

    /// After a failover or a broker start: reassignments in the store carry on.
    pub(super) async fn resume_reassignments(&mut self) -> Outcome {
        let ctx = self.ctx.as_ref().expect("active");
        for tp in ctx.all_partitions() {
            let Some(a) = ctx.assignment(&tp) else {
                continue;
            };
            if a.is_being_reassigned() && !ctx.is_deleting(&tp.0) {
                let replicas = a.replicas.clone();
                self.batch.add_leader_and_isr(ctx, &replicas, &tp, false);
            }
        }
        self.maybe_complete_reassignments().await
    }
}

pub(super) fn list_reassignments(
    ctx: &ControllerContext,
    request: &ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let wanted: Option<BTreeSet<TopicPartition>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(move |p| (t.name.0.to_string(), *p))
            })
            .collect()
    });
    let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    for tp in ctx.all_partitions() {
        if wanted.as_ref().is_some_and(|w| !w.contains(&tp)) {
            continue;
        }
        let Some(a) = ctx.assignment(&tp) else {
            continue;
        };
        if !a.is_being_reassigned() {
            continue;
        }
        by_topic.entry(tp.0.clone()).or_default().push(
            OngoingPartitionReassignment::default()
                .with_partition_index(tp.1)
                .with_replicas(a.replicas.iter().map(|b| BrokerId(*b)).collect())
                .with_adding_replicas(a.adding_replicas.iter().map(|b| BrokerId(*b)).collect())
                .with_removing_replicas(a.removing_replicas.iter().map(|b| BrokerId(*b)).collect()),
        );
    }
    ListPartitionReassignmentsResponse::default().with_topics(
        by_topic
            .into_iter()
            .map(|(t, p)| {
                OngoingTopicReassignment::default()
                    .with_name(TopicName(str_bytes(t)))
                    .with_partitions(p)
            })
            .collect(),
    )
}
