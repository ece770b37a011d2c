//! One TCP connection to one broker: framing, request headers, correlation ids and the
//! ApiVersions handshake.
//!
//! Kafka frames every request and response with a 4-byte big-endian length. A request
//! starts with a header (api key, api version, correlation id, client id) whose own
//! version depends on the API and its version; the response header carries the
//! correlation id back. A connection here has one request in flight at a time, which
//! keeps responses trivially matched to requests; callers that want parallelism use a
//! connection per broker.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Message, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};
use crate::versions::ApiVersions;

/// Largest response frame accepted. Fetch responses are bounded by the request's
/// `max_bytes` (50 MiB by default), so anything far beyond is a corrupt length.
pub const MAX_FRAME_BYTES: usize = 256 * 1024 * 1024;

/// Error code a broker sends when it does not speak the requested ApiVersions version.
const UNSUPPORTED_VERSION: i16 = 35;

/// Settings every connection shares.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Sent in every request header; brokers log and quota by it.
    pub client_id: String,
    /// Deadline for establishing the TCP connection.
    pub connect_timeout: Duration,
    /// Deadline for one request/response round trip.
    pub request_timeout: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: "strata".to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// An open, version-negotiated connection to one broker.
#[derive(Debug)]
pub struct Connection {
    /// `host:port`, for error messages.
    addr: String,
    stream: TcpStream,
    client_id: StrBytes,
    /// Next correlation id; Kafka only requires uniqueness among in-flight requests.
    next_correlation_id: i32,
    /// What the broker speaks, learned on connect.
    versions: ApiVersions,
    request_timeout: Duration,
    /// Set when a send or receive failed half way; the stream may be mid-frame and the
    /// owner must open a new connection.
    broken: bool,
}

impl Connection {
    /// Connects to `addr` and asks the broker which API versions it speaks.
    pub async fn connect(addr: &str, config: &ConnectionConfig) -> Result<Self> {
        let stream =
            match tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => return Err(Error::connect(addr, &err)),
                Err(_) => {
                    return Err(Error::Timeout {
                        operation: "connect".to_owned(),
                        addr: addr.to_owned(),
                        after: config.connect_timeout,
                    });
                }
            };
        // Requests are written whole; Nagle would only delay them.
        stream
            .set_nodelay(true)
            .map_err(|err| Error::connect(addr, &err))?;
        let mut conn = Connection {
            addr: addr.to_owned(),
            stream,
            client_id: StrBytes::from_string(config.client_id.clone()),
            next_correlation_id: 0,
            versions: ApiVersions::default(),
            request_timeout: config.request_timeout,
            broken: false,
        };
        conn.versions = conn.handshake().await?;
        Ok(conn)
    }

    /// `host:port` of the broker.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The deadline for one round trip.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Whether the connection must be replaced.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The API versions the broker advertised.
    pub fn api_versions(&self) -> &ApiVersions {
        &self.versions
    }

    /// The version of `R` to use with this broker: the highest both sides speak.
    pub fn version<R: Request>(&self) -> Result<i16> {
        let api = api_key::<R>()?;
        self.versions
            .negotiate(api, R::VERSIONS)
            .ok_or_else(|| Error::UnsupportedApi {
                addr: self.addr.clone(),
                api: format!("{api:?}"),
                ours: R::VERSIONS.to_string(),
            })
    }

    /// Sends `request` at the negotiated version and waits for its response.
    pub async fn send<R: Request>(&mut self, request: &R) -> Result<R::Response> {
        let version = self.version::<R>()?;
        self.send_at(request, version).await
    }

    /// Sends `request` at `version` (from [`Connection::version`]) and waits for its
    /// response, within the connection's request timeout.
    pub async fn send_at<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response> {
        self.send_with_timeout(request, version, self.request_timeout)
            .await
    }

    /// Like [`Connection::send_at`] with an explicit deadline, for requests the broker
    /// may hold on purpose (a Fetch with `max_wait_ms`).
    pub async fn send_with_timeout<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let body = self.round_trip::<R>(request, version, timeout).await?;
        decode_response_body::<R>(body, version).map_err(|message| self.protocol_error(message))
    }

    /// Sends a request the broker does not answer (a Produce with `acks=0`).
    pub async fn send_without_response<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<()> {
        let correlation_id = self.take_correlation_id();
        let frame = encode_request(request, version, correlation_id, &self.client_id)
            .map_err(|message| self.protocol_error(message))?;
        let timeout = self.request_timeout;
        let addr = self.addr.clone();
        match tokio::time::timeout(timeout, self.stream.write_all(&frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => {
                self.broken = true;
                Err(Error::io(&addr, &err))
            }
            Err(_) => {
                self.broken = true;
                Err(timeout_error::<R>(&addr, timeout))
            }
        }
    }

    /// ApiVersions, at the newest version we speak; a broker that does not speak it
    /// answers with UNSUPPORTED_VERSION and a v0 body listing what it does speak, and we
    /// retry at its highest version.
    async fn handshake(&mut self) -> Result<ApiVersions> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strata-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut version = ApiVersionsRequest::VERSIONS.max;
        for _ in 0..2 {
            let body = self
                .round_trip::<ApiVersionsRequest>(&request, version, self.request_timeout)
                .await?;
            let response = match decode_response_body::<ApiVersionsRequest>(body.clone(), version) {
                Ok(response) if response.error_code != UNSUPPORTED_VERSION => response,
                // Either the error or a body we could not read at our version: the
                // broker fell back to v0.
                _ => decode_response_body::<ApiVersionsRequest>(body, 0)
                    .map_err(|message| self.protocol_error(message))?,
            };
            if response.error_code == UNSUPPORTED_VERSION {
                let theirs = ApiVersions::from_response(&response.api_keys);
                match theirs.negotiate(ApiKey::ApiVersions, ApiVersionsRequest::VERSIONS) {
                    Some(v) if v < version => {
                        version = v;
                        continue;
                    }
                    _ => {
                        return Err(Error::UnsupportedApi {
                            addr: self.addr.clone(),
                            api: "ApiVersions".to_owned(),
                            ours: ApiVersionsRequest::VERSIONS.to_string(),
                        });
                    }
                }
            }
            Error::check(
                response.error_code,
                || format!("ApiVersions from {}", self.addr),
                None,
            )?;
            return Ok(ApiVersions::from_response(&response.api_keys));
        }
        Err(self.protocol_error("broker kept rejecting ApiVersions".to_owned()))
    }

    /// Writes one request frame and reads back the body of its response (the bytes
    /// after the response header).
    async fn round_trip<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<Bytes> {
        if self.broken {
            return Err(Error::Io {
                addr: self.addr.clone(),
                kind: std::io::ErrorKind::NotConnected,
                reason: "connection was closed after an earlier failure".to_owned(),
            });
        }
        let correlation_id = self.take_correlation_id();
        let frame = encode_request(request, version, correlation_id, &self.client_id)
            .map_err(|message| self.protocol_error(message))?;
        let exchange = async {
            self.stream.write_all(&frame).await?;
            read_frame(&mut self.stream).await
        };
        let frame = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(frame)) => frame,
            Ok(Err(err)) => {
                self.broken = true;
                return Err(Error::io(&self.addr, &err));
            }
            Err(_) => {
                self.broken = true;
                return Err(timeout_error::<R>(&self.addr, timeout));
            }
        };
        let api = api_key::<R>()?;
        let (header_correlation_id, body) =
            split_response_header(frame, api.response_header_version(version))
                .map_err(|message| self.protocol_error(message))?;
        if header_correlation_id != correlation_id {
            self.broken = true;
            return Err(self.protocol_error(format!(
                "response correlation id {header_correlation_id} does not match request {correlation_id}"
            )));
        }
        Ok(body)
    }

    fn take_correlation_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1) & i32::MAX;
        id
    }

    fn protocol_error(&self, message: String) -> Error {
        Error::Protocol {
            addr: self.addr.clone(),
            message,
        }
    }
}

fn api_key<R: Request>() -> Result<ApiKey> {
    ApiKey::try_from(R::KEY).map_err(|()| Error::Invalid(format!("unknown API key {}", R::KEY)))
}

fn timeout_error<R: Request>(addr: &str, after: Duration) -> Error {
    let operation = match ApiKey::try_from(R::KEY) {
        Ok(api) => format!("{api:?} request"),
        Err(()) => format!("request with API key {}", R::KEY),
    };
    Error::Timeout {
        operation,
        addr: addr.to_owned(),
        after,
    }
}

/// Encodes a whole request frame: length prefix, header, body.
pub fn encode_request<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
) -> Result<BytesMut, String> {
    let api = ApiKey::try_from(R::KEY).map_err(|()| format!("unknown API key {}", R::KEY))?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let mut buf = BytesMut::new();
    buf.put_i32(0); // length, patched below
    header
        .encode(&mut buf, api.request_header_version(version))
        .map_err(|err| format!("cannot encode {api:?} v{version} header: {err}"))?;
    request
        .encode(&mut buf, version)
        .map_err(|err| format!("cannot encode {api:?} v{version}: {err}"))?;
    let len = i32::try_from(buf.len() - 4).map_err(|_| "request too large".to_owned())?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

/// Splits a response frame (without its length prefix) into the correlation id and the
/// body.
pub fn split_response_header(
    mut frame: Bytes,
    header_version: i16,
) -> Result<(i32, Bytes), String> {
    let header = ResponseHeader::decode(&mut frame, header_version)
        .map_err(|err| format!("cannot decode response header: {err}"))?;
    Ok((header.correlation_id, frame))
}

/// Decodes a response body at `version`, insisting that nothing is left over: trailing
/// bytes mean the two sides disagree about the version.
pub fn decode_response_body<R: Request>(
    mut body: Bytes,
    version: i16,
) -> Result<R::Response, String> {
    let response = <R::Response as Decodable>::decode(&mut body, version).map_err(|err| {
        format!(
            "cannot decode {} v{version} response: {err}",
            api_name::<R>()
        )
    })?;
    if body.has_remaining() {
        return Err(format!(
            "{} v{version} response has {} unexpected trailing bytes",
            api_name::<R>(),
            body.remaining()
        ));
    }
    Ok(response)
}

fn api_name<R: Request>() -> String {
    match ApiKey::try_from(R::KEY) {
        Ok(api) => format!("{api:?}"),
        Err(()) => format!("API key {}", R::KEY),
    }
}

/// Reads one length-prefixed frame.
async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Bytes> {
    let len = stream.read_i32().await?;
    let len = usize::try_from(len)
        .ok()
        .filter(|len| *len <= MAX_FRAME_BYTES)
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad frame length {len}"),
            )
        })?;
    let mut buf = vec![0; len];
    stream.read_exact(&mut buf).await?;
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::{ApiVersionsResponse, MetadataRequest, MetadataResponse};

    #[test]
    fn request_frame_has_length_header_and_body() {
        let request = MetadataRequest::default();
        let frame = encode_request(&request, 12, 7, &StrBytes::from_static_str("cli")).unwrap();
        let mut buf = frame.freeze();
        assert_eq!(buf.get_i32() as usize, buf.remaining());
        // Metadata v12 is flexible, so the header is v2.
        let header = RequestHeader::decode(&mut buf, 2).unwrap();
        assert_eq!(header.request_api_key, ApiKey::Metadata as i16);
        assert_eq!(header.request_api_version, 12);
        assert_eq!(header.correlation_id, 7);
        assert_eq!(header.client_id.as_deref(), Some("cli"));
        let decoded = MetadataRequest::decode(&mut buf, 12).unwrap();
        assert_eq!(decoded, request);
    }

    #[test]
    fn response_header_version_follows_the_api() {
        for (version, header_version) in [(8_i16, 0_i16), (9, 1)] {
            let response = MetadataResponse::default().with_controller_id(3.into());
            let mut frame = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(42)
                .encode(&mut frame, header_version)
                .unwrap();
            response.encode(&mut frame, version).unwrap();
            assert_eq!(
                ApiKey::Metadata.response_header_version(version),
                header_version
            );
            let (correlation_id, body) =
                split_response_header(frame.freeze(), header_version).unwrap();
            assert_eq!(correlation_id, 42);
            let decoded = decode_response_body::<MetadataRequest>(body, version).unwrap();
            assert_eq!(decoded.controller_id.0, 3);
        }
    }

    #[test]
    fn trailing_bytes_are_a_version_mismatch() {
        let mut body = BytesMut::new();
        MetadataResponse::default().encode(&mut body, 1).unwrap();
        body.put_u8(0);
        assert!(decode_response_body::<MetadataRequest>(body.freeze(), 1).is_err());
    }

    /// Reads one request frame the way a broker does.
    async fn read_request(stream: &mut TcpStream) -> (RequestHeader, Bytes) {
        let mut frame = read_frame(stream).await.unwrap();
        let api = ApiKey::try_from((&frame[..2]).get_i16()).unwrap();
        let version = (&frame[2..4]).get_i16();
        let header =
            RequestHeader::decode(&mut frame, api.request_header_version(version)).unwrap();
        (header, frame)
    }

    /// Writes a response frame for `header`'s request.
    async fn write_response<M: Encodable>(
        stream: &mut TcpStream,
        header: &RequestHeader,
        body_version: i16,
        body: &M,
    ) {
        let api = ApiKey::try_from(header.request_api_key).unwrap();
        let mut buf = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(
                &mut buf,
                api.response_header_version(header.request_api_version),
            )
            .unwrap();
        body.encode(&mut buf, body_version).unwrap();
        stream.write_i32(buf.len() as i32).await.unwrap();
        stream.write_all(&buf).await.unwrap();
    }

    fn api(key: ApiKey, min: i16, max: i16) -> ApiVersion {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(min)
            .with_max_version(max)
    }

    #[tokio::test]
    async fn handshake_falls_back_when_the_broker_is_older() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let broker = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            // Our newest ApiVersions is too new: answer UNSUPPORTED_VERSION in v0 form,
            // listing what this broker speaks.
            let (header, _) = read_request(&mut stream).await;
            assert_eq!(header.request_api_key, ApiKey::ApiVersions as i16);
            assert_eq!(header.request_api_version, ApiVersionsRequest::VERSIONS.max);
            let speaks = vec![api(ApiKey::ApiVersions, 0, 2), api(ApiKey::Metadata, 0, 7)];
            let refusal = ApiVersionsResponse::default()
                .with_error_code(UNSUPPORTED_VERSION)
                .with_api_keys(speaks.clone());
            write_response(&mut stream, &header, 0, &refusal).await;
            // The retry uses v2.
            let (header, mut body) = read_request(&mut stream).await;
            assert_eq!(header.request_api_version, 2);
            ApiVersionsRequest::decode(&mut body, 2).unwrap();
            write_response(
                &mut stream,
                &header,
                2,
                &ApiVersionsResponse::default().with_api_keys(speaks),
            )
            .await;
            // Metadata comes at the broker's highest version.
            let (header, mut body) = read_request(&mut stream).await;
            assert_eq!(header.request_api_key, ApiKey::Metadata as i16);
            assert_eq!(header.request_api_version, 7);
            assert_eq!(header.client_id.as_deref(), Some("strata"));
            MetadataRequest::decode(&mut body, 7).unwrap();
            let response = MetadataResponse::default().with_controller_id(5.into());
            write_response(&mut stream, &header, 7, &response).await;
        });
        let mut conn = Connection::connect(&addr, &ConnectionConfig::default())
            .await
            .unwrap();
        assert_eq!(conn.version::<MetadataRequest>().unwrap(), 7);
        let err = conn
            .version::<kafka_protocol::messages::ProduceRequest>()
            .unwrap_err();
        assert!(matches!(err, Error::UnsupportedApi { .. }), "{err}");
        let response = conn.send(&MetadataRequest::default()).await.unwrap();
        assert_eq!(response.controller_id.0, 5);
        broker.await.unwrap();
    }

    #[tokio::test]
    async fn silent_broker_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let broker = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            // Hold the connection open without answering.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(stream);
        });
        let config = ConnectionConfig {
            request_timeout: Duration::from_millis(50),
            ..ConnectionConfig::default()
        };
        let err = Connection::connect(&addr, &config).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("ApiVersions request to {addr} timed out after 50 ms")
        );
        broker.abort();
    }

    #[tokio::test]
    async fn refused_connection_names_the_address() {
        // Bind then drop a listener to find a port nobody listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = Connection::connect(&addr, &ConnectionConfig::default())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot connect to {addr}: Connection refused")
        );
    }
}
