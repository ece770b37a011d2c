//! FindCoordinator, DescribeGroups, ListGroups and DeleteGroups.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, ListGroupsRequest,
};

use super::*;
use crate::{CoordinatorNode, GroupState, offsets_topic};

fn describe(
    h: &Harness,
    groups: &[&str],
    version: i16,
) -> kafka_protocol::messages::DescribeGroupsResponse {
    let mut request = DescribeGroupsRequest::default();
    request.groups = groups.iter().map(|g| GroupId(s(g))).collect();
    h.coordinator.handle_describe_groups(request, version)
}

fn list(h: &Harness, states: &[&str], types: &[&str]) -> Vec<(String, String)> {
    let mut request = ListGroupsRequest::default();
    request.states_filter = states.iter().map(|x| s(x)).collect();
    request.types_filter = types.iter().map(|x| s(x)).collect();
    let response = h.coordinator.handle_list_groups(request, 5);
    assert_eq!(response.error_code, 0);
    response
        .groups
        .iter()
        .map(|g| {
            assert_eq!(g.group_type.as_str(), "classic");
            (g.group_id.to_string(), g.group_state.to_string())
        })
        .collect()
}

fn delete(h: &mut Harness, groups: &[&str]) -> Vec<i16> {
    let mut request = DeleteGroupsRequest::default();
    request.groups_names = groups.iter().map(|g| GroupId(s(g))).collect();
    let request_id = h.request_id();
    let outputs = h
        .coordinator
        .handle_delete_groups(request, request_id, h.now_ms);
    h.perform(outputs);
    match h.take_response(request_id) {
        Some(GroupResponse::DeleteGroups(response)) => {
            response.results.iter().map(|r| r.error_code).collect()
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn describe_shows_members_and_assignments_of_a_stable_group() {
    let mut h = Harness::new();
    let (ids, _) = h.stable_group("g", &["c1", "c2"]);
    let response = describe(&h, &["g", "unknown"], 5);
    let g = &response.groups[0];
    assert_eq!(g.error_code, 0);
    assert_eq!(g.group_state.as_str(), "Stable");
    assert_eq!(g.protocol_type.as_str(), "consumer");
    assert_eq!(g.protocol_data.as_str(), "range");
    let members: Vec<(String, String, String)> = g
        .members
        .iter()
        .map(|m| {
            assert_eq!(m.member_metadata, subscription(&["orders"]));
            (
                m.member_id.to_string(),
                m.client_id.to_string(),
                String::from_utf8(m.member_assignment.to_vec()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        members,
        [
            (ids[0].clone(), "c1".to_owned(), ids[0].clone()),
            (ids[1].clone(), "c2".to_owned(), ids[1].clone()),
        ]
    );
    assert_eq!(g.members[0].client_host.as_str(), "/127.0.0.1");
    // Unknown groups are Dead; from v6 also GROUP_ID_NOT_FOUND.
    let unknown = &response.groups[1];
    assert_eq!(
        (unknown.error_code, unknown.group_state.as_str()),
        (0, "Dead")
    );
    let v6 = describe(&h, &["unknown"], 6);
    assert_eq!(
        v6.groups[0].error_code,
        code(ResponseError::GroupIdNotFound)
    );
}

#[test]
fn describe_hides_metadata_while_rebalancing() {
    let mut h = Harness::new();
    let (ids, _) = h.stable_group("g", &["c1", "c2"]);
    h.send_join(Join::new("g", &ids[0]).client("c1"));
    let response = describe(&h, &["g"], 5);
    let g = &response.groups[0];
    assert_eq!(g.group_state.as_str(), "PreparingRebalance");
    assert_eq!(g.protocol_data.as_str(), "");
    assert_eq!(g.members.len(), 2);
    assert!(g.members.iter().all(|m| m.member_assignment.is_empty()));
}

#[test]
fn list_groups_filters_by_state_and_type() {
    let mut h = Harness::new();
    h.stable_group("active", &["c1"]);
    h.commit("idle", "", -1, &[("t", 0, 1, None)]);
    assert_eq!(
        list(&h, &[], &[]),
        [
            ("active".to_owned(), "Stable".to_owned()),
            ("idle".to_owned(), "Empty".to_owned())
        ]
    );
    assert_eq!(
        list(&h, &["empty"], &[]),
        [("idle".to_owned(), "Empty".to_owned())]
    );
    assert_eq!(list(&h, &[], &["Classic"]).len(), 2);
    assert!(list(&h, &[], &["consumer"]).is_empty());
}

#[test]
fn delete_groups_removes_only_empty_groups_and_tombstones_them() {
    let mut h = Harness::new();
    let (ids, generation) = h.stable_group("busy", &["c1"]);
    h.commit("busy", &ids[0], generation, &[("t", 0, 1, None)]);
    let (ids2, generation2) = h.stable_group("done", &["c2"]);
    h.commit(
        "done",
        &ids2[0],
        generation2,
        &[("t", 0, 5, None), ("t", 1, 6, None)],
    );
    h.leave("done", &ids2[0]);

    assert_eq!(
        delete(&mut h, &["busy", "done", "never-existed"]),
        [
            code(ResponseError::NonEmptyGroup),
            0,
            code(ResponseError::GroupIdNotFound)
        ]
    );
    let partition = offsets_topic::partition_for("done", 50);
    let log = &h.log[&partition];
    assert_eq!(
        log[log.len() - 3..],
        [
            OffsetsTopicRecord {
                key: offsets_topic::offset_commit_key("done", "t", 0),
                value: None
            },
            OffsetsTopicRecord {
                key: offsets_topic::offset_commit_key("done", "t", 1),
                value: None
            },
            OffsetsTopicRecord {
                key: offsets_topic::group_metadata_key("done"),
                value: None
            },
        ]
    );
    assert_eq!(h.coordinator.group_state("done"), None);
    assert_eq!(h.fetch("done", "t", 0).0, -1);
    assert_eq!(h.coordinator.group_state("busy"), Some(GroupState::Stable));
    // Deleting again: it no longer exists.
    assert_eq!(
        delete(&mut h, &["done"]),
        [code(ResponseError::GroupIdNotFound)]
    );
}

#[test]
fn find_coordinator_points_at_the_leader_of_the_groups_partition() {
    let node = CoordinatorNode {
        node_id: 1,
        host: "broker-1".into(),
        port: 9092,
    };
    let coordinator = GroupCoordinator::new(GroupCoordinatorConfig::default(), 0);
    let g_partition = offsets_topic::partition_for("g", 50);
    // Only g's partition has a leader (broker 1).
    let node_for = |p: i32| (p == g_partition).then(|| node.clone());
    let mut request = FindCoordinatorRequest::default();
    request.key = s("my-group");
    let response = coordinator.handle_find_coordinator(request.clone(), 3, node_for);
    assert_eq!(
        response.error_code,
        code(ResponseError::CoordinatorNotAvailable)
    );
    assert_eq!(response.node_id.0, -1);

    request.key = s("g");
    let response = coordinator.handle_find_coordinator(request, 3, node_for);
    assert_eq!(response.error_code, 0);
    assert_eq!(
        (response.node_id.0, response.host.as_str(), response.port),
        (1, "broker-1", 9092)
    );

    // v4+: batched keys.
    let mut batched = FindCoordinatorRequest::default();
    batched.coordinator_keys = vec![s("g"), s("my-group")];
    let response = coordinator.handle_find_coordinator(batched, 4, node_for);
    let results: Vec<(String, i16, i32)> = response
        .coordinators
        .iter()
        .map(|c| (c.key.to_string(), c.error_code, c.node_id.0))
        .collect();
    assert_eq!(
        results,
        [
            ("g".to_owned(), 0, 1),
            (
                "my-group".to_owned(),
                code(ResponseError::CoordinatorNotAvailable),
                -1
            ),
        ]
    );
}

#[test]
fn unloading_a_partition_answers_parked_requests_with_not_coordinator() {
    let mut h = Harness::new();
    let (_, join) = h.join_new_member("g", "c1");
    let outputs = h
        .coordinator
        .unload_partition(offsets_topic::partition_for("g", 50));
    h.perform(outputs);
    assert_eq!(
        h.join_response(join).unwrap().error_code,
        code(ResponseError::NotCoordinator)
    );
    assert_eq!(h.coordinator.group_state("g"), None);
    assert_eq!(
        h.heartbeat("g", "m", 1),
        code(ResponseError::NotCoordinator)
    );
}
