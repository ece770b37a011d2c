//! `getData`: a node's data and stat; null data goes out as null (jute length -1).

use super::Read;
use crate::jute::Writer;
use crate::proto::{ErrorCode, Stat, perms};

pub fn run(r: &mut Read, path: &str, watch: bool) -> Result<(), ErrorCode> {
    let node = r.tree.read(path, perms::READ, r.auth)?;
    body(&mut r.w, node.data.as_deref(), &node.stat());
    if watch {
        r.watches.add_data(path, r.session);
    }
    Ok(())
}

/// The body of a `getData` reply, alone or inside a `multiRead`.
pub fn body(w: &mut Writer, data: Option<&[u8]>, stat: &Stat) {
    w.nullable_buffer(data);
    stat.write(w);
}
