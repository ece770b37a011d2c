//! `delete`: a node without children, if the version matches. Also how a session's
//! ephemerals go when it closes and how empty containers and expired TTL nodes go
//! (without an ACL check: the server itself deletes them).

use super::{CONFIG_NODE, DataTree, Outcome, Trigger, Undo, check_version, name_of, parent_of};
use crate::acl;
use crate::proto::{ErrorCode, Id, event, perms, validate_path};
use crate::txn::Txn;

impl DataTree {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn delete(
        &mut self,
        path: &str,
        version: i32,
        txn: &Txn,
        auth: &[Id],
        check_acl: bool,
        triggers: &mut Vec<Trigger>,
        undo: &mut Vec<Undo>,
    ) -> Result<Outcome, ErrorCode> {
        validate_path(path, false)?;
        if path == "/" || path == "/zookeeper" || path == "/zookeeper/quota" || path == CONFIG_NODE
        {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        let parent_path = parent_of(path).to_string();
        let parent = self.nodes.get(&parent_path).ok_or(ErrorCode::NoNode)?;
        if check_acl {
            acl::check(&parent.acl, perms::DELETE, auth)?;
        }
        check_version(version, node.stat.version)?;
        if !node.children.is_empty() {
            return Err(ErrorCode::NotEmpty);
        }
        self.child_changed(&parent_path, txn.zxid, None, Some(name_of(path)), undo);
        undo.push(Undo::Node(path.to_string(), self.nodes.get(path).cloned()));
        self.put(path, None);
        triggers.push((event::NODE_DELETED, path.to_string()));
        triggers.push((event::NODE_CHILDREN_CHANGED, parent_path));
        Ok(Outcome::Deleted)
    }
}
