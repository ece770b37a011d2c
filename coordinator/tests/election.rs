//! Requests while the ensemble has no leader are answered as ZooKeeper answers them: the
//! connection is lost (CONNECTIONLOSS) and the client retries; no request hangs, and none
//! is answered as if there were a quorum.

mod support;

use std::time::Duration;

use support::Ensemble;
use zookeeper_client as zk;

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_flight_when_the_quorum_goes_gets_connection_loss_then_the_session_goes_on() {
    let mut e = Ensemble::start(3, "");
    let leader = e.wait_leader();
    let follower = (leader + 1) % 3;
    let third = (leader + 2) % 3;
    let c = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(20))
        .connect(&e.servers[follower].addr())
        .await
        .expect("connect");
    let session = c.session_id();
    c.create("/before", b"kept", &persistent()).await.unwrap();

    // The leader and the other follower stop answering. The follower forwards the write
    // to a leader that never commits it, notices within syncLimit, and drops its clients.
    e.pause(leader);
    e.pause(third);
    let write = tokio::time::timeout(
        Duration::from_secs(30),
        c.create("/during", b"", &persistent()),
    )
    .await
    .expect("the write is answered, not left hanging");
    assert!(
        matches!(write, Err(zk::Error::ConnectionLoss)),
        "a write without a quorum: {write:?}"
    );
    // With no quorum, a read is not answered from a server that lost its leader.
    let read = tokio::time::timeout(Duration::from_secs(2), c.get_data("/before")).await;
    assert!(
        !matches!(read, Ok(Ok(_))),
        "a read without a quorum was answered: {read:?}"
    );

    e.resume(leader);
    e.resume(third);
    let mut resumed = false;
    for _ in 0..300 {
        match c.create("/after", b"", &persistent()).await {
            Ok(_) | Err(zk::Error::NodeExists) => {
                resumed = true;
                break;
            }
            Err(zk::Error::ConnectionLoss) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!("after the quorum came back: {other:?}"),
        }
    }
    assert!(resumed, "writes resume once a quorum is back");
    assert_eq!(c.session_id(), session, "on the same session");
    assert_eq!(c.get_data("/before").await.unwrap().0, b"kept");
}
