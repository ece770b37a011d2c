//! Kafka's `ssl.*` keys of a listener, as the settings of its TLS server
//! ([`strata_tls`]): PEM key and trust stores (files or inline PEM), `ssl.client.auth`,
//! `ssl.enabled.protocols`, `ssl.cipher.suites`.

use std::path::PathBuf;

use strata_tls::{ClientAuth, Pem, TlsSettings};

use super::ListenerKeys;

pub fn settings(keys: &ListenerKeys<'_>) -> Result<TlsSettings, String> {
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
            return Err("set either ssl.truststore.location or ssl.truststore.certificates".into());
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
    let versions = strata_tls::protocol_versions(
        keys.get("ssl.enabled.protocols")
            .unwrap_or(strata_tls::DEFAULT_PROTOCOLS),
    )
    .map_err(|e| format!("ssl.enabled.protocols: {e}"))?;
    let cipher_suites =
        strata_tls::cipher_suites(keys.get("ssl.cipher.suites").unwrap_or_default())
            .map_err(|e| format!("ssl.cipher.suites: {e}"))?;
    Ok(TlsSettings {
        name: format!("listener {}", keys.listener()),
        chain,
        key,
        trust,
        client_auth,
        versions,
        cipher_suites,
    })
}
