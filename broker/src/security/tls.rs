//! TLS on `SSL` and `SASL_SSL` listeners, with rustls: Kafka's `ssl.*` keys for PEM
//! key and trust stores (files or inline PEM), `ssl.client.auth`, `ssl.enabled.protocols`.
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

use super::ListenerKeys;

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// Where the PEM comes from: a file (watched for renewal) or the config value itself.
#[derive(Debug, Clone)]
enum Pem {
    File(PathBuf),
    Inline(String),
}

impl Pem {
    fn load(&self) -> Result<Vec<u8>, String> {
        match self {
            Pem::File(path) => std::fs::read(path).map_err(|e| format!("{}: {e}", path.display())),
            Pem::Inline(text) => Ok(text.clone().into_bytes()),
        }
    }
}

/// The TLS settings of one listener, as configured.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    listener: String,
    /// Certificate chain and key: one file holding both, or two inline values.
    chain: Pem,
    key: Pem,
    trust: Option<Pem>,
    client_auth: ClientAuth,
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
}

impl TlsSettings {
    pub fn from_keys(keys: &ListenerKeys<'_>) -> Result<TlsSettings, String> {
        let store_type = |key: &str| keys.get(key).unwrap_or("JKS").to_ascii_uppercase();
        let (chain, key) = match (
            keys.get("ssl.keystore.location"),
            keys.get("ssl.keystore.certificate.chain"),
            keys.get("ssl.keystore.key"),
        ) {
            (Some(path), None, None) => {
                let path = PathBuf::from(path);
                (Pem::File(path.clone()), Pem::File(path))
            }
            (None, Some(chain), Some(key)) => (Pem::Inline(chain.into()), Pem::Inline(key.into())),
            (None, None, None) => {
                return Err(format!(
                    "{} needs a key store: ssl.keystore.location (PEM with the key and certificate chain) or ssl.keystore.certificate.chain and ssl.keystore.key",
                    keys.describe()
                ));
            }
            _ => {
                return Err(
                    "set either ssl.keystore.location or both ssl.keystore.certificate.chain and ssl.keystore.key"
                        .into(),
                );
            }
        };
        let keystore_type = store_type("ssl.keystore.type");
        if keystore_type != "PEM" {
            return Err(format!(
                "ssl.keystore.type {keystore_type} is not supported; use PEM (set ssl.keystore.type=PEM)"
            ));
        }
        if keys.get("ssl.key.password").is_some() {
            return Err(
                "ssl.key.password: encrypted PEM keys are not supported; give the key unencrypted (PKCS#8, PKCS#1 or SEC1) and protect the file"
                    .into(),
            );
        }
        let trust = match (
            keys.get("ssl.truststore.location"),
            keys.get("ssl.truststore.certificates"),
        ) {
            (Some(path), None) => Some(Pem::File(PathBuf::from(path))),
            (None, Some(certs)) => Some(Pem::Inline(certs.into())),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(
                    "set either ssl.truststore.location or ssl.truststore.certificates".into(),
                );
            }
        };
        if trust.is_some() {
            let truststore_type = store_type("ssl.truststore.type");
            if truststore_type != "PEM" {
                return Err(format!(
                    "ssl.truststore.type {truststore_type} is not supported; use PEM (set ssl.truststore.type=PEM)"
                ));
            }
        }
        let client_auth = match keys
            .get("ssl.client.auth")
            .unwrap_or("none")
            .to_ascii_lowercase()
            .as_str()
        {
            "none" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            other => {
                return Err(format!(
                    "ssl.client.auth '{other}' is not one of none, requested, required"
                ));
            }
        };
        if client_auth != ClientAuth::None && trust.is_none() {
            return Err(format!(
                "ssl.client.auth={} needs a trust store (ssl.truststore.location or ssl.truststore.certificates) to verify client certificates",
                keys.get("ssl.client.auth").unwrap_or_default()
            ));
        }
        let mut versions = Vec::new();
        for name in keys
            .get("ssl.enabled.protocols")
            .unwrap_or("TLSv1.2,TLSv1.3")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            versions.push(match name {
                "TLSv1.2" => &rustls::version::TLS12,
                "TLSv1.3" => &rustls::version::TLS13,
                other => {
                    return Err(format!(
                        "ssl.enabled.protocols: {other} is not supported (TLSv1.2 and TLSv1.3 are)"
                    ));
                }
            });
        }
        if versions.is_empty() {
            return Err("ssl.enabled.protocols is empty".into());
        }
        Ok(TlsSettings {
            listener: keys.listener().to_string(),
            chain,
            key,
            trust,
            client_auth,
            versions,
        })
    }

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
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&self.versions)
            .map_err(|e| e.to_string())?;
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

    pub fn client_auth(&self) -> ClientAuth {
        self.settings.client_auth
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
                        info!(listener = %self.settings.listener, "TLS key or trust store changed; new connections use it");
                    }
                    Err(e) => warn!(
                        listener = %self.settings.listener,
                        error = %e,
                        "TLS key or trust store changed but does not load; keeping the previous one"
                    ),
                }
            }
        }
        state.acceptor.clone()
    }
}
