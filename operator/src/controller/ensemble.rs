//! Which coordinator leads the ensemble, asked the ZooKeeper way: the `srvr` four-letter
//! word on the client port answers `Mode: leader` on exactly one member.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::resources::{COORDINATOR_CLIENT_PORT, ClusterNames, Component};

/// Largest `srvr` answer read; the real one is a few hundred bytes.
const MAX_SRVR_BYTES: u64 = 16 * 1024;

/// Pure: the `Mode:` line of a `srvr` answer (`leader`, `follower`, `observer`, `standalone`).
pub fn srvr_mode(answer: &str) -> Option<&str> {
    answer
        .lines()
        .find_map(|line| line.strip_prefix("Mode:"))
        .map(str::trim)
}

pub async fn ask_mode(address: &str, timeout: Duration) -> Option<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(address).await.ok()?;
        stream.write_all(b"srvr").await.ok()?;
        let mut answer = String::new();
        stream
            .take(MAX_SRVR_BYTES)
            .read_to_string(&mut answer)
            .await
            .ok()?;
        srvr_mode(&answer).map(str::to_string)
    };
    tokio::time::timeout(timeout, exchange).await.ok().flatten()
}

/// The pod name of the leader (or of a standalone single member), if any member says so.
/// Members that cannot be reached (the operator outside the cluster network, pods not
/// running) simply do not answer.
pub async fn find_leader(names: &ClusterNames, members: i32) -> Option<String> {
    for ordinal in 0..members {
        let address = format!(
            "{}:{COORDINATOR_CLIENT_PORT}",
            names.pod_dns(Component::Coordinator, ordinal)
        );
        if let Some("leader" | "standalone") =
            ask_mode(&address, Duration::from_secs(2)).await.as_deref()
        {
            return Some(format!(
                "{}-{ordinal}",
                names.component(Component::Coordinator)
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_line_is_found() {
        let answer = "Zookeeper version: 3.8.4\nLatency min/avg/max: 0/0.0/0\nReceived: 3\nSent: 2\n\
                      Connections: 1\nOutstanding: 0\nZxid: 0x100000000\nMode: follower\nNode count: 5\n";
        assert_eq!(srvr_mode(answer), Some("follower"));
        assert_eq!(srvr_mode("Mode: leader\n"), Some("leader"));
        assert_eq!(
            srvr_mode("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
    }

    #[tokio::test]
    async fn leader_is_asked_over_tcp() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut word = [0u8; 4];
            socket.read_exact(&mut word).await.unwrap();
            assert_eq!(&word, b"srvr");
            socket
                .write_all(b"Zookeeper version: 3.9\nMode: leader\n")
                .await
                .unwrap();
        });
        assert_eq!(
            ask_mode(&address, Duration::from_secs(10)).await.as_deref(),
            Some("leader")
        );
    }
}
