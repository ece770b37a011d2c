//! TLS servers for the broker's listeners and the coordinator's secure client port, with
//! rustls on ring: PEM key and trust stores (files or inline PEM), client certificates
//! none / requested / required, TLS 1.2 and 1.3, the cipher suites a list names. Each
//! server maps its own keys (Kafka's `ssl.*`, ZooKeeper's `ssl.keyStore.*`) onto
//! [`TlsSettings`].
//!
//! A renewed certificate is picked up without a restart: before accepting, the listener
//! looks (at most once a second) at the modification times of its PEM files and, when one
//! changed, builds a new configuration for the connections that follow. A file that does
//! not load keeps the previous configuration in force and is logged; open connections
//! keep the certificate they started with, as in Kafka.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

pub mod x509;

/// Whether clients present certificates (Kafka's `ssl.client.auth`, ZooKeeper's
/// `ssl.clientAuth` none / want / need).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// The protocols enabled unless configured otherwise.
pub const DEFAULT_PROTOCOLS: &str = "TLSv1.2,TLSv1.3";

/// `TLSv1.2,TLSv1.3` (Java's names) as rustls versions.
pub fn protocol_versions(
    list: &str,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let mut versions = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        versions.push(match name {
            "TLSv1.2" => &rustls::version::TLS12,
            "TLSv1.3" => &rustls::version::TLS13,
            other => {
                return Err(format!(
                    "{other} is not supported (TLSv1.2 and TLSv1.3 are)"
                ));
            }
        });
    }
    if versions.is_empty() {
        return Err("no protocol is enabled".into());
    }
    Ok(versions)
}

/// The IANA name of a cipher suite, as Java (and so Kafka and ZooKeeper) spells it:
/// rustls's TLS 1.3 names carry a `TLS13_` prefix where IANA's have `TLS_`.
pub fn cipher_suite_name(suite: &rustls::SupportedCipherSuite) -> String {
    let name = format!("{:?}", suite.suite());
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

/// A comma-separated list of cipher suites by their IANA names (Kafka's
/// `ssl.cipher.suites`, ZooKeeper's `ssl.ciphersuites`), in the given order of
/// preference; `None` for an empty list, which keeps rustls's defaults (as an unset list
/// keeps the JVM's). A name this server cannot offer is an error naming those it can, as
/// Java refuses a cipher suite it does not support.
pub fn cipher_suites(list: &str) -> Result<Option<Vec<rustls::SupportedCipherSuite>>, String> {
    let available = rustls::crypto::ring::default_provider().cipher_suites;
    let mut chosen: Vec<rustls::SupportedCipherSuite> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some(suite) = available.iter().find(|s| cipher_suite_name(s) == name) else {
            let names: Vec<String> = available.iter().map(cipher_suite_name).collect();
            return Err(format!(
                "{name} is not supported (supported: {})",
                names.join(", ")
            ));
        };
        if !chosen.iter().any(|c| c.suite() == suite.suite()) {
            chosen.push(*suite);
        }
    }
    Ok((!chosen.is_empty()).then_some(chosen))
}

/// Where the PEM comes from: a file (watched for renewal) or the config value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
}

impl Pem {
    pub fn load(&self) -> Result<Vec<u8>, String> {
        match self {
            Pem::File(path) => std::fs::read(path).map_err(|e| format!("{}: {e}", path.display())),
            Pem::Inline(text) => Ok(text.clone().into_bytes()),
        }
    }
}

/// The TLS settings of one server socket, as configured.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// What the socket is, for log lines (`listener SSL`, `secureClientPort`).
    pub name: String,
    /// Certificate chain and key: one file holding both, or two inline values.
    pub chain: Pem,
    pub key: Pem,
    pub trust: Option<Pem>,
    pub client_auth: ClientAuth,
    pub versions: Vec<&'static rustls::SupportedProtocolVersion>,
    /// The cipher suites offered, in order of preference; `None` for rustls's defaults.
    pub cipher_suites: Option<Vec<rustls::SupportedCipherSuite>>,
}

impl PartialEq for TlsSettings {
    fn eq(&self, other: &TlsSettings) -> bool {
        let versions = |s: &TlsSettings| s.versions.iter().map(|v| v.version).collect::<Vec<_>>();
        let suites = |s: &TlsSettings| {
            s.cipher_suites
                .as_ref()
                .map(|list| list.iter().map(|c| c.suite()).collect::<Vec<_>>())
        };
        self.name == other.name
            && suites(self) == suites(other)
            && self.chain == other.chain
            && self.key == other.key
            && self.trust == other.trust
            && self.client_auth == other.client_auth
            && versions(self) == versions(other)
    }
}

impl TlsSettings {
    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = [&self.chain, &self.key]
            .into_iter()
            .chain(self.trust.as_ref())
            .filter_map(|p| match p {
                Pem::File(path) => Some(path.clone()),
                Pem::Inline(_) => None,
            })
            .collect();
        files.dedup();
        files
    }

    /// The certificate chain and private key, read now.
    pub fn key_store(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
        let chain_pem = self.chain.load()?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the key store's certificate chain: {e}"))?;
        if chain.is_empty() {
            return Err("the key store holds no certificate".into());
        }
        let key_pem = self.key.load()?;
        if String::from_utf8_lossy(&key_pem).contains("ENCRYPTED PRIVATE KEY") {
            return Err("the key store's private key is encrypted, which is not supported".into());
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| format!("the key store's private key: {e}"))?;
        Ok((chain, key))
    }

    /// The trusted certificates, read now; `None` without a trust store.
    pub fn trust_store(&self) -> Result<Option<RootCertStore>, String> {
        self.trust.as_ref().map(load_roots).transpose()
    }

    /// Reads the PEM and builds rustls's configuration.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, String> {
        let (chain, key) = self.key_store()?;
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(suites) = &self.cipher_suites {
            provider.cipher_suites = suites.clone();
        }
        let provider = Arc::new(provider);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&self.versions)
            .map_err(|e| match &self.cipher_suites {
                Some(_) => format!(
                    "none of the configured cipher suites is usable with the enabled protocols: {e}"
                ),
                None => e.to_string(),
            })?;
        let builder = match (self.trust_store()?, self.client_auth) {
            (_, ClientAuth::None) | (None, _) => builder.with_no_client_auth(),
            (Some(roots), auth) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if auth == ClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("the key store's key does not fit its certificate: {e}"))?;
        Ok(Arc::new(config))
    }
}

fn load_roots(pem: &Pem) -> Result<RootCertStore, String> {
    let bytes = pem.load()?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| format!("the trust store: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("the trust store: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the trust store holds no certificate".into());
    }
    Ok(roots)
}

/// How often the PEM files are looked at for a renewal.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// A listener's TLS acceptor, rebuilt when its PEM files change.
pub struct TlsServer {
    settings: TlsSettings,
    state: Mutex<Loaded>,
}

struct Loaded {
    acceptor: TlsAcceptor,
    stamps: Vec<Option<SystemTime>>,
    checked: Instant,
}

fn stamps(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}

impl TlsServer {
    pub fn new(settings: TlsSettings) -> Result<TlsServer, String> {
        let stamps = stamps(&settings.files());
        let config = settings.server_config()?;
        Ok(TlsServer {
            settings,
            state: Mutex::new(Loaded {
                acceptor: TlsAcceptor::from(config),
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The acceptor for the next connection, reloaded first if a PEM file changed.
    pub fn acceptor(&self) -> TlsAcceptor {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() >= RELOAD_CHECK {
            state.checked = Instant::now();
            let now = stamps(&self.settings.files());
            if now != state.stamps {
                state.stamps = now;
                match self.settings.server_config() {
                    Ok(config) => {
                        state.acceptor = TlsAcceptor::from(config);
                        info!(socket = %self.settings.name, "TLS key or trust store changed; new connections use it");
                    }
                    Err(e) => warn!(
                        socket = %self.settings.name,
                        error = %e,
                        "TLS key or trust store changed but does not load; keeping the previous one"
                    ),
                }
            }
        }
        state.acceptor.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_suites_by_their_iana_names() {
        assert!(cipher_suites("").unwrap().is_none());
        assert!(cipher_suites(" , ").unwrap().is_none());
        let chosen = cipher_suites(
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256",
        )
        .unwrap()
        .unwrap();
        let names: Vec<String> = chosen.iter().map(cipher_suite_name).collect();
        assert_eq!(
            names,
            [
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "TLS_AES_128_GCM_SHA256"
            ]
        );
        // Every suite rustls offers has a name that reads back.
        for suite in rustls::crypto::ring::default_provider().cipher_suites {
            let name = cipher_suite_name(&suite);
            assert!(name.starts_with("TLS_"), "{name}");
            assert_eq!(
                cipher_suites(&name).unwrap().unwrap()[0].suite(),
                suite.suite()
            );
        }
        // CBC suites, which Java may still offer, are not here: refused with the list.
        let e = cipher_suites("TLS_RSA_WITH_AES_128_CBC_SHA").unwrap_err();
        assert!(
            e.contains("TLS_RSA_WITH_AES_128_CBC_SHA is not supported"),
            "{e}"
        );
        assert!(e.contains("TLS_AES_256_GCM_SHA384"), "{e}");
    }
}
