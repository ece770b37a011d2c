//! OffsetFetch (v1–v9): committed offsets of a group (v8+: of several groups).

use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};

use super::RequestContext;
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    broker
        .groups
        .query(|c| c.handle_offset_fetch(request, ctx.version))
}
