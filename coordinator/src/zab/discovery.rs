//! Discovery: the prospective leader gathers `FollowerInfo` from a quorum, picks
//! `max(acceptedEpoch) + 1`, and proposes it (`LeaderInfo`); a follower accepts only an
//! epoch newer than any it promised, and answers with its history (`AckEpoch`). A leader
//! that meets a newer history than its own gives up, so the established leader holds
//! every committed transaction.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, FollowPhase, Learner, LearnerPhase, Message, ServerId, State, Zab};

impl Zab {
    pub(super) fn lead(&mut self, out: &mut Vec<Action>) {
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

    pub(super) fn follow(&mut self, leader: ServerId, out: &mut Vec<Action>) {
        self.request_seq += 1;
        // A server the configuration does not name (joining, or removed) follows as a
        // participant whose acknowledgements count once a configuration names it.
        let observer = self.config.observers.contains(&self.cfg.id);
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

    pub(super) fn send_follower_info(&mut self, out: &mut Vec<Action>) {
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
    pub(super) fn resync(&mut self, out: &mut Vec<Action>) {
        self.request_seq += 1;
        if let State::Following { request, .. } = &mut self.state {
            *request = self.request_seq;
        }
        self.send_follower_info(out);
    }

    pub(super) fn maybe_choose_epoch(&mut self, out: &mut Vec<Action>) {
        let me = self.cfg.id;
        let State::Leading {
            epoch: None,
            learners,
            ..
        } = &self.state
        else {
            return;
        };
        let ids: Vec<ServerId> = learners.keys().copied().collect();
        if !self.has_quorum(&ids) {
            return;
        }
        let State::Leading {
            epoch, learners, ..
        } = &mut self.state
        else {
            return;
        };
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
    pub(super) fn on_ack_epoch(
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
        let acked: Vec<ServerId> = epoch_acks.iter().copied().collect();
        if from != me && (established || self.has_quorum(&acked)) {
            self.send_sync(from, last_zxid, out);
        }
        // On reaching the epoch quorum: adopt the epoch, sync everyone who waited.
        let State::Leading {
            learners,
            epoch_acks,
            ..
        } = &self.state
        else {
            return;
        };
        let me_syncing = learners
            .get(&me)
            .is_some_and(|l| l.phase == LearnerPhase::Syncing);
        let acked: Vec<ServerId> = epoch_acks.iter().copied().collect();
        if me_syncing && self.has_quorum(&acked) && self.current_epoch != my_epoch {
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

    /// A learner asks to follow this leader.
    pub(super) fn on_follower_info(
        &mut self,
        from: ServerId,
        request: u64,
        (accepted_epoch, accepted_leader): (i64, ServerId),
        last_zxid: i64,
        observer: bool,
        out: &mut Vec<Action>,
    ) {
        let me = self.cfg.id;
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
        // Participants are taken whether or not a configuration names them yet (a
        // joining server syncs before the reconfiguration that adds it is proposed;
        // its acknowledgements count once one does); observers only when named.
        if observer && !self.listed_observer(from) {
            // It is no observer any more (or not yet): tell it what the ensemble is.
            if !self.config.text.is_empty() {
                out.push(Action::Send {
                    to: from,
                    msg: self.config_message(),
                });
            }
            return;
        }
        let State::Leading {
            epoch, learners, ..
        } = &mut self.state
        else {
            return;
        };
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

    /// The leader proposes its new epoch.
    pub(super) fn on_leader_info(
        &mut self,
        from: ServerId,
        r: u64,
        epoch: i64,
        out: &mut Vec<Action>,
    ) {
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::{cfg, entry, follower_of_2, message, vote};
    use super::super::{Durable, Input, PeerState, Role, make_zxid};
    use super::*;

    /// Server 3 of 3, leading after server 1 agreed, before any FollowerInfo.
    fn prospective_leader() -> Zab {
        let (mut z, _) = Zab::new(cfg(3, 3), Durable::default());
        message(&mut z, 1, Message::Vote(vote(1, 3, PeerState::Looking)));
        z.step(Input::Tick);
        z
    }

    #[test]
    fn the_new_epoch_is_one_above_every_epoch_a_quorum_accepted() {
        let mut z = prospective_leader();
        let out = message(
            &mut z,
            1,
            Message::FollowerInfo {
                request: 7,
                accepted_epoch: 4,
                accepted_leader: 2,
                last_zxid: 0,
                observer: false,
            },
        );
        assert_eq!(
            out,
            vec![
                Action::PersistEpochs {
                    accepted_epoch: 5,
                    accepted_leader: 3,
                    current_epoch: 0
                },
                Action::Send {
                    to: 1,
                    msg: Message::LeaderInfo {
                        request: 7,
                        epoch: 5
                    }
                },
            ]
        );
    }

    #[test]
    fn a_learner_that_promised_this_epoch_elsewhere_forces_a_new_election() {
        let mut z = prospective_leader();
        message(
            &mut z,
            1,
            Message::FollowerInfo {
                request: 1,
                accepted_epoch: 0,
                accepted_leader: 0,
                last_zxid: 0,
                observer: false,
            },
        );
        // Epoch 1 is chosen; server 2 accepted epoch 1 from someone else.
        let out = message(
            &mut z,
            2,
            Message::FollowerInfo {
                request: 1,
                accepted_epoch: 1,
                accepted_leader: 1,
                last_zxid: 0,
                observer: false,
            },
        );
        assert_eq!(out[0], Action::RoleChanged(Role::Looking));
        assert_eq!(z.role(), Role::Looking);
    }

    #[test]
    fn a_follower_accepts_a_newer_epoch_and_answers_durably_with_its_history() {
        let mut z = follower_of_2(Durable {
            accepted_epoch: 1,
            accepted_leader: 3,
            current_epoch: 1,
            snapshot: None,
            log: vec![entry(1, 1, b"a"), entry(1, 2, b"b")],
            config: None,
        });
        let out = message(
            &mut z,
            2,
            Message::LeaderInfo {
                request: 1,
                epoch: 2,
            },
        );
        assert_eq!(
            out,
            vec![
                Action::PersistEpochs {
                    accepted_epoch: 2,
                    accepted_leader: 2,
                    current_epoch: 1
                },
                Action::SendDurable {
                    to: 2,
                    msg: Message::AckEpoch {
                        request: 1,
                        epoch: 2,
                        current_epoch: 1,
                        last_zxid: make_zxid(1, 2)
                    }
                },
            ]
        );
    }

    #[test]
    fn a_follower_refuses_an_epoch_it_promised_to_another_leader() {
        let mut z = follower_of_2(Durable {
            accepted_epoch: 5,
            accepted_leader: 3,
            ..Durable::default()
        });
        let out = message(
            &mut z,
            2,
            Message::LeaderInfo {
                request: 1,
                epoch: 5,
            },
        );
        assert_eq!(out[0], Action::RoleChanged(Role::Looking));
        assert!(
            !out.iter()
                .any(|a| matches!(a, Action::PersistEpochs { .. })),
            "nothing promised: {out:?}"
        );
    }

    #[test]
    fn a_reply_to_an_older_request_is_ignored() {
        let mut z = follower_of_2(Durable::default());
        let out = message(
            &mut z,
            2,
            Message::LeaderInfo {
                request: 0,
                epoch: 1,
            },
        );
        assert_eq!(out, vec![]);
    }
}
