//! Election (ZooKeeper's `FastLeaderElection`): votes ordered by (epoch, zxid, server
//! id) within a round; a server decides when a quorum agrees with its vote and stays so
//! for a tick (the finalize wait), or joins a leader that a quorum already follows. A
//! lone voter (a standalone server) decides at once.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Message, PeerState, Role, ServerId, State, Vote, Zab};

/// The candidate of a vote for no one.
const NO_ONE: ServerId = ServerId::MAX;

impl Zab {
    /// This server's own candidacy; a server that is not a voter of the active
    /// configuration proposes no one, below every candidate (ZooKeeper's `getInitId`).
    pub(super) fn self_vote(&self, round: u64) -> Vote {
        if !self.config.is_voter(self.cfg.id) {
            return Vote {
                round,
                leader: NO_ONE,
                epoch: -1,
                zxid: -1,
                state: PeerState::Looking,
            };
        }
        Vote {
            round,
            leader: self.cfg.id,
            epoch: self.current_epoch,
            zxid: self.last_zxid(),
            state: PeerState::Looking,
        }
    }

    pub(super) fn start_looking(&mut self, out: &mut Vec<Action>) {
        self.round += 1;
        let observer = !self.votes();
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

    pub(super) fn broadcast_vote(&mut self, out: &mut Vec<Action>) {
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
        if !self.votes() {
            v.state = PeerState::Observing;
        }
        // A configuration made by a reconfiguration travels with the vote, so servers
        // that missed it learn whom to elect (a static one stays each server's own).
        let config = (self.config.version > 0).then(|| self.config_message());
        for p in self.all_voters().into_iter().filter(|p| *p != self.cfg.id) {
            out.push(Action::Send {
                to: p,
                msg: Message::Vote(v.clone()),
            });
            if let Some(msg) = config.clone() {
                out.push(Action::Send { to: p, msg });
            }
        }
    }

    pub(super) fn config_message(&self) -> Message {
        Message::Config {
            version: self.config.version,
            text: self.config.text.clone(),
        }
    }

    /// The vote a decided server reports to a looking one.
    pub(super) fn decided_vote(&self) -> Option<Vote> {
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

    pub(super) fn on_vote(&mut self, from: ServerId, v: Vote, out: &mut Vec<Action>) {
        let me = self.cfg.id;
        let i_vote = self.votes();
        if !matches!(self.state, State::Looking { .. }) {
            // Tell a looking peer whom we follow.
            if matches!(v.state, PeerState::Looking | PeerState::Observing)
                && let Some(dv) = self.decided_vote()
            {
                // The configuration first: a server that would follow at once on the
                // vote must already know whom it follows as.
                if !self.config.text.is_empty() {
                    out.push(Action::Send {
                        to: from,
                        msg: self.config_message(),
                    });
                }
                out.push(Action::Send {
                    to: from,
                    msg: Message::Vote(dv),
                });
            }
            return;
        }
        let from_voter = self.is_voter(from);
        let initial = self.self_vote(0);
        // Whether a vote proposes a better leader than another: only a voter of the
        // active configuration can lead (ZooKeeper's `totalOrderPredicate` gives a
        // candidate without weight no chance). Were the voters of a proposed one
        // candidates too, servers that have not heard of it yet could never agree with
        // those that have.
        let voters = &self.config.voters;
        let better = |v: &Vote, than: &Vote| voters.contains(&v.leader) && v.key() > than.key();
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
                        *proposal = if better(&v, &mine) {
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
                    } else if better(&v, proposal) {
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
            // Joining a leader that a quorum of the active configuration follows is
            // safe whatever this server believes is proposed: that may be a
            // reconfiguration the leader never saw, which only it can settle.
            let support: Vec<ServerId> = support.into_iter().collect();
            if leads && self.config.has_quorum(&support) {
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
    pub(super) fn tally(&mut self, out: &mut Vec<Action>) {
        if !self.votes() {
            return;
        }
        let State::Looking {
            proposal, votes, ..
        } = &self.state
        else {
            return;
        };
        let agreeing: Vec<ServerId> = votes
            .iter()
            .filter(|(_, vv)| vv.leader == proposal.leader)
            .map(|(id, _)| *id)
            .collect();
        let agreed = self.has_quorum(&agreeing);
        let tick = self.tick;
        if let State::Looking { agreed_at, .. } = &mut self.state {
            if agreed {
                agreed_at.get_or_insert(tick);
            } else {
                *agreed_at = None;
            }
        }
        if self.lone_voter() {
            self.maybe_decide(out);
        }
    }

    /// Finalize an election whose quorum held for a tick (at once for a lone voter).
    pub(super) fn maybe_decide(&mut self, out: &mut Vec<Action>) {
        let State::Looking {
            proposal,
            agreed_at: Some(at),
            ..
        } = &self.state
        else {
            return;
        };
        if self.tick <= *at && !self.lone_voter() {
            return;
        }
        let leader = proposal.leader;
        if leader == NO_ONE {
            return;
        }
        if leader == self.cfg.id {
            self.lead(out);
        } else {
            self.follow(leader, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{cfg, message, vote};
    use super::super::{Input, Zab};
    use super::*;

    #[test]
    fn a_quorum_for_this_server_decides_one_tick_later_not_before() {
        // Server 3 of 3 votes for itself; server 1 agrees: a quorum, but late votes may
        // still come, so nothing happens until the next tick.
        let (mut z, _) = Zab::new(cfg(3, 3), Default::default());
        let out = message(&mut z, 1, Message::Vote(vote(1, 3, PeerState::Looking)));
        assert_eq!(out, vec![]);
        assert_eq!(z.role(), Role::Looking);
        assert_eq!(
            z.step(Input::Tick),
            vec![Action::RoleChanged(Role::Leading {
                epoch: 0,
                established: false
            })],
            "it leads, and waits for a quorum of FollowerInfo before choosing an epoch"
        );
    }

    #[test]
    fn a_better_vote_is_adopted_and_sent_to_every_other_voter() {
        let (mut z, _) = Zab::new(cfg(1, 3), Default::default());
        let better = vote(1, 2, PeerState::Looking);
        assert_eq!(
            message(&mut z, 2, Message::Vote(better.clone())),
            vec![
                Action::Send {
                    to: 2,
                    msg: Message::Vote(better.clone())
                },
                Action::Send {
                    to: 3,
                    msg: Message::Vote(better)
                },
            ]
        );
        // Servers 1 and 2 now agree on 2: after the finalize wait, follow it.
        assert_eq!(
            z.step(Input::Tick),
            vec![
                Action::RoleChanged(Role::Following {
                    leader: 2,
                    serving: false
                }),
                Action::Send {
                    to: 2,
                    msg: Message::FollowerInfo {
                        request: 1,
                        accepted_epoch: 0,
                        accepted_leader: 0,
                        last_zxid: 0,
                        observer: false
                    }
                },
            ]
        );
    }

    #[test]
    fn a_worse_vote_of_an_older_round_is_answered_with_this_servers_vote() {
        let (mut z, _) = Zab::new(cfg(2, 3), Default::default());
        // Server 2 starts in round 1; a vote from round 0 is out of date.
        assert_eq!(
            message(&mut z, 1, Message::Vote(vote(0, 1, PeerState::Looking))),
            vec![Action::Send {
                to: 1,
                msg: Message::Vote(vote(1, 2, PeerState::Looking))
            }]
        );
    }

    #[test]
    fn a_looking_server_joins_a_leader_that_a_quorum_follows_at_once() {
        let (mut z, _) = Zab::new(cfg(1, 3), Default::default());
        let out = message(&mut z, 2, Message::Vote(vote(1, 2, PeerState::Leading)));
        assert_eq!(
            out[0],
            Action::RoleChanged(Role::Following {
                leader: 2,
                serving: false
            })
        );
        assert!(matches!(
            out[1],
            Action::Send {
                to: 2,
                msg: Message::FollowerInfo { .. }
            }
        ));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn a_decided_server_tells_a_looking_one_whom_it_follows() {
        let (mut z, _) = Zab::new(cfg(1, 3), Default::default());
        message(&mut z, 2, Message::Vote(vote(1, 2, PeerState::Leading)));
        let out = message(&mut z, 3, Message::Vote(vote(1, 3, PeerState::Looking)));
        assert_eq!(
            out,
            vec![Action::Send {
                to: 3,
                msg: Message::Vote(vote(1, 2, PeerState::Following))
            }]
        );
    }
}
