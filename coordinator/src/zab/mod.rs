//! ZAB, ZooKeeper's atomic broadcast, as a pure state machine.
//!
//! [`Zab::step`] takes one [`Input`] (a tick, a message from a peer, a client proposal,
//! a compaction notice) and returns the [`Action`]s the caller must carry out, in order:
//! persist epochs, append or truncate the log, install a snapshot, send messages, apply
//! committed entries. There are no sockets, clocks or random numbers in here, which is
//! what lets [`sim`] run whole ensembles deterministically from one seed.
//!
//! The phases follow the ZAB paper (Junqueira, Reed, Serafini, "Zab: High-performance
//! broadcast for primary-backup systems", DSN 2011) and ZooKeeper's implementation:
//!
//! * **Election** (`FastLeaderElection`): votes are ordered by (epoch, zxid, server id);
//!   a server decides when a quorum agrees with its vote for one tick, or joins a leader
//!   that a quorum already follows.
//! * **Discovery**: followers send `FollowerInfo`; the prospective leader picks
//!   `max(acceptedEpoch) + 1` over a quorum, followers accept it only if it is newer than
//!   anything they accepted, and report their history (`AckEpoch`). A leader that finds a
//!   follower with a newer history gives up, so the established leader always holds
//!   every committed transaction.
//! * **Synchronisation**: per follower, `DIFF` (send what it lacks), `TRUNC` (cut back an
//!   uncommitted tail, then diff) or `SNAP` (a snapshot and what follows); the follower
//!   adopts the new epoch and acknowledges (`NEWLEADER`) only after it is durable. A
//!   quorum of those establishes the leader, which commits its history (`UPTODATE`).
//! * **Broadcast**: proposal → durable ack from a quorum → commit, in zxid order.
//!   Observers receive everything but their acks never count.
//!
//! * **Reconfiguration** (ZooKeeper 3.5+, Shraer et al., "Dynamic Reconfiguration of
//!   Primary/Backup Clusters", USENIX ATC 2012): the membership is part of the replicated
//!   history. A reconfiguration entry is an ordinary proposal; from the moment it is
//!   proposed until it commits, every decision that needs a quorum (committing, electing,
//!   establishing, staying leader) needs one of the active configuration *and* one of the
//!   proposed one. On commit the proposed configuration becomes the active one; a leader
//!   that is no longer a voter steps down. Only one may be in progress at a time, so every
//!   configuration entry in a log but the last one is committed. Which entries are
//!   reconfigurations, and what they install, the core learns from [`Reconfig`].
//!
//! A zxid is `epoch << 32 | counter`. When the counter would overflow, the leader steps
//! down so a new election starts a new epoch, as ZooKeeper does.
//!
//! [`Action::SendDurable`] is "send only after everything before it is on disk": acks,
//! epoch acknowledgements and `NEWLEADER` acks are only worth anything if they survive a
//! crash.

mod broadcast;
mod discovery;
mod election;
#[cfg(test)]
mod reconfiguration;
pub mod sim;
mod sync;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;

pub type ServerId = u64;

pub fn epoch_of(zxid: i64) -> i64 {
    zxid >> 32
}

pub fn counter_of(zxid: i64) -> i64 {
    zxid & 0xffff_ffff
}

pub fn make_zxid(epoch: i64, counter: i64) -> i64 {
    (epoch << 32) | counter
}

/// One logged transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub zxid: i64,
    pub data: Bytes,
}

/// A state-machine snapshot at `zxid`; `data` is opaque to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub zxid: i64,
    pub data: SnapshotData,
}

/// Where a snapshot's body is: in memory (a leader's SNAP as received), or in the file
/// this server wrote it to, read only when a learner needs a SNAP — so a server does
/// not hold a second copy of its whole tree for the rare learner that is far behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotData {
    Bytes(Bytes),
    File(std::path::PathBuf),
}

impl SnapshotData {
    /// The body, read from its file if need be.
    pub fn load(&self) -> std::io::Result<Bytes> {
        match self {
            SnapshotData::Bytes(b) => Ok(b.clone()),
            SnapshotData::File(path) => crate::storage::snapshot_body(path).map(Bytes::from),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
    Observing,
}

/// An election notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// The sender's election round (ZooKeeper's logical clock).
    pub round: u64,
    pub leader: ServerId,
    /// The proposed leader's current epoch and last zxid.
    pub epoch: i64,
    pub zxid: i64,
    pub state: PeerState,
}

impl Vote {
    fn key(&self) -> (i64, i64, ServerId) {
        (self.epoch, self.zxid, self.leader)
    }
}

/// How a leader brings a learner's history to its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncKind {
    /// The learner's log is a prefix of the leader's: keep it, append `entries`.
    Diff,
    /// The learner has an uncommitted tail: cut its log after `base`, then append.
    Trunc,
    /// Replace the learner's state with this snapshot (`None`: the empty tree), then
    /// append.
    Snap(Option<Snapshot>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Vote(Vote),
    /// Learner → leader: "I follow you; here is my state". `request` identifies this
    /// attempt, so replies to an older attempt are ignored.
    FollowerInfo {
        request: u64,
        accepted_epoch: i64,
        accepted_leader: ServerId,
        last_zxid: i64,
        observer: bool,
    },
    LeaderInfo {
        request: u64,
        epoch: i64,
    },
    AckEpoch {
        request: u64,
        epoch: i64,
        current_epoch: i64,
        last_zxid: i64,
    },
    /// Synchronisation and `NEWLEADER` in one: after applying it the learner's history
    /// equals the leader's as of `leader_zxid`.
    Sync {
        request: u64,
        epoch: i64,
        kind: SyncKind,
        base: i64,
        entries: Vec<Entry>,
        leader_zxid: i64,
        /// The leader's active configuration: version and text (ZooKeeper's NEWLEADER
        /// carries it too). A learner far behind learns the membership from it, which a
        /// snapshot holds only in a form the core does not read.
        config: Option<(i64, Bytes)>,
    },
    AckNewLeader {
        request: u64,
        epoch: i64,
    },
    UpToDate {
        epoch: i64,
        commit: i64,
    },
    Propose {
        epoch: i64,
        entry: Entry,
    },
    Ack {
        epoch: i64,
        zxid: i64,
    },
    Commit {
        epoch: i64,
        zxid: i64,
    },
    Ping {
        epoch: i64,
        commit: i64,
    },
    /// Also a cumulative ack: `last_zxid` is what the follower holds durably of this
    /// epoch's history (0 before it is synchronised), so a lost Ack is made good.
    PingAck {
        epoch: i64,
        last_zxid: i64,
    },
    /// A follower passes a client's write to the leader.
    Forward {
        data: Bytes,
    },
    /// A server that knows the leader tells one that is looking which configuration is
    /// active (ZooKeeper's election notifications carry it): a server that was down
    /// while the ensemble was reconfigured learns whom to ask.
    Config {
        version: i64,
        text: Bytes,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Looking,
    /// Following `leader`; `serving` once synchronised (`UPTODATE`).
    Following {
        leader: ServerId,
        serving: bool,
    },
    Observing {
        leader: ServerId,
        serving: bool,
    },
    /// Leading `epoch`; `established` once a quorum acknowledged `NEWLEADER`.
    Leading {
        epoch: i64,
        established: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send {
        to: ServerId,
        msg: Message,
    },
    /// Send once every earlier action that writes to disk is durable.
    SendDurable {
        to: ServerId,
        msg: Message,
    },
    PersistEpochs {
        accepted_epoch: i64,
        accepted_leader: ServerId,
        current_epoch: i64,
    },
    Append(Vec<Entry>),
    /// Remove every logged entry with zxid greater than this.
    Truncate(i64),
    /// The active configuration changed: keep it (version, text) for a restart, in
    /// order with the log (ZooKeeper writes its dynamic configuration file).
    PersistConfig(i64, Bytes),
    /// Replace the state machine and the whole log with this snapshot.
    InstallSnapshot(Option<Snapshot>),
    /// Apply these committed entries, in order.
    Commit(Vec<Entry>),
    RoleChanged(Role),
    /// A client write given to this server that it could neither propose nor forward:
    /// no established leader. Its client must be told it was not taken.
    Refused(Bytes),
}

/// Who takes part: the voters, whose acknowledgements count, and the observers, which
/// only learn. `version` is the zxid of the reconfiguration that made it (0 for the
/// static configuration of the configuration file); `text` is the configuration as the
/// state machine stores it, opaque to the core.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    pub version: i64,
    pub voters: BTreeSet<ServerId>,
    pub observers: BTreeSet<ServerId>,
    pub text: Bytes,
}

impl Membership {
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    pub fn is_voter(&self, id: ServerId) -> bool {
        self.voters.contains(&id)
    }

    pub fn has_quorum(&self, ids: &[ServerId]) -> bool {
        ids.iter().filter(|id| self.is_voter(**id)).count() >= self.quorum()
    }

    /// The membership a configuration text names, at `version`.
    pub fn from_text(rules: &dyn Reconfig, version: i64, text: Bytes) -> Option<Membership> {
        let (voters, observers) = rules.members(&text)?;
        Some(Membership {
            version,
            voters,
            observers,
            text,
        })
    }
}

/// What the core needs to know about reconfiguration entries; all other entries stay
/// opaque to it.
pub trait Reconfig: Send + Sync + std::fmt::Debug {
    /// The voters and observers a configuration text names; `None` if it names none.
    fn members(&self, text: &[u8]) -> Option<(BTreeSet<ServerId>, BTreeSet<ServerId>)>;
    /// The configuration text a logged entry installs, if it is a reconfiguration.
    fn installs(&self, entry: &[u8]) -> Option<Bytes>;
    /// Whether a client's write asks for a reconfiguration (which only the leader can
    /// decide, against the configuration it last proposed).
    fn is_request(&self, entry: &[u8]) -> bool;
    /// On the leader, for an entry that [`Reconfig::is_request`]: what to log instead,
    /// the reconfiguration at `ctx.zxid` or its refusal.
    fn prepare(&self, entry: &[u8], ctx: &Prepare<'_>) -> Bytes;
}

/// What a leader decides a reconfiguration request against.
#[derive(Debug)]
pub struct Prepare<'a> {
    /// The zxid the entry will have.
    pub zxid: i64,
    pub active: &'a Membership,
    /// A reconfiguration proposed and not yet committed.
    pub pending: Option<&'a Membership>,
    /// Participants synchronised with this leader, itself included: a new configuration
    /// must have a quorum among them (ZooKeeper's `isQuorumSynced`).
    pub synced: BTreeSet<ServerId>,
}

/// Entries are never reconfigurations (tests of the other rules).
#[derive(Debug)]
pub struct NoReconfig;

impl Reconfig for NoReconfig {
    fn members(&self, _: &[u8]) -> Option<(BTreeSet<ServerId>, BTreeSet<ServerId>)> {
        None
    }
    fn installs(&self, _: &[u8]) -> Option<Bytes> {
        None
    }
    fn is_request(&self, _: &[u8]) -> bool {
        false
    }
    fn prepare(&self, entry: &[u8], _: &Prepare<'_>) -> Bytes {
        Bytes::copy_from_slice(entry)
    }
}

#[derive(Debug, Clone)]
pub struct ZabConfig {
    pub id: ServerId,
    /// The membership this server starts from when its log holds no later one.
    pub membership: Membership,
    pub reconfig: Arc<dyn Reconfig>,
    /// Ticks allowed for discovery and synchronisation (`initLimit`).
    pub init_limit: u64,
    /// Ticks a follower or the leader may go without hearing from the other (`syncLimit`).
    pub sync_limit: u64,
    /// Largest zxid counter before the leader forces a new epoch (ZooKeeper: 2^32 - 1).
    pub max_counter: i64,
    /// Entries kept in memory below the latest snapshot, so a briefly absent follower
    /// still gets a DIFF (ZooKeeper's `zookeeper.commitLogCount`, 500).
    pub keep_compacted: usize,
}

/// What a server keeps on disk; a restart gives it back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Durable {
    pub accepted_epoch: i64,
    pub accepted_leader: ServerId,
    pub current_epoch: i64,
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot, in zxid order.
    pub log: Vec<Entry>,
    /// The active configuration as last persisted (version, text): what a leader or a
    /// reconfiguration made it, which may differ from the configuration file's.
    pub config: Option<(i64, Bytes)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LearnerPhase {
    /// LeaderInfo sent (or owed, before the epoch is chosen); waiting for AckEpoch.
    Discovery,
    /// Sync sent; proposals flow; waiting for AckNewLeader.
    Syncing,
    /// AckNewLeader received.
    Synced,
}

#[derive(Debug, Clone)]
struct Learner {
    request: u64,
    phase: LearnerPhase,
    observer: bool,
    accepted_epoch: i64,
    /// Highest zxid this learner is known to hold durably in this epoch's history.
    acked: i64,
    /// The leader's last zxid when it sent this learner's Sync: what AckNewLeader confirms.
    sync_zxid: i64,
    last_heard: u64,
}

#[derive(Debug)]
enum State {
    Looking {
        round: u64,
        proposal: Vote,
        votes: BTreeMap<ServerId, Vote>,
        /// Decided peers' reports: peer → (leader, state).
        decided: BTreeMap<ServerId, (ServerId, PeerState)>,
        /// Tick at which a quorum first agreed with `proposal` (finalize wait).
        agreed_at: Option<u64>,
        last_broadcast: u64,
    },
    Following {
        leader: ServerId,
        observer: bool,
        request: u64,
        phase: FollowPhase,
        last_heard: u64,
        last_sent_info: u64,
        since: u64,
    },
    Leading {
        /// `None` until a quorum of FollowerInfo fixes the new epoch.
        epoch: Option<i64>,
        established: bool,
        learners: BTreeMap<ServerId, Learner>,
        /// Voters (self included) that acknowledged the epoch with their history.
        epoch_acks: BTreeSet<ServerId>,
        newleader_acks: BTreeSet<ServerId>,
        next_counter: i64,
        since: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FollowPhase {
    /// FollowerInfo sent, waiting for LeaderInfo.
    Discovery,
    /// AckEpoch sent, waiting for Sync.
    Syncing,
    /// Synced, waiting for UpToDate.
    Synced,
    Broadcast,
}

pub struct Zab {
    cfg: ZabConfig,
    /// The active configuration.
    config: Membership,
    /// A reconfiguration logged after `config` and not known to be committed.
    pending: Option<Membership>,
    /// Set when a commit activated a configuration; handled at the end of the step.
    reconfigured: bool,
    accepted_epoch: i64,
    accepted_leader: ServerId,
    current_epoch: i64,
    snapshot: Option<Snapshot>,
    log: Vec<Entry>,
    /// Highest zxid known committed and handed out in `Action::Commit`.
    committed: i64,
    tick: u64,
    round: u64,
    request_seq: u64,
    state: State,
}

impl Zab {
    /// Start (or restart) from what is on disk, looking for a leader.
    pub fn new(cfg: ZabConfig, durable: Durable) -> (Zab, Vec<Action>) {
        let committed = durable.snapshot.as_ref().map_or(0, |s| s.zxid);
        let mut config = cfg.membership.clone();
        if let Some((version, text)) = &durable.config
            && *version >= config.version
            && let Some(m) = Membership::from_text(&*cfg.reconfig, *version, text.clone())
        {
            config = m;
        }
        let mut z = Zab {
            cfg,
            config,
            pending: None,
            reconfigured: false,
            accepted_epoch: durable.accepted_epoch,
            accepted_leader: durable.accepted_leader,
            current_epoch: durable.current_epoch,
            snapshot: durable.snapshot,
            log: durable.log,
            committed,
            tick: 0,
            round: 0,
            request_seq: 0,
            state: State::Looking {
                round: 0,
                proposal: Vote {
                    round: 0,
                    leader: 0,
                    epoch: 0,
                    zxid: 0,
                    state: PeerState::Looking,
                },
                votes: BTreeMap::new(),
                decided: BTreeMap::new(),
                agreed_at: None,
                last_broadcast: 0,
            },
        };
        z.scan_configs(0);
        z.reconfigured = false;
        let mut out = Vec::new();
        z.start_looking(&mut out);
        (z, out)
    }

    /// The active configuration, and a proposed one not yet committed.
    pub fn membership(&self) -> (&Membership, Option<&Membership>) {
        (&self.config, self.pending.as_ref())
    }

    /// A voter of the active or of the proposed configuration.
    fn is_voter(&self, id: ServerId) -> bool {
        self.config.is_voter(id) || self.pending.as_ref().is_some_and(|p| p.is_voter(id))
    }

    /// Voters of both configurations while a reconfiguration is in progress.
    fn all_voters(&self) -> BTreeSet<ServerId> {
        let mut all = self.config.voters.clone();
        if let Some(p) = &self.pending {
            all.extend(p.voters.iter().copied());
        }
        all
    }

    /// A quorum of the active configuration and, while one is proposed, of that one too.
    fn has_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a ServerId>) -> bool {
        let ids: Vec<ServerId> = ids.into_iter().copied().collect();
        self.config.has_quorum(&ids) && self.pending.as_ref().is_none_or(|p| p.has_quorum(&ids))
    }

    /// The only voter there is: it decides elections alone.
    fn lone_voter(&self) -> bool {
        self.pending.is_none() && self.config.voters.len() == 1
    }

    /// Whether this server votes in elections: every participant does, named by a
    /// configuration or not (as in ZooKeeper, where the learner type is the server's
    /// own); whether a vote counts is for its receiver to decide, by its configurations.
    /// A server that does not know yet that a proposed configuration names it still
    /// helps elect the leader that configuration needs.
    fn votes(&self) -> bool {
        let me = self.cfg.id;
        self.is_voter(me) || !self.listed_observer(me)
    }

    /// Listed as an observer by the active or the proposed configuration.
    fn listed_observer(&self, id: ServerId) -> bool {
        self.config.observers.contains(&id)
            || self
                .pending
                .as_ref()
                .is_some_and(|p| p.observers.contains(&id))
    }

    /// Note the reconfigurations among `self.log[from..]`: a later one means the one
    /// before it committed (only one is ever in progress).
    pub(super) fn scan_configs(&mut self, from: usize) {
        for e in &self.log[from..] {
            if e.zxid <= self.config.version {
                continue;
            }
            let Some(text) = self.cfg.reconfig.installs(&e.data) else {
                continue;
            };
            let Some(m) = Membership::from_text(&*self.cfg.reconfig, e.zxid, text) else {
                continue;
            };
            if let Some(before) = self.pending.replace(m) {
                self.config = before;
                self.reconfigured = true;
            }
        }
    }

    /// Take a committed configuration another server reports, if it is later than the
    /// active one (a static one, version 0, gives way to the leader's). Returns whether
    /// anything changed.
    pub(super) fn adopt_config(&mut self, version: i64, text: Bytes) -> bool {
        if version < self.config.version || (version == self.config.version && version > 0) {
            return false;
        }
        let Some(m) = Membership::from_text(&*self.cfg.reconfig, version, text) else {
            return false;
        };
        if m == self.config {
            return false;
        }
        self.config = m;
        self.rescan_configs();
        self.reconfigured = true;
        true
    }

    /// After the log lost its tail: forget a proposed configuration that went with it.
    pub(super) fn rescan_configs(&mut self) {
        self.pending = None;
        self.scan_configs(0);
    }

    /// A commit reached the proposed configuration: it is the active one now.
    pub(super) fn activate_committed(&mut self) {
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.version <= self.committed)
        {
            self.config = self.pending.take().expect("checked");
            self.reconfigured = true;
        }
    }

    /// What an activated configuration means for this server's role: a leader that no
    /// longer votes steps down (the voters elect one of their own); a learner whose role
    /// changed between participant and observer joins again in its new role.
    fn on_reconfigured(&mut self, out: &mut Vec<Action>) {
        let me = self.cfg.id;
        match &self.state {
            State::Leading { .. } if !self.is_voter(me) => self.start_looking(out),
            State::Following { observer, .. }
                if *observer != self.config.observers.contains(&me) =>
            {
                self.start_looking(out)
            }
            _ => {}
        }
    }

    pub fn id(&self) -> ServerId {
        self.cfg.id
    }

    pub fn last_zxid(&self) -> i64 {
        self.log
            .last()
            .map(|e| e.zxid)
            .or(self.snapshot.as_ref().map(|s| s.zxid))
            .unwrap_or(0)
    }

    pub fn committed(&self) -> i64 {
        self.committed
    }

    pub fn current_epoch(&self) -> i64 {
        self.current_epoch
    }

    pub fn role(&self) -> Role {
        match &self.state {
            State::Looking { .. } => Role::Looking,
            State::Following {
                leader,
                observer,
                phase,
                ..
            } => {
                let serving = *phase == FollowPhase::Broadcast;
                if *observer {
                    Role::Observing {
                        leader: *leader,
                        serving,
                    }
                } else {
                    Role::Following {
                        leader: *leader,
                        serving,
                    }
                }
            }
            State::Leading {
                epoch, established, ..
            } => Role::Leading {
                epoch: epoch.unwrap_or(0),
                established: *established,
            },
        }
    }

    /// Synced learners and all learners, when leading (for `zk_synced_followers`).
    pub fn followers(&self) -> Option<(usize, usize)> {
        match &self.state {
            State::Leading { learners, .. } => {
                let followers = || {
                    learners
                        .iter()
                        .filter(|(id, l)| **id != self.cfg.id && !l.observer)
                        .map(|(_, l)| l)
                };
                Some((
                    followers()
                        .filter(|l| l.phase == LearnerPhase::Synced)
                        .count(),
                    followers().count(),
                ))
            }
            _ => None,
        }
    }

    /// The zxid the next proposal would get, when leading an established epoch.
    pub fn is_serving(&self) -> bool {
        matches!(
            self.role(),
            Role::Leading {
                established: true,
                ..
            } | Role::Following { serving: true, .. }
                | Role::Observing { serving: true, .. }
        )
    }

    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Tick => self.on_tick(&mut out),
            Input::Message { from, msg } => self.on_message(from, msg, &mut out),
            Input::Propose(data) => {
                if !self.propose(data.clone(), &mut out) {
                    out.push(Action::Refused(data));
                }
            }
            Input::Compacted(snapshot) => self.compact(snapshot),
            Input::PeerLost(peer) => self.peer_lost(peer, &mut out),
        }
        if std::mem::take(&mut self.reconfigured) {
            out.push(Action::PersistConfig(
                self.config.version,
                self.config.text.clone(),
            ));
            self.on_reconfigured(&mut out);
        }
        out
    }

    fn peer_lost(&mut self, peer: ServerId, out: &mut Vec<Action>) {
        match &mut self.state {
            State::Following { leader, .. } if *leader == peer => self.start_looking(out),
            State::Leading {
                learners,
                established: true,
                ..
            } => {
                learners.remove(&peer);
                let live: Vec<ServerId> = learners.keys().copied().collect();
                if !self.has_quorum(&live) {
                    self.start_looking(out);
                }
            }
            _ => {}
        }
    }

    // ---------------------------------------------------------------- dispatch

    /// Each message to the handler of its phase.
    fn on_message(&mut self, from: ServerId, msg: Message, out: &mut Vec<Action>) {
        match msg {
            Message::Vote(v) => self.on_vote(from, v, out),
            Message::FollowerInfo {
                request,
                accepted_epoch,
                accepted_leader,
                last_zxid,
                observer,
            } => self.on_follower_info(
                from,
                request,
                (accepted_epoch, accepted_leader),
                last_zxid,
                observer,
                out,
            ),
            Message::LeaderInfo { request, epoch } => {
                self.on_leader_info(from, request, epoch, out)
            }
            Message::AckEpoch {
                request,
                epoch,
                current_epoch,
                last_zxid,
            } => {
                if let Some(l) = self.heard_from(from) {
                    l.acked = last_zxid;
                }
                self.on_ack_epoch(from, request, epoch, current_epoch, last_zxid, out)
            }
            Message::Sync {
                request,
                epoch,
                kind,
                base,
                entries,
                config,
                ..
            } => self.on_sync(from, request, epoch, (kind, base, entries), config, out),
            Message::AckNewLeader { request, epoch } => {
                self.heard_from(from);
                self.on_ack_new_leader(from, request, epoch, out)
            }
            Message::UpToDate { epoch, commit } => self.on_up_to_date(from, epoch, commit, out),
            Message::Propose { epoch, entry } => self.on_propose(from, epoch, entry, out),
            Message::Ack { epoch, zxid } => {
                self.heard_from(from);
                self.on_ack(from, epoch, zxid, out)
            }
            Message::Commit { epoch, zxid } => self.on_commit(from, epoch, zxid, out),
            Message::Ping { epoch, commit } => self.on_ping(from, epoch, commit, out),
            Message::PingAck { epoch, last_zxid } => {
                self.heard_from(from);
                if last_zxid > 0 {
                    self.on_ack(from, epoch, last_zxid, out);
                }
            }
            Message::Forward { data } => {
                if from != self.cfg.id {
                    self.propose(data, out);
                }
            }
            Message::Config { version, text } => {
                // Only while looking, or from the leader that would not take this
                // server as what it believes it is: a server in an epoch learns its
                // configuration from its leader, in order with the history.
                let open = match &self.state {
                    State::Looking { .. } => true,
                    State::Following { leader, phase, .. } => {
                        *leader == from && *phase == FollowPhase::Discovery
                    }
                    State::Leading { .. } => false,
                };
                if open && self.adopt_config(version, text) {
                    self.start_looking(out);
                }
            }
        }
    }

    /// When leading: note that `from` is alive, and give its learner record.
    fn heard_from(&mut self, from: ServerId) -> Option<&mut Learner> {
        let State::Leading { learners, .. } = &mut self.state else {
            return None;
        };
        let l = learners.get_mut(&from)?;
        l.last_heard = self.tick;
        Some(l)
    }

    fn on_tick(&mut self, out: &mut Vec<Action>) {
        self.tick += 1;
        let tick = self.tick;
        let me = self.cfg.id;
        match &mut self.state {
            State::Looking { last_broadcast, .. } => {
                let resend = tick - *last_broadcast >= 2;
                self.maybe_decide(out);
                if resend && matches!(self.state, State::Looking { .. }) {
                    self.broadcast_vote(out);
                }
            }
            State::Following {
                phase,
                last_heard,
                last_sent_info,
                since,
                ..
            } => {
                let limit = if *phase == FollowPhase::Broadcast {
                    self.cfg.sync_limit
                } else {
                    self.cfg.init_limit
                };
                if tick - *last_heard > limit
                    || (*phase != FollowPhase::Broadcast && tick - *since > 2 * self.cfg.init_limit)
                {
                    self.start_looking(out);
                } else if *phase == FollowPhase::Discovery && tick - *last_sent_info >= 2 {
                    self.send_follower_info(out);
                }
            }
            State::Leading {
                epoch,
                established,
                learners,
                since,
                ..
            } => {
                if !*established {
                    if tick - *since > self.cfg.init_limit {
                        self.start_looking(out);
                    }
                    return;
                }
                let epoch = epoch.expect("established implies an epoch");
                let limit = self.cfg.sync_limit;
                learners.retain(|id, l| *id == me || tick - l.last_heard <= limit);
                if let Some(l) = learners.get_mut(&me) {
                    l.last_heard = tick;
                }
                let live = learners.keys().copied().collect::<Vec<_>>();
                if !self.has_quorum(&live) {
                    self.start_looking(out);
                    return;
                }
                for to in live.into_iter().filter(|id| *id != me) {
                    out.push(Action::Send {
                        to,
                        msg: Message::Ping {
                            epoch,
                            commit: self.committed,
                        },
                    });
                }
            }
        }
    }
}

pub enum Input {
    Tick,
    Message {
        from: ServerId,
        msg: Message,
    },
    /// A client write arriving at this server.
    Propose(Bytes),
    /// The caller took a snapshot of applied state at this zxid; log entries up to it
    /// may go.
    Compacted(Snapshot),
    /// The transport lost its connection to this peer (its process died or the link
    /// broke). Only a hint for liveness, like a closed TCP connection in ZooKeeper:
    /// a follower looks for a new leader at once instead of waiting `syncLimit`.
    PeerLost(ServerId),
}

/// Builders for the step tests of each phase: a server brought into a given state by
/// the same inputs a real one gets.
#[cfg(test)]
pub(super) mod testing {
    use super::*;

    /// Server `id` of `n` voters, 1..=n.
    pub fn cfg(id: ServerId, n: u64) -> ZabConfig {
        ZabConfig {
            id,
            membership: Membership {
                voters: (1..=n).collect(),
                ..Membership::default()
            },
            reconfig: Arc::new(NoReconfig),
            init_limit: 10,
            sync_limit: 5,
            max_counter: u32::MAX as i64,
            keep_compacted: 0,
        }
    }

    pub fn entry(epoch: i64, counter: i64, data: &'static [u8]) -> Entry {
        Entry {
            zxid: make_zxid(epoch, counter),
            data: Bytes::from_static(data),
        }
    }

    pub fn vote(round: u64, leader: ServerId, state: PeerState) -> Vote {
        Vote {
            round,
            leader,
            epoch: 0,
            zxid: 0,
            state,
        }
    }

    pub fn message(z: &mut Zab, from: ServerId, msg: Message) -> Vec<Action> {
        z.step(Input::Message { from, msg })
    }

    /// Server 1 of 3, restarted from `durable`, that learned server 2 leads a quorum:
    /// following 2 in discovery, its FollowerInfo (request 1) sent.
    pub fn follower_of_2(durable: Durable) -> Zab {
        let (mut z, _) = Zab::new(cfg(1, 3), durable);
        message(&mut z, 2, Message::Vote(vote(1, 2, PeerState::Leading)));
        assert_eq!(
            z.role(),
            Role::Following {
                leader: 2,
                serving: false
            }
        );
        z
    }
}

#[cfg(test)]
mod tests {
    use super::testing::cfg;
    use super::*;

    #[test]
    fn zxid_layout_is_epoch_then_counter() {
        let z = make_zxid(3, 7);
        assert_eq!(z, 0x3_0000_0007);
        assert_eq!((epoch_of(z), counter_of(z)), (3, 7));
    }

    #[test]
    fn votes_order_by_epoch_then_zxid_then_id() {
        let v = |epoch, zxid, leader| Vote {
            round: 1,
            leader,
            epoch,
            zxid,
            state: PeerState::Looking,
        };
        assert!(v(2, 0, 1).key() > v(1, 100, 9).key());
        assert!(v(1, 5, 1).key() > v(1, 4, 9).key());
        assert!(v(1, 5, 2).key() > v(1, 5, 1).key());
    }

    #[test]
    fn a_new_server_starts_looking_and_votes_for_itself() {
        let (z, out) = Zab::new(cfg(2, 3), Durable::default());
        assert_eq!(z.role(), Role::Looking);
        let sent: Vec<_> = out
            .iter()
            .filter_map(|a| match a {
                Action::Send {
                    to,
                    msg: Message::Vote(v),
                } => Some((*to, v.leader)),
                _ => None,
            })
            .collect();
        assert_eq!(sent, vec![(1, 2), (3, 2)]);
    }

    #[test]
    fn a_lone_voter_leads_at_once_and_commits_on_its_own_durable_acks() {
        // A standalone server: voter 0 of an ensemble of one, restarted with two entries
        // of epoch 1 in its log.
        let e = |epoch, counter, data: &'static [u8]| Entry {
            zxid: make_zxid(epoch, counter),
            data: Bytes::from_static(data),
        };
        let durable = Durable {
            accepted_epoch: 1,
            accepted_leader: 0,
            current_epoch: 1,
            snapshot: None,
            log: vec![e(1, 1, b"a"), e(1, 2, b"b")],
            config: None,
        };
        let lone = ZabConfig {
            membership: Membership {
                voters: BTreeSet::from([0]),
                ..Membership::default()
            },
            ..cfg(0, 0)
        };
        let (mut z, out) = Zab::new(lone, durable);
        assert_eq!(
            out,
            vec![
                Action::RoleChanged(Role::Looking),
                Action::RoleChanged(Role::Leading {
                    epoch: 0,
                    established: false
                }),
                Action::PersistEpochs {
                    accepted_epoch: 2,
                    accepted_leader: 0,
                    current_epoch: 1
                },
                Action::PersistEpochs {
                    accepted_epoch: 2,
                    accepted_leader: 0,
                    current_epoch: 2
                },
                Action::SendDurable {
                    to: 0,
                    msg: Message::AckNewLeader {
                        request: 0,
                        epoch: 2
                    }
                },
            ],
            "no votes to wait for: it leads, takes epoch 2, and acknowledges it durably"
        );
        assert!(!z.is_serving());
        let out = z.step(Input::Message {
            from: 0,
            msg: Message::AckNewLeader {
                request: 0,
                epoch: 2,
            },
        });
        assert_eq!(
            out,
            vec![
                Action::Commit(vec![e(1, 1, b"a"), e(1, 2, b"b")]),
                Action::RoleChanged(Role::Leading {
                    epoch: 2,
                    established: true
                }),
            ],
            "its own acknowledgement is a quorum: the logged history commits"
        );
        assert!(z.is_serving());
        let out = z.step(Input::Propose(Bytes::from_static(b"c")));
        assert_eq!(
            out,
            vec![
                Action::Append(vec![e(2, 1, b"c")]),
                Action::SendDurable {
                    to: 0,
                    msg: Message::Ack {
                        epoch: 2,
                        zxid: make_zxid(2, 1)
                    }
                },
            ]
        );
        let out = z.step(Input::Message {
            from: 0,
            msg: Message::Ack {
                epoch: 2,
                zxid: make_zxid(2, 1),
            },
        });
        assert_eq!(out, vec![Action::Commit(vec![e(2, 1, b"c")])]);
        // Ticks change nothing: there is no one to ping and no one to lose.
        assert_eq!(z.step(Input::Tick), vec![]);
        assert!(z.is_serving());
    }

    #[test]
    fn a_write_without_a_leader_is_refused_not_lost() {
        let (mut z, _) = Zab::new(cfg(1, 3), Durable::default());
        let write = Bytes::from_static(b"w");
        assert_eq!(
            z.step(Input::Propose(write.clone())),
            vec![Action::Refused(write)],
            "a looking server can neither propose nor forward"
        );
    }

    #[test]
    fn sync_plan_is_diff_trunc_or_snap() {
        let (mut z, _) = Zab::new(cfg(1, 3), Durable::default());
        let e = |zxid| Entry {
            zxid,
            data: Bytes::new(),
        };
        z.log = vec![e(make_zxid(1, 1)), e(make_zxid(1, 2)), e(make_zxid(2, 1))];
        // A prefix: DIFF.
        let (k, base, entries) = z.plan_sync(make_zxid(1, 2));
        assert_eq!(
            (k, base, entries.len()),
            (SyncKind::Diff, make_zxid(1, 2), 1)
        );
        // An uncommitted epoch-1 tail the leader never saw: TRUNC back to 1.2.
        let (k, base, entries) = z.plan_sync(make_zxid(1, 3));
        assert_eq!(
            (k, base, entries.len()),
            (SyncKind::Trunc, make_zxid(1, 2), 1)
        );
        // Behind the snapshot: SNAP.
        z.committed = make_zxid(1, 2);
        z.compact(Snapshot {
            zxid: make_zxid(1, 2),
            data: SnapshotData::Bytes(Bytes::from_static(b"s")),
        });
        let (k, base, _) = z.plan_sync(make_zxid(1, 1));
        assert!(matches!(k, SyncKind::Snap(Some(_))));
        assert_eq!(base, make_zxid(1, 2));
        // A history from an epoch the leader has nothing of: SNAP, never a blind TRUNC.
        let (k, _, _) = z.plan_sync(make_zxid(3, 4));
        assert!(matches!(k, SyncKind::Snap(_)));
    }
}
