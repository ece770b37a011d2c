//! Consumer groups against a live broker: two [`GroupConsumer`]s share a topic's
//! partitions, commit, leave; the admin side sees members, offsets and lag, resets
//! offsets only while the group is empty, and deletes the group.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use strata_client::{
    Admin, GroupConsumer, GroupConsumerConfig, NewTopic, OffsetResetTarget, Producer,
    ProducerConfig, ProducerRecord, TopicPartition,
};

const PARTITIONS: i32 = 4;
const RECORDS: usize = 200;

fn member_config(group: &str, topic: &str) -> GroupConsumerConfig {
    let mut config = GroupConsumerConfig::new(group, vec![topic.to_owned()]);
    config.heartbeat_interval = Duration::from_millis(500);
    config.consumer.max_wait = Duration::from_millis(100);
    config
}

/// What a member task reports after each poll.
struct Polled {
    member: usize,
    generation: i32,
    assignment: Vec<TopicPartition>,
    values: Vec<String>,
}

/// Group members each polling (and committing after every poll) in their own task.
#[derive(Default)]
struct Members {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<GroupConsumer>>,
    events: Option<(
        mpsc::UnboundedSender<Polled>,
        mpsc::UnboundedReceiver<Polled>,
    )>,
    /// Latest generation and assignment per member.
    state: Vec<(i32, Vec<TopicPartition>)>,
    /// How often each value was read.
    seen: BTreeMap<String, usize>,
}

impl Members {
    async fn start(&mut self, client: &strata_client::ClientConfig, group: &str, topic: &str) {
        let mut consumer = GroupConsumer::connect(client.clone(), member_config(group, topic))
            .await
            .unwrap();
        let member = self.tasks.len();
        let tx = self
            .events
            .get_or_insert_with(mpsc::unbounded_channel)
            .0
            .clone();
        let stop = Arc::clone(&self.stop);
        self.state.push((-1, Vec::new()));
        self.tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let records = consumer.poll().await.unwrap();
                // A commit refused mid-rebalance is retried by the rejoin itself.
                consumer.commit().await.ok();
                let values = records
                    .into_iter()
                    .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
                    .collect();
                let polled = Polled {
                    member,
                    generation: consumer.generation(),
                    assignment: consumer.assignment(),
                    values,
                };
                if tx.send(polled).is_err() {
                    break;
                }
            }
            consumer
        }));
    }

    /// Takes in reports until `done` holds; fails after a minute.
    async fn until(&mut self, what: &str, done: impl Fn(&Members) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !done(self) {
            let rx = &mut self.events.as_mut().expect("a member was started").1;
            let polled = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("{what}: not after a minute"))
                .expect("member tasks run");
            self.state[polled.member] = (polled.generation, polled.assignment);
            for value in polled.values {
                *self.seen.entry(value).or_default() += 1;
            }
        }
    }

    /// Whether every member is in the same generation (newer than `after`) with a
    /// non-empty share of `all`, the shares disjoint and together `all`.
    fn settled(&self, all: &BTreeSet<TopicPartition>, after: Option<i32>) -> bool {
        let generation = self.state[0].0;
        let mut union = BTreeSet::new();
        let mut total = 0;
        for (g, assignment) in &self.state {
            if *g != generation || *g < 0 || assignment.is_empty() {
                return false;
            }
            total += assignment.len();
            union.extend(assignment.iter().cloned());
        }
        after.is_none_or(|after| generation > after) && total == all.len() && &union == all
    }

    /// Stops the tasks, then commits and leaves with every member.
    async fn close_all(&mut self) {
        self.stop.store(true, Ordering::Release);
        let rx = &mut self.events.as_mut().expect("a member was started").1;
        let tasks = std::mem::take(&mut self.tasks);
        for task in tasks {
            // Keep draining so no task blocks; the channel is unbounded anyway.
            while rx.try_recv().is_ok() {}
            task.await.unwrap().close().await.unwrap();
        }
    }
}

#[tokio::test]
async fn two_members_share_partitions_then_offsets_are_reset_and_deleted() {
    let Some(client) = common::bootstrap() else {
        return;
    };
    let topic = common::unique_topic("group-members");
    let group = common::unique_topic("group");
    let mut admin = Admin::connect(client.clone()).await.unwrap();
    admin
        .create_topic(
            &NewTopic {
                name: topic.clone(),
                partitions: PARTITIONS,
                replication_factor: 1,
                configs: vec![],
            },
            false,
        )
        .await
        .unwrap();
    let all: BTreeSet<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(&topic, p))
        .collect();

    let mut producer = Producer::connect(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    for i in 0..RECORDS {
        let partition = i32::try_from(i).unwrap() % PARTITIONS;
        producer
            .send(
                ProducerRecord::new(topic.clone(), format!("value-{i}")).with_partition(partition),
            )
            .await
            .unwrap();
    }
    producer.flush().await.unwrap();

    // Each member polls in its own task, as an application would: a member waiting
    // in JoinGroup must not keep the other from noticing the rebalance.
    let mut members = Members::default();
    members.start(&client, &group, &topic).await;
    members.start(&client, &group, &topic).await;
    members
        .until("members share the topic and read every record", |m| {
            m.settled(&all, None) && m.seen.len() == RECORDS
        })
        .await;

    // The admin view while both are members. The members can see their shares settle a
    // moment before the coordinator has dropped a member id an earlier join left behind,
    // so the view is waited for, not looked at once.
    let offsets =
        common::wait::eventually_async("the group to settle on two members", async || {
            let offsets = admin
                .describe_group_offsets(&group)
                .await
                .map_err(|e| e.to_string())?;
            let d = &offsets.description;
            if d.state == "Stable" && d.members.len() == 2 {
                Ok(offsets)
            } else {
                Err(format!("state {}, {} members", d.state, d.members.len()))
            }
        })
        .await;
    assert_eq!(offsets.description.state, "Stable");
    assert_eq!(offsets.description.protocol, "range");
    assert_eq!(offsets.description.members.len(), 2);
    let owners: BTreeSet<&str> = offsets
        .partitions
        .iter()
        .map(|row| {
            row.member_id
                .as_deref()
                .expect("every partition has an owner")
        })
        .collect();
    assert_eq!(owners.len(), 2);
    let listed = admin.list_groups().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|g| g.group_id == group && g.protocol_type == "consumer"),
        "{listed:?}"
    );
    let err = admin
        .plan_offset_reset(
            &group,
            &all.iter().cloned().collect::<Vec<_>>(),
            OffsetResetTarget::Earliest,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current state is Stable."
        )
    );

    members.close_all().await;

    // Empty now, everything committed.
    let offsets = admin.describe_group_offsets(&group).await.unwrap();
    assert_eq!(offsets.description.state, "Empty");
    assert!(offsets.description.members.is_empty());
    assert_eq!(offsets.partitions.len(), all.len());
    let mut total = 0;
    for row in &offsets.partitions {
        assert_eq!(row.lag, Some(0), "{row:?}");
        assert_eq!(row.committed_offset, row.log_end_offset);
        total += row.log_end_offset.unwrap();
    }
    assert_eq!(total, i64::try_from(RECORDS).unwrap());

    // Reset: plan, then commit as an administrator.
    let partitions: Vec<TopicPartition> = all.iter().cloned().collect();
    let plan = admin
        .plan_offset_reset(&group, &partitions, OffsetResetTarget::Earliest)
        .await
        .unwrap();
    assert!(plan.values().all(|&offset| offset == 0), "{plan:?}");
    // Planning commits nothing.
    assert!(
        admin
            .describe_group_offsets(&group)
            .await
            .unwrap()
            .partitions
            .iter()
            .all(|row| row.lag == Some(0))
    );
    admin.alter_group_offsets(&group, &plan).await.unwrap();
    let committed = admin.committed_offsets(&group).await.unwrap();
    assert!(committed.values().all(|&o| o == 0), "{committed:?}");

    let plan = admin
        .plan_offset_reset(&group, &partitions, OffsetResetTarget::ShiftBy(7))
        .await
        .unwrap();
    assert!(plan.values().all(|&offset| offset == 7), "{plan:?}");
    let plan = admin
        .plan_offset_reset(&group, &partitions, OffsetResetTarget::Offset(1_000_000))
        .await
        .unwrap();
    let per_partition = i64::try_from(RECORDS).unwrap() / i64::from(PARTITIONS);
    assert!(
        plan.values().all(|&offset| offset == per_partition),
        "{plan:?}"
    );
    // A time before any record: the first record; after every record: the log end.
    let plan = admin
        .plan_offset_reset(&group, &partitions, OffsetResetTarget::Timestamp(0))
        .await
        .unwrap();
    assert!(plan.values().all(|&offset| offset == 0), "{plan:?}");
    let plan = admin
        .plan_offset_reset(
            &group,
            &partitions,
            OffsetResetTarget::Timestamp(i64::MAX / 2),
        )
        .await
        .unwrap();
    assert!(
        plan.values().all(|&offset| offset == per_partition),
        "{plan:?}"
    );

    // A new member starts from the reset offsets: everything again.
    admin
        .alter_group_offsets(&group, &plan.keys().map(|tp| (tp.clone(), 0)).collect())
        .await
        .unwrap();
    let mut c = GroupConsumer::connect(client.clone(), member_config(&group, &topic))
        .await
        .unwrap();
    let mut again = 0;
    for _ in 0..200 {
        again += c.poll().await.unwrap().len();
        if again >= RECORDS {
            break;
        }
    }
    assert_eq!(again, RECORDS);
    c.close().await.unwrap();

    let outcomes = admin
        .delete_groups(std::slice::from_ref(&group))
        .await
        .unwrap();
    assert!(outcomes[0].1.is_ok(), "{outcomes:?}");
    let gone = admin.describe_group(&group).await.unwrap();
    assert_eq!(gone.state, "Dead");
    assert!(
        !admin
            .list_groups()
            .await
            .unwrap()
            .iter()
            .any(|g| g.group_id == group)
    );
}

async fn produce_values(
    client: &strata_client::ClientConfig,
    topic: &str,
    range: std::ops::Range<usize>,
) {
    let mut producer = Producer::connect(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    for i in range {
        let partition = i32::try_from(i).unwrap() % PARTITIONS;
        producer
            .send(
                ProducerRecord::new(topic.to_owned(), format!("value-{i}"))
                    .with_partition(partition),
            )
            .await
            .unwrap();
    }
    producer.flush().await.unwrap();
}

/// A member that joins later makes the first one rebalance (it learns from its
/// heartbeat), commit what it read, and give up half of its partitions; with commits
/// after every poll no record is read twice.
#[tokio::test]
async fn a_late_member_triggers_a_rebalance() {
    let Some(client) = common::bootstrap() else {
        return;
    };
    let topic = common::unique_topic("group-rebalance");
    let group = common::unique_topic("group");
    let mut admin = Admin::connect(client.clone()).await.unwrap();
    admin
        .create_topic(
            &NewTopic {
                name: topic.clone(),
                partitions: PARTITIONS,
                replication_factor: 1,
                configs: vec![],
            },
            false,
        )
        .await
        .unwrap();
    produce_values(&client, &topic, 0..RECORDS / 2).await;

    let all: BTreeSet<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(&topic, p))
        .collect();
    let mut members = Members::default();
    members.start(&client, &group, &topic).await;
    members
        .until("the first member reads everything", |m| {
            m.seen.len() == RECORDS / 2 && m.state[0].1.len() == all.len()
        })
        .await;
    let first_generation = members.state[0].0;

    members.start(&client, &group, &topic).await;
    members
        .until("the first member gives up partitions", |m| {
            m.settled(&all, Some(first_generation))
        })
        .await;

    produce_values(&client, &topic, RECORDS / 2..RECORDS).await;
    members
        .until("every record is read", |m| m.seen.len() == RECORDS)
        .await;
    let twice: Vec<_> = members.seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "read more than once: {twice:?}");
    members.close_all().await;
    let offsets = admin.describe_group_offsets(&group).await.unwrap();
    assert!(offsets.partitions.iter().all(|row| row.lag == Some(0)));
}
