//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup, and the timers that go with them:
//! the rebalance protocol of Kafka's classic groups (`GroupCoordinator.scala`).

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{
    GroupCoordinator, GroupResponse, Output, PendingAppend, StaticMemberRejoin, respond_to_waiters,
    schedule_session_expiry, store_group_error,
};
use crate::group::{
    ClassicGroup, GroupState, InitialDelay, JoinTimer, Member, NEW_MEMBER_JOIN_TIMEOUT_MS,
    PendingMember, Waiter,
};

/// A JoinGroup answer carrying only an error (Kafka's `JoinGroupResult(memberId, error)`).
pub(super) fn join_error(version: i16, member_id: &str, error: ResponseError) -> JoinGroupResponse {
    let mut response = JoinGroupResponse::default();
    response.error_code = error.code();
    response.generation_id = -1;
    response.protocol_type = None;
    response.protocol_name = protocol_name_for(version, None);
    response.leader = StrBytes::default();
    response.member_id = StrBytes::from_string(member_id.to_owned());
    response
}

/// A SyncGroup answer carrying only an error.
pub(super) fn sync_error(error: ResponseError) -> SyncGroupResponse {
    let mut response = SyncGroupResponse::default();
    response.error_code = error.code();
    response.protocol_type = None;
    response.protocol_name = None;
    response.assignment = Bytes::new();
    response
}

/// The protocol name is nullable only from JoinGroup v7; before that "" means none.
fn protocol_name_for(version: i16, name: Option<&str>) -> Option<StrBytes> {
    match name {
        Some(name) => Some(StrBytes::from_string(name.to_owned())),
        None if version >= 7 => None,
        None => Some(StrBytes::default()),
    }
}

/// A successful JoinGroup answer for the group's current generation.
fn join_success(
    waiter: Waiter,
    group: &ClassicGroup,
    member_id: &str,
    leader: &str,
    with_members: bool,
    skip_assignment: bool,
) -> Output {
    let mut response = JoinGroupResponse::default();
    response.error_code = 0;
    response.generation_id = group.generation_id;
    response.protocol_type = group.protocol_type.clone().map(StrBytes::from_string);
    response.protocol_name = protocol_name_for(waiter.version, group.protocol_name.as_deref());
    response.leader = StrBytes::from_string(leader.to_owned());
    response.skip_assignment = skip_assignment;
    response.member_id = StrBytes::from_string(member_id.to_owned());
    if with_members {
        response.members = current_member_metadata(group);
    }
    Output::Respond {
        request_id: waiter.request_id,
        response: GroupResponse::JoinGroup(response),
    }
}

/// Every member's metadata for the selected protocol: what the leader assigns from.
fn current_member_metadata(group: &ClassicGroup) -> Vec<JoinGroupResponseMember> {
    let protocol = group.protocol_name.as_deref().unwrap_or_default();
    group
        .members
        .iter()
        .map(|m| {
            let mut member = JoinGroupResponseMember::default();
            member.member_id = StrBytes::from_string(m.member_id.clone());
            member.group_instance_id = m.group_instance_id.clone().map(StrBytes::from_string);
            member.metadata = m.metadata(protocol);
            member
        })
        .collect()
}

fn respond(out: &mut Vec<Output>, request_id: u64, response: GroupResponse) {
    out.push(Output::Respond {
        request_id,
        response,
    });
}

/// The parameters of one JoinGroup, decoded once.
struct JoinParams {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    rebalance_timeout_ms: i32,
    session_timeout_ms: i32,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    waiter: Waiter,
}

impl GroupCoordinator {
    /// JoinGroup. The answer usually comes later (when the join phase of the rebalance
    /// ends); `request_id` identifies the waiting request in the eventual
    /// [`Output::Respond`].
    #[must_use = "the broker must perform every output"]
    pub fn handle_join_group(
        &mut self,
        request: JoinGroupRequest,
        version: i16,
        client_id: &str,
        client_host: &str,
        request_id: u64,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let waiter = Waiter {
            request_id,
            version,
        };
        let group_id = request.group_id.to_string();
        let params = JoinParams {
            member_id: request.member_id.to_string(),
            group_instance_id: request.group_instance_id.map(|id| id.to_string()),
            client_id: client_id.to_owned(),
            client_host: client_host.to_owned(),
            // JoinGroup v0 had a single timeout for both purposes.
            rebalance_timeout_ms: if version == 0 {
                request.session_timeout_ms
            } else {
                request.rebalance_timeout_ms
            },
            session_timeout_ms: request.session_timeout_ms,
            protocol_type: request.protocol_type.to_string(),
            protocols: request
                .protocols
                .into_iter()
                .map(|p| (p.name.to_string(), p.metadata))
                .collect(),
            waiter,
        };
        let reject = |out: &mut Vec<Output>, error: ResponseError| {
            respond(
                out,
                request_id,
                GroupResponse::JoinGroup(join_error(version, &params.member_id, error)),
            );
        };

        if let Some(error) = self.validate_group_status(&group_id, true) {
            reject(&mut out, error);
            return out;
        }
        if params.session_timeout_ms < self.config.group_min_session_timeout_ms
            || params.session_timeout_ms > self.config.group_max_session_timeout_ms
        {
            reject(&mut out, ResponseError::InvalidSessionTimeout);
            return out;
        }
        let is_unknown_member = params.member_id.is_empty();
        if !self.groups.contains_key(&group_id) {
            if !is_unknown_member {
                reject(&mut out, ResponseError::UnknownMemberId);
                return out;
            }
            self.groups.insert(
                group_id.clone(),
                ClassicGroup::new(group_id.clone(), now_ms),
            );
        }

        let group = self.groups.get_mut(&group_id).expect("group exists");
        if !accept_joining_member(group, &params.member_id, self.config.group_max_size) {
            if let Some(member) = group.remove_member(&params.member_id) {
                respond_to_waiters(&member, ResponseError::GroupMaxSizeReached, &mut out);
            }
            respond(
                &mut out,
                request_id,
                GroupResponse::JoinGroup(join_error(
                    version,
                    "",
                    ResponseError::GroupMaxSizeReached,
                )),
            );
        } else if is_unknown_member {
            self.new_member_join(&group_id, params, now_ms, &mut out);
        } else {
            self.current_member_join(&group_id, params, now_ms, &mut out);
        }
        self.maybe_complete_join(&group_id, now_ms, &mut out);
        out
    }

    /// A member without a member id: static members are placed (or replace their old
    /// incarnation) at once; dynamic ones on JoinGroup v4+ first get an id (KIP-394).
    fn new_member_join(
        &mut self,
        group_id: &str,
        params: JoinParams,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let version = params.waiter.version;
        let group = &self.groups[group_id];
        if group.is(GroupState::Dead) {
            respond(
                out,
                params.waiter.request_id,
                GroupResponse::JoinGroup(join_error(
                    version,
                    &params.member_id,
                    ResponseError::CoordinatorNotAvailable,
                )),
            );
            return;
        }
        if !group.supports_protocols(&params.protocol_type, &params.protocols) {
            respond(
                out,
                params.waiter.request_id,
                GroupResponse::JoinGroup(join_error(
                    version,
                    &params.member_id,
                    ResponseError::InconsistentGroupProtocol,
                )),
            );
            return;
        }
        let new_member_id =
            self.new_member_id(&params.client_id, params.group_instance_id.as_deref());
        let group = self.groups.get_mut(group_id).expect("group exists");
        match params.group_instance_id.as_deref() {
            Some(instance_id) => match group.static_member_id(instance_id).map(str::to_owned) {
                Some(old_member_id) => self.update_static_member_and_rebalance(
                    group_id,
                    &old_member_id,
                    &new_member_id,
                    params,
                    now_ms,
                    out,
                ),
                None => self.add_member_and_rebalance(group_id, new_member_id, params, now_ms, out),
            },
            None if version >= 4 => {
                tracing::debug!(group_id, member_id = %new_member_id, "member id required");
                group.pending_members.push(PendingMember {
                    member_id: new_member_id.clone(),
                    deadline_ms: now_ms + i64::from(params.session_timeout_ms),
                });
                respond(
                    out,
                    params.waiter.request_id,
                    GroupResponse::JoinGroup(join_error(
                        version,
                        &new_member_id,
                        ResponseError::MemberIdRequired,
                    )),
                );
            }
            None => self.add_member_and_rebalance(group_id, new_member_id, params, now_ms, out),
        }
    }

    /// A member presenting a member id: a pending member completing KIP-394, or a known
    /// member rejoining.
    fn current_member_join(
        &mut self,
        group_id: &str,
        params: JoinParams,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let waiter = params.waiter;
        let version = waiter.version;
        let member_id = params.member_id.clone();
        let group = self.groups.get_mut(group_id).expect("group exists");
        let reject = |out: &mut Vec<Output>, error: ResponseError| {
            respond(
                out,
                waiter.request_id,
                GroupResponse::JoinGroup(join_error(version, &member_id, error)),
            );
        };
        if group.is(GroupState::Dead) {
            reject(out, ResponseError::CoordinatorNotAvailable);
            return;
        }
        if !group.supports_protocols(&params.protocol_type, &params.protocols) {
            reject(out, ResponseError::InconsistentGroupProtocol);
            return;
        }
        if group.is_pending_member(&member_id) {
            // A pending member id was handed out to a dynamic member only.
            let mut params = params;
            params.group_instance_id = None;
            self.add_member_and_rebalance(group_id, member_id, params, now_ms, out);
            return;
        }
        let instance_id = params.group_instance_id.as_deref();
        let instance_unknown = instance_id.is_some_and(|id| group.static_member_id(id).is_none());
        if group.is_static_member_fenced(instance_id, &member_id) {
            reject(out, ResponseError::FencedInstanceId);
            return;
        }
        if !group.has(&member_id) || instance_unknown {
            reject(out, ResponseError::UnknownMemberId);
            return;
        }
        let member = group.member(&member_id).expect("member exists");
        let unchanged = member.matches(&params.protocols);
        match group.state {
            GroupState::PreparingRebalance => {
                self.update_member_and_rebalance(group_id, params, now_ms, out);
            }
            GroupState::CompletingRebalance if unchanged => {
                // The member probably lost the JoinGroup answer: repeat it.
                let leader = group.leader_id.clone().unwrap_or_default();
                let is_leader = group.is_leader(&member_id);
                out.push(join_success(
                    waiter, group, &member_id, &leader, is_leader, false,
                ));
            }
            GroupState::Stable if unchanged && !group.is_leader(&member_id) => {
                // A follower with nothing new: tell it the current generation so it syncs.
                let leader = group.leader_id.clone().unwrap_or_default();
                out.push(join_success(
                    waiter, group, &member_id, &leader, false, false,
                ));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                // Changed metadata, or the leader asking for a new assignment (e.g. the
                // topics it subscribes to by pattern changed).
                self.update_member_and_rebalance(group_id, params, now_ms, out);
            }
            GroupState::Empty | GroupState::Dead => {
                reject(out, ResponseError::UnknownMemberId);
            }
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        group_id: &str,
        member_id: String,
        params: JoinParams,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let group = self.groups.get_mut(group_id).expect("group exists");
        tracing::info!(group_id, %member_id, instance_id = ?params.group_instance_id, "adding new member");
        let member = Member {
            member_id,
            group_instance_id: params.group_instance_id,
            client_id: params.client_id,
            client_host: params.client_host,
            rebalance_timeout_ms: params.rebalance_timeout_ms,
            session_timeout_ms: params.session_timeout_ms,
            protocol_type: params.protocol_type,
            protocols: params.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(params.waiter),
            awaiting_sync: None,
            is_new: true,
            // A parked JoinGroup cannot heartbeat; a client that gave up and retried
            // must not leave this member behind for ever.
            session_deadline_ms: Some(now_ms + NEW_MEMBER_JOIN_TIMEOUT_MS),
        };
        if group.is(GroupState::PreparingRebalance) && group.generation_id == 0 {
            group.new_member_added = true;
        }
        group.add_member(member);
        self.maybe_prepare_rebalance(group_id, now_ms, out);
    }

    fn update_member_and_rebalance(
        &mut self,
        group_id: &str,
        params: JoinParams,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let group = self.groups.get_mut(group_id).expect("group exists");
        let member = group.member_mut(&params.member_id).expect("member exists");
        update_member(member, params, out);
        self.maybe_prepare_rebalance(group_id, now_ms, out);
    }

    /// KIP-345: a static member restarted and joined without its member id. It takes
    /// over its old member id's place; if the group is Stable and the selected protocol
    /// would not change, no rebalance happens: once the new member id is stored, the
    /// member gets the current generation back and syncs to receive its old assignment.
    fn update_static_member_and_rebalance(
        &mut self,
        group_id: &str,
        old_member_id: &str,
        new_member_id: &str,
        params: JoinParams,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let supports_skip_assignment = params.waiter.version >= 9;
        let group = self.groups.get_mut(group_id).expect("group exists");
        let previous_leader = group.leader_id.clone().unwrap_or_default();
        let member = group
            .member_mut(old_member_id)
            .expect("static member exists");
        // The old incarnation's outstanding requests are answered: it is fenced.
        respond_to_waiters(member, ResponseError::FencedInstanceId, out);
        member.awaiting_join = None;
        member.awaiting_sync = None;
        member.member_id = new_member_id.to_owned();
        schedule_session_expiry(member, now_ms);
        let mut params = params;
        params.member_id = new_member_id.to_owned();
        update_member(member, params, out);
        if group.is_leader(old_member_id) {
            group.leader_id = Some(new_member_id.to_owned());
        }
        if group.pending_sync_members.remove(old_member_id) {
            group.pending_sync_members.insert(new_member_id.to_owned());
        }
        tracing::info!(
            group_id,
            old_member_id,
            new_member_id,
            "static member rejoined"
        );

        match group.state {
            GroupState::Stable => {
                if group.select_protocol() == group.protocol_name {
                    self.store_group(
                        group_id,
                        &|m: &Member| m.assignment.clone(),
                        PendingAppend::StaticMemberRejoin(StaticMemberRejoin {
                            group_id: group_id.to_owned(),
                            member_id: new_member_id.to_owned(),
                            previous_leader,
                            skip_assignment: supports_skip_assignment,
                        }),
                        out,
                    );
                } else {
                    self.maybe_prepare_rebalance(group_id, now_ms, out);
                }
            }
            GroupState::CompletingRebalance => {
                // The assignment being computed names the old member id: start over.
                self.maybe_prepare_rebalance(group_id, now_ms, out);
            }
            // The member simply waits for the join phase to end under its new id.
            GroupState::PreparingRebalance => {}
            GroupState::Empty | GroupState::Dead => {
                unreachable!("a group with a static member is neither Empty nor Dead")
            }
        }
    }

    /// The new member id of a restarted static member is durable (or failed to be).
    pub(super) fn complete_static_member_rejoin(
        &mut self,
        rejoin: StaticMemberRejoin,
        error: Option<ResponseError>,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let StaticMemberRejoin {
            group_id,
            member_id,
            previous_leader,
            skip_assignment,
        } = rejoin;
        let (group_id, member_id, previous_leader) = (
            group_id.as_str(),
            member_id.as_str(),
            previous_leader.as_str(),
        );
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        // If a rebalance began meanwhile, the member's JoinGroup is part of it.
        if !group.is(GroupState::Stable) {
            return;
        }
        let Some(member) = group.member_mut(member_id) else {
            return;
        };
        let Some(waiter) = member.awaiting_join.take() else {
            return;
        };
        schedule_session_expiry(member, now_ms);
        match error {
            Some(error) => {
                let mut response = join_error(waiter.version, "", store_group_error(error));
                response.generation_id = group.generation_id;
                response.leader = StrBytes::from_string(previous_leader.to_owned());
                respond(out, waiter.request_id, GroupResponse::JoinGroup(response));
            }
            None if skip_assignment => {
                // JoinGroup v9: the leader learns it leads but must not run the assignor,
                // since a Stable group would ignore a new assignment.
                let is_leader = group.is_leader(member_id);
                let leader = group.leader_id.clone().unwrap_or_default();
                out.push(join_success(
                    waiter, group, member_id, &leader, is_leader, is_leader,
                ));
            }
            None => {
                // Before v9: answer with the previous leader id so that a restarted
                // leader does not think it leads and compute an assignment nobody uses.
                out.push(join_success(
                    waiter,
                    group,
                    member_id,
                    previous_leader,
                    false,
                    false,
                ));
            }
        }
    }

    pub(super) fn maybe_prepare_rebalance(
        &mut self,
        group_id: &str,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        if self.groups.get(group_id).is_some_and(|g| g.can_rebalance()) {
            self.prepare_rebalance(group_id, now_ms, out);
        }
    }

    /// Enters PreparingRebalance: members awaiting a SyncGroup answer are told to rejoin,
    /// and the join phase starts (with the initial delay if the group was Empty).
    pub(super) fn prepare_rebalance(&mut self, group_id: &str, now_ms: i64, out: &mut Vec<Output>) {
        let initial_delay_ms = i64::from(self.config.group_initial_rebalance_delay_ms);
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if group.is(GroupState::CompletingRebalance) {
            reset_and_propagate_assignment_error(
                group,
                ResponseError::RebalanceInProgress,
                now_ms,
                out,
            );
        }
        group.sync_deadline_ms = None;
        let rebalance_timeout_ms = group.rebalance_timeout_ms();
        group.join_timer = Some(if group.is(GroupState::Empty) {
            JoinTimer {
                deadline_ms: now_ms + initial_delay_ms,
                initial: Some(InitialDelay {
                    delay_ms: initial_delay_ms,
                    remaining_ms: (rebalance_timeout_ms - initial_delay_ms).max(0),
                }),
            }
        } else {
            JoinTimer {
                deadline_ms: now_ms + rebalance_timeout_ms,
                initial: None,
            }
        });
        group.transition_to(GroupState::PreparingRebalance, now_ms);
        Self::record_rebalance_started(group, &mut self.rebalances_total, now_ms);
        tracing::info!(
            group_id,
            generation = group.generation_id,
            "preparing to rebalance"
        );
        self.maybe_complete_join(group_id, now_ms, out);
    }

    /// Ends the join phase early once every member has rejoined (not during the initial
    /// delay, which always runs its course).
    pub(super) fn maybe_complete_join(
        &mut self,
        group_id: &str,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let ready = self.groups.get(group_id).is_some_and(|g| {
            g.is(GroupState::PreparingRebalance)
                && g.join_timer.is_some_and(|t| t.initial.is_none())
                && g.has_all_members_joined()
        });
        if ready {
            self.complete_join(group_id, now_ms, out);
        }
    }

    /// The join phase ends: dynamic members that did not rejoin are dropped, the next
    /// generation begins, and every joined member gets its JoinGroup answer (the leader
    /// with everyone's metadata).
    fn complete_join(&mut self, group_id: &str, now_ms: i64, out: &mut Vec<Output>) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        group.join_timer = None;
        let not_rejoined: Vec<String> = group
            .members
            .iter()
            .filter(|m| m.awaiting_join.is_none() && !m.is_static())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in &not_rejoined {
            tracing::info!(
                group_id,
                member_id,
                "removing member that did not rejoin in time"
            );
            if let Some(member) = group.remove_member(member_id) {
                respond_to_waiters(&member, ResponseError::UnknownMemberId, out);
            }
        }
        if group.is(GroupState::Dead) {
            return;
        }
        if !group.maybe_elect_new_joined_leader() && !group.members.is_empty() {
            // Nobody rejoined: wait another rebalance timeout, by which time the members'
            // sessions will have removed the dead ones.
            tracing::error!(
                group_id,
                "could not complete rebalance because no members rejoined"
            );
            group.join_timer = Some(JoinTimer {
                deadline_ms: now_ms + group.rebalance_timeout_ms(),
                initial: None,
            });
            return;
        }

        group.generation_id += 1;
        if group.members.is_empty() {
            group.protocol_name = None;
            group.transition_to(GroupState::Empty, now_ms);
        } else {
            group.protocol_name = group.select_protocol();
            group.transition_to(GroupState::CompletingRebalance, now_ms);
        }
        group.subscribed_topics = group.compute_subscribed_topics();
        group.pending_sync_members.clear();
        tracing::info!(
            group_id,
            generation = group.generation_id,
            members = group.members.len(),
            "join phase complete"
        );

        if group.is(GroupState::Empty) {
            self.store_group(group_id, &|_| Bytes::new(), PendingAppend::Unobserved, out);
            self.record_rebalance_completed(group_id, now_ms);
            return;
        }
        let leader = group.leader_id.clone().unwrap_or_default();
        let mut answers = Vec::new();
        for member in &group.members {
            if let Some(waiter) = member.awaiting_join {
                answers.push((waiter, member.member_id.clone()));
            }
        }
        for (waiter, member_id) in answers {
            let is_leader = member_id == leader;
            out.push(join_success(
                waiter, group, &member_id, &leader, is_leader, false,
            ));
        }
        for member in &mut group.members {
            member.awaiting_join = None;
            member.is_new = false;
            schedule_session_expiry(member, now_ms);
            group.pending_sync_members.insert(member.member_id.clone());
        }
        group.sync_deadline_ms = Some(now_ms + group.rebalance_timeout_ms());
    }

    /// SyncGroup. Followers wait for the leader's assignment; the leader's assignment is
    /// stored in `__consumer_offsets` before anyone receives it.
    #[must_use = "the broker must perform every output"]
    pub fn handle_sync_group(
        &mut self,
        request: SyncGroupRequest,
        version: i16,
        request_id: u64,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let group_id = request.group_id.to_string();
        let member_id = request.member_id.to_string();
        let reject = |out: &mut Vec<Output>, error: ResponseError| {
            respond(out, request_id, GroupResponse::SyncGroup(sync_error(error)));
        };
        if let Some(error) = self.validate_group_status(&group_id, true) {
            reject(&mut out, error);
            return out;
        }
        let Some(group) = self.groups.get_mut(&group_id) else {
            reject(&mut out, ResponseError::UnknownMemberId);
            return out;
        };
        let instance_id = request.group_instance_id.as_deref();
        if group.is(GroupState::Dead) {
            reject(&mut out, ResponseError::CoordinatorNotAvailable);
        } else if group.is_static_member_fenced(instance_id, &member_id) {
            reject(&mut out, ResponseError::FencedInstanceId);
        } else if !group.has(&member_id) {
            reject(&mut out, ResponseError::UnknownMemberId);
        } else if request.generation_id != group.generation_id {
            reject(&mut out, ResponseError::IllegalGeneration);
        } else if request
            .protocol_type
            .as_deref()
            .is_some_and(|t| group.protocol_type.as_deref() != Some(t))
            || request
                .protocol_name
                .as_deref()
                .is_some_and(|n| group.protocol_name.as_deref() != Some(n))
        {
            reject(&mut out, ResponseError::InconsistentGroupProtocol);
        } else {
            match group.state {
                GroupState::Empty => reject(&mut out, ResponseError::UnknownMemberId),
                GroupState::PreparingRebalance => {
                    reject(&mut out, ResponseError::RebalanceInProgress)
                }
                GroupState::CompletingRebalance => {
                    let member = group.member_mut(&member_id).expect("member exists");
                    if let Some(previous) = member.awaiting_sync.replace(Waiter {
                        request_id,
                        version,
                    }) {
                        respond(
                            &mut out,
                            previous.request_id,
                            GroupResponse::SyncGroup(sync_error(
                                ResponseError::RebalanceInProgress,
                            )),
                        );
                    }
                    group.pending_sync_members.remove(&member_id);
                    if group.is_leader(&member_id) {
                        let assignment: Vec<(String, Bytes)> = group
                            .members
                            .iter()
                            .map(|m| {
                                let assigned = request
                                    .assignments
                                    .iter()
                                    .find(|a| a.member_id.as_str() == m.member_id)
                                    .map(|a| a.assignment.clone())
                                    .unwrap_or_default();
                                (m.member_id.clone(), assigned)
                            })
                            .collect();
                        tracing::info!(
                            group_id,
                            generation = group.generation_id,
                            members = group.members.len(),
                            "assignment received from leader"
                        );
                        let generation_id = group.generation_id;
                        let lookup = assignment.clone();
                        self.store_group(
                            &group_id,
                            &move |m: &Member| {
                                lookup
                                    .iter()
                                    .find(|(id, _)| *id == m.member_id)
                                    .map(|(_, a)| a.clone())
                                    .unwrap_or_default()
                            },
                            PendingAppend::GroupAssignment {
                                group_id: group_id.clone(),
                                generation_id,
                                assignment,
                            },
                            &mut out,
                        );
                    }
                }
                GroupState::Stable => {
                    group.pending_sync_members.remove(&member_id);
                    let member = group.member_mut(&member_id).expect("member exists");
                    let assignment = member.assignment.clone();
                    schedule_session_expiry(member, now_ms);
                    let mut response = SyncGroupResponse::default();
                    response.protocol_type = group.protocol_type.clone().map(StrBytes::from_string);
                    response.protocol_name = group.protocol_name.clone().map(StrBytes::from_string);
                    response.assignment = assignment;
                    respond(&mut out, request_id, GroupResponse::SyncGroup(response));
                }
                GroupState::Dead => unreachable!("checked above"),
            }
        }
        out
    }

    /// The leader's assignment is durable (or failed to be).
    pub(super) fn complete_group_assignment(
        &mut self,
        group_id: &str,
        generation_id: i32,
        assignment: Vec<(String, Bytes)>,
        error: Option<ResponseError>,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        // A member may have joined (or left) meanwhile: then this assignment is stale.
        if !group.is(GroupState::CompletingRebalance) || group.generation_id != generation_id {
            return;
        }
        match error {
            Some(error) => {
                reset_and_propagate_assignment_error(group, store_group_error(error), now_ms, out);
                self.maybe_prepare_rebalance(group_id, now_ms, out);
            }
            None => {
                for (member_id, assigned) in assignment {
                    if let Some(member) = group.member_mut(&member_id) {
                        member.assignment = assigned;
                    }
                }
                propagate_assignment(group, None, now_ms, out);
                group.transition_to(GroupState::Stable, now_ms);
                tracing::info!(group_id, generation = generation_id, "group is stable");
                self.record_rebalance_completed(group_id, now_ms);
            }
        }
    }

    /// Heartbeat: keeps the member's session alive and tells it when to rejoin
    /// (REBALANCE_IN_PROGRESS). Never waits, so it answers directly.
    pub fn handle_heartbeat(
        &mut self,
        request: HeartbeatRequest,
        now_ms: i64,
    ) -> HeartbeatResponse {
        let error = self.heartbeat(&request, now_ms);
        let mut response = HeartbeatResponse::default();
        response.error_code = error.map_or(0, |e| e.code());
        response
    }

    fn heartbeat(&mut self, request: &HeartbeatRequest, now_ms: i64) -> Option<ResponseError> {
        let group_id = request.group_id.as_str();
        let member_id = request.member_id.as_str();
        if let Some(error) = self.validate_group_status(group_id, true) {
            return Some(error);
        }
        let Some(group) = self.groups.get_mut(group_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        if group.is(GroupState::Dead) {
            return Some(ResponseError::CoordinatorNotAvailable);
        }
        if group.is_static_member_fenced(request.group_instance_id.as_deref(), member_id) {
            return Some(ResponseError::FencedInstanceId);
        }
        if !group.has(member_id) {
            return Some(ResponseError::UnknownMemberId);
        }
        if request.generation_id != group.generation_id {
            return Some(ResponseError::IllegalGeneration);
        }
        let state = group.state;
        if state == GroupState::Empty {
            return Some(ResponseError::UnknownMemberId);
        }
        schedule_session_expiry(group.member_mut(member_id).expect("member exists"), now_ms);
        match state {
            GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            _ => None,
        }
    }

    /// LeaveGroup: removes the members (by member id, or by `group.instance.id` alone for
    /// an administrator removing a static member) and rebalances the rest.
    #[must_use = "the broker must perform every output"]
    pub fn handle_leave_group(
        &mut self,
        request: LeaveGroupRequest,
        version: i16,
        request_id: u64,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let group_id = request.group_id.to_string();
        let leaving: Vec<(String, Option<String>)> = if version < 3 {
            vec![(request.member_id.to_string(), None)]
        } else {
            request
                .members
                .iter()
                .map(|m| {
                    (
                        m.member_id.to_string(),
                        m.group_instance_id.as_ref().map(|i| i.to_string()),
                    )
                })
                .collect()
        };

        let (top_error, member_errors) =
            if let Some(error) = self.validate_group_status(&group_id, true) {
                (Some(error), Vec::new())
            } else if !self.groups.contains_key(&group_id) {
                let errors = leaving
                    .iter()
                    .map(|_| Some(ResponseError::UnknownMemberId))
                    .collect();
                (None, errors)
            } else if self.groups[&group_id].is(GroupState::Dead) {
                (Some(ResponseError::CoordinatorNotAvailable), Vec::new())
            } else {
                let mut errors = Vec::new();
                for (member_id, instance_id) in &leaving {
                    errors.push(self.leave_one(
                        &group_id,
                        member_id,
                        instance_id.as_deref(),
                        now_ms,
                        &mut out,
                    ));
                }
                (None, errors)
            };

        let mut response = LeaveGroupResponse::default();
        if version < 3 {
            let error = top_error.or_else(|| member_errors.iter().flatten().next().copied());
            response.error_code = error.map_or(0, |e| e.code());
        } else {
            response.error_code = top_error.map_or(0, |e| e.code());
            response.members = leaving
                .iter()
                .zip(member_errors.iter())
                .map(|((member_id, instance_id), error)| {
                    let mut member = MemberResponse::default();
                    member.member_id = StrBytes::from_string(member_id.clone());
                    member.group_instance_id = instance_id.clone().map(StrBytes::from_string);
                    member.error_code = error.map_or(0, |e| e.code());
                    member
                })
                .collect();
        }
        respond(&mut out, request_id, GroupResponse::LeaveGroup(response));
        out
    }

    fn leave_one(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) -> Option<ResponseError> {
        let group = self.groups.get_mut(group_id).expect("group exists");
        if member_id.is_empty() {
            let Some(current) = instance_id.and_then(|i| group.static_member_id(i)) else {
                return Some(ResponseError::UnknownMemberId);
            };
            let current = current.to_owned();
            self.remove_member_and_update_group(group_id, &current, now_ms, out);
            None
        } else if group.is_pending_member(member_id) {
            group.pending_members.retain(|p| p.member_id != member_id);
            self.maybe_complete_join(group_id, now_ms, out);
            None
        } else if group.is_static_member_fenced(instance_id, member_id) {
            Some(ResponseError::FencedInstanceId)
        } else if group.has(member_id) {
            self.remove_member_and_update_group(group_id, member_id, now_ms, out);
            None
        } else {
            Some(ResponseError::UnknownMemberId)
        }
    }

    /// Removes a member that left or failed, and rebalances the others.
    fn remove_member_and_update_group(
        &mut self,
        group_id: &str,
        member_id: &str,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if let Some(member) = group.remove_member(member_id) {
            // A member removed while its JoinGroup is parked is told to start over.
            respond_to_waiters(&member, ResponseError::UnknownMemberId, out);
        }
        match group.state {
            GroupState::Dead | GroupState::Empty => {}
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(group_id, now_ms, out)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(group_id, now_ms, out),
        }
    }

    /// KIP-394 member ids that were never used expire after the session timeout.
    pub(super) fn expire_pending_members(
        &mut self,
        group_id: &str,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let before = group.pending_members.len();
        group.pending_members.retain(|p| p.deadline_ms > now_ms);
        if group.pending_members.len() != before {
            self.maybe_complete_join(group_id, now_ms, out);
        }
    }

    /// Members whose session deadline passed are removed, unless they are waiting in a
    /// rebalance (then the rebalance's own timers apply).
    pub(super) fn expire_sessions(&mut self, group_id: &str, now_ms: i64, out: &mut Vec<Output>) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let mut failed = Vec::new();
        for member in &mut group.members {
            if member.session_deadline_ms.is_some_and(|d| d <= now_ms) {
                let awaiting = member.awaiting_join.is_some() || member.awaiting_sync.is_some();
                if !member.is_new && awaiting {
                    member.session_deadline_ms = None;
                } else {
                    failed.push(member.member_id.clone());
                }
            }
        }
        for member_id in failed {
            tracing::info!(group_id, %member_id, "member session expired, removing it from the group");
            self.remove_member_and_update_group(group_id, &member_id, now_ms, out);
        }
    }

    /// The join phase's timer: the initial delay is extended while new members keep
    /// coming (up to the rebalance timeout); otherwise the join phase ends.
    pub(super) fn expire_join(&mut self, group_id: &str, now_ms: i64, out: &mut Vec<Output>) {
        let initial_delay_ms = i64::from(self.config.group_initial_rebalance_delay_ms);
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let Some(timer) = group.join_timer.filter(|t| t.deadline_ms <= now_ms) else {
            return;
        };
        if let Some(initial) = timer.initial
            && group.new_member_added
            && initial.remaining_ms != 0
        {
            group.new_member_added = false;
            let delay_ms = initial_delay_ms.min(initial.remaining_ms);
            group.join_timer = Some(JoinTimer {
                deadline_ms: now_ms + delay_ms,
                initial: Some(InitialDelay {
                    delay_ms,
                    // Kafka subtracts the delay that just ran out, not the new one.
                    remaining_ms: (initial.remaining_ms - initial.delay_ms).max(0),
                }),
            });
            return;
        }
        self.complete_join(group_id, now_ms, out);
    }

    /// Members that got their JoinGroup answer but never sent SyncGroup within the
    /// rebalance timeout are removed, and the group rebalances without them.
    pub(super) fn expire_pending_sync(
        &mut self,
        group_id: &str,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if group.sync_deadline_ms.is_none_or(|d| d > now_ms) {
            return;
        }
        group.sync_deadline_ms = None;
        if !matches!(
            group.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) || group.pending_sync_members.is_empty()
        {
            return;
        }
        let missing: Vec<String> = group.pending_sync_members.iter().cloned().collect();
        tracing::info!(
            group_id,
            ?missing,
            "removing members that did not send SyncGroup"
        );
        for member_id in &missing {
            if let Some(member) = group.remove_member(member_id) {
                respond_to_waiters(&member, ResponseError::UnknownMemberId, out);
            }
        }
        self.prepare_rebalance(group_id, now_ms, out);
    }
}

/// Whether the group has room for this member (`group.max.size`).
fn accept_joining_member(group: &ClassicGroup, member_id: &str, max_size: usize) -> bool {
    match group.state {
        GroupState::Empty | GroupState::Dead => true,
        // Counting members that already rejoined lets the last ones to rejoin be the ones
        // kicked out when the limit was lowered.
        GroupState::PreparingRebalance => {
            group
                .member(member_id)
                .is_some_and(|m| m.awaiting_join.is_some())
                || group.num_awaiting_join() < max_size
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            group.has(member_id) || group.members.len() < max_size
        }
    }
}

/// A rejoining member's new protocols and timeouts; its JoinGroup now waits.
fn update_member(member: &mut Member, params: JoinParams, out: &mut Vec<Output>) {
    member.protocols = params.protocols;
    member.rebalance_timeout_ms = params.rebalance_timeout_ms;
    member.session_timeout_ms = params.session_timeout_ms;
    if let Some(previous) = member.awaiting_join.replace(params.waiter) {
        // A retried JoinGroup supersedes the parked one; that one is told to retry.
        respond(
            out,
            previous.request_id,
            GroupResponse::JoinGroup(join_error(
                previous.version,
                &member.member_id,
                ResponseError::RebalanceInProgress,
            )),
        );
    }
}

fn reset_and_propagate_assignment_error(
    group: &mut ClassicGroup,
    error: ResponseError,
    now_ms: i64,
    out: &mut Vec<Output>,
) {
    assert!(group.is(GroupState::CompletingRebalance));
    for member in &mut group.members {
        member.assignment = Bytes::new();
    }
    propagate_assignment(group, Some(error), now_ms, out);
}

/// Answers every parked SyncGroup with the member's assignment (or the error) and
/// restarts their session timers, which may have lapsed while they waited.
fn propagate_assignment(
    group: &mut ClassicGroup,
    error: Option<ResponseError>,
    now_ms: i64,
    out: &mut Vec<Output>,
) {
    let protocol_type = group.protocol_type.clone();
    let protocol_name = group.protocol_name.clone();
    for member in &mut group.members {
        let Some(waiter) = member.awaiting_sync.take() else {
            continue;
        };
        let response = match error {
            Some(error) => sync_error(error),
            None => {
                let mut response = SyncGroupResponse::default();
                response.protocol_type = protocol_type.clone().map(StrBytes::from_string);
                response.protocol_name = protocol_name.clone().map(StrBytes::from_string);
                response.assignment = member.assignment.clone();
                response
            }
        };
        respond(out, waiter.request_id, GroupResponse::SyncGroup(response));
        schedule_session_expiry(member, now_ms);
    }
}
