//! A znode created or set with null data reads back with jute length -1, not as an empty
//! array, on every server and after every way state reaches a server: the log replayed
//! on restart, a snapshot, and a leader's SNAP. Checked on the wire, byte for byte.

mod support;

use std::time::Duration;

use strata_coordinator::client::Client;
use strata_coordinator::jute::{Reader, Writer};
use strata_coordinator::proto::{Acl, op, write_acls};
use support::Ensemble;

/// `create` with the data field written as given (`None`: length -1).
async fn create(c: &Client, path: &str, data: Option<&[u8]>) {
    let mut w = Writer::new();
    w.string(path).nullable_buffer(data);
    write_acls(&mut w, &Acl::world_anyone());
    w.i32(0);
    c.call(op::CREATE, &w.buf).await.expect("create");
}

/// The data field of a `getData` reply exactly as it came: `None` for length -1.
async fn get(c: &Client, path: &str) -> Option<Vec<u8>> {
    let mut w = Writer::new();
    w.string(path).bool(false);
    let body = c.call(op::GET_DATA, &w.buf).await.expect("getData");
    Reader::new(&body).read_buffer().expect("a buffer")
}

async fn connect(addr: &str) -> Client {
    for _ in 0..300 {
        if let Ok(c) = Client::connect(addr, 6000).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to {addr}");
}

async fn check_all(e: &Ensemble) {
    for s in &e.servers {
        let c = connect(&s.addr()).await;
        let mut w = Writer::new();
        w.string("/");
        c.call(op::SYNC, &w.buf).await.expect("sync");
        assert_eq!(get(&c, "/null").await, None, "server {}", s.id);
        assert_eq!(get(&c, "/empty").await, Some(vec![]), "server {}", s.id);
        assert_eq!(get(&c, "/set-null").await, None, "server {}", s.id);
        assert_eq!(
            get(&c, "/data").await,
            Some(b"d".to_vec()),
            "server {}",
            s.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_data_survives_the_log_snapshots_and_snap_on_every_server() {
    // A snapshot every few transactions, so restarts load snapshots as well as logs.
    let mut e = Ensemble::start(3, "snapCount=4");
    let leader = e.wait_leader();
    let away = (leader + 2) % 3;
    e.kill(away);
    let c = connect(&e.servers[(leader + 1) % 3].addr()).await;
    create(&c, "/null", None).await;
    create(&c, "/empty", Some(b"")).await;
    create(&c, "/set-null", Some(b"x")).await;
    let mut w = Writer::new();
    w.string("/set-null").nullable_buffer(None).i32(-1);
    c.call(op::SET_DATA, &w.buf).await.expect("setData(null)");
    create(&c, "/data", Some(b"d")).await;
    for i in 0..40 {
        create(&c, &format!("/filler{i}"), None).await;
    }
    drop(c);
    // The server that was away catches up from the leader, by SNAP: it holds no
    // transaction and the leader's history now starts at a snapshot. Then every server
    // restarts from its own disk.
    e.restart(away);
    e.wait_serving(away, Duration::from_secs(30));
    check_all(&e).await;
    assert!(
        e.servers[away].log().contains("SNAP at"),
        "the server that was away caught up by SNAP"
    );
    for i in 0..3 {
        e.restart(i);
    }
    for i in 0..3 {
        e.wait_serving(i, Duration::from_secs(30));
    }
    check_all(&e).await;
}
