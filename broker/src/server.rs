//! The socket server: one accept loop per listener, and one task per connection.
//!
//! A connection permit is taken *before* accepting (mini-redis's `limit_connections`):
//! with `max.connections` connections open the accept loops wait instead of accepting
//! and closing. A client address with `max.connections.per.ip` open (or its override in
//! `max.connections.per.ip.overrides`) has further connections closed at accept, as
//! Kafka's `ConnectionQuotas` does.
//!
//! On an `SSL` or `SASL_SSL` listener the connection first completes a TLS handshake
//! (within `connections.max.idle.ms`); a client certificate names its principal. On a
//! SASL listener every frame passes the connection's [`Authenticator`] until the client
//! has authenticated (and again when it re-authenticates); before that a frame may not
//! exceed `sasl.server.max.receive.size`.
//!
//! A connection reads 4-byte big-endian length-prefixed frames and answers them in order,
//! one at a time, as Kafka does (it mutes a channel while a request is in flight), so
//! responses can never be reordered and a client that pipelines requests without reading
//! the answers holds one request and one response, no more. A frame larger than
//! `socket.request.max.bytes`, a negative length, or a request that does not decode
//! closes that connection with a logged reason; nothing else is affected.
//!
//! Memory follows what arrives, not what a length prefix claims: a frame's buffer grows
//! as its bytes come in. With `queued.max.request.bytes` set, the bytes of all requests
//! held at once are bounded: a connection takes its frame's size from that pool before
//! reading the frame (at most the whole pool, so one large request still passes) and
//! gives it back when the response is written; while the pool is empty, connections wait
//! (Kafka mutes them likewise).
//!
//! `connections.max.idle.ms` bounds every wait on the client: for the next request to
//! start, for a started request to arrive whole, and for a response to be taken. Kafka
//! counts any byte as activity, so a client sending a byte a minute holds a connection
//! forever there; here it is closed once its request has taken longer than the idle time.
//!
//! On shutdown the accept loops stop, every connection finishes the request it is
//! working on and closes, and [`serve_all`] returns only when all of them have — so logs
//! are never closed under a request (bounded by a drain timeout).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tracing::{debug, info, warn};

use crate::Broker;
use crate::api::{self, Frames, RequestError};
use crate::network::Stream;
use crate::security::ListenerSecurity;
use crate::security::sasl::{Authenticator, SaslOutcome};

/// How long a shutdown waits for open connections to finish their requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound listener and how its connections are secured.
pub struct Listener {
    pub name: String,
    pub socket: TcpListener,
    pub security: ListenerSecurity,
}

/// Serves every listener until `shutdown` turns true, then drains connections.
pub async fn serve_all(
    broker: Arc<Broker>,
    listeners: Vec<Listener>,
    shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(broker.config.max_connections));
    let per_ip = Arc::new(PerIpLimits::new(
        broker.config.max_connections_per_ip,
        &broker.config.max_connections_per_ip_overrides,
    ));
    let pool = broker.config.queued_max_request_bytes.map(RequestPool::new);
    // Each connection task holds a sender; when all are dropped, the drain is done.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut loops = Vec::new();
    for listener in listeners {
        if let Ok(address) = listener.socket.local_addr() {
            info!(
                listener = %listener.name,
                %address,
                protocol = listener.security.protocol.name(),
                "listening for Kafka clients"
            );
        }
        loops.push(tokio::spawn(accept_loop(
            broker.clone(),
            listener,
            Limits {
                connections: permits.clone(),
                per_ip: per_ip.clone(),
                pool: pool.clone(),
            },
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

/// What every accept loop shares.
struct Limits {
    connections: Arc<Semaphore>,
    per_ip: Arc<PerIpLimits>,
    pool: Option<RequestPool>,
}

async fn accept_loop(
    broker: Arc<Broker>,
    listener: Listener,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let listener_name: Arc<str> = Arc::from(listener.name);
    let security = Arc::new(listener.security);
    loop {
        let permit = tokio::select! {
            permit = limits.connections.clone().acquire_owned() => permit.expect("semaphore never closed"),
            _ = shutdown.changed() => return,
        };
        let accepted = tokio::select! {
            accepted = listener.socket.accept() => accepted,
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
        let Some(ip_permit) = limits.per_ip.acquire(peer.ip()) else {
            broker
                .metrics
                .connections_refused_per_ip
                .fetch_add(1, Ordering::Relaxed);
            info!(%peer, "closing connection: max.connections.per.ip reached for this address");
            drop(socket);
            continue;
        };
        let _ = socket.set_nodelay(true);
        let broker = broker.clone();
        let pool = limits.pool.clone();
        let shutdown = shutdown.clone();
        let done = done.clone();
        let listener_name = listener_name.clone();
        let security = security.clone();
        tokio::spawn(async move {
            broker.metrics.connections.fetch_add(1, Ordering::Relaxed);
            broker
                .metrics
                .connections_total
                .fetch_add(1, Ordering::Relaxed);
            let connection = Connection {
                broker: &broker,
                peer,
                listener: &listener_name,
                pool,
                shutdown,
                _permits: (permit, ip_permit),
            };
            connection.run(socket, &security).await;
            broker.metrics.connections.fetch_sub(1, Ordering::Relaxed);
            drop(done);
        });
    }
}

/// One client connection and what it holds.
struct Connection<'a> {
    broker: &'a Broker,
    peer: SocketAddr,
    listener: &'a str,
    pool: Option<RequestPool>,
    shutdown: watch::Receiver<bool>,
    _permits: (OwnedSemaphorePermit, IpPermit),
}

impl Connection<'_> {
    fn idle(&self) -> Duration {
        Duration::from_millis(self.broker.config.connections_max_idle_ms)
    }

    fn idle_closed(&self) {
        self.broker
            .metrics
            .connections_idle_closed
            .fetch_add(1, Ordering::Relaxed);
        debug!(peer = %self.peer, "closing connection: idle beyond connections.max.idle.ms");
    }

    fn authentication_failed(&self, reason: &str) {
        self.broker
            .metrics
            .authentication_failures
            .fetch_add(1, Ordering::Relaxed);
        info!(peer = %self.peer, listener = %self.listener, %reason, "closing connection");
    }

    /// The TLS handshake (bounded by `connections.max.idle.ms`), then requests.
    async fn run(mut self, socket: TcpStream, security: &ListenerSecurity) {
        let mut principal = api::ANONYMOUS.to_string();
        let stream = match &security.tls {
            None => Stream::Plain(socket),
            Some(tls) => {
                let handshake = tls.acceptor().accept(socket);
                let result = tokio::select! {
                    r = tokio::time::timeout(self.idle(), handshake) => r,
                    _ = self.shutdown.changed() => return,
                };
                match result {
                    Ok(Ok(s)) => {
                        // A client certificate names the principal (SASL may replace it).
                        if let Some(cert) =
                            s.get_ref().1.peer_certificates().and_then(|c| c.first())
                        {
                            match security.certificate_principal(cert) {
                                Ok(p) => principal = p,
                                Err(reason) => return self.authentication_failed(&reason),
                            }
                        }
                        Stream::Tls(Box::new(s.into()))
                    }
                    Ok(Err(e)) => {
                        self.broker
                            .metrics
                            .tls_handshake_failures
                            .fetch_add(1, Ordering::Relaxed);
                        info!(peer = %self.peer, listener = %self.listener, error = %e, "closing connection: TLS handshake failed");
                        return;
                    }
                    Err(_) => return self.idle_closed(),
                }
            }
        };
        let authenticator = security.sasl.clone().map(Authenticator::new);
        self.serve(stream, authenticator, principal).await
    }

    /// Requests until the connection ends. `principal` is the connection's without SASL
    /// (from the TLS client certificate, or anonymous).
    async fn serve(
        mut self,
        stream: Stream,
        mut authenticator: Option<Authenticator>,
        principal: String,
    ) {
        let broker = self.broker;
        let peer = self.peer;
        // Small: it is allocated (and zeroed) for every connection, idle ones included;
        // a read larger than it goes past it, straight into the frame.
        let mut reader = BufReader::with_capacity(READ_BUFFER, stream);
        let idle = self.idle();
        loop {
            // Before SASL authentication a frame is a token, bounded by
            // sasl.server.max.receive.size, not by what authenticated clients may send.
            let (max, limit) = match &authenticator {
                Some(auth) if !auth.is_authenticated() => {
                    (auth.max_receive(), "sasl.server.max.receive.size")
                }
                _ => (
                    broker.config.socket_request_max_bytes,
                    "socket.request.max.bytes",
                ),
            };
            let size = tokio::select! {
                size = tokio::time::timeout(idle, reader.read_i32()) => match size {
                    Ok(Ok(size)) => size,
                    Ok(Err(_)) => return, // closed by the client
                    Err(_) => return self.idle_closed(),
                },
                _ = self.shutdown.changed() => return,
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
                    "closing connection: request size is outside 0..={limit}"
                );
                return;
            }
            let size = size as usize;
            let _share = match &self.pool {
                None => None,
                Some(pool) => tokio::select! {
                    share = pool.acquire(size) => Some(share),
                    _ = self.shutdown.changed() => return,
                },
            };
            let _held = QueuedBytes::hold(&broker.metrics, size as u64);
            let frame = match tokio::time::timeout(idle, read_frame(&mut reader, size)).await {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    debug!(%peer, "connection closed mid-request");
                    return;
                }
                Err(_) => return self.idle_closed(),
            };
            let mut close_after = None;
            let response = match authenticator.as_mut() {
                None => self.handle(frame, &principal).await,
                Some(auth) => {
                    let outcome = auth.on_frame(&frame, broker, Instant::now()).await;
                    if auth.take_completed() {
                        broker
                            .metrics
                            .authentications
                            .fetch_add(1, Ordering::Relaxed);
                        debug!(%peer, principal = auth.principal().unwrap_or_default(), "authenticated");
                    }
                    match outcome {
                        SaslOutcome::PassThrough => {
                            let principal = auth.principal().unwrap_or(api::ANONYMOUS);
                            self.handle(frame, principal).await
                        }
                        SaslOutcome::Respond(frames) => Ok(Some(frames)),
                        SaslOutcome::RespondAndClose(frames, reason) => {
                            close_after = Some(reason);
                            Ok(Some(frames))
                        }
                        SaslOutcome::Close(reason) => return self.authentication_failed(&reason),
                    }
                }
            };
            match response {
                Ok(Some(response)) => {
                    let stream = reader.get_mut();
                    match tokio::time::timeout(idle, stream.write_frames(response)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            // Usually the client went away; or a segment was truncated while
                            // its records were being sent, and the response cannot be whole.
                            debug!(%peer, error = %e, "closing connection: writing a response failed");
                            return;
                        }
                        Err(_) => return self.idle_closed(),
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
            if let Some(reason) = close_after {
                return self.authentication_failed(&reason);
            }
        }
    }

    async fn handle(&self, frame: Bytes, principal: &str) -> Result<Option<Frames>, RequestError> {
        let session = api::Session {
            peer: self.peer,
            listener: self.listener,
            principal,
        };
        api::handle_request(self.broker, frame, session).await
    }
}

/// Each connection's read buffer: 10,000 connections hold 80 MiB of them.
const READ_BUFFER: usize = 8 * 1024;

/// How far a frame's buffer may run ahead of the bytes received (see [`read_frame`]).
const AHEAD: usize = 16;

/// A frame body of `size` bytes. The buffer grows with what arrives: it starts at 64 KiB
/// and never holds more than [`AHEAD`] times the bytes received, so a length prefix that
/// lies costs little until the bytes come, while an honest request up to 1 MiB is copied
/// once on the way (its first 64 KiB), not at every doubling. `None` when the connection
/// ends first.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, size: usize) -> Option<Bytes> {
    const FIRST: usize = 64 * 1024;
    let mut frame = BytesMut::with_capacity(size.min(FIRST));
    while frame.len() < size {
        let want = size - frame.len();
        if frame.capacity() == frame.len() {
            let target = (frame.len() * AHEAD).max(FIRST).min(size);
            frame.reserve(target - frame.len());
        }
        match (&mut *reader).take(want as u64).read_buf(&mut frame).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    Some(frame.freeze())
}

/// `max.connections.per.ip` and its overrides, and the connections open per address.
struct PerIpLimits {
    default: usize,
    overrides: HashMap<IpAddr, usize>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerIpLimits {
    /// Host names in the overrides are resolved once, here, as Kafka resolves them when
    /// the config is applied.
    fn new(default: usize, overrides: &[(String, usize)]) -> PerIpLimits {
        let mut resolved = HashMap::new();
        for (host, limit) in overrides {
            let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => match (host.as_str(), 0).to_socket_addrs() {
                    Ok(addrs) => addrs.map(|a| a.ip()).collect(),
                    Err(e) => {
                        warn!(%host, error = %e, "max.connections.per.ip.overrides: cannot resolve; ignored");
                        Vec::new()
                    }
                },
            };
            for ip in ips {
                resolved.insert(ip, *limit);
            }
        }
        PerIpLimits {
            default,
            overrides: resolved,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpPermit> {
        let limit = self.overrides.get(&ip).copied().unwrap_or(self.default);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.get(&ip).copied().unwrap_or(0) >= limit {
            return None;
        }
        *open.entry(ip).or_default() += 1;
        Some(IpPermit {
            limits: self.clone(),
            ip,
        })
    }
}

/// One open connection counted against its address; released when dropped.
struct IpPermit {
    limits: Arc<PerIpLimits>,
    ip: IpAddr,
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// `queued.max.request.bytes`: the request bytes all connections may hold at once.
#[derive(Clone)]
struct RequestPool {
    bytes: Arc<Semaphore>,
    capacity: usize,
}

impl RequestPool {
    fn new(bytes: u64) -> RequestPool {
        let capacity = usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS)
            .min(u32::MAX as usize);
        RequestPool {
            bytes: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// Waits for `size` bytes (at most the whole pool); they return when the permit drops.
    async fn acquire(&self, size: usize) -> OwnedSemaphorePermit {
        self.bytes
            .clone()
            .acquire_many_owned(size.min(self.capacity) as u32)
            .await
            .expect("the pool is never closed")
    }
}

/// A request's bytes counted in `strata_broker_queued_request_bytes` until dropped (after
/// its response is written).
struct QueuedBytes<'a> {
    metrics: &'a crate::metrics::Metrics,
    size: u64,
}

impl<'a> QueuedBytes<'a> {
    fn hold(metrics: &'a crate::metrics::Metrics, size: u64) -> QueuedBytes<'a> {
        metrics
            .queued_request_bytes
            .fetch_add(size, Ordering::Relaxed);
        QueuedBytes { metrics, size }
    }
}

impl Drop for QueuedBytes<'_> {
    fn drop(&mut self) {
        self.metrics
            .queued_request_bytes
            .fetch_sub(self.size, Ordering::Relaxed);
    }
}
