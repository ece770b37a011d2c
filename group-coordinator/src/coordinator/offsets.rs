//! OffsetCommit, OffsetFetch, OffsetDelete and offset retention
//! (`offsets.retention.minutes`), with Kafka's rules for who may commit.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{
    GroupCoordinator, GroupResponse, Output, PendingAppend, schedule_session_expiry,
    store_offsets_error,
};
use crate::group::{CONSUMER_PROTOCOL_TYPE, ClassicGroup, CommittedOffset, GroupState};
use crate::offsets_topic::{self, OffsetAndMetadata, OffsetsTopicRecord};

/// OffsetCommit v2–v4 carried `retention_time_ms`; -1 means "use the broker default".
const DEFAULT_RETENTION_TIME_MS: i64 = -1;

/// Committed offset of a partition the group has none for.
const INVALID_OFFSET: i64 = -1;

/// The offsets requested from one group: `None` means all of them.
type RequestedPartitions = Option<Vec<(String, Vec<i32>)>>;

/// One fetched partition: its committed offset (`None` where nothing is committed), or a
/// partition error (UNSTABLE_OFFSET_COMMIT).
type FetchedPartition = Result<Option<OffsetAndMetadata>, ResponseError>;

/// Offsets per topic.
type TopicOffsets = Vec<(String, Vec<(i32, FetchedPartition)>)>;

/// The answer for one group: a group-level error, or offsets per topic.
struct FetchedOffsets {
    error: Option<ResponseError>,
    topics: TopicOffsets,
}

impl GroupCoordinator {
    /// OffsetCommit. Accepted offsets are appended to `__consumer_offsets`; the answer
    /// comes out of [`GroupCoordinator::on_append_completed`] once they are durable.
    #[must_use = "the broker must perform every output"]
    pub fn handle_offset_commit(
        &mut self,
        request: OffsetCommitRequest,
        version: i16,
        request_id: u64,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let group_id = request.group_id.to_string();
        let member_id = request.member_id.as_str();
        let generation_id = request.generation_id_or_member_epoch;
        let instance_id = request.group_instance_id.as_deref();

        let rejection = if let Some(error) = self.validate_group_status(&group_id, false) {
            Some(error)
        } else if !self.groups.contains_key(&group_id) {
            if generation_id < 0 {
                // Not using group management (manual assignment): the group exists only
                // to hold offsets.
                self.groups.insert(
                    group_id.clone(),
                    ClassicGroup::new(group_id.clone(), now_ms),
                );
                None
            } else {
                // A commit from a generation of a group that no longer exists.
                Some(ResponseError::IllegalGeneration)
            }
        } else {
            None
        };
        let rejection = rejection.or_else(|| {
            let group = &self.groups[&group_id];
            validate_offset_commit(group, generation_id, member_id, instance_id).or(
                match group.state {
                    // The member has the new generation but not its assignment yet.
                    GroupState::CompletingRebalance => Some(ResponseError::RebalanceInProgress),
                    _ => None,
                },
            )
        });
        if let Some(error) = rejection {
            let response = commit_response(&request, |_, _| Some(error));
            out.push(Output::Respond {
                request_id,
                response: GroupResponse::OffsetCommit(response),
            });
            return out;
        }

        let group = self.groups.get_mut(&group_id).expect("group exists");
        if matches!(
            group.state,
            GroupState::Stable | GroupState::PreparingRebalance
        ) {
            // Commits count as liveness: during PreparingRebalance the member learns of
            // the rebalance from its next heartbeat.
            if let Some(member) = group.member_mut(member_id) {
                schedule_session_expiry(member, now_ms);
            }
        }

        let expire_timestamp_ms = (version <= 4
            && request.retention_time_ms != DEFAULT_RETENTION_TIME_MS)
            .then(|| now_ms + request.retention_time_ms);
        let max_metadata = self.config.offset_metadata_max_bytes;
        let mut offsets = Vec::new();
        let response = commit_response(&request, |topic, partition| {
            let metadata = partition
                .committed_metadata
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            if metadata.encode_utf16().count() > max_metadata {
                return Some(ResponseError::OffsetMetadataTooLarge);
            }
            offsets.push((
                (topic.to_owned(), partition.partition_index),
                OffsetAndMetadata {
                    offset: partition.committed_offset,
                    leader_epoch: partition.committed_leader_epoch,
                    metadata,
                    commit_timestamp_ms: now_ms,
                    expire_timestamp_ms,
                },
            ));
            None
        });
        if offsets.is_empty() {
            out.push(Output::Respond {
                request_id,
                response: GroupResponse::OffsetCommit(response),
            });
            return out;
        }

        let append_id = self.next_append_id;
        for (key, _) in &offsets {
            group
                .pending_offset_commits
                .entry(key.clone())
                .or_default()
                .insert(append_id);
        }
        let records = offsets
            .iter()
            .map(|((topic, partition), offset)| OffsetsTopicRecord {
                key: offsets_topic::offset_commit_key(&group_id, topic, *partition),
                value: Some(offsets_topic::offset_commit_value(offset)),
            })
            .collect();
        let partition = self.partition_for(&group_id);
        let id = self.next_append(PendingAppend::OffsetCommit {
            group_id,
            request_id,
            response,
            offsets,
        });
        debug_assert_eq!(id, append_id);
        out.push(Output::Append {
            append_id,
            partition,
            records,
            transactional: None,
        });
        out
    }

    /// The offsets of a commit are durable (or failed to be): apply and acknowledge.
    /// Partitions whose offsets were deleted while the append was in flight are not
    /// applied (Kafka's `onOffsetCommitAppend` only applies staged commits).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn complete_offset_commit(
        &mut self,
        append_id: u64,
        group_id: &str,
        request_id: u64,
        mut response: OffsetCommitResponse,
        offsets: Vec<((String, i32), OffsetAndMetadata)>,
        error: Option<ResponseError>,
        out: &mut Vec<Output>,
    ) {
        let position = error.is_none().then(|| self.next_position());
        if let Some(group) = self.groups.get_mut(group_id) {
            let live = !group.is(GroupState::Dead);
            if live && position.is_some() {
                self.offset_commits_total += offsets.len() as u64;
            }
            let mut staged = BTreeSet::new();
            for (key, _) in &offsets {
                let Some(append_ids) = group.pending_offset_commits.get_mut(key) else {
                    continue;
                };
                if append_ids.remove(&append_id) {
                    staged.insert(key.clone());
                }
                if append_ids.is_empty() {
                    group.pending_offset_commits.remove(key);
                }
            }
            if let (true, Some(position)) = (live, position) {
                // In request order: a partition named twice keeps its last offset, as
                // the log does.
                for (key, offset) in offsets.iter().filter(|(key, _)| staged.contains(key)) {
                    let committed = CommittedOffset {
                        offset: offset.clone(),
                        position,
                    };
                    group.offsets.insert(key.clone(), committed);
                }
            }
        }
        if let Some(error) = error {
            let code = store_offsets_error(error).code();
            for topic in &mut response.topics {
                for partition in &mut topic.partitions {
                    let written = offsets.iter().any(|((t, p), _)| {
                        t == topic.name.as_str() && *p == partition.partition_index
                    });
                    if written {
                        partition.error_code = code;
                    }
                }
            }
        }
        out.push(Output::Respond {
            request_id,
            response: GroupResponse::OffsetCommit(response),
        });
    }

    /// OffsetFetch (all versions: one group before v8, several from v8). Partitions
    /// without a committed offset come back as offset -1 with no error, as in Kafka.
    ///
    /// With `require_stable` (v7+, KIP-447; set by consumers reading `read_committed`), a
    /// partition whose offset is about to change — an open transaction holds an offset
    /// for it, or a commit of it is being written — answers UNSTABLE_OFFSET_COMMIT
    /// (retriable) instead of its committed offset. Without it the last committed offset
    /// is returned.
    pub fn handle_offset_fetch(
        &self,
        request: OffsetFetchRequest,
        version: i16,
    ) -> OffsetFetchResponse {
        let mut response = OffsetFetchResponse::default();
        if version >= 8 {
            response.groups = request
                .groups
                .iter()
                .map(|g| {
                    let requested = g.topics.as_ref().map(|topics| {
                        topics
                            .iter()
                            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                            .collect()
                    });
                    let fetched =
                        self.fetch_offsets(g.group_id.as_str(), requested, request.require_stable);
                    let mut group = OffsetFetchResponseGroup::default();
                    group.group_id = g.group_id.clone();
                    group.error_code = fetched.error.map_or(0, |e| e.code());
                    group.topics = fetched
                        .topics
                        .into_iter()
                        .map(|(name, partitions)| {
                            let mut topic = OffsetFetchResponseTopics::default();
                            topic.name = TopicName(StrBytes::from_string(name));
                            topic.partitions = partitions
                                .into_iter()
                                .map(|(index, offset)| {
                                    let mut p = OffsetFetchResponsePartitions::default();
                                    p.partition_index = index;
                                    p.error_code = fill_partition(offset, |o, e, m| {
                                        p.committed_offset = o;
                                        p.committed_leader_epoch = e;
                                        p.metadata = Some(StrBytes::from_string(m));
                                    });
                                    p
                                })
                                .collect();
                            topic
                        })
                        .collect();
                    group
                })
                .collect();
            return response;
        }

        let requested = request.topics.as_ref().map(|topics| {
            topics
                .iter()
                .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        let require_stable = version >= 7 && request.require_stable;
        let fetched =
            self.fetch_offsets(request.group_id.as_str(), requested.clone(), require_stable);
        let error_code = fetched.error.map_or(0, |e| e.code());
        // With a group-level error the partitions are the requested ones, each carrying
        // the error (the only place v1 can put it).
        let topics = match (fetched.error, requested) {
            (Some(_), Some(requested)) => requested
                .into_iter()
                .map(|(t, ps)| (t, ps.into_iter().map(|p| (p, Ok(None))).collect()))
                .collect(),
            (Some(_), None) => Vec::new(),
            (None, _) => fetched.topics,
        };
        response.topics = topics
            .into_iter()
            .map(|(name, partitions)| {
                let mut topic = OffsetFetchResponseTopic::default();
                topic.name = TopicName(StrBytes::from_string(name));
                topic.partitions = partitions
                    .into_iter()
                    .map(|(index, offset)| {
                        let mut p = OffsetFetchResponsePartition::default();
                        p.partition_index = index;
                        p.error_code = fill_partition(offset, |o, e, m| {
                            p.committed_offset = o;
                            p.committed_leader_epoch = e;
                            p.metadata = Some(StrBytes::from_string(m));
                        });
                        if version < 2 && error_code != 0 {
                            p.error_code = error_code;
                        }
                        p
                    })
                    .collect();
                topic
            })
            .collect();
        if version >= 2 {
            response.error_code = error_code;
        }
        response
    }

    /// Kafka's `getOffsets`.
    fn fetch_offsets(
        &self,
        group_id: &str,
        requested: RequestedPartitions,
        require_stable: bool,
    ) -> FetchedOffsets {
        if let Some(error) = self.validate_group_status(group_id, false) {
            return FetchedOffsets {
                error: Some(error),
                topics: Vec::new(),
            };
        }
        let group = self
            .groups
            .get(group_id)
            .filter(|g| !g.is(GroupState::Dead));
        let fetch = |key: &(String, i32)| -> FetchedPartition {
            let Some(group) = group else {
                return Ok(None);
            };
            if require_stable && group.has_pending_offset_commit(key) {
                return Err(ResponseError::UnstableOffsetCommit);
            }
            Ok(group.offsets.get(key).map(|c| c.offset.clone()))
        };
        let topics = match requested {
            Some(requested) => requested
                .into_iter()
                .map(|(topic, partitions)| {
                    let offsets = partitions
                        .into_iter()
                        .map(|p| (p, fetch(&(topic.clone(), p))))
                        .collect();
                    (topic, offsets)
                })
                .collect(),
            None => {
                // Every partition with a committed offset (as Kafka, not those that only
                // have an offset in an open transaction).
                let mut topics: TopicOffsets = Vec::new();
                for key in group.iter().flat_map(|g| g.offsets.keys()) {
                    let (topic, partition) = key;
                    let entry = (*partition, fetch(key));
                    match topics.last_mut() {
                        Some((last, partitions)) if last == topic => partitions.push(entry),
                        _ => topics.push((topic.clone(), vec![entry])),
                    }
                }
                topics
            }
        };
        FetchedOffsets {
            error: None,
            topics,
        }
    }

    /// OffsetDelete: removes a group's offsets for partitions it does not consume
    /// (any partition, if the group is Empty).
    #[must_use = "the broker must perform every output"]
    pub fn handle_offset_delete(
        &mut self,
        request: OffsetDeleteRequest,
        request_id: u64,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let group_id = request.group_id.to_string();
        let requested: Vec<(String, Vec<i32>)> = request
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.to_string(),
                    t.partitions.iter().map(|p| p.partition_index).collect(),
                )
            })
            .collect();

        let mut response = OffsetDeleteResponse::default();
        let group_error = if let Some(error) = self.validate_group_status(&group_id, false) {
            Some(error)
        } else {
            match self.groups.get(&group_id) {
                None => Some(ResponseError::GroupIdNotFound),
                Some(group) => match group.state {
                    GroupState::Dead => Some(ResponseError::GroupIdNotFound),
                    GroupState::Empty => None,
                    _ if group.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE) => None,
                    _ => Some(ResponseError::NonEmptyGroup),
                },
            }
        };
        if let Some(error) = group_error {
            response.error_code = error.code();
            out.push(Output::Respond {
                request_id,
                response: GroupResponse::OffsetDelete(response),
            });
            return out;
        }

        let group = &self.groups[&group_id];
        let mut eligible = Vec::new();
        response.topics = requested
            .iter()
            .map(|(topic, partitions)| {
                // An active consumer group keeps the offsets of topics it consumes.
                let subscribed =
                    !group.is(GroupState::Empty) && group.is_subscribed_to_topic(topic);
                let mut t = OffsetDeleteResponseTopic::default();
                t.name = TopicName(StrBytes::from_string(topic.clone()));
                t.partitions = partitions
                    .iter()
                    .map(|&partition| {
                        let mut p = OffsetDeleteResponsePartition::default();
                        p.partition_index = partition;
                        if subscribed {
                            p.error_code = ResponseError::GroupSubscribedToTopic.code();
                        } else {
                            eligible.push((topic.clone(), partition));
                        }
                        p
                    })
                    .collect();
                t
            })
            .collect();
        if !eligible.is_empty() {
            // Committed offsets, commits in flight and open transactions' offsets of the
            // partitions go (Kafka's `removeOffsets`).
            let group = self.groups.get_mut(&group_id).expect("group exists");
            let removed = group.remove_offsets(&eligible);
            self.cleanup_group_metadata(&group_id, removed, now_ms, &mut out);
        }
        out.push(Output::Respond {
            request_id,
            response: GroupResponse::OffsetDelete(response),
        });
        out
    }

    /// Writes tombstones for removed offsets and, when an Empty group is left without
    /// offsets (committed, in flight or in an open transaction: Kafka's `hasOffsets`),
    /// forgets the group (Dead) and tombstones its metadata
    /// (`GroupMetadataManager.cleanupGroupMetadata`).
    pub(super) fn cleanup_group_metadata(
        &mut self,
        group_id: &str,
        removed_offsets: Vec<(String, i32)>,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let mut records: Vec<OffsetsTopicRecord> = removed_offsets
            .iter()
            .map(|(topic, partition)| OffsetsTopicRecord {
                key: offsets_topic::offset_commit_key(group_id, topic, *partition),
                value: None,
            })
            .collect();
        if group.is(GroupState::Empty) && !group.has_offsets() {
            group.transition_to(GroupState::Dead, now_ms);
            // A group that only ever stored offsets (generation 0) never wrote metadata.
            if group.generation_id > 0 {
                records.push(OffsetsTopicRecord {
                    key: offsets_topic::group_metadata_key(group_id),
                    value: None,
                });
            }
            self.groups.remove(group_id);
            tracing::info!(group_id, "group removed");
        }
        if records.is_empty() {
            return;
        }
        let partition = self.partition_for(group_id);
        let append_id = self.next_append(PendingAppend::Unobserved);
        out.push(Output::Append {
            append_id,
            partition,
            records,
            transactional: None,
        });
    }

    /// Deletes offsets past their retention and forgets Empty groups left without any.
    pub(super) fn expire_offsets(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let retention_ms = self.config.offsets_retention_ms();
        let group_ids: Vec<String> = self.groups.keys().cloned().collect();
        for group_id in group_ids {
            let group = self.groups.get_mut(&group_id).expect("group exists");
            let expired = expired_offsets(group, now_ms, retention_ms);
            for key in &expired {
                group.offsets.remove(key);
            }
            if !expired.is_empty() {
                tracing::info!(group_id, count = expired.len(), "removed expired offsets");
            }
            self.offsets_expired_total += expired.len() as u64;
            self.cleanup_group_metadata(&group_id, expired, now_ms, out);
        }
    }
}

/// Kafka's `validateOffsetCommit`.
fn validate_offset_commit(
    group: &ClassicGroup,
    generation_id: i32,
    member_id: &str,
    group_instance_id: Option<&str>,
) -> Option<ResponseError> {
    if group.is(GroupState::Dead) {
        Some(ResponseError::CoordinatorNotAvailable)
    } else if generation_id >= 0 || !member_id.is_empty() || group_instance_id.is_some() {
        if group.is_static_member_fenced(group_instance_id, member_id) {
            Some(ResponseError::FencedInstanceId)
        } else if !group.has(member_id) {
            Some(ResponseError::UnknownMemberId)
        } else if generation_id != group.generation_id {
            Some(ResponseError::IllegalGeneration)
        } else {
            None
        }
    } else if !group.is(GroupState::Empty) {
        // Generation -1 without a member id is a commit from outside group management
        // (an admin tool, a manually assigned consumer): only allowed when nobody is in
        // the group, so it cannot overwrite the members' progress.
        Some(ResponseError::UnknownMemberId)
    } else {
        None
    }
}

/// The response to a commit, in request order; `decide` gives each partition's error.
fn commit_response(
    request: &OffsetCommitRequest,
    mut decide: impl FnMut(
        &str,
        &kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition,
    ) -> Option<ResponseError>,
) -> OffsetCommitResponse {
    let mut response = OffsetCommitResponse::default();
    response.topics = request
        .topics
        .iter()
        .map(|t| {
            let mut topic = OffsetCommitResponseTopic::default();
            topic.name = t.name.clone();
            topic.topic_id = t.topic_id;
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut partition = OffsetCommitResponsePartition::default();
                    partition.partition_index = p.partition_index;
                    partition.error_code = decide(t.name.as_str(), p).map_or(0, |e| e.code());
                    partition
                })
                .collect();
            topic
        })
        .collect();
    response
}

/// Fills a fetched partition: the committed offset, or Kafka's "none" (-1, no epoch,
/// empty metadata), also given with a partition error. Returns the partition's error code.
fn fill_partition(offset: FetchedPartition, mut set: impl FnMut(i64, i32, String)) -> i16 {
    match offset {
        Ok(Some(o)) => {
            set(o.offset, o.leader_epoch, o.metadata);
            0
        }
        Ok(None) => {
            set(INVALID_OFFSET, -1, String::new());
            0
        }
        Err(error) => {
            set(INVALID_OFFSET, -1, String::new());
            error.code()
        }
    }
}

/// Kafka's `GroupMetadata.removeExpiredOffsets` selection:
/// - an Empty group with a protocol type: offsets expire `retention` after the group
///   became Empty;
/// - a Stable consumer group: offsets of topics it no longer subscribes to expire
///   `retention` after their commit;
/// - a group used only for offset storage: `retention` after the commit;
/// - offsets committed with an explicit retention time expire at that time instead;
/// - offsets with a commit in flight, or with an offset in an open transaction (as
///   Kafka's newer coordinator), never expire.
fn expired_offsets(group: &ClassicGroup, now_ms: i64, retention_ms: i64) -> Vec<(String, i32)> {
    let (use_state_timestamp, keep_topics) = match group.protocol_type.as_deref() {
        Some(_) if group.is(GroupState::Empty) => (true, None),
        Some(CONSUMER_PROTOCOL_TYPE) if group.is(GroupState::Stable) => {
            match &group.subscribed_topics {
                Some(topics) => (false, Some(topics)),
                None => return Vec::new(),
            }
        }
        None => (false, None),
        Some(_) => return Vec::new(),
    };
    group
        .offsets
        .iter()
        .filter(|((topic, _), _)| keep_topics.is_none_or(|keep| !keep.contains(topic)))
        .filter(|(key, _)| !group.has_pending_offset_commit(key))
        .map(|(key, committed)| (key, &committed.offset))
        .filter(|(_, offset)| match offset.expire_timestamp_ms {
            Some(expire_timestamp_ms) => now_ms >= expire_timestamp_ms,
            None => {
                let base = if use_state_timestamp {
                    group.state_timestamp_ms
                } else {
                    offset.commit_timestamp_ms
                };
                now_ms - base >= retention_ms
            }
        })
        .map(|(key, _)| key.clone())
        .collect()
}
