//! Admin APIs (CreateTopics, DeleteTopics, Metadata, DescribeConfigs, CreatePartitions,
//! IncrementalAlterConfigs, DescribeCluster, AlterPartitionReassignments,
//! ListPartitionReassignments, ElectLeaders) against a live broker.

mod common;

use strata_client::{Admin, AlterConfig, NewTopic, ResponseError, TopicDescription};

/// Describes `name` until `ready` holds: brokers apply metadata changes to their
/// caches asynchronously, so a change may not show in the very next request.
async fn describe_until(
    admin: &mut Admin,
    name: &str,
    ready: impl Fn(&TopicDescription) -> bool,
) -> TopicDescription {
    let names = [name.to_owned()];
    let what = format!("{name} to reach the expected state");
    common::wait::eventually_async(&what, async || {
        let mut described = admin
            .describe_topics(Some(&names))
            .await
            .map_err(|e| e.to_string())?;
        match described.pop() {
            Some(description) if ready(&description) => Ok(description),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

fn config<'a>(
    description: &'a TopicDescription,
    name: &str,
) -> Option<&'a strata_client::ConfigEntry> {
    description.configs.iter().find(|c| c.name == name)
}

#[tokio::test]
async fn topic_lifecycle() {
    let Some(client) = common::bootstrap() else {
        return;
    };
    let mut admin = Admin::connect(client).await.unwrap();
    let name = common::unique_topic("admin");

    let cluster = admin.describe_cluster().await.unwrap();
    assert!(!cluster.brokers.is_empty());

    let topic = NewTopic {
        name: name.clone(),
        partitions: 2,
        replication_factor: 1,
        configs: vec![("retention.ms".to_owned(), "86400000".to_owned())],
    };
    admin.create_topic(&topic, true).await.unwrap();
    assert!(
        !admin.list_topics(true).await.unwrap().contains(&name),
        "validate-only creates nothing"
    );

    admin.create_topic(&topic, false).await.unwrap();
    let err = admin.create_topic(&topic, false).await.unwrap_err();
    assert_eq!(
        err.kafka_code(),
        Some(ResponseError::TopicAlreadyExists),
        "{err}"
    );

    let described = describe_until(&mut admin, &name, |d| d.metadata.partitions.len() == 2).await;
    assert!(
        described
            .metadata
            .partitions
            .iter()
            .all(|p| p.replicas.len() == 1)
    );
    let retention = config(&described, "retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("86400000"));
    assert!(!retention.is_default);
    assert!(admin.list_topics(false).await.unwrap().contains(&name));

    admin.create_partitions(&name, 3).await.unwrap();
    describe_until(&mut admin, &name, |d| d.metadata.partitions.len() == 3).await;
    let err = admin.create_partitions(&name, 1).await.unwrap_err();
    assert_eq!(
        err.kafka_code(),
        Some(ResponseError::InvalidPartitions),
        "{err}"
    );

    let changes = [
        AlterConfig::Set("cleanup.policy".to_owned(), "compact".to_owned()),
        AlterConfig::Delete("retention.ms".to_owned()),
    ];
    admin.alter_topic_configs(&name, &changes).await.unwrap();
    describe_until(&mut admin, &name, |d| {
        let compact =
            config(d, "cleanup.policy").and_then(|c| c.value.as_deref()) == Some("compact");
        let retention_reset =
            config(d, "retention.ms").is_some_and(|c| c.value.as_deref() != Some("86400000"));
        compact && retention_reset
    })
    .await;

    admin
        .delete_topics(std::slice::from_ref(&name))
        .await
        .unwrap();
    let err = admin
        .delete_topics(std::slice::from_ref(&name))
        .await
        .unwrap_err();
    assert_eq!(
        err.kafka_code(),
        Some(ResponseError::UnknownTopicOrPartition),
        "{err}"
    );
}

#[tokio::test]
async fn describing_a_missing_topic_names_it() {
    let Some(client) = common::bootstrap() else {
        return;
    };
    let mut admin = Admin::connect(client).await.unwrap();
    let name = common::unique_topic("missing");
    let err = admin
        .describe_topics(Some(std::slice::from_ref(&name)))
        .await
        .unwrap_err();
    assert_eq!(
        err.kafka_code(),
        Some(ResponseError::UnknownTopicOrPartition)
    );
    assert!(err.to_string().contains(&name), "{err}");
}

#[tokio::test]
async fn reassignment_election_and_broker_config_calls() {
    let Some(client) = common::bootstrap() else {
        return;
    };
    let mut admin = Admin::connect(client).await.unwrap();
    let name = common::unique_topic("replicas");
    admin
        .create_topic(
            &NewTopic {
                name: name.clone(),
                partitions: 1,
                replication_factor: 1,
                configs: vec![],
            },
            false,
        )
        .await
        .unwrap();
    let described = describe_until(&mut admin, &name, |d| {
        d.metadata.partitions.first().is_some_and(|p| p.leader >= 0)
    })
    .await;
    let broker = described.metadata.partitions[0].leader;
    let tp = (name.clone(), 0);

    // A reassignment to the replicas it already has completes at once.
    let target = std::collections::BTreeMap::from([(tp.clone(), Some(vec![broker]))]);
    admin.alter_partition_reassignments(&target).await.unwrap();
    common::wait::eventually_async("the reassignment to finish", async || {
        match admin.list_partition_reassignments().await {
            Ok(ongoing) if !ongoing.contains_key(&tp) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // A broker that does not exist is refused with Kafka's error.
    let bad = std::collections::BTreeMap::from([(tp.clone(), Some(vec![broker, 9999]))]);
    let err = admin.alter_partition_reassignments(&bad).await.unwrap_err();
    assert_eq!(
        err.kafka_code(),
        Some(ResponseError::InvalidReplicaAssignment),
        "{err}"
    );
    // Already led by its preferred replica: not an error.
    admin
        .elect_preferred_leaders(std::slice::from_ref(&tp))
        .await
        .unwrap();

    let min_isr = admin
        .topics_config_value(std::slice::from_ref(&name), "min.insync.replicas")
        .await
        .unwrap();
    assert_eq!(min_isr.get(&name).map(String::as_str), Some("1"));

    // The brokers' cluster-wide default, as kafka-configs --entity-default sets it.
    let rate = "leader.replication.throttled.rate".to_owned();
    admin
        .alter_broker_configs(None, &[AlterConfig::Set(rate.clone(), "1048576".into())])
        .await
        .unwrap();
    admin
        .alter_broker_configs(None, &[AlterConfig::Delete(rate)])
        .await
        .unwrap();
    admin
        .delete_topics(std::slice::from_ref(&name))
        .await
        .unwrap();
}
