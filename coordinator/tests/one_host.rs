//! Several servers on one host from the zoo.cfg ZooKeeper's guide uses for that: one
//! address, a client, quorum and election port each, nothing else. Auxiliary ports follow
//! ZooKeeper's defaults (no metrics endpoint without a metrics provider), and one that a
//! server cannot bind is a warning naming the address, never the end of the server.

mod support;

use std::time::{Duration, Instant};

use support::Ensemble;
use zookeeper_client as zk;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_on_one_address_all_serve() {
    let e = Ensemble::one_host(3, "");
    let leader = e.wait_leader();
    let modes: Vec<Option<String>> = (0..3).map(|i| e.mode(i)).collect();
    assert_eq!(
        modes
            .iter()
            .filter(|m| m.as_deref() == Some("follower"))
            .count(),
        2,
        "{modes:?}"
    );
    let writer = zk::Client::connect(&e.servers[(leader + 1) % 3].addr())
        .await
        .unwrap();
    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    writer.create("/one-host", b"v", &opts).await.unwrap();
    let reader = zk::Client::connect(&e.servers[(leader + 2) % 3].addr())
        .await
        .unwrap();
    reader.sync("/one-host").await.unwrap();
    assert_eq!(reader.get_data("/one-host").await.unwrap().0, b"v");
    for s in &e.servers {
        let log = s.log();
        assert!(!log.contains("metrics"), "server {}: {log}", s.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_port_another_server_holds_is_a_warning_naming_it() {
    let port = support::free_port();
    // All three ask for the same endpoint: the first to bind serves it.
    let mut e = Ensemble::one_host(
        3,
        &format!(
            "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
             metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={port}\n"
        ),
    );
    let warning = format!("metrics port 127.0.0.1:{port}: ");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (serving, warned) = loop {
        let logs: Vec<String> = e.servers.iter().map(|s| s.log()).collect();
        let serving = logs
            .iter()
            .filter(|l| {
                l.contains(&format!(
                    "serving metrics on http://127.0.0.1:{port}/metrics"
                ))
            })
            .count();
        let warned = logs.iter().filter(|l| l.contains(&warning)).count();
        if serving + warned == 3 || Instant::now() > deadline {
            break (serving, warned);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!((serving, warned), (1, 2));
    for i in 0..3 {
        assert!(e.running(i), "server {} is still up", i + 1);
        assert!(e.mode(i).is_some(), "server {} serves clients", i + 1);
    }
}
