//! Broker configuration: a Kafka-style `server.properties` file with Kafka's key names.
//!
//! Every key the broker uses is handled in [`KafkaConfig::set`]; a value that does not
//! parse or is out of range is refused with an error naming the key. Any other key that
//! Apache Kafka 3.9 defines ([`kafka_keys`]) is accepted and reported once as not used by
//! Strata, so an existing Kafka `server.properties` starts a Strata broker; a key Kafka
//! does not know stops start-up, naming the closest real key. Values fall back to Apache
//! Kafka's defaults, except the listener, which defaults to `PLAINTEXT://127.0.0.1:9092`
//! so a laptop run needs no file at all.

pub mod dynamic;
pub mod kafka_keys;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use strata_storage::{CleanupPolicy, LogConfig};

use crate::metadata::SecurityProtocol;

/// A configuration problem, always naming the key (and the file line when read from a file).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}:{line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
    #[error("unknown configuration key '{key}'{}", suggestion.as_ref().map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default())]
    UnknownKey {
        key: String,
        suggestion: Option<String>,
    },
    #[error("invalid value '{value}' for configuration key '{key}': {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("cannot read configuration file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// A listener as written in `listeners`: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub listener_name: String,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    fn parse(key: &str, value: &str) -> Result<Endpoint, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let (name, rest) = value
            .split_once("://")
            .ok_or_else(|| invalid("expected NAME://host:port"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected NAME://host:port"))?;
        let port: u16 = port.parse().map_err(|_| invalid("port is not a number"))?;
        if name.is_empty() {
            return Err(invalid("listener name is empty"));
        }
        Ok(Endpoint {
            listener_name: name.to_string(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
        })
    }

    /// The address to bind: an empty host means all interfaces, as in Kafka.
    pub fn bind_address(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        crate::network::host_port(host, self.port)
    }
}

/// The broker's configuration. Field names follow the Kafka keys they come from.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `broker.id` (also accepted as `node.id`).
    pub broker_id: i32,
    /// `listeners`: where the broker accepts clients.
    pub listeners: Vec<Endpoint>,
    /// `advertised.listeners`: what Metadata tells clients; defaults to `listeners`.
    pub advertised_listeners: Option<Vec<Endpoint>>,
    /// `log.dirs` (or `log.dir`): where partition directories live.
    pub log_dirs: Vec<PathBuf>,
    /// `num.partitions`: partitions of an auto-created topic or a CreateTopics asking for -1.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `socket.request.max.bytes`: larger frames close the connection.
    pub socket_request_max_bytes: usize,
    /// `max.connections`: connections beyond this wait to be accepted (Kafka's default:
    /// no limit but the open-file limit).
    pub max_connections: usize,
    /// `max.connections.per.ip`: a client address's connections beyond this are closed
    /// at accept.
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides`: `host:count` pairs (an IP address or a host
    /// name, resolved at start).
    pub max_connections_per_ip_overrides: Vec<(String, usize)>,
    /// `connections.max.idle.ms`: a connection that neither sends a whole request nor
    /// takes a response for this long is closed.
    pub connections_max_idle_ms: u64,
    /// `queued.max.request.bytes`: request bytes the broker holds at once across all
    /// connections, or `None` (Kafka's -1) for no bound. A connection whose request does
    /// not fit waits before reading it.
    pub queued_max_request_bytes: Option<u64>,
    /// `max.incremental.fetch.session.cache.slots`: fetch sessions (KIP-227) the broker
    /// keeps; 0 keeps none, and every fetch is a full one.
    pub max_incremental_fetch_session_cache_slots: usize,
    /// `log.retention.check.interval.ms`: how often retention runs.
    pub log_retention_check_interval_ms: u64,
    /// `metrics.port`: the Prometheus `/metrics` HTTP port (0 disables it).
    pub metrics_port: u16,
    /// `metrics.host`: the address the metrics endpoint binds; by default the first
    /// listener's host, so several brokers on one host (each on its own address) do not
    /// collide.
    pub metrics_host: Option<String>,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.retention.minutes`.
    pub offsets_retention_minutes: i64,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: i32,
    /// `group.max.size`.
    pub group_max_size: i32,
    /// `log.cleaner.backoff.ms`: how often the cleaner looks for compactable logs.
    pub log_cleaner_backoff_ms: u64,
    /// `cluster.id`: normally generated once and kept in `meta.properties`.
    pub cluster_id: Option<String>,
    /// `zookeeper.connect`: `host:port[,host:port][/chroot]`. Without it the broker is a
    /// cluster of one with its metadata in a local file.
    pub zookeeper_connect: Option<String>,
    /// `zookeeper.session.timeout.ms`.
    pub zookeeper_session_timeout_ms: u64,
    /// `zookeeper.connection.timeout.ms` (defaults to the session timeout).
    pub zookeeper_connection_timeout_ms: Option<u64>,
    /// `listener.security.protocol.map`: listener name → protocol.
    pub listener_security_protocol_map: BTreeMap<String, String>,
    /// `inter.broker.listener.name`.
    pub inter_broker_listener_name: Option<String>,
    /// `security.inter.broker.protocol` (used when no listener name is given).
    pub security_inter_broker_protocol: String,
    /// `broker.rack`.
    pub broker_rack: Option<String>,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: i64,
    /// `replica.fetch.wait.max.ms`.
    pub replica_fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes`.
    pub replica_fetch_min_bytes: i32,
    /// `replica.fetch.max.bytes`.
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`.
    pub replica_fetch_response_max_bytes: i32,
    /// `replica.fetch.backoff.ms`.
    pub replica_fetch_backoff_ms: u64,
    /// `replica.socket.timeout.ms`.
    pub replica_socket_timeout_ms: u64,
    /// `num.replica.fetchers`.
    pub num_replica_fetchers: usize,
    /// `replica.high.watermark.checkpoint.interval.ms`.
    pub replica_high_watermark_checkpoint_interval_ms: u64,
    /// `controller.socket.timeout.ms`.
    pub controller_socket_timeout_ms: u64,
    /// `socket.connection.setup.timeout.ms`: how long connecting to another broker may
    /// take before the attempt is abandoned and retried.
    pub socket_connection_setup_timeout_ms: u64,
    /// `replication.quota.window.num`: windows a replication throttle is measured over.
    pub replication_quota_window_num: usize,
    /// `replication.quota.window.size.seconds`: the length of one window.
    pub replication_quota_window_size_seconds: u64,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election_enable: bool,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.per.broker.percentage`.
    pub leader_imbalance_per_broker_percentage: i32,
    /// `leader.imbalance.check.interval.seconds`.
    pub leader_imbalance_check_interval_seconds: u64,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `controlled.shutdown.enable`.
    pub controlled_shutdown_enable: bool,
    /// `controlled.shutdown.max.retries`.
    pub controlled_shutdown_max_retries: u32,
    /// `controlled.shutdown.retry.backoff.ms`.
    pub controlled_shutdown_retry_backoff_ms: u64,
    /// `offsets.topic.replication.factor`.
    pub offsets_topic_replication_factor: i16,
    /// `offsets.commit.timeout.ms`.
    pub offsets_commit_timeout_ms: u64,
    /// `transaction.state.log.num.partitions`.
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.state.log.replication.factor`.
    pub transaction_state_log_replication_factor: i16,
    /// `transaction.state.log.min.isr`.
    pub transaction_state_log_min_isr: i32,
    /// `transaction.state.log.segment.bytes`.
    pub transaction_state_log_segment_bytes: u64,
    /// `transaction.max.timeout.ms`.
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    pub transactional_id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: u64,
    /// `request.timeout.ms`: how long a WriteTxnMarkers waits for its markers to be
    /// replicated.
    pub request_timeout_ms: u64,
    /// Kafka keys given that Strata does not use, reported once at start-up.
    pub unused: Vec<String>,
    /// Topic-level defaults (`log.segment.bytes`, `log.retention.ms`, ...).
    pub log: LogConfig,
    /// Keys given explicitly, kept for DescribeConfigs on the broker resource.
    pub explicit: BTreeMap<String, String>,
}

impl KafkaConfig {
    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.request_timeout_ms)
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            broker_id: 0,
            listeners: vec![Endpoint {
                listener_name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092,
            }],
            advertised_listeners: None,
            log_dirs: vec![PathBuf::from("/tmp/kafka-logs")],
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            socket_request_max_bytes: 104_857_600,
            max_connections: i32::MAX as usize,
            max_connections_per_ip: i32::MAX as usize,
            max_connections_per_ip_overrides: Vec::new(),
            connections_max_idle_ms: 600_000,
            queued_max_request_bytes: None,
            max_incremental_fetch_session_cache_slots: 1000,
            log_retention_check_interval_ms: 300_000,
            metrics_port: 9404,
            metrics_host: None,
            offsets_topic_num_partitions: 50,
            offsets_retention_minutes: 10_080,
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_max_size: i32::MAX,
            log_cleaner_backoff_ms: 15_000,
            cluster_id: None,
            zookeeper_connect: None,
            zookeeper_session_timeout_ms: 18_000,
            zookeeper_connection_timeout_ms: None,
            listener_security_protocol_map: default_protocol_map(),
            inter_broker_listener_name: None,
            security_inter_broker_protocol: "PLAINTEXT".into(),
            broker_rack: None,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_min_bytes: 1,
            replica_fetch_max_bytes: 1_048_576,
            replica_fetch_response_max_bytes: 10_485_760,
            replica_fetch_backoff_ms: 1_000,
            replica_socket_timeout_ms: 30_000,
            num_replica_fetchers: 1,
            replica_high_watermark_checkpoint_interval_ms: 5_000,
            controller_socket_timeout_ms: 30_000,
            socket_connection_setup_timeout_ms: 10_000,
            replication_quota_window_num: 11,
            replication_quota_window_size_seconds: 1,
            unclean_leader_election_enable: false,
            auto_leader_rebalance_enable: true,
            leader_imbalance_per_broker_percentage: 10,
            leader_imbalance_check_interval_seconds: 300,
            delete_topic_enable: true,
            controlled_shutdown_enable: true,
            controlled_shutdown_max_retries: 3,
            controlled_shutdown_retry_backoff_ms: 5_000,
            offsets_topic_replication_factor: 3,
            offsets_commit_timeout_ms: 5_000,
            transaction_state_log_num_partitions: 50,
            transaction_state_log_replication_factor: 3,
            transaction_state_log_min_isr: 2,
            transaction_state_log_segment_bytes: 104_857_600,
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 604_800_000,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            request_timeout_ms: 30_000,
            unused: Vec::new(),
            log: LogConfig::default(),
            explicit: BTreeMap::new(),
        }
    }
}

/// Kafka's default `listener.security.protocol.map`: each protocol name maps to itself.
fn default_protocol_map() -> BTreeMap<String, String> {
    ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
        .into_iter()
        .map(|p| (p.to_string(), p.to_string()))
        .collect()
}

/// The known key closest to `key` by edit distance, if it is plausibly a typo of it.
fn closest_key(key: &str) -> Option<String> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1; b.len() + 1];
            for (j, cb) in b.iter().enumerate() {
                cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1);
            }
            prev = cur;
        }
        prev[b.len()]
    }
    kafka_keys::BROKER_KEYS
        .iter()
        .chain(STRATA_KEYS)
        .map(|k| (distance(key, k), *k))
        .min()
        .filter(|(d, _)| *d <= key.len().max(4) / 3)
        .map(|(_, k)| k.to_string())
}

/// Keys Strata adds to Kafka's.
const STRATA_KEYS: &[&str] = &["metrics.port", "metrics.host"];

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse::<T>()
        .map_err(|_| ConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: "not a valid number".to_string(),
        })
}

/// `host:count,host:count`, as Kafka's `max.connections.per.ip.overrides`.
fn parse_connection_overrides(key: &str, value: &str) -> Result<Vec<(String, usize)>, ConfigError> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let parsed = item
            .rsplit_once(':')
            .and_then(|(host, n)| Some((host.trim(), n.trim().parse::<usize>().ok()?)))
            .filter(|(host, _)| !host.is_empty());
        let Some((host, n)) = parsed else {
            return Err(ConfigError::InvalidValue {
                key: key.to_string(),
                value: value.to_string(),
                reason: format!("'{item}' is not host:count"),
            });
        };
        out.push((
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            n,
        ));
    }
    Ok(out)
}

fn parse_at_least<T>(key: &str, value: &str, min: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let v: T = parse_num(key, value)?;
    if v < min {
        return Err(ConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: format!("must be at least {min}"),
        });
    }
    Ok(v)
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: "expected true or false".to_string(),
        }),
    }
}

/// Parses a `cleanup.policy` value (`delete`, `compact`, or both comma-separated).
pub fn parse_cleanup_policy(key: &str, value: &str) -> Result<CleanupPolicy, ConfigError> {
    CleanupPolicy::parse(value).ok_or_else(|| ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: "expected delete, compact or compact,delete".to_string(),
    })
}

/// Applies one topic-level config (Kafka's topic key names) to a `LogConfig`.
/// Used for topic configs in CreateTopics / IncrementalAlterConfigs and for the
/// broker-level `log.*` defaults, so both validate the same way.
pub fn apply_topic_config(
    config: &mut LogConfig,
    key: &str,
    value: &str,
) -> Result<(), ConfigError> {
    match key {
        "segment.bytes" => config.segment_bytes = parse_at_least::<u64>(key, value, 14)?,
        "segment.ms" => config.segment_ms = parse_at_least::<i64>(key, value, 1)?,
        "segment.index.bytes" => config.segment_index_bytes = parse_at_least::<u32>(key, value, 8)?,
        "index.interval.bytes" => {
            config.index_interval_bytes = parse_at_least::<u32>(key, value, 0)?
        }
        "retention.ms" => config.retention_ms = parse_at_least::<i64>(key, value, -1)?,
        "retention.bytes" => config.retention_bytes = parse_at_least::<i64>(key, value, -1)?,
        "max.message.bytes" => config.max_message_bytes = parse_at_least::<u32>(key, value, 0)?,
        "flush.messages" => config.flush_interval_messages = parse_at_least::<u64>(key, value, 1)?,
        "flush.ms" => config.flush_interval_ms = parse_at_least::<i64>(key, value, 0)?,
        "cleanup.policy" => config.cleanup_policy = parse_cleanup_policy(key, value)?,
        "min.insync.replicas" => config.min_insync_replicas = parse_at_least::<i32>(key, value, 1)?,
        "file.delete.delay.ms" => {
            config.file_delete_delay_ms = parse_at_least::<i64>(key, value, 0)?
        }
        "delete.retention.ms" => config.delete_retention_ms = parse_at_least::<i64>(key, value, 0)?,
        "min.cleanable.dirty.ratio" => {
            let ratio: f64 = parse_num(key, value)?;
            if !(0.0..=1.0).contains(&ratio) {
                return Err(ConfigError::InvalidValue {
                    key: key.to_string(),
                    value: value.to_string(),
                    reason: "must be between 0 and 1".to_string(),
                });
            }
            config.min_cleanable_dirty_ratio = ratio;
        }
        "min.compaction.lag.ms" => {
            config.min_compaction_lag_ms = parse_at_least::<i64>(key, value, 0)?
        }
        _ => {
            return Err(ConfigError::UnknownKey {
                key: key.to_string(),
                suggestion: None,
            });
        }
    }
    Ok(())
}

/// The topic-level config keys the broker supports, with the broker key that supplies
/// the default, in the order DescribeConfigs lists them.
pub const TOPIC_CONFIG_KEYS: &[(&str, &str)] = &[
    ("cleanup.policy", "log.cleanup.policy"),
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    ("file.delete.delay.ms", "log.segment.delete.delay.ms"),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("index.interval.bytes", "log.index.interval.bytes"),
    ("max.message.bytes", "message.max.bytes"),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
    ),
    ("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("retention.bytes", "log.retention.bytes"),
    ("retention.ms", "log.retention.ms"),
    ("segment.bytes", "log.segment.bytes"),
    ("segment.index.bytes", "log.index.size.max.bytes"),
    ("segment.ms", "log.roll.ms"),
];

/// Topic configs that are not log settings but steer replication — the controller's
/// elections and the replication throttles (KIP-73) — in the order DescribeConfigs lists
/// them, with the broker key that supplies the default, if any.
pub const REPLICATION_TOPIC_CONFIG_KEYS: &[(&str, Option<&str>)] = &[
    ("follower.replication.throttled.replicas", None),
    ("leader.replication.throttled.replicas", None),
    (
        "unclean.leader.election.enable",
        Some("unclean.leader.election.enable"),
    ),
];

/// Checks a value of one of [`REPLICATION_TOPIC_CONFIG_KEYS`]; `None` for other keys.
pub fn validate_replication_topic_config(
    key: &str,
    value: &str,
) -> Option<Result<(), ConfigError>> {
    let invalid = |reason: String| ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason,
    };
    Some(match key {
        "leader.replication.throttled.replicas" | "follower.replication.throttled.replicas" => {
            crate::replica::quota::ThrottledReplicas::validate(value).map_err(invalid)
        }
        "unclean.leader.election.enable" => parse_bool(key, value).map(|_| ()),
        _ => return None,
    })
}

/// Checks a value of a Kafka topic key Strata stores but does not apply (`None` for the
/// keys it applies, and for keys Kafka does not know). The value must be one Kafka would
/// take, and where Strata's behaviour is fixed, the one that asks for it: producers'
/// timestamps are kept (`message.timestamp.type=CreateTime`, which Kafka Streams sets on
/// its internal topics) and batches are stored as produced (`compression.type=producer`);
/// the other choices are refused rather than silently not honoured.
pub fn validate_unapplied_topic_config(key: &str, value: &str) -> Option<Result<(), ConfigError>> {
    if topic_config_value(&LogConfig::default(), key).is_some()
        || !kafka_keys::TOPIC_KEYS.contains(&key)
    {
        return None;
    }
    let refuse = |reason: &str| {
        Err(ConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        })
    };
    Some(match (key, value) {
        ("message.timestamp.type", "CreateTime") | ("compression.type", "producer") => Ok(()),
        ("message.timestamp.type", "LogAppendTime") => {
            refuse("not supported: Strata keeps the producers' timestamps (CreateTime)")
        }
        ("message.timestamp.type", _) => refuse("must be CreateTime or LogAppendTime"),
        ("compression.type", "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd") => {
            refuse("not supported: Strata stores batches as produced (producer)")
        }
        ("compression.type", _) => {
            refuse("must be one of uncompressed, zstd, lz4, snappy, gzip, producer")
        }
        _ => Ok(()),
    })
}

/// Renders one topic-level config value from a `LogConfig`, as DescribeConfigs shows it.
pub fn topic_config_value(config: &LogConfig, key: &str) -> Option<String> {
    Some(match key {
        "cleanup.policy" => config.cleanup_policy.as_str().to_string(),
        "delete.retention.ms" => config.delete_retention_ms.to_string(),
        "file.delete.delay.ms" => config.file_delete_delay_ms.to_string(),
        "flush.messages" => config
            .flush_interval_messages
            .min(i64::MAX as u64)
            .to_string(),
        "flush.ms" => config.flush_interval_ms.to_string(),
        "index.interval.bytes" => config.index_interval_bytes.to_string(),
        "max.message.bytes" => config.max_message_bytes.to_string(),
        "min.cleanable.dirty.ratio" => config.min_cleanable_dirty_ratio.to_string(),
        "min.compaction.lag.ms" => config.min_compaction_lag_ms.to_string(),
        "min.insync.replicas" => config.min_insync_replicas.to_string(),
        "retention.bytes" => config.retention_bytes.to_string(),
        "retention.ms" => config.retention_ms.to_string(),
        "segment.bytes" => config.segment_bytes.to_string(),
        "segment.index.bytes" => config.segment_index_bytes.to_string(),
        "segment.ms" => config.segment_ms.to_string(),
        _ => return None,
    })
}

impl KafkaConfig {
    /// Reads a `server.properties` file. Lines are `key=value` (or `key: value`);
    /// `#` and `!` start comments, as in Java properties files.
    pub fn from_file(path: &Path) -> Result<KafkaConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        KafkaConfig::parse(&text, path)
    }

    /// Parses the text of a `server.properties`; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<KafkaConfig, ConfigError> {
        let mut config = KafkaConfig::default();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let split = line.find(['=', ':']).ok_or_else(|| ConfigError::Line {
                path: path.display().to_string(),
                line: index + 1,
                message: format!("expected key=value, found '{line}'"),
            })?;
            let (key, value) = (line[..split].trim(), line[split + 1..].trim());
            config.set(key, value).map_err(|e| ConfigError::Line {
                path: path.display().to_string(),
                line: index + 1,
                message: e.to_string(),
            })?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Applies one `key=value`, refusing unknown keys and malformed values.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        match key {
            "broker.id" | "node.id" => self.broker_id = parse_at_least(key, value, 0)?,
            "listeners" => {
                let endpoints = value
                    .split(',')
                    .map(|v| Endpoint::parse(key, v.trim()))
                    .collect::<Result<Vec<_>, _>>()?;
                if endpoints.is_empty() {
                    return Err(invalid("at least one listener is required"));
                }
                self.listeners = endpoints;
            }
            "advertised.listeners" => {
                self.advertised_listeners = Some(
                    value
                        .split(',')
                        .map(|v| Endpoint::parse(key, v.trim()))
                        .collect::<Result<Vec<_>, _>>()?,
                )
            }
            "log.dirs" | "log.dir" => {
                let dirs: Vec<PathBuf> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect();
                if dirs.is_empty() {
                    return Err(invalid("at least one directory is required"));
                }
                self.log_dirs = dirs;
            }
            "num.partitions" => self.num_partitions = parse_at_least(key, value, 1)?,
            "default.replication.factor" => {
                self.default_replication_factor = parse_at_least(key, value, 1)?
            }
            "auto.create.topics.enable" => self.auto_create_topics_enable = parse_bool(key, value)?,
            "socket.request.max.bytes" => {
                self.socket_request_max_bytes = parse_at_least(key, value, 1024)?
            }
            "max.connections" => self.max_connections = parse_at_least(key, value, 1)?,
            "max.connections.per.ip" => {
                self.max_connections_per_ip = parse_at_least(key, value, 0)?
            }
            "max.connections.per.ip.overrides" => {
                self.max_connections_per_ip_overrides = parse_connection_overrides(key, value)?
            }
            "connections.max.idle.ms" => {
                self.connections_max_idle_ms = parse_at_least(key, value, 1)?
            }
            "queued.max.request.bytes" => {
                let v: i64 = parse_num(key, value)?;
                self.queued_max_request_bytes = match v {
                    -1 => None,
                    v if v > 0 => Some(v as u64),
                    _ => return Err(invalid("must be -1 (no bound) or positive")),
                }
            }
            "max.incremental.fetch.session.cache.slots" => {
                self.max_incremental_fetch_session_cache_slots = parse_at_least(key, value, 0)?
            }
            "log.retention.check.interval.ms" => {
                self.log_retention_check_interval_ms = parse_at_least(key, value, 1)?
            }
            "metrics.port" => self.metrics_port = parse_num(key, value)?,
            "metrics.host" => self.metrics_host = Some(value.trim().to_string()),
            "offsets.topic.num.partitions" => {
                self.offsets_topic_num_partitions = parse_at_least(key, value, 1)?
            }
            "offsets.retention.minutes" => {
                self.offsets_retention_minutes = parse_at_least(key, value, 1)?
            }
            "group.initial.rebalance.delay.ms" => {
                self.group_initial_rebalance_delay_ms = parse_at_least(key, value, 0)?
            }
            "group.min.session.timeout.ms" => {
                self.group_min_session_timeout_ms = parse_at_least(key, value, 0)?
            }
            "group.max.session.timeout.ms" => {
                self.group_max_session_timeout_ms = parse_at_least(key, value, 0)?
            }
            "group.max.size" => self.group_max_size = parse_at_least(key, value, 1)?,
            "log.cleaner.backoff.ms" => {
                self.log_cleaner_backoff_ms = parse_at_least(key, value, 1)?
            }
            "cluster.id" => self.cluster_id = Some(value.to_string()),
            "zookeeper.connect" => {
                let v = value.trim();
                if v.is_empty() {
                    return Err(invalid("expected host:port[,host:port...][/chroot]"));
                }
                self.zookeeper_connect = Some(v.to_string());
            }
            "zookeeper.session.timeout.ms" => {
                self.zookeeper_session_timeout_ms = parse_at_least(key, value, 1)?
            }
            "zookeeper.connection.timeout.ms" => {
                self.zookeeper_connection_timeout_ms = Some(parse_at_least(key, value, 1)?)
            }
            "listener.security.protocol.map" => {
                let mut map = BTreeMap::new();
                for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let (listener, protocol) = pair
                        .split_once(':')
                        .ok_or_else(|| invalid("expected LISTENER:PROTOCOL pairs"))?;
                    let protocol = protocol.trim().to_ascii_uppercase();
                    if crate::metadata::SecurityProtocol::parse(&protocol).is_none() {
                        return Err(invalid(&format!("unknown security protocol {protocol}")));
                    }
                    map.insert(listener.trim().to_string(), protocol);
                }
                self.listener_security_protocol_map = map;
            }
            "inter.broker.listener.name" => {
                self.inter_broker_listener_name = Some(value.trim().to_string())
            }
            "security.inter.broker.protocol" => {
                let protocol = value.trim().to_ascii_uppercase();
                if crate::metadata::SecurityProtocol::parse(&protocol).is_none() {
                    return Err(invalid(
                        "expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                    ));
                }
                self.security_inter_broker_protocol = protocol;
            }
            "broker.rack" => {
                self.broker_rack = Some(value.trim().to_string()).filter(|r| !r.is_empty())
            }
            "replica.lag.time.max.ms" => {
                self.replica_lag_time_max_ms = parse_at_least(key, value, 1)?
            }
            "replica.fetch.wait.max.ms" => {
                self.replica_fetch_wait_max_ms = parse_at_least(key, value, 0)?
            }
            "replica.fetch.min.bytes" => {
                self.replica_fetch_min_bytes = parse_at_least(key, value, 1)?
            }
            "replica.fetch.max.bytes" => {
                self.replica_fetch_max_bytes = parse_at_least(key, value, 0)?
            }
            "replica.fetch.response.max.bytes" => {
                self.replica_fetch_response_max_bytes = parse_at_least(key, value, 0)?
            }
            "replica.fetch.backoff.ms" => {
                self.replica_fetch_backoff_ms = parse_at_least(key, value, 0)?
            }
            "replica.socket.timeout.ms" => {
                self.replica_socket_timeout_ms = parse_at_least(key, value, 1)?
            }
            "num.replica.fetchers" => self.num_replica_fetchers = parse_at_least(key, value, 1)?,
            "replica.high.watermark.checkpoint.interval.ms" => {
                self.replica_high_watermark_checkpoint_interval_ms = parse_at_least(key, value, 1)?
            }
            "controller.socket.timeout.ms" => {
                self.controller_socket_timeout_ms = parse_at_least(key, value, 1)?
            }
            "socket.connection.setup.timeout.ms" => {
                self.socket_connection_setup_timeout_ms = parse_at_least(key, value, 1)?
            }
            "replication.quota.window.num" => {
                self.replication_quota_window_num = parse_at_least(key, value, 1)?
            }
            "replication.quota.window.size.seconds" => {
                self.replication_quota_window_size_seconds = parse_at_least(key, value, 1)?
            }
            "unclean.leader.election.enable" => {
                self.unclean_leader_election_enable = parse_bool(key, value)?
            }
            "auto.leader.rebalance.enable" => {
                self.auto_leader_rebalance_enable = parse_bool(key, value)?
            }
            "leader.imbalance.per.broker.percentage" => {
                self.leader_imbalance_per_broker_percentage = parse_at_least(key, value, 0)?
            }
            "leader.imbalance.check.interval.seconds" => {
                self.leader_imbalance_check_interval_seconds = parse_at_least(key, value, 1)?
            }
            "delete.topic.enable" => self.delete_topic_enable = parse_bool(key, value)?,
            "controlled.shutdown.enable" => {
                self.controlled_shutdown_enable = parse_bool(key, value)?
            }
            "controlled.shutdown.max.retries" => {
                self.controlled_shutdown_max_retries = parse_at_least(key, value, 0)?
            }
            "controlled.shutdown.retry.backoff.ms" => {
                self.controlled_shutdown_retry_backoff_ms = parse_at_least(key, value, 0)?
            }
            "offsets.topic.replication.factor" => {
                self.offsets_topic_replication_factor = parse_at_least(key, value, 1)?
            }
            "offsets.commit.timeout.ms" => {
                self.offsets_commit_timeout_ms = parse_at_least(key, value, 1)?
            }
            "transaction.state.log.num.partitions" => {
                self.transaction_state_log_num_partitions = parse_at_least(key, value, 1)?
            }
            "transaction.state.log.replication.factor" => {
                self.transaction_state_log_replication_factor = parse_at_least(key, value, 1)?
            }
            "transaction.state.log.min.isr" => {
                self.transaction_state_log_min_isr = parse_at_least(key, value, 1)?
            }
            "transaction.state.log.segment.bytes" => {
                self.transaction_state_log_segment_bytes = parse_at_least(key, value, 1)?
            }
            "transaction.max.timeout.ms" => {
                self.transaction_max_timeout_ms = parse_at_least(key, value, 1)?
            }
            "transactional.id.expiration.ms" => {
                self.transactional_id_expiration_ms = parse_at_least(key, value, 1)?
            }
            "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                self.transaction_abort_timed_out_transaction_cleanup_interval_ms =
                    parse_at_least(key, value, 1)?
            }
            "request.timeout.ms" => self.request_timeout_ms = parse_at_least(key, value, 1)?,
            "transaction.partition.verification.enable" => {
                self.log.transaction_partition_verification_enable = parse_bool(key, value)?
            }
            "producer.id.expiration.ms" => {
                self.log.producer_id_expiration_ms = parse_at_least(key, value, 1)?
            }
            // Broker-level defaults of topic configs given in other units.
            "log.roll.hours" => {
                self.log.segment_ms = parse_at_least::<i64>(key, value, 1)? * 3_600_000
            }
            "log.retention.hours" => {
                let hours = parse_at_least::<i64>(key, value, -1)?;
                self.log.retention_ms = if hours < 0 { -1 } else { hours * 3_600_000 };
            }
            "log.retention.minutes" => {
                let minutes = parse_at_least::<i64>(key, value, -1)?;
                self.log.retention_ms = if minutes < 0 { -1 } else { minutes * 60_000 };
            }
            // Every other broker-level default of a topic config, under its broker name
            // (`log.segment.bytes` → `segment.bytes`, ...), validated as the topic key is.
            _ => {
                if let Some((topic_key, _)) = TOPIC_CONFIG_KEYS.iter().find(|(_, b)| *b == key) {
                    apply_topic_config(&mut self.log, topic_key, value)
                        .map_err(|e| rename(e, key))?
                } else if crate::security::reads_key(key) {
                    // Read per listener when the listeners are built (crate::security).
                } else if kafka_keys::BROKER_KEYS.contains(&key)
                    || key.starts_with("listener.name.")
                {
                    // A key Kafka has and Strata does not use: accepted, reported.
                    if !self.unused.iter().any(|k| k == key) {
                        self.unused.push(key.to_string());
                    }
                } else {
                    return Err(ConfigError::UnknownKey {
                        key: key.to_string(),
                        suggestion: closest_key(key),
                    });
                }
            }
        }
        self.explicit.insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// Cross-key checks that cannot be made one key at a time.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections_per_ip == 0 && self.max_connections_per_ip_overrides.is_empty() {
            return Err(ConfigError::InvalidValue {
                key: "max.connections.per.ip".into(),
                value: "0".into(),
                reason: "can be 0 only with max.connections.per.ip.overrides".into(),
            });
        }
        if let Some(advertised) = &self.advertised_listeners {
            for endpoint in advertised {
                if !self
                    .listeners
                    .iter()
                    .any(|l| l.listener_name == endpoint.listener_name)
                {
                    return Err(ConfigError::InvalidValue {
                        key: "advertised.listeners".into(),
                        value: endpoint.listener_name.clone(),
                        reason: "no listener of that name in 'listeners'".into(),
                    });
                }
                if endpoint.host.is_empty() || endpoint.host == "0.0.0.0" {
                    return Err(ConfigError::InvalidValue {
                        key: "advertised.listeners".into(),
                        value: endpoint.host.clone(),
                        reason: "clients cannot connect to a wildcard address".into(),
                    });
                }
            }
        }
        for listener in &self.listeners {
            let protocol = self.listener_security_protocol(&listener.listener_name);
            match protocol.as_deref() {
                Some(p) if SecurityProtocol::parse(p).is_some() => {}
                Some(other) => {
                    return Err(ConfigError::InvalidValue {
                        key: "listener.security.protocol.map".into(),
                        value: listener.listener_name.clone(),
                        reason: format!(
                            "unknown security protocol {other}; PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL are"
                        ),
                    });
                }
                None => {
                    return Err(ConfigError::InvalidValue {
                        key: "listener.security.protocol.map".into(),
                        value: listener.listener_name.clone(),
                        reason: "no security protocol for this listener".into(),
                    });
                }
            }
        }
        let inter_broker = self.inter_broker_listener();
        if !self
            .listeners
            .iter()
            .any(|l| l.listener_name == inter_broker)
        {
            return Err(ConfigError::InvalidValue {
                key: "inter.broker.listener.name".into(),
                value: inter_broker,
                reason: "must be the name of one of the listeners".into(),
            });
        }
        if self.group_min_session_timeout_ms > self.group_max_session_timeout_ms {
            return Err(ConfigError::InvalidValue {
                key: "group.min.session.timeout.ms".into(),
                value: self.group_min_session_timeout_ms.to_string(),
                reason: "larger than group.max.session.timeout.ms".into(),
            });
        }
        Ok(())
    }

    /// The endpoint advertised to clients for the first listener.
    pub fn advertised_endpoint(&self) -> Endpoint {
        self.advertised_endpoints()
            .into_iter()
            .next()
            .expect("at least one listener")
    }

    /// What each listener advertises: its `advertised.listeners` entry, or the listener
    /// itself with a wildcard host replaced by the loopback address.
    pub fn advertised_endpoints(&self) -> Vec<Endpoint> {
        self.listeners
            .iter()
            .map(|listener| {
                if let Some(advertised) = &self.advertised_listeners
                    && let Some(e) = advertised
                        .iter()
                        .find(|e| e.listener_name == listener.listener_name)
                {
                    return e.clone();
                }
                let mut e = listener.clone();
                if e.host.is_empty() || e.host == "0.0.0.0" {
                    e.host = "127.0.0.1".into();
                }
                e
            })
            .collect()
    }

    /// The security protocol of a listener (`listener.security.protocol.map`).
    pub fn listener_security_protocol(&self, listener: &str) -> Option<String> {
        self.listener_security_protocol_map.get(listener).cloned()
    }

    /// The listener brokers use to reach each other: `inter.broker.listener.name`, or the
    /// listener whose protocol is `security.inter.broker.protocol`.
    pub fn inter_broker_listener(&self) -> String {
        if let Some(name) = &self.inter_broker_listener_name {
            return name.clone();
        }
        self.listeners
            .iter()
            .find(|l| {
                self.listener_security_protocol(&l.listener_name).as_deref()
                    == Some(self.security_inter_broker_protocol.as_str())
            })
            .map(|l| l.listener_name.clone())
            .unwrap_or_else(|| self.security_inter_broker_protocol.clone())
    }

    /// How to reach ZooKeeper, when `zookeeper.connect` is set.
    pub fn zookeeper_settings(&self) -> Option<crate::metadata::zk::ZkSettings> {
        let connect = self.zookeeper_connect.clone()?;
        let session = std::time::Duration::from_millis(self.zookeeper_session_timeout_ms);
        Some(crate::metadata::zk::ZkSettings {
            connect,
            session_timeout: session,
            connection_timeout: self
                .zookeeper_connection_timeout_ms
                .map_or(session, std::time::Duration::from_millis),
        })
    }

    /// The metrics endpoint, if enabled: `metrics.host` (or the first listener's host)
    /// and `metrics.port`.
    pub fn metrics_address(&self) -> Option<String> {
        if self.metrics_port == 0 {
            return None;
        }
        let host = self.metrics_host.clone().unwrap_or_else(|| {
            let h = &self.listeners[0].host;
            if h.is_empty() {
                "0.0.0.0".to_string()
            } else {
                h.clone()
            }
        });
        Some(crate::network::host_port(&host, self.metrics_port))
    }

    /// Broker-level configs as DescribeConfigs on the broker resource shows them.
    pub fn describe(&self) -> Vec<(String, String, bool)> {
        let mut out = vec![
            ("broker.id".to_string(), self.broker_id.to_string()),
            (
                "listeners".to_string(),
                self.listeners
                    .iter()
                    .map(|l| format!("{}://{}:{}", l.listener_name, l.host, l.port))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "log.dirs".to_string(),
                self.log_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "num.partitions".to_string(),
                self.num_partitions.to_string(),
            ),
            (
                "default.replication.factor".to_string(),
                self.default_replication_factor.to_string(),
            ),
            (
                "auto.create.topics.enable".to_string(),
                self.auto_create_topics_enable.to_string(),
            ),
            (
                "socket.request.max.bytes".to_string(),
                self.socket_request_max_bytes.to_string(),
            ),
            (
                "max.connections".to_string(),
                self.max_connections.to_string(),
            ),
            (
                "max.connections.per.ip".to_string(),
                self.max_connections_per_ip.to_string(),
            ),
            (
                "connections.max.idle.ms".to_string(),
                self.connections_max_idle_ms.to_string(),
            ),
            (
                "queued.max.request.bytes".to_string(),
                self.queued_max_request_bytes
                    .map_or("-1".to_string(), |b| b.to_string()),
            ),
            (
                "max.incremental.fetch.session.cache.slots".to_string(),
                self.max_incremental_fetch_session_cache_slots.to_string(),
            ),
            (
                "log.retention.check.interval.ms".to_string(),
                self.log_retention_check_interval_ms.to_string(),
            ),
            (
                "offsets.topic.num.partitions".to_string(),
                self.offsets_topic_num_partitions.to_string(),
            ),
            (
                "transaction.state.log.num.partitions".to_string(),
                self.transaction_state_log_num_partitions.to_string(),
            ),
            (
                "transaction.max.timeout.ms".to_string(),
                self.transaction_max_timeout_ms.to_string(),
            ),
            (
                "transaction.partition.verification.enable".to_string(),
                self.log
                    .transaction_partition_verification_enable
                    .to_string(),
            ),
            (
                "producer.id.expiration.ms".to_string(),
                self.log.producer_id_expiration_ms.to_string(),
            ),
        ];
        for (topic_key, broker_key) in TOPIC_CONFIG_KEYS {
            if let Some(v) = topic_config_value(&self.log, topic_key) {
                out.push((broker_key.to_string(), v));
            }
        }
        out.into_iter()
            .map(|(k, v)| {
                let is_default = !self.explicit.contains_key(&k);
                (k, v, is_default)
            })
            .collect()
    }
}

/// Re-labels an error raised under a topic key with the broker key the user wrote.
fn rename(error: ConfigError, key: &str) -> ConfigError {
    match error {
        ConfigError::InvalidValue { value, reason, .. } => ConfigError::InvalidValue {
            key: key.to_string(),
            value,
            reason,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn kafka_topic_keys_strata_does_not_apply_are_taken_only_with_its_behaviour() {
        let check = |k: &str, v: &str| validate_unapplied_topic_config(k, v);
        // What Kafka Streams sets on its internal topics.
        assert!(matches!(
            check("message.timestamp.type", "CreateTime"),
            Some(Ok(()))
        ));
        assert!(matches!(
            check("compression.type", "producer"),
            Some(Ok(()))
        ));
        assert!(matches!(
            check("message.downconversion.enable", "true"),
            Some(Ok(()))
        ));
        assert!(matches!(check("preallocate", "false"), Some(Ok(()))));
        // Behaviours Strata does not have are refused, not silently ignored.
        for (k, v) in [
            ("message.timestamp.type", "LogAppendTime"),
            ("message.timestamp.type", "Sometime"),
            ("compression.type", "zstd"),
            ("compression.type", "brotli"),
        ] {
            assert!(
                matches!(check(k, v), Some(Err(ConfigError::InvalidValue { .. }))),
                "{k}={v}"
            );
        }
        // Keys Strata applies, and keys Kafka does not know, are not this check's.
        assert!(check("retention.ms", "1000").is_none());
        assert!(check("retention.millis", "1000").is_none());
    }

    #[test]
    fn reads_kafka_keys() {
        let f = write(
            "# comment\nbroker.id=3\nlisteners=PLAINTEXT://127.0.0.1:19093\nlog.dirs=/a,/b\n\
             num.partitions=3\nlog.segment.bytes=1048576\nlog.roll.hours=2\nlog.retention.hours=1\n\
             log.retention.bytes=1000000\nmessage.max.bytes=2000000\nauto.create.topics.enable=false\n\
             socket.request.max.bytes=5000000\nlog.flush.interval.messages=10\nlog.flush.interval.ms=100\n\
             log.retention.check.interval.ms=1000\ndefault.replication.factor=1\n",
        );
        let c = KafkaConfig::from_file(f.path()).unwrap();
        assert_eq!(c.broker_id, 3);
        assert_eq!(c.listeners[0].port, 19093);
        assert_eq!(c.log_dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(c.num_partitions, 3);
        assert_eq!(c.log.segment_bytes, 1_048_576);
        assert_eq!(c.log.segment_ms, 7_200_000);
        assert_eq!(c.log.retention_ms, 3_600_000);
        assert_eq!(c.log.retention_bytes, 1_000_000);
        assert_eq!(c.log.max_message_bytes, 2_000_000);
        assert!(!c.auto_create_topics_enable);
        assert_eq!(c.socket_request_max_bytes, 5_000_000);
        assert_eq!(c.log.flush_interval_messages, 10);
        assert_eq!(c.log.flush_interval_ms, 100);
        assert_eq!(c.log_retention_check_interval_ms, 1000);
    }

    #[test]
    fn refuses_unknown_key_naming_it_and_the_line() {
        let f = write("broker.id=1\nlog.dirz=/tmp/x\n");
        let err = KafkaConfig::from_file(f.path()).unwrap_err().to_string();
        assert!(err.contains(":2:"), "{err}");
        assert!(err.contains("log.dirz"), "{err}");
    }

    #[test]
    fn refuses_malformed_values_naming_the_key() {
        for (text, key) in [
            ("num.partitions=zero", "num.partitions"),
            ("num.partitions=0", "num.partitions"),
            ("listeners=127.0.0.1:9092", "listeners"),
            ("auto.create.topics.enable=yes", "auto.create.topics.enable"),
            ("log.segment.bytes=-5", "log.segment.bytes"),
            ("log.cleanup.policy=shred", "log.cleanup.policy"),
        ] {
            let f = write(text);
            let err = KafkaConfig::from_file(f.path()).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn advertised_listener_defaults_to_listener() {
        let mut c = KafkaConfig::default();
        c.set("listeners", "PLAINTEXT://0.0.0.0:9092").unwrap();
        assert_eq!(c.advertised_endpoint().host, "127.0.0.1");
        c.set("advertised.listeners", "PLAINTEXT://broker-0.kafka:9092")
            .unwrap();
        assert_eq!(c.advertised_endpoint().host, "broker-0.kafka");
    }

    #[test]
    fn cleanup_policy_forms() {
        assert_eq!(
            parse_cleanup_policy("k", "delete").unwrap(),
            CleanupPolicy::Delete
        );
        assert_eq!(
            parse_cleanup_policy("k", "compact").unwrap(),
            CleanupPolicy::Compact
        );
        assert_eq!(
            parse_cleanup_policy("k", "compact,delete").unwrap(),
            CleanupPolicy::CompactDelete
        );
    }
}
