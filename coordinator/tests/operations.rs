//! Operating the server: configuration errors, four-letter words and their whitelist,
//! Prometheus metrics, and an observer that replicates without voting.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use support::Ensemble;
use support::wait::eventually;
use zookeeper_client as zk;

/// Run the server on a zoo.cfg of `tickTime=2000`, a fresh `dataDir` and `lines`, until
/// it exits; returns whether it succeeded and what it wrote to stderr.
fn run_to_exit(lines: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    let text = format!("tickTime=2000\ndataDir={}\n{lines}", dir.path().display());
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata-coordinator"))
        .arg("--config")
        .arg(&cfg)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_config_stops_the_server_naming_the_line() {
    let (ok, err) = run_to_exit("clientPort=notaport\n");
    assert!(!ok);
    assert!(err.contains("zoo.cfg:3: clientPort"), "{err}");
}

#[test]
fn a_client_port_in_use_stops_the_server_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (ok, err) = run_to_exit(&format!("clientPort={port}\nclientPortAddress=127.0.0.1\n"));
    assert!(!ok);
    assert!(
        err.contains(&format!("client port 127.0.0.1:{port}: ")),
        "{err}"
    );
    assert!(!err.contains("backtrace"), "{err}");
}

#[test]
fn sigterm_stops_the_server_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_strata-coordinator"))
        .arg("--config")
        .arg(&cfg)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    // Handled, not left to the default action (which PID 1 in a container ignores).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            server.kill().unwrap();
            panic!("still running 10 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_letter_words_honour_the_whitelist_and_metrics_use_mntr_names() {
    let port = support::free_port();
    let mut e = Ensemble::standalone(&format!(
        "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
         metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={port}\n"
    ));
    assert_eq!(e.four_letter(0, "ruok"), "imok");
    assert_eq!(e.four_letter(0, "isro"), "rw");
    let c = zk::Client::connect(&e.servers[0].addr()).await.unwrap();
    let opts = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    c.create("/e", b"", &opts).await.unwrap();
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    c.create("/p", b"kept", &persistent).await.unwrap();
    // Held so the client keeps the watch registered.
    let (_, _, _watcher) = c.get_and_watch_data("/e").await.unwrap();
    let mntr = e.four_letter(0, "mntr");
    for line in [
        "zk_server_state\tstandalone",
        // ZooKeeper's count: the root twice ("" and "/"), /zookeeper, its quota and
        // config nodes, /e and /p.
        "zk_znode_count\t7",
        "zk_ephemerals_count\t1",
        "zk_watch_count\t1",
        "zk_num_alive_connections\t1",
    ] {
        assert!(mntr.contains(line), "{line} missing from:\n{mntr}");
    }
    let metrics = http_get(&format!("127.0.0.1:{port}"), "/metrics");
    assert!(metrics.starts_with("HTTP/1.0 200"), "{metrics}");
    assert!(metrics.contains("zk_znode_count 7\n"), "{metrics}");
    assert!(metrics.contains("zk_server_state{state=\"standalone\"} 1"));
    assert!(e.four_letter(0, "conf").contains("tickTime=200\n"));
    let wchs = e.four_letter(0, "wchs");
    assert!(wchs.contains("Total watches:1"), "{wchs}");
    assert!(e.four_letter(0, "cons").contains("sid=0x"));

    // The default whitelist is ZooKeeper's: srvr only.
    drop(c);
    e.kill(0);
    let default = std::fs::read_to_string(&e.servers[0].cfg_path)
        .unwrap()
        .replace("4lw.commands.whitelist=*\n", "");
    std::fs::write(&e.servers[0].cfg_path, default).unwrap();
    e.restart(0);
    e.wait_serving(0, Duration::from_secs(20));
    assert_eq!(
        e.four_letter(0, "ruok"),
        "ruok is not executed because it is not in the whitelist.\n"
    );
    assert!(e.four_letter(0, "srvr").contains("Mode: standalone"));
    // Recovery from the transaction log brought the tree back.
    let c = zk::Client::connect(&e.servers[0].addr()).await.unwrap();
    assert_eq!(c.get_data("/p").await.unwrap().0, b"kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_replicates_without_voting() {
    let e = Ensemble::start_with_observers(3, 1, "");
    assert_eq!(e.mode(3).as_deref(), Some("observer"));
    let observer = zk::Client::connect(&e.servers[3].addr()).await.unwrap();
    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    observer.create("/via-observer", b"o", &opts).await.unwrap();
    let leader = e.wait_leader();
    let lc = zk::Client::connect(&e.servers[leader].addr())
        .await
        .unwrap();
    assert_eq!(lc.get_data("/via-observer").await.unwrap().0, b"o");
    // A follower serves as soon as it is up to date; the leader counts it as synced when
    // its acknowledgement arrives, a moment later.
    let mntr = eventually("the leader to count two synced followers", || {
        let mntr = e.four_letter(leader, "mntr");
        if mntr.contains("zk_synced_followers\t2") {
            Ok(mntr)
        } else {
            Err(mntr)
        }
    });
    let fsyncs: u64 = mntr
        .lines()
        .find_map(|l| l.strip_prefix("zk_fsync_count\t"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(fsyncs > 0, "the leader logged with fsync: {mntr}");
}
