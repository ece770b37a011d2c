//! The admin APIs through librdkafka's AdminClient and consumer: CreateTopics with configs,
//! DescribeConfigs, IncrementalAlterConfigs, CreatePartitions, DeleteRecords, DeleteTopics,
//! ListOffsets by timestamp, and time-based retention.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use support::BrokerProcess;
use support::wait::eventually_async;

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap()
}

fn opts() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "admin-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

async fn produce_n(bootstrap: &str, topic: &str, n: usize, timestamp: Option<i64>) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        .create()
        .unwrap();
    for i in 0..n {
        let key = format!("k{i}");
        let mut record = FutureRecord::to(topic)
            .key(&key)
            .payload("value")
            .partition(0);
        if let Some(ts) = timestamp {
            record = record.timestamp(ts + i as i64);
        }
        p.send(record, Duration::from_secs(10))
            .await
            .expect("produce");
    }
}

fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> Result<(i64, i64), String> {
    consumer(bootstrap)
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .map_err(|e| format!("ListOffsets: {e}"))
}

async fn try_describe(
    a: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<rdkafka::admin::ConfigResource, String> {
    let r = a
        .describe_configs([&ResourceSpecifier::Topic(topic)], &opts())
        .await
        .map_err(|e| format!("DescribeConfigs: {e}"))?;
    r.into_iter()
        .next()
        .ok_or("DescribeConfigs: no resource")?
        .map_err(|e| format!("DescribeConfigs: {e:?}"))
}

async fn describe(
    a: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> rdkafka::admin::ConfigResource {
    try_describe(a, topic).await.unwrap()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_configs_are_stored_described_and_altered() {
    let broker = BrokerProcess::start(&[]);
    let a = admin(&broker.bootstrap());
    let topic = NewTopic::new("configured", 2, TopicReplication::Fixed(1))
        .set("retention.ms", "3600000")
        .set("cleanup.policy", "delete");
    a.create_topics([&topic], &opts()).await.unwrap()[0]
        .as_ref()
        .unwrap();

    // An unknown config is refused and creates nothing.
    let bad = NewTopic::new("bad-config", 1, TopicReplication::Fixed(1)).set("retention.msx", "1");
    let err = a.create_topics([&bad], &opts()).await.unwrap()[0]
        .clone()
        .unwrap_err();
    assert_eq!(err.1, RDKafkaErrorCode::InvalidConfig);

    let resource = describe(&a, "configured").await;
    let retention = resource.get("retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert!(!retention.is_default);
    let segment = resource.get("segment.bytes").unwrap();
    assert_eq!(segment.value.as_deref(), Some("1073741824"));
    assert!(segment.is_default);

    let alter =
        AlterConfig::new(ResourceSpecifier::Topic("configured")).set("retention.ms", "120000");
    a.alter_configs([&alter], &opts()).await.unwrap()[0]
        .as_ref()
        .unwrap();
    let resource = describe(&a, "configured").await;
    assert_eq!(
        resource.get("retention.ms").unwrap().value.as_deref(),
        Some("120000")
    );

    // Survives a restart. The admin client reconnects to the restarted broker on its
    // own time, so its first request may fail.
    let mut broker = broker;
    broker.stop();
    broker.restart();
    let resource = eventually_async("DescribeConfigs after the restart", async || {
        try_describe(&a, "configured").await
    })
    .await;
    assert_eq!(
        resource.get("retention.ms").unwrap().value.as_deref(),
        Some("120000")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_grow_but_never_shrink() {
    let broker = BrokerProcess::start(&[]);
    let a = admin(&broker.bootstrap());
    let topic = NewTopic::new("growing", 2, TopicReplication::Fixed(1));
    a.create_topics([&topic], &opts()).await.unwrap()[0]
        .as_ref()
        .unwrap();
    a.create_partitions([&NewPartitions::new("growing", 5)], &opts())
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap();
    let md = consumer(&broker.bootstrap())
        .fetch_metadata(Some("growing"), Duration::from_secs(10))
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 5);
    let err = a
        .create_partitions([&NewPartitions::new("growing", 3)], &opts())
        .await
        .unwrap()[0]
        .clone()
        .unwrap_err();
    assert_eq!(err.1, RDKafkaErrorCode::InvalidPartitions);
    produce_n(&broker.bootstrap(), "growing", 1, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_and_delete_topics() {
    let broker = BrokerProcess::start(&[]);
    let bootstrap = broker.bootstrap();
    let a = admin(&bootstrap);
    a.create_topics(
        [&NewTopic::new("trimmed", 1, TopicReplication::Fixed(1))],
        &opts(),
    )
    .await
    .unwrap();
    produce_n(&bootstrap, "trimmed", 20, None).await;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("trimmed", 0, Offset::Offset(15))
        .unwrap();
    a.delete_records(&tpl, &opts()).await.unwrap();
    assert_eq!(watermarks(&bootstrap, "trimmed", 0).unwrap(), (15, 20));

    a.delete_topics(&["trimmed"], &opts()).await.unwrap()[0]
        .as_ref()
        .unwrap();
    let err = a.delete_topics(&["trimmed"], &opts()).await.unwrap()[0]
        .clone()
        .unwrap_err();
    assert_eq!(err.1, RDKafkaErrorCode::UnknownTopicOrPartition);
    // The log goes when the controller's StopReplica reaches the broker, after
    // DeleteTopics was answered (as in Kafka).
    support::wait::eventually("the partition directory gone", || {
        match broker.log_dir().join("trimmed-0").exists() {
            true => Err("still there".to_string()),
            false => Ok(()),
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_for_times_find_the_first_record_at_or_after() {
    let broker = BrokerProcess::start(&[]);
    let bootstrap = broker.bootstrap();
    admin(&bootstrap)
        .create_topics(
            [&NewTopic::new("timed", 1, TopicReplication::Fixed(1))],
            &opts(),
        )
        .await
        .unwrap();
    let base = now_ms() - 60_000;
    produce_n(&bootstrap, "timed", 100, Some(base)).await;
    let c = consumer(&bootstrap);
    for (ts, expected) in [
        (base - 10, Offset::Offset(0)),
        (base + 42, Offset::Offset(42)),
        (base + 1000, Offset::End),
    ] {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("timed", 0, Offset::Offset(ts))
            .unwrap();
        let found = c.offsets_for_times(tpl, Duration::from_secs(10)).unwrap();
        let offset = found.find_partition("timed", 0).unwrap().offset();
        assert_eq!(offset, expected, "timestamp {ts}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_segments() {
    let broker = BrokerProcess::start(&[("log.retention.check.interval.ms", "200")]);
    let bootstrap = broker.bootstrap();
    let topic = NewTopic::new("short-lived", 1, TopicReplication::Fixed(1))
        .set("retention.ms", "1000")
        .set("segment.bytes", "1024");
    admin(&bootstrap)
        .create_topics([&topic], &opts())
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap();
    // Old timestamps: already past retention when written, in segments of a few records.
    produce_n(&bootstrap, "short-lived", 50, Some(now_ms() - 3_600_000)).await;
    eventually_async("retention to advance the log start offset", async || {
        let (low, high) = watermarks(&bootstrap, "short-lived", 0)?;
        assert_eq!(high, 50);
        if low > 0 {
            Ok(())
        } else {
            Err(format!("log start offset {low}"))
        }
    })
    .await;
}

/// IncrementalAlterConfigs on BROKER resources: the replication throttle rates are set,
/// described with their source and removed; anything else is refused whole.
#[test]
fn dynamic_broker_configs_set_describe_and_delete() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::{
        ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsResponse,
    };
    use kafka_protocol::protocol::StrBytes;
    use support::wire::{call, connect};

    const BROKER: i8 = 4;
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    let s = |v: &str| StrBytes::from_string(v.to_string());
    let broker = BrokerProcess::start(&[]);
    let port = broker.port;
    let alter = |name: &str, ops: Vec<(&str, i8, Option<&str>)>| {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(BROKER)
                .with_resource_name(s(name))
                .with_configs(
                    ops.into_iter()
                        .map(|(k, op, v)| {
                            AlterableConfig::default()
                                .with_name(s(k))
                                .with_config_operation(op)
                                .with_value(v.map(s))
                        })
                        .collect(),
                ),
        ]);
        let r: IncrementalAlterConfigsResponse = call(
            &mut connect(port),
            ApiKey::IncrementalAlterConfigs,
            1,
            &request,
        );
        (
            r.responses[0].error_code,
            r.responses[0]
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
        )
    };
    let rate = "leader.replication.throttled.rate";
    assert_eq!(alter("0", vec![(rate, SET, Some("1000000"))]).0, 0);
    // The cluster default is the empty name.
    assert_eq!(
        alter(
            "",
            vec![("follower.replication.throttled.rate", SET, Some("500"))]
        )
        .0,
        0
    );
    // Refused whole: a static key, a negative rate, another broker's id, a log-dir move
    // throttle (nothing to throttle).
    let (code, message) = alter(
        "0",
        vec![(rate, SET, Some("1")), ("log.retention.ms", SET, Some("1"))],
    );
    assert_ne!(code, 0);
    assert!(
        message.contains("Cannot update these configs dynamically"),
        "{message}"
    );
    assert_ne!(alter("0", vec![(rate, SET, Some("-5"))]).0, 0);
    assert_ne!(alter("7", vec![(rate, SET, Some("5"))]).0, 0);
    assert_ne!(
        alter(
            "0",
            vec![(
                "replica.alter.log.dirs.io.max.bytes.per.second",
                SET,
                Some("5")
            )]
        )
        .0,
        0
    );

    let describe = || {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(BROKER)
                .with_resource_name(s("0")),
        ]);
        let r: DescribeConfigsResponse =
            call(&mut connect(port), ApiKey::DescribeConfigs, 4, &request);
        r.results[0]
            .configs
            .iter()
            .filter(|e| e.name.contains("throttled"))
            .map(|e| {
                (
                    e.name.to_string(),
                    e.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                    e.config_source,
                )
            })
            .collect::<Vec<_>>()
    };
    // Applied when the change notification arrives: 2 = this broker's, 3 = the default.
    let expected = vec![
        (
            "follower.replication.throttled.rate".to_string(),
            "500".to_string(),
            3,
        ),
        (rate.to_string(), "1000000".to_string(), 2),
    ];
    support::wait::eventually("the rates described as applied", || {
        let seen = describe();
        (seen == expected).then_some(()).ok_or(format!("{seen:?}"))
    });
    // Deleting the key (and one never set, as kafka-reassign-partitions --verify does).
    assert_eq!(
        alter(
            "0",
            vec![
                (rate, DELETE, None),
                (
                    "replica.alter.log.dirs.io.max.bytes.per.second",
                    DELETE,
                    None
                )
            ]
        )
        .0,
        0
    );
    support::wait::eventually("the broker's own rate removed", || {
        let seen = describe();
        (seen.len() == 1).then_some(()).ok_or(format!("{seen:?}"))
    });
}
