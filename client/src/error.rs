//! The client's error type.
//!
//! Kafka error codes travel on the wire as `i16`; they are kept apart from transport and
//! codec failures ([`Error::Kafka`] versus the rest) so callers can decide what is
//! retriable, and are shown by Kafka's own names (`TOPIC_ALREADY_EXISTS`), which is what
//! people search for.

use std::io;
use std::time::Duration;

use kafka_protocol::ResponseError;

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TCP connection could not be established.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// `host:port` that was dialled.
        addr: String,
        /// What the operating system said, e.g. `ConnectionRefused`.
        kind: io::ErrorKind,
        /// The operating system's message without the `(os error N)` suffix.
        reason: String,
    },
    /// An established connection failed while sending or receiving.
    #[error("connection to {addr} failed: {reason}")]
    Io {
        /// `host:port` of the broker.
        addr: String,
        /// What the operating system said.
        kind: io::ErrorKind,
        /// The operating system's message without the `(os error N)` suffix.
        reason: String,
    },
    /// A call did not finish within its deadline.
    #[error("{operation} to {addr} timed out after {} ms", .after.as_millis())]
    Timeout {
        /// What was being done, e.g. `Metadata request` or `connect`.
        operation: String,
        /// `host:port` of the broker.
        addr: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// Bytes on the wire could not be encoded or decoded.
    #[error("protocol error talking to {addr}: {message}")]
    Protocol {
        /// `host:port` of the broker.
        addr: String,
        /// What went wrong.
        message: String,
    },
    /// The broker does not support any version of an API this client needs.
    #[error("broker {addr} does not support {api} (versions this client speaks: {ours})")]
    UnsupportedApi {
        /// `host:port` of the broker.
        addr: String,
        /// The API, by Kafka's name, e.g. `CreatePartitions`.
        api: String,
        /// The versions this client can speak, `min..max`.
        ours: String,
    },
    /// The broker answered with a Kafka error code.
    #[error("{}", kafka_error_message(*.code, .context, .message.as_deref()))]
    Kafka {
        /// The error code.
        code: ResponseError,
        /// What it applies to, e.g. `topic orders` or `orders-3`.
        context: String,
        /// The broker's free-text explanation, when it sent one.
        message: Option<String>,
    },
    /// The request cannot be made as asked (no such topic, no partitions, bad argument).
    #[error("{0}")]
    Invalid(String),
    /// No bootstrap server was given.
    #[error("no bootstrap servers given")]
    NoBootstrapServers,
}

/// Results of client calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds [`Error::Kafka`] for a non-zero code, `Ok` for zero.
    pub fn check(code: i16, context: impl FnOnce() -> String, message: Option<&str>) -> Result<()> {
        match ResponseError::try_from_code(code) {
            None => Ok(()),
            Some(code) => Err(Error::Kafka {
                code,
                context: context(),
                message: message.filter(|m| !m.is_empty()).map(str::to_owned),
            }),
        }
    }

    /// The Kafka error code, when the broker sent one.
    pub fn kafka_code(&self) -> Option<ResponseError> {
        match self {
            Error::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether trying again (after refreshing metadata) may succeed: Kafka's retriable
    /// codes, timeouts and failed connections (a partition leader that went down is
    /// replaced once the controller notices).
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Kafka { code, .. } => code.is_retriable(),
            Error::Timeout { .. } | Error::Io { .. } | Error::Connect { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn connect(addr: &str, err: &io::Error) -> Self {
        Error::Connect {
            addr: addr.to_owned(),
            kind: err.kind(),
            reason: os_message(err),
        }
    }

    pub(crate) fn io(addr: &str, err: &io::Error) -> Self {
        Error::Io {
            addr: addr.to_owned(),
            kind: err.kind(),
            reason: os_message(err),
        }
    }
}

/// `Connection refused (os error 111)` → `Connection refused`: the number adds nothing
/// for a person reading the message.
fn os_message(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

/// Kafka's name for an error code, as the Java client prints it: `TopicAlreadyExists`
/// becomes `TOPIC_ALREADY_EXISTS`.
pub fn kafka_error_name(code: ResponseError) -> String {
    if let ResponseError::Unknown(raw) = code {
        return format!("UNKNOWN_ERROR_CODE_{raw}");
    }
    let camel = format!("{code:?}");
    let mut name = String::with_capacity(camel.len() + 8);
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(ch.to_ascii_uppercase());
    }
    name
}

fn kafka_error_message(code: ResponseError, context: &str, message: Option<&str>) -> String {
    let name = kafka_error_name(code);
    match message {
        Some(message) => format!("{context}: {name} ({}): {message}", code.code()),
        None => format!("{context}: {name} ({})", code.code()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_names_match_the_java_client() {
        assert_eq!(
            kafka_error_name(ResponseError::TopicAlreadyExists),
            "TOPIC_ALREADY_EXISTS"
        );
        assert_eq!(
            kafka_error_name(ResponseError::UnknownTopicOrPartition),
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
        assert_eq!(
            kafka_error_name(ResponseError::NotLeaderOrFollower),
            "NOT_LEADER_OR_FOLLOWER"
        );
        assert_eq!(
            kafka_error_name(ResponseError::Unknown(999)),
            "UNKNOWN_ERROR_CODE_999"
        );
    }

    #[test]
    fn check_maps_codes() {
        assert!(Error::check(0, || "topic t".into(), None).is_ok());
        let err =
            Error::check(36, || "topic t".into(), Some("Topic 't' already exists.")).unwrap_err();
        assert_eq!(err.kafka_code(), Some(ResponseError::TopicAlreadyExists));
        assert!(!err.is_retriable());
        assert_eq!(
            err.to_string(),
            "topic t: TOPIC_ALREADY_EXISTS (36): Topic 't' already exists."
        );
        let err = Error::check(6, || "t-0".into(), Some("")).unwrap_err();
        assert!(err.is_retriable());
        assert_eq!(err.to_string(), "t-0: NOT_LEADER_OR_FOLLOWER (6)");
    }

    #[test]
    fn connect_errors_read_like_the_os() {
        let err = io::Error::from_raw_os_error(111);
        let err = Error::connect("127.0.0.1:9092", &err);
        assert_eq!(
            err.to_string(),
            "cannot connect to 127.0.0.1:9092: Connection refused"
        );
    }
}
