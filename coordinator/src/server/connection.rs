//! One client connection: 4-byte length-prefixed frames in, decoded requests to the
//! processor, replies and notifications out through a bounded queue.

use std::net::SocketAddr;
use std::sync::Arc;

use strata_tls::TlsServer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::jute::Reader;
use crate::proto::{ErrorCode, Request};
use crate::server::fourlw;
use crate::server::processor::{ConnectRequest, Event, Refusal};
use crate::server::reply::{self, Outgoing, ReplyReceiver};

/// Each connection's read and write buffers. Small, since every connection holds them,
/// idle ones included; larger reads and writes go past them.
const CONNECTION_BUFFER: usize = 8 * 1024;
/// `jute.maxbuffer`: the largest request ZooKeeper accepts (1 MiB - 1).
pub const MAX_BUFFER: usize = 0xfffff;
/// Frames beyond this are not even read through; the connection is closed.
const HARD_LIMIT: usize = 64 * 1024 * 1024;
/// How long a new connection has to send its ConnectRequest (or a four-letter word):
/// ZooKeeper's `zookeeper.nio.sessionlessCnxnTimeout`. Past it the connection is closed,
/// so connections that never speak cannot pile up.
pub const SESSIONLESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Bytes of requests read from all clients and not yet taken by the processor. Past it,
/// connections wait before reading a request's body. ZooKeeper bounds only the count
/// (`globalOutstandingLimit`, which bounds the queue here too); with requests of up to
/// `jute.maxbuffer` that alone would let a flood hold a gigabyte.
pub const QUEUED_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// The bytes left of [`QUEUED_REQUEST_BYTES`], shared by every connection of a server.
pub type RequestBudget = Arc<Semaphore>;

pub fn request_budget() -> RequestBudget {
    Arc::new(Semaphore::new(QUEUED_REQUEST_BYTES))
}

pub async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    conn: u64,
    events: mpsc::Sender<Event>,
    budget: RequestBudget,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read_half, write_half) = stream.into_split();
    serve_halves(read_half, write_half, None, remote, conn, events, budget).await
}

/// A connection on the secure client port: the TLS handshake (within the sessionless
/// timeout), then the same protocol; a client certificate becomes the session's `x509`
/// id (its subject, as ZooKeeper's `X509AuthenticationProvider` names it).
pub async fn serve_tls(
    stream: TcpStream,
    tls: &TlsServer,
    remote: SocketAddr,
    conn: u64,
    events: mpsc::Sender<Event>,
    budget: RequestBudget,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let handshake = tls.acceptor().accept(stream);
    let stream = match tokio::time::timeout(SESSIONLESS_TIMEOUT, handshake).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::info!(%remote, error = %e, "TLS handshake failed; closing");
            return Ok(());
        }
        Err(_) => {
            let _ = events.try_send(Event::Refused(Refusal::Sessionless));
            return Ok(());
        }
    };
    let certificate = match stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    {
        None => None,
        Some(der) => match strata_tls::x509::subject_dn(der) {
            Ok(dn) => Some(dn),
            Err(e) => {
                tracing::info!(%remote, error = %e, "unreadable client certificate; closing");
                return Ok(());
            }
        },
    };
    let (read_half, write_half) = tokio::io::split(stream);
    serve_halves(
        read_half,
        write_half,
        certificate,
        remote,
        conn,
        events,
        budget,
    )
    .await
}

async fn serve_halves<R, W>(
    read_half: R,
    write_half: W,
    certificate: Option<String>,
    remote: SocketAddr,
    conn: u64,
    events: mpsc::Sender<Event>,
    budget: RequestBudget,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut reader = BufReader::with_capacity(CONNECTION_BUFFER, read_half);
    let sessionless = || {
        tracing::debug!(%remote, "no whole ConnectRequest within the sessionless timeout; closing");
        let _ = events.try_send(Event::Refused(Refusal::Sessionless));
    };
    let mut first = [0u8; 4];
    let Ok(read) = tokio::time::timeout(SESSIONLESS_TIMEOUT, reader.read_exact(&mut first)).await
    else {
        sessionless();
        return Ok(());
    };
    read?;
    if let Some(word) = fourlw::is_four_letter_word(&first) {
        let (tx, rx) = oneshot::channel();
        let _ = events
            .send(Event::Command {
                word: word.to_string(),
                reply: tx,
            })
            .await;
        let text = rx.await.unwrap_or_default();
        let mut w = write_half;
        w.write_all(text.as_bytes()).await?;
        w.shutdown().await?;
        return Ok(());
    }
    let len = i32::from_be_bytes(first);
    if len < 0 || len as usize > MAX_BUFFER {
        return Ok(());
    }
    let mut body = vec![0u8; len as usize];
    let Ok(read) = tokio::time::timeout(SESSIONLESS_TIMEOUT, reader.read_exact(&mut body)).await
    else {
        sessionless();
        return Ok(());
    };
    read?;
    let req = match parse_connect(&body) {
        Ok(r) => ConnectRequest { certificate, ..r },
        Err(_) => return Ok(()),
    };
    let (tx, rx) = reply::queue();
    if events
        .send(Event::Connect {
            conn,
            remote,
            tx,
            req,
        })
        .await
        .is_err()
    {
        return Ok(());
    }
    let read_task = tokio::spawn(read_loop(reader, conn, events.clone(), budget));
    write_loop(write_half, rx).await;
    read_task.abort();
    let _ = events.send(Event::Disconnected { conn }).await;
    Ok(())
}

pub fn parse_connect(body: &[u8]) -> Result<ConnectRequest, crate::jute::JuteError> {
    let mut r = Reader::new(body);
    let _protocol_version = r.read_i32()?;
    let last_zxid_seen = r.read_i64()?;
    let timeout_ms = r.read_i32()?;
    let session_id = r.read_i64()?;
    let password = r.read_bytes()?;
    Ok(ConnectRequest {
        last_zxid_seen,
        timeout_ms,
        session_id,
        password,
        certificate: None,
    })
}

async fn write_loop<W: AsyncWrite + Unpin>(write_half: W, mut rx: ReplyReceiver) {
    let mut w = BufWriter::with_capacity(CONNECTION_BUFFER, write_half);
    let abort = rx.abort_signal();
    let written = async {
        loop {
            let Some(out) = rx.recv().await else { return };
            let mut next = Some(out);
            // Write everything already queued, then flush once.
            while let Some(item) = next {
                match item {
                    Outgoing::Frame(f) => {
                        if w.write_all(&f).await.is_err() {
                            return;
                        }
                    }
                    Outgoing::Close => {
                        let _ = w.flush().await;
                        let _ = w.shutdown().await;
                        return;
                    }
                }
                next = rx.try_recv();
            }
            if w.flush().await.is_err() {
                return;
            }
        }
    };
    // A writer blocked on a client that does not read stops when the processor gives up.
    tokio::select! {
        _ = written => {}
        _ = abort.wait() => {}
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: BufReader<R>,
    conn: u64,
    events: mpsc::Sender<Event>,
    budget: RequestBudget,
) {
    let mut len_buf = [0u8; 4];
    loop {
        if reader.read_exact(&mut len_buf).await.is_err() {
            break;
        }
        let len = i32::from_be_bytes(len_buf);
        if len < 8 || len as usize > HARD_LIMIT {
            break;
        }
        let len = len as usize;
        if len > MAX_BUFFER {
            // Too large for jute.maxbuffer: read it through, answer with an error, and
            // keep the session.
            let mut head = [0u8; 8];
            if reader.read_exact(&mut head).await.is_err() {
                break;
            }
            let mut rest = (&mut reader).take((len - 8) as u64);
            if tokio::io::copy(&mut rest, &mut tokio::io::sink())
                .await
                .is_err()
            {
                break;
            }
            let xid = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            tracing::warn!(conn, len, "request larger than jute.maxbuffer refused");
            let ev = Event::BadRequest {
                conn,
                xid,
                err: ErrorCode::MarshallingError,
            };
            if events.send(ev).await.is_err() {
                break;
            }
            continue;
        }
        // len ≤ jute.maxbuffer, far below the budget: a request always fits eventually.
        let Ok(held) = budget.clone().acquire_many_owned(len as u32).await else {
            break;
        };
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).await.is_err() {
            break;
        }
        let mut r = Reader::new(&body);
        let (Ok(xid), Ok(code)) = (r.read_i32(), r.read_i32()) else {
            break;
        };
        let ev = match Request::decode(code, &mut r) {
            Ok(req) => Event::Request {
                conn,
                xid,
                req,
                _held: Some(held),
            },
            Err(err) => Event::BadRequest { conn, xid, err },
        };
        if events.send(ev).await.is_err() {
            break;
        }
    }
    let _ = events.send(Event::Disconnected { conn }).await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;
    use tokio::time::timeout;

    use super::*;
    use crate::jute::Writer;
    use crate::proto::op;

    fn set_data(xid: i32, size: usize) -> bytes::BytesMut {
        let mut w = Writer::new();
        w.i32(xid)
            .i32(op::SET_DATA)
            .string("/big")
            .buffer(&vec![7u8; size])
            .i32(-1);
        w.into_frame()
    }

    async fn next_xid(rx: &mut mpsc::Receiver<Event>) -> (i32, Event) {
        let event = timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an event")
            .expect("open");
        match event {
            Event::Request { xid, .. } => (xid, event),
            _ => panic!("not a request"),
        }
    }

    #[tokio::test]
    async fn requests_wait_for_room_in_the_byte_budget() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let budget = Arc::new(Semaphore::new(250_000));
        let (events, mut rx) = mpsc::channel(100);
        let task = tokio::spawn(read_loop(BufReader::new(server), 1, events, budget.clone()));
        for xid in 1..=4 {
            client.write_all(&set_data(xid, 100_000)).await.unwrap();
        }
        // Two requests of 100 kB fit in 250 kB; the third is read only once one is taken.
        let (xid, first) = next_xid(&mut rx).await;
        assert_eq!(xid, 1);
        let (xid, _second) = next_xid(&mut rx).await;
        assert_eq!(xid, 2);
        assert!(
            timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err(),
            "a third request read beyond the budget"
        );
        assert!(budget.available_permits() < 100_000);
        drop(first);
        assert_eq!(next_xid(&mut rx).await.0, 3);
        task.abort();
    }
}
