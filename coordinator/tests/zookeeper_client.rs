//! The `zookeeper-client` crate (which assumes a 3.9 server: create2, createContainer,
//! createTTL, addWatch) against a standalone server and a three-server ensemble.

mod support;

use std::time::Duration;

use support::Ensemble;
use zookeeper_client as zk;

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

async fn connect(addr: &str) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(6))
        .connect(addr)
        .await
        .expect("connect")
}

async fn crud_with_versions(c: &zk::Client) {
    let (stat, _) = c.create("/crud", b"v0", &persistent()).await.unwrap();
    assert_eq!(stat.version, 0);
    assert_eq!(stat.czxid, stat.mzxid);
    let (data, stat) = c.get_data("/crud").await.unwrap();
    assert_eq!((data.as_slice(), stat.data_length), (&b"v0"[..], 2));
    assert!(matches!(
        c.set_data("/crud", b"v1", Some(5)).await,
        Err(zk::Error::BadVersion)
    ));
    let stat2 = c.set_data("/crud", b"v1", Some(0)).await.unwrap();
    assert_eq!(stat2.version, 1);
    assert!(stat2.mzxid > stat.mzxid);
    assert!(matches!(
        c.create("/crud", b"", &persistent()).await,
        Err(zk::Error::NodeExists)
    ));
    assert!(matches!(c.get_data("/nope").await, Err(zk::Error::NoNode)));
    c.create("/crud/child", b"", &persistent()).await.unwrap();
    assert!(matches!(
        c.delete("/crud", None).await,
        Err(zk::Error::NotEmpty)
    ));
    let (children, stat) = c.get_children("/crud").await.unwrap();
    assert_eq!(
        (children, stat.num_children, stat.cversion),
        (vec!["child".to_string()], 1, 1)
    );
    assert!(matches!(
        c.delete("/crud/child", Some(3)).await,
        Err(zk::Error::BadVersion)
    ));
    c.delete("/crud/child", Some(0)).await.unwrap();
    c.delete("/crud", None).await.unwrap();
    assert_eq!(c.check_stat("/crud").await.unwrap(), None);
}

async fn sequential_ephemeral_container_ttl(c: &zk::Client, addr: &str) {
    c.create("/seq", b"", &persistent()).await.unwrap();
    let seq = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    let (_, a) = c.create("/seq/n-", b"", &seq).await.unwrap();
    let (_, b) = c.create("/seq/n-", b"", &seq).await.unwrap();
    assert_eq!((a.into_i64(), b.into_i64()), (0, 1));
    assert_eq!(
        c.list_children("/seq").await.unwrap().len(),
        2,
        "sequential children"
    );

    let other = connect(addr).await;
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    let (stat, _) = other.create("/eph", b"", &eph).await.unwrap();
    assert_eq!(stat.ephemeral_owner, other.session_id().0);
    assert_eq!(
        other.list_ephemerals("/").await.unwrap(),
        vec!["/eph".to_string()]
    );
    let watcher = c.check_and_watch_stat("/eph").await.unwrap().1;
    drop(other);
    let ev = tokio::time::timeout(Duration::from_secs(20), watcher.changed())
        .await
        .expect("ephemeral removed when its session closed");
    assert_eq!(ev.event_type, zk::EventType::NodeDeleted);

    let container = zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());
    c.create("/box", b"", &container).await.unwrap();
    let (_, stat) = c.get_data("/box").await.unwrap();
    assert_eq!(stat.ephemeral_owner, i64::MIN, "container marker");
    let ttl = zk::CreateMode::Persistent
        .with_acls(zk::Acls::anyone_all())
        .with_ttl(Duration::from_millis(300));
    c.create("/ttl", b"", &ttl).await.unwrap();
    let mut gone = false;
    for _ in 0..100 {
        if c.check_stat("/ttl").await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "TTL node expired");
}

async fn watches_fire_once(c: &zk::Client) {
    c.create("/w", b"", &persistent()).await.unwrap();
    let (_, _, data_watch) = c.get_and_watch_data("/w").await.unwrap();
    let (_, _, child_watch) = c.get_and_watch_children("/w").await.unwrap();
    let mut recursive = c
        .watch("/w", zk::AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    c.set_data("/w", b"1", None).await.unwrap();
    c.create("/w/c", b"", &persistent()).await.unwrap();
    let ev = data_watch.changed().await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeDataChanged, "/w")
    );
    let ev = child_watch.changed().await;
    assert_eq!(ev.event_type, zk::EventType::NodeChildrenChanged);
    let ev = recursive.changed().await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeDataChanged, "/w")
    );
    let ev = recursive.changed().await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeCreated, "/w/c")
    );
    c.set_data("/w/c", b"x", None).await.unwrap();
    let ev = recursive.changed().await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeDataChanged, "/w/c")
    );
}

async fn multi_is_atomic(c: &zk::Client) {
    let mut w = c.new_multi_writer();
    w.add_create("/m1", b"", &persistent()).unwrap();
    w.add_check_version("/nope", 0).unwrap();
    assert!(w.commit().await.is_err());
    assert_eq!(c.check_stat("/m1").await.unwrap(), None, "rolled back");
    let mut w = c.new_multi_writer();
    w.add_create("/m1", b"a", &persistent()).unwrap();
    w.add_set_data("/m1", b"b", Some(0)).unwrap();
    w.add_create("/m1/x", b"", &persistent()).unwrap();
    let results = w.commit().await.unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(c.get_data("/m1").await.unwrap().0, b"b");
    let mut r = c.new_multi_reader();
    r.add_get_data("/m1").unwrap();
    r.add_get_children("/m1").unwrap();
    r.add_get_data("/nope").unwrap();
    let results = r.commit().await.unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(c.count_descendants_number("/m1").await.unwrap(), 1);
}

async fn acls_deny(c: &zk::Client, addr: &str) {
    c.auth("digest", b"alice:secret").await.unwrap();
    let acls = [zk::Acl::new(zk::Permission::ALL, zk::AuthId::authed())];
    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acls));
    c.create("/private", b"s", &opts).await.unwrap();
    assert_eq!(c.get_data("/private").await.unwrap().0, b"s");
    let (acl, _) = c.get_acl("/private").await.unwrap();
    assert_eq!(acl[0].scheme(), "digest");
    assert!(acl[0].id().starts_with("alice:"));
    let stranger = connect(addr).await;
    assert!(matches!(
        stranger.get_data("/private").await,
        Err(zk::Error::NoAuth)
    ));
    assert!(matches!(
        stranger.set_data("/private", b"x", None).await,
        Err(zk::Error::NoAuth)
    ));
    let users = c.list_auth_users().await.unwrap();
    assert!(
        users
            .iter()
            .any(|u| u.scheme() == "digest" && u.user().starts_with("alice:"))
    );
    let read_only = [zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone())];
    c.set_acl("/private", &read_only, None).await.unwrap();
    assert_eq!(stranger.get_data("/private").await.unwrap().0, b"s");
    assert!(matches!(
        stranger.set_data("/private", b"x", None).await,
        Err(zk::Error::NoAuth)
    ));
}

async fn all(addr: &str) {
    let c = connect(addr).await;
    crud_with_versions(&c).await;
    sequential_ephemeral_container_ttl(&c, addr).await;
    watches_fire_once(&c).await;
    multi_is_atomic(&c).await;
    acls_deny(&c, addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_client_against_standalone() {
    let e = Ensemble::standalone("");
    all(&e.servers[0].addr()).await;
    // As a standalone ZooKeeper: /zookeeper/config exists, empty, read-only.
    let c = connect(&e.servers[0].addr()).await;
    let (data, stat) = c.get_data("/zookeeper/config").await.unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b""[..], 0));
    let mut children = c.list_children("/zookeeper").await.unwrap();
    children.sort();
    assert_eq!(children, ["config", "quota"]);
    assert_eq!(
        c.set_data("/zookeeper/config", b"x", None).await,
        Err(zk::Error::NoAuth)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_client_against_three_servers() {
    let e = Ensemble::start(3, "");
    // Talk to a follower: writes are forwarded, reads are local.
    let leader = e.wait_leader();
    let follower = (leader + 1) % 3;
    all(&e.servers[follower].addr()).await;
    // Every server ends with the same tree.
    for i in 0..3 {
        let c = connect(&e.servers[i].addr()).await;
        c.sync("/").await.unwrap();
        assert_eq!(c.get_data("/m1").await.unwrap().0, b"b", "server {}", i + 1);
        // /zookeeper/config holds the membership as ZooKeeper 3.9 writes it for a static
        // configuration (read off Apache ZooKeeper: one line per server with its role,
        // then version=0; data version -1); nobody may write it.
        let (data, stat) = c.get_data("/zookeeper/config").await.unwrap();
        let text = String::from_utf8(data).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len(), 4, "{text}");
        for (j, line) in lines[..3].iter().enumerate() {
            let id = j + 1;
            assert!(
                line.starts_with(&format!("server.{id}=127.0.0.{id}:"))
                    && line.ends_with(":participant"),
                "{text}"
            );
        }
        assert_eq!((lines[3], stat.version), ("version=0", -1));
        assert_eq!(
            c.set_data("/zookeeper/config", b"x", None).await,
            Err(zk::Error::NoAuth)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_gets_an_error_not_a_crash() {
    let e = Ensemble::standalone("");
    let c = connect(&e.servers[0].addr()).await;
    let big = vec![7u8; 2 * 1024 * 1024];
    assert!(c.create("/big", &big, &persistent()).await.is_err());
    // The server is fine and so is a later request.
    c.create("/small", b"ok", &persistent()).await.unwrap();
    assert_eq!(e.four_letter(0, "ruok"), "imok");
}

/// Wait until the client has lost its connection and come back on the same session.
async fn wait_reconnected(states: &mut zk::StateWatcher) {
    let mut lost = false;
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match states.changed().await {
                zk::SessionState::Disconnected => lost = true,
                zk::SessionState::SyncConnected if lost => return,
                zk::SessionState::SyncConnected => {}
                other => panic!("session ended: {other:?}"),
            }
        }
    })
    .await
    .expect("reconnected within 30 s");
}

/// Data, exists and child watches, then a connection that breaks. The client re-sends
/// its watches with setWatches on the new connection; the changes are made only after
/// that, by another session, so each event below can only come from a watch setWatches
/// put back. (Persistent watches are left out: zookeeper-client 0.11.2 never re-sends
/// them, its `resend_watches` computes `index.max(index)` and so always sends the
/// three-list setWatches. The Java client's setWatches2 covers them, in
/// tests/java/zk-watches-across-restart.sh.)
async fn watches_come_back_through_set_watches(e: &mut Ensemble, via: usize, break_it: usize) {
    let c = connect(&e.servers[via].addr()).await;
    let session = c.session_id();
    c.create("/sw", b"0", &persistent()).await.unwrap();
    c.create("/sw/a", b"", &persistent()).await.unwrap();
    let (_, _, data_watch) = c.get_and_watch_data("/sw").await.unwrap();
    let (_, _, child_watch) = c.get_and_watch_children("/sw").await.unwrap();
    let (_, exist_watch) = c.check_and_watch_stat("/sw-later").await.unwrap();
    let mut states = c.state_watcher();
    e.restart(break_it);
    wait_reconnected(&mut states).await;
    assert_eq!(c.session_id(), session);

    let survivor = (break_it + 1) % e.servers.len();
    let other = connect(&e.servers[survivor].addr()).await;
    other.set_data("/sw", b"1", None).await.unwrap();
    other.create("/sw/b", b"", &persistent()).await.unwrap();
    other.create("/sw-later", b"", &persistent()).await.unwrap();
    for (watch, kind, path) in [
        (data_watch, zk::EventType::NodeDataChanged, "/sw"),
        (child_watch, zk::EventType::NodeChildrenChanged, "/sw"),
        (exist_watch, zk::EventType::NodeCreated, "/sw-later"),
    ] {
        let ev = tokio::time::timeout(Duration::from_secs(20), watch.changed())
            .await
            .unwrap_or_else(|_| panic!("{kind:?} on {path} within 20 s"));
        assert_eq!((ev.event_type, ev.path.as_str()), (kind, path));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_survive_a_server_restart_through_set_watches() {
    let mut e = Ensemble::standalone("");
    watches_come_back_through_set_watches(&mut e, 0, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_follow_a_session_to_another_server_through_set_watches() {
    let mut e = Ensemble::start(3, "");
    let leader = e.wait_leader();
    let follower = (leader + 1) % 3;
    // The client's server restarts; the client moves to one of the others.
    watches_come_back_through_set_watches(&mut e, follower, follower).await;
}
