//! Scaling brokers without losing balance or data: a rebalance after a scale-up, a drain
//! before a scale-down, driven one reconciliation at a time.
//!
//! [`begin`] (pure) decides from the spec, the StatefulSet and `status.operation` which
//! operation runs and how many broker pods the StatefulSet keeps meanwhile: a scale-down
//! keeps every pod until the brokers that go are drained. [`drive`] advances the operation
//! by one step against the brokers' admin API and says what to do next; every step is
//! idempotent and re-derived from the cluster, so an operator restarted at any point picks
//! up where the previous one stopped. The steps, as Kafka's own tools take them:
//!
//! 1. wait while any partition reassignment is in flight (ours or someone's);
//! 2. plan ([`crate::rebalance::plan`]) over the registered brokers, the drained ones
//!    marked draining; a drain that would leave fewer brokers than a topic's replication
//!    factor is blocked with a condition that names the topics;
//! 3. a non-empty plan: set the replication throttle (KIP-73: the brokers' `<default>`
//!    `leader/follower.replication.throttled.rate`, and `*` throttled replicas on the
//!    moving topics) when `spec.rebalance.throttleBytesPerSecond` is set, submit the
//!    reassignments (AlterPartitionReassignments) and go back to 1;
//! 4. an empty plan: clear the throttles, elect the preferred leaders where the leader is
//!    another replica (ElectLeaders), and when nothing is left the operation is done; for
//!    a drain that is when the StatefulSet may shrink.

use std::collections::{BTreeMap, BTreeSet};

use crate::crd::{ClusterOperation, OperationKind, OperationPhase};
use crate::kafka::{KafkaAdmin, KafkaError, ReplicaAdmin};
use crate::rebalance::{self, Cluster};

/// Broker configs of the replication throttle rate (KIP-73).
pub const THROTTLE_RATES: [&str; 2] = [
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];
/// Topic configs naming the throttled replicas.
pub const THROTTLED_REPLICAS: [&str; 2] = [
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];

/// The operation that runs and the StatefulSet replica count to apply while it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begin {
    pub operation: Option<ClusterOperation>,
    pub statefulset_replicas: i32,
}

/// Which operation runs, from the wanted broker count (`spec.brokers.replicas`), the
/// StatefulSet's current count (`None` before it exists) and the operation in status.
pub fn begin(
    want: i32,
    current: Option<i32>,
    previous: Option<ClusterOperation>,
    now: &str,
) -> Begin {
    let current = match (current, &previous) {
        (Some(current), _) => current,
        // The StatefulSet is being re-created (a storage resize) in the middle of a drain:
        // the pods of the brokers being drained must come back with it.
        (None, Some(op)) if op.kind == OperationKind::Drain && !op.brokers.is_empty() => {
            op.brokers.iter().max().map_or(want, |&last| last + 1)
        }
        // A new cluster: nothing to move.
        (None, _) => {
            return Begin {
                operation: None,
                statefulset_replicas: want,
            };
        }
    };
    let new = |kind, brokers: Vec<i32>, carried: &Option<ClusterOperation>| ClusterOperation {
        kind,
        brokers,
        phase: OperationPhase::WaitingForBrokers,
        // Throttles set by an operation this one replaces are cleared by this one.
        throttled_topics: carried
            .as_ref()
            .map(|o| o.throttled_topics.clone())
            .unwrap_or_default(),
        started: now.to_string(),
        message: String::new(),
        pod_uid: None,
        since: None,
    };
    // A drain whose brokers are all gone already is over: the StatefulSet shrank before
    // the status could say so. A rolling restart is not a scaling operation: a scale
    // replaces it, and it resumes from the pods afterwards.
    let previous = previous.filter(|op| {
        !(op.kind == OperationKind::Drain && op.brokers.iter().all(|&b| b >= current))
            && op.kind != OperationKind::RollingRestart
    });
    match previous {
        _ if want < current => {
            let draining: Vec<i32> = (want..current).collect();
            let operation = match previous {
                Some(op) if op.kind == OperationKind::Drain && op.brokers == draining => op,
                other => new(OperationKind::Drain, draining, &other),
            };
            Begin {
                operation: Some(operation),
                statefulset_replicas: current,
            }
        }
        previous => {
            let mut added: BTreeSet<i32> = (current..want).collect();
            let operation = match previous {
                // A rebalance still running, with no new brokers: it goes on.
                Some(op) if op.kind == OperationKind::Rebalance && added.is_empty() => Some(op),
                // More brokers while a rebalance runs, or a drain cancelled by scaling
                // back up (its brokers stay, half emptied): one rebalance over all of them.
                Some(op) => {
                    added.extend(op.brokers.iter().copied().filter(|&b| b < want));
                    let brokers = added.into_iter().collect();
                    Some(new(OperationKind::Rebalance, brokers, &Some(op)))
                }
                None if added.is_empty() => None,
                None => Some(new(
                    OperationKind::Rebalance,
                    added.into_iter().collect(),
                    &None,
                )),
            };
            Begin {
                operation,
                statefulset_replicas: want,
            }
        }
    }
}

/// What [`drive`] concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driven {
    /// Still going: the operation with its phase and message; look again soon.
    Running(ClusterOperation),
    /// Cannot go on until someone changes the spec or the cluster; the message says why.
    Blocked(ClusterOperation),
    /// Finished: replicas and leaders balanced, throttles cleared; a drained broker holds
    /// nothing and its pod may go.
    Done,
}

/// The operation while not every broker pod is Ready: nothing is asked of the brokers.
pub fn waiting_for_pods(mut op: ClusterOperation, brokers: i32, ready: i32) -> ClusterOperation {
    op.phase = OperationPhase::WaitingForBrokers;
    op.message = format!("waiting for broker pods: {ready}/{brokers} Ready");
    op
}

/// Advances the operation by one step, once every broker pod is Ready. `brokers` is the
/// StatefulSet's replica count (the broker ids are `0..brokers`).
pub async fn drive<A: KafkaAdmin + ReplicaAdmin>(
    admin: &A,
    mut op: ClusterOperation,
    brokers: i32,
    throttle: Option<i64>,
) -> Result<Driven, KafkaError> {
    let running = |mut op: ClusterOperation, phase, message: String| {
        op.phase = phase;
        op.message = message;
        Ok(Driven::Running(op))
    };
    let ongoing = admin.ongoing_reassignments().await?;
    if !ongoing.is_empty() {
        return running(
            op,
            OperationPhase::Reassigning,
            format!("{} partition reassignment(s) in progress", ongoing.len()),
        );
    }
    let layout = admin.cluster_layout().await?;
    let missing: Vec<i32> = (0..brokers)
        .filter(|b| !layout.brokers.contains_key(b))
        .collect();
    if !missing.is_empty() {
        return running(
            op,
            OperationPhase::WaitingForBrokers,
            format!("waiting for broker(s) {missing:?} to register"),
        );
    }
    let draining: BTreeSet<i32> = match op.kind {
        OperationKind::Drain => op.brokers.iter().copied().collect(),
        OperationKind::Rebalance | OperationKind::RollingRestart => BTreeSet::new(),
    };
    let cluster = Cluster {
        brokers: layout
            .brokers
            .iter()
            .filter(|(b, _)| (0..brokers).contains(*b))
            .map(|(&b, rack)| (b, rack.clone()))
            .collect(),
        assignment: layout.assignment.clone(),
        draining: draining.clone(),
        leaders: layout.leaders.clone(),
    };
    let plan = match rebalance::plan(&cluster) {
        Ok(plan) => plan,
        Err(e) => {
            op.phase = OperationPhase::Blocked;
            op.message = e.to_string();
            return Ok(Driven::Blocked(op));
        }
    };
    if !plan.reassignments.is_empty() {
        if let Some(rate) = throttle {
            let topics: BTreeSet<String> =
                plan.reassignments.keys().map(|(t, _)| t.clone()).collect();
            let rates: BTreeMap<String, String> = THROTTLE_RATES
                .iter()
                .map(|k| (k.to_string(), rate.to_string()))
                .collect();
            admin.alter_broker_default_config(&rates, &[]).await?;
            let all: BTreeMap<String, String> = THROTTLED_REPLICAS
                .iter()
                .map(|k| (k.to_string(), "*".to_string()))
                .collect();
            for topic in &topics {
                admin.alter_topic_config(topic, &all, &[]).await?;
                if !op.throttled_topics.contains(topic) {
                    op.throttled_topics.push(topic.clone());
                }
            }
        }
        admin.reassign_partitions(&plan.reassignments).await?;
        let partitions = plan.reassignments.len();
        let moves = plan.replica_moves;
        return running(
            op,
            OperationPhase::Reassigning,
            format!("reassigning {partitions} partition(s), {moves} replica move(s)"),
        );
    }
    if !op.throttled_topics.is_empty() || throttle.is_some() {
        clear_throttles(admin, &op.throttled_topics).await?;
        op.throttled_topics.clear();
    }
    if !plan.elections.is_empty() {
        let partitions: Vec<_> = plan.elections.iter().cloned().collect();
        let message = match admin.elect_preferred_leaders(&partitions).await {
            Ok(()) => format!(
                "electing preferred leaders of {} partition(s)",
                partitions.len()
            ),
            // Typically PREFERRED_LEADER_NOT_AVAILABLE: the preferred replica is not in
            // sync yet. Tried again on the next pass.
            Err(e) => format!("preferred leader election: {e}"),
        };
        return running(op, OperationPhase::ElectingLeaders, message);
    }
    let still_leading: Vec<i32> = layout
        .leaders
        .values()
        .copied()
        .filter(|b| draining.contains(b))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !still_leading.is_empty() {
        return running(
            op,
            OperationPhase::ElectingLeaders,
            format!("broker(s) {still_leading:?} still lead partitions"),
        );
    }
    Ok(Driven::Done)
}

/// Removes the throttle rates from the brokers' defaults and the throttled replicas from
/// the topics; a topic deleted meanwhile is fine.
async fn clear_throttles<A: KafkaAdmin + ReplicaAdmin>(
    admin: &A,
    topics: &[String],
) -> Result<(), KafkaError> {
    let rates: Vec<String> = THROTTLE_RATES.iter().map(|k| k.to_string()).collect();
    admin
        .alter_broker_default_config(&BTreeMap::new(), &rates)
        .await?;
    let replicas: Vec<String> = THROTTLED_REPLICAS.iter().map(|k| k.to_string()).collect();
    for topic in topics {
        match admin
            .alter_topic_config(topic, &BTreeMap::new(), &replicas)
            .await
        {
            Err(KafkaError::Broker { code, .. }) if code == "UNKNOWN_TOPIC_OR_PARTITION" => {}
            other => other?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::fake::FakeKafka;

    fn op(kind: OperationKind, brokers: &[i32]) -> ClusterOperation {
        ClusterOperation {
            kind,
            brokers: brokers.to_vec(),
            phase: OperationPhase::Reassigning,
            throttled_topics: vec!["events".into()],
            started: "t0".into(),
            message: String::new(),
            pod_uid: None,
            since: None,
        }
    }

    #[test]
    fn a_new_cluster_or_an_unchanged_one_runs_nothing() {
        assert_eq!(
            begin(3, None, None, "t"),
            Begin {
                operation: None,
                statefulset_replicas: 3
            }
        );
        assert_eq!(begin(3, Some(3), None, "t").operation, None);
    }

    #[test]
    fn a_statefulset_re_created_mid_drain_keeps_the_drained_pods() {
        let drain = op(OperationKind::Drain, &[3, 4]);
        let b = begin(3, None, Some(drain.clone()), "t");
        assert_eq!(b.statefulset_replicas, 5);
        assert_eq!(b.operation, Some(drain));
    }

    #[test]
    fn scaling_up_rebalances_onto_the_new_brokers() {
        let b = begin(5, Some(3), None, "t1");
        assert_eq!(b.statefulset_replicas, 5);
        let op = b.operation.unwrap();
        assert_eq!(
            (op.kind, op.brokers, op.phase, op.started.as_str()),
            (
                OperationKind::Rebalance,
                vec![3, 4],
                OperationPhase::WaitingForBrokers,
                "t1"
            )
        );
    }

    #[test]
    fn a_running_rebalance_goes_on_and_grows_with_more_brokers() {
        let running = op(OperationKind::Rebalance, &[3, 4]);
        assert_eq!(
            begin(5, Some(5), Some(running.clone()), "t2").operation,
            Some(running.clone())
        );
        let grown = begin(6, Some(5), Some(running), "t2").operation.unwrap();
        assert_eq!(grown.brokers, vec![3, 4, 5]);
        assert_eq!(grown.throttled_topics, vec!["events".to_string()]);
    }

    #[test]
    fn scaling_down_keeps_every_pod_until_the_drain_is_done() {
        let b = begin(3, Some(5), None, "t1");
        assert_eq!(b.statefulset_replicas, 5);
        let drain = b.operation.unwrap();
        assert_eq!(
            (drain.kind.clone(), drain.brokers.clone()),
            (OperationKind::Drain, vec![3, 4])
        );
        // The next pass keeps the same drain, phase and all.
        let mut progressed = drain.clone();
        progressed.phase = OperationPhase::Reassigning;
        assert_eq!(
            begin(3, Some(5), Some(progressed.clone()), "t2").operation,
            Some(progressed)
        );
        // A deeper scale-down replaces it, carrying the throttles to clear.
        let deeper = begin(2, Some(5), Some(op(OperationKind::Drain, &[3, 4])), "t3")
            .operation
            .unwrap();
        assert_eq!(deeper.brokers, vec![2, 3, 4]);
        assert_eq!(deeper.throttled_topics, vec!["events".to_string()]);
    }

    #[test]
    fn a_scale_down_during_a_rebalance_turns_into_a_drain() {
        let b = begin(3, Some(5), Some(op(OperationKind::Rebalance, &[3, 4])), "t");
        let drain = b.operation.unwrap();
        assert_eq!(
            (drain.kind, drain.brokers),
            (OperationKind::Drain, vec![3, 4])
        );
        assert_eq!(b.statefulset_replicas, 5);
    }

    #[test]
    fn a_cancelled_drain_rebalances_over_the_half_emptied_brokers() {
        let b = begin(5, Some(5), Some(op(OperationKind::Drain, &[3, 4])), "t");
        let rebalance = b.operation.unwrap();
        assert_eq!(
            (rebalance.kind, rebalance.brokers),
            (OperationKind::Rebalance, vec![3, 4])
        );
        assert_eq!(b.statefulset_replicas, 5);
    }

    #[test]
    fn a_drain_whose_pods_are_gone_is_over() {
        // The StatefulSet shrank, then the operator stopped before writing the status.
        let b = begin(3, Some(3), Some(op(OperationKind::Drain, &[3, 4])), "t");
        assert_eq!(
            b,
            Begin {
                operation: None,
                statefulset_replicas: 3
            }
        );
        // ... and a further scale-down then is a new drain, not a shrink.
        let b = begin(2, Some(3), Some(op(OperationKind::Drain, &[3, 4])), "t");
        assert_eq!(b.statefulset_replicas, 3);
        let drain = b.operation.unwrap();
        assert_eq!((drain.kind, drain.brokers), (OperationKind::Drain, vec![2]));
    }

    /// Whatever the operation in status, `begin` never removes a pod (only a finished
    /// drain does), and a scale-down always starts a drain of exactly the brokers that go.
    #[test]
    fn no_pod_is_removed_by_begin_itself() {
        let kinds = [
            None,
            Some(OperationKind::Rebalance),
            Some(OperationKind::Drain),
        ];
        for want in 1..=6 {
            for current in 1..=6 {
                for kind in &kinds {
                    for brokers in [vec![], vec![0], vec![2], vec![3, 4], vec![5]] {
                        let previous = kind.clone().map(|k| op(k, &brokers));
                        let b = begin(want, Some(current), previous.clone(), "t");
                        assert_eq!(
                            b.statefulset_replicas,
                            want.max(current),
                            "{want} {current} {previous:?} → {b:?}"
                        );
                        if want < current {
                            assert_eq!(b.statefulset_replicas, current, "{previous:?}");
                            let op = b.operation.expect("a drain");
                            assert_eq!(op.kind, OperationKind::Drain);
                            assert_eq!(op.brokers, (want..current).collect::<Vec<_>>());
                        }
                    }
                }
            }
        }
    }

    fn cluster(brokers: i32) -> FakeKafka {
        let kafka = FakeKafka::default();
        kafka.with(|s| {
            s.layout.brokers = (0..brokers).map(|b| (b, None)).collect();
        });
        kafka
    }

    fn counts(kafka: &FakeKafka) -> BTreeMap<i32, usize> {
        kafka.with(|s| {
            let mut counts: BTreeMap<i32, usize> =
                s.layout.brokers.keys().map(|&b| (b, 0)).collect();
            for partitions in s.layout.assignment.values() {
                for replicas in partitions.values() {
                    for b in replicas {
                        *counts.entry(*b).or_default() += 1;
                    }
                }
            }
            counts
        })
    }

    /// Drives to the end as the controller does: a pass, then the brokers finish what was
    /// submitted. Returns the number of passes.
    async fn run(
        kafka: &FakeKafka,
        mut op: ClusterOperation,
        brokers: i32,
        throttle: Option<i64>,
    ) -> usize {
        for pass in 1..=10 {
            match drive(kafka, op.clone(), brokers, throttle).await.unwrap() {
                Driven::Running(next) => op = next,
                Driven::Done => return pass,
                Driven::Blocked(op) => panic!("blocked: {}", op.message),
            }
            kafka.complete_reassignments();
        }
        panic!("not done after 10 passes: {op:?}");
    }

    #[tokio::test]
    async fn rebalance_spreads_replicas_within_one_and_clears_its_throttle() {
        let kafka = cluster(5);
        kafka.add_replicated_topic(
            "events",
            &[&[0, 1, 2], &[1, 2, 0], &[2, 0, 1], &[0, 2, 1], &[1, 0, 2]],
        );
        let mut start = op(OperationKind::Rebalance, &[3, 4]);
        start.throttled_topics.clear();
        run(&kafka, start, 5, Some(1_000_000)).await;
        let counts = counts(&kafka);
        assert_eq!(counts.values().sum::<usize>(), 15);
        // Within one of the mean (3), the new brokers included.
        assert!(counts.values().all(|&c| (2..=4).contains(&c)), "{counts:?}");
        assert!(counts[&3] >= 2 && counts[&4] >= 2, "{counts:?}");
        let calls = kafka.calls();
        let throttle_set = calls
            .iter()
            .position(|c| c.contains("leader.replication.throttled.rate\": \"1000000"))
            .expect("throttle rate set");
        let first_move = calls
            .iter()
            .position(|c| c.starts_with("reassign "))
            .unwrap();
        assert!(throttle_set < first_move, "{calls:#?}");
        assert!(calls.iter().any(|c| c.starts_with(
            "alter_topic_config events set={\"follower.replication.throttled.replicas\": \"*\""
        )));
        // At the end no throttle is left anywhere.
        kafka.with(|s| {
            assert!(s.broker_defaults.is_empty(), "{:?}", s.broker_defaults);
            assert!(
                s.topics["events"].config.is_empty(),
                "{:?}",
                s.topics["events"].config
            );
        });
        // Every leader is its partition's preferred replica.
        kafka.with(|s| {
            for (topic, partitions) in &s.layout.assignment {
                for (p, replicas) in partitions {
                    assert_eq!(s.layout.leaders[&(topic.clone(), *p)], replicas[0]);
                }
            }
        });
    }

    #[tokio::test]
    async fn a_drain_empties_the_brokers_that_go() {
        let kafka = cluster(5);
        kafka.add_replicated_topic(
            "events",
            &[&[0, 3, 4], &[3, 4, 1], &[4, 2, 3], &[1, 2, 3], &[2, 4, 0]],
        );
        let passes = run(&kafka, op(OperationKind::Drain, &[3, 4]), 5, None).await;
        assert!(passes >= 2);
        let counts = counts(&kafka);
        assert_eq!((counts[&3], counts[&4]), (0, 0), "{counts:?}");
        assert!([0, 1, 2].iter().all(|b| counts[b] == 5), "{counts:?}");
        kafka.with(|s| assert!(s.layout.leaders.values().all(|l| *l < 3)));
    }

    #[tokio::test]
    async fn a_drain_below_the_replication_factor_is_blocked_and_moves_nothing() {
        let kafka = cluster(3);
        kafka.add_replicated_topic("events", &[&[0, 1, 2]]);
        let driven = drive(&kafka, op(OperationKind::Drain, &[2]), 3, None)
            .await
            .unwrap();
        let Driven::Blocked(blocked) = driven else {
            panic!("{driven:?}")
        };
        assert_eq!(blocked.phase, OperationPhase::Blocked);
        assert!(
            blocked.message.contains("2 broker(s) would remain")
                && blocked.message.contains("topic events (3)"),
            "{}",
            blocked.message
        );
        assert!(!kafka.calls().iter().any(|c| c.starts_with("reassign")));
    }

    #[tokio::test]
    async fn nothing_is_planned_while_reassignments_run_or_brokers_are_missing() {
        let kafka = cluster(4);
        kafka.add_replicated_topic("events", &[&[0, 1, 2], &[1, 2, 0]]);
        kafka.with(|s| {
            s.reassigning.insert(("other".into(), 0), vec![0, 1]);
        });
        let start = op(OperationKind::Rebalance, &[3]);
        let Driven::Running(waiting) = drive(&kafka, start.clone(), 4, None).await.unwrap() else {
            panic!()
        };
        assert_eq!(waiting.phase, OperationPhase::Reassigning);
        kafka.with(|s| s.reassigning.clear());
        // Broker 4 of five is not registered yet.
        let Driven::Running(waiting) = drive(&kafka, start.clone(), 5, None).await.unwrap() else {
            panic!()
        };
        assert_eq!(waiting.phase, OperationPhase::WaitingForBrokers);
        assert!(waiting.message.contains("[4]"), "{}", waiting.message);
        let waiting = waiting_for_pods(start, 4, 3);
        assert_eq!(waiting.phase, OperationPhase::WaitingForBrokers);
        assert_eq!(waiting.message, "waiting for broker pods: 3/4 Ready");
        assert!(!kafka.calls().iter().any(|c| c.starts_with("reassign")));
    }

    #[tokio::test]
    async fn a_restarted_operator_finishes_the_same_rebalance() {
        // One pass submits the moves; the operator "restarts" (only the status survives)
        // while they run; the next passes finish without moving anything twice.
        let kafka = cluster(4);
        kafka.add_replicated_topic("events", &[&[0, 1, 2], &[1, 2, 0], &[2, 0, 1], &[0, 1, 2]]);
        let mut start = op(OperationKind::Rebalance, &[3]);
        start.throttled_topics.clear();
        let Driven::Running(saved) = drive(&kafka, start, 4, Some(500)).await.unwrap() else {
            panic!()
        };
        let moves = kafka
            .calls()
            .iter()
            .filter(|c| c.starts_with("reassign"))
            .count();
        assert!(moves > 0);
        assert_eq!(saved.throttled_topics, vec!["events".to_string()]);
        let restored: ClusterOperation =
            serde_json::from_value(serde_json::to_value(&saved).unwrap()).unwrap();
        let Driven::Running(_) = drive(&kafka, restored.clone(), 4, Some(500)).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(
            kafka
                .calls()
                .iter()
                .filter(|c| c.starts_with("reassign"))
                .count(),
            moves,
            "nothing resubmitted while the moves run"
        );
        kafka.complete_reassignments();
        run(&kafka, restored, 4, Some(500)).await;
        assert_eq!(
            kafka
                .calls()
                .iter()
                .filter(|c| c.starts_with("reassign"))
                .count(),
            moves
        );
        kafka.with(|s| assert!(s.broker_defaults.is_empty()));
        let counts = counts(&kafka);
        assert!(counts.values().all(|&c| (2..=4).contains(&c)), "{counts:?}");
    }
}
