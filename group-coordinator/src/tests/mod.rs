//! Scenario tests driving the coordinator the way the broker does: requests in, outputs
//! out, appends "written" to an in-memory `__consumer_offsets`, time advanced by hand.

mod admin;
mod encoding;
mod join_sync;
mod offsets;
mod simulation;
mod static_membership;
mod txn_offsets;

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequest, OffsetFetchRequestTopic};
use kafka_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use kafka_protocol::messages::{
    GroupId, JoinGroupResponse, OffsetCommitResponse, OffsetFetchResponse, SyncGroupResponse,
    TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::{
    GroupCoordinator, GroupCoordinatorConfig, GroupResponse, LoadedRecord, OffsetsTopicRecord,
    Output,
};

/// An empty `__consumer_offsets` partition.
const NO_RECORDS: [LoadedRecord; 0] = [];

/// Newest versions the coordinator is exercised with unless a test says otherwise.
const JOIN_VERSION: i16 = 9;
const SYNC_VERSION: i16 = 5;
const LEAVE_VERSION: i16 = 5;
const COMMIT_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 7;

const SESSION_TIMEOUT_MS: i32 = 10_000;
const REBALANCE_TIMEOUT_MS: i32 = 30_000;

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn code(error: ResponseError) -> i16 {
    error.code()
}

/// Consumer subscription metadata as the Java client and librdkafka send it.
fn subscription(topics: &[&str]) -> Bytes {
    let mut sub = ConsumerProtocolSubscription::default();
    sub.topics = topics.iter().map(|t| s(t)).collect();
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    sub.encode(&mut buf, 1).unwrap();
    buf.freeze()
}

/// The coordinator plus a simulated broker: an in-memory `__consumer_offsets`, a clock
/// and request ids.
struct Harness {
    coordinator: GroupCoordinator,
    now_ms: i64,
    next_request_id: u64,
    /// Records appended per partition of `__consumer_offsets`, in order.
    log: BTreeMap<i32, Vec<OffsetsTopicRecord>>,
    /// The same with what their batches say about transactions, and the transaction
    /// markers written (`write_marker`): what a reload reads back.
    full_log: BTreeMap<i32, Vec<LoadedRecord>>,
    /// When set, appends fail with this error.
    fail_appends: Option<ResponseError>,
    /// Responses received, by request id.
    responses: BTreeMap<u64, GroupResponse>,
}

impl Harness {
    fn new() -> Self {
        Self::with_config(GroupCoordinatorConfig {
            group_initial_rebalance_delay_ms: 0,
            ..GroupCoordinatorConfig::default()
        })
    }

    fn with_config(config: GroupCoordinatorConfig) -> Self {
        let partitions = config.offsets_topic_num_partitions;
        let mut coordinator = GroupCoordinator::new(config, 42);
        for partition in 0..partitions {
            coordinator
                .load_partition(partition, NO_RECORDS, 0)
                .unwrap();
        }
        Harness {
            coordinator,
            now_ms: 0,
            next_request_id: 1,
            log: BTreeMap::new(),
            full_log: BTreeMap::new(),
            fail_appends: None,
            responses: BTreeMap::new(),
        }
    }

    fn request_id(&mut self) -> u64 {
        let id = self.next_request_id;
        self.next_request_id += 1;
        id
    }

    /// Performs outputs as the broker would: appends are written (or fail) and reported
    /// back at once; responses are collected.
    fn perform(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Respond {
                    request_id,
                    response,
                } => {
                    let previous = self.responses.insert(request_id, response);
                    assert!(previous.is_none(), "request {request_id} answered twice");
                }
                Output::Append {
                    append_id,
                    partition,
                    records,
                    transactional,
                } => {
                    if self.fail_appends.is_none() {
                        let full = self.full_log.entry(partition).or_default();
                        full.extend(records.iter().cloned().map(|r| match transactional {
                            Some(producer) => LoadedRecord::transactional(r, producer.producer_id),
                            None => LoadedRecord::record(r),
                        }));
                        self.log.entry(partition).or_default().extend(records);
                    }
                    let more = self.coordinator.on_append_completed(
                        append_id,
                        self.fail_appends,
                        self.now_ms,
                    );
                    self.perform(more);
                }
            }
        }
    }

    fn advance(&mut self, ms: i64) {
        self.now_ms += ms;
        let outputs = self.coordinator.tick(self.now_ms);
        self.perform(outputs);
    }

    /// With `group.initial.rebalance.delay.ms` = 0 the initial delay still runs on the
    /// timer: one tick ends it, but members that arrived during it extend it once more.
    fn end_initial_delay(&mut self) {
        self.advance(0);
        self.advance(0);
    }

    fn take_response(&mut self, request_id: u64) -> Option<GroupResponse> {
        self.responses.remove(&request_id)
    }

    fn join_response(&mut self, request_id: u64) -> Option<JoinGroupResponse> {
        match self.take_response(request_id)? {
            GroupResponse::JoinGroup(response) => Some(response),
            other => panic!("expected a JoinGroup response, got {other:?}"),
        }
    }

    fn sync_response(&mut self, request_id: u64) -> Option<SyncGroupResponse> {
        match self.take_response(request_id)? {
            GroupResponse::SyncGroup(response) => Some(response),
            other => panic!("expected a SyncGroup response, got {other:?}"),
        }
    }

    fn send_join(&mut self, join: Join) -> u64 {
        let request_id = self.request_id();
        let mut request = JoinGroupRequest::default();
        request.group_id = GroupId(s(join.group));
        request.session_timeout_ms = join.session_timeout_ms;
        request.rebalance_timeout_ms = join.rebalance_timeout_ms;
        request.member_id = s(join.member_id);
        request.group_instance_id = join.instance_id.map(s);
        request.protocol_type = s("consumer");
        request.protocols = join
            .protocols
            .iter()
            .map(|(name, metadata)| {
                let mut protocol = JoinGroupRequestProtocol::default();
                protocol.name = s(name);
                protocol.metadata = metadata.clone();
                protocol
            })
            .collect();
        let outputs = self.coordinator.handle_join_group(
            request,
            join.version,
            join.client_id,
            "/127.0.0.1",
            request_id,
            self.now_ms,
        );
        self.perform(outputs);
        request_id
    }

    /// A dynamic member's full KIP-394 join: returns its member id and the request id of
    /// the JoinGroup that waits for the join phase to end.
    fn join_new_member(&mut self, group: &str, client_id: &str) -> (String, u64) {
        let first = self.send_join(Join::new(group, "").client(client_id));
        let response = self
            .join_response(first)
            .expect("MEMBER_ID_REQUIRED comes at once");
        assert_eq!(response.error_code, code(ResponseError::MemberIdRequired));
        let member_id = response.member_id.to_string();
        let request_id = self.send_join(Join::new(group, &member_id).client(client_id));
        (member_id, request_id)
    }

    fn send_sync(
        &mut self,
        group: &str,
        member_id: &str,
        generation_id: i32,
        assignments: &[(&str, &[u8])],
    ) -> u64 {
        let request_id = self.request_id();
        let mut request = SyncGroupRequest::default();
        request.group_id = GroupId(s(group));
        request.generation_id = generation_id;
        request.member_id = s(member_id);
        request.protocol_type = Some(s("consumer"));
        request.protocol_name = Some(s("range"));
        request.assignments = assignments
            .iter()
            .map(|(member, assignment)| {
                let mut a = SyncGroupRequestAssignment::default();
                a.member_id = s(member);
                a.assignment = Bytes::copy_from_slice(assignment);
                a
            })
            .collect();
        let outputs =
            self.coordinator
                .handle_sync_group(request, SYNC_VERSION, request_id, self.now_ms);
        self.perform(outputs);
        request_id
    }

    fn heartbeat(&mut self, group: &str, member_id: &str, generation_id: i32) -> i16 {
        self.heartbeat_static(group, member_id, None, generation_id)
    }

    fn heartbeat_static(
        &mut self,
        group: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> i16 {
        let mut request = HeartbeatRequest::default();
        request.group_id = GroupId(s(group));
        request.member_id = s(member_id);
        request.group_instance_id = instance_id.map(s);
        request.generation_id = generation_id;
        self.coordinator
            .handle_heartbeat(request, self.now_ms)
            .error_code
    }

    fn leave(&mut self, group: &str, member_id: &str) -> i16 {
        let request_id = self.request_id();
        let mut request = LeaveGroupRequest::default();
        request.group_id = GroupId(s(group));
        let mut member = MemberIdentity::default();
        member.member_id = s(member_id);
        request.members = vec![member];
        let outputs =
            self.coordinator
                .handle_leave_group(request, LEAVE_VERSION, request_id, self.now_ms);
        self.perform(outputs);
        match self.take_response(request_id) {
            Some(GroupResponse::LeaveGroup(response)) => {
                assert_eq!(response.error_code, 0);
                response.members[0].error_code
            }
            other => panic!("expected a LeaveGroup response, got {other:?}"),
        }
    }

    fn commit_request(
        group: &str,
        member_id: &str,
        generation_id: i32,
        offsets: &[(&str, i32, i64, Option<&str>)],
    ) -> OffsetCommitRequest {
        let mut request = OffsetCommitRequest::default();
        request.group_id = GroupId(s(group));
        request.member_id = s(member_id);
        request.generation_id_or_member_epoch = generation_id;
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (topic, partition, offset, metadata) in offsets {
            let mut p = OffsetCommitRequestPartition::default();
            p.partition_index = *partition;
            p.committed_offset = *offset;
            p.committed_metadata = metadata.map(s);
            match topics.iter_mut().find(|t| t.name.as_str() == *topic) {
                Some(t) => t.partitions.push(p),
                None => {
                    let mut t = OffsetCommitRequestTopic::default();
                    t.name = TopicName(s(topic));
                    t.partitions = vec![p];
                    topics.push(t);
                }
            }
        }
        request.topics = topics;
        request
    }

    /// Commits and returns the per-partition error codes in request order.
    fn commit(
        &mut self,
        group: &str,
        member_id: &str,
        generation_id: i32,
        offsets: &[(&str, i32, i64, Option<&str>)],
    ) -> Vec<i16> {
        let request_id = self.request_id();
        let request = Self::commit_request(group, member_id, generation_id, offsets);
        let outputs =
            self.coordinator
                .handle_offset_commit(request, COMMIT_VERSION, request_id, self.now_ms);
        self.perform(outputs);
        match self.take_response(request_id) {
            Some(GroupResponse::OffsetCommit(response)) => commit_errors(&response),
            other => panic!("expected an OffsetCommit response, got {other:?}"),
        }
    }

    /// Committed offset and metadata of one partition (-1 and "" when none).
    fn fetch(&self, group: &str, topic: &str, partition: i32) -> (i64, String) {
        let mut request = OffsetFetchRequest::default();
        request.group_id = GroupId(s(group));
        let mut t = OffsetFetchRequestTopic::default();
        t.name = TopicName(s(topic));
        t.partition_indexes = vec![partition];
        request.topics = Some(vec![t]);
        let response = self.coordinator.handle_offset_fetch(request, FETCH_VERSION);
        assert_eq!(response.error_code, 0);
        fetched(&response, topic, partition)
    }

    /// Forms a Stable group of `clients.len()` dynamic members; returns their member ids
    /// in join order (the first one leads) and the generation.
    fn stable_group(&mut self, group: &str, clients: &[&str]) -> (Vec<String>, i32) {
        let mut joins = Vec::new();
        for client in clients {
            joins.push(self.join_new_member(group, client));
        }
        self.end_initial_delay();
        let mut generation = -1;
        for (_, request_id) in &joins {
            let response = self
                .join_response(*request_id)
                .expect("join phase complete");
            assert_eq!(response.error_code, 0);
            generation = response.generation_id;
        }
        let ids: Vec<String> = joins.into_iter().map(|(id, _)| id).collect();
        let assignments: Vec<(&str, &[u8])> =
            ids.iter().map(|id| (id.as_str(), id.as_bytes())).collect();
        let mut syncs = vec![self.send_sync(group, &ids[0], generation, &assignments)];
        for id in &ids[1..] {
            syncs.push(self.send_sync(group, id, generation, &[]));
        }
        for (id, request_id) in ids.iter().zip(syncs) {
            let response = self
                .sync_response(request_id)
                .expect("assignment propagated");
            assert_eq!(response.error_code, 0);
            assert_eq!(response.assignment.as_ref(), id.as_bytes());
        }
        (ids, generation)
    }
}

fn commit_errors(response: &OffsetCommitResponse) -> Vec<i16> {
    response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

fn fetched(response: &OffsetFetchResponse, topic: &str, partition: i32) -> (i64, String) {
    let p = response
        .topics
        .iter()
        .find(|t| t.name.as_str() == topic)
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == partition))
        .expect("partition in response");
    assert_eq!(p.error_code, 0);
    (
        p.committed_offset,
        p.metadata
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// A JoinGroup request under construction.
struct Join<'a> {
    group: &'a str,
    member_id: &'a str,
    instance_id: Option<&'a str>,
    client_id: &'a str,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocols: Vec<(&'a str, Bytes)>,
    version: i16,
}

impl<'a> Join<'a> {
    fn new(group: &'a str, member_id: &'a str) -> Self {
        Join {
            group,
            member_id,
            instance_id: None,
            client_id: "client",
            session_timeout_ms: SESSION_TIMEOUT_MS,
            rebalance_timeout_ms: REBALANCE_TIMEOUT_MS,
            protocols: vec![("range", subscription(&["orders"]))],
            version: JOIN_VERSION,
        }
    }

    fn client(mut self, client_id: &'a str) -> Self {
        self.client_id = client_id;
        self
    }

    fn instance(mut self, instance_id: &'a str) -> Self {
        self.instance_id = Some(instance_id);
        self
    }

    fn protocols(mut self, protocols: Vec<(&'a str, Bytes)>) -> Self {
        self.protocols = protocols;
        self
    }

    fn rebalance_timeout(mut self, ms: i32) -> Self {
        self.rebalance_timeout_ms = ms;
        self
    }

    fn session_timeout(mut self, ms: i32) -> Self {
        self.session_timeout_ms = ms;
        self
    }

    fn version(mut self, version: i16) -> Self {
        self.version = version;
        self
    }
}
