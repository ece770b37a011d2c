//! `removeWatches` and `checkWatches`: remove (or, with `only_check`, look for) this
//! session's watches of a kind on a path; NOWATCHER when there is none.

use super::Read;
use crate::proto::ErrorCode;

pub fn run(r: &mut Read, path: &str, kind: i32, only_check: bool) -> Result<(), ErrorCode> {
    let removed = r.watches.remove(path, r.session, kind, only_check);
    if removed.is_empty() {
        return Err(ErrorCode::NoWatcher);
    }
    Ok(())
}
