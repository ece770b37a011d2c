//! Every response the coordinator builds must encode at the version it answers: a field
//! set that a version lacks makes the broker's encoder fail, and the client never gets
//! an answer.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, ListGroupsRequest,
};
use kafka_protocol::protocol::Encodable;

use super::*;
use crate::CoordinatorNode;

fn encodes<M: Encodable + std::fmt::Debug>(message: &M, version: i16) {
    let mut buf = BytesMut::new();
    if let Err(error) = message.encode(&mut buf, version) {
        panic!("v{version} does not encode: {error}\n{message:?}");
    }
}

pub(super) fn encodes_response(response: &GroupResponse, version: i16) {
    match response {
        GroupResponse::FindCoordinator(r) => encodes(r, version),
        GroupResponse::JoinGroup(r) => encodes(r, version),
        GroupResponse::SyncGroup(r) => encodes(r, version),
        GroupResponse::Heartbeat(r) => encodes(r, version),
        GroupResponse::LeaveGroup(r) => encodes(r, version),
        GroupResponse::OffsetCommit(r) => encodes(r, version),
        GroupResponse::OffsetFetch(r) => encodes(r, version),
        GroupResponse::DescribeGroups(r) => encodes(r, version),
        GroupResponse::ListGroups(r) => encodes(r, version),
        GroupResponse::DeleteGroups(r) => encodes(r, version),
        GroupResponse::OffsetDelete(r) => encodes(r, version),
        GroupResponse::TxnOffsetCommit(r) => encodes(r, version),
    }
}

#[test]
fn join_sync_heartbeat_and_leave_encode_at_every_version() {
    for join_version in 0..=9 {
        let sync_version = join_version.min(5);
        let mut h = Harness::new();
        // First join: MEMBER_ID_REQUIRED from v4, else a parked request.
        let first = h.send_join(Join::new("g", "").version(join_version));
        let member_id = match h.join_response(first) {
            Some(response) => {
                encodes(&response, join_version);
                let member_id = response.member_id.to_string();
                let second = h.send_join(Join::new("g", &member_id).version(join_version));
                h.advance(0);
                let joined = h.join_response(second).unwrap();
                encodes(&joined, join_version);
                member_id
            }
            None => {
                h.advance(0);
                let joined = h.join_response(first).unwrap();
                encodes(&joined, join_version);
                joined.member_id.to_string()
            }
        };
        // An error answer too.
        let rejected = h.send_join(Join::new("g", "").version(join_version).session_timeout(1));
        encodes(&h.join_response(rejected).unwrap(), join_version);

        let request_id = h.request_id();
        let mut sync = SyncGroupRequest::default();
        sync.group_id = GroupId(s("g"));
        sync.generation_id = 1;
        sync.member_id = s(&member_id);
        let outputs = h
            .coordinator
            .handle_sync_group(sync, sync_version, request_id, h.now_ms);
        h.perform(outputs);
        encodes(&h.sync_response(request_id).unwrap(), sync_version);

        for heartbeat_version in 0..=4 {
            let mut request = HeartbeatRequest::default();
            request.group_id = GroupId(s("g"));
            request.member_id = s(&member_id);
            request.generation_id = 7;
            let response = h.coordinator.handle_heartbeat(request, h.now_ms);
            assert_eq!(response.error_code, code(ResponseError::IllegalGeneration));
            encodes(&response, heartbeat_version);
        }

        let leave_version = join_version.min(5);
        let request_id = h.request_id();
        let mut leave = LeaveGroupRequest::default();
        leave.group_id = GroupId(s("g"));
        if leave_version < 3 {
            leave.member_id = s(&member_id);
        } else {
            let mut member = MemberIdentity::default();
            member.member_id = s(&member_id);
            leave.members = vec![member];
        }
        let outputs = h
            .coordinator
            .handle_leave_group(leave, leave_version, request_id, h.now_ms);
        h.perform(outputs);
        encodes_response(&h.take_response(request_id).unwrap(), leave_version);
    }
}

#[test]
fn offset_apis_encode_at_every_version() {
    let mut h = Harness::new();
    h.commit("g", "", -1, &[("t", 0, 5, Some("m"))]);
    for version in 2..=9 {
        let request_id = h.request_id();
        let request = Harness::commit_request("g", "", -1, &[("t", 1, 6, None)]);
        let outputs = h
            .coordinator
            .handle_offset_commit(request, version, request_id, h.now_ms);
        h.perform(outputs);
        encodes_response(&h.take_response(request_id).unwrap(), version);
    }
    for version in 1..=9 {
        let mut request = OffsetFetchRequest::default();
        if version >= 8 {
            let mut known = OffsetFetchRequestGroup::default();
            known.group_id = GroupId(s("g"));
            let mut topic = OffsetFetchRequestTopics::default();
            topic.name = TopicName(s("t"));
            topic.partition_indexes = vec![0, 1, 2];
            known.topics = Some(vec![topic]);
            let mut all = OffsetFetchRequestGroup::default();
            all.group_id = GroupId(s("g"));
            request.groups = vec![known, all];
        } else {
            request.group_id = GroupId(s("g"));
            let mut topic = OffsetFetchRequestTopic::default();
            topic.name = TopicName(s("t"));
            topic.partition_indexes = vec![0, 1, 2];
            request.topics = Some(vec![topic]);
        }
        encodes(
            &h.coordinator.handle_offset_fetch(request, version),
            version,
        );
    }
    let mut request = OffsetDeleteRequest::default();
    request.group_id = GroupId(s("g"));
    let mut topic = OffsetDeleteRequestTopic::default();
    topic.name = TopicName(s("t"));
    let mut partition = OffsetDeleteRequestPartition::default();
    partition.partition_index = 0;
    topic.partitions = vec![partition];
    request.topics = vec![topic];
    let request_id = h.request_id();
    let outputs = h
        .coordinator
        .handle_offset_delete(request, request_id, h.now_ms);
    h.perform(outputs);
    encodes_response(&h.take_response(request_id).unwrap(), 0);
}

#[test]
fn offset_fetch_errors_encode_at_every_version() {
    // A coordinator that has loaded nothing answers NOT_COORDINATOR everywhere.
    let coordinator = GroupCoordinator::new(GroupCoordinatorConfig::default(), 0);
    for version in 1..=9 {
        let mut request = OffsetFetchRequest::default();
        if version >= 8 {
            let mut group = OffsetFetchRequestGroup::default();
            group.group_id = GroupId(s("g"));
            request.groups = vec![group];
        } else {
            request.group_id = GroupId(s("g"));
            let mut topic = OffsetFetchRequestTopic::default();
            topic.name = TopicName(s("t"));
            topic.partition_indexes = vec![0];
            request.topics = Some(vec![topic]);
        }
        let response = coordinator.handle_offset_fetch(request, version);
        encodes(&response, version);
    }
}

#[test]
fn admin_apis_encode_at_every_version() {
    let mut h = Harness::new();
    h.stable_group("g", &["c1"]);
    h.commit("idle", "", -1, &[("t", 0, 1, None)]);
    let node = CoordinatorNode {
        node_id: 0,
        host: "localhost".into(),
        port: 9092,
    };
    for version in 0..=6 {
        for key in ["g", "unloaded-elsewhere"] {
            let mut request = FindCoordinatorRequest::default();
            if version < 4 {
                request.key = s(key);
            } else {
                request.coordinator_keys = vec![s(key)];
            }
            request.key_type = if key == "g" { 0 } else { 1 };
            encodes(
                &h.coordinator
                    .handle_find_coordinator(request, version, |p| {
                        h.coordinator.is_partition_loaded(p).then(|| node.clone())
                    }),
                version,
            );
        }
        let mut request = DescribeGroupsRequest::default();
        request.groups = vec![GroupId(s("g")), GroupId(s("idle")), GroupId(s("none"))];
        encodes(
            &h.coordinator.handle_describe_groups(request, version),
            version,
        );
    }
    for version in 0..=5 {
        let request = ListGroupsRequest::default();
        encodes(&h.coordinator.handle_list_groups(request, version), version);
    }
    for version in 0..=2 {
        let mut request = DeleteGroupsRequest::default();
        request.groups_names = vec![GroupId(s("g")), GroupId(s("idle")), GroupId(s("none"))];
        let request_id = h.request_id();
        let outputs = h
            .coordinator
            .handle_delete_groups(request, request_id, h.now_ms);
        h.perform(outputs);
        encodes_response(&h.take_response(request_id).unwrap(), version);
    }
}
