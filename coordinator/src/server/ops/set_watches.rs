//! `setWatches`: a reconnecting client re-registers its watches, saying the last zxid it
//! saw. A watch whose node changed since then fires at once instead (the client missed
//! that change); the others are set again.

use super::Read;
use crate::proto::{ErrorCode, event};

/// The watched paths, by kind, as the client lists them.
pub struct Paths<'a> {
    pub data: &'a [String],
    pub exist: &'a [String],
    pub child: &'a [String],
    pub persistent: &'a [String],
    pub persistent_recursive: &'a [String],
}

pub fn run(r: &mut Read, relative_zxid: i64, paths: Paths) -> Result<(), ErrorCode> {
    for p in paths.data {
        match r.tree.get(p) {
            None => r.events.push((event::NODE_DELETED, p.clone())),
            Some(n) if n.stat.mzxid > relative_zxid => {
                r.events.push((event::NODE_DATA_CHANGED, p.clone()))
            }
            Some(_) => r.watches.add_data(p, r.session),
        }
    }
    for p in paths.exist {
        if r.tree.get(p).is_some() {
            r.events.push((event::NODE_CREATED, p.clone()));
        } else {
            r.watches.add_data(p, r.session);
        }
    }
    for p in paths.child {
        match r.tree.get(p) {
            None => r.events.push((event::NODE_DELETED, p.clone())),
            Some(n) if n.stat.pzxid > relative_zxid => {
                r.events.push((event::NODE_CHILDREN_CHANGED, p.clone()))
            }
            Some(_) => r.watches.add_child(p, r.session),
        }
    }
    for p in paths.persistent {
        r.watches.add_persistent(p, r.session, false);
    }
    for p in paths.persistent_recursive {
        r.watches.add_persistent(p, r.session, true);
    }
    Ok(())
}
