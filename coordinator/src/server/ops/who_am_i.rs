//! `whoAmI`: the identities this session is authenticated as.

use super::Read;
use crate::proto::ErrorCode;

pub fn run(r: &mut Read) -> Result<(), ErrorCode> {
    r.w.i32(r.auth.len() as i32);
    for id in r.auth {
        r.w.string(&id.scheme).string(&id.id);
    }
    Ok(())
}
