//! Request dispatch: header decoding, version checks, one module per Kafka API.
//!
//! The version ranges in [`SUPPORTED_APIS`] are what ApiVersions advertises. They are
//! chosen so librdkafka 2.x, kafka-python and the Java client 3.x/4.x all negotiate:
//! - Produce starts at v0 although only v3+ is served: librdkafka before 2.11.1 turns
//!   compression off when Produce's minimum is above 0 (KAFKA-18659), so we advertise v0
//!   and answer v0–v2 with UNSUPPORTED_VERSION, as Apache Kafka 4.0 does.
//! - Fetch stops at v12 and Produce at v11: later versions address topics by id only.
//! - A request at a version outside the range is answered per the protocol for
//!   ApiVersions (KIP-511: a v0-layout error listing our ranges) and closes the
//!   connection for every other API, as Kafka does.

mod acls;
mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod allocate_producer_ids;
mod alter_configs;
mod alter_partition;
mod alter_partition_reassignments;
mod api_versions;
pub(crate) mod controlled_shutdown;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod describe_producers;
mod describe_transactions;
mod elect_leaders;
mod end_txn;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
pub(crate) mod leader_and_isr;
mod leave_group;
mod legacy_produce;
mod list_groups;
mod list_offsets;
mod list_partition_reassignments;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sasl;
pub(crate) mod stop_replica;
mod sync_group;
mod txn_offset_commit;
pub(crate) mod update_metadata;
mod user_scram_credentials;
pub(crate) mod write_txn_markers;

use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use kafka_protocol::{ResponseError, protocol::StrBytes};
use strata_storage::LogError;
use tracing::warn;

pub use strata_frames::Frames;
use strata_frames::{RecordsRef, SplicingEncoder};

use crate::Broker;
use crate::protocol;
use crate::security::acl::{CLUSTER_NAME, Operation, Requester, ResourceType};
use crate::security::authorizer::Authorizer;

/// (API, min version, max version) advertised in ApiVersions.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 11),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 9),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 5),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::AlterPartition, 2, 3),
    (ApiKey::AllocateProducerIds, 0, 0),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeAcls, 0, 3),
    (ApiKey::CreateAcls, 0, 3),
    (ApiKey::DeleteAcls, 0, 3),
    // Transactions as Kafka 3.9 serves them (transaction version 1: no KIP-890 part 2
    // epoch bump on EndTxn, no server-side verification of produce requests).
    (ApiKey::AddPartitionsToTxn, 0, 4),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
];

/// The controller-to-broker APIs of ZooKeeper mode, which `kafka-protocol` no longer
/// knows (see [`crate::protocol`]): (API key, min version, max version). Advertised in
/// ApiVersions as a Kafka 3.9 broker advertises them.
pub const INTER_BROKER_APIS: &[(i16, i16, i16)] = &[
    (
        protocol::LEADER_AND_ISR_KEY,
        protocol::LEADER_AND_ISR_VERSIONS.0,
        protocol::LEADER_AND_ISR_VERSIONS.1,
    ),
    (
        protocol::STOP_REPLICA_KEY,
        protocol::STOP_REPLICA_VERSIONS.0,
        protocol::STOP_REPLICA_VERSIONS.1,
    ),
    (
        protocol::UPDATE_METADATA_KEY,
        protocol::UPDATE_METADATA_VERSIONS.0,
        protocol::UPDATE_METADATA_VERSIONS.1,
    ),
    (
        protocol::CONTROLLED_SHUTDOWN_KEY,
        protocol::CONTROLLED_SHUTDOWN_VERSIONS.0,
        protocol::CONTROLLED_SHUTDOWN_VERSIONS.1,
    ),
];

/// The advertised range of an API, if we serve it at all.
pub fn supported_range(api_key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|(k, _, _)| *k == api_key)
        .map(|(_, min, max)| (*min, *max))
}

/// Why a request ends its connection instead of getting a response.
#[derive(Debug)]
pub enum RequestError {
    Close(String),
}

/// The parts of a request every handler may need.
pub struct RequestContext<'a> {
    pub header: &'a RequestHeader,
    pub version: i16,
    pub peer: SocketAddr,
    /// The listener the connection came in on: brokers are described to the client by
    /// their endpoint on the same listener.
    pub listener: &'a str,
    /// `User:<name>`: who the connection authenticated as (`User:ANONYMOUS` without).
    pub principal: &'a str,
}

/// What a connection knows about its client.
#[derive(Debug, Clone, Copy)]
pub struct Session<'a> {
    pub peer: SocketAddr,
    pub listener: &'a str,
    pub principal: &'a str,
}

fn check(
    broker: &Broker,
    peer: SocketAddr,
    principal: &str,
    f: impl FnOnce(&Authorizer, Requester<'_>) -> bool,
) -> bool {
    match &broker.authorizer {
        None => true,
        Some(authorizer) => {
            let host = peer.ip().to_string();
            f(
                authorizer,
                Requester {
                    principal,
                    host: &host,
                },
            )
        }
    }
}

/// The principal of a connection that did not authenticate.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

impl RequestContext<'_> {
    /// Whether the principal may do `operation` on the resource (always, without an
    /// authorizer); a refusal is logged and counted.
    pub fn authorized(
        &self,
        broker: &Broker,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.check(broker, |a, who| {
            a.authorize(who, operation, resource_type, name)
        })
    }

    /// [`RequestContext::authorized`] without logging a refusal: for filtering what a
    /// listing shows.
    pub fn may_see(
        &self,
        broker: &Broker,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.check(broker, |a, who| {
            a.allows_quietly(who, operation, resource_type, name)
        })
    }

    /// KIP-430: the operations the requester may perform on a resource, as the bit field
    /// AdminClient reads (bit `n` for the operation of code `n`); without an authorizer,
    /// every operation the resource type supports, as Kafka answers.
    pub fn authorized_operations(
        &self,
        broker: &Broker,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        crate::security::acl::operations_bit_field(
            resource_type
                .supported_operations()
                .iter()
                .copied()
                .filter(|op| self.may_see(broker, *op, resource_type, name)),
        )
    }

    /// `operation` on the cluster resource.
    pub fn cluster_authorized(&self, broker: &Broker, operation: Operation) -> bool {
        self.authorized(broker, operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Allowed on at least one resource of the type.
    pub fn authorized_on_any(
        &self,
        broker: &Broker,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        self.check(broker, |a, who| {
            a.authorize_any(who, operation, resource_type)
        })
    }

    fn check(&self, broker: &Broker, f: impl FnOnce(&Authorizer, Requester<'_>) -> bool) -> bool {
        check(broker, self.peer, self.principal, f)
    }

    pub fn client_id(&self) -> &str {
        self.header
            .client_id
            .as_ref()
            .map(|s| s.as_str())
            .unwrap_or("")
    }
}

/// Decodes one request frame, runs its handler and returns the encoded response frame
/// (length prefix included), or `None` when the protocol says no response is sent
/// (Produce with acks=0).
pub async fn handle_request(
    broker: &Broker,
    frame: Bytes,
    session: Session<'_>,
) -> Result<Option<Frames>, RequestError> {
    let started = Instant::now();
    if frame.len() < 8 {
        return Err(RequestError::Close(format!(
            "request of {} bytes is shorter than a request header",
            frame.len()
        )));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    if let Some(&(_, min, max)) = INTER_BROKER_APIS.iter().find(|(k, _, _)| *k == raw_key) {
        if !(min..=max).contains(&version) {
            return Err(RequestError::Close(format!(
                "API key {raw_key} v{version} is not supported (this broker serves v{min}-v{max})"
            )));
        }
        // Only brokers send these: CLUSTER_ACTION on the cluster.
        if !check(broker, session.peer, session.principal, |a, who| {
            a.authorize(
                who,
                Operation::ClusterAction,
                ResourceType::Cluster,
                CLUSTER_NAME,
            )
        }) {
            return Err(RequestError::Close(format!(
                "{} may not send API key {raw_key} (CLUSTER_ACTION on the cluster)",
                session.principal
            )));
        }
        let response = handle_inter_broker(broker, frame, raw_key, version).await?;
        broker
            .metrics
            .record_request(raw_key, started.elapsed(), false);
        return Ok(Some(response.into()));
    }
    let Ok(api_key) = ApiKey::try_from(raw_key) else {
        return Err(RequestError::Close(format!("unknown API key {raw_key}")));
    };
    let Some((min, max)) = supported_range(api_key) else {
        return Err(RequestError::Close(format!(
            "{api_key:?} (API key {raw_key}) is not supported by this broker"
        )));
    };
    if api_key == ApiKey::ApiVersions && !(min..=max).contains(&version) {
        // KIP-511: the client may speak a newer ApiVersions than we know; answer in the
        // v0 layout with UNSUPPORTED_VERSION so it can retry with a version we list.
        return Ok(Some(
            api_versions::unsupported_version_response(correlation_id).into(),
        ));
    }
    if api_key == ApiKey::Produce && version < 3 {
        let response = legacy_produce::handle(frame, version, correlation_id)?;
        return Ok(response.map(Frames::from));
    }
    if !(min..=max).contains(&version) {
        return Err(RequestError::Close(format!(
            "{api_key:?} v{version} is not supported (this broker serves v{min}-v{max})"
        )));
    }

    let mut body = frame;
    let header = RequestHeader::decode(&mut body, api_key.request_header_version(version))
        .map_err(|e| {
            RequestError::Close(format!(
                "malformed {api_key:?} v{version} request header: {e}"
            ))
        })?;
    let ctx = RequestContext {
        header: &header,
        version,
        peer: session.peer,
        listener: session.listener,
        principal: session.principal,
    };

    macro_rules! decode {
        ($request:ty) => {
            <$request>::decode(&mut body, version).map_err(|e| {
                broker
                    .metrics
                    .record_request(raw_key, started.elapsed(), true);
                RequestError::Close(format!("malformed {api_key:?} v{version} request: {e}"))
            })?
        };
    }
    macro_rules! dispatch {
        ($module:ident, $request:ty) => {
            dispatch!($module::handle, $request)
        };
        ($module:ident :: $handler:ident, $request:ty) => {{
            let request = decode!($request);
            let response = $module::$handler(broker, &ctx, request).await;
            encode_response(&header, api_key, version, &response)?
        }};
    }

    use kafka_protocol::messages as m;
    let response = match api_key {
        ApiKey::Produce => {
            let request = m::ProduceRequest::decode(&mut body, version).map_err(|e| {
                RequestError::Close(format!("malformed Produce v{version} request: {e}"))
            })?;
            let acks = request.acks;
            let response = produce::handle(broker, &ctx, request).await;
            if acks == 0 {
                broker
                    .metrics
                    .record_request(raw_key, started.elapsed(), false);
                return Ok(None);
            }
            encode_response(&header, api_key, version, &response)?
        }
        ApiKey::Fetch => {
            let request = decode!(m::FetchRequest);
            // The records go out from the segment files, not copied into the response.
            let (response, records) = fetch::handle(broker, &ctx, request).await;
            encode_spliced(&header, api_key, version, &response, records)?
        }
        ApiKey::ListOffsets => dispatch!(list_offsets, m::ListOffsetsRequest),
        ApiKey::Metadata => dispatch!(metadata, m::MetadataRequest),
        ApiKey::ApiVersions => dispatch!(api_versions, m::ApiVersionsRequest),
        ApiKey::CreateTopics => dispatch!(create_topics, m::CreateTopicsRequest),
        ApiKey::DeleteTopics => dispatch!(delete_topics, m::DeleteTopicsRequest),
        ApiKey::DeleteRecords => dispatch!(delete_records, m::DeleteRecordsRequest),
        ApiKey::InitProducerId => dispatch!(init_producer_id, m::InitProducerIdRequest),
        ApiKey::OffsetForLeaderEpoch => {
            dispatch!(offset_for_leader_epoch, m::OffsetForLeaderEpochRequest)
        }
        ApiKey::DescribeConfigs => dispatch!(describe_configs, m::DescribeConfigsRequest),
        ApiKey::AlterConfigs => dispatch!(alter_configs, m::AlterConfigsRequest),
        ApiKey::CreatePartitions => dispatch!(create_partitions, m::CreatePartitionsRequest),
        ApiKey::IncrementalAlterConfigs => {
            dispatch!(incremental_alter_configs, m::IncrementalAlterConfigsRequest)
        }
        ApiKey::DescribeCluster => dispatch!(describe_cluster, m::DescribeClusterRequest),
        ApiKey::FindCoordinator => dispatch!(find_coordinator, m::FindCoordinatorRequest),
        ApiKey::JoinGroup => dispatch!(join_group, m::JoinGroupRequest),
        ApiKey::SyncGroup => dispatch!(sync_group, m::SyncGroupRequest),
        ApiKey::Heartbeat => dispatch!(heartbeat, m::HeartbeatRequest),
        ApiKey::LeaveGroup => dispatch!(leave_group, m::LeaveGroupRequest),
        ApiKey::OffsetCommit => dispatch!(offset_commit, m::OffsetCommitRequest),
        ApiKey::OffsetFetch => dispatch!(offset_fetch, m::OffsetFetchRequest),
        ApiKey::DescribeGroups => dispatch!(describe_groups, m::DescribeGroupsRequest),
        ApiKey::ListGroups => dispatch!(list_groups, m::ListGroupsRequest),
        ApiKey::DeleteGroups => dispatch!(delete_groups, m::DeleteGroupsRequest),
        ApiKey::OffsetDelete => dispatch!(offset_delete, m::OffsetDeleteRequest),
        ApiKey::ElectLeaders => dispatch!(elect_leaders, m::ElectLeadersRequest),
        ApiKey::DescribeLogDirs => dispatch!(describe_log_dirs, m::DescribeLogDirsRequest),
        ApiKey::AlterPartitionReassignments => dispatch!(
            alter_partition_reassignments,
            m::AlterPartitionReassignmentsRequest
        ),
        ApiKey::ListPartitionReassignments => dispatch!(
            list_partition_reassignments,
            m::ListPartitionReassignmentsRequest
        ),
        ApiKey::AlterPartition => dispatch!(alter_partition, m::AlterPartitionRequest),
        ApiKey::AllocateProducerIds => {
            dispatch!(allocate_producer_ids, m::AllocateProducerIdsRequest)
        }
        ApiKey::AddPartitionsToTxn => {
            dispatch!(add_partitions_to_txn, m::AddPartitionsToTxnRequest)
        }
        ApiKey::AddOffsetsToTxn => dispatch!(add_offsets_to_txn, m::AddOffsetsToTxnRequest),
        ApiKey::EndTxn => dispatch!(end_txn, m::EndTxnRequest),
        ApiKey::WriteTxnMarkers => dispatch!(write_txn_markers, m::WriteTxnMarkersRequest),
        ApiKey::TxnOffsetCommit => dispatch!(txn_offset_commit, m::TxnOffsetCommitRequest),
        ApiKey::DescribeProducers => dispatch!(describe_producers, m::DescribeProducersRequest),
        ApiKey::DescribeTransactions => {
            dispatch!(describe_transactions, m::DescribeTransactionsRequest)
        }
        ApiKey::ListTransactions => dispatch!(list_transactions, m::ListTransactionsRequest),
        ApiKey::DescribeAcls => dispatch!(acls::describe, m::DescribeAclsRequest),
        ApiKey::CreateAcls => dispatch!(acls::create, m::CreateAclsRequest),
        ApiKey::DeleteAcls => dispatch!(acls::delete, m::DeleteAclsRequest),
        ApiKey::SaslHandshake => dispatch!(sasl::handshake, m::SaslHandshakeRequest),
        ApiKey::SaslAuthenticate => dispatch!(sasl::authenticate, m::SaslAuthenticateRequest),
        ApiKey::AlterUserScramCredentials => dispatch!(
            user_scram_credentials::alter,
            m::AlterUserScramCredentialsRequest
        ),
        ApiKey::DescribeUserScramCredentials => dispatch!(
            user_scram_credentials::describe,
            m::DescribeUserScramCredentialsRequest
        ),
        other => {
            return Err(RequestError::Close(format!(
                "{other:?} is not supported by this broker"
            )));
        }
    };
    broker
        .metrics
        .record_request(raw_key, started.elapsed(), false);
    Ok(Some(response))
}

/// LeaderAndIsr, StopReplica, UpdateMetadata and ControlledShutdown: flexible request
/// header v2 and response header v1, bodies through [`crate::protocol`].
async fn handle_inter_broker(
    broker: &Broker,
    frame: Bytes,
    raw_key: i16,
    version: i16,
) -> Result<BytesMut, RequestError> {
    let mut body = frame;
    let header = RequestHeader::decode(&mut body, 2).map_err(|e| {
        RequestError::Close(format!("malformed API key {raw_key} request header: {e}"))
    })?;
    let malformed = |e: protocol::WireError| {
        RequestError::Close(format!(
            "malformed API key {raw_key} v{version} request: {e}"
        ))
    };
    let encoded = match raw_key {
        protocol::LEADER_AND_ISR_KEY => {
            let request =
                protocol::LeaderAndIsrRequest::decode(body, version).map_err(malformed)?;
            let ids: std::collections::HashMap<String, uuid::Uuid> = request
                .topic_states
                .iter()
                .map(|t| (t.topic_name.clone(), t.topic_id))
                .collect();
            let response = leader_and_isr::apply(broker, request).await;
            response.encode(version, |name| ids.get(name).copied().unwrap_or_default())
        }
        protocol::UPDATE_METADATA_KEY => {
            let request =
                protocol::UpdateMetadataRequest::decode(body, version).map_err(malformed)?;
            let code = update_metadata::apply(broker, &request);
            protocol::encode_error_only_response(
                "UpdateMetadata",
                version,
                protocol::UPDATE_METADATA_VERSIONS,
                code,
            )
        }
        protocol::STOP_REPLICA_KEY => {
            let request = protocol::StopReplicaRequest::decode(body, version).map_err(malformed)?;
            stop_replica::apply(broker, &request).encode(version)
        }
        protocol::CONTROLLED_SHUTDOWN_KEY => {
            let request =
                protocol::ControlledShutdownRequest::decode(body, version).map_err(malformed)?;
            controlled_shutdown::handle(broker, request)
                .await
                .encode(version)
        }
        other => {
            return Err(RequestError::Close(format!(
                "API key {other} is not served"
            )));
        }
    }
    .map_err(|e| {
        RequestError::Close(format!("cannot encode the API key {raw_key} response: {e}"))
    })?;
    let mut buf = BytesMut::with_capacity(encoded.len() + 9);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(header.correlation_id)
        .encode(&mut buf, 1)
        .map_err(|e| RequestError::Close(format!("cannot encode a response header: {e}")))?;
    buf.put_slice(&encoded);
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

/// Encodes `[length][response header][body]` at the request's version.
///
/// Handlers only set fields that exist at the request's version, so this does not fail;
/// if it ever did, the connection is closed rather than sending a truncated response.
pub fn encode_response<R: Encodable + HeaderVersion>(
    header: &RequestHeader,
    api_key: ApiKey,
    version: i16,
    response: &R,
) -> Result<Frames, RequestError> {
    encode_spliced(header, api_key, version, response, [])
}

/// [`encode_response`], sending `records` (the response's record sets, in encoding order,
/// with stand-ins in the response) by reference rather than copying them (see
/// [`strata_frames`]).
fn encode_spliced<R: Encodable + HeaderVersion>(
    header: &RequestHeader,
    api_key: ApiKey,
    version: i16,
    response: &R,
    records: impl IntoIterator<Item = RecordsRef>,
) -> Result<Frames, RequestError> {
    let response_header = ResponseHeader::default().with_correlation_id(header.correlation_id);
    let header_version = api_key.response_header_version(version);
    let failed = |e: &dyn std::fmt::Display| {
        warn!(?api_key, version, error = %e, "encoding response failed");
        RequestError::Close(format!(
            "cannot encode the {api_key:?} v{version} response: {e}"
        ))
    };
    let len = response_header
        .compute_size(header_version)
        .and_then(|h| Ok(h + response.compute_size(version)?))
        .map_err(|e| failed(&e))?;
    let mut buf = SplicingEncoder::new(len, records);
    response_header
        .encode(&mut buf, header_version)
        .and_then(|()| response.encode(&mut buf, version))
        .map_err(|e| failed(&e))?;
    buf.finish(len)
        .ok_or_else(|| failed(&"the encoding disagrees with the computed size or the record sets"))
}

/// Maps a storage error to the Kafka error code a client understands.
pub fn log_error_code(error: &LogError) -> ResponseError {
    match error {
        LogError::Io(_) => ResponseError::KafkaStorageError,
        LogError::CorruptRecord(_) => ResponseError::CorruptMessage,
        LogError::RecordTooLarge { .. } | LogError::DecompressedTooLarge { .. } => {
            ResponseError::MessageTooLarge
        }
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        LogError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        LogError::UnknownProducerId { .. } => ResponseError::UnknownProducerId,
        LogError::InvalidRecord(_) => ResponseError::InvalidRecord,
        LogError::InvalidTxnState(_) => ResponseError::InvalidTxnState,
        LogError::TransactionCoordinatorFenced { .. } => {
            ResponseError::TransactionCoordinatorFenced
        }
        #[allow(unreachable_patterns)]
        _ => ResponseError::UnknownServerError,
    }
}

/// The wire code of an error, or 0.
pub fn code(error: Option<ResponseError>) -> i16 {
    error.map(|e| e.code()).unwrap_or(0)
}

/// The `NodeEndpoint`s of a KIP-951 answer (Produce and Fetch each have their own type).
macro_rules! node_endpoints {
    ($endpoint:ty, $hints:expr, $snapshot:expr, $listener:expr) => {
        $hints
            .endpoints(&$snapshot, $listener)
            .into_iter()
            .map(|(id, host, port, rack)| {
                <$endpoint>::default()
                    .with_node_id(kafka_protocol::messages::BrokerId(id))
                    .with_host($crate::api::str_bytes(host))
                    .with_port(i32::from(port))
                    .with_rack(rack.map($crate::api::str_bytes))
            })
            .collect()
    };
}
pub(crate) use node_endpoints;

pub fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// Reads a Kafka `STRING` (i16 length) from a legacy, non-flexible request.
pub(crate) fn read_legacy_string(buf: &mut Bytes) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = buf.get_i16();
    if len < 0 {
        return Some(String::new());
    }
    let len = len as usize;
    if buf.remaining() < len {
        return None;
    }
    let s = buf.split_to(len);
    String::from_utf8(s.to_vec()).ok()
}
