//! Server-to-server transport: gRPC (tonic) client streams on the quorum port.
//!
//! Each server keeps one outgoing stream per peer (`/strata.zab.Peer/Stream`) and
//! receives one from each. A frame is `sender id (u64) | kind (u8) | payload`. There are
//! no protobuf messages: the payload is jute, carried by a pass-through codec, so no
//! code generation or `protoc` is needed. A broken stream loses what was queued on it;
//! the ZAB core is built to survive lost messages, and reconnects are retried.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
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

/// Serve incoming peer streams on `addr`.
pub async fn serve(addr: SocketAddr, inbox: mpsc::Sender<(ServerId, Frame)>) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .serve(addr, PeerService { inbox })
        .await?;
    Ok(())
}

/// Start the sending side for one peer; returns the queue to it.
pub fn connect(my_id: ServerId, host: String, port: u16) -> mpsc::Sender<Frame> {
    let (tx, mut rx) = mpsc::channel::<Frame>(PEER_QUEUE);
    tokio::spawn(async move {
        let uri = format!("http://{host}:{port}");
        loop {
            let Ok(endpoint) = tonic::transport::Endpoint::from_shared(uri.clone()) else {
                tracing::error!("bad peer address {uri}");
                return;
            };
            let endpoint = endpoint
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_millis(500));
            let channel = match endpoint.connect().await {
                Ok(c) => c,
                Err(_) => {
                    // Drop what queued while the peer is unreachable; ZAB resends what
                    // still matters.
                    while rx.try_recv().is_ok() {}
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if rx.is_closed() {
                        return;
                    }
                    continue;
                }
            };
            let (stream_tx, stream_rx) = mpsc::channel::<Bytes>(PEER_QUEUE);
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
        ] {
            assert_eq!(decode_frame(&encode_frame(7, &f)), Some((7, f)));
        }
        assert_eq!(decode_frame(&[1, 2]), None);
    }
}
