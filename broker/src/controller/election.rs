//! Leader elections as pure functions of (assignment, ISR, live brokers), as Kafka's
//! `PartitionLeaderElectionAlgorithms` and `Election` define them. Each returns the new
//! `LeaderAndIsr` (with the leader epoch bumped) or `None` when no replica qualifies.

use crate::metadata::{LeaderAndIsr, NO_LEADER};

/// An offline partition (its leader died, or it is new): the first replica in assignment
/// order that is alive and in the ISR. With `unclean` allowed and no such replica, the
/// first live replica at all — which may lose committed records, so the partition is
/// marked `RECOVERING`.
pub fn offline(
    current: &LeaderAndIsr,
    assignment: &[i32],
    is_live: impl Fn(i32) -> bool,
    unclean: bool,
) -> Option<LeaderAndIsr> {
    let clean = assignment
        .iter()
        .copied()
        .find(|r| is_live(*r) && current.isr.contains(r));
    if let Some(leader) = clean {
        let isr = current
            .isr
            .iter()
            .copied()
            .filter(|r| is_live(*r))
            .collect();
        return Some(current.new_leader_and_isr(leader, isr));
    }
    if !unclean {
        return None;
    }
    let leader = assignment.iter().copied().find(|r| is_live(*r))?;
    let mut next = current.new_leader_and_isr(leader, vec![leader]);
    next.leader_recovery_state = 1;
    Some(next)
}

/// A reassignment that moves leadership off a replica being removed: the first target
/// replica that is alive and in the ISR. The ISR is kept.
pub fn reassign(
    current: &LeaderAndIsr,
    target_replicas: &[i32],
    is_live: impl Fn(i32) -> bool,
) -> Option<LeaderAndIsr> {
    let leader = target_replicas
        .iter()
        .copied()
        .find(|r| is_live(*r) && current.isr.contains(r))?;
    Some(current.new_leader_and_isr(leader, current.isr.clone()))
}

/// Preferred leader election: the first replica of the assignment, if it is alive and in
/// the ISR. The ISR is kept.
pub fn preferred(
    current: &LeaderAndIsr,
    assignment: &[i32],
    is_live: impl Fn(i32) -> bool,
) -> Option<LeaderAndIsr> {
    let leader = *assignment.first()?;
    (is_live(leader) && current.isr.contains(&leader))
        .then(|| current.new_leader_and_isr(leader, current.isr.clone()))
}

/// Controlled shutdown: the first replica that is alive, in the ISR and not shutting
/// down; the brokers shutting down leave the ISR.
pub fn controlled_shutdown(
    current: &LeaderAndIsr,
    assignment: &[i32],
    is_live_or_shutting_down: impl Fn(i32) -> bool,
    is_shutting_down: impl Fn(i32) -> bool,
) -> Option<LeaderAndIsr> {
    let leader = assignment.iter().copied().find(|r| {
        is_live_or_shutting_down(*r) && current.isr.contains(r) && !is_shutting_down(*r)
    })?;
    let isr = current
        .isr
        .iter()
        .copied()
        .filter(|r| !is_shutting_down(*r))
        .collect();
    Some(current.new_leader_and_isr(leader, isr))
}

/// Replicas went offline (or a follower is shutting down): they leave the ISR — except
/// that the last member stays, since an empty ISR would forget which replica has every
/// committed record — and if one of them led, the partition has no leader until an
/// election. One leader epoch bump for the whole change.
pub fn remove_replicas_from_isr(current: &LeaderAndIsr, replicas: &[i32]) -> LeaderAndIsr {
    let mut isr = current.isr.clone();
    for r in replicas {
        if isr.len() > 1 {
            isr.retain(|m| m != r);
        }
    }
    let leader = if replicas.contains(&current.leader) {
        NO_LEADER
    } else {
        current.leader
    };
    current.new_leader_and_isr(leader, isr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(leader: i32, isr: &[i32]) -> LeaderAndIsr {
        LeaderAndIsr {
            leader,
            leader_epoch: 4,
            isr: isr.to_vec(),
            leader_recovery_state: 0,
            partition_epoch: 9,
        }
    }

    fn live(ids: &'static [i32]) -> impl Fn(i32) -> bool {
        move |r| ids.contains(&r)
    }

    #[test]
    fn offline_election_prefers_assignment_order_within_the_isr() {
        let s = state(1, &[1, 2, 3]);
        let next = offline(&s, &[1, 2, 3], live(&[2, 3]), false).unwrap();
        assert_eq!(next.leader, 2);
        assert_eq!(next.isr, vec![2, 3]);
        assert_eq!(next.leader_epoch, 5);
        assert_eq!(
            next.partition_epoch, 9,
            "the store sets the new partition epoch"
        );
        // Assignment order wins over ISR order.
        let s = state(1, &[3, 2]);
        assert_eq!(
            offline(&s, &[1, 2, 3], live(&[2, 3]), false)
                .unwrap()
                .leader,
            2
        );
    }

    #[test]
    fn offline_election_without_isr_needs_unclean() {
        let s = state(1, &[1]);
        assert_eq!(offline(&s, &[1, 2, 3], live(&[2, 3]), false), None);
        let next = offline(&s, &[1, 2, 3], live(&[2, 3]), true).unwrap();
        assert_eq!(next.leader, 2);
        assert_eq!(next.isr, vec![2]);
        assert_eq!(next.leader_recovery_state, 1);
        assert_eq!(offline(&s, &[1, 2, 3], live(&[]), true), None);
    }

    #[test]
    fn reassign_and_preferred_keep_the_isr() {
        let s = state(1, &[1, 4, 5]);
        let next = reassign(&s, &[4, 5], live(&[1, 4, 5])).unwrap();
        assert_eq!((next.leader, next.isr.clone()), (4, vec![1, 4, 5]));
        assert_eq!(reassign(&s, &[6], live(&[6])), None, "6 is not in the ISR");
        let s = state(2, &[1, 2]);
        assert_eq!(preferred(&s, &[1, 2], live(&[1, 2])).unwrap().leader, 1);
        assert_eq!(preferred(&s, &[1, 2], live(&[2])), None);
        assert_eq!(preferred(&state(2, &[2]), &[1, 2], live(&[1, 2])), None);
    }

    #[test]
    fn controlled_shutdown_moves_leadership_and_shrinks_the_isr() {
        let s = state(1, &[1, 2, 3]);
        let next = controlled_shutdown(&s, &[1, 2, 3], live(&[1, 2, 3]), |r| r == 1).unwrap();
        assert_eq!(next.leader, 2);
        assert_eq!(next.isr, vec![2, 3]);
        // Nobody else in the ISR: no election, the broker keeps leading until it stops.
        let s = state(1, &[1]);
        assert_eq!(
            controlled_shutdown(&s, &[1, 2], live(&[1, 2]), |r| r == 1),
            None
        );
    }

    #[test]
    fn removing_replicas_never_empties_the_isr() {
        let s = state(1, &[1, 2]);
        let next = remove_replicas_from_isr(&s, &[2]);
        assert_eq!((next.leader, next.isr.clone()), (1, vec![1]));
        let next = remove_replicas_from_isr(&next, &[1]);
        assert_eq!((next.leader, next.isr.clone()), (NO_LEADER, vec![1]));
        assert_eq!(next.leader_epoch, 6);
        let s = state(1, &[1, 2, 3]);
        let next = remove_replicas_from_isr(&s, &[2, 3]);
        assert_eq!(
            (next.leader, next.isr.clone(), next.leader_epoch),
            (1, vec![1], 5)
        );
    }
}
