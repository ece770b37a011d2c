//! The socket server: an accept loop with a connection cap, and one task per connection.
//!
//! A connection reads 4-byte big-endian length-prefixed frames and answers them in
//! order, one at a time, as Kafka does (it mutes a channel while a request is in
//! flight), so responses can never be reordered. A frame larger than
//! `socket.request.max.bytes`, a negative length, or a request that does not decode
//! closes that connection with a logged reason; nothing else is affected.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::Broker;
use crate::api::{self, RequestError};

/// Accepts connections until `shutdown` turns true.
pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let open = broker.metrics.connections.load(Ordering::Relaxed);
                if open as usize >= broker.config.max_connections {
                    broker.metrics.connections_rejected.fetch_add(1, Ordering::Relaxed);
                    warn!(%peer, open, "closing connection: max.connections reached");
                    continue;
                }
                let _ = socket.set_nodelay(true);
                let broker = broker.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    broker.metrics.connections.fetch_add(1, Ordering::Relaxed);
                    broker.metrics.connections_total.fetch_add(1, Ordering::Relaxed);
                    handle_connection(&broker, socket, peer, shutdown).await;
                    broker.metrics.connections.fetch_sub(1, Ordering::Relaxed);
                });
            }
            _ = shutdown.changed() => {
                info!("no longer accepting connections");
                return;
            }
        }
    }
}

async fn handle_connection(
    broker: &Broker,
    socket: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
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
        match api::handle_request(broker, frame.freeze(), peer).await {
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
