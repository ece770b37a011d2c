//! `strata consume`: the console consumer. Prints record values one per line, with the
//! same optional fields and layout as Kafka's `DefaultMessageFormatter`.
//!
//! The partitions to read come from [`assignment`]; with `--group` the consumer joins
//! a consumer group instead, feeds the same print loop and commits what it printed
//! after every batch and on exit (including Ctrl-C and SIGTERM).

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args as ClapArgs;
use strata_client::TimestampType;
use strata_client::consumer::OffsetReset;
use strata_client::{
    ClientConfig, Consumer, ConsumerConfig, ConsumerRecord, GroupConsumer, GroupConsumerConfig,
    OffsetSpec, ResponseError, TopicPartition,
};
use tokio::time::Instant;

use crate::output::unescape;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Topic to read.
    #[arg(long)]
    topic: String,
    /// Start from the beginning of the log instead of its end (with --group: where
    /// the group has no committed offset, auto.offset.reset=earliest).
    #[arg(long)]
    from_beginning: bool,
    /// Consume as a member of this consumer group and commit the offsets read.
    #[arg(long, conflicts_with_all = ["partition", "offset"])]
    group: Option<String>,
    /// Read only this partition (default: all partitions of the topic).
    #[arg(long)]
    partition: Option<i32>,
    /// Where to start: earliest, latest or an offset (overrides --from-beginning).
    #[arg(long, value_parser = parse_offset)]
    offset: Option<OffsetSpec>,
    /// Exit after printing this many records.
    #[arg(long)]
    max_messages: Option<u64>,
    /// Exit when no record arrives for this long.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Print the key.
    #[arg(long)]
    print_key: bool,
    /// Print the partition (`Partition:N`).
    #[arg(long)]
    print_partition: bool,
    /// Print the offset (`Offset:N`).
    #[arg(long)]
    print_offset: bool,
    /// Print the timestamp (`CreateTime:MS`).
    #[arg(long)]
    print_timestamp: bool,
    /// Separator between the printed fields.
    #[arg(long, default_value = "\\t", value_name = "SEP")]
    key_separator: String,
}

fn parse_offset(value: &str) -> Result<OffsetSpec, String> {
    match value {
        "earliest" => Ok(OffsetSpec::Earliest),
        "latest" => Ok(OffsetSpec::Latest),
        n => match n.parse::<i64>() {
            Ok(offset) if offset >= 0 => Ok(OffsetSpec::Offset(offset)),
            _ => Err(format!(
                "invalid offset '{n}': expected earliest, latest or a non-negative number"
            )),
        },
    }
}

pub async fn run(client: ClientConfig, args: Args) -> anyhow::Result<()> {
    let separator = unescape(&args.key_separator)?;
    // The broker holds a Fetch at most this long when there is nothing to send, so a
    // short --timeout-ms is honoured promptly.
    let max_wait = args.timeout_ms.map_or(Duration::from_millis(500), |ms| {
        Duration::from_millis(ms.clamp(10, 500))
    });
    let format = Format {
        separator,
        key: args.print_key,
        partition: args.print_partition,
        offset: args.print_offset,
        timestamp: args.print_timestamp,
    };
    let idle_timeout = args.timeout_ms.map(Duration::from_millis);
    let mut reader = if let Some(group) = &args.group {
        let mut config = GroupConsumerConfig::new(group.clone(), vec![args.topic.clone()]);
        config.consumer = ConsumerConfig {
            max_wait,
            offset_reset: if args.from_beginning {
                OffsetReset::Earliest
            } else {
                OffsetReset::Latest
            },
            ..ConsumerConfig::default()
        };
        // Heartbeat often enough that a rebalance reaches this member quickly.
        config.heartbeat_interval = Duration::from_secs(1);
        Reader::Group(Box::new(GroupConsumer::connect(client, config).await?))
    } else {
        let config = ConsumerConfig {
            max_wait,
            offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        };
        let mut consumer = Consumer::connect(client, config).await?;
        let start = args.offset.unwrap_or(if args.from_beginning {
            OffsetSpec::Earliest
        } else {
            OffsetSpec::Latest
        });
        let partitions = assignment(&mut consumer, &args.topic, args.partition).await?;
        consumer.assign(partitions.clone());
        for tp in &partitions {
            consumer.seek(tp, start)?;
        }
        Reader::Plain(Box::new(consumer))
    };
    let printed = print_loop(&mut reader, &format, args.max_messages, idle_timeout).await;
    // Commit and leave the group even when printing failed (a closed pipe).
    let closed = reader.close().await;
    let printed = printed?;
    closed?;
    // Kafka's console consumer ends with this line on stderr too.
    eprintln!("Processed a total of {printed} messages");
    Ok(())
}

/// Where records come from: assigned partitions, or a consumer group membership.
/// Boxed: both are large and the reader lives for the whole run.
enum Reader {
    Plain(Box<Consumer>),
    Group(Box<GroupConsumer>),
}

impl Reader {
    async fn poll(&mut self) -> strata_client::Result<Vec<ConsumerRecord>> {
        match self {
            Reader::Plain(consumer) => consumer.poll().await,
            Reader::Group(consumer) => consumer.poll().await,
        }
    }

    /// Commits what was read, for a group member. A commit refused because the group
    /// is rebalancing is not an error: the member rejoins on the next poll and the
    /// records since the last commit are read again (at least once).
    async fn commit(&mut self) -> anyhow::Result<()> {
        let Reader::Group(consumer) = self else {
            return Ok(());
        };
        match consumer.commit().await {
            Ok(()) => Ok(()),
            Err(err)
                if matches!(
                    err.kafka_code(),
                    Some(
                        ResponseError::RebalanceInProgress
                            | ResponseError::IllegalGeneration
                            | ResponseError::UnknownMemberId
                    )
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(err).context("committing offsets"),
        }
    }

    /// Puts records that were polled but not printed back, so a group member does not
    /// commit past them.
    fn unread(&mut self, records: &[ConsumerRecord]) -> anyhow::Result<()> {
        let Reader::Group(consumer) = self else {
            return Ok(());
        };
        let mut first: Vec<(TopicPartition, i64)> = Vec::new();
        for record in records {
            let tp = TopicPartition::new(record.topic.clone(), record.partition);
            if !first.iter().any(|(seen, _)| *seen == tp) {
                first.push((tp, record.offset));
            }
        }
        for (tp, offset) in first {
            consumer.seek(&tp, offset)?;
        }
        Ok(())
    }

    async fn close(self) -> anyhow::Result<()> {
        match self {
            Reader::Plain(_) => Ok(()),
            Reader::Group(consumer) => consumer.close().await.context("leaving the group"),
        }
    }
}

/// The partitions to read: the one asked for, or all of the topic's.
async fn assignment(
    consumer: &mut Consumer,
    topic: &str,
    partition: Option<i32>,
) -> anyhow::Result<Vec<TopicPartition>> {
    let partitions = consumer.partitions_for(topic).await?;
    match partition {
        Some(p) if partitions.contains(&p) => Ok(vec![TopicPartition::new(topic, p)]),
        Some(p) => bail!(
            "partition {p} of topic {topic} does not exist (it has {})",
            partitions.len()
        ),
        None => Ok(partitions
            .into_iter()
            .map(|p| TopicPartition::new(topic, p))
            .collect()),
    }
}

/// Polls and prints until `max_messages` were printed, nothing arrived for
/// `idle_timeout`, or the process is asked to stop (Ctrl-C, SIGTERM); returns how many
/// were printed. A group member commits after each printed batch.
async fn print_loop(
    reader: &mut Reader,
    format: &Format,
    max_messages: Option<u64>,
    idle_timeout: Option<Duration>,
) -> anyhow::Result<u64> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0_u64;
    let mut last_record = Instant::now();
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        if max_messages.is_some_and(|max| printed >= max) {
            break;
        }
        if idle_timeout.is_some_and(|timeout| last_record.elapsed() >= timeout) {
            break;
        }
        let records = tokio::select! {
            records = reader.poll() => records?,
            () = &mut stop => break,
        };
        if !records.is_empty() {
            last_record = Instant::now();
        }
        let mut took = false;
        for (i, record) in records.iter().enumerate() {
            if max_messages.is_some_and(|max| printed >= max) {
                reader.unread(&records[i..])?;
                break;
            }
            format
                .write(&mut out, record)
                .context("writing to stdout")?;
            printed += 1;
            took = true;
        }
        out.flush().context("writing to stdout")?;
        if took {
            reader.commit().await?;
        }
    }
    Ok(printed)
}

/// Resolves when the process receives Ctrl-C or SIGTERM.
async fn stop_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// Which fields to print and how to separate them.
struct Format {
    separator: String,
    key: bool,
    partition: bool,
    offset: bool,
    timestamp: bool,
}

impl Format {
    /// Kafka's `DefaultMessageFormatter` layout: timestamp, partition, offset, key,
    /// value, separated by the key separator; absent keys and values print as `null`.
    fn write(&self, out: &mut impl Write, record: &ConsumerRecord) -> std::io::Result<()> {
        let sep = self.separator.as_bytes();
        if self.timestamp {
            let kind = match record.timestamp_type {
                TimestampType::Creation => "CreateTime",
                TimestampType::LogAppend => "LogAppendTime",
            };
            write!(out, "{kind}:{}", record.timestamp_ms)?;
            out.write_all(sep)?;
        }
        if self.partition {
            write!(out, "Partition:{}", record.partition)?;
            out.write_all(sep)?;
        }
        if self.offset {
            write!(out, "Offset:{}", record.offset)?;
            out.write_all(sep)?;
        }
        if self.key {
            out.write_all(record.key.as_deref().unwrap_or(b"null"))?;
            out.write_all(sep)?;
        }
        out.write_all(record.value.as_deref().unwrap_or(b"null"))?;
        out.write_all(b"\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".to_owned(),
            partition: 2,
            offset: 17,
            timestamp_ms: 1_700_000_000_000,
            timestamp_type: TimestampType::Creation,
            key: Some(Bytes::from_static(b"k1")),
            value: Some(Bytes::from_static(b"hello")),
            headers: vec![],
        }
    }

    fn render(format: &Format, record: &ConsumerRecord) -> String {
        let mut out = Vec::new();
        format.write(&mut out, record).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn prints_like_the_console_consumer() {
        let plain = Format {
            separator: "\t".to_owned(),
            key: false,
            partition: false,
            offset: false,
            timestamp: false,
        };
        assert_eq!(render(&plain, &record()), "hello\n");
        let all = Format {
            separator: ":".to_owned(),
            key: true,
            partition: true,
            offset: true,
            timestamp: true,
        };
        assert_eq!(
            render(&all, &record()),
            "CreateTime:1700000000000:Partition:2:Offset:17:k1:hello\n"
        );
        let mut keyless = record();
        keyless.key = None;
        keyless.value = None;
        let keys = Format {
            separator: "\t".to_owned(),
            key: true,
            partition: false,
            offset: false,
            timestamp: false,
        };
        assert_eq!(render(&keys, &keyless), "null\tnull\n");
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("earliest").unwrap(), OffsetSpec::Earliest);
        assert_eq!(parse_offset("latest").unwrap(), OffsetSpec::Latest);
        assert_eq!(parse_offset("42").unwrap(), OffsetSpec::Offset(42));
        assert!(parse_offset("-3").is_err());
        assert!(parse_offset("soon").is_err());
    }
}
