//! Choosing a partition for a record, the way the Java producer does, so that Strata's
//! tools and Java/librdkafka-with-murmur2 producers put the same key on the same
//! partition.

use std::collections::HashMap;

/// How the producer picks partitions for records that do not name one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Partitioner {
    /// Java's default: keyed records go to `murmur2(key) % partitions`; keyless records
    /// stick to one partition until about a batch worth of bytes went there, then move
    /// on (KIP-794's "uniform sticky" behaviour).
    #[default]
    Murmur2,
    /// Every record goes to the next partition in turn, key or no key (Java's
    /// `RoundRobinPartitioner`).
    RoundRobin,
}

/// Kafka's 32-bit murmur2, exactly as `org.apache.kafka.common.utils.Utils.murmur2`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java works on signed ints with wrapping arithmetic; u32 with wrapping ops is the
    // same bit pattern, and `>>>` is the unsigned shift.
    let len = data.len();
    let mut h = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on
/// `i32::MIN`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Java's default partitioner picks for `key`.
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> i32 {
    to_positive(murmur2(key)) % num_partitions
}

/// Partition choice with the per-topic state the strategies need.
#[derive(Debug, Clone, Default)]
pub struct PartitionChooser {
    strategy: Partitioner,
    /// Bytes that make a sticky partition "full"; Java uses `batch.size`.
    sticky_bytes: usize,
    /// Next round-robin counter per topic.
    counters: HashMap<String, u32>,
    /// Current sticky partition and bytes sent to it, per topic.
    sticky: HashMap<String, (i32, usize)>,
}

impl PartitionChooser {
    /// A chooser for `strategy`; keyless records switch sticky partitions after
    /// `sticky_bytes`.
    pub fn new(strategy: Partitioner, sticky_bytes: usize) -> Self {
        PartitionChooser {
            strategy,
            sticky_bytes: sticky_bytes.max(1),
            ..PartitionChooser::default()
        }
    }

    /// The partition for a record of `size_bytes` with `key` on a topic with
    /// `num_partitions` partitions.
    pub fn choose(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        size_bytes: usize,
        num_partitions: i32,
    ) -> i32 {
        assert!(num_partitions > 0, "topic {topic} has no partitions");
        match (self.strategy, key) {
            (Partitioner::Murmur2, Some(key)) => partition_for_key(key, num_partitions),
            (Partitioner::Murmur2, None) => self.sticky(topic, size_bytes, num_partitions),
            (Partitioner::RoundRobin, _) => self.next_in_turn(topic, num_partitions),
        }
    }

    fn next_in_turn(&mut self, topic: &str, num_partitions: i32) -> i32 {
        let counter = self.counters.entry(topic.to_owned()).or_insert(0);
        let value = *counter;
        *counter = counter.wrapping_add(1);
        to_positive(value as i32) % num_partitions
    }

    fn sticky(&mut self, topic: &str, size_bytes: usize, num_partitions: i32) -> i32 {
        let current = self.sticky.get(topic).copied();
        let (partition, sent) = match current {
            Some((partition, sent)) if sent < self.sticky_bytes && partition < num_partitions => {
                (partition, sent)
            }
            _ => (self.next_in_turn(topic, num_partitions), 0),
        };
        self.sticky
            .insert(topic.to_owned(), (partition, sent + size_bytes));
        partition
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(key, Utils.murmur2(key), toPositive(h) % 3, toPositive(h) % 7)`, computed with
    /// kafka-clients 4.3.1; the first six are the vectors of Kafka's `UtilsTest`.
    const JAVA_VECTORS: &[(&str, i32, i32, i32)] = &[
        ("21", -973932308, 0, 3),
        ("foobar", -790332482, 0, 0),
        ("a-little-bit-long-string", -985981536, 2, 1),
        ("a-little-bit-longer-string", -1486304829, 2, 0),
        (
            "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58897971,
            2,
            3,
        ),
        ("abc", 479470107, 0, 4),
        ("", 275646681, 0, 2),
        ("a", -1563381124, 1, 5),
        ("ab", 316155434, 2, 0),
        ("key-0", 29210041, 1, 0),
        ("key-1", 193331640, 0, 5),
        ("key-2", 852269702, 2, 4),
        ("key-42", -187086521, 0, 3),
        ("user-1234", -1663159204, 1, 2),
        ("été", -2101193575, 1, 4),
    ];

    #[test]
    fn murmur2_matches_the_java_client() {
        for &(key, hash, of3, of7) in JAVA_VECTORS {
            assert_eq!(murmur2(key.as_bytes()), hash, "murmur2({key:?})");
            assert_eq!(partition_for_key(key.as_bytes(), 3), of3, "{key:?} % 3");
            assert_eq!(partition_for_key(key.as_bytes(), 7), of7, "{key:?} % 7");
        }
    }

    #[test]
    fn to_positive_clears_the_sign_bit() {
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(5), 5);
    }

    #[test]
    fn keyed_records_ignore_stickiness() {
        let mut chooser = PartitionChooser::new(Partitioner::Murmur2, 10);
        for _ in 0..5 {
            assert_eq!(chooser.choose("t", Some(b"key-2"), 100, 3), 2);
        }
    }

    #[test]
    fn keyless_records_stick_until_a_batch_is_full() {
        let mut chooser = PartitionChooser::new(Partitioner::Murmur2, 100);
        let picks: Vec<i32> = (0..8).map(|_| chooser.choose("t", None, 40, 3)).collect();
        // 40+40+40 reaches 100 after the third record; then the next partition.
        assert_eq!(picks, [0, 0, 0, 1, 1, 1, 2, 2]);
        // Other topics have their own state.
        assert_eq!(chooser.choose("u", None, 40, 3), 0);
    }

    #[test]
    fn round_robin_cycles_regardless_of_key() {
        let mut chooser = PartitionChooser::new(Partitioner::RoundRobin, 100);
        let picks: Vec<i32> = (0..7)
            .map(|i| chooser.choose("t", Some(&[i]), 1, 3))
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn sticky_partition_follows_a_shrunken_count() {
        let mut chooser = PartitionChooser::new(Partitioner::Murmur2, 1000);
        chooser.choose("t", None, 1, 3);
        chooser.choose("t", None, 1000, 3);
        let p = chooser.choose("t", None, 1, 3);
        assert_eq!(p, 1);
        // Metadata now says 1 partition: the sticky choice must be valid.
        assert_eq!(chooser.choose("t", None, 1, 1), 0);
    }
}
