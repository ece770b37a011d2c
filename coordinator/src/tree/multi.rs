//! `multi`: every operation or none. On the first failure everything done so far is
//! undone, no watch fires, and each result says where it failed: OK before it, its
//! error at it, RUNTIMEINCONSISTENCY after it — as ZooKeeper's `MultiResponse`.

use super::{DataTree, Outcome, Trigger};
use crate::proto::{ErrorCode, Request};
use crate::txn::Txn;

impl DataTree {
    pub(super) fn multi(
        &mut self,
        ops: &[Request],
        txn: &Txn,
        triggers: &mut Vec<Trigger>,
    ) -> Result<Outcome, ErrorCode> {
        let mut undo = Vec::new();
        let mut results = Vec::new();
        let mut failed = None;
        for (i, op) in ops.iter().enumerate() {
            match self.write(op, txn, triggers, &mut undo) {
                Ok(o) => results.push(Ok(o)),
                Err(e) => {
                    failed = Some((i, e));
                    break;
                }
            }
        }
        if let Some((at, err)) = failed {
            for u in undo.into_iter().rev() {
                self.undo(u);
            }
            triggers.clear();
            results = (0..ops.len())
                .map(|i| {
                    Err(match i.cmp(&at) {
                        std::cmp::Ordering::Less => ErrorCode::Ok,
                        std::cmp::Ordering::Equal => err,
                        std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                    })
                })
                .collect();
        }
        Ok(Outcome::Multi(results))
    }
}
