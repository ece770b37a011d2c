//! A consumer that is a member of a consumer group (Kafka's classic group protocol).
//!
//! Joining is two round trips to the group's coordinator: JoinGroup (every member
//! states its subscription; the coordinator picks a leader and a protocol) and
//! SyncGroup (the leader sends everyone's assignment, computed by the chosen
//! [`Assignor`]; the others receive theirs). A background task then sends Heartbeat
//! every `heartbeat.interval.ms`; when the coordinator answers REBALANCE_IN_PROGRESS,
//! ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID the member commits what it has read and
//! joins again on its next [`GroupConsumer::poll`].
//!
//! Reading is done by the plain [`Consumer`] underneath: after each join it is given
//! the assignment and positioned at the group's committed offsets (OffsetFetch), or by
//! `auto.offset.reset` where nothing was committed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use tokio::task::JoinHandle;

use crate::assignor::{
    Assignor, CONSUMER_PROTOCOL_TYPE, MemberSubscription, decode_assignment, decode_subscription,
    encode_assignment, encode_subscription,
};
use crate::cluster::ClientConfig;
use crate::connection::{Connection, ConnectionConfig};
use crate::consumer::TopicPartition;
use crate::consumer::{Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, OffsetSpec};
use crate::error::{Error, Result};
use crate::group_admin::{commit_offsets, committed_offsets, group_id};

/// LeaveGroup v3 (KIP-345) names the leaving members in a list.
const FIRST_BATCHED_LEAVE_GROUP_VERSION: i16 = 3;
/// How many JoinGroup/SyncGroup rounds a join may take before giving up; each failed
/// round is another member joining or leaving at the same moment.
const MAX_JOIN_ROUNDS: u32 = 50;
/// Pause before retrying a join against a coordinator that moved or is loading.
const JOIN_BACKOFF: Duration = Duration::from_millis(100);

/// Group membership settings, named after the Java consumer's.
#[derive(Debug, Clone)]
pub struct GroupConsumerConfig {
    /// `group.id`.
    pub group_id: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// `partition.assignment.strategy`, most preferred first.
    pub assignors: Vec<Assignor>,
    /// `session.timeout.ms`: the coordinator drops a member it has not heard from for
    /// this long.
    pub session_timeout: Duration,
    /// `max.poll.interval.ms`: how long the coordinator waits for members to rejoin
    /// during a rebalance.
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms`: a third of the session timeout or less.
    pub heartbeat_interval: Duration,
    /// Fetch settings and `auto.offset.reset` of the consumer underneath.
    pub consumer: ConsumerConfig,
}

impl GroupConsumerConfig {
    /// The Java consumer's defaults for `group_id` subscribed to `topics`, with a
    /// 10 s session (3 s heartbeats) so a crashed member is noticed soon.
    pub fn new(group_id: impl Into<String>, topics: Vec<String>) -> Self {
        GroupConsumerConfig {
            group_id: group_id.into(),
            topics,
            assignors: vec![Assignor::Range, Assignor::RoundRobin],
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(3),
            consumer: ConsumerConfig::default(),
        }
    }
}

/// The heartbeat task of the current generation.
#[derive(Debug)]
struct Heartbeat {
    task: JoinHandle<()>,
    /// Set by the task when the coordinator asks the member to rejoin.
    rejoin: Arc<AtomicBool>,
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A consumer group member.
#[derive(Debug)]
pub struct GroupConsumer {
    consumer: Consumer,
    config: GroupConsumerConfig,
    /// Given by the coordinator on the first JoinGroup; empty before.
    member_id: String,
    /// The generation the current assignment belongs to; -1 before the first join
    /// and after the coordinator asked for a rejoin.
    generation: i32,
    heartbeat: Option<Heartbeat>,
}

impl GroupConsumer {
    /// Connects to the cluster. The group is joined by the first [`GroupConsumer::poll`].
    pub async fn connect(client: ClientConfig, config: GroupConsumerConfig) -> Result<Self> {
        if config.topics.is_empty() {
            return Err(Error::Invalid(
                "a group consumer needs at least one topic".to_owned(),
            ));
        }
        if config.assignors.is_empty() {
            return Err(Error::Invalid(
                "a group consumer needs an assignor".to_owned(),
            ));
        }
        let consumer = Consumer::connect(client, config.consumer.clone()).await?;
        Ok(GroupConsumer {
            consumer,
            config,
            member_id: String::new(),
            generation: -1,
            heartbeat: None,
        })
    }

    /// The member id, empty before the first join.
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The current generation, -1 while not a member.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// The partitions assigned in the current generation.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.consumer.assignment()
    }

    /// Moves an assigned partition's position, e.g. back to the first record of a
    /// poll that the application did not process, so [`GroupConsumer::commit`] does
    /// not commit past it.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.consumer.seek(tp, OffsetSpec::Offset(offset))
    }

    /// Joins (or rejoins) the group when needed, then reads once from the assigned
    /// partitions.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>> {
        if self.rejoin_needed() {
            self.join().await?;
        }
        self.consumer.poll().await
    }

    /// Commits the position of every assigned partition (OffsetCommit with this
    /// member's generation). Fails with REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION or
    /// UNKNOWN_MEMBER_ID when the group moved on; the member then rejoins on the next
    /// poll and the records since the last commit are read again by whoever owns them.
    pub async fn commit(&mut self) -> Result<()> {
        if self.generation < 0 {
            return Ok(());
        }
        let offsets: BTreeMap<TopicPartition, i64> = self
            .consumer
            .assignment()
            .into_iter()
            .filter_map(|tp| self.consumer.position(&tp).map(|offset| (tp, offset)))
            .collect();
        let result = commit_offsets(
            self.consumer.cluster(),
            &self.config.group_id,
            self.generation,
            &self.member_id,
            &offsets,
        )
        .await;
        if let Err(err) = &result
            && needs_rejoin(err.kafka_code())
        {
            self.generation = -1;
        }
        result
    }

    /// Commits, stops heartbeating and leaves the group (LeaveGroup), so the others
    /// get this member's partitions without waiting for its session to expire.
    pub async fn close(mut self) -> Result<()> {
        let committed = self.commit().await;
        self.heartbeat = None;
        if !self.member_id.is_empty() {
            self.leave().await?;
        }
        committed
    }

    fn rejoin_needed(&self) -> bool {
        self.generation < 0
            || self
                .heartbeat
                .as_ref()
                .is_none_or(|h| h.rejoin.load(Ordering::Acquire))
    }

    /// JoinGroup and SyncGroup until the member has an assignment of a stable
    /// generation, then positions the consumer and starts heartbeating.
    async fn join(&mut self) -> Result<()> {
        if self.generation >= 0 {
            // What was read so far is committed before the partitions may move, as
            // the Java consumer does on revocation.
            if let Err(err) = self.commit().await {
                tracing::debug!(%err, "commit before rejoining failed");
            }
        }
        self.heartbeat = None;
        self.generation = -1;
        let group = self.config.group_id.clone();
        let mut last_error = None;
        for _ in 0..MAX_JOIN_ROUNDS {
            let coordinator = match self.consumer.cluster().find_coordinator(&group).await {
                Ok(node) => node,
                Err(err) if err.is_retriable() => {
                    last_error = Some(err);
                    tokio::time::sleep(JOIN_BACKOFF).await;
                    continue;
                }
                Err(err) => return Err(err),
            };
            let joined = match self.join_group(coordinator).await {
                Ok(joined) => joined,
                // A broken connection or a timeout: find the coordinator again.
                Err(err) if err.is_retriable() => {
                    last_error = Some(err);
                    tokio::time::sleep(JOIN_BACKOFF).await;
                    continue;
                }
                Err(err) => return Err(err),
            };
            match ResponseError::try_from_code(joined.error_code) {
                None => {}
                // KIP-394: the first JoinGroup only hands out a member id.
                Some(ResponseError::MemberIdRequired) => {
                    self.member_id = joined.member_id.to_string();
                    continue;
                }
                Some(ResponseError::UnknownMemberId) => {
                    self.member_id.clear();
                    continue;
                }
                Some(code) if code.is_retriable() || code == ResponseError::RebalanceInProgress => {
                    tokio::time::sleep(JOIN_BACKOFF).await;
                    continue;
                }
                Some(_) => {
                    Error::check(joined.error_code, || format!("join group {group}"), None)?;
                }
            }
            self.member_id = joined.member_id.to_string();
            let generation = joined.generation_id;
            let protocol = joined
                .protocol_name
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            let assignments = if joined.leader == joined.member_id {
                self.leader_assignments(&joined, &protocol).await?
            } else {
                Vec::new()
            };
            let request = SyncGroupRequest::default()
                .with_group_id(group_id(&group))
                .with_generation_id(generation)
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_protocol_type(Some(StrBytes::from_static_str(CONSUMER_PROTOCOL_TYPE)))
                .with_protocol_name(Some(StrBytes::from_string(protocol)))
                .with_assignments(assignments);
            let timeout = self.join_timeout();
            let cluster = self.consumer.cluster();
            let result = async {
                let conn = cluster.broker(coordinator).await?;
                let version = conn.version::<SyncGroupRequest>()?;
                conn.send_with_timeout(&request, version, timeout).await
            }
            .await;
            let synced = match cluster.settle(Some(coordinator), result) {
                Ok(synced) => synced,
                Err(err) if err.is_retriable() => {
                    last_error = Some(err);
                    continue;
                }
                Err(err) => return Err(err),
            };
            match ResponseError::try_from_code(synced.error_code) {
                None => {}
                Some(ResponseError::UnknownMemberId) => {
                    self.member_id.clear();
                    continue;
                }
                Some(
                    code @ (ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration),
                ) => {
                    last_error = Some(Error::Kafka {
                        code,
                        context: format!("sync group {group}"),
                        message: None,
                    });
                    continue;
                }
                Some(code) if code.is_retriable() => {
                    tokio::time::sleep(JOIN_BACKOFF).await;
                    continue;
                }
                Some(_) => {
                    Error::check(synced.error_code, || format!("sync group {group}"), None)?;
                }
            }
            let assignment = decode_assignment(&synced.assignment)?;
            self.start(coordinator, generation, assignment).await?;
            return Ok(());
        }
        Err(last_error.unwrap_or_else(|| Error::Kafka {
            code: ResponseError::RebalanceInProgress,
            context: format!("join group {group}"),
            message: Some(format!(
                "no stable generation after {MAX_JOIN_ROUNDS} rounds"
            )),
        }))
    }

    /// How long JoinGroup and SyncGroup may be held: the coordinator waits up to the
    /// rebalance timeout for the other members.
    fn join_timeout(&self) -> Duration {
        self.config.rebalance_timeout + self.config.consumer.max_wait + Duration::from_secs(5)
    }

    async fn join_group(&mut self, coordinator: i32) -> Result<JoinGroupResponse> {
        let subscription = encode_subscription(&self.config.topics)?;
        let protocols = self
            .config
            .assignors
            .iter()
            .map(|a| {
                JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str(a.name()))
                    .with_metadata(subscription.clone())
            })
            .collect();
        let request = JoinGroupRequest::default()
            .with_group_id(group_id(&self.config.group_id))
            .with_session_timeout_ms(millis(self.config.session_timeout))
            .with_rebalance_timeout_ms(millis(self.config.rebalance_timeout))
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_protocol_type(StrBytes::from_static_str(CONSUMER_PROTOCOL_TYPE))
            .with_protocols(protocols);
        let timeout = self.join_timeout();
        let cluster = self.consumer.cluster();
        let result = async {
            let conn = cluster.broker(coordinator).await?;
            let version = conn.version::<JoinGroupRequest>()?;
            conn.send_with_timeout(&request, version, timeout).await
        }
        .await;
        cluster.settle(Some(coordinator), result)
    }

    /// The leader's part of SyncGroup: every member's assignment by the chosen
    /// assignor, over the partitions the metadata knows for the subscribed topics.
    async fn leader_assignments(
        &mut self,
        joined: &JoinGroupResponse,
        protocol: &str,
    ) -> Result<Vec<SyncGroupRequestAssignment>> {
        let assignor = Assignor::from_name(protocol).ok_or_else(|| {
            Error::Invalid(format!(
                "group {} chose assignor '{protocol}', which this client does not have",
                self.config.group_id
            ))
        })?;
        let mut members = Vec::with_capacity(joined.members.len());
        for member in &joined.members {
            members.push(MemberSubscription {
                member_id: member.member_id.to_string(),
                group_instance_id: member.group_instance_id.as_ref().map(ToString::to_string),
                topics: decode_subscription(&member.metadata)?,
            });
        }
        let mut topics: Vec<String> = members.iter().flat_map(|m| m.topics.clone()).collect();
        topics.sort();
        topics.dedup();
        let metadata = self.consumer.cluster().metadata(Some(&topics)).await?;
        let partitions_per_topic: BTreeMap<String, i32> = metadata
            .topics
            .iter()
            .map(|t| {
                let count = i32::try_from(t.partitions.len()).unwrap_or(i32::MAX);
                (t.name.clone(), count)
            })
            .collect();
        assignor
            .assign(&members, &partitions_per_topic)
            .into_iter()
            .map(|(member_id, partitions)| {
                Ok(SyncGroupRequestAssignment::default()
                    .with_member_id(StrBytes::from_string(member_id))
                    .with_assignment(encode_assignment(&partitions)?))
            })
            .collect()
    }

    /// Takes on `assignment` of `generation`: positions each partition at the group's
    /// committed offset (else by `auto.offset.reset`) and starts heartbeating.
    async fn start(
        &mut self,
        coordinator: i32,
        generation: i32,
        assignment: Vec<TopicPartition>,
    ) -> Result<()> {
        self.consumer.assign(assignment.clone());
        let committed = committed_offsets(
            self.consumer.cluster(),
            &self.config.group_id,
            Some(&assignment),
        )
        .await?;
        let reset = match self.config.consumer.offset_reset {
            OffsetReset::Latest => OffsetSpec::Latest,
            OffsetReset::Earliest | OffsetReset::None => OffsetSpec::Earliest,
        };
        for tp in &assignment {
            let spec = committed.get(tp).map_or(reset, |&o| OffsetSpec::Offset(o));
            self.consumer.seek(tp, spec)?;
        }
        let addr = self
            .consumer
            .cluster()
            .broker_addr(coordinator)
            .ok_or_else(|| Error::Invalid(format!("coordinator {coordinator} is unknown")))?;
        let connection = self.consumer.cluster().config().connection.clone();
        let conn = Connection::connect(&addr, &connection).await?;
        let rejoin = Arc::new(AtomicBool::new(false));
        let request = HeartbeatRequest::default()
            .with_group_id(group_id(&self.config.group_id))
            .with_generation_id(generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()));
        let task = tokio::spawn(heartbeat_loop(
            conn,
            connection,
            request,
            self.config.heartbeat_interval,
            Arc::clone(&rejoin),
        ));
        self.heartbeat = Some(Heartbeat { task, rejoin });
        self.generation = generation;
        tracing::debug!(group = %self.config.group_id, generation, member = %self.member_id, ?assignment, "joined");
        Ok(())
    }

    async fn leave(&mut self) -> Result<()> {
        let group = self.config.group_id.clone();
        let member_id = StrBytes::from_string(self.member_id.clone());
        let cluster = self.consumer.cluster();
        let coordinator = cluster.find_coordinator(&group).await?;
        let result = async {
            let conn = cluster.broker(coordinator).await?;
            let version = conn.version::<LeaveGroupRequest>()?;
            let mut request = LeaveGroupRequest::default().with_group_id(group_id(&group));
            if version >= FIRST_BATCHED_LEAVE_GROUP_VERSION {
                request.members = vec![MemberIdentity::default().with_member_id(member_id)];
            } else {
                request.member_id = member_id;
            }
            conn.send_at(&request, version).await
        }
        .await;
        let response = cluster.settle(Some(coordinator), result)?;
        let code = response
            .members
            .iter()
            .map(|m| m.error_code)
            .find(|&c| c != 0)
            .unwrap_or(response.error_code);
        match ResponseError::try_from_code(code) {
            // Already gone (session expired or the group was rebalanced without us).
            Some(ResponseError::UnknownMemberId) | None => Ok(()),
            Some(_) => Error::check(code, || format!("leave group {group}"), None),
        }
    }
}

/// Sends `request` every `interval` on its own connection (so a Fetch held by the
/// broker never delays it) until the coordinator asks for a rejoin (or says
/// it no longer coordinates the group), then raises `rejoin` and ends. A failed round
/// trip reconnects on the next beat; if that keeps failing the session expires and the
/// next answer is UNKNOWN_MEMBER_ID.
async fn heartbeat_loop(
    mut conn: Connection,
    config: ConnectionConfig,
    request: HeartbeatRequest,
    interval: Duration,
    rejoin: Arc<AtomicBool>,
) {
    let addr = conn.addr().to_owned();
    loop {
        tokio::time::sleep(interval).await;
        if conn.is_broken() {
            match Connection::connect(&addr, &config).await {
                Ok(fresh) => conn = fresh,
                Err(err) => {
                    tracing::debug!(%addr, %err, "heartbeat reconnect failed");
                    continue;
                }
            }
        }
        let response = match conn.send(&request).await {
            Ok(response) => response,
            Err(err) => {
                tracing::debug!(%addr, %err, "heartbeat failed");
                continue;
            }
        };
        let code = ResponseError::try_from_code(response.error_code);
        if code.is_none() {
            continue;
        }
        tracing::debug!(?code, "heartbeat asks to rejoin");
        if needs_rejoin(code)
            || matches!(
                code,
                Some(ResponseError::NotCoordinator | ResponseError::CoordinatorNotAvailable)
            )
        {
            rejoin.store(true, Ordering::Release);
            return;
        }
    }
}

/// Whether a group error means this member's generation is over.
fn needs_rejoin(code: Option<ResponseError>) -> bool {
    matches!(
        code,
        Some(
            ResponseError::RebalanceInProgress
                | ResponseError::IllegalGeneration
                | ResponseError::UnknownMemberId
                | ResponseError::FencedInstanceId
        )
    )
}

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}
