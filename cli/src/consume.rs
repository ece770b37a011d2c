//! `strata consume`: the console consumer. Prints record values one per line, with the
//! same optional fields and layout as Kafka's `DefaultMessageFormatter`.
//!
//! The partitions to read come from [`assignment`]; a `--group` mode joins a consumer
//! group instead and feeds the same print loop.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args as ClapArgs;
use strata_client::TimestampType;
use strata_client::consumer::OffsetReset;
use strata_client::{
    ClientConfig, Consumer, ConsumerConfig, ConsumerRecord, OffsetSpec, TopicPartition,
};
use tokio::time::Instant;

use crate::output::unescape;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Topic to read.
    #[arg(long)]
    topic: String,
    /// Start from the beginning of the log instead of its end.
    #[arg(long)]
    from_beginning: bool,
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
    let format = Format {
        separator,
        key: args.print_key,
        partition: args.print_partition,
        offset: args.print_offset,
        timestamp: args.print_timestamp,
    };
    let printed = print_loop(
        &mut consumer,
        &format,
        args.max_messages,
        args.timeout_ms.map(Duration::from_millis),
    )
    .await?;
    // Kafka's console consumer ends with this line on stderr too.
    eprintln!("Processed a total of {printed} messages");
    Ok(())
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

/// Polls and prints until `max_messages` were printed or nothing arrived for
/// `idle_timeout`; returns how many were printed.
async fn print_loop(
    consumer: &mut Consumer,
    format: &Format,
    max_messages: Option<u64>,
    idle_timeout: Option<Duration>,
) -> anyhow::Result<u64> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0_u64;
    let mut last_record = Instant::now();
    loop {
        if max_messages.is_some_and(|max| printed >= max) {
            break;
        }
        if idle_timeout.is_some_and(|timeout| last_record.elapsed() >= timeout) {
            break;
        }
        let records = consumer.poll().await?;
        if !records.is_empty() {
            last_record = Instant::now();
        }
        for record in &records {
            if max_messages.is_some_and(|max| printed >= max) {
                break;
            }
            format
                .write(&mut out, record)
                .context("writing to stdout")?;
            printed += 1;
        }
        out.flush().context("writing to stdout")?;
    }
    Ok(printed)
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
