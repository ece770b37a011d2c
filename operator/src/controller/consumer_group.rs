//! The `ConsumerGroup` controller: reports a group's state, members and lag per partition,
//! and carries out `spec.resetOffsets` once per generation, like
//! `kafka-consumer-groups --reset-offsets --execute`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use serde_json::json;

use super::cluster::publish;
use super::{Context, Error, condition, now_rfc3339};
use crate::crd::{
    ConsumerGroup, ConsumerGroupStatus, KafkaCluster, OffsetResetTarget, PartitionLag,
    ResetOffsets, TopicLag, set_condition,
};
use crate::kafka::{GroupDescription, KafkaAdmin, KafkaConnector, OffsetSpec, TopicPartition};
use crate::resources::ClusterNames;

pub const CONTROLLER: &str = "consumergroup";

/// Pure: lag of every partition the group has committed, grouped by topic. A committed
/// offset past the log end (the log was truncated) counts as zero lag, as Kafka's tools do.
pub fn lag(
    committed: &BTreeMap<TopicPartition, i64>,
    log_end: &BTreeMap<TopicPartition, i64>,
) -> Vec<TopicLag> {
    let mut topics: BTreeMap<&str, TopicLag> = BTreeMap::new();
    for ((topic, partition), &offset) in committed {
        let Some(&end) = log_end.get(&(topic.clone(), *partition)) else {
            continue;
        };
        let entry = topics.entry(topic).or_insert_with(|| TopicLag {
            topic: topic.clone(),
            ..TopicLag::default()
        });
        let partition_lag = (end - offset).max(0);
        entry.total_lag += partition_lag;
        entry.partitions.push(PartitionLag {
            partition: *partition,
            committed_offset: offset,
            log_end_offset: end,
            lag: partition_lag,
        });
    }
    topics.into_values().collect()
}

/// Pure: the offsets a reset commits. `to: offset` is clamped into each partition's
/// `[log start, log end]`, and a timestamp with no later record resolves to the log end.
pub fn reset_offsets(
    reset: &ResetOffsets,
    earliest: &BTreeMap<TopicPartition, i64>,
    latest: &BTreeMap<TopicPartition, i64>,
    at_timestamp: &BTreeMap<TopicPartition, i64>,
) -> BTreeMap<TopicPartition, i64> {
    latest
        .iter()
        .filter(|((topic, _), _)| reset.topics.contains(topic))
        .map(|(tp, &end)| {
            let start = earliest.get(tp).copied().unwrap_or(0);
            let offset = match reset.to {
                OffsetResetTarget::Earliest => start,
                OffsetResetTarget::Latest => end,
                OffsetResetTarget::Timestamp => match at_timestamp.get(tp) {
                    Some(&o) if o >= 0 => o,
                    _ => end,
                },
                OffsetResetTarget::Offset => reset.offset.unwrap_or(start).clamp(start, end),
            };
            (tp.clone(), offset)
        })
        .collect()
}

/// Kafka accepts an admin offset commit only while nobody consumes.
pub fn reset_refusal(group: Option<&GroupDescription>) -> Option<String> {
    let group = group?;
    (group.members > 0).then(|| {
        format!(
            "group is {} with {} members; offsets can only be reset while the group is empty: stop its consumers",
            group.state, group.members
        )
    })
}

/// Carries out a reset: reads the offsets it needs and commits the result.
pub async fn execute_reset<A: KafkaAdmin>(
    admin: &A,
    group_id: &str,
    reset: &ResetOffsets,
) -> Result<BTreeMap<TopicPartition, i64>, Error> {
    let earliest = admin
        .list_offsets(&reset.topics, OffsetSpec::Earliest)
        .await?;
    let latest = admin
        .list_offsets(&reset.topics, OffsetSpec::Latest)
        .await?;
    let at_timestamp = match (reset.to, reset.timestamp) {
        (OffsetResetTarget::Timestamp, Some(ts)) => {
            admin
                .list_offsets(&reset.topics, OffsetSpec::Timestamp(ts))
                .await?
        }
        _ => BTreeMap::new(),
    };
    let offsets = reset_offsets(reset, &earliest, &latest, &at_timestamp);
    admin.commit_offsets(group_id, &offsets).await?;
    Ok(offsets)
}

/// Reads state, members and lag.
pub async fn observe<A: KafkaAdmin>(
    admin: &A,
    group_id: &str,
) -> Result<(Option<GroupDescription>, Vec<TopicLag>), Error> {
    let group = admin.describe_group(group_id).await?;
    let committed = admin.committed_offsets(group_id).await?;
    let topics: Vec<String> = committed
        .keys()
        .map(|(t, _)| t.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let log_end = if topics.is_empty() {
        BTreeMap::new()
    } else {
        admin.list_offsets(&topics, OffsetSpec::Latest).await?
    };
    Ok((group, lag(&committed, &log_end)))
}

pub async fn reconcile<K: KafkaConnector>(
    cg: Arc<ConsumerGroup>,
    ctx: Arc<Context<K>>,
) -> Result<Action, Error> {
    let started = tokio::time::Instant::now();
    let result = apply(&cg, &ctx).await;
    ctx.metrics.reconciled(CONTROLLER, started.elapsed());
    result
}

pub fn error_policy<K>(_cg: Arc<ConsumerGroup>, error: &Error, ctx: Arc<Context<K>>) -> Action {
    ctx.on_error(CONTROLLER, error)
}

async fn apply<K: KafkaConnector>(cg: &ConsumerGroup, ctx: &Context<K>) -> Result<Action, Error> {
    let namespace = cg.namespace().unwrap_or_default();
    let now = now_rfc3339();
    let generation = cg.metadata.generation;
    let mut status = cg.status.clone().unwrap_or_default();
    status.observed_generation = generation;
    let clusters: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(kc) = clusters.get_opt(&cg.spec.cluster_ref).await? else {
        let message = format!(
            "KafkaCluster '{}' not found in namespace '{namespace}'",
            cg.spec.cluster_ref
        );
        set_condition(
            &mut status.conditions,
            condition("Ready", false, "ClusterNotFound", message, generation, &now),
        );
        patch_status(ctx, cg, &status).await?;
        return Ok(Action::requeue(Duration::from_secs(30)));
    };
    let bootstrap = ctx.bootstrap_for(
        ClusterNames::new(&cg.spec.cluster_ref, &namespace)
            .bootstrap_servers(kc.spec.listeners.plain.port),
    );
    let group_id = &cg.spec.group_id;
    let result = async {
        let admin = ctx.kafka.connect(&bootstrap).await?;
        if let Some(reset) = &cg.spec.reset_offsets
            && status.reset_generation != generation
        {
            let group = admin.describe_group(group_id).await?;
            match reset_refusal(group.as_ref()) {
                Some(message) => {
                    let already = status
                        .conditions
                        .iter()
                        .any(|c| c.type_ == "OffsetsReset" && c.message == message);
                    if !already {
                        publish(
                            ctx,
                            cg,
                            EventType::Warning,
                            "GroupActive",
                            "ResetOffsets",
                            &message,
                        )
                        .await;
                    }
                    set_condition(
                        &mut status.conditions,
                        condition(
                            "OffsetsReset",
                            false,
                            "GroupActive",
                            message.clone(),
                            generation,
                            &now,
                        ),
                    );
                }
                None => {
                    let offsets = execute_reset(&admin, group_id, reset).await?;
                    let message = format!("reset {} partitions to {:?}", offsets.len(), reset.to);
                    set_condition(
                        &mut status.conditions,
                        condition(
                            "OffsetsReset",
                            true,
                            "Reset",
                            message.clone(),
                            generation,
                            &now,
                        ),
                    );
                    status.reset_generation = generation;
                    publish(
                        ctx,
                        cg,
                        EventType::Normal,
                        "OffsetsReset",
                        "ResetOffsets",
                        &message,
                    )
                    .await;
                }
            }
        }
        observe(&admin, group_id).await
    }
    .await;
    match result {
        Ok((group, lag)) => {
            status.state = Some(
                group
                    .as_ref()
                    .map_or_else(|| "Dead".to_string(), |g| g.state.clone()),
            );
            status.members = Some(group.as_ref().map_or(0, |g| g.members));
            let total: i64 = lag.iter().map(|t| t.total_lag).sum();
            status.lag = lag;
            set_condition(
                &mut status.conditions,
                condition(
                    "Ready",
                    true,
                    "Observed",
                    format!("total lag {total}"),
                    generation,
                    &now,
                ),
            );
            patch_status(ctx, cg, &status).await?;
            // Lag moves on its own; look again soon.
            Ok(Action::requeue(Duration::from_secs(30)))
        }
        Err(err) => {
            set_condition(
                &mut status.conditions,
                condition(
                    "Ready",
                    false,
                    "KafkaError",
                    err.to_string(),
                    generation,
                    &now,
                ),
            );
            patch_status(ctx, cg, &status).await?;
            Err(err)
        }
    }
}

async fn patch_status<K>(
    ctx: &Context<K>,
    cg: &ConsumerGroup,
    status: &ConsumerGroupStatus,
) -> Result<(), Error> {
    if cg.status.as_ref() == Some(status) {
        return Ok(());
    }
    let api: Api<ConsumerGroup> =
        Api::namespaced(ctx.client.clone(), &cg.namespace().unwrap_or_default());
    api.patch_status(
        &cg.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::fake::FakeKafka;

    fn tp(t: &str, p: i32) -> TopicPartition {
        (t.to_string(), p)
    }

    fn reset(to: OffsetResetTarget) -> ResetOffsets {
        ResetOffsets {
            to,
            timestamp: None,
            offset: None,
            topics: vec!["orders".into()],
        }
    }

    #[test]
    fn lag_per_partition_and_topic() {
        let committed = BTreeMap::from([
            (tp("orders", 0), 5),
            (tp("orders", 1), 12),
            (tp("gone", 0), 1),
        ]);
        let end = BTreeMap::from([(tp("orders", 0), 10), (tp("orders", 1), 10)]);
        let lag = lag(&committed, &end);
        assert_eq!(lag.len(), 1);
        assert_eq!(lag[0].topic, "orders");
        assert_eq!(lag[0].total_lag, 5);
        assert_eq!(
            lag[0].partitions.iter().map(|p| p.lag).collect::<Vec<_>>(),
            [5, 0]
        );
    }

    #[test]
    fn reset_targets() {
        let earliest = BTreeMap::from([(tp("orders", 0), 3), (tp("other", 0), 0)]);
        let latest = BTreeMap::from([(tp("orders", 0), 20), (tp("other", 0), 9)]);
        let at = BTreeMap::from([(tp("orders", 0), -1)]);
        let go = |r: &ResetOffsets| reset_offsets(r, &earliest, &latest, &at);
        assert_eq!(
            go(&reset(OffsetResetTarget::Earliest)),
            BTreeMap::from([(tp("orders", 0), 3)])
        );
        assert_eq!(
            go(&reset(OffsetResetTarget::Latest)),
            BTreeMap::from([(tp("orders", 0), 20)])
        );
        // No record at or after the timestamp: the log end.
        assert_eq!(
            go(&reset(OffsetResetTarget::Timestamp)),
            BTreeMap::from([(tp("orders", 0), 20)])
        );
        let mut to_offset = reset(OffsetResetTarget::Offset);
        to_offset.offset = Some(1);
        assert_eq!(go(&to_offset), BTreeMap::from([(tp("orders", 0), 3)]));
        to_offset.offset = Some(99);
        assert_eq!(go(&to_offset), BTreeMap::from([(tp("orders", 0), 20)]));
    }

    #[test]
    fn reset_is_refused_while_members_consume() {
        let active = GroupDescription {
            state: "Stable".into(),
            members: 2,
        };
        assert!(
            reset_refusal(Some(&active))
                .unwrap()
                .contains("Stable with 2 members")
        );
        let empty = GroupDescription {
            state: "Empty".into(),
            members: 0,
        };
        assert_eq!(reset_refusal(Some(&empty)), None);
        assert_eq!(reset_refusal(None), None);
    }

    #[tokio::test]
    async fn reset_commits_and_lag_follows() {
        let kafka = FakeKafka::default();
        {
            let mut s = kafka.state.lock().unwrap();
            s.log_offsets.insert(tp("orders", 0), (2, 10));
            s.log_offsets.insert(tp("orders", 1), (0, 4));
            s.groups.insert(
                "billing".into(),
                GroupDescription {
                    state: "Empty".into(),
                    members: 0,
                },
            );
            s.committed.insert(
                "billing".into(),
                BTreeMap::from([(tp("orders", 0), 9), (tp("orders", 1), 4)]),
            );
        }
        let mut r = reset(OffsetResetTarget::Timestamp);
        r.timestamp = Some(5);
        let offsets = execute_reset(&kafka, "billing", &r).await.unwrap();
        // Partition 0 has a record at timestamp 5; partition 1 ends before it.
        assert_eq!(
            offsets,
            BTreeMap::from([(tp("orders", 0), 5), (tp("orders", 1), 4)])
        );
        let (group, lag) = observe(&kafka, "billing").await.unwrap();
        assert_eq!(group.unwrap().state, "Empty");
        assert_eq!(lag[0].total_lag, 5);
        assert_eq!(kafka.calls().len(), 1);
    }
}
