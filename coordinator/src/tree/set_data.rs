//! `setData`: replace a node's data if the version matches; the version goes up by one.

use bytes::Bytes;

use super::{DataTree, Outcome, Trigger, Undo, check_version};
use crate::acl;
use crate::proto::{ErrorCode, event, perms, validate_path};
use crate::txn::Txn;

impl DataTree {
    pub(super) fn set_data(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        version: i32,
        txn: &Txn,
        triggers: &mut Vec<Trigger>,
        undo: &mut Vec<Undo>,
    ) -> Result<Outcome, ErrorCode> {
        validate_path(path, false)?;
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        acl::check(&node.acl, perms::WRITE, &txn.auth)?;
        check_version(version, node.stat.version)?;
        let n = self.nodes.get_mut(path).expect("checked above");
        undo.push(Undo::Content {
            path: path.to_string(),
            data: std::mem::replace(&mut n.data, data.map(Bytes::copy_from_slice)),
            acl: n.acl.clone(),
            stat: n.stat,
        });
        n.stat.version += 1;
        n.stat.mzxid = txn.zxid;
        n.stat.mtime = txn.time_ms;
        let stat = n.stat();
        triggers.push((event::NODE_DATA_CHANGED, path.to_string()));
        Ok(Outcome::Stat(stat))
    }
}
