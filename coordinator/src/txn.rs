//! The transaction: one state change, as it is logged, replicated and applied.
//!
//! A transaction carries the client's write request itself together with everything
//! that applying it depends on besides the tree (zxid, time, session and that session's
//! authenticated ids). Applying is deterministic, so every server that applies the same
//! sequence of transactions to the same tree reaches the same tree and the same results,
//! errors included.

use crate::jute::{JuteError, Reader, Writer};
use crate::proto::{CreateOp, Id, Request, op, write_acls};

#[derive(Debug, Clone, PartialEq)]
pub struct Txn {
    pub zxid: i64,
    /// Milliseconds since the Unix epoch at the server that created the transaction;
    /// becomes `ctime`/`mtime`.
    pub time_ms: i64,
    pub session_id: i64,
    pub cxid: i32,
    /// Ids the session authenticated with (`addAuth`), for ACL checks at apply time.
    pub auth: Vec<Id>,
    pub body: TxnBody,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TxnBody {
    CreateSession {
        timeout_ms: i32,
        password: Vec<u8>,
    },
    CloseSession,
    /// A write request from a client (create, delete, setData, setACL, check, multi).
    Write(Request),
    /// Housekeeping by the leader: remove an empty container or an expired TTL node,
    /// if it is still empty when this applies.
    DeleteIfEmpty {
        path: String,
    },
    /// A reconfiguration as the leader decided it: the new `/zookeeper/config` text
    /// (`server.N=...` lines and `version=<hex zxid>`).
    Reconfig {
        config: String,
    },
    /// A write the leader refused when it was proposed (ZooKeeper's `ErrorTxn`): it
    /// changes nothing and answers its client with this error.
    Error {
        code: i32,
    },
}

const BODY_CREATE_SESSION: i32 = -10;
const BODY_CLOSE_SESSION: i32 = -11;
const BODY_DELETE_IF_EMPTY: i32 = -20;
const BODY_RECONFIG: i32 = -30;
const BODY_ERROR: i32 = -31;

impl Txn {
    pub fn encode(&self, w: &mut Writer) {
        w.i64(self.zxid)
            .i64(self.time_ms)
            .i64(self.session_id)
            .i32(self.cxid);
        w.i32(self.auth.len() as i32);
        for id in &self.auth {
            w.string(&id.scheme).string(&id.id);
        }
        match &self.body {
            TxnBody::CreateSession {
                timeout_ms,
                password,
            } => {
                w.i32(BODY_CREATE_SESSION).i32(*timeout_ms).buffer(password);
            }
            TxnBody::CloseSession => {
                w.i32(BODY_CLOSE_SESSION);
            }
            TxnBody::DeleteIfEmpty { path } => {
                w.i32(BODY_DELETE_IF_EMPTY).string(path);
            }
            TxnBody::Reconfig { config } => {
                w.i32(BODY_RECONFIG).string(config);
            }
            TxnBody::Error { code } => {
                w.i32(BODY_ERROR).i32(*code);
            }
            TxnBody::Write(req) => encode_write(w, req),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.buf.to_vec()
    }

    pub fn decode(r: &mut Reader) -> Result<Txn, JuteError> {
        let zxid = r.read_i64()?;
        let time_ms = r.read_i64()?;
        let session_id = r.read_i64()?;
        let cxid = r.read_i32()?;
        let n = r.read_len()?;
        let auth = (0..n)
            .map(|_| {
                Ok(Id {
                    scheme: r.read_string()?,
                    id: r.read_string()?,
                })
            })
            .collect::<Result<Vec<_>, JuteError>>()?;
        let kind = r.read_i32()?;
        let body = match kind {
            BODY_CREATE_SESSION => TxnBody::CreateSession {
                timeout_ms: r.read_i32()?,
                password: r.read_bytes()?,
            },
            BODY_CLOSE_SESSION => TxnBody::CloseSession,
            BODY_DELETE_IF_EMPTY => TxnBody::DeleteIfEmpty {
                path: r.read_string()?,
            },
            BODY_RECONFIG => TxnBody::Reconfig {
                config: r.read_string()?,
            },
            BODY_ERROR => TxnBody::Error {
                code: r.read_i32()?,
            },
            op => TxnBody::Write(
                Request::decode(op, r).map_err(|_| JuteError::Truncated("transaction body"))?,
            ),
        };
        Ok(Txn {
            zxid,
            time_ms,
            session_id,
            cxid,
            auth,
            body,
        })
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Txn, JuteError> {
        Txn::decode(&mut Reader::new(bytes))
    }

    /// The kind of an encoded transaction (a request's op code, or a `BODY_*` tag),
    /// read without decoding the body: replication asks it of every proposal.
    pub fn kind_of(bytes: &[u8]) -> Option<i32> {
        let mut r = Reader::new(bytes);
        r.read_i64().ok()?;
        r.read_i64().ok()?;
        r.read_i64().ok()?;
        r.read_i32().ok()?;
        for _ in 0..r.read_len().ok()? {
            r.read_string().ok()?;
            r.read_string().ok()?;
        }
        r.read_i32().ok()
    }

    pub fn is_reconfig_request(bytes: &[u8]) -> bool {
        Txn::kind_of(bytes) == Some(op::RECONFIG)
    }

    pub fn is_reconfig(bytes: &[u8]) -> bool {
        Txn::kind_of(bytes) == Some(BODY_RECONFIG)
    }
}

/// Encode a write request as op code + body, in the client's own wire layout, so the
/// decoder is the same one the client port uses.
pub fn encode_write(w: &mut Writer, req: &Request) {
    match req {
        Request::Create {
            op: create_op,
            path,
            data,
            acl,
            flags,
            ttl,
        } => {
            let code = match create_op {
                CreateOp::Create => op::CREATE,
                CreateOp::Create2 => op::CREATE_TTL,
            };
            w.i32(code).string(path).nullable_buffer(data.as_deref());
            write_acls(w, acl);
            w.i32(*flags);
            if code == op::CREATE_TTL {
                w.i64(*ttl);
            }
        }
        Request::Delete { path, version } => {
            w.i32(op::DELETE).string(path).i32(*version);
        }
        Request::SetData {
            path,
            data,
            version,
        } => {
            w.i32(op::SET_DATA)
                .string(path)
                .nullable_buffer(data.as_deref())
                .i32(*version);
        }
        Request::SetAcl { path, acl, version } => {
            w.i32(op::SET_ACL).string(path);
            write_acls(w, acl);
            w.i32(*version);
        }
        Request::Check { path, version } => {
            w.i32(op::CHECK).string(path).i32(*version);
        }
        Request::Sync { path } => {
            w.i32(op::SYNC).string(path);
        }
        Request::Reconfig {
            joining,
            leaving,
            new_members,
            cur_config_id,
        } => {
            w.i32(op::RECONFIG)
                .nullable_buffer(joining.as_deref().map(str::as_bytes))
                .nullable_buffer(leaving.as_deref().map(str::as_bytes))
                .nullable_buffer(new_members.as_deref().map(str::as_bytes))
                .i64(*cur_config_id);
        }
        Request::Multi(ops) => {
            w.i32(op::MULTI);
            for o in ops {
                // The op code is written by the nested call; the header carries it again.
                let mut inner = Writer::new();
                encode_write(&mut inner, o);
                let code =
                    i32::from_be_bytes([inner.buf[0], inner.buf[1], inner.buf[2], inner.buf[3]]);
                w.i32(code).bool(false).i32(-1);
                w.buf.extend_from_slice(&inner.buf[4..]);
            }
            w.i32(-1).bool(true).i32(-1);
        }
        other => panic!("not a write request: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Acl;

    #[test]
    fn transactions_round_trip() {
        let txns = vec![
            Txn {
                zxid: 5,
                time_ms: 1000,
                session_id: 9,
                cxid: 1,
                auth: vec![Id {
                    scheme: "digest".into(),
                    id: "u:x".into(),
                }],
                body: TxnBody::Write(Request::Multi(vec![
                    Request::Create {
                        op: CreateOp::Create2,
                        path: "/a".into(),
                        data: Some(b"x".to_vec()),
                        acl: Acl::world_anyone(),
                        flags: 5,
                        ttl: 100,
                    },
                    Request::SetData {
                        path: "/a".into(),
                        data: None,
                        version: 0,
                    },
                    Request::Check {
                        path: "/a".into(),
                        version: 1,
                    },
                    Request::Delete {
                        path: "/a".into(),
                        version: -1,
                    },
                ])),
            },
            Txn {
                zxid: 6,
                time_ms: 1,
                session_id: 9,
                cxid: 0,
                auth: vec![],
                body: TxnBody::CreateSession {
                    timeout_ms: 4000,
                    password: vec![1; 16],
                },
            },
            Txn {
                zxid: 7,
                time_ms: 1,
                session_id: 0,
                cxid: 0,
                auth: vec![],
                body: TxnBody::DeleteIfEmpty { path: "/c".into() },
            },
        ];
        for t in txns {
            assert_eq!(Txn::from_bytes(&t.to_bytes()).unwrap(), t);
        }
    }

    #[test]
    fn null_data_is_logged_as_null_and_empty_as_empty() {
        let create = |data: Option<Vec<u8>>| Txn {
            zxid: 1,
            time_ms: 0,
            session_id: 1,
            cxid: 1,
            auth: vec![],
            body: TxnBody::Write(Request::Create {
                op: CreateOp::Create,
                path: "/p".into(),
                data,
                acl: Acl::world_anyone(),
                flags: 0,
                ttl: 0,
            }),
        };
        for data in [None, Some(vec![]), Some(b"d".to_vec())] {
            let t = create(data);
            assert_eq!(Txn::from_bytes(&t.to_bytes()).unwrap(), t);
        }
        // The bytes after the path carry jute's null length, as ZooKeeper's CreateTxn.
        let bytes = create(None).to_bytes();
        // After the data: ACL count, perms, "world", "anyone", flags.
        let after_data = 4 + 4 + (4 + 5) + (4 + 6) + 4;
        let at = bytes.len() - after_data - 4;
        assert_eq!(&bytes[at..at + 4], &(-1i32).to_be_bytes());
    }
}
