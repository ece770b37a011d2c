//! Transactional produce benchmark load generator on librdkafka (the `rdkafka` crate), used
//! by `bench/kafka.sh` against Strata and Apache Kafka alike.
//!
//! `txn_bench BOOTSTRAP RECORDS PER_TXN [BROKER_PID]`:
//!
//! 1. creates a 3-partition topic and starts a `read_committed` consumer on it, from the
//!    beginning;
//! 2. a transactional producer (`transactional.id` set, so idempotent and acks=all) writes
//!    RECORDS records of 100 B, committing every PER_TXN records (begin, produce, commit —
//!    the commit waits for its markers' coordinator to acknowledge);
//! 3. the consumer receives each record once its transaction's COMMIT marker is written:
//!    the time from the record's creation to its receipt is the end-to-end latency a
//!    `read_committed` reader sees.
//!
//! Prints one line: `records_per_s mb_per_s e2e_p50_ms e2e_p99_ms broker_cpu_s client_cpu_s`,
//! the rate over step 2 (until the last commit returned), the CPU figures being the seconds
//! the broker (`/proc/BROKER_PID/stat`, 0 without a pid) and this process spent meanwhile.

#[path = "bench_support/mod.rs"]
mod bench_support;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use bench_support::{create_topic, process_cpu_seconds};
use rdkafka::{Message, Offset, TopicPartitionList};

const PARTITIONS: i32 = 3;
const VALUE: [u8; 100] = [b'v'; 100];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: txn_bench BOOTSTRAP RECORDS PER_TXN [BROKER_PID]");
        std::process::exit(2);
    }
    let bootstrap = args[1].clone();
    let records: u64 = args[2].parse().expect("RECORDS is a number");
    let per_txn: u64 = args[3].parse().expect("PER_TXN is a number");
    let broker_pid: Option<u32> = args
        .get(4)
        .filter(|p| *p != "0")
        .map(|p| p.parse().expect("BROKER_PID"));
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("bench-txn-{nonce:x}");
    create_topic(&bootstrap, &topic, PARTITIONS);

    // 1. The read_committed reader.
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(records as usize)));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (bootstrap, topic, latencies, stop) = (
            bootstrap.clone(),
            topic.clone(),
            latencies.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || read_committed(&bootstrap, &topic, records, &latencies, &stop))
    };

    // 2. The transactions.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("transactional.id", format!("bench-txn-{nonce:x}"))
        .set("linger.ms", "5")
        .set("batch.size", "131072")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    producer
        .init_transactions(Duration::from_secs(60))
        .expect("init_transactions");
    let broker_before = broker_pid.map(process_cpu_seconds).unwrap_or(0.0);
    let client_before = process_cpu_seconds(std::process::id());
    let t0 = Instant::now();
    let mut sent = 0u64;
    while sent < records {
        producer.begin_transaction().expect("begin_transaction");
        let n = per_txn.min(records - sent);
        for i in 0..n {
            let key = ((sent + i) % 1000).to_string();
            let mut record = BaseRecord::to(&topic)
                .key(&key)
                .payload(&VALUE[..])
                .timestamp(now_ms());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        producer.poll(Duration::from_millis(5));
                    }
                    Err((e, _)) => panic!("produce: {e}"),
                }
            }
        }
        producer
            .commit_transaction(Duration::from_secs(60))
            .expect("commit_transaction");
        sent += n;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let broker_cpu = broker_pid.map(process_cpu_seconds).unwrap_or(0.0) - broker_before;
    let client_cpu = process_cpu_seconds(std::process::id()) - client_before;

    // 3. Every committed record read.
    let deadline = Instant::now() + Duration::from_secs(120);
    while latencies.lock().expect("latencies").len() < records as usize {
        if Instant::now() >= deadline {
            eprintln!("txn_bench: the read_committed reader did not get every record in 120 s");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::SeqCst);
    reader.join().expect("reader");
    let mut latencies = std::mem::take(&mut *latencies.lock().expect("latencies"));
    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let rate = records as f64 / elapsed;
    println!(
        "{rate:.0} {:.1} {} {} {broker_cpu:.2} {client_cpu:.2}",
        rate * VALUE.len() as f64 / 1e6,
        percentile(0.5),
        percentile(0.99)
    );
}

fn read_committed(
    bootstrap: &str,
    topic: &str,
    records: u64,
    latencies: &Mutex<Vec<i64>>,
    stop: &AtomicBool,
) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "txn-bench-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    let mut seen = 0u64;
    while seen < records && !stop.load(Ordering::SeqCst) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            let created = m.timestamp().to_millis().unwrap_or_else(now_ms);
            latencies
                .lock()
                .expect("latencies")
                .push((now_ms() - created).max(0));
            seen += 1;
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
