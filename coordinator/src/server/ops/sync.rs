//! `sync`: answered with its path once everything committed before it is applied here.
//! In an ensemble it travels through the leader like a write (the processor sends it
//! there); a standalone server has nothing to wait for and answers at once.

use super::Read;
use crate::proto::ErrorCode;

pub fn run(r: &mut Read, path: &str) -> Result<(), ErrorCode> {
    r.w.string(path);
    Ok(())
}
