//! The metadata of a broker without `zookeeper.connect`: the same facts the ZooKeeper
//! backing keeps in znodes, in `<first log dir>/cluster-metadata.json`, rewritten
//! atomically (temp file, fsync, rename) on every change.
//!
//! Such a broker is a cluster of one: it registers itself, wins the controller election
//! and runs the same controller as a ZooKeeper-backed cluster. Registrations and the
//! controller znode are ephemeral, so they live in memory only; versions, epochs and
//! everything persistent are in the file. Fencing is checked as ZooKeeper would: a write
//! with a stale controller epoch version fails.
//!
//! A data directory written by an older Strata (`strata-metadata.json`: topics with a
//! partition count, configs and the producer-id allocator) is converted on first open:
//! every partition is assigned to this broker and elected by the controller as a new
//! partition, so the existing logs are served as before.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tracing::info;
use uuid::Uuid;

use super::{
    BrokerRegistration, ControllerFence, CreatedState, IsrChangeNotification, LeaderAndIsr,
    MetadataError, MetadataEvent, MetadataStore, PartitionState, ReplicaAssignment, StateWrite,
    TopicAssignment, TopicPartition, config_type,
};
use crate::security::acl::{self, AclEntry, AclSet, ResourcePattern};

const FILE_NAME: &str = "cluster-metadata.json";
const LEGACY_FILE_NAME: &str = "strata-metadata.json";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct StoredTopic {
    topic_id: Uuid,
    partitions: BTreeMap<i32, ReplicaAssignment>,
    version: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredState {
    leader: i32,
    leader_epoch: i32,
    isr: Vec<i32>,
    #[serde(default)]
    leader_recovery_state: i8,
    controller_epoch: i32,
    version: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct Persistent {
    cluster_id: Option<String>,
    /// `/controller_epoch` and its version; `None` before the first election.
    controller_epoch: Option<(i32, i32)>,
    /// Stands in for the czxid: every registration gets the next value.
    last_broker_epoch: i64,
    topics: BTreeMap<String, StoredTopic>,
    partition_states: BTreeMap<String, BTreeMap<i32, StoredState>>,
    configs: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    deletions: BTreeSet<String>,
    producer_id_block_end: Option<i64>,
    /// ACLs by their znode path, in Kafka's JSON.
    #[serde(default)]
    acls: BTreeMap<String, String>,
}

struct Inner {
    persistent: Persistent,
    brokers: BTreeMap<i32, BrokerRegistration>,
    controller: Option<i32>,
}

pub struct LocalMetadataStore {
    /// `None` keeps everything in memory (tests and simulations).
    path: Option<PathBuf>,
    inner: Mutex<Inner>,
    events: broadcast::Sender<MetadataEvent>,
}

/// The layout of `strata-metadata.json` before brokers kept Kafka's metadata model.
#[derive(Deserialize)]
struct LegacyState {
    cluster_id: String,
    topics: BTreeMap<String, LegacyTopic>,
    #[serde(default)]
    next_producer_id_block: i64,
}

#[derive(Deserialize)]
struct LegacyTopic {
    topic_id: Uuid,
    partitions: i32,
    configs: BTreeMap<String, String>,
}

impl LocalMetadataStore {
    /// Opens (or creates) the store in `dir`; `broker_id` owns converted legacy topics.
    pub fn open(dir: &Path, broker_id: i32) -> Result<LocalMetadataStore, MetadataError> {
        let path = dir.join(FILE_NAME);
        let corrupt = |reason: String| MetadataError::Corrupt {
            path: path.display().to_string(),
            reason,
        };
        let persistent = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                convert_legacy(&dir.join(LEGACY_FILE_NAME), broker_id)?.unwrap_or_default()
            }
            Err(source) => {
                return Err(MetadataError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let store = LocalMetadataStore {
            path: Some(path),
            inner: Mutex::new(Inner {
                persistent,
                brokers: BTreeMap::new(),
                controller: None,
            }),
            events: broadcast::channel(1024).0,
        };
        store.persist(&store.lock().persistent)?;
        Ok(store)
    }

    /// A store that is never written to disk.
    pub fn in_memory() -> LocalMetadataStore {
        LocalMetadataStore {
            path: None,
            inner: Mutex::new(Inner {
                persistent: Persistent::default(),
                brokers: BTreeMap::new(),
                controller: None,
            }),
            events: broadcast::channel(1024).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, event: MetadataEvent) {
        let _ = self.events.send(event);
    }

    fn persist(&self, state: &Persistent) -> Result<(), MetadataError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let io = |source| MetadataError::Io {
            path: path.display().to_string(),
            source,
        };
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(state).expect("metadata serializes");
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Runs a change on a copy of the persistent state and keeps it only if it was
    /// written: a failed disk write changes nothing.
    fn mutate<T>(
        &self,
        f: impl FnOnce(&mut Inner, &mut Persistent) -> Result<T, MetadataError>,
    ) -> Result<T, MetadataError> {
        let mut inner = self.lock();
        let mut next = inner.persistent.clone();
        let result = f(&mut inner, &mut next)?;
        self.persist(&next)?;
        inner.persistent = next;
        Ok(result)
    }

    fn check_fence(state: &Persistent, fence: &ControllerFence) -> Result<(), MetadataError> {
        match state.controller_epoch {
            Some((_, version)) if version == fence.epoch_zk_version => Ok(()),
            _ => Err(MetadataError::ControllerMoved {
                expected: fence.epoch_zk_version,
            }),
        }
    }
}

fn convert_legacy(path: &Path, broker_id: i32) -> Result<Option<Persistent>, MetadataError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(MetadataError::Io {
                path: path.display().to_string(),
                source,
            });
        }
    };
    let legacy: LegacyState =
        serde_json::from_slice(&bytes).map_err(|e| MetadataError::Corrupt {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    let mut state = Persistent {
        cluster_id: Some(legacy.cluster_id),
        producer_id_block_end: (legacy.next_producer_id_block > 0)
            .then(|| legacy.next_producer_id_block - 1),
        ..Persistent::default()
    };
    for (name, topic) in legacy.topics {
        let partitions = (0..topic.partitions)
            .map(|p| (p, ReplicaAssignment::new(vec![broker_id])))
            .collect();
        if !topic.configs.is_empty() {
            state
                .configs
                .entry(config_type::TOPIC.to_string())
                .or_default()
                .insert(name.clone(), topic.configs);
        }
        state.topics.insert(
            name,
            StoredTopic {
                topic_id: topic.topic_id,
                partitions,
                version: 0,
            },
        );
    }
    info!(path = %path.display(), topics = state.topics.len(), "converted metadata written by an older Strata");
    Ok(Some(state))
}

impl StoredState {
    fn to_partition_state(&self) -> PartitionState {
        PartitionState {
            leader_and_isr: LeaderAndIsr {
                leader: self.leader,
                leader_epoch: self.leader_epoch,
                isr: self.isr.clone(),
                leader_recovery_state: self.leader_recovery_state,
                partition_epoch: self.version,
            },
            controller_epoch: self.controller_epoch,
        }
    }

    fn from_partition_state(state: &PartitionState, version: i32) -> StoredState {
        let l = &state.leader_and_isr;
        StoredState {
            leader: l.leader,
            leader_epoch: l.leader_epoch,
            isr: l.isr.clone(),
            leader_recovery_state: l.leader_recovery_state,
            controller_epoch: state.controller_epoch,
            version,
        }
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    futures::future::ready(value).boxed()
}

impl MetadataStore for LocalMetadataStore {
    fn subscribe(&self) -> broadcast::Receiver<MetadataEvent> {
        self.events.subscribe()
    }

    fn is_shared(&self) -> bool {
        false
    }

    fn cluster_id(&self, proposed: String) -> BoxFuture<'_, Result<String, MetadataError>> {
        ready(self.mutate(|_, p| Ok(p.cluster_id.get_or_insert(proposed).clone())))
    }

    fn register_broker(
        &self,
        registration: BrokerRegistration,
    ) -> BoxFuture<'_, Result<i64, MetadataError>> {
        let result = self.mutate(|inner, p| {
            if inner.brokers.contains_key(&registration.id) {
                return Err(MetadataError::BrokerIdInUse(registration.id));
            }
            p.last_broker_epoch += 1;
            let epoch = p.last_broker_epoch;
            inner.brokers.insert(
                registration.id,
                BrokerRegistration {
                    epoch,
                    ..registration
                },
            );
            Ok(epoch)
        });
        if result.is_ok() {
            self.emit(MetadataEvent::BrokersChanged);
        }
        ready(result)
    }

    fn brokers(&self) -> BoxFuture<'_, Result<Vec<BrokerRegistration>, MetadataError>> {
        ready(Ok(self.lock().brokers.values().cloned().collect()))
    }

    fn controller_id(&self) -> BoxFuture<'_, Result<Option<i32>, MetadataError>> {
        ready(Ok(self.lock().controller))
    }

    fn elect_controller(
        &self,
        broker_id: i32,
    ) -> BoxFuture<'_, Result<Option<ControllerFence>, MetadataError>> {
        let result = self.mutate(|inner, p| {
            if inner.controller.is_some() {
                return Ok(None);
            }
            let (epoch, version) = match p.controller_epoch {
                Some((e, v)) => (e + 1, v + 1),
                None => (1, 1),
            };
            p.controller_epoch = Some((epoch, version));
            inner.controller = Some(broker_id);
            Ok(Some(ControllerFence {
                epoch,
                epoch_zk_version: version,
            }))
        });
        if matches!(result, Ok(Some(_))) {
            self.emit(MetadataEvent::ControllerChanged);
        }
        ready(result)
    }

    fn topics(&self) -> BoxFuture<'_, Result<Vec<String>, MetadataError>> {
        ready(Ok(self.lock().persistent.topics.keys().cloned().collect()))
    }

    fn topic_assignments(
        &self,
        topics: Vec<String>,
    ) -> BoxFuture<'_, Result<BTreeMap<String, TopicAssignment>, MetadataError>> {
        let inner = self.lock();
        let out = topics
            .into_iter()
            .filter_map(|t| {
                let stored = inner.persistent.topics.get(&t)?;
                Some((
                    t,
                    TopicAssignment {
                        topic_id: stored.topic_id,
                        partitions: stored.partitions.clone(),
                        version: stored.version,
                    },
                ))
            })
            .collect();
        ready(Ok(out))
    }

    fn create_topic(
        &self,
        topic: String,
        topic_id: Uuid,
        assignment: BTreeMap<i32, Vec<i32>>,
        configs: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<bool, MetadataError>> {
        let result = self.mutate(|_, p| {
            if p.topics.contains_key(&topic) {
                return Ok(false);
            }
            let configs_of_type = p.configs.entry(config_type::TOPIC.to_string()).or_default();
            if configs.is_empty() {
                configs_of_type.remove(&topic);
            } else {
                configs_of_type.insert(topic.clone(), configs);
            }
            p.topics.insert(
                topic.clone(),
                StoredTopic {
                    topic_id,
                    partitions: assignment
                        .into_iter()
                        .map(|(p, r)| (p, ReplicaAssignment::new(r)))
                        .collect(),
                    version: 0,
                },
            );
            Ok(true)
        });
        if matches!(result, Ok(true)) {
            self.emit(MetadataEvent::TopicsChanged);
        }
        ready(result)
    }

    fn set_topic_assignment(
        &self,
        topic: String,
        assignment: TopicAssignment,
        fence: Option<ControllerFence>,
    ) -> BoxFuture<'_, Result<i32, MetadataError>> {
        let result = self.mutate(|_, p| {
            if let Some(fence) = &fence {
                Self::check_fence(p, fence)?;
            }
            let path = format!("/brokers/topics/{topic}");
            let stored = p
                .topics
                .get_mut(&topic)
                .ok_or_else(|| MetadataError::NoNode(path.clone()))?;
            if stored.version != assignment.version {
                return Err(MetadataError::BadVersion(path));
            }
            stored.topic_id = assignment.topic_id;
            stored.partitions = assignment.partitions;
            stored.version += 1;
            Ok(stored.version)
        });
        if result.is_ok() {
            self.emit(MetadataEvent::TopicChanged(topic));
        }
        ready(result)
    }

    fn partition_states(
        &self,
        partitions: Vec<TopicPartition>,
    ) -> BoxFuture<'_, Result<BTreeMap<TopicPartition, PartitionState>, MetadataError>> {
        let inner = self.lock();
        let out = partitions
            .into_iter()
            .filter_map(|(t, p)| {
                let state = inner.persistent.partition_states.get(&t)?.get(&p)?;
                Some(((t, p), state.to_partition_state()))
            })
            .collect();
        ready(Ok(out))
    }

    fn create_partition_states(
        &self,
        fence: ControllerFence,
        states: Vec<(TopicPartition, PartitionState)>,
    ) -> BoxFuture<'_, Result<Vec<CreatedState>, MetadataError>> {
        ready(self.mutate(|_, p| {
            Self::check_fence(p, &fence)?;
            let mut out = Vec::with_capacity(states.len());
            for ((topic, partition), state) in states {
                let of_topic = p.partition_states.entry(topic.clone()).or_default();
                let result = match of_topic.entry(partition) {
                    std::collections::btree_map::Entry::Occupied(_) => {
                        Err(MetadataError::NodeExists(format!(
                            "/brokers/topics/{topic}/partitions/{partition}/state"
                        )))
                    }
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(StoredState::from_partition_state(&state, 0));
                        Ok(0)
                    }
                };
                out.push(((topic, partition), result));
            }
            Ok(out)
        }))
    }

    fn update_partition_states(
        &self,
        fence: ControllerFence,
        states: Vec<(TopicPartition, PartitionState)>,
    ) -> BoxFuture<'_, Result<Vec<(TopicPartition, StateWrite)>, MetadataError>> {
        ready(self.mutate(|_, p| {
            Self::check_fence(p, &fence)?;
            let mut out = Vec::with_capacity(states.len());
            for ((topic, partition), state) in states {
                let existing = p
                    .partition_states
                    .get_mut(&topic)
                    .and_then(|t| t.get_mut(&partition));
                let result = match existing {
                    None => StateWrite::NoNode,
                    Some(current) if current.version != state.leader_and_isr.partition_epoch => {
                        StateWrite::BadVersion
                    }
                    Some(current) => {
                        *current = StoredState::from_partition_state(&state, current.version + 1);
                        StateWrite::Updated(current.version)
                    }
                };
                out.push(((topic, partition), result));
            }
            Ok(out)
        }))
    }

    fn topic_deletions(&self) -> BoxFuture<'_, Result<Vec<String>, MetadataError>> {
        ready(Ok(self
            .lock()
            .persistent
            .deletions
            .iter()
            .cloned()
            .collect()))
    }

    fn mark_topics_for_deletion(
        &self,
        topics: Vec<String>,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        let result = self.mutate(|_, p| {
            p.deletions.extend(topics);
            Ok(())
        });
        if result.is_ok() {
            self.emit(MetadataEvent::TopicDeletionsChanged);
        }
        ready(result)
    }

    fn delete_topic(
        &self,
        topic: String,
        fence: ControllerFence,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        let result = self.mutate(|_, p| {
            Self::check_fence(p, &fence)?;
            p.topics.remove(&topic);
            p.partition_states.remove(&topic);
            if let Some(c) = p.configs.get_mut(config_type::TOPIC) {
                c.remove(&topic);
            }
            p.deletions.remove(&topic);
            Ok(())
        });
        if result.is_ok() {
            self.emit(MetadataEvent::TopicsChanged);
            self.emit(MetadataEvent::TopicDeletionsChanged);
        }
        ready(result)
    }

    fn remove_deletion_markers(
        &self,
        topics: Vec<String>,
        fence: ControllerFence,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        let result = self.mutate(|_, p| {
            Self::check_fence(p, &fence)?;
            for t in &topics {
                p.deletions.remove(t);
            }
            Ok(())
        });
        if result.is_ok() {
            self.emit(MetadataEvent::TopicDeletionsChanged);
        }
        ready(result)
    }

    fn acls(&self) -> BoxFuture<'_, Result<AclSet, MetadataError>> {
        let inner = self.lock();
        let mut set = AclSet::default();
        for (path, json) in &inner.persistent.acls {
            let (Some(pattern), Ok(entries)) = (
                acl::pattern_from_znode(path),
                acl::decode_acls(json.as_bytes()),
            ) else {
                continue;
            };
            set.acls.insert(pattern, entries);
        }
        ready(Ok(set))
    }

    fn update_acls(
        &self,
        pattern: ResourcePattern,
        add: BTreeSet<AclEntry>,
        remove: BTreeSet<AclEntry>,
    ) -> BoxFuture<'_, Result<BTreeSet<AclEntry>, MetadataError>> {
        let path = pattern.znode();
        let result = self.mutate(|_, p| {
            let mut entries = p
                .acls
                .get(&path)
                .and_then(|j| acl::decode_acls(j.as_bytes()).ok())
                .unwrap_or_default();
            entries.extend(add);
            entries.retain(|e| !remove.contains(e));
            if entries.is_empty() {
                p.acls.remove(&path);
            } else {
                let json = String::from_utf8(acl::encode_acls(&entries)).expect("JSON is UTF-8");
                p.acls.insert(path.clone(), json);
            }
            Ok(entries)
        });
        if result.is_ok() {
            self.emit(MetadataEvent::AclsChanged);
        }
        ready(result)
    }

    fn entity_names(
        &self,
        entity_type: String,
    ) -> BoxFuture<'_, Result<Vec<String>, MetadataError>> {
        let inner = self.lock();
        let names = inner
            .persistent
            .configs
            .get(&entity_type)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        ready(Ok(names))
    }

    fn entity_configs(
        &self,
        entity_type: String,
        entity_name: String,
    ) -> BoxFuture<'_, Result<BTreeMap<String, String>, MetadataError>> {
        let inner = self.lock();
        let configs = inner
            .persistent
            .configs
            .get(&entity_type)
            .and_then(|m| m.get(&entity_name))
            .cloned()
            .unwrap_or_default();
        ready(Ok(configs))
    }

    fn set_entity_configs(
        &self,
        entity_type: String,
        entity_name: String,
        configs: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        let result = self.mutate(|_, p| {
            let of_type = p.configs.entry(entity_type.clone()).or_default();
            if configs.is_empty() {
                of_type.remove(&entity_name);
            } else {
                of_type.insert(entity_name.clone(), configs);
            }
            Ok(())
        });
        if result.is_ok() {
            self.emit(MetadataEvent::ConfigChanged {
                entity_type,
                entity_name,
            });
        }
        ready(result)
    }

    fn isr_change_notifications(
        &self,
    ) -> BoxFuture<'_, Result<Vec<IsrChangeNotification>, MetadataError>> {
        // Only brokers without AlterPartition write these; a local cluster has none.
        ready(Ok(Vec::new()))
    }

    fn delete_isr_change_notifications(
        &self,
        _names: Vec<String>,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        ready(Ok(()))
    }

    fn allocate_producer_ids(
        &self,
        _broker_id: i32,
        block_size: i32,
    ) -> BoxFuture<'_, Result<i64, MetadataError>> {
        ready(self.mutate(|_, p| {
            let first = p.producer_id_block_end.map_or(0, |end| end + 1);
            p.producer_id_block_end = Some(first + i64::from(block_size) - 1);
            Ok(first)
        }))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        let mut inner = self.lock();
        inner.brokers.clear();
        inner.controller = None;
        ready(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{BrokerEndpoint, SecurityProtocol};

    fn registration(id: i32) -> BrokerRegistration {
        BrokerRegistration {
            id,
            endpoints: vec![BrokerEndpoint {
                listener: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092,
                security_protocol: SecurityProtocol::Plaintext,
            }],
            rack: None,
            epoch: -1,
        }
    }

    #[tokio::test]
    async fn facts_survive_reopen_and_ephemerals_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalMetadataStore::open(dir.path(), 0).unwrap();
        let cluster = store.cluster_id("c1".into()).await.unwrap();
        assert_eq!(store.cluster_id("c2".into()).await.unwrap(), cluster);
        let epoch = store.register_broker(registration(0)).await.unwrap();
        assert!(matches!(
            store.register_broker(registration(0)).await,
            Err(MetadataError::BrokerIdInUse(0))
        ));
        let fence = store.elect_controller(0).await.unwrap().unwrap();
        assert_eq!(store.elect_controller(0).await.unwrap(), None);
        let id = Uuid::new_v4();
        assert!(
            store
                .create_topic(
                    "t".into(),
                    id,
                    BTreeMap::from([(0, vec![0])]),
                    BTreeMap::from([("retention.ms".into(), "5".into())])
                )
                .await
                .unwrap()
        );
        let tp = ("t".to_string(), 0);
        let state = PartitionState {
            leader_and_isr: LeaderAndIsr::initial(0, vec![0]),
            controller_epoch: fence.epoch,
        };
        let created = store
            .create_partition_states(fence, vec![(tp.clone(), state.clone())])
            .await
            .unwrap();
        assert!(matches!(created[0].1, Ok(0)));
        let mut next = state.clone();
        next.leader_and_isr = next.leader_and_isr.new_leader_and_isr(0, vec![0]);
        let written = store
            .update_partition_states(fence, vec![(tp.clone(), next.clone())])
            .await
            .unwrap();
        assert_eq!(written[0].1, StateWrite::Updated(1));
        // The same write again is stale: its expected version is 0, the znode's is 1.
        let stale = store
            .update_partition_states(fence, vec![(tp.clone(), next)])
            .await
            .unwrap();
        assert_eq!(stale[0].1, StateWrite::BadVersion);
        let first = store.allocate_producer_ids(0, 1000).await.unwrap();
        drop(store);

        let store = LocalMetadataStore::open(dir.path(), 0).unwrap();
        assert_eq!(store.cluster_id("other".into()).await.unwrap(), cluster);
        assert!(store.brokers().await.unwrap().is_empty());
        assert!(store.register_broker(registration(0)).await.unwrap() > epoch);
        // A new election fences the old controller's writes.
        let new_fence = store.elect_controller(0).await.unwrap().unwrap();
        assert!(new_fence.epoch > fence.epoch);
        assert!(matches!(
            store.update_partition_states(fence, vec![]).await,
            Err(MetadataError::ControllerMoved { .. })
        ));
        let states = store.partition_states(vec![tp.clone()]).await.unwrap();
        assert_eq!(states[&tp].leader_and_isr.leader_epoch, 1);
        assert_eq!(
            store
                .entity_configs("topics".into(), "t".into())
                .await
                .unwrap()["retention.ms"],
            "5"
        );
        assert_eq!(
            store.allocate_producer_ids(0, 1000).await.unwrap(),
            first + 1000
        );
    }

    #[tokio::test]
    async fn converts_an_older_metadata_file() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid::new_v4();
        std::fs::write(
            dir.path().join(LEGACY_FILE_NAME),
            serde_json::json!({
                "cluster_id": "legacy-cluster",
                "topics": {"orders": {"name": "orders", "topic_id": id, "partitions": 2,
                    "replication_factor": 1, "configs": {"cleanup.policy": "compact"}, "internal": false}},
                "next_producer_id_block": 3000
            })
            .to_string(),
        )
        .unwrap();
        let store = LocalMetadataStore::open(dir.path(), 7).unwrap();
        assert_eq!(
            store.cluster_id("x".into()).await.unwrap(),
            "legacy-cluster"
        );
        let topics = store
            .topic_assignments(vec!["orders".into()])
            .await
            .unwrap();
        assert_eq!(topics["orders"].topic_id, id);
        assert_eq!(topics["orders"].partitions[&1].replicas, vec![7]);
        assert_eq!(store.allocate_producer_ids(7, 1000).await.unwrap(), 3000);
        assert_eq!(
            store
                .entity_configs("topics".into(), "orders".into())
                .await
                .unwrap()["cleanup.policy"],
            "compact"
        );
    }
}
