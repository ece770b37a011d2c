//! Cluster metadata kept by this broker: topics (id, partition count, config overrides),
//! the cluster id and the producer-id allocator.
//!
//! Apache Kafka keeps this in ZooKeeper (`/brokers/topics/<topic>`, `/config/topics/<topic>`,
//! `/latest_producer_id_block`). A single-node Strata broker keeps the same facts in
//! `<first log dir>/strata-metadata.json`, written atomically (temp file, fsync, rename)
//! on every change. When brokers move their metadata to the coordinator, this module is
//! the seam: the same operations, backed by znodes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One topic as the cluster knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicMetadata {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: i32,
    pub replication_factor: i16,
    /// Topic-level config overrides (`retention.ms`, ...), as the user gave them.
    pub configs: BTreeMap<String, String>,
    /// Internal topics (`__consumer_offsets`) are hidden from some listings and cannot be
    /// deleted by clients.
    #[serde(default)]
    pub internal: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct State {
    cluster_id: String,
    topics: BTreeMap<String, TopicMetadata>,
    /// Producer ids below this value may have been handed out; allocation resumes here.
    next_producer_id_block: i64,
}

/// How many producer ids are reserved with one metadata write (Kafka reserves 1000 per
/// block in ZooKeeper for the same reason: one durable write per many `InitProducerId`s).
const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("cannot write cluster metadata to {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cluster metadata file {path} is unreadable: {reason}")]
    Corrupt { path: String, reason: String },
}

/// The durable store of topics and allocators.
pub struct MetadataStore {
    path: PathBuf,
    state: Mutex<State>,
    /// Producer ids reserved in memory: (next to hand out, end of the reserved block).
    producer_ids: Mutex<(i64, i64)>,
}

impl MetadataStore {
    /// Opens (or creates) the store in `dir`, generating a cluster id on first start.
    pub fn open(
        dir: &Path,
        configured_cluster_id: Option<&str>,
    ) -> Result<MetadataStore, MetadataError> {
        let path = dir.join("strata-metadata.json");
        let state = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<State>(&bytes).map_err(|e| MetadataError::Corrupt {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State {
                cluster_id: configured_cluster_id
                    .map(str::to_string)
                    .unwrap_or_else(new_cluster_id),
                topics: BTreeMap::new(),
                next_producer_id_block: 0,
            },
            Err(source) => {
                return Err(MetadataError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let store = MetadataStore {
            path,
            producer_ids: Mutex::new((state.next_producer_id_block, state.next_producer_id_block)),
            state: Mutex::new(state),
        };
        store.persist(&store.state.lock().expect("metadata lock"))?;
        Ok(store)
    }

    pub fn cluster_id(&self) -> String {
        self.state.lock().expect("metadata lock").cluster_id.clone()
    }

    pub fn topic(&self, name: &str) -> Option<TopicMetadata> {
        self.state
            .lock()
            .expect("metadata lock")
            .topics
            .get(name)
            .cloned()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<TopicMetadata> {
        self.state
            .lock()
            .expect("metadata lock")
            .topics
            .values()
            .find(|t| t.topic_id == id)
            .cloned()
    }

    pub fn topics(&self) -> Vec<TopicMetadata> {
        self.state
            .lock()
            .expect("metadata lock")
            .topics
            .values()
            .cloned()
            .collect()
    }

    /// Adds a topic; returns false when one of that name exists already.
    pub fn create_topic(&self, topic: TopicMetadata) -> Result<bool, MetadataError> {
        let mut state = self.state.lock().expect("metadata lock");
        if state.topics.contains_key(&topic.name) {
            return Ok(false);
        }
        state.topics.insert(topic.name.clone(), topic);
        self.persist(&state)?;
        Ok(true)
    }

    /// Replaces a topic's metadata (partition count or config change).
    pub fn update_topic(&self, topic: TopicMetadata) -> Result<(), MetadataError> {
        let mut state = self.state.lock().expect("metadata lock");
        state.topics.insert(topic.name.clone(), topic);
        self.persist(&state)
    }

    pub fn delete_topic(&self, name: &str) -> Result<Option<TopicMetadata>, MetadataError> {
        let mut state = self.state.lock().expect("metadata lock");
        let removed = state.topics.remove(name);
        if removed.is_some() {
            self.persist(&state)?;
        }
        Ok(removed)
    }

    /// Hands out a new producer id, never one given out before (even across restarts).
    pub fn next_producer_id(&self) -> Result<i64, MetadataError> {
        let mut ids = self.producer_ids.lock().expect("producer id lock");
        if ids.0 >= ids.1 {
            let mut state = self.state.lock().expect("metadata lock");
            let start = state.next_producer_id_block.max(ids.1);
            state.next_producer_id_block = start + PRODUCER_ID_BLOCK_SIZE;
            self.persist(&state)?;
            *ids = (start, start + PRODUCER_ID_BLOCK_SIZE);
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    fn persist(&self, state: &State) -> Result<(), MetadataError> {
        let io = |source| MetadataError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(state).expect("metadata serializes");
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// A cluster id in Kafka's form: 16 random bytes, URL-safe base64 without padding.
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = *Uuid::new_v4().as_bytes();
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

/// Kafka's topic name rules: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-' ('{c}')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_producer_ids_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path(), None).unwrap();
        let cluster = store.cluster_id();
        assert_eq!(cluster.len(), 22);
        let topic = TopicMetadata {
            name: "orders".into(),
            topic_id: Uuid::new_v4(),
            partitions: 3,
            replication_factor: 1,
            configs: BTreeMap::from([("retention.ms".into(), "1000".into())]),
            internal: false,
        };
        assert!(store.create_topic(topic.clone()).unwrap());
        assert!(!store.create_topic(topic.clone()).unwrap());
        let first = store.next_producer_id().unwrap();
        let second = store.next_producer_id().unwrap();
        assert_eq!(second, first + 1);
        drop(store);

        let store = MetadataStore::open(dir.path(), None).unwrap();
        assert_eq!(store.cluster_id(), cluster);
        assert_eq!(store.topic("orders"), Some(topic));
        let after_restart = store.next_producer_id().unwrap();
        assert!(after_restart > second, "producer ids are never reused");
    }

    #[test]
    fn topic_name_rules() {
        assert!(validate_topic_name("my-topic_1.v2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("bad topic").is_err());
        assert!(validate_topic_name("bad/topic").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
    }
}
