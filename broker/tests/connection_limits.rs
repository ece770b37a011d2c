//! Abusive connections meet Kafka's limits: `max.connections.per.ip` (and its
//! overrides), `connections.max.idle.ms` for silent and slow-drip clients, and
//! `queued.max.request.bytes` for the requests held at once; everyone else keeps being
//! served, and the closures are counted in `/metrics`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use support::wait::eventually;
use support::wire::{call, request};
use support::{BrokerProcess, free_port, metric};

fn connect(broker: &BrokerProcess) -> TcpStream {
    support::wire::connect(broker.port)
}

/// An ApiVersions round trip on `s`; `Err` when the broker closed it or did not answer.
fn api_versions(s: &mut TcpStream) -> Result<(), String> {
    let frame = request(ApiKey::ApiVersions, 3, 7, &ApiVersionsRequest::default());
    s.write_all(&frame).map_err(|e| format!("write: {e}"))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).map_err(|e| format!("read: {e}"))?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).map_err(|e| format!("read: {e}"))
}

/// True once the broker has closed `s` (EOF or reset) within the read timeout; false
/// when the timeout passes with the connection still open.
fn closed_by_broker(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn connections_beyond_max_connections_per_ip_are_closed_at_accept() {
    let metrics = free_port();
    let broker = BrokerProcess::start(&[
        ("max.connections.per.ip", "3"),
        ("metrics.port", &metrics.to_string()),
    ]);
    // Three connections in use (each answered, so each is counted by the broker).
    let mut open: Vec<TcpStream> = (0..3)
        .map(|_| {
            eventually("a connection within the limit", || {
                let mut s = connect(&broker);
                api_versions(&mut s).map(|_| s)
            })
        })
        .collect();
    let mut fourth = connect(&broker);
    assert!(
        closed_by_broker(&mut fourth),
        "a fourth connection from 127.0.0.1 is closed"
    );
    eventually("the refusal counted", || {
        match metric(metrics, "strata_broker_connections_refused_per_ip_total")? {
            n if n >= 1 => Ok(()),
            n => Err(format!("{n} refused")),
        }
    });
    // The three keep working; closing one makes room for another.
    for s in &mut open {
        api_versions(s).expect("connections within the limit keep being served");
    }
    drop(open.pop());
    eventually("a new connection once one closed", || {
        api_versions(&mut connect(&broker))
    });
}

#[test]
fn an_override_raises_the_limit_for_its_address() {
    let broker = BrokerProcess::start(&[
        ("max.connections.per.ip", "0"),
        ("max.connections.per.ip.overrides", "127.0.0.1:2"),
    ]);
    let mut a = eventually("a first connection", || {
        let mut s = connect(&broker);
        api_versions(&mut s).map(|_| s)
    });
    let mut b = eventually("a second connection", || {
        let mut s = connect(&broker);
        api_versions(&mut s).map(|_| s)
    });
    assert!(closed_by_broker(&mut connect(&broker)), "a third is closed");
    api_versions(&mut a).unwrap();
    api_versions(&mut b).unwrap();
}

#[test]
fn zero_connections_per_ip_without_overrides_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = support::refused_config(&format!(
        "listeners=PLAINTEXT://127.0.0.1:{}\nlog.dirs={}\nmax.connections.per.ip=0\n",
        free_port(),
        dir.path().join("logs").display()
    ));
    assert!(
        stderr.contains("max.connections.per.ip") && stderr.contains("overrides"),
        "{stderr}"
    );
}

#[test]
fn silent_and_slow_drip_connections_are_closed_after_the_idle_time() {
    let metrics = free_port();
    let broker = BrokerProcess::start(&[
        ("connections.max.idle.ms", "1500"),
        ("metrics.port", &metrics.to_string()),
    ]);
    let started = Instant::now();
    // Never sends anything.
    let mut silent = connect(&broker);
    // Sends a request one byte every 300 ms: each byte is activity, the request never
    // completes within the idle time.
    let mut drip = connect(&broker);
    let frame = request(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());
    // Busy: a request every 300 ms on its own connection.
    let mut busy = connect(&broker);
    let mut drip_closed = false;
    for byte in frame.iter().cycle().take(20) {
        if drip.write_all(&[*byte]).is_err() {
            drip_closed = true;
            break;
        }
        api_versions(&mut busy).expect("a busy connection is never idle");
        std::thread::sleep(Duration::from_millis(300));
    }
    drip.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(
        drip_closed || closed_by_broker(&mut drip),
        "a request trickling in for longer than the idle time closes its connection"
    );
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(
        closed_by_broker(&mut silent),
        "a silent connection is closed"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before the idle time"
    );
    api_versions(&mut busy).expect("the busy connection still works");
    eventually("idle closures counted", || {
        match metric(metrics, "strata_broker_connections_idle_closed_total")? {
            n if n >= 2 => Ok(()),
            n => Err(format!("{n} counted")),
        }
    });
}

#[test]
fn requests_beyond_queued_max_request_bytes_wait_for_room() {
    let metrics = free_port();
    let broker = BrokerProcess::start(&[
        ("queued.max.request.bytes", "1048576"),
        ("connections.max.idle.ms", "600000"),
        ("metrics.port", &metrics.to_string()),
    ]);
    // A claims 1,000,000 bytes and sends ten: the pool holds them for it.
    let mut a = connect(&broker);
    a.write_all(&1_000_000i32.to_be_bytes()).unwrap();
    a.write_all(&[0u8; 10]).unwrap();
    eventually("A's claim held", || {
        match metric(metrics, "strata_broker_queued_request_bytes")? {
            1_000_000 => Ok(()),
            n => Err(format!("{n} held")),
        }
    });
    // A small request fits in what is left and is served.
    let _: ApiVersionsResponse = call(
        &mut connect(&broker),
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    );
    // B's 100 kB request does not fit: it waits, unanswered, while A holds the pool.
    let mut b = connect(&broker);
    let mut frame = request(ApiKey::ApiVersions, 3, 9, &ApiVersionsRequest::default());
    // Padding after the body is ignored by the decoder; it only makes the frame large.
    let padded_len = 100_000;
    frame.resize(4 + padded_len, 0);
    frame[..4].copy_from_slice(&(padded_len as i32).to_be_bytes());
    b.write_all(&frame).unwrap();
    b.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut len = [0u8; 4];
    assert!(
        b.read_exact(&mut len).is_err(),
        "B is not answered while the pool is full"
    );
    // A goes away; its share returns and B is served.
    drop(a);
    b.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    b.read_exact(&mut len)
        .expect("B answered once A's bytes are released");
    eventually("nothing held once both are done", || {
        match metric(metrics, "strata_broker_queued_request_bytes")? {
            0 => Ok(()),
            n => Err(format!("{n} held")),
        }
    });
}
