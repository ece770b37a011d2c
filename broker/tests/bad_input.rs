//! Bad input gets a clear answer or a closed connection, never a crash, and a concurrent
//! well-behaved client keeps being served throughout.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    CreateTopicsRequest, CreateTopicsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use support::BrokerProcess;
use support::wire::{batch, call, produce, request};

fn connect(broker: &BrokerProcess) -> TcpStream {
    support::wire::connect(broker.port)
}

fn send_raw(stream: &mut TcpStream, frame: &[u8]) {
    let _ = stream.write_all(frame);
}

/// True when the broker closed the connection (EOF or reset) instead of answering.
fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4];
    matches!(stream.read(&mut buf), Ok(0) | Err(_))
}

/// A healthy client: a metadata round trip on its own connection.
fn healthy(broker: &BrokerProcess) {
    let mut s = connect(broker);
    let _: MetadataResponse = call(
        &mut s,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    );
}

fn produce_error(broker: &BrokerProcess, topic: &str, records: Bytes) -> i16 {
    produce(&mut connect(broker), topic, 0, records).0
}

#[test]
fn garbage_oversized_and_malformed_frames_close_only_their_connection() {
    let mut broker = BrokerProcess::start(&[("socket.request.max.bytes", "1048576")]);
    // A healthy connection opened before the abuse stays usable after it.
    let mut keeper = connect(&broker);

    let mut s = connect(&broker);
    send_raw(&mut s, b"\x00\x00\x00\x0cGET / HTTP/1.1");
    assert!(closed(&mut s), "garbage closes the connection");
    healthy(&broker);

    let mut s = connect(&broker);
    send_raw(&mut s, &(200 * 1024 * 1024i32).to_be_bytes());
    assert!(
        closed(&mut s),
        "a frame over socket.request.max.bytes closes the connection"
    );
    healthy(&broker);

    let mut s = connect(&broker);
    send_raw(&mut s, &(-5i32).to_be_bytes());
    assert!(
        closed(&mut s),
        "a negative frame length closes the connection"
    );

    // A known API with a body that does not decode.
    let mut s = connect(&broker);
    let mut frame = BytesMut::new();
    frame.put_i32(12);
    frame.put_i16(ApiKey::Metadata as i16);
    frame.put_i16(1);
    frame.put_i32(9);
    frame.put_i16(-1);
    frame.put_i16(0x7fff);
    send_raw(&mut s, &frame);
    assert!(
        closed(&mut s),
        "an undecodable request closes the connection"
    );

    // Unknown API key.
    let mut s = connect(&broker);
    let mut frame = BytesMut::new();
    frame.put_i32(10);
    frame.put_i16(999);
    frame.put_i16(0);
    frame.put_i32(1);
    frame.put_i16(-1);
    send_raw(&mut s, &frame);
    assert!(closed(&mut s), "an unknown API key closes the connection");

    let _: MetadataResponse = call(
        &mut keeper,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    );
    assert!(broker.is_running());
}

#[test]
fn unsupported_api_versions_are_answered_per_the_protocol() {
    let mut broker = BrokerProcess::start(&[]);

    // KIP-511: ApiVersions at a version we don't know gets a v0-layout error listing ours.
    let mut s = connect(&broker);
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    frame.put_i16(ApiKey::ApiVersions as i16);
    frame.put_i16(99);
    frame.put_i32(1234);
    frame.put_i16(-1);
    frame.put_u8(0); // empty tagged fields of a flexible header
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    send_raw(&mut s, &frame);
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    let mut body = Bytes::from(body);
    assert_eq!(body.get_i32(), 1234, "correlation id");
    let response = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(
        response.error_code,
        ResponseError::UnsupportedVersion.code()
    );
    let produce = response
        .api_keys
        .iter()
        .find(|k| k.api_key == 0)
        .expect("Produce listed");
    assert_eq!(
        produce.min_version, 0,
        "Produce advertised from v0 (KAFKA-18659)"
    );

    // Another API at a version outside our range: the connection is closed.
    let mut s = connect(&broker);
    let mut frame = request(ApiKey::Metadata, 12, 1, &MetadataRequest::default());
    frame[6..8].copy_from_slice(&50i16.to_be_bytes()); // the header's api_version
    send_raw(&mut s, &frame);
    assert!(closed(&mut s));
    healthy(&broker);
    assert!(broker.is_running());
}

#[test]
fn corrupt_and_oversized_batches_get_their_error_codes() {
    let mut broker = BrokerProcess::start(&[("message.max.bytes", "10000")]);
    assert_eq!(
        support::wire::create_topic(&mut connect(&broker), "checked", 1).topics[0].error_code,
        0
    );

    let good = batch(10, 10);
    let mut corrupt = good.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff; // inside the CRC-covered area
    assert_eq!(
        produce_error(&broker, "checked", corrupt.freeze()),
        ResponseError::CorruptMessage.code()
    );

    let mut truncated = good.clone();
    truncated.truncate(good.len() - 3);
    assert_eq!(
        produce_error(&broker, "checked", truncated.freeze()),
        ResponseError::CorruptMessage.code()
    );

    let big = batch(1, 15_000);
    assert_eq!(
        produce_error(&broker, "checked", big.freeze()),
        ResponseError::MessageTooLarge.code()
    );

    assert_eq!(
        produce_error(&broker, "no-such-topic", good.clone().freeze()),
        ResponseError::UnknownTopicOrPartition.code()
    );

    // The log took none of the bad batches: the good one lands at offset 0.
    assert_eq!(
        produce(&mut connect(&broker), "checked", 0, good.freeze()),
        (0, 0)
    );
    assert!(broker.is_running());
}

#[test]
fn invalid_topic_names_and_partition_counts_get_their_error_codes() {
    let broker = BrokerProcess::start(&[]);
    for (name, partitions, rf, expected) in [
        ("bad name!", 1, 1, ResponseError::InvalidTopicException),
        ("..", 1, 1, ResponseError::InvalidTopicException),
        ("zero-partitions", 0, 1, ResponseError::InvalidPartitions),
        (
            "too-many-replicas",
            1,
            3,
            ResponseError::InvalidReplicationFactor,
        ),
        // Kafka's limit of 10,000 partitions per request; 2^31-1 would take the
        // broker's memory while being assigned.
        ("huge", i32::MAX, 1, ResponseError::PolicyViolation),
        ("over-the-limit", 10_001, 1, ResponseError::PolicyViolation),
    ] {
        let req = CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_num_partitions(partitions)
                .with_replication_factor(rf),
        ]);
        let resp: CreateTopicsResponse = call(&mut connect(&broker), ApiKey::CreateTopics, 7, &req);
        assert_eq!(resp.topics[0].error_code, expected.code(), "{name}");
        assert!(
            resp.topics[0].error_message.is_some(),
            "{name} carries a message"
        );
    }
    healthy(&broker);
    // CreatePartitions counts the partitions it adds, across the request.
    let req = CreateTopicsRequest::default().with_topics(vec![
        CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("grown")))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    let resp: CreateTopicsResponse = call(&mut connect(&broker), ApiKey::CreateTopics, 7, &req);
    assert_eq!(resp.topics[0].error_code, 0);
    let grow = |count: i32, validate_only: bool| -> i16 {
        let req = CreatePartitionsRequest::default()
            .with_timeout_ms(30_000)
            .with_validate_only(validate_only)
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("grown")))
                    .with_count(count),
            ]);
        let resp: CreatePartitionsResponse =
            call(&mut connect(&broker), ApiKey::CreatePartitions, 3, &req);
        resp.results[0].error_code
    };
    assert_eq!(grow(i32::MAX, false), ResponseError::PolicyViolation.code());
    assert_eq!(grow(10_002, false), ResponseError::PolicyViolation.code());
    assert_eq!(
        grow(10_001, true),
        0,
        "10,000 new partitions are within the limit"
    );
    healthy(&broker);
}

#[test]
fn unknown_config_key_stops_the_broker_with_the_key_named() {
    let stderr = support::refused_config("broker.id=0\nlog.retention.hourz=5\n");
    assert!(stderr.contains("log.retention.hourz"), "{stderr}");
    assert!(stderr.contains(":2:"), "names the line: {stderr}");
}
