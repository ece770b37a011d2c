//! Incremental fetch sessions (KIP-227), as Kafka's `FetchSessionCache` and `FetchManager`.
//!
//! A client that fetches many partitions names them all once, in a *full* fetch that asks
//! for a session (session id 0, epoch 0); the broker keeps them, with the fetch position
//! and the last high watermark, log start offset and last stable offset it answered for
//! each, and answers with a session id. Every later *incremental* fetch (that id, the next
//! epoch) names only what changed — partitions whose position moved, new partitions, and
//! partitions to forget — and is answered with only the partitions that have something
//! to say: records, a changed offset, an error, a diverging epoch or a new leader. The
//! broker still reads every partition of the session on every fetch.
//!
//! How a request is taken (`FetchSessionCache::new_context`):
//!
//! | session id | epoch | what happens |
//! |---|---|---|
//! | 0 | −1 | no session: fetch and answer the request's partitions |
//! | any | 0 | a full fetch; a named session is closed, a new one created if the cache has room |
//! | *n* | −1 | session *n* closed; a full fetch without a session |
//! | *n* | > 0 | incremental: FETCH_SESSION_ID_NOT_FOUND for an unknown *n*, INVALID_FETCH_SESSION_EPOCH for any epoch but the session's next; a session left without partitions is closed |
//!
//! The cache holds `max.incremental.fetch.session.cache.slots` sessions. When it is full a
//! new session takes the place of one unused for two minutes (Kafka's
//! `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`); failing that, of the least valuable
//! evictable session if the new one is worth more: a follower's session is worth more
//! than a consumer's, then a larger one more than a smaller. A consumer's session becomes
//! evictable by anyone after two minutes, a follower's by a consumer only then and by
//! another follower at once.
//!
//! Partitions that are answered move to the end of their session's order, so the next
//! fetch reads the others first and no partition starves behind busier ones under
//! `max_bytes`.
//!
//! The state is pure; the Fetch handler keeps the cache behind a lock and holds it only
//! while taking a request and while filing its answer, never across the long poll.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use uuid::Uuid;

/// The session id of a fetch outside any session.
pub const INVALID_SESSION_ID: i32 = 0;
/// The epoch of a full fetch that asks for a new session.
pub const INITIAL_EPOCH: i32 = 0;
/// The epoch of a full fetch that closes its session (or asks for none).
pub const FINAL_EPOCH: i32 = -1;
/// Kafka's `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`.
pub const EVICTION_MS: i64 = 120_000;
/// The first Fetch version with sessions.
const MIN_VERSION: i16 = 7;
/// From this version topics are named by id.
const TOPIC_ID_VERSION: i16 = 13;

/// A partition as the session's requests name it: by name before v13, by id from v13
/// (the other part is then empty).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PartitionKey {
    topic: TopicName,
    topic_id: Uuid,
    partition: i32,
}

impl PartitionKey {
    fn of(topic: &TopicName, topic_id: Uuid, partition: i32, uses_topic_ids: bool) -> Self {
        if uses_topic_ids {
            PartitionKey {
                topic: TopicName::default(),
                topic_id,
                partition,
            }
        } else {
            PartitionKey {
                topic: topic.clone(),
                topic_id: Uuid::nil(),
                partition,
            }
        }
    }
}

/// What the session remembers of a partition: how the client fetches it, and what the
/// broker last told it.
#[derive(Clone, Debug)]
struct CachedPartition {
    fetch: FetchPartition,
    /// -1 until answered, and again after an error, so the partition is sent again.
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    /// Position in the session's order.
    seq: u64,
}

impl CachedPartition {
    fn new(fetch: FetchPartition, seq: u64) -> Self {
        CachedPartition {
            fetch,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            seq,
        }
    }

    /// Whether an incremental response must carry `data`; remembers what it tells.
    fn must_respond(&mut self, data: &PartitionData) -> bool {
        let mut respond = data.records.as_ref().is_some_and(|r| !r.is_empty());
        if self.high_watermark != data.high_watermark {
            self.high_watermark = data.high_watermark;
            respond = true;
        }
        if self.log_start_offset != data.log_start_offset {
            self.log_start_offset = data.log_start_offset;
            respond = true;
        }
        if self.last_stable_offset != data.last_stable_offset {
            self.last_stable_offset = data.last_stable_offset;
            respond = true;
        }
        if data.error_code != 0 {
            // Sent again once the error is gone.
            self.high_watermark = -1;
            respond = true;
        }
        respond || data.diverging_epoch.epoch >= 0 || data.current_leader.leader_id.0 >= 0
    }
}

/// One client's session.
#[derive(Debug)]
struct Session {
    /// A follower's (Kafka: privileged).
    follower: bool,
    uses_topic_ids: bool,
    /// The epoch the next incremental fetch must carry.
    epoch: i32,
    created_ms: i64,
    last_used_ms: i64,
    partitions: HashMap<PartitionKey, CachedPartition>,
    /// `seq` → key: the session's order.
    order: BTreeMap<u64, PartitionKey>,
    next_seq: u64,
}

impl Session {
    fn push(&mut self, key: PartitionKey, fetch: FetchPartition) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, key.clone());
        self.partitions
            .insert(key, CachedPartition::new(fetch, seq));
    }

    /// Moves a partition to the end of the order.
    fn move_to_back(&mut self, key: &PartitionKey) {
        let Some(cached) = self.partitions.get_mut(key) else {
            return;
        };
        self.order.remove(&cached.seq);
        cached.seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(cached.seq, key.clone());
    }

    /// Takes an incremental request: changed and new partitions, then the forgotten.
    fn update(&mut self, topics: &[FetchTopic], forgotten: &[ForgottenTopic]) {
        for topic in topics {
            for p in &topic.partitions {
                let key = PartitionKey::of(
                    &topic.topic,
                    topic.topic_id,
                    p.partition,
                    self.uses_topic_ids,
                );
                match self.partitions.get_mut(&key) {
                    Some(cached) => cached.fetch = p.clone(),
                    None => self.push(key, p.clone()),
                }
            }
        }
        for topic in forgotten {
            for &partition in &topic.partitions {
                let key =
                    PartitionKey::of(&topic.topic, topic.topic_id, partition, self.uses_topic_ids);
                if let Some(cached) = self.partitions.remove(&key) {
                    self.order.remove(&cached.seq);
                }
            }
        }
    }

    /// The session's partitions, in its order, as the topics of a request: consecutive
    /// partitions of one topic grouped, as Kafka groups them.
    fn topics(&self) -> Vec<FetchTopic> {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for key in self.order.values() {
            let fetch = self.partitions[key].fetch.clone();
            match topics.last_mut() {
                Some(t) if t.topic == key.topic && t.topic_id == key.topic_id => {
                    t.partitions.push(fetch)
                }
                _ => topics.push(
                    FetchTopic::default()
                        .with_topic(key.topic.clone())
                        .with_topic_id(key.topic_id)
                        .with_partitions(vec![fetch]),
                ),
            }
        }
        topics
    }

    /// Kafka's `EvictableKey`: followers' sessions, then larger ones, are worth more.
    fn worth(&self, id: i32) -> (bool, usize, i32) {
        (self.follower, self.partitions.len(), id)
    }
}

/// How to serve one Fetch request.
#[derive(Debug)]
pub enum FetchContext {
    /// Fetch the request's partitions and answer with session id 0.
    Sessionless,
    /// Fetch the request's partitions, then [`FetchSessionCache::create`] a session.
    Full,
    /// Fetch `topics` (every partition of the session, in its order), then
    /// [`FetchSessionCache::complete`] the response.
    Incremental {
        session_id: i32,
        topics: Vec<FetchTopic>,
    },
    /// Answer with this error, no partitions and session id 0.
    Error(ResponseError),
}

/// The broker's fetch sessions.
#[derive(Debug)]
pub struct FetchSessionCache {
    max_sessions: usize,
    eviction_ms: i64,
    sessions: HashMap<i32, Session>,
    evictions: u64,
}

impl FetchSessionCache {
    pub fn new(max_sessions: usize, eviction_ms: i64) -> Self {
        FetchSessionCache {
            max_sessions,
            eviction_ms,
            sessions: HashMap::new(),
            evictions: 0,
        }
    }

    /// Sessions held (Kafka's `NumIncrementalFetchSessions`).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Partitions held across all sessions (`NumIncrementalFetchPartitionsCached`).
    pub fn partitions(&self) -> usize {
        self.sessions.values().map(|s| s.partitions.len()).sum()
    }

    /// Sessions evicted to make room for others since start.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Takes a request's session fields: what to fetch, and how to answer.
    pub fn new_context(
        &mut self,
        version: i16,
        session_id: i32,
        epoch: i32,
        topics: &[FetchTopic],
        forgotten: &[ForgottenTopic],
        now_ms: i64,
    ) -> FetchContext {
        if version < MIN_VERSION {
            return FetchContext::Sessionless;
        }
        if epoch == INITIAL_EPOCH || epoch == FINAL_EPOCH {
            // A full fetch closes the session it names.
            if session_id != INVALID_SESSION_ID {
                self.sessions.remove(&session_id);
            }
            return if epoch == FINAL_EPOCH {
                FetchContext::Sessionless
            } else {
                FetchContext::Full
            };
        }
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return FetchContext::Error(ResponseError::FetchSessionIdNotFound);
        };
        if session.epoch != epoch {
            return FetchContext::Error(ResponseError::InvalidFetchSessionEpoch);
        }
        if session.uses_topic_ids != (version >= TOPIC_ID_VERSION) {
            return FetchContext::Error(ResponseError::FetchSessionTopicIdError);
        }
        session.update(topics, forgotten);
        if session.partitions.is_empty() {
            self.sessions.remove(&session_id);
            return FetchContext::Sessionless;
        }
        session.last_used_ms = now_ms;
        session.epoch = next_epoch(session.epoch);
        FetchContext::Incremental {
            session_id,
            topics: session.topics(),
        }
    }

    /// After a full fetch: keeps its partitions, with what the response told of each, as
    /// a new session. The session id for the response; 0 when the cache has no room.
    pub fn create(
        &mut self,
        version: i16,
        follower: bool,
        topics: &[FetchTopic],
        response: &[FetchableTopicResponse],
        now_ms: i64,
    ) -> i32 {
        let size: usize = topics.iter().map(|t| t.partitions.len()).sum();
        if self.sessions.len() >= self.max_sessions && !self.evict_for(follower, size, now_ms) {
            return INVALID_SESSION_ID;
        }
        let uses_topic_ids = version >= TOPIC_ID_VERSION;
        let mut session = Session {
            follower,
            uses_topic_ids,
            epoch: next_epoch(INITIAL_EPOCH),
            created_ms: now_ms,
            last_used_ms: now_ms,
            partitions: HashMap::with_capacity(size),
            order: BTreeMap::new(),
            next_seq: 0,
        };
        for topic in topics {
            for p in &topic.partitions {
                let key =
                    PartitionKey::of(&topic.topic, topic.topic_id, p.partition, uses_topic_ids);
                session.push(key, p.clone());
            }
        }
        for topic in response {
            for data in &topic.partitions {
                let key = PartitionKey::of(
                    &topic.topic,
                    topic.topic_id,
                    data.partition_index,
                    uses_topic_ids,
                );
                if let Some(cached) = session.partitions.get_mut(&key) {
                    cached.must_respond(data);
                }
            }
        }
        let id = self.new_session_id();
        self.sessions.insert(id, session);
        id
    }

    /// After an incremental fetch: drops from `response` the partitions with nothing new
    /// for the client, remembers what it tells, and moves the answered partitions to the
    /// end of the session's order.
    pub fn complete(&mut self, session_id: i32, response: &mut Vec<FetchableTopicResponse>) {
        let Some(session) = self.sessions.get_mut(&session_id) else {
            // Evicted meanwhile: the client gets everything read, which is never wrong.
            return;
        };
        let uses_topic_ids = session.uses_topic_ids;
        for topic in response.iter_mut() {
            topic.partitions.retain(|data| {
                let key = PartitionKey::of(
                    &topic.topic,
                    topic.topic_id,
                    data.partition_index,
                    uses_topic_ids,
                );
                let respond = session
                    .partitions
                    .get_mut(&key)
                    .is_none_or(|cached| cached.must_respond(data));
                if respond {
                    session.move_to_back(&key);
                }
                respond
            });
        }
        response.retain(|t| !t.partitions.is_empty());
    }

    /// Makes room for a session of `size` partitions: the least recently used session if
    /// unused for the eviction time, else the least valuable evictable one if worth less.
    fn evict_for(&mut self, follower: bool, size: usize, now_ms: i64) -> bool {
        let stale = self
            .sessions
            .iter()
            .min_by_key(|(id, s)| (s.last_used_ms, **id))
            .filter(|(_, s)| now_ms - s.last_used_ms > self.eviction_ms)
            .map(|(id, _)| *id);
        let victim = stale.or_else(|| {
            self.sessions
                .iter()
                .filter(|(_, s)| {
                    let old = now_ms - s.created_ms > self.eviction_ms;
                    old || (follower && !s.follower)
                })
                .map(|(id, s)| s.worth(*id))
                .min()
                .filter(|worth| (follower, size, 0) > *worth)
                .map(|(_, _, id)| id)
        });
        match victim {
            Some(id) => {
                self.sessions.remove(&id);
                self.evictions += 1;
                true
            }
            None => false,
        }
    }

    fn new_session_id(&self) -> i32 {
        loop {
            let id = rand::random::<i32>() & i32::MAX;
            if id != INVALID_SESSION_ID && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }
}

/// The session fields of the next fetch, and what the leader's session holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FetchMetadata {
    session_id: i32,
    epoch: i32,
}

impl FetchMetadata {
    const INITIAL: FetchMetadata = FetchMetadata {
        session_id: INVALID_SESSION_ID,
        epoch: INITIAL_EPOCH,
    };

    fn is_full(self) -> bool {
        self.epoch == INITIAL_EPOCH || self.epoch == FINAL_EPOCH
    }
}

/// One fetch's partitions, as the session lets it name them.
#[derive(Debug, Default)]
pub struct FetchRequestData {
    pub session_id: i32,
    pub epoch: i32,
    /// Partitions to name: all of them in a full fetch, those added or changed since the
    /// last one in an incremental fetch.
    pub to_send: Vec<(String, FetchPartition)>,
    /// Partitions the session holds that this fetch no longer wants.
    pub to_forget: Vec<(String, i32)>,
}

/// The client side of a fetch session with one broker (Kafka's `FetchSessionHandler`),
/// for a follower's fetcher: which partitions each fetch names, and whether a response
/// can be used.
#[derive(Debug)]
pub struct FetchSessionHandler {
    next: FetchMetadata,
    /// What the broker's session holds (as last sent), in the order it was given.
    session: BTreeMap<(String, i32), FetchPartition>,
}

impl Default for FetchSessionHandler {
    fn default() -> Self {
        FetchSessionHandler {
            next: FetchMetadata::INITIAL,
            session: BTreeMap::new(),
        }
    }
}

impl FetchSessionHandler {
    /// The next fetch, for `wanted`: every partition to read this time, with its
    /// position. Partitions left out are forgotten by the session, and named again in
    /// full when wanted again.
    pub fn build(&mut self, wanted: BTreeMap<(String, i32), FetchPartition>) -> FetchRequestData {
        let FetchMetadata { session_id, epoch } = self.next;
        if self.next.is_full() {
            let to_send = wanted
                .iter()
                .map(|((t, _), p)| (t.clone(), p.clone()))
                .collect();
            self.session = wanted;
            return FetchRequestData {
                session_id,
                epoch,
                to_send,
                to_forget: Vec::new(),
            };
        }
        let to_forget: Vec<(String, i32)> = self
            .session
            .keys()
            .filter(|tp| !wanted.contains_key(*tp))
            .cloned()
            .collect();
        let to_send = wanted
            .iter()
            .filter(|(tp, p)| self.session.get(*tp) != Some(*p))
            .map(|((t, _), p)| (t.clone(), p.clone()))
            .collect();
        self.session = wanted;
        FetchRequestData {
            session_id,
            epoch,
            to_send,
            to_forget,
        }
    }

    /// Takes a response's session fields and partitions; whether its partitions may be
    /// used. A refused or inconsistent response starts a new session on the next fetch.
    pub fn handle_response(
        &mut self,
        error_code: i16,
        session_id: i32,
        response: &[FetchableTopicResponse],
    ) -> bool {
        if error_code != 0 {
            self.next = if error_code == ResponseError::FetchSessionIdNotFound.code() {
                FetchMetadata::INITIAL
            } else {
                self.close_existing()
            };
            return false;
        }
        let mut answered = response.iter().flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.topic.0.as_str(), p.partition_index))
        });
        let full = self.next.is_full();
        let mut count = 0;
        let known = answered.all(|(t, p)| {
            count += 1;
            self.session.contains_key(&(t.to_string(), p))
        });
        // A full answer carries every partition; an incremental one only some.
        if !known || (full && count != self.session.len()) {
            self.next = if full {
                FetchMetadata::INITIAL
            } else {
                self.close_existing()
            };
            return false;
        }
        self.next = if session_id == INVALID_SESSION_ID {
            // None created, or the broker closed it.
            FetchMetadata::INITIAL
        } else {
            FetchMetadata {
                session_id,
                epoch: if full {
                    next_epoch(INITIAL_EPOCH)
                } else {
                    next_epoch(self.next.epoch)
                },
            }
        };
        true
    }

    /// The request failed on the wire: the next fetch is full, and replaces the session.
    pub fn handle_error(&mut self) {
        self.next = self.close_existing();
    }

    fn close_existing(&self) -> FetchMetadata {
        FetchMetadata {
            session_id: self.next.session_id,
            epoch: INITIAL_EPOCH,
        }
    }
}

/// The epoch after `epoch`: 1 after `i32::MAX`, never 0 or −1 again.
fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        FINAL_EPOCH
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::EpochEndOffset;
    use kafka_protocol::protocol::StrBytes;

    fn name(s: &str) -> TopicName {
        TopicName(StrBytes::from_string(s.to_string()))
    }

    fn fetch(partition: i32, offset: i64) -> FetchPartition {
        FetchPartition::default()
            .with_partition(partition)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(1 << 20)
    }

    /// Topics by name (v12), each with partitions `(index, fetch offset)`.
    fn topics(spec: &[(&str, &[(i32, i64)])]) -> Vec<FetchTopic> {
        spec.iter()
            .map(|(t, ps)| {
                FetchTopic::default()
                    .with_topic(name(t))
                    .with_partitions(ps.iter().map(|&(p, o)| fetch(p, o)).collect())
            })
            .collect()
    }

    fn forget(topic: &str, partitions: &[i32]) -> ForgottenTopic {
        ForgottenTopic::default()
            .with_topic(name(topic))
            .with_partitions(partitions.to_vec())
    }

    /// A partition's answer: high watermark, and records if any.
    fn data(partition: i32, hw: i64, records: usize) -> PartitionData {
        PartitionData::default()
            .with_partition_index(partition)
            .with_high_watermark(hw)
            .with_last_stable_offset(hw)
            .with_log_start_offset(0)
            .with_records(Some(Bytes::from(vec![0u8; records])))
    }

    fn response(spec: &[(&str, Vec<PartitionData>)]) -> Vec<FetchableTopicResponse> {
        spec.iter()
            .map(|(t, ps)| {
                FetchableTopicResponse::default()
                    .with_topic(name(t))
                    .with_partitions(ps.clone())
            })
            .collect()
    }

    /// `topic:partition` of every partition, in order.
    fn names_of(topics: &[FetchTopic]) -> Vec<String> {
        topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| format!("{}:{}", t.topic.0, p.partition))
            })
            .collect()
    }

    fn answered(response: &[FetchableTopicResponse]) -> Vec<String> {
        response
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| format!("{}:{}", t.topic.0, p.partition_index))
            })
            .collect()
    }

    /// A cache with one session over a:0, a:1, b:0, all answered at hw 10.
    fn with_session() -> (FetchSessionCache, i32) {
        let mut cache = FetchSessionCache::new(10, EVICTION_MS);
        let request = topics(&[("a", &[(0, 5), (1, 5)]), ("b", &[(0, 5)])]);
        assert!(matches!(
            cache.new_context(12, 0, INITIAL_EPOCH, &request, &[], 0),
            FetchContext::Full
        ));
        let resp = response(&[
            ("a", vec![data(0, 10, 100), data(1, 10, 100)]),
            ("b", vec![data(0, 10, 100)]),
        ]);
        let id = cache.create(12, false, &request, &resp, 0);
        assert_ne!(id, INVALID_SESSION_ID);
        (cache, id)
    }

    fn incremental(
        cache: &mut FetchSessionCache,
        id: i32,
        epoch: i32,
        request: &[FetchTopic],
        forgotten: &[ForgottenTopic],
    ) -> Vec<FetchTopic> {
        match cache.new_context(12, id, epoch, request, forgotten, 1) {
            FetchContext::Incremental { session_id, topics } => {
                assert_eq!(session_id, id);
                topics
            }
            other => panic!("expected an incremental fetch, got {other:?}"),
        }
    }

    #[test]
    fn versions_before_7_and_final_epoch_without_session_are_sessionless() {
        let mut cache = FetchSessionCache::new(10, EVICTION_MS);
        assert!(matches!(
            cache.new_context(6, 0, INITIAL_EPOCH, &[], &[], 0),
            FetchContext::Sessionless
        ));
        assert!(matches!(
            cache.new_context(12, 0, FINAL_EPOCH, &[], &[], 0),
            FetchContext::Sessionless
        ));
        assert!(cache.is_empty());
    }

    #[test]
    fn full_fetch_creates_a_session_with_what_it_answered() {
        let (cache, id) = with_session();
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.partitions(), 3);
        let session = &cache.sessions[&id];
        assert_eq!(session.epoch, 1);
        assert!(!session.uses_topic_ids);
        assert!(session.partitions.values().all(|p| p.high_watermark == 10));
    }

    #[test]
    fn incremental_fetch_reads_every_partition_and_answers_only_what_changed() {
        let (mut cache, id) = with_session();
        // The client moved a:0 only.
        let request = topics(&[("a", &[(0, 10)])]);
        let read = incremental(&mut cache, id, 1, &request, &[]);
        assert_eq!(names_of(&read), ["a:0", "a:1", "b:0"]);
        assert_eq!(read[0].partitions[0].fetch_offset, 10, "updated position");
        assert_eq!(read[0].partitions[1].fetch_offset, 5, "cached position");
        // b:0 has new records; a:1's high watermark moved; a:0 has nothing new.
        let mut resp = response(&[
            ("a", vec![data(0, 10, 0), data(1, 12, 0)]),
            ("b", vec![data(0, 10, 50)]),
        ]);
        cache.complete(id, &mut resp);
        assert_eq!(answered(&resp), ["a:1", "b:0"]);
        // Nothing changes: nothing is answered.
        let read = incremental(&mut cache, id, 2, &[], &[]);
        let mut resp = response(&[(
            "a",
            read[0]
                .partitions
                .iter()
                .map(|p| data(p.partition, if p.partition == 1 { 12 } else { 10 }, 0))
                .collect(),
        )]);
        resp.extend(response(&[("b", vec![data(0, 10, 0)])]));
        cache.complete(id, &mut resp);
        assert!(resp.is_empty(), "{:?}", answered(&resp));
    }

    #[test]
    fn answered_partitions_move_to_the_end() {
        let (mut cache, id) = with_session();
        incremental(&mut cache, id, 1, &[], &[]);
        let mut resp = response(&[
            ("a", vec![data(0, 11, 10), data(1, 10, 0)]),
            ("b", vec![data(0, 10, 0)]),
        ]);
        cache.complete(id, &mut resp);
        assert_eq!(answered(&resp), ["a:0"]);
        let read = incremental(&mut cache, id, 2, &[], &[]);
        assert_eq!(names_of(&read), ["a:1", "b:0", "a:0"]);
        // Consecutive partitions of a topic are one topic; a topic may recur.
        assert_eq!(read.len(), 3);
    }

    #[test]
    fn errors_are_always_answered_and_the_partition_again_once_they_are_gone() {
        let (mut cache, id) = with_session();
        incremental(&mut cache, id, 1, &[], &[]);
        let mut failed = data(0, -1, 0);
        failed.error_code = ResponseError::NotLeaderOrFollower.code();
        let mut resp = response(&[("b", vec![failed.clone()])]);
        cache.complete(id, &mut resp);
        assert_eq!(answered(&resp), ["b:0"]);
        incremental(&mut cache, id, 2, &[], &[]);
        let mut resp = response(&[("b", vec![failed])]);
        cache.complete(id, &mut resp);
        assert_eq!(answered(&resp), ["b:0"], "still failing: still answered");
        // Recovered at the high watermark it had before the error: answered anyway.
        incremental(&mut cache, id, 3, &[], &[]);
        let mut resp = response(&[("b", vec![data(0, 10, 0)])]);
        cache.complete(id, &mut resp);
        assert_eq!(answered(&resp), ["b:0"]);
    }

    #[test]
    fn diverging_epochs_new_leaders_and_moved_offsets_are_answered() {
        let (mut cache, id) = with_session();
        incremental(&mut cache, id, 1, &[], &[]);
        let mut diverging = data(0, 10, 0);
        diverging.diverging_epoch = EpochEndOffset::default().with_epoch(3).with_end_offset(7);
        let mut log_start = data(1, 10, 0);
        log_start.log_start_offset = 4;
        let mut resp = response(&[
            ("a", vec![diverging, log_start]),
            ("b", vec![data(0, 10, 0)]),
        ]);
        cache.complete(id, &mut resp);
        assert_eq!(answered(&resp), ["a:0", "a:1"]);
        incremental(&mut cache, id, 2, &[], &[]);
        let mut lso = data(0, 10, 0);
        lso.last_stable_offset = 8;
        let mut resp = response(&[("b", vec![lso])]);
        cache.complete(id, &mut resp);
        assert_eq!(answered(&resp), ["b:0"]);
    }

    #[test]
    fn new_partitions_join_the_session_and_forgotten_ones_leave_it() {
        let (mut cache, id) = with_session();
        let read = incremental(
            &mut cache,
            id,
            1,
            &topics(&[("c", &[(0, 0)])]),
            &[forget("a", &[1]), forget("zzz", &[0])],
        );
        assert_eq!(names_of(&read), ["a:0", "b:0", "c:0"]);
        // A new partition is answered the first time, whatever it holds.
        let mut resp = response(&[
            ("a", vec![data(0, 10, 0)]),
            ("b", vec![data(0, 10, 0)]),
            ("c", vec![data(0, 0, 0)]),
        ]);
        cache.complete(id, &mut resp);
        assert_eq!(answered(&resp), ["c:0"]);
    }

    #[test]
    fn forgetting_every_partition_closes_the_session() {
        let (mut cache, id) = with_session();
        let context = cache.new_context(
            12,
            id,
            1,
            &[],
            &[forget("a", &[0, 1]), forget("b", &[0])],
            1,
        );
        assert!(matches!(context, FetchContext::Sessionless));
        assert!(cache.is_empty());
    }

    #[test]
    fn unknown_sessions_and_wrong_epochs_are_errors_that_keep_the_session() {
        let (mut cache, id) = with_session();
        assert!(matches!(
            cache.new_context(12, id.wrapping_add(1).max(1), 1, &[], &[], 1),
            FetchContext::Error(ResponseError::FetchSessionIdNotFound)
        ));
        for wrong in [2, 7] {
            assert!(matches!(
                cache.new_context(12, id, wrong, &[], &[], 1),
                FetchContext::Error(ResponseError::InvalidFetchSessionEpoch)
            ));
        }
        // A retry of the same epoch after a lost response is refused too (as Kafka).
        incremental(&mut cache, id, 1, &[], &[]);
        assert!(matches!(
            cache.new_context(12, id, 1, &[], &[], 1),
            FetchContext::Error(ResponseError::InvalidFetchSessionEpoch)
        ));
        incremental(&mut cache, id, 2, &[], &[]);
    }

    #[test]
    fn a_session_keeps_its_naming() {
        let (mut cache, id) = with_session();
        assert!(matches!(
            cache.new_context(13, id, 1, &[], &[], 1),
            FetchContext::Error(ResponseError::FetchSessionTopicIdError)
        ));
    }

    #[test]
    fn sessions_by_topic_id_ignore_names() {
        let mut cache = FetchSessionCache::new(10, EVICTION_MS);
        let topic_id = Uuid::from_u128(7);
        let request = vec![
            FetchTopic::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![fetch(0, 0), fetch(1, 0)]),
        ];
        let resp = vec![
            FetchableTopicResponse::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![data(0, 3, 0), data(1, 3, 0)]),
        ];
        let id = cache.create(13, true, &request, &resp, 0);
        let forgotten = vec![
            ForgottenTopic::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![1]),
        ];
        let FetchContext::Incremental { topics, .. } =
            cache.new_context(13, id, 1, &[], &forgotten, 1)
        else {
            panic!("incremental");
        };
        assert_eq!(topics.len(), 1);
        assert_eq!(topics[0].topic_id, topic_id);
        assert_eq!(topics[0].partitions.len(), 1);
        let mut resp = vec![
            FetchableTopicResponse::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![data(0, 3, 0)]),
        ];
        cache.complete(id, &mut resp);
        assert!(resp.is_empty());
    }

    #[test]
    fn a_full_fetch_closes_the_session_it_names() {
        let (mut cache, id) = with_session();
        assert!(matches!(
            cache.new_context(12, id, INITIAL_EPOCH, &[], &[], 1),
            FetchContext::Full
        ));
        assert!(cache.is_empty());
        let (mut cache, id) = with_session();
        assert!(matches!(
            cache.new_context(12, id, FINAL_EPOCH, &[], &[], 1),
            FetchContext::Sessionless
        ));
        assert!(cache.is_empty());
    }

    #[test]
    fn epochs_wrap_past_the_largest() {
        assert_eq!(next_epoch(0), 1);
        assert_eq!(next_epoch(41), 42);
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(FINAL_EPOCH), FINAL_EPOCH);
    }

    /// Fills a cache of two with sessions `(follower, size, created/used at)`.
    fn full_cache(sessions: &[(bool, i32, i64)]) -> (FetchSessionCache, Vec<i32>) {
        let mut cache = FetchSessionCache::new(sessions.len(), EVICTION_MS);
        let ids = sessions
            .iter()
            .map(|&(follower, size, at)| {
                let parts: Vec<(i32, i64)> = (0..size).map(|p| (p, 0)).collect();
                let request = topics(&[("t", &parts)]);
                let id = cache.create(12, follower, &request, &[], at);
                assert_ne!(id, INVALID_SESSION_ID);
                id
            })
            .collect();
        (cache, ids)
    }

    fn try_create(cache: &mut FetchSessionCache, follower: bool, size: i32, now: i64) -> i32 {
        let parts: Vec<(i32, i64)> = (0..size).map(|p| (p, 0)).collect();
        cache.create(12, follower, &topics(&[("t", &parts)]), &[], now)
    }

    #[test]
    fn a_full_cache_makes_room_for_nothing_of_equal_or_less_worth() {
        let (mut cache, _) = full_cache(&[(false, 5, 0), (false, 5, 0)]);
        // Within two minutes of their creation, consumers' sessions are safe from other
        // consumers, however large.
        assert_eq!(
            try_create(&mut cache, false, 100, 1_000),
            INVALID_SESSION_ID
        );
        assert_eq!(
            try_create(&mut cache, false, 100, EVICTION_MS),
            INVALID_SESSION_ID
        );
        assert_eq!(cache.evictions(), 0);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn stale_sessions_make_room_for_anyone() {
        let (mut cache, ids) = full_cache(&[(true, 50, 0), (false, 50, 10)]);
        let id = try_create(&mut cache, false, 1, EVICTION_MS + 1);
        assert_ne!(id, INVALID_SESSION_ID);
        assert_eq!(cache.evictions(), 1);
        assert!(
            !cache.sessions.contains_key(&ids[0]),
            "the least recently used"
        );
        assert!(cache.sessions.contains_key(&ids[1]));
    }

    #[test]
    fn followers_take_the_place_of_consumers_at_once() {
        let (mut cache, ids) = full_cache(&[(false, 500, 0), (false, 3, 0), (true, 1, 0)]);
        let id = try_create(&mut cache, true, 1, 1_000);
        assert_ne!(id, INVALID_SESSION_ID);
        assert!(
            !cache.sessions.contains_key(&ids[1]),
            "the smallest consumer session"
        );
        assert!(cache.sessions.contains_key(&ids[0]));
        assert!(
            cache.sessions.contains_key(&ids[2]),
            "another follower's, not yet"
        );
    }

    #[test]
    fn old_sessions_are_evictable_by_larger_ones() {
        let (mut cache, ids) = full_cache(&[(false, 5, 0), (false, 8, 0)]);
        // Used recently (not stale) but created long ago.
        for id in &ids {
            incremental_at(&mut cache, *id, 1, EVICTION_MS);
        }
        assert_eq!(
            try_create(&mut cache, false, 5, EVICTION_MS + 10),
            INVALID_SESSION_ID
        );
        let id = try_create(&mut cache, false, 6, EVICTION_MS + 10);
        assert_ne!(id, INVALID_SESSION_ID);
        assert!(!cache.sessions.contains_key(&ids[0]));
        // A follower's old session is evictable by a consumer's larger one.
        let (mut cache, ids) = full_cache(&[(true, 5, 0)]);
        incremental_at(&mut cache, ids[0], 1, EVICTION_MS);
        assert_eq!(
            try_create(&mut cache, false, 6, EVICTION_MS + 10),
            INVALID_SESSION_ID,
            "a follower's session is worth more than any consumer's"
        );
    }

    fn incremental_at(cache: &mut FetchSessionCache, id: i32, epoch: i32, now: i64) {
        assert!(matches!(
            cache.new_context(12, id, epoch, &[], &[], now),
            FetchContext::Incremental { .. }
        ));
    }
    fn wanted(spec: &[(&str, i32, i64)]) -> BTreeMap<(String, i32), FetchPartition> {
        spec.iter()
            .map(|&(t, p, o)| ((t.to_string(), p), fetch(p, o)))
            .collect()
    }

    fn sent(data: &FetchRequestData) -> Vec<String> {
        data.to_send
            .iter()
            .map(|(t, p)| format!("{t}:{}@{}", p.partition, p.fetch_offset))
            .collect()
    }

    fn answer(spec: &[(&str, &[i32])]) -> Vec<FetchableTopicResponse> {
        spec.iter()
            .map(|(t, ps)| {
                FetchableTopicResponse::default()
                    .with_topic(name(t))
                    .with_partitions(ps.iter().map(|&p| data(p, 0, 0)).collect())
            })
            .collect()
    }

    #[test]
    fn a_handler_sends_everything_once_then_only_what_changed() {
        let mut h = FetchSessionHandler::default();
        let first = h.build(wanted(&[("a", 0, 5), ("a", 1, 5), ("b", 0, 5)]));
        assert_eq!((first.session_id, first.epoch), (0, 0));
        assert_eq!(sent(&first), ["a:0@5", "a:1@5", "b:0@5"]);
        assert!(h.handle_response(0, 77, &answer(&[("a", &[0, 1]), ("b", &[0])])));

        let second = h.build(wanted(&[("a", 0, 9), ("a", 1, 5), ("b", 0, 5)]));
        assert_eq!((second.session_id, second.epoch), (77, 1));
        assert_eq!(sent(&second), ["a:0@9"]);
        assert!(second.to_forget.is_empty());
        // An incremental answer may leave partitions out.
        assert!(h.handle_response(0, 77, &answer(&[("b", &[0])])));

        // b:0 is delayed (left out): forgotten; c:0 is new.
        let third = h.build(wanted(&[("a", 0, 9), ("a", 1, 5), ("c", 0, 0)]));
        assert_eq!((third.session_id, third.epoch), (77, 2));
        assert_eq!(sent(&third), ["c:0@0"]);
        assert_eq!(third.to_forget, [("b".to_string(), 0)]);
        assert!(h.handle_response(0, 77, &[]));
        // Wanted again: named again.
        let fourth = h.build(wanted(&[
            ("a", 0, 9),
            ("a", 1, 5),
            ("b", 0, 5),
            ("c", 0, 0),
        ]));
        assert_eq!(sent(&fourth), ["b:0@5"]);
        assert_eq!(fourth.epoch, 3);
    }

    #[test]
    fn a_handler_starts_over_when_the_session_is_lost() {
        let mut h = FetchSessionHandler::default();
        h.build(wanted(&[("a", 0, 5), ("a", 1, 5)]));
        assert!(h.handle_response(0, 77, &answer(&[("a", &[0, 1])])));
        h.build(wanted(&[("a", 0, 5), ("a", 1, 5)]));
        // The broker restarted: it does not know the session.
        assert!(!h.handle_response(ResponseError::FetchSessionIdNotFound.code(), 0, &[]));
        let full = h.build(wanted(&[("a", 0, 5), ("a", 1, 5)]));
        assert_eq!((full.session_id, full.epoch), (0, 0));
        assert_eq!(full.to_send.len(), 2);
        assert!(h.handle_response(0, 78, &answer(&[("a", &[0, 1])])));

        // Out of step (a response lost with its connection): the old session is closed
        // by the next, full, fetch.
        h.build(wanted(&[("a", 0, 5), ("a", 1, 5)]));
        h.handle_error();
        let full = h.build(wanted(&[("a", 0, 5), ("a", 1, 5)]));
        assert_eq!((full.session_id, full.epoch), (78, 0));
        assert_eq!(full.to_send.len(), 2);
        assert!(!h.handle_response(ResponseError::InvalidFetchSessionEpoch.code(), 0, &[]));
        let full = h.build(wanted(&[("a", 0, 5), ("a", 1, 5)]));
        assert_eq!((full.session_id, full.epoch), (78, 0));
    }

    #[test]
    fn a_handler_refuses_answers_that_do_not_match_its_session() {
        let mut h = FetchSessionHandler::default();
        h.build(wanted(&[("a", 0, 5), ("a", 1, 5)]));
        // A full answer missing a partition.
        assert!(!h.handle_response(0, 77, &answer(&[("a", &[0])])));
        let again = h.build(wanted(&[("a", 0, 5), ("a", 1, 5)]));
        assert_eq!((again.session_id, again.epoch), (0, 0));
        assert!(h.handle_response(0, 77, &answer(&[("a", &[0, 1])])));
        h.build(wanted(&[("a", 0, 5), ("a", 1, 5)]));
        // An incremental answer with a partition the session does not hold.
        assert!(!h.handle_response(0, 77, &answer(&[("z", &[0])])));
        let again = h.build(wanted(&[("a", 0, 5), ("a", 1, 5)]));
        assert_eq!((again.session_id, again.epoch), (77, 0));
    }

    #[test]
    fn a_handler_without_a_session_from_the_broker_keeps_fetching_in_full() {
        let mut h = FetchSessionHandler::default();
        h.build(wanted(&[("a", 0, 5)]));
        assert!(h.handle_response(0, INVALID_SESSION_ID, &answer(&[("a", &[0])])));
        let next = h.build(wanted(&[("a", 0, 5)]));
        assert_eq!((next.session_id, next.epoch), (0, 0));
        assert_eq!(next.to_send.len(), 1);
    }

    /// The handler against the cache: a follower's fetches over many rounds, the
    /// broker's answers filtered as the Fetch handler filters them.
    #[test]
    fn handler_and_cache_agree_round_after_round() {
        let mut cache = FetchSessionCache::new(10, EVICTION_MS);
        let mut h = FetchSessionHandler::default();
        let mut positions: BTreeMap<(String, i32), i64> =
            (0..6).map(|p| (("t".to_string(), p), 0)).collect();
        let mut leader_end = [0i64; 6];
        for round in 0..50i64 {
            // The leader appends to one partition a round.
            leader_end[(round % 6) as usize] += 3;
            let request = h.build(
                positions
                    .iter()
                    .map(|(tp, &o)| (tp.clone(), fetch(tp.1, o)))
                    .collect(),
            );
            let topics: Vec<FetchTopic> = request
                .to_send
                .iter()
                .map(|(t, p)| {
                    FetchTopic::default()
                        .with_topic(name(t))
                        .with_partitions(vec![p.clone()])
                })
                .collect();
            let forgotten: Vec<ForgottenTopic> = request
                .to_forget
                .iter()
                .map(|(t, p)| forget(t, &[*p]))
                .collect();
            let context = cache.new_context(
                12,
                request.session_id,
                request.epoch,
                &topics,
                &forgotten,
                round,
            );
            let (read, incremental) = match context {
                FetchContext::Full => (topics.clone(), None),
                FetchContext::Incremental { session_id, topics } => (topics, Some(session_id)),
                other => panic!("round {round}: {other:?}"),
            };
            let mut resp: Vec<FetchableTopicResponse> = read
                .iter()
                .map(|t| {
                    FetchableTopicResponse::default()
                        .with_topic(t.topic.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    let end = leader_end[p.partition as usize];
                                    data(p.partition, end, ((end - p.fetch_offset) * 10) as usize)
                                })
                                .collect(),
                        )
                })
                .collect();
            let session_id = match incremental {
                Some(id) => {
                    cache.complete(id, &mut resp);
                    id
                }
                None => cache.create(12, true, &topics, &resp, round),
            };
            assert!(h.handle_response(0, session_id, &resp), "round {round}");
            for t in &resp {
                for p in &t.partitions {
                    let got = p.records.as_ref().map_or(0, |r| r.len()) as i64 / 10;
                    *positions
                        .get_mut(&("t".to_string(), p.partition_index))
                        .unwrap() += got;
                }
            }
            if round > 0 {
                assert!(
                    request.to_send.len() <= 1,
                    "round {round}: {:?}",
                    sent(&request)
                );
            }
        }
        let caught_up: Vec<i64> = positions.values().copied().collect();
        assert_eq!(caught_up, leader_end.to_vec());
    }
}
