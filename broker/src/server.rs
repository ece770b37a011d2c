//! The socket server: one accept loop per listener, and one task per connection.
//!
//! A connection permit is taken *before* accepting (mini-redis's `limit_connections`):
//! with `max.connections` connections open the accept loops wait instead of accepting
//! and closing. A connection reads 4-byte big-endian length-prefixed frames and answers
//! them in order, one at a time, as Kafka does (it mutes a channel while a request is in
//! flight), so responses can never be reordered. A frame larger than
//! `socket.request.max.bytes`, a negative length, or a request that does not decode
//! closes that connection with a logged reason; nothing else is affected.
//!
//! On shutdown the accept loops stop, every connection finishes the request it is
//! working on and closes, and [`serve_all`] returns only when all of them have — so logs
//! are never closed under a request (bounded by a drain timeout).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tracing::{debug, info, warn};

use crate::Broker;
use crate::api::{self, RequestError};

/// How long a shutdown waits for open connections to finish their requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves every listener until `shutdown` turns true, then drains connections.
pub async fn serve_all(
    broker: Arc<Broker>,
    listeners: Vec<(String, TcpListener)>,
    shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(broker.config.max_connections));
    // Each connection task holds a sender; when all are dropped, the drain is done.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut loops = Vec::new();
    for (name, listener) in listeners {
        if let Ok(address) = listener.local_addr() {
            info!(listener = %name, %address, "listening for Kafka clients");
        }
        loops.push(tokio::spawn(accept_loop(
            broker.clone(),
            name,
            listener,
            permits.clone(),
            shutdown.clone(),
            done_tx.clone(),
        )));
    }
    drop(done_tx);
    for l in loops {
        let _ = l.await;
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, done_rx.recv())
        .await
        .is_err()
    {
        warn!("connections still open after the drain timeout; closing anyway");
    }
}

async fn accept_loop(
    broker: Arc<Broker>,
    listener_name: String,
    listener: TcpListener,
    permits: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let listener_name: Arc<str> = Arc::from(listener_name);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("semaphore never closed"),
            _ = shutdown.changed() => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => {
                info!(listener = %listener_name, "no longer accepting connections");
                return;
            }
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let broker = broker.clone();
        let shutdown = shutdown.clone();
        let done = done.clone();
        let listener_name = listener_name.clone();
        tokio::spawn(async move {
            broker.metrics.connections.fetch_add(1, Ordering::Relaxed);
            broker
                .metrics
                .connections_total
                .fetch_add(1, Ordering::Relaxed);
            handle_connection(&broker, socket, peer, &listener_name, shutdown, permit).await;
            broker.metrics.connections.fetch_sub(1, Ordering::Relaxed);
            drop(done);
        });
    }
}

async fn handle_connection(
    broker: &Broker,
    socket: TcpStream,
    peer: SocketAddr,
    listener: &str,
    mut shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let (reader, mut writer) = socket.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let max = broker.config.socket_request_max_bytes;
    loop {
        let size = tokio::select! {
            size = reader.read_i32() => match size {
                Ok(size) => size,
                Err(_) => return, // closed by the client
            },
            _ = shutdown.changed() => return,
        };
        if size < 0 || size as usize > max {
            broker
                .metrics
                .invalid_frames
                .fetch_add(1, Ordering::Relaxed);
            warn!(
                %peer,
                size,
                max,
                "closing connection: request size is outside 0..=socket.request.max.bytes"
            );
            return;
        }
        // Read into spare capacity rather than a zeroed buffer: produce requests are
        // often around a megabyte.
        let size = size as usize;
        let mut frame = BytesMut::with_capacity(size);
        while frame.len() < size {
            let want = size - frame.len();
            let read = (&mut reader).take(want as u64).read_buf(&mut frame).await;
            match read {
                Ok(0) | Err(_) => {
                    debug!(%peer, "connection closed mid-request");
                    return;
                }
                Ok(_) => {}
            }
        }
        match api::handle_request(broker, frame.freeze(), peer, listener).await {
            Ok(Some(response)) => {
                if writer.write_all(&response).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(RequestError::Close(reason)) => {
                broker
                    .metrics
                    .invalid_frames
                    .fetch_add(1, Ordering::Relaxed);
                warn!(%peer, reason = %reason, "closing connection");
                return;
            }
        }
    }
}
