//! `check`: a node exists with this version (the guard of a `multi`).

use super::{DataTree, Outcome, check_version};
use crate::acl;
use crate::proto::{ErrorCode, perms, validate_path};
use crate::txn::Txn;

impl DataTree {
    pub(super) fn check(&self, path: &str, version: i32, txn: &Txn) -> Result<Outcome, ErrorCode> {
        validate_path(path, false)?;
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        acl::check(&node.acl, perms::READ, &txn.auth)?;
        check_version(version, node.stat.version)?;
        // A check on its own is answered with the node's stat, as ZooKeeper's
        // SetDataResponse; inside a multi the stat is not sent.
        Ok(Outcome::Stat(node.stat()))
    }
}
