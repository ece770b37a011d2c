//! What the active controller knows about the cluster (Kafka's `ControllerContext`):
//! read from the metadata store when it is elected and kept current by its own writes and
//! by the store's notifications.

use std::collections::{BTreeMap, BTreeSet};

use crate::metadata::{
    BrokerRegistration, ControllerFence, PartitionState, ReplicaAssignment, TopicAssignment,
    TopicPartition,
};

#[derive(Debug, Clone)]
pub struct ControllerContext {
    pub fence: ControllerFence,
    /// Every registered broker, including those shutting down.
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// Brokers that asked for a controlled shutdown and are still registered.
    pub shutting_down: BTreeSet<i32>,
    /// Registered brokers whose listener refuses connections ([`super::liveness`]):
    /// treated as failed, kept here until they answer again or their registration goes.
    pub refusing: BTreeMap<i32, BrokerRegistration>,
    pub topics: BTreeMap<String, TopicAssignment>,
    pub states: BTreeMap<TopicPartition, PartitionState>,
    /// Topics whose deletion is under way, with the replicas not yet confirmed deleted.
    pub deleting: BTreeMap<String, BTreeSet<(TopicPartition, i32)>>,
}

impl ControllerContext {
    pub fn new(fence: ControllerFence) -> ControllerContext {
        ControllerContext {
            fence,
            brokers: BTreeMap::new(),
            shutting_down: BTreeSet::new(),
            refusing: BTreeMap::new(),
            topics: BTreeMap::new(),
            states: BTreeMap::new(),
            deleting: BTreeMap::new(),
        }
    }

    /// Alive and not shutting down: may lead and join ISRs.
    pub fn is_live(&self, broker: i32) -> bool {
        self.brokers.contains_key(&broker) && !self.shutting_down.contains(&broker)
    }

    pub fn is_live_or_shutting_down(&self, broker: i32) -> bool {
        self.brokers.contains_key(&broker)
    }

    pub fn assignment(&self, tp: &TopicPartition) -> Option<&ReplicaAssignment> {
        self.topics.get(&tp.0)?.partitions.get(&tp.1)
    }

    /// The replicas of a partition (the full set during a reassignment).
    pub fn replicas(&self, tp: &TopicPartition) -> Vec<i32> {
        self.assignment(tp)
            .map(|a| a.replicas.clone())
            .unwrap_or_default()
    }

    pub fn all_partitions(&self) -> Vec<TopicPartition> {
        self.topics
            .iter()
            .flat_map(|(t, a)| a.partitions.keys().map(move |p| (t.clone(), *p)))
            .collect()
    }

    pub fn partitions_of(&self, topic: &str) -> Vec<TopicPartition> {
        self.topics
            .get(topic)
            .map(|a| {
                a.partitions
                    .keys()
                    .map(|p| (topic.to_string(), *p))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Partitions with a replica on `broker`.
    pub fn partitions_on(&self, broker: i32) -> Vec<TopicPartition> {
        self.all_partitions()
            .into_iter()
            .filter(|tp| self.replicas(tp).contains(&broker))
            .collect()
    }

    pub fn leader(&self, tp: &TopicPartition) -> Option<i32> {
        self.states
            .get(tp)
            .map(|s| s.leader_and_isr.leader)
            .filter(|l| *l >= 0)
    }

    /// Partitions whose leader is not alive (or that have none), not being deleted.
    pub fn partitions_without_live_leader(&self) -> Vec<TopicPartition> {
        self.states
            .iter()
            .filter(|(tp, s)| {
                !self.deleting.contains_key(&tp.0) && !self.is_live(s.leader_and_isr.leader)
            })
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// Partitions with an assignment but no state znode yet (new partitions).
    pub fn partitions_without_state(&self) -> Vec<TopicPartition> {
        self.all_partitions()
            .into_iter()
            .filter(|tp| !self.states.contains_key(tp) && !self.deleting.contains_key(&tp.0))
            .collect()
    }

    pub fn is_deleting(&self, topic: &str) -> bool {
        self.deleting.contains_key(topic)
    }

    pub fn topic_name(&self, id: uuid::Uuid) -> Option<&str> {
        self.topics
            .iter()
            .find(|(_, a)| a.topic_id == id)
            .map(|(t, _)| t.as_str())
    }

    pub fn remove_topic(&mut self, topic: &str) {
        self.topics.remove(topic);
        self.states.retain(|tp, _| tp.0 != topic);
        self.deleting.remove(topic);
    }
}
