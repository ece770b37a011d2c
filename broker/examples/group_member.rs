//! A consumer-group member built on librdkafka (the `rdkafka` crate), driven by the
//! mixed-client group tests in `tests/python/test_consumer_groups.py`.
//!
//! `group_member BOOTSTRAP GROUP TOPIC [key=value ...]` subscribes, and for every poll:
//! prints each record, then commits synchronously ("commit after processing"), printing
//! what was committed. Assignment changes are printed too. One JSON object per line on
//! stdout. It stops (closing the consumer, which leaves the group) when stdin closes or
//! reads "stop".

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: group_member BOOTSTRAP GROUP TOPIC [key=value ...]");
        std::process::exit(2);
    }
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args[1])
        .set("group.id", &args[2])
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    for kv in &args[4..] {
        let (k, v) = kv.split_once('=').expect("key=value");
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    consumer.subscribe(&[&args[3]]).expect("subscribe");

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                match line {
                    Ok(l) if l.trim() == "stop" => break,
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
            stop.store(true, Ordering::SeqCst);
        });
    }

    let mut last_assignment: Vec<i32> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let mut processed = TopicPartitionList::new();
        let mut any = false;
        if let Some(result) = consumer.poll(Duration::from_millis(100)) {
            match result {
                Ok(m) => {
                    any = true;
                    let value = String::from_utf8_lossy(m.payload().unwrap_or_default());
                    println!(
                        "{{\"event\":\"record\",\"partition\":{},\"offset\":{},\"value\":\"{}\"}}",
                        m.partition(),
                        m.offset(),
                        value
                    );
                    processed
                        .add_partition_offset(
                            m.topic(),
                            m.partition(),
                            Offset::Offset(m.offset() + 1),
                        )
                        .unwrap();
                }
                Err(e) => println!("{{\"event\":\"error\",\"error\":\"{e}\"}}"),
            }
        }
        if any {
            match consumer.commit(&processed, CommitMode::Sync) {
                Ok(()) => {
                    for e in processed.elements() {
                        if let Offset::Offset(o) = e.offset() {
                            println!(
                                "{{\"event\":\"committed\",\"partition\":{},\"offset\":{o}}}",
                                e.partition()
                            );
                        }
                    }
                }
                Err(e) => println!("{{\"event\":\"commit_failed\",\"error\":\"{e}\"}}"),
            }
        }
        let mut assignment: Vec<i32> = consumer
            .assignment()
            .map(|a| a.elements().iter().map(|e| e.partition()).collect())
            .unwrap_or_default();
        assignment.sort();
        if assignment != last_assignment {
            println!("{{\"event\":\"assigned\",\"partitions\":{assignment:?}}}");
            last_assignment = assignment;
        }
    }
    consumer.unsubscribe();
    drop(consumer);
    println!("{{\"event\":\"closed\"}}");
}
