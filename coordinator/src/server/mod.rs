//! The client-facing server: accept loop, connections, the request processor, four-letter
//! words and the Prometheus endpoint.

pub mod connection;
pub mod fourlw;
pub mod ops;
pub mod processor;
pub mod reply;
pub mod response;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use strata_tls::TlsServer;

use crate::config::Config;
use processor::{Event, Processor, Refusal};

/// Bind the client port, open the data directories, start replication, then serve
/// clients until the processor stops. Standalone and ensemble servers take the same path:
/// a standalone server is an ensemble of one voter.
///
/// The ports are bound first, as ZooKeeper binds them before it loads its database: a
/// port another process holds stops the server at once, naming the address, and no
/// connection this server makes to its peers can take a port it is about to listen on.
/// Clients are accepted once the server can answer them; a standalone server first
/// applies everything in its log.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    let listeners = bind_listeners(&cfg).await?;
    let (mut replication, tree) = crate::ensemble::start(cfg.clone()).await?;
    let mut processor = Processor::new(cfg.clone(), tree, replication.proposals.clone());
    if cfg.is_standalone() && !processor.until_serving(&mut replication.events).await {
        anyhow::bail!("replication stopped before this server could serve");
    }
    // ZooKeeper's globalOutstandingLimit: requests queued towards the processor before
    // every connection waits to read more (backpressure).
    let (tx, rx) = mpsc::channel(cfg.global_outstanding_limit);
    serve_listeners(listeners, &cfg, tx);
    processor.run(rx, replication.events).await
}

/// The client ports (plaintext, TLS) and, if one is configured, the metrics port.
pub struct Listeners {
    client: Option<TcpListener>,
    secure: Option<(TcpListener, Arc<TlsServer>)>,
    metrics: Option<TcpListener>,
}

/// Bind the client port and the metrics port. The client port is the server's reason to
/// exist, so failing to bind it is fatal; the metrics port is auxiliary, and as with
/// ZooKeeper's admin server a failed bind is a warning and the server goes on without it.
pub async fn bind_listeners(cfg: &Config) -> anyhow::Result<Listeners> {
    let client = match cfg.client_addr() {
        None => None,
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("client port {addr}"))?,
        ),
    };
    let secure = match &cfg.secure_client {
        None => None,
        Some(secure) => {
            // The key store is read before the port is taken: a broken one stops the
            // server with its reason.
            let tls = TlsServer::new(secure.tls.clone())
                .map_err(|e| anyhow::anyhow!("secureClientPort: {e}"))?;
            let addr = secure.addr();
            let socket = TcpListener::bind(addr)
                .await
                .with_context(|| format!("secure client port {addr}"))?;
            Some((socket, Arc::new(tls)))
        }
    };
    let metrics = match cfg.metrics_addr {
        None => None,
        Some(addr) => match TcpListener::bind(addr).await {
            Ok(metrics) => Some(metrics),
            Err(e) => {
                tracing::warn!("metrics port {addr}: {e}; serving without metrics");
                None
            }
        },
    };
    Ok(Listeners {
        client,
        secure,
        metrics,
    })
}

/// Accept clients (and metrics scrapes) in the background, handing them to `tx`.
pub fn serve_listeners(listeners: Listeners, cfg: &Config, tx: mpsc::Sender<Event>) {
    let per_ip: PerIp = Arc::default();
    let counter: ConnCounter = Arc::default();
    let budget = connection::request_budget();
    if let Some(client) = listeners.client {
        if let Ok(addr) = client.local_addr() {
            tracing::info!("serving clients on {addr}");
        }
        let accept = accept_loop(
            client,
            None,
            tx.clone(),
            cfg.max_client_cnxns,
            per_ip.clone(),
            counter.clone(),
            budget.clone(),
        );
        tokio::spawn(accept);
    }
    if let Some((secure, tls)) = listeners.secure {
        if let Ok(addr) = secure.local_addr() {
            tracing::info!("serving TLS clients on {addr}");
        }
        let accept = accept_loop(
            secure,
            Some(tls),
            tx.clone(),
            cfg.max_client_cnxns,
            per_ip,
            counter,
            budget,
        );
        tokio::spawn(accept);
    }
    if let Some(metrics) = listeners.metrics {
        if let Ok(addr) = metrics.local_addr() {
            tracing::info!("serving metrics on http://{addr}/metrics");
        }
        tokio::spawn(serve_metrics(metrics, tx.clone()));
    }
}

/// Connections open per client address, over both client ports (`maxClientCnxns`).
type PerIp = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// The last connection number given, shared by both client ports so numbers are unique.
type ConnCounter = Arc<AtomicU64>;

async fn accept_loop(
    listener: TcpListener,
    tls: Option<Arc<TlsServer>>,
    events: mpsc::Sender<Event>,
    max_per_ip: usize,
    per_ip: PerIp,
    counter: ConnCounter,
    budget: connection::RequestBudget,
) {
    loop {
        let Ok((stream, remote)) = listener.accept().await else {
            continue;
        };
        {
            let mut m = per_ip.lock().expect("not poisoned");
            let n = m.entry(remote.ip()).or_default();
            if max_per_ip != 0 && *n >= max_per_ip {
                tracing::warn!(%remote, "too many connections from this address (maxClientCnxns)");
                let _ = events.try_send(Event::Refused(Refusal::TooManyFromAddress));
                continue;
            }
            *n += 1;
        }
        let conn = counter.fetch_add(1, Ordering::Relaxed) + 1;
        let (events, per_ip, tls) = (events.clone(), per_ip.clone(), tls.clone());
        let budget = budget.clone();
        tokio::spawn(async move {
            let _ = match tls {
                None => connection::serve(stream, remote, conn, events, budget).await,
                Some(tls) => {
                    connection::serve_tls(stream, &tls, remote, conn, events, budget).await
                }
            };
            let mut m = per_ip.lock().expect("not poisoned");
            if let Some(n) = m.get_mut(&remote.ip()) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&remote.ip());
                }
            }
        });
    }
}

/// A minimal HTTP/1.0 responder for `GET /metrics`; Prometheus needs nothing more.
async fn serve_metrics(listener: TcpListener, events: mpsc::Sender<Event>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let events = events.clone();
        tokio::spawn(async move {
            // Read the request head (it may arrive in pieces), at most 4 KiB.
            let mut buf = Vec::with_capacity(4096);
            let mut chunk = [0u8; 1024];
            while buf.len() < 4096 && !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                let read = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    stream.read(&mut chunk),
                )
                .await;
                match read {
                    Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => break,
                }
            }
            let request = String::from_utf8_lossy(&buf);
            let (status, body) = if request.starts_with("GET /metrics") {
                let (tx, rx) = oneshot::channel();
                let _ = events.send(Event::Metrics { reply: tx }).await;
                ("200 OK", rx.await.unwrap_or_default())
            } else {
                ("404 Not Found", String::from("not found\n"))
            };
            let head = format!(
                "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
