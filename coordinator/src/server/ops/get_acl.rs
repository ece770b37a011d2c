//! `getACL`: a node's ACL and stat.

use super::Read;
use crate::proto::{ErrorCode, write_acls};

pub fn run(r: &mut Read, path: &str) -> Result<(), ErrorCode> {
    let node = r.tree.read(path, 0, r.auth)?;
    write_acls(&mut r.w, &node.acl);
    node.stat().write(&mut r.w);
    Ok(())
}
