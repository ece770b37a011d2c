//! The requests a server answers from its own tree, one file each (ZooKeeper's
//! `FinalRequestProcessor` cases that need no transaction).
//!
//! Each takes a [`Read`]: the tree as of the last applied transaction, this session's
//! watches and identities, and the reply body to write. Writes are not here: they are
//! transactions ordered by replication ([`crate::replication`]) and applied by the
//! state machine, [`crate::tree::DataTree`], one file per operation under `tree/`;
//! their replies are encoded by [`super::response::write_reply`].

mod add_watch;
mod exists;
mod get_acl;
mod get_all_children_number;
mod get_children;
mod get_data;
mod get_ephemerals;
mod multi_read;
mod remove_watches;
mod set_watches;
mod sync;
mod who_am_i;

use crate::jute::Writer;
use crate::proto::{ErrorCode, Id, Request};
use crate::tree::DataTree;
use crate::watch::WatchManager;

/// What a read sees and produces.
pub struct Read<'a> {
    pub tree: &'a DataTree,
    pub watches: &'a mut WatchManager,
    pub session: i64,
    /// The session's identities (`addAuth` ids and its `ip`), for ACL checks.
    pub auth: &'a [Id],
    /// The reply body, after the reply header.
    pub w: Writer,
    /// Notifications owed to this session, sent before the reply (`setWatches` on
    /// paths that changed while the client was away).
    pub events: Vec<(i32, String)>,
}

impl<'a> Read<'a> {
    pub fn new(
        tree: &'a DataTree,
        watches: &'a mut WatchManager,
        session: i64,
        auth: &'a [Id],
    ) -> Read<'a> {
        Read {
            tree,
            watches,
            session,
            auth,
            w: Writer::new(),
            events: Vec::new(),
        }
    }
}

/// Answer `req` into `r.w`; an error is the reply header's `err`, with no body.
pub fn read(r: &mut Read, req: &Request) -> Result<(), ErrorCode> {
    match req {
        Request::Ping => Ok(()),
        Request::Exists { path, watch } => exists::run(r, path, *watch),
        Request::GetData { path, watch } => get_data::run(r, path, *watch),
        Request::GetChildren {
            path,
            watch,
            with_stat,
        } => get_children::run(r, path, *watch, *with_stat),
        Request::GetAcl { path } => get_acl::run(r, path),
        Request::Sync { path } => sync::run(r, path),
        Request::GetAllChildrenNumber { path } => get_all_children_number::run(r, path),
        Request::GetEphemerals { prefix } => get_ephemerals::run(r, prefix),
        Request::WhoAmI => who_am_i::run(r),
        Request::AddWatch { path, mode } => add_watch::run(r, path, *mode),
        Request::RemoveWatches {
            path,
            kind,
            only_check,
        } => remove_watches::run(r, path, *kind, *only_check),
        Request::SetWatches { .. } => set_watches::run(r, req),
        Request::MultiRead(ops) => multi_read::run(r, ops),
        _ => Err(ErrorCode::Unimplemented),
    }
}
