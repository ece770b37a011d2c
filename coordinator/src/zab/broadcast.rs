//! Broadcast: the leader proposes each write under the next zxid; followers log it and
//! acknowledge once durable; a quorum of acks commits it, in zxid order. Pings carry
//! the commit point both ways (a ping ack is a cumulative ack), and entries below a
//! snapshot are let go.

use bytes::Bytes;

use super::{
    Action, Entry, FollowPhase, LearnerPhase, Membership, Message, Prepare, ServerId, Snapshot,
    State, Zab, counter_of, epoch_of, make_zxid,
};

/// The highest zxid a quorum of `m`'s voters acknowledged (0 without a quorum).
fn quorum_acked(m: &Membership, acked: &[(ServerId, i64)]) -> i64 {
    let mut zxids: Vec<i64> = acked
        .iter()
        .filter(|(id, _)| m.is_voter(*id))
        .map(|(_, z)| *z)
        .collect();
    zxids.sort_unstable_by(|a, b| b.cmp(a));
    zxids.get(m.quorum().wrapping_sub(1)).copied().unwrap_or(0)
}

impl Zab {
    /// Hand out committed entries up to `zxid` (in order, once).
    pub(super) fn commit_to(&mut self, zxid: i64, out: &mut Vec<Action>) {
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
        self.activate_committed();
    }

    /// A client write: propose it if leading, pass it on if following. Returns whether
    /// it went anywhere.
    pub(super) fn propose(&mut self, data: Bytes, out: &mut Vec<Action>) -> bool {
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
                let zxid = make_zxid(*epoch, *next_counter);
                // Only the leader's decision on a request can be a configuration entry
                // (a processor never makes one), so only then is the new entry scanned.
                let decided = self.cfg.reconfig.is_request(&data);
                let data = if decided {
                    let synced = learners
                        .iter()
                        .filter(|(_, l)| !l.observer && l.phase == LearnerPhase::Synced)
                        .map(|(id, _)| *id)
                        .collect();
                    let ctx = Prepare {
                        zxid,
                        active: &self.config,
                        pending: self.pending.as_ref(),
                        synced,
                    };
                    self.cfg.reconfig.prepare(&data, &ctx)
                } else {
                    data
                };
                let entry = Entry { zxid, data };
                *next_counter += 1;
                let epoch = *epoch;
                let targets: Vec<ServerId> = learners
                    .iter()
                    .filter(|(id, l)| **id != me && l.phase != LearnerPhase::Discovery)
                    .map(|(id, _)| *id)
                    .collect();
                self.log.push(entry.clone());
                if decided {
                    self.scan_configs(self.log.len() - 1);
                }
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

    pub(super) fn on_ack(&mut self, from: ServerId, epoch: i64, zxid: i64, out: &mut Vec<Action>) {
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
        // The highest zxid a quorum of voters has durably logged; from a proposed
        // reconfiguration on, a quorum of its voters too.
        let acked: Vec<(ServerId, i64)> = learners
            .iter()
            .filter(|(_, l)| !l.observer && l.phase != LearnerPhase::Discovery)
            .map(|(id, l)| (*id, l.acked))
            .collect();
        let mut safe = quorum_acked(&self.config, &acked);
        if let Some(p) = &self.pending {
            safe = safe.min((p.version - 1).max(quorum_acked(p, &acked)));
        }
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

    pub(super) fn on_propose(
        &mut self,
        from: ServerId,
        epoch: i64,
        entry: Entry,
        out: &mut Vec<Action>,
    ) {
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
        self.scan_configs(self.log.len() - 1);
        out.push(Action::Append(vec![entry]));
        if !observer {
            out.push(Action::SendDurable {
                to: from,
                msg: Message::Ack { epoch, zxid },
            });
        }
    }

    pub(super) fn on_commit(
        &mut self,
        from: ServerId,
        epoch: i64,
        zxid: i64,
        out: &mut Vec<Action>,
    ) {
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

    pub(super) fn compact(&mut self, snapshot: Snapshot) {
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

    /// The leader's heartbeat, which also carries its commit point; answered with a
    /// cumulative ack.
    pub(super) fn on_ping(
        &mut self,
        from: ServerId,
        epoch: i64,
        commit: i64,
        out: &mut Vec<Action>,
    ) {
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::{entry, follower_of_2, message};
    use super::super::{Durable, SyncKind};
    use super::*;

    /// Server 1 following 2 in epoch 1, synchronised and serving, with nothing logged.
    fn serving_follower() -> Zab {
        let mut z = follower_of_2(Durable::default());
        message(
            &mut z,
            2,
            Message::LeaderInfo {
                request: 1,
                epoch: 1,
            },
        );
        message(
            &mut z,
            2,
            Message::Sync {
                request: 1,
                epoch: 1,
                kind: SyncKind::Diff,
                base: 0,
                entries: vec![],
                leader_zxid: 0,
                config: None,
            },
        );
        message(
            &mut z,
            2,
            Message::UpToDate {
                epoch: 1,
                commit: 0,
            },
        );
        assert!(z.is_serving());
        z
    }

    #[test]
    fn a_proposal_is_logged_then_acknowledged_once_durable_and_applied_on_commit() {
        let mut z = serving_follower();
        let e = entry(1, 1, b"w");
        assert_eq!(
            message(
                &mut z,
                2,
                Message::Propose {
                    epoch: 1,
                    entry: e.clone()
                }
            ),
            vec![
                Action::Append(vec![e.clone()]),
                Action::SendDurable {
                    to: 2,
                    msg: Message::Ack {
                        epoch: 1,
                        zxid: e.zxid
                    }
                },
            ]
        );
        assert_eq!(
            message(
                &mut z,
                2,
                Message::Commit {
                    epoch: 1,
                    zxid: e.zxid
                }
            ),
            vec![Action::Commit(vec![e])]
        );
    }

    #[test]
    fn a_gap_in_the_proposals_sends_the_follower_back_to_discovery() {
        let mut z = serving_follower();
        let out = message(
            &mut z,
            2,
            Message::Propose {
                epoch: 1,
                entry: entry(1, 2, b"skipped one"),
            },
        );
        assert_eq!(
            out,
            vec![Action::Send {
                to: 2,
                msg: Message::FollowerInfo {
                    request: 2,
                    accepted_epoch: 1,
                    accepted_leader: 2,
                    last_zxid: 0,
                    observer: false
                }
            }]
        );
    }

    #[test]
    fn a_ping_commits_up_to_the_leaders_point_and_is_answered_with_a_cumulative_ack() {
        let mut z = serving_follower();
        let e = entry(1, 1, b"w");
        message(
            &mut z,
            2,
            Message::Propose {
                epoch: 1,
                entry: e.clone(),
            },
        );
        assert_eq!(
            message(
                &mut z,
                2,
                Message::Ping {
                    epoch: 1,
                    commit: e.zxid
                }
            ),
            vec![
                Action::Commit(vec![e.clone()]),
                Action::SendDurable {
                    to: 2,
                    msg: Message::PingAck {
                        epoch: 1,
                        last_zxid: e.zxid
                    }
                },
            ]
        );
    }

    #[test]
    fn a_write_on_a_follower_is_forwarded_to_its_leader() {
        let mut z = serving_follower();
        let out = z.step(super::super::Input::Propose(Bytes::from_static(b"w")));
        assert_eq!(
            out,
            vec![Action::Send {
                to: 2,
                msg: Message::Forward {
                    data: Bytes::from_static(b"w")
                }
            }]
        );
    }
}
