//! OffsetFetch (v1–v9): committed offsets of one group (v8+: several), from the
//! coordinator's cache.
//!
//! With an authorizer: a group the principal may not describe is answered with
//! GROUP_AUTHORIZATION_FAILED; a topic it may not describe has its partitions answered
//! with TOPIC_AUTHORIZATION_FAILED when asked for by name, and is left out when all of
//! the group's offsets are asked for.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};

use super::RequestContext;
use crate::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    // (group, whether all its topics were asked for), before the request is handed over.
    let asked: Vec<(String, bool)> = if ctx.version >= 8 {
        request
            .groups
            .iter()
            .map(|g| (g.group_id.to_string(), g.topics.is_none()))
            .collect()
    } else {
        vec![(request.group_id.to_string(), request.topics.is_none())]
    };
    let mut response = broker
        .groups
        .query(|c| c.handle_offset_fetch(request, ctx.version));
    if broker.authorizer.is_none() {
        return response;
    }
    let group_ok = |g: &str| ctx.authorized(broker, Operation::Describe, ResourceType::Group, g);
    let topic_ok = |t: &str| ctx.may_see(broker, Operation::Describe, ResourceType::Topic, t);
    let group_denied = ResponseError::GroupAuthorizationFailed.code();
    let topic_denied = ResponseError::TopicAuthorizationFailed.code();
    // The same rule for both layouts (v8+ and older name their types differently): a
    // topic the principal may not describe is left out of "all topics", and refused
    // where it was asked for by name.
    macro_rules! hide_or_refuse {
        ($topics:expr, $all:expr) => {{
            $topics.retain(|t| !$all || topic_ok(t.name.as_str()));
            for topic in $topics.iter_mut().filter(|t| !topic_ok(t.name.as_str())) {
                for p in &mut topic.partitions {
                    p.error_code = topic_denied;
                    p.committed_offset = -1;
                    p.metadata = None;
                }
            }
        }};
    }
    if ctx.version >= 8 {
        for group in &mut response.groups {
            let all = asked
                .iter()
                .any(|(g, all)| *all && g.as_str() == group.group_id.as_str());
            if !group_ok(group.group_id.as_str()) {
                group.error_code = group_denied;
                group.topics.clear();
                continue;
            }
            hide_or_refuse!(group.topics, all);
        }
    } else {
        let (group, all) = &asked[0];
        if !group_ok(group) {
            if ctx.version >= 2 {
                response.error_code = group_denied;
                response.topics.clear();
            } else {
                for p in response
                    .topics
                    .iter_mut()
                    .flat_map(|t| t.partitions.iter_mut())
                {
                    p.error_code = group_denied;
                    p.committed_offset = -1;
                }
            }
            return response;
        }
        hide_or_refuse!(response.topics, *all);
    }
    response
}
