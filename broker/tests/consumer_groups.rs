//! Consumer groups through librdkafka: subscription, assignment across members,
//! committed offsets across a broker restart, static membership, cooperative-sticky.
//! (Mixed-client groups — librdkafka, confluent-kafka and kafka-python in one group —
//! are in tests/python/test_consumer_groups.py.)

mod support;

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use support::BrokerProcess;

async fn setup_topic(bootstrap: &str, topic: &str, partitions: i32, records: usize) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    admin
        .create_topics(
            [&NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new(),
        )
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap();
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut futures = Vec::new();
    for i in 0..records {
        let key = format!("k{i}");
        let value = format!("v{i}");
        futures.push(
            p.send_result(FutureRecord::to(topic).key(&key).payload(&value))
                .map_err(|(e, _)| e)
                .unwrap(),
        );
    }
    for f in futures {
        f.await.unwrap().unwrap();
    }
}

fn member(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().unwrap()
}

fn assignment(c: &BaseConsumer) -> BTreeSet<i32> {
    c.assignment()
        .unwrap()
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect()
}

/// Polls every consumer until `done` says so or the deadline passes.
fn poll_until(
    consumers: &[&BaseConsumer],
    secs: u64,
    mut done: impl FnMut(&[&BaseConsumer], Vec<(usize, i32, i64)>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let mut got = Vec::new();
        for (i, c) in consumers.iter().enumerate() {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                got.push((i, m.partition(), m.offset()));
            }
        }
        if done(consumers, got) {
            return;
        }
    }
    panic!("condition not reached within {secs}s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_share_partitions_and_commits_survive_restart() {
    let mut broker = BrokerProcess::start(&[]);
    let bootstrap = broker.bootstrap();
    setup_topic(&bootstrap, "shared", 6, 600).await;

    let a = member(&bootstrap, "g1", &[]);
    let b = member(&bootstrap, "g1", &[]);
    a.subscribe(&["shared"]).unwrap();
    b.subscribe(&["shared"]).unwrap();
    let mut seen = HashSet::new();
    poll_until(&[&a, &b], 60, |cs, got| {
        for (_, p, o) in got {
            seen.insert((p, o));
        }
        let (x, y) = (assignment(cs[0]), assignment(cs[1]));
        x.len() == 3 && y.len() == 3 && x.is_disjoint(&y) && seen.len() == 600
    });
    a.commit_consumer_state(CommitMode::Sync).unwrap();
    b.commit_consumer_state(CommitMode::Sync).unwrap();
    drop(a);
    drop(b);

    broker.stop();
    broker.restart();
    setup_more(&bootstrap, "shared", 60).await;

    // A new member of the same group resumes at the committed offsets: it sees only
    // the 60 new records.
    let c = member(&bootstrap, "g1", &[]);
    c.subscribe(&["shared"]).unwrap();
    let mut fresh = HashSet::new();
    poll_until(&[&c], 60, |_, got| {
        for (_, p, o) in got {
            assert!(fresh.insert((p, o)), "duplicate delivery of {p}:{o}");
        }
        fresh.len() == 60
    });
    // Nothing older than the commit is redelivered: watched for a while, not looked at
    // once after a pause.
    let quiet_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < quiet_until {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            panic!(
                "nothing older than the commit is redelivered, but {}:{} came",
                m.partition(),
                m.offset()
            );
        }
    }
}

async fn setup_more(bootstrap: &str, topic: &str, records: usize) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for i in 0..records {
        let key = format!("late{i}");
        p.send(
            FutureRecord::to(topic).key(&key).payload("late"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_restart_gets_its_partitions_back_without_rebalance() {
    let broker = BrokerProcess::start(&[]);
    let bootstrap = broker.bootstrap();
    setup_topic(&bootstrap, "static", 4, 40).await;
    let s1 = member(
        &bootstrap,
        "g-static",
        &[
            ("group.instance.id", "node-1"),
            ("session.timeout.ms", "10000"),
        ],
    );
    let s2 = member(
        &bootstrap,
        "g-static",
        &[
            ("group.instance.id", "node-2"),
            ("session.timeout.ms", "10000"),
        ],
    );
    s1.subscribe(&["static"]).unwrap();
    s2.subscribe(&["static"]).unwrap();
    poll_until(&[&s1, &s2], 60, |cs, _| {
        assignment(cs[0]).len() == 2 && assignment(cs[1]).len() == 2
    });
    let before = assignment(&s1);
    let other = assignment(&s2);
    // A static member's close does not send LeaveGroup; the restart within the session
    // timeout takes its place back.
    drop(s1);
    let s1 = member(
        &bootstrap,
        "g-static",
        &[
            ("group.instance.id", "node-1"),
            ("session.timeout.ms", "10000"),
        ],
    );
    s1.subscribe(&["static"]).unwrap();
    poll_until(&[&s1, &s2], 30, |cs, _| assignment(cs[0]) == before);
    assert_eq!(
        assignment(&s2),
        other,
        "the other member was not rebalanced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_rebalance_moves_only_what_it_must() {
    let broker = BrokerProcess::start(&[]);
    let bootstrap = broker.bootstrap();
    setup_topic(&bootstrap, "coop", 6, 60).await;
    let coop = [("partition.assignment.strategy", "cooperative-sticky")];
    let a = member(&bootstrap, "g-coop", &coop);
    a.subscribe(&["coop"]).unwrap();
    poll_until(&[&a], 60, |cs, _| assignment(cs[0]).len() == 6);
    let b = member(&bootstrap, "g-coop", &coop);
    b.subscribe(&["coop"]).unwrap();
    let mut a_history = Vec::new();
    poll_until(&[&a, &b], 60, |cs, _| {
        let x = assignment(cs[0]);
        a_history.push(x.len());
        x.len() == 3 && assignment(cs[1]).len() == 3
    });
    // Incremental: member a never dropped to zero partitions on the way (an eager
    // rebalance revokes everything first).
    assert!(
        a_history.iter().all(|n| *n >= 3),
        "a kept its partitions: {a_history:?}"
    );
}
