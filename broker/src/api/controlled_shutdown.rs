//! ControlledShutdown (v3), to the controller: a broker about to stop asks for its
//! leaderships to move away; the answer lists the partitions it still leads.

use kafka_protocol::ResponseError;

use crate::Broker;
use crate::protocol::{ControlledShutdownRequest, ControlledShutdownResponse};

pub async fn handle(
    broker: &Broker,
    request: ControlledShutdownRequest,
) -> ControlledShutdownResponse {
    if !broker.controller.is_active() {
        return ControlledShutdownResponse {
            error_code: ResponseError::NotController.code(),
            remaining_partitions: Vec::new(),
        };
    }
    match broker
        .controller
        .controlled_shutdown(request.broker_id, request.broker_epoch)
        .await
    {
        Ok(remaining) => ControlledShutdownResponse {
            error_code: 0,
            remaining_partitions: remaining,
        },
        Err(e) => ControlledShutdownResponse {
            error_code: e.code(),
            remaining_partitions: Vec::new(),
        },
    }
}
