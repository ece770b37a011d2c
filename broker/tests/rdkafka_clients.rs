//! librdkafka (through the `rdkafka` crate) against a real `strata-broker` process:
//! keyed records in every compression codec read back in order, across a clean restart,
//! and idempotent production through a SIGKILL of the broker.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use support::BrokerProcess;

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

async fn create_topic(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin
        .create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("CreateTopics");
    for r in results {
        r.expect("topic created");
    }
}

fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("producer")
}

/// A record as read back: (partition, offset, key, value).
type Read = (i32, i64, String, String);

/// Reads every partition of `topic` from the beginning until `expected` records arrived.
fn consume_all(bootstrap: &str, topic: &str, partitions: i32, expected: usize) -> Vec<Read> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.partition.eof", "false")
        // librdkafka needs a group id even for manual assignment; nothing is committed.
        .set("group.id", "rdkafka-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::with_capacity(expected);
    let mut last_error = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while out.len() < expected && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((
                m.partition(),
                m.offset(),
                String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
                String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap(),
            )),
            // librdkafka retries a failed fetch itself (a broker that just restarted may
            // fail one); what matters is that every record arrives in time.
            Some(Err(e)) => last_error = Some(e),
            None => {}
        }
    }
    assert!(
        out.len() >= expected,
        "read {} of {expected} records within 120 s; last fetch error: {last_error:?}",
        out.len()
    );
    // Nothing beyond what was produced shows up.
    let extra_deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < extra_deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            panic!(
                "unexpected extra record at {}:{}",
                m.partition(),
                m.offset()
            );
        }
    }
    out
}

/// Checks count, offsets (dense from 0 in each partition) and per-key order.
fn check_read_back(records: &[Read], produced: &[(String, String)]) {
    assert_eq!(records.len(), produced.len(), "record count");
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (p, o, _, _) in records {
        by_partition.entry(*p).or_default().push(*o);
    }
    for (p, offsets) in &mut by_partition {
        offsets.sort();
        let dense: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(*offsets, dense, "offsets of partition {p} are dense from 0");
    }
    let mut read_order: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut sorted: Vec<&Read> = records.iter().collect();
    sorted.sort_by_key(|(p, o, _, _)| (*p, *o));
    let mut key_partition: HashMap<&str, i32> = HashMap::new();
    for (p, _, k, v) in &sorted {
        read_order.entry(k).or_default().push(v);
        let previous = key_partition.insert(k, *p);
        assert!(
            previous.is_none_or(|q| q == *p),
            "key {k} spread over partitions"
        );
    }
    let mut produced_order: HashMap<&str, Vec<&str>> = HashMap::new();
    for (k, v) in produced {
        produced_order.entry(k).or_default().push(v);
    }
    assert_eq!(read_order, produced_order, "per-key order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_in_every_codec_survive_a_restart() {
    let mut broker = BrokerProcess::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "orders", 3, &[]).await;

    let mut produced = Vec::new();
    for codec in CODECS {
        let p = producer(&bootstrap, &[("compression.type", codec), ("acks", "all")]);
        let mut deliveries = Vec::new();
        for i in 0..2_000 {
            let key = format!("customer-{}", i % 97);
            let value = format!("{codec}-{i:05}-{}", "x".repeat(i % 200));
            let future = p
                .send_result(FutureRecord::to("orders").key(&key).payload(&value))
                .map_err(|(e, _)| e)
                .expect("enqueue");
            deliveries.push(future);
            produced.push((key, value));
        }
        for d in deliveries {
            d.await
                .expect("delivery future")
                .expect("record acknowledged");
        }
    }
    assert_eq!(produced.len(), 10_000);

    let records = consume_all(&bootstrap, "orders", 3, produced.len());
    check_read_back(&records, &produced);

    broker.stop();
    broker.restart();
    let again = consume_all(&bootstrap, "orders", 3, produced.len());
    check_read_back(&again, &produced);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_production_through_a_broker_crash_keeps_every_record_once() {
    let mut broker = BrokerProcess::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "payments", 3, &[]).await;

    let p = producer(
        &bootstrap,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("compression.type", "lz4"),
            ("retry.backoff.ms", "50"),
            ("reconnect.backoff.ms", "50"),
            ("reconnect.backoff.max.ms", "200"),
        ],
    );
    let total = 20_000;
    let mut deliveries = Vec::with_capacity(total);
    for i in 0..total {
        let key = format!("k{}", i % 31);
        let value = format!("payment-{i:06}");
        let future = p
            .send_result(FutureRecord::to("payments").key(&key).payload(&value))
            .map_err(|(e, _)| e)
            .expect("enqueue");
        deliveries.push((value, future));
        if i == total / 2 {
            // Let some of it be acknowledged, then crash the broker mid-stream.
            tokio::time::sleep(Duration::from_millis(200)).await;
            broker.kill();
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    broker.restart();

    let mut acknowledged = HashSet::new();
    let mut failed = 0;
    for (value, d) in deliveries {
        match d.await.expect("delivery future") {
            Ok(_) => {
                acknowledged.insert(value);
            }
            Err((KafkaError::MessageProduction(code), _)) => {
                eprintln!("not acknowledged: {value}: {code:?}");
                failed += 1;
            }
            Err((e, _)) => panic!("unexpected delivery error for {value}: {e}"),
        }
    }
    p.flush(Duration::from_secs(10)).unwrap();
    assert!(
        acknowledged.len() > total / 2,
        "most records are acknowledged ({failed} failed)"
    );

    let records = consume_all(&bootstrap, "payments", 3, acknowledged.len());
    let mut seen = HashSet::new();
    for (_, _, _, v) in &records {
        assert!(seen.insert(v.clone()), "record {v} appears twice");
    }
    for v in &acknowledged {
        assert!(seen.contains(v), "acknowledged record {v} is missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_record_is_refused_and_others_still_work() {
    let broker = BrokerProcess::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "small", 1, &[("max.message.bytes", "2000")]).await;
    let p = producer(&bootstrap, &[("compression.type", "none")]);
    let big = "y".repeat(10_000);
    let result = p
        .send(
            FutureRecord::to("small").key("k").payload(&big),
            Duration::from_secs(10),
        )
        .await;
    match result {
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {}
        other => panic!("expected MESSAGE_TOO_LARGE, got {other:?}"),
    }
    let ok = p
        .send(
            FutureRecord::to("small").key("k").payload("fits"),
            Duration::from_secs(10),
        )
        .await
        .expect("a small record is accepted");
    assert_eq!(ok.offset, 0, "nothing of the refused record was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topic_is_auto_created_or_refused_by_config() {
    let broker = BrokerProcess::start(&[("num.partitions", "2")]);
    let p = producer(&broker.bootstrap(), &[]);
    let d = p
        .send(
            FutureRecord::to("auto-made").key("k").payload("v"),
            Duration::from_secs(20),
        )
        .await
        .expect("auto-created topic accepts records");
    assert!(d.partition < 2);

    let strict = BrokerProcess::start(&[("auto.create.topics.enable", "false")]);
    let p = producer(&strict.bootstrap(), &[("message.timeout.ms", "3000")]);
    let err = p
        .send(
            FutureRecord::to("missing").key("k").payload("v"),
            Duration::from_secs(20),
        )
        .await
        .expect_err("unknown topic is refused");
    match err.0 {
        KafkaError::MessageProduction(
            RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownTopic
            | RDKafkaErrorCode::MessageTimedOut,
        ) => {}
        other => panic!("expected an unknown-topic error, got {other:?}"),
    }
}
