//! Dynamic reconfiguration as ZooKeeper 3.5+ does it (`reconfig`, `/zookeeper/config`):
//! the rules the ZAB core asks about ([`crate::zab::Reconfig`]).
//!
//! A client's `reconfig` reaches the leader as an ordinary proposal carrying the
//! request. The leader decides it against the configuration it last proposed, in the
//! order ZooKeeper's `PrepRequestProcessor` checks (disabled, standalone, in progress,
//! version, arguments, size, synced quorum), and logs the decision instead of the
//! request: the new configuration text (`TxnBody::Reconfig`), or the refusal
//! (`TxnBody::Error`), which answers the client from whichever server it is connected
//! to once committed. The core recognises a configuration entry and its members from
//! here; which quorums a proposal needs is the core's business.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::config::{PeerRole, ServerSpec, config_text, parse_config_text};
use crate::proto::{ErrorCode, Request};
use crate::txn::{Txn, TxnBody};
use crate::zab::{Prepare, Reconfig, ServerId};

#[derive(Debug, Clone)]
pub struct ZkReconfig {
    /// `reconfigEnabled` (ZooKeeper's default: false).
    pub enabled: bool,
    /// `standaloneEnabled` (default true): a configuration must then keep two voters.
    pub standalone_enabled: bool,
    /// A standalone server (no `server.N` lines) cannot be reconfigured.
    pub standalone: bool,
}

impl Reconfig for ZkReconfig {
    fn members(&self, text: &[u8]) -> Option<(BTreeSet<ServerId>, BTreeSet<ServerId>)> {
        let (members, _) = parse_config_text(std::str::from_utf8(text).ok()?).ok()?;
        if members.is_empty() {
            return None;
        }
        let of = |role| {
            members
                .values()
                .filter(|m| m.role == role)
                .map(|m| m.id)
                .collect()
        };
        Some((of(PeerRole::Participant), of(PeerRole::Observer)))
    }

    fn installs(&self, entry: &[u8]) -> Option<Bytes> {
        if !Txn::is_reconfig(entry) {
            return None;
        }
        match Txn::from_bytes(entry).ok()?.body {
            TxnBody::Reconfig { config } => Some(Bytes::from(config)),
            _ => None,
        }
    }

    fn is_request(&self, entry: &[u8]) -> bool {
        Txn::is_reconfig_request(entry)
    }

    fn prepare(&self, entry: &[u8], ctx: &Prepare<'_>) -> Bytes {
        let Ok(mut txn) = Txn::from_bytes(entry) else {
            return Bytes::copy_from_slice(entry);
        };
        let TxnBody::Write(Request::Reconfig {
            joining,
            leaving,
            new_members,
            cur_config_id,
        }) = &txn.body
        else {
            return Bytes::copy_from_slice(entry);
        };
        let decided = self.decide(
            joining.as_deref(),
            leaving.as_deref(),
            new_members.as_deref(),
            *cur_config_id,
            ctx,
        );
        txn.body = match decided {
            Ok(config) => {
                tracing::info!(
                    zxid = format!("{:#x}", ctx.zxid),
                    "reconfiguration to:\n{config}"
                );
                TxnBody::Reconfig { config }
            }
            Err((code, why)) => {
                tracing::warn!("reconfiguration refused ({code:?}): {why}");
                TxnBody::Error { code: code.code() }
            }
        };
        Bytes::from(txn.to_bytes())
    }
}

type Refusal = (ErrorCode, String);

impl ZkReconfig {
    /// The new configuration text, or why not.
    fn decide(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        cur_config_id: i64,
        ctx: &Prepare<'_>,
    ) -> Result<String, Refusal> {
        if !self.enabled {
            return Err((
                ErrorCode::ReconfigDisabled,
                "reconfigEnabled is false".into(),
            ));
        }
        if self.standalone {
            return Err((ErrorCode::Unimplemented, "a standalone server".into()));
        }
        if ctx.pending.is_some() {
            return Err((
                ErrorCode::ReconfigInProgress,
                "an earlier reconfiguration has not committed".into(),
            ));
        }
        let last = ctx.active;
        if cur_config_id != -1 && cur_config_id != last.version {
            return Err((
                ErrorCode::BadVersion,
                format!(
                    "reconfiguration from version {cur_config_id:x}; the last is {:x}",
                    last.version
                ),
            ));
        }
        let bad = |why: String| (ErrorCode::BadArguments, why);
        let text = std::str::from_utf8(&last.text).map_err(|e| bad(e.to_string()))?;
        let (current, _) = parse_config_text(text).map_err(bad)?;
        let next = match new_members {
            Some(members) => whole(members).map_err(bad)?,
            None => incremental(current, joining, leaving).map_err(bad)?,
        };
        let voters: Vec<ServerId> = next
            .values()
            .filter(|m| m.role == PeerRole::Participant)
            .map(|m| m.id)
            .collect();
        let least = if self.standalone_enabled { 2 } else { 1 };
        if voters.len() < least {
            return Err(bad(format!(
                "the new configuration must include at least {least} voters"
            )));
        }
        let synced = voters.iter().filter(|id| ctx.synced.contains(id)).count();
        if synced < voters.len() / 2 + 1 {
            return Err((
                ErrorCode::NewConfigNoQuorum,
                format!(
                    "{synced} of the new configuration's {} voters are connected and synced",
                    voters.len()
                ),
            ));
        }
        Ok(config_text(next.values(), ctx.zxid))
    }
}

/// A non-incremental reconfiguration: the whole membership, server lines separated by
/// commas or newlines.
fn whole(members: &str) -> Result<BTreeMap<u64, ServerSpec>, String> {
    let (next, _) = parse_config_text(&members.replace(',', "\n"))?;
    check_addresses(&next)?;
    Ok(next)
}

/// An incremental one: `leaving` ids go (unknown ones are ignored), each `joining`
/// line is added or replaces the member with its id (how a role or a port changes).
/// A joining server must name its client port, as ZooKeeper demands.
fn incremental(
    mut next: BTreeMap<u64, ServerSpec>,
    joining: Option<&str>,
    leaving: Option<&str>,
) -> Result<BTreeMap<u64, ServerSpec>, String> {
    for id in leaving.into_iter().flat_map(|l| l.split(',')) {
        let id = id.trim();
        if id.is_empty() {
            continue;
        }
        let id: u64 = id.parse().map_err(|_| format!("bad server id {id:?}"))?;
        next.remove(&id);
    }
    for line in joining.into_iter().flat_map(|j| j.split(',')) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("wrong format of server string {line:?}"));
        };
        let id: u64 = key
            .trim()
            .rsplit('.')
            .next()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| format!("bad server id in {key:?}"))?;
        let spec = ServerSpec::parse(id, value)?;
        if spec.client.is_none() {
            return Err(format!(
                "server.{id}: each server should have 3 ports specified (quorum, election, client)"
            ));
        }
        next.insert(id, spec);
    }
    check_addresses(&next)?;
    Ok(next)
}

/// No two members share a quorum or election address (ZooKeeper's
/// `checkAddressDuplicate`).
fn check_addresses(members: &BTreeMap<u64, ServerSpec>) -> Result<(), String> {
    let mut seen: BTreeMap<(String, u16), u64> = BTreeMap::new();
    for m in members.values() {
        for port in [m.quorum_port, m.election_port] {
            if let Some(other) = seen.insert((m.host.clone(), port), m.id)
                && other != m.id
            {
                return Err(format!(
                    "server.{} and server.{other} both use {}:{port}",
                    m.id, m.host
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zab::Membership;

    const THREE: &str = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                         server.2=127.0.0.2:2888:3888:participant;0.0.0.0:2181\n\
                         server.3=127.0.0.3:2888:3888:participant;0.0.0.0:2181\n\
                         version=0";

    fn rules() -> ZkReconfig {
        ZkReconfig {
            enabled: true,
            standalone_enabled: true,
            standalone: false,
        }
    }

    fn active(text: &str, version: i64) -> Membership {
        Membership::from_text(&rules(), version, Bytes::from(text.to_string())).unwrap()
    }

    fn request(joining: Option<&str>, leaving: Option<&str>, new_members: Option<&str>) -> Txn {
        Txn {
            zxid: 0,
            time_ms: 5,
            session_id: 77,
            cxid: 9,
            auth: vec![],
            body: TxnBody::Write(Request::Reconfig {
                joining: joining.map(str::to_string),
                leaving: leaving.map(str::to_string),
                new_members: new_members.map(str::to_string),
                cur_config_id: -1,
            }),
        }
    }

    fn decide(r: &ZkReconfig, txn: &Txn, active: &Membership, synced: &[u64]) -> TxnBody {
        let entry = txn.to_bytes();
        assert!(r.is_request(&entry));
        let ctx = Prepare {
            zxid: 0x2_0000_0005,
            active,
            pending: None,
            synced: synced.iter().copied().collect(),
        };
        let out = Txn::from_bytes(&r.prepare(&entry, &ctx)).unwrap();
        assert_eq!((out.session_id, out.cxid), (77, 9), "answers its client");
        out.body
    }

    fn refused(code: ErrorCode) -> TxnBody {
        TxnBody::Error { code: code.code() }
    }

    #[test]
    fn adding_two_servers_writes_the_whole_membership_under_the_zxid() {
        let a = active(THREE, 0);
        let txn = request(
            Some(
                "server.4=127.0.0.4:2888:3888:participant;2181,\
                 server.5=127.0.0.5:2888:3888;127.0.0.5:2181",
            ),
            None,
            None,
        );
        let TxnBody::Reconfig { config } = decide(&rules(), &txn, &a, &[1, 2, 3, 4]) else {
            panic!("refused")
        };
        assert_eq!(
            config,
            "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
             server.2=127.0.0.2:2888:3888:participant;0.0.0.0:2181\n\
             server.3=127.0.0.3:2888:3888:participant;0.0.0.0:2181\n\
             server.4=127.0.0.4:2888:3888:participant;0.0.0.0:2181\n\
             server.5=127.0.0.5:2888:3888:participant;127.0.0.5:2181\n\
             version=200000005"
        );
        let installed = rules().installs(
            &Txn {
                body: TxnBody::Reconfig {
                    config: config.clone(),
                },
                ..txn.clone()
            }
            .to_bytes(),
        );
        let (voters, observers) = rules().members(&installed.unwrap()).unwrap();
        assert_eq!(voters, BTreeSet::from([1, 2, 3, 4, 5]));
        assert!(observers.is_empty());
    }

    #[test]
    fn removing_and_changing_roles_and_replacing_everything() {
        let a = active(THREE, 0);
        let TxnBody::Reconfig { config } = decide(
            &rules(),
            &request(
                Some("server.3=127.0.0.3:2888:3888:observer;2181"),
                Some("1,9"),
                None,
            ),
            &active(
                &THREE.replace(
                    "version=0",
                    "server.4=127.0.0.4:2888:3888:participant;2181\nversion=0",
                ),
                0,
            ),
            &[2, 4],
        ) else {
            panic!("refused")
        };
        assert!(config.starts_with("server.2="), "{config}");
        assert!(config.contains("server.3=127.0.0.3:2888:3888:observer;0.0.0.0:2181"));
        assert!(!config.contains("server.1="));
        let TxnBody::Reconfig { config } = decide(
            &rules(),
            &request(
                None,
                None,
                Some("server.1=127.0.0.1:2888:3888;2181,server.2=127.0.0.2:2888:3888;2181"),
            ),
            &a,
            &[1, 2],
        ) else {
            panic!("refused")
        };
        assert_eq!(config.lines().count(), 3, "{config}");
    }

    #[test]
    fn refusals_in_zookeepers_order() {
        let a = active(THREE, 0);
        let add4 = request(Some("server.4=127.0.0.4:2888:3888;2181"), None, None);
        let disabled = ZkReconfig {
            enabled: false,
            ..rules()
        };
        assert_eq!(
            decide(&disabled, &add4, &a, &[1, 2, 3]),
            refused(ErrorCode::ReconfigDisabled)
        );
        let standalone = ZkReconfig {
            standalone: true,
            ..rules()
        };
        assert_eq!(
            decide(&standalone, &add4, &a, &[1, 2, 3]),
            refused(ErrorCode::Unimplemented)
        );
        let mut stale = add4.clone();
        if let TxnBody::Write(Request::Reconfig { cur_config_id, .. }) = &mut stale.body {
            *cur_config_id = 0x1_0000_0002;
        }
        assert_eq!(
            decide(&rules(), &stale, &a, &[1, 2, 3]),
            refused(ErrorCode::BadVersion)
        );
        for bad in [
            request(Some("server.4=127.0.0.4:2888:3888"), None, None),
            request(Some("server.4"), None, None),
            request(None, Some("x"), None),
            request(Some("server.4=127.0.0.1:2888:3888;2181"), None, None),
            request(None, Some("1,2"), None),
        ] {
            assert_eq!(
                decide(&rules(), &bad, &a, &[1, 2, 3]),
                refused(ErrorCode::BadArguments),
                "{bad:?}"
            );
        }
        // Without standaloneEnabled one voter is enough.
        let one = ZkReconfig {
            standalone_enabled: false,
            ..rules()
        };
        assert!(matches!(
            decide(&one, &request(None, Some("1,2"), None), &a, &[3]),
            TxnBody::Reconfig { .. }
        ));
        // Server 4 is not synced: 2 of the 4 voters are not a quorum.
        assert_eq!(
            decide(&rules(), &add4, &a, &[1, 2]),
            refused(ErrorCode::NewConfigNoQuorum)
        );
        let pending = active(THREE, 0x1_0000_0001);
        let ctx = Prepare {
            zxid: 0x1_0000_0009,
            active: &a,
            pending: Some(&pending),
            synced: BTreeSet::from([1, 2, 3]),
        };
        let out = rules().prepare(&add4.to_bytes(), &ctx);
        assert_eq!(
            Txn::from_bytes(&out).unwrap().body,
            refused(ErrorCode::ReconfigInProgress)
        );
    }

    #[test]
    fn other_entries_are_not_reconfigurations() {
        let mut txn = request(None, None, None);
        txn.body = TxnBody::Write(Request::SetData {
            path: "/zookeeper/config".into(),
            data: Some(b"server.1=a:1:2".to_vec()),
            version: -1,
        });
        let bytes = txn.to_bytes();
        assert!(!rules().is_request(&bytes));
        assert_eq!(rules().installs(&bytes), None);
        assert_eq!(rules().members(b"nonsense"), None);
        assert_eq!(rules().members(b"version=0"), None);
    }
}
