//! `getEphemerals`: the paths of this session's ephemeral nodes under a prefix.

use super::Read;
use crate::proto::ErrorCode;

pub fn run(r: &mut Read, prefix: &str) -> Result<(), ErrorCode> {
    let list: Vec<String> = r
        .tree
        .ephemerals_of(r.session)
        .into_iter()
        .filter(|p| p.starts_with(prefix))
        .collect();
    r.w.strings(&list);
    Ok(())
}
