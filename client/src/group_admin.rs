//! Consumer group administration, what `kafka-consumer-groups.sh` does: list groups,
//! describe members and lag, delete groups, and reset committed offsets.
//!
//! Group requests go to the group's coordinator (FindCoordinator); a coordinator that
//! moved or is still loading `__consumer_offsets` answers NOT_COORDINATOR,
//! COORDINATOR_NOT_AVAILABLE or COORDINATOR_LOAD_IN_PROGRESS, and the request is
//! retried against a freshly found coordinator.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::assignor::{CONSUMER_PROTOCOL_TYPE, decode_assignment};
use crate::cluster::Cluster;
use crate::consumer::{TopicPartition, list_offsets_at};
use crate::error::{Error, Result};

/// ListOffsets' special timestamp for the log start offset.
const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets' special timestamp for the log end offset.
const LATEST_TIMESTAMP: i64 = -1;
/// OffsetFetch v8 (KIP-709) asks about several groups at once and answers per group.
const FIRST_BATCHED_OFFSET_FETCH_VERSION: i16 = 8;
/// How often a group request is retried while the coordinator moves or loads.
const COORDINATOR_ATTEMPTS: u32 = 20;
/// Pause between those attempts (Kafka's `retry.backoff.ms`).
const COORDINATOR_BACKOFF: Duration = Duration::from_millis(100);
/// Kafka's group state of a group with no members.
pub const STATE_EMPTY: &str = "Empty";
/// Kafka's group state of a group that does not exist (or was just deleted).
pub const STATE_DEAD: &str = "Dead";

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// `consumer` for consumer groups; other clients (Connect) use their own.
    pub protocol_type: String,
    /// Kafka's state name (`Stable`, `Empty`, ...), when the broker reports it.
    pub state: Option<String>,
}

/// A member of a group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id given by the coordinator.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// Where the member connects from, as the broker saw it (`/127.0.0.1`).
    pub host: String,
    /// Partitions the member owns, decoded from its consumer protocol assignment.
    pub assignment: Vec<TopicPartition>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// Kafka's state name; `Dead` for a group that does not exist.
    pub state: String,
    /// Protocol type, `consumer` for consumer groups.
    pub protocol_type: String,
    /// The chosen protocol: the assignor's name for consumer groups.
    pub protocol: String,
    /// Node id of the coordinator that answered.
    pub coordinator: i32,
    /// Current members.
    pub members: Vec<MemberDescription>,
}

impl GroupDescription {
    /// The member owning `tp`, if any.
    pub fn owner(&self, tp: &TopicPartition) -> Option<&MemberDescription> {
        self.members.iter().find(|m| m.assignment.contains(tp))
    }
}

/// One row of `kafka-consumer-groups --describe`: a partition the group has a
/// committed offset for or a member owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub partition: TopicPartition,
    /// The group's committed offset, if any.
    pub committed_offset: Option<i64>,
    /// The partition's log end offset, if its leader answered.
    pub log_end_offset: Option<i64>,
    /// `log_end_offset - committed_offset` when both are known.
    pub lag: Option<i64>,
    /// Member id of the owner.
    pub member_id: Option<String>,
    /// Host of the owner.
    pub host: Option<String>,
    /// Client id of the owner.
    pub client_id: Option<String>,
}

/// A group's description together with its offsets and lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffsets {
    /// Members and state.
    pub description: GroupDescription,
    /// Per-partition offsets, sorted by topic and partition.
    pub partitions: Vec<PartitionLag>,
}

/// Where `reset-offsets` moves a group's committed offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetResetTarget {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    Latest,
    /// A given offset, clamped to the log's range like Kafka does.
    Offset(i64),
    /// The first offset whose timestamp is at or after this time (ms since the epoch);
    /// the log end offset when no record is that new.
    Timestamp(i64),
    /// The committed offset moved by this many records (negative: back), clamped.
    ShiftBy(i64),
}

impl Admin {
    /// Every group known to any broker (ListGroups to each broker), sorted by id.
    pub async fn list_groups(&mut self) -> Result<Vec<GroupListing>> {
        let cluster = self.cluster();
        let mut groups = BTreeMap::new();
        for node in cluster.broker_ids() {
            let result = async {
                cluster
                    .broker(node)
                    .await?
                    .send(&ListGroupsRequest::default())
                    .await
            }
            .await;
            let response = cluster.settle(Some(node), result)?;
            Error::check(
                response.error_code,
                || format!("list groups on broker {node}"),
                None,
            )?;
            for group in response.groups {
                let state = group.group_state.to_string();
                groups.insert(
                    group.group_id.0.to_string(),
                    GroupListing {
                        group_id: group.group_id.0.to_string(),
                        protocol_type: group.protocol_type.to_string(),
                        state: (!state.is_empty()).then_some(state),
                    },
                );
            }
        }
        Ok(groups.into_values().collect())
    }

    /// Describes a group (DescribeGroups); a group that does not exist is `Dead` with
    /// no members, as Kafka reports it.
    pub async fn describe_group(&mut self, group: &str) -> Result<GroupDescription> {
        let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
        for attempt in 1..=COORDINATOR_ATTEMPTS {
            let cluster = self.cluster();
            let (node, response) = send_to_coordinator(cluster, group, &request).await?;
            let Some(described) = response.groups.into_iter().next() else {
                return Err(Error::Invalid(format!(
                    "describe group {group}: empty DescribeGroups response"
                )));
            };
            if retry_coordinator(described.error_code, attempt).await {
                continue;
            }
            Error::check(
                described.error_code,
                || format!("describe group {group}"),
                described.error_message.as_deref(),
            )?;
            let protocol_type = described.protocol_type.to_string();
            let mut members = Vec::with_capacity(described.members.len());
            for member in described.members {
                let assignment = if protocol_type == CONSUMER_PROTOCOL_TYPE {
                    decode_assignment(&member.member_assignment)?
                } else {
                    Vec::new()
                };
                members.push(MemberDescription {
                    member_id: member.member_id.to_string(),
                    group_instance_id: member.group_instance_id.map(|i| i.to_string()),
                    client_id: member.client_id.to_string(),
                    host: member.client_host.to_string(),
                    assignment,
                });
            }
            members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
            return Ok(GroupDescription {
                group_id: described.group_id.0.to_string(),
                state: described.group_state.to_string(),
                protocol_type,
                protocol: described.protocol_data.to_string(),
                coordinator: node,
                members,
            });
        }
        Err(coordinator_gave_up(group))
    }

    /// The group's committed offsets (OffsetFetch for all partitions). Partitions
    /// without a commit are left out.
    pub async fn committed_offsets(
        &mut self,
        group: &str,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        committed_offsets(self.cluster(), group, None).await
    }

    /// Log start offsets (ListOffsets earliest).
    pub async fn log_start_offsets(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.offsets_at(partitions, EARLIEST_TIMESTAMP).await
    }

    /// Log end offsets (ListOffsets latest, the high watermark).
    pub async fn log_end_offsets(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.offsets_at(partitions, LATEST_TIMESTAMP).await
    }

    /// For each partition the offset of the first record with a timestamp at or after
    /// `timestamp_ms`, or `None` when there is no such record.
    pub async fn offsets_for_timestamp(
        &mut self,
        partitions: &[TopicPartition],
        timestamp_ms: i64,
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
        Ok(self
            .offsets_at(partitions, timestamp_ms)
            .await?
            .into_iter()
            .map(|(tp, offset)| (tp, (offset >= 0).then_some(offset)))
            .collect())
    }

    async fn offsets_at(
        &mut self,
        partitions: &[TopicPartition],
        timestamp: i64,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        list_offsets_at(self.cluster(), partitions, timestamp, 0)
            .await?
            .into_iter()
            .map(|(tp, offset)| offset.map(|offset| (tp, offset)))
            .collect()
    }

    /// Describes a group with its committed offsets, log end offsets and lag per
    /// partition: the partitions it committed and those its members own.
    pub async fn describe_group_offsets(&mut self, group: &str) -> Result<GroupOffsets> {
        let description = self.describe_group(group).await?;
        let committed = self.committed_offsets(group).await?;
        let mut partitions: BTreeSet<TopicPartition> = committed.keys().cloned().collect();
        for member in &description.members {
            partitions.extend(member.assignment.iter().cloned());
        }
        let partitions: Vec<TopicPartition> = partitions.into_iter().collect();
        let log_end: BTreeMap<TopicPartition, i64> =
            list_offsets_at(self.cluster(), &partitions, LATEST_TIMESTAMP, 0)
                .await?
                .into_iter()
                .filter_map(|(tp, offset)| offset.ok().map(|offset| (tp, offset)))
                .collect();
        let rows = partitions
            .into_iter()
            .map(|tp| {
                let committed_offset = committed.get(&tp).copied();
                let log_end_offset = log_end.get(&tp).copied();
                let owner = description.owner(&tp);
                PartitionLag {
                    lag: committed_offset
                        .zip(log_end_offset)
                        .map(|(committed, end)| (end - committed).max(0)),
                    committed_offset,
                    log_end_offset,
                    member_id: owner.map(|m| m.member_id.clone()),
                    host: owner.map(|m| m.host.clone()),
                    client_id: owner.map(|m| m.client_id.clone()),
                    partition: tp,
                }
            })
            .collect();
        Ok(GroupOffsets {
            description,
            partitions: rows,
        })
    }

    /// Deletes groups (DeleteGroups); each group's own outcome, e.g. NON_EMPTY_GROUP
    /// for a group that still has members or GROUP_ID_NOT_FOUND.
    pub async fn delete_groups(&mut self, groups: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let mut outcomes = Vec::with_capacity(groups.len());
        for group in groups {
            outcomes.push((group.clone(), self.delete_group(group).await));
        }
        Ok(outcomes)
    }

    async fn delete_group(&mut self, group: &str) -> Result<()> {
        let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
        for attempt in 1..=COORDINATOR_ATTEMPTS {
            let (_, response) = send_to_coordinator(self.cluster(), group, &request).await?;
            let code = response
                .results
                .iter()
                .find(|r| r.group_id.0.as_str() == group)
                .map_or(0, |r| r.error_code);
            if retry_coordinator(code, attempt).await {
                continue;
            }
            return Error::check(code, || format!("delete group {group}"), None);
        }
        Err(coordinator_gave_up(group))
    }

    /// Commits `offsets` for the group as an administrator (OffsetCommit with
    /// generation -1 and no member id). Kafka's coordinator only accepts this while
    /// the group has no members; otherwise it answers UNKNOWN_MEMBER_ID.
    pub async fn alter_group_offsets(
        &mut self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        commit_offsets(self.cluster(), group, -1, "", offsets).await
    }

    /// The offsets `reset-offsets` would commit for `partitions`, without committing
    /// them. Fails unless the group is empty (or does not exist yet), with Kafka's
    /// message.
    pub async fn plan_offset_reset(
        &mut self,
        group: &str,
        partitions: &[TopicPartition],
        target: OffsetResetTarget,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let description = self.describe_group(group).await?;
        if description.state != STATE_EMPTY && description.state != STATE_DEAD {
            return Err(Error::Invalid(format!(
                "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
                description.state
            )));
        }
        let start = self.log_start_offsets(partitions).await?;
        let end = self.log_end_offsets(partitions).await?;
        let clamp = |tp: &TopicPartition, offset: i64| -> Result<i64> {
            let (Some(&low), Some(&high)) = (start.get(tp), end.get(tp)) else {
                return Err(Error::Invalid(format!("no log offsets for {tp}")));
            };
            Ok(offset.clamp(low, high.max(low)))
        };
        let mut plan = BTreeMap::new();
        match target {
            OffsetResetTarget::Earliest => {
                for tp in partitions {
                    plan.insert(tp.clone(), clamp(tp, i64::MIN)?);
                }
            }
            OffsetResetTarget::Latest => {
                for tp in partitions {
                    plan.insert(tp.clone(), clamp(tp, i64::MAX)?);
                }
            }
            OffsetResetTarget::Offset(offset) => {
                for tp in partitions {
                    plan.insert(tp.clone(), clamp(tp, offset)?);
                }
            }
            OffsetResetTarget::Timestamp(timestamp_ms) => {
                let found = self.offsets_for_timestamp(partitions, timestamp_ms).await?;
                for tp in partitions {
                    let offset = match found.get(tp).copied().flatten() {
                        Some(offset) => offset,
                        None => clamp(tp, i64::MAX)?,
                    };
                    plan.insert(tp.clone(), offset);
                }
            }
            OffsetResetTarget::ShiftBy(shift) => {
                let committed = self.committed_offsets(group).await?;
                for tp in partitions {
                    let Some(&current) = committed.get(tp) else {
                        return Err(Error::Invalid(format!(
                            "Cannot shift offset for partition {tp} since there is no current committed offset"
                        )));
                    };
                    plan.insert(tp.clone(), clamp(tp, current.saturating_add(shift))?);
                }
            }
        }
        Ok(plan)
    }
}

/// Sends `request` to the coordinator of `group`; returns the coordinator's node id
/// with the response. A connection that broke is dropped so the next call reconnects.
pub(crate) async fn send_to_coordinator<R>(
    cluster: &mut Cluster,
    group: &str,
    request: &R,
) -> Result<(i32, R::Response)>
where
    R: kafka_protocol::protocol::Request,
{
    let mut attempt = 0;
    let node = loop {
        attempt += 1;
        match cluster.find_coordinator(group).await {
            Ok(node) => break node,
            Err(err) if err.is_retriable() && attempt < COORDINATOR_ATTEMPTS => {
                tracing::debug!(%group, %err, "coordinator not found yet");
                tokio::time::sleep(COORDINATOR_BACKOFF).await;
            }
            Err(err) => return Err(err),
        }
    };
    let result = async { cluster.broker(node).await?.send(request).await }.await;
    let response = cluster.settle(Some(node), result)?;
    Ok((node, response))
}

/// Whether `code` says the coordinator moved or is loading, in which case this waits
/// a moment so the caller can find it again, unless `attempt` was the last.
pub(crate) async fn retry_coordinator(code: i16, attempt: u32) -> bool {
    let moved = matches!(
        ResponseError::try_from_code(code),
        Some(
            ResponseError::NotCoordinator
                | ResponseError::CoordinatorNotAvailable
                | ResponseError::CoordinatorLoadInProgress
        )
    );
    if moved && attempt < COORDINATOR_ATTEMPTS {
        tokio::time::sleep(COORDINATOR_BACKOFF).await;
        return true;
    }
    false
}

fn coordinator_gave_up(group: &str) -> Error {
    Error::Kafka {
        code: ResponseError::CoordinatorNotAvailable,
        context: format!("group {group}"),
        message: Some(format!(
            "no coordinator answered after {COORDINATOR_ATTEMPTS} attempts"
        )),
    }
}

/// OffsetFetch for `partitions` of `group`, or all its partitions with `None`.
/// Partitions without a committed offset are left out.
pub(crate) async fn committed_offsets(
    cluster: &mut Cluster,
    group: &str,
    partitions: Option<&[TopicPartition]>,
) -> Result<BTreeMap<TopicPartition, i64>> {
    for attempt in 1..=COORDINATOR_ATTEMPTS {
        let node = cluster.find_coordinator(group).await?;
        let result = async {
            let conn = cluster.broker(node).await?;
            let version = conn.version::<OffsetFetchRequest>()?;
            let request = offset_fetch_request(group, partitions, version);
            conn.send_at(&request, version)
                .await
                .map(|response| (version, response))
        }
        .await;
        let (version, response) = cluster.settle(Some(node), result)?;
        let mut offsets = BTreeMap::new();
        let mut push = |topic: &str, partition: i32, offset: i64, code: i16| -> Result<()> {
            Error::check(
                code,
                || format!("committed offset of {topic}-{partition}"),
                None,
            )?;
            if offset >= 0 {
                offsets.insert(TopicPartition::new(topic, partition), offset);
            }
            Ok(())
        };
        let code = if version >= FIRST_BATCHED_OFFSET_FETCH_VERSION {
            let Some(group_response) = response.groups.into_iter().next() else {
                return Err(Error::Invalid(format!(
                    "fetch offsets of group {group}: empty OffsetFetch response"
                )));
            };
            if group_response.error_code == 0 {
                for topic in &group_response.topics {
                    for p in &topic.partitions {
                        push(
                            topic.name.0.as_str(),
                            p.partition_index,
                            p.committed_offset,
                            p.error_code,
                        )?;
                    }
                }
            }
            group_response.error_code
        } else {
            if response.error_code == 0 {
                for topic in &response.topics {
                    for p in &topic.partitions {
                        push(
                            topic.name.0.as_str(),
                            p.partition_index,
                            p.committed_offset,
                            p.error_code,
                        )?;
                    }
                }
            }
            response.error_code
        };
        if retry_coordinator(code, attempt).await {
            continue;
        }
        Error::check(code, || format!("fetch offsets of group {group}"), None)?;
        return Ok(offsets);
    }
    Err(coordinator_gave_up(group))
}

fn offset_fetch_request(
    group: &str,
    partitions: Option<&[TopicPartition]>,
    version: i16,
) -> OffsetFetchRequest {
    let by_topic = partitions.map(|partitions| {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        by_topic
    });
    if version >= FIRST_BATCHED_OFFSET_FETCH_VERSION {
        use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopics;
        let topics = by_topic.map(|by_topic| {
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetFetchRequestTopics::default()
                        .with_name(topic_name(topic))
                        .with_partition_indexes(partitions)
                })
                .collect()
        });
        OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(group_id(group))
                .with_topics(topics),
        ])
    } else {
        use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
        let topics = by_topic.map(|by_topic| {
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partition_indexes(partitions)
                })
                .collect()
        });
        OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(topics)
    }
}

/// OffsetCommit of `offsets` for `group` as member `member_id` of `generation`
/// (-1 and empty for an administrator).
pub(crate) async fn commit_offsets(
    cluster: &mut Cluster,
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (tp, offset) in offsets {
        by_topic.entry(&tp.topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1),
        );
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(StrBytes::from_string(member_id.to_owned()))
        .with_retention_time_ms(-1)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    for attempt in 1..=COORDINATOR_ATTEMPTS {
        let (_, response) = send_to_coordinator(cluster, group, &request).await?;
        let failed = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
            .find(|(_, p)| p.error_code != 0);
        let Some((topic, partition)) = failed else {
            return Ok(());
        };
        if retry_coordinator(partition.error_code, attempt).await {
            continue;
        }
        return Error::check(
            partition.error_code,
            || {
                format!(
                    "commit offset of {}-{} for group {group}",
                    topic.name.0, partition.partition_index
                )
            },
            None,
        );
    }
    Err(coordinator_gave_up(group))
}

pub(crate) fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_owned()))
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}
