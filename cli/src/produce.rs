//! `strata produce`: the console producer. Each line of stdin becomes a record.

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args as ClapArgs, ValueEnum};
use strata_client::{
    Acks, ClientConfig, Compression, Partitioner, Producer, ProducerConfig, ProducerRecord,
};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::output::unescape;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Topic to produce to.
    #[arg(long)]
    topic: String,
    /// Split each line at the first SEP into key and value (like parse.key=true with
    /// key.separator=SEP).
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// How to pick partitions for records without --partition.
    #[arg(long, value_enum, default_value_t = PartitionerArg::Murmur2)]
    partitioner: PartitionerArg,
    /// Send every record to this partition.
    #[arg(long)]
    partition: Option<i32>,
    /// Acknowledgements the leader waits for: 0, 1, -1 or all.
    #[arg(long, default_value = "all", value_parser = parse_acks, allow_hyphen_values = true)]
    acks: Acks,
    /// Compression codec for record batches.
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    compression: CompressionArg,
    /// Bytes per partition batch before it is sent (batch.size).
    #[arg(long, default_value_t = 16 * 1024)]
    batch_size: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PartitionerArg {
    /// murmur2 of the key, as the Java client; keyless records stick to a partition per batch.
    Murmur2,
    /// Each record to the next partition.
    RoundRobin,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

fn parse_acks(value: &str) -> Result<Acks, String> {
    match value {
        "0" => Ok(Acks::None),
        "1" => Ok(Acks::Leader),
        "-1" | "all" => Ok(Acks::All),
        other => Err(format!("invalid acks '{other}': expected 0, 1, -1 or all")),
    }
}

pub async fn run(client: ClientConfig, args: Args) -> anyhow::Result<()> {
    let separator = args.key_separator.as_deref().map(unescape).transpose()?;
    let config = ProducerConfig {
        acks: args.acks,
        compression: match args.compression {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        },
        partitioner: match args.partitioner {
            PartitionerArg::Murmur2 => Partitioner::Murmur2,
            PartitionerArg::RoundRobin => Partitioner::RoundRobin,
        },
        batch_size_bytes: args.batch_size,
        ..ProducerConfig::default()
    };
    let mut producer = Producer::connect(client, config).await?;
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    let mut line_number = 0_u64;
    loop {
        line.clear();
        let read = stdin
            .read_until(b'\n', &mut line)
            .await
            .context("reading stdin")?;
        if read == 0 {
            break;
        }
        line_number += 1;
        let text = strip_line_end(&line);
        let (key, value) = split_line(text, separator.as_deref().map(str::as_bytes), line_number)?;
        let record = ProducerRecord {
            topic: args.topic.clone(),
            partition: args.partition,
            key: key.map(Bytes::copy_from_slice),
            value: Some(Bytes::copy_from_slice(value)),
            ..ProducerRecord::default()
        };
        producer.send(record).await?;
    }
    producer.flush().await?;
    Ok(())
}

/// Drops `\n` or `\r\n`, as Java's `BufferedReader.readLine` does.
fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits `line` into key and value at the first `separator`; a line without one is an
/// error, as in Kafka's console producer.
fn split_line<'a>(
    line: &'a [u8],
    separator: Option<&[u8]>,
    line_number: u64,
) -> anyhow::Result<(Option<&'a [u8]>, &'a [u8])> {
    let Some(separator) = separator else {
        return Ok((None, line));
    };
    match line.windows(separator.len()).position(|w| w == separator) {
        Some(at) => Ok((Some(&line[..at]), &line[at + separator.len()..])),
        None => bail!(
            "no key separator found on line number {line_number}: '{}'",
            String::from_utf8_lossy(line)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_the_first_separator() {
        assert_eq!(
            split_line(b"k:v:w", Some(b":"), 1).unwrap(),
            (Some(&b"k"[..]), &b"v:w"[..])
        );
        assert_eq!(
            split_line(b":v", Some(b":"), 1).unwrap(),
            (Some(&b""[..]), &b"v"[..])
        );
        assert_eq!(
            split_line(b"k::v", Some(b"::"), 1).unwrap(),
            (Some(&b"k"[..]), &b"v"[..])
        );
        assert_eq!(
            split_line(b"plain", None, 1).unwrap(),
            (None, &b"plain"[..])
        );
        let err = split_line(b"nokey", Some(b":"), 7).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no key separator found on line number 7: 'nokey'"
        );
    }

    #[test]
    fn line_ends_are_dropped() {
        assert_eq!(strip_line_end(b"a\r\n"), b"a");
        assert_eq!(strip_line_end(b"a\n"), b"a");
        assert_eq!(strip_line_end(b"a"), b"a");
    }

    #[test]
    fn acks_values() {
        assert_eq!(parse_acks("all").unwrap(), Acks::All);
        assert_eq!(parse_acks("-1").unwrap(), Acks::All);
        assert_eq!(parse_acks("0").unwrap(), Acks::None);
        assert_eq!(parse_acks("1").unwrap(), Acks::Leader);
        assert!(parse_acks("2").is_err());
    }
}
