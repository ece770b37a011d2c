//! `setWatches`: a reconnecting client re-registers its watches, saying the last zxid it
//! saw. A watch whose node changed since then fires at once instead (the client missed
//! that change); the others are set again.

use super::Read;
use crate::proto::{ErrorCode, Request, event};

pub fn run(r: &mut Read, req: &Request) -> Result<(), ErrorCode> {
    let Request::SetWatches {
        relative_zxid,
        data,
        exist,
        child,
        persistent,
        persistent_recursive,
    } = req
    else {
        return Err(ErrorCode::BadArguments);
    };
    let relative_zxid = *relative_zxid;
    for p in data {
        match r.tree.get(p) {
            None => r.events.push((event::NODE_DELETED, p.clone())),
            Some(n) if n.stat.mzxid > relative_zxid => {
                r.events.push((event::NODE_DATA_CHANGED, p.clone()))
            }
            Some(_) => r.watches.add_data(p, r.session),
        }
    }
    for p in exist {
        if r.tree.get(p).is_some() {
            r.events.push((event::NODE_CREATED, p.clone()));
        } else {
            r.watches.add_data(p, r.session);
        }
    }
    for p in child {
        match r.tree.get(p) {
            None => r.events.push((event::NODE_DELETED, p.clone())),
            Some(n) if n.stat.pzxid > relative_zxid => {
                r.events.push((event::NODE_CHILDREN_CHANGED, p.clone()))
            }
            Some(_) => r.watches.add_child(p, r.session),
        }
    }
    for p in persistent {
        r.watches.add_persistent(p, r.session, false);
    }
    for p in persistent_recursive {
        r.watches.add_persistent(p, r.session, true);
    }
    Ok(())
}
