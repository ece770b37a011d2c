//! `exists`: the stat of a node, and a watch that fires when it is created, changed or
//! deleted — set even when the node does not exist yet.

use super::Read;
use crate::proto::{ErrorCode, validate_path};

pub fn run(r: &mut Read, path: &str, watch: bool) -> Result<(), ErrorCode> {
    validate_path(path, false)?;
    if watch {
        r.watches.add_data(path, r.session);
    }
    let node = r.tree.get(path).ok_or(ErrorCode::NoNode)?;
    node.stat().write(&mut r.w);
    Ok(())
}
