//! A broker's requests to the active controller (Kafka's `BrokerToControllerChannelManager`
//! and the controlled-shutdown client): AlterPartition, AllocateProducerIds and
//! ControlledShutdown.
//!
//! The controller is whoever the last UpdateMetadata named. When that is this broker the
//! request goes straight to the in-process controller; otherwise over the inter-broker
//! listener. A request that fails for want of a controller (none known, connection lost,
//! NOT_CONTROLLER) is reported as such and the caller retries, as Kafka's do.

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, AlterPartitionRequest,
    AlterPartitionResponse, BrokerId,
};

use super::Controller;
use crate::metadata::{MetadataCache, TopicPartition};
use crate::network::{BrokerConnection, Connector, KeptConnection, NetworkError, host_port};
use crate::protocol::{
    CONTROLLED_SHUTDOWN_KEY, ControlledShutdownRequest, ControlledShutdownResponse,
};

/// AlterPartition version sent: 3 carries the ISR with broker epochs (KIP-903); a Kafka
/// 3.9 controller and Strata's both serve it.
const ALTER_PARTITION_VERSION: i16 = 3;
const ALLOCATE_PRODUCER_IDS_VERSION: i16 = 0;
const CONTROLLED_SHUTDOWN_VERSION: i16 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ControllerClientError {
    #[error("no controller is known yet")]
    NoController,
    #[error("controller {0} has no endpoint on the inter-broker listener")]
    NoEndpoint(i32),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error("the controller answered {0:?}")]
    Error(ResponseError),
}

pub struct ControllerClient {
    broker_id: i32,
    controller: Arc<Controller>,
    cache: Arc<MetadataCache>,
    listener: String,
    connector: Connector,
    connection: KeptConnection,
}

enum Route {
    Local,
    Remote(String),
}

impl ControllerClient {
    pub fn new(
        broker_id: i32,
        controller: Arc<Controller>,
        cache: Arc<MetadataCache>,
        listener: String,
        connector: Connector,
    ) -> ControllerClient {
        ControllerClient {
            broker_id,
            controller,
            cache,
            listener,
            connector,
            connection: KeptConnection::default(),
        }
    }

    fn route(&self) -> Result<Route, ControllerClientError> {
        // A broker that won the election knows before any UpdateMetadata says so, and
        // its cache may still name the controller it replaced.
        if self.controller.is_active() {
            return Ok(Route::Local);
        }
        let snapshot = self.cache.snapshot();
        let Some(id) = snapshot.controller_id else {
            return Err(ControllerClientError::NoController);
        };
        if id == self.broker_id {
            // Named by a stale UpdateMetadata: this broker is no longer the controller.
            return Err(ControllerClientError::NoController);
        }
        let broker = snapshot
            .brokers
            .get(&id)
            .ok_or(ControllerClientError::NoController)?;
        let (host, port) = broker
            .endpoint(&self.listener)
            .ok_or(ControllerClientError::NoEndpoint(id))?;
        Ok(Route::Remote(host_port(host, port)))
    }

    /// Runs `f` on a connection to controller `id` at `addr`, reconnecting as needed;
    /// a failed exchange drops the connection.
    async fn with_connection<T>(
        &self,
        addr: &str,
        f: impl AsyncFnOnce(&mut BrokerConnection) -> Result<T, NetworkError>,
    ) -> Result<T, ControllerClientError> {
        let client_id = format!("broker-{}-to-controller", self.broker_id);
        Ok(self
            .connection
            .exchange(&self.connector, addr, &client_id, f)
            .await?)
    }

    pub async fn alter_partition(
        &self,
        request: AlterPartitionRequest,
    ) -> Result<AlterPartitionResponse, ControllerClientError> {
        let response = match self.route()? {
            Route::Local => self.controller.alter_partition(request).await,
            Route::Remote(addr) => {
                self.with_connection(&addr, async |c| {
                    c.send(&request, ALTER_PARTITION_VERSION).await
                })
                .await?
            }
        };
        match ResponseError::try_from_code(response.error_code) {
            Some(e) => Err(ControllerClientError::Error(e)),
            None => Ok(response),
        }
    }

    pub async fn allocate_producer_ids(
        &self,
        broker_epoch: i64,
    ) -> Result<(i64, i32), ControllerClientError> {
        match self.route()? {
            Route::Local => self
                .controller
                .allocate_producer_ids(self.broker_id, broker_epoch)
                .await
                .map_err(ControllerClientError::Error),
            Route::Remote(addr) => {
                let request = AllocateProducerIdsRequest::default()
                    .with_broker_id(BrokerId(self.broker_id))
                    .with_broker_epoch(broker_epoch);
                let response: AllocateProducerIdsResponse = self
                    .with_connection(&addr, async |c| {
                        c.send(&request, ALLOCATE_PRODUCER_IDS_VERSION).await
                    })
                    .await?;
                match ResponseError::try_from_code(response.error_code) {
                    Some(e) => Err(ControllerClientError::Error(e)),
                    None => Ok((response.producer_id_start.0, response.producer_id_len)),
                }
            }
        }
    }

    /// Asks the controller to move this broker's leaderships away; returns the
    /// partitions it still leads.
    pub async fn controlled_shutdown(
        &self,
        broker_epoch: i64,
    ) -> Result<Vec<TopicPartition>, ControllerClientError> {
        match self.route()? {
            Route::Local => self
                .controller
                .controlled_shutdown(self.broker_id, broker_epoch)
                .await
                .map_err(ControllerClientError::Error),
            Route::Remote(addr) => {
                let request = ControlledShutdownRequest {
                    broker_id: self.broker_id,
                    broker_epoch,
                };
                let body: BytesMut = request
                    .encode(CONTROLLED_SHUTDOWN_VERSION)
                    .expect("ControlledShutdown v3 encodes");
                let bytes = self
                    .with_connection(&addr, async |c| {
                        c.send_raw(
                            CONTROLLED_SHUTDOWN_KEY,
                            CONTROLLED_SHUTDOWN_VERSION,
                            true,
                            &body,
                        )
                        .await
                    })
                    .await?;
                let response =
                    ControlledShutdownResponse::decode(bytes, CONTROLLED_SHUTDOWN_VERSION)
                        .map_err(|e| {
                            ControllerClientError::Network(NetworkError::Protocol {
                                addr,
                                reason: e.to_string(),
                            })
                        })?;
                match ResponseError::try_from_code(response.error_code) {
                    Some(e) => Err(ControllerClientError::Error(e)),
                    None => Ok(response.remaining_partitions),
                }
            }
        }
    }
}
