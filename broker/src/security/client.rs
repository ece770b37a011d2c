//! How this broker logs in to other brokers on the inter-broker listener (replica
//! fetchers, the controller's requests, requests to the controller), from the same keys
//! Kafka reads for it:
//!
//! - TLS (`SSL`, `SASL_SSL`): the listener's trust store verifies the other broker; its
//!   key store, if set, is offered as the client certificate; the host name is checked
//!   against the certificate unless `ssl.endpoint.identification.algorithm` is empty.
//! - SASL (`SASL_PLAINTEXT`, `SASL_SSL`): `sasl.mechanism.inter.broker.protocol`, with
//!   the `username` and `password` options of that mechanism's JAAS config on the
//!   listener (`listener.name.<l>.<mechanism>.sasl.jaas.config`). A SCRAM user must exist
//!   in `/config/users` before brokers that log in with it start, as in Kafka.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::ListenerKeys;
use super::jaas::JaasConfig;
use super::sasl::Mechanism;
use crate::config::KafkaConfig;
use crate::metadata::SecurityProtocol;

/// The credentials of a SASL login.
#[derive(Clone)]
pub struct SaslLogin {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// TLS towards another broker.
#[derive(Debug, Clone)]
pub struct TlsLogin {
    pub config: Arc<ClientConfig>,
}

/// How connections to other brokers are secured.
#[derive(Debug, Clone, Default)]
pub struct ClientSecurity {
    pub tls: Option<TlsLogin>,
    pub sasl: Option<SaslLogin>,
}

impl ClientSecurity {
    pub fn plaintext() -> ClientSecurity {
        ClientSecurity::default()
    }

    /// The inter-broker listener's client side.
    pub fn inter_broker(config: &KafkaConfig) -> Result<ClientSecurity, String> {
        let listener = config.inter_broker_listener();
        let protocol = config
            .listener_security_protocol(&listener)
            .as_deref()
            .and_then(SecurityProtocol::parse)
            .unwrap_or(SecurityProtocol::Plaintext);
        let keys = ListenerKeys::new(config, &listener);
        let in_listener = |e: String| {
            format!(
                "inter-broker listener {listener} ({}): {e}",
                protocol.name()
            )
        };
        let tls = match protocol {
            SecurityProtocol::Ssl | SecurityProtocol::SaslSsl => {
                Some(tls_login(&keys).map_err(in_listener)?)
            }
            _ => None,
        };
        let sasl = match protocol {
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => {
                Some(sasl_login(config, &keys).map_err(in_listener)?)
            }
            _ => None,
        };
        Ok(ClientSecurity { tls, sasl })
    }
}

fn tls_login(keys: &ListenerKeys<'_>) -> Result<TlsLogin, String> {
    let settings = super::tls::settings(keys)?;
    let roots = settings
        .trust_store()?
        .ok_or("a trust store (ssl.truststore.location or ssl.truststore.certificates) is needed to verify the other brokers")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let check_host = !keys
        .get("ssl.endpoint.identification.algorithm")
        .is_some_and(|v| v.trim().is_empty());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if check_host {
        builder.with_webpki_verifier(verifier)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyHostName(verifier)))
    };
    // The broker's own certificate is its client certificate, for listeners that ask.
    let (chain, key) = settings.key_store()?;
    let config = builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("the key store as a client certificate: {e}"))?;
    Ok(TlsLogin {
        config: Arc::new(config),
    })
}

fn sasl_login(config: &KafkaConfig, keys: &ListenerKeys<'_>) -> Result<SaslLogin, String> {
    let name = config
        .explicit
        .get("sasl.mechanism.inter.broker.protocol")
        .map(String::as_str)
        .unwrap_or("GSSAPI");
    let mechanism = Mechanism::from_name(name.trim()).ok_or_else(|| {
        format!(
            "sasl.mechanism.inter.broker.protocol: {name}{} is not supported; PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 are",
            if name == "GSSAPI" { " (Kafka's default)" } else { "" }
        )
    })?;
    let key = format!("{}.sasl.jaas.config", mechanism.name().to_ascii_lowercase());
    let text = keys.prefixed(&key).ok_or_else(|| {
        format!(
            "the broker's own login needs listener.name.{}.{key} with username and password",
            keys.listener().to_ascii_lowercase()
        )
    })?;
    let jaas = JaasConfig::parse(text).map_err(|e| format!("{key}: {e}"))?;
    match (jaas.option("username"), jaas.option("password")) {
        (Some(username), Some(password)) => Ok(SaslLogin {
            mechanism,
            username: username.to_string(),
            password: password.to_string(),
        }),
        _ => Err(format!(
            "{key} needs username and password options for the broker's own login"
        )),
    }
}

/// `ssl.endpoint.identification.algorithm=` (empty): the chain is verified, the host
/// name is not.
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
