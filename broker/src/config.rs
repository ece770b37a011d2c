//! Broker configuration: a Kafka-style `server.properties` file with Kafka's key names.
//!
//! Every key the broker understands is listed in [`KafkaConfig::set`]; anything else is
//! refused with an error naming the key, as is a value that does not parse or is out of
//! range. Values fall back to Apache Kafka's defaults, except the listener, which defaults
//! to `PLAINTEXT://127.0.0.1:9092` so a laptop run needs no file at all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use strata_storage::{CleanupPolicy, LogConfig};

/// A configuration problem, always naming the key (and the file line when read from a file).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}:{line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
    #[error("unknown configuration key '{0}'")]
    UnknownKey(String),
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
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
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
    /// `max.connections`: connections beyond this are closed at accept.
    pub max_connections: usize,
    /// `log.retention.check.interval.ms`: how often retention runs.
    pub log_retention_check_interval_ms: u64,
    /// `metrics.port`: the Prometheus `/metrics` HTTP port (0 disables it).
    pub metrics_port: u16,
    /// `metrics.host`: the address the metrics endpoint binds.
    pub metrics_host: String,
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
    /// Topic-level defaults (`log.segment.bytes`, `log.retention.ms`, ...).
    pub log: LogConfig,
    /// Keys given explicitly, kept for DescribeConfigs on the broker resource.
    pub explicit: BTreeMap<String, String>,
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
            max_connections: 10_000,
            log_retention_check_interval_ms: 300_000,
            metrics_port: 9404,
            metrics_host: "127.0.0.1".into(),
            offsets_topic_num_partitions: 50,
            offsets_retention_minutes: 10_080,
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_max_size: i32::MAX,
            log_cleaner_backoff_ms: 15_000,
            cluster_id: None,
            log: LogConfig::default(),
            explicit: BTreeMap::new(),
        }
    }
}

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
        _ => return Err(ConfigError::UnknownKey(key.to_string())),
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
            "log.retention.check.interval.ms" => {
                self.log_retention_check_interval_ms = parse_at_least(key, value, 1)?
            }
            "metrics.port" => self.metrics_port = parse_num(key, value)?,
            "metrics.host" => self.metrics_host = value.to_string(),
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
                let Some((topic_key, _)) = TOPIC_CONFIG_KEYS.iter().find(|(_, b)| *b == key) else {
                    return Err(ConfigError::UnknownKey(key.to_string()));
                };
                apply_topic_config(&mut self.log, topic_key, value).map_err(|e| rename(e, key))?
            }
        }
        self.explicit.insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// Cross-key checks that cannot be made one key at a time.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
        let listener = &self.listeners[0];
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
    }

    /// Resolves the metrics endpoint, if enabled.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        if self.metrics_port == 0 {
            return None;
        }
        format!("{}:{}", self.metrics_host, self.metrics_port)
            .parse()
            .ok()
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
                "log.retention.check.interval.ms".to_string(),
                self.log_retention_check_interval_ms.to_string(),
            ),
            (
                "offsets.topic.num.partitions".to_string(),
                self.offsets_topic_num_partitions.to_string(),
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
