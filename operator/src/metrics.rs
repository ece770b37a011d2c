//! The operator's own health and metrics over HTTP: `/healthz` (the process serves),
//! `/readyz` (the CRDs are installed and the controllers started), `/metrics` (Prometheus
//! text: reconciles, errors by category, reconcile duration).
//!
//! A hand-rolled HTTP/1.1 responder is enough for three GET endpoints scraped by the
//! kubelet and Prometheus; it reads one bounded request per connection and closes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: &'static str,
    category: &'static str,
}

type DurationFamily = Family<ControllerLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: DurationFamily,
    ready: AtomicBool,
}

fn duration_histogram() -> Histogram {
    // 5 ms .. ~20 s: an apply round-trip up to a slow Kafka admin call.
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("strata_operator");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let duration: DurationFamily = Family::new_with_constructor(duration_histogram);
        registry.register("reconciles", "Reconciliations run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed, by error category",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconciliation",
            duration.clone(),
        );
        Self {
            registry,
            reconciles,
            errors,
            duration,
            ready: AtomicBool::new(false),
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, controller: &'static str, elapsed: Duration) {
        self.reconciles
            .get_or_create(&ControllerLabels { controller })
            .inc();
        self.duration
            .get_or_create(&ControllerLabels { controller })
            .observe(elapsed.as_secs_f64());
    }

    pub fn failed(&self, controller: &'static str, category: &'static str) {
        self.errors
            .get_or_create(&ErrorLabels {
                controller,
                category,
            })
            .inc();
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Status line and body for a request path.
    fn respond(&self, path: &str) -> (&'static str, &'static str, String) {
        const TEXT: &str = "text/plain; charset=utf-8";
        match path {
            "/healthz" => ("200 OK", TEXT, "ok\n".into()),
            "/readyz" if self.ready.load(Ordering::Acquire) => ("200 OK", TEXT, "ok\n".into()),
            "/readyz" => (
                "503 Service Unavailable",
                TEXT,
                "controllers not started\n".into(),
            ),
            "/metrics" => (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.render(),
            ),
            _ => ("404 Not Found", TEXT, "not found\n".into()),
        }
    }
}

/// Largest request head accepted; the probes send a few hundred bytes.
const MAX_REQUEST_BYTES: usize = 8 * 1024;

pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(err) = handle(stream, &metrics).await {
                tracing::debug!(%err, "metrics connection failed");
            }
        });
    }
}

async fn handle(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_REQUEST_BYTES {
            return stream.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n").await;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut request_line = head.lines().next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default();
    let path = request_line.next().unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default();
    let (status, content_type, body) = if method == "GET" || method == "HEAD" {
        metrics.respond(path)
    } else {
        (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "GET only\n".into(),
        )
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn endpoints_answer_over_http() {
        let metrics = Arc::new(Metrics::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, metrics.clone()));

        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200 OK"));
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
        metrics.set_ready();
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200 OK"));
        assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));

        metrics.reconciled("kafkacluster", Duration::from_millis(20));
        metrics.failed("topic", "kafka");
        let body = get(addr, "/metrics").await;
        assert!(
            body.contains("strata_operator_reconciles_total{controller=\"kafkacluster\"} 1"),
            "{body}"
        );
        assert!(
            body.contains(
                "strata_operator_reconcile_errors_total{controller=\"topic\",category=\"kafka\"} 1"
            ),
            "{body}"
        );
        assert!(
            body.contains(
                "strata_operator_reconcile_duration_seconds_count{controller=\"kafkacluster\"} 1"
            ),
            "{body}"
        );
    }
}
