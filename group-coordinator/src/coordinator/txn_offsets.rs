//! TxnOffsetCommit and the end of transactions: offsets a transactional producer commits
//! as part of its transaction (exactly-once consume-transform-produce), pending until the
//! transaction's COMMIT or ABORT marker reaches `__consumer_offsets` (Kafka's
//! `GroupCoordinator.handleTxnOffsetCommit`, `GroupMetadata.prepareTxnOffsetCommit` /
//! `completePendingTxnOffsetCommit` and `GroupMetadataManager.handleTxnCompletion`).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::TxnOffsetCommitRequest;
use kafka_protocol::messages::TxnOffsetCommitResponse;
use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestPartition;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};

use super::{
    GroupCoordinator, GroupResponse, Output, PendingAppend, ProducerIdAndEpoch, commit_if_newer,
    store_offsets_error,
};
use crate::group::{ClassicGroup, CommittedOffset, GroupState, PendingTxnOffset, TxnRecord};
use crate::offsets_topic::{self, OffsetAndMetadata, OffsetsTopicRecord};

/// First TxnOffsetCommit version carrying the consumer's generation, member id and
/// group instance id (KIP-447).
const FIRST_VERSION_WITH_MEMBER: i16 = 3;

impl GroupCoordinator {
    /// TxnOffsetCommit (v0–v5): offsets committed as part of a producer's transaction.
    ///
    /// Accepted offsets are appended to `__consumer_offsets` in a transactional batch of
    /// the request's producer id and epoch ([`Output::Append`] with `transactional`
    /// set) and answered once written; they stay *pending* — invisible to OffsetFetch,
    /// which answers UNSTABLE_OFFSET_COMMIT for them when asked for stable offsets —
    /// until [`GroupCoordinator::complete_transaction`] reports the producer's marker.
    /// A failed append drops them and answers the error as OffsetCommit does.
    ///
    /// From v3 (KIP-447) the request carries the consumer's generation, member id and
    /// group instance id, checked as for OffsetCommit (UNKNOWN_MEMBER_ID,
    /// ILLEGAL_GENERATION, FENCED_INSTANCE_ID); without them (generation -1, no member)
    /// the commit is accepted whatever the group's state, since older producers cannot
    /// send them. Unlike OffsetCommit, a group in the sync phase is not refused
    /// (REBALANCE_IN_PROGRESS) and the commit is no sign of the member's liveness. A
    /// group that does not exist is created Empty (a generation ≥ 0 for an unknown group
    /// is ILLEGAL_GENERATION, as in Kafka's newer coordinator). v5 differs from v4 only
    /// in how the broker reports transaction verification errors, which happen before
    /// this call.
    #[must_use = "the broker must perform every output"]
    pub fn handle_txn_offset_commit(
        &mut self,
        request: TxnOffsetCommitRequest,
        version: i16,
        request_id: u64,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let group_id = request.group_id.to_string();
        let producer = ProducerIdAndEpoch {
            producer_id: request.producer_id.0,
            producer_epoch: request.producer_epoch,
        };
        let (generation_id, member_id, instance_id) = if version >= FIRST_VERSION_WITH_MEMBER {
            (
                request.generation_id,
                request.member_id.as_str(),
                request.group_instance_id.as_deref(),
            )
        } else {
            (-1, "", None)
        };

        let rejection = if let Some(error) = self.validate_group_status(&group_id, true) {
            Some(error)
        } else if producer.producer_id < 0 {
            // Without a producer id there is no transaction to attach the offsets to.
            Some(ResponseError::InvalidRequest)
        } else if !self.groups.contains_key(&group_id) {
            if generation_id < 0 {
                self.groups.insert(
                    group_id.clone(),
                    ClassicGroup::new(group_id.clone(), now_ms),
                );
                tracing::info!(group_id, "group created by a transactional offset commit");
                None
            } else {
                Some(ResponseError::IllegalGeneration)
            }
        } else {
            None
        };
        let rejection = rejection.or_else(|| {
            validate_txn_offset_commit(
                &self.groups[&group_id],
                generation_id,
                member_id,
                instance_id,
            )
        });
        if let Some(error) = rejection {
            let response = txn_commit_response(&request, |_, _| Some(error));
            out.push(Output::Respond {
                request_id,
                response: GroupResponse::TxnOffsetCommit(response),
            });
            return out;
        }

        let max_metadata = self.config.offset_metadata_max_bytes;
        let mut offsets = Vec::new();
        let response = txn_commit_response(&request, |topic, partition| {
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
                    expire_timestamp_ms: None,
                },
            ));
            None
        });
        if offsets.is_empty() {
            out.push(Output::Respond {
                request_id,
                response: GroupResponse::TxnOffsetCommit(response),
            });
            return out;
        }

        let append_id = self.next_append_id;
        let group = self.groups.get_mut(&group_id).expect("group exists");
        let producer_offsets = group
            .pending_txn_offsets
            .entry(producer.producer_id)
            .or_default();
        for (key, offset) in &offsets {
            producer_offsets.insert(
                key.clone(),
                PendingTxnOffset {
                    offset: offset.clone(),
                    record: TxnRecord::InFlight(append_id),
                },
            );
        }
        let records = offsets
            .iter()
            .map(|((topic, partition), offset)| OffsetsTopicRecord {
                key: offsets_topic::offset_commit_key(&group_id, topic, *partition),
                value: Some(offsets_topic::offset_commit_value(offset)),
            })
            .collect();
        let partition = self.partition_for(&group_id);
        let id = self.next_append(PendingAppend::TxnOffsetCommit {
            group_id,
            request_id,
            producer_id: producer.producer_id,
            response,
            offsets,
        });
        debug_assert_eq!(id, append_id);
        out.push(Output::Append {
            append_id,
            partition,
            records,
            transactional: Some(producer),
        });
        out
    }

    /// The transactional offsets are in the log (they stay pending) or failed to be
    /// written (they are dropped); answer.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn complete_txn_offset_commit(
        &mut self,
        append_id: u64,
        group_id: &str,
        request_id: u64,
        producer_id: i64,
        mut response: TxnOffsetCommitResponse,
        offsets: Vec<((String, i32), OffsetAndMetadata)>,
        error: Option<ResponseError>,
        out: &mut Vec<Output>,
    ) {
        let position = error.is_none().then(|| self.next_position());
        if let Some(group) = self
            .groups
            .get_mut(group_id)
            .filter(|g| !g.is(GroupState::Dead))
        {
            if position.is_some() {
                self.offset_commits_total += offsets.len() as u64;
            }
            if let Some(producer_offsets) = group.pending_txn_offsets.get_mut(&producer_id) {
                for (key, _) in &offsets {
                    // Only the entry this append staged: a later commit of the same
                    // partition, a deletion or the transaction's end may have replaced it.
                    let Some(pending) = producer_offsets
                        .get_mut(key)
                        .filter(|p| p.record == TxnRecord::InFlight(append_id))
                    else {
                        continue;
                    };
                    match position {
                        Some(position) => pending.record = TxnRecord::Appended(position),
                        None => {
                            producer_offsets.remove(key);
                        }
                    }
                }
                if producer_offsets.is_empty() {
                    group.pending_txn_offsets.remove(&producer_id);
                }
            }
        }
        if let Some(error) = error {
            tracing::debug!(group_id, producer_id, %error, "transactional offset commit failed");
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
            response: GroupResponse::TxnOffsetCommit(response),
        });
    }

    /// The COMMIT (`commit`) or ABORT marker of `producer_id`'s transaction was written
    /// to partition `partition` of `__consumer_offsets` (the broker calls this once the
    /// marker is durable, as Kafka's `scheduleHandleTxnCompletion`). Every group of that
    /// partition with offsets pending for the producer completes them: on commit they
    /// become the committed offsets — except where a plain OffsetCommit of the same
    /// partition was appended after the transactional record, which stays (Kafka keeps
    /// the most recent record in the log); on abort they are dropped. Returns how many
    /// groups had offsets pending for the producer.
    ///
    /// A marker for a producer without pending offsets is ignored. An offset whose
    /// TxnOffsetCommit is still being written when the marker arrives (the producer did
    /// not wait for the answer) is dropped, not committed: Kafka rejects that case as an
    /// illegal state. `now_ms` is taken for symmetry with the other calls; completion
    /// starts no timer.
    pub fn complete_transaction(
        &mut self,
        partition: i32,
        producer_id: i64,
        commit: bool,
        now_ms: i64,
    ) -> usize {
        let _ = now_ms;
        let num_partitions = self.config.offsets_topic_num_partitions;
        let group_ids: Vec<String> = self
            .groups
            .iter()
            .filter(|(id, g)| {
                g.pending_txn_offsets.contains_key(&producer_id)
                    && offsets_topic::partition_for(id, num_partitions) == partition
            })
            .map(|(id, _)| id.clone())
            .collect();
        for group_id in &group_ids {
            let group = self.groups.get_mut(group_id).expect("group exists");
            let pending = group
                .pending_txn_offsets
                .remove(&producer_id)
                .unwrap_or_default();
            if !commit {
                tracing::debug!(group_id, producer_id, "transactional offsets aborted");
                continue;
            }
            for (key, pending) in pending {
                let TxnRecord::Appended(position) = pending.record else {
                    tracing::warn!(
                        group_id,
                        producer_id,
                        topic = key.0,
                        partition = key.1,
                        "transaction committed before its offset commit was written; \
                         the offset is dropped"
                    );
                    continue;
                };
                let committed = CommittedOffset {
                    offset: pending.offset,
                    position,
                };
                if !commit_if_newer(&mut group.offsets, key, committed) {
                    tracing::debug!(
                        group_id,
                        producer_id,
                        "a later offset commit supersedes a committed transactional offset"
                    );
                }
            }
        }
        group_ids.len()
    }
}

/// Kafka's `validateOffsetCommit` for transactional commits.
fn validate_txn_offset_commit(
    group: &ClassicGroup,
    generation_id: i32,
    member_id: &str,
    group_instance_id: Option<&str>,
) -> Option<ResponseError> {
    if group.is(GroupState::Dead) {
        Some(ResponseError::CoordinatorNotAvailable)
    } else if generation_id < 0 && group.is(GroupState::Empty) {
        // Outside group management (or a producer older than KIP-447) and nobody in the
        // group.
        None
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
    } else {
        // No generation and no member: a producer before KIP-447, which cannot prove
        // membership; unlike OffsetCommit this is allowed in a non-empty group.
        None
    }
}

/// The response to a transactional commit, in request order; `decide` gives each
/// partition's error.
fn txn_commit_response(
    request: &TxnOffsetCommitRequest,
    mut decide: impl FnMut(&str, &TxnOffsetCommitRequestPartition) -> Option<ResponseError>,
) -> TxnOffsetCommitResponse {
    let mut response = TxnOffsetCommitResponse::default();
    response.topics = request
        .topics
        .iter()
        .map(|t| {
            let mut topic = TxnOffsetCommitResponseTopic::default();
            topic.name = t.name.clone();
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut partition = TxnOffsetCommitResponsePartition::default();
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
