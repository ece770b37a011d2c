//! `strata-broker`: a Kafka broker that speaks the Kafka wire protocol.
//!
//! A request flows one way: **connection → frame → request → handler → partition → log**.
//!
//! - [`server`]: the accept loop and one task per connection; reads length-prefixed
//!   frames (refusing those above `socket.request.max.bytes`) and writes responses in
//!   request order.
//! - [`api`]: decodes the request header, checks the API version against what we
//!   advertise in ApiVersions, and dispatches to one module per Kafka API.
//! - [`replica`]: `Partition` and `ReplicaManager` — leader epoch, log end offset, high
//!   watermark, and the wake-up of long-polling fetchers.
//! - `strata_storage`: Kafka's storage (`LogManager`, `Log`, `LogSegment`, indexes).
//! - [`metadata`]: topics, topic ids, config overrides, producer-id blocks.
//! - [`metrics`]: Prometheus text on `metrics.port`.

pub mod admin;
pub mod api;
pub mod config;
pub mod group;
pub mod metadata;
pub mod metrics;
pub mod replica;
pub mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_storage::{LogConfig, LogManager};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{KafkaConfig, apply_topic_config};
use crate::group::{GroupManager, OFFSETS_TOPIC};
use crate::metadata::{MetadataStore, TopicMetadata};
use crate::metrics::{Metrics, MetricsSource};
use crate::replica::ReplicaManager;

/// Milliseconds since the Unix epoch, the clock Kafka timestamps use.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot create log directory {path}: {source}")]
    LogDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Metadata(#[from] metadata::MetadataError),
    #[error("cannot open logs: {0}")]
    Storage(#[from] strata_storage::LogError),
    #[error("cannot create {OFFSETS_TOPIC}: {0}")]
    OffsetsTopic(String),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// Everything a request handler may touch.
pub struct Broker {
    pub config: KafkaConfig,
    pub cluster_id: String,
    pub metadata: MetadataStore,
    pub replica_manager: ReplicaManager,
    pub groups: Arc<GroupManager>,
    pub metrics: Arc<Metrics>,
}

impl Broker {
    /// Opens the metadata and every log, recovering after an unclean shutdown.
    pub fn open(config: KafkaConfig) -> Result<Arc<Broker>, StartupError> {
        for dir in &config.log_dirs {
            std::fs::create_dir_all(dir).map_err(|source| StartupError::LogDir {
                path: dir.clone(),
                source,
            })?;
        }
        let metadata = MetadataStore::open(&config.log_dirs[0], config.cluster_id.as_deref())?;
        let topics = metadata.topics();
        let defaults = config.log.clone();
        let topic_configs = {
            let topics = topics.clone();
            let defaults = defaults.clone();
            move |name: &str| {
                topics
                    .iter()
                    .find(|t| t.name == name)
                    .map(|t| topic_log_config(&defaults, t))
                    .unwrap_or_else(|| defaults.clone())
            }
        };
        let log_manager =
            LogManager::startup(config.log_dirs.clone(), defaults, topic_configs, now_ms())?;
        let replica_manager = ReplicaManager::new(config.broker_id, log_manager);
        let groups = Arc::new(GroupManager::new(
            group_coordinator_config(&config),
            rand::random(),
        ));
        let broker = Broker {
            cluster_id: metadata.cluster_id(),
            metadata,
            replica_manager,
            groups,
            metrics: Arc::new(Metrics::default()),
            config,
        };
        for topic in &topics {
            broker.open_partitions(topic, 0)?;
        }
        broker.ensure_offsets_topic()?;
        broker.groups.load(&broker);
        info!(
            broker_id = broker.config.broker_id,
            cluster_id = %broker.cluster_id,
            topics = topics.len(),
            "broker state loaded"
        );
        Ok(Arc::new(broker))
    }

    /// The effective log config of a topic: broker defaults plus the topic's overrides.
    pub fn log_config_for(&self, topic: &TopicMetadata) -> LogConfig {
        topic_log_config(&self.config.log, topic)
    }

    /// Opens the logs of partitions `from..topic.partitions` as their leader.
    pub fn open_partitions(
        &self,
        topic: &TopicMetadata,
        from: i32,
    ) -> Result<(), strata_storage::LogError> {
        let config = self.log_config_for(topic);
        for p in from..topic.partitions {
            self.replica_manager
                .make_leader(&topic.name, p, topic.topic_id, config.clone())?;
        }
        Ok(())
    }

    /// Creates `__consumer_offsets` (compacted, `offsets.topic.num.partitions`) on first
    /// start. Kafka creates it on the first FindCoordinator; creating it up front means
    /// the group coordinator is loaded and ready before the first client arrives.
    fn ensure_offsets_topic(&self) -> Result<(), StartupError> {
        if self.metadata.topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let configs = [
            ("cleanup.policy", "compact"),
            ("segment.bytes", "104857600"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        match self.create_topic(
            OFFSETS_TOPIC,
            self.config.offsets_topic_num_partitions,
            1,
            configs,
            false,
        ) {
            Ok(_) => Ok(()),
            Err((_, message)) => Err(StartupError::OffsetsTopic(message)),
        }
    }

    /// Runs background work — retention, time-based flushes, checkpoints — until shutdown.
    pub async fn run_background_tasks(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let retention_every = Duration::from_millis(self.config.log_retention_check_interval_ms);
        let flush_every = Duration::from_millis(
            u64::try_from(self.config.log.flush_interval_ms)
                .unwrap_or(u64::MAX)
                .clamp(10, 1_000),
        );
        let mut retention = tokio::time::interval(retention_every);
        let mut flush = tokio::time::interval(flush_every);
        let mut checkpoint = tokio::time::interval(Duration::from_secs(60));
        let mut cleaner =
            tokio::time::interval(Duration::from_millis(self.config.log_cleaner_backoff_ms));
        loop {
            tokio::select! {
                _ = retention.tick() => {
                    let broker = self.clone();
                    let deleted = tokio::task::spawn_blocking(move || {
                        broker.replica_manager.log_manager().cleanup_logs(now_ms())
                    }).await.unwrap_or(0);
                    if deleted > 0 {
                        info!(segments = deleted, "retention deleted old log segments");
                    }
                }
                _ = flush.tick() => {
                    let broker = self.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        broker.replica_manager.log_manager().flush_dirty_logs(now_ms())
                    }).await;
                }
                _ = cleaner.tick() => {
                    let broker = self.clone();
                    let _ = tokio::task::spawn_blocking(move || broker.clean_compacted_logs(false)).await;
                }
                _ = checkpoint.tick() => {
                    let broker = self.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        if let Err(e) = broker.replica_manager.log_manager().checkpoint() {
                            warn!(error = %e, "writing log checkpoints failed");
                        }
                    }).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One pass of the log cleaner over every compacted partition.
    pub fn clean_compacted_logs(&self, force: bool) {
        for partition in self.replica_manager.all_partitions() {
            match partition.clean(now_ms(), force) {
                Ok(stats) if stats.segments_rewritten > 0 => info!(
                    topic = %partition.topic,
                    partition = partition.partition,
                    records_removed = stats.records_removed,
                    tombstones_removed = stats.tombstones_removed,
                    "compacted log"
                ),
                Ok(_) => {}
                Err(e) => {
                    warn!(topic = %partition.topic, partition = partition.partition, error = %e, "log cleaning failed")
                }
            }
        }
    }

    /// Closes every log and writes the clean-shutdown marker.
    pub fn shutdown(&self) {
        match self.replica_manager.log_manager().shutdown() {
            Ok(()) => info!("logs closed cleanly"),
            Err(e) => warn!(error = %e, "closing logs failed; the next start will recover"),
        }
    }
}

/// The group coordinator's settings, from the broker keys of the same names.
fn group_coordinator_config(
    config: &KafkaConfig,
) -> strata_group_coordinator::GroupCoordinatorConfig {
    strata_group_coordinator::GroupCoordinatorConfig {
        group_min_session_timeout_ms: config.group_min_session_timeout_ms,
        group_max_session_timeout_ms: config.group_max_session_timeout_ms,
        group_initial_rebalance_delay_ms: i32::try_from(config.group_initial_rebalance_delay_ms)
            .unwrap_or(i32::MAX),
        group_max_size: usize::try_from(config.group_max_size).unwrap_or(usize::MAX),
        offsets_topic_num_partitions: config.offsets_topic_num_partitions,
        offsets_retention_minutes: config.offsets_retention_minutes,
        ..Default::default()
    }
}

/// Broker defaults overlaid with a topic's overrides. Overrides were validated when set,
/// so a failure here means the metadata file was edited by hand; the default is kept.
pub fn topic_log_config(defaults: &LogConfig, topic: &TopicMetadata) -> LogConfig {
    let mut config = defaults.clone();
    for (key, value) in &topic.configs {
        if let Err(e) = apply_topic_config(&mut config, key, value) {
            warn!(topic = %topic.name, error = %e, "ignoring invalid stored topic config");
        }
    }
    config
}

impl Broker {
    /// Consumer-group metrics: groups by state, members, rebalances, and lag per
    /// committed partition (high watermark minus committed offset).
    fn render_group_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let stats = self.groups.stats();
        metrics::write_gauge_family(
            out,
            "strata_broker_groups",
            "Consumer groups by state.",
            stats
                .groups_by_state
                .iter()
                .map(|(state, n)| (format!("state=\"{}\"", state.as_str()), *n as i64)),
        );
        metrics::write_gauge_family(
            out,
            "strata_broker_group_members",
            "Members of a consumer group.",
            stats
                .members_by_group
                .iter()
                .map(|(group, n)| (format!("group=\"{group}\""), *n as i64)),
        );
        let _ = writeln!(
            out,
            "# HELP strata_broker_group_rebalances_total Rebalances started.\n# TYPE strata_broker_group_rebalances_total counter\nstrata_broker_group_rebalances_total {}",
            stats.rebalances_total
        );
        let _ = writeln!(
            out,
            "# HELP strata_broker_group_rebalance_seconds Duration of completed rebalances.\n# TYPE strata_broker_group_rebalance_seconds summary"
        );
        let _ = writeln!(
            out,
            "strata_broker_group_rebalance_seconds_sum {}",
            stats.rebalance_time_ms_total as f64 / 1000.0
        );
        let _ = writeln!(
            out,
            "strata_broker_group_rebalance_seconds_count {}",
            stats.rebalances_completed_total
        );
        let _ = writeln!(
            out,
            "# HELP strata_broker_group_offset_commits_total Offsets committed.\n# TYPE strata_broker_group_offset_commits_total counter\nstrata_broker_group_offset_commits_total {}",
            stats.offset_commits_total
        );
        let mut lags = Vec::new();
        for (group, offsets) in self.groups.committed_offsets() {
            for (topic, partition, offset) in offsets {
                if let Some(p) = self.replica_manager.get_partition(&topic, partition) {
                    let lag = (p.offsets().high_watermark - offset).max(0);
                    lags.push((
                        format!("group=\"{group}\",topic=\"{topic}\",partition=\"{partition}\""),
                        lag,
                    ));
                }
            }
        }
        metrics::write_gauge_family(
            out,
            "strata_broker_group_lag",
            "Records between a group's committed offset and the high watermark.",
            lags.into_iter(),
        );
    }
}

impl MetricsSource for Broker {
    fn render(&self, out: &mut String) {
        let rows: Vec<_> = self
            .replica_manager
            .all_partitions()
            .into_iter()
            .map(|p| {
                let (size, segments) = p.size_and_segments();
                let offsets = p.offsets();
                (p, size, segments as u64, offsets)
            })
            .collect();
        type Row = (Arc<replica::Partition>, u64, u64, replica::PartitionOffsets);
        /// (metric name, help, the value of a row)
        type Family = (&'static str, &'static str, fn(&Row) -> i64);
        let families: [Family; 5] = [
            (
                "strata_broker_log_size_bytes",
                "Bytes on disk of a partition's log.",
                |r| r.1 as i64,
            ),
            (
                "strata_broker_log_segments",
                "Segments in a partition's log.",
                |r| r.2 as i64,
            ),
            (
                "strata_broker_log_end_offset",
                "Next offset to be written.",
                |r| r.3.log_end_offset,
            ),
            (
                "strata_broker_log_start_offset",
                "First offset still in the log.",
                |r| r.3.log_start_offset,
            ),
            (
                "strata_broker_high_watermark",
                "Offset below which records are committed.",
                |r| r.3.high_watermark,
            ),
        ];
        for (name, help, value) in families {
            metrics::write_gauge_family(
                out,
                name,
                help,
                rows.iter().map(|r| {
                    (
                        format!("topic=\"{}\",partition=\"{}\"", r.0.topic, r.0.partition),
                        value(r),
                    )
                }),
            );
        }
        self.render_group_metrics(out);
    }
}

/// Starts a broker: opens its state, binds its listener and metrics port, and serves
/// until `shutdown` turns true. Returns once the logs are closed.
pub async fn run(config: KafkaConfig, shutdown: watch::Receiver<bool>) -> Result<(), StartupError> {
    let endpoint = config.listeners[0].clone();
    let metrics_address = config.metrics_address();
    let broker = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Broker::open(config))
            .await
            .expect("startup task panicked")?
    };
    let address = endpoint.bind_address();
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
    if let Some(metrics_address) = metrics_address {
        let metrics_listener =
            TcpListener::bind(metrics_address)
                .await
                .map_err(|source| StartupError::Bind {
                    address: metrics_address.to_string(),
                    source,
                })?;
        info!(address = %metrics_address, "metrics on /metrics");
        tokio::spawn(metrics::serve(
            metrics_listener,
            broker.metrics.clone(),
            broker.clone() as Arc<dyn MetricsSource>,
        ));
    }
    info!(address = %address, advertised = ?broker.config.advertised_endpoint(), "listening for Kafka clients");
    let background = tokio::spawn(broker.clone().run_background_tasks(shutdown.clone()));
    let group_ticks = tokio::spawn(
        broker
            .groups
            .clone()
            .run_ticks(broker.clone(), shutdown.clone()),
    );
    server::serve(broker.clone(), listener, shutdown).await;
    let _ = background.await;
    let _ = group_ticks.await;
    let closing = broker.clone();
    let _ = tokio::task::spawn_blocking(move || closing.shutdown()).await;
    Ok(())
}
