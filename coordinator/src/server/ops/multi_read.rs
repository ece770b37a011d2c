//! `multiRead`: several `getData` / `getChildren` in one request, each answered on its
//! own (a failed one is an error result in its place, not a failed request).

use super::{Read, get_children, get_data};
use crate::proto::{ErrorCode, Request, op, perms};

pub fn run(r: &mut Read, ops: &[Request]) -> Result<(), ErrorCode> {
    for sub in ops {
        let (path, opcode) = match sub {
            Request::GetData { path, .. } => (path, op::GET_DATA),
            Request::GetChildren { path, .. } => (path, op::GET_CHILDREN),
            _ => return Err(ErrorCode::BadArguments),
        };
        match r.tree.read(path, perms::READ, r.auth) {
            Ok(n) => {
                r.w.i32(opcode).bool(false).i32(0);
                if opcode == op::GET_DATA {
                    get_data::body(&mut r.w, n.data.as_deref(), &n.stat());
                } else {
                    get_children::body(&mut r.w, r.tree, path, false);
                }
            }
            Err(e) => {
                r.w.i32(op::ERROR).bool(false).i32(e.code()).i32(e.code());
            }
        }
    }
    r.w.i32(-1).bool(true).i32(-1);
    Ok(())
}
