//! Followers fetch from their leaders (Kafka's `ReplicaFetcherManager` and
//! `ReplicaFetcherThread`).
//!
//! Partitions are spread over `num.replica.fetchers` fetchers per leader broker (by a hash
//! of the partition); each fetcher is one task with one connection to the leader's
//! inter-broker listener. It sends Fetch v12 with `replica_id` = this broker, the log end
//! offset of each partition as its fetch offset and the epoch of its last record
//! (KIP-595), waits up to `replica.fetch.wait.max.ms` for `replica.fetch.min.bytes`, and
//! appends what comes back. A response that reports a diverging epoch makes the follower
//! truncate to where the two logs agree; OFFSET_OUT_OF_RANGE makes it truncate to the
//! leader's log end (after an unclean election) or start over at the leader's log start.
//! Partitions whose leader refuses them (fenced epoch, not the leader) wait for the next
//! LeaderAndIsr, which removes and re-adds them.
//!
//! Each fetcher keeps an incremental fetch session (KIP-227) with its leader: after one
//! full fetch it names only the partitions whose position moved (and those it adds or
//! drops), as Kafka's followers do.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, TopicName};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::partition::Partition;
use crate::api::str_bytes;
use crate::fetch_session::FetchSessionHandler;
use crate::metadata::{MetadataCache, TopicPartition};
use crate::network::{BrokerConnection, Connector, host_port};
use crate::now_ms;
use crate::replica::quota::ReplicationQuotas;

const FETCH_VERSION: i16 = 12;
const LIST_OFFSETS_VERSION: i16 = 4;

/// The `replica.*` settings fetchers use.
#[derive(Debug, Clone)]
pub struct FetcherConfig {
    pub broker_id: i32,
    pub listener: String,
    /// `num.replica.fetchers`.
    pub num_fetchers: usize,
    /// `replica.fetch.wait.max.ms`.
    pub max_wait_ms: i32,
    /// `replica.fetch.min.bytes`.
    pub min_bytes: i32,
    /// `replica.fetch.response.max.bytes`.
    pub max_bytes: i32,
    /// `replica.fetch.max.bytes`.
    pub partition_max_bytes: i32,
    /// `replica.fetch.backoff.ms`.
    pub backoff: Duration,
    /// `socket.connection.setup.timeout.ms`, `replica.socket.timeout.ms`, and the
    /// inter-broker listener's security.
    pub connector: Connector,
}

/// One partition in a fetcher.
struct FetchState {
    partition: Arc<Partition>,
    leader_epoch: i32,
    /// Not fetched until then (after an error).
    delayed_until: Option<Instant>,
    /// The leader's high watermark minus this replica's log end, after the last fetch.
    lag: i64,
    /// Caught up to the leader's high watermark at the last fetch (never before the
    /// first): a replica in sync is never throttled.
    in_sync: bool,
}

struct Fetcher {
    partitions: Mutex<BTreeMap<TopicPartition, FetchState>>,
    wake: Notify,
}

pub struct ReplicaFetcherManager {
    config: FetcherConfig,
    cache: Arc<MetadataCache>,
    /// The follower side of these is applied here.
    pub quotas: Arc<ReplicationQuotas>,
    /// Bytes fetched from leaders (Kafka's `BytesPerSec` of the fetcher).
    pub bytes_fetched: Arc<AtomicI64>,
    fetchers: Mutex<HashMap<(i32, usize), Arc<Fetcher>>>,
}

fn fetcher_id(tp: &TopicPartition, n: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tp.hash(&mut h);
    (h.finish() as usize) % n.max(1)
}

impl ReplicaFetcherManager {
    pub fn new(
        config: FetcherConfig,
        cache: Arc<MetadataCache>,
        quotas: Arc<ReplicationQuotas>,
    ) -> Arc<ReplicaFetcherManager> {
        Arc::new(ReplicaFetcherManager {
            config,
            cache,
            quotas,
            bytes_fetched: Arc::new(AtomicI64::new(0)),
            fetchers: Mutex::new(HashMap::new()),
        })
    }

    /// Starts fetching `partitions` from `leader` at the given leader epoch.
    pub fn add_partitions(self: &Arc<Self>, leader: i32, partitions: Vec<(Arc<Partition>, i32)>) {
        let tps: Vec<TopicPartition> = partitions
            .iter()
            .map(|(p, _)| (p.topic.clone(), p.partition))
            .collect();
        self.remove_partitions(&tps);
        let mut fetchers = self.fetchers.lock().expect("fetchers lock");
        for (partition, leader_epoch) in partitions {
            let tp = (partition.topic.clone(), partition.partition);
            let key = (leader, fetcher_id(&tp, self.config.num_fetchers));
            let fetcher = fetchers
                .entry(key)
                .or_insert_with(|| {
                    let fetcher = Arc::new(Fetcher {
                        partitions: Mutex::new(BTreeMap::new()),
                        wake: Notify::new(),
                    });
                    tokio::spawn(run(self.clone(), leader, key.1, fetcher.clone()));
                    fetcher
                })
                .clone();
            fetcher.partitions.lock().expect("fetcher lock").insert(
                tp,
                FetchState {
                    partition,
                    leader_epoch,
                    delayed_until: None,
                    lag: 0,
                    in_sync: false,
                },
            );
            fetcher.wake.notify_one();
        }
    }

    /// Stops fetching these partitions, wherever they were fetched from. When this
    /// returns, no fetcher will append to them again.
    pub fn remove_partitions(&self, partitions: &[TopicPartition]) {
        let fetchers = self.fetchers.lock().expect("fetchers lock");
        for fetcher in fetchers.values() {
            let mut map = fetcher.partitions.lock().expect("fetcher lock");
            for tp in partitions {
                map.remove(tp);
            }
        }
    }

    /// The largest lag of a partition being fetched, in records (Kafka's `MaxLag`).
    pub fn max_lag(&self) -> i64 {
        let fetchers = self.fetchers.lock().expect("fetchers lock");
        fetchers
            .values()
            .flat_map(|f| {
                f.partitions
                    .lock()
                    .expect("fetcher lock")
                    .values()
                    .map(|s| s.lag)
                    .collect::<Vec<_>>()
            })
            .max()
            .unwrap_or(0)
    }

    /// Partitions being fetched, with their leader, for metrics and tests.
    pub fn fetching(&self) -> Vec<(TopicPartition, i32)> {
        let fetchers = self.fetchers.lock().expect("fetchers lock");
        let mut out = Vec::new();
        for ((leader, _), f) in fetchers.iter() {
            for tp in f.partitions.lock().expect("fetcher lock").keys() {
                out.push((tp.clone(), *leader));
            }
        }
        out
    }

    pub fn shutdown(&self) {
        let mut fetchers = self.fetchers.lock().expect("fetchers lock");
        for f in fetchers.values() {
            f.partitions.lock().expect("fetcher lock").clear();
            f.wake.notify_one();
        }
        fetchers.clear();
    }

    fn leader_address(&self, leader: i32) -> Option<String> {
        let snapshot = self.cache.snapshot();
        let (host, port) = snapshot
            .brokers
            .get(&leader)?
            .endpoint(&self.config.listener)?;
        Some(host_port(host, port))
    }
}

/// The fetch loop of one fetcher. Ends when its partitions are all removed.
async fn run(manager: Arc<ReplicaFetcherManager>, leader: i32, id: usize, fetcher: Arc<Fetcher>) {
    let config = manager.config.clone();
    let client_id = format!("replica-fetcher-{}-to-{leader}-{id}", config.broker_id);
    let mut connection: Option<BrokerConnection> = None;
    let mut session = FetchSessionHandler::default();
    let mut idle_since: Option<Instant> = None;
    loop {
        let (request, sent) = build_request(&config, &fetcher, &manager.quotas, &mut session);
        if sent.is_empty() {
            let empty = fetcher.partitions.lock().expect("fetcher lock").is_empty();
            if empty {
                // An idle fetcher goes away after a while (Kafka's
                // shutdownIdleFetcherThreads); a new partition starts a new one.
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(5) {
                    let mut fetchers = manager.fetchers.lock().expect("fetchers lock");
                    if fetcher.partitions.lock().expect("fetcher lock").is_empty() {
                        fetchers.remove(&(leader, id));
                        return;
                    }
                }
            }
            tokio::select! {
                _ = fetcher.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            continue;
        }
        idle_since = None;
        if connection.is_none() {
            let Some(addr) = manager.leader_address(leader) else {
                debug!(leader, "leader's endpoint is not known yet");
                tokio::time::sleep(config.backoff).await;
                continue;
            };
            match config.connector.connect(&addr, &client_id).await {
                Ok(c) => connection = Some(c),
                Err(e) => {
                    debug!(leader, error = %e, "cannot connect to leader");
                    tokio::time::sleep(config.backoff).await;
                    continue;
                }
            }
        }
        let conn = connection.as_mut().expect("connected");
        let response = match conn.send(&request, FETCH_VERSION).await {
            Ok(r) => r,
            Err(e) => {
                debug!(leader, error = %e, "fetch from leader failed");
                connection = None;
                session.handle_error();
                tokio::time::sleep(config.backoff).await;
                continue;
            }
        };
        if !session.handle_response(
            response.error_code,
            response.session_id,
            &response.responses,
        ) {
            let error = ResponseError::try_from_code(response.error_code);
            debug!(
                leader,
                ?error,
                "fetch refused, or not the answer to the fetch session's request"
            );
            tokio::time::sleep(config.backoff).await;
            continue;
        }
        let mut out_of_range = Vec::new();
        for topic in &response.responses {
            let name = topic.topic.0.to_string();
            for data in &topic.partitions {
                let tp = (name.clone(), data.partition_index);
                let Some(&(fetch_offset, epoch)) = sent.get(&tp) else {
                    continue;
                };
                let outcome = process_partition(&manager, &fetcher, &tp, fetch_offset, epoch, data);
                if let Err(PartitionFetchError::OutOfRange) = outcome {
                    out_of_range.push((tp, fetch_offset, epoch));
                }
            }
        }
        for (tp, fetch_offset, epoch) in out_of_range {
            let conn = connection.as_mut().expect("connected");
            if let Err(e) =
                handle_out_of_range(conn, &config, &fetcher, &tp, fetch_offset, epoch).await
            {
                debug!(leader, topic = %tp.0, partition = tp.1, error = %e, "handling an out-of-range fetch failed");
                connection = None;
                delay(&fetcher, &tp, config.backoff);
                break;
            }
        }
    }
}

/// The fetch request for every partition that is not delayed, with the offsets and
/// epochs it was built from. In a fetch session (KIP-227) the request names only the
/// partitions whose position changed; the leader reads them all.
fn build_request(
    config: &FetcherConfig,
    fetcher: &Fetcher,
    quotas: &ReplicationQuotas,
    session: &mut FetchSessionHandler,
) -> (FetchRequest, BTreeMap<TopicPartition, (i64, i32)>) {
    let now = Instant::now();
    let now_ms = now_ms();
    let mut sent = BTreeMap::new();
    let mut wanted = BTreeMap::new();
    let mut map = fetcher.partitions.lock().expect("fetcher lock");
    for (tp, state) in map.iter_mut() {
        if state.delayed_until.is_some_and(|t| t > now) {
            continue;
        }
        state.delayed_until = None;
        // A throttled replica out of sync sits out while this broker's follower rate is
        // exceeded (KIP-73); it is asked for again on the next round.
        if quotas
            .follower()
            .should_throttle(&tp.0, tp.1, state.in_sync, now_ms)
        {
            continue;
        }
        let (leo, last_epoch, log_start) = state.partition.follower_fetch_position();
        sent.insert(tp.clone(), (leo, state.leader_epoch));
        wanted.insert(
            tp.clone(),
            FetchPartition::default()
                .with_partition(tp.1)
                .with_current_leader_epoch(state.leader_epoch)
                .with_fetch_offset(leo)
                .with_last_fetched_epoch(last_epoch.unwrap_or(-1))
                .with_log_start_offset(log_start)
                .with_partition_max_bytes(config.partition_max_bytes),
        );
    }
    drop(map);
    if wanted.is_empty() {
        return (FetchRequest::default(), sent);
    }
    let data = session.build(wanted);
    let mut topics: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
    for (topic, partition) in data.to_send {
        topics.entry(topic).or_default().push(partition);
    }
    let mut forgotten: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in data.to_forget {
        forgotten.entry(topic).or_default().push(partition);
    }
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(config.broker_id))
        .with_max_wait_ms(config.max_wait_ms)
        .with_min_bytes(config.min_bytes)
        .with_max_bytes(config.max_bytes)
        .with_isolation_level(0)
        .with_session_id(data.session_id)
        .with_session_epoch(data.epoch)
        .with_topics(
            topics
                .into_iter()
                .map(|(t, p)| {
                    FetchTopic::default()
                        .with_topic(TopicName(str_bytes(t)))
                        .with_partitions(p)
                })
                .collect(),
        )
        .with_forgotten_topics_data(
            forgotten
                .into_iter()
                .map(|(t, p)| {
                    ForgottenTopic::default()
                        .with_topic(TopicName(str_bytes(t)))
                        .with_partitions(p)
                })
                .collect(),
        );
    (request, sent)
}

fn delay(fetcher: &Fetcher, tp: &TopicPartition, backoff: Duration) {
    if let Some(s) = fetcher.partitions.lock().expect("fetcher lock").get_mut(tp) {
        s.delayed_until = Some(Instant::now() + backoff);
    }
}

enum PartitionFetchError {
    OutOfRange,
    Other,
}

/// Appends one partition's data, or reacts to its error. Runs under the fetcher's
/// partition map lock, so a partition removed meanwhile (it became leader, or follows a
/// new leader) is never touched by a stale response.
fn process_partition(
    manager: &ReplicaFetcherManager,
    fetcher: &Fetcher,
    tp: &TopicPartition,
    fetch_offset: i64,
    epoch: i32,
    data: &kafka_protocol::messages::fetch_response::PartitionData,
) -> Result<(), PartitionFetchError> {
    let config = &manager.config;
    let mut map = fetcher.partitions.lock().expect("fetcher lock");
    let Some(state) = map.get_mut(tp) else {
        return Ok(());
    };
    if state.leader_epoch != epoch {
        return Ok(());
    }
    let backoff = Some(Instant::now() + config.backoff);
    match ResponseError::try_from_code(data.error_code) {
        None => {}
        Some(ResponseError::OffsetOutOfRange) => return Err(PartitionFetchError::OutOfRange),
        Some(
            e @ (ResponseError::FencedLeaderEpoch
            | ResponseError::NotLeaderOrFollower
            | ResponseError::UnknownTopicOrPartition
            | ResponseError::UnknownLeaderEpoch
            | ResponseError::KafkaStorageError),
        ) => {
            debug!(topic = %tp.0, partition = tp.1, error = ?e, "leader refused the fetch; waiting for new metadata");
            state.delayed_until = backoff;
            return Err(PartitionFetchError::Other);
        }
        Some(e) => {
            warn!(topic = %tp.0, partition = tp.1, error = ?e, "fetch error");
            state.delayed_until = backoff;
            return Err(PartitionFetchError::Other);
        }
    }
    let partition = &state.partition;
    if data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0 {
        let leader_end = (data.diverging_epoch.epoch, data.diverging_epoch.end_offset);
        let point = partition.truncation_point(leader_end, fetch_offset);
        info!(
            topic = %tp.0,
            partition = tp.1,
            leader_epoch = leader_end.0,
            leader_end_offset = leader_end.1,
            truncate_to = point.offset,
            "log diverged from the leader's; truncating"
        );
        if let Err(e) = partition.truncate_to(point.offset) {
            warn!(topic = %tp.0, partition = tp.1, error = %e, "truncation failed");
            state.delayed_until = backoff;
        }
        return Ok(());
    }
    let records = data.records.as_ref().map(|r| &r[..]).unwrap_or_default();
    if !records.is_empty() {
        match partition.append_records_as_follower(records, fetch_offset, now_ms()) {
            Ok(Some(_)) => {
                manager
                    .bytes_fetched
                    .fetch_add(records.len() as i64, Ordering::Relaxed);
                let mut quota = manager.quotas.follower();
                if quota.is_throttled(&tp.0, tp.1) {
                    quota.record(records.len() as u64, now_ms());
                }
            }
            Ok(None) => return Ok(()),
            Err(e) => {
                warn!(topic = %tp.0, partition = tp.1, error = %e, "appending replicated records failed");
                state.delayed_until = backoff;
                return Err(PartitionFetchError::Other);
            }
        }
    }
    if let Err(e) = partition.follower_update_offsets(data.high_watermark, data.log_start_offset) {
        warn!(topic = %tp.0, partition = tp.1, error = %e, "updating follower offsets failed");
    }
    let (leo, _, _) = partition.follower_fetch_position();
    state.lag = (data.high_watermark - leo).max(0);
    state.in_sync = state.lag == 0;
    Ok(())
}

/// OFFSET_OUT_OF_RANGE: ask the leader for its log end; a follower ahead of it (after an
/// unclean election) truncates to it, one behind its log start starts over there
/// (Kafka's `fetchOffsetAndTruncate`).
async fn handle_out_of_range(
    conn: &mut BrokerConnection,
    config: &FetcherConfig,
    fetcher: &Fetcher,
    tp: &TopicPartition,
    fetch_offset: i64,
    epoch: i32,
) -> Result<(), crate::network::NetworkError> {
    let offset_of = async |conn: &mut BrokerConnection, timestamp: i64| {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(config.broker_id))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(TopicName(str_bytes(tp.0.clone())))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(tp.1)
                            .with_current_leader_epoch(epoch)
                            .with_timestamp(timestamp),
                    ]),
            ]);
        let response = conn.send(&request, LIST_OFFSETS_VERSION).await?;
        Ok::<_, crate::network::NetworkError>(
            response
                .topics
                .first()
                .and_then(|t| t.partitions.first())
                .filter(|p| p.error_code == 0)
                .map(|p| p.offset),
        )
    };
    let leader_end = offset_of(conn, -1).await?;
    let partition = {
        let map = fetcher.partitions.lock().expect("fetcher lock");
        match map.get(tp) {
            Some(s) if s.leader_epoch == epoch => s.partition.clone(),
            _ => return Ok(()),
        }
    };
    let Some(leader_end) = leader_end else {
        delay(fetcher, tp, config.backoff);
        return Ok(());
    };
    if leader_end < fetch_offset {
        warn!(topic = %tp.0, partition = tp.1, leader_end, fetch_offset, "follower is ahead of the leader (unclean election); truncating");
        if let Err(e) = partition.truncate_to(leader_end) {
            warn!(error = %e, "truncation failed");
            delay(fetcher, tp, config.backoff);
        }
        return Ok(());
    }
    let Some(leader_start) = offset_of(conn, -2).await? else {
        delay(fetcher, tp, config.backoff);
        return Ok(());
    };
    if fetch_offset < leader_start {
        info!(topic = %tp.0, partition = tp.1, leader_start, fetch_offset, "the leader no longer has the fetch offset; starting over at its log start");
        if let Err(e) = partition.truncate_fully_and_start_at(leader_start, now_ms()) {
            warn!(error = %e, "restarting the log failed");
            delay(fetcher, tp, config.backoff);
        }
    } else {
        delay(fetcher, tp, config.backoff);
    }
    Ok(())
}
