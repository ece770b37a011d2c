//! `addWatch`: a persistent watch (mode 0) or a persistent recursive one (mode 1) that
//! stays until removed.

use super::Read;
use crate::proto::{ErrorCode, validate_path};

pub fn run(r: &mut Read, path: &str, mode: i32) -> Result<(), ErrorCode> {
    validate_path(path, false)?;
    match mode {
        0 => r.watches.add_persistent(path, r.session, false),
        1 => r.watches.add_persistent(path, r.session, true),
        _ => return Err(ErrorCode::BadArguments),
    }
    // ZooKeeper answers addWatch with an ErrorResponse(0), and the Java client reads it:
    // an empty body ends its connection.
    r.w.i32(ErrorCode::Ok.code());
    Ok(())
}
