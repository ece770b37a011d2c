//! Synchronisation: per learner, `DIFF` (what it lacks), `TRUNC` (cut an uncommitted
//! tail, then diff) or `SNAP` (a snapshot and what follows). The learner adopts the epoch
//! and acknowledges (`AckNewLeader`) once that is durable; a quorum of those establishes
//! the leader, which commits its history and tells its learners (`UpToDate`).

use bytes::Bytes;

use super::{
    Action, Entry, FollowPhase, LearnerPhase, Message, ServerId, State, SyncKind, Zab, epoch_of,
};

impl Zab {
    /// Whether `zxid` is a point in this server's history.
    pub(super) fn has_point(&self, zxid: i64) -> bool {
        zxid == 0 && self.snapshot.is_none()
            || self.snapshot.as_ref().is_some_and(|s| s.zxid == zxid)
            || self.log.binary_search_by_key(&zxid, |e| e.zxid).is_ok()
    }

    pub(super) fn entries_after(&self, zxid: i64) -> Vec<Entry> {
        let i = self.log.partition_point(|e| e.zxid <= zxid);
        self.log[i..].to_vec()
    }

    /// Choose DIFF, TRUNC or SNAP for a learner whose last zxid is `f`.
    pub(super) fn plan_sync(&self, f: i64) -> (SyncKind, i64, Vec<Entry>) {
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

    pub(super) fn send_sync(&mut self, to: ServerId, their_last: i64, out: &mut Vec<Action>) {
        let (kind, base, entries) = self.plan_sync(their_last);
        let leader_zxid = self.last_zxid();
        let config = Some((self.config.version, self.config.text.clone()));
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
                config,
            },
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_sync(
        &mut self,
        from: ServerId,
        request_in: u64,
        epoch: i64,
        (kind, base, entries): (SyncKind, i64, Vec<Entry>),
        config: Option<(i64, Bytes)>,
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
        // The leader's active configuration, unless this server knows a later one; either
        // way the proposed one is what the log now holds after it (one scan of the log).
        let adopted = config.is_some_and(|(version, text)| self.adopt_config(version, text));
        if !adopted {
            self.rescan_configs();
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

    pub(super) fn on_ack_new_leader(
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
        let acked: Vec<ServerId> = newleader_acks.iter().copied().collect();
        if !acked.contains(&me) || !self.has_quorum(&acked) {
            return;
        }
        let State::Leading {
            learners,
            established,
            ..
        } = &mut self.state
        else {
            return;
        };
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

    /// The leader says this follower is synchronised: serve.
    pub(super) fn on_up_to_date(
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
        if *leader != from || epoch != self.current_epoch || *phase != FollowPhase::Synced {
            return;
        }
        *phase = FollowPhase::Broadcast;
        *last_heard = self.tick;
        self.commit_to(commit, out);
        out.push(Action::RoleChanged(self.role()));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{entry, follower_of_2, message};
    use super::super::{Durable, Role, make_zxid};
    use super::*;

    /// Server 1 following 2, epoch 2 acknowledged, waiting for its Sync; its log holds
    /// 1.1 (committed) and 1.2 (not committed).
    fn syncing_follower() -> Zab {
        let mut z = follower_of_2(Durable {
            accepted_epoch: 1,
            accepted_leader: 3,
            current_epoch: 1,
            snapshot: None,
            log: vec![entry(1, 1, b"a"), entry(1, 2, b"b")],
            config: None,
        });
        message(
            &mut z,
            2,
            Message::LeaderInfo {
                request: 1,
                epoch: 2,
            },
        );
        z
    }

    #[test]
    fn trunc_cuts_the_uncommitted_tail_then_the_new_epoch_is_acknowledged_durably() {
        let mut z = syncing_follower();
        let out = message(
            &mut z,
            2,
            Message::Sync {
                request: 1,
                epoch: 2,
                kind: SyncKind::Trunc,
                base: make_zxid(1, 1),
                entries: vec![],
                leader_zxid: make_zxid(1, 1),
                config: None,
            },
        );
        assert_eq!(
            out,
            vec![
                Action::Truncate(make_zxid(1, 1)),
                Action::PersistEpochs {
                    accepted_epoch: 2,
                    accepted_leader: 2,
                    current_epoch: 2
                },
                Action::SendDurable {
                    to: 2,
                    msg: Message::AckNewLeader {
                        request: 1,
                        epoch: 2
                    }
                },
            ]
        );
        assert_eq!(z.last_zxid(), make_zxid(1, 1));
    }

    #[test]
    fn diff_appends_what_is_missing_and_up_to_date_commits_before_serving() {
        let mut z = syncing_follower();
        let out = message(
            &mut z,
            2,
            Message::Sync {
                request: 1,
                epoch: 2,
                kind: SyncKind::Diff,
                base: make_zxid(1, 2),
                entries: vec![entry(1, 3, b"c")],
                leader_zxid: make_zxid(1, 3),
                config: None,
            },
        );
        assert_eq!(out[0], Action::Append(vec![entry(1, 3, b"c")]));
        assert_eq!(
            message(
                &mut z,
                2,
                Message::UpToDate {
                    epoch: 2,
                    commit: make_zxid(1, 3)
                }
            ),
            vec![
                Action::Commit(vec![
                    entry(1, 1, b"a"),
                    entry(1, 2, b"b"),
                    entry(1, 3, b"c")
                ]),
                Action::RoleChanged(Role::Following {
                    leader: 2,
                    serving: true
                }),
            ]
        );
    }

    #[test]
    fn snap_replaces_state_and_log() {
        let mut z = syncing_follower();
        let snap = super::super::Snapshot {
            zxid: make_zxid(1, 5),
            data: super::super::SnapshotData::Bytes(bytes::Bytes::from_static(b"tree")),
        };
        let out = message(
            &mut z,
            2,
            Message::Sync {
                request: 1,
                epoch: 2,
                kind: SyncKind::Snap(Some(snap.clone())),
                base: make_zxid(1, 5),
                entries: vec![],
                leader_zxid: make_zxid(1, 5),
                config: None,
            },
        );
        assert_eq!(out[0], Action::InstallSnapshot(Some(snap)));
        assert_eq!(
            (z.last_zxid(), z.committed()),
            (make_zxid(1, 5), make_zxid(1, 5))
        );
    }

    #[test]
    fn a_sync_for_another_epoch_is_ignored() {
        let mut z = syncing_follower();
        let out = message(
            &mut z,
            2,
            Message::Sync {
                request: 1,
                epoch: 3,
                kind: SyncKind::Diff,
                base: make_zxid(1, 2),
                entries: vec![],
                leader_zxid: make_zxid(1, 2),
                config: None,
            },
        );
        assert_eq!(out, vec![]);
    }
}
