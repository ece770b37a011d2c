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

/// The broker's counters and gauges.
pub struct Metrics {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub records_in: AtomicU64,
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_rejected: AtomicU64,
    pub invalid_frames: AtomicU64,
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
            connections_rejected: AtomicU64::new(0),
            invalid_frames: AtomicU64::new(0),
            produce_errors: AtomicU64::new(0),
            storage_errors: AtomicU64::new(0),
            apis: (0..MAX_API_KEY).map(|_| ApiStats::new()).collect(),
        }
    }
}

/// Extra samples a scrape adds from live state (logs, groups).
pub trait MetricsSource: Send + Sync {
    fn render(&self, out: &mut String);
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
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        };
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
            "strata_broker_connections_rejected_total",
            "Connections closed at accept because max.connections was reached.",
            &self.connections_rejected,
        );
        counter(
            &mut out,
            "strata_broker_invalid_requests_total",
            "Connections closed for an oversized or malformed request.",
            &self.invalid_frames,
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
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// Serves `/metrics` (and `/healthz`) until the task is dropped.
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
                "/healthz" | "/readyz" => ("200 OK", "text/plain", "ok\n".to_string()),
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
