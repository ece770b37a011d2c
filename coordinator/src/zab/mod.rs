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
//! A zxid is `epoch << 32 | counter`. When the counter would overflow, the leader steps
//! down so a new election starts a new epoch, as ZooKeeper does.
//!
//! [`Action::SendDurable`] is "send only after everything before it is on disk": acks,
//! epoch acknowledgements and `NEWLEADER` acks are only worth anything if they survive a
//! crash.

pub mod sim;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet};

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
    pub data: Bytes,
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
    /// Replace the state machine and the whole log with this snapshot.
    InstallSnapshot(Option<Snapshot>),
    /// Apply these committed entries, in order.
    Commit(Vec<Entry>),
    RoleChanged(Role),
    /// A client write given to this server that it could neither propose nor forward:
    /// no established leader. Its client must be told it was not taken.
    Refused(Bytes),
}

#[derive(Debug, Clone)]
pub struct ZabConfig {
    pub id: ServerId,
    pub voters: BTreeSet<ServerId>,
    pub observers: BTreeSet<ServerId>,
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

impl ZabConfig {
    fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    fn is_voter(&self, id: ServerId) -> bool {
        self.voters.contains(&id)
    }

    fn has_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a ServerId>) -> bool {
        ids.into_iter().filter(|id| self.is_voter(**id)).count() >= self.quorum()
    }
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
        let mut z = Zab {
            cfg,
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
        let mut out = Vec::new();
        z.start_looking(&mut out);
        (z, out)
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
                if !self.cfg.has_quorum(learners.keys()) {
                    self.start_looking(out);
                }
            }
            _ => {}
        }
    }

    // ---------------------------------------------------------------- election

    fn self_vote(&self, round: u64) -> Vote {
        Vote {
            round,
            leader: self.cfg.id,
            epoch: self.current_epoch,
            zxid: self.last_zxid(),
            state: PeerState::Looking,
        }
    }

    fn start_looking(&mut self, out: &mut Vec<Action>) {
        self.round += 1;
        let observer = !self.cfg.is_voter(self.cfg.id);
        let mut proposal = self.self_vote(self.round);
        if observer {
            proposal.leader = 0;
        }
        let mut votes = BTreeMap::new();
        if !observer {
            votes.insert(self.cfg.id, proposal.clone());
        }
        self.state = State::Looking {
            round: self.round,
            proposal: proposal.clone(),
            votes,
            decided: BTreeMap::new(),
            agreed_at: None,
            last_broadcast: self.tick,
        };
        out.push(Action::RoleChanged(Role::Looking));
        self.broadcast_vote(out);
        self.tally(out);
    }

    fn broadcast_vote(&mut self, out: &mut Vec<Action>) {
        let State::Looking {
            proposal,
            last_broadcast,
            ..
        } = &mut self.state
        else {
            return;
        };
        *last_broadcast = self.tick;
        let mut v = proposal.clone();
        if !self.cfg.is_voter(self.cfg.id) {
            v.state = PeerState::Observing;
        }
        for p in self.cfg.voters.iter().filter(|p| **p != self.cfg.id) {
            out.push(Action::Send {
                to: *p,
                msg: Message::Vote(v.clone()),
            });
        }
    }

    /// The vote a decided server reports to a looking one.
    fn decided_vote(&self) -> Option<Vote> {
        let (leader, state) = match &self.state {
            State::Looking { .. } => return None,
            State::Following {
                leader, observer, ..
            } => (
                *leader,
                if *observer {
                    PeerState::Observing
                } else {
                    PeerState::Following
                },
            ),
            State::Leading { .. } => (self.cfg.id, PeerState::Leading),
        };
        Some(Vote {
            round: self.round,
            leader,
            epoch: self.accepted_epoch,
            zxid: self.last_zxid(),
            state,
        })
    }

    fn on_vote(&mut self, from: ServerId, v: Vote, out: &mut Vec<Action>) {
        let me = self.cfg.id;
        let i_vote = self.cfg.is_voter(me);
        if !matches!(self.state, State::Looking { .. }) {
            // Tell a looking peer whom we follow.
            if matches!(v.state, PeerState::Looking | PeerState::Observing)
                && let Some(dv) = self.decided_vote()
            {
                out.push(Action::Send {
                    to: from,
                    msg: Message::Vote(dv),
                });
            }
            return;
        }
        let from_voter = self.cfg.is_voter(from);
        let initial = self.self_vote(0);
        let mut rebroadcast = false;
        let mut reply = false;
        {
            let State::Looking {
                round,
                proposal,
                votes,
                decided,
                agreed_at,
                ..
            } = &mut self.state
            else {
                unreachable!("checked above")
            };
            match v.state {
                PeerState::Looking if from_voter && i_vote => {
                    if v.round > *round {
                        *round = v.round;
                        self.round = v.round;
                        votes.clear();
                        *agreed_at = None;
                        let mut mine = initial.clone();
                        mine.round = *round;
                        *proposal = if v.key() > mine.key() {
                            Vote {
                                round: *round,
                                ..v.clone()
                            }
                        } else {
                            mine
                        };
                        votes.insert(me, proposal.clone());
                        rebroadcast = true;
                    } else if v.round < *round {
                        reply = true;
                    } else if v.key() > proposal.key() {
                        *proposal = Vote {
                            round: *round,
                            ..v.clone()
                        };
                        votes.insert(me, proposal.clone());
                        *agreed_at = None;
                        rebroadcast = true;
                    }
                    if v.round >= *round {
                        votes.insert(from, v.clone());
                    }
                }
                PeerState::Looking | PeerState::Observing => {
                    if from_voter && !i_vote {
                        // An observer learns nothing from looking voters.
                    }
                }
                PeerState::Following | PeerState::Leading => {
                    if from_voter {
                        decided.insert(from, (v.leader, v.state));
                    }
                }
            }
        }
        if reply {
            let State::Looking { proposal, .. } = &self.state else {
                unreachable!()
            };
            let mut p = proposal.clone();
            if !i_vote {
                p.state = PeerState::Observing;
            }
            out.push(Action::Send {
                to: from,
                msg: Message::Vote(p),
            });
        }
        if rebroadcast {
            self.broadcast_vote(out);
        }
        // Join a leader a quorum already follows, if it says it leads.
        let State::Looking { decided, .. } = &self.state else {
            unreachable!()
        };
        let mut by_leader: BTreeMap<ServerId, BTreeSet<ServerId>> = BTreeMap::new();
        for (peer, (leader, _)) in decided.iter() {
            by_leader.entry(*leader).or_default().insert(*peer);
        }
        for (leader, backers) in by_leader {
            let leads = decided.get(&leader) == Some(&(leader, PeerState::Leading));
            let mut support = backers.clone();
            if i_vote {
                support.insert(me);
            }
            if leads && self.cfg.has_quorum(&support) {
                self.follow(leader, out);
                return;
            }
        }
        self.tally(out);
    }

    /// Note whether a quorum agrees with this server's vote. Others' votes may still be
    /// on their way, so the decision waits a tick (ZooKeeper's finalize wait) — except
    /// for the only voter of an ensemble of one, a standalone server, which has nobody
    /// to hear from and leads at once.
    fn tally(&mut self, out: &mut Vec<Action>) {
        if !self.cfg.is_voter(self.cfg.id) {
            return;
        }
        let tick = self.tick;
        let State::Looking {
            proposal,
            votes,
            agreed_at,
            ..
        } = &mut self.state
        else {
            return;
        };
        let agreeing: Vec<ServerId> = votes
            .iter()
            .filter(|(_, vv)| vv.leader == proposal.leader)
            .map(|(id, _)| *id)
            .collect();
        if self.cfg.has_quorum(&agreeing) {
            agreed_at.get_or_insert(tick);
        } else {
            *agreed_at = None;
        }
        if self.cfg.voters.len() == 1 {
            self.maybe_decide(out);
        }
    }

    /// Finalize an election whose quorum held for a tick (at once for a lone voter).
    fn maybe_decide(&mut self, out: &mut Vec<Action>) {
        let State::Looking {
            proposal,
            agreed_at: Some(at),
            ..
        } = &self.state
        else {
            return;
        };
        if self.tick <= *at && self.cfg.voters.len() > 1 {
            return;
        }
        let leader = proposal.leader;
        if leader == self.cfg.id {
            self.lead(out);
        } else {
            self.follow(leader, out);
        }
    }

    // ---------------------------------------------------------------- discovery

    fn lead(&mut self, out: &mut Vec<Action>) {
        let me = self.cfg.id;
        let mut learners = BTreeMap::new();
        learners.insert(
            me,
            Learner {
                request: 0,
                phase: LearnerPhase::Discovery,
                observer: false,
                accepted_epoch: self.accepted_epoch,
                acked: 0,
                sync_zxid: 0,
                last_heard: self.tick,
            },
        );
        self.state = State::Leading {
            epoch: None,
            established: false,
            learners,
            epoch_acks: BTreeSet::new(),
            newleader_acks: BTreeSet::new(),
            next_counter: 1,
            since: self.tick,
        };
        out.push(Action::RoleChanged(self.role()));
        self.maybe_choose_epoch(out);
    }

    fn follow(&mut self, leader: ServerId, out: &mut Vec<Action>) {
        self.request_seq += 1;
        let observer = !self.cfg.is_voter(self.cfg.id);
        self.state = State::Following {
            leader,
            observer,
            request: self.request_seq,
            phase: FollowPhase::Discovery,
            last_heard: self.tick,
            last_sent_info: self.tick,
            since: self.tick,
        };
        out.push(Action::RoleChanged(self.role()));
        self.send_follower_info(out);
    }

    fn send_follower_info(&mut self, out: &mut Vec<Action>) {
        let last_zxid = self.last_zxid();
        let State::Following {
            leader,
            observer,
            request,
            last_sent_info,
            phase,
            ..
        } = &mut self.state
        else {
            return;
        };
        *last_sent_info = self.tick;
        *phase = FollowPhase::Discovery;
        out.push(Action::Send {
            to: *leader,
            msg: Message::FollowerInfo {
                request: *request,
                accepted_epoch: self.accepted_epoch,
                accepted_leader: self.accepted_leader,
                last_zxid,
                observer: *observer,
            },
        });
    }

    /// Re-enter discovery with a fresh request (after a gap or a lost message).
    fn resync(&mut self, out: &mut Vec<Action>) {
        self.request_seq += 1;
        if let State::Following { request, .. } = &mut self.state {
            *request = self.request_seq;
        }
        self.send_follower_info(out);
    }

    fn maybe_choose_epoch(&mut self, out: &mut Vec<Action>) {
        let me = self.cfg.id;
        let State::Leading {
            epoch: epoch @ None,
            learners,
            ..
        } = &mut self.state
        else {
            return;
        };
        if !self.cfg.has_quorum(learners.keys()) {
            return;
        }
        let new_epoch = learners
            .values()
            .filter(|l| !l.observer)
            .map(|l| l.accepted_epoch)
            .max()
            .unwrap_or(0)
            .max(self.accepted_epoch)
            + 1;
        *epoch = Some(new_epoch);
        self.accepted_epoch = new_epoch;
        self.accepted_leader = me;
        out.push(Action::PersistEpochs {
            accepted_epoch: new_epoch,
            accepted_leader: me,
            current_epoch: self.current_epoch,
        });
        let targets: Vec<(ServerId, u64)> = learners
            .iter()
            .filter(|(id, _)| **id != me)
            .map(|(id, l)| (*id, l.request))
            .collect();
        for (to, request) in targets {
            out.push(Action::Send {
                to,
                msg: Message::LeaderInfo {
                    request,
                    epoch: new_epoch,
                },
            });
        }
        // The leader acknowledges its own epoch with its own history.
        let (ce, lz) = (self.current_epoch, self.last_zxid());
        self.on_ack_epoch(me, 0, new_epoch, ce, lz, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_ack_epoch(
        &mut self,
        from: ServerId,
        request: u64,
        epoch: i64,
        current_epoch: i64,
        last_zxid: i64,
        out: &mut Vec<Action>,
    ) {
        let me = self.cfg.id;
        let my_history = (self.current_epoch, self.last_zxid());
        let State::Leading {
            epoch: Some(my_epoch),
            learners,
            epoch_acks,
            established,
            ..
        } = &mut self.state
        else {
            return;
        };
        if epoch != *my_epoch {
            return;
        }
        let Some(l) = learners.get_mut(&from) else {
            return;
        };
        if l.request != request || l.phase != LearnerPhase::Discovery {
            return;
        }
        if (current_epoch, last_zxid) > my_history && !l.observer {
            // A follower has a newer history than this leader: this leader could miss
            // committed transactions, so it must not lead.
            self.start_looking(out);
            return;
        }
        let observer = l.observer;
        if !observer {
            epoch_acks.insert(from);
        }
        let my_epoch = *my_epoch;
        let established = *established;
        if from == me {
            l.phase = LearnerPhase::Syncing;
        }
        if from != me && (established || self.cfg.has_quorum(epoch_acks.iter())) {
            self.send_sync(from, last_zxid, out);
        }
        // On reaching the epoch quorum: adopt the epoch, sync everyone who waited.
        let State::Leading {
            learners,
            epoch_acks,
            ..
        } = &mut self.state
        else {
            return;
        };
        let me_syncing = learners
            .get(&me)
            .is_some_and(|l| l.phase == LearnerPhase::Syncing);
        if me_syncing && self.cfg.has_quorum(epoch_acks.iter()) && self.current_epoch != my_epoch {
            let waiting: Vec<(ServerId, i64)> = learners
                .iter()
                .filter(|(id, l)| **id != me && l.phase == LearnerPhase::Discovery)
                .filter(|(id, _)| epoch_acks.contains(id))
                .map(|(id, l)| (*id, l.acked))
                .collect();
            self.current_epoch = my_epoch;
            out.push(Action::PersistEpochs {
                accepted_epoch: self.accepted_epoch,
                accepted_leader: self.accepted_leader,
                current_epoch: my_epoch,
            });
            out.push(Action::SendDurable {
                to: me,
                msg: Message::AckNewLeader {
                    request: 0,
                    epoch: my_epoch,
                },
            });
            for (to, their_last) in waiting {
                self.send_sync(to, their_last, out);
            }
        }
    }

    // ---------------------------------------------------------------- synchronisation

    /// Whether `zxid` is a point in this server's history.
    fn has_point(&self, zxid: i64) -> bool {
        zxid == 0 && self.snapshot.is_none()
            || self.snapshot.as_ref().is_some_and(|s| s.zxid == zxid)
            || self.log.binary_search_by_key(&zxid, |e| e.zxid).is_ok()
    }

    fn entries_after(&self, zxid: i64) -> Vec<Entry> {
        let i = self.log.partition_point(|e| e.zxid <= zxid);
        self.log[i..].to_vec()
    }

    /// Choose DIFF, TRUNC or SNAP for a learner whose last zxid is `f`.
    fn plan_sync(&self, f: i64) -> (SyncKind, i64, Vec<Entry>) {
        let snap_zxid = self.snapshot.as_ref().map_or(0, |s| s.zxid);
        let last = self.last_zxid();
        if self.has_point(f) && f <= last {
            return (SyncKind::Diff, f, self.entries_after(f));
        }
        if f > snap_zxid {
            // The greatest point of ours below f; if it is from f's epoch the learner has
            // it too (both hold prefixes of that epoch's one sequence of proposals).
            let t = self
                .log
                .iter()
                .rev()
                .map(|e| e.zxid)
                .find(|z| *z < f)
                .unwrap_or(snap_zxid);
            if t > 0 && epoch_of(t) == epoch_of(f) && self.has_point(t) {
                return (SyncKind::Trunc, t, self.entries_after(t));
            }
        }
        (
            SyncKind::Snap(self.snapshot.clone()),
            snap_zxid,
            self.entries_after(snap_zxid),
        )
    }

    fn send_sync(&mut self, to: ServerId, their_last: i64, out: &mut Vec<Action>) {
        let (kind, base, entries) = self.plan_sync(their_last);
        let leader_zxid = self.last_zxid();
        let State::Leading {
            epoch: Some(epoch),
            learners,
            ..
        } = &mut self.state
        else {
            return;
        };
        let Some(l) = learners.get_mut(&to) else {
            return;
        };
        l.phase = LearnerPhase::Syncing;
        l.acked = base;
        l.sync_zxid = leader_zxid;
        out.push(Action::Send {
            to,
            msg: Message::Sync {
                request: l.request,
                epoch: *epoch,
                kind,
                base,
                entries,
                leader_zxid,
            },
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn on_sync(
        &mut self,
        from: ServerId,
        request_in: u64,
        epoch: i64,
        kind: SyncKind,
        base: i64,
        entries: Vec<Entry>,
        out: &mut Vec<Action>,
    ) {
        let State::Following {
            leader,
            request,
            phase,
            last_heard,
            ..
        } = &mut self.state
        else {
            return;
        };
        if *leader != from || *request != request_in || *phase != FollowPhase::Syncing {
            return;
        }
        if epoch != self.accepted_epoch {
            return;
        }
        *last_heard = self.tick;
        *phase = FollowPhase::Synced;
        match kind {
            SyncKind::Diff => {
                assert_eq!(self.last_zxid(), base, "DIFF must start at our last zxid");
            }
            SyncKind::Trunc => {
                assert!(
                    base >= self.committed,
                    "TRUNC to {base:#x} would drop committed {:#x}",
                    self.committed
                );
                let i = self.log.partition_point(|e| e.zxid <= base);
                self.log.truncate(i);
                out.push(Action::Truncate(base));
            }
            SyncKind::Snap(snapshot) => {
                self.committed = snapshot.as_ref().map_or(0, |s| s.zxid);
                self.snapshot = snapshot.clone();
                self.log.clear();
                out.push(Action::InstallSnapshot(snapshot));
            }
        }
        if !entries.is_empty() {
            self.log.extend(entries.iter().cloned());
            out.push(Action::Append(entries));
        }
        self.current_epoch = epoch;
        out.push(Action::PersistEpochs {
            accepted_epoch: self.accepted_epoch,
            accepted_leader: self.accepted_leader,
            current_epoch: epoch,
        });
        out.push(Action::SendDurable {
            to: from,
            msg: Message::AckNewLeader {
                request: request_in,
                epoch,
            },
        });
    }

    fn on_ack_new_leader(
        &mut self,
        from: ServerId,
        request: u64,
        epoch: i64,
        out: &mut Vec<Action>,
    ) {
        let me = self.cfg.id;
        let last = self.last_zxid();
        let State::Leading {
            epoch: Some(my_epoch),
            learners,
            newleader_acks,
            established,
            ..
        } = &mut self.state
        else {
            return;
        };
        if epoch != *my_epoch {
            return;
        }
        let Some(l) = learners.get_mut(&from) else {
            return;
        };
        if l.request != request || l.phase != LearnerPhase::Syncing {
            return;
        }
        l.phase = LearnerPhase::Synced;
        l.acked = l.acked.max(l.sync_zxid);
        if !l.observer {
            newleader_acks.insert(from);
        }
        let my_epoch = *my_epoch;
        if *established {
            if from != me {
                out.push(Action::Send {
                    to: from,
                    msg: Message::UpToDate {
                        epoch: my_epoch,
                        commit: self.committed,
                    },
                });
            }
            return;
        }
        if !newleader_acks.contains(&me) || !self.cfg.has_quorum(newleader_acks.iter()) {
            return;
        }
        *established = true;
        // The new leader's whole history is now on a quorum: it is committed.
        if let Some(l) = learners.get_mut(&me) {
            l.acked = last;
        }
        let synced: Vec<ServerId> = learners
            .iter()
            .filter(|(id, l)| **id != me && l.phase == LearnerPhase::Synced)
            .map(|(id, _)| *id)
            .collect();
        // Commits first: whoever learns that this server serves has its history applied.
        self.commit_to(last, out);
        out.push(Action::RoleChanged(self.role()));
        for to in synced {
            out.push(Action::Send {
                to,
                msg: Message::UpToDate {
                    epoch: my_epoch,
                    commit: last,
                },
            });
        }
    }

    // ---------------------------------------------------------------- broadcast

    /// Hand out committed entries up to `zxid` (in order, once).
    fn commit_to(&mut self, zxid: i64, out: &mut Vec<Action>) {
        let zxid = zxid.min(self.last_zxid());
        if zxid <= self.committed {
            return;
        }
        let from = self.log.partition_point(|e| e.zxid <= self.committed);
        let to = self.log.partition_point(|e| e.zxid <= zxid);
        let entries = self.log[from..to].to_vec();
        self.committed = zxid;
        if !entries.is_empty() {
            out.push(Action::Commit(entries));
        }
    }

    /// A client write: propose it if leading, pass it on if following. Returns whether
    /// it went anywhere.
    fn propose(&mut self, data: Bytes, out: &mut Vec<Action>) -> bool {
        let me = self.cfg.id;
        match &mut self.state {
            State::Following {
                leader,
                phase: FollowPhase::Broadcast,
                ..
            } => {
                out.push(Action::Send {
                    to: *leader,
                    msg: Message::Forward { data },
                });
                true
            }
            State::Leading {
                epoch: Some(epoch),
                established: true,
                learners,
                next_counter,
                ..
            } => {
                if *next_counter > self.cfg.max_counter {
                    // The counter is exhausted: a new election brings a new epoch.
                    self.start_looking(out);
                    return false;
                }
                let entry = Entry {
                    zxid: make_zxid(*epoch, *next_counter),
                    data,
                };
                *next_counter += 1;
                let epoch = *epoch;
                let targets: Vec<ServerId> = learners
                    .iter()
                    .filter(|(id, l)| **id != me && l.phase != LearnerPhase::Discovery)
                    .map(|(id, _)| *id)
                    .collect();
                self.log.push(entry.clone());
                out.push(Action::Append(vec![entry.clone()]));
                out.push(Action::SendDurable {
                    to: me,
                    msg: Message::Ack {
                        epoch,
                        zxid: entry.zxid,
                    },
                });
                for to in targets {
                    out.push(Action::Send {
                        to,
                        msg: Message::Propose {
                            epoch,
                            entry: entry.clone(),
                        },
                    });
                }
                true
            }
            _ => false,
        }
    }

    fn on_ack(&mut self, from: ServerId, epoch: i64, zxid: i64, out: &mut Vec<Action>) {
        let State::Leading {
            epoch: Some(my_epoch),
            established: true,
            learners,
            ..
        } = &mut self.state
        else {
            return;
        };
        if epoch != *my_epoch {
            return;
        }
        let Some(l) = learners.get_mut(&from) else {
            return;
        };
        if l.observer || l.phase == LearnerPhase::Discovery {
            return;
        }
        l.acked = l.acked.max(zxid);
        // The highest zxid a quorum of voters has durably logged.
        let mut acked: Vec<i64> = learners
            .iter()
            .filter(|(id, l)| self.cfg.is_voter(**id) && l.phase != LearnerPhase::Discovery)
            .map(|(_, l)| l.acked)
            .collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let q = self.cfg.quorum();
        if acked.len() < q {
            return;
        }
        let safe = acked[q - 1];
        // Only this epoch's proposals are committed by counting acks; older ones were
        // committed when the epoch was established.
        if safe > self.committed && epoch_of(safe) == *my_epoch {
            let epoch = *my_epoch;
            let targets: Vec<ServerId> = learners
                .iter()
                .filter(|(id, l)| **id != self.cfg.id && l.phase != LearnerPhase::Discovery)
                .map(|(id, _)| *id)
                .collect();
            self.commit_to(safe, out);
            for to in targets {
                out.push(Action::Send {
                    to,
                    msg: Message::Commit { epoch, zxid: safe },
                });
            }
        }
    }

    fn on_propose(&mut self, from: ServerId, epoch: i64, entry: Entry, out: &mut Vec<Action>) {
        let last = self.last_zxid();
        let State::Following {
            leader,
            phase,
            last_heard,
            observer,
            ..
        } = &mut self.state
        else {
            return;
        };
        if *leader != from || epoch != self.current_epoch {
            return;
        }
        if !matches!(phase, FollowPhase::Synced | FollowPhase::Broadcast) {
            return;
        }
        *last_heard = self.tick;
        if entry.zxid <= last {
            return;
        }
        let contiguous = if epoch_of(entry.zxid) == epoch_of(last) {
            counter_of(entry.zxid) == counter_of(last) + 1
        } else {
            counter_of(entry.zxid) == 1
        };
        if !contiguous || epoch_of(entry.zxid) != epoch {
            self.resync(out);
            return;
        }
        let observer = *observer;
        let zxid = entry.zxid;
        self.log.push(entry.clone());
        out.push(Action::Append(vec![entry]));
        if !observer {
            out.push(Action::SendDurable {
                to: from,
                msg: Message::Ack { epoch, zxid },
            });
        }
    }

    fn on_commit(&mut self, from: ServerId, epoch: i64, zxid: i64, out: &mut Vec<Action>) {
        let State::Following {
            leader,
            phase,
            last_heard,
            ..
        } = &mut self.state
        else {
            return;
        };
        if *leader != from || epoch != self.current_epoch {
            return;
        }
        if !matches!(phase, FollowPhase::Synced | FollowPhase::Broadcast) {
            return;
        }
        *last_heard = self.tick;
        if zxid > self.last_zxid() {
            // We missed the proposal.
            self.resync(out);
            return;
        }
        self.commit_to(zxid, out);
    }

    fn compact(&mut self, snapshot: Snapshot) {
        if snapshot.zxid > self.committed {
            return;
        }
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.zxid >= snapshot.zxid)
        {
            return;
        }
        let i = self.log.partition_point(|e| e.zxid <= snapshot.zxid);
        self.log.drain(..i.saturating_sub(self.cfg.keep_compacted));
        self.snapshot = Some(snapshot);
    }

    // ---------------------------------------------------------------- dispatch

    fn on_message(&mut self, from: ServerId, msg: Message, out: &mut Vec<Action>) {
        let me = self.cfg.id;
        match msg {
            Message::Vote(v) => self.on_vote(from, v, out),
            Message::FollowerInfo {
                request,
                accepted_epoch,
                accepted_leader,
                last_zxid,
                observer,
            } => {
                let tick = self.tick;
                if let State::Leading { epoch: Some(e), .. } = &self.state
                    && (accepted_epoch > *e || (accepted_epoch == *e && accepted_leader != me))
                {
                    // This learner promised our epoch (or a later one) to another
                    // leader and can never join us; a new election picks an epoch
                    // above every promise, so the whole ensemble can serve again.
                    self.start_looking(out);
                    return;
                }
                let State::Leading {
                    epoch, learners, ..
                } = &mut self.state
                else {
                    return;
                };
                if observer == self.cfg.is_voter(from) {
                    return;
                }
                learners.insert(
                    from,
                    Learner {
                        request,
                        phase: LearnerPhase::Discovery,
                        observer,
                        accepted_epoch,
                        acked: last_zxid,
                        sync_zxid: 0,
                        last_heard: tick,
                    },
                );
                if let Some(e) = *epoch {
                    out.push(Action::Send {
                        to: from,
                        msg: Message::LeaderInfo { request, epoch: e },
                    });
                } else {
                    self.maybe_choose_epoch(out);
                }
            }
            Message::LeaderInfo { request: r, epoch } => {
                let last = self.last_zxid();
                let State::Following {
                    leader,
                    request,
                    phase,
                    last_heard,
                    ..
                } = &mut self.state
                else {
                    return;
                };
                if *leader != from || *request != r || *phase != FollowPhase::Discovery {
                    return;
                }
                let same = epoch == self.accepted_epoch && self.accepted_leader == from;
                if epoch < self.accepted_epoch || (epoch == self.accepted_epoch && !same) {
                    // Someone else already has this epoch: this leader cannot win it.
                    self.start_looking(out);
                    return;
                }
                *phase = FollowPhase::Syncing;
                *last_heard = self.tick;
                if !same {
                    self.accepted_epoch = epoch;
                    self.accepted_leader = from;
                    out.push(Action::PersistEpochs {
                        accepted_epoch: epoch,
                        accepted_leader: from,
                        current_epoch: self.current_epoch,
                    });
                }
                out.push(Action::SendDurable {
                    to: from,
                    msg: Message::AckEpoch {
                        request: r,
                        epoch,
                        current_epoch: self.current_epoch,
                        last_zxid: last,
                    },
                });
            }
            Message::AckEpoch {
                request,
                epoch,
                current_epoch,
                last_zxid,
            } => {
                if let State::Leading { learners, .. } = &mut self.state
                    && let Some(l) = learners.get_mut(&from)
                {
                    l.last_heard = self.tick;
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
                ..
            } => self.on_sync(from, request, epoch, kind, base, entries, out),
            Message::AckNewLeader { request, epoch } => {
                if let State::Leading { learners, .. } = &mut self.state
                    && let Some(l) = learners.get_mut(&from)
                {
                    l.last_heard = self.tick;
                }
                self.on_ack_new_leader(from, request, epoch, out)
            }
            Message::UpToDate { epoch, commit } => {
                let State::Following {
                    leader,
                    phase,
                    last_heard,
                    ..
                } = &mut self.state
                else {
                    return;
                };
                if *leader != from || epoch != self.current_epoch || *phase != FollowPhase::Synced {
                    return;
                }
                *phase = FollowPhase::Broadcast;
                *last_heard = self.tick;
                self.commit_to(commit, out);
                out.push(Action::RoleChanged(self.role()));
            }
            Message::Propose { epoch, entry } => self.on_propose(from, epoch, entry, out),
            Message::Ack { epoch, zxid } => {
                if let State::Leading { learners, .. } = &mut self.state
                    && let Some(l) = learners.get_mut(&from)
                {
                    l.last_heard = self.tick;
                }
                self.on_ack(from, epoch, zxid, out)
            }
            Message::Commit { epoch, zxid } => self.on_commit(from, epoch, zxid, out),
            Message::Ping { epoch, commit } => {
                let State::Following {
                    leader,
                    phase,
                    last_heard,
                    ..
                } = &mut self.state
                else {
                    return;
                };
                if *leader != from {
                    return;
                }
                *last_heard = self.tick;
                let synced = matches!(phase, FollowPhase::Synced | FollowPhase::Broadcast);
                if epoch == self.current_epoch && *phase == FollowPhase::Broadcast {
                    if commit > self.last_zxid() {
                        self.resync(out);
                        return;
                    }
                    self.commit_to(commit, out);
                }
                let last_zxid = if synced && epoch == self.current_epoch {
                    self.last_zxid()
                } else {
                    0
                };
                out.push(Action::SendDurable {
                    to: from,
                    msg: Message::PingAck { epoch, last_zxid },
                });
            }
            Message::PingAck { epoch, last_zxid } => {
                if let State::Leading { learners, .. } = &mut self.state
                    && let Some(l) = learners.get_mut(&from)
                {
                    l.last_heard = self.tick;
                }
                if last_zxid > 0 {
                    self.on_ack(from, epoch, last_zxid, out);
                }
            }
            Message::Forward { data } => {
                if from != me {
                    self.propose(data, out);
                }
            }
        }
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
                if !self.cfg.has_quorum(&live) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(id: ServerId, n: u64) -> ZabConfig {
        ZabConfig {
            id,
            voters: (1..=n).collect(),
            observers: BTreeSet::new(),
            init_limit: 10,
            sync_limit: 5,
            max_counter: u32::MAX as i64,
            keep_compacted: 0,
        }
    }

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
        };
        let lone = ZabConfig {
            voters: BTreeSet::from([0]),
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
            data: Bytes::from_static(b"s"),
        });
        let (k, base, _) = z.plan_sync(make_zxid(1, 1));
        assert!(matches!(k, SyncKind::Snap(Some(_))));
        assert_eq!(base, make_zxid(1, 2));
        // A history from an epoch the leader has nothing of: SNAP, never a blind TRUNC.
        let (k, _, _) = z.plan_sync(make_zxid(3, 4));
        assert!(matches!(k, SyncKind::Snap(_)));
    }
}
