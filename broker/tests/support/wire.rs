//! A minimal raw Kafka-protocol client for tests that need exact control over bytes.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, ProduceRequest,
    ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

pub fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

pub fn request<R: Encodable + HeaderVersion>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("strata-test")))
        .encode(&mut buf, api.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.to_vec()
}

pub fn read_response(stream: &mut TcpStream, api: ApiKey, version: i16) -> Bytes {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("response length");
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).expect("response body");
    let mut body = Bytes::from(body);
    ResponseHeader::decode(&mut body, api.response_header_version(version)).unwrap();
    body
}

/// Sends one request and decodes its response.
pub fn call<Req: Encodable + HeaderVersion, Resp: Decodable>(
    stream: &mut TcpStream,
    api: ApiKey,
    version: i16,
    req: &Req,
) -> Resp {
    stream.write_all(&request(api, version, 1, req)).unwrap();
    let mut body = read_response(stream, api, version);
    Resp::decode(&mut body, version).unwrap()
}

/// One uncompressed v2 batch of `records` records with `value_len`-byte values.
pub fn batch(records: usize, value_len: usize) -> BytesMut {
    batch_of(
        (0..records)
            .map(|i| (format!("k{i}"), vec![b'v'; value_len]))
            .collect(),
    )
}

pub fn batch_of(records: Vec<(String, Vec<u8>)>) -> BytesMut {
    let records = records
        .into_iter()
        .map(|(k, v)| (Some(Bytes::from(k)), Bytes::from(v)))
        .collect();
    // Base sequence -1 marks a batch that is not idempotent.
    producer_batch(records, -1, -1, -1, false)
}

/// One uncompressed v2 batch of `records` (key, value) written by producer `producer_id`
/// at `producer_epoch` from sequence `base_sequence` (-1 for none), transactional or not.
pub fn producer_batch(
    records: Vec<(Option<Bytes>, Bytes)>,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
) -> BytesMut {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // kafka-protocol's encoder keeps records in one batch only while
            // offset - sequence is constant.
            sequence: base_sequence + i as i32,
            timestamp: now_ms,
            key,
            value: Some(value),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf
}

pub fn produce_request(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ])
}

/// Produces one batch; returns (error code, base offset).
pub fn produce(stream: &mut TcpStream, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let response: ProduceResponse = call(
        stream,
        ApiKey::Produce,
        9,
        &produce_request(topic, partition, records),
    );
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

pub fn create_topic(stream: &mut TcpStream, name: &str, partitions: i32) -> CreateTopicsResponse {
    let req = CreateTopicsRequest::default().with_topics(vec![
        CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_string())))
            .with_num_partitions(partitions)
            .with_replication_factor(1),
    ]);
    call(stream, ApiKey::CreateTopics, 7, &req)
}

/// Reads a partition from `from` to its high watermark: (offset, key, value) per record.
pub fn fetch_all(
    stream: &mut TcpStream,
    topic: &str,
    partition: i32,
    from: i64,
) -> Vec<(i64, Bytes, Bytes)> {
    let mut out = Vec::new();
    let mut position = from;
    loop {
        let req = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(0)
            .with_max_bytes(4 * 1024 * 1024)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(position)
                            .with_partition_max_bytes(1024 * 1024),
                    ]),
            ]);
        let response: FetchResponse = call(stream, ApiKey::Fetch, 12, &req);
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0, "fetch error at offset {position}");
        let mut records = data.records.clone().unwrap_or_default();
        let mut got = false;
        while !records.is_empty() {
            let set = RecordBatchDecoder::decode(&mut records).expect("valid batches");
            for r in set.records {
                if r.offset >= position {
                    out.push((
                        r.offset,
                        r.key.unwrap_or_default(),
                        r.value.unwrap_or_default(),
                    ));
                    position = r.offset + 1;
                    got = true;
                }
            }
        }
        if !got || position >= data.high_watermark {
            return out;
        }
    }
}
