//! Listener security: what each listener's `listener.security.protocol.map` entry asks
//! for, built from Kafka's keys.
//!
//! | protocol | transport | authentication |
//! |---|---|---|
//! | `PLAINTEXT` | TCP | none (principal `User:ANONYMOUS`) |
//! | `SSL` | TLS ([`tls`]) | the client certificate, if any ([`principal`]) |
//! | `SASL_PLAINTEXT` | TCP | SASL ([`sasl`]): PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 |
//! | `SASL_SSL` | TLS | SASL |
//!
//! Every key can be set for one listener with Kafka's prefix,
//! `listener.name.<listener, lower case>.<key>`, which wins over the unprefixed key; the
//! JAAS config of a mechanism only with its prefix,
//! `listener.name.<listener>.<mechanism, lower case>.sasl.jaas.config`, as Kafka requires.
//! SCRAM credentials live in `/config/users/<user>` (see [`scram`]) and are set with
//! AlterUserScramCredentials (`kafka-configs --alter --add-config 'SCRAM-SHA-256=[...]'
//! --entity-type users`). What a principal may do is the [`authorizer`]'s decision, from
//! ACLs in Kafka's model ([`acl`]).

pub mod acl;
pub mod authorizer;
pub mod client;
pub mod jaas;
pub mod principal;
pub mod sasl;
pub mod scram;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tracing::warn;

use crate::Broker;
use crate::config::KafkaConfig;
use crate::metadata::SecurityProtocol;
use jaas::JaasConfig;
use principal::MappingRules;
use sasl::{CredentialStore, Mechanism, SaslServerConfig};
use scram::{ScramCredential, ScramMechanism};
use strata_tls::TlsServer;

/// The entity type of user configs (`/config/users/<user>`).
pub const USERS: &str = "users";

/// Kafka's keys this module reads. Any of them may also carry a listener prefix.
const KEYS: &[&str] = &[
    "allow.everyone.if.no.acl.found",
    "authorizer.class.name",
    "connections.max.reauth.ms",
    "sasl.enabled.mechanisms",
    "sasl.jaas.config",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.server.max.receive.size",
    "ssl.cipher.suites",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.endpoint.identification.algorithm",
    "ssl.key.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.principal.mapping.rules",
    "ssl.truststore.certificates",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "super.users",
];

/// Whether a server.properties key is one this module reads (so it is not reported as
/// accepted-but-unused).
pub fn reads_key(key: &str) -> bool {
    let key = match key.strip_prefix("listener.name.") {
        // listener.name.<listener>.[<mechanism>.]<key>
        Some(rest) => match rest.split_once('.') {
            Some((_, rest)) => rest
                .strip_suffix("sasl.jaas.config")
                .map(|_| "sasl.jaas.config")
                .unwrap_or(rest),
            None => return false,
        },
        None => key,
    };
    KEYS.contains(&key)
}

/// One listener's view of the config: the prefixed key first, then the plain one.
pub struct ListenerKeys<'a> {
    config: &'a KafkaConfig,
    listener: &'a str,
    prefix: String,
}

impl<'a> ListenerKeys<'a> {
    pub fn new(config: &'a KafkaConfig, listener: &'a str) -> ListenerKeys<'a> {
        ListenerKeys {
            config,
            listener,
            prefix: format!("listener.name.{}.", listener.to_ascii_lowercase()),
        }
    }

    pub fn listener(&self) -> &str {
        self.listener
    }

    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.config
            .explicit
            .get(&format!("{}{key}", self.prefix))
            .or_else(|| self.config.explicit.get(key))
            .map(String::as_str)
    }

    /// Only the prefixed key (JAAS configs of a mechanism).
    pub(crate) fn prefixed(&self, key: &str) -> Option<&'a str> {
        self.config
            .explicit
            .get(&format!("{}{key}", self.prefix))
            .map(String::as_str)
    }

    fn describe(&self) -> String {
        format!("listener {}", self.listener)
    }
}

/// How connections on one listener are secured.
pub struct ListenerSecurity {
    pub protocol: SecurityProtocol,
    pub tls: Option<Arc<TlsServer>>,
    pub sasl: Option<Arc<SaslServerConfig>>,
    /// `ssl.principal.mapping.rules`: a client certificate's name to a principal.
    pub principal_rules: MappingRules,
}

impl ListenerSecurity {
    /// The principal of a TLS client certificate (DER): `User:<mapped name>`. An error
    /// when no rule maps the name (the connection is refused, as in Kafka).
    pub fn certificate_principal(&self, certificate: &[u8]) -> Result<String, String> {
        let dn = strata_tls::x509::subject_dn(certificate)?;
        self.principal_rules
            .apply(&dn)
            .map(|name| format!("User:{name}"))
            .ok_or_else(|| format!("no ssl.principal.mapping.rules rule applies to '{dn}'"))
    }
}

impl ListenerSecurity {
    /// Reads the listener's keys and its PEM files. The error names the listener and
    /// what is wrong.
    pub fn build(config: &KafkaConfig, listener: &str) -> Result<ListenerSecurity, String> {
        let protocol = config
            .listener_security_protocol(listener)
            .as_deref()
            .and_then(SecurityProtocol::parse)
            .ok_or_else(|| format!("listener {listener}: no known security protocol"))?;
        let keys = ListenerKeys::new(config, listener);
        let in_listener = |e: String| format!("listener {listener} ({}): {e}", protocol.name());
        let tls = match protocol {
            SecurityProtocol::Ssl | SecurityProtocol::SaslSsl => {
                let settings = tls::settings(&keys).map_err(in_listener)?;
                Some(Arc::new(TlsServer::new(settings).map_err(in_listener)?))
            }
            _ => None,
        };
        let sasl = match protocol {
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => {
                Some(Arc::new(sasl_config(&keys).map_err(in_listener)?))
            }
            _ => None,
        };
        let principal_rules =
            MappingRules::parse(keys.get("ssl.principal.mapping.rules").unwrap_or("DEFAULT"))
                .map_err(in_listener)?;
        Ok(ListenerSecurity {
            protocol,
            tls,
            sasl,
            principal_rules,
        })
    }
}

fn sasl_config(keys: &ListenerKeys<'_>) -> Result<SaslServerConfig, String> {
    let names = keys.get("sasl.enabled.mechanisms").unwrap_or("GSSAPI");
    let mut mechanisms = Vec::new();
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let mechanism = Mechanism::from_name(name).ok_or_else(|| {
            format!(
                "sasl.enabled.mechanisms: {name}{} is not supported; PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 are",
                if name == "GSSAPI" { " (Kafka's default)" } else { "" }
            )
        })?;
        if !mechanisms.contains(&mechanism) {
            mechanisms.push(mechanism);
        }
    }
    if mechanisms.is_empty() {
        return Err("sasl.enabled.mechanisms is empty".into());
    }
    let mut plain_users = Default::default();
    if mechanisms.contains(&Mechanism::Plain) {
        let key = "plain.sasl.jaas.config";
        let text = keys.prefixed(key).ok_or_else(|| {
            format!(
                "PLAIN needs its users: set listener.name.{}.{key} to a PlainLoginModule with user_<name>=\"<password>\" options",
                keys.listener().to_ascii_lowercase()
            )
        })?;
        let jaas = JaasConfig::parse(text).map_err(|e| format!("{key}: {e}"))?;
        plain_users = jaas.plain_users();
        if plain_users.is_empty() {
            return Err(format!(
                "{key} defines no user_<name> option: nobody could log in"
            ));
        }
    }
    let reauth_ms = match keys.get("connections.max.reauth.ms") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("connections.max.reauth.ms '{v}' is not a whole number of ms"))?,
    };
    let max_receive = match keys.get("sasl.server.max.receive.size") {
        None => 524_288,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("sasl.server.max.receive.size '{v}' is not a positive size"))?,
    };
    Ok(SaslServerConfig {
        mechanisms,
        plain_users,
        max_reauth: Duration::from_millis(reauth_ms),
        max_receive,
    })
}

/// SCRAM credentials from `/config/users/<user>`, read at each authentication so a
/// credential changed on any broker counts at once.
impl CredentialStore for Broker {
    fn scram_credential<'a>(
        &'a self,
        mechanism: ScramMechanism,
        user: &'a str,
    ) -> BoxFuture<'a, Option<ScramCredential>> {
        async move {
            let configs = match self
                .store
                .entity_configs(USERS.into(), user.to_string())
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    warn!(%user, error = %e, "cannot read SCRAM credentials");
                    return None;
                }
            };
            let value = configs.get(mechanism.name())?;
            match ScramCredential::from_config_value(value) {
                Ok(c) => Some(c),
                Err(e) => {
                    warn!(%user, %mechanism, error = %e, "stored SCRAM credential is unreadable");
                    None
                }
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> KafkaConfig {
        let mut c = KafkaConfig::default();
        for (k, v) in pairs {
            c.set(k, v).unwrap();
        }
        c
    }

    #[test]
    fn prefixed_keys_win_for_their_listener_only() {
        let c = config(&[
            ("ssl.client.auth", "none"),
            ("listener.name.external.ssl.client.auth", "required"),
        ]);
        assert_eq!(
            ListenerKeys::new(&c, "EXTERNAL").get("ssl.client.auth"),
            Some("required")
        );
        assert_eq!(
            ListenerKeys::new(&c, "INTERNAL").get("ssl.client.auth"),
            Some("none")
        );
        assert!(reads_key("listener.name.external.ssl.client.auth"));
        assert!(reads_key(
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config"
        ));
        assert!(reads_key("ssl.keystore.location"));
        assert!(!reads_key("ssl.keymanager.algorithm"));
        assert!(!reads_key("listener.name.x"));
    }

    #[test]
    fn sasl_listeners_say_what_is_missing() {
        let listener = [
            ("listeners", "SASL_PLAINTEXT://127.0.0.1:9092"),
            ("inter.broker.listener.name", "SASL_PLAINTEXT"),
        ];
        let c = config(&listener);
        let e = ListenerSecurity::build(&c, "SASL_PLAINTEXT").err().unwrap();
        assert!(
            e.contains("GSSAPI (Kafka's default) is not supported"),
            "{e}"
        );

        let mut pairs = listener.to_vec();
        pairs.push(("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"));
        let e = ListenerSecurity::build(&config(&pairs), "SASL_PLAINTEXT")
            .err()
            .unwrap();
        assert!(
            e.contains("listener.name.sasl_plaintext.plain.sasl.jaas.config"),
            "{e}"
        );

        pairs.push((
            "listener.name.sasl_plaintext.plain.sasl.jaas.config",
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="a";"#,
        ));
        pairs.push(("connections.max.reauth.ms", "30000"));
        let s = ListenerSecurity::build(&config(&pairs), "SASL_PLAINTEXT").unwrap();
        assert!(s.tls.is_none());
        let sasl = s.sasl.unwrap();
        assert_eq!(
            sasl.mechanisms,
            [Mechanism::Plain, Mechanism::Scram(ScramMechanism::Sha512)]
        );
        assert_eq!(sasl.plain_users["alice"], "a");
        assert_eq!(sasl.max_reauth, Duration::from_secs(30));
    }

    #[test]
    fn ssl_listeners_say_what_is_missing() {
        let base = [
            ("listeners", "SSL://127.0.0.1:9093"),
            ("inter.broker.listener.name", "SSL"),
        ];
        let e = ListenerSecurity::build(&config(&base), "SSL")
            .err()
            .unwrap();
        assert!(e.contains("needs a key store"), "{e}");
        let mut pairs = base.to_vec();
        pairs.push(("ssl.keystore.location", "/nonexistent/server.pem"));
        let e = ListenerSecurity::build(&config(&pairs), "SSL")
            .err()
            .unwrap();
        assert!(e.contains("ssl.keystore.type JKS is not supported"), "{e}");
        pairs.push(("ssl.keystore.type", "PEM"));
        let e = ListenerSecurity::build(&config(&pairs), "SSL")
            .err()
            .unwrap();
        assert!(e.contains("/nonexistent/server.pem"), "{e}");
        pairs.push(("ssl.client.auth", "required"));
        let e = ListenerSecurity::build(&config(&pairs), "SSL")
            .err()
            .unwrap();
        assert!(e.contains("needs a trust store"), "{e}");
    }
}
