//! `getAllChildrenNumber`: how many nodes are below a node, at any depth.

use super::Read;
use crate::proto::{ErrorCode, perms};

pub fn run(r: &mut Read, path: &str) -> Result<(), ErrorCode> {
    r.tree.read(path, perms::READ, r.auth)?;
    r.w.i32(r.tree.descendant_count(path) as i32);
    Ok(())
}
