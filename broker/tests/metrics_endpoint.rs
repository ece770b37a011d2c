//! `/metrics` in the Prometheus text format after real traffic from librdkafka.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use support::wait::eventually;
use support::{BrokerProcess, free_port, scrape};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_traffic_logs_and_groups() {
    let metrics_port = free_port();
    let broker = BrokerProcess::start(&[("metrics.port", &metrics_port.to_string())]);
    let bootstrap = broker.bootstrap();
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    for i in 0..20 {
        let key = format!("k{i}");
        p.send(
            FutureRecord::to("observed").key(&key).payload("v"),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    }
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "observer")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    c.subscribe(&["observed"]).unwrap();
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while n < 15 && Instant::now() < deadline {
        if let Some(Ok(_)) = c.poll(Duration::from_millis(100)) {
            n += 1;
        }
    }
    assert_eq!(n, 15, "records read within a minute");
    c.commit_consumer_state(CommitMode::Sync).unwrap();

    // Scraped until every figure shows: the endpoint and the group's state may lag
    // behind the requests that produced them.
    let needles = [
        "strata_broker_bytes_in_total ",
        "strata_broker_records_in_total 20",
        "strata_broker_requests_total{api=\"Produce\"}",
        "strata_broker_request_duration_seconds_bucket{api=\"Fetch\",le=\"+Inf\"}",
        "strata_broker_open_connections ",
        "strata_broker_log_size_bytes{topic=\"observed\",partition=\"0\"}",
        "strata_broker_log_segments{topic=\"observed\",partition=\"0\"} 1",
        "strata_broker_log_end_offset{topic=\"observed\",partition=\"0\"} 20",
        "strata_broker_groups{state=\"Stable\"} 1",
        "strata_broker_group_members{group=\"observer\"} 1",
        "strata_broker_group_lag{group=\"observer\",topic=\"observed\",partition=\"0\"} 5",
    ];
    eventually(
        "/metrics to show the traffic, the log and the group",
        || {
            let text = scrape(metrics_port)?;
            match needles.iter().find(|needle| !text.contains(**needle)) {
                Some(needle) => Err(format!("missing {needle:?} in\n{text}")),
                None => Ok(()),
            }
        },
    );
}

fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn healthz_answers_and_readyz_says_serving() {
    let metrics_port = free_port();
    let _broker = BrokerProcess::start(&[("metrics.port", &metrics_port.to_string())]);
    assert!(get(metrics_port, "/healthz").starts_with("HTTP/1.1 200 OK"));
    // Ready once the broker's own controller has described the cluster to it.
    eventually("/readyz to answer 200", || {
        let ready = get(metrics_port, "/readyz");
        if ready.starts_with("HTTP/1.1 200 OK") {
            Ok(())
        } else {
            Err(ready)
        }
    });
    assert!(get(metrics_port, "/nothing").starts_with("HTTP/1.1 404"));
}
