//! Step tests of the reconfiguration rules: which quorums a proposal needs while a
//! reconfiguration is in progress, what activates one, what a leader outside the new
//! configuration does, and how a server learns the configuration it missed. The
//! entries use the simulator's encoding (`reconfig?<voters>` asks,
//! `config:<voters>|<observers>` installs).

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;

use super::sim::{SimReconfig, config_text};
use super::testing::{message, vote};
use super::*;

fn members(voters: &[ServerId]) -> Membership {
    let voters: BTreeSet<ServerId> = voters.iter().copied().collect();
    Membership {
        version: 0,
        text: config_text(&voters, &BTreeSet::new()),
        voters,
        observers: BTreeSet::new(),
    }
}

fn server(id: ServerId, voters: &[ServerId], durable: Durable) -> Zab {
    let cfg = ZabConfig {
        membership: members(voters),
        reconfig: Arc::new(SimReconfig),
        ..testing::cfg(id, 0)
    };
    Zab::new(cfg, durable).0
}

/// A learner follows the leader through discovery and synchronisation.
fn join(z: &mut Zab, id: ServerId) {
    message(
        z,
        id,
        Message::FollowerInfo {
            request: 1,
            accepted_epoch: 0,
            accepted_leader: 0,
            last_zxid: 0,
            observer: false,
        },
    );
    let epoch = z.accepted_epoch;
    message(
        z,
        id,
        Message::AckEpoch {
            request: 1,
            epoch,
            current_epoch: 0,
            last_zxid: 0,
        },
    );
    message(z, id, Message::AckNewLeader { request: 1, epoch });
}

/// Server 1 leading {1, 2, 3} in epoch 1, established with server 2, and `others`
/// synchronised as learners.
fn leader(others: &[ServerId]) -> Zab {
    let mut z = server(1, &[1, 2, 3], Durable::default());
    message(&mut z, 2, Message::Vote(vote(1, 1, PeerState::Looking)));
    z.step(Input::Tick);
    assert!(matches!(z.role(), Role::Leading { .. }));
    join(&mut z, 2);
    message(
        &mut z,
        1,
        Message::AckNewLeader {
            request: 0,
            epoch: 1,
        },
    );
    assert!(z.is_serving());
    for id in others {
        join(&mut z, *id);
    }
    z
}

fn ack(z: &mut Zab, from: ServerId, counter: i64) -> Vec<Action> {
    message(
        z,
        from,
        Message::Ack {
            epoch: 1,
            zxid: make_zxid(1, counter),
        },
    )
}

fn committed(out: &[Action]) -> Vec<Bytes> {
    out.iter()
        .filter_map(|a| match a {
            Action::Commit(entries) => Some(entries.iter().map(|e| e.data.clone())),
            _ => None,
        })
        .flatten()
        .collect()
}

fn votes_sent(out: &[Action]) -> Vec<&Vote> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send {
                msg: Message::Vote(v),
                ..
            } => Some(v),
            _ => None,
        })
        .collect()
}

fn propose(z: &mut Zab, data: &'static [u8]) -> Vec<Action> {
    z.step(Input::Propose(Bytes::from_static(data)))
}

#[test]
fn a_joining_server_is_a_learner_whose_acks_count_only_once_a_configuration_names_it() {
    let mut z = leader(&[4]);
    propose(&mut z, b"w");
    assert!(committed(&ack(&mut z, 1, 1)).is_empty());
    assert!(
        committed(&ack(&mut z, 4, 1)).is_empty(),
        "server 4 is not a voter: its ack does not make a quorum"
    );
    assert_eq!(
        committed(&ack(&mut z, 2, 1)),
        vec![Bytes::from_static(b"w")]
    );
}

#[test]
fn from_its_proposal_to_its_commit_a_reconfiguration_needs_both_quorums() {
    let mut z = leader(&[4, 5]);
    let out = propose(&mut z, b"reconfig?1,4,5");
    let Some(Action::Append(logged)) = out.first() else {
        panic!("{out:?}")
    };
    assert_eq!(logged[0].data, Bytes::from_static(b"config:1,4,5|"));
    let (active, pending) = z.membership();
    assert_eq!(active.voters, BTreeSet::from([1, 2, 3]));
    assert_eq!(
        pending.map(|p| (p.voters.clone(), p.version)),
        Some((BTreeSet::from([1, 4, 5]), make_zxid(1, 1)))
    );
    // A write after it needs both quorums too.
    propose(&mut z, b"w");
    ack(&mut z, 1, 2);
    assert!(
        committed(&ack(&mut z, 2, 2)).is_empty(),
        "{{1, 2}} is a quorum of the old voters only"
    );
    let out = ack(&mut z, 4, 2);
    assert_eq!(
        committed(&out),
        vec![
            Bytes::from_static(b"config:1,4,5|"),
            Bytes::from_static(b"w")
        ]
    );
    assert!(out.contains(&Action::PersistConfig(
        make_zxid(1, 1),
        Bytes::from_static(b"config:1,4,5|")
    )));
    let (active, pending) = z.membership();
    assert_eq!(active.voters, BTreeSet::from([1, 4, 5]));
    assert!(pending.is_none());
    // Now only the new voters count.
    propose(&mut z, b"x");
    ack(&mut z, 1, 3);
    assert!(committed(&ack(&mut z, 2, 3)).is_empty());
    assert_eq!(
        committed(&ack(&mut z, 5, 3)),
        vec![Bytes::from_static(b"x")]
    );
}

#[test]
fn the_leader_refuses_a_second_reconfiguration_and_one_without_a_synced_quorum() {
    let mut z = leader(&[4]);
    let out = propose(&mut z, b"reconfig?4,5,6");
    let Some(Action::Append(logged)) = out.first() else {
        panic!("{out:?}")
    };
    assert!(
        logged[0].data.starts_with(b"refused:no quorum"),
        "5 and 6 never synced: 4 alone is no quorum of {{4, 5, 6}}, but {:?}",
        logged[0].data
    );
    assert!(z.membership().1.is_none(), "a refusal proposes nothing");
    propose(&mut z, b"reconfig?1,2,4");
    let out = propose(&mut z, b"reconfig?1,2");
    let Some(Action::Append(logged)) = out.first() else {
        panic!("{out:?}")
    };
    assert!(logged[0].data.starts_with(b"refused:in progress"));
}

#[test]
fn a_leader_that_is_not_a_voter_of_the_new_configuration_steps_down_once_it_commits() {
    let mut z = leader(&[4, 5]);
    propose(&mut z, b"reconfig?2,4,5");
    ack(&mut z, 1, 1);
    ack(&mut z, 4, 1);
    let out = ack(&mut z, 2, 1);
    let commit_sent = out.iter().position(|a| {
        matches!(
            a,
            Action::Send {
                msg: Message::Commit { .. },
                ..
            }
        )
    });
    let looking = out
        .iter()
        .position(|a| *a == Action::RoleChanged(Role::Looking));
    assert!(
        commit_sent.is_some() && looking.is_some() && commit_sent < looking,
        "the learners hear of the commit before the leader leaves: {out:?}"
    );
    assert_eq!(z.role(), Role::Looking);
    // It proposes no one: only voters can lead.
    let votes = votes_sent(&out);
    assert!(!votes.is_empty());
    assert!(votes.iter().all(|v| v.leader != 1));
}

#[test]
fn after_a_restart_the_last_logged_configuration_is_proposed_and_earlier_ones_committed() {
    let e = |counter, data: &'static [u8]| Entry {
        zxid: make_zxid(1, counter),
        data: Bytes::from_static(data),
    };
    let durable = Durable {
        accepted_epoch: 1,
        accepted_leader: 1,
        current_epoch: 1,
        snapshot: None,
        log: vec![
            e(1, b"w"),
            e(2, b"config:1,2|"),
            e(3, b"w"),
            e(4, b"config:1,3|"),
        ],
        config: None,
    };
    let z = server(1, &[1, 2, 3], durable);
    let (active, pending) = z.membership();
    assert_eq!(
        (active.voters.clone(), active.version),
        (BTreeSet::from([1, 2]), make_zxid(1, 2))
    );
    assert_eq!(
        pending.map(|p| (p.voters.clone(), p.version)),
        Some((BTreeSet::from([1, 3]), make_zxid(1, 4)))
    );
}

#[test]
fn a_persisted_configuration_outranks_the_configuration_file() {
    let durable = Durable {
        config: Some((make_zxid(2, 7), Bytes::from_static(b"config:1,4,5|"))),
        ..Durable::default()
    };
    let z = server(1, &[1, 2, 3], durable);
    assert_eq!(z.membership().0.voters, BTreeSet::from([1, 4, 5]));
}

#[test]
fn a_truncated_reconfiguration_is_forgotten() {
    let e = |counter, data: &'static [u8]| Entry {
        zxid: make_zxid(1, counter),
        data: Bytes::from_static(data),
    };
    let durable = Durable {
        accepted_epoch: 1,
        accepted_leader: 2,
        current_epoch: 1,
        snapshot: None,
        log: vec![e(1, b"w"), e(2, b"config:1,4|")],
        config: None,
    };
    let mut z = server(1, &[1, 2, 3], durable);
    assert!(z.membership().1.is_some());
    message(&mut z, 2, Message::Vote(vote(1, 2, PeerState::Leading)));
    message(
        &mut z,
        2,
        Message::LeaderInfo {
            request: 1,
            epoch: 2,
        },
    );
    message(
        &mut z,
        2,
        Message::Sync {
            request: 1,
            epoch: 2,
            kind: SyncKind::Trunc,
            base: make_zxid(1, 1),
            entries: vec![],
            leader_zxid: make_zxid(1, 1),
            config: Some((0, config_text(&BTreeSet::from([1, 2, 3]), &BTreeSet::new()))),
        },
    );
    assert!(
        z.membership().1.is_none(),
        "the leader's history does not hold it: it never commits"
    );
}

#[test]
fn a_looking_server_takes_a_later_configuration_from_a_peer_and_a_following_one_does_not() {
    let mut z = server(4, &[1, 2, 3, 4], Durable::default());
    let later = Message::Config {
        version: make_zxid(1, 3),
        text: Bytes::from_static(b"config:1,2,4,5|"),
    };
    let out = message(&mut z, 1, later.clone());
    assert_eq!(z.membership().0.voters, BTreeSet::from([1, 2, 4, 5]));
    assert!(
        out.iter().any(|a| matches!(
            a,
            Action::Send {
                to: 5,
                msg: Message::Vote(_)
            }
        )),
        "it looks again, among the voters it now knows: {out:?}"
    );
    let older = Message::Config {
        version: make_zxid(1, 1),
        text: Bytes::from_static(b"config:1,2|"),
    };
    message(&mut z, 1, older);
    assert_eq!(z.membership().0.voters, BTreeSet::from([1, 2, 4, 5]));

    let mut f = server(3, &[1, 2, 3], Durable::default());
    message(&mut f, 2, Message::Vote(vote(1, 2, PeerState::Leading)));
    message(&mut f, 1, Message::Vote(vote(1, 2, PeerState::Following)));
    assert!(matches!(f.role(), Role::Following { .. }));
    message(&mut f, 1, later);
    assert_eq!(
        f.membership().0.voters,
        BTreeSet::from([1, 2, 3]),
        "a follower learns its configuration from its leader, in order"
    );
}

#[test]
fn a_server_outside_the_active_configuration_votes_but_never_for_itself() {
    // Server 4 is a voter of a proposed configuration it has not heard of; it still
    // helps elect a leader of the active one.
    let mut z = server(4, &[1, 2, 3], Durable::default());
    let out = message(
        &mut z,
        1,
        Message::Vote(Vote {
            epoch: 1,
            zxid: 5,
            ..vote(1, 1, PeerState::Looking)
        }),
    );
    let mine = votes_sent(&out);
    assert!(!mine.is_empty());
    assert!(
        mine.iter()
            .all(|v| v.leader == 1 && v.state == PeerState::Looking)
    );
}
