//! `DataTree`: the znodes, their `Stat`, sessions and the ephemerals they own.
//!
//! The tree changes only through [`DataTree::apply`], one committed transaction at a
//! time, and reports which watch events each change triggers; watches themselves are
//! per-server state and live in [`crate::watch`]. Each write operation is a file of its
//! own beside this one (`create.rs`, `delete.rs`, `set_data.rs`, `set_acl.rs`,
//! `check.rs`, `multi.rs`); this file holds the nodes, the indexes kept beside them
//! (ephemerals, containers and TTL nodes), undo for `multi`, and snapshots.

mod check;
mod create;
mod delete;
mod multi;
mod set_acl;
mod set_data;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;

use crate::acl;
use crate::jute::{JuteError, Reader, Writer};
use crate::proto::{
    Acl, ErrorCode, Id, Request, Stat, event, perms, read_acls, validate_path, write_acls,
};
use crate::txn::{Txn, TxnBody};

/// `ephemeralOwner` of a container node (`EphemeralType.CONTAINER`).
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// High byte marking an `ephemeralOwner` that holds a TTL (`EphemeralType.TTL`).
const TTL_MASK: i64 = 0xFF00_0000_0000_0000_u64 as i64;
/// Largest TTL ZooKeeper accepts (`EphemeralType.MAX_TTL`).
pub const MAX_TTL_MS: i64 = 0x00FF_FFFF_FFFF;
/// The node holding the ensemble's membership, as ZooKeeper keeps it (`ZooDefs.CONFIG_NODE`).
pub const CONFIG_NODE: &str = "/zookeeper/config";
/// Bytes of a serialized snapshot gathered before they are handed on.
pub const SNAPSHOT_CHUNK: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// `None` for a znode created or set with null data; it reads back as null. Shared,
    /// so a snapshot can hold it without a copy.
    pub data: Option<Bytes>,
    /// Shared with every node holding the same list (see [`DataTree::intern_acl`]).
    pub acl: Arc<[Acl]>,
    /// `data_length` and `num_children` are derived when the stat is read.
    pub stat: Stat,
    pub children: BTreeSet<String>,
}

impl Node {
    pub fn stat(&self) -> Stat {
        Stat {
            data_length: self.data_len() as i32,
            num_children: self.children.len() as i32,
            ..self.stat
        }
    }

    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, Bytes::len)
    }

    fn ttl_ms(&self) -> Option<i64> {
        let owner = self.stat.ephemeral_owner;
        (owner != CONTAINER_OWNER && owner & TTL_MASK == TTL_MASK).then_some(owner & !TTL_MASK)
    }
}

/// A session as the ensemble agrees on it; when it expires is each leader's business.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    pub timeout_ms: i32,
    pub password: Vec<u8>,
}

/// What applying a transaction produced, for the reply to the client that sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    Stat(Stat),
    /// A `sync` went through the log; it changes nothing.
    Synced,
    Multi(Vec<Result<Outcome, ErrorCode>>),
    SessionCreated,
    SessionClosed,
    /// A reconfiguration applied: the new configuration and the stat of its node.
    Config {
        data: Bytes,
        stat: Stat,
    },
}

/// How to take back one change when a later op of the same multi fails.
#[derive(Debug)]
enum Undo {
    /// Put this node back (`None`: remove it); only for nodes without children.
    Node(String, Option<Node>),
    /// Restore a node's data, ACL and stat; its children are untouched.
    Content {
        path: String,
        data: Option<Bytes>,
        acl: Arc<[Acl]>,
        stat: Stat,
    },
    /// Restore a parent's stat and take back the child added or removed.
    Parent {
        path: String,
        stat: Stat,
        added: Option<String>,
        removed: Option<String>,
    },
}

/// A watch trigger: event type and path.
pub type Trigger = (i32, String);

/// The result of applying one transaction.
#[derive(Debug)]
pub struct Applied {
    /// What the client that sent it is told.
    pub result: Result<Outcome, ErrorCode>,
    /// Watch events, in the order ZooKeeper delivers them.
    pub triggers: Vec<Trigger>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DataTree {
    nodes: HashMap<String, Node>,
    ephemerals: HashMap<i64, BTreeSet<String>>,
    /// Containers and TTL nodes, checked by the leader's housekeeping.
    special: BTreeSet<String>,
    pub sessions: BTreeMap<i64, SessionInfo>,
    /// zxid of the last transaction applied.
    pub last_zxid: i64,
    /// Every distinct ACL list in use, once (ZooKeeper's `ReferenceCountedACLCache`):
    /// nodes share it, so a snapshot, a setData's undo record or a copy of a node clones
    /// a pointer, not the strings of every id. Lists no node holds any more are dropped
    /// once the cache has doubled since the last sweep.
    acls: HashSet<Arc<[Acl]>>,
    acls_swept_at: usize,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "/",
    }
}

fn name_of(path: &str) -> &str {
    &path[path.rfind('/').map_or(0, |i| i + 1)..]
}

fn check_version(expected: i32, actual: i32) -> Result<(), ErrorCode> {
    if expected == -1 || expected == actual {
        Ok(())
    } else {
        Err(ErrorCode::BadVersion)
    }
}

impl DataTree {
    /// A tree holding `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`, like a
    /// fresh ZooKeeper.
    pub fn new() -> DataTree {
        let mut t = DataTree::empty(0);
        // ZooKeeper's own nodes hold empty data, not null.
        let anyone = t.intern_acl(Acl::world_anyone());
        let empty = |children: &[&str]| Node {
            data: Some(Bytes::new()),
            acl: anyone.clone(),
            stat: Stat::default(),
            children: children.iter().map(|s| s.to_string()).collect(),
        };
        t.nodes.insert("/".into(), empty(&["zookeeper"]));
        t.nodes.insert("/zookeeper".into(), empty(&["quota"]));
        t.nodes.insert("/zookeeper/quota".into(), empty(&[]));
        t.set_config(None);
        t
    }

    /// No nodes at all.
    fn empty(last_zxid: i64) -> DataTree {
        DataTree {
            nodes: HashMap::new(),
            ephemerals: HashMap::new(),
            special: BTreeSet::new(),
            sessions: BTreeMap::new(),
            last_zxid,
            acls: HashSet::new(),
            acls_swept_at: 0,
        }
    }

    /// The shared copy of `acl`.
    pub(crate) fn intern_acl(&mut self, acl: Vec<Acl>) -> Arc<[Acl]> {
        if let Some(shared) = self.acls.get(acl.as_slice()) {
            return shared.clone();
        }
        if self.acls.len() >= 2 * self.acls_swept_at.max(16) {
            self.acls.retain(|a| Arc::strong_count(a) > 1);
            self.acls_swept_at = self.acls.len();
        }
        let shared: Arc<[Acl]> = Arc::from(acl);
        self.acls.insert(shared.clone());
        shared
    }

    /// Put the ensemble's membership into [`CONFIG_NODE`], as each ZooKeeper server does at
    /// start from its own configuration (`initConfigInZKDatabase`: data version -1, mzxid
    /// the config's version, 0 for a static one). A standalone server leaves it empty.
    /// Also creates the node in a tree loaded from a snapshot taken before it existed.
    pub fn set_config(&mut self, text: Option<&str>) {
        if !self.nodes.contains_key(CONFIG_NODE) {
            // As ZooKeeper creates it: empty, readable by anyone, writable by no one.
            let acl = self.intern_acl(vec![Acl {
                perms: perms::READ,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }]);
            let node = Node {
                data: Some(Bytes::new()),
                acl,
                stat: Stat::default(),
                children: BTreeSet::new(),
            };
            self.nodes.insert(CONFIG_NODE.into(), node);
            if let Some(parent) = self.nodes.get_mut("/zookeeper") {
                parent.children.insert("config".into());
            }
        }
        if let (Some(text), Some(node)) = (text, self.nodes.get_mut(CONFIG_NODE)) {
            node.data = Some(Bytes::copy_from_slice(text.as_bytes()));
            node.stat.version = -1;
            node.stat.mzxid = 0;
        }
    }

    /// A committed reconfiguration: [`CONFIG_NODE`] holds the new configuration, with
    /// data version -1 and the reconfiguration's zxid and time, as ZooKeeper's
    /// `processTxn` leaves it.
    fn reconfigure(&mut self, config: &str, txn: &Txn, triggers: &mut Vec<Trigger>) -> Outcome {
        self.set_config(None);
        let n = self
            .nodes
            .get_mut(CONFIG_NODE)
            .expect("set_config creates it");
        let data = Bytes::copy_from_slice(config.as_bytes());
        n.data = Some(data.clone());
        n.stat.version = -1;
        n.stat.mzxid = txn.zxid;
        n.stat.mtime = txn.time_ms;
        let stat = n.stat();
        triggers.push((event::NODE_DATA_CHANGED, CONFIG_NODE.to_string()));
        Outcome::Config { data, stat }
    }

    /// Whether [`CONFIG_NODE`] holds a configuration a reconfiguration made (rather than
    /// each server's static one).
    pub fn has_dynamic_config(&self) -> bool {
        self.nodes
            .get(CONFIG_NODE)
            .is_some_and(|n| n.stat.mzxid != 0)
    }

    /// Znodes as ZooKeeper counts them (`zk_znode_count`, `srvr`'s node count): its tree
    /// holds the root twice, under `""` and `"/"`, and counts both.
    pub fn node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Approximate bytes of data held, for `mntr`'s `zk_approximate_data_size`.
    pub fn approximate_data_size(&self) -> usize {
        self.nodes.iter().map(|(k, v)| k.len() + v.data_len()).sum()
    }

    pub fn ephemerals_of(&self, session: i64) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Read with an ACL check (`perm`) for the session's `auth` ids.
    pub fn read(&self, path: &str, perm: i32, auth: &[Id]) -> Result<&Node, ErrorCode> {
        validate_path(path, false)?;
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        if perm != 0 {
            acl::check(&node.acl, perm, auth)?;
        }
        Ok(node)
    }

    /// Number of all descendants of `path` (`getAllChildrenNumber`).
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![path.to_string()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(&p) {
                for c in &n.children {
                    count += 1;
                    stack.push(child_path(&p, c));
                }
            }
        }
        count
    }

    /// Containers that are empty and once had children, and TTL nodes that are empty
    /// and were not modified for their TTL: ZooKeeper's `ContainerManager` candidates.
    pub fn expired_special_nodes(&self, now_ms: i64) -> Vec<String> {
        self.special
            .iter()
            .filter(|p| {
                let Some(n) = self.nodes.get(*p) else {
                    return false;
                };
                if !n.children.is_empty() {
                    return false;
                }
                match n.ttl_ms() {
                    Some(ttl) => now_ms > n.stat.mtime + ttl,
                    None => n.stat.cversion > 0,
                }
            })
            .cloned()
            .collect()
    }

    /// Apply one committed transaction. Returns the result for the client and the watch
    /// events it triggers, in the order ZooKeeper delivers them.
    pub fn apply(&mut self, txn: &Txn) -> Applied {
        assert!(
            txn.zxid > self.last_zxid,
            "zxid {:#x} applied after {:#x}",
            txn.zxid,
            self.last_zxid
        );
        self.last_zxid = txn.zxid;
        let mut triggers = Vec::new();
        let result = match &txn.body {
            TxnBody::CreateSession {
                timeout_ms,
                password,
            } => {
                self.sessions.insert(
                    txn.session_id,
                    SessionInfo {
                        timeout_ms: *timeout_ms,
                        password: password.clone(),
                    },
                );
                Ok(Outcome::SessionCreated)
            }
            TxnBody::CloseSession => {
                self.sessions.remove(&txn.session_id);
                for path in self.ephemerals_of(txn.session_id) {
                    let mut undo = Vec::new();
                    let _ = self.delete(&path, -1, txn, &[], false, &mut triggers, &mut undo);
                }
                Ok(Outcome::SessionClosed)
            }
            TxnBody::DeleteIfEmpty { path } => {
                let empty = self.nodes.get(path).is_some_and(|n| n.children.is_empty());
                if empty {
                    let mut undo = Vec::new();
                    self.delete(path, -1, txn, &[], false, &mut triggers, &mut undo)
                } else {
                    Err(ErrorCode::NotEmpty)
                }
            }
            TxnBody::Reconfig { config } => Ok(self.reconfigure(config, txn, &mut triggers)),
            TxnBody::Error { code } => Err(ErrorCode::from_code(*code)),
            // Only the leader's decision about a request is logged, never the request.
            TxnBody::Write(Request::Reconfig { .. }) => Err(ErrorCode::SystemError),
            TxnBody::Write(Request::Multi(ops)) => self.multi(ops, txn, &mut triggers),
            TxnBody::Write(req) => {
                let mut undo = Vec::new();
                self.write(req, txn, &mut triggers, &mut undo)
            }
        };
        Applied { result, triggers }
    }

    /// Replace (or remove) a node, keeping the ephemeral and container indexes in step.
    fn put(&mut self, path: &str, node: Option<Node>) {
        if let Some(old) = self.nodes.remove(path) {
            let owner = old.stat.ephemeral_owner;
            if owner != 0
                && owner & TTL_MASK != TTL_MASK
                && owner != CONTAINER_OWNER
                && let Some(set) = self.ephemerals.get_mut(&owner)
            {
                set.remove(path);
                if set.is_empty() {
                    self.ephemerals.remove(&owner);
                }
            }
            self.special.remove(path);
        }
        if let Some(n) = node {
            let owner = n.stat.ephemeral_owner;
            if owner == CONTAINER_OWNER || (owner != 0 && owner & TTL_MASK == TTL_MASK) {
                self.special.insert(path.to_string());
            } else if owner != 0 {
                self.ephemerals
                    .entry(owner)
                    .or_default()
                    .insert(path.to_string());
            }
            self.nodes.insert(path.to_string(), n);
        }
    }

    /// Take back one change of a multi that failed further on.
    fn undo(&mut self, u: Undo) {
        match u {
            Undo::Node(path, node) => self.put(&path, node),
            Undo::Content {
                path,
                data,
                acl,
                stat,
            } => {
                if let Some(n) = self.nodes.get_mut(&path) {
                    n.data = data;
                    n.acl = acl;
                    n.stat = stat;
                }
            }
            Undo::Parent {
                path,
                stat,
                added,
                removed,
            } => {
                if let Some(n) = self.nodes.get_mut(&path) {
                    n.stat = stat;
                    if let Some(a) = added {
                        n.children.remove(&a);
                    }
                    if let Some(r) = removed {
                        n.children.insert(r);
                    }
                }
            }
        }
    }

    /// A child of `parent` was added or removed: bump cversion and pzxid, in place (a
    /// parent may have very many children; copying them per create would be quadratic).
    fn child_changed(
        &mut self,
        parent: &str,
        zxid: i64,
        added: Option<&str>,
        removed: Option<&str>,
        undo: &mut Vec<Undo>,
    ) {
        let p = self
            .nodes
            .get_mut(parent)
            .expect("parent checked by the caller");
        undo.push(Undo::Parent {
            path: parent.to_string(),
            stat: p.stat,
            added: added.map(str::to_string),
            removed: removed.map(str::to_string),
        });
        p.stat.cversion += 1;
        p.stat.pzxid = zxid;
        if let Some(a) = added {
            p.children.insert(a.to_string());
        }
        if let Some(r) = removed {
            p.children.remove(r);
        }
    }

    /// One write of a transaction, alone or as part of a `multi`.
    fn write(
        &mut self,
        req: &Request,
        txn: &Txn,
        triggers: &mut Vec<Trigger>,
        undo: &mut Vec<Undo>,
    ) -> Result<Outcome, ErrorCode> {
        match req {
            Request::Create {
                path,
                data,
                acl,
                flags,
                ttl,
                ..
            } => self.create(
                path,
                data.as_deref(),
                acl,
                *flags,
                *ttl,
                txn,
                triggers,
                undo,
            ),
            Request::Delete { path, version } => {
                self.delete(path, *version, txn, &txn.auth, true, triggers, undo)
            }
            Request::SetData {
                path,
                data,
                version,
            } => self.set_data(path, data.as_deref(), *version, txn, triggers, undo),
            Request::SetAcl { path, acl, version } => self.set_acl(path, acl, *version, txn, undo),
            Request::Check { path, version } => self.check(path, *version, txn),
            Request::Sync { .. } => Ok(Outcome::Synced),
            _ => Err(ErrorCode::BadArguments),
        }
    }

    /// Serialize the whole tree (a snapshot body).
    pub fn serialize(&self, w: &mut Writer) {
        self.snapshot_view().serialize(w);
    }

    /// What a snapshot holds, taken between two transactions without copying any znode's
    /// data (it is shared); serializing it can then run beside the requests, as
    /// ZooKeeper's snapshot thread does, instead of stopping them for the whole tree.
    pub fn snapshot_view(&self) -> SnapshotView {
        SnapshotView {
            last_zxid: self.last_zxid,
            sessions: self
                .sessions
                .iter()
                .map(|(id, s)| (*id, s.timeout_ms, s.password.clone()))
                .collect(),
            nodes: self
                .nodes
                .iter()
                .map(|(p, n)| (p.clone(), n.data.clone(), n.acl.clone(), n.stat))
                .collect(),
        }
    }

    pub fn deserialize(r: &mut Reader) -> Result<DataTree, JuteError> {
        let last_zxid = r.read_i64()?;
        let mut t = DataTree::empty(last_zxid);
        for _ in 0..r.read_len()? {
            let id = r.read_i64()?;
            t.sessions.insert(
                id,
                SessionInfo {
                    timeout_ms: r.read_i32()?,
                    password: r.read_bytes()?,
                },
            );
        }
        let mut all = Vec::new();
        for _ in 0..r.read_len()? {
            let path = r.read_string()?;
            let data = r.read_buffer()?.map(Bytes::from);
            let acl = t.intern_acl(read_acls(r)?);
            let stat = Stat::read(r)?;
            all.push((
                path,
                Node {
                    data,
                    acl,
                    stat,
                    children: BTreeSet::new(),
                },
            ));
        }
        for (path, node) in all {
            t.put(&path, Some(node));
        }
        let paths: Vec<String> = t.nodes.keys().filter(|p| *p != "/").cloned().collect();
        for p in paths {
            let parent = parent_of(&p).to_string();
            let name = name_of(&p).to_string();
            t.nodes
                .get_mut(&parent)
                .ok_or(JuteError::Truncated("parent of a snapshot node"))?
                .children
                .insert(name);
        }
        Ok(t)
    }
}

/// A znode as a snapshot records it: path, data, ACL, stat.
type SnapshotNode = (String, Option<Bytes>, Arc<[Acl]>, Stat);

/// A [`DataTree`] as a snapshot records it: see [`DataTree::snapshot_view`].
pub struct SnapshotView {
    last_zxid: i64,
    sessions: Vec<(i64, i32, Vec<u8>)>,
    nodes: Vec<SnapshotNode>,
}

impl SnapshotView {
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The snapshot format [`DataTree::deserialize`] reads: znodes in path order.
    pub fn serialize(self, w: &mut Writer) {
        let out = &mut w.buf;
        self.serialize_to(&mut |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })
        .expect("appending to memory does not fail");
    }

    /// [`SnapshotView::serialize`] in pieces of about [`SNAPSHOT_CHUNK`] bytes handed to
    /// `sink` as they fill, so a snapshot goes to its file without ever being whole in
    /// memory (ZooKeeper streams its snapshots the same way).
    pub fn serialize_to(
        mut self,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut w = Writer::new();
        w.buf.reserve(SNAPSHOT_CHUNK + 64 * 1024);
        w.i64(self.last_zxid);
        w.i32(self.sessions.len() as i32);
        for (id, timeout_ms, password) in &self.sessions {
            w.i64(*id).i32(*timeout_ms).buffer(password);
            if w.buf.len() >= SNAPSHOT_CHUNK {
                sink(&w.buf)?;
                w.buf.clear();
            }
        }
        self.nodes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        w.i32(self.nodes.len() as i32);
        for (path, data, acl, stat) in &self.nodes {
            w.string(path).nullable_buffer(data.as_deref());
            write_acls(&mut w, acl);
            stat.write(&mut w);
            if w.buf.len() >= SNAPSHOT_CHUNK {
                sink(&w.buf)?;
                w.buf.clear();
            }
        }
        if !w.buf.is_empty() {
            sink(&w.buf)?;
        }
        Ok(())
    }
}

pub fn child_path(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{CreateOp, event};

    fn txn(zxid: i64, body: TxnBody) -> Txn {
        Txn {
            zxid,
            time_ms: zxid * 10,
            session_id: 7,
            cxid: 0,
            auth: vec![],
            body,
        }
    }

    fn create(path: &str, flags: i32) -> TxnBody {
        TxnBody::Write(Request::Create {
            op: CreateOp::Create2,
            path: path.into(),
            data: Some(b"d".to_vec()),
            acl: Acl::world_anyone(),
            flags,
            ttl: 0,
        })
    }

    #[test]
    fn create_sets_stat_and_parent_like_zookeeper() {
        let mut t = DataTree::new();
        let Applied {
            result: r,
            triggers: trig,
        } = t.apply(&txn(1, create("/a", 0)));
        let Ok(Outcome::Created { path, stat }) = r else {
            panic!("{r:?}")
        };
        assert_eq!(path, "/a");
        assert_eq!(
            stat,
            Stat {
                czxid: 1,
                mzxid: 1,
                pzxid: 1,
                ctime: 10,
                mtime: 10,
                data_length: 1,
                ..Stat::default()
            }
        );
        assert_eq!(
            trig,
            vec![
                (event::NODE_CREATED, "/a".to_string()),
                (event::NODE_CHILDREN_CHANGED, "/".to_string())
            ]
        );
        let root = t.get("/").unwrap().stat();
        assert_eq!((root.cversion, root.pzxid, root.num_children), (1, 1, 2));
        assert_eq!(
            t.apply(&txn(2, create("/a", 0))).result,
            Err(ErrorCode::NodeExists)
        );
        assert_eq!(
            t.apply(&txn(3, create("/x/y", 0))).result,
            Err(ErrorCode::NoNode)
        );
    }

    #[test]
    fn nodes_share_one_copy_of_each_acl_list() {
        let mut t = DataTree::new();
        t.apply(&txn(1, create("/a", 0)));
        t.apply(&txn(2, create("/b", 0)));
        let acl = |t: &DataTree, p: &str| t.get(p).unwrap().acl.clone();
        assert!(Arc::ptr_eq(&acl(&t, "/a"), &acl(&t, "/b")));
        assert!(Arc::ptr_eq(&acl(&t, "/a"), &acl(&t, "/")));
        // Lists no node holds any more are swept as the cache grows.
        for i in 0..100 {
            let mut list = Acl::world_anyone();
            list.push(Acl {
                perms: perms::READ,
                id: Id {
                    scheme: "digest".into(),
                    id: format!("user{i}:hash"),
                },
            });
            let set = Request::SetAcl {
                path: "/a".into(),
                acl: list.clone(),
                version: -1,
            };
            assert!(t.apply(&txn(3 + i, TxnBody::Write(set))).result.is_ok());
            assert_eq!(&*acl(&t, "/a"), list.as_slice());
        }
        assert!(t.acls.len() < 40, "{} lists cached", t.acls.len());
        assert!(Arc::ptr_eq(&acl(&t, "/b"), &acl(&t, "/")));
    }

    #[test]
    fn sequential_names_use_parent_cversion() {
        let mut t = DataTree::new();
        t.apply(&txn(1, create("/q", 0)));
        t.apply(&txn(2, create("/q/other", 0)));
        let Applied { result: r, .. } = t.apply(&txn(3, create("/q/n-", 2)));
        assert!(matches!(r, Ok(Outcome::Created { path, .. }) if path == "/q/n-0000000001"));
    }

    #[test]
    fn ephemerals_vanish_with_their_session_and_cannot_have_children() {
        let mut t = DataTree::new();
        t.apply(&txn(1, create("/e", 1)));
        assert_eq!(t.ephemerals_of(7), vec!["/e"]);
        assert_eq!(
            t.apply(&txn(2, create("/e/c", 0))).result,
            Err(ErrorCode::NoChildrenForEphemerals)
        );
        let Applied { triggers: trig, .. } = t.apply(&txn(3, TxnBody::CloseSession));
        assert!(t.get("/e").is_none());
        assert_eq!(trig[0], (event::NODE_DELETED, "/e".to_string()));
        assert_eq!(t.ephemeral_count(), 0);
    }

    #[test]
    fn failed_multi_changes_nothing_and_reports_per_op_errors() {
        let mut t = DataTree::new();
        let before = t.clone();
        let body = TxnBody::Write(Request::Multi(vec![
            Request::Create {
                op: CreateOp::Create,
                path: "/m".into(),
                data: None,
                acl: Acl::world_anyone(),
                flags: 0,
                ttl: 0,
            },
            Request::Check {
                path: "/m".into(),
                version: 5,
            },
            Request::Delete {
                path: "/m".into(),
                version: -1,
            },
        ]));
        let Applied {
            result: r,
            triggers: trig,
        } = t.apply(&txn(1, body));
        assert_eq!(
            r,
            Ok(Outcome::Multi(vec![
                Err(ErrorCode::Ok),
                Err(ErrorCode::BadVersion),
                Err(ErrorCode::RuntimeInconsistency)
            ]))
        );
        assert!(trig.is_empty());
        assert_eq!(t.nodes, before.nodes);
        assert_eq!(t.last_zxid, 1);
    }

    #[test]
    fn versions_are_checked() {
        let mut t = DataTree::new();
        t.apply(&txn(1, create("/v", 0)));
        let set = |v| {
            TxnBody::Write(Request::SetData {
                path: "/v".into(),
                data: Some(b"new".to_vec()),
                version: v,
            })
        };
        assert_eq!(t.apply(&txn(2, set(3))).result, Err(ErrorCode::BadVersion));
        let Applied { result: r, .. } = t.apply(&txn(3, set(0)));
        let Ok(Outcome::Stat(s)) = r else { panic!() };
        assert_eq!((s.version, s.mzxid, s.czxid, s.data_length), (1, 3, 1, 3));
    }

    #[test]
    fn containers_and_ttl_nodes_expire_when_empty() {
        let mut t = DataTree::new();
        t.apply(&txn(1, create("/c", 4)));
        assert!(t.expired_special_nodes(0).is_empty(), "never had children");
        t.apply(&txn(2, create("/c/x", 0)));
        t.apply(&txn(
            3,
            TxnBody::Write(Request::Delete {
                path: "/c/x".into(),
                version: -1,
            }),
        ));
        assert_eq!(t.expired_special_nodes(0), vec!["/c"]);
        let mut ttl = create("/t", 5);
        if let TxnBody::Write(Request::Create { ttl: v, .. }) = &mut ttl {
            *v = 100;
        }
        t.apply(&txn(4, ttl));
        assert_eq!(t.expired_special_nodes(140), vec!["/c"]);
        assert_eq!(t.expired_special_nodes(141), vec!["/c", "/t"]);
    }

    #[test]
    fn null_data_stays_null_through_create_set_multi_and_snapshot() {
        let mut t = DataTree::new();
        let with = |path: &str, data: Option<&[u8]>| {
            TxnBody::Write(Request::Create {
                op: CreateOp::Create,
                path: path.into(),
                data: data.map(<[u8]>::to_vec),
                acl: Acl::world_anyone(),
                flags: 0,
                ttl: 0,
            })
        };
        t.apply(&txn(1, with("/null", None)));
        t.apply(&txn(2, with("/empty", Some(b""))));
        t.apply(&txn(
            3,
            TxnBody::Write(Request::Multi(vec![
                Request::Create {
                    op: CreateOp::Create2,
                    path: "/m".into(),
                    data: None,
                    acl: Acl::world_anyone(),
                    flags: 0,
                    ttl: 0,
                },
                Request::SetData {
                    path: "/empty".into(),
                    data: Some(b"x".to_vec()),
                    version: 0,
                },
            ])),
        ));
        t.apply(&txn(
            4,
            TxnBody::Write(Request::SetData {
                path: "/empty".into(),
                data: None,
                version: 1,
            }),
        ));
        t.apply(&txn(5, with("/still-empty", Some(b""))));
        assert_eq!(t.get("/null").unwrap().data, None);
        assert_eq!(t.get("/m").unwrap().data, None);
        assert_eq!(t.get("/empty").unwrap().data, None, "setData(null)");
        assert_eq!(
            t.get("/still-empty").unwrap().data.as_deref(),
            Some(&b""[..])
        );
        assert_eq!(t.get("/null").unwrap().stat().data_length, 0);
        assert_eq!(
            t.get("/").unwrap().data.as_deref(),
            Some(&b""[..]),
            "as ZooKeeper's root"
        );
        let mut w = Writer::new();
        t.serialize(&mut w);
        let back = DataTree::deserialize(&mut Reader::new(&w.buf)).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.get("/null").unwrap().data, None);
        assert_eq!(
            back.get("/still-empty").unwrap().data.as_deref(),
            Some(&b""[..])
        );
    }

    #[test]
    fn snapshots_written_before_null_data_still_load() {
        // Before null was kept apart from empty, every node's data was written with a
        // length >= 0; such a snapshot must load unchanged, with its data as it was.
        let mut w = Writer::new();
        w.i64(9).i32(0).i32(4);
        for (path, data) in [
            ("/", &b""[..]),
            ("/a", b"v"),
            ("/zookeeper", b""),
            ("/zookeeper/quota", b""),
        ] {
            w.string(path).buffer(data);
            write_acls(&mut w, &Acl::world_anyone());
            Stat::default().write(&mut w);
        }
        let t = DataTree::deserialize(&mut Reader::new(&w.buf)).unwrap();
        assert_eq!(t.last_zxid, 9);
        assert_eq!(t.get("/a").unwrap().data.as_deref(), Some(&b"v"[..]));
        assert_eq!(t.get("/").unwrap().data.as_deref(), Some(&b""[..]));
        assert!(t.get("/").unwrap().children.contains("a"));
    }

    #[test]
    fn snapshot_round_trips() {
        let mut t = DataTree::new();
        t.apply(&txn(
            1,
            TxnBody::CreateSession {
                timeout_ms: 5000,
                password: vec![3; 16],
            },
        ));
        t.apply(&txn(2, create("/a", 0)));
        t.apply(&txn(3, create("/a/e", 1)));
        let mut w = Writer::new();
        t.serialize(&mut w);
        let back = DataTree::deserialize(&mut Reader::new(&w.buf)).unwrap();
        assert_eq!(back, t);
    }
}
