//! The server side of SASL on a `SASL_PLAINTEXT` or `SASL_SSL` listener, as Kafka's
//! `SaslServerAuthenticator` runs it, one per connection:
//!
//! 1. Before authentication only ApiVersions, SaslHandshake and SaslAuthenticate are
//!    served; any other request closes the connection.
//! 2. SaslHandshake names the mechanism (UNSUPPORTED_SASL_MECHANISM with the enabled
//!    list, then close, if it is not enabled). At v1 the tokens then travel in
//!    SaslAuthenticate requests (KIP-152); at v0 as bare length-prefixed frames.
//! 3. A failed exchange is answered with SASL_AUTHENTICATION_FAILED and the connection
//!    closed; the reason goes to the broker's log, never to the client.
//! 4. With `connections.max.reauth.ms` > 0 the final SaslAuthenticate response carries
//!    the session lifetime (KIP-368); the client re-authenticates on the same connection
//!    with a new SaslHandshake before it ends, as the same principal, and a request
//!    arriving after the session ended closes the connection.
//!
//! Mechanisms: PLAIN (users from the listener's JAAS `user_<name>` options) and
//! SCRAM-SHA-256/512 (credentials from `/config/users/<name>`, see [`super::scram`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::scram::{self, ClientFirst, ScramCredential, ScramMechanism, ScramServer};
use crate::api::{self, Frames, RequestError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
        }
    }

    pub fn from_name(name: &str) -> Option<Mechanism> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            other => ScramMechanism::from_name(other).map(Mechanism::Scram),
        }
    }
}

/// One listener's SASL settings.
#[derive(Debug, Clone)]
pub struct SaslServerConfig {
    /// `sasl.enabled.mechanisms`, in the order given.
    pub mechanisms: Vec<Mechanism>,
    /// PLAIN's users and passwords (`user_<name>` in the listener's PLAIN JAAS config).
    pub plain_users: BTreeMap<String, String>,
    /// `connections.max.reauth.ms`; zero turns re-authentication off.
    pub max_reauth: Duration,
    /// `sasl.server.max.receive.size`: the largest frame before authentication.
    pub max_receive: usize,
}

/// Where SCRAM credentials come from (the metadata store; a map in tests).
pub trait CredentialStore: Send + Sync {
    fn scram_credential<'a>(
        &'a self,
        mechanism: ScramMechanism,
        user: &'a str,
    ) -> BoxFuture<'a, Option<ScramCredential>>;
}

/// What the connection does with a frame after the authenticator saw it.
#[derive(Debug)]
pub enum SaslOutcome {
    /// Not the authenticator's: handle as an ordinary request.
    PassThrough,
    Respond(Frames),
    /// Send the response, then close (a refused mechanism or failed authentication).
    RespondAndClose(Frames, String),
    Close(String),
}

#[derive(Debug)]
enum State {
    /// Waiting for SaslHandshake (at the start, or after a completed authentication
    /// for a re-authentication).
    Handshake,
    /// The mechanism is chosen; tokens come next.
    Authenticate {
        mechanism: Mechanism,
        /// SaslHandshake v0: bare tokens instead of SaslAuthenticate requests.
        raw: bool,
        scram: Option<Box<ScramServer>>,
    },
    Complete,
}

pub struct Authenticator {
    config: Arc<SaslServerConfig>,
    state: State,
    /// `User:<name>` once authenticated.
    principal: Option<String>,
    session_ends: Option<Instant>,
    /// An exchange completed since [`Authenticator::take_completed`] last looked.
    completed: bool,
}

const HANDSHAKE: i16 = ApiKey::SaslHandshake as i16;
const AUTHENTICATE: i16 = ApiKey::SaslAuthenticate as i16;
const API_VERSIONS: i16 = ApiKey::ApiVersions as i16;

/// Kafka's message for a failed authentication; the reason stays in the broker's log.
fn failure_message(mechanism: Mechanism) -> String {
    format!(
        "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
        mechanism.name()
    )
}

impl Authenticator {
    pub fn new(config: Arc<SaslServerConfig>) -> Authenticator {
        Authenticator {
            config,
            state: State::Handshake,
            principal: None,
            session_ends: None,
            completed: false,
        }
    }

    pub fn max_receive(&self) -> usize {
        self.config.max_receive
    }

    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    /// Whether an authentication (or re-authentication) succeeded since the last call.
    pub fn take_completed(&mut self) -> bool {
        std::mem::take(&mut self.completed)
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Complete)
    }

    /// Looks at one request frame (header and body, without the length prefix).
    pub async fn on_frame(
        &mut self,
        frame: &Bytes,
        store: &dyn CredentialStore,
        now: Instant,
    ) -> SaslOutcome {
        if let State::Authenticate {
            raw: true,
            mechanism,
            ..
        } = &self.state
        {
            let mechanism = *mechanism;
            return match self.token(frame, store, now).await {
                Ok(reply) => SaslOutcome::Respond(raw_frame(&reply)),
                Err(reason) => SaslOutcome::Close(format!(
                    "{} authentication failed: {reason}",
                    mechanism.name()
                )),
            };
        }
        let api_key = match frame.get(..2) {
            Some(k) => i16::from_be_bytes([k[0], k[1]]),
            None => return SaslOutcome::Close("request shorter than a header".into()),
        };
        match (&self.state, api_key) {
            (State::Complete, HANDSHAKE) => {
                if self.config.max_reauth.is_zero() {
                    // Kafka answers a second handshake on a connection without
                    // re-authentication with ILLEGAL_SASL_STATE, through its API layer.
                    return SaslOutcome::PassThrough;
                }
                self.handshake(frame)
            }
            (State::Complete, _) => match self.session_ends {
                Some(ends) if now >= ends => SaslOutcome::Close(
                    "the SASL session ended (connections.max.reauth.ms) without re-authentication"
                        .into(),
                ),
                _ => SaslOutcome::PassThrough,
            },
            (State::Handshake, API_VERSIONS) => SaslOutcome::PassThrough,
            (State::Handshake, HANDSHAKE) => self.handshake(frame),
            (State::Authenticate { .. }, AUTHENTICATE) => {
                self.authenticate(frame, store, now).await
            }
            (State::Handshake, other) => SaslOutcome::Close(format!(
                "unexpected request (API key {other}) before SASL authentication"
            )),
            (State::Authenticate { .. }, other) => SaslOutcome::Close(format!(
                "unexpected request (API key {other}) during SASL authentication"
            )),
        }
    }

    fn handshake(&mut self, frame: &Bytes) -> SaslOutcome {
        let (header, request) = match decode::<SaslHandshakeRequest>(frame, ApiKey::SaslHandshake) {
            Ok(d) => d,
            Err(reason) => return SaslOutcome::Close(reason),
        };
        let version = header.request_api_version;
        let enabled = self
            .config
            .mechanisms
            .iter()
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect();
        let chosen = Mechanism::from_name(request.mechanism.as_str())
            .filter(|m| self.config.mechanisms.contains(m));
        let mut response = SaslHandshakeResponse::default().with_mechanisms(enabled);
        let Some(mechanism) = chosen else {
            response.error_code = ResponseError::UnsupportedSaslMechanism.code();
            return match respond(&header, ApiKey::SaslHandshake, &response) {
                Ok(f) => SaslOutcome::RespondAndClose(
                    f,
                    format!(
                        "SASL mechanism '{}' is not enabled on this listener",
                        request.mechanism.as_str()
                    ),
                ),
                Err(reason) => SaslOutcome::Close(reason),
            };
        };
        self.state = State::Authenticate {
            mechanism,
            raw: version == 0,
            scram: None,
        };
        match respond(&header, ApiKey::SaslHandshake, &response) {
            Ok(f) => SaslOutcome::Respond(f),
            Err(reason) => SaslOutcome::Close(reason),
        }
    }

    async fn authenticate(
        &mut self,
        frame: &Bytes,
        store: &dyn CredentialStore,
        now: Instant,
    ) -> SaslOutcome {
        let (header, request) =
            match decode::<SaslAuthenticateRequest>(frame, ApiKey::SaslAuthenticate) {
                Ok(d) => d,
                Err(reason) => return SaslOutcome::Close(reason),
            };
        let State::Authenticate { mechanism, .. } = self.state else {
            unreachable!("authenticate is only reached while authenticating");
        };
        let mut response = SaslAuthenticateResponse::default();
        match self.token(&request.auth_bytes, store, now).await {
            Ok(reply) => {
                response.auth_bytes = Bytes::from(reply);
                if self.is_authenticated() && !self.config.max_reauth.is_zero() {
                    response.session_lifetime_ms = self.config.max_reauth.as_millis() as i64;
                }
                match respond(&header, ApiKey::SaslAuthenticate, &response) {
                    Ok(f) => SaslOutcome::Respond(f),
                    Err(reason) => SaslOutcome::Close(reason),
                }
            }
            Err(reason) => {
                response.error_code = ResponseError::SaslAuthenticationFailed.code();
                response.error_message = Some(StrBytes::from_string(failure_message(mechanism)));
                let reason = format!("{} authentication failed: {reason}", mechanism.name());
                match respond(&header, ApiKey::SaslAuthenticate, &response) {
                    Ok(f) => SaslOutcome::RespondAndClose(f, reason),
                    Err(e) => SaslOutcome::Close(e),
                }
            }
        }
    }

    /// Runs one step of the chosen mechanism; the reply token, or why it failed.
    async fn token(
        &mut self,
        token: &[u8],
        store: &dyn CredentialStore,
        now: Instant,
    ) -> Result<Vec<u8>, String> {
        let State::Authenticate {
            mechanism, scram, ..
        } = &mut self.state
        else {
            unreachable!("tokens are only taken while authenticating");
        };
        let mechanism = *mechanism;
        let (user, reply) = match (mechanism, scram.take()) {
            (Mechanism::Plain, _) => (plain(&self.config.plain_users, token)?, Vec::new()),
            (Mechanism::Scram(m), None) => {
                let first = ClientFirst::parse(token).map_err(|e| e.to_string())?;
                let credential = store
                    .scram_credential(m, &first.username)
                    .await
                    .ok_or_else(|| format!("no {m} credential for user '{}'", first.username))?;
                let (server, reply) = ScramServer::start(m, first, credential, &scram::new_nonce())
                    .map_err(|e| e.to_string())?;
                *scram = Some(Box::new(server));
                return Ok(reply);
            }
            (Mechanism::Scram(_), Some(server)) => {
                let user = server.username().to_string();
                (user, server.finish(token).map_err(|e| e.to_string())?)
            }
        };
        let principal = format!("User:{user}");
        if let Some(before) = &self.principal
            && *before != principal
        {
            return Err(format!(
                "re-authentication as {principal} on a connection of {before}"
            ));
        }
        self.principal = Some(principal);
        self.state = State::Complete;
        self.completed = true;
        self.session_ends =
            (!self.config.max_reauth.is_zero()).then(|| now + self.config.max_reauth);
        Ok(reply)
    }
}

/// PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`; the user it authenticates.
fn plain(users: &BTreeMap<String, String>, token: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(token).map_err(|_| "the PLAIN token is not UTF-8")?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the PLAIN token is not authzid NUL username NUL password".into());
    };
    if user.is_empty() {
        return Err("the PLAIN token has no username".into());
    }
    if !authzid.is_empty() && authzid != user {
        return Err(format!(
            "authorization id '{authzid}' is not the username '{user}'"
        ));
    }
    match users.get(user) {
        Some(expected) if scram::constant_time_eq(expected.as_bytes(), password.as_bytes()) => {
            Ok(user.to_string())
        }
        Some(_) => Err(format!("wrong password for user '{user}'")),
        None => Err(format!("unknown user '{user}'")),
    }
}

fn decode<R: Decodable>(frame: &Bytes, api_key: ApiKey) -> Result<(RequestHeader, R), String> {
    let mut body = frame.clone();
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let (min, max) = api::supported_range(api_key).expect("SASL APIs are advertised");
    if !(min..=max).contains(&version) {
        return Err(format!(
            "{api_key:?} v{version} is not supported (this broker serves v{min}-v{max})"
        ));
    }
    let header = RequestHeader::decode(&mut body, api_key.request_header_version(version))
        .map_err(|e| format!("malformed {api_key:?} request header: {e}"))?;
    let request =
        R::decode(&mut body, version).map_err(|e| format!("malformed {api_key:?} request: {e}"))?;
    Ok((header, request))
}

fn respond<R>(header: &RequestHeader, api_key: ApiKey, response: &R) -> Result<Frames, String>
where
    R: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion,
{
    api::encode_response(header, api_key, header.request_api_version, response)
        .map_err(|e| match e {
            RequestError::Close(reason) => reason,
        })
}

/// A bare token after SaslHandshake v0: a 4-byte length and the bytes.
fn raw_frame(token: &[u8]) -> Frames {
    let mut buf = BytesMut::with_capacity(4 + token.len());
    buf.put_i32(token.len() as i32);
    buf.put_slice(token);
    buf.into()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::Buf;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest, ResponseHeader};
    use kafka_protocol::protocol::{Encodable, HeaderVersion, Request};

    use super::super::scram::ScramClient;
    use super::*;

    struct Store(HashMap<(ScramMechanism, String), ScramCredential>);

    impl CredentialStore for Store {
        fn scram_credential<'a>(
            &'a self,
            mechanism: ScramMechanism,
            user: &'a str,
        ) -> BoxFuture<'a, Option<ScramCredential>> {
            let found = self.0.get(&(mechanism, user.to_string())).cloned();
            Box::pin(async move { found })
        }
    }

    fn store() -> Store {
        let m = ScramMechanism::Sha512;
        let c = ScramCredential::from_password(m, "alice-secret", b"salty".to_vec(), 4096);
        Store(HashMap::from([((m, "alice".to_string()), c)]))
    }

    fn config(reauth_ms: u64) -> Arc<SaslServerConfig> {
        Arc::new(SaslServerConfig {
            mechanisms: vec![Mechanism::Plain, Mechanism::Scram(ScramMechanism::Sha512)],
            plain_users: BTreeMap::from([("admin".into(), "admin-secret".into())]),
            max_reauth: Duration::from_millis(reauth_ms),
            max_receive: 524_288,
        })
    }

    fn frame<R: Encodable + HeaderVersion + Request>(request: &R, version: i16) -> Bytes {
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .encode(&mut buf, R::header_version(version))
            .unwrap();
        request.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    fn handshake(mechanism: &str, version: i16) -> Bytes {
        frame(
            &SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_string(mechanism.into())),
            version,
        )
    }

    fn authenticate(token: &[u8]) -> Bytes {
        frame(
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token)),
            2,
        )
    }

    /// The response body of an outcome, after the length prefix and header.
    async fn body(frames: Frames, header_version: i16) -> Bytes {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        frames.write_copied(&mut a).await.unwrap();
        drop(a);
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut b, &mut out)
            .await
            .unwrap();
        let mut bytes = Bytes::from(out);
        let len = bytes.get_i32() as usize;
        assert_eq!(len, bytes.len());
        ResponseHeader::decode(&mut bytes, header_version).unwrap();
        bytes
    }

    async fn authenticate_response(outcome: SaslOutcome) -> (SaslAuthenticateResponse, bool) {
        let (frames, closes) = match outcome {
            SaslOutcome::Respond(f) => (f, false),
            SaslOutcome::RespondAndClose(f, _) => (f, true),
            other => panic!("{other:?}"),
        };
        let mut b = body(frames, 1).await;
        (SaslAuthenticateResponse::decode(&mut b, 2).unwrap(), closes)
    }

    #[tokio::test]
    async fn only_api_versions_and_handshake_before_authentication() {
        let mut a = Authenticator::new(config(0));
        let now = Instant::now();
        let versions = frame(&ApiVersionsRequest::default(), 0);
        assert!(matches!(
            a.on_frame(&versions, &store(), now).await,
            SaslOutcome::PassThrough
        ));
        let metadata = frame(&MetadataRequest::default(), 4);
        assert!(matches!(
            a.on_frame(&metadata, &store(), now).await,
            SaslOutcome::Close(_)
        ));
    }

    #[tokio::test]
    async fn plain_logs_in_and_wrong_passwords_are_refused() {
        let now = Instant::now();
        let mut a = Authenticator::new(config(0));
        let SaslOutcome::Respond(f) = a.on_frame(&handshake("PLAIN", 1), &store(), now).await
        else {
            panic!()
        };
        let mut b = body(f, 0).await;
        let r = SaslHandshakeResponse::decode(&mut b, 1).unwrap();
        assert_eq!(r.error_code, 0);
        assert_eq!(r.mechanisms.len(), 2);
        let (r, closes) = authenticate_response(
            a.on_frame(&authenticate(b"\0admin\0admin-secret"), &store(), now)
                .await,
        )
        .await;
        assert_eq!((r.error_code, closes, r.session_lifetime_ms), (0, false, 0));
        assert_eq!(a.principal(), Some("User:admin"));
        let metadata = frame(&MetadataRequest::default(), 4);
        assert!(matches!(
            a.on_frame(&metadata, &store(), now).await,
            SaslOutcome::PassThrough
        ));

        for bad in [
            &b"\0admin\0nope"[..],
            b"\0nobody\0x",
            b"admin\0admin-secret",
            b"other\0admin\0admin-secret",
        ] {
            let mut a = Authenticator::new(config(0));
            a.on_frame(&handshake("PLAIN", 1), &store(), now).await;
            let (r, closes) =
                authenticate_response(a.on_frame(&authenticate(bad), &store(), now).await).await;
            assert_eq!(r.error_code, ResponseError::SaslAuthenticationFailed.code());
            assert!(closes);
            assert!(
                r.error_message
                    .unwrap()
                    .contains("invalid credentials with SASL mechanism PLAIN")
            );
            assert!(!a.is_authenticated());
        }
    }

    #[tokio::test]
    async fn a_mechanism_not_enabled_is_refused_with_the_list() {
        let mut a = Authenticator::new(config(0));
        let SaslOutcome::RespondAndClose(f, _) = a
            .on_frame(&handshake("SCRAM-SHA-256", 1), &store(), Instant::now())
            .await
        else {
            panic!()
        };
        let mut b = body(f, 0).await;
        let r = SaslHandshakeResponse::decode(&mut b, 1).unwrap();
        assert_eq!(r.error_code, ResponseError::UnsupportedSaslMechanism.code());
        let names: Vec<_> = r
            .mechanisms
            .iter()
            .map(|m| m.as_str().to_string())
            .collect();
        assert_eq!(names, ["PLAIN", "SCRAM-SHA-512"]);
    }

    async fn scram_login(
        a: &mut Authenticator,
        password: &str,
        now: Instant,
    ) -> (SaslAuthenticateResponse, bool) {
        let m = ScramMechanism::Sha512;
        a.on_frame(&handshake("SCRAM-SHA-512", 1), &store(), now)
            .await;
        let (client, first) = ScramClient::start(m, "alice", password, "abc");
        let (r, _) =
            authenticate_response(a.on_frame(&authenticate(&first), &store(), now).await).await;
        assert_eq!(r.error_code, 0);
        let (client, last) = client.prove(&r.auth_bytes).unwrap();
        let (r, closes) =
            authenticate_response(a.on_frame(&authenticate(&last), &store(), now).await).await;
        if r.error_code == 0 {
            client.verify(&r.auth_bytes).unwrap();
        }
        (r, closes)
    }

    #[tokio::test]
    async fn scram_logs_in_and_sessions_end_without_reauthentication() {
        let now = Instant::now();
        let mut a = Authenticator::new(config(60_000));
        let (r, closes) = scram_login(&mut a, "alice-secret", now).await;
        assert_eq!(
            (r.error_code, closes, r.session_lifetime_ms),
            (0, false, 60_000)
        );
        let metadata = frame(&MetadataRequest::default(), 4);
        let later = now + Duration::from_secs(59);
        assert!(matches!(
            a.on_frame(&metadata, &store(), later).await,
            SaslOutcome::PassThrough
        ));
        // Re-authentication before the end starts a new session.
        let (r, _) = scram_login(&mut a, "alice-secret", later).await;
        assert_eq!(r.error_code, 0);
        let after_first = now + Duration::from_secs(61);
        assert!(matches!(
            a.on_frame(&metadata, &store(), after_first).await,
            SaslOutcome::PassThrough
        ));
        let too_late = later + Duration::from_secs(61);
        assert!(matches!(
            a.on_frame(&metadata, &store(), too_late).await,
            SaslOutcome::Close(_)
        ));

        let mut a = Authenticator::new(config(0));
        let (r, closes) = scram_login(&mut a, "wrong", now).await;
        assert_eq!(r.error_code, ResponseError::SaslAuthenticationFailed.code());
        assert!(closes);
    }

    #[tokio::test]
    async fn reauthentication_keeps_the_principal() {
        let now = Instant::now();
        let mut a = Authenticator::new(config(60_000));
        scram_login(&mut a, "alice-secret", now).await;
        a.on_frame(&handshake("PLAIN", 1), &store(), now).await;
        let (r, closes) = authenticate_response(
            a.on_frame(&authenticate(b"\0admin\0admin-secret"), &store(), now)
                .await,
        )
        .await;
        assert_eq!(r.error_code, ResponseError::SaslAuthenticationFailed.code());
        assert!(closes);
    }

    #[tokio::test]
    async fn handshake_v0_exchanges_bare_tokens() {
        let now = Instant::now();
        let mut a = Authenticator::new(config(0));
        assert!(matches!(
            a.on_frame(&handshake("PLAIN", 0), &store(), now).await,
            SaslOutcome::Respond(_)
        ));
        let SaslOutcome::Respond(f) = a
            .on_frame(&Bytes::from_static(b"\0admin\0admin-secret"), &store(), now)
            .await
        else {
            panic!()
        };
        let (mut w, mut r) = tokio::io::duplex(64);
        f.write_copied(&mut w).await.unwrap();
        drop(w);
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut r, &mut out)
            .await
            .unwrap();
        assert_eq!(out, [0, 0, 0, 0]);
        assert!(a.is_authenticated());

        let mut a = Authenticator::new(config(0));
        a.on_frame(&handshake("PLAIN", 0), &store(), now).await;
        assert!(matches!(
            a.on_frame(&Bytes::from_static(b"\0admin\0bad"), &store(), now)
                .await,
            SaslOutcome::Close(_)
        ));
    }
}
