//! A small ZooKeeper client: enough for the `strata zk` commands and the benchmark's
//! load generator. One connection, requests pipelined and matched to replies by xid,
//! pings in the background. It does not reconnect; callers that need failover use a
//! full client (kazoo, `zookeeper-client`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Mutex, oneshot};

use crate::jute::{Reader, Writer};
use crate::proto::{Acl, ErrorCode, Stat, op, read_acls, write_acls, xid};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("server error: {0}")]
    Server(ErrorCode),
    #[error("connection closed")]
    Closed,
    #[error("bad reply")]
    BadReply,
}

impl From<crate::jute::JuteError> for ClientError {
    fn from(_: crate::jute::JuteError) -> Self {
        ClientError::BadReply
    }
}

type Waiters = Arc<std::sync::Mutex<HashMap<i32, oneshot::Sender<(i32, Bytes)>>>>;

pub struct Client {
    writer: Arc<Mutex<OwnedWriteHalf>>,
    waiters: Waiters,
    next_xid: AtomicI32,
    pub session_id: i64,
    pub timeout_ms: i32,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn read_frame(r: &mut tokio::net::tcp::OwnedReadHalf) -> std::io::Result<Vec<u8>> {
    let len = r.read_i32().await?;
    if !(0..=64 * 1024 * 1024).contains(&len) {
        return Err(std::io::Error::other("bad frame length"));
    }
    let mut buf = vec![0; len as usize];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

impl Client {
    /// Connect to one server (`host:port`; the first of a comma-separated list).
    pub async fn connect(servers: &str, timeout_ms: i32) -> Result<Client, ClientError> {
        let addr = servers.split(',').next().unwrap_or(servers).trim();
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut r, mut w) = stream.into_split();
        let mut req = Writer::new();
        req.i32(0)
            .i64(0)
            .i32(timeout_ms)
            .i64(0)
            .buffer(&[0; 16])
            .bool(false);
        w.write_all(&req.into_frame()).await?;
        let reply = read_frame(&mut r).await?;
        let mut rd = Reader::new(&reply);
        let _protocol = rd.read_i32()?;
        let timeout_ms = rd.read_i32()?;
        let session_id = rd.read_i64()?;
        if session_id == 0 {
            return Err(ClientError::Server(ErrorCode::SessionExpired));
        }
        let waiters: Waiters = Arc::default();
        let reader = {
            let waiters = waiters.clone();
            tokio::spawn(async move {
                while let Ok(frame) = read_frame(&mut r).await {
                    let mut rd = Reader::new(&frame);
                    let (Ok(xid), Ok(_zxid), Ok(err)) =
                        (rd.read_i32(), rd.read_i64(), rd.read_i32())
                    else {
                        break;
                    };
                    if xid == xid::NOTIFICATION || xid == xid::PING {
                        continue;
                    }
                    let body = Bytes::copy_from_slice(&frame[16..]);
                    let waiter = waiters.lock().expect("not poisoned").remove(&xid);
                    if let Some(tx) = waiter {
                        let _ = tx.send((err, body));
                    }
                }
                waiters.lock().expect("not poisoned").clear();
            })
        };
        let writer = Arc::new(Mutex::new(w));
        let pinger = {
            let writer = writer.clone();
            let every = Duration::from_millis((timeout_ms / 3).max(100) as u64);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let mut p = Writer::new();
                    p.i32(xid::PING).i32(op::PING);
                    if writer
                        .lock()
                        .await
                        .write_all(&p.into_frame())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            })
        };
        Ok(Client {
            writer,
            waiters,
            next_xid: AtomicI32::new(1),
            session_id,
            timeout_ms,
            tasks: vec![reader, pinger],
        })
    }

    /// Send one request and wait for its reply body.
    pub async fn call(&self, opcode: i32, body: &[u8]) -> Result<Bytes, ClientError> {
        let xid = self.next_xid.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().expect("not poisoned").insert(xid, tx);
        let mut w = Writer::new();
        w.i32(xid).i32(opcode);
        w.buf.extend_from_slice(body);
        self.writer.lock().await.write_all(&w.into_frame()).await?;
        let (err, body) = rx.await.map_err(|_| ClientError::Closed)?;
        if err != 0 {
            return Err(ClientError::Server(ErrorCode::from_code(err)));
        }
        Ok(body)
    }

    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        flags: i32,
    ) -> Result<String, ClientError> {
        let mut w = Writer::new();
        w.string(path).buffer(data);
        write_acls(&mut w, acl);
        w.i32(flags);
        let body = self.call(op::CREATE, &w.buf).await?;
        Ok(Reader::new(&body).read_string()?)
    }

    pub async fn get(&self, path: &str) -> Result<(Vec<u8>, Stat), ClientError> {
        let mut w = Writer::new();
        w.string(path).bool(false);
        let body = self.call(op::GET_DATA, &w.buf).await?;
        let mut r = Reader::new(&body);
        Ok((r.read_bytes()?, Stat::read(&mut r)?))
    }

    /// `reconfig` (ZooKeeper 3.5+): `joining` server lines and `leaving` ids (comma
    /// separated), or the whole `new_members`; `from_config` the version it applies to
    /// (-1: any). Answers the new configuration and its stat.
    pub async fn reconfig(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        from_config: i64,
    ) -> Result<(Vec<u8>, Stat), ClientError> {
        let mut w = Writer::new();
        for s in [joining, leaving, new_members] {
            w.nullable_buffer(s.map(str::as_bytes));
        }
        w.i64(from_config);
        let body = self.call(op::RECONFIG, &w.buf).await?;
        let mut r = Reader::new(&body);
        Ok((r.read_bytes()?, Stat::read(&mut r)?))
    }

    pub async fn set(&self, path: &str, data: &[u8], version: i32) -> Result<Stat, ClientError> {
        let mut w = Writer::new();
        w.string(path).buffer(data).i32(version);
        let body = self.call(op::SET_DATA, &w.buf).await?;
        Ok(Stat::read(&mut Reader::new(&body))?)
    }

    pub async fn delete(&self, path: &str, version: i32) -> Result<(), ClientError> {
        let mut w = Writer::new();
        w.string(path).i32(version);
        self.call(op::DELETE, &w.buf).await?;
        Ok(())
    }

    pub async fn exists(&self, path: &str) -> Result<Option<Stat>, ClientError> {
        let mut w = Writer::new();
        w.string(path).bool(false);
        match self.call(op::EXISTS, &w.buf).await {
            Ok(body) => Ok(Some(Stat::read(&mut Reader::new(&body))?)),
            Err(ClientError::Server(ErrorCode::NoNode)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn children(&self, path: &str) -> Result<(Vec<String>, Stat), ClientError> {
        let mut w = Writer::new();
        w.string(path).bool(false);
        let body = self.call(op::GET_CHILDREN2, &w.buf).await?;
        let mut r = Reader::new(&body);
        Ok((r.read_strings()?, Stat::read(&mut r)?))
    }

    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat), ClientError> {
        let mut w = Writer::new();
        w.string(path);
        let body = self.call(op::GET_ACL, &w.buf).await?;
        let mut r = Reader::new(&body);
        Ok((read_acls(&mut r)?, Stat::read(&mut r)?))
    }

    pub async fn set_acl(
        &self,
        path: &str,
        acl: &[Acl],
        version: i32,
    ) -> Result<Stat, ClientError> {
        let mut w = Writer::new();
        w.string(path);
        write_acls(&mut w, acl);
        w.i32(version);
        let body = self.call(op::SET_ACL, &w.buf).await?;
        Ok(Stat::read(&mut Reader::new(&body))?)
    }

    /// `addAuth`: the server answers with the auth xid.
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .expect("not poisoned")
            .insert(xid::AUTH, tx);
        let mut w = Writer::new();
        w.i32(xid::AUTH)
            .i32(op::AUTH)
            .i32(0)
            .string(scheme)
            .buffer(auth);
        self.writer.lock().await.write_all(&w.into_frame()).await?;
        let (err, _) = rx.await.map_err(|_| ClientError::Closed)?;
        if err != 0 {
            return Err(ClientError::Server(ErrorCode::from_code(err)));
        }
        Ok(())
    }

    /// Close the session (ephemerals go at once).
    pub async fn close(self) -> Result<(), ClientError> {
        let r = self.call(op::CLOSE_SESSION, &[]).await.map(|_| ());
        for t in &self.tasks {
            t.abort();
        }
        r
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Parse a zkCli-style ACL list: `world:anyone:cdrwa,digest:user:hash:r,ip:10.0.0.0/8:rw`.
pub fn parse_acl(spec: &str) -> Option<Vec<Acl>> {
    spec.split(',')
        .map(|one| {
            let (rest, perms) = one.rsplit_once(':')?;
            let (scheme, id) = rest.split_once(':')?;
            let mut p = 0;
            for c in perms.chars() {
                p |= match c {
                    'r' => crate::proto::perms::READ,
                    'w' => crate::proto::perms::WRITE,
                    'c' => crate::proto::perms::CREATE,
                    'd' => crate::proto::perms::DELETE,
                    'a' => crate::proto::perms::ADMIN,
                    _ => return None,
                };
            }
            Some(Acl {
                perms: p,
                id: crate::proto::Id {
                    scheme: scheme.to_string(),
                    id: id.to_string(),
                },
            })
        })
        .collect()
}

/// zkCli's rendering of permission bits (`cdrwa`).
pub fn perms_string(p: i32) -> String {
    use crate::proto::perms::*;
    [
        (CREATE, 'c'),
        (DELETE, 'd'),
        (READ, 'r'),
        (WRITE, 'w'),
        (ADMIN, 'a'),
    ]
    .iter()
    .filter(|(bit, _)| p & bit != 0)
    .map(|(_, c)| *c)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_specs_parse_like_zkcli() {
        let acl = parse_acl("world:anyone:cdrwa,digest:u:h=:r,ip:10.0.0.0/8:rw").unwrap();
        assert_eq!(acl[0].perms, 31);
        assert_eq!((acl[1].id.id.as_str(), acl[1].perms), ("u:h=", 1));
        assert_eq!(acl[2].id.scheme, "ip");
        assert_eq!(perms_string(acl[2].perms), "rw");
        assert!(parse_acl("world:anyone:xyz").is_none());
    }
}
