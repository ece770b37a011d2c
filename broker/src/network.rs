//! A connection from this broker to another one: replica fetchers, the controller's
//! requests to brokers and brokers' requests to the controller all use it.
//!
//! One request at a time, answered in order; every request carries a deadline
//! (`replica.socket.timeout.ms`, `controller.socket.timeout.ms`), after which the
//! connection is dropped, as Kafka's `NetworkClient` disconnects on a request timeout.
//! Setting a connection up has its own, shorter deadline
//! (`socket.connection.setup.timeout.ms`): a broker that moved to a new address (a
//! restarted pod) must not cost a whole request timeout per attempt.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connection to {addr} failed: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("no response from {addr} within {timeout_ms} ms")]
    Timeout { addr: String, timeout_ms: u128 },
    #[error("bad response from {addr}: {reason}")]
    Protocol { addr: String, reason: String },
}

/// `host:port` for connecting, with an IPv6 host in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Largest response accepted (a replica fetch is bounded by
/// `replica.fetch.response.max.bytes`, 10 MiB by default, plus framing).
const MAX_RESPONSE_BYTES: usize = 512 * 1024 * 1024;

/// The deadlines of a [`BrokerConnection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `socket.connection.setup.timeout.ms`.
    pub connect: Duration,
    /// `replica.socket.timeout.ms` or `controller.socket.timeout.ms`.
    pub request: Duration,
}

pub struct BrokerConnection {
    addr: String,
    stream: BufReader<TcpStream>,
    client_id: String,
    next_correlation_id: i32,
    timeout: Duration,
}

impl BrokerConnection {
    pub async fn connect(
        addr: &str,
        client_id: &str,
        timeouts: Timeouts,
    ) -> Result<BrokerConnection, NetworkError> {
        let connect = timeouts.connect.min(timeouts.request);
        let stream = match tokio::time::timeout(connect, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => {
                return Err(NetworkError::Connect {
                    addr: addr.to_string(),
                    source,
                });
            }
            Err(_) => {
                return Err(NetworkError::Timeout {
                    addr: addr.to_string(),
                    timeout_ms: connect.as_millis(),
                });
            }
        };
        let _ = stream.set_nodelay(true);
        Ok(BrokerConnection {
            addr: addr.to_string(),
            stream: BufReader::with_capacity(64 * 1024, stream),
            client_id: client_id.to_string(),
            next_correlation_id: 0,
            timeout: timeouts.request,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn protocol_error(&self, reason: impl Into<String>) -> NetworkError {
        NetworkError::Protocol {
            addr: self.addr.clone(),
            reason: reason.into(),
        }
    }

    /// Sends one request whose body is already encoded, and returns the response body.
    /// `flexible` selects request header v2 / response header v1 (the API's flexible
    /// versions) over header v1 / v0.
    pub async fn send_raw(
        &mut self,
        api_key: i16,
        version: i16,
        flexible: bool,
        body: &[u8],
    ) -> Result<Bytes, NetworkError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api_key)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())));
        let mut frame = BytesMut::with_capacity(body.len() + 64);
        frame.put_i32(0);
        header
            .encode(&mut frame, if flexible { 2 } else { 1 })
            .map_err(|e| self.protocol_error(format!("encoding request header: {e}")))?;
        frame.put_slice(body);
        let len = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        let exchange = async {
            self.stream.get_mut().write_all(&frame).await?;
            let size = self.stream.read_i32().await?;
            if size < 4 || size as usize > MAX_RESPONSE_BYTES {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("response size {size}"),
                ));
            }
            let mut buf = vec![0u8; size as usize];
            self.stream.read_exact(&mut buf).await?;
            Ok(Bytes::from(buf))
        };
        let mut response = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(r)) => r,
            Ok(Err(source)) => {
                return Err(NetworkError::Io {
                    addr: self.addr.clone(),
                    source,
                });
            }
            Err(_) => {
                return Err(NetworkError::Timeout {
                    addr: self.addr.clone(),
                    timeout_ms: self.timeout.as_millis(),
                });
            }
        };
        let header = ResponseHeader::decode(&mut response, if flexible { 1 } else { 0 })
            .map_err(|e| self.protocol_error(format!("response header: {e}")))?;
        if header.correlation_id != correlation_id {
            return Err(self.protocol_error(format!(
                "correlation id {} answered request {correlation_id}",
                header.correlation_id
            )));
        }
        Ok(response)
    }

    /// Sends a request `kafka-protocol` knows at `version` and decodes the response.
    pub async fn send<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, NetworkError> {
        let mut body = BytesMut::new();
        request
            .encode(&mut body, version)
            .map_err(|e| self.protocol_error(format!("encoding request: {e}")))?;
        let flexible = R::header_version(version) >= 2;
        let mut response = self.send_raw(R::KEY, version, flexible, &body).await?;
        let decoded = R::Response::decode(&mut response, version)
            .map_err(|e| self.protocol_error(format!("decoding response: {e}")))?;
        if response.has_remaining() {
            tracing::debug!(addr = %self.addr, extra = response.remaining(), "response longer than its schema");
        }
        Ok(decoded)
    }
}
