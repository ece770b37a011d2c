//! A connection from this broker to another one: replica fetchers, the controller's
//! requests to brokers and brokers' requests to the controller all use it.
//!
//! One request at a time, answered in order; every request carries a deadline
//! (`replica.socket.timeout.ms`, `controller.socket.timeout.ms`), after which the
//! connection is dropped, as Kafka's `NetworkClient` disconnects on a request timeout.
//! Setting a connection up has its own, shorter deadline
//! (`socket.connection.setup.timeout.ms`): a broker that moved to a new address (a
//! restarted pod) must not cost a whole request timeout per attempt. Setting up includes
//! the TLS handshake and the SASL login when the inter-broker listener has them
//! ([`crate::security::client`]).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpStream;

use crate::security::client::{ClientSecurity, SaslLogin};
use crate::security::sasl::Mechanism;
use crate::security::scram::{ScramClient, new_nonce};

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
    #[error("cannot log in to {addr}: {reason}")]
    Authentication { addr: String, reason: String },
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

/// A connection's byte stream: TCP, or TLS over it (either side).
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl Stream {
    /// Writes a response: from the segment files with `sendfile` on TCP, through the
    /// TLS session (which must see every byte) otherwise.
    pub async fn write_frames(&mut self, frames: strata_frames::Frames) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => frames.write_to(s).await,
            Stream::Tls(s) => frames.write_copied(s.as_mut()).await,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A connection to another broker kept between exchanges: opened on first use and again
/// when the broker's address changed, dropped after an exchange that failed.
#[derive(Default)]
pub struct KeptConnection(tokio::sync::Mutex<Option<BrokerConnection>>);

impl KeptConnection {
    /// Runs `f` on the connection to `addr`, connecting (as `client_id`) if needed.
    pub async fn exchange<T>(
        &self,
        connector: &Connector,
        addr: &str,
        client_id: &str,
        f: impl AsyncFnOnce(&mut BrokerConnection) -> Result<T, NetworkError>,
    ) -> Result<T, NetworkError> {
        let mut slot = self.0.lock().await;
        if slot.as_ref().is_none_or(|c| c.addr() != addr) {
            *slot = Some(connector.connect(addr, client_id).await?);
        }
        let result = f(slot.as_mut().expect("connected")).await;
        if result.is_err() {
            *slot = None;
        }
        result
    }
}

/// How this broker connects to the others: the deadlines and the inter-broker
/// listener's security.
#[derive(Debug, Clone)]
pub struct Connector {
    pub timeouts: Timeouts,
    pub security: Arc<ClientSecurity>,
}

impl Connector {
    pub fn plaintext(timeouts: Timeouts) -> Connector {
        Connector {
            timeouts,
            security: Arc::new(ClientSecurity::plaintext()),
        }
    }

    /// Connects, and runs the TLS handshake and SASL login if the listener has them, all
    /// within `socket.connection.setup.timeout.ms`.
    pub async fn connect(
        &self,
        addr: &str,
        client_id: &str,
    ) -> Result<BrokerConnection, NetworkError> {
        let timeouts = self.timeouts;
        let setup = timeouts.connect.min(timeouts.request);
        let timed_out = || NetworkError::Timeout {
            addr: addr.to_string(),
            timeout_ms: setup.as_millis(),
        };
        let deadline = tokio::time::Instant::now() + setup;
        let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => {
                return Err(NetworkError::Connect {
                    addr: addr.to_string(),
                    source,
                });
            }
            Err(_) => return Err(timed_out()),
        };
        let _ = stream.set_nodelay(true);
        let stream = match &self.security.tls {
            None => Stream::Plain(stream),
            Some(tls) => {
                let host = addr
                    .rsplit_once(':')
                    .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
                    .unwrap_or(addr);
                let name =
                    rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
                        NetworkError::Authentication {
                            addr: addr.to_string(),
                            reason: format!("'{host}' is not a TLS server name: {e}"),
                        }
                    })?;
                let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                match tokio::time::timeout_at(deadline, connector.connect(name, stream)).await {
                    Ok(Ok(s)) => Stream::Tls(Box::new(s.into())),
                    Ok(Err(e)) => {
                        return Err(NetworkError::Authentication {
                            addr: addr.to_string(),
                            reason: format!("TLS handshake: {e}"),
                        });
                    }
                    Err(_) => return Err(timed_out()),
                }
            }
        };
        let mut connection = BrokerConnection {
            addr: addr.to_string(),
            stream: BufReader::with_capacity(64 * 1024, stream),
            client_id: client_id.to_string(),
            next_correlation_id: 0,
            timeout: timeouts.request,
            login: self.security.sasl.clone(),
            reauthenticate_at: None,
        };
        if connection.login.is_some() {
            match tokio::time::timeout_at(deadline, connection.log_in()).await {
                Ok(result) => result?,
                Err(_) => return Err(timed_out()),
            }
        }
        Ok(connection)
    }
}

pub struct BrokerConnection {
    addr: String,
    stream: BufReader<Stream>,
    client_id: String,
    next_correlation_id: i32,
    timeout: Duration,
    /// The SASL login, and when to run it again: the server gave the session a lifetime
    /// (KIP-368), and, as Kafka's client does, it is renewed at 85–95 % of it.
    login: Option<SaslLogin>,
    reauthenticate_at: Option<tokio::time::Instant>,
}

impl BrokerConnection {
    /// Logs in (again), and notes when the session must be renewed.
    async fn log_in(&mut self) -> Result<(), NetworkError> {
        let Some(login) = self.login.clone() else {
            return Ok(());
        };
        let lifetime_ms = self.sasl_exchange(&login).await?;
        self.reauthenticate_at = (lifetime_ms > 0).then(|| {
            let share = 0.85 + rand::random::<f64>() * 0.10;
            tokio::time::Instant::now() + Duration::from_millis((lifetime_ms as f64 * share) as u64)
        });
        Ok(())
    }

    /// SaslHandshake v1, then the mechanism's tokens in SaslAuthenticate v2 (KIP-152);
    /// the session lifetime the server gave (0: none).
    async fn sasl_exchange(&mut self, login: &SaslLogin) -> Result<i64, NetworkError> {
        let addr = self.addr.clone();
        let refused = |reason: String| NetworkError::Authentication {
            addr: addr.clone(),
            reason,
        };
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(login.mechanism.name()));
        let response = self.exchange(&handshake, 1).await?;
        if response.error_code != 0 {
            let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(refused(format!(
                "{} is not enabled there (it offers {})",
                login.mechanism.name(),
                offered.join(", ")
            )));
        }
        let lifetime_ms = match login.mechanism {
            Mechanism::Plain => {
                let token = format!("\0{}\0{}", login.username, login.password);
                self.authenticate(token.into_bytes()).await?.1
            }
            Mechanism::Scram(m) => {
                let (client, first) =
                    ScramClient::start(m, &login.username, &login.password, &new_nonce());
                let (server_first, _) = self.authenticate(first).await?;
                let (client, last) = client
                    .prove(&server_first)
                    .map_err(|e| refused(e.to_string()))?;
                let (server_final, lifetime_ms) = self.authenticate(last).await?;
                client
                    .verify(&server_final)
                    .map_err(|e| refused(e.to_string()))?;
                lifetime_ms
            }
        };
        Ok(lifetime_ms)
    }

    /// One SaslAuthenticate: the server's token and the session lifetime it gave.
    async fn authenticate(&mut self, token: Vec<u8>) -> Result<(Bytes, i64), NetworkError> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let response = self.exchange(&request, 2).await?;
        if response.error_code != 0 {
            return Err(NetworkError::Authentication {
                addr: self.addr.clone(),
                reason: response
                    .error_message
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| format!("error {}", response.error_code)),
            });
        }
        Ok((response.auth_bytes, response.session_lifetime_ms))
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
        self.reauthenticate_if_due().await?;
        self.exchange_raw(api_key, version, flexible, body).await
    }

    /// Sends a request `kafka-protocol` knows at `version` and decodes the response.
    pub async fn send<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, NetworkError> {
        self.reauthenticate_if_due().await?;
        self.exchange(request, version).await
    }

    async fn reauthenticate_if_due(&mut self) -> Result<(), NetworkError> {
        match self.reauthenticate_at {
            Some(at) if tokio::time::Instant::now() >= at => self.log_in().await,
            _ => Ok(()),
        }
    }

    /// One request and its response, without looking at the session first (the login
    /// itself goes this way).
    async fn exchange_raw(
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
            let stream = self.stream.get_mut();
            stream.write_all(&frame).await?;
            stream.flush().await?;
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

    async fn exchange<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, NetworkError> {
        let mut body = BytesMut::new();
        request
            .encode(&mut body, version)
            .map_err(|e| self.protocol_error(format!("encoding request: {e}")))?;
        let flexible = R::header_version(version) >= 2;
        let mut response = self.exchange_raw(R::KEY, version, flexible, &body).await?;
        let decoded = R::Response::decode(&mut response, version)
            .map_err(|e| self.protocol_error(format!("decoding response: {e}")))?;
        if response.has_remaining() {
            tracing::debug!(addr = %self.addr, extra = response.remaining(), "response longer than its schema");
        }
        Ok(decoded)
    }
}
