//! Cluster metadata in a ZooKeeper ensemble, in Kafka's znode layout (see [`super`]).
//!
//! The session follows Kafka's `KafkaZkClient`: `zookeeper.connect` (hosts and an optional
//! chroot, created if missing), `zookeeper.session.timeout.ms`,
//! `zookeeper.connection.timeout.ms` for the first connection. Requests that fail with a
//! lost connection are retried until the connection is back (`retryRequestUntilConnected`);
//! a session that expires is announced ([`MetadataEvent::SessionExpired`]: a controller
//! resigns), replaced by a new one, the broker's registration re-created (retried until it
//! succeeds), and [`MetadataEvent::SessionReestablished`] tells the broker and the
//! controller.
//!
//! Changes are observed through persistent watches (ZooKeeper 3.6+, `addWatch`). The
//! `zookeeper-client` crate does not re-send persistent watches when it reconnects, and
//! notifications that happen while disconnected can be lost anyway (ZOOKEEPER-4698), so
//! after a reconnect the watches are added again and the reconnect is announced as
//! [`MetadataEvent::Reconnected`]: readers re-read everything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, join_all};
use tokio::sync::{broadcast, watch};
use tracing::{debug, info, warn};
use uuid::Uuid;
use zookeeper_client::{
    Acls, AddWatchMode, Client, CreateMode, CreateOptions, Error as ZkError, EventType,
    MultiWriteError, MultiWriteResult, SessionState,
};

use super::json;
use super::{
    BrokerRegistration, ControllerFence, CreatedState, IsrChangeNotification, MetadataError,
    MetadataEvent, MetadataStore, PartitionState, ReplicaAssignment, StateWrite, TopicAssignment,
    TopicPartition, config_type,
};
use crate::now_ms;
use crate::security::acl::{self, AclEntry, AclSet, PatternType, ResourcePattern};

const BROKER_IDS: &str = "/brokers/ids";
const TOPICS: &str = "/brokers/topics";
const CONTROLLER: &str = "/controller";
const CONTROLLER_EPOCH: &str = "/controller_epoch";
const DELETE_TOPICS: &str = "/admin/delete_topics";
const CONFIG_CHANGES: &str = "/config/changes";
const CONFIG_CHANGE_PREFIX: &str = "config_change_";
const ISR_CHANGES: &str = "/isr_change_notification";
const PRODUCER_ID_BLOCK: &str = "/latest_producer_id_block";
const CLUSTER_ID: &str = "/cluster/id";
const FEATURE: &str = "/feature";
const ACLS: &str = "/kafka-acl";
const PREFIXED_ACLS: &str = "/kafka-acl-extended/prefixed";
const ACL_CHANGES: &str = "/kafka-acl-changes";
const EXTENDED_ACL_CHANGES: &str = "/kafka-acl-extended-changes";
const ACL_CHANGE_PREFIX: &str = "acl_changes_";
/// Kafka purges config change notifications older than this.
const CONFIG_CHANGE_EXPIRATION_MS: i64 = 15 * 60 * 1000;

/// The persistent paths Kafka creates at start-up (`ZkData.PersistentZkPaths`), with null
/// data as Kafka creates them.
const PERSISTENT_PATHS: &[&str] = &[
    "/consumers",
    BROKER_IDS,
    TOPICS,
    CONFIG_CHANGES,
    DELETE_TOPICS,
    "/brokers/seqid",
    ISR_CHANGES,
    PRODUCER_ID_BLOCK,
    "/log_dir_event_notification",
    "/config/topics",
    "/config/clients",
    "/config/users",
    "/config/brokers",
    "/config/ips",
    ACLS,
    ACL_CHANGES,
    PREFIXED_ACLS,
    EXTENDED_ACL_CHANGES,
];

/// How to reach the ensemble.
#[derive(Debug, Clone)]
pub struct ZkSettings {
    /// `zookeeper.connect`: `host:port[,host:port...][/chroot]`.
    pub connect: String,
    pub session_timeout: Duration,
    pub connection_timeout: Duration,
}

impl ZkSettings {
    /// `(hosts, chroot)`.
    fn split(&self) -> (&str, Option<&str>) {
        match self.connect.find('/') {
            Some(i) if i + 1 < self.connect.len() => (&self.connect[..i], Some(&self.connect[i..])),
            Some(i) => (&self.connect[..i], None),
            None => (&self.connect, None),
        }
    }
}

fn persistent() -> CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

fn ephemeral() -> CreateOptions<'static> {
    CreateMode::Ephemeral.with_acls(Acls::anyone_all())
}

fn sequential() -> CreateOptions<'static> {
    CreateMode::PersistentSequential.with_acls(Acls::anyone_all())
}

fn error(path: &str, e: ZkError) -> MetadataError {
    match e {
        ZkError::NoNode => MetadataError::NoNode(path.to_string()),
        ZkError::NodeExists => MetadataError::NodeExists(path.to_string()),
        ZkError::BadVersion => MetadataError::BadVersion(path.to_string()),
        other => MetadataError::ZooKeeper(format!("{path}: {other}")),
    }
}

/// Errors after which the same request may simply be sent again.
fn is_retriable(e: &ZkError) -> bool {
    matches!(e, ZkError::ConnectionLoss | ZkError::Timeout)
}

pub struct ZkMetadataStore {
    settings: ZkSettings,
    client: RwLock<Option<Client>>,
    events: broadcast::Sender<MetadataEvent>,
    /// Re-created after a session expiry.
    registration: Mutex<Option<BrokerRegistration>>,
    /// The highest config change notification already announced.
    last_config_change: Mutex<Option<String>>,
    /// The tasks reading the current watches; replaced when the watches are re-added.
    watch_tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Set by [`MetadataStore::close`]: the supervisor drops its client handle, so the
    /// session really closes (it lives while any handle does).
    closing: watch::Sender<bool>,
}

impl ZkMetadataStore {
    /// Connects (waiting at most `connection_timeout`), creates the chroot and Kafka's
    /// persistent paths, and starts watching.
    pub async fn connect(settings: ZkSettings) -> Result<Arc<ZkMetadataStore>, MetadataError> {
        let client = new_session(&settings).await?;
        let store = Arc::new(ZkMetadataStore {
            settings,
            client: RwLock::new(Some(client.clone())),
            events: broadcast::channel(4096).0,
            registration: Mutex::new(None),
            last_config_change: Mutex::new(None),
            watch_tasks: Mutex::new(Vec::new()),
            closing: watch::channel(false).0,
        });
        store.create_persistent_paths().await?;
        *store.last_config_change.lock().expect("lock") =
            store.config_change_names().await?.into_iter().max();
        // Follow the session from before the watches are added: a reconnect from then on
        // must add them again.
        let states = client.state_watcher();
        store.watch(&client).await?;
        let mut closing = store.closing.subscribe();
        let supervisor = supervise(Arc::downgrade(&store), client, states);
        tokio::spawn(async move {
            tokio::select! {
                _ = closing.wait_for(|closing| *closing) => {}
                _ = supervisor => {}
            }
        });
        Ok(store)
    }

    fn client(&self) -> Result<Client, MetadataError> {
        self.client
            .read()
            .expect("client lock")
            .clone()
            .ok_or_else(|| MetadataError::ZooKeeper("the session is closed".into()))
    }

    fn emit(&self, event: MetadataEvent) {
        let _ = self.events.send(event);
    }

    /// Runs `op` until it succeeds or fails for a reason other than a lost connection
    /// (Kafka's `retryRequestUntilConnected`). Bounded by the session timeout: past it,
    /// the session is gone anyway.
    async fn retry<T, F, Fut>(&self, mut op: F) -> Result<T, ZkError>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, ZkError>>,
    {
        let deadline = tokio::time::Instant::now() + self.settings.session_timeout * 2;
        loop {
            let client = self.client().map_err(|_| ZkError::ClientClosed)?;
            match op(client).await {
                Err(e) if is_retriable(&e) && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(ZkError::SessionExpired) if tokio::time::Instant::now() < deadline => {
                    // The supervisor is replacing the session.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => return other,
            }
        }
    }

    async fn get(
        &self,
        path: &str,
    ) -> Result<Option<(Vec<u8>, zookeeper_client::Stat)>, MetadataError> {
        match self.retry(|c| async move { c.get_data(path).await }).await {
            Ok(v) => Ok(Some(v)),
            Err(ZkError::NoNode) => Ok(None),
            Err(e) => Err(error(path, e)),
        }
    }

    async fn children(&self, path: &str) -> Result<Vec<String>, MetadataError> {
        match self
            .retry(|c| async move { c.list_children(path).await })
            .await
        {
            Ok(v) => Ok(v),
            Err(ZkError::NoNode) => Ok(Vec::new()),
            Err(e) => Err(error(path, e)),
        }
    }

    /// Creates `path` (and missing parents) with `data`; an existing node is fine.
    async fn ensure(&self, path: &str, data: &[u8]) -> Result<(), MetadataError> {
        if let Some((parent, _)) = path.rsplit_once('/')
            && !parent.is_empty()
        {
            Box::pin(self.ensure(parent, &[])).await?;
        }
        match self
            .retry(|c| async move { c.create(path, data, &persistent()).await })
            .await
        {
            Ok(_) | Err(ZkError::NodeExists) => Ok(()),
            Err(e) => Err(error(path, e)),
        }
    }

    async fn create_persistent_paths(&self) -> Result<(), MetadataError> {
        for path in PERSISTENT_PATHS {
            self.ensure(path, &[]).await?;
        }
        // A ZooKeeper-mode controller finalizes no features; the node tells newer
        // brokers that feature versioning is enabled.
        match self
            .retry(|c| async move {
                c.create(FEATURE, &json::encode_feature_enabled(), &persistent())
                    .await
            })
            .await
        {
            Ok(_) | Err(ZkError::NodeExists) => Ok(()),
            Err(e) => Err(error(FEATURE, e)),
        }
    }

    /// Persistent watches on every path the broker and the controller follow; each feeds
    /// a task that turns node events into [`MetadataEvent`]s. Replaces the watches (and
    /// tasks) of an earlier call.
    async fn watch(self: &Arc<Self>, client: &Client) -> Result<(), MetadataError> {
        for task in self.watch_tasks.lock().expect("watch tasks lock").drain(..) {
            task.abort();
        }
        let paths: [(&str, AddWatchMode); 8] = [
            (BROKER_IDS, AddWatchMode::Persistent),
            (TOPICS, AddWatchMode::PersistentRecursive),
            (DELETE_TOPICS, AddWatchMode::Persistent),
            (CONTROLLER, AddWatchMode::Persistent),
            (ISR_CHANGES, AddWatchMode::Persistent),
            (CONFIG_CHANGES, AddWatchMode::Persistent),
            (ACL_CHANGES, AddWatchMode::Persistent),
            (EXTENDED_ACL_CHANGES, AddWatchMode::Persistent),
        ];
        for (path, mode) in paths {
            let mut watcher = client.watch(path, mode).await.map_err(|e| error(path, e))?;
            let store = Arc::downgrade(self);
            let task = tokio::spawn(async move {
                loop {
                    let event = watcher.changed().await;
                    if event.event_type == EventType::Session {
                        if event.session_state.is_terminated() {
                            return;
                        }
                        continue;
                    }
                    let Some(store) = store.upgrade() else {
                        return;
                    };
                    store.on_node_event(event.event_type, &event.path).await;
                }
            });
            self.watch_tasks
                .lock()
                .expect("watch tasks lock")
                .push(task);
        }
        Ok(())
    }

    async fn on_node_event(&self, event_type: EventType, path: &str) {
        debug!(?event_type, path, "ZooKeeper notification");
        if path == BROKER_IDS {
            self.emit(MetadataEvent::BrokersChanged);
        } else if path == CONTROLLER {
            self.emit(MetadataEvent::ControllerChanged);
        } else if path == DELETE_TOPICS {
            self.emit(MetadataEvent::TopicDeletionsChanged);
        } else if path == ISR_CHANGES {
            self.emit(MetadataEvent::IsrChangeNotification);
        } else if path == ACL_CHANGES || path == EXTENDED_ACL_CHANGES {
            if event_type == EventType::NodeChildrenChanged {
                self.emit(MetadataEvent::AclsChanged);
                self.purge_expired(path).await;
            }
        } else if path == CONFIG_CHANGES {
            if let Err(e) = self.process_config_changes().await {
                warn!(error = %e, "reading config change notifications failed");
            }
        } else if let Some(rest) = path.strip_prefix("/brokers/topics/") {
            // Only the topic znode itself; partition states below it are the
            // controller's own writes.
            if !rest.contains('/') {
                match event_type {
                    EventType::NodeDataChanged => {
                        self.emit(MetadataEvent::TopicChanged(rest.to_string()))
                    }
                    EventType::NodeCreated | EventType::NodeDeleted => {
                        self.emit(MetadataEvent::TopicsChanged)
                    }
                    _ => {}
                }
            }
        }
    }

    /// Deletes the notifications under `path` older than Kafka keeps them.
    async fn purge_expired(&self, path: &str) {
        let Ok(names) = self.children(path).await else {
            return;
        };
        for name in names {
            let child = format!("{path}/{name}");
            if let Ok(Some((_, stat))) = self.get(&child).await
                && now_ms() - stat.ctime > CONFIG_CHANGE_EXPIRATION_MS
            {
                let _ = self
                    .retry(|c| {
                        let child = child.clone();
                        async move { c.delete(&child, None).await }
                    })
                    .await;
            }
        }
    }

    /// One pattern's ACLs and the znode's version (`None`: no znode).
    async fn pattern_acls(
        &self,
        path: &str,
    ) -> Result<(BTreeSet<AclEntry>, Option<i32>), MetadataError> {
        match self.get(path).await? {
            None => Ok((BTreeSet::new(), None)),
            Some((data, stat)) => {
                let entries = acl::decode_acls(&data).map_err(|reason| MetadataError::Corrupt {
                    path: path.to_string(),
                    reason,
                })?;
                Ok((entries, Some(stat.version)))
            }
        }
    }

    async fn config_change_names(&self) -> Result<Vec<String>, MetadataError> {
        Ok(self
            .children(CONFIG_CHANGES)
            .await?
            .into_iter()
            .filter(|n| n.starts_with(CONFIG_CHANGE_PREFIX))
            .collect())
    }

    /// Announces notifications newer than the last one seen, and purges expired ones
    /// (Kafka's `ZkNodeChangeNotificationListener`).
    async fn process_config_changes(&self) -> Result<(), MetadataError> {
        let mut names = self.config_change_names().await?;
        names.sort();
        let last = self.last_config_change.lock().expect("lock").clone();
        for name in &names {
            let path = format!("{CONFIG_CHANGES}/{name}");
            let Some((data, stat)) = self.get(&path).await? else {
                continue;
            };
            if last.as_ref().is_none_or(|l| name > l) {
                match json::decode_config_change(&data) {
                    Ok((entity_type, entity_name)) => self.emit(MetadataEvent::ConfigChanged {
                        entity_type,
                        entity_name,
                    }),
                    Err(e) => {
                        warn!(%path, error = %e, "ignoring malformed config change notification")
                    }
                }
            }
            if now_ms() - stat.ctime > CONFIG_CHANGE_EXPIRATION_MS {
                let _ = self
                    .retry(|c| {
                        let path = path.clone();
                        async move { c.delete(&path, None).await }
                    })
                    .await;
            }
        }
        if let Some(max) = names.into_iter().max() {
            let mut last = self.last_config_change.lock().expect("lock");
            if last.as_ref().is_none_or(|l| &max > l) {
                *last = Some(max);
            }
        }
        Ok(())
    }

    /// Creates the broker's ephemeral registration. A node left by this broker's previous
    /// session (same data, a session about to expire) is waited out, as Kafka's
    /// `checkedEphemeralCreate` does; a node owned by another live process is an error.
    async fn create_registration(
        &self,
        registration: &BrokerRegistration,
    ) -> Result<i64, MetadataError> {
        let path = format!("{BROKER_IDS}/{}", registration.id);
        let data = json::encode_broker(registration, now_ms());
        let deadline = tokio::time::Instant::now() + self.settings.session_timeout * 2;
        loop {
            match self
                .retry(|c| {
                    let (path, data) = (path.clone(), data.clone());
                    async move { c.create(&path, &data, &ephemeral()).await }
                })
                .await
            {
                Ok((stat, _)) => {
                    info!(
                        broker = registration.id,
                        broker_epoch = stat.czxid,
                        "registered in {BROKER_IDS}"
                    );
                    return Ok(stat.czxid);
                }
                Err(ZkError::NodeExists) => {
                    let session = self.client()?.session_id().0;
                    if let Some((_, stat)) = self.get(&path).await? {
                        if stat.ephemeral_owner == session {
                            return Ok(stat.czxid);
                        }
                        if tokio::time::Instant::now() >= deadline {
                            return Err(MetadataError::BrokerIdInUse(registration.id));
                        }
                        info!(
                            broker = registration.id,
                            "waiting for the registration of a previous session to expire"
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(error(&path, e)),
            }
        }
    }

    /// Deletes `paths` in order, each in a fenced multi; a path already gone is fine.
    async fn fenced_deletes(
        &self,
        fence: ControllerFence,
        paths: Vec<String>,
    ) -> Result<(), MetadataError> {
        for path in paths {
            match self
                .fenced_multi(fence, |m| m.add_delete(&path, None))
                .await?
            {
                Ok(_) | Err((_, ZkError::NoNode)) => {}
                Err((_, e)) => return Err(error(&path, e)),
            }
        }
        Ok(())
    }

    /// A multi with the controller fence first; maps a failed fence to `ControllerMoved`.
    async fn fenced_multi(
        &self,
        fence: ControllerFence,
        build: impl Fn(&mut zookeeper_client::MultiWriter<'_>) -> Result<(), ZkError>,
    ) -> Result<Result<Vec<MultiWriteResult>, (usize, ZkError)>, MetadataError> {
        let build = &build;
        let result = self
            .retry(|c| async move {
                let mut multi = c.new_multi_writer();
                multi.add_check_version(CONTROLLER_EPOCH, fence.epoch_zk_version)?;
                build(&mut multi)?;
                match multi.commit().await {
                    Ok(r) => Ok(Ok(r)),
                    Err(MultiWriteError::OperationFailed { index, source }) => {
                        Ok(Err((index, source)))
                    }
                    Err(MultiWriteError::RequestFailed { source }) => Err(source),
                }
            })
            .await
            .map_err(|e| error("multi", e))?;
        match result {
            Err((0, ZkError::BadVersion | ZkError::NoNode)) => {
                Err(MetadataError::ControllerMoved {
                    expected: fence.epoch_zk_version,
                })
            }
            other => Ok(other
                .map(|mut r| {
                    r.remove(0);
                    r
                })
                .map_err(|(i, e)| (i - 1, e))),
        }
    }
}

async fn new_session(settings: &ZkSettings) -> Result<Client, MetadataError> {
    let (hosts, chroot) = settings.split();
    let connect = Client::connector()
        .with_session_timeout(settings.session_timeout)
        .with_connection_timeout(settings.connection_timeout)
        .connect(hosts);
    let client = tokio::time::timeout(settings.connection_timeout, connect)
        .await
        .map_err(|_| {
            MetadataError::ZooKeeper(format!(
                "timed out after {} ms waiting for a connection to {hosts} (zookeeper.connection.timeout.ms)",
                settings.connection_timeout.as_millis()
            ))
        })?
        .map_err(|e| MetadataError::ZooKeeper(format!("cannot connect to {hosts}: {e}")))?;
    let Some(chroot) = chroot else {
        return Ok(client);
    };
    // Kafka creates its chroot on first start.
    match client.mkdir(chroot, &persistent()).await {
        Ok(()) | Err(ZkError::NodeExists) => {}
        Err(e) => return Err(error(chroot, e)),
    }
    client
        .chroot(chroot.to_string())
        .map_err(|_| MetadataError::ZooKeeper(format!("bad chroot {chroot}")))
}

/// Follows the session: announces reconnects, and replaces an expired session with a new
/// one (re-creating watches and the broker's registration).
///
/// `states` was taken before the session's watches were added. It is a watch channel:
/// a quick disconnect and reconnect can reach it as one change to "connected", so every
/// change to a connected state counts as a reconnect (adding the watches once too often
/// costs a re-read; missing a reconnect would leave the broker deaf to every change).
/// Reconnects while a new session's registration is retried are caught the same way.
async fn supervise(
    store: std::sync::Weak<ZkMetadataStore>,
    client: Client,
    states: zookeeper_client::StateWatcher,
) {
    let mut client = client;
    let mut states = states;
    loop {
        let expired = loop {
            match states.changed().await {
                SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                    let Some(store) = store.upgrade() else { return };
                    info!("ZooKeeper connection re-established");
                    if let Err(e) = store.watch(&client).await {
                        warn!(error = %e, "cannot watch again after a reconnect");
                    }
                    store.emit(MetadataEvent::Reconnected);
                }
                SessionState::Expired => break true,
                SessionState::Closed | SessionState::AuthFailed => break false,
                _ => {}
            }
        };
        drop(client);
        if !expired {
            return;
        }
        warn!("ZooKeeper session expired; starting a new one");
        match store.upgrade() {
            Some(store) => store.emit(MetadataEvent::SessionExpired),
            None => return,
        }
        client = loop {
            let Some(store) = store.upgrade() else { return };
            match new_session(&store.settings).await {
                Ok(c) => break c,
                Err(e) => {
                    warn!(error = %e, "cannot start a new ZooKeeper session; retrying");
                    drop(store);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let Some(store) = store.upgrade() else { return };
        states = client.state_watcher();
        *store.client.write().expect("client lock") = Some(client.clone());
        // The broker is not part of the cluster until it is registered again: keep
        // trying for as long as this session lives (Kafka's RegisterBrokerAndReelect).
        let registration = store.registration.lock().expect("lock").clone();
        let mut broker_epoch = -1;
        loop {
            if client.state().is_terminated() {
                break;
            }
            if let Err(e) = store.watch(&client).await {
                warn!(error = %e, "cannot watch after a new session; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            let Some(r) = &registration else { break };
            match store.create_registration(r).await {
                Ok(epoch) => {
                    broker_epoch = epoch;
                    break;
                }
                Err(e) => {
                    warn!(error = %e, "cannot register after a new session; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        if registration.is_none() || broker_epoch >= 0 {
            store.emit(MetadataEvent::SessionReestablished { broker_epoch });
        }
    }
}

impl MetadataStore for ZkMetadataStore {
    fn subscribe(&self) -> broadcast::Receiver<MetadataEvent> {
        self.events.subscribe()
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn cluster_id(&self, proposed: String) -> BoxFuture<'_, Result<String, MetadataError>> {
        async move {
            self.ensure("/cluster", &[]).await?;
            let data = json::encode_cluster_id(&proposed);
            match self
                .retry(|c| {
                    let data = data.clone();
                    async move { c.create(CLUSTER_ID, &data, &persistent()).await }
                })
                .await
            {
                Ok(_) => Ok(proposed),
                Err(ZkError::NodeExists) => {
                    let (data, _) = self
                        .get(CLUSTER_ID)
                        .await?
                        .ok_or_else(|| MetadataError::NoNode(CLUSTER_ID.into()))?;
                    json::decode_cluster_id(&data).map_err(|e| MetadataError::Corrupt {
                        path: CLUSTER_ID.into(),
                        reason: e.to_string(),
                    })
                }
                Err(e) => Err(error(CLUSTER_ID, e)),
            }
        }
        .boxed()
    }

    fn register_broker(
        &self,
        registration: BrokerRegistration,
    ) -> BoxFuture<'_, Result<i64, MetadataError>> {
        async move {
            let epoch = self.create_registration(&registration).await?;
            *self.registration.lock().expect("lock") = Some(registration);
            Ok(epoch)
        }
        .boxed()
    }

    fn brokers(&self) -> BoxFuture<'_, Result<Vec<BrokerRegistration>, MetadataError>> {
        async move {
            let ids = self.children(BROKER_IDS).await?;
            let reads = ids
                .iter()
                .filter_map(|id| id.parse::<i32>().ok())
                .map(|id| async move {
                    let path = format!("{BROKER_IDS}/{id}");
                    (id, path.clone(), self.get(&path).await)
                });
            let mut brokers = Vec::new();
            for (id, path, read) in join_all(reads).await {
                let Some((data, stat)) = read? else { continue };
                match json::decode_broker(id, &data, stat.czxid) {
                    Ok(b) => brokers.push(b),
                    Err(e) => warn!(%path, error = %e, "ignoring unreadable broker registration"),
                }
            }
            brokers.sort_by_key(|b| b.id);
            Ok(brokers)
        }
        .boxed()
    }

    fn controller_id(&self) -> BoxFuture<'_, Result<Option<i32>, MetadataError>> {
        async move {
            let Some((data, _)) = self.get(CONTROLLER).await? else {
                return Ok(None);
            };
            json::decode_controller(&data)
                .map(Some)
                .map_err(|e| MetadataError::Corrupt {
                    path: CONTROLLER.into(),
                    reason: e.to_string(),
                })
        }
        .boxed()
    }

    fn elect_controller(
        &self,
        broker_id: i32,
    ) -> BoxFuture<'_, Result<Option<ControllerFence>, MetadataError>> {
        async move {
            // Kafka's registerControllerAndIncrementControllerEpoch.
            let (epoch, version) = match self.get(CONTROLLER_EPOCH).await? {
                Some((data, stat)) => (
                    json::decode_controller_epoch(&data).map_err(|e| MetadataError::Corrupt {
                        path: CONTROLLER_EPOCH.into(),
                        reason: e.to_string(),
                    })?,
                    stat.version,
                ),
                None => match self
                    .retry(|c| async move {
                        c.create(
                            CONTROLLER_EPOCH,
                            &json::encode_controller_epoch(0),
                            &persistent(),
                        )
                        .await
                    })
                    .await
                {
                    Ok((stat, _)) => (0, stat.version),
                    Err(ZkError::NodeExists) => return Ok(None),
                    Err(e) => return Err(error(CONTROLLER_EPOCH, e)),
                },
            };
            let new_epoch = epoch + 1;
            let controller = json::encode_controller(broker_id, now_ms());
            let epoch_data = json::encode_controller_epoch(new_epoch);
            let outcome = self
                .retry(|c| {
                    let (controller, epoch_data) = (controller.clone(), epoch_data.clone());
                    async move {
                        let mut multi = c.new_multi_writer();
                        multi.add_create(CONTROLLER, &controller, &ephemeral())?;
                        multi.add_set_data(CONTROLLER_EPOCH, &epoch_data, Some(version))?;
                        match multi.commit().await {
                            Ok(mut results) => match results.pop() {
                                Some(MultiWriteResult::SetData { stat }) => Ok(Some(stat.version)),
                                _ => Err(ZkError::UnexpectedError("multi result".into())),
                            },
                            Err(MultiWriteError::OperationFailed {
                                source: ZkError::NodeExists | ZkError::BadVersion,
                                ..
                            }) => Ok(None),
                            Err(e) => Err(e.into()),
                        }
                    }
                })
                .await
                .map_err(|e| error(CONTROLLER, e))?;
            match outcome {
                Some(epoch_zk_version) => Ok(Some(ControllerFence {
                    epoch: new_epoch,
                    epoch_zk_version,
                })),
                None => {
                    // A retried multi may have succeeded the first time: check whether
                    // the controller is us at the new epoch (Kafka's checkControllerAndEpoch).
                    if self.controller_id().await? == Some(broker_id)
                        && let Some((data, stat)) = self.get(CONTROLLER_EPOCH).await?
                        && json::decode_controller_epoch(&data).ok() == Some(new_epoch)
                    {
                        return Ok(Some(ControllerFence {
                            epoch: new_epoch,
                            epoch_zk_version: stat.version,
                        }));
                    }
                    Ok(None)
                }
            }
        }
        .boxed()
    }

    fn topics(&self) -> BoxFuture<'_, Result<Vec<String>, MetadataError>> {
        async move { self.children(TOPICS).await }.boxed()
    }

    fn topic_assignments(
        &self,
        topics: Vec<String>,
    ) -> BoxFuture<'_, Result<BTreeMap<String, TopicAssignment>, MetadataError>> {
        async move {
            let reads = topics.into_iter().map(|t| async move {
                let path = format!("{TOPICS}/{t}");
                let read = self.get(&path).await;
                (t, path, read)
            });
            let mut out = BTreeMap::new();
            for (topic, path, read) in join_all(reads).await {
                let Some((data, stat)) = read? else { continue };
                let (topic_id, partitions) =
                    json::decode_topic(&data).map_err(|e| MetadataError::Corrupt {
                        path,
                        reason: e.to_string(),
                    })?;
                out.insert(
                    topic,
                    TopicAssignment {
                        topic_id,
                        partitions,
                        version: stat.version,
                    },
                );
            }
            Ok(out)
        }
        .boxed()
    }

    fn create_topic(
        &self,
        topic: String,
        topic_id: Uuid,
        assignment: BTreeMap<i32, Vec<i32>>,
        configs: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<bool, MetadataError>> {
        async move {
            let topic_path = format!("{TOPICS}/{topic}");
            if self.get(&topic_path).await?.is_some() {
                return Ok(false);
            }
            // As AdminZkClient: the config first, so the controller finds it when it
            // sees the topic.
            let config_path = format!("/config/{}/{topic}", config_type::TOPIC);
            let config_data = json::encode_entity_config(&configs);
            match self
                .retry(|c| {
                    let (p, d) = (config_path.clone(), config_data.clone());
                    async move { c.create(&p, &d, &persistent()).await }
                })
                .await
            {
                Ok(_) => {}
                Err(ZkError::NodeExists) => {
                    self.retry(|c| {
                        let (p, d) = (config_path.clone(), config_data.clone());
                        async move { c.set_data(&p, &d, None).await }
                    })
                    .await
                    .map_err(|e| error(&config_path, e))?;
                }
                Err(e) => return Err(error(&config_path, e)),
            }
            let partitions: BTreeMap<i32, ReplicaAssignment> = assignment
                .into_iter()
                .map(|(p, r)| (p, ReplicaAssignment::new(r)))
                .collect();
            let data = json::encode_topic(topic_id, &partitions);
            match self
                .retry(|c| {
                    let (p, d) = (topic_path.clone(), data.clone());
                    async move { c.create(&p, &d, &persistent()).await }
                })
                .await
            {
                Ok(_) => Ok(true),
                Err(ZkError::NodeExists) => Ok(false),
                Err(e) => Err(error(&topic_path, e)),
            }
        }
        .boxed()
    }

    fn set_topic_assignment(
        &self,
        topic: String,
        assignment: TopicAssignment,
        fence: Option<ControllerFence>,
    ) -> BoxFuture<'_, Result<i32, MetadataError>> {
        async move {
            let path = format!("{TOPICS}/{topic}");
            let data = json::encode_topic(assignment.topic_id, &assignment.partitions);
            let version = assignment.version;
            match fence {
                Some(fence) => {
                    let result = self
                        .fenced_multi(fence, |m| m.add_set_data(&path, &data, Some(version)))
                        .await?;
                    match result {
                        Ok(mut r) => match r.pop() {
                            Some(MultiWriteResult::SetData { stat }) => Ok(stat.version),
                            _ => Err(MetadataError::ZooKeeper("unexpected multi result".into())),
                        },
                        Err((_, e)) => Err(error(&path, e)),
                    }
                }
                None => self
                    .retry(|c| {
                        let (p, d) = (path.clone(), data.clone());
                        async move { c.set_data(&p, &d, Some(version)).await }
                    })
                    .await
                    .map(|stat| stat.version)
                    .map_err(|e| error(&path, e)),
            }
        }
        .boxed()
    }

    fn partition_states(
        &self,
        partitions: Vec<TopicPartition>,
    ) -> BoxFuture<'_, Result<BTreeMap<TopicPartition, PartitionState>, MetadataError>> {
        async move {
            let reads = partitions.into_iter().map(|(t, p)| async move {
                let path = format!("{TOPICS}/{t}/partitions/{p}/state");
                let read = self.get(&path).await;
                ((t, p), path, read)
            });
            let mut out = BTreeMap::new();
            for (tp, path, read) in join_all(reads).await {
                let Some((data, stat)) = read? else { continue };
                let state = json::decode_partition_state(&data, stat.version).map_err(|e| {
                    MetadataError::Corrupt {
                        path,
                        reason: e.to_string(),
                    }
                })?;
                out.insert(tp, state);
            }
            Ok(out)
        }
        .boxed()
    }

    fn create_partition_states(
        &self,
        fence: ControllerFence,
        states: Vec<(TopicPartition, PartitionState)>,
    ) -> BoxFuture<'_, Result<Vec<CreatedState>, MetadataError>> {
        async move {
            let creates = states.into_iter().map(|((t, p), state)| async move {
                let parent = format!("{TOPICS}/{t}/partitions/{p}");
                if let Err(e) = self.ensure(&parent, &[]).await {
                    return Ok(((t, p), Err(e)));
                }
                let path = format!("{parent}/state");
                let data = json::encode_partition_state(&state);
                let result = self
                    .fenced_multi(fence, |m| m.add_create(&path, &data, &persistent()))
                    .await?;
                let outcome = match result {
                    Ok(_) => Ok(0),
                    Err((_, e)) => Err(error(&path, e)),
                };
                Ok(((t, p), outcome))
            });
            join_all(creates).await.into_iter().collect()
        }
        .boxed()
    }

    fn update_partition_states(
        &self,
        fence: ControllerFence,
        states: Vec<(TopicPartition, PartitionState)>,
    ) -> BoxFuture<'_, Result<Vec<(TopicPartition, StateWrite)>, MetadataError>> {
        async move {
            let updates = states.into_iter().map(|((t, p), state)| async move {
                let path = format!("{TOPICS}/{t}/partitions/{p}/state");
                let data = json::encode_partition_state(&state);
                let version = state.leader_and_isr.partition_epoch;
                let result = self
                    .fenced_multi(fence, |m| m.add_set_data(&path, &data, Some(version)))
                    .await?;
                let outcome = match result {
                    Ok(mut r) => match r.pop() {
                        Some(MultiWriteResult::SetData { stat }) => {
                            StateWrite::Updated(stat.version)
                        }
                        _ => StateWrite::BadVersion,
                    },
                    Err((_, ZkError::NoNode)) => StateWrite::NoNode,
                    Err((_, ZkError::BadVersion)) => StateWrite::BadVersion,
                    Err((_, e)) => return Err(error(&path, e)),
                };
                Ok(((t, p), outcome))
            });
            join_all(updates).await.into_iter().collect()
        }
        .boxed()
    }

    fn topic_deletions(&self) -> BoxFuture<'_, Result<Vec<String>, MetadataError>> {
        async move { self.children(DELETE_TOPICS).await }.boxed()
    }

    fn mark_topics_for_deletion(
        &self,
        topics: Vec<String>,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        async move {
            for topic in topics {
                let path = format!("{DELETE_TOPICS}/{topic}");
                match self
                    .retry(|c| {
                        let p = path.clone();
                        async move { c.create(&p, json::NO_DATA, &persistent()).await }
                    })
                    .await
                {
                    Ok(_) | Err(ZkError::NodeExists) => {}
                    Err(e) => return Err(error(&path, e)),
                }
            }
            Ok(())
        }
        .boxed()
    }

    fn delete_topic(
        &self,
        topic: String,
        fence: ControllerFence,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        async move {
            // Children first (partition states), then the topic, its config and the
            // marker, each delete fenced.
            let topic_path = format!("{TOPICS}/{topic}");
            let partitions_path = format!("{topic_path}/partitions");
            let mut doomed = Vec::new();
            for p in self.children(&partitions_path).await? {
                let partition_path = format!("{partitions_path}/{p}");
                for child in self.children(&partition_path).await? {
                    doomed.push(format!("{partition_path}/{child}"));
                }
                doomed.push(partition_path);
            }
            doomed.push(partitions_path);
            doomed.push(topic_path);
            doomed.push(format!("/config/{}/{topic}", config_type::TOPIC));
            doomed.push(format!("{DELETE_TOPICS}/{topic}"));
            self.fenced_deletes(fence, doomed).await
        }
        .boxed()
    }

    fn remove_deletion_markers(
        &self,
        topics: Vec<String>,
        fence: ControllerFence,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        async move {
            let paths = topics
                .iter()
                .map(|t| format!("{DELETE_TOPICS}/{t}"))
                .collect();
            self.fenced_deletes(fence, paths).await
        }
        .boxed()
    }

    fn acls(&self) -> BoxFuture<'_, Result<AclSet, MetadataError>> {
        async move {
            let mut set = AclSet::default();
            for root in [ACLS, PREFIXED_ACLS] {
                for resource_type in self.children(root).await? {
                    let dir = format!("{root}/{resource_type}");
                    for name in self.children(&dir).await? {
                        let path = format!("{dir}/{name}");
                        let Some(pattern) = acl::pattern_from_znode(&path) else {
                            continue;
                        };
                        let (entries, _) = self.pattern_acls(&path).await?;
                        if !entries.is_empty() {
                            set.acls.insert(pattern, entries);
                        }
                    }
                }
            }
            Ok(set)
        }
        .boxed()
    }

    fn update_acls(
        &self,
        pattern: ResourcePattern,
        add: BTreeSet<AclEntry>,
        remove: BTreeSet<AclEntry>,
    ) -> BoxFuture<'_, Result<BTreeSet<AclEntry>, MetadataError>> {
        async move {
            let path = pattern.znode();
            // Read, change, write conditionally on the version read; again if another
            // broker wrote in between (Kafka's AclAuthorizer.updateResourceAcls).
            let entries = loop {
                let (before, version) = self.pattern_acls(&path).await?;
                let mut after = before.clone();
                after.extend(add.iter().cloned());
                after.retain(|e| !remove.contains(e));
                if after == before {
                    return Ok(after);
                }
                let data = acl::encode_acls(&after);
                let written = match version {
                    Some(v) if after.is_empty() => {
                        self.retry(|c| {
                            let p = path.clone();
                            async move { c.delete(&p, Some(v)).await }
                        })
                        .await
                    }
                    Some(v) => {
                        self.retry(|c| {
                            let (p, d) = (path.clone(), data.clone());
                            async move { c.set_data(&p, &d, Some(v)).await.map(|_| ()) }
                        })
                        .await
                    }
                    None => {
                        if let Some((parent, _)) = path.rsplit_once('/') {
                            self.ensure(parent, &[]).await?;
                        }
                        self.retry(|c| {
                            let (p, d) = (path.clone(), data.clone());
                            async move { c.create(&p, &d, &persistent()).await.map(|_| ()) }
                        })
                        .await
                    }
                };
                match written {
                    Ok(()) => break after,
                    Err(ZkError::BadVersion | ZkError::NoNode | ZkError::NodeExists) => continue,
                    Err(e) => return Err(error(&path, e)),
                }
            };
            // Kafka's notifications: the literal store's data is `Type:name`, the
            // extended store's a JSON document.
            let (changes, data) = match pattern.pattern_type {
                PatternType::Literal => (
                    ACL_CHANGES,
                    format!("{}:{}", pattern.resource_type.name(), pattern.name).into_bytes(),
                ),
                PatternType::Prefixed => (
                    EXTENDED_ACL_CHANGES,
                    serde_json::to_vec(&serde_json::json!({
                        "version": 1,
                        "resourceType": pattern.resource_type.name(),
                        "name": pattern.name,
                        "patternType": "PREFIXED",
                    }))
                    .expect("JSON"),
                ),
            };
            let notification = format!("{changes}/{ACL_CHANGE_PREFIX}");
            self.retry(|c| {
                let (p, d) = (notification.clone(), data.clone());
                async move { c.create(&p, &d, &sequential()).await }
            })
            .await
            .map_err(|e| error(changes, e))?;
            Ok(entries)
        }
        .boxed()
    }

    fn entity_names(
        &self,
        entity_type: String,
    ) -> BoxFuture<'_, Result<Vec<String>, MetadataError>> {
        async move { self.children(&format!("/config/{entity_type}")).await }.boxed()
    }

    fn entity_configs(
        &self,
        entity_type: String,
        entity_name: String,
    ) -> BoxFuture<'_, Result<BTreeMap<String, String>, MetadataError>> {
        async move {
            let path = format!("/config/{entity_type}/{entity_name}");
            match self.get(&path).await? {
                None => Ok(BTreeMap::new()),
                Some((data, _)) => {
                    json::decode_entity_config(&data).map_err(|e| MetadataError::Corrupt {
                        path,
                        reason: e.to_string(),
                    })
                }
            }
        }
        .boxed()
    }

    fn set_entity_configs(
        &self,
        entity_type: String,
        entity_name: String,
        configs: BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        async move {
            let path = format!("/config/{entity_type}/{entity_name}");
            let data = json::encode_entity_config(&configs);
            match self
                .retry(|c| {
                    let (p, d) = (path.clone(), data.clone());
                    async move { c.set_data(&p, &d, None).await }
                })
                .await
            {
                Ok(_) => {}
                Err(ZkError::NoNode) => self.ensure(&path, &data).await?,
                Err(e) => return Err(error(&path, e)),
            }
            let notification = format!("{CONFIG_CHANGES}/{CONFIG_CHANGE_PREFIX}");
            let entity_path = format!("{entity_type}/{entity_name}");
            self.retry(|c| {
                let (p, d) = (
                    notification.clone(),
                    json::encode_config_change(&entity_path),
                );
                async move { c.create(&p, &d, &sequential()).await }
            })
            .await
            .map_err(|e| error(CONFIG_CHANGES, e))?;
            Ok(())
        }
        .boxed()
    }

    fn isr_change_notifications(
        &self,
    ) -> BoxFuture<'_, Result<Vec<IsrChangeNotification>, MetadataError>> {
        async move {
            let mut out = Vec::new();
            for name in self.children(ISR_CHANGES).await? {
                let path = format!("{ISR_CHANGES}/{name}");
                if let Some((data, _)) = self.get(&path).await? {
                    match json::decode_isr_change(&data) {
                        Ok(partitions) => out.push((name, partitions)),
                        Err(e) => {
                            warn!(%path, error = %e, "ignoring malformed ISR change notification");
                            out.push((name, Vec::new()));
                        }
                    }
                }
            }
            Ok(out)
        }
        .boxed()
    }

    fn delete_isr_change_notifications(
        &self,
        names: Vec<String>,
    ) -> BoxFuture<'_, Result<(), MetadataError>> {
        async move {
            for name in names {
                let path = format!("{ISR_CHANGES}/{name}");
                match self
                    .retry(|c| {
                        let p = path.clone();
                        async move { c.delete(&p, None).await }
                    })
                    .await
                {
                    Ok(()) | Err(ZkError::NoNode) => {}
                    Err(e) => return Err(error(&path, e)),
                }
            }
            Ok(())
        }
        .boxed()
    }

    fn allocate_producer_ids(
        &self,
        broker_id: i32,
        block_size: i32,
    ) -> BoxFuture<'_, Result<i64, MetadataError>> {
        async move {
            // Kafka's ZkProducerIdManager.getNewProducerIdBlock: read, then a conditional
            // setData; a lost race reads again.
            loop {
                let (data, stat) = match self.get(PRODUCER_ID_BLOCK).await? {
                    Some(v) => v,
                    None => {
                        self.ensure(PRODUCER_ID_BLOCK, &[]).await?;
                        continue;
                    }
                };
                let first = json::decode_producer_id_block_end(&data)
                    .map_err(|e| MetadataError::Corrupt {
                        path: PRODUCER_ID_BLOCK.into(),
                        reason: e.to_string(),
                    })?
                    .map_or(0, |end| end + 1);
                let next = json::encode_producer_id_block(broker_id, first, block_size);
                let version = stat.version;
                match self
                    .retry(|c| {
                        let d = next.clone();
                        async move { c.set_data(PRODUCER_ID_BLOCK, &d, Some(version)).await }
                    })
                    .await
                {
                    Ok(_) => return Ok(first),
                    Err(ZkError::BadVersion) => continue,
                    Err(e) => return Err(error(PRODUCER_ID_BLOCK, e)),
                }
            }
        }
        .boxed()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        async move {
            // The session closes when its last client handle is dropped, deleting this
            // broker's ephemeral znodes (its registration, `/controller`) at once rather
            // than after the session timeout: stop the supervisor and the watch tasks,
            // drop ours, and wait (briefly) to see the session closed.
            let Some(client) = self.client.write().expect("client lock").take() else {
                return;
            };
            let mut states = client.state_watcher();
            drop(client);
            self.closing.send_replace(true);
            for task in self.watch_tasks.lock().expect("watch tasks lock").drain(..) {
                task.abort();
            }
            let closed = async {
                loop {
                    if states.changed().await.is_terminated() {
                        return;
                    }
                }
            };
            if tokio::time::timeout(Duration::from_secs(2), closed)
                .await
                .is_err()
            {
                warn!(
                    "the ZooKeeper session did not close; its ephemeral znodes go when it expires"
                );
            }
        }
        .boxed()
    }
}
