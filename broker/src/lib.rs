//! `strata-broker`: a Kafka broker that speaks the Kafka wire protocol and replicates in
//! Kafka's ZooKeeper-mode design.
//!
//! A request flows one way: **connection → frame → request → handler → partition → log**.
//!
//! - [`server`]: accept loops (a connection permit before each accept) and one task per
//!   connection; frames answered in order; a drain on shutdown.
//! - [`api`]: decodes the request header, checks the version against what we advertise,
//!   and dispatches to one module per Kafka API, the inter-broker ones included.
//! - [`replica`]: partitions as leaders and followers — ISR, high watermark, fetchers,
//!   acks=all waits.
//! - [`controller`]: the controller (one broker of the cluster at a time).
//! - [`metadata`]: the cluster's durable facts (ZooKeeper or a local file) and this
//!   broker's metadata cache.
//! - `strata_storage`: Kafka's storage (`LogManager`, `Log`, `LogSegment`, indexes).
//! - [`group`]: consumer groups over `__consumer_offsets`.
//! - [`metrics`]: Prometheus text on `metrics.port`.

pub mod admin;
pub mod api;
pub mod config;
pub mod controller;
pub mod coordinator_runtime;
pub mod fetch_session;
pub mod group;
pub mod internal_log;
pub mod metadata;
pub mod metrics;
pub mod network;
pub mod producer_ids;
pub mod protocol;
pub mod replica;
pub mod security;
pub mod server;
pub mod txn;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use strata_storage::{LogConfig, LogManager};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

use crate::admin::TopicDescription;
use crate::config::dynamic::{self, DynamicBrokerConfigs};
use crate::config::{KafkaConfig, apply_topic_config};
use crate::controller::channel::{ControllerRequest, ControllerResponse, LocalBroker};
use crate::controller::client::ControllerClient;
use crate::controller::{Controller, ControllerConfig};
use crate::group::GroupManager;
use crate::metadata::local::LocalMetadataStore;
use crate::metadata::zk::ZkMetadataStore;
use crate::metadata::{
    BrokerEndpoint, BrokerRegistration, MetadataCache, MetadataEvent, MetadataStore,
    SecurityProtocol, config_type,
};
use crate::metrics::{Metrics, MetricsSource};
use crate::network::{Connector, Timeouts};
use crate::producer_ids::ProducerIdManager;
use crate::replica::alter_partition::AlterPartitionManager;
use crate::replica::fetcher::{FetcherConfig, ReplicaFetcherManager};
use crate::replica::quota::ReplicationQuotas;
use crate::replica::{ReplicaConfig, ReplicaManager};
use crate::txn::TransactionManager;

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
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Inconsistent(String),
    #[error("{0}")]
    Security(String),
}

/// Everything a request handler may touch.
pub struct Broker {
    pub config: KafkaConfig,
    pub cluster_id: String,
    /// The cluster's durable facts (ZooKeeper, or a local file).
    pub store: Arc<dyn MetadataStore>,
    /// What the controller last told this broker (UpdateMetadata).
    pub cache: Arc<MetadataCache>,
    /// Bumped after every metadata cache update, for admin requests waiting on it.
    pub cache_updates: watch::Sender<u64>,
    pub replica_manager: ReplicaManager,
    pub groups: Arc<GroupManager>,
    /// The transaction coordinator.
    pub txns: Arc<TransactionManager>,
    /// How this broker reaches the others (the inter-broker listener's name and
    /// security), for requests outside replication and the controller's: transaction
    /// markers.
    pub inter_broker_listener: String,
    pub inter_broker_connector: Connector,
    pub metrics: Arc<Metrics>,
    pub controller: Arc<Controller>,
    pub controller_client: Arc<ControllerClient>,
    pub producer_ids: ProducerIdManager,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: std::sync::Mutex<fetch_session::FetchSessionCache>,
    /// ACLs (`authorizer.class.name`); `None` lets everyone do everything.
    pub authorizer: Option<security::authorizer::Authorizer>,
    /// The czxid of this broker's registration; changes when the session is re-created.
    broker_epoch: Arc<AtomicI64>,
    /// Config overrides of the topics this broker knows, from the store.
    topic_configs: RwLock<HashMap<String, BTreeMap<String, String>>>,
    /// This broker's dynamic configs, from the store.
    dynamic_configs: RwLock<DynamicBrokerConfigs>,
}

impl Broker {
    pub fn broker_epoch(&self) -> i64 {
        self.broker_epoch.load(Ordering::Acquire)
    }

    /// A topic as the admin APIs describe it, from the metadata cache.
    pub fn topic(&self, name: &str) -> Option<TopicDescription> {
        let snapshot = self.cache.snapshot();
        let topic = snapshot.topics.get(name)?;
        Some(self.describe(name, topic))
    }

    fn describe(&self, name: &str, topic: &metadata::cache::CachedTopic) -> TopicDescription {
        TopicDescription {
            name: name.to_string(),
            topic_id: topic.topic_id,
            partitions: topic.partitions.len() as i32,
            replication_factor: topic
                .partitions
                .values()
                .next()
                .map_or(0, |p| p.replicas.len() as i16),
            configs: self.cached_topic_configs(name),
            internal: name.starts_with("__"),
        }
    }

    /// Every topic in the metadata cache.
    pub fn topics(&self) -> Vec<TopicDescription> {
        let snapshot = self.cache.snapshot();
        snapshot
            .topics
            .iter()
            .map(|(name, t)| self.describe(name, t))
            .collect()
    }

    fn cached_topic_configs(&self, topic: &str) -> BTreeMap<String, String> {
        self.topic_configs
            .read()
            .expect("topic configs lock")
            .get(topic)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn cache_topic_configs(&self, topic: &str, configs: BTreeMap<String, String>) {
        self.replica_manager.quotas.set_topic_throttles(
            topic,
            configs
                .get("leader.replication.throttled.replicas")
                .map(String::as_str),
            configs
                .get("follower.replication.throttled.replicas")
                .map(String::as_str),
            self.config.broker_id,
        );
        self.topic_configs
            .write()
            .expect("topic configs lock")
            .insert(topic.to_string(), configs);
    }

    /// This broker's dynamic configs as last read from the store.
    pub fn dynamic_configs(&self) -> DynamicBrokerConfigs {
        self.dynamic_configs
            .read()
            .expect("dynamic configs lock")
            .clone()
    }

    /// Reads this broker's dynamic configs (its own and the cluster default) and applies
    /// them: the replication throttle rates.
    pub(crate) async fn reload_dynamic_configs(&self) {
        let read = async |name: String| {
            self.store
                .entity_configs(config_type::BROKER.to_string(), name)
                .await
        };
        let configs = match (
            read(self.config.broker_id.to_string()).await,
            read(dynamic::DEFAULT_ENTITY.to_string()).await,
        ) {
            (Ok(broker), Ok(cluster_default)) => DynamicBrokerConfigs {
                broker,
                cluster_default,
            },
            (Err(e), _) | (_, Err(e)) => {
                warn!(error = %e, "cannot read dynamic broker configs; keeping the current ones");
                return;
            }
        };
        let quotas = &self.replica_manager.quotas;
        let leader = configs.rate(dynamic::LEADER_THROTTLED_RATE);
        let follower = configs.rate(dynamic::FOLLOWER_THROTTLED_RATE);
        quotas.leader().set_limit(leader);
        quotas.follower().set_limit(follower);
        let mut current = self.dynamic_configs.write().expect("dynamic configs lock");
        if *current != configs {
            info!(
                ?leader,
                ?follower,
                "replication throttle rates (bytes/s) applied"
            );
            *current = configs;
        }
    }

    /// Caches a topic's new overrides and applies them to its partitions here.
    pub(crate) fn apply_topic_configs(&self, topic: &str, configs: BTreeMap<String, String>) {
        self.cache_topic_configs(topic, configs);
        let config = self.log_config_for_topic(topic);
        for partition in self.replica_manager.partitions_of(topic) {
            partition.update_config(config.clone());
        }
    }

    /// The effective log config of a topic: broker defaults plus the topic's overrides.
    pub fn log_config_for_topic(&self, topic: &str) -> LogConfig {
        topic_log_config(&self.config.log, topic, &self.cached_topic_configs(topic))
    }

    /// Fetches the overrides of topics this broker does not know yet, and again of those
    /// in `reread` (before their logs are created by LeaderAndIsr).
    pub(crate) async fn prefetch_topic_configs<'a>(
        &self,
        topics: impl Iterator<Item = &'a str>,
        reread: &BTreeSet<&str>,
    ) {
        for topic in topics {
            let known = self
                .topic_configs
                .read()
                .expect("topic configs lock")
                .contains_key(topic);
            if (!known || reread.contains(topic))
                && let Err(e) = self.topic_overrides(topic).await
            {
                warn!(topic, error = %e.1, "cannot read topic configs; using broker defaults");
            }
        }
    }

    /// Runs background work — retention, time-based flushes, checkpoints, the cleaner,
    /// ISR shrinking — until shutdown.
    pub async fn run_background_tasks(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let retention_every = Duration::from_millis(self.config.log_retention_check_interval_ms);
        let flush_every = Duration::from_millis(
            u64::try_from(self.config.log.flush_interval_ms)
                .unwrap_or(u64::MAX)
                .clamp(10, 1_000),
        );
        let mut retention = tokio::time::interval(retention_every);
        let mut flush = tokio::time::interval(flush_every);
        let mut checkpoint = tokio::time::interval(Duration::from_millis(
            self.config.replica_high_watermark_checkpoint_interval_ms,
        ));
        let mut cleaner =
            tokio::time::interval(Duration::from_millis(self.config.log_cleaner_backoff_ms));
        let mut shrink = tokio::time::interval(self.replica_manager.shrink_interval());
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
                _ = shrink.tick() => self.replica_manager.shrink_isrs(),
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn reload_acls(&self) {
        if let Some(authorizer) = &self.authorizer {
            authorizer.reload(self.store.as_ref()).await;
        }
    }

    /// Follows the metadata store: topic config changes, ACLs, a new session (new broker
    /// epoch).
    async fn run_metadata_listener(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut events = self.store.subscribe();
        loop {
            let event = tokio::select! {
                e = events.recv() => e,
                _ = shutdown.changed() => return,
            };
            match event {
                Ok(MetadataEvent::ConfigChanged {
                    entity_type,
                    entity_name,
                }) if entity_type == config_type::TOPIC => {
                    match self.topic_overrides(&entity_name).await {
                        Ok(configs) => self.apply_topic_configs(&entity_name, configs),
                        Err(e) => {
                            warn!(topic = %entity_name, error = %e.1, "cannot reload topic configs")
                        }
                    }
                }
                Ok(MetadataEvent::ConfigChanged {
                    entity_type,
                    entity_name,
                }) if entity_type == config_type::BROKER
                    && (entity_name == dynamic::DEFAULT_ENTITY
                        || entity_name == self.config.broker_id.to_string()) =>
                {
                    self.reload_dynamic_configs().await
                }
                Ok(MetadataEvent::AclsChanged | MetadataEvent::Reconnected) => {
                    self.reload_acls().await
                }
                Ok(MetadataEvent::SessionReestablished { broker_epoch }) => {
                    if broker_epoch >= 0 {
                        self.broker_epoch.store(broker_epoch, Ordering::Release);
                        info!(
                            broker_epoch,
                            "registered again after a new metadata session"
                        );
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Missed notifications: reload the ACLs and every known topic's configs.
                    self.reload_acls().await;
                    let topics: Vec<String> = self
                        .topic_configs
                        .read()
                        .expect("topic configs lock")
                        .keys()
                        .cloned()
                        .collect();
                    for t in topics {
                        if let Ok(configs) = self.topic_overrides(&t).await {
                            self.apply_topic_configs(&t, configs);
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
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
                    markers_removed = stats.markers_removed,
                    "compacted log"
                ),
                Ok(_) => {}
                Err(e) => {
                    warn!(topic = %partition.topic, partition = partition.partition, error = %e, "log cleaning failed")
                }
            }
        }
    }

    /// Kafka's controlled shutdown: asks the controller to move this broker's
    /// leaderships away, up to `controlled.shutdown.max.retries` times.
    async fn controlled_shutdown(&self) {
        if !self.config.controlled_shutdown_enable || !self.store.is_shared() {
            return;
        }
        let attempts = self.config.controlled_shutdown_max_retries.max(1);
        for attempt in 1..=attempts {
            match self
                .controller_client
                .controlled_shutdown(self.broker_epoch())
                .await
            {
                Ok(remaining) if remaining.is_empty() => {
                    info!("controlled shutdown: every leadership moved");
                    return;
                }
                Ok(remaining) => {
                    info!(
                        attempt,
                        remaining = remaining.len(),
                        "controlled shutdown: partitions still led here"
                    );
                }
                Err(e) => warn!(attempt, error = %e, "controlled shutdown request failed"),
            }
            if attempt < attempts {
                tokio::time::sleep(Duration::from_millis(
                    self.config.controlled_shutdown_retry_backoff_ms,
                ))
                .await;
            }
        }
        warn!("controlled shutdown did not complete; shutting down anyway");
    }

    /// Closes every log and writes the clean-shutdown marker.
    pub fn shutdown_logs(&self) {
        match self.replica_manager.log_manager().shutdown() {
            Ok(()) => info!("logs closed cleanly"),
            Err(e) => warn!(error = %e, "closing logs failed; the next start will recover"),
        }
    }

    /// Whether the metadata cache lists this broker (the controller has told it about
    /// the cluster): the broker is serving.
    pub fn is_ready(&self) -> bool {
        self.cache.snapshot().is_alive(self.config.broker_id)
    }
}

/// The controller reaches the broker it runs on without the network.
impl LocalBroker for Broker {
    fn handle(&self, request: ControllerRequest) -> BoxFuture<'_, ControllerResponse> {
        Box::pin(async move {
            match request {
                ControllerRequest::LeaderAndIsr(r) => {
                    ControllerResponse::LeaderAndIsr(api::leader_and_isr::apply(self, r).await)
                }
                ControllerRequest::UpdateMetadata(r) => {
                    ControllerResponse::UpdateMetadata(api::update_metadata::apply(self, &r))
                }
                ControllerRequest::StopReplica(r) => {
                    ControllerResponse::StopReplica(api::stop_replica::apply(self, &r))
                }
            }
        })
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

/// The transaction coordinator's settings, from the broker keys of the same names.
fn transaction_coordinator_config(
    config: &KafkaConfig,
) -> strata_transaction_coordinator::TransactionCoordinatorConfig {
    strata_transaction_coordinator::TransactionCoordinatorConfig {
        transaction_max_timeout_ms: config.transaction_max_timeout_ms,
        transactional_id_expiration_ms: config.transactional_id_expiration_ms,
        transaction_state_log_num_partitions: config.transaction_state_log_num_partitions,
        transaction_abort_timed_out_transaction_cleanup_interval_ms: config
            .transaction_abort_timed_out_transaction_cleanup_interval_ms
            as i64,
        offsets_topic_num_partitions: config.offsets_topic_num_partitions,
        ..Default::default()
    }
}

/// Broker defaults overlaid with a topic's overrides. Overrides were validated when set;
/// one that does not apply (written by another tool) is logged and ignored.
pub fn topic_log_config(
    defaults: &LogConfig,
    topic: &str,
    overrides: &BTreeMap<String, String>,
) -> LogConfig {
    let mut config = defaults.clone();
    for (key, value) in overrides {
        if config::validate_replication_topic_config(key, value).is_some() {
            continue; // not a log setting
        }
        if let Err(e) = apply_topic_config(&mut config, key, value) {
            if config::kafka_keys::TOPIC_KEYS.contains(&key.as_str()) {
                tracing::debug!(topic, key, "topic config not used by Strata");
            } else {
                warn!(topic, error = %e, "ignoring invalid stored topic config");
            }
        }
    }
    config
}

/// Kafka's `meta.properties`: the cluster and broker a log dir belongs to. A log dir of
/// another cluster (or another broker id) is refused rather than mixed in.
fn check_meta_properties(dir: &Path, cluster_id: &str, broker_id: i32) -> Result<(), StartupError> {
    let path = dir.join("meta.properties");
    let expected = format!("#\nversion=0\nbroker.id={broker_id}\ncluster.id={cluster_id}\n");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let value = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::trim))
                    .map(str::to_string)
            };
            if let Some(found) = value("cluster.id")
                && found != cluster_id
            {
                return Err(StartupError::Inconsistent(format!(
                    "The Cluster ID {cluster_id} doesn't match stored clusterId Some({found}) in meta.properties ({}). The broker is trying to join the wrong cluster.",
                    path.display()
                )));
            }
            if let Some(found) = value("broker.id")
                && found != broker_id.to_string()
            {
                return Err(StartupError::Inconsistent(format!(
                    "Stored node id {found} doesn't match previous node id {broker_id} in meta.properties ({}).",
                    path.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::write(&path, expected)
            .map_err(|source| StartupError::LogDir {
                path: path.clone(),
                source,
            }),
        Err(source) => Err(StartupError::LogDir { path, source }),
    }
}

impl MetricsSource for Broker {
    fn render(&self, out: &mut String) {
        metrics::render_broker(self, out);
    }

    fn is_ready(&self) -> bool {
        Broker::is_ready(self)
    }
}

/// Builds every listener's security (TLS key stores read, SASL users parsed) and binds
/// it, naming the address on failure.
async fn bind_listeners(config: &KafkaConfig) -> Result<Vec<server::Listener>, StartupError> {
    let mut out = Vec::new();
    for endpoint in &config.listeners {
        let security = security::ListenerSecurity::build(config, &endpoint.listener_name)
            .map_err(StartupError::Security)?;
        let address = endpoint.bind_address();
        let socket = TcpListener::bind(&address)
            .await
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?;
        out.push(server::Listener {
            name: endpoint.listener_name.clone(),
            socket,
            security,
        });
    }
    Ok(out)
}

/// Starts a broker: opens its metadata store and logs, binds its listeners, registers,
/// starts the controller, and serves until `shutdown` turns true. Returns once the logs
/// are closed.
/// Runs a broker until `shutdown_signal` turns true, then shuts it down as Kafka does: a
/// controlled shutdown first, while the broker still serves (the controller's
/// LeaderAndIsr and StopReplica, followers' fetches, clients finishing up), and only
/// then the listeners, the background tasks and the logs.
pub async fn run(
    config: KafkaConfig,
    mut shutdown_signal: watch::Receiver<bool>,
) -> Result<(), StartupError> {
    let (stop_tx, shutdown) = watch::channel(false);
    for key in &config.unused {
        info!(key, "configuration key not used by Strata");
    }
    for dir in &config.log_dirs {
        std::fs::create_dir_all(dir).map_err(|source| StartupError::LogDir {
            path: dir.clone(),
            source,
        })?;
    }
    let listeners = bind_listeners(&config).await?;
    let store: Arc<dyn MetadataStore> = match config.zookeeper_settings() {
        Some(settings) => {
            info!(connect = %settings.connect, "using ZooKeeper for cluster metadata");
            ZkMetadataStore::connect(settings).await?
        }
        None => Arc::new(LocalMetadataStore::open(
            &config.log_dirs[0],
            config.broker_id,
        )?),
    };
    let proposed = config
        .cluster_id
        .clone()
        .unwrap_or_else(metadata::new_cluster_id);
    let cluster_id = store.cluster_id(proposed).await?;
    for dir in &config.log_dirs {
        check_meta_properties(dir, &cluster_id, config.broker_id)?;
    }
    // Topic configs first: logs on disk open with them.
    let mut topic_configs = HashMap::new();
    for topic in store.topics().await? {
        let overrides = store
            .entity_configs(config_type::TOPIC.to_string(), topic.clone())
            .await?;
        topic_configs.insert(topic, overrides);
    }
    let log_manager = {
        let dirs = config.log_dirs.clone();
        let defaults = config.log.clone();
        let configs = topic_configs.clone();
        tokio::task::spawn_blocking(move || {
            let per_topic = |t: &str| {
                topic_log_config(&defaults, t, configs.get(t).unwrap_or(&BTreeMap::new()))
            };
            LogManager::startup(dirs, defaults.clone(), per_topic, now_ms())
        })
        .await
        .expect("log manager startup")?
    };
    let cache = Arc::new(MetadataCache::default());
    let listener = config.inter_broker_listener();
    let authorizer =
        security::authorizer::Authorizer::from_config(&config).map_err(StartupError::Security)?;
    let inter_broker_security = Arc::new(
        security::client::ClientSecurity::inter_broker(&config).map_err(StartupError::Security)?,
    );
    let broker_epoch = Arc::new(AtomicI64::new(-1));
    let fetchers = ReplicaFetcherManager::new(
        FetcherConfig {
            broker_id: config.broker_id,
            listener: listener.clone(),
            num_fetchers: config.num_replica_fetchers,
            max_wait_ms: config.replica_fetch_wait_max_ms,
            min_bytes: config.replica_fetch_min_bytes,
            max_bytes: config.replica_fetch_response_max_bytes,
            partition_max_bytes: config.replica_fetch_max_bytes,
            backoff: Duration::from_millis(config.replica_fetch_backoff_ms),
            connector: Connector {
                timeouts: Timeouts {
                    connect: Duration::from_millis(config.socket_connection_setup_timeout_ms),
                    request: Duration::from_millis(config.replica_socket_timeout_ms),
                },
                security: inter_broker_security.clone(),
            },
        },
        cache.clone(),
        Arc::new(ReplicationQuotas::new(
            config.replication_quota_window_num,
            config.replication_quota_window_size_seconds as i64 * 1_000,
        )),
    );
    let alter_partition = AlterPartitionManager::new(config.broker_id, broker_epoch.clone());
    let replica_manager = ReplicaManager::new(
        ReplicaConfig {
            broker_id: config.broker_id,
            replica_lag_time_max_ms: config.replica_lag_time_max_ms,
        },
        log_manager,
        cache.clone(),
        fetchers,
        alter_partition.clone(),
    );
    let controller_connector = Connector {
        timeouts: Timeouts {
            connect: Duration::from_millis(config.socket_connection_setup_timeout_ms),
            request: Duration::from_millis(config.controller_socket_timeout_ms),
        },
        security: inter_broker_security,
    };
    let controller = Arc::new(Controller::new(
        ControllerConfig {
            broker_id: config.broker_id,
            inter_broker_listener: listener.clone(),
            connector: controller_connector.clone(),
            unclean_leader_election_enable: config.unclean_leader_election_enable,
            auto_leader_rebalance_enable: config.auto_leader_rebalance_enable,
            leader_imbalance_per_broker_percentage: config.leader_imbalance_per_broker_percentage,
            leader_imbalance_check_interval: Duration::from_secs(
                config.leader_imbalance_check_interval_seconds,
            ),
            delete_topic_enable: config.delete_topic_enable,
        },
        store.clone(),
    ));
    let controller_client = Arc::new(ControllerClient::new(
        config.broker_id,
        controller.clone(),
        cache.clone(),
        listener.clone(),
        controller_connector.clone(),
    ));
    let txns = Arc::new(TransactionManager::new(
        transaction_coordinator_config(&config),
        config.request_timeout(),
    ));
    let groups = Arc::new(GroupManager::for_groups(
        group_coordinator_config(&config),
        rand::random(),
        Duration::from_millis(config.offsets_commit_timeout_ms),
    ));
    let broker = Arc::new(Broker {
        cluster_id,
        store: store.clone(),
        cache: cache.clone(),
        cache_updates: watch::channel(0).0,
        replica_manager,
        groups,
        txns,
        inter_broker_listener: listener,
        inter_broker_connector: controller_connector,
        metrics: Arc::new(Metrics::default()),
        controller: controller.clone(),
        controller_client: controller_client.clone(),
        producer_ids: ProducerIdManager::default(),
        fetch_sessions: std::sync::Mutex::new(fetch_session::FetchSessionCache::new(
            config.max_incremental_fetch_session_cache_slots,
            fetch_session::EVICTION_MS,
        )),
        authorizer,
        broker_epoch: broker_epoch.clone(),
        topic_configs: RwLock::new(topic_configs),
        dynamic_configs: RwLock::new(DynamicBrokerConfigs::default()),
        config,
    });
    broker.reload_dynamic_configs().await;
    broker.reload_acls().await;

    if let Some(address) = broker.config.metrics_address() {
        match TcpListener::bind(&address).await {
            Ok(listener) => {
                info!(%address, "metrics on /metrics");
                tokio::spawn(metrics::serve(
                    listener,
                    broker.metrics.clone(),
                    broker.clone() as Arc<dyn MetricsSource>,
                ));
            }
            // An auxiliary port: the broker serves without it.
            Err(e) => warn!(%address, error = %e, "cannot serve metrics"),
        }
    }

    let registration = BrokerRegistration {
        id: broker.config.broker_id,
        endpoints: broker
            .config
            .advertised_endpoints()
            .into_iter()
            .map(|e| BrokerEndpoint {
                security_protocol: broker
                    .config
                    .listener_security_protocol(&e.listener_name)
                    .and_then(|p| SecurityProtocol::parse(&p))
                    .unwrap_or(SecurityProtocol::Plaintext),
                listener: e.listener_name,
                host: e.host,
                port: e.port,
            })
            .collect(),
        rack: broker.config.broker_rack.clone(),
        epoch: -1,
    };
    let epoch = store.register_broker(registration).await?;
    broker_epoch.store(epoch, Ordering::Release);
    let local: std::sync::Weak<dyn LocalBroker> = {
        let weak: std::sync::Weak<Broker> = Arc::downgrade(&broker);
        weak
    };
    controller.start(local);

    let tasks = vec![
        tokio::spawn(broker.clone().run_background_tasks(shutdown.clone())),
        tokio::spawn(broker.clone().run_metadata_listener(shutdown.clone())),
        tokio::spawn(broker.groups.clone().run_ticks(shutdown.clone())),
        tokio::spawn(
            broker
                .groups
                .clone()
                .run_appender(broker.clone(), shutdown.clone()),
        ),
        tokio::spawn(broker.txns.clone().run(broker.clone(), shutdown.clone())),
        tokio::spawn(alter_partition.run(controller_client, cache, shutdown.clone())),
    ];

    // A cluster of one elects itself in-process: wait for that before taking clients,
    // so the first request already sees the broker's own topics.
    if !store.is_shared() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut updates = broker.cache_updates.subscribe();
        while !broker.is_ready() {
            if tokio::time::timeout_at(deadline, updates.changed())
                .await
                .is_err()
            {
                warn!("the local controller has not described the cluster yet; serving anyway");
                break;
            }
        }
    }
    info!(
        broker_id = broker.config.broker_id,
        cluster_id = %broker.cluster_id,
        broker_epoch = epoch,
        advertised = ?broker.config.advertised_endpoints(),
        "serving"
    );

    let server = tokio::spawn(server::serve_all(
        broker.clone(),
        listeners,
        shutdown.clone(),
    ));
    let _ = shutdown_signal.wait_for(|stop| *stop).await;

    // Leaderships away first, then stop serving and everything else, then the logs.
    broker.controlled_shutdown().await;
    let _ = stop_tx.send(true);
    let _ = server.await;
    broker.controller.shutdown().await;
    broker.replica_manager.fetchers.shutdown();
    for task in tasks {
        let _ = task.await;
    }
    broker.store.close().await;
    let closing = broker.clone();
    let _ = tokio::task::spawn_blocking(move || closing.shutdown_logs()).await;
    Ok(())
}

/// The offsets topic's replication factor: `offsets.topic.replication.factor`, except
/// that a cluster of one (no `zookeeper.connect`) uses 1, since it can never have more.
pub fn offsets_topic_replication_factor(broker: &Broker) -> i16 {
    if broker.store.is_shared() {
        broker.config.offsets_topic_replication_factor
    } else {
        1
    }
}

/// `__transaction_state`'s replication factor: `transaction.state.log.replication.factor`,
/// except that a cluster of one uses 1.
pub fn transaction_state_replication_factor(broker: &Broker) -> i16 {
    if broker.store.is_shared() {
        broker.config.transaction_state_log_replication_factor
    } else {
        1
    }
}

/// `__transaction_state` as Kafka creates it: compacted, without unclean elections, with
/// `transaction.state.log.min.isr` and `transaction.state.log.segment.bytes` (the minimum
/// ISR capped by the replication factor, so a smaller cluster can still write).
pub fn transaction_state_configs(broker: &Broker) -> BTreeMap<String, String> {
    let min_isr = broker
        .config
        .transaction_state_log_min_isr
        .min(i32::from(transaction_state_replication_factor(broker)));
    [
        ("cleanup.policy", "compact".to_string()),
        ("unclean.leader.election.enable", "false".to_string()),
        ("min.insync.replicas", min_isr.to_string()),
        (
            "segment.bytes",
            broker
                .config
                .transaction_state_log_segment_bytes
                .to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// `__consumer_offsets` is compacted, with Kafka's segment size for it.
pub fn offsets_topic_configs() -> BTreeMap<String, String> {
    [
        ("cleanup.policy", "compact"),
        ("segment.bytes", "104857600"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}
