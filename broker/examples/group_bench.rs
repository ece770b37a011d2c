//! Consumer-group benchmark load generator on librdkafka (the `rdkafka` crate), used by
//! `bench/kafka.sh` against Strata and Apache Kafka alike.
//!
//! `group_bench BOOTSTRAP RECORDS [BROKER_PID [key=value ...]]`, the pairs being extra
//! consumer properties for the members (e.g. `fetch.queue.backoff.ms=0`):
//!
//! 1. creates a 6-partition topic and three members of one group subscribe to it while it
//!    is empty; once the group is stable (all six partitions owned, no change for 1 s)
//!    every member pauses its partitions;
//! 2. RECORDS records of 100 B are produced;
//! 3. the members resume together and the time until they have consumed every record is
//!    the group consumption rate (the group join is not part of it: a steady group is
//!    what a user's consumers spend their time in);
//! 4. one member closes (LeaveGroup) and the time until the other two own all six
//!    partitions again is the rebalance time.
//!
//! Prints one line: `records_per_s mb_per_s rebalance_ms broker_cpu_s client_cpu_s`,
//! the CPU figures being the seconds the broker (`/proc/BROKER_PID/stat`, 0 without a pid)
//! and this process spent during step 3.

#[path = "bench_support/mod.rs"]
mod bench_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use bench_support::{create_topic, process_cpu_seconds};

const PARTITIONS: usize = 6;
const MEMBERS: usize = 3;
const VALUE: [u8; 100] = [b'v'; 100];

/// What the members and the driver share.
#[derive(Default)]
struct Shared {
    consumed: AtomicU64,
    owned: [AtomicUsize; MEMBERS],
    paused: [AtomicBool; MEMBERS],
    pause: AtomicBool,
    resume: AtomicBool,
    leave: [AtomicBool; MEMBERS],
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: group_bench BOOTSTRAP RECORDS [BROKER_PID [key=value ...]]");
        std::process::exit(2);
    }
    let bootstrap = args[1].clone();
    let records: u64 = args[2].parse().expect("RECORDS is a number");
    let broker_pid: Option<u32> = args
        .get(3)
        .filter(|p| *p != "0")
        .map(|p| p.parse().expect("BROKER_PID"));
    let properties: Vec<(String, String)> = args
        .iter()
        .skip(4)
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .expect("consumer properties are key=value");
            (k.to_string(), v.to_string())
        })
        .collect();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("bench-groups-{nonce:x}");
    let group = format!("bench-group-{nonce:x}");
    create_topic(&bootstrap, &topic, PARTITIONS as i32);

    let shared = Arc::new(Shared::default());
    let members: Vec<_> = (0..MEMBERS)
        .map(|i| {
            let (shared, bootstrap, topic, group, properties) = (
                shared.clone(),
                bootstrap.clone(),
                topic.clone(),
                group.clone(),
                properties.clone(),
            );
            std::thread::spawn(move || member(i, &bootstrap, &group, &topic, &properties, &shared))
        })
        .collect();

    // 1. A stable group on the empty topic, then paused.
    wait_until("the group owns all partitions, stable for 1 s", 60, || {
        stable_for(&shared, Duration::from_secs(1))
    });
    shared.pause.store(true, Ordering::SeqCst);
    wait_until("every member paused", 30, || {
        shared.paused.iter().all(|p| p.load(Ordering::SeqCst))
    });

    // 2. The records.
    produce(&bootstrap, &topic, records);

    // 3. Consumption, timed.
    let broker_before = broker_pid.map(process_cpu_seconds).unwrap_or(0.0);
    let client_before = process_cpu_seconds(std::process::id());
    let t0 = Instant::now();
    shared.resume.store(true, Ordering::SeqCst);
    wait_until("every record consumed", 300, || {
        shared.consumed.load(Ordering::Relaxed) >= records
    });
    let elapsed = t0.elapsed().as_secs_f64();
    let broker_cpu = broker_pid.map(process_cpu_seconds).unwrap_or(0.0) - broker_before;
    let client_cpu = process_cpu_seconds(std::process::id()) - client_before;

    // 4. A member leaves; the rebalance until the others own everything.
    let t1 = Instant::now();
    shared.leave[0].store(true, Ordering::SeqCst);
    wait_until("the remaining members own all partitions", 60, || {
        shared.owned[1..]
            .iter()
            .map(|o| o.load(Ordering::SeqCst))
            .sum::<usize>()
            == PARTITIONS
    });
    let rebalance_ms = t1.elapsed().as_millis();
    for i in 1..MEMBERS {
        shared.leave[i].store(true, Ordering::SeqCst);
    }
    for m in members {
        m.join().expect("member thread");
    }
    let rate = records as f64 / elapsed;
    println!(
        "{:.0} {:.1} {rebalance_ms} {broker_cpu:.2} {client_cpu:.2}",
        rate,
        rate * VALUE.len() as f64 / 1e6
    );
}

fn member(
    i: usize,
    bootstrap: &str,
    group: &str,
    topic: &str,
    properties: &[(String, String)],
    shared: &Shared,
) {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("heartbeat.interval.ms", "500")
        .set("session.timeout.ms", "6000")
        .set("fetch.wait.max.ms", "100");
    // Given properties last, so they win over the ones above.
    for (k, v) in properties {
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut paused = false;
    let mut resumed = false;
    let mut last_check = Instant::now();
    while !shared.leave[i].load(Ordering::SeqCst) {
        let got = match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(_)) => {
                shared.consumed.fetch_add(1, Ordering::Relaxed);
                true
            }
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::PartitionEOF))) => false,
            Some(Err(e)) => {
                eprintln!("member {i}: {e}");
                false
            }
            None => false,
        };
        // The assignment is looked at when idle, or every 50 ms while busy.
        if got && last_check.elapsed() < Duration::from_millis(50) {
            continue;
        }
        last_check = Instant::now();
        let assignment = consumer.assignment().expect("assignment");
        shared.owned[i].store(assignment.count(), Ordering::SeqCst);
        if !paused && shared.pause.load(Ordering::SeqCst) {
            consumer.pause(&assignment).expect("pause");
            paused = true;
            shared.paused[i].store(true, Ordering::SeqCst);
        }
        if paused && !resumed && shared.resume.load(Ordering::SeqCst) {
            consumer.resume(&assignment).expect("resume");
            resumed = true;
        }
    }
    consumer.unsubscribe();
    // Dropping the consumer closes it: LeaveGroup.
    drop(consumer);
    shared.owned[i].store(0, Ordering::SeqCst);
}

/// True once all partitions have been owned, with the same split, for `quiet`.
fn stable_for(shared: &Shared, quiet: Duration) -> bool {
    let split =
        |s: &Shared| -> Vec<usize> { s.owned.iter().map(|o| o.load(Ordering::SeqCst)).collect() };
    let first = split(shared);
    if first.iter().sum::<usize>() != PARTITIONS || first.contains(&0) {
        return false;
    }
    let until = Instant::now() + quiet;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
        if split(shared) != first {
            return false;
        }
    }
    true
}

fn produce(bootstrap: &str, topic: &str, records: u64) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("batch.size", "1048576")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    for i in 0..records {
        let key = (i % 1000).to_string();
        let mut record = BaseRecord::to(topic).key(&key).payload(&VALUE[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("produce: {e}"),
            }
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
}

fn wait_until(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        if Instant::now() >= deadline {
            eprintln!("group_bench: timed out after {seconds} s waiting until {what}");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
