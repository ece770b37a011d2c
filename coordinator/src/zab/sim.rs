//! A deterministic simulator for the ZAB core.
//!
//! One seed drives everything: which message is delivered next (so messages are
//! reordered), which are lost, partitions, crashes and restarts from the simulated disk,
//! compactions, client writes at random servers. After every step the invariants are
//! checked:
//!
//! 1. at most one leader is established per epoch;
//! 2. committed transactions are never lost or reordered: every server's applied
//!    sequence is a prefix of one global sequence, which only grows;
//! 3. zxids only grow: applied zxids strictly increase, and so do the zxids each server
//!    proposes, across restarts.
//!
//! At the end the network heals and the ensemble must make progress again: one
//! established leader, a fresh write committed on every voter, all voters identical.
//!
//! `cargo test -p strata-coordinator sim` runs 1000 seeds (400 + 300 + 300); a failure prints its
//! seed, and `STRATA_SIM_SEED=<seed> cargo test -p strata-coordinator sim` replays it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use super::{
    Action, Durable, Input, Membership, Message, Prepare, Reconfig, Role, ServerId, Snapshot,
    SnapshotData, Zab, ZabConfig,
};

/// The simulator's reconfigurations: a client asks with `reconfig?<voters>`; the leader
/// logs `config:<voters>|<observers>` (the text is the entry itself) or
/// `refused:<why>:<request>`.
#[derive(Debug)]
pub(super) struct SimReconfig;

fn ids(list: &str) -> Option<BTreeSet<ServerId>> {
    list.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().ok())
        .collect()
}

pub(super) fn config_text(voters: &BTreeSet<ServerId>, observers: &BTreeSet<ServerId>) -> Bytes {
    let list = |s: &BTreeSet<ServerId>| {
        s.iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    Bytes::from(format!("config:{}|{}", list(voters), list(observers)))
}

impl Reconfig for SimReconfig {
    fn members(&self, text: &[u8]) -> Option<(BTreeSet<ServerId>, BTreeSet<ServerId>)> {
        let text = std::str::from_utf8(text).ok()?.strip_prefix("config:")?;
        let (v, o) = text.split_once('|')?;
        Some((ids(v)?, ids(o)?))
    }

    fn installs(&self, entry: &[u8]) -> Option<Bytes> {
        entry
            .starts_with(b"config:")
            .then(|| Bytes::copy_from_slice(entry))
    }

    fn is_request(&self, entry: &[u8]) -> bool {
        entry.starts_with(b"reconfig?")
    }

    fn prepare(&self, entry: &[u8], ctx: &Prepare<'_>) -> Bytes {
        let request = String::from_utf8_lossy(entry).to_string();
        let refuse = |why: &str| Bytes::from(format!("refused:{why}:{request}"));
        if ctx.pending.is_some() {
            return refuse("in progress");
        }
        let Some(voters) = ids(&request["reconfig?".len()..]) else {
            return refuse("bad arguments");
        };
        let target = Membership {
            version: ctx.zxid,
            voters: voters.clone(),
            observers: ctx.active.observers.difference(&voters).copied().collect(),
            text: Bytes::new(),
        };
        if voters.is_empty() {
            return refuse("bad arguments");
        }
        let synced: Vec<ServerId> = ctx.synced.iter().copied().collect();
        if !target.has_quorum(&synced) {
            return refuse("no quorum");
        }
        config_text(&target.voters, &target.observers)
    }
}

/// SplitMix64: tiny, seedable, good enough to explore schedules.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub voters: u64,
    pub observers: u64,
    /// Servers outside the first configuration, each started with it plus itself (as a
    /// joining ZooKeeper server is); with any, clients also ask for reconfigurations.
    pub spares: u64,
    pub steps: usize,
    /// Percent of messages lost.
    pub loss: u64,
    /// Small counter limit so epochs roll over during a run.
    pub max_counter: i64,
}

struct Disk {
    durable: Durable,
}

struct Node {
    zab: Option<Zab>,
    disk: Disk,
    /// Applied (committed) entries, rebuilt from the snapshot on restart.
    applied: Vec<(i64, Bytes)>,
    max_proposed: i64,
}

struct Packet {
    from: ServerId,
    to: ServerId,
    msg: Message,
}

pub struct Sim {
    rng: Rng,
    cfg: SimConfig,
    zcfg: BTreeMap<ServerId, ZabConfig>,
    nodes: BTreeMap<ServerId, Node>,
    net: VecDeque<Packet>,
    /// Servers cut off from everyone else.
    isolated: BTreeSet<ServerId>,
    global: Vec<(i64, Bytes)>,
    /// Writes refused to their client: none of them may ever commit.
    refused: BTreeSet<Bytes>,
    leaders: BTreeMap<i64, ServerId>,
    next_write: u64,
    pub stats: SimStats,
    /// `STRATA_SIM_TRACE=1`: print every role change with the configurations.
    trace: bool,
}

#[derive(Debug, Default, Clone)]
pub struct SimStats {
    pub committed: usize,
    pub elections: usize,
    pub crashes: usize,
    pub snap_syncs: usize,
    pub trunc_syncs: usize,
    /// Client writes a server refused for want of a leader.
    pub refused: usize,
    /// Reconfigurations asked for, and those that took effect.
    pub reconfigs: usize,
    pub reconfigured: usize,
}

fn encode_applied(applied: &[(i64, Bytes)]) -> Bytes {
    let mut v = Vec::new();
    for (z, d) in applied {
        v.extend_from_slice(&z.to_be_bytes());
        v.extend_from_slice(&(d.len() as u32).to_be_bytes());
        v.extend_from_slice(d);
    }
    Bytes::from(v)
}

fn decode_applied(b: &[u8]) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let z = i64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let n = u32::from_be_bytes(b[i + 8..i + 12].try_into().expect("4 bytes")) as usize;
        out.push((z, Bytes::copy_from_slice(&b[i + 12..i + 12 + n])));
        i += 12 + n;
    }
    out
}

impl Sim {
    pub fn new(seed: u64, cfg: SimConfig) -> Sim {
        let voters: BTreeSet<ServerId> = (1..=cfg.voters).collect();
        let observers: BTreeSet<ServerId> = (cfg.voters + 1..=cfg.voters + cfg.observers).collect();
        let first = cfg.voters + cfg.observers + 1;
        let spares: BTreeSet<ServerId> = (first..first + cfg.spares).collect();
        let mut zcfg = BTreeMap::new();
        for id in voters.iter().chain(&observers).chain(&spares) {
            let mut voters = voters.clone();
            if spares.contains(id) {
                voters.insert(*id);
            }
            zcfg.insert(
                *id,
                ZabConfig {
                    id: *id,
                    membership: Membership {
                        version: 0,
                        text: config_text(&voters, &observers),
                        voters,
                        observers: observers.clone(),
                    },
                    reconfig: Arc::new(SimReconfig),
                    init_limit: 10,
                    sync_limit: 5,
                    max_counter: cfg.max_counter,
                    keep_compacted: 3,
                },
            );
        }
        let mut sim = Sim {
            rng: Rng::new(seed),
            cfg,
            zcfg,
            nodes: BTreeMap::new(),
            net: VecDeque::new(),
            isolated: BTreeSet::new(),
            global: Vec::new(),
            refused: BTreeSet::new(),
            leaders: BTreeMap::new(),
            next_write: 0,
            stats: SimStats::default(),
            trace: std::env::var_os("STRATA_SIM_TRACE").is_some(),
        };
        let ids: Vec<ServerId> = sim.zcfg.keys().copied().collect();
        for id in ids {
            sim.nodes.insert(
                id,
                Node {
                    zab: None,
                    disk: Disk {
                        durable: Durable::default(),
                    },
                    applied: Vec::new(),
                    max_proposed: 0,
                },
            );
            sim.start(id);
        }
        sim
    }

    fn start(&mut self, id: ServerId) {
        let node = self.nodes.get_mut(&id).expect("known server");
        node.applied = node
            .disk
            .durable
            .snapshot
            .as_ref()
            .map(|s| decode_applied(&s.data.load().expect("in memory")))
            .unwrap_or_default();
        // As the server's driver does: the configuration its snapshot holds, if any.
        let mut zcfg = self.zcfg[&id].clone();
        if let Some((zxid, text)) = node
            .applied
            .iter()
            .rev()
            .find(|(_, d)| d.starts_with(b"config:"))
        {
            zcfg.membership = Membership::from_text(&SimReconfig, *zxid, text.clone())
                .expect("a logged configuration parses");
        }
        let (zab, actions) = Zab::new(zcfg, node.disk.durable.clone());
        node.zab = Some(zab);
        self.execute(id, actions);
    }

    fn execute(&mut self, id: ServerId, actions: Vec<Action>) {
        for a in actions {
            let node = self.nodes.get_mut(&id).expect("known server");
            match a {
                Action::Send { to, msg } | Action::SendDurable { to, msg } => {
                    self.net.push_back(Packet { from: id, to, msg });
                }
                Action::PersistEpochs {
                    accepted_epoch,
                    accepted_leader,
                    current_epoch,
                } => {
                    let d = &mut node.disk.durable;
                    assert!(
                        accepted_epoch >= d.accepted_epoch,
                        "accepted epoch went back"
                    );
                    assert!(current_epoch >= d.current_epoch, "current epoch went back");
                    d.accepted_epoch = accepted_epoch;
                    d.accepted_leader = accepted_leader;
                    d.current_epoch = current_epoch;
                }
                Action::Append(entries) => {
                    let log = &mut node.disk.durable.log;
                    for e in entries {
                        if let Some(last) = log.last() {
                            assert!(e.zxid > last.zxid, "log zxids must grow on server {id}");
                        }
                        if matches!(node.zab.as_ref().map(Zab::role), Some(Role::Leading { .. })) {
                            assert!(
                                e.zxid > node.max_proposed,
                                "server {id} proposed {:#x} after {:#x}",
                                e.zxid,
                                node.max_proposed
                            );
                            node.max_proposed = e.zxid;
                        }
                        log.push(e);
                    }
                }
                Action::PersistConfig(version, text) => {
                    node.disk.durable.config = Some((version, text));
                }
                Action::Truncate(zxid) => {
                    self.stats.trunc_syncs += 1;
                    node.disk.durable.log.retain(|e| e.zxid <= zxid);
                }
                Action::InstallSnapshot(snap) => {
                    self.stats.snap_syncs += 1;
                    node.applied = snap
                        .as_ref()
                        .map(|s| decode_applied(&s.data.load().expect("in memory")))
                        .unwrap_or_default();
                    node.disk.durable.snapshot = snap;
                    node.disk.durable.log.clear();
                }
                Action::Commit(entries) => {
                    for e in entries {
                        if let Some((last, _)) = node.applied.last()
                            && e.zxid <= *last
                        {
                            // Re-commit after a rewind to an older snapshot: must match.
                            continue;
                        }
                        assert!(
                            !self.refused.contains(&e.data),
                            "{:?} was refused to its client but committed at {:#x}",
                            e.data,
                            e.zxid
                        );
                        node.applied.push((e.zxid, e.data));
                    }
                }
                Action::Refused(data) => {
                    if self.trace {
                        eprintln!("{id}: refused {data:?}");
                    }
                    self.stats.refused += 1;
                    self.refused.insert(data);
                }
                Action::RoleChanged(role) => {
                    if self.trace
                        && let Some(z) = node.zab.as_ref()
                    {
                        let (active, pending) = z.membership();
                        eprintln!(
                            "{id}: {role:?} last={:#x} committed={:#x} config={:?}@{:#x} pending={:?}",
                            z.last_zxid(),
                            z.committed(),
                            active.voters,
                            active.version,
                            pending.map(|p| (&p.voters, p.version))
                        );
                    }
                    if let Role::Leading {
                        epoch,
                        established: true,
                    } = role
                    {
                        self.stats.elections += 1;
                        if let Some(other) = self.leaders.insert(epoch, id) {
                            assert_eq!(other, id, "two leaders established in epoch {epoch}");
                        }
                    }
                }
            }
        }
    }

    fn connected(&self, a: ServerId, b: ServerId) -> bool {
        a == b || (!self.isolated.contains(&a) && !self.isolated.contains(&b))
    }

    fn deliver(&mut self, p: Packet) {
        if !self.connected(p.from, p.to) {
            return;
        }
        let Some(zab) = self.nodes.get_mut(&p.to).and_then(|n| n.zab.as_mut()) else {
            return;
        };
        let actions = zab.step(Input::Message {
            from: p.from,
            msg: p.msg,
        });
        self.execute(p.to, actions);
    }

    fn step_once(&mut self, chaos: bool) {
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        let r = self.rng.below(100);
        if r < 55 && !self.net.is_empty() {
            // Mostly in order, sometimes any packet: reordering.
            let i = if chaos && self.rng.chance(20) {
                self.rng.below(self.net.len() as u64) as usize
            } else {
                0
            };
            let p = self.net.remove(i).expect("index in range");
            if chaos && self.rng.chance(self.cfg.loss) {
                return;
            }
            self.deliver(p);
        } else if r < 75 {
            let id = ids[self.rng.below(ids.len() as u64) as usize];
            if let Some(zab) = self.nodes.get_mut(&id).and_then(|n| n.zab.as_mut()) {
                let actions = zab.step(Input::Tick);
                self.execute(id, actions);
            }
        } else if r < 88 {
            let id = ids[self.rng.below(ids.len() as u64) as usize];
            self.next_write += 1;
            let data = if self.cfg.spares > 0 && self.rng.chance(4) {
                // A reconfiguration to a random set of voters among all servers.
                let voters: Vec<String> = ids
                    .iter()
                    .filter(|_| self.rng.chance(60))
                    .map(|id| id.to_string())
                    .collect();
                self.stats.reconfigs += 1;
                Bytes::from(format!("reconfig?{}", voters.join(",")))
            } else {
                Bytes::from(format!("w{}", self.next_write))
            };
            if let Some(zab) = self.nodes.get_mut(&id).and_then(|n| n.zab.as_mut()) {
                let actions = zab.step(Input::Propose(data));
                self.execute(id, actions);
            }
        } else if r < 92 {
            let id = ids[self.rng.below(ids.len() as u64) as usize];
            let node = self.nodes.get_mut(&id).expect("known server");
            if let Some(zab) = node.zab.as_mut() {
                let zxid = zab.committed();
                let upto = node.applied.partition_point(|(z, _)| *z <= zxid);
                let snap = Snapshot {
                    zxid,
                    data: SnapshotData::Bytes(encode_applied(&node.applied[..upto])),
                };
                if zxid > 0 {
                    zab.step(Input::Compacted(snap.clone()));
                    let d = &mut node.disk.durable;
                    if d.snapshot.as_ref().is_none_or(|s| s.zxid < zxid) {
                        d.log.retain(|e| e.zxid > zxid);
                        d.snapshot = Some(snap);
                    }
                }
            }
        } else if chaos && r < 95 {
            let id = ids[self.rng.below(ids.len() as u64) as usize];
            let node = self.nodes.get_mut(&id).expect("known server");
            if node.zab.is_none() {
                self.start(id);
            } else if r == 92 && self.rng.chance(50) {
                node.zab = None;
                self.stats.crashes += 1;
                // Sometimes the others notice at once (a closed connection).
                if self.rng.chance(50) {
                    for other in ids.iter().filter(|o| **o != id) {
                        if let Some(z) = self.nodes.get_mut(other).and_then(|n| n.zab.as_mut()) {
                            let actions = z.step(Input::PeerLost(id));
                            self.execute(*other, actions);
                        }
                    }
                }
            }
        } else if chaos && r < 97 {
            let id = ids[self.rng.below(ids.len() as u64) as usize];
            if !self.isolated.remove(&id)
                && self.isolated.len() < (self.cfg.voters as usize - 1) / 2 + 1
            {
                self.isolated.insert(id);
            }
        } else if !self.net.is_empty() && chaos {
            // Duplicate a packet in flight.
            let i = self.rng.below(self.net.len() as u64) as usize;
            let p = &self.net[i];
            let dup = Packet {
                from: p.from,
                to: p.to,
                msg: p.msg.clone(),
            };
            self.net.push_back(dup);
        }
    }

    fn check(&mut self) {
        for (id, node) in &self.nodes {
            let a = &node.applied;
            for w in a.windows(2) {
                assert!(w[0].0 < w[1].0, "server {id} applied zxids out of order");
            }
            let common = a.len().min(self.global.len());
            assert_eq!(
                a[..common],
                self.global[..common],
                "server {id} applied a different sequence than the ensemble committed"
            );
            if a.len() > self.global.len() {
                self.global = a.clone();
                self.stats.reconfigured = self
                    .global
                    .iter()
                    .filter(|(_, d)| d.starts_with(b"config:"))
                    .count();
            }
        }

        self.stats.committed = self.global.len();
    }

    /// Run the chaotic phase, then heal and demand progress.
    pub fn run(&mut self) {
        for _ in 0..self.cfg.steps {
            self.step_once(true);
            self.check();
        }
        self.isolated.clear();
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        for id in &ids {
            if self.nodes[id].zab.is_none() {
                self.start(*id);
            }
        }
        let before = self.global.len();
        let mut written = false;
        let (mut written_at, mut finals) = (0, 0);
        for step in 0..40_000 {
            if self.net.is_empty() || self.rng.chance(30) {
                for id in &ids {
                    let zab = self
                        .nodes
                        .get_mut(id)
                        .and_then(|n| n.zab.as_mut())
                        .expect("up");
                    let actions = zab.step(Input::Tick);
                    self.execute(*id, actions);
                }
            }
            let mut delivered = 0;
            while let Some(p) = self.net.pop_front() {
                delivered += 1;
                assert!(
                    delivered < 100_000,
                    "message storm: {:?} -> {:?}: {:?}",
                    p.from,
                    p.to,
                    p.msg
                );
                self.deliver(p);
                self.check();
            }
            let leader = ids.iter().copied().find(|id| {
                matches!(
                    self.nodes[id].zab.as_ref().map(Zab::role),
                    Some(Role::Leading {
                        established: true,
                        ..
                    })
                )
            });
            let all_serving = ids
                .iter()
                .all(|id| self.nodes[id].zab.as_ref().is_some_and(Zab::is_serving));
            // The final write; again under a new name if it went nowhere (the leader it
            // reached stepped down, or its zxid counter ran out and it was refused).
            if let Some(l) = leader
                && all_serving
                && (!written || (self.global.len() == before && step - written_at > 2000))
            {
                written = true;
                written_at = step;
                finals += 1;
                let zab = self
                    .nodes
                    .get_mut(&l)
                    .and_then(|n| n.zab.as_mut())
                    .expect("up");
                if self.trace {
                    eprintln!("{l}: final{finals} at heal step {step}");
                }
                let actions = zab.step(Input::Propose(Bytes::from(format!("final{finals}"))));
                self.execute(l, actions);
            }
            if written && self.global.len() > before {
                let last = self.global.last().expect("non-empty").0;
                let converged = ids
                    .iter()
                    .all(|id| self.nodes[id].applied.last().map(|(z, _)| *z) == Some(last));
                if converged {
                    return;
                }
            }
            if step == 39_999 {
                let states: Vec<String> = ids
                    .iter()
                    .map(|id| {
                        let z = self.nodes[id].zab.as_ref().expect("up");
                        let (active, pending) = z.membership();
                        format!(
                            "{id}: {:?} last={:#x} committed={:#x} epochs={:?} config={:?}@{:#x} pending={:?}",
                            z.role(),
                            z.last_zxid(),
                            z.committed(),
                            (z.accepted_epoch, z.accepted_leader, z.current_epoch),
                            active.voters,
                            active.version,
                            pending.map(|p| (&p.voters, p.version))
                        )
                    })
                    .collect();
                panic!("no progress after healing: {states:#?}");
            }
        }
    }
}

/// Run one seed, turning a panic into a message that names the seed.
pub fn run_seed(seed: u64, cfg: SimConfig) -> Result<SimStats, String> {
    let result = std::panic::catch_unwind(|| {
        let mut sim = Sim::new(seed, cfg.clone());
        sim.run();
        sim.stats
    });
    result.map_err(|e| {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!(
            "seed {seed} failed ({cfg:?}): {msg}\nreplay: STRATA_SIM_SEED={seed} cargo test -p strata-coordinator sim"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds(default_count: u64) -> Vec<u64> {
        match std::env::var("STRATA_SIM_SEED") {
            Ok(s) => vec![s.parse().expect("STRATA_SIM_SEED must be a number")],
            Err(_) => {
                let count = std::env::var("STRATA_SIM_SEEDS")
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(default_count);
                (0..count).collect()
            }
        }
    }

    fn run_all(name: &str, cfg: SimConfig, count: u64) {
        let mut total = SimStats::default();
        let list = seeds(count);
        for seed in &list {
            match run_seed(*seed, cfg.clone()) {
                Ok(s) => {
                    total.committed += s.committed;
                    total.elections += s.elections;
                    total.crashes += s.crashes;
                    total.snap_syncs += s.snap_syncs;
                    total.trunc_syncs += s.trunc_syncs;
                    total.refused += s.refused;
                    total.reconfigs += s.reconfigs;
                    total.reconfigured += s.reconfigured;
                }
                Err(msg) => panic!("{name}: {msg}"),
            }
        }
        eprintln!("{name}: {} seeds ok, {total:?}", list.len());
        assert!(total.committed > 0, "the simulation committed nothing");
    }

    #[test]
    fn sim_three_servers() {
        run_all(
            "sim_three_servers",
            SimConfig {
                voters: 3,
                observers: 0,
                spares: 0,
                steps: 3000,
                loss: 5,
                max_counter: 50,
            },
            400,
        );
    }

    #[test]
    fn sim_five_servers() {
        run_all(
            "sim_five_servers",
            SimConfig {
                voters: 5,
                observers: 0,
                spares: 0,
                steps: 3000,
                loss: 5,
                max_counter: 50,
            },
            300,
        );
    }

    #[test]
    fn sim_three_voters_and_an_observer() {
        run_all(
            "sim_three_voters_and_an_observer",
            SimConfig {
                voters: 3,
                observers: 1,
                spares: 0,
                steps: 2000,
                loss: 5,
                max_counter: 1000,
            },
            300,
        );
    }

    /// Servers join and leave: random reconfigurations among five servers, three of
    /// them the first voters, under the same faults and with the same invariants.
    #[test]
    fn sim_reconfiguration() {
        run_all(
            "sim_reconfiguration",
            SimConfig {
                voters: 3,
                observers: 0,
                spares: 2,
                steps: 3000,
                loss: 5,
                max_counter: 50,
            },
            300,
        );
    }

    #[test]
    fn sim_reconfiguration_with_an_observer() {
        run_all(
            "sim_reconfiguration_with_an_observer",
            SimConfig {
                voters: 3,
                observers: 1,
                spares: 1,
                steps: 2000,
                loss: 5,
                max_counter: 1000,
            },
            200,
        );
    }
}
