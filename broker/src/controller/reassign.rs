//! Partition reassignment (KIP-455) as pure steps over a partition's assignment.
//!
//! A reassignment from the original replicas ORS to the target replicas TRS runs as
//! Kafka's controller runs it:
//! 1. The assignment becomes RS = TRS ∪ ORS (target first), AR = TRS − ORS (adding),
//!    RR = ORS − TRS (removing); the leader epoch is bumped and LeaderAndIsr tells every
//!    replica in RS, so the adding replicas start fetching.
//! 2. Once every target replica is in the ISR, the reassignment completes: leadership
//!    moves to a target replica if the leader is being removed, the removing replicas
//!    leave the ISR and are stopped and deleted, and the assignment becomes RS = TRS.
//!
//! Cancelling goes back the same way with ORS as the target; adding replicas that are
//! not in the new target are stopped and deleted.

use crate::metadata::ReplicaAssignment;

/// The assignment during a reassignment from `origin` to `target`
/// (Kafka's `ReplicaAssignment.fromOriginAndTarget`).
pub fn reassigning(origin: &[i32], target: &[i32]) -> ReplicaAssignment {
    let mut replicas: Vec<i32> = target.to_vec();
    for r in origin {
        if !replicas.contains(r) {
            replicas.push(*r);
        }
    }
    ReplicaAssignment {
        replicas,
        adding_replicas: target
            .iter()
            .copied()
            .filter(|r| !origin.contains(r))
            .collect(),
        removing_replicas: origin
            .iter()
            .copied()
            .filter(|r| !target.contains(r))
            .collect(),
    }
}

/// Starts (or replaces) a reassignment of `current` to `target`. Returns the new
/// assignment and the replicas that were being added by a reassignment it replaces and
/// are no longer wanted (they must be stopped and deleted).
pub fn start(current: &ReplicaAssignment, target: &[i32]) -> (ReplicaAssignment, Vec<i32>) {
    let origin = current.origin_replicas();
    let next = reassigning(&origin, target);
    let abandoned = current
        .adding_replicas
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    (next, abandoned)
}

/// Cancels a reassignment: back to the original replicas.
pub fn cancel(current: &ReplicaAssignment) -> (ReplicaAssignment, Vec<i32>) {
    start(current, &current.origin_replicas())
}

/// A reassignment is complete once every target replica is in the ISR.
pub fn is_complete(assignment: &ReplicaAssignment, isr: &[i32]) -> bool {
    assignment.target_replicas().iter().all(|r| isr.contains(r))
}

/// The assignment once the reassignment completed.
pub fn completed(assignment: &ReplicaAssignment) -> ReplicaAssignment {
    ReplicaAssignment::new(assignment.target_replicas())
}

/// Whether completing needs a new leader: the current one is being removed or is not
/// alive.
pub fn needs_new_leader(
    assignment: &ReplicaAssignment,
    leader: i32,
    is_live: impl Fn(i32) -> bool,
) -> bool {
    !assignment.target_replicas().contains(&leader) || !is_live(leader)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_two_replicas() {
        let a = reassigning(&[1, 2, 3], &[1, 4, 5]);
        assert_eq!(a.replicas, vec![1, 4, 5, 2, 3]);
        assert_eq!(a.adding_replicas, vec![4, 5]);
        assert_eq!(a.removing_replicas, vec![2, 3]);
        assert_eq!(a.origin_replicas(), vec![1, 2, 3]);
        assert_eq!(a.target_replicas(), vec![1, 4, 5]);
        assert!(!is_complete(&a, &[1, 2, 3, 4]));
        assert!(is_complete(&a, &[1, 2, 3, 4, 5]));
        assert_eq!(completed(&a).replicas, vec![1, 4, 5]);
        assert!(!needs_new_leader(&a, 1, |_| true));
        assert!(needs_new_leader(&a, 2, |_| true));
        assert!(needs_new_leader(&a, 1, |r| r != 1));
    }

    #[test]
    fn replacing_and_cancelling() {
        let (a, abandoned) = start(&ReplicaAssignment::new(vec![1, 2, 3]), &[4, 5, 6]);
        assert!(abandoned.is_empty());
        // A new target replaces the running reassignment: 6 is no longer wanted.
        let (b, abandoned) = start(&a, &[4, 5, 3]);
        assert_eq!(abandoned, vec![6]);
        // As in Kafka, the origin is "replicas minus adding": a replica kept by the new
        // target moves to the front.
        assert_eq!(b.origin_replicas(), vec![3, 1, 2]);
        assert_eq!(b.adding_replicas, vec![4, 5]);
        // Cancelling goes back to the origin, dropping every adding replica.
        let (c, abandoned) = cancel(&b);
        assert_eq!(abandoned, vec![4, 5]);
        assert_eq!(c, ReplicaAssignment::new(vec![3, 1, 2]));
        assert!(!c.is_being_reassigned());
    }

    #[test]
    fn a_target_equal_to_the_origin_is_no_reassignment() {
        let a = reassigning(&[1, 2], &[2, 1]);
        assert!(!a.is_being_reassigned());
        assert_eq!(
            a.replicas,
            vec![2, 1],
            "a reorder changes the preferred leader"
        );
    }
}
