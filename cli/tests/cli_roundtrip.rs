//! The `strata` binary against a live Kafka-protocol broker: topics create, list,
//! describe, alter, delete, and a keyed produce/consume round trip.
//!
//! Needs `STRATA_TEST_BOOTSTRAP` (e.g. `127.0.0.1:19092` for Apache Kafka started with
//! `tools/run-apache-kafka.sh`, or a Strata broker); without it the broker tests print
//! a notice and pass.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use common::stdout_if_ok;
use common::wait::eventually;
use strata_client::partitioner::partition_for_key;

fn bootstrap() -> Option<String> {
    match std::env::var("STRATA_TEST_BOOTSTRAP") {
        Ok(addr) if !addr.is_empty() => Some(addr),
        _ => {
            // Straight to stderr, past the test harness's capture, so the skip is seen.
            let _ = writeln!(
                std::io::stderr(),
                "skipping: set STRATA_TEST_BOOTSTRAP=host:port to run against a broker"
            );
            None
        }
    }
}

/// Runs `strata --bootstrap-server <bootstrap> args...` with `stdin`.
fn strata(bootstrap: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--bootstrap-server")
        .arg(bootstrap)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strata");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("wait for strata")
}

/// Like [`strata`], failing the test unless the command succeeds; returns stdout.
fn ok(bootstrap: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
    let output = strata(bootstrap, args, stdin);
    assert!(
        output.status.success(),
        "strata {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

fn unique_topic(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

#[test]
fn unreachable_broker_is_one_clear_line() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let output = strata(&addr, &["topics", "list"], None);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!("cannot connect to {addr}: Connection refused\n")
    );
}

#[test]
fn keyed_records_round_trip_in_partition_order() {
    let Some(bootstrap) = bootstrap() else { return };
    let b = bootstrap.as_str();
    let topic = unique_topic("cli-roundtrip");
    let created = ok(
        b,
        &[
            "topics",
            "create",
            "--topic",
            &topic,
            "--partitions",
            "3",
            "--replication-factor",
            "1",
        ],
        None,
    );
    assert_eq!(created, format!("Created topic {topic}.\n"));

    const RECORDS: usize = 3000;
    let input: Vec<(String, String)> = (0..RECORDS)
        .map(|i| (format!("key-{}", i % 97), format!("value-{i}")))
        .collect();
    let text: String = input.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    ok(
        b,
        &[
            "produce",
            "--topic",
            &topic,
            "--key-separator",
            ":",
            "--compression",
            "lz4",
        ],
        Some(text.as_bytes()),
    );

    let records = RECORDS.to_string();
    let consumed = ok(
        b,
        &[
            "consume",
            "--topic",
            &topic,
            "--from-beginning",
            "--max-messages",
            &records,
            "--timeout-ms",
            "30000",
            "--print-partition",
            "--print-key",
            "--key-separator",
            ":",
        ],
        None,
    );
    let mut per_partition: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    let mut seen = vec![false; RECORDS];
    for line in consumed.lines() {
        // Partition:P:key:value
        let fields: Vec<&str> = line.splitn(4, ':').collect();
        let [label, partition, key, value] = fields[..] else {
            panic!("unexpected line {line:?}");
        };
        assert_eq!(label, "Partition", "line {line:?}");
        let partition: i32 = partition.parse().unwrap();
        let index: usize = value.strip_prefix("value-").unwrap().parse().unwrap();
        assert_eq!(input[index].0, key, "key of record {index}");
        assert!(!seen[index], "record {index} printed twice");
        seen[index] = true;
        // Same partition as the Java client's murmur2 partitioner would pick.
        assert_eq!(
            partition,
            partition_for_key(key.as_bytes(), 3),
            "partition of {key}"
        );
        per_partition.entry(partition).or_default().push(index);
    }
    assert!(seen.iter().all(|s| *s), "every record came back");
    for (partition, indexes) in &per_partition {
        assert!(
            indexes.windows(2).all(|w| w[0] < w[1]),
            "partition {partition} is in produce order"
        );
    }
    assert_eq!(per_partition.len(), 3, "97 keys spread over all partitions");

    // A single partition from an explicit offset.
    let p0 = &per_partition[&0];
    let from_two = ok(
        b,
        &[
            "consume",
            "--topic",
            &topic,
            "--partition",
            "0",
            "--offset",
            "2",
            "--max-messages",
            "1",
            "--timeout-ms",
            "30000",
        ],
        None,
    );
    assert_eq!(from_two, format!("value-{}\n", p0[2]));

    ok(b, &["topics", "delete", "--topic", &topic], None);
}

#[test]
fn topics_describe_alter_list_delete() {
    let Some(bootstrap) = bootstrap() else { return };
    let b = bootstrap.as_str();
    let topic = unique_topic("cli-topics");
    ok(
        b,
        &[
            "topics",
            "create",
            "--topic",
            &topic,
            "--partitions",
            "2",
            "--replication-factor",
            "1",
            "--config",
            "cleanup.policy=compact",
        ],
        None,
    );
    let again = strata(
        b,
        &["topics", "create", "--topic", &topic, "--partitions", "2"],
        None,
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("TOPIC_ALREADY_EXISTS"));
    ok(
        b,
        &["topics", "create", "--topic", &topic, "--if-not-exists"],
        None,
    );

    // Brokers apply a new topic to their metadata caches asynchronously.
    eventually("topics list to show the new topic", || {
        let listed = stdout_if_ok(strata(b, &["topics", "list"], None))?;
        if listed.lines().any(|l| l == topic) {
            Ok(())
        } else {
            Err(listed)
        }
    });

    let described = eventually("topics describe to show both partitions", || {
        let described = stdout_if_ok(strata(b, &["topics", "describe", "--topic", &topic], None))?;
        if described.lines().count() == 3 {
            Ok(described)
        } else {
            Err(described)
        }
    });
    let lines: Vec<&str> = described.lines().collect();
    assert_eq!(lines.len(), 3, "{described}");
    let header = format!("Topic: {topic}\tTopicId: ");
    assert!(lines[0].starts_with(&header), "{}", lines[0]);
    assert!(
        lines[0].contains("\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: "),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("cleanup.policy=compact"), "{}", lines[0]);
    for (i, line) in lines[1..].iter().enumerate() {
        let prefix = format!("\tTopic: {topic}\tPartition: {i}\tLeader: ");
        assert!(line.starts_with(&prefix), "{line}");
        assert!(
            line.contains("\tReplicas: ") && line.contains("\tIsr: "),
            "{line}"
        );
    }

    ok(
        b,
        &[
            "topics",
            "alter",
            "--topic",
            &topic,
            "--partitions",
            "4",
            "--config",
            "retention.ms=123456",
            "--delete-config",
            "cleanup.policy",
        ],
        None,
    );
    // Brokers apply the change to their metadata cache asynchronously.
    let described = eventually("topics describe to show the alteration", || {
        let described = stdout_if_ok(strata(b, &["topics", "describe", "--topic", &topic], None))?;
        let first = described.lines().next().unwrap_or_default();
        if first.contains("\tPartitionCount: 4\t") && first.contains("retention.ms=123456") {
            Ok(described)
        } else {
            Err(described)
        }
    });
    let first = described.lines().next().unwrap();
    assert!(first.contains("\tPartitionCount: 4\t"), "{first}");
    assert!(first.contains("retention.ms=123456"), "{first}");
    assert!(!first.contains("cleanup.policy=compact"), "{first}");
    assert_eq!(described.lines().count(), 5);

    ok(b, &["topics", "delete", "--topic", &topic], None);
    eventually("topics list to drop the deleted topic", || {
        let listed = stdout_if_ok(strata(b, &["topics", "list"], None))?;
        if listed.lines().any(|l| l == topic) {
            Err(listed)
        } else {
            Ok(())
        }
    });
    let missing = strata(b, &["topics", "describe", "--topic", &topic], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("UNKNOWN_TOPIC_OR_PARTITION"));
}
