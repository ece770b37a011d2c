//! `exists`: the stat of a node, and a watch that fires when it is created, changed or
//! deleted — set even when the node does not exist yet. As in ZooKeeper 3.6 and later,
//! the stat of an existing node needs READ on it (NOAUTH otherwise, and no watch).

use super::Read;
use crate::proto::{ErrorCode, perms, validate_path};

pub fn run(r: &mut Read, path: &str, watch: bool) -> Result<(), ErrorCode> {
    validate_path(path, false)?;
    let result = match r.tree.read(path, perms::READ, r.auth) {
        Ok(node) => {
            node.stat().write(&mut r.w);
            Ok(())
        }
        Err(ErrorCode::NoNode) => Err(ErrorCode::NoNode),
        Err(e) => return Err(e),
    };
    if watch {
        r.watches.add_data(path, r.session);
    }
    result
}
