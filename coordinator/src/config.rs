//! `zoo.cfg`: ZooKeeper's configuration file, same keys and format, plus `dataDir/myid`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use strata_tls::{ClientAuth, Pem, TlsSettings};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{file}:{line}: {msg}")]
    Line {
        file: String,
        line: usize,
        msg: String,
    },
    #[error("{0}")]
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    Participant,
    Observer,
}

/// The TLS client port.
#[derive(Debug, Clone, PartialEq)]
pub struct SecureClient {
    pub port: u16,
    pub address: Option<IpAddr>,
    pub tls: TlsSettings,
}

impl SecureClient {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(
            self.address.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            self.port,
        )
    }
}

/// One `server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub id: u64,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub role: PeerRole,
    /// Where this member serves clients, when its line says so (ZooKeeper 3.5+); a bare
    /// port means every address. A server takes its own as `clientPort` /
    /// `clientPortAddress` when those are not set.
    pub client: Option<ClientAddress>,
}

impl PeerConfig {
    /// The line as written, without the resolved client address.
    pub fn spec(&self) -> ServerSpec {
        ServerSpec {
            id: self.id,
            host: self.host.clone(),
            quorum_port: self.quorum_port,
            election_port: self.election_port,
            role: self.role,
            client: self
                .client
                .as_ref()
                .map(|c| (c.host.clone(), c.addr.port())),
        }
    }
}

/// The `;[clientHost:]clientPort` of a server line: the host as written (`0.0.0.0` for
/// a bare port) and the address it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress {
    pub host: String,
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub tick_time_ms: u64,
    pub init_limit: u64,
    pub sync_limit: u64,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    /// `clientPort`; `None` when only `secureClientPort` is set, as in ZooKeeper.
    pub client_port: Option<u16>,
    pub client_port_address: Option<IpAddr>,
    /// Whether `clientPort` or `clientPortAddress` was written (rather than defaulted):
    /// only then may it disagree with the server's own `server.N=...;address` line.
    pub client_address_given: bool,
    /// `secureClientPort` and its TLS settings.
    pub secure_client: Option<SecureClient>,
    pub max_client_cnxns: usize,
    /// `globalOutstandingLimit`: requests queued towards the processor before clients
    /// wait (ZooKeeper's default, 1000).
    pub global_outstanding_limit: usize,
    pub min_session_timeout_ms: u64,
    pub max_session_timeout_ms: u64,
    pub snap_retain_count: usize,
    /// Hours between autopurge runs; 0 disables it, as in ZooKeeper.
    pub purge_interval_hours: u64,
    pub four_letter_words: BTreeSet<String>,
    pub snap_count: u64,
    /// Where Prometheus metrics are served, if at all. As in ZooKeeper, only when a
    /// metrics provider is configured (`metricsProvider.className`), on
    /// `metricsProvider.httpHost:httpPort` (default 0.0.0.0:7000); an explicit non-zero
    /// `metricsProvider.httpPort` alone also turns them on.
    pub metrics_addr: Option<SocketAddr>,
    /// `quorumListenOnAllIPs`: take peer connections on every interface rather than on
    /// this server's own `server.N` address.
    pub quorum_listen_on_all_ips: bool,
    pub servers: BTreeMap<u64, PeerConfig>,
    /// This server's id, from `dataDir/myid` (0 when standalone without one).
    pub my_id: u64,
    /// `reconfigEnabled`: whether `reconfig` may change the membership (ZooKeeper's
    /// default since 3.5.3: no).
    pub reconfig_enabled: bool,
    /// `standaloneEnabled` (default true): a reconfiguration must then leave at least
    /// two voters.
    pub standalone_enabled: bool,
    /// `DigestAuthenticationProvider.superDigest` (ZooKeeper reads it as the system
    /// property `zookeeper.DigestAuthenticationProvider.superDigest`, which an unknown
    /// zoo.cfg key becomes): `user:base64(sha1(user:password))`. A session that
    /// authenticates as it passes every ACL.
    pub super_digest: Option<String>,
    /// `dynamicConfigFile` (ZooKeeper 3.5+): where the `server.N` lines are instead of
    /// zoo.cfg (ZooKeeper moves them there once reconfiguration is enabled).
    pub dynamic_config_file: Option<PathBuf>,
}

/// The metrics provider whose endpoint this server serves (ZooKeeper's Prometheus one).
pub const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";
/// ZooKeeper's providers that serve nothing (its default and the null one).
const SILENT_PROVIDERS: &[&str] = &[
    "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
    "org.apache.zookeeper.metrics.impl.NullMetricsProvider",
];

/// Every four-letter word this server knows, for `4lw.commands.whitelist=*`.
pub const ALL_FOUR_LETTER_WORDS: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "envi", "conf", "cons", "wchs", "isro",
];

impl Config {
    pub fn is_standalone(&self) -> bool {
        self.servers.is_empty()
    }

    /// The ensemble's membership as ZooKeeper writes it into `/zookeeper/config`
    /// (`QuorumMaj.toString`): a `server.N=host:quorumPort:electionPort:role` line per
    /// member (`;clientHost:clientPort` after it when its line has one), then `version=`
    /// and the config's version in hex, 0 for a static one.
    /// `None` for a standalone server, whose node stays empty.
    pub fn membership_text(&self) -> Option<String> {
        if self.is_standalone() {
            return None;
        }
        let specs: Vec<ServerSpec> = self.servers.values().map(PeerConfig::spec).collect();
        Some(config_text(&specs, 0))
    }

    /// Where plaintext clients connect, if anywhere.
    pub fn client_addr(&self) -> Option<SocketAddr> {
        let port = self.client_port?;
        Some(SocketAddr::new(
            self.client_port_address
                .unwrap_or(IpAddr::from([0, 0, 0, 0])),
            port,
        ))
    }

    /// Negotiate a session timeout into [minSessionTimeout, maxSessionTimeout].
    pub fn negotiate_timeout_ms(&self, requested: i64) -> i32 {
        requested.clamp(
            self.min_session_timeout_ms as i64,
            self.max_session_timeout_ms as i64,
        ) as i32
    }

    /// Read `zoo.cfg` and, when it has `server.N` lines, `dataDir/myid`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Other(format!("{}: {e}", path.display())))?;
        let mut cfg = Config::parse(&text, &path.display().to_string())?;
        if let Some(dynamic) = cfg.dynamic_config_file.clone() {
            cfg.read_dynamic_file(path, &dynamic)?;
        }
        if !cfg.is_standalone() {
            let myid = cfg.data_dir.join("myid");
            let raw = std::fs::read_to_string(&myid)
                .map_err(|e| ConfigError::Other(format!("{}: {e}", myid.display())))?;
            cfg.my_id = raw.trim().parse().map_err(|_| {
                ConfigError::Other(format!("{}: not a server id: {raw:?}", myid.display()))
            })?;
            if !cfg.servers.contains_key(&cfg.my_id) {
                return Err(ConfigError::Other(format!(
                    "{}: id {} has no server.{} line",
                    myid.display(),
                    cfg.my_id,
                    cfg.my_id
                )));
            }
            cfg.take_own_client_address()
                .map_err(|e| ConfigError::Other(format!("{}: {e}", path.display())))?;
        }
        Ok(cfg)
    }

    /// The membership from `dynamicConfigFile` (its `server.N` lines; a `version=` line
    /// is ZooKeeper's and is skipped). A relative path is taken from the directory of
    /// zoo.cfg when it is not found from the working directory.
    fn read_dynamic_file(&mut self, static_file: &Path, dynamic: &Path) -> Result<(), ConfigError> {
        if !self.servers.is_empty() {
            return Err(ConfigError::Other(format!(
                "{}: server.N lines and dynamicConfigFile are both given; the membership must be in one place",
                static_file.display()
            )));
        }
        let path = match static_file.parent() {
            Some(dir) if dynamic.is_relative() && !dynamic.exists() => dir.join(dynamic),
            _ => dynamic.to_path_buf(),
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::Other(format!("{}: {e}", path.display())))?;
        let err = |line: usize, msg: String| ConfigError::Line {
            file: path.display().to_string(),
            line,
            msg,
        };
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(err(i + 1, format!("expected key=value, got {line:?}")));
            };
            let key = key.trim();
            if key == "version" {
                continue;
            }
            let Some(id) = key.strip_prefix("server.") else {
                return Err(err(
                    i + 1,
                    format!("unexpected {key:?} in a dynamic configuration"),
                ));
            };
            let id: u64 = id
                .parse()
                .map_err(|_| err(i + 1, format!("bad server id in {key:?}")))?;
            let peer = parse_server(id, value.trim()).map_err(|m| err(i + 1, m))?;
            if self.servers.insert(id, peer).is_some() {
                return Err(err(i + 1, format!("server.{id} given twice")));
            }
        }
        Ok(())
    }

    /// A `server.<myid>` line with `;[clientHost:]clientPort` sets where this server
    /// serves clients, as ZooKeeper's `setupClientPort` does: a `clientPort` given too
    /// must have the same port, and a `clientPortAddress` the same address.
    fn take_own_client_address(&mut self) -> Result<(), String> {
        let Some(client) = self
            .servers
            .get(&self.my_id)
            .and_then(|s| s.client.as_ref())
        else {
            return Ok(());
        };
        let client = client.addr;
        if let Some(own) = self.client_addr().filter(|_| self.client_address_given) {
            let agrees = if own.ip().is_unspecified() {
                own.port() == client.port()
            } else {
                own == client
            };
            if !agrees {
                return Err(format!(
                    "the client address of this server (server.{}) is {client}, but \
                     clientPort / clientPortAddress say {own}",
                    self.my_id
                ));
            }
        }
        self.client_port = Some(client.port());
        self.client_port_address = Some(client.ip()).filter(|ip| !ip.is_unspecified());
        Ok(())
    }

    /// Parse `zoo.cfg` text. `file` names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let mut values: BTreeMap<String, (usize, String)> = BTreeMap::new();
        let mut servers = BTreeMap::new();
        let err = |line: usize, msg: String| ConfigError::Line {
            file: file.to_string(),
            line,
            msg,
        };
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(err(line_no, format!("expected key=value, got {line:?}")));
            };
            let (key, value) = (key.trim(), value.trim());
            if let Some(id) = key.strip_prefix("server.") {
                let id: u64 = id
                    .parse()
                    .map_err(|_| err(line_no, format!("bad server id in {key:?}")))?;
                let peer = parse_server(id, value).map_err(|m| err(line_no, m))?;
                if servers.insert(id, peer).is_some() {
                    return Err(err(line_no, format!("server.{id} given twice")));
                }
                continue;
            }
            values.insert(key.to_string(), (line_no, value.to_string()));
        }
        let num = |key: &str, default: u64| -> Result<u64, ConfigError> {
            parse_value(&values, key, default, "a number", &err)
        };
        let tick_time_ms = num("tickTime", 2000)?;
        if tick_time_ms == 0 {
            let line = values.get("tickTime").map_or(0, |v| v.0);
            return Err(err(line, "tickTime must be positive".into()));
        }
        let data_dir = match values.get("dataDir") {
            Some((_, v)) => PathBuf::from(v),
            None => return Err(ConfigError::Other(format!("{file}: dataDir is not set"))),
        };
        let data_log_dir = values
            .get("dataLogDir")
            .map_or_else(|| data_dir.clone(), |(_, v)| PathBuf::from(v));
        let port = |key: &str| -> Result<Option<u16>, ConfigError> {
            match values.get(key) {
                None => Ok(None),
                Some((line, v)) => v
                    .parse::<u16>()
                    .map(Some)
                    .map_err(|_| err(*line, format!("{key} out of range: {v:?}"))),
            }
        };
        let secure_client = match port("secureClientPort")? {
            None => None,
            Some(port) => Some(secure_client(&values, port, &err)?),
        };
        // Without either port ZooKeeper's default applies; with only the secure one
        // there is no plaintext port at all.
        let client_port = match port("clientPort")? {
            Some(p) => Some(p),
            None if secure_client.is_some() => None,
            None => Some(2181),
        };
        let client_port_address = match values.get("clientPortAddress") {
            None => None,
            Some((line, v)) => Some(
                v.parse()
                    .map_err(|_| err(*line, format!("clientPortAddress: not an IP: {v:?}")))?,
            ),
        };
        let min_session_timeout_ms = num("minSessionTimeout", 2 * tick_time_ms)?;
        let max_session_timeout_ms = num("maxSessionTimeout", 20 * tick_time_ms)?;
        if min_session_timeout_ms > max_session_timeout_ms {
            let line = values.get("maxSessionTimeout").map_or(0, |v| v.0);
            return Err(err(
                line,
                "maxSessionTimeout is below minSessionTimeout".into(),
            ));
        }
        let four_letter_words = match values.get("4lw.commands.whitelist") {
            None => BTreeSet::from(["srvr".to_string()]),
            Some((line, v)) => {
                let mut set = BTreeSet::new();
                for w in v.split(',').map(str::trim).filter(|w| !w.is_empty()) {
                    if w == "*" {
                        set.extend(ALL_FOUR_LETTER_WORDS.iter().map(|s| s.to_string()));
                    } else if ALL_FOUR_LETTER_WORDS.contains(&w) {
                        set.insert(w.to_string());
                    } else {
                        return Err(err(*line, format!("unknown four-letter word {w:?}")));
                    }
                }
                set
            }
        };
        let metrics_addr = metrics_addr(&values, &err)?;
        let boolean = |key: &str, default: bool| -> Result<bool, ConfigError> {
            parse_value(&values, key, default, "a boolean", &err)
        };
        let quorum_listen_on_all_ips = boolean("quorumListenOnAllIPs", false)?;
        let voters = servers
            .values()
            .filter(|p: &&PeerConfig| p.role == PeerRole::Participant)
            .count();
        if !servers.is_empty() && voters == 0 {
            return Err(ConfigError::Other(format!(
                "{file}: no participant among the server.N lines"
            )));
        }
        Ok(Config {
            tick_time_ms,
            init_limit: num("initLimit", 10)?,
            sync_limit: num("syncLimit", 5)?,
            data_dir,
            data_log_dir,
            client_port,
            client_address_given: values.contains_key("clientPort")
                || values.contains_key("clientPortAddress"),
            client_port_address,
            secure_client,
            max_client_cnxns: num("maxClientCnxns", 60)? as usize,
            global_outstanding_limit: num("globalOutstandingLimit", 1000)?.max(1) as usize,
            min_session_timeout_ms,
            max_session_timeout_ms,
            snap_retain_count: num("autopurge.snapRetainCount", 3)?.max(3) as usize,
            purge_interval_hours: num("autopurge.purgeInterval", 0)?,
            four_letter_words,
            snap_count: num("snapCount", 100_000)?.max(2),
            metrics_addr,
            quorum_listen_on_all_ips,
            servers,
            my_id: 0,
            reconfig_enabled: boolean("reconfigEnabled", false)?,
            standalone_enabled: boolean("standaloneEnabled", true)?,
            dynamic_config_file: values
                .get("dynamicConfigFile")
                .map(|(_, v)| PathBuf::from(v)),
            super_digest: values
                .get("DigestAuthenticationProvider.superDigest")
                .or_else(|| values.get("zookeeper.DigestAuthenticationProvider.superDigest"))
                .map(|(_, v)| v.clone()),
        })
    }
}

/// `key`'s value parsed, or `default` when the key is not set.
fn parse_value<T: std::str::FromStr>(
    values: &BTreeMap<String, (usize, String)>,
    key: &str,
    default: T,
    what: &str,
    err: &impl Fn(usize, String) -> ConfigError,
) -> Result<T, ConfigError> {
    match values.get(key) {
        None => Ok(default),
        Some((line, v)) => v
            .parse()
            .map_err(|_| err(*line, format!("{key}: expected {what}, got {v:?}"))),
    }
}

/// The secure client port (`secureClientPort`, `secureClientPortAddress`) and its TLS, from
/// ZooKeeper's `ssl.*` keys (PEM stores only): `ssl.keyStore.location` holds the key and
/// certificate chain, `ssl.trustStore.location` the certificates client certificates are
/// verified against, `ssl.clientAuth` is `need` (ZooKeeper's default), `want` or `none`,
/// `ssl.enabledProtocols` (or `ssl.protocol`) TLSv1.3 unless set, `ssl.ciphersuites` the
/// cipher suites offered (rustls's defaults unless set).
fn secure_client(
    values: &BTreeMap<String, (usize, String)>,
    port: u16,
    err: &impl Fn(usize, String) -> ConfigError,
) -> Result<SecureClient, ConfigError> {
    let line = values["secureClientPort"].0;
    let get = |k: &str| values.get(k).map(|(l, v)| (*l, v.as_str()));
    let address = match get("secureClientPortAddress") {
        None => None,
        Some((l, v)) => Some(
            v.parse()
                .map_err(|_| err(l, format!("secureClientPortAddress: not an IP: {v:?}")))?,
        ),
    };
    for store in ["ssl.keyStore.type", "ssl.trustStore.type"] {
        if let Some((l, v)) = get(store)
            && !v.eq_ignore_ascii_case("PEM")
        {
            return Err(err(l, format!("{store}: {v} is not supported; use PEM")));
        }
    }
    let key_store = get("ssl.keyStore.location").ok_or_else(|| {
        err(
            line,
            "secureClientPort needs ssl.keyStore.location (a PEM file with the key and certificate chain)"
                .into(),
        )
    })?;
    let trust = get("ssl.trustStore.location").map(|(_, v)| Pem::File(PathBuf::from(v)));
    let client_auth = match get("ssl.clientAuth") {
        None => ClientAuth::Required,
        Some((l, v)) => match v.to_ascii_lowercase().as_str() {
            "need" => ClientAuth::Required,
            "want" => ClientAuth::Requested,
            "none" => ClientAuth::None,
            _ => {
                return Err(err(
                    l,
                    format!("ssl.clientAuth: {v:?} is not need, want or none"),
                ));
            }
        },
    };
    if client_auth != ClientAuth::None && trust.is_none() {
        return Err(err(
            line,
            "ssl.clientAuth (need by default) verifies client certificates: set ssl.trustStore.location, or ssl.clientAuth=none"
                .into(),
        ));
    }
    // ZooKeeper enables `ssl.enabledProtocols`, else only `ssl.protocol`, which is TLSv1.3
    // on the JVMs it runs on: a client that offers only TLS 1.2 (Kafka 3.9's default
    // `zookeeper.ssl.protocol`) is refused by both unless one of the two is set.
    let (l, protocols) = get("ssl.enabledProtocols")
        .or(get("ssl.protocol"))
        .unwrap_or((line, "TLSv1.3"));
    let versions = strata_tls::protocol_versions(protocols)
        .map_err(|e| err(l, format!("ssl.enabledProtocols: {e}")))?;
    let cipher_suites = match get("ssl.ciphersuites") {
        None => None,
        Some((l, v)) => {
            strata_tls::cipher_suites(v).map_err(|e| err(l, format!("ssl.ciphersuites: {e}")))?
        }
    };
    let path = PathBuf::from(key_store.1);
    Ok(SecureClient {
        port,
        address,
        tls: TlsSettings {
            name: "secureClientPort".into(),
            chain: Pem::File(path.clone()),
            key: Pem::File(path),
            trust,
            client_auth,
            versions,
            cipher_suites,
        },
    })
}

/// The metrics endpoint's address from the `metricsProvider.*` keys, or `None` when no
/// provider is configured (ZooKeeper's default) or the port is 0.
fn metrics_addr(
    values: &BTreeMap<String, (usize, String)>,
    err: &impl Fn(usize, String) -> ConfigError,
) -> Result<Option<SocketAddr>, ConfigError> {
    let provider = match values.get("metricsProvider.className") {
        None => false,
        Some((_, v)) if v == PROMETHEUS_PROVIDER => true,
        Some((_, v)) if SILENT_PROVIDERS.contains(&v.as_str()) => false,
        Some((line, v)) => {
            return Err(err(
                *line,
                format!(
                    "metricsProvider.className: {v:?} is not available; use {PROMETHEUS_PROVIDER}"
                ),
            ));
        }
    };
    let port = match values.get("metricsProvider.httpPort") {
        None if provider => 7000,
        None => return Ok(None),
        Some((line, v)) => v.parse::<u16>().map_err(|_| {
            err(
                *line,
                format!("metricsProvider.httpPort: not a port: {v:?}"),
            )
        })?,
    };
    if port == 0 {
        return Ok(None);
    }
    let host = match values.get("metricsProvider.httpHost") {
        None => IpAddr::from([0, 0, 0, 0]),
        Some((line, v)) => v
            .parse()
            .map_err(|_| err(*line, format!("metricsProvider.httpHost: not an IP: {v:?}")))?,
    };
    Ok(Some(SocketAddr::new(host, port)))
}

/// One `server.N` value as written, nothing resolved:
/// `host:quorumPort:electionPort[:participant|observer][;[clientHost:]clientPort]`.
/// What a reconfiguration names and what `/zookeeper/config` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub id: u64,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub role: PeerRole,
    /// `[clientHost:]clientPort` as (host, port); the host is `0.0.0.0` for a bare port.
    pub client: Option<(String, u16)>,
}

impl ServerSpec {
    pub fn parse(id: u64, value: &str) -> Result<ServerSpec, String> {
        let (spec, client) = match value.split_once(';') {
            None => (value.trim(), None),
            Some((spec, client)) => (spec.trim(), Some(split_client_address(id, client.trim())?)),
        };
        let parts: Vec<&str> = spec.split(':').collect();
        if parts.len() < 3 || parts.len() > 4 {
            return Err(format!(
                "server.{id}: expected host:quorumPort:electionPort[:participant|observer], got {value:?}"
            ));
        }
        let port = |s: &str, what: &str| {
            s.parse::<u16>()
                .map_err(|_| format!("server.{id}: bad {what} {s:?}"))
        };
        let role = match parts.get(3) {
            None | Some(&"participant") => PeerRole::Participant,
            Some(&"observer") => PeerRole::Observer,
            Some(other) => return Err(format!("server.{id}: unknown role {other:?}")),
        };
        if parts[0].is_empty() {
            return Err(format!("server.{id}: empty host"));
        }
        Ok(ServerSpec {
            id,
            host: parts[0].to_string(),
            quorum_port: port(parts[1], "quorum port")?,
            election_port: port(parts[2], "election port")?,
            role,
            client,
        })
    }

    /// The `server.N=...` line as ZooKeeper prints it (`QuorumServer.toString`): the
    /// role always, the client address only when the line gave one, IPv6 hosts in
    /// brackets.
    pub fn line(&self) -> String {
        let role = match self.role {
            PeerRole::Participant => "participant",
            PeerRole::Observer => "observer",
        };
        let mut out = format!(
            "server.{}={}:{}:{}:{role}",
            self.id, self.host, self.quorum_port, self.election_port
        );
        if let Some((host, port)) = &self.client {
            if host.contains(':') {
                out.push_str(&format!(";[{host}]:{port}"));
            } else {
                out.push_str(&format!(";{host}:{port}"));
            }
        }
        out
    }
}

/// A configuration text: a `server.N=...` line per member, then `version=<hex>` (the
/// form of `/zookeeper/config` and of ZooKeeper's dynamic configuration files).
pub fn config_text<'a>(members: impl IntoIterator<Item = &'a ServerSpec>, version: i64) -> String {
    let mut out = String::new();
    for m in members {
        out.push_str(&m.line());
        out.push('\n');
    }
    out.push_str(&format!("version={version:x}"));
    out
}

/// The members and version of a configuration text; lines other than `server.N=` and
/// `version=` are refused, as ZooKeeper's `parseDynamicConfig` refuses them.
pub fn parse_config_text(text: &str) -> Result<(BTreeMap<u64, ServerSpec>, i64), String> {
    let mut members = BTreeMap::new();
    let mut version = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("expected key=value, got {line:?}"));
        };
        let key = key.trim();
        if key == "version" {
            version = i64::from_str_radix(value.trim(), 16)
                .map_err(|_| format!("bad version {value:?}"))?;
        } else if let Some(id) = key.strip_prefix("server.") {
            let id: u64 = id
                .parse()
                .map_err(|_| format!("bad server id in {key:?}"))?;
            if members.insert(id, ServerSpec::parse(id, value)?).is_some() {
                return Err(format!("server.{id} given twice"));
            }
        } else {
            return Err(format!("unexpected {key:?} in a dynamic configuration"));
        }
    }
    Ok((members, version))
}

fn parse_server(id: u64, value: &str) -> Result<PeerConfig, String> {
    let spec = ServerSpec::parse(id, value)?;
    let client = match &spec.client {
        None => None,
        Some((host, port)) => Some(resolve_client_address(id, host, *port)?),
    };
    Ok(PeerConfig {
        id,
        host: spec.host,
        quorum_port: spec.quorum_port,
        election_port: spec.election_port,
        role: spec.role,
        client,
    })
}

/// `[clientHost:]clientPort` after a server spec; the host may be a name, an IPv4
/// address or a bracketed IPv6 one, and is `0.0.0.0` when only a port is given.
fn split_client_address(id: u64, text: &str) -> Result<(String, u16), String> {
    let bad = || format!("server.{id}: bad client address {text:?}, expected [host:]port");
    let (host, port) = match text.rsplit_once(':') {
        None => ("", text),
        Some((host, port)) => (host.trim_start_matches('[').trim_end_matches(']'), port),
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok((host.to_string(), port))
}

fn resolve_client_address(id: u64, host: &str, port: u16) -> Result<ClientAddress, String> {
    let addr = match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
            .map_err(|e| format!("server.{id}: client host {host:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("server.{id}: client host {host:?} has no address"))?,
    };
    Ok(ClientAddress {
        host: host.to_string(),
        addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lines_may_name_their_client_address() {
        let text = "dataDir=/tmp/zk\nserver.1=127.0.0.1:2888:3888;2181\n\
                    server.2=127.0.0.2:2888:3888:participant;127.0.0.2:2182\n\
                    server.3=127.0.0.3:2888:3888:observer;[::1]:2183\nserver.4=127.0.0.4:2888:3888\n";
        let cfg = Config::parse(text, "zoo.cfg").unwrap();
        // As ZooKeeper's QuorumServer.toString prints them.
        assert_eq!(
            cfg.membership_text().unwrap(),
            "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
             server.2=127.0.0.2:2888:3888:participant;127.0.0.2:2182\n\
             server.3=127.0.0.3:2888:3888:observer;[::1]:2183\n\
             server.4=127.0.0.4:2888:3888:participant\nversion=0"
        );
        // Without clientPort a server serves clients where its own line says.
        let mut two = cfg.clone();
        two.my_id = 2;
        two.take_own_client_address().unwrap();
        assert_eq!(two.client_addr(), Some("127.0.0.2:2182".parse().unwrap()));
        let mut one = cfg.clone();
        one.my_id = 1;
        one.take_own_client_address().unwrap();
        assert_eq!(one.client_addr(), Some("0.0.0.0:2181".parse().unwrap()));
        let mut four = cfg.clone();
        four.my_id = 4;
        four.take_own_client_address().unwrap();
        assert_eq!(four.client_addr(), Some("0.0.0.0:2181".parse().unwrap()));
        // clientPort agreeing with the line is fine; disagreeing is refused.
        let mut agreeing = Config::parse(&format!("{text}clientPort=2182\n"), "zoo.cfg").unwrap();
        agreeing.my_id = 2;
        agreeing.take_own_client_address().unwrap();
        let mut other = Config::parse(&format!("{text}clientPort=2199\n"), "zoo.cfg").unwrap();
        other.my_id = 2;
        let e = other.take_own_client_address().unwrap_err();
        assert!(e.contains("127.0.0.2:2182") && e.contains("2199"), "{e}");
        let mut elsewhere = Config::parse(
            &format!("{text}clientPort=2182\nclientPortAddress=127.0.0.9\n"),
            "zoo.cfg",
        )
        .unwrap();
        elsewhere.my_id = 2;
        assert!(elsewhere.take_own_client_address().is_err());
        for bad in [
            "127.0.0.1:2888:3888;",
            "127.0.0.1:2888:3888;host:port",
            "127.0.0.1:2888:3888;99999",
        ] {
            let e = Config::parse(&format!("dataDir=/tmp/zk\nserver.1={bad}\n"), "zoo.cfg")
                .unwrap_err()
                .to_string();
            assert!(e.contains("client address"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_membership_may_live_in_a_dynamic_config_file_as_zookeeper_moves_it() {
        let dir = std::env::temp_dir().join(format!("strata-dyncfg-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("data/myid"), "2\n").unwrap();
        std::fs::write(
            dir.join("zoo.cfg.dynamic.100000000"),
            "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
             server.2=127.0.0.2:2888:3888:participant;127.0.0.2:2181\n\
             server.3=127.0.0.3:2888:3888:observer;127.0.0.3:2181\n\
             version=100000000\n",
        )
        .unwrap();
        let zoo = |extra: &str| {
            let cfg = dir.join("zoo.cfg");
            std::fs::write(
                &cfg,
                format!(
                    "tickTime=2000\ndataDir={}\nreconfigEnabled=true\n\
                     dynamicConfigFile=zoo.cfg.dynamic.100000000\n{extra}",
                    dir.join("data").display()
                ),
            )
            .unwrap();
            Config::load(&cfg)
        };
        let cfg = zoo("").unwrap();
        assert_eq!(cfg.servers.len(), 3);
        assert_eq!(cfg.servers[&3].role, PeerRole::Observer);
        assert_eq!(cfg.my_id, 2);
        assert_eq!(cfg.client_addr().unwrap().to_string(), "127.0.0.2:2181");
        let both = zoo("server.1=127.0.0.1:2888:3888\n").unwrap_err();
        assert!(both.to_string().contains("both given"), "{both}");
        std::fs::write(dir.join("zoo.cfg.dynamic.100000000"), "group.1=1:2:3\n").unwrap();
        let bad = zoo("").unwrap_err();
        assert!(
            bad.to_string().contains("zoo.cfg.dynamic.100000000:1"),
            "{bad}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parses_a_three_server_zoo_cfg() {
        let cfg = Config::parse(
            "tickTime=1000\ninitLimit=5\nsyncLimit=2\ndataDir=/tmp/zk1\nclientPort=2181\n\
             # comment\n4lw.commands.whitelist=ruok, mntr\nserver.1=127.0.0.1:2888:3888\n\
             server.2=127.0.0.2:2888:3888:participant\nserver.3=127.0.0.3:2888:3888:observer\n",
            "zoo.cfg",
        )
        .unwrap();
        assert_eq!(cfg.tick_time_ms, 1000);
        assert_eq!(cfg.min_session_timeout_ms, 2000);
        assert_eq!(cfg.max_session_timeout_ms, 20000);
        assert_eq!(cfg.data_log_dir, PathBuf::from("/tmp/zk1"));
        assert_eq!(cfg.servers.len(), 3);
        assert_eq!(cfg.servers[&3].role, PeerRole::Observer);
        assert_eq!(
            cfg.four_letter_words,
            BTreeSet::from(["ruok".to_string(), "mntr".to_string()])
        );
        assert!(!cfg.is_standalone());
        assert_eq!(cfg.negotiate_timeout_ms(100), 2000);
        assert_eq!(cfg.negotiate_timeout_ms(1_000_000), 20000);
    }

    #[test]
    fn errors_name_the_line() {
        let e = Config::parse("dataDir=/x\ntickTime=fast\n", "zoo.cfg").unwrap_err();
        assert_eq!(
            e.to_string(),
            "zoo.cfg:2: tickTime: expected a number, got \"fast\""
        );
        let e = Config::parse("dataDir=/x\n\nserver.1=h:1\n", "zoo.cfg").unwrap_err();
        assert!(e.to_string().starts_with("zoo.cfg:3: server.1"), "{e}");
        let e = Config::parse("dataDir=/x\nnonsense\n", "zoo.cfg").unwrap_err();
        assert!(e.to_string().starts_with("zoo.cfg:2:"), "{e}");
        let e = Config::parse("dataDir=/x\n4lw.commands.whitelist=ruok,boom\n", "c").unwrap_err();
        assert!(e.to_string().starts_with("c:2:"), "{e}");
    }

    #[test]
    fn metrics_only_with_a_provider_or_an_explicit_port_as_in_zookeeper() {
        let metrics = |extra: &str| {
            Config::parse(&format!("dataDir=/x\n{extra}"), "zoo.cfg")
                .unwrap()
                .metrics_addr
                .map(|a| a.to_string())
        };
        assert_eq!(metrics(""), None, "no provider, no HTTP server");
        assert_eq!(
            metrics(&format!(
                "metricsProvider.className={PROMETHEUS_PROVIDER}\n"
            )),
            Some("0.0.0.0:7000".into())
        );
        assert_eq!(
            metrics(&format!(
                "metricsProvider.className={PROMETHEUS_PROVIDER}\n\
                 metricsProvider.httpHost=127.0.0.2\nmetricsProvider.httpPort=7002\n"
            )),
            Some("127.0.0.2:7002".into())
        );
        assert_eq!(
            metrics("metricsProvider.httpPort=7001\n"),
            Some("0.0.0.0:7001".into())
        );
        assert_eq!(metrics("metricsProvider.httpPort=0\n"), None);
        assert_eq!(
            metrics(&format!(
                "metricsProvider.className={}\n",
                SILENT_PROVIDERS[0]
            )),
            None
        );
        let e = Config::parse(
            "dataDir=/x\nmetricsProvider.className=com.example.Other\n",
            "zoo.cfg",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("zoo.cfg:2: metricsProvider.className"),
            "{e}"
        );
    }

    #[test]
    fn three_servers_on_one_host_as_zookeeper_documents_them() {
        // ZooKeeper's "running replicated ZooKeeper on one machine": one address,
        // different ports. Nothing in it may make two servers claim the same port.
        let cfgs: Vec<Config> = (1..=3)
            .map(|i| {
                Config::parse(
                    &format!(
                        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=/tmp/zk{i}\n\
                         clientPort=218{i}\nserver.1=localhost:2888:3888\n\
                         server.2=localhost:2889:3889\nserver.3=localhost:2890:3890\n"
                    ),
                    "zoo.cfg",
                )
                .unwrap()
            })
            .collect();
        assert!(cfgs.iter().all(|c| c.metrics_addr.is_none()));
        assert!(cfgs.iter().all(|c| !c.quorum_listen_on_all_ips));
        let ports: BTreeSet<u16> = cfgs.iter().filter_map(|c| c.client_port).collect();
        assert_eq!(ports.len(), 3);
    }

    #[test]
    fn default_whitelist_is_srvr_only_and_standalone_without_servers() {
        let cfg = Config::parse("dataDir=/x\n", "zoo.cfg").unwrap();
        assert_eq!(cfg.four_letter_words, BTreeSet::from(["srvr".to_string()]));
        assert!(cfg.is_standalone());
        assert_eq!(cfg.client_port, Some(2181));
    }

    #[test]
    fn the_secure_client_port_as_zookeeper_reads_it() {
        let cfg = Config::parse(
            "dataDir=/x\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\nssl.keyStore.type=PEM\n\
             ssl.trustStore.location=/ca.pem\nssl.trustStore.type=PEM\n",
            "zoo.cfg",
        )
        .unwrap();
        // Only the secure port: no plaintext one, as in ZooKeeper.
        assert_eq!(cfg.client_port, None);
        let secure = cfg.secure_client.unwrap();
        assert_eq!(secure.addr().port(), 2281);
        assert_eq!(secure.tls.client_auth, ClientAuth::Required);
        assert_eq!(secure.tls.trust, Some(Pem::File("/ca.pem".into())));
        let versions =
            |c: &SecureClient| c.tls.versions.iter().map(|v| v.version).collect::<Vec<_>>();
        assert_eq!(versions(&secure), [rustls::ProtocolVersion::TLSv1_3]);

        let both = Config::parse(
            "dataDir=/x\nclientPort=2181\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\nssl.clientAuth=none\n",
            "zoo.cfg",
        )
        .unwrap();
        assert_eq!(both.client_port, Some(2181));
        assert_eq!(
            both.secure_client.unwrap().tls.client_auth,
            ClientAuth::None
        );
        let older = Config::parse(
            "dataDir=/x\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\nssl.clientAuth=none\n\
             ssl.protocol=TLSv1.2\n",
            "zoo.cfg",
        )
        .unwrap();
        assert_eq!(
            versions(older.secure_client.as_ref().unwrap()),
            [rustls::ProtocolVersion::TLSv1_2]
        );

        for (extra, wanted) in [
            ("", "ssl.keyStore.location"),
            (
                "ssl.keyStore.location=/k\nssl.keyStore.type=JKS\n",
                "JKS is not supported",
            ),
            ("ssl.keyStore.location=/k\n", "ssl.trustStore.location"),
            (
                "ssl.keyStore.location=/k\nssl.clientAuth=maybe\n",
                "need, want or none",
            ),
            (
                "ssl.keyStore.location=/k\nssl.clientAuth=none\nssl.enabledProtocols=SSLv3\n",
                "SSLv3",
            ),
            (
                "ssl.keyStore.location=/k\nssl.clientAuth=none\nssl.ciphersuites=TLS_RSA_WITH_AES_128_CBC_SHA\n",
                "ssl.ciphersuites: TLS_RSA_WITH_AES_128_CBC_SHA is not supported",
            ),
        ] {
            let e = Config::parse(
                &format!("dataDir=/x\nsecureClientPort=2281\n{extra}"),
                "zoo.cfg",
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(wanted), "{extra}: {e}");
        }
    }
}
