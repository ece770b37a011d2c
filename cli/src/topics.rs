//! `strata topics`: what `kafka-topics.sh` does, with the same output formats.

use std::fmt::Write as _;

use anyhow::bail;
use clap::Subcommand;
use strata_client::{
    Admin, AlterConfig, ClientConfig, NewTopic, TopicDescription, topic_id_string,
};

use crate::output::parse_key_value;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a topic.
    Create {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// Partition count (default: the broker's num.partitions).
        #[arg(long)]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(long)]
        replication_factor: Option<i16>,
        /// Topic config override, key=value; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Succeed without doing anything if the topic exists.
        #[arg(long)]
        if_not_exists: bool,
        /// Only ask the controller whether the topic could be created.
        #[arg(long)]
        validate_only: bool,
    },
    /// List topic names.
    List {
        /// Leave out internal topics such as __consumer_offsets.
        #[arg(long)]
        exclude_internal: bool,
    },
    /// Describe topics: partitions, leaders, replicas, ISR and non-default configs.
    Describe {
        /// Topic to describe (default: all).
        #[arg(long)]
        topic: Option<String>,
    },
    /// Delete a topic.
    Delete {
        /// Topic name.
        #[arg(long)]
        topic: String,
    },
    /// Add partitions and change topic configs.
    Alter {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// New total partition count (can only grow).
        #[arg(long)]
        partitions: Option<i32>,
        /// Config to set, key=value; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Config override to remove; repeatable.
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
    },
}

pub async fn run(client: ClientConfig, command: Command) -> anyhow::Result<()> {
    let mut admin = Admin::connect(client).await?;
    match command {
        Command::Create {
            topic,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
            validate_only,
        } => {
            let new_topic = NewTopic {
                name: topic.clone(),
                partitions: partitions.unwrap_or(-1),
                replication_factor: replication_factor.unwrap_or(-1),
                configs: configs
                    .iter()
                    .map(|c| parse_key_value(c))
                    .collect::<anyhow::Result<_>>()?,
            };
            match admin.create_topic(&new_topic, validate_only).await {
                Ok(()) if validate_only => println!("Topic {topic} can be created."),
                Ok(()) => println!("Created topic {topic}."),
                Err(err)
                    if if_not_exists
                        && err.kafka_code()
                            == Some(strata_client::ResponseError::TopicAlreadyExists) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Command::List { exclude_internal } => {
            for name in admin.list_topics(!exclude_internal).await? {
                println!("{name}");
            }
        }
        Command::Describe { topic } => {
            let names = topic.map(|t| vec![t]);
            let descriptions = admin.describe_topics(names.as_deref()).await?;
            let mut out = String::new();
            for description in &descriptions {
                format_description(&mut out, description);
            }
            print!("{out}");
        }
        Command::Delete { topic } => {
            admin.delete_topics(std::slice::from_ref(&topic)).await?;
        }
        Command::Alter {
            topic,
            partitions,
            configs,
            delete_configs,
        } => {
            if partitions.is_none() && configs.is_empty() && delete_configs.is_empty() {
                bail!("nothing to alter: give --partitions, --config or --delete-config");
            }
            if let Some(partitions) = partitions {
                admin.create_partitions(&topic, partitions).await?;
            }
            let mut changes = Vec::new();
            for config in &configs {
                let (key, value) = parse_key_value(config)?;
                changes.push(AlterConfig::Set(key, value));
            }
            changes.extend(delete_configs.into_iter().map(AlterConfig::Delete));
            if !changes.is_empty() {
                admin.alter_topic_configs(&topic, &changes).await?;
                println!("Completed updating config for topic {topic}.");
            }
        }
    }
    Ok(())
}

/// kafka-topics --describe's format: a topic line, then one tab-indented line per
/// partition.
fn format_description(out: &mut String, description: &TopicDescription) {
    let topic = &description.metadata;
    let replication_factor = topic.partitions.first().map_or(0, |p| p.replicas.len());
    let configs: Vec<String> = description
        .configs
        .iter()
        .filter(|c| !c.is_default)
        .filter_map(|c| c.value.as_ref().map(|v| format!("{}={v}", c.name)))
        .collect();
    let _ = writeln!(
        out,
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
        topic.name,
        topic_id_string(&topic.topic_id),
        topic.partitions.len(),
        replication_factor,
        configs.join(",")
    );
    for p in &topic.partitions {
        let leader = if p.leader < 0 {
            "none".to_owned()
        } else {
            p.leader.to_string()
        };
        let _ = write!(
            out,
            "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
            topic.name,
            p.partition,
            leader,
            join_ids(&p.replicas),
            join_ids(&p.isr)
        );
        if !p.offline_replicas.is_empty() {
            let _ = write!(out, "\tOffline: {}", join_ids(&p.offline_replicas));
        }
        out.push('\n');
    }
}

fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_client::{ConfigEntry, PartitionMetadata, TopicMetadata};

    fn partition(partition: i32, leader: i32, replicas: &[i32], isr: &[i32]) -> PartitionMetadata {
        PartitionMetadata {
            partition,
            leader,
            leader_epoch: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            offline_replicas: vec![],
            error: None,
        }
    }

    #[test]
    fn describe_output_matches_kafka_topics() {
        let description = TopicDescription {
            metadata: TopicMetadata {
                name: "myTopic".to_owned(),
                topic_id: strata_client::Uuid::from_bytes([
                    0x43, 0xda, 0x28, 0x83, 0x0c, 0x64, 0x47, 0x3e, 0xbc, 0xaf, 0xa4, 0xfe, 0xf1,
                    0xca, 0x05, 0x78,
                ]),
                is_internal: false,
                partitions: vec![
                    partition(0, 1, &[1, 2], &[1, 2]),
                    partition(1, -1, &[2, 1], &[]),
                ],
            },
            configs: vec![
                ConfigEntry {
                    name: "cleanup.policy".to_owned(),
                    value: Some("compact".to_owned()),
                    is_default: false,
                    is_sensitive: false,
                    read_only: false,
                },
                ConfigEntry {
                    name: "retention.ms".to_owned(),
                    value: Some("604800000".to_owned()),
                    is_default: true,
                    is_sensitive: false,
                    read_only: false,
                },
            ],
        };
        let mut out = String::new();
        format_description(&mut out, &description);
        assert_eq!(
            out,
            "Topic: myTopic\tTopicId: Q9oogwxkRz68r6T-8coFeA\tPartitionCount: 2\tReplicationFactor: 2\tConfigs: cleanup.policy=compact\n\
             \tTopic: myTopic\tPartition: 0\tLeader: 1\tReplicas: 1,2\tIsr: 1,2\n\
             \tTopic: myTopic\tPartition: 1\tLeader: none\tReplicas: 2,1\tIsr: \n"
        );
    }
}
