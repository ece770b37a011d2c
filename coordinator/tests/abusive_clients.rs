//! Clients that abuse a connection are cut off, cost bounded memory, and never stop the
//! server from serving everyone else: a connection that never sends its ConnectRequest
//! is closed after ZooKeeper's sessionless timeout (10 s); a client that pipelines
//! getData of a 1 MB znode and never reads the replies is disconnected once 64 MiB of
//! replies wait for it.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use strata_coordinator::client::Client;
use strata_coordinator::jute::Writer;
use strata_coordinator::proto::{Acl, op};
use support::Ensemble;
use support::wait::eventually;

fn frame(w: &Writer) -> Vec<u8> {
    let mut out = (w.buf.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&w.buf);
    out
}

/// Reads until the server closes the connection; the bytes read, or `None` if it is still
/// open after `limit`.
fn read_to_close(s: &mut TcpStream, limit: Duration) -> Option<usize> {
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 20];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return Some(total),
            Ok(n) => total += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(total),
        }
    }
    None
}

#[test]
fn a_connection_that_never_sends_its_connect_request_is_closed() {
    let zk = Ensemble::standalone("4lw.commands.whitelist=*");
    let addr = zk.servers[0].addr();
    eventually("the server accepting clients", || {
        TcpStream::connect(&addr).map_err(|e| e.to_string())
    });
    let started = Instant::now();
    let mut silent = TcpStream::connect(&addr).unwrap();
    assert!(
        read_to_close(&mut silent, Duration::from_secs(30)).is_some(),
        "closed within 30 s"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "not before the sessionless timeout: {:?}",
        started.elapsed()
    );
    eventually("the expiry counted in mntr", || {
        match mntr(&zk, "zk_sessionless_connections_expired")? {
            0 => Err("0".to_string()),
            n => Ok(n),
        }
    });
}

/// A counter of `mntr`; `Err` until it is there.
fn mntr(zk: &Ensemble, key: &str) -> Result<u64, String> {
    let text = zk.four_letter(0, "mntr");
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .ok_or_else(|| format!("{key} not in mntr:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_disconnected_at_64_mib_of_replies() {
    let zk = Ensemble::standalone("4lw.commands.whitelist=*");
    let addr = zk.servers[0].addr();
    let client = support::wait::eventually_async("a session", async || {
        Client::connect(&addr, 10_000)
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    let big = vec![7u8; 1_000_000];
    client
        .create("/big", &big, &Acl::world_anyone(), 0)
        .await
        .unwrap();

    let addr2 = addr.clone();
    let (closed, requests) = tokio::task::spawn_blocking(move || {
        let mut raw = TcpStream::connect(&addr2).unwrap();
        let mut connect = Writer::new();
        connect.i32(0).i64(0).i32(30_000).i64(0).buffer(&[0u8; 16]);
        raw.write_all(&frame(&connect)).unwrap();
        let mut len = [0u8; 4];
        raw.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        raw.read_exact(&mut body).unwrap();
        // 300 getData of /big (300 MB of replies), none of them read; then a ping every
        // 200 ms until writing fails because the server has closed the connection.
        let get = |xid: i32| {
            let mut w = Writer::new();
            w.i32(xid).i32(op::GET_DATA).string("/big").bool(false);
            frame(&w)
        };
        let mut sent = 0;
        for xid in 1..=300 {
            if raw.write_all(&get(xid)).is_err() {
                return (true, sent);
            }
            sent += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut ping = Writer::new();
        ping.i32(-2).i32(op::PING);
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            if raw.write_all(&frame(&ping)).is_err() {
                return (true, sent);
            }
        }
        (false, sent)
    })
    .await
    .unwrap();
    assert!(
        closed,
        "a client that read none of the replies to {requests} getData is still connected:\n{}",
        zk.servers[0].log()
    );
    let peak = zk.servers[0].peak_rss_kib();
    assert!(
        peak < 200 * 1024,
        "the server's peak RSS reached {peak} KiB holding replies for one client"
    );
    assert!(mntr(&zk, "zk_slow_connections_dropped").unwrap() >= 1);
    // Everyone else is served throughout.
    let (data, _) = client.get("/big").await.unwrap();
    assert_eq!(data.len(), 1_000_000);
}
