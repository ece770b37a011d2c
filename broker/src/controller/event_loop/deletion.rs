//! Topic deletion (Kafka's `TopicDeletionManager`).

use std::collections::BTreeSet;

use tracing::{debug, info, warn};

use crate::controller::channel::{ControllerRequest, ControllerResponse, ResponseEvent};
use crate::metadata::TopicPartition;

use super::{EventLoop, Outcome};

impl EventLoop {
    pub(super) async fn on_topic_deletions_changed(&mut self) -> Outcome {
        let requested = self.store.topic_deletions().await?;
        let fence = self.fence();
        let ctx = self.ctx.as_ref().expect("active");
        let unknown: Vec<String> = requested
            .iter()
            .filter(|t| !ctx.topics.contains_key(*t))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            self.store.remove_deletion_markers(unknown, fence).await?;
        }
        if !self.config.delete_topic_enable {
            let known: Vec<String> = requested
                .into_iter()
                .filter(|t| self.ctx.as_ref().expect("active").topics.contains_key(t))
                .collect();
            if !known.is_empty() {
                warn!(topics = ?known, "delete.topic.enable is false; ignoring deletion requests");
                self.store.remove_deletion_markers(known, fence).await?;
            }
            return Ok(());
        }
        let to_start: Vec<String> = requested
            .into_iter()
            .filter(|t| {
                let ctx = self.ctx.as_ref().expect("active");
                ctx.topics.contains_key(t) && !ctx.is_deleting(t)
            })
            .collect();
        for topic in to_start {
            self.start_topic_deletion(&topic);
        }
        self.maybe_finish_deletions().await
    }

    pub(super) fn start_topic_deletion(&mut self, topic: &str) {
        info!(%topic, "deleting topic");
        let ctx = self.ctx();
        let mut pending = BTreeSet::new();
        for tp in ctx.partitions_of(topic) {
            for r in ctx.replicas(&tp) {
                pending.insert((tp.clone(), r));
            }
        }
        ctx.deleting.insert(topic.to_string(), pending.clone());
        // Brokers stop serving the topic first (leader -2 in UpdateMetadata).
        let ctx = self.ctx.as_ref().expect("active");
        let brokers: Vec<i32> = ctx.brokers.keys().copied().collect();
        self.batch
            .add_update_metadata(&brokers, ctx.partitions_of(topic).into_iter());
        for (tp, replica) in pending {
            if ctx.is_live_or_shutting_down(replica) {
                self.batch.add_stop_replica(replica, &tp, true);
            }
        }
    }

    pub(super) fn resend_pending_deletions(&mut self, brokers: &[i32]) {
        let ctx = self.ctx.as_ref().expect("active");
        for pending in ctx.deleting.values() {
            for (tp, replica) in pending {
                if brokers.contains(replica) {
                    self.batch.add_stop_replica(*replica, tp, true);
                }
            }
        }
    }

    pub(super) async fn maybe_finish_deletions(&mut self) -> Outcome {
        let done: Vec<String> = self
            .ctx()
            .deleting
            .iter()
            .filter(|(_, pending)| pending.is_empty())
            .map(|(t, _)| t.clone())
            .collect();
        let fence = self.fence();
        for topic in done {
            self.store.delete_topic(topic.clone(), fence).await?;
            self.ctx().remove_topic(&topic);
            info!(%topic, "topic deleted");
        }
        Ok(())
    }

    pub(super) async fn on_broker_response(
        &mut self,
        (broker, request, response): ResponseEvent,
    ) -> Outcome {
        if self.ctx.is_none() {
            return Ok(());
        }
        match (request, response) {
            (
                ControllerRequest::StopReplica(request),
                ControllerResponse::StopReplica(response),
            ) => {
                let deleted: BTreeSet<TopicPartition> = request
                    .topic_states
                    .iter()
                    .flat_map(|t| {
                        t.partition_states
                            .iter()
                            .filter(|p| p.delete_partition)
                            .map(move |p| (t.topic_name.clone(), p.partition_index))
                    })
                    .collect();
                let failed: BTreeSet<TopicPartition> = response
                    .partition_errors
                    .iter()
                    .filter(|e| e.error_code != 0)
                    .map(|e| (e.topic_name.clone(), e.partition_index))
                    .collect();
                if response.error_code != 0 {
                    debug!(broker, error = response.error_code, "StopReplica failed");
                    return Ok(());
                }
                let ctx = self.ctx();
                for tp in deleted.difference(&failed) {
                    if let Some(pending) = ctx.deleting.get_mut(&tp.0) {
                        pending.remove(&(tp.clone(), broker));
                    }
                }
                self.maybe_finish_deletions().await
            }
            (ControllerRequest::LeaderAndIsr(_), ControllerResponse::LeaderAndIsr(response)) => {
                for e in response
                    .partition_errors
                    .iter()
                    .filter(|e| e.error_code != 0)
                {
                    debug!(broker, topic = %e.topic_name, partition = e.partition_index, error = e.error_code, "LeaderAndIsr partition error");
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
