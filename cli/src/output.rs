//! Helpers shared by the subcommands for reading flags and writing output.

use anyhow::{Context, bail};

/// Parses `key=value` (the `--config` flag of kafka-topics.sh).
pub fn parse_key_value(entry: &str) -> anyhow::Result<(String, String)> {
    let Some((key, value)) = entry.split_once('=') else {
        bail!("invalid config '{entry}': expected key=value");
    };
    if key.is_empty() {
        bail!("invalid config '{entry}': empty key");
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Whether an error is stdout having been closed by the reader.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Parses a separator flag, accepting the escapes people type in shells (`\t`, `\n`).
pub fn unescape(separator: &str) -> anyhow::Result<String> {
    let mut out = String::with_capacity(separator.len());
    let mut chars = separator.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    if out.is_empty() {
        return Err(anyhow::anyhow!("separator must not be empty")).context("--key-separator");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values() {
        assert_eq!(
            parse_key_value("cleanup.policy=compact").unwrap(),
            ("cleanup.policy".to_owned(), "compact".to_owned())
        );
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".to_owned(), "b=c".to_owned())
        );
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=x").is_err());
    }

    #[test]
    fn separators() {
        assert_eq!(unescape(":").unwrap(), ":");
        assert_eq!(unescape("\\t").unwrap(), "\t");
        assert_eq!(unescape("::").unwrap(), "::");
        assert!(unescape("").is_err());
    }
}
