//! `getChildren` and `getChildren2`: a node's child names, with its stat for the latter.

use super::Read;
use crate::jute::Writer;
use crate::proto::{ErrorCode, perms};
use crate::tree::DataTree;

pub fn run(r: &mut Read, path: &str, watch: bool, with_stat: bool) -> Result<(), ErrorCode> {
    r.tree.read(path, perms::READ, r.auth)?;
    body(&mut r.w, r.tree, path, with_stat);
    if watch {
        r.watches.add_child(path, r.session);
    }
    Ok(())
}

/// The body of a `getChildren` reply, alone or inside a `multiRead`.
pub fn body(w: &mut Writer, tree: &DataTree, path: &str, with_stat: bool) {
    if let Some(n) = tree.get(path) {
        w.i32(n.children.len() as i32);
        for c in &n.children {
            w.string(c);
        }
        if with_stat {
            n.stat().write(w);
        }
    }
}
