//! Prometheus metrics, served as text on `metrics.port` at `/metrics`.
//!
//! Hot-path counters are plain atomics indexed by API key, so recording a request costs
//! a few relaxed increments and no lock. Per-partition gauges (log size, segments,
//! offsets) are read from the logs when the endpoint is scraped rather than maintained.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Upper bounds (seconds) of the request latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];
/// API keys are small integers; this covers every key Kafka has defined.
const MAX_API_KEY: usize = 128;

struct ApiStats {
    requests: AtomicU64,
    errors: AtomicU64,
    latency_sum_micros: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
}

impl ApiStats {
    fn new() -> ApiStats {
        ApiStats {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency_sum_micros: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// One counter in the Prometheus text format.
fn counter(out: &mut String, name: &str, help: &str, v: &AtomicU64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
}

/// The broker's counters and gauges.
pub struct Metrics {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub records_in: AtomicU64,
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub invalid_frames: AtomicU64,
    /// Connections closed at accept: `max.connections.per.ip` reached for their address.
    pub connections_refused_per_ip: AtomicU64,
    /// Connections closed after `connections.max.idle.ms` without a whole request or
    /// without taking a response.
    pub connections_idle_closed: AtomicU64,
    /// TLS handshakes that failed (no common version, a client certificate refused, not
    /// TLS at all).
    pub tls_handshake_failures: AtomicU64,
    /// SASL authentications that succeeded and failed (Kafka's
    /// `successful-authentication-total` / `failed-authentication-total`).
    pub authentications: AtomicU64,
    pub authentication_failures: AtomicU64,
    /// Request bytes held now (read, or being read, and not yet answered).
    pub queued_request_bytes: AtomicU64,
    pub produce_errors: AtomicU64,
    pub storage_errors: AtomicU64,
    apis: Vec<ApiStats>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            records_in: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            invalid_frames: AtomicU64::new(0),
            connections_refused_per_ip: AtomicU64::new(0),
            connections_idle_closed: AtomicU64::new(0),
            tls_handshake_failures: AtomicU64::new(0),
            authentications: AtomicU64::new(0),
            authentication_failures: AtomicU64::new(0),
            queued_request_bytes: AtomicU64::new(0),
            produce_errors: AtomicU64::new(0),
            storage_errors: AtomicU64::new(0),
            apis: (0..MAX_API_KEY).map(|_| ApiStats::new()).collect(),
        }
    }
}

/// Extra samples a scrape adds from live state (logs, groups).
pub trait MetricsSource: Send + Sync {
    fn render(&self, out: &mut String);
    /// Whether `/readyz` answers 200: the broker serves (the controller described the
    /// cluster to it).
    fn is_ready(&self) -> bool {
        true
    }
}

impl Metrics {
    /// Records one handled request of `api_key` taking `elapsed`.
    pub fn record_request(&self, api_key: i16, elapsed: Duration, failed: bool) {
        let Some(stats) = usize::try_from(api_key).ok().and_then(|k| self.apis.get(k)) else {
            return;
        };
        stats.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        stats
            .latency_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            stats.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Renders everything in the Prometheus text exposition format (0.0.4).
    pub fn render(&self, source: &dyn MetricsSource) -> String {
        let mut out = String::with_capacity(8192);
        counter(
            &mut out,
            "strata_broker_bytes_in_total",
            "Record bytes appended by producers.",
            &self.bytes_in,
        );
        counter(
            &mut out,
            "strata_broker_bytes_out_total",
            "Record bytes returned to fetchers.",
            &self.bytes_out,
        );
        counter(
            &mut out,
            "strata_broker_records_in_total",
            "Records appended by producers.",
            &self.records_in,
        );
        counter(
            &mut out,
            "strata_broker_connections_total",
            "Connections accepted.",
            &self.connections_total,
        );
        counter(
            &mut out,
            "strata_broker_invalid_requests_total",
            "Connections closed for an oversized or malformed request.",
            &self.invalid_frames,
        );
        counter(
            &mut out,
            "strata_broker_connections_refused_per_ip_total",
            "Connections closed at accept because their address had max.connections.per.ip open.",
            &self.connections_refused_per_ip,
        );
        counter(
            &mut out,
            "strata_broker_connections_idle_closed_total",
            "Connections closed after connections.max.idle.ms without a whole request, or without taking a response.",
            &self.connections_idle_closed,
        );
        counter(
            &mut out,
            "strata_broker_tls_handshake_failures_total",
            "Connections closed because their TLS handshake failed.",
            &self.tls_handshake_failures,
        );
        counter(
            &mut out,
            "strata_broker_successful_authentication_total",
            "SASL authentications (and re-authentications) that succeeded.",
            &self.authentications,
        );
        counter(
            &mut out,
            "strata_broker_failed_authentication_total",
            "SASL authentications that failed; the connection was closed.",
            &self.authentication_failures,
        );
        counter(
            &mut out,
            "strata_broker_produce_errors_total",
            "Partition appends answered with an error.",
            &self.produce_errors,
        );
        counter(
            &mut out,
            "strata_broker_storage_errors_total",
            "Appends that failed on the disk (KAFKA_STORAGE_ERROR).",
            &self.storage_errors,
        );
        let _ = writeln!(
            out,
            "# HELP strata_broker_open_connections Open client connections.\n# TYPE strata_broker_open_connections gauge\nstrata_broker_open_connections {}",
            self.connections.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP strata_broker_queued_request_bytes Request bytes held (being read or not yet answered); bounded by queued.max.request.bytes.\n# TYPE strata_broker_queued_request_bytes gauge\nstrata_broker_queued_request_bytes {}",
            self.queued_request_bytes.load(Ordering::Relaxed)
        );

        let _ = writeln!(
            out,
            "# HELP strata_broker_requests_total Requests handled, by API.\n# TYPE strata_broker_requests_total counter"
        );
        for (key, stats) in self.apis_in_use() {
            let _ = writeln!(
                out,
                "strata_broker_requests_total{{api=\"{}\"}} {}",
                api_name(key),
                stats.requests.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP strata_broker_request_errors_total Requests that could not be decoded or handled, by API.\n# TYPE strata_broker_request_errors_total counter"
        );
        for (key, stats) in self.apis_in_use() {
            let _ = writeln!(
                out,
                "strata_broker_request_errors_total{{api=\"{}\"}} {}",
                api_name(key),
                stats.errors.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP strata_broker_request_duration_seconds Time from a request's arrival to its response, by API.\n# TYPE strata_broker_request_duration_seconds histogram"
        );
        for (key, stats) in self.apis_in_use() {
            let name = api_name(key);
            let mut cumulative = 0;
            for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&stats.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "strata_broker_request_duration_seconds_bucket{{api=\"{name}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = stats.requests.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "strata_broker_request_duration_seconds_bucket{{api=\"{name}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "strata_broker_request_duration_seconds_sum{{api=\"{name}\"}} {}",
                stats.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "strata_broker_request_duration_seconds_count{{api=\"{name}\"}} {count}"
            );
        }
        source.render(&mut out);
        out
    }

    fn apis_in_use(&self) -> impl Iterator<Item = (i16, &ApiStats)> {
        self.apis
            .iter()
            .enumerate()
            .filter(|(_, s)| s.requests.load(Ordering::Relaxed) > 0)
            .map(|(k, s)| (k as i16, s))
    }
}

fn api_name(key: i16) -> String {
    ApiKey::try_from(key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|_| key.to_string())
}

/// Writes one gauge family: its HELP and TYPE lines, then a sample per label set.
pub fn write_gauge_family(
    out: &mut String,
    name: &str,
    help: &str,
    samples: impl Iterator<Item = (String, i64)>,
) {
    write_family(out, name, "gauge", help, samples);
}

fn write_family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl Iterator<Item = (String, i64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// Writes one gauge without labels.
fn write_gauge(out: &mut String, name: &str, help: &str, value: i64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// Writes one counter without labels.
fn write_counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

/// The broker's live state as metrics: per-partition log gauges, replication (with the
/// names Kafka's JMX exporter gives them, so existing dashboards and alerts work), the
/// controller, and consumer groups.
pub fn render_broker(broker: &crate::Broker, out: &mut String) {
    if let Some(authorizer) = &broker.authorizer {
        counter(
            out,
            "strata_broker_authorization_denied_total",
            "Operations the authorizer refused (a request may be refused for several resources).",
            &authorizer.denied,
        );
    }
    let partitions = broker.replica_manager.all_partitions();
    let rows: Vec<_> = partitions
        .iter()
        .map(|p| {
            let (size, segments) = p.size_and_segments();
            (p, size, segments as u64, p.info())
        })
        .collect();
    type Row<'a> = (
        &'a Arc<crate::replica::Partition>,
        u64,
        u64,
        crate::replica::PartitionInfo,
    );
    /// (metric name, help, the value of a row)
    type Family = (&'static str, &'static str, fn(&Row) -> i64);
    let families: [Family; 5] = [
        (
            "strata_broker_log_size_bytes",
            "Bytes on disk of a partition's log.",
            |r| r.1 as i64,
        ),
        (
            "strata_broker_log_segments",
            "Segments in a partition's log.",
            |r| r.2 as i64,
        ),
        (
            "strata_broker_log_end_offset",
            "Next offset to be written.",
            |r| r.3.log_end_offset,
        ),
        (
            "strata_broker_log_start_offset",
            "First offset still in the log.",
            |r| r.3.log_start_offset,
        ),
        (
            "strata_broker_high_watermark",
            "Offset below which records are committed.",
            |r| r.3.high_watermark,
        ),
    ];
    for (name, help, value) in families {
        write_gauge_family(
            out,
            name,
            help,
            rows.iter().map(|r| {
                (
                    format!("topic=\"{}\",partition=\"{}\"", r.0.topic, r.0.partition),
                    value(r),
                )
            }),
        );
    }
    let leaders: Vec<&Row> = rows.iter().filter(|r| r.3.is_leader).collect();
    let under_replicated = leaders
        .iter()
        .filter(|r| r.3.isr.len() < r.3.replicas.len())
        .count();
    let under_min_isr = leaders.iter().filter(|r| r.3.under_min_isr).count();
    write_gauge(
        out,
        "kafka_server_replicamanager_partitioncount",
        "Partitions hosted by this broker.",
        rows.len() as i64,
    );
    write_gauge(
        out,
        "kafka_server_replicamanager_leadercount",
        "Partitions led by this broker.",
        leaders.len() as i64,
    );
    write_gauge(
        out,
        "kafka_server_replicamanager_underreplicatedpartitions",
        "Partitions led here whose ISR is smaller than their replica set.",
        under_replicated as i64,
    );
    write_gauge(
        out,
        "kafka_server_replicamanager_underminisrpartitioncount",
        "Partitions led here whose ISR is below min.insync.replicas.",
        under_min_isr as i64,
    );
    write_gauge_family(
        out,
        "kafka_cluster_partition_underminisr",
        "1 when a partition led here is below min.insync.replicas.",
        leaders.iter().map(|r| {
            (
                format!("topic=\"{}\",partition=\"{}\"", r.0.topic, r.0.partition),
                i64::from(r.3.under_min_isr),
            )
        }),
    );
    write_gauge_family(
        out,
        "kafka_cluster_partition_replicascount",
        "Replicas of a partition led here.",
        leaders.iter().map(|r| {
            (
                format!("topic=\"{}\",partition=\"{}\"", r.0.topic, r.0.partition),
                r.3.replicas.len() as i64,
            )
        }),
    );
    write_gauge_family(
        out,
        "kafka_cluster_partition_insyncreplicascount",
        "In-sync replicas of a partition led here.",
        leaders.iter().map(|r| {
            (
                format!("topic=\"{}\",partition=\"{}\"", r.0.topic, r.0.partition),
                r.3.isr.len() as i64,
            )
        }),
    );
    {
        let sessions = broker.fetch_sessions.lock().expect("fetch sessions");
        write_gauge(
            out,
            "kafka_server_fetchsessioncache_numincrementalfetchsessions",
            "Incremental fetch sessions (KIP-227) held.",
            sessions.len() as i64,
        );
        write_gauge(
            out,
            "kafka_server_fetchsessioncache_numincrementalfetchpartitionscached",
            "Partitions held across all incremental fetch sessions.",
            sessions.partitions() as i64,
        );
        write_counter(
            out,
            "kafka_server_fetchsessioncache_incrementalfetchsessionevictions_total",
            "Fetch sessions evicted to make room for others.",
            sessions.evictions(),
        );
    }
    let replication = &broker.replica_manager.metrics;
    write_counter(
        out,
        "kafka_server_replicamanager_isrshrinks_total",
        "ISR shrinks proposed by this broker as leader.",
        replication.isr_shrinks.load(Ordering::Relaxed),
    );
    write_counter(
        out,
        "kafka_server_replicamanager_isrexpands_total",
        "ISR expansions proposed by this broker as leader.",
        replication.isr_expands.load(Ordering::Relaxed),
    );
    write_counter(
        out,
        "kafka_server_fetcherstats_bytes_total",
        "Bytes this broker fetched from leaders as a follower.",
        broker
            .replica_manager
            .fetchers
            .bytes_fetched
            .load(Ordering::Relaxed)
            .max(0) as u64,
    );
    let max_lag = broker.replica_manager.fetchers.max_lag();
    let snapshot = broker.cache.snapshot();
    write_gauge(
        out,
        "kafka_server_replicafetchermanager_maxlag",
        "Largest lag of a follower replica here behind its high watermark, in records.",
        max_lag,
    );
    let active = broker.controller.is_active();
    write_gauge(
        out,
        "kafka_controller_kafkacontroller_activecontrollercount",
        "1 on the broker that is the active controller.",
        i64::from(active),
    );
    let offline = if active {
        snapshot
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.leader < 0 || !snapshot.is_alive(p.leader))
            .count() as i64
    } else {
        0
    };
    write_gauge(
        out,
        "kafka_controller_kafkacontroller_offlinepartitionscount",
        "Partitions without a live leader (reported by the active controller).",
        offline,
    );
    write_gauge(
        out,
        "strata_broker_ready",
        "1 once the controller has described the cluster to this broker.",
        i64::from(broker.is_ready()),
    );
    render_groups(broker, out);
    render_transactions(broker, out);
}

/// Transaction coordinator metrics (transactional ids by state, ends by cause) and, per
/// partition led here whose last stable offset trails the high watermark, by how much:
/// what `read_committed` consumers cannot read yet.
fn render_transactions(broker: &crate::Broker, out: &mut String) {
    let stats = broker.txns.stats();
    write_gauge_family(
        out,
        "strata_broker_transactions",
        "Transactional ids this broker coordinates, by state.",
        stats
            .transactions_by_state
            .iter()
            .map(|(state, n)| (format!("state=\"{}\"", state.name()), *n as i64)),
    );
    write_counter(
        out,
        "strata_broker_transaction_commits_total",
        "Transactions committed.",
        stats.commits_total,
    );
    write_family(
        out,
        "strata_broker_transaction_verifications_total",
        "counter",
        "Partitions of producers' first transactional writes checked with the transaction coordinator (KIP-890), by result.",
        [
            (
                "result=\"verified\"".to_string(),
                broker.txns.verified_total.load(Ordering::Relaxed) as i64,
            ),
            (
                "result=\"failed\"".to_string(),
                broker
                    .txns
                    .verification_failures_total
                    .load(Ordering::Relaxed) as i64,
            ),
        ]
        .into_iter(),
    );
    write_family(
        out,
        "strata_broker_transaction_aborts_total",
        "counter",
        "Transactions aborted, by cause: the producer, its timeout, or a new producer with the same transactional id.",
        [
            (
                "cause=\"producer\"".to_string(),
                stats
                    .aborts_total
                    .saturating_sub(stats.timed_out_aborts_total + stats.producer_fences_total)
                    as i64,
            ),
            (
                "cause=\"timeout\"".to_string(),
                stats.timed_out_aborts_total as i64,
            ),
            (
                "cause=\"fenced\"".to_string(),
                stats.producer_fences_total as i64,
            ),
        ]
        .into_iter(),
    );
    let mut lags = Vec::new();
    for p in broker.replica_manager.leader_partitions() {
        let offsets = p.offsets();
        let lag = offsets.high_watermark - offsets.last_stable_offset;
        if lag > 0 {
            lags.push((
                format!("topic=\"{}\",partition=\"{}\"", p.topic, p.partition),
                lag,
            ));
        }
    }
    write_gauge_family(
        out,
        "strata_broker_last_stable_offset_lag",
        "Records between the last stable offset and the high watermark, where there are any.",
        lags.into_iter(),
    );
}

/// Consumer-group metrics: groups by state, members, rebalances, and lag per committed
/// partition (high watermark minus committed offset).
fn render_groups(broker: &crate::Broker, out: &mut String) {
    let stats = broker.groups.stats();
    write_gauge_family(
        out,
        "strata_broker_groups",
        "Consumer groups by state.",
        stats
            .groups_by_state
            .iter()
            .map(|(state, n)| (format!("state=\"{}\"", state.as_str()), *n as i64)),
    );
    write_gauge_family(
        out,
        "strata_broker_group_members",
        "Members of a consumer group.",
        stats
            .members_by_group
            .iter()
            .map(|(group, n)| (format!("group=\"{group}\""), *n as i64)),
    );
    write_counter(
        out,
        "strata_broker_group_rebalances_total",
        "Rebalances started.",
        stats.rebalances_total,
    );
    let _ = writeln!(
        out,
        "# HELP strata_broker_group_rebalance_seconds Duration of completed rebalances.\n# TYPE strata_broker_group_rebalance_seconds summary"
    );
    let _ = writeln!(
        out,
        "strata_broker_group_rebalance_seconds_sum {}",
        stats.rebalance_time_ms_total as f64 / 1000.0
    );
    let _ = writeln!(
        out,
        "strata_broker_group_rebalance_seconds_count {}",
        stats.rebalances_completed_total
    );
    write_counter(
        out,
        "strata_broker_group_offset_commits_total",
        "Offsets committed.",
        stats.offset_commits_total,
    );
    let mut lags = Vec::new();
    for (group, offsets) in broker.groups.committed_offsets() {
        for (topic, partition, offset) in offsets {
            if let Some(p) = broker.replica_manager.get_partition(&topic, partition) {
                let lag = (p.offsets().high_watermark - offset).max(0);
                lags.push((
                    format!("group=\"{group}\",topic=\"{topic}\",partition=\"{partition}\""),
                    lag,
                ));
            }
        }
    }
    write_gauge_family(
        out,
        "strata_broker_group_lag",
        "Records between a group's committed offset and the high watermark.",
        lags.into_iter(),
    );
}

/// Serves `/metrics`, `/healthz` (the process answers) and `/readyz` (it serves: 503 until
/// then) until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, source: Arc<dyn MetricsSource>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        let source = source.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut len = 0;
            // Read until the end of the request head; requests here are tiny GETs.
            while len < buf.len() {
                match tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf[len..]))
                    .await
                {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => {
                        len += n;
                        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            let head = String::from_utf8_lossy(&buf[..len]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, content_type, body) = match path {
                "/metrics" => (
                    "200 OK",
                    "text/plain; version=0.0.4",
                    metrics.render(source.as_ref()),
                ),
                "/healthz" => ("200 OK", "text/plain", "ok\n".to_string()),
                "/readyz" if source.is_ready() => ("200 OK", "text/plain", "ok\n".to_string()),
                "/readyz" => (
                    "503 Service Unavailable",
                    "text/plain",
                    "not serving yet: the controller has not described the cluster\n".to_string(),
                ),
                _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoExtra;
    impl MetricsSource for NoExtra {
        fn render(&self, _: &mut String) {}
    }

    #[test]
    fn renders_histogram_cumulatively() {
        let m = Metrics::default();
        m.record_request(0, Duration::from_micros(50), false);
        m.record_request(0, Duration::from_millis(3), true);
        let text = m.render(&NoExtra);
        assert!(
            text.contains("strata_broker_requests_total{api=\"Produce\"} 2"),
            "{text}"
        );
        assert!(text.contains("strata_broker_request_errors_total{api=\"Produce\"} 1"));
        assert!(text.contains(
            "strata_broker_request_duration_seconds_bucket{api=\"Produce\",le=\"0.0001\"} 1"
        ));
        assert!(text.contains(
            "strata_broker_request_duration_seconds_bucket{api=\"Produce\",le=\"0.005\"} 2"
        ));
        assert!(text.contains("strata_broker_request_duration_seconds_count{api=\"Produce\"} 2"));
        assert!(!text.contains("api=\"Fetch\""));
    }
}
