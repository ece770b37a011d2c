//! `create` / `create2` / `createContainer` / `createTTL`: a new node, named with the
//! parent's `cversion` when sequential; containers and TTL nodes are marked in
//! `ephemeralOwner` as ZooKeeper marks them (`EphemeralType`).

use std::collections::BTreeSet;

use bytes::Bytes;

use super::{
    CONTAINER_OWNER, DataTree, MAX_TTL_MS, Node, Outcome, TTL_MASK, Trigger, Undo, name_of,
    parent_of,
};
use crate::acl;
use crate::proto::{Acl, CreateMode, ErrorCode, Stat, event, perms, validate_path};
use crate::txn::Txn;

impl DataTree {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn create(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        flags: i32,
        ttl: i64,
        txn: &Txn,
        triggers: &mut Vec<Trigger>,
        undo: &mut Vec<Undo>,
    ) -> Result<Outcome, ErrorCode> {
        let mode = CreateMode::from_flags(flags).ok_or(ErrorCode::BadArguments)?;
        validate_path(path, mode.sequential)?;
        if mode.ttl && (ttl <= 0 || ttl > MAX_TTL_MS) {
            return Err(ErrorCode::BadArguments);
        }
        if path == "/" {
            return Err(ErrorCode::NodeExists);
        }
        let parent_path = parent_of(path).to_string();
        let parent = self.nodes.get(&parent_path).ok_or(ErrorCode::NoNode)?;
        acl::check(&parent.acl, perms::CREATE, &txn.auth)?;
        let acl = acl::fixup(acl, &txn.auth)?;
        let full = if mode.sequential {
            format!("{path}{:010}", parent.stat.cversion)
        } else {
            path.to_string()
        };
        if self.nodes.contains_key(&full) {
            return Err(ErrorCode::NodeExists);
        }
        let parent = &self.nodes[&parent_path];
        let parent_owner = parent.stat.ephemeral_owner;
        if parent_owner != 0
            && parent_owner != CONTAINER_OWNER
            && parent_owner & TTL_MASK != TTL_MASK
        {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let owner = if mode.container {
            CONTAINER_OWNER
        } else if mode.ttl {
            TTL_MASK | ttl
        } else if mode.ephemeral {
            txn.session_id
        } else {
            0
        };
        self.child_changed(&parent_path, txn.zxid, Some(name_of(&full)), None, undo);
        let acl = self.intern_acl(acl);
        let node = Node {
            data: data.map(Bytes::copy_from_slice),
            acl,
            stat: Stat {
                czxid: txn.zxid,
                mzxid: txn.zxid,
                pzxid: txn.zxid,
                ctime: txn.time_ms,
                mtime: txn.time_ms,
                ephemeral_owner: owner,
                ..Stat::default()
            },
            children: BTreeSet::new(),
        };
        let stat = node.stat();
        undo.push(Undo::Node(full.clone(), None));
        self.put(&full, Some(node));
        triggers.push((event::NODE_CREATED, full.clone()));
        triggers.push((event::NODE_CHILDREN_CHANGED, parent_path));
        Ok(Outcome::Created { path: full, stat })
    }
}
