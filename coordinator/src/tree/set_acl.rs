//! `setACL`: replace a node's ACL if its ACL version (`aversion`) matches; `auth` ids
//! are fixed up to the caller's identities as ZooKeeper does.

use super::{DataTree, Outcome, Undo, check_version};
use crate::acl;
use crate::proto::{Acl, ErrorCode, perms, validate_path};
use crate::txn::Txn;

impl DataTree {
    pub(super) fn set_acl(
        &mut self,
        path: &str,
        acl: &[Acl],
        version: i32,
        txn: &Txn,
        undo: &mut Vec<Undo>,
    ) -> Result<Outcome, ErrorCode> {
        validate_path(path, false)?;
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        acl::check(&node.acl, perms::ADMIN, &txn.auth)?;
        check_version(version, node.stat.aversion)?;
        let fixed = acl::fixup(acl, &txn.auth)?;
        let fixed = self.intern_acl(fixed);
        let n = self.nodes.get_mut(path).expect("checked above");
        undo.push(Undo::Content {
            path: path.to_string(),
            data: n.data.clone(),
            acl: std::mem::replace(&mut n.acl, fixed),
            stat: n.stat,
        });
        n.stat.aversion += 1;
        let stat = n.stat();
        Ok(Outcome::Stat(stat))
    }
}
