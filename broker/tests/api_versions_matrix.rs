//! Every API at every version we advertise in ApiVersions gets a response that decodes
//! at that version. Clients pick any version in our range (old librdkafka in kcat picks
//! ListOffsets v2, the Java client the newest), so a field set that does not exist at an
//! older version would break exactly those clients.

mod support;

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use support::BrokerProcess;
use support::wire::{batch, connect, create_topic, read_response, request};

fn name(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Sends `req` at `version` and decodes the response at the same version.
fn round_trip<Req: Encodable + HeaderVersion, Resp: Decodable>(
    port: u16,
    api: ApiKey,
    version: i16,
    req: &Req,
) -> Resp {
    use std::io::Write;
    let mut s = connect(port);
    let frame = request(api, version, 42, req);
    s.write_all(&frame).unwrap();
    let mut body: Bytes = read_response(&mut s, api, version);
    Resp::decode(&mut body, version).unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"))
}

/// The version range the broker advertises for `api`.
fn advertised(port: u16) -> BTreeMap<i16, (i16, i16)> {
    let resp: ApiVersionsResponse = round_trip(
        port,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(name("matrix"))
            .with_client_software_version(name("1")),
    );
    resp.api_keys
        .iter()
        .map(|k| (k.api_key, (k.min_version, k.max_version)))
        .collect()
}

#[test]
fn every_advertised_version_answers_decodably() {
    let broker = BrokerProcess::start(&[]);
    let port = broker.port;
    let mut c = connect(port);
    let topic_id = create_topic(&mut c, "matrix", 2).topics[0].topic_id;
    support::wire::produce(&mut c, "matrix", 0, batch(5, 10).freeze());
    let ranges = advertised(port);
    let topic = || TopicName(name("matrix"));
    let mut checked = 0;
    for (&key, &(min, max)) in &ranges {
        let Ok(api) = ApiKey::try_from(key) else {
            // LeaderAndIsr, StopReplica, UpdateMetadata, ControlledShutdown.
            for version in min..=max {
                inter_broker_round_trip(port, key, version);
                checked += 1;
            }
            continue;
        };
        for version in min..=max {
            match api {
                ApiKey::Produce if version >= 3 => {
                    let req = ProduceRequest::default()
                        .with_acks(1)
                        .with_timeout_ms(1000)
                        .with_topic_data(vec![
                            TopicProduceData::default()
                                .with_name(topic())
                                .with_partition_data(vec![
                                    PartitionProduceData::default()
                                        .with_index(1)
                                        .with_records(Some(batch(2, 5).freeze())),
                                ]),
                        ]);
                    let r: ProduceResponse = round_trip(port, api, version, &req);
                    assert_eq!(
                        r.responses[0].partition_responses[0].error_code, 0,
                        "Produce v{version}"
                    );
                }
                ApiKey::Produce => continue, // v0-v2 are refused in their own layout (bad_input.rs)
                ApiKey::Fetch => {
                    // From v13 topics are named by id.
                    let fetched = if version >= 13 {
                        FetchTopic::default().with_topic_id(topic_id)
                    } else {
                        FetchTopic::default().with_topic(topic())
                    };
                    let req = FetchRequest::default()
                        .with_max_bytes(1 << 20)
                        .with_session_epoch(-1)
                        .with_topics(vec![fetched.with_partitions(vec![
                                    FetchPartition::default()
                                        .with_partition(0)
                                        .with_partition_max_bytes(1 << 20),
                                ])]);
                    let r: FetchResponse = round_trip(port, api, version, &req);
                    assert_eq!(
                        r.responses[0].partitions[0].error_code, 0,
                        "Fetch v{version}"
                    );
                    assert!(
                        r.responses[0].partitions[0]
                            .records
                            .as_ref()
                            .is_some_and(|b| !b.is_empty())
                    );
                }
                ApiKey::ListOffsets => {
                    let req = ListOffsetsRequest::default()
                        .with_replica_id(BrokerId(-1))
                        .with_topics(vec![
                            ListOffsetsTopic::default()
                                .with_name(topic())
                                .with_partitions(vec![
                                    ListOffsetsPartition::default()
                                        .with_partition_index(0)
                                        .with_timestamp(-1),
                                ]),
                        ]);
                    let r: ListOffsetsResponse = round_trip(port, api, version, &req);
                    assert_eq!(
                        r.topics[0].partitions[0].offset, 5,
                        "ListOffsets v{version}"
                    );
                }
                ApiKey::Metadata => {
                    let req = MetadataRequest::default().with_topics(Some(vec![
                        MetadataRequestTopic::default().with_name(Some(topic())),
                    ]));
                    let r: MetadataResponse = round_trip(port, api, version, &req);
                    assert_eq!(r.topics[0].partitions.len(), 2, "Metadata v{version}");
                    let all: MetadataResponse = round_trip(
                        port,
                        api,
                        version,
                        &MetadataRequest::default().with_topics(if version == 0 {
                            Some(vec![])
                        } else {
                            None
                        }),
                    );
                    assert!(
                        all.topics
                            .iter()
                            .any(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "matrix")),
                        "Metadata v{version} lists every topic"
                    );
                }
                ApiKey::ApiVersions => {
                    let mut req = ApiVersionsRequest::default();
                    if version >= 3 {
                        req = req
                            .with_client_software_name(name("matrix"))
                            .with_client_software_version(name("1"));
                    }
                    let r: ApiVersionsResponse = round_trip(port, api, version, &req);
                    assert_eq!(r.error_code, 0);
                }
                ApiKey::CreateTopics => {
                    let t = format!("created-v{version}");
                    let req = CreateTopicsRequest::default()
                        .with_timeout_ms(1000)
                        .with_topics(vec![
                            CreatableTopic::default()
                                .with_name(TopicName(name(&t)))
                                .with_num_partitions(1)
                                .with_replication_factor(1),
                        ]);
                    let r: CreateTopicsResponse = round_trip(port, api, version, &req);
                    assert_eq!(r.topics[0].error_code, 0, "CreateTopics v{version}");
                    let r: CreateTopicsResponse = round_trip(port, api, version, &req);
                    assert_eq!(
                        r.topics[0].error_code,
                        kafka_protocol::ResponseError::TopicAlreadyExists.code()
                    );
                }
                ApiKey::DeleteTopics => {
                    let t = format!("doomed-v{version}");
                    create_topic(&mut connect(port), &t, 1);
                    let mut req = DeleteTopicsRequest::default().with_timeout_ms(1000);
                    if version >= 6 {
                        req.topics = vec![
                            delete_topics_request::DeleteTopicState::default()
                                .with_name(Some(TopicName(name(&t)))),
                        ];
                    } else {
                        req.topic_names = vec![TopicName(name(&t))];
                    }
                    let r: DeleteTopicsResponse = round_trip(port, api, version, &req);
                    assert_eq!(r.responses[0].error_code, 0, "DeleteTopics v{version}");
                }
                ApiKey::CreatePartitions => {
                    let t = format!("grown-v{version}");
                    create_topic(&mut connect(port), &t, 1);
                    let req = CreatePartitionsRequest::default()
                        .with_timeout_ms(1000)
                        .with_topics(vec![
                            CreatePartitionsTopic::default()
                                .with_name(TopicName(name(&t)))
                                .with_count(2),
                        ]);
                    let r: CreatePartitionsResponse = round_trip(port, api, version, &req);
                    assert_eq!(r.results[0].error_code, 0, "CreatePartitions v{version}");
                }
                ApiKey::DeleteRecords => {
                    let req = DeleteRecordsRequest::default()
                        .with_timeout_ms(1000)
                        .with_topics(vec![
                            DeleteRecordsTopic::default()
                                .with_name(topic())
                                .with_partitions(vec![
                                    DeleteRecordsPartition::default()
                                        .with_partition_index(1)
                                        .with_offset(0),
                                ]),
                        ]);
                    let r: DeleteRecordsResponse = round_trip(port, api, version, &req);
                    assert_eq!(
                        r.topics[0].partitions[0].error_code, 0,
                        "DeleteRecords v{version}"
                    );
                }
                ApiKey::InitProducerId => {
                    let req = InitProducerIdRequest::default().with_transactional_id(None);
                    let r: InitProducerIdResponse = round_trip(port, api, version, &req);
                    assert_eq!(r.error_code, 0, "InitProducerId v{version}");
                    assert!(r.producer_id.0 >= 0);
                }
                ApiKey::OffsetForLeaderEpoch => {
                    let req = OffsetForLeaderEpochRequest::default().with_topics(vec![
                        OffsetForLeaderTopic::default()
                            .with_topic(topic())
                            .with_partitions(vec![
                                OffsetForLeaderPartition::default()
                                    .with_partition(0)
                                    .with_leader_epoch(0),
                            ]),
                    ]);
                    let r: OffsetForLeaderEpochResponse = round_trip(port, api, version, &req);
                    assert_eq!(
                        r.topics[0].partitions[0].end_offset, 5,
                        "OffsetForLeaderEpoch v{version}"
                    );
                }
                ApiKey::DescribeConfigs => {
                    let req = DescribeConfigsRequest::default().with_resources(vec![
                        DescribeConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(name("matrix")),
                        DescribeConfigsResource::default()
                            .with_resource_type(4)
                            .with_resource_name(name("0")),
                    ]);
                    let r: DescribeConfigsResponse = round_trip(port, api, version, &req);
                    assert!(
                        r.results
                            .iter()
                            .all(|x| x.error_code == 0 && !x.configs.is_empty()),
                        "DescribeConfigs v{version}"
                    );
                }
                ApiKey::AlterConfigs => {
                    let req = AlterConfigsRequest::default().with_resources(vec![
                        alter_configs_request::AlterConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(name("matrix"))
                            .with_configs(vec![
                                alter_configs_request::AlterableConfig::default()
                                    .with_name(name("retention.ms"))
                                    .with_value(Some(name("86400000"))),
                            ]),
                    ]);
                    let r: AlterConfigsResponse = round_trip(port, api, version, &req);
                    assert_eq!(r.responses[0].error_code, 0, "AlterConfigs v{version}");
                }
                ApiKey::IncrementalAlterConfigs => {
                    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
                        incremental_alter_configs_request::AlterConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(name("matrix"))
                            .with_configs(vec![
                                incremental_alter_configs_request::AlterableConfig::default()
                                    .with_name(name("retention.ms"))
                                    .with_config_operation(0)
                                    .with_value(Some(name("3600000"))),
                            ]),
                    ]);
                    let r: IncrementalAlterConfigsResponse = round_trip(port, api, version, &req);
                    assert_eq!(
                        r.responses[0].error_code, 0,
                        "IncrementalAlterConfigs v{version}"
                    );
                }
                ApiKey::DescribeCluster => {
                    let r: DescribeClusterResponse =
                        round_trip(port, api, version, &DescribeClusterRequest::default());
                    assert_eq!(r.brokers.len(), 1, "DescribeCluster v{version}");
                }
                ApiKey::FindCoordinator => {
                    let mut req = FindCoordinatorRequest::default();
                    if version >= 4 {
                        req.coordinator_keys = vec![name("g")];
                    } else {
                        req.key = name("g");
                    }
                    let _: FindCoordinatorResponse = round_trip(port, api, version, &req);
                }
                ApiKey::ListGroups => {
                    let r: ListGroupsResponse =
                        round_trip(port, api, version, &ListGroupsRequest::default());
                    assert_eq!(r.error_code, 0, "ListGroups v{version}");
                }
                ApiKey::DescribeGroups => {
                    let req =
                        DescribeGroupsRequest::default().with_groups(vec![GroupId(name("nobody"))]);
                    let _: DescribeGroupsResponse = round_trip(port, api, version, &req);
                }
                ApiKey::OffsetFetch => {
                    let mut req = OffsetFetchRequest::default();
                    if version >= 8 {
                        req.groups = vec![
                            offset_fetch_request::OffsetFetchRequestGroup::default()
                                .with_group_id(GroupId(name("nobody")))
                                .with_topics(None),
                        ];
                    } else {
                        req.group_id = GroupId(name("nobody"));
                        req.topics = Some(vec![
                            OffsetFetchRequestTopic::default()
                                .with_name(topic())
                                .with_partition_indexes(vec![0]),
                        ]);
                    }
                    let _: OffsetFetchResponse = round_trip(port, api, version, &req);
                }
                ApiKey::ElectLeaders => {
                    let mut req = ElectLeadersRequest::default().with_topic_partitions(Some(vec![
                        elect_leaders_request::TopicPartitions::default()
                            .with_topic(topic())
                            .with_partitions(vec![0]),
                    ]));
                    if version >= 1 {
                        req.election_type = 0;
                    }
                    let r: ElectLeadersResponse = round_trip(port, api, version, &req);
                    // One broker: the leader is the preferred replica already.
                    assert_eq!(
                        r.replica_election_results[0].partition_result[0].error_code,
                        kafka_protocol::ResponseError::ElectionNotNeeded.code(),
                        "ElectLeaders v{version}"
                    );
                }
                ApiKey::DescribeLogDirs => {
                    let r: DescribeLogDirsResponse = round_trip(
                        port,
                        api,
                        version,
                        &DescribeLogDirsRequest::default().with_topics(None),
                    );
                    assert_eq!(r.results.len(), 1);
                    assert!(
                        r.results[0]
                            .topics
                            .iter()
                            .any(|t| t.name.0.as_str() == "matrix"),
                        "DescribeLogDirs v{version}"
                    );
                }
                ApiKey::ListPartitionReassignments => {
                    let r: ListPartitionReassignmentsResponse = round_trip(
                        port,
                        api,
                        version,
                        &ListPartitionReassignmentsRequest::default().with_timeout_ms(1000),
                    );
                    assert_eq!(r.error_code, 0);
                    assert!(r.topics.is_empty());
                }
                ApiKey::AlterPartitionReassignments => {
                    // Cancelling a reassignment that does not exist.
                    let req = AlterPartitionReassignmentsRequest::default()
                        .with_timeout_ms(1000)
                        .with_topics(vec![
                            alter_partition_reassignments_request::ReassignableTopic::default()
                                .with_name(topic())
                                .with_partitions(vec![
                                    alter_partition_reassignments_request::ReassignablePartition::default()
                                        .with_partition_index(0)
                                        .with_replicas(None),
                                ]),
                        ]);
                    let r: AlterPartitionReassignmentsResponse =
                        round_trip(port, api, version, &req);
                    assert_eq!(
                        r.responses[0].partitions[0].error_code,
                        kafka_protocol::ResponseError::NoReassignmentInProgress.code()
                    );
                }
                ApiKey::AllocateProducerIds => {
                    let req = AllocateProducerIdsRequest::default()
                        .with_broker_id(BrokerId(0))
                        .with_broker_epoch(-1);
                    let r: AllocateProducerIdsResponse = round_trip(port, api, version, &req);
                    assert_eq!(r.error_code, 0);
                    assert_eq!(r.producer_id_len, 1000);
                }
                ApiKey::AlterPartition => {
                    // From a broker that is not registered: refused as a whole.
                    let req = AlterPartitionRequest::default()
                        .with_broker_id(BrokerId(77))
                        .with_broker_epoch(5);
                    let r: AlterPartitionResponse = round_trip(port, api, version, &req);
                    assert_eq!(
                        r.error_code,
                        kafka_protocol::ResponseError::StaleBrokerEpoch.code()
                    );
                }
                // Membership APIs need a live member; tests/consumer_groups.rs and the
                // client tests drive them through real clients at the versions they pick.
                _ => continue,
            }
            checked += 1;
        }
    }
    assert!(checked > 80, "only {checked} (API, version) pairs checked");
}

/// The controller-to-broker APIs (answered through Strata's own codecs): a request stamped
/// with an older broker epoch is refused with STALE_BROKER_EPOCH, in a response that
/// decodes at the request's version.
fn inter_broker_round_trip(port: u16, key: i16, version: i16) {
    use std::io::{Read, Write};
    use strata_broker::protocol::*;
    let body = match key {
        LEADER_AND_ISR_KEY => LeaderAndIsrRequest {
            controller_id: 0,
            controller_epoch: 0,
            broker_epoch: 0,
            ..Default::default()
        }
        .encode(version),
        UPDATE_METADATA_KEY => UpdateMetadataRequest {
            broker_epoch: 0,
            ..Default::default()
        }
        .encode(version),
        STOP_REPLICA_KEY => StopReplicaRequest {
            broker_epoch: 0,
            ..Default::default()
        }
        .encode(version),
        CONTROLLED_SHUTDOWN_KEY => ControlledShutdownRequest {
            broker_id: 99,
            broker_epoch: 0,
        }
        .encode(version),
        other => panic!("unexpected inter-broker API key {other}"),
    }
    .unwrap();
    let mut frame = bytes::BytesMut::new();
    use bytes::BufMut;
    frame.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(key)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(name("matrix")))
        .encode(&mut frame, 2)
        .unwrap();
    frame.put_slice(&body);
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    let mut s = connect(port);
    s.write_all(&frame).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut response = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut response).unwrap();
    let mut response = Bytes::from(response);
    let header = ResponseHeader::decode(&mut response, 1).unwrap();
    assert_eq!(header.correlation_id, 7);
    let stale = kafka_protocol::ResponseError::StaleBrokerEpoch.code();
    match key {
        LEADER_AND_ISR_KEY => {
            let r = LeaderAndIsrResponse::decode(response, version, |_| None).unwrap();
            assert_eq!(r.error_code, stale, "LeaderAndIsr v{version}");
        }
        UPDATE_METADATA_KEY => {
            let code = decode_error_only_response(
                "UpdateMetadata",
                response,
                version,
                UPDATE_METADATA_VERSIONS,
            )
            .unwrap();
            assert_eq!(code, stale, "UpdateMetadata v{version}");
        }
        STOP_REPLICA_KEY => {
            let r = StopReplicaResponse::decode(response, version).unwrap();
            assert_eq!(r.error_code, stale, "StopReplica v{version}");
        }
        _ => {
            // Broker 99 is not registered: nothing to move, nothing remaining.
            let r = ControlledShutdownResponse::decode(response, version).unwrap();
            assert_eq!(r.error_code, 0, "ControlledShutdown v{version}");
            assert!(r.remaining_partitions.is_empty());
        }
    }
}
