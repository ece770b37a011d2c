//! ZooKeeper's client protocol records: op codes, error codes, `Stat`, ACLs, and the
//! request bodies a client sends, decoded from jute.

use crate::jute::{JuteError, Reader, Writer};

/// Op codes, as in ZooKeeper's `ZooDefs.OpCode`.
pub mod op {
    pub const NOTIFICATION: i32 = 0;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const MULTI_READ: i32 = 22;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const SASL: i32 = 102;
    pub const GET_EPHEMERALS: i32 = 103;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    pub const SET_WATCHES2: i32 = 105;
    pub const ADD_WATCH: i32 = 106;
    pub const WHO_AM_I: i32 = 107;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

/// Special xids the client uses for out-of-band traffic.
pub mod xid {
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

/// ZooKeeper's `KeeperException.Code` values that this server returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[repr(i32)]
pub enum ErrorCode {
    #[error("ok")]
    Ok = 0,
    #[error("system error")]
    SystemError = -1,
    #[error("runtime inconsistency")]
    RuntimeInconsistency = -2,
    #[error("marshalling error")]
    MarshallingError = -5,
    #[error("unimplemented")]
    Unimplemented = -6,
    #[error("bad arguments")]
    BadArguments = -8,
    #[error("no node")]
    NoNode = -101,
    #[error("not authenticated")]
    NoAuth = -102,
    #[error("bad version")]
    BadVersion = -103,
    #[error("ephemerals cannot have children")]
    NoChildrenForEphemerals = -108,
    #[error("node exists")]
    NodeExists = -110,
    #[error("directory not empty")]
    NotEmpty = -111,
    #[error("session expired")]
    SessionExpired = -112,
    #[error("invalid ACL")]
    InvalidAcl = -114,
    #[error("authentication failed")]
    AuthFailed = -115,
    #[error("session moved")]
    SessionMoved = -118,
    #[error("not a read-only call")]
    NotReadOnly = -119,
    #[error("no watcher")]
    NoWatcher = -121,
    #[error("reconfig is disabled")]
    ReconfigDisabled = -123,
    #[error("no quorum of the new config is connected and synced")]
    NewConfigNoQuorum = -13,
    #[error("another reconfiguration is in progress")]
    ReconfigInProgress = -14,
}

impl ErrorCode {
    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn from_code(code: i32) -> ErrorCode {
        use ErrorCode::*;
        [
            Ok,
            SystemError,
            RuntimeInconsistency,
            MarshallingError,
            Unimplemented,
            BadArguments,
            NoNode,
            NoAuth,
            BadVersion,
            NoChildrenForEphemerals,
            NodeExists,
            NotEmpty,
            SessionExpired,
            InvalidAcl,
            AuthFailed,
            SessionMoved,
            NotReadOnly,
            NoWatcher,
            ReconfigDisabled,
            NewConfigNoQuorum,
            ReconfigInProgress,
        ]
        .into_iter()
        .find(|c| c.code() == code)
        .unwrap_or(SystemError)
    }
}

impl From<JuteError> for ErrorCode {
    fn from(_: JuteError) -> Self {
        ErrorCode::MarshallingError
    }
}

/// ACL permission bits (`ZooDefs.Perms`).
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = 31;
}

/// Watch event types (`Watcher.Event.EventType`).
pub mod event {
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
    pub const DATA_WATCH_REMOVED: i32 = 5;
    pub const CHILD_WATCH_REMOVED: i32 = 6;
    pub const PERSISTENT_WATCH_REMOVED: i32 = 7;
    /// `KeeperState.SyncConnected`, the state carried by every node event.
    pub const STATE_SYNC_CONNECTED: i32 = 3;
}

/// A znode's metadata, field for field as ZooKeeper's `Stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

impl Stat {
    pub fn write(&self, w: &mut Writer) {
        w.i64(self.czxid)
            .i64(self.mzxid)
            .i64(self.ctime)
            .i64(self.mtime)
            .i32(self.version)
            .i32(self.cversion)
            .i32(self.aversion)
            .i64(self.ephemeral_owner)
            .i32(self.data_length)
            .i32(self.num_children)
            .i64(self.pzxid);
    }

    pub fn read(r: &mut Reader) -> Result<Stat, JuteError> {
        Ok(Stat {
            czxid: r.read_i64()?,
            mzxid: r.read_i64()?,
            ctime: r.read_i64()?,
            mtime: r.read_i64()?,
            version: r.read_i32()?,
            cversion: r.read_i32()?,
            aversion: r.read_i32()?,
            ephemeral_owner: r.read_i64()?,
            data_length: r.read_i32()?,
            num_children: r.read_i32()?,
            pzxid: r.read_i64()?,
        })
    }
}

/// An authenticated identity or an ACL subject: `scheme:id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    pub scheme: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Acl {
    pub perms: i32,
    pub id: Id,
}

impl Acl {
    pub fn world_anyone() -> Vec<Acl> {
        vec![Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }]
    }
}

pub fn read_acls(r: &mut Reader) -> Result<Vec<Acl>, JuteError> {
    let n = r.read_len()?;
    (0..n)
        .map(|_| {
            Ok(Acl {
                perms: r.read_i32()?,
                id: Id {
                    scheme: r.read_string()?,
                    id: r.read_string()?,
                },
            })
        })
        .collect()
}

pub fn write_acls(w: &mut Writer, acls: &[Acl]) {
    w.i32(acls.len() as i32);
    for a in acls {
        w.i32(a.perms).string(&a.id.scheme).string(&a.id.id);
    }
}

/// `CreateMode` flags on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateMode {
    pub ephemeral: bool,
    pub sequential: bool,
    pub container: bool,
    pub ttl: bool,
}

impl CreateMode {
    pub fn from_flags(flags: i32) -> Option<CreateMode> {
        let m = |ephemeral, sequential, container, ttl| CreateMode {
            ephemeral,
            sequential,
            container,
            ttl,
        };
        Some(match flags {
            0 => m(false, false, false, false),
            1 => m(true, false, false, false),
            2 => m(false, true, false, false),
            3 => m(true, true, false, false),
            4 => m(false, false, true, false),
            5 => m(false, false, false, true),
            6 => m(false, true, false, true),
            _ => return None,
        })
    }
}

/// Which flavour of create the client sent; it decides the response layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOp {
    /// op 1: the response carries only the path.
    Create,
    /// ops 15, 19, 21: the response carries the path and the new node's `Stat`.
    Create2,
}

/// One decoded client request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Create {
        op: CreateOp,
        path: String,
        /// `None` is jute's null: the znode holds null data, not empty data.
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        flags: i32,
        ttl: i64,
    },
    Delete {
        path: String,
        version: i32,
    },
    Exists {
        path: String,
        watch: bool,
    },
    GetData {
        path: String,
        watch: bool,
    },
    SetData {
        path: String,
        /// `None` is jute's null, as for `Create`.
        data: Option<Vec<u8>>,
        version: i32,
    },
    GetAcl {
        path: String,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    GetChildren {
        path: String,
        watch: bool,
        with_stat: bool,
    },
    Sync {
        path: String,
    },
    Check {
        path: String,
        version: i32,
    },
    Multi(Vec<Request>),
    MultiRead(Vec<Request>),
    Auth {
        scheme: String,
        auth: Vec<u8>,
    },
    SetWatches {
        relative_zxid: i64,
        data: Vec<String>,
        exist: Vec<String>,
        child: Vec<String>,
        persistent: Vec<String>,
        persistent_recursive: Vec<String>,
    },
    GetEphemerals {
        prefix: String,
    },
    GetAllChildrenNumber {
        path: String,
    },
    AddWatch {
        path: String,
        mode: i32,
    },
    RemoveWatches {
        path: String,
        kind: i32,
        only_check: bool,
    },
    WhoAmI,
    Ping,
    Close,
    /// `reconfig` (ZooKeeper 3.5+): incremental (`joining` server lines, `leaving` ids,
    /// comma-separated) or the whole new membership (`new_members`); `cur_config_id` is
    /// the version it applies to, -1 for any.
    Reconfig {
        joining: Option<String>,
        leaving: Option<String>,
        new_members: Option<String>,
        cur_config_id: i64,
    },
}

impl Request {
    /// Whether this request changes the tree and so must be logged (and, in an
    /// ensemble, go through the leader).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create { .. }
                | Request::Delete { .. }
                | Request::SetData { .. }
                | Request::SetAcl { .. }
                | Request::Check { .. }
                | Request::Multi(_)
                | Request::Close
                | Request::Reconfig { .. }
        )
    }

    /// Decode the body of a request with op code `op`.
    pub fn decode(op: i32, r: &mut Reader) -> Result<Request, ErrorCode> {
        Ok(match op {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                let path = r.read_string()?;
                let data = r.read_buffer()?;
                let acl = read_acls(r)?;
                let mut flags = r.read_i32()?;
                let ttl = if op == op::CREATE_TTL {
                    r.read_i64()?
                } else {
                    0
                };
                if op == op::CREATE_CONTAINER {
                    flags = 4;
                }
                Request::Create {
                    op: if op == op::CREATE {
                        CreateOp::Create
                    } else {
                        CreateOp::Create2
                    },
                    path,
                    data,
                    acl,
                    flags,
                    ttl,
                }
            }
            op::DELETE | op::DELETE_CONTAINER => Request::Delete {
                path: r.read_string()?,
                version: if op == op::DELETE { r.read_i32()? } else { -1 },
            },
            op::EXISTS => Request::Exists {
                path: r.read_string()?,
                watch: r.read_bool()?,
            },
            op::GET_DATA => Request::GetData {
                path: r.read_string()?,
                watch: r.read_bool()?,
            },
            op::SET_DATA => Request::SetData {
                path: r.read_string()?,
                data: r.read_buffer()?,
                version: r.read_i32()?,
            },
            op::GET_ACL => Request::GetAcl {
                path: r.read_string()?,
            },
            op::SET_ACL => Request::SetAcl {
                path: r.read_string()?,
                acl: read_acls(r)?,
                version: r.read_i32()?,
            },
            op::GET_CHILDREN | op::GET_CHILDREN2 => Request::GetChildren {
                path: r.read_string()?,
                watch: r.read_bool()?,
                with_stat: op == op::GET_CHILDREN2,
            },
            op::SYNC => Request::Sync {
                path: r.read_string()?,
            },
            op::RECONFIG => {
                let mut ustring = || -> Result<Option<String>, ErrorCode> {
                    Ok(r.read_buffer()?
                        .map(|b| String::from_utf8_lossy(&b).into_owned()))
                };
                Request::Reconfig {
                    joining: ustring()?,
                    leaving: ustring()?,
                    new_members: ustring()?,
                    cur_config_id: r.read_i64()?,
                }
            }
            op::CHECK => Request::Check {
                path: r.read_string()?,
                version: r.read_i32()?,
            },
            op::MULTI | op::MULTI_READ => {
                let mut ops = Vec::new();
                loop {
                    let ty = r.read_i32()?;
                    let done = r.read_bool()?;
                    let _err = r.read_i32()?;
                    if done {
                        break;
                    }
                    let allowed: &[i32] = if op == op::MULTI {
                        &[
                            op::CREATE,
                            op::CREATE2,
                            op::CREATE_CONTAINER,
                            op::CREATE_TTL,
                            op::DELETE,
                            op::SET_DATA,
                            op::CHECK,
                        ]
                    } else {
                        &[op::GET_CHILDREN, op::GET_DATA]
                    };
                    if !allowed.contains(&ty) {
                        return Err(ErrorCode::MarshallingError);
                    }
                    ops.push(Request::decode(ty, r)?);
                }
                if op == op::MULTI {
                    Request::Multi(ops)
                } else {
                    Request::MultiRead(ops)
                }
            }
            op::AUTH => {
                let _type = r.read_i32()?;
                Request::Auth {
                    scheme: r.read_string()?,
                    auth: r.read_bytes()?,
                }
            }
            op::SET_WATCHES | op::SET_WATCHES2 => {
                let relative_zxid = r.read_i64()?;
                let data = r.read_strings()?;
                let exist = r.read_strings()?;
                let child = r.read_strings()?;
                let (persistent, persistent_recursive) = if op == op::SET_WATCHES2 {
                    (r.read_strings()?, r.read_strings()?)
                } else {
                    (Vec::new(), Vec::new())
                };
                Request::SetWatches {
                    relative_zxid,
                    data,
                    exist,
                    child,
                    persistent,
                    persistent_recursive,
                }
            }
            op::GET_EPHEMERALS => Request::GetEphemerals {
                prefix: r.read_string()?,
            },
            op::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber {
                path: r.read_string()?,
            },
            op::ADD_WATCH => Request::AddWatch {
                path: r.read_string()?,
                mode: r.read_i32()?,
            },
            op::REMOVE_WATCHES | op::CHECK_WATCHES => Request::RemoveWatches {
                path: r.read_string()?,
                kind: r.read_i32()?,
                only_check: op == op::CHECK_WATCHES,
            },
            op::WHO_AM_I => Request::WhoAmI,
            op::PING => Request::Ping,
            op::CLOSE_SESSION => Request::Close,
            _ => return Err(ErrorCode::Unimplemented),
        })
    }
}

/// Check a path the way ZooKeeper's `PathUtils.validatePath` does.
pub fn validate_path(path: &str, sequential: bool) -> Result<(), ErrorCode> {
    let bad = Err(ErrorCode::BadArguments);
    if !path.starts_with('/') {
        return bad;
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') && !sequential {
        return bad;
    }
    let body = if sequential && path.ends_with('/') {
        &path[1..path.len() - 1]
    } else {
        &path[1..]
    };
    for seg in body.split('/') {
        if body.is_empty() {
            break;
        }
        if seg.is_empty() || seg == "." || seg == ".." {
            return bad;
        }
        if seg.chars().any(|c| {
            c == '\0'
                || ('\u{1}'..='\u{1f}').contains(&c)
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || ('\u{e000}'..='\u{f8ff}').contains(&c)
                || ('\u{fff0}'..='\u{ffff}').contains(&c)
        }) {
            return bad;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_validated_like_zookeeper() {
        assert!(validate_path("/", false).is_ok());
        assert!(validate_path("/a/b", false).is_ok());
        assert!(validate_path("/a/", true).is_ok());
        assert!(validate_path("a", false).is_err());
        assert!(validate_path("/a/", false).is_err());
        assert!(validate_path("/a//b", false).is_err());
        assert!(validate_path("/a/./b", false).is_err());
        assert!(validate_path("/a/..", false).is_err());
    }

    #[test]
    fn multi_decodes_until_done_header() {
        let mut w = Writer::new();
        w.i32(op::CHECK).bool(false).i32(-1).string("/a").i32(3);
        w.i32(op::DELETE).bool(false).i32(-1).string("/b").i32(-1);
        w.i32(-1).bool(true).i32(-1);
        let req = Request::decode(op::MULTI, &mut Reader::new(&w.buf)).unwrap();
        assert_eq!(
            req,
            Request::Multi(vec![
                Request::Check {
                    path: "/a".into(),
                    version: 3
                },
                Request::Delete {
                    path: "/b".into(),
                    version: -1
                }
            ])
        );
    }

    #[test]
    fn reads_are_not_allowed_inside_multi() {
        let mut w = Writer::new();
        w.i32(op::GET_DATA)
            .bool(false)
            .i32(-1)
            .string("/a")
            .bool(false);
        w.i32(-1).bool(true).i32(-1);
        assert_eq!(
            Request::decode(op::MULTI, &mut Reader::new(&w.buf)),
            Err(ErrorCode::MarshallingError)
        );
    }
}
