//! Log compaction seen by a librdkafka consumer: the latest value per key survives,
//! tombstones disappear after `delete.retention.ms`, offsets keep their gaps, and a
//! broker killed while the cleaner runs comes back with nothing lost.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use support::BrokerProcess;
use support::wait::eventually;

const KEYS: usize = 50;
const ROUNDS: usize = 40;

async fn create_compacted(bootstrap: &str, topic: &str, delete_retention_ms: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let t = NewTopic::new(topic, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "16384")
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("delete.retention.ms", delete_retention_ms);
    admin
        .create_topics([&t], &AdminOptions::new())
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap();
}

/// Many updates per key; every fifth key ends with a tombstone. Returns the expected
/// final state (key → latest value, None for deleted keys).
async fn write_updates(bootstrap: &str, topic: &str) -> BTreeMap<String, Option<String>> {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "2")
        .set("batch.size", "8000")
        .create()
        .unwrap();
    let mut expected = BTreeMap::new();
    let mut futures = Vec::new();
    for round in 0..ROUNDS {
        for k in 0..KEYS {
            let key = format!("key-{k:03}");
            let value = format!("{key}-v{round:03}");
            futures.push(
                p.send_result(FutureRecord::to(topic).key(&key).payload(&value))
                    .map_err(|(e, _)| e)
                    .unwrap(),
            );
            expected.insert(key, Some(value));
        }
    }
    for k in (0..KEYS).step_by(5) {
        let key = format!("key-{k:03}");
        futures.push(
            p.send_result(FutureRecord::<str, str>::to(topic).key(&key))
                .map_err(|(e, _)| e)
                .unwrap(),
        );
        expected.insert(key, None);
    }
    // Two large records after the tombstones: the second cannot share a 16 KiB segment
    // with the first, so the tombstones end up outside the active segment (which the
    // cleaner never touches).
    for n in 0..2 {
        let key = format!("filler-{n}");
        let filler = "x".repeat(12_000);
        futures.push(
            p.send_result(FutureRecord::to(topic).key(&key).payload(&filler))
                .map_err(|(e, _)| e)
                .unwrap(),
        );
        expected.insert(key, Some(filler));
    }
    for f in futures {
        f.await.unwrap().unwrap();
    }
    expected
}

type Records = Vec<(i64, String, Option<String>)>;

/// Reads the whole partition: (offset, key, value) in offset order.
fn read_all(bootstrap: &str, topic: &str) -> Records {
    try_read_all(bootstrap, topic).unwrap()
}

/// [`read_all`], or why it did not get to the end: a consumer error (the cleaner may be
/// swapping segments under the read) or no end within a minute.
fn try_read_all(bootstrap: &str, topic: &str) -> Result<Records, String> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "compaction-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((
                m.offset(),
                String::from_utf8(m.key().unwrap().to_vec()).unwrap(),
                m.payload().map(|v| String::from_utf8(v.to_vec()).unwrap()),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return Ok(out),
            Some(Err(e)) => return Err(format!("consume failed: {e}")),
            None => {}
        }
    }
    Err("did not reach the end of the partition".to_string())
}

fn latest_per_key(records: &[(i64, String, Option<String>)]) -> BTreeMap<String, Option<String>> {
    let mut state = BTreeMap::new();
    for (_, k, v) in records {
        state.insert(k.clone(), v.clone());
    }
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_latest_values_and_drops_tombstones() {
    let broker = BrokerProcess::start(&[("log.cleaner.backoff.ms", "200")]);
    let bootstrap = broker.bootstrap();
    create_compacted(&bootstrap, "profiles", "2000").await;
    let expected = write_updates(&bootstrap, "profiles").await;
    let total = ROUNDS * KEYS + KEYS / 5 + 2;

    // Cleaned: far fewer records, offsets strictly increasing with gaps, same final state.
    // Checked on the read that saw the log compacted: a later one may already miss the
    // tombstones, which go 2 s after cleaning.
    let records = eventually("the cleaner to compact the log", || {
        let records = try_read_all(&bootstrap, "profiles")?;
        if records.len() < total / 4 {
            Ok(records)
        } else {
            Err(format!("{} of {total} records left", records.len()))
        }
    });
    assert!(
        records.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets stay ordered"
    );
    assert_eq!(
        latest_per_key(&records),
        expected,
        "every key reads as its latest value"
    );

    // Tombstones go once delete.retention.ms has passed since their segment was cleaned.
    let records = eventually("tombstones to expire", || {
        let records = try_read_all(&bootstrap, "profiles")?;
        let tombstones = records.iter().filter(|(_, _, v)| v.is_none()).count();
        if tombstones == 0 {
            Ok(records)
        } else {
            Err(format!("{tombstones} tombstones left"))
        }
    });
    let live: BTreeMap<String, Option<String>> =
        expected.into_iter().filter(|(_, v)| v.is_some()).collect();
    assert_eq!(latest_per_key(&records), live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_while_cleaning_loses_nothing() {
    let mut broker = BrokerProcess::start(&[("log.cleaner.backoff.ms", "50")]);
    let bootstrap = broker.bootstrap();
    create_compacted(&bootstrap, "accounts", "600000").await;
    let expected = write_updates(&bootstrap, "accounts").await;
    // Kill repeatedly while the cleaner works through the segments; each restart must
    // finish or roll back any half-done swap (.cleaned/.swap/.deleted files).
    for delay_ms in [30, 80, 150, 300] {
        std::thread::sleep(Duration::from_millis(delay_ms));
        broker.kill();
        broker.restart();
        assert_eq!(
            latest_per_key(&read_all(&bootstrap, "accounts")),
            expected,
            "after a kill {delay_ms} ms in"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(broker.log_dir().join("accounts-0"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "recovery removed half-done cleaning files: {leftovers:?}"
    );
}
