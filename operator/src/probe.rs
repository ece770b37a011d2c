//! The readiness checks `strata-operator probe` runs inside broker and coordinator pods.
//!
//! A TCP accept only says a process lives. Serving means more: a broker must have been
//! described the cluster by the controller (else it answers Metadata without itself and
//! refuses leadership), a coordinator must be in the quorum (else it takes no sessions).
//! Both say so on their own ports; these checks ask, and the verdict is a sentence the
//! kubelet shows in the pod's events.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::controller::ensemble::srvr_mode;

const TIMEOUT: Duration = Duration::from_secs(3);
/// Largest answer read: a broker's metrics grow with its partitions and groups.
const MAX_ANSWER_BYTES: u64 = 16 * 1024 * 1024;

/// Pure: whether a broker's Prometheus text has `strata_broker_ready 1`.
pub fn broker_ready(metrics: &str) -> bool {
    metrics.lines().any(|line| {
        let mut fields = line.split_whitespace();
        fields.next() == Some("strata_broker_ready")
            && fields.next().and_then(|v| v.parse::<f64>().ok()) == Some(1.0)
    })
}

/// Pure: whether a `srvr` answer comes from a member of the quorum.
pub fn coordinator_in_quorum(srvr: &str) -> bool {
    matches!(
        srvr_mode(srvr),
        Some("leader" | "follower" | "observer" | "standalone")
    )
}

/// Sends `request` to 127.0.0.1:`port` and reads the whole answer.
fn ask(port: u16, request: &[u8]) -> Result<String, String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        TcpStream::connect_timeout(&address, TIMEOUT).map_err(|e| format!("{address}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .and_then(|()| stream.write_all(request))
        .map_err(|e| format!("{address}: {e}"))?;
    let mut answer = String::new();
    stream
        .take(MAX_ANSWER_BYTES)
        .read_to_string(&mut answer)
        .map_err(|e| format!("{address}: {e}"))?;
    Ok(answer)
}

pub fn broker(metrics_port: u16, kafka_port: u16) -> Result<String, String> {
    let metrics = ask(
        metrics_port,
        b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
    )?;
    if !broker_ready(&metrics) {
        return Err("not ready: the controller has not described the cluster to this broker yet (strata_broker_ready is not 1)".into());
    }
    let address = SocketAddr::from(([127, 0, 0, 1], kafka_port));
    TcpStream::connect_timeout(&address, TIMEOUT)
        .map_err(|e| format!("not ready: Kafka port {address}: {e}"))?;
    Ok("ready: registered, described by the controller, Kafka port open".into())
}

pub fn coordinator(client_port: u16) -> Result<String, String> {
    let answer = ask(client_port, b"srvr")?;
    if coordinator_in_quorum(&answer) {
        let mode = srvr_mode(&answer).unwrap_or_default();
        Ok(format!("ready: {mode}"))
    } else {
        Err(format!("not in the quorum: {}", answer.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_is_ready_only_when_its_metric_says_one() {
        let text = "# HELP strata_broker_ready 1 once the controller has described the cluster to this broker.\n\
                    # TYPE strata_broker_ready gauge\n\
                    strata_broker_ready 1\n";
        assert!(broker_ready(text));
        assert!(!broker_ready(&text.replace("ready 1\n", "ready 0\n")));
        // The HELP line mentions "1" but is not the sample.
        assert!(!broker_ready(
            "# HELP strata_broker_ready 1 once the controller has described the cluster\n"
        ));
        assert!(!broker_ready("strata_broker_ready_total 1\n"));
        assert!(!broker_ready(""));
    }

    #[test]
    fn a_coordinator_is_ready_in_any_quorum_role() {
        for mode in ["leader", "follower", "observer", "standalone"] {
            assert!(coordinator_in_quorum(&format!(
                "Zookeeper version: 3.9\nMode: {mode}\n"
            )));
        }
        assert!(!coordinator_in_quorum(
            "This ZooKeeper instance is not currently serving requests\n"
        ));
        assert!(!coordinator_in_quorum(""));
    }

    #[test]
    fn probes_say_why_a_closed_port_is_not_ready() {
        // A port nothing listens on: bind one, learn its number, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(broker(port, port).unwrap_err().contains("127.0.0.1"));
        assert!(coordinator(port).unwrap_err().contains("127.0.0.1"));
    }

    #[test]
    fn broker_probe_reads_the_metrics_endpoint() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            // The metrics request, then the Kafka port connect.
            let (mut socket, _) = listener.accept().unwrap();
            let mut head = [0u8; 64];
            let n = socket.read(&mut head).unwrap();
            assert!(head[..n].starts_with(b"GET /metrics "));
            socket
                .write_all(b"HTTP/1.0 200 OK\r\n\r\nstrata_broker_ready 1\n")
                .unwrap();
            drop(socket);
            let _ = listener.accept().unwrap();
        });
        assert!(broker(port, port).unwrap().starts_with("ready"));
        server.join().unwrap();
    }
}
