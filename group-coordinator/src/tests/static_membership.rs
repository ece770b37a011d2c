//! Static membership (KIP-345): `group.instance.id`.

use kafka_protocol::ResponseError;

use super::*;
use crate::{GroupState, offsets_topic};

/// Forms a Stable group of static members; returns member ids in join order.
pub(super) fn stable_static_group(
    h: &mut Harness,
    group: &str,
    instances: &[&str],
    version: i16,
) -> Vec<String> {
    let requests: Vec<u64> = instances
        .iter()
        .map(|instance| {
            // Static members run with long session timeouts: a restart fits inside one.
            h.send_join(
                Join::new(group, "")
                    .client(instance)
                    .instance(instance)
                    .version(version)
                    .session_timeout(60_000),
            )
        })
        .collect();
    h.end_initial_delay();
    let ids: Vec<String> = requests
        .iter()
        .map(|r| {
            let response = h.join_response(*r).expect("joined");
            assert_eq!(
                response.error_code, 0,
                "static members skip MEMBER_ID_REQUIRED"
            );
            response.member_id.to_string()
        })
        .collect();
    for (id, instance) in ids.iter().zip(instances) {
        assert!(id.starts_with(&format!("{instance}-")), "{id}");
    }
    let assignments: Vec<(&str, &[u8])> =
        ids.iter().map(|id| (id.as_str(), id.as_bytes())).collect();
    let mut syncs = vec![h.send_sync(group, &ids[0], 1, &assignments)];
    for id in &ids[1..] {
        syncs.push(h.send_sync(group, id, 1, &[]));
    }
    for sync in syncs {
        assert_eq!(h.sync_response(sync).unwrap().error_code, 0);
    }
    assert_eq!(h.coordinator.group_state(group), Some(GroupState::Stable));
    ids
}

#[test]
fn a_restarted_static_member_gets_its_partitions_back_without_a_rebalance() {
    let mut h = Harness::new();
    let ids = stable_static_group(&mut h, "g", &["i1", "i2"], 8);
    let rebalances = h.coordinator.stats().rebalances_total;
    h.advance(3_000);

    // i2 restarts: a new process, no member id, same group.instance.id.
    let request_id = h.request_id();
    let mut request = JoinGroupRequest::default();
    request.group_id = GroupId(s("g"));
    request.session_timeout_ms = SESSION_TIMEOUT_MS;
    request.rebalance_timeout_ms = REBALANCE_TIMEOUT_MS;
    request.group_instance_id = Some(s("i2"));
    request.protocol_type = s("consumer");
    let mut protocol = JoinGroupRequestProtocol::default();
    protocol.name = s("range");
    protocol.metadata = subscription(&["orders"]);
    request.protocols = vec![protocol];
    let outputs =
        h.coordinator
            .handle_join_group(request, 8, "i2", "/127.0.0.1", request_id, h.now_ms);

    // Exactly one output: the new member id is stored first; the answer waits for it.
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    let Output::Append {
        append_id, records, ..
    } = &outputs[0]
    else {
        panic!("{outputs:?}");
    };
    let stored =
        offsets_topic::decode_group_metadata_value(records[0].value.as_ref().unwrap()).unwrap();
    let new_id = stored.members[1].member_id.clone();
    assert_ne!(new_id, ids[1]);
    assert_eq!(stored.members[1].group_instance_id.as_deref(), Some("i2"));
    assert_eq!(
        stored.members[1].assignment.as_ref(),
        ids[1].as_bytes(),
        "assignment kept"
    );
    assert_eq!(stored.generation, 1);

    let outputs = h
        .coordinator
        .on_append_completed(*append_id, None, h.now_ms);
    let [
        Output::Respond {
            request_id: answered,
            response: GroupResponse::JoinGroup(response),
        },
    ] = outputs.as_slice()
    else {
        panic!("{outputs:?}");
    };
    assert_eq!(*answered, request_id);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.member_id.as_str(), new_id);
    assert_eq!(response.generation_id, 1, "same generation: no rebalance");
    assert_eq!(response.leader.as_str(), ids[0]);
    assert!(response.members.is_empty());
    assert_eq!(h.coordinator.group_state("g"), Some(GroupState::Stable));
    assert_eq!(h.coordinator.stats().rebalances_total, rebalances);

    // It syncs and receives the old assignment.
    let sync = h.send_sync("g", &new_id, 1, &[]);
    assert_eq!(
        h.sync_response(sync).unwrap().assignment.as_ref(),
        ids[1].as_bytes()
    );
    // The other member noticed nothing.
    assert_eq!(h.heartbeat_static("g", &ids[0], Some("i1"), 1), 0);
    // The old incarnation, if still alive, is fenced.
    assert_eq!(
        h.heartbeat_static("g", &ids[1], Some("i2"), 1),
        code(ResponseError::FencedInstanceId)
    );
    let mut commit = Harness::commit_request("g", &ids[1], 1, &[("orders", 0, 5, None)]);
    commit.group_instance_id = Some(s("i2"));
    let request_id = h.request_id();
    let outputs = h
        .coordinator
        .handle_offset_commit(commit, 9, request_id, h.now_ms);
    h.perform(outputs);
    let Some(GroupResponse::OffsetCommit(response)) = h.take_response(request_id) else {
        panic!("no commit response");
    };
    assert_eq!(
        commit_errors(&response),
        [code(ResponseError::FencedInstanceId)]
    );
}

#[test]
fn a_restarted_static_leader_on_join_group_v9_is_told_to_skip_assignment() {
    let mut h = Harness::new();
    let ids = stable_static_group(&mut h, "g", &["i1", "i2"], 9);
    let request = h.send_join(Join::new("g", "").client("i1").instance("i1"));
    let response = h.join_response(request).unwrap();
    assert_eq!(response.error_code, 0);
    let new_id = response.member_id.to_string();
    assert_ne!(new_id, ids[0]);
    assert_eq!(response.leader.as_str(), new_id, "it is still the leader");
    assert!(response.skip_assignment);
    assert_eq!(response.members.len(), 2);
    assert_eq!(h.coordinator.group_state("g"), Some(GroupState::Stable));
}

#[test]
fn a_static_member_restarting_during_a_rebalance_just_joins_it() {
    let mut h = Harness::new();
    let ids = stable_static_group(&mut h, "g", &["i1", "i2"], 9);
    // i1 (leader) asks for a rebalance; i2 restarts in the middle of it.
    let r1 = h.send_join(Join::new("g", &ids[0]).client("i1").instance("i1"));
    let r2 = h.send_join(Join::new("g", "").client("i2").instance("i2"));
    let leader = h.join_response(r1).unwrap();
    let follower = h.join_response(r2).unwrap();
    assert_eq!(leader.generation_id, 2);
    assert_eq!(follower.generation_id, 2);
    let new_id = follower.member_id.to_string();
    assert_ne!(new_id, ids[1]);
    let members: Vec<String> = leader
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .collect();
    assert_eq!(members, [ids[0].clone(), new_id]);
}

#[test]
fn static_members_that_miss_the_join_phase_stay_in_the_group() {
    let mut h = Harness::new();
    let ids = stable_static_group(&mut h, "g", &["i1", "i2"], 9);
    // i1 rejoins; i2 is restarting and misses the whole join phase, but keeps its place
    // (dynamic members would be dropped).
    let r1 = h.send_join(Join::new("g", &ids[0]).client("i1").instance("i1"));
    h.advance(i64::from(REBALANCE_TIMEOUT_MS));
    let leader = h
        .join_response(r1)
        .expect("rebalance timeout ended the join phase");
    assert_eq!(leader.generation_id, 2);
    assert_eq!(leader.members.len(), 2);
    assert!(
        leader
            .members
            .iter()
            .any(|m| m.member_id.as_str() == ids[1])
    );
}

#[test]
fn leave_group_by_instance_id_alone_removes_a_static_member() {
    let mut h = Harness::new();
    let _ids = stable_static_group(&mut h, "g", &["i1", "i2"], 9);
    let request_id = h.request_id();
    let mut request = LeaveGroupRequest::default();
    request.group_id = GroupId(s("g"));
    let mut member = MemberIdentity::default();
    member.group_instance_id = Some(s("i2"));
    let mut unknown = MemberIdentity::default();
    unknown.group_instance_id = Some(s("i9"));
    request.members = vec![member, unknown];
    let outputs = h
        .coordinator
        .handle_leave_group(request, 4, request_id, h.now_ms);
    h.perform(outputs);
    let Some(GroupResponse::LeaveGroup(response)) = h.take_response(request_id) else {
        panic!("no leave response");
    };
    let errors: Vec<i16> = response.members.iter().map(|m| m.error_code).collect();
    assert_eq!(errors, [0, code(ResponseError::UnknownMemberId)]);
    assert_eq!(h.coordinator.stats().members_by_group["g"], 1);
    assert_eq!(
        h.coordinator.group_state("g"),
        Some(GroupState::PreparingRebalance)
    );
}
