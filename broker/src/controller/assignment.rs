//! Replica assignment of new topics and partitions, as Kafka's
//! `AdminUtils.assignReplicasToBrokers` lays them out:
//!
//! - Without racks: the first replica of partition `p` is broker `(p + start) % n` of the
//!   id-sorted broker list; the others follow at a shift that changes every `n`
//!   partitions, so leaders and followers spread evenly.
//! - With racks on every broker: the same walk over a list that alternates racks
//!   (`rack1: 0,1 / rack2: 2,3` → `0, 2, 1, 3`), skipping a broker whose rack already
//!   holds a replica while some rack holds none, so each partition spans as many racks
//!   as it can.
//!
//! The random start index and shift come in as arguments (`start`), which keeps this a
//! pure function; callers pass a random value, tests a fixed one.

use std::collections::{BTreeMap, BTreeSet};

/// A broker that can receive replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    #[error("Number of partitions must be larger than 0.")]
    InvalidPartitions,
    #[error("Replication factor must be larger than 0.")]
    InvalidReplicationFactor,
    #[error(
        "Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} cannot be reached because only {brokers} broker(s) are registered."
    )]
    NotEnoughBrokers {
        replication_factor: i32,
        brokers: usize,
    },
    #[error("Not all brokers have rack information for replica rack aware assignment.")]
    PartialRackInformation,
}

fn replica_index(first: usize, shift: usize, replica: usize, n: usize) -> usize {
    let step = 1 + (shift + replica) % (n - 1);
    (first + step) % n
}

/// Assigns partitions `start_partition..start_partition + partitions` to `brokers`.
/// `start` is `(start index, replica shift)`, each taken modulo the broker count.
pub fn assign_replicas(
    brokers: &[Candidate],
    partitions: i32,
    replication_factor: i32,
    start: (usize, usize),
    start_partition: i32,
) -> Result<BTreeMap<i32, Vec<i32>>, AssignmentError> {
    if partitions <= 0 {
        return Err(AssignmentError::InvalidPartitions);
    }
    if replication_factor <= 0 {
        return Err(AssignmentError::InvalidReplicationFactor);
    }
    if replication_factor as usize > brokers.len() {
        return Err(AssignmentError::NotEnoughBrokers {
            replication_factor,
            brokers: brokers.len(),
        });
    }
    let mut sorted = brokers.to_vec();
    sorted.sort_by_key(|b| b.id);
    let with_rack = sorted.iter().filter(|b| b.rack.is_some()).count();
    if with_rack == 0 {
        let ids: Vec<i32> = sorted.iter().map(|b| b.id).collect();
        Ok(rack_unaware(
            &ids,
            partitions,
            replication_factor as usize,
            start,
            start_partition,
        ))
    } else if with_rack < sorted.len() {
        Err(AssignmentError::PartialRackInformation)
    } else {
        Ok(rack_aware(
            &sorted,
            partitions,
            replication_factor as usize,
            start,
            start_partition,
        ))
    }
}

fn rack_unaware(
    ids: &[i32],
    partitions: i32,
    replication_factor: usize,
    (start_index, shift): (usize, usize),
    start_partition: i32,
) -> BTreeMap<i32, Vec<i32>> {
    let n = ids.len();
    let start_index = start_index % n;
    let mut shift = shift % n;
    let mut out = BTreeMap::new();
    let first_partition = start_partition.max(0);
    for partition in first_partition..first_partition + partitions {
        if partition > 0 && (partition as usize).is_multiple_of(n) {
            shift += 1;
        }
        let first = (partition as usize + start_index) % n;
        let mut replicas = vec![ids[first]];
        for j in 0..replication_factor - 1 {
            replicas.push(ids[replica_index(first, shift, j, n)]);
        }
        out.insert(partition, replicas);
    }
    out
}

/// Brokers alternating by rack (racks in name order, brokers by id within a rack).
fn rack_alternated(brokers: &[Candidate]) -> Vec<i32> {
    let mut by_rack: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for b in brokers {
        by_rack
            .entry(b.rack.as_deref().unwrap_or_default())
            .or_default()
            .push(b.id);
    }
    let mut lists: Vec<std::vec::IntoIter<i32>> = by_rack
        .into_values()
        .map(|mut v| {
            v.sort();
            v.into_iter()
        })
        .collect();
    let mut out = Vec::with_capacity(brokers.len());
    while out.len() < brokers.len() {
        for list in lists.iter_mut() {
            if let Some(id) = list.next() {
                out.push(id);
            }
        }
    }
    out
}

fn rack_aware(
    brokers: &[Candidate],
    partitions: i32,
    replication_factor: usize,
    (start_index, shift): (usize, usize),
    start_partition: i32,
) -> BTreeMap<i32, Vec<i32>> {
    let rack_of: BTreeMap<i32, &str> = brokers
        .iter()
        .map(|b| (b.id, b.rack.as_deref().unwrap_or_default()))
        .collect();
    let racks = rack_of.values().collect::<BTreeSet<_>>().len();
    let arranged = rack_alternated(brokers);
    let n = arranged.len();
    let start_index = start_index % n;
    let mut shift = shift % n;
    let mut out = BTreeMap::new();
    let first_partition = start_partition.max(0);
    for partition in first_partition..first_partition + partitions {
        if partition > 0 && (partition as usize).is_multiple_of(n) {
            shift += 1;
        }
        let first = (partition as usize + start_index) % n;
        let leader = arranged[first];
        let mut replicas = vec![leader];
        let mut used_racks = BTreeSet::from([rack_of[&leader]]);
        let mut used_brokers = BTreeSet::from([leader]);
        let mut k = 0;
        for _ in 0..replication_factor - 1 {
            loop {
                let broker = arranged[replica_index(first, shift * racks, k, n)];
                let rack = rack_of[&broker];
                k += 1;
                let rack_ok = !used_racks.contains(rack) || used_racks.len() == racks;
                let broker_ok = !used_brokers.contains(&broker) || used_brokers.len() == n;
                if rack_ok && broker_ok {
                    replicas.push(broker);
                    used_racks.insert(rack);
                    used_brokers.insert(broker);
                    break;
                }
            }
        }
        out.insert(partition, replicas);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers(ids: &[i32]) -> Vec<Candidate> {
        ids.iter()
            .map(|id| Candidate {
                id: *id,
                rack: None,
            })
            .collect()
    }

    fn racked(spec: &[(i32, &str)]) -> Vec<Candidate> {
        spec.iter()
            .map(|(id, rack)| Candidate {
                id: *id,
                rack: Some(rack.to_string()),
            })
            .collect()
    }

    /// The layout Kafka documents for 5 brokers, 10 partitions, RF 3, start index 0.
    #[test]
    fn rack_unaware_matches_kafkas_documented_layout() {
        let a = assign_replicas(&brokers(&[0, 1, 2, 3, 4]), 10, 3, (0, 0), 0).unwrap();
        assert_eq!(a[&0], vec![0, 1, 2]);
        assert_eq!(a[&1], vec![1, 2, 3]);
        assert_eq!(a[&4], vec![4, 0, 1]);
        assert_eq!(a[&5], vec![0, 2, 3]);
        assert_eq!(a[&9], vec![4, 1, 2]);
    }

    #[test]
    fn every_broker_leads_and_follows_evenly() {
        let ids = [1, 2, 3, 4];
        for start in 0..4 {
            let a = assign_replicas(&brokers(&ids), 12, 3, (start, start), 0).unwrap();
            let mut leaders = BTreeMap::new();
            let mut replicas = BTreeMap::new();
            for r in a.values() {
                assert_eq!(
                    r.iter().collect::<BTreeSet<_>>().len(),
                    3,
                    "distinct: {r:?}"
                );
                *leaders.entry(r[0]).or_insert(0) += 1;
                for id in r {
                    *replicas.entry(*id).or_insert(0) += 1;
                }
            }
            assert!(leaders.values().all(|n| *n == 3), "{leaders:?}");
            assert!(replicas.values().all(|n| *n == 9), "{replicas:?}");
        }
    }

    #[test]
    fn partition_growth_continues_the_layout() {
        let all = assign_replicas(&brokers(&[0, 1, 2]), 6, 2, (1, 2), 0).unwrap();
        let grown = assign_replicas(&brokers(&[0, 1, 2]), 3, 2, (1, 2), 3).unwrap();
        for p in 3..6 {
            assert_eq!(all[&p], grown[&p]);
        }
    }

    #[test]
    fn rack_aware_spreads_each_partition_over_racks() {
        let b = racked(&[(0, "a"), (1, "a"), (2, "b"), (3, "b"), (4, "c"), (5, "c")]);
        assert_eq!(rack_alternated(&b), vec![0, 2, 4, 1, 3, 5]);
        for start in 0..6 {
            let a = assign_replicas(&b, 12, 3, (start, start), 0).unwrap();
            for r in a.values() {
                let racks: BTreeSet<_> = r.iter().map(|id| id / 2).collect();
                assert_eq!(racks.len(), 3, "{r:?}");
            }
        }
        // Two racks, RF 3: both racks used, brokers distinct.
        let b = racked(&[(0, "a"), (1, "a"), (2, "b"), (3, "b")]);
        let a = assign_replicas(&b, 4, 3, (0, 0), 0).unwrap();
        for r in a.values() {
            assert_eq!(r.iter().collect::<BTreeSet<_>>().len(), 3);
            assert_eq!(r.iter().map(|id| id / 2).collect::<BTreeSet<_>>().len(), 2);
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(
            assign_replicas(&brokers(&[1, 2]), 1, 3, (0, 0), 0),
            Err(AssignmentError::NotEnoughBrokers {
                replication_factor: 3,
                brokers: 2
            })
        );
        assert!(assign_replicas(&brokers(&[1]), 0, 1, (0, 0), 0).is_err());
        let mixed = vec![
            Candidate {
                id: 1,
                rack: Some("a".into()),
            },
            Candidate { id: 2, rack: None },
        ];
        assert_eq!(
            assign_replicas(&mixed, 1, 1, (0, 0), 0),
            Err(AssignmentError::PartialRackInformation)
        );
    }
}
