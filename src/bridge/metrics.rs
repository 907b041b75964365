//! The bridge's figures in `/metrics` (registered only when `[bridge]` is on).

use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::Snapshot;

/// Adds the bridge's families to a scrape.
pub fn register(r: &mut Registry, s: &Snapshot) {
    r.register(
        "biogestor_bridge_connected",
        "1 while connected to the central MQTT broker",
        ConstGauge::new(i64::from(s.connected)),
    );
    r.register(
        "biogestor_bridge_credentials_refused",
        "1 when the central broker refused the bridge's username or password",
        ConstGauge::new(i64::from(s.auth_refused)),
    );
    r.register(
        "biogestor_bridge_readings_waiting",
        "Readings stored and not yet acknowledged by the central broker",
        ConstGauge::new(s.queue.waiting as i64),
    );
    r.register(
        "biogestor_bridge_oldest_waiting_age_seconds",
        "Age of the oldest reading not yet acknowledged (0 when none waits)",
        ConstGauge::new(s.oldest_age_s.unwrap_or(0.0)),
    );
    r.register(
        "biogestor_bridge_readings_forwarded",
        "Readings acknowledged by the central broker since the service started",
        ConstCounter::new(s.forwarded),
    );
    r.register(
        "biogestor_bridge_payload_bytes",
        "Payload bytes of the acknowledged reading messages since the service started",
        ConstCounter::new(s.bytes),
    );
    r.register(
        "biogestor_bridge_forward_rate",
        "Readings acknowledged per second over the last 30 s",
        ConstGauge::new(s.rate_per_s),
    );
    r.register(
        "biogestor_bridge_readings_lost",
        "Readings pruned before they were forwarded because the disk was critically full",
        ConstCounter::new(s.queue.lost_total),
    );
}
