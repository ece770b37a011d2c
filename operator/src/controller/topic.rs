//! The `Topic` controller: makes the brokers' topic match the resource over Kafka's admin
//! APIs (CreateTopics, CreatePartitions, IncrementalAlterConfigs, DeleteTopics).
//!
//! Partitions only grow. A spec asking for fewer partitions than the topic has is refused
//! with a `Ready=False, reason=PartitionShrinkRefused` condition and the topic is left as
//! it is, because Kafka cannot remove a partition without discarding its records. A changed
//! replication factor is refused the same way until partition reassignment exists.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use serde_json::json;

use super::cluster::publish;
use super::{Context, Error, condition, now_rfc3339};
use crate::crd::{KafkaCluster, Topic, TopicSpec, TopicStatus, set_condition};
use crate::kafka::{KafkaAdmin, KafkaConnector, TopicDescription};
use crate::resources::ClusterNames;

pub const CONTROLLER: &str = "topic";
pub const FINALIZER: &str = "strata.dev/delete-topic";

/// One admin call the plan asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicAction {
    Create {
        partitions: i32,
        replication_factor: i16,
        config: BTreeMap<String, String>,
    },
    CreatePartitions {
        total: i32,
    },
    AlterConfig {
        set: BTreeMap<String, String>,
        delete: Vec<String>,
    },
}

/// What to do to make the topic match the spec, and what cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicPlan {
    pub actions: Vec<TopicAction>,
    /// `(reason, message)` for each part of the spec that is refused.
    pub refused: Vec<(&'static str, String)>,
}

/// Pure: compares the spec with what the brokers describe.
pub fn plan(spec: &TopicSpec, observed: Option<&TopicDescription>) -> TopicPlan {
    let mut plan = TopicPlan::default();
    let Some(observed) = observed else {
        plan.actions.push(TopicAction::Create {
            partitions: spec.partitions,
            replication_factor: spec.replication_factor,
            config: spec.config.clone(),
        });
        return plan;
    };
    if spec.partitions > observed.partitions {
        plan.actions.push(TopicAction::CreatePartitions {
            total: spec.partitions,
        });
    } else if spec.partitions < observed.partitions {
        plan.refused.push((
            "PartitionShrinkRefused",
            format!(
                "spec.partitions is {} but the topic has {}; partitions can only grow (Kafka cannot remove a partition without losing its records)",
                spec.partitions, observed.partitions
            ),
        ));
    }
    if spec.replication_factor != observed.replication_factor {
        plan.refused.push((
            "ReplicationFactorChangeRefused",
            format!(
                "spec.replicationFactor is {} but the topic has {}; changing it needs a partition reassignment, which this operator does not do yet",
                spec.replication_factor, observed.replication_factor
            ),
        ));
    }
    let set: BTreeMap<String, String> = spec
        .config
        .iter()
        .filter(|(k, v)| observed.config.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let delete: Vec<String> = observed
        .config
        .keys()
        .filter(|k| !spec.config.contains_key(*k))
        .cloned()
        .collect();
    if !set.is_empty() || !delete.is_empty() {
        plan.actions.push(TopicAction::AlterConfig { set, delete });
    }
    plan
}

/// Runs the plan's actions in order; returns the topic id a create reported.
pub async fn execute<A: KafkaAdmin>(
    admin: &A,
    name: &str,
    plan: &TopicPlan,
) -> Result<Option<String>, Error> {
    let mut topic_id = None;
    for action in &plan.actions {
        match action {
            TopicAction::Create {
                partitions,
                replication_factor,
                config,
            } => {
                topic_id = admin
                    .create_topic(name, *partitions, *replication_factor, config)
                    .await?;
            }
            TopicAction::CreatePartitions { total } => {
                admin.create_partitions(name, *total).await?
            }
            TopicAction::AlterConfig { set, delete } => {
                admin.alter_topic_config(name, set, delete).await?
            }
        }
    }
    Ok(topic_id)
}

/// Pure: status after a plan ran (or could not run part of itself).
pub fn status_after(
    mut status: TopicStatus,
    plan: &TopicPlan,
    observed: Option<&TopicDescription>,
    created_id: Option<String>,
    spec: &TopicSpec,
    generation: Option<i64>,
    now: &str,
) -> TopicStatus {
    status.observed_generation = generation;
    let grown = plan.actions.iter().find_map(|a| match a {
        TopicAction::Create { partitions, .. } => Some(*partitions),
        TopicAction::CreatePartitions { total } => Some(*total),
        TopicAction::AlterConfig { .. } => None,
    });
    status.partitions = grown
        .or(observed.map(|o| o.partitions))
        .or(Some(spec.partitions));
    status.topic_id = created_id
        .or_else(|| observed.and_then(|o| o.topic_id.clone()))
        .or(status.topic_id);
    match plan.refused.first() {
        Some((reason, _)) => {
            let message = plan
                .refused
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            set_condition(
                &mut status.conditions,
                condition("Ready", false, reason, message, generation, now),
            );
        }
        None => {
            let message = format!("topic has {} partitions", status.partitions.unwrap_or(0));
            set_condition(
                &mut status.conditions,
                condition("Ready", true, "Synced", message, generation, now),
            );
        }
    }
    status
}

pub async fn reconcile<K: KafkaConnector>(
    topic: Arc<Topic>,
    ctx: Arc<Context<K>>,
) -> Result<Action, Error> {
    let started = tokio::time::Instant::now();
    let api: Api<Topic> =
        Api::namespaced(ctx.client.clone(), &topic.namespace().unwrap_or_default());
    let result = finalizer(&api, FINALIZER, topic, |event| async {
        match event {
            FinalizerEvent::Apply(topic) => apply(&topic, &ctx).await,
            FinalizerEvent::Cleanup(topic) => cleanup(&topic, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.reconciled(CONTROLLER, started.elapsed());
    result
}

pub fn error_policy<K>(_topic: Arc<Topic>, error: &Error, ctx: Arc<Context<K>>) -> Action {
    ctx.on_error(CONTROLLER, error)
}

/// The bootstrap servers of the referenced cluster, or `None` when it does not exist.
async fn cluster_bootstrap<K: KafkaConnector>(
    ctx: &Context<K>,
    namespace: &str,
    cluster_ref: &str,
) -> Result<Option<String>, Error> {
    let clusters: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), namespace);
    Ok(clusters.get_opt(cluster_ref).await?.map(|kc| {
        let names = ClusterNames::new(cluster_ref, namespace);
        ctx.bootstrap_for(names.bootstrap_servers(kc.spec.listeners.plain.port))
    }))
}

async fn apply<K: KafkaConnector>(topic: &Topic, ctx: &Context<K>) -> Result<Action, Error> {
    let namespace = topic.namespace().unwrap_or_default();
    let now = now_rfc3339();
    let generation = topic.metadata.generation;
    let previous = topic.status.clone().unwrap_or_default();
    let Some(bootstrap) = cluster_bootstrap(ctx, &namespace, &topic.spec.cluster_ref).await? else {
        let mut status = previous;
        let message = format!(
            "KafkaCluster '{}' not found in namespace '{namespace}'",
            topic.spec.cluster_ref
        );
        set_condition(
            &mut status.conditions,
            condition("Ready", false, "ClusterNotFound", message, generation, &now),
        );
        status.observed_generation = generation;
        patch_status(ctx, topic, &status).await?;
        return Ok(Action::requeue(Duration::from_secs(30)));
    };
    let name = topic.kafka_name();
    let outcome = async {
        let admin = ctx.kafka.connect(&bootstrap).await?;
        let observed = admin.describe_topic(&name).await?;
        let plan = plan(&topic.spec, observed.as_ref());
        let created = execute(&admin, &name, &plan).await?;
        Ok::<_, Error>((plan, observed, created))
    }
    .await;
    let (plan, observed, created) = match outcome {
        Ok(outcome) => outcome,
        Err(err) => {
            let mut status = previous;
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
            patch_status(ctx, topic, &status).await?;
            return Err(err);
        }
    };
    for action in &plan.actions {
        let note = match action {
            TopicAction::Create {
                partitions,
                replication_factor,
                ..
            } => {
                format!(
                    "created topic {name} with {partitions} partitions, replication factor {replication_factor}"
                )
            }
            TopicAction::CreatePartitions { total } => {
                format!("grew topic {name} to {total} partitions")
            }
            TopicAction::AlterConfig { set, delete } => {
                format!("changed topic {name} config: set {set:?}, reverted {delete:?}")
            }
        };
        publish(ctx, topic, EventType::Normal, "Synced", "Apply", &note).await;
    }
    for (reason, message) in &plan.refused {
        let already = previous
            .conditions
            .iter()
            .any(|c| c.reason == *reason && c.message == *message);
        if !already {
            publish(ctx, topic, EventType::Warning, reason, "Validate", message).await;
        }
    }
    let status = status_after(
        previous,
        &plan,
        observed.as_ref(),
        created,
        &topic.spec,
        generation,
        &now,
    );
    patch_status(ctx, topic, &status).await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Deletes the Kafka topic. When the cluster itself is gone there is nothing to delete it
/// from, and holding the finalizer would block the namespace forever.
async fn cleanup<K: KafkaConnector>(topic: &Topic, ctx: &Context<K>) -> Result<Action, Error> {
    let namespace = topic.namespace().unwrap_or_default();
    let Some(bootstrap) = cluster_bootstrap(ctx, &namespace, &topic.spec.cluster_ref).await? else {
        return Ok(Action::await_change());
    };
    let admin = ctx.kafka.connect(&bootstrap).await?;
    let name = topic.kafka_name();
    if admin.describe_topic(&name).await?.is_some() {
        admin.delete_topic(&name).await?;
    }
    Ok(Action::await_change())
}

async fn patch_status<K>(
    ctx: &Context<K>,
    topic: &Topic,
    status: &TopicStatus,
) -> Result<(), Error> {
    if topic.status.as_ref() == Some(status) {
        return Ok(());
    }
    let api: Api<Topic> =
        Api::namespaced(ctx.client.clone(), &topic.namespace().unwrap_or_default());
    api.patch_status(
        &topic.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ConditionStatus;
    use crate::kafka::fake::FakeKafka;

    fn spec(partitions: i32, config: &[(&str, &str)]) -> TopicSpec {
        TopicSpec {
            cluster_ref: "events".into(),
            topic_name: None,
            partitions,
            replication_factor: 1,
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn described(partitions: i32, config: &[(&str, &str)]) -> TopicDescription {
        TopicDescription {
            name: "orders".into(),
            topic_id: Some("abc".into()),
            partitions,
            replication_factor: 1,
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn missing_topic_is_created_with_its_config() {
        let p = plan(&spec(3, &[("retention.ms", "1000")]), None);
        assert_eq!(
            p.actions,
            [TopicAction::Create {
                partitions: 3,
                replication_factor: 1,
                config: [("retention.ms".to_string(), "1000".to_string())].into()
            }]
        );
        assert!(p.refused.is_empty());
    }

    #[test]
    fn matching_topic_needs_nothing() {
        assert_eq!(
            plan(&spec(3, &[("a", "1")]), Some(&described(3, &[("a", "1")]))),
            TopicPlan::default()
        );
    }

    #[test]
    fn partitions_grow_and_configs_are_set_and_reverted() {
        let p = plan(
            &spec(6, &[("a", "2"), ("b", "1")]),
            Some(&described(3, &[("a", "1"), ("c", "9")])),
        );
        assert_eq!(
            p.actions,
            [
                TopicAction::CreatePartitions { total: 6 },
                TopicAction::AlterConfig {
                    set: [
                        ("a".to_string(), "2".to_string()),
                        ("b".to_string(), "1".to_string())
                    ]
                    .into(),
                    delete: vec!["c".into()],
                },
            ]
        );
    }

    #[test]
    fn shrinking_is_refused_but_config_still_applies() {
        let mut s = spec(2, &[("a", "2")]);
        s.replication_factor = 3;
        let p = plan(&s, Some(&described(4, &[])));
        assert_eq!(p.actions.len(), 1);
        assert!(matches!(p.actions[0], TopicAction::AlterConfig { .. }));
        let reasons: Vec<_> = p.refused.iter().map(|(r, _)| *r).collect();
        assert_eq!(
            reasons,
            ["PartitionShrinkRefused", "ReplicationFactorChangeRefused"]
        );
        let status = status_after(
            TopicStatus::default(),
            &p,
            Some(&described(4, &[])),
            None,
            &s,
            Some(2),
            "t",
        );
        let ready = &status.conditions[0];
        assert_eq!(ready.status, ConditionStatus::False);
        assert_eq!(ready.reason, "PartitionShrinkRefused");
        assert!(
            ready
                .message
                .contains("spec.partitions is 2 but the topic has 4"),
            "{}",
            ready.message
        );
        assert_eq!(status.partitions, Some(4));
    }

    #[tokio::test]
    async fn executing_plans_against_kafka_converges() {
        let kafka = FakeKafka::default();
        let s = spec(3, &[("retention.ms", "1000")]);
        let first = plan(&s, kafka.describe_topic("orders").await.unwrap().as_ref());
        let id = execute(&kafka, "orders", &first).await.unwrap();
        assert_eq!(id.as_deref(), Some("id-orders"));

        let grown = spec(5, &[]);
        let second = plan(
            &grown,
            kafka.describe_topic("orders").await.unwrap().as_ref(),
        );
        execute(&kafka, "orders", &second).await.unwrap();
        let now = kafka.describe_topic("orders").await.unwrap().unwrap();
        assert_eq!(now.partitions, 5);
        assert!(now.config.is_empty());
        // Converged: a third pass asks for nothing.
        assert_eq!(plan(&grown, Some(&now)), TopicPlan::default());
        assert_eq!(
            kafka.calls(),
            [
                "create_topic orders 3 1",
                "create_partitions orders 5",
                "alter_topic_config orders set={} delete=[\"retention.ms\"]",
            ]
        );
        let status = status_after(
            TopicStatus::default(),
            &second,
            Some(&now),
            None,
            &grown,
            Some(2),
            "t",
        );
        assert_eq!(status.topic_id.as_deref(), Some("id-orders"));
        assert_eq!(status.conditions[0].reason, "Synced");
    }
}
