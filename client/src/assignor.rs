//! The consumer protocol carried inside the classic group protocol: what a member puts
//! in JoinGroup (`ConsumerProtocolSubscription`), what the leader hands out in
//! SyncGroup (`ConsumerProtocolAssignment`), and the assignors that compute it.
//!
//! The broker never looks inside these bytes; only the group leader and tools such as
//! `kafka-consumer-groups --describe` do. Both are a big-endian `i16` version followed
//! by the message at that version.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};

use crate::consumer::TopicPartition;
use crate::error::{Error, Result};

/// JoinGroup's `protocol_type` for consumers.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// Version written for subscriptions and assignments: v1 adds owned partitions, which
/// every broker and client since Kafka 2.4 reads.
const CONSUMER_PROTOCOL_VERSION: i16 = 1;

/// A partition assignment strategy (`partition.assignment.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    /// Kafka's `RangeAssignor`: per topic, consecutive partition ranges.
    Range,
    /// Kafka's `RoundRobinAssignor`: all partitions dealt out in turn.
    RoundRobin,
}

impl Assignor {
    /// The protocol name members agree on in JoinGroup.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
        }
    }

    /// The assignor with protocol name `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "range" => Some(Assignor::Range),
            "roundrobin" => Some(Assignor::RoundRobin),
            _ => None,
        }
    }

    /// Assigns the partitions of the subscribed topics (`partitions_per_topic`, topics
    /// missing there are skipped as Kafka does) to `members`. Every member gets an
    /// entry, possibly empty.
    pub fn assign(
        self,
        members: &[MemberSubscription],
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        match self {
            Assignor::Range => range_assign(members, partitions_per_topic),
            Assignor::RoundRobin => round_robin_assign(members, partitions_per_topic),
        }
    }
}

/// One member's subscription as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    /// Member id given by the coordinator.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// Subscribed topics.
    pub topics: Vec<String>,
}

/// Kafka's member order (`AbstractPartitionAssignor.MemberInfo.compareTo`): static
/// members first by instance id, then dynamic members by member id.
fn member_order(a: &MemberSubscription, b: &MemberSubscription) -> std::cmp::Ordering {
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    }
}

fn empty_assignment(members: &[MemberSubscription]) -> BTreeMap<String, Vec<TopicPartition>> {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect()
}

/// For each topic, the members subscribed to it in Kafka's order each get a range of
/// `partitions / members` consecutive partitions, and the first `partitions % members`
/// of them one more.
fn range_assign(
    members: &[MemberSubscription],
    partitions_per_topic: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut assignment = empty_assignment(members);
    for (topic, &partitions) in partitions_per_topic {
        let mut consumers: Vec<&MemberSubscription> = members
            .iter()
            .filter(|m| m.topics.iter().any(|t| t == topic))
            .collect();
        if consumers.is_empty() {
            continue;
        }
        consumers.sort_by(|a, b| member_order(a, b));
        let count = i32::try_from(consumers.len()).unwrap_or(i32::MAX);
        let per_consumer = partitions / count;
        let extra = partitions % count;
        for (i, consumer) in (0_i32..).zip(consumers) {
            let start = per_consumer * i + i.min(extra);
            let length = per_consumer + i32::from(i < extra);
            let owned = assignment
                .get_mut(&consumer.member_id)
                .expect("every member has an entry");
            owned.extend((start..start + length).map(|p| TopicPartition::new(topic.clone(), p)));
        }
    }
    assignment
}

/// Every subscribed partition, topics in name order, dealt to the members in Kafka's
/// order, skipping members not subscribed to the partition's topic.
fn round_robin_assign(
    members: &[MemberSubscription],
    partitions_per_topic: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut assignment = empty_assignment(members);
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| member_order(a, b));
    if sorted.is_empty() {
        return assignment;
    }
    let mut next = 0_usize;
    for (topic, &partitions) in partitions_per_topic {
        if !sorted.iter().any(|m| m.topics.iter().any(|t| t == topic)) {
            continue;
        }
        for partition in 0..partitions {
            while !sorted[next % sorted.len()]
                .topics
                .iter()
                .any(|t| t == topic)
            {
                next += 1;
            }
            let member = sorted[next % sorted.len()];
            next += 1;
            assignment
                .get_mut(&member.member_id)
                .expect("every member has an entry")
                .push(TopicPartition::new(topic.clone(), partition));
        }
    }
    assignment
}

/// JoinGroup metadata for a member subscribed to `topics`.
pub fn encode_subscription(topics: &[String]) -> Result<Bytes> {
    let subscription = ConsumerProtocolSubscription::default().with_topics(
        topics
            .iter()
            .map(|t| StrBytes::from_string(t.clone()))
            .collect(),
    );
    encode_versioned(&subscription)
}

/// The topics of a member's JoinGroup metadata.
pub fn decode_subscription(bytes: &[u8]) -> Result<Vec<String>> {
    let subscription: ConsumerProtocolSubscription = decode_versioned(bytes, "subscription")?;
    Ok(subscription
        .topics
        .into_iter()
        .map(|t| t.to_string())
        .collect())
}

/// SyncGroup assignment bytes for `partitions`.
pub fn encode_assignment(partitions: &[TopicPartition]) -> Result<Bytes> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                AssignedPartitions::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partitions(partitions)
            })
            .collect(),
    );
    encode_versioned(&assignment)
}

/// The partitions in assignment bytes, sorted; empty bytes (a member that has not
/// been assigned yet) are no partitions.
pub fn decode_assignment(bytes: &[u8]) -> Result<Vec<TopicPartition>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let assignment: ConsumerProtocolAssignment = decode_versioned(bytes, "assignment")?;
    let mut partitions: Vec<TopicPartition> = assignment
        .assigned_partitions
        .into_iter()
        .flat_map(|t| {
            let topic = t.topic.0.to_string();
            t.partitions
                .into_iter()
                .map(move |p| TopicPartition::new(topic.clone(), p))
        })
        .collect();
    partitions.sort();
    Ok(partitions)
}

fn encode_versioned<M: Encodable>(message: &M) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(CONSUMER_PROTOCOL_VERSION);
    message
        .encode(&mut buf, CONSUMER_PROTOCOL_VERSION)
        .map_err(|err| Error::Invalid(format!("cannot encode consumer protocol: {err}")))?;
    Ok(buf.freeze())
}

/// Reads the version prefix and the message. A version newer than we know is read as
/// the newest we know: the consumer protocol only ever appends fields.
fn decode_versioned<M: Decodable + Message>(bytes: &[u8], what: &str) -> Result<M> {
    let mut buf = bytes;
    if buf.remaining() < 2 {
        return Err(Error::Invalid(format!(
            "consumer protocol {what} of {} bytes has no version",
            bytes.len()
        )));
    }
    let version = buf.get_i16().clamp(0, M::VERSIONS.max);
    M::decode(&mut buf, version)
        .map_err(|err| Error::Invalid(format!("cannot decode consumer protocol {what}: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str]) -> MemberSubscription {
        MemberSubscription {
            member_id: id.to_owned(),
            group_instance_id: None,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    fn topics(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    fn names(partitions: &[TopicPartition]) -> Vec<String> {
        partitions.iter().map(ToString::to_string).collect()
    }

    /// RangeAssignor's javadoc example: C0 and C1 on t0 and t1 with 3 partitions each
    /// get C0: [t0p0, t0p1, t1p0, t1p1], C1: [t0p2, t1p2].
    #[test]
    fn range_matches_the_kafka_javadoc_example() {
        let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
        let assignment = Assignor::Range.assign(&members, &topics(&[("t0", 3), ("t1", 3)]));
        assert_eq!(names(&assignment["C0"]), ["t0-0", "t0-1", "t1-0", "t1-1"]);
        assert_eq!(names(&assignment["C1"]), ["t0-2", "t1-2"]);
    }

    /// RangeAssignorTest.testOneConsumerMultipleTopics and friends.
    #[test]
    fn range_vectors_from_kafkas_tests() {
        // One consumer takes everything it subscribes to.
        let members = [member("c", &["t1", "t2"])];
        let a = Assignor::Range.assign(&members, &topics(&[("t1", 1), ("t2", 2)]));
        assert_eq!(names(&a["c"]), ["t1-0", "t2-0", "t2-1"]);

        // Two consumers, one partition: the first in member-id order gets it.
        let members = [member("consumer2", &["t"]), member("consumer1", &["t"])];
        let a = Assignor::Range.assign(&members, &topics(&[("t", 1)]));
        assert_eq!(names(&a["consumer1"]), ["t-0"]);
        assert!(a["consumer2"].is_empty());

        // Three consumers, 3 + 2 partitions (testMultipleConsumersMixedTopics).
        let members = [
            member("consumer1", &["t1"]),
            member("consumer2", &["t1", "t2"]),
            member("consumer3", &["t1"]),
        ];
        let a = Assignor::Range.assign(&members, &topics(&[("t1", 3), ("t2", 2)]));
        assert_eq!(names(&a["consumer1"]), ["t1-0"]);
        assert_eq!(names(&a["consumer2"]), ["t1-1", "t2-0", "t2-1"]);
        assert_eq!(names(&a["consumer3"]), ["t1-2"]);

        // Two consumers, two topics of 3 partitions (testTwoConsumersTwoTopicsSixPartitions).
        let members = [
            member("consumer1", &["t1", "t2"]),
            member("consumer2", &["t1", "t2"]),
        ];
        let a = Assignor::Range.assign(&members, &topics(&[("t1", 3), ("t2", 3)]));
        assert_eq!(names(&a["consumer1"]), ["t1-0", "t1-1", "t2-0", "t2-1"]);
        assert_eq!(names(&a["consumer2"]), ["t1-2", "t2-2"]);

        // 7 partitions over 3 members: ranges of 3, 2, 2.
        let members = [
            member("a", &["t"]),
            member("b", &["t"]),
            member("c", &["t"]),
        ];
        let a = Assignor::Range.assign(&members, &topics(&[("t", 7)]));
        assert_eq!(names(&a["a"]), ["t-0", "t-1", "t-2"]);
        assert_eq!(names(&a["b"]), ["t-3", "t-4"]);
        assert_eq!(names(&a["c"]), ["t-5", "t-6"]);

        // A topic without metadata is skipped.
        let members = [member("a", &["t", "gone"])];
        let a = Assignor::Range.assign(&members, &topics(&[("t", 1)]));
        assert_eq!(names(&a["a"]), ["t-0"]);
    }

    #[test]
    fn static_members_sort_before_dynamic_ones() {
        let mut static_member = member("zzz", &["t"]);
        static_member.group_instance_id = Some("instance".to_owned());
        let members = [member("aaa", &["t"]), static_member];
        let a = Assignor::Range.assign(&members, &topics(&[("t", 3)]));
        assert_eq!(names(&a["zzz"]), ["t-0", "t-1"]);
        assert_eq!(names(&a["aaa"]), ["t-2"]);
    }

    /// RoundRobinAssignor's javadoc example: C0, C1 on t0, t1 with 3 partitions each
    /// get C0: [t0p0, t0p2, t1p1], C1: [t0p1, t1p0, t1p2].
    #[test]
    fn round_robin_matches_the_kafka_javadoc_example() {
        let members = [member("C1", &["t0", "t1"]), member("C0", &["t0", "t1"])];
        let a = Assignor::RoundRobin.assign(&members, &topics(&[("t0", 3), ("t1", 3)]));
        assert_eq!(names(&a["C0"]), ["t0-0", "t0-2", "t1-1"]);
        assert_eq!(names(&a["C1"]), ["t0-1", "t1-0", "t1-2"]);

        // Unequal subscriptions (the second javadoc example).
        let members = [
            member("C0", &["t0"]),
            member("C1", &["t0", "t1"]),
            member("C2", &["t0", "t1", "t2"]),
        ];
        let a = Assignor::RoundRobin.assign(&members, &topics(&[("t0", 1), ("t1", 2), ("t2", 3)]));
        assert_eq!(names(&a["C0"]), ["t0-0"]);
        assert_eq!(names(&a["C1"]), ["t1-0"]);
        assert_eq!(names(&a["C2"]), ["t1-1", "t2-0", "t2-1", "t2-2"]);
    }

    #[test]
    fn consumer_protocol_round_trips() {
        let topics = vec!["orders".to_owned(), "payments".to_owned()];
        let bytes = encode_subscription(&topics).unwrap();
        assert_eq!(&bytes[..2], &[0, 1]);
        assert_eq!(decode_subscription(&bytes).unwrap(), topics);

        let partitions = vec![
            TopicPartition::new("orders", 0),
            TopicPartition::new("orders", 2),
            TopicPartition::new("payments", 1),
        ];
        let bytes = encode_assignment(&partitions).unwrap();
        assert_eq!(decode_assignment(&bytes).unwrap(), partitions);
        assert!(decode_assignment(&[]).unwrap().is_empty());
        assert!(decode_assignment(&[0]).is_err());
    }

    /// A v0 assignment as old Java clients write it: version 0, one topic `t` with
    /// partitions 0 and 1, null user data.
    #[test]
    fn reads_version_zero_assignments() {
        let bytes = [
            0, 0, // version
            0, 0, 0, 1, // one topic
            0, 1, b't', // "t"
            0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, // [0, 1]
            0xff, 0xff, 0xff, 0xff, // null user data
        ];
        assert_eq!(
            decode_assignment(&bytes).unwrap(),
            [TopicPartition::new("t", 0), TopicPartition::new("t", 1)]
        );
    }
}
