//! Reassignment planning for scale-up and for draining brokers before a scale-down: from
//! the current assignment to the AlterPartitionReassignments (KIP-455) that balance it,
//! moving as little as balance requires. Pure: no IO, no Kubernetes types.
//!
//! Where the rules come from:
//!
//! - **What is balanced.** Replicas per broker, and preferred leaders (the first replica,
//!   the one Kafka's preferred leader election picks) per broker, each within ±1 of the
//!   mean over the brokers that remain. With `R` items over `N` brokers a broker is
//!   balanced when `|count − R/N| ≤ 1`, i.e. `count·N ∈ [R − N, R + N]` (see [`Band`]).
//! - **Minimal movement.** Kafka's `kafka-reassign-partitions --generate` lays every
//!   partition out again with `AdminUtils.assignReplicasToBrokers` and moves most replicas
//!   of a cluster to add one broker. Here a replica moves only when its broker is being
//!   drained or holds more than its share: every move goes from a broker above the band
//!   to one below it while both exist (the most loaded first, to the least loaded), so
//!   without racks a scale-up takes exactly `max(excess, deficit)` moves, the fewest that
//!   can reach the band. A drain moves every drained replica, to the least loaded broker
//!   that may take it, plus what the band still needs. Leaders are balanced by reordering
//!   replicas inside a partition (no data moves) and only where the band requires it.
//! - **Racks.** As `assignReplicasToBrokers` does when every broker has a `broker.rack`,
//!   a partition's replicas span as many racks as they can. A balancing move never lowers
//!   a partition's rack count and, among the moves that balance equally, the one that
//!   raises it is taken. A drained replica goes to the broker that gives its partition
//!   the most racks; that can lower the count only when the remaining brokers have fewer
//!   racks than the partition spanned (a whole rack drained). When racks are uneven the
//!   rack count wins over replica balance, as in Kafka: brokers of a small rack may end
//!   above the band, and the others are then levelled as far as racks allow (no broker
//!   is left holding two more than one it could hand a replica to). With racks on some
//!   brokers only, racks are ignored (Kafka refuses such a cluster unless told
//!   `--disable-rack-aware`; the operator gives racks to all brokers or none).
//! - **Replication factor.** Kept; never two replicas of a partition on one broker. A
//!   drain that would leave fewer brokers than some topic's replication factor is refused
//!   with [`PlanError::NotEnoughBrokers`] naming every such topic.
//!
//! The search: drained replicas move first (to the broker giving the most racks, then the
//! least loaded); then, while some broker is outside the band, the shortest chain of
//! moves from an over-full broker to an under-full one (a breadth-first search over
//! "broker A can hand a replica to broker B"; without racks the chain is always one move
//! long, racks can make a direct move impossible), levelling where the band cannot be
//! reached; then the same over preferred leaders. Ties go by broker id and
//! topic-partition order, so a given input always gives the same plan. A planned cluster
//! plans nothing more: [`plan`] of its own result is empty, which is what lets the
//! controller recompute instead of persisting a plan.
//!
//! How the cluster controller will drive it (not wired yet). On scale-up, once the new
//! brokers are Ready: read the assignment and current leaders (Metadata), racks
//! (DescribeCluster), call [`plan`], set the throttle
//! (`spec.rebalance.throttleBytesPerSecond`), submit [`Plan::reassignments`] with
//! AlterPartitionReassignments, watch ListPartitionReassignments until none is left, clear
//! the throttle, then ElectLeaders(PREFERRED) for [`Plan::elections`]. On scale-down the
//! same with `draining` = the ordinals at or above the new replica count, and the
//! StatefulSet shrinks only once a fresh plan is empty and the drained brokers lead
//! nothing. `status.operation` keeps what cannot be re-derived: the kind (`Rebalance` or
//! `Drain`), the brokers being drained, the phase (`Reassigning`, `ElectingLeaders`,
//! `Shrinking`) and whether a throttle is set. The plan itself is not persisted: never
//! plan while reassignments are in flight (the assignment then reads `adding ∪ removing`);
//! after they finish, planning again gives the rest, or nothing.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::kafka::TopicPartition;

/// `broker.id`; a Strata broker's is its pod ordinal.
pub type BrokerId = i32;

/// What the planner starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cluster {
    /// Topic → partition → replicas in preference order (the first is the preferred
    /// leader), as Metadata or DescribeTopics reports them.
    pub assignment: BTreeMap<String, BTreeMap<i32, Vec<BrokerId>>>,
    /// Every broker, draining ones included, with its `broker.rack` if it has one.
    pub brokers: BTreeMap<BrokerId, Option<String>>,
    /// Brokers to empty before they go (scale-down). Their replicas and leaderships move
    /// to the other brokers.
    pub draining: BTreeSet<BrokerId>,
    /// The current leader of each partition, where known. Only decides which partitions
    /// need a preferred leader election; without it, those whose first replica changed.
    pub leaders: BTreeMap<TopicPartition, BrokerId>,
}

/// The reassignments that balance a cluster and what follows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The new ordered replica list of every partition whose list changes (a new broker or
    /// only a new order), for AlterPartitionReassignments.
    pub reassignments: BTreeMap<TopicPartition, Vec<BrokerId>>,
    /// The preferred leader (first replica) of every partition once the plan is done.
    pub preferred_leaders: BTreeMap<TopicPartition, BrokerId>,
    /// Partitions whose leader is not their preferred leader once the plan is done: the
    /// ElectLeaders(PREFERRED) that finishes the job.
    pub elections: BTreeSet<TopicPartition>,
    /// Replicas that change broker (each a copy of the partition's log).
    pub replica_moves: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.reassignments.is_empty() && self.elections.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A drain (or a cluster too small) that would leave some partition without enough
    /// brokers for its replicas.
    #[error(
        "{remaining} broker(s) would remain, fewer than the replication factor of {}; lower the replication factor or keep more brokers",
        describe_topics(.topics)
    )]
    NotEnoughBrokers {
        remaining: usize,
        /// Each topic that does not fit, with its (largest) replication factor.
        topics: BTreeMap<String, usize>,
    },
    #[error(
        "partition {topic}-{partition} has a replica on broker {broker}, which is not one of the cluster's brokers"
    )]
    UnknownBroker {
        topic: String,
        partition: i32,
        broker: BrokerId,
    },
    #[error("partition {topic}-{partition} lists broker {broker} twice")]
    DuplicateReplica {
        topic: String,
        partition: i32,
        broker: BrokerId,
    },
}

fn describe_topics(topics: &BTreeMap<String, usize>) -> String {
    let named: Vec<String> = topics
        .iter()
        .map(|(topic, rf)| format!("topic {topic} ({rf})"))
        .collect();
    named.join(", ")
}

/// The reassignments that drain `cluster.draining` and balance replicas and preferred
/// leaders over the other brokers, moving as little as that requires.
pub fn plan(cluster: &Cluster) -> Result<Plan, PlanError> {
    let remaining: BTreeSet<BrokerId> = cluster
        .brokers
        .keys()
        .copied()
        .filter(|b| !cluster.draining.contains(b))
        .collect();
    let original = check(cluster, remaining.len())?;
    if original.is_empty() {
        return Ok(Plan::default());
    }
    let mut layout = Layout::new(&original, &remaining, rack_map(cluster));
    layout.drain(&cluster.draining);
    let band = Band::around_mean(layout.total_replicas(), remaining.len());
    balance(&mut ReplicaCounts(&mut layout), band);
    let band = Band::around_mean(layout.replicas.len(), remaining.len());
    balance(
        &mut LeaderCounts {
            layout: &mut layout,
            original: &original,
            leaders: &cluster.leaders,
        },
        band,
    );
    Ok(layout.into_plan(&original, &cluster.leaders))
}

/// Validates the input and flattens it to topic-partition → replicas (partitions with no
/// replicas left out: there is nothing to place).
fn check(
    cluster: &Cluster,
    remaining: usize,
) -> Result<BTreeMap<TopicPartition, Vec<BrokerId>>, PlanError> {
    let mut flat = BTreeMap::new();
    let mut too_big: BTreeMap<String, usize> = BTreeMap::new();
    for (topic, partitions) in &cluster.assignment {
        for (&partition, replicas) in partitions {
            let mut seen = BTreeSet::new();
            for &broker in replicas {
                if !cluster.brokers.contains_key(&broker) {
                    return Err(PlanError::UnknownBroker {
                        topic: topic.clone(),
                        partition,
                        broker,
                    });
                }
                if !seen.insert(broker) {
                    return Err(PlanError::DuplicateReplica {
                        topic: topic.clone(),
                        partition,
                        broker,
                    });
                }
            }
            if replicas.len() > remaining {
                let rf = too_big.entry(topic.clone()).or_default();
                *rf = (*rf).max(replicas.len());
            }
            if !replicas.is_empty() {
                flat.insert((topic.clone(), partition), replicas.clone());
            }
        }
    }
    if too_big.is_empty() {
        Ok(flat)
    } else {
        Err(PlanError::NotEnoughBrokers {
            remaining,
            topics: too_big,
        })
    }
}

/// Racks, when every broker has one; `None` turns rack awareness off.
fn rack_map(cluster: &Cluster) -> Option<BTreeMap<BrokerId, String>> {
    cluster
        .brokers
        .iter()
        .map(|(&b, rack)| {
            rack.as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| (b, r.to_string()))
        })
        .collect()
}

/// The counts a broker may hold: `|count − total/brokers| ≤ 1`. With a whole mean `m`
/// that is `m − 1 ..= m + 1`; otherwise the two whole numbers around the mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    pub low: usize,
    pub high: usize,
}

impl Band {
    pub fn around_mean(total: usize, brokers: usize) -> Band {
        if brokers == 0 {
            return Band { low: 0, high: 0 };
        }
        Band {
            low: total.saturating_sub(brokers).div_ceil(brokers),
            high: (total + brokers) / brokers,
        }
    }

    pub fn contains(&self, count: usize) -> bool {
        (self.low..=self.high).contains(&count)
    }
}

/// The assignment while it is being planned, with the counts the search reads.
struct Layout {
    replicas: BTreeMap<TopicPartition, Vec<BrokerId>>,
    /// Partitions with a replica on each broker (draining ones too).
    hosted: BTreeMap<BrokerId, BTreeSet<TopicPartition>>,
    /// Partitions each broker is the preferred leader of.
    led: BTreeMap<BrokerId, BTreeSet<TopicPartition>>,
    /// Replicas of each topic on each broker, to spread a topic's partitions as well.
    topic_load: BTreeMap<BrokerId, BTreeMap<String, usize>>,
    /// Brokers that keep or receive replicas.
    remaining: BTreeSet<BrokerId>,
    racks: Option<BTreeMap<BrokerId, String>>,
}

impl Layout {
    fn new(
        original: &BTreeMap<TopicPartition, Vec<BrokerId>>,
        remaining: &BTreeSet<BrokerId>,
        racks: Option<BTreeMap<BrokerId, String>>,
    ) -> Self {
        let mut layout = Layout {
            replicas: original.clone(),
            hosted: remaining.iter().map(|&b| (b, BTreeSet::new())).collect(),
            led: BTreeMap::new(),
            topic_load: BTreeMap::new(),
            remaining: remaining.clone(),
            racks,
        };
        for (tp, replicas) in original {
            layout
                .led
                .entry(replicas[0])
                .or_default()
                .insert(tp.clone());
            for &b in replicas {
                layout.hosted.entry(b).or_default().insert(tp.clone());
                *layout
                    .topic_load
                    .entry(b)
                    .or_default()
                    .entry(tp.0.clone())
                    .or_default() += 1;
            }
        }
        layout
    }

    fn total_replicas(&self) -> usize {
        self.replicas.values().map(Vec::len).sum()
    }

    fn load(&self, broker: BrokerId) -> usize {
        self.hosted.get(&broker).map_or(0, BTreeSet::len)
    }

    fn leads(&self, broker: BrokerId) -> usize {
        self.led.get(&broker).map_or(0, BTreeSet::len)
    }

    fn led_by(&self, broker: BrokerId) -> impl Iterator<Item = &TopicPartition> {
        self.led.get(&broker).into_iter().flatten()
    }

    fn topic_load(&self, broker: BrokerId, topic: &str) -> usize {
        self.topic_load
            .get(&broker)
            .and_then(|t| t.get(topic))
            .copied()
            .unwrap_or(0)
    }

    /// How many racks the replicas span (0 without rack awareness: nothing to compare).
    fn rack_count(&self, replicas: impl Iterator<Item = BrokerId>) -> usize {
        match &self.racks {
            Some(racks) => replicas
                .filter_map(|b| racks.get(&b))
                .collect::<BTreeSet<_>>()
                .len(),
            None => 0,
        }
    }

    /// The partition's rack count if its replica on `from` moved to `to`.
    fn rack_count_after(&self, tp: &TopicPartition, from: BrokerId, to: BrokerId) -> usize {
        let replicas = &self.replicas[tp];
        self.rack_count(replicas.iter().map(|&b| if b == from { to } else { b }))
    }

    fn rack_count_now(&self, tp: &TopicPartition) -> usize {
        self.rack_count(self.replicas[tp].iter().copied())
    }

    /// Replaces the replica on `from` by one on `to`, in the same position of the list.
    fn move_replica(&mut self, tp: &TopicPartition, from: BrokerId, to: BrokerId) {
        let replicas = self.replicas.get_mut(tp).expect("a planned partition");
        let slot = replicas
            .iter()
            .position(|&b| b == from)
            .expect("the moved replica is on its broker");
        replicas[slot] = to;
        if slot == 0 {
            self.led.entry(from).or_default().remove(tp);
            self.led.entry(to).or_default().insert(tp.clone());
        }
        self.hosted.entry(from).or_default().remove(tp);
        self.hosted.entry(to).or_default().insert(tp.clone());
        for (broker, delta) in [(from, -1), (to, 1)] {
            let count = self
                .topic_load
                .entry(broker)
                .or_default()
                .entry(tp.0.clone())
                .or_default();
            *count = count.saturating_add_signed(delta);
        }
    }

    /// Puts the replica on `to` first in the partition's list, where the one on `from`
    /// was (a swap: the other replicas keep their places).
    fn hand_over_leadership(&mut self, tp: &TopicPartition, from: BrokerId, to: BrokerId) {
        let replicas = self.replicas.get_mut(tp).expect("a planned partition");
        let slot = replicas
            .iter()
            .position(|&b| b == to)
            .expect("the new leader is a replica");
        replicas.swap(0, slot);
        self.led.entry(from).or_default().remove(tp);
        self.led.entry(to).or_default().insert(tp.clone());
    }

    /// Moves every replica off the draining brokers: each to the remaining broker that
    /// gives its partition the most racks, then the least loaded, then the lowest id.
    fn drain(&mut self, draining: &BTreeSet<BrokerId>) {
        for &from in draining {
            let partitions: Vec<TopicPartition> = self
                .hosted
                .get(&from)
                .map(|h| h.iter().cloned().collect())
                .unwrap_or_default();
            for tp in partitions {
                let to = self
                    .remaining
                    .iter()
                    .copied()
                    .filter(|b| !self.replicas[&tp].contains(b))
                    .min_by_key(|&b| {
                        (
                            Reverse(self.rack_count_after(&tp, from, b)),
                            self.load(b),
                            b,
                        )
                    })
                    .expect("checked: enough remaining brokers for every partition");
                self.move_replica(&tp, from, to);
            }
        }
    }

    /// Partitions whose replica on `from` may move to `to`: `to` is a remaining broker
    /// without a replica of the partition, and the partition keeps its rack count.
    fn movable(
        &self,
        from: BrokerId,
        to: BrokerId,
    ) -> impl Iterator<Item = (&TopicPartition, usize, usize)> {
        let allowed = from != to && self.remaining.contains(&to);
        self.hosted
            .get(&from)
            .into_iter()
            .flatten()
            .filter(move |tp| allowed && !self.replicas[*tp].contains(&to))
            .filter_map(move |tp| {
                let before = self.rack_count_now(tp);
                let after = self.rack_count_after(tp, from, to);
                (after >= before).then_some((tp, before, after))
            })
    }

    /// The best replica to move from `from` to `to`, if any may. Preferred, in order: a
    /// move that adds a rack; one that moves a leadership exactly when `from` leads more
    /// than its share and `to` less; the topic `from` holds most of relative to `to`; the
    /// first topic-partition.
    fn best_move(&self, from: BrokerId, to: BrokerId) -> Option<TopicPartition> {
        let partitions = self.replicas.len();
        let brokers = self.remaining.len();
        let carry_leadership =
            self.leads(from) * brokers > partitions && self.leads(to) * brokers < partitions;
        self.movable(from, to)
            .map(|(tp, before, after)| {
                let moves_leader = self.replicas[tp].first() == Some(&from);
                let skew = self.topic_load(from, &tp.0) as i64 - self.topic_load(to, &tp.0) as i64;
                (
                    (
                        after - before,
                        moves_leader == carry_leadership,
                        skew,
                        Reverse(tp),
                    ),
                    tp,
                )
            })
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, tp)| tp.clone())
    }

    fn into_plan(
        self,
        original: &BTreeMap<TopicPartition, Vec<BrokerId>>,
        leaders: &BTreeMap<TopicPartition, BrokerId>,
    ) -> Plan {
        let mut plan = Plan::default();
        for (tp, replicas) in self.replicas {
            let before = &original[&tp];
            plan.replica_moves += replicas.iter().filter(|b| !before.contains(b)).count();
            let leader = leaders.get(&tp).or(before.first());
            if leader != replicas.first() {
                plan.elections.insert(tp.clone());
            }
            plan.preferred_leaders.insert(tp.clone(), replicas[0]);
            if &replicas != before {
                plan.reassignments.insert(tp, replicas);
            }
        }
        plan
    }
}

/// A count per broker that moves one unit at a time along edges "`from` can hand one to
/// `to`": replicas (a replica moves) or preferred leaders (a partition's order changes).
trait Counts {
    fn brokers(&self) -> Vec<BrokerId>;
    fn count(&self, broker: BrokerId) -> usize;
    fn can_shift(&self, from: BrokerId, to: BrokerId) -> bool;
    /// Moves one unit from `from` to `to`; false when there was none to move (never,
    /// where `can_shift` holds).
    fn shift(&mut self, from: BrokerId, to: BrokerId) -> bool;
}

/// Brings every broker's count into `band`, or as close as the edges allow, one chain of
/// shifts at a time. When no chain gets closer (racks can make the band unreachable),
/// counts are levelled instead: one unit from a broker to one holding at least two fewer,
/// where one of them is outside the band. A chain lowers the total distance to the band;
/// levelling never raises it and lowers the sum of squared counts, so this ends.
fn balance(counts: &mut impl Counts, band: Band) {
    loop {
        let shifted = if let Some(chain) = next_chain(counts, band) {
            chain.windows(2).all(|hop| counts.shift(hop[0], hop[1]))
        } else if let Some((from, to)) = levelling_shift(counts, band) {
            counts.shift(from, to)
        } else {
            return;
        };
        // A chain is found on edges that exist, so every hop moves something; stopping
        // otherwise keeps a broken edge from spinning here forever.
        if !shifted {
            return;
        }
    }
}

/// The levelling shift with the largest difference, from the lowest ids on ties.
fn levelling_shift(counts: &impl Counts, band: Band) -> Option<(BrokerId, BrokerId)> {
    let brokers = counts.brokers();
    let outside = |b: BrokerId| !band.contains(counts.count(b));
    brokers
        .iter()
        .flat_map(|&from| brokers.iter().map(move |&to| (from, to)))
        .filter(|&(from, to)| {
            counts.count(from) >= counts.count(to) + 2
                && (outside(from) || outside(to))
                && counts.can_shift(from, to)
        })
        .min_by_key(|&(from, to)| (Reverse(counts.count(from) - counts.count(to)), from, to))
}

/// The chain to shift next, preferring one from above the band to below it (it closes
/// two gaps), then from above to anything under the top, then from over the bottom to
/// below it.
fn next_chain(counts: &impl Counts, band: Band) -> Option<Vec<BrokerId>> {
    let brokers = counts.brokers();
    let over: Vec<BrokerId> = brokers
        .iter()
        .copied()
        .filter(|&b| counts.count(b) > band.high)
        .collect();
    let under: Vec<BrokerId> = brokers
        .iter()
        .copied()
        .filter(|&b| counts.count(b) < band.low)
        .collect();
    let above_low: Vec<BrokerId> = brokers
        .iter()
        .copied()
        .filter(|&b| counts.count(b) > band.low)
        .collect();
    let (has_over, has_under) = (!over.is_empty(), !under.is_empty());
    (has_over && has_under)
        .then(|| shortest_chain(counts, &over, |b| counts.count(b) < band.low))
        .flatten()
        .or_else(|| {
            has_over
                .then(|| shortest_chain(counts, &over, |b| counts.count(b) < band.high))
                .flatten()
        })
        .or_else(|| {
            has_under
                .then(|| shortest_chain(counts, &above_low, |b| counts.count(b) < band.low))
                .flatten()
        })
}

/// How a chain ranks among others: shorter, then from a fuller source, then to an
/// emptier target, then to the lower target id.
type ChainRank = (usize, Reverse<usize>, usize, BrokerId);

/// The shortest chain of shifts from one of `sources` to a broker `is_target` accepts.
/// Among equally short chains: from the most loaded source, to the least loaded target,
/// then by broker id.
fn shortest_chain(
    counts: &impl Counts,
    sources: &[BrokerId],
    is_target: impl Fn(BrokerId) -> bool,
) -> Option<Vec<BrokerId>> {
    let brokers = counts.brokers();
    let mut sources = sources.to_vec();
    sources.sort_by_key(|&b| (Reverse(counts.count(b)), b));
    let mut best: Option<(ChainRank, Vec<BrokerId>)> = None;
    for source in sources {
        if let Some(((2, Reverse(fullest), ..), _)) = &best
            && counts.count(source) < *fullest
        {
            // A direct shift from a fuller source is already found; nothing ranks higher.
            break;
        }
        let Some(chain) = chain_from(counts, &brokers, source, &is_target) else {
            continue;
        };
        let target = chain[chain.len() - 1];
        let rank = (
            chain.len(),
            Reverse(counts.count(source)),
            counts.count(target),
            target,
        );
        if best.as_ref().is_none_or(|(r, _)| rank < *r) {
            best = Some((rank, chain));
        }
    }
    best.map(|(_, chain)| chain)
}

/// Breadth-first search from `source`; the first layer that reaches a target gives the
/// chain to its least loaded target.
fn chain_from(
    counts: &impl Counts,
    brokers: &[BrokerId],
    source: BrokerId,
    is_target: &impl Fn(BrokerId) -> bool,
) -> Option<Vec<BrokerId>> {
    let mut parent: BTreeMap<BrokerId, BrokerId> = BTreeMap::new();
    let mut layer = vec![source];
    let mut seen: BTreeSet<BrokerId> = BTreeSet::from([source]);
    while !layer.is_empty() {
        let mut next = Vec::new();
        for &from in &layer {
            for &to in brokers {
                if !seen.contains(&to) && counts.can_shift(from, to) {
                    seen.insert(to);
                    parent.insert(to, from);
                    next.push(to);
                }
            }
        }
        if let Some(&target) = next
            .iter()
            .filter(|&&b| is_target(b))
            .min_by_key(|&&b| (counts.count(b), b))
        {
            let mut chain = VecDeque::from([target]);
            while let Some(&up) = parent.get(chain.front()?) {
                chain.push_front(up);
            }
            return Some(chain.into());
        }
        layer = next;
    }
    None
}

/// Replica counts over the remaining brokers; a shift moves one replica.
struct ReplicaCounts<'a>(&'a mut Layout);

impl Counts for ReplicaCounts<'_> {
    fn brokers(&self) -> Vec<BrokerId> {
        self.0.remaining.iter().copied().collect()
    }

    fn count(&self, broker: BrokerId) -> usize {
        self.0.load(broker)
    }

    fn can_shift(&self, from: BrokerId, to: BrokerId) -> bool {
        self.0.movable(from, to).next().is_some()
    }

    fn shift(&mut self, from: BrokerId, to: BrokerId) -> bool {
        let moved = self.0.best_move(from, to);
        if let Some(tp) = &moved {
            self.0.move_replica(tp, from, to);
        }
        moved.is_some()
    }
}

/// Preferred-leader counts; a shift puts another replica of a partition first. No data
/// moves, so any replica of a partition `from` leads may take over.
struct LeaderCounts<'a> {
    layout: &'a mut Layout,
    original: &'a BTreeMap<TopicPartition, Vec<BrokerId>>,
    leaders: &'a BTreeMap<TopicPartition, BrokerId>,
}

impl LeaderCounts<'_> {
    /// The partition `from` leads that `to` should take over: preferably one `to`
    /// already leads right now (no election), then one `to` led in the original order,
    /// then the first.
    fn best_handover(&self, from: BrokerId, to: BrokerId) -> Option<TopicPartition> {
        self.layout
            .led_by(from)
            .filter(|tp| self.layout.replicas[*tp].contains(&to))
            .min_by_key(|tp| {
                (
                    self.leaders.get(*tp) != Some(&to),
                    self.original[*tp].first() != Some(&to),
                    *tp,
                )
            })
            .cloned()
    }
}

impl Counts for LeaderCounts<'_> {
    fn brokers(&self) -> Vec<BrokerId> {
        self.layout.remaining.iter().copied().collect()
    }

    fn count(&self, broker: BrokerId) -> usize {
        self.layout.leads(broker)
    }

    fn can_shift(&self, from: BrokerId, to: BrokerId) -> bool {
        from != to
            && self
                .layout
                .led_by(from)
                .any(|tp| self.layout.replicas[tp].contains(&to))
    }

    fn shift(&mut self, from: BrokerId, to: BrokerId) -> bool {
        let handed = self.best_handover(from, to);
        if let Some(tp) = &handed {
            self.layout.hand_over_leadership(tp, from, to);
        }
        handed.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- building clusters ----

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        (topic.to_string(), partition)
    }

    fn brokers(ids: impl IntoIterator<Item = BrokerId>) -> BTreeMap<BrokerId, Option<String>> {
        ids.into_iter().map(|b| (b, None)).collect()
    }

    fn racked(racks: &[(BrokerId, &str)]) -> BTreeMap<BrokerId, Option<String>> {
        racks
            .iter()
            .map(|&(b, r)| (b, Some(r.to_string())))
            .collect()
    }

    /// Kafka's rack-unaware layout of a new topic (`assignReplicasToBrokers` with start
    /// index and shift 0): partition `p` starts on broker `p % n`, followers at a shift
    /// that grows every `n` partitions.
    fn kafka_layout(partitions: i32, rf: usize, ids: &[BrokerId]) -> BTreeMap<i32, Vec<BrokerId>> {
        let n = ids.len();
        (0..partitions)
            .map(|p| {
                let first = p as usize % n;
                let shift = p as usize / n;
                let mut replicas = vec![ids[first]];
                for j in 0..rf - 1 {
                    let step = 1 + (shift + j) % (n - 1);
                    replicas.push(ids[(first + step) % n]);
                }
                (p, replicas)
            })
            .collect()
    }

    fn apply(cluster: &Cluster, plan: &Plan) -> BTreeMap<TopicPartition, Vec<BrokerId>> {
        let mut out = BTreeMap::new();
        for (topic, partitions) in &cluster.assignment {
            for (&p, replicas) in partitions {
                let key = tp(topic, p);
                let new = plan.reassignments.get(&key).unwrap_or(replicas);
                out.insert(key, new.clone());
            }
        }
        out
    }

    fn replica_counts(
        assignment: &BTreeMap<TopicPartition, Vec<BrokerId>>,
        on: &BTreeSet<BrokerId>,
    ) -> BTreeMap<BrokerId, usize> {
        let mut counts: BTreeMap<BrokerId, usize> = on.iter().map(|&b| (b, 0)).collect();
        for replicas in assignment.values() {
            for b in replicas {
                *counts.entry(*b).or_default() += 1;
            }
        }
        counts
    }

    fn leader_counts(
        assignment: &BTreeMap<TopicPartition, Vec<BrokerId>>,
        on: &BTreeSet<BrokerId>,
    ) -> BTreeMap<BrokerId, usize> {
        let mut counts: BTreeMap<BrokerId, usize> = on.iter().map(|&b| (b, 0)).collect();
        for replicas in assignment.values().filter(|r| !r.is_empty()) {
            *counts.entry(replicas[0]).or_default() += 1;
        }
        counts
    }

    fn flat(cluster: &Cluster) -> BTreeMap<TopicPartition, Vec<BrokerId>> {
        apply(cluster, &Plan::default())
    }

    fn remaining(cluster: &Cluster) -> BTreeSet<BrokerId> {
        cluster
            .brokers
            .keys()
            .copied()
            .filter(|b| !cluster.draining.contains(b))
            .collect()
    }

    /// Racks a partition spans (0 when some broker has no rack: racks are off).
    fn spread(cluster: &Cluster, replicas: &[BrokerId]) -> usize {
        if cluster.brokers.values().any(Option::is_none) {
            return 0;
        }
        replicas
            .iter()
            .map(|b| cluster.brokers[b].clone())
            .collect::<BTreeSet<_>>()
            .len()
    }

    fn distance(counts: &BTreeMap<BrokerId, usize>, band: Band) -> usize {
        counts
            .values()
            .map(|&c| c.saturating_sub(band.high) + band.low.saturating_sub(c))
            .sum()
    }

    /// The fewest replica moves that can drain and balance a cluster without racks: every
    /// drained replica moves; every replica above the band moves; every gap below it is
    /// filled either by a drained replica or by another move. A drained replica can fill a
    /// gap only on a broker without its partition; at most `fillable` gaps are filled that
    /// way (a matching of drained replicas to gaps).
    fn lower_bound_moves(cluster: &Cluster) -> usize {
        let before = flat(cluster);
        let remaining = remaining(cluster);
        let counts = replica_counts(&before, &remaining);
        let total: usize = before.values().map(Vec::len).sum();
        let band = Band::around_mean(total, remaining.len());
        let drained: Vec<&Vec<BrokerId>> = before
            .values()
            .flat_map(|r| {
                r.iter()
                    .filter(|b| cluster.draining.contains(b))
                    .map(move |_| r)
            })
            .collect();
        let excess: usize = remaining
            .iter()
            .map(|b| counts[b].saturating_sub(band.high))
            .sum();
        let gaps: Vec<BrokerId> = remaining
            .iter()
            .flat_map(|&b| std::iter::repeat_n(b, band.low.saturating_sub(counts[&b])))
            .collect();
        let fillable = max_matching(&drained, &gaps);
        drained.len() + excess.max(gaps.len() - fillable)
    }

    /// Kuhn's augmenting paths: drained replicas (by their partition) to gap brokers.
    fn max_matching(drained: &[&Vec<BrokerId>], gaps: &[BrokerId]) -> usize {
        fn augment(
            i: usize,
            drained: &[&Vec<BrokerId>],
            gaps: &[BrokerId],
            owner: &mut [Option<usize>],
            seen: &mut [bool],
        ) -> bool {
            for (slot, broker) in gaps.iter().enumerate() {
                if seen[slot] || drained[i].contains(broker) {
                    continue;
                }
                seen[slot] = true;
                if owner[slot].is_none_or(|j| augment(j, drained, gaps, owner, seen)) {
                    owner[slot] = Some(i);
                    return true;
                }
            }
            false
        }
        let mut owner = vec![None; gaps.len()];
        (0..drained.len())
            .filter(|&i| augment(i, drained, gaps, &mut owner, &mut vec![false; gaps.len()]))
            .count()
    }

    /// Whether some single move of a replica, keeping its partition's racks, would bring
    /// the counts closer to the band or (with a broker outside it) level them: if so, the
    /// planner stopped early.
    fn single_move_would_help(
        cluster: &Cluster,
        after: &BTreeMap<TopicPartition, Vec<BrokerId>>,
        band: Band,
    ) -> bool {
        let remaining = remaining(cluster);
        let counts = replica_counts(after, &remaining);
        for &from in &remaining {
            for &to in &remaining {
                let (a, b) = (counts[&from], counts[&to]);
                let gain = usize::from(a > band.high) + usize::from(b < band.low);
                let loss = usize::from(a <= band.low) + usize::from(b >= band.high);
                let levels = a >= b + 2 && (!band.contains(a) || !band.contains(b));
                if from == to || (gain <= loss && !levels) {
                    continue;
                }
                let possible = after.values().any(|r| {
                    r.contains(&from) && !r.contains(&to) && {
                        let moved: Vec<BrokerId> =
                            r.iter().map(|&b| if b == from { to } else { b }).collect();
                        spread(cluster, &moved) >= spread(cluster, r)
                    }
                });
                if possible {
                    return true;
                }
            }
        }
        false
    }

    /// Whether preferred leaders could be chosen among each partition's replicas so
    /// that every broker leads a count within `band` (depth-first, pruned).
    fn leaders_can_balance(
        after: &BTreeMap<TopicPartition, Vec<BrokerId>>,
        on: &BTreeSet<BrokerId>,
        band: Band,
    ) -> bool {
        fn search(
            rest: &[&Vec<BrokerId>],
            counts: &mut BTreeMap<BrokerId, usize>,
            band: Band,
        ) -> bool {
            let missing: usize = counts.values().map(|&c| band.low.saturating_sub(c)).sum();
            if missing > rest.len() {
                return false;
            }
            let Some((replicas, rest)) = rest.split_first() else {
                return true;
            };
            for b in replicas.iter() {
                if counts[b] < band.high {
                    *counts.get_mut(b).unwrap() += 1;
                    let found = search(rest, counts, band);
                    *counts.get_mut(b).unwrap() -= 1;
                    if found {
                        return true;
                    }
                }
            }
            false
        }
        let partitions: Vec<&Vec<BrokerId>> = after.values().collect();
        let mut counts = on.iter().map(|&b| (b, 0)).collect();
        search(&partitions, &mut counts, band)
    }

    /// Every rule a plan must keep, checked from the outside. Returns the cluster after it.
    fn check_plan(cluster: &Cluster, plan: &Plan) -> BTreeMap<TopicPartition, Vec<BrokerId>> {
        let before = flat(cluster);
        let after = apply(cluster, plan);
        let remaining = remaining(cluster);
        let remaining_racks: BTreeSet<_> = remaining.iter().map(|b| &cluster.brokers[b]).collect();
        for (key, replicas) in &after {
            let old = &before[key];
            assert_eq!(
                replicas.len(),
                old.len(),
                "{key:?}: replication factor kept"
            );
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), replicas.len(), "{key:?}: no broker twice");
            assert!(
                replicas.iter().all(|b| remaining.contains(b)),
                "{key:?}: only remaining brokers hold replicas: {replicas:?}"
            );
            let drained = old.iter().any(|b| cluster.draining.contains(b));
            let floor = if drained {
                spread(cluster, old).min(remaining_racks.len())
            } else {
                spread(cluster, old)
            };
            assert!(
                spread(cluster, replicas) >= floor,
                "{key:?}: rack spread {old:?} -> {replicas:?}"
            );
            if !replicas.is_empty() {
                assert_eq!(plan.preferred_leaders.get(key), replicas.first());
                let leader = cluster.leaders.get(key).or(old.first());
                assert_eq!(plan.elections.contains(key), leader != replicas.first());
            }
            assert_eq!(plan.reassignments.contains_key(key), replicas != old);
        }
        let moves: usize = after
            .iter()
            .map(|(k, r)| r.iter().filter(|b| !before[k].contains(b)).count())
            .sum();
        assert_eq!(plan.replica_moves, moves);

        // Balance: always without racks; with racks, unless no move keeping racks helps.
        let total: usize = after.values().map(Vec::len).sum();
        let band = Band::around_mean(total, remaining.len());
        let counts = replica_counts(&after, &remaining);
        let racks_on = spread(cluster, &[*remaining.first().unwrap()]) > 0;
        if !racks_on {
            assert!(
                counts.values().all(|&c| band.contains(c)),
                "replicas {counts:?} outside {band:?}"
            );
        } else if distance(&counts, band) > 0 {
            assert!(!single_move_would_help(cluster, &after, band));
        }
        let band = Band::around_mean(after.len(), remaining.len());
        let leaders = leader_counts(&after, &remaining);
        if !leaders.values().all(|&c| band.contains(c)) {
            assert!(
                !leaders_can_balance(&after, &remaining, band),
                "leaders {leaders:?} could be within {band:?}"
            );
        }

        // A planned cluster plans nothing more.
        let mut again = cluster.clone();
        for ((topic, p), replicas) in &after {
            again
                .assignment
                .get_mut(topic)
                .unwrap()
                .insert(*p, replicas.clone());
        }
        again.leaders = plan.preferred_leaders.clone();
        assert_eq!(
            plan_of(&again),
            Plan {
                preferred_leaders: plan.preferred_leaders.clone(),
                ..Plan::default()
            }
        );
        after
    }

    fn plan_of(cluster: &Cluster) -> Plan {
        plan(cluster).unwrap_or_else(|e| panic!("{e}: {cluster:?}"))
    }

    // ---- a small seeded generator ----

    /// xorshift64*: enough randomness for cluster shapes, the same on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        /// In `low..=high`.
        fn range(&mut self, low: usize, high: usize) -> usize {
            low + (self.next() % (high - low + 1) as u64) as usize
        }

        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }

        fn pick_distinct(&mut self, from: &[BrokerId], n: usize) -> Vec<BrokerId> {
            let mut pool = from.to_vec();
            (0..n)
                .map(|_| pool.remove(self.range(0, pool.len() - 1)))
                .collect()
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Shape {
        /// Topics laid out on the first brokers, then more brokers join.
        ScaleUp,
        /// Topics on every broker, then the last ones drain.
        Drain,
        /// Replicas anywhere, no pattern.
        Random,
    }

    fn generate(seed: u64, shape: Shape, with_racks: bool) -> Cluster {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let n = rng.range(1, 7);
        let ids: Vec<BrokerId> = (0..n as BrokerId).collect();
        let rack_count = rng.range(2, 3);
        let brokers = ids
            .iter()
            .map(|&b| {
                let rack = with_racks.then(|| {
                    // Sometimes uneven: the last rack gets only what is left over.
                    let r = if rng.chance(70) {
                        b as usize % rack_count
                    } else {
                        rng.range(0, rack_count - 1)
                    };
                    format!("zone-{r}")
                });
                (b, rack)
            })
            .collect();
        let (holders, draining): (Vec<BrokerId>, BTreeSet<BrokerId>) = match shape {
            Shape::ScaleUp => (ids[..rng.range(1, n)].to_vec(), BTreeSet::new()),
            Shape::Drain => {
                let leaving = rng.range(0, n - 1);
                (ids.clone(), ids[n - leaving..].iter().copied().collect())
            }
            Shape::Random => (ids.clone(), BTreeSet::new()),
        };
        let keep = n - draining.len();
        let mut assignment = BTreeMap::new();
        for t in 0..rng.range(1, 4) {
            let rf = rng.range(1, holders.len().min(3).min(keep));
            let partitions = rng.range(1, 5) as i32;
            let layout = if shape == Shape::Random || rng.chance(30) {
                (0..partitions)
                    .map(|p| (p, rng.pick_distinct(&holders, rf)))
                    .collect()
            } else {
                kafka_layout(partitions, rf, &holders)
            };
            assignment.insert(format!("t{t}"), layout);
        }
        let mut leaders = BTreeMap::new();
        for (topic, partitions) in &assignment {
            for (&p, replicas) in partitions {
                // Leaders are mostly the preferred ones, sometimes a follower took over.
                let i = if rng.chance(80) {
                    0
                } else {
                    rng.range(0, replicas.len() - 1)
                };
                leaders.insert(tp(topic, p), replicas[i]);
            }
        }
        Cluster {
            assignment,
            brokers,
            draining,
            leaders,
        }
    }

    // ---- properties over generated clusters ----

    const SEEDS: u64 = 400;

    #[test]
    fn generated_clusters_keep_every_rule() {
        for shape in [Shape::ScaleUp, Shape::Drain, Shape::Random] {
            for with_racks in [false, true] {
                for seed in 0..SEEDS {
                    let cluster = generate(seed, shape, with_racks);
                    let plan = plan_of(&cluster);
                    check_plan(&cluster, &plan);
                    assert_eq!(plan_of(&cluster), plan, "seed {seed}: deterministic");
                }
            }
        }
    }

    #[test]
    fn without_racks_a_scale_up_moves_exactly_the_lower_bound() {
        for shape in [Shape::ScaleUp, Shape::Random] {
            for seed in 0..SEEDS {
                let cluster = generate(seed, shape, false);
                let plan = plan_of(&cluster);
                assert_eq!(
                    plan.replica_moves,
                    lower_bound_moves(&cluster),
                    "seed {seed} {shape:?}: {cluster:?} -> {plan:?}"
                );
            }
        }
    }

    #[test]
    fn without_racks_a_drain_adds_at_most_one_move_per_drained_replica() {
        // The bound is not always reachable in a drain: a drained replica cannot go to a
        // broker that holds its partition, and the only brokers with room may all do.
        for seed in 0..SEEDS {
            let cluster = generate(seed, Shape::Drain, false);
            let plan = plan_of(&cluster);
            let drained = flat(&cluster)
                .values()
                .flatten()
                .filter(|b| cluster.draining.contains(b))
                .count();
            let bound = lower_bound_moves(&cluster);
            assert!(
                (bound..=bound + drained).contains(&plan.replica_moves),
                "seed {seed}: {} moves, bound {bound}, {drained} drained",
                plan.replica_moves
            );
        }
    }

    #[test]
    fn without_racks_no_broker_both_gives_and_takes_replicas() {
        for shape in [Shape::ScaleUp, Shape::Random] {
            for seed in 0..SEEDS {
                let cluster = generate(seed, shape, false);
                let before = flat(&cluster);
                let after = apply(&cluster, &plan_of(&cluster));
                let mut gave: BTreeSet<BrokerId> = BTreeSet::new();
                let mut took: BTreeSet<BrokerId> = BTreeSet::new();
                for (key, replicas) in &after {
                    gave.extend(before[key].iter().filter(|b| !replicas.contains(b)));
                    took.extend(replicas.iter().filter(|b| !before[key].contains(b)));
                }
                assert!(
                    gave.is_disjoint(&took),
                    "seed {seed} {shape:?}: {gave:?} {took:?}"
                );
            }
        }
    }

    #[test]
    fn a_balanced_cluster_plans_nothing() {
        for seed in 0..SEEDS {
            let mut cluster = generate(seed, Shape::Random, seed % 2 == 0);
            cluster.draining.clear();
            let after = apply(&cluster, &plan_of(&cluster));
            for ((topic, p), replicas) in after {
                cluster
                    .assignment
                    .get_mut(&topic)
                    .unwrap()
                    .insert(p, replicas);
            }
            cluster.leaders.clear();
            assert!(plan_of(&cluster).is_empty(), "seed {seed}");
        }
    }

    #[test]
    fn too_few_remaining_brokers_are_refused_naming_every_topic_that_does_not_fit() {
        for seed in 0..SEEDS {
            let mut cluster = generate(seed, Shape::Random, seed % 2 == 1);
            let largest = flat(&cluster).values().map(Vec::len).max().unwrap();
            let keep = largest - 1;
            cluster.draining = cluster.brokers.keys().copied().skip(keep).collect();
            let expected: BTreeMap<String, usize> = cluster
                .assignment
                .iter()
                .filter_map(|(t, ps)| {
                    let rf = ps.values().map(Vec::len).max().unwrap();
                    (rf > keep).then(|| (t.clone(), rf))
                })
                .collect();
            assert_eq!(
                plan(&cluster),
                Err(PlanError::NotEnoughBrokers {
                    remaining: keep,
                    topics: expected
                }),
                "seed {seed}"
            );
        }
    }

    // ---- named cases ----

    fn cluster_of(
        topics: &[(&str, BTreeMap<i32, Vec<BrokerId>>)],
        brokers: BTreeMap<BrokerId, Option<String>>,
    ) -> Cluster {
        Cluster {
            assignment: topics
                .iter()
                .map(|(t, layout)| (t.to_string(), layout.clone()))
                .collect(),
            brokers,
            ..Cluster::default()
        }
    }

    #[test]
    fn three_brokers_to_five_moves_the_lower_bound_and_balances_leaders() {
        // 10 partitions × RF 3 on brokers 0-2: 10 replicas each. Over 5 brokers the mean
        // is 6, so 0-2 give at least 3 each and 3, 4 need at least 5 each: 10 moves.
        let cluster = cluster_of(
            &[("orders", kafka_layout(10, 3, &[0, 1, 2]))],
            brokers(0..5),
        );
        let plan = plan_of(&cluster);
        let after = check_plan(&cluster, &plan);
        assert_eq!(plan.replica_moves, 10);
        let counts = replica_counts(&after, &(0..5).collect());
        assert_eq!(counts.values().sum::<usize>(), 30);
        assert!(counts.values().all(|&c| (5..=7).contains(&c)), "{counts:?}");
        let leaders = leader_counts(&after, &(0..5).collect());
        assert!(
            leaders.values().all(|&c| (1..=3).contains(&c)),
            "{leaders:?}"
        );
        // The new brokers take leaderships too, and every changed leader is elected.
        assert!(leaders[&3] >= 1 && leaders[&4] >= 1);
        assert!(!plan.elections.is_empty());
    }

    #[test]
    fn five_brokers_drained_to_three_leaves_every_partition_on_the_three() {
        let mut cluster = cluster_of(
            &[("orders", kafka_layout(10, 3, &[0, 1, 2, 3, 4]))],
            brokers(0..5),
        );
        cluster.draining = BTreeSet::from([3, 4]);
        cluster.leaders = flat(&cluster).into_iter().map(|(k, r)| (k, r[0])).collect();
        let plan = plan_of(&cluster);
        let after = check_plan(&cluster, &plan);
        for replicas in after.values() {
            let set: BTreeSet<_> = replicas.iter().copied().collect();
            assert_eq!(set, BTreeSet::from([0, 1, 2]));
        }
        // Only the replicas on 3 and 4 moved: 6 of the 30 each.
        assert_eq!(plan.replica_moves, 12);
        let leaders = leader_counts(&after, &(0..3).collect());
        assert!(
            leaders.values().all(|&c| (3..=4).contains(&c)),
            "{leaders:?}"
        );
        for (key, replicas) in flat(&cluster) {
            if [3, 4].contains(&replicas[0]) {
                assert!(
                    plan.elections.contains(&key),
                    "{key:?} was led by a drained broker"
                );
            }
        }
    }

    #[test]
    fn uneven_racks_keep_every_partition_on_both_racks() {
        // Zone b has one broker, so every RF=2 partition keeps its replica there: broker 3
        // stays above the band rather than a partition losing its second zone.
        let layout: BTreeMap<i32, Vec<BrokerId>> = (0..6).map(|p| (p, vec![p % 3, 3])).collect();
        let cluster = cluster_of(
            &[("events", layout)],
            racked(&[(0, "a"), (1, "a"), (2, "a"), (3, "b"), (4, "a")]),
        );
        let plan = plan_of(&cluster);
        let after = check_plan(&cluster, &plan);
        for replicas in after.values() {
            assert!(replicas.contains(&3), "{replicas:?}");
        }
        let counts = replica_counts(&after, &(0..5).collect());
        assert_eq!(counts[&3], 6);
        // The band (12 over 5: 2 or 3) is out of reach, so zone a's 6 replicas are
        // levelled over its four brokers, the new one included: one move.
        assert!(
            [0, 1, 2, 4].iter().all(|b| (1..=2).contains(&counts[b])),
            "{counts:?}"
        );
        assert_eq!(plan.replica_moves, 1);
    }

    #[test]
    fn a_move_that_happens_anyway_adds_a_rack() {
        // Both replicas of every partition sit in zone a, four partitions on brokers 0
        // and 1. Broker 2 (zone b) joins: 8 replicas over 3 brokers need at least 2 on
        // it, each giving its partition a second zone; nothing moves for racks alone.
        let layout: BTreeMap<i32, Vec<BrokerId>> = (0..4).map(|p| (p, vec![0, 1])).collect();
        let cluster = cluster_of(&[("logs", layout)], racked(&[(0, "a"), (1, "a"), (2, "b")]));
        let plan = plan_of(&cluster);
        let after = check_plan(&cluster, &plan);
        assert_eq!(plan.replica_moves, 2);
        let spanning_two = after.values().filter(|r| r.contains(&2)).count();
        assert_eq!(spanning_two, 2);
        // One from each of 0 and 1: they end with 3 each, broker 2 with 2.
        let counts = replica_counts(&after, &(0..3).collect());
        assert_eq!(counts, BTreeMap::from([(0, 3), (1, 3), (2, 2)]));
    }

    #[test]
    fn with_a_whole_mean_a_broker_may_sit_one_either_side_of_it() {
        // 6 replicas over 3 brokers: the mean is 2, so 3, 2, 1 is balanced and one move
        // (not two) takes 3, 3, 0 there.
        let layout: BTreeMap<i32, Vec<BrokerId>> = (0..3).map(|p| (p, vec![0, 1])).collect();
        let cluster = cluster_of(&[("logs", layout)], brokers(0..3));
        let plan = plan_of(&cluster);
        let after = check_plan(&cluster, &plan);
        assert_eq!(plan.replica_moves, 1);
        let counts = replica_counts(&after, &(0..3).collect());
        assert_eq!(
            counts.values().copied().collect::<BTreeSet<_>>(),
            BTreeSet::from([1, 2, 3])
        );
    }

    #[test]
    fn a_drain_picks_the_broker_in_the_missing_rack() {
        // Partition 0 spans zones a and b; its replica on broker 1 (zone b) drains. Broker
        // 2 is in zone a and less loaded, broker 3 in zone b: zone b wins.
        let cluster = Cluster {
            draining: BTreeSet::from([1]),
            ..cluster_of(
                &[(
                    "t",
                    BTreeMap::from([(0, vec![0, 1]), (1, vec![3, 0]), (2, vec![3, 0])]),
                )],
                racked(&[(0, "a"), (1, "b"), (2, "a"), (3, "b")]),
            )
        };
        let plan = plan_of(&cluster);
        check_plan(&cluster, &plan);
        assert_eq!(plan.reassignments[&tp("t", 0)], vec![0, 3]);
    }

    #[test]
    fn replication_factor_one_moves_whole_partitions_and_their_leadership() {
        // 5 partitions on broker 0 of 2: the mean is 2.5, so 3 and 2.
        let layout: BTreeMap<i32, Vec<BrokerId>> = (0..5).map(|p| (p, vec![0])).collect();
        let cluster = cluster_of(&[("rf1", layout)], brokers(0..2));
        let plan = plan_of(&cluster);
        let after = check_plan(&cluster, &plan);
        assert_eq!(plan.replica_moves, 2);
        assert_eq!(
            leader_counts(&after, &BTreeSet::from([0, 1])),
            BTreeMap::from([(0, 3), (1, 2)])
        );
        assert_eq!(plan.elections.len(), 2);
        assert_eq!(
            plan.reassignments.values().collect::<Vec<_>>(),
            [&vec![1], &vec![1]]
        );
    }

    #[test]
    fn replication_factor_three_on_three_brokers_only_reorders() {
        // Every partition is on every broker; only preferred leaders can be unbalanced.
        // Broker 0 leads all 7; the mean is 7/3, so each leads 2 or 3.
        let layout: BTreeMap<i32, Vec<BrokerId>> = (0..7).map(|p| (p, vec![0, 1, 2])).collect();
        let cluster = cluster_of(&[("all", layout)], brokers(0..3));
        let plan = plan_of(&cluster);
        let after = check_plan(&cluster, &plan);
        assert_eq!(plan.replica_moves, 0);
        let leaders = leader_counts(&after, &(0..3).collect());
        assert_eq!(leaders, BTreeMap::from([(0, 3), (1, 2), (2, 2)]));
        // Four new preferred leaders, four elections, and nothing else reordered.
        assert_eq!(plan.reassignments.len(), 4);
        assert_eq!(plan.elections.len(), 4);
    }

    #[test]
    fn a_balanced_kafka_layout_plans_nothing() {
        let cluster = cluster_of(
            &[("orders", kafka_layout(12, 3, &[0, 1, 2, 3]))],
            brokers(0..4),
        );
        assert!(plan_of(&cluster).is_empty());
    }

    #[test]
    fn elections_follow_the_current_leaders() {
        // Preferred leaders are balanced, but broker 1 leads partition 0 after a failover:
        // only that partition needs a preferred leader election.
        let mut cluster = cluster_of(
            &[("t", BTreeMap::from([(0, vec![0, 1]), (1, vec![1, 0])]))],
            brokers(0..2),
        );
        cluster.leaders = BTreeMap::from([(tp("t", 0), 1), (tp("t", 1), 1)]);
        let plan = plan_of(&cluster);
        assert!(plan.reassignments.is_empty());
        assert_eq!(plan.elections, BTreeSet::from([tp("t", 0)]));
    }

    #[test]
    fn a_topic_with_more_replicas_than_remaining_brokers_is_refused() {
        let cluster = Cluster {
            draining: BTreeSet::from([2]),
            ..cluster_of(
                &[
                    ("payments", kafka_layout(3, 3, &[0, 1, 2])),
                    ("audit", kafka_layout(3, 3, &[0, 1, 2])),
                    ("logs", kafka_layout(3, 2, &[0, 1, 2])),
                ],
                brokers(0..3),
            )
        };
        let err = plan(&cluster).unwrap_err();
        assert_eq!(
            err,
            PlanError::NotEnoughBrokers {
                remaining: 2,
                topics: BTreeMap::from([("audit".into(), 3), ("payments".into(), 3)]),
            }
        );
        assert_eq!(
            err.to_string(),
            "2 broker(s) would remain, fewer than the replication factor of topic audit (3), topic payments (3); lower the replication factor or keep more brokers"
        );
    }

    #[test]
    fn replicas_on_unknown_brokers_or_listed_twice_are_refused() {
        let unknown = cluster_of(&[("t", BTreeMap::from([(0, vec![0, 7])]))], brokers(0..2));
        assert_eq!(
            plan(&unknown),
            Err(PlanError::UnknownBroker {
                topic: "t".into(),
                partition: 0,
                broker: 7
            })
        );
        let twice = cluster_of(&[("t", BTreeMap::from([(0, vec![1, 1])]))], brokers(0..2));
        assert!(matches!(
            plan(&twice),
            Err(PlanError::DuplicateReplica { broker: 1, .. })
        ));
    }

    #[test]
    fn racks_on_some_brokers_only_are_ignored() {
        let mut brokers = racked(&[(0, "a"), (1, "a")]);
        brokers.insert(2, None);
        let layout: BTreeMap<i32, Vec<BrokerId>> = (0..4).map(|p| (p, vec![0, 1])).collect();
        let cluster = cluster_of(&[("t", layout)], brokers);
        let plan = plan_of(&cluster);
        let after = check_plan(&cluster, &plan);
        let counts = replica_counts(&after, &(0..3).collect());
        assert!(counts.values().all(|&c| (2..=3).contains(&c)), "{counts:?}");
    }

    #[test]
    fn an_empty_cluster_plans_nothing() {
        assert_eq!(plan(&Cluster::default()), Ok(Plan::default()));
        let idle = Cluster {
            brokers: brokers(0..3),
            draining: BTreeSet::from([2]),
            ..Cluster::default()
        };
        assert_eq!(plan(&idle), Ok(Plan::default()));
    }

    #[test]
    fn the_band_is_within_one_of_the_mean() {
        assert_eq!(Band::around_mean(30, 5), Band { low: 5, high: 7 });
        assert_eq!(Band::around_mean(10, 3), Band { low: 3, high: 4 });
        assert_eq!(Band::around_mean(2, 5), Band { low: 0, high: 1 });
        assert_eq!(Band::around_mean(0, 3), Band { low: 0, high: 1 });
        for total in 0..40 {
            for n in 1..8 {
                let band = Band::around_mean(total, n);
                for c in 0..50 {
                    let within = (c * n).abs_diff(total) <= n;
                    assert_eq!(band.contains(c), within, "{total}/{n}: {c}");
                }
            }
        }
    }
}
