//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup: forming groups and rebalancing them.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::JoinGroupResponse;

use super::*;
use crate::{GroupCoordinatorConfig, GroupState, offsets_topic};

fn member_ids(response: &JoinGroupResponse) -> Vec<String> {
    response
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .collect()
}

#[test]
fn kip_394_first_join_gets_member_id_required_with_a_generated_id() {
    let mut h = Harness::new();
    let request_id = h.request_id();
    let mut request = JoinGroupRequest::default();
    request.group_id = GroupId(s("g"));
    request.session_timeout_ms = SESSION_TIMEOUT_MS;
    request.rebalance_timeout_ms = REBALANCE_TIMEOUT_MS;
    request.protocol_type = s("consumer");
    let mut protocol = JoinGroupRequestProtocol::default();
    protocol.name = s("range");
    request.protocols = vec![protocol];
    let outputs =
        h.coordinator
            .handle_join_group(request, 4, "rdkafka", "/10.0.0.1", request_id, 0);

    // Exactly one output: the immediate answer. Nothing is written.
    assert_eq!(outputs.len(), 1);
    let Output::Respond {
        request_id: answered,
        response: GroupResponse::JoinGroup(response),
    } = &outputs[0]
    else {
        panic!("unexpected outputs {outputs:?}");
    };
    assert_eq!(*answered, request_id);
    assert_eq!(response.error_code, code(ResponseError::MemberIdRequired));
    assert_eq!(response.generation_id, -1);
    assert_eq!(response.leader.as_str(), "");
    let member_id = response.member_id.as_str();
    assert!(member_id.starts_with("rdkafka-"), "{member_id}");
    assert_eq!(member_id.len(), "rdkafka-".len() + 36);
    // The pending member does not make the group non-Empty.
    assert_eq!(h.coordinator.group_state("g"), Some(GroupState::Empty));
}

#[test]
fn join_group_v3_without_member_id_joins_directly() {
    let mut h = Harness::new();
    let request_id = h.send_join(Join::new("g", "").version(3));
    assert!(
        h.join_response(request_id).is_none(),
        "waits for the join phase"
    );
    h.advance(0);
    let response = h.join_response(request_id).unwrap();
    assert_eq!(response.error_code, 0);
    assert_eq!(response.generation_id, 1);
    assert_eq!(response.leader, response.member_id);
    // Before JoinGroup v7 the protocol name is not nullable.
    assert_eq!(response.protocol_name.as_deref(), Some("range"));
}

#[test]
fn a_single_member_joins_syncs_and_becomes_stable() {
    let mut h = Harness::new();
    let (member_id, join_request) = h.join_new_member("g", "c1");
    // The initial delay (0 here) always runs to the next tick, as Kafka's timer does.
    assert!(h.join_response(join_request).is_none());
    assert_eq!(
        h.coordinator.group_state("g"),
        Some(GroupState::PreparingRebalance)
    );
    h.advance(0);

    let join = h.join_response(join_request).unwrap();
    assert_eq!(join.error_code, 0);
    assert_eq!(join.generation_id, 1);
    assert_eq!(join.member_id.as_str(), member_id);
    assert_eq!(join.leader.as_str(), member_id);
    assert_eq!(join.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(join.protocol_name.as_deref(), Some("range"));
    assert_eq!(member_ids(&join), std::slice::from_ref(&member_id));
    assert_eq!(join.members[0].metadata, subscription(&["orders"]));
    assert_eq!(
        h.coordinator.group_state("g"),
        Some(GroupState::CompletingRebalance)
    );

    // The leader's SyncGroup is held until the assignment is stored.
    let request_id = h.request_id();
    let mut request = SyncGroupRequest::default();
    request.group_id = GroupId(s("g"));
    request.generation_id = 1;
    request.member_id = s(&member_id);
    let mut assignment = SyncGroupRequestAssignment::default();
    assignment.member_id = s(&member_id);
    assignment.assignment = Bytes::from_static(b"all");
    request.assignments = vec![assignment];
    let outputs = h.coordinator.handle_sync_group(request, 5, request_id, 0);
    assert_eq!(outputs.len(), 1);
    let Output::Append {
        append_id,
        partition,
        records,
        transactional: None,
    } = &outputs[0]
    else {
        panic!("expected an append, got {outputs:?}");
    };
    assert_eq!(*partition, offsets_topic::partition_for("g", 50));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].key, offsets_topic::group_metadata_key("g"));
    let stored =
        offsets_topic::decode_group_metadata_value(records[0].value.as_ref().unwrap()).unwrap();
    assert_eq!(stored.generation, 1);
    assert_eq!(stored.protocol.as_deref(), Some("range"));
    assert_eq!(stored.leader.as_deref(), Some(member_id.as_str()));
    assert_eq!(stored.members.len(), 1);
    assert_eq!(stored.members[0].client_id, "c1");
    assert_eq!(stored.members[0].assignment.as_ref(), b"all");
    assert_eq!(
        h.coordinator.group_state("g"),
        Some(GroupState::CompletingRebalance)
    );

    let outputs = h.coordinator.on_append_completed(*append_id, None, 0);
    assert_eq!(outputs.len(), 1);
    let Output::Respond {
        request_id: answered,
        response: GroupResponse::SyncGroup(sync),
    } = &outputs[0]
    else {
        panic!("expected the SyncGroup answer, got {outputs:?}");
    };
    assert_eq!(*answered, request_id);
    assert_eq!(sync.error_code, 0);
    assert_eq!(sync.assignment.as_ref(), b"all");
    assert_eq!(sync.protocol_name.as_deref(), Some("range"));
    assert_eq!(h.coordinator.group_state("g"), Some(GroupState::Stable));
    assert_eq!(h.heartbeat("g", &member_id, 1), 0);
}

#[test]
fn three_members_share_one_generation_and_the_first_leads() {
    let mut h = Harness::with_config(GroupCoordinatorConfig {
        group_initial_rebalance_delay_ms: 3_000,
        ..GroupCoordinatorConfig::default()
    });
    let (m1, j1) = h.join_new_member("g", "c1");
    h.advance(1_000);
    let (m2, j2) = h.join_new_member("g", "c2");
    h.advance(1_000);
    let (m3, j3) = h.join_new_member("g", "c3");
    // The first delay ends at 3000 but new members arrived: it is extended once more.
    h.advance(1_000);
    assert!(h.join_response(j1).is_none());
    h.advance(3_000);

    let r1 = h.join_response(j1).unwrap();
    let r2 = h.join_response(j2).unwrap();
    let r3 = h.join_response(j3).unwrap();
    for r in [&r1, &r2, &r3] {
        assert_eq!(r.error_code, 0);
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.leader.as_str(), m1);
    }
    assert_eq!(member_ids(&r1), [m1.clone(), m2.clone(), m3.clone()]);
    assert!(r2.members.is_empty(), "only the leader sees the members");
    assert!(r3.members.is_empty());

    // Followers' SyncGroups wait for the leader's.
    let s2 = h.send_sync("g", &m2, 1, &[]);
    let s3 = h.send_sync("g", &m3, 1, &[]);
    assert!(h.sync_response(s2).is_none());
    let s1 = h.send_sync(
        "g",
        &m1,
        1,
        &[(&m1, b"p0,p1"), (&m2, b"p2,p3"), (&m3, b"p4,p5")],
    );
    assert_eq!(h.sync_response(s1).unwrap().assignment.as_ref(), b"p0,p1");
    assert_eq!(h.sync_response(s2).unwrap().assignment.as_ref(), b"p2,p3");
    assert_eq!(h.sync_response(s3).unwrap().assignment.as_ref(), b"p4,p5");
    assert_eq!(h.coordinator.group_state("g"), Some(GroupState::Stable));
    let stats = h.coordinator.stats();
    assert_eq!(stats.rebalances_total, 1);
    assert_eq!(stats.rebalances_completed_total, 1);
    assert_eq!(stats.recent_rebalance_durations_ms, [6_000]);
    assert_eq!(stats.members_by_group["g"], 3);
    assert_eq!(stats.groups_by_state[&GroupState::Stable], 1);
}

#[test]
fn leader_sync_fills_missing_assignments_with_empty_ones() {
    let mut h = Harness::new();
    let (m1, j1) = h.join_new_member("g", "c1");
    let (m2, j2) = h.join_new_member("g", "c2");
    h.end_initial_delay();
    h.join_response(j1).unwrap();
    h.join_response(j2).unwrap();
    let s2 = h.send_sync("g", &m2, 1, &[]);
    let s1 = h.send_sync("g", &m1, 1, &[(&m1, b"everything")]);
    assert_eq!(
        h.sync_response(s1).unwrap().assignment.as_ref(),
        b"everything"
    );
    let follower = h.sync_response(s2).unwrap();
    assert_eq!(follower.error_code, 0);
    assert!(follower.assignment.is_empty());
}

#[test]
fn a_new_member_triggers_a_rebalance_that_waits_for_everyone() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["c1", "c2"]);
    let (m3, j3) = h.join_new_member("g", "c3");
    assert_eq!(
        h.coordinator.group_state("g"),
        Some(GroupState::PreparingRebalance)
    );
    // Existing members learn of the rebalance from their heartbeats.
    assert_eq!(
        h.heartbeat("g", &ids[0], generation),
        code(ResponseError::RebalanceInProgress)
    );
    let r1 = h.send_join(Join::new("g", &ids[0]).client("c1"));
    assert!(h.join_response(j3).is_none(), "c2 has not rejoined yet");
    let r2 = h.send_join(Join::new("g", &ids[1]).client("c2"));
    // Everybody rejoined: the join phase ends at once, no timer needed.
    let leader = h.join_response(r1).unwrap();
    assert_eq!(leader.generation_id, generation + 1);
    assert_eq!(leader.leader.as_str(), ids[0]);
    assert_eq!(
        member_ids(&leader),
        [ids[0].clone(), ids[1].clone(), m3.clone()]
    );
    assert_eq!(h.join_response(r2).unwrap().generation_id, generation + 1);
    assert_eq!(h.join_response(j3).unwrap().generation_id, generation + 1);
}

#[test]
fn heartbeats_report_the_rebalance_and_reject_strangers() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["c1", "c2"]);
    assert_eq!(h.heartbeat("g", &ids[1], generation), 0);
    assert_eq!(
        h.heartbeat("g", &ids[1], generation - 1),
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        h.heartbeat("g", "stranger", generation),
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        h.heartbeat("nope", "stranger", 1),
        code(ResponseError::UnknownMemberId)
    );
    // The leader rejoining forces a rebalance (how a consumer asks for a new assignment).
    let r1 = h.send_join(Join::new("g", &ids[0]).client("c1"));
    assert!(h.join_response(r1).is_none());
    assert_eq!(
        h.heartbeat("g", &ids[1], generation),
        code(ResponseError::RebalanceInProgress)
    );
    // SyncGroup during the join phase is refused the same way.
    let sync = h.send_sync("g", &ids[1], generation, &[]);
    assert_eq!(
        h.sync_response(sync).unwrap().error_code,
        code(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn a_follower_rejoining_unchanged_in_a_stable_group_gets_the_current_generation() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["c1", "c2"]);
    let r2 = h.send_join(Join::new("g", &ids[1]).client("c2"));
    let response = h.join_response(r2).expect("answered at once");
    assert_eq!(response.error_code, 0);
    assert_eq!(response.generation_id, generation);
    assert_eq!(response.leader.as_str(), ids[0]);
    assert!(response.members.is_empty());
    assert_eq!(h.coordinator.group_state("g"), Some(GroupState::Stable));
    // It syncs and gets its assignment back.
    let sync = h.send_sync("g", &ids[1], generation, &[]);
    assert_eq!(
        h.sync_response(sync).unwrap().assignment.as_ref(),
        ids[1].as_bytes()
    );
}

#[test]
fn a_member_leaving_rebalances_the_rest_and_leadership_moves() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["c1", "c2", "c3"]);
    assert_eq!(h.leave("g", &ids[0]), 0);
    assert_eq!(
        h.coordinator.group_state("g"),
        Some(GroupState::PreparingRebalance)
    );
    assert_eq!(
        h.heartbeat("g", &ids[0], generation),
        code(ResponseError::UnknownMemberId)
    );
    let r2 = h.send_join(Join::new("g", &ids[1]).client("c2"));
    let r3 = h.send_join(Join::new("g", &ids[2]).client("c3"));
    let new_leader = h.join_response(r2).unwrap();
    assert_eq!(new_leader.generation_id, generation + 1);
    assert_eq!(new_leader.leader.as_str(), ids[1]);
    assert_eq!(member_ids(&new_leader), [ids[1].clone(), ids[2].clone()]);
    assert!(h.join_response(r3).unwrap().members.is_empty());
    // Leaving twice is an unknown member.
    assert_eq!(h.leave("g", &ids[0]), code(ResponseError::UnknownMemberId));
}

#[test]
fn the_last_member_leaving_empties_the_group_and_stores_that() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["c1"]);
    assert_eq!(h.leave("g", &ids[0]), 0);
    // A rebalance with nobody left ends at once: a new, empty generation.
    assert_eq!(h.coordinator.group_state("g"), Some(GroupState::Empty));
    let partition = offsets_topic::partition_for("g", 50);
    let last = h.log[&partition].last().unwrap();
    let stored = offsets_topic::decode_group_metadata_value(last.value.as_ref().unwrap()).unwrap();
    assert_eq!(stored.generation, generation + 1);
    assert!(stored.members.is_empty());
    assert_eq!(stored.protocol, None);
}

#[test]
fn session_expiry_removes_a_silent_member() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["c1", "c2"]);
    for _ in 0..3 {
        h.advance(i64::from(SESSION_TIMEOUT_MS) / 4);
        // Only c1 heartbeats.
        assert_eq!(h.heartbeat("g", &ids[0], generation), 0);
    }
    h.advance(i64::from(SESSION_TIMEOUT_MS) / 4);
    assert_eq!(
        h.heartbeat("g", &ids[0], generation),
        code(ResponseError::RebalanceInProgress)
    );
    assert_eq!(
        h.coordinator.group_state("g"),
        Some(GroupState::PreparingRebalance),
        "c2's session expired"
    );
    assert_eq!(h.coordinator.stats().members_by_group["g"], 1);
    let r1 = h.send_join(Join::new("g", &ids[0]).client("c1"));
    let response = h.join_response(r1).unwrap();
    assert_eq!(response.generation_id, generation + 1);
    assert_eq!(member_ids(&response), [ids[0].clone()]);
}

#[test]
fn rebalance_timeout_removes_members_that_do_not_rejoin() {
    // The notes' duplicate-consumption case: a consumer busy for longer than
    // max.poll.interval.ms misses the rebalance, is removed, and its late commit fails.
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["fast", "slow"]);
    let r1 = h.send_join(Join::new("g", &ids[0]).client("fast"));
    // "slow" keeps heartbeating (its heartbeat thread is alive) but never rejoins.
    for _ in 0..5 {
        h.advance(i64::from(REBALANCE_TIMEOUT_MS) / 6);
        assert_eq!(
            h.heartbeat("g", &ids[1], generation),
            code(ResponseError::RebalanceInProgress)
        );
        assert!(h.join_response(r1).is_none());
    }
    h.advance(i64::from(REBALANCE_TIMEOUT_MS) / 6);
    let response = h
        .join_response(r1)
        .expect("rebalance timeout ended the join phase");
    assert_eq!(response.generation_id, generation + 1);
    assert_eq!(member_ids(&response), [ids[0].clone()]);

    // The slow consumer finally finishes its batch and commits: rejected.
    assert_eq!(
        h.commit("g", &ids[1], generation, &[("orders", 0, 100, None)]),
        [code(ResponseError::UnknownMemberId)]
    );
    assert_eq!(
        h.heartbeat("g", &ids[1], generation),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn members_that_never_sync_are_removed_after_the_rebalance_timeout() {
    let mut h = Harness::new();
    let (m1, j1) = h.join_new_member("g", "c1");
    let (m2, j2) = h.join_new_member("g", "c2");
    h.end_initial_delay();
    h.join_response(j1).unwrap();
    h.join_response(j2).unwrap();
    let s1 = h.send_sync("g", &m1, 1, &[(&m1, b"a"), (&m2, b"b")]);
    assert_eq!(h.sync_response(s1).unwrap().assignment.as_ref(), b"a");
    assert_eq!(h.coordinator.group_state("g"), Some(GroupState::Stable));
    // m2 heartbeats (so its session stays alive) but never syncs.
    for _ in 0..3 {
        h.advance(i64::from(REBALANCE_TIMEOUT_MS) / 4);
        assert_eq!(h.heartbeat("g", &m1, 1), 0);
        assert_eq!(h.heartbeat("g", &m2, 1), 0);
    }
    h.advance(i64::from(REBALANCE_TIMEOUT_MS) / 4);
    assert_eq!(
        h.coordinator.group_state("g"),
        Some(GroupState::PreparingRebalance)
    );
    assert_eq!(h.coordinator.stats().members_by_group["g"], 1);
}

#[test]
fn pending_member_ids_expire_and_stop_holding_up_the_join_phase() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("g", &["c1"]);
    // A second client gets a member id but never comes back with it.
    let first = h.send_join(Join::new("g", "").client("ghost"));
    assert_eq!(
        h.join_response(first).unwrap().error_code,
        code(ResponseError::MemberIdRequired)
    );
    let r1 = h.send_join(Join::new("g", &ids[0]).client("c1"));
    assert!(
        h.join_response(r1).is_none(),
        "waiting for the pending member"
    );
    h.advance(i64::from(SESSION_TIMEOUT_MS));
    let response = h.join_response(r1).unwrap();
    assert_eq!(response.generation_id, generation + 1);
    assert_eq!(member_ids(&response), [ids[0].clone()]);
}

#[test]
fn session_timeout_must_be_within_the_broker_bounds() {
    let mut h = Harness::new();
    for timeout in [5_999, 1_800_001] {
        let r = h.send_join(Join::new("g", "").session_timeout(timeout));
        assert_eq!(
            h.join_response(r).unwrap().error_code,
            code(ResponseError::InvalidSessionTimeout)
        );
    }
    let r = h.send_join(Join::new("g", "").session_timeout(6_000));
    assert_eq!(
        h.join_response(r).unwrap().error_code,
        code(ResponseError::MemberIdRequired)
    );
}

#[test]
fn members_must_share_a_protocol_with_the_group() {
    let mut h = Harness::new();
    h.stable_group("g", &["c1"]);
    let r = h.send_join(Join::new("g", "").protocols(vec![("roundrobin", Bytes::new())]));
    assert_eq!(
        h.join_response(r).unwrap().error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
}

#[test]
fn the_protocol_is_chosen_by_vote_among_those_everyone_supports() {
    let mut h = Harness::new();
    let both = |first: &'static str, second: &'static str| {
        vec![
            (first, subscription(&["t"])),
            (second, subscription(&["t"])),
        ]
    };
    let mut requests = Vec::new();
    for (client, protocols) in [
        ("c1", both("cooperative-sticky", "range")),
        ("c2", both("range", "cooperative-sticky")),
        ("c3", both("range", "cooperative-sticky")),
    ] {
        let first = h.send_join(
            Join::new("g", "")
                .client(client)
                .protocols(protocols.clone()),
        );
        let member_id = h.join_response(first).unwrap().member_id.to_string();
        requests.push(
            h.send_join(
                Join::new("g", &member_id)
                    .client(client)
                    .protocols(protocols),
            ),
        );
    }
    h.end_initial_delay();
    for request in requests {
        let response = h.join_response(request).unwrap();
        assert_eq!(response.protocol_name.as_deref(), Some("range"));
    }
}

#[test]
fn cooperative_rebalances_carry_owned_partitions_through_unchanged() {
    // Cooperative-sticky needs the coordinator to relay subscriptions (with their owned
    // partitions) byte for byte to the leader, over two consecutive rebalances.
    let mut h = Harness::new();
    let metadata = |owned: &[u8]| {
        let mut bytes = subscription(&["t"]).to_vec();
        bytes.extend_from_slice(owned);
        Bytes::from(bytes)
    };
    let (ids, generation) = h.stable_group("g", &["c1"]);
    let r1 = h.send_join(
        Join::new("g", &ids[0])
            .client("c1")
            .protocols(vec![("range", metadata(b"owned:0,1,2"))]),
    );
    let response = h.join_response(r1).unwrap();
    assert_eq!(response.generation_id, generation + 1);
    assert_eq!(response.members[0].metadata, metadata(b"owned:0,1,2"));
}

#[test]
fn group_max_size_rejects_extra_members() {
    let mut h = Harness::with_config(GroupCoordinatorConfig {
        group_initial_rebalance_delay_ms: 0,
        group_max_size: 2,
        ..GroupCoordinatorConfig::default()
    });
    h.stable_group("g", &["c1", "c2"]);
    let first = h.send_join(Join::new("g", "").client("c3"));
    let response = h.join_response(first).unwrap();
    assert_eq!(
        response.error_code,
        code(ResponseError::GroupMaxSizeReached)
    );
}

#[test]
fn groups_of_partitions_not_loaded_here_get_not_coordinator() {
    let mut coordinator = GroupCoordinator::new(
        GroupCoordinatorConfig {
            offsets_topic_num_partitions: 2,
            ..GroupCoordinatorConfig::default()
        },
        1,
    );
    let group = "g";
    let loaded = offsets_topic::partition_for(group, 2);
    coordinator
        .load_partition(1 - loaded, NO_RECORDS, 0)
        .unwrap();
    let mut request = JoinGroupRequest::default();
    request.group_id = GroupId(s(group));
    request.session_timeout_ms = SESSION_TIMEOUT_MS;
    let outputs = coordinator.handle_join_group(request, 9, "c", "h", 7, 0);
    let [
        Output::Respond {
            response: GroupResponse::JoinGroup(response),
            ..
        },
    ] = outputs.as_slice()
    else {
        panic!("{outputs:?}");
    };
    assert_eq!(response.error_code, code(ResponseError::NotCoordinator));
}

#[test]
fn a_failed_assignment_write_tells_members_to_rejoin() {
    let mut h = Harness::new();
    let (m1, j1) = h.join_new_member("g", "c1");
    let (m2, j2) = h.join_new_member("g", "c2");
    h.end_initial_delay();
    h.join_response(j1).unwrap();
    h.join_response(j2).unwrap();
    let s2 = h.send_sync("g", &m2, 1, &[]);
    h.fail_appends = Some(ResponseError::NotLeaderOrFollower);
    let s1 = h.send_sync("g", &m1, 1, &[(&m1, b"a"), (&m2, b"b")]);
    assert_eq!(
        h.sync_response(s1).unwrap().error_code,
        code(ResponseError::NotCoordinator)
    );
    assert_eq!(
        h.sync_response(s2).unwrap().error_code,
        code(ResponseError::NotCoordinator)
    );
    assert_eq!(
        h.coordinator.group_state("g"),
        Some(GroupState::PreparingRebalance)
    );
}

#[test]
fn a_join_during_the_sync_phase_restarts_the_rebalance() {
    let mut h = Harness::new();
    let (m1, j1) = h.join_new_member("g", "c1");
    h.advance(0);
    h.join_response(j1).unwrap();
    // c1 is leader and computing; a new member arrives before its SyncGroup.
    let (_m2, j2) = h.join_new_member("g", "c2");
    assert_eq!(
        h.coordinator.group_state("g"),
        Some(GroupState::PreparingRebalance)
    );
    let s1 = h.send_sync("g", &m1, 1, &[(&m1, b"x")]);
    assert_eq!(
        h.sync_response(s1).unwrap().error_code,
        code(ResponseError::RebalanceInProgress)
    );
    let r1 = h.send_join(Join::new("g", &m1).client("c1"));
    assert_eq!(h.join_response(r1).unwrap().generation_id, 2);
    assert_eq!(h.join_response(j2).unwrap().generation_id, 2);
}

#[test]
fn a_new_member_parked_for_five_minutes_is_dropped() {
    // Kafka's NewMemberJoinTimeoutMs: a new member's JoinGroup cannot wait forever for
    // members that never rejoin.
    let mut h = Harness::new();
    let first = h.send_join(Join::new("g", "").client("old").rebalance_timeout(600_000));
    let old_id = h.join_response(first).unwrap().member_id.to_string();
    let join = h.send_join(
        Join::new("g", &old_id)
            .client("old")
            .rebalance_timeout(600_000),
    );
    h.advance(0);
    assert_eq!(h.join_response(join).unwrap().generation_id, 1);
    let sync = h.send_sync("g", &old_id, 1, &[(&old_id, b"all")]);
    assert_eq!(h.sync_response(sync).unwrap().error_code, 0);

    let (_new_id, parked) = h.join_new_member("g", "new");
    // "old" keeps heartbeating but is stuck in processing and never rejoins.
    for _ in 0..59 {
        h.advance(5_000);
        assert_eq!(
            h.heartbeat("g", &old_id, 1),
            code(ResponseError::RebalanceInProgress)
        );
        assert!(h.join_response(parked).is_none());
    }
    h.advance(5_000);
    let response = h.join_response(parked).expect("dropped after five minutes");
    assert_eq!(response.error_code, code(ResponseError::UnknownMemberId));
    assert_eq!(response.member_id.as_str(), "");
}

#[test]
fn a_retried_join_group_supersedes_the_parked_one() {
    let mut h = Harness::new();
    let (ids, _) = h.stable_group("g", &["c1", "c2"]);
    let first = h.send_join(Join::new("g", &ids[0]).client("c1"));
    let retry = h.send_join(Join::new("g", &ids[0]).client("c1"));
    assert_eq!(
        h.join_response(first).unwrap().error_code,
        code(ResponseError::RebalanceInProgress)
    );
    assert!(
        h.join_response(retry).is_none(),
        "the retry is the one that waits"
    );
    let r2 = h.send_join(Join::new("g", &ids[1]).client("c2"));
    assert_eq!(h.join_response(retry).unwrap().error_code, 0);
    assert_eq!(h.join_response(r2).unwrap().error_code, 0);
}

#[test]
fn leave_group_before_v3_reports_the_member_error_at_the_top() {
    let mut h = Harness::new();
    let (ids, _) = h.stable_group("g", &["c1"]);
    for (member_id, expected) in [
        ("unknown", code(ResponseError::UnknownMemberId)),
        (ids[0].as_str(), 0),
    ] {
        let request_id = h.request_id();
        let mut request = LeaveGroupRequest::default();
        request.group_id = GroupId(s("g"));
        request.member_id = s(member_id);
        let outputs = h
            .coordinator
            .handle_leave_group(request, 1, request_id, h.now_ms);
        h.perform(outputs);
        let Some(GroupResponse::LeaveGroup(response)) = h.take_response(request_id) else {
            panic!("no LeaveGroup answer");
        };
        assert_eq!(response.error_code, expected);
        assert!(response.members.is_empty());
    }
    assert_eq!(h.coordinator.group_state("g"), Some(GroupState::Empty));
}

#[test]
fn join_group_v0_uses_the_session_timeout_as_rebalance_timeout() {
    let mut h = Harness::new();
    let a = h.send_join(Join::new("g", "").client("a").version(0));
    assert!(
        h.join_response(a).is_none(),
        "v0 joins without MEMBER_ID_REQUIRED"
    );
    h.advance(0);
    let a_id = h.join_response(a).unwrap().member_id.to_string();
    let sync = h.send_sync("g", &a_id, 1, &[(&a_id, b"all")]);
    assert_eq!(h.sync_response(sync).unwrap().error_code, 0);

    // A second v0 member: the join phase lasts the members' longest rebalance timeout,
    // which for v0 members is their session timeout (10 s).
    let b = h.send_join(Join::new("g", "").client("b").version(0));
    h.advance(5_000);
    assert_eq!(
        h.heartbeat("g", &a_id, 1),
        code(ResponseError::RebalanceInProgress)
    );
    assert!(h.join_response(b).is_none());
    h.advance(5_000);
    let response = h.join_response(b).expect("join phase ended after 10 s");
    assert_eq!(response.generation_id, 2);
    assert_eq!(
        response.members.len(),
        1,
        "a did not rejoin and was removed"
    );
}
