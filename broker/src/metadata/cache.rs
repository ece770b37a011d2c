//! The broker's view of the cluster, as the controller last described it in
//! UpdateMetadata (Kafka's `ZkMetadataCache`): live brokers and their endpoints, the
//! controller, and every partition's leader, ISR and replicas.
//!
//! Metadata, FindCoordinator and DescribeCluster answer from it, so every broker tells
//! clients the same thing. Readers take an `Arc` of an immutable snapshot; an update
//! builds the next snapshot and swaps it in.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use uuid::Uuid;

use super::{LEADER_DURING_DELETE, SecurityProtocol};
use crate::protocol::{UpdateMetadataPartitionState, UpdateMetadataRequest};

/// A live broker's listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedBroker {
    pub id: i32,
    /// `(listener name, host, port, security protocol)`.
    pub endpoints: Vec<(String, String, u16, Option<SecurityProtocol>)>,
    pub rack: Option<String>,
}

impl CachedBroker {
    pub fn endpoint(&self, listener: &str) -> Option<(&str, u16)> {
        self.endpoints
            .iter()
            .find(|e| e.0 == listener)
            .map(|e| (e.1.as_str(), e.2))
    }
}

#[derive(Debug, Clone, Default)]
pub struct CachedTopic {
    pub topic_id: Uuid,
    pub partitions: BTreeMap<i32, UpdateMetadataPartitionState>,
}

/// One consistent view.
#[derive(Debug, Clone, Default)]
pub struct MetadataSnapshot {
    pub controller_id: Option<i32>,
    pub controller_epoch: i32,
    pub brokers: BTreeMap<i32, CachedBroker>,
    pub topics: BTreeMap<String, CachedTopic>,
    topic_names: HashMap<Uuid, String>,
}

impl MetadataSnapshot {
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&UpdateMetadataPartitionState> {
        self.topics.get(topic)?.partitions.get(&partition)
    }

    pub fn topic_name(&self, id: Uuid) -> Option<&str> {
        self.topic_names.get(&id).map(String::as_str)
    }

    pub fn topic_id(&self, topic: &str) -> Option<Uuid> {
        self.topics.get(topic).map(|t| t.topic_id)
    }

    pub fn is_alive(&self, broker: i32) -> bool {
        self.brokers.contains_key(&broker)
    }

    /// The leader of a partition and its endpoint on `listener`, if it is alive.
    pub fn leader_endpoint(
        &self,
        topic: &str,
        partition: i32,
        listener: &str,
    ) -> Option<(i32, &str, u16)> {
        let leader = self.partition(topic, partition)?.leader;
        let (host, port) = self.brokers.get(&leader)?.endpoint(listener)?;
        Some((leader, host, port))
    }
}

/// KIP-951: a partition's current leader for a client told NOT_LEADER_OR_FOLLOWER or
/// FENCED_LEADER_EPOCH (Produce v10+, Fetch v12+), and the endpoints of every leader so
/// named, so the client goes there without first asking for Metadata.
#[derive(Debug, Default)]
pub struct LeaderHints {
    leaders: BTreeSet<i32>,
}

/// A broker's address in a KIP-951 answer: `(id, host, port, rack)`.
pub type HintedEndpoint<'a> = (i32, &'a str, u16, Option<&'a str>);

impl LeaderHints {
    /// The leader and leader epoch of a partition as this broker knows them, remembered
    /// for `endpoints`; `None` when the partition is unknown here. `local` is the
    /// replica's own `(leader, leader epoch)` when this broker hosts the partition: the
    /// controller sends LeaderAndIsr before UpdateMetadata, so it is the newer of the two
    /// (Kafka's `getCurrentLeader` prefers it too); the metadata cache answers otherwise.
    pub fn leader(
        &mut self,
        snapshot: &MetadataSnapshot,
        topic: &str,
        partition: i32,
        local: Option<(Option<i32>, i32)>,
    ) -> Option<(i32, i32)> {
        let (leader, epoch) = match local {
            Some((Some(leader), epoch)) => (leader, epoch),
            _ => {
                let state = snapshot.partition(topic, partition)?;
                (state.leader, state.leader_epoch)
            }
        };
        if leader >= 0 {
            self.leaders.insert(leader);
        }
        Some((leader, epoch))
    }

    /// The live leaders named so far, with their address on `listener`.
    pub fn endpoints<'a>(
        &self,
        snapshot: &'a MetadataSnapshot,
        listener: &str,
    ) -> Vec<HintedEndpoint<'a>> {
        self.leaders
            .iter()
            .filter_map(|id| {
                let broker = snapshot.brokers.get(id)?;
                let (host, port) = broker.endpoint(listener)?;
                Some((*id, host, port, broker.rack.as_deref()))
            })
            .collect()
    }
}

#[derive(Default)]
pub struct MetadataCache {
    snapshot: RwLock<Arc<MetadataSnapshot>>,
}

impl MetadataCache {
    pub fn snapshot(&self) -> Arc<MetadataSnapshot> {
        self.snapshot.read().expect("metadata cache lock").clone()
    }

    /// The last controller epoch that updated the cache (for stale-controller checks).
    pub fn controller_epoch(&self) -> i32 {
        self.snapshot().controller_epoch
    }

    /// Applies an UpdateMetadata request. Partitions whose leader is
    /// `LeaderDuringDelete` are removed (their topic is being deleted); a topic with no
    /// partitions left disappears. Returns the partitions that were removed.
    pub fn update(&self, request: &UpdateMetadataRequest) -> Vec<(String, i32)> {
        let mut guard = self.snapshot.write().expect("metadata cache lock");
        let mut next = MetadataSnapshot::clone(&guard);
        next.controller_id = (request.controller_id >= 0).then_some(request.controller_id);
        next.controller_epoch = request.controller_epoch;
        next.brokers = request
            .live_brokers
            .iter()
            .map(|b| {
                (
                    b.id,
                    CachedBroker {
                        id: b.id,
                        endpoints: b
                            .endpoints
                            .iter()
                            .map(|e| {
                                (
                                    e.listener.clone(),
                                    e.host.clone(),
                                    e.port as u16,
                                    SecurityProtocol::from_id(e.security_protocol),
                                )
                            })
                            .collect(),
                        rack: b.rack.clone(),
                    },
                )
            })
            .collect();
        let mut removed = Vec::new();
        for topic in &request.topic_states {
            for state in &topic.partition_states {
                if state.leader == LEADER_DURING_DELETE {
                    if let Some(t) = next.topics.get_mut(&topic.topic_name) {
                        t.partitions.remove(&state.partition_index);
                    }
                    removed.push((topic.topic_name.clone(), state.partition_index));
                } else {
                    let entry = next.topics.entry(topic.topic_name.clone()).or_default();
                    if !topic.topic_id.is_nil() {
                        entry.topic_id = topic.topic_id;
                    }
                    entry
                        .partitions
                        .insert(state.partition_index, state.clone());
                }
            }
            if next
                .topics
                .get(&topic.topic_name)
                .is_some_and(|t| t.partitions.is_empty())
            {
                next.topics.remove(&topic.topic_name);
            }
        }
        next.topic_names = next
            .topics
            .iter()
            .filter(|(_, t)| !t.topic_id.is_nil())
            .map(|(name, t)| (t.topic_id, name.clone()))
            .collect();
        *guard = Arc::new(next);
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{UpdateMetadataBroker, UpdateMetadataEndpoint, UpdateMetadataTopicState};

    fn state(partition: i32, leader: i32) -> UpdateMetadataPartitionState {
        UpdateMetadataPartitionState {
            partition_index: partition,
            controller_epoch: 1,
            leader,
            leader_epoch: 0,
            isr: vec![leader],
            zk_version: 0,
            replicas: vec![leader],
            offline_replicas: vec![],
        }
    }

    #[test]
    fn updates_and_deletions() {
        let cache = MetadataCache::default();
        let id = Uuid::new_v4();
        let mut request = UpdateMetadataRequest {
            controller_id: 1,
            controller_epoch: 3,
            live_brokers: vec![UpdateMetadataBroker {
                id: 1,
                endpoints: vec![UpdateMetadataEndpoint {
                    port: 9092,
                    host: "h1".into(),
                    listener: "PLAINTEXT".into(),
                    security_protocol: 0,
                }],
                rack: None,
            }],
            topic_states: vec![UpdateMetadataTopicState {
                topic_name: "t".into(),
                topic_id: id,
                partition_states: vec![state(0, 1), state(1, 1)],
            }],
            ..Default::default()
        };
        cache.update(&request);
        let s = cache.snapshot();
        assert_eq!(s.controller_id, Some(1));
        assert_eq!(s.topic_name(id), Some("t"));
        assert_eq!(
            s.leader_endpoint("t", 1, "PLAINTEXT"),
            Some((1, "h1", 9092))
        );
        // A broker-only update leaves partitions alone.
        request.topic_states.clear();
        cache.update(&request);
        assert_eq!(cache.snapshot().topics["t"].partitions.len(), 2);
        // Deletion: leader -2 removes partitions, then the topic.
        request.topic_states = vec![UpdateMetadataTopicState {
            topic_name: "t".into(),
            topic_id: id,
            partition_states: vec![
                state(0, LEADER_DURING_DELETE),
                state(1, LEADER_DURING_DELETE),
            ],
        }];
        assert_eq!(cache.update(&request).len(), 2);
        assert!(cache.snapshot().topics.is_empty());
        assert_eq!(cache.snapshot().topic_name(id), None);
    }
}
