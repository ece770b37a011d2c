//! FindCoordinator, DescribeGroups, ListGroups and DeleteGroups: the APIs tools use to
//! find, inspect and remove groups.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{CoordinatorNode, GroupCoordinator, GroupResponse, Output};
use crate::group::GroupState;

/// FindCoordinator `key_type` of a consumer group.
const GROUP_KEY_TYPE: i8 = 0;

/// ListGroups v5 `group_type` of every group this coordinator serves.
const CLASSIC_GROUP_TYPE: &str = "classic";

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl GroupCoordinator {
    /// FindCoordinator for groups: the broker leading the group's `__consumer_offsets`
    /// partition, as `node_for` tells (the broker knows leadership, this state machine
    /// does not), or COORDINATOR_NOT_AVAILABLE while the partition has no leader so the
    /// client asks again. Other key types (transactions, share groups) are
    /// INVALID_REQUEST here.
    pub fn handle_find_coordinator(
        &self,
        request: FindCoordinatorRequest,
        version: i16,
        node_for: impl Fn(i32) -> Option<CoordinatorNode>,
    ) -> FindCoordinatorResponse {
        if request.key_type != GROUP_KEY_TYPE {
            return answer_find_coordinator(&request, version, |_| {
                Err((
                    ResponseError::InvalidRequest,
                    "only group coordinators are served",
                ))
            });
        }
        self.answer_find_coordinator(request, version, |key| node_for(self.partition_for(key)))
    }

    /// FindCoordinator's answer at `version` (one key before v4, a batch from v4) for keys
    /// another coordinator owns — the broker answers transactional ids with it — with
    /// `node_for` naming each key's coordinator (COORDINATOR_NOT_AVAILABLE when `None`).
    pub fn answer_find_coordinator(
        &self,
        request: FindCoordinatorRequest,
        version: i16,
        node_for: impl Fn(&str) -> Option<CoordinatorNode>,
    ) -> FindCoordinatorResponse {
        answer_find_coordinator(&request, version, |key| {
            node_for(key).ok_or((
                ResponseError::CoordinatorNotAvailable,
                "the coordinator is not available",
            ))
        })
    }
}

fn answer_find_coordinator(
    request: &FindCoordinatorRequest,
    version: i16,
    lookup: impl Fn(&str) -> Result<CoordinatorNode, (ResponseError, &'static str)>,
) -> FindCoordinatorResponse {
    {
        let mut response = FindCoordinatorResponse::default();
        if version < 4 {
            match lookup(request.key.as_str()) {
                Ok(node) => {
                    response.node_id = BrokerId(node.node_id);
                    response.host = str_bytes(&node.host);
                    response.port = node.port;
                }
                Err((error, message)) => {
                    response.error_code = error.code();
                    response.error_message = Some(str_bytes(message));
                    response.node_id = BrokerId(-1);
                    response.port = -1;
                }
            }
            return response;
        }
        response.coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let mut coordinator = Coordinator::default();
                coordinator.key = key.clone();
                match lookup(key.as_str()) {
                    Ok(node) => {
                        coordinator.node_id = BrokerId(node.node_id);
                        coordinator.host = str_bytes(&node.host);
                        coordinator.port = node.port;
                    }
                    Err((error, message)) => {
                        coordinator.error_code = error.code();
                        coordinator.error_message = Some(str_bytes(message));
                        coordinator.node_id = BrokerId(-1);
                        coordinator.port = -1;
                    }
                }
                coordinator
            })
            .collect();
        response
    }
}

impl GroupCoordinator {
    /// DescribeGroups. Members' metadata and assignments are shown only for a Stable
    /// group, whose protocol is settled. Unknown groups are reported Dead (from v6 with
    /// GROUP_ID_NOT_FOUND, KIP-1043).
    pub fn handle_describe_groups(
        &self,
        request: DescribeGroupsRequest,
        version: i16,
    ) -> DescribeGroupsResponse {
        let mut response = DescribeGroupsResponse::default();
        response.groups = request
            .groups
            .iter()
            .map(|group_id| {
                let mut described = DescribedGroup::default();
                described.group_id = group_id.clone();
                if let Some(error) = self.validate_group_status(group_id.as_str(), false) {
                    described.error_code = error.code();
                    return described;
                }
                let Some(group) = self
                    .groups
                    .get(group_id.as_str())
                    .filter(|g| !g.is(GroupState::Dead))
                else {
                    described.group_state = str_bytes(GroupState::Dead.as_str());
                    if version >= 6 {
                        described.error_code = ResponseError::GroupIdNotFound.code();
                        described.error_message = Some(StrBytes::from_string(format!(
                            "Group {} not found.",
                            group_id.as_str()
                        )));
                    }
                    return described;
                };
                let stable = group.is(GroupState::Stable);
                let protocol = if stable {
                    group.protocol_name.clone().unwrap_or_default()
                } else {
                    String::new()
                };
                described.group_state = str_bytes(group.state.as_str());
                described.protocol_type =
                    str_bytes(group.protocol_type.as_deref().unwrap_or_default());
                described.protocol_data = str_bytes(&protocol);
                described.members = group
                    .members
                    .iter()
                    .map(|m| {
                        let mut member = DescribedGroupMember::default();
                        member.member_id = str_bytes(&m.member_id);
                        member.group_instance_id = m.group_instance_id.as_deref().map(str_bytes);
                        member.client_id = str_bytes(&m.client_id);
                        member.client_host = str_bytes(&m.client_host);
                        if stable {
                            member.member_metadata = m.metadata(&protocol);
                            member.member_assignment = m.assignment.clone();
                        }
                        member
                    })
                    .collect();
                described
            })
            .collect();
        response
    }

    /// ListGroups, with the v4 state filter and the v5 type filter (case-insensitive).
    pub fn handle_list_groups(
        &self,
        request: ListGroupsRequest,
        version: i16,
    ) -> ListGroupsResponse {
        let states: Vec<String> = request
            .states_filter
            .iter()
            .map(|s| s.to_lowercase())
            .collect();
        let types: Vec<String> = request
            .types_filter
            .iter()
            .map(|t| t.to_lowercase())
            .collect();
        let mut response = ListGroupsResponse::default();
        if !types.is_empty() && !types.iter().any(|t| t == CLASSIC_GROUP_TYPE) {
            return response;
        }
        response.groups = self
            .groups
            .values()
            .filter(|g| !g.is(GroupState::Dead))
            .filter(|g| states.is_empty() || states.contains(&g.state.as_str().to_lowercase()))
            .map(|g| {
                let mut listed = ListedGroup::default();
                listed.group_id = GroupId(str_bytes(&g.group_id));
                listed.protocol_type = str_bytes(g.protocol_type.as_deref().unwrap_or_default());
                listed.group_state = str_bytes(g.state.as_str());
                if version >= 5 {
                    listed.group_type = str_bytes(CLASSIC_GROUP_TYPE);
                }
                listed
            })
            .collect();
        response
    }

    /// DeleteGroups: only Empty groups can be deleted; their offsets and metadata are
    /// tombstoned. Offsets of open transactions are dropped and tombstoned too, as in
    /// Kafka: a group being deleted loses them, and the transaction's COMMIT marker later
    /// finds nothing to commit. The answer does not wait for the tombstones (see
    /// [`Output`]).
    #[must_use = "the broker must perform every output"]
    pub fn handle_delete_groups(
        &mut self,
        request: DeleteGroupsRequest,
        request_id: u64,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let mut results = Vec::new();
        for group_id in &request.groups_names {
            let name = group_id.as_str();
            let error = if let Some(error) = self.validate_group_status(name, false) {
                Some(error)
            } else {
                match self.groups.get_mut(name).map(|g| g.state) {
                    None | Some(GroupState::Dead) => Some(ResponseError::GroupIdNotFound),
                    Some(GroupState::Empty) => {
                        // Committed offsets, commits in flight and open transactions'
                        // offsets all go (Kafka's `removeAllOffsets`; tombstoning the
                        // transactional ones too, as Kafka's newer coordinator does, keeps
                        // a later COMMIT marker from bringing them back on a reload).
                        let group = self.groups.get_mut(name).expect("group exists");
                        let keys = group.all_offset_keys();
                        let removed = group.remove_offsets(&keys);
                        self.cleanup_group_metadata(name, removed, now_ms, &mut out);
                        None
                    }
                    Some(_) => Some(ResponseError::NonEmptyGroup),
                }
            };
            let mut result = DeletableGroupResult::default();
            result.group_id = group_id.clone();
            result.error_code = error.map_or(0, |e| e.code());
            results.push(result);
        }
        let mut response = DeleteGroupsResponse::default();
        response.results = results;
        out.push(Output::Respond {
            request_id,
            response: GroupResponse::DeleteGroups(response),
        });
        out
    }
}
