//! Writing partition states: new partitions, elections.

use std::collections::BTreeMap;

use tracing::{debug, warn};

use crate::controller::election;
use crate::metadata::{
    LeaderAndIsr, MetadataError, PartitionState, StateWrite, TopicPartition, config_type,
};

use super::{EventLoop, Outcome};

impl EventLoop {
    /// Writes new leadership states (conditional on each partition's epoch and on the
    /// fence) and records them in the context. A partition whose state changed under us
    /// is re-read and left out. Returns the partitions written.
    pub(super) async fn write_states(
        &mut self,
        updates: Vec<(TopicPartition, LeaderAndIsr)>,
    ) -> Result<Vec<TopicPartition>, MetadataError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let fence = self.fence();
        let states: Vec<(TopicPartition, PartitionState)> = updates
            .into_iter()
            .map(|(tp, l)| {
                (
                    tp,
                    PartitionState {
                        leader_and_isr: l,
                        controller_epoch: fence.epoch,
                    },
                )
            })
            .collect();
        let by_tp: BTreeMap<TopicPartition, PartitionState> = states.iter().cloned().collect();
        let results = self.store.update_partition_states(fence, states).await?;
        let mut written = Vec::new();
        let mut stale = Vec::new();
        for (tp, result) in results {
            match result {
                StateWrite::Updated(version) => {
                    let mut state = by_tp[&tp].clone();
                    state.leader_and_isr.partition_epoch = version;
                    self.ctx().states.insert(tp.clone(), state);
                    written.push(tp);
                }
                StateWrite::BadVersion => stale.push(tp),
                StateWrite::NoNode => {
                    debug!(topic = %tp.0, partition = tp.1, "partition state vanished");
                }
            }
        }
        if !stale.is_empty() {
            debug!(partitions = ?stale, "partition states changed concurrently; re-reading");
            let fresh = self.store.partition_states(stale).await?;
            self.ctx().states.extend(fresh);
        }
        Ok(written)
    }

    /// Creates the first state of new partitions: the first live replica leads, every
    /// live replica is in the ISR (Kafka's NewPartition → OnlinePartition).
    pub(super) async fn initialize_partitions(
        &mut self,
        partitions: Vec<TopicPartition>,
    ) -> Outcome {
        let fence = self.fence();
        let ctx = self.ctx.as_ref().expect("active");
        let mut states = Vec::new();
        for tp in partitions {
            if ctx.states.contains_key(&tp) || ctx.is_deleting(&tp.0) {
                continue;
            }
            let live: Vec<i32> = ctx
                .replicas(&tp)
                .into_iter()
                .filter(|r| ctx.is_live(*r))
                .collect();
            let Some(&leader) = live.first() else {
                debug!(topic = %tp.0, partition = tp.1, "no live replica yet; the partition stays offline");
                continue;
            };
            states.push((
                tp,
                PartitionState {
                    leader_and_isr: LeaderAndIsr::initial(leader, live),
                    controller_epoch: fence.epoch,
                },
            ));
        }
        if states.is_empty() {
            return Ok(());
        }
        let by_tp: BTreeMap<TopicPartition, PartitionState> = states.iter().cloned().collect();
        let results = self.store.create_partition_states(fence, states).await?;
        let mut existing = Vec::new();
        for (tp, result) in results {
            match result {
                Ok(version) => {
                    let mut state = by_tp[&tp].clone();
                    state.leader_and_isr.partition_epoch = version;
                    self.ctx().states.insert(tp.clone(), state);
                    let ctx = self.ctx.as_ref().expect("active");
                    let replicas = ctx.replicas(&tp);
                    self.batch.add_leader_and_isr(ctx, &replicas, &tp, true);
                }
                Err(MetadataError::NodeExists(_)) => existing.push(tp),
                Err(MetadataError::ControllerMoved { expected }) => {
                    return Err(MetadataError::ControllerMoved { expected });
                }
                Err(e) => {
                    warn!(topic = %tp.0, partition = tp.1, error = %e, "cannot create partition state")
                }
            }
        }
        if !existing.is_empty() {
            let fresh = self.store.partition_states(existing.clone()).await?;
            self.ctx().states.extend(fresh);
            for tp in existing {
                let ctx = self.ctx.as_ref().expect("active");
                let replicas = ctx.replicas(&tp);
                self.batch.add_leader_and_isr(ctx, &replicas, &tp, false);
            }
        }
        Ok(())
    }

    pub(super) async fn unclean_allowed(&self, topic: &str) -> Result<bool, MetadataError> {
        let configs = self
            .store
            .entity_configs(config_type::TOPIC.to_string(), topic.to_string())
            .await?;
        Ok(configs
            .get("unclean.leader.election.enable")
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(self.config.unclean_leader_election_enable))
    }

    /// Elects leaders for partitions whose leader is gone (Kafka's OfflinePartition →
    /// OnlinePartition with the offline election).
    pub(super) async fn elect_offline(&mut self, partitions: Vec<TopicPartition>) -> Outcome {
        let mut updates = Vec::new();
        for tp in partitions {
            let ctx = self.ctx.as_ref().expect("active");
            let Some(state) = ctx.states.get(&tp) else {
                continue;
            };
            if ctx.is_deleting(&tp.0) || ctx.is_live(state.leader_and_isr.leader) {
                continue;
            }
            let replicas = ctx.replicas(&tp);
            let current = state.leader_and_isr.clone();
            let mut next = election::offline(&current, &replicas, |r| ctx.is_live(r), false);
            if next.is_none() && self.unclean_allowed(&tp.0).await? {
                let ctx = self.ctx.as_ref().expect("active");
                next = election::offline(&current, &replicas, |r| ctx.is_live(r), true);
                if next.is_some() {
                    warn!(topic = %tp.0, partition = tp.1, "unclean leader election: committed records may be lost");
                }
            }
            match next {
                Some(next) => updates.push((tp, next)),
                None => {
                    // No live replica in the ISR: the partition stays offline, and the
                    // leader field says so (Kafka keeps the last ISR for the next
                    // election).
                    if current.leader >= 0 {
                        updates.push((
                            tp.clone(),
                            current.new_leader_and_isr(-1, current.isr.clone()),
                        ));
                    }
                    debug!(topic = %tp.0, partition = tp.1, "no eligible leader; partition offline");
                }
            }
        }
        self.apply_elections(updates).await.map(|_| ())
    }

    /// Writes elections and sends LeaderAndIsr to every replica.
    pub(super) async fn apply_elections(
        &mut self,
        updates: Vec<(TopicPartition, LeaderAndIsr)>,
    ) -> Result<Vec<TopicPartition>, MetadataError> {
        let written = self.write_states(updates).await?;
        for tp in &written {
            let ctx = self.ctx.as_ref().expect("active");
            let replicas = ctx.replicas(tp);
            self.batch.add_leader_and_isr(ctx, &replicas, tp, false);
            if let Some(s) = ctx.states.get(tp) {
                debug!(topic = %tp.0, partition = tp.1, leader = s.leader_and_isr.leader, epoch = s.leader_and_isr.leader_epoch, isr = ?s.leader_and_isr.isr, "elected leader");
            }
        }
        Ok(written)
    }
}
