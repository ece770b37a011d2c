//! Server-to-server transport: gRPC (tonic) client streams on the quorum port.
//!
//! Each server keeps one outgoing stream per peer (`/strata.zab.Peer/Stream`) and
//! receives one from each. A frame is `sender id (u64) | kind (u8) | payload`. There are
//! no protobuf messages: the payload is jute, carried by a pass-through codec, so no
//! code generation or `protoc` is needed. A broken stream loses what was queued on it;
//! the ZAB core is built to survive lost messages, and reconnects are retried.
//!
//! Host names are resolved again on every connection attempt and every bind, never
//! kept: in Kubernetes a restarted pod comes back under the same name with a new
//! address, and the name may point at the old one for a while.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http;
use tonic::{Request, Response, Status, Streaming};

use crate::jute::{Reader, Writer};
use crate::zab::{Message, ServerId, wire};

const PATH: &str = "/strata.zab.Peer/Stream";
/// Largest frame between servers: a SNAP carries the whole tree in one message.
const MAX_MESSAGE_BYTES: usize = 1 << 30;
/// Messages queued to one peer before new ones are dropped.
const PEER_QUEUE: usize = 8192;

/// What travels between servers.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Zab(Message),
    /// A follower tells the leader which sessions are alive on it.
    Touch(Vec<i64>),
    /// First on every stream: where the sender takes peer connections, so a server
    /// that no configuration names yet (one about to join) can be answered.
    Hello {
        host: String,
        port: u16,
    },
    /// Not sent: the receiving side reports that a peer's stream ended.
    Lost,
}

pub fn encode_frame(from: ServerId, frame: &Frame) -> Bytes {
    let mut w = Writer::new();
    w.i64(from as i64);
    match frame {
        Frame::Zab(m) => {
            w.buf.put_u8(0);
            wire::encode(m, &mut w);
        }
        Frame::Touch(sessions) => {
            w.buf.put_u8(1);
            w.i32(sessions.len() as i32);
            for s in sessions {
                w.i64(*s);
            }
        }
        Frame::Lost => {
            w.buf.put_u8(2);
        }
        Frame::Hello { host, port } => {
            w.buf.put_u8(3);
            w.string(host).i32(*port as i32);
        }
    }
    w.buf.freeze()
}

pub fn decode_frame(bytes: &[u8]) -> Option<(ServerId, Frame)> {
    if bytes.len() < 9 {
        return None;
    }
    let from = u64::from_be_bytes(bytes[..8].try_into().ok()?);
    let kind = bytes[8];
    let mut rest = &bytes[9..];
    let frame = match kind {
        0 => Frame::Zab(wire::decode(&mut Reader::new(rest)).ok()?),
        1 => {
            if rest.remaining() < 4 {
                return None;
            }
            let n = rest.get_i32().max(0) as usize;
            if rest.remaining() < n * 8 {
                return None;
            }
            Frame::Touch((0..n).map(|_| rest.get_i64()).collect())
        }
        3 => {
            let mut r = Reader::new(rest);
            let host = r.read_string().ok()?;
            let port = u16::try_from(r.read_i32().ok()?).ok()?;
            Frame::Hello { host, port }
        }
        _ => return None,
    };
    Some((from, frame))
}

/// A codec that hands message bytes through unchanged.
#[derive(Clone, Copy, Default)]
pub struct RawCodec;

pub struct RawEncoder;
pub struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n)))
    }
}

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// The receiving side: every frame of every incoming stream goes to `inbox`.
#[derive(Clone)]
pub struct PeerService {
    inbox: mpsc::Sender<(ServerId, Frame)>,
}

#[derive(Clone)]
struct StreamHandler {
    inbox: mpsc::Sender<(ServerId, Frame)>,
}

impl tonic::codegen::Service<Request<Streaming<Bytes>>> for StreamHandler {
    type Response = Response<Bytes>;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Bytes>, Status>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Streaming<Bytes>>) -> Self::Future {
        let inbox = self.inbox.clone();
        Box::pin(async move {
            let mut stream = req.into_inner();
            let mut peer = None;
            // However the stream ends, tell the driver this peer is gone: a dead leader
            // is noticed at once rather than after syncLimit.
            let result = async {
                while let Some(item) = stream.next().await {
                    let bytes = item?;
                    if let Some((from, frame)) = decode_frame(&bytes) {
                        peer = Some(from);
                        if inbox.send((from, frame)).await.is_err() {
                            break;
                        }
                    }
                }
                Ok::<(), Status>(())
            }
            .await;
            if let Some(from) = peer {
                let _ = inbox.send((from, Frame::Lost)).await;
            }
            result?;
            Ok(Response::new(Bytes::new()))
        })
    }
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for PeerService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let handler = StreamHandler {
            inbox: self.inbox.clone(),
        };
        Box::pin(async move {
            if req.uri().path() != PATH {
                return Ok(Status::unimplemented("unknown method").into_http());
            }
            let mut grpc =
                tonic::server::Grpc::new(RawCodec).max_decoding_message_size(MAX_MESSAGE_BYTES);
            Ok(grpc.client_streaming(handler, req).await)
        })
    }
}

/// Turns a host name and port into addresses. Called afresh for every connection
/// attempt and every bind; tests substitute their own.
pub type Resolve = Arc<
    dyn Fn(String, u16) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>
        + Send
        + Sync,
>;

/// The system resolver (`getaddrinfo`), asked every time.
pub fn system_resolver() -> Resolve {
    Arc::new(|host, port| {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    })
}

/// Where to listen for peers: this server's own `server.N` address, or every interface
/// (`quorumListenOnAllIPs=true`).
#[derive(Debug, Clone)]
pub struct ListenOn {
    pub host: String,
    pub port: u16,
    pub all_ips: bool,
}

/// Bind attempts before giving up on the quorum port. A restarted pod's name can point
/// at its old address for as long as DNS caches it (CoreDNS: 30 s), so each attempt
/// resolves again, one second apart.
const BIND_ATTEMPTS: u32 = 120;

/// Bind the quorum port, resolving this server's name again on every attempt, then
/// serve incoming peer streams. Fails only when no attempt could bind.
pub async fn listen(
    on: ListenOn,
    resolve: Resolve,
    inbox: mpsc::Sender<(ServerId, Frame)>,
) -> anyhow::Result<()> {
    let mut attempt = 0;
    let listener = loop {
        attempt += 1;
        let addr = if on.all_ips {
            Ok(SocketAddr::new(IpAddr::from([0, 0, 0, 0]), on.port))
        } else {
            resolve(on.host.clone(), on.port).await.and_then(|a| {
                a.into_iter()
                    .next()
                    .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))
            })
        };
        let bound = match addr {
            Ok(addr) => tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("{addr}: {e}")),
            Err(e) => Err(format!("{}:{}: {e}", on.host, on.port)),
        };
        match bound {
            Ok(l) => break l,
            Err(e) if attempt < BIND_ATTEMPTS => {
                tracing::warn!("quorum port {e}; resolving and trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => anyhow::bail!("quorum port {e} (after {attempt} attempts)"),
        }
    };
    tracing::info!("quorum port listening on {}", listener.local_addr()?);
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .serve_with_incoming(PeerService { inbox }, incoming)
        .await?;
    Ok(())
}

/// Start the sending side for one peer; returns the queue to it. When a stream that was
/// up breaks, `inbox` hears `Frame::Lost` for the peer, as when its stream to us ends:
/// like a learner's one TCP connection in ZooKeeper, either direction failing means
/// the link is gone (and forwarded writes with it).
pub fn connect(
    my_id: ServerId,
    peer: ServerId,
    (host, port): (String, u16),
    hello: Option<Frame>,
    resolve: Resolve,
    inbox: mpsc::Sender<(ServerId, Frame)>,
) -> mpsc::Sender<Frame> {
    let (tx, mut rx) = mpsc::channel::<Frame>(PEER_QUEUE);
    tokio::spawn(async move {
        let mut last_addr = None;
        loop {
            let addr = resolve(host.clone(), port)
                .await
                .ok()
                .and_then(|a| a.into_iter().next());
            if let Some(now) = addr
                && addr != last_addr
            {
                tracing::info!(peer, "{host}:{port} is {now}");
                last_addr = addr;
            }
            let channel = match addr {
                Some(addr) => {
                    let endpoint =
                        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                            .expect("a socket address is a valid URI authority")
                            .tcp_nodelay(true)
                            .connect_timeout(Duration::from_millis(500));
                    endpoint.connect().await.ok()
                }
                None => None,
            };
            let Some(channel) = channel else {
                // Drop what queued while the peer is unreachable; ZAB resends what
                // still matters.
                while rx.try_recv().is_ok() {}
                tokio::time::sleep(Duration::from_millis(100)).await;
                if rx.is_closed() {
                    return;
                }
                continue;
            };
            let (stream_tx, stream_rx) = mpsc::channel::<Bytes>(PEER_QUEUE);
            if let Some(h) = &hello {
                let _ = stream_tx.try_send(encode_frame(my_id, h));
            }
            let mut grpc =
                tonic::client::Grpc::new(channel).max_encoding_message_size(MAX_MESSAGE_BYTES);
            let call = tokio::spawn(async move {
                if grpc.ready().await.is_err() {
                    return;
                }
                let stream = tokio_stream::wrappers::ReceiverStream::new(stream_rx);
                let path = http::uri::PathAndQuery::from_static(PATH);
                let _ = grpc
                    .client_streaming::<_, Bytes, Bytes, _>(Request::new(stream), path, RawCodec)
                    .await;
            });
            // The stream's receiver goes away when the call ends; the failed send is
            // the signal to reconnect.
            while let Some(frame) = rx.recv().await {
                if stream_tx.send(encode_frame(my_id, &frame)).await.is_err() {
                    break;
                }
            }
            if rx.is_closed() {
                call.abort();
                return;
            }
            let _ = inbox.send((peer, Frame::Lost)).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        for f in [
            Frame::Zab(Message::PingAck {
                epoch: 3,
                last_zxid: 4,
            }),
            Frame::Touch(vec![1, -5, 1 << 60]),
            Frame::Hello {
                host: "zk-4.zk-peers".into(),
                port: 2888,
            },
        ] {
            assert_eq!(decode_frame(&encode_frame(7, &f)), Some((7, f)));
        }
        assert_eq!(decode_frame(&[1, 2]), None);
    }

    fn unused_port() -> SocketAddr {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    /// A resolver that answers `first` for the first `times` lookups, then `then`, and
    /// counts the lookups.
    fn changing_resolver(
        first: SocketAddr,
        times: usize,
        then: SocketAddr,
    ) -> (Resolve, Arc<std::sync::atomic::AtomicUsize>) {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = calls.clone();
        let resolve: Resolve = Arc::new(move |_, _| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let addr = if n < times { first } else { then };
            Box::pin(async move { Ok(vec![addr]) })
        });
        (resolve, calls)
    }

    #[tokio::test]
    async fn a_peer_name_is_resolved_again_on_every_connection_attempt() {
        let live = unused_port();
        let (inbox, mut received) = mpsc::channel(64);
        let on = ListenOn {
            host: live.ip().to_string(),
            port: live.port(),
            all_ips: false,
        };
        let server = tokio::spawn(listen(on, system_resolver(), inbox));
        // The name first points where nothing listens (a pod's old address), then moves.
        let (resolve, calls) = changing_resolver(unused_port(), 3, live);
        let (lost, _lost) = mpsc::channel(64);
        let hello = Frame::Hello {
            host: "server-1.peers".into(),
            port: 2888,
        };
        let link = connect(
            1,
            2,
            ("server-2.peers".into(), live.port()),
            Some(hello.clone()),
            resolve,
            lost,
        );
        let mut arrived = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let _ = link.try_send(Frame::Touch(vec![7]));
                if let Ok(Some(got)) =
                    tokio::time::timeout(Duration::from_millis(100), received.recv()).await
                {
                    let touch = got.1 == Frame::Touch(vec![7]);
                    arrived.push(got);
                    if touch {
                        return;
                    }
                }
            }
        })
        .await
        .expect("frames reach the peer once its name resolves to where it listens");
        assert_eq!(
            arrived[0],
            (1, hello),
            "a stream starts with where to answer"
        );
        assert_eq!(arrived.last(), Some(&(1, Frame::Touch(vec![7]))));
        assert!(calls.load(std::sync::atomic::Ordering::SeqCst) > 3);
        server.abort();
    }

    #[tokio::test]
    async fn the_quorum_port_bind_resolves_again_until_it_succeeds() {
        // The first answer is an address that cannot be bound (taken), the next is free.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let free = unused_port();
        let (resolve, calls) = changing_resolver(taken.local_addr().unwrap(), 1, free);
        let (inbox, _received) = mpsc::channel(64);
        let on = ListenOn {
            host: "server-1.peers".into(),
            port: free.port(),
            all_ips: false,
        };
        let server = tokio::spawn(listen(on, resolve, inbox));
        let bound = tokio::time::timeout(Duration::from_secs(20), async {
            while tokio::net::TcpStream::connect(free).await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(bound.is_ok(), "listening on the address the name moved to");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        server.abort();
    }
}
