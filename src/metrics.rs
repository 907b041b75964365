//! Process metrics in the Prometheus text format (served at `GET /metrics`).
//!
//! The counters and histograms live in one process-wide [`Metrics`] value: the hot path (each
//! MQTT message) costs one relaxed atomic increment, commits and HTTP requests a little more.
//! Values that already exist elsewhere (WebSocket clients, store file size, memory, uptime)
//! are read when a scrape happens. Encoding is done by `prometheus-client`, the official Rust
//! client, in the classic text format (version 0.0.4).
//!
//! Counters count since the process started, as Prometheus expects (a restart is a reset).
//! The totals since the store was created are in `/api/dashboard/stats/`.

use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::store::usage::Usage;

/// `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Labels of the HTTP request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The matched route template (`/api/usuario/{id}/aprobar/`), or `unmatched`.
    pub route: String,
    /// The request method (unusual ones are counted as `other`).
    pub method: &'static str,
    /// The response status code.
    pub status: u16,
}

/// Label of the MQTT refusal counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// The refusal's code (`bad_credentials`, `oversize`, ...).
    pub reason: &'static str,
}

/// Label of the HTTP connection refusal counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRefusalLabels {
    /// The cap that was reached (`max_connections`, `max_connections_per_address`).
    pub reason: &'static str,
}

/// Every metric the appliance updates as it works.
#[derive(Debug)]
pub struct Metrics {
    mqtt_received: Counter,
    mqtt_accepted: Counter,
    mqtt_rejected: Counter,
    mqtt_dropped: Counter,
    readings_committed: Counter,
    commit_batch: Histogram,
    commit_seconds: Histogram,
    report_seconds: Histogram,
    http_requests: Family<HttpLabels, Counter>,
    mqtt_refused: Family<RefusalLabels, Counter>,
    http_refused: Family<HttpRefusalLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            mqtt_received: Counter::default(),
            mqtt_accepted: Counter::default(),
            mqtt_rejected: Counter::default(),
            mqtt_dropped: Counter::default(),
            readings_committed: Counter::default(),
            commit_batch: Histogram::new([
                1.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 50000.0,
            ]),
            commit_seconds: Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            report_seconds: Histogram::new([
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            ]),
            http_requests: Family::default(),
            mqtt_refused: Family::default(),
            http_refused: Family::default(),
        }
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// One MQTT message arrived on the ingest link.
pub fn mqtt_received() {
    METRICS.mqtt_received.inc();
}

/// One MQTT message was parsed into a reading and queued for the store.
pub fn mqtt_accepted() {
    METRICS.mqtt_accepted.inc();
}

/// One MQTT message was refused (malformed, too big, absurd values...).
pub fn mqtt_rejected() {
    METRICS.mqtt_rejected.inc();
}

/// One MQTT connection refused, or one publish or subscription dropped, for `reason`.
pub fn mqtt_refused(reason: &'static str) {
    METRICS
        .mqtt_refused
        .get_or_create(&RefusalLabels { reason })
        .inc();
}

/// Makes `reason` appear in the exposition (at 0) before it first happens, so a scrape shows
/// every reason and rates start from a known zero.
pub fn mqtt_refused_declare(reason: &'static str) {
    let _ = METRICS
        .mqtt_refused
        .get_or_create(&RefusalLabels { reason });
}

/// The broker dropped `n` messages before ingest read them (overload).
pub fn mqtt_dropped(n: u64) {
    METRICS.mqtt_dropped.inc_by(n);
}

/// A batch of `readings` was committed to the store in `took`.
pub fn committed(readings: u64, took: Duration) {
    METRICS.readings_committed.inc_by(readings);
    METRICS.commit_batch.observe(readings as f64);
    METRICS.commit_seconds.observe(took.as_secs_f64());
}

/// Records how long generating one report (all its files) took, in seconds.
pub fn observe_report_seconds(seconds: f64) {
    METRICS.report_seconds.observe(seconds);
}

/// Counts one answered HTTP request.
pub fn http_request(route: &str, method: &axum::http::Method, status: u16) {
    use axum::http::Method;
    let method = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    METRICS
        .http_requests
        .get_or_create(&HttpLabels {
            route: route.to_string(),
            method,
            status,
        })
        .inc();
}

/// One HTTP connection refused because the cap named by `reason` was reached.
pub fn http_refused(reason: &'static str) {
    METRICS
        .http_refused
        .get_or_create(&HttpRefusalLabels { reason })
        .inc();
}

/// What a scrape reads from the running appliance besides the counters.
#[derive(Debug, Clone)]
pub struct Scrape<'a> {
    /// The redb file, whose size is reported.
    pub store_file: &'a Path,
    /// Connected WebSocket clients.
    pub ws_clients: usize,
    /// Time since the service started.
    pub uptime: Duration,
    /// Whether the store writer's last commit succeeded.
    pub writer_healthy: bool,
    /// Room the store takes and has left (absent when it could not be read).
    pub usage: Option<&'a Usage>,
    /// The bridge to a central broker (absent when `[bridge]` is off).
    pub bridge: Option<&'a crate::bridge::Snapshot>,
}

/// Resident memory of this process in bytes, from `/proc/self/status` (`VmRSS`, exact
/// whatever the kernel's page size: 4 KiB on most Pis, 16 KiB on a Pi 5 kernel).
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The store's room: free space, growth, days until full, oldest reading, last prune. A value
/// that is not known (or a prune that never ran) is left out rather than shown as 0.
fn register_usage(r: &mut Registry, u: &Usage) {
    let gauge = |r: &mut Registry, name: &str, help: &str, v: Option<f64>| {
        if let Some(v) = v {
            r.register(name, help, ConstGauge::new(v));
        }
    };
    gauge(
        r,
        "biogestor_store_filesystem_free_bytes",
        "Bytes free on the file system holding the store",
        u.free_bytes.map(|v| v as f64),
    );
    gauge(
        r,
        "biogestor_store_filesystem_size_bytes",
        "Size of the file system holding the store",
        u.filesystem_bytes.map(|v| v as f64),
    );
    gauge(
        r,
        "biogestor_store_growth_bytes_per_day",
        "Growth of the store file over the last 24 hours (absent before an hour of samples)",
        u.growth_bytes_per_day,
    );
    gauge(
        r,
        "biogestor_store_days_until_full",
        "Days until the free space is used up at the store's growth rate (absent when unknown \
         or not growing)",
        u.days_until_full,
    );
    gauge(
        r,
        "biogestor_store_oldest_reading_timestamp_seconds",
        "Receive time of the oldest raw reading kept (absent when there is none)",
        u.oldest_reading_us.map(|us| us as f64 / 1e6),
    );
    gauge(
        r,
        "biogestor_store_last_prune_timestamp_seconds",
        "When the last prune that removed raw readings ran (absent when never)",
        u.last_prune_us.map(|us| us as f64 / 1e6),
    );
    r.register(
        "biogestor_store_pruned_readings",
        "Raw readings pruned since the store was created",
        ConstCounter::new(u.pruned_total),
    );
}

/// Every metric in the Prometheus text format.
pub fn render(s: &Scrape<'_>) -> Result<String, std::fmt::Error> {
    let m = &*METRICS;
    let mut r = Registry::default();
    r.register(
        "biogestor_build",
        "Version of the running biogestor binary",
        Info::new(vec![(
            "version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )]),
    );
    r.register(
        "biogestor_mqtt_messages_received",
        "MQTT messages read from the broker on the configured topics",
        m.mqtt_received.clone(),
    );
    r.register(
        "biogestor_mqtt_messages_accepted",
        "MQTT messages parsed into readings and queued for the store",
        m.mqtt_accepted.clone(),
    );
    r.register(
        "biogestor_mqtt_messages_rejected",
        "MQTT messages refused as malformed, oversized or implausible",
        m.mqtt_rejected.clone(),
    );
    r.register(
        "biogestor_mqtt_messages_dropped",
        "MQTT messages the broker acknowledged but dropped before ingest read them (overload)",
        m.mqtt_dropped.clone(),
    );
    r.register(
        "biogestor_mqtt_refused",
        "MQTT connections refused and publishes or subscriptions dropped, by reason",
        m.mqtt_refused.clone(),
    );
    r.register(
        "biogestor_readings_committed",
        "Readings durably committed to the store",
        m.readings_committed.clone(),
    );
    r.register(
        "biogestor_commit_batch_readings",
        "Readings per committed batch",
        m.commit_batch.clone(),
    );
    r.register(
        "biogestor_commit_duration_seconds",
        "Time to commit one batch of readings (write and fsync)",
        m.commit_seconds.clone(),
    );
    r.register(
        "biogestor_report_generation_seconds",
        "Time to generate one report",
        m.report_seconds.clone(),
    );
    r.register(
        "biogestor_http_requests",
        "HTTP requests answered, by matched route, method and status",
        m.http_requests.clone(),
    );
    r.register(
        "biogestor_http_connections_refused",
        "HTTP connections closed on arrival because a connection cap was reached, by cap",
        m.http_refused.clone(),
    );
    r.register(
        "biogestor_websocket_clients",
        "Connected live-feed WebSocket clients",
        ConstGauge::new(s.ws_clients as i64),
    );
    r.register(
        "biogestor_writer_healthy",
        "1 while the store writer commits, 0 while its commits fail (disk full, I/O error)",
        ConstGauge::new(i64::from(s.writer_healthy)),
    );
    if let Ok(meta) = std::fs::metadata(s.store_file) {
        use std::os::unix::fs::MetadataExt;
        r.register(
            "biogestor_store_file_size_bytes",
            "Space the database file occupies on disk (its allocated blocks)",
            ConstGauge::new((meta.blocks() * 512) as i64),
        );
    }
    if let Some(u) = s.usage {
        register_usage(&mut r, u);
    }
    if let Some(b) = s.bridge {
        crate::bridge::metrics::register(&mut r, b);
    }
    if let Some(rss) = resident_memory_bytes() {
        r.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            ConstGauge::new(rss as i64),
        );
    }
    r.register(
        "biogestor_uptime_seconds",
        "Time since the service started",
        ConstGauge::new(s.uptime.as_secs_f64()),
    );
    let mut out = String::with_capacity(8 * 1024);
    prometheus_text::encode(&mut out, &r)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_in_text_format() {
        mqtt_received();
        mqtt_accepted();
        committed(3, Duration::from_millis(4));
        observe_report_seconds(0.3);
        http_request("/healthz", &axum::http::Method::GET, 200);
        http_refused("max_connections_per_address");
        let text = render(&Scrape {
            store_file: Path::new("/nonexistent"),
            usage: None,
            bridge: None,
            ws_clients: 2,
            uptime: Duration::from_secs(5),
            writer_healthy: true,
        })
        .expect("render");
        for needle in [
            "# TYPE biogestor_mqtt_messages_received_total counter",
            "biogestor_build_info{version=\"",
            "biogestor_commit_batch_readings_bucket{le=\"10\"} 1",
            "biogestor_report_generation_seconds_count",
            "biogestor_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"}",
            "biogestor_http_connections_refused_total{reason=\"max_connections_per_address\"} 1",
            "biogestor_websocket_clients 2",
            "biogestor_uptime_seconds 5",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
        assert!(
            !text.contains("# EOF"),
            "classic text format, not OpenMetrics"
        );
    }

    #[test]
    fn resident_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(resident_memory_bytes().is_some_and(|b| b > 1 << 20));
        }
    }
}
