//! `strata groups`: what `kafka-consumer-groups.sh` does, with the same output layout.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{ArgGroup, Args, Subcommand};
use strata_client::group_admin::{STATE_DEAD, STATE_EMPTY};
use strata_client::{
    Admin, ClientConfig, GroupDescription, GroupOffsets, OffsetResetTarget, TopicPartition,
};

use crate::time::{parse_datetime_ms, parse_duration_ms};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List consumer groups.
    List {
        /// Also print each group's state.
        #[arg(long)]
        state: bool,
    },
    /// Describe a group: offsets and lag per partition (default), its state, or its
    /// members.
    Describe {
        /// Group id.
        #[arg(long)]
        group: String,
        /// Print the coordinator, assignment strategy, state and member count.
        #[arg(long, conflicts_with = "members")]
        state: bool,
        /// Print the members and how many partitions each owns.
        #[arg(long)]
        members: bool,
    },
    /// Delete groups that have no active members.
    Delete {
        /// Group id; repeatable.
        #[arg(long = "group", required = true)]
        groups: Vec<String>,
    },
    /// Move a group's committed offsets (only while it has no active members).
    ResetOffsets(ResetArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("scope").required(true).args(["topics", "all_topics"])))]
#[command(group(ArgGroup::new("target").required(true).args([
    "to_earliest", "to_latest", "to_offset", "to_datetime", "by_duration", "shift_by",
])))]
pub struct ResetArgs {
    /// Group id.
    #[arg(long)]
    group: String,
    /// Topic, optionally with partitions: `orders` or `orders:0,2`; repeatable.
    #[arg(long = "topic", value_name = "TOPIC[:P,P]")]
    topics: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long)]
    all_topics: bool,
    /// Reset to the log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// Reset to the log end offset.
    #[arg(long)]
    to_latest: bool,
    /// Reset to this offset (clamped to the log's range).
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// Reset to the first offset at or after this time, e.g. 2024-05-01T12:00:00.000
    /// (UTC unless a zone such as Z or +02:00 is given).
    #[arg(long, value_name = "DATETIME")]
    to_datetime: Option<String>,
    /// Reset to the first offset at or after this long ago, an ISO-8601 duration such
    /// as PT1H30M or P1DT12H.
    #[arg(long, value_name = "DURATION")]
    by_duration: Option<String>,
    /// Move the committed offsets by this many records (negative: back).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// Only print the new offsets (the default).
    #[arg(long, conflicts_with = "execute")]
    dry_run: bool,
    /// Commit the new offsets.
    #[arg(long)]
    execute: bool,
}

pub async fn run(client: ClientConfig, command: Command) -> anyhow::Result<()> {
    let mut admin = Admin::connect(client).await?;
    match command {
        Command::List { state } => {
            let groups = admin.list_groups().await?;
            if state {
                let rows: Vec<Vec<String>> = groups
                    .iter()
                    .map(|g| {
                        vec![
                            g.group_id.clone(),
                            g.state.clone().unwrap_or_else(|| "-".to_owned()),
                        ]
                    })
                    .collect();
                print!("{}", table(&["GROUP", "STATE"], &rows));
            } else {
                for group in groups {
                    println!("{}", group.group_id);
                }
            }
        }
        Command::Describe {
            group,
            state,
            members,
        } => {
            let offsets = admin.describe_group_offsets(&group).await?;
            let description = &offsets.description;
            if description.state == STATE_DEAD {
                bail!("Consumer group '{group}' does not exist.");
            }
            if state {
                let coordinator = admin
                    .cluster()
                    .broker_addr(description.coordinator)
                    .unwrap_or_else(|| "-".to_owned());
                print!("{}", describe_state(description, &coordinator));
            } else if members {
                print!("{}", describe_members(description));
            } else {
                print!("{}", describe_offsets(&offsets));
            }
        }
        Command::Delete { groups } => {
            let outcomes = admin.delete_groups(&groups).await?;
            let failed: Vec<String> = outcomes
                .iter()
                .filter_map(|(group, outcome)| {
                    outcome.as_ref().err().map(|err| {
                        let reason = err
                            .kafka_code()
                            .map_or_else(|| err.to_string(), strata_client::kafka_error_name);
                        format!("* Group '{group}' could not be deleted due to: {reason}")
                    })
                })
                .collect();
            if !failed.is_empty() {
                bail!(
                    "Deletion of some consumer groups failed:\n{}",
                    failed.join("\n")
                );
            }
            let names: Vec<String> = groups.iter().map(|g| format!("'{g}'")).collect();
            println!(
                "Deletion of requested consumer groups ({}) was successful.",
                names.join(", ")
            );
        }
        Command::ResetOffsets(args) => reset_offsets(&mut admin, args).await?,
    }
    Ok(())
}

async fn reset_offsets(admin: &mut Admin, args: ResetArgs) -> anyhow::Result<()> {
    let target = reset_target(&args, now_ms())?;
    let partitions = if args.all_topics {
        let committed = admin.committed_offsets(&args.group).await?;
        committed.into_keys().collect::<Vec<_>>()
    } else {
        let mut partitions = BTreeSet::new();
        for spec in &args.topics {
            let (topic, wanted) = parse_topic_partitions(spec)?;
            let metadata = admin
                .cluster()
                .wait_for_topic(&topic, WAIT_FOR_TOPIC)
                .await?;
            let existing: Vec<i32> = metadata.partitions.iter().map(|p| p.partition).collect();
            match wanted {
                None => partitions.extend(existing.iter().map(|&p| TopicPartition::new(&topic, p))),
                Some(wanted) => {
                    for p in wanted {
                        if !existing.contains(&p) {
                            bail!("partition {p} of topic {topic} does not exist");
                        }
                        partitions.insert(TopicPartition::new(&topic, p));
                    }
                }
            }
        }
        partitions.into_iter().collect()
    };
    let plan = admin
        .plan_offset_reset(&args.group, &partitions, target)
        .await?;
    if args.execute {
        admin.alter_group_offsets(&args.group, &plan).await?;
    } else if !args.dry_run {
        eprintln!("WARN: No action will be performed as the --execute option is missing.");
    }
    print!("{}", reset_table(&args.group, &plan));
    Ok(())
}

/// How long `reset-offsets --topic` waits for a topic to show up in the metadata.
const WAIT_FOR_TOPIC: std::time::Duration = std::time::Duration::from_secs(5);

fn reset_target(args: &ResetArgs, now_ms: i64) -> anyhow::Result<OffsetResetTarget> {
    Ok(if args.to_earliest {
        OffsetResetTarget::Earliest
    } else if args.to_latest {
        OffsetResetTarget::Latest
    } else if let Some(offset) = args.to_offset {
        OffsetResetTarget::Offset(offset)
    } else if let Some(datetime) = &args.to_datetime {
        OffsetResetTarget::Timestamp(parse_datetime_ms(datetime).context("--to-datetime")?)
    } else if let Some(duration) = &args.by_duration {
        OffsetResetTarget::Timestamp(now_ms - parse_duration_ms(duration).context("--by-duration")?)
    } else if let Some(shift) = args.shift_by {
        OffsetResetTarget::ShiftBy(shift)
    } else {
        bail!(
            "one of --to-earliest, --to-latest, --to-offset, --to-datetime, --by-duration, --shift-by is required"
        );
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `orders` (all partitions) or `orders:0,2`.
fn parse_topic_partitions(spec: &str) -> anyhow::Result<(String, Option<Vec<i32>>)> {
    let Some((topic, partitions)) = spec.split_once(':') else {
        return Ok((spec.to_owned(), None));
    };
    if topic.is_empty() {
        bail!("invalid --topic '{spec}': empty topic name");
    }
    let partitions = partitions
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<i32>()
                .ok()
                .filter(|p| *p >= 0)
                .with_context(|| format!("invalid partition '{p}' in --topic '{spec}'"))
        })
        .collect::<anyhow::Result<Vec<i32>>>()?;
    Ok((topic.to_owned(), Some(partitions)))
}

/// The default `--describe` view: a line about the group's state when Kafka prints
/// one, then a row per partition.
fn describe_offsets(offsets: &GroupOffsets) -> String {
    let description = &offsets.description;
    let group = &description.group_id;
    let mut out = String::new();
    if description.state == STATE_EMPTY {
        let _ = writeln!(out, "\nConsumer group '{group}' has no active members.");
    } else if description.state.ends_with("Rebalance") {
        let _ = writeln!(out, "\nWarning: Consumer group '{group}' is rebalancing.");
    }
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let mut rows: Vec<Vec<String>> = offsets
        .partitions
        .iter()
        .map(|row| {
            vec![
                group.clone(),
                row.partition.topic.clone(),
                row.partition.partition.to_string(),
                or_dash(row.committed_offset.map(|o| o.to_string())),
                or_dash(row.log_end_offset.map(|o| o.to_string())),
                or_dash(row.lag.map(|o| o.to_string())),
                or_dash(row.member_id.clone()),
                or_dash(row.host.clone()),
                or_dash(row.client_id.clone()),
            ]
        })
        .collect();
    // Members that own nothing still get a line, as in Kafka.
    for member in description
        .members
        .iter()
        .filter(|m| m.assignment.is_empty())
    {
        rows.push(vec![
            group.clone(),
            "-".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
            member.member_id.clone(),
            member.host.clone(),
            member.client_id.clone(),
        ]);
    }
    out.push('\n');
    out.push_str(&table(
        &[
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ],
        &rows,
    ));
    out
}

fn describe_state(description: &GroupDescription, coordinator: &str) -> String {
    let row = vec![
        description.group_id.clone(),
        format!("{coordinator} ({})", description.coordinator),
        if description.protocol.is_empty() {
            "-".to_owned()
        } else {
            description.protocol.clone()
        },
        description.state.clone(),
        description.members.len().to_string(),
    ];
    format!(
        "\n{}",
        table(
            &[
                "GROUP",
                "COORDINATOR (ID)",
                "ASSIGNMENT-STRATEGY",
                "STATE",
                "#MEMBERS"
            ],
            &[row]
        )
    )
}

fn describe_members(description: &GroupDescription) -> String {
    let group = &description.group_id;
    let mut out = String::new();
    if description.members.is_empty() {
        let _ = writeln!(out, "\nConsumer group '{group}' has no active members.");
    }
    let rows: Vec<Vec<String>> = description
        .members
        .iter()
        .map(|m| {
            vec![
                group.clone(),
                m.member_id.clone(),
                m.host.clone(),
                m.client_id.clone(),
                m.assignment.len().to_string(),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(
        &["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"],
        &rows,
    ));
    out
}

fn reset_table(group: &str, plan: &BTreeMap<TopicPartition, i64>) -> String {
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|(tp, offset)| {
            vec![
                group.to_owned(),
                tp.topic.clone(),
                tp.partition.to_string(),
                offset.to_string(),
            ]
        })
        .collect();
    format!(
        "\n{}",
        table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows)
    )
}

/// Left-aligned columns separated by one space, each as wide as its widest cell; the
/// last column is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i == last {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$} ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_client::{MemberDescription, PartitionLag};

    #[test]
    fn topic_partition_specs() {
        assert_eq!(parse_topic_partitions("t").unwrap(), ("t".to_owned(), None));
        assert_eq!(
            parse_topic_partitions("t:0,2").unwrap(),
            ("t".to_owned(), Some(vec![0, 2]))
        );
        assert!(parse_topic_partitions("t:x").is_err());
        assert!(parse_topic_partitions("t:-1").is_err());
        assert!(parse_topic_partitions(":1").is_err());
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["g".to_owned(), "orders".to_owned(), "0".to_owned()],
            vec!["group-2".to_owned(), "t".to_owned(), "10".to_owned()],
        ];
        assert_eq!(
            table(&["GROUP", "TOPIC", "PARTITION"], &rows),
            "GROUP   TOPIC  PARTITION\ng       orders 0\ngroup-2 t      10\n"
        );
    }

    fn description(state: &str, members: Vec<MemberDescription>) -> GroupDescription {
        GroupDescription {
            group_id: "g".to_owned(),
            state: state.to_owned(),
            protocol_type: "consumer".to_owned(),
            protocol: "range".to_owned(),
            coordinator: 0,
            members,
        }
    }

    #[test]
    fn empty_groups_say_so_and_show_dashes() {
        let offsets = GroupOffsets {
            description: description("Empty", vec![]),
            partitions: vec![PartitionLag {
                partition: TopicPartition::new("t", 0),
                committed_offset: Some(3),
                log_end_offset: Some(5),
                lag: Some(2),
                member_id: None,
                host: None,
                client_id: None,
            }],
        };
        let out = describe_offsets(&offsets);
        assert!(
            out.starts_with("\nConsumer group 'g' has no active members.\n\n"),
            "{out}"
        );
        let last = out.lines().last().unwrap();
        let cells: Vec<&str> = last.split_whitespace().collect();
        assert_eq!(cells, ["g", "t", "0", "3", "5", "2", "-", "-", "-"]);
    }

    #[test]
    fn reset_targets() {
        let args = |f: &dyn Fn(&mut ResetArgs)| {
            let mut args = ResetArgs {
                group: "g".to_owned(),
                topics: vec!["t".to_owned()],
                all_topics: false,
                to_earliest: false,
                to_latest: false,
                to_offset: None,
                to_datetime: None,
                by_duration: None,
                shift_by: None,
                dry_run: false,
                execute: false,
            };
            f(&mut args);
            args
        };
        let now = 1_700_000_000_000;
        assert_eq!(
            reset_target(&args(&|a| a.to_earliest = true), now).unwrap(),
            OffsetResetTarget::Earliest
        );
        assert_eq!(
            reset_target(&args(&|a| a.shift_by = Some(-2)), now).unwrap(),
            OffsetResetTarget::ShiftBy(-2)
        );
        assert_eq!(
            reset_target(&args(&|a| a.by_duration = Some("PT1M".to_owned())), now).unwrap(),
            OffsetResetTarget::Timestamp(now - 60_000)
        );
        assert_eq!(
            reset_target(
                &args(&|a| a.to_datetime = Some("2023-11-14T22:13:20.000Z".to_owned())),
                now
            )
            .unwrap(),
            OffsetResetTarget::Timestamp(now)
        );
    }
}
