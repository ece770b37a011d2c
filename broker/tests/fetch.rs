//! Fetch semantics at the protocol level: whole batches from inside a batch, long polls
//! that complete when data arrives, per-partition and response size limits (KIP-74).

mod support;

use std::thread;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use support::BrokerProcess;
use support::wire::{batch, call, connect, create_topic, produce};

fn fetch(
    port: u16,
    topic: &str,
    partitions: &[(i32, i64)],
    max_wait_ms: i32,
    min_bytes: i32,
    max_bytes: i32,
    partition_max: i32,
) -> FetchResponse {
    let req = FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_topic(topic, partitions, partition_max)]);
    call(&mut connect(port), ApiKey::Fetch, 12, &req)
}

/// `topic`'s partitions `(index, fetch offset)`, each with `partition_max` bytes.
fn fetch_topic(topic: &str, partitions: &[(i32, i64)], partition_max: i32) -> FetchTopic {
    FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partitions(
            partitions
                .iter()
                .map(|(p, o)| {
                    FetchPartition::default()
                        .with_partition(*p)
                        .with_fetch_offset(*o)
                        .with_partition_max_bytes(partition_max)
                })
                .collect(),
        )
}

fn first_offsets(response: &FetchResponse, index: usize) -> Vec<i64> {
    let mut records = response.responses[0].partitions[index]
        .records
        .clone()
        .unwrap_or_default();
    let mut offsets = Vec::new();
    while !records.is_empty() {
        for r in RecordBatchDecoder::decode(&mut records).unwrap().records {
            offsets.push(r.offset);
        }
    }
    offsets
}

#[test]
fn a_fetch_inside_a_batch_returns_the_whole_batch() {
    let broker = BrokerProcess::start(&[]);
    let mut c = connect(broker.port);
    create_topic(&mut c, "batches", 1);
    assert_eq!(
        produce(&mut c, "batches", 0, batch(10, 10).freeze()),
        (0, 0)
    );
    assert_eq!(
        produce(&mut c, "batches", 0, batch(10, 10).freeze()),
        (0, 10)
    );
    let response = fetch(broker.port, "batches", &[(0, 5)], 0, 0, 1 << 20, 1 << 20);
    let p = &response.responses[0].partitions[0];
    assert_eq!(
        (p.error_code, p.high_watermark, p.log_start_offset),
        (0, 20, 0)
    );
    assert_eq!(
        first_offsets(&response, 0),
        (0..20).collect::<Vec<_>>(),
        "the batch holding offset 5 comes whole"
    );
}

#[test]
fn a_long_poll_completes_when_records_arrive() {
    let broker = BrokerProcess::start(&[]);
    create_topic(&mut connect(broker.port), "waiting", 1);
    let port = broker.port;
    let producer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        produce(&mut connect(port), "waiting", 0, batch(3, 10).freeze())
    });
    // Waits up to 30s for one byte; it must come back with the records produced meanwhile.
    let response = fetch(
        broker.port,
        "waiting",
        &[(0, 0)],
        30_000,
        1,
        1 << 20,
        1 << 20,
    );
    assert_eq!(producer.join().unwrap(), (0, 0));
    assert_eq!(first_offsets(&response, 0), vec![0, 1, 2]);
}

#[test]
fn a_long_poll_with_nothing_to_read_returns_empty_at_max_wait() {
    let broker = BrokerProcess::start(&[]);
    create_topic(&mut connect(broker.port), "quiet", 1);
    let response = fetch(broker.port, "quiet", &[(0, 0)], 200, 1, 1 << 20, 1 << 20);
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert!(first_offsets(&response, 0).is_empty());
}

#[test]
fn size_limits_still_return_one_whole_batch() {
    let broker = BrokerProcess::start(&[]);
    let mut c = connect(broker.port);
    create_topic(&mut c, "limits", 2);
    for p in 0..2 {
        produce(&mut c, "limits", p, batch(5, 1000).freeze());
        produce(&mut c, "limits", p, batch(5, 1000).freeze());
    }
    // Limits far below one batch: the first partition still gets one whole batch
    // (KIP-74), the second gets nothing because the response is already full.
    let response = fetch(broker.port, "limits", &[(0, 0), (1, 0)], 0, 0, 100, 100);
    assert_eq!(first_offsets(&response, 0), vec![0, 1, 2, 3, 4]);
    assert!(first_offsets(&response, 1).is_empty());
    // Generous limits: everything.
    let response = fetch(
        broker.port,
        "limits",
        &[(0, 0), (1, 0)],
        0,
        0,
        1 << 20,
        1 << 20,
    );
    assert_eq!(first_offsets(&response, 0).len(), 10);
    assert_eq!(first_offsets(&response, 1).len(), 10);
}

#[test]
fn out_of_range_and_unknown_partitions_get_their_errors() {
    let broker = BrokerProcess::start(&[]);
    let mut c = connect(broker.port);
    create_topic(&mut c, "ranged", 1);
    produce(&mut c, "ranged", 0, batch(2, 10).freeze());
    let response = fetch(broker.port, "ranged", &[(0, 99)], 0, 0, 1 << 20, 1 << 20);
    assert_eq!(
        response.responses[0].partitions[0].error_code,
        kafka_protocol::ResponseError::OffsetOutOfRange.code()
    );
    let response = fetch(broker.port, "ranged", &[(7, 0)], 0, 0, 1 << 20, 1 << 20);
    assert_eq!(
        response.responses[0].partitions[0].error_code,
        kafka_protocol::ResponseError::UnknownTopicOrPartition.code()
    );
}

#[test]
fn topics_are_named_by_id_from_v13() {
    let broker = BrokerProcess::start(&[]);
    let mut c = connect(broker.port);
    let topic_id = create_topic(&mut c, "by-id", 1).topics[0].topic_id;
    produce(&mut c, "by-id", 0, batch(3, 0).freeze());
    let request = |id| {
        FetchRequest::default()
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic_id(id)
                    .with_partitions(vec![
                        FetchPartition::default().with_partition_max_bytes(1 << 20),
                    ]),
            ])
    };
    let r: FetchResponse = call(&mut c, ApiKey::Fetch, 17, &request(topic_id));
    assert_eq!(r.responses[0].topic_id, topic_id);
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    assert_eq!(first_offsets(&r, 0), vec![0, 1, 2]);

    // An id no topic has: UNKNOWN_TOPIC_ID, and the connection keeps serving.
    let unknown = uuid::Uuid::from_u128(42);
    let r: FetchResponse = call(&mut c, ApiKey::Fetch, 17, &request(unknown));
    assert_eq!(r.responses[0].topic_id, unknown);
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        kafka_protocol::ResponseError::UnknownTopicId.code()
    );
    let r: FetchResponse = call(&mut c, ApiKey::Fetch, 17, &request(topic_id));
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
}

/// A fetch of partitions `(index, offset)` of `topic` in session `id` at `epoch` (v12).
fn session_fetch(
    c: &mut std::net::TcpStream,
    id: i32,
    epoch: i32,
    topic: &str,
    partitions: &[(i32, i64)],
    forget: &[i32],
    max_wait_ms: i32,
) -> FetchResponse {
    let mut req = FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_id(id)
        .with_session_epoch(epoch);
    if !partitions.is_empty() {
        req.topics = vec![fetch_topic(topic, partitions, 1 << 20)];
    }
    if !forget.is_empty() {
        req.forgotten_topics_data = vec![
            kafka_protocol::messages::fetch_request::ForgottenTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(forget.to_vec()),
        ];
    }
    call(c, ApiKey::Fetch, 12, &req)
}

/// `(partition, high watermark, record bytes)` of every partition a response carries.
fn answered(response: &FetchResponse) -> Vec<(i32, i64, usize)> {
    response
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    p.partition_index,
                    p.high_watermark,
                    p.records.as_ref().map_or(0, |r| r.len()),
                )
            })
        })
        .collect()
}

#[test]
fn incremental_fetch_sessions_answer_only_what_changed() {
    use kafka_protocol::ResponseError;
    let metrics = support::free_port();
    let broker = BrokerProcess::start(&[("metrics.port", &metrics.to_string())]);
    let mut c = connect(broker.port);
    create_topic(&mut c, "sessions", 3);
    produce(&mut c, "sessions", 0, batch(2, 10).freeze());

    // A full fetch asking for a session: every partition answered, a session id given.
    let all = [(0, 0), (1, 0), (2, 0)];
    let r = session_fetch(&mut c, 0, 0, "sessions", &all, &[], 0);
    assert_eq!(r.error_code, 0);
    let id = r.session_id;
    assert_ne!(id, 0, "a session was created");
    let full = answered(&r);
    assert_eq!(full.len(), 3);
    assert_eq!((full[0].0, full[0].1), (0, 2));
    assert!(full[0].2 > 0, "records of partition 0");

    // The client moved partition 0 to offset 2; nothing else changed: nothing answered.
    let r = session_fetch(&mut c, id, 1, "sessions", &[(0, 2)], &[], 0);
    assert_eq!((r.error_code, r.session_id), (0, id));
    assert_eq!(answered(&r), vec![]);

    // Records on partition 2, which the request does not name: only it is answered.
    produce(&mut c, "sessions", 2, batch(3, 10).freeze());
    let r = session_fetch(&mut c, id, 2, "sessions", &[], &[], 0);
    let got = answered(&r);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0, got[0].1), (2, 3));
    assert!(got[0].2 > 0);

    // A long poll waits on the session's partitions, named or not.
    let port = broker.port;
    let producer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        produce(&mut connect(port), "sessions", 1, batch(1, 10).freeze());
    });
    let r = session_fetch(&mut c, id, 3, "sessions", &[(2, 3)], &[], 10_000);
    producer.join().unwrap();
    let got = answered(&r);
    assert_eq!(
        got.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(),
        vec![(1, 1)]
    );

    // Out of step: a repeated epoch, or a session the broker does not have.
    let r = session_fetch(&mut c, id, 3, "sessions", &[], &[], 0);
    assert_eq!(r.error_code, ResponseError::InvalidFetchSessionEpoch.code());
    assert!(r.responses.is_empty());
    let r = session_fetch(&mut c, id ^ 1, 1, "sessions", &[], &[], 0);
    assert_eq!(r.error_code, ResponseError::FetchSessionIdNotFound.code());
    assert_eq!(
        support::metric(
            metrics,
            "kafka_server_fetchsessioncache_numincrementalfetchsessions"
        ),
        Ok(1)
    );
    assert_eq!(
        support::metric(
            metrics,
            "kafka_server_fetchsessioncache_numincrementalfetchpartitionscached"
        ),
        Ok(3)
    );

    // Forgetting every partition closes the session: session id 0, a full answer.
    let r = session_fetch(&mut c, id, 4, "sessions", &[], &[0, 1, 2], 0);
    assert_eq!((r.error_code, r.session_id), (0, 0));
    assert_eq!(
        support::metric(
            metrics,
            "kafka_server_fetchsessioncache_numincrementalfetchsessions"
        ),
        Ok(0)
    );
}

#[test]
fn without_cache_slots_every_fetch_is_a_full_one() {
    let broker = BrokerProcess::start(&[("max.incremental.fetch.session.cache.slots", "0")]);
    let mut c = connect(broker.port);
    create_topic(&mut c, "no-sessions", 2);
    let r = session_fetch(&mut c, 0, 0, "no-sessions", &[(0, 0), (1, 0)], &[], 0);
    assert_eq!((r.error_code, r.session_id), (0, 0));
    assert_eq!(answered(&r).len(), 2);
}
