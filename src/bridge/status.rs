//! What the bridge reports about itself: connected or not, the last error (a refused login is
//! marked so Estado can say so), when it tries again and how fast it forwards. The queue's
//! own figures (waiting, oldest, gaps) are read from the store when asked.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::store::outbox::QueueState;

/// Window over which the forwarded rate is measured.
const RATE_WINDOW: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Inner {
    enabled: bool,
    /// `host:port` and whether TLS is used.
    target: String,
    tls: bool,
    topic_base: String,
    connected: bool,
    connected_since_us: Option<i64>,
    last_error: Option<(i64, String)>,
    auth_refused: bool,
    next_attempt_us: Option<i64>,
    forwarded: u64,
    messages: u64,
    bytes: u64,
    last_ack_us: Option<i64>,
    recent: VecDeque<(Instant, u64)>,
}

/// Shared, cheap to clone; the bridge task writes it, the API and /metrics read it.
#[derive(Debug, Clone, Default)]
pub struct BridgeStatus(Arc<Mutex<Inner>>);

/// A copy of the status at one moment, with the queue's figures.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub enabled: bool,
    pub connected: bool,
    pub auth_refused: bool,
    pub last_error: Option<String>,
    /// Readings forwarded (acknowledged) since the service started.
    pub forwarded: u64,
    /// Payload bytes of the acknowledged reading messages since the service started.
    pub bytes: u64,
    /// Readings acknowledged per second over the last 30 s.
    pub rate_per_s: f64,
    pub queue: QueueState,
    /// Age of the oldest reading not yet acknowledged, seconds.
    pub oldest_age_s: Option<f64>,
}

impl BridgeStatus {
    /// The status of a bridge about to run against `target`.
    pub fn configured(target: String, tls: bool, topic_base: String) -> Self {
        let s = BridgeStatus::default();
        {
            let mut i = s.0.lock();
            i.enabled = true;
            i.target = target;
            i.tls = tls;
            i.topic_base = topic_base;
        }
        s
    }

    /// Connected (CONNACK accepted) or not.
    pub fn set_connected(&self, connected: bool) {
        let mut i = self.0.lock();
        if connected && !i.connected {
            i.connected_since_us = Some(crate::sitetime::now_us());
            i.auth_refused = false;
            i.next_attempt_us = None;
        }
        if !connected {
            i.connected_since_us = None;
        }
        i.connected = connected;
    }

    /// Records a failure (in Spanish, for Estado) and when the next attempt is due.
    pub fn failed(&self, message: String, auth_refused: bool, retry_in: Duration) {
        let now = crate::sitetime::now_us();
        let mut i = self.0.lock();
        i.connected = false;
        i.connected_since_us = None;
        i.auth_refused = auth_refused;
        i.last_error = Some((now, message));
        i.next_attempt_us = Some(now + retry_in.as_micros() as i64);
    }

    /// A batch of `readings` readings in `bytes` bytes was acknowledged.
    pub fn forwarded(&self, readings: u64, bytes: u64) {
        let now = Instant::now();
        let mut i = self.0.lock();
        i.forwarded += readings;
        i.messages += 1;
        i.bytes += bytes;
        i.last_ack_us = Some(crate::sitetime::now_us());
        i.recent.push_back((now, readings));
        while i
            .recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            i.recent.pop_front();
        }
    }

    /// The status with the queue's figures `queue`.
    pub fn snapshot(&self, queue: QueueState) -> Snapshot {
        let i = self.0.lock();
        let now = Instant::now();
        let recent: u64 = i
            .recent
            .iter()
            .filter(|(t, _)| now.duration_since(*t) <= RATE_WINDOW)
            .map(|(_, n)| n)
            .sum();
        let now_us = crate::sitetime::now_us();
        Snapshot {
            enabled: i.enabled,
            connected: i.connected,
            auth_refused: i.auth_refused,
            last_error: i.last_error.as_ref().map(|(_, m)| m.clone()),
            forwarded: i.forwarded,
            bytes: i.bytes,
            rate_per_s: recent as f64 / RATE_WINDOW.as_secs_f64(),
            oldest_age_s: queue
                .head_us
                .map(|us| ((now_us - us) as f64 / 1e6).max(0.0)),
            queue,
        }
    }

    /// The status as the API gives it (`GET /api/puente/`), times in the site's zone.
    pub fn to_json(&self, queue: QueueState, tz: chrono_tz::Tz) -> Value {
        let snap = self.snapshot(queue);
        let i = self.0.lock();
        let time = |us: Option<i64>| us.map(|us| crate::sitetime::rfc3339(tz, us));
        json!({
            "activo": i.enabled,
            "destino": i.target,
            "tls": i.tls,
            "topicos": i.topic_base,
            "conectado": i.connected,
            "conectado_desde": time(i.connected_since_us),
            "credenciales_rechazadas": i.auth_refused,
            "ultimo_error": i.last_error.as_ref().map(|(_, m)| m.clone()),
            "ultimo_error_en": time(i.last_error.as_ref().map(|(t, _)| *t)),
            "proximo_intento": time(i.next_attempt_us.filter(|_| !i.connected)),
            "pendientes": queue.waiting,
            "antiguedad_pendiente_s": snap.oldest_age_s.map(f64::round),
            "reenviadas": i.forwarded,
            "mensajes": i.messages,
            "bytes_por_lectura": (i.forwarded > 0)
                .then(|| (i.bytes as f64 / i.forwarded as f64 * 10.0).round() / 10.0),
            "lecturas_por_s": (snap.rate_per_s * 10.0).round() / 10.0,
            "ultima_confirmacion": time(i.last_ack_us),
            "ultimo_seq": (queue.last_seq > 0).then_some(queue.last_seq),
            "perdidas_por_disco_lleno": queue.lost_total,
            "hueco_seq": queue.gap.map(|(a, b)| json!({"desde": a, "hasta": b})),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_reports_refusals_and_rates() {
        let s = BridgeStatus::configured("central:1883".into(), false, "biogestor/f1".into());
        s.failed(
            "credenciales rechazadas".into(),
            true,
            Duration::from_secs(120),
        );
        let j = s.to_json(QueueState::default(), chrono_tz::UTC);
        assert_eq!(j["conectado"], false);
        assert_eq!(j["credenciales_rechazadas"], true);
        assert!(j["proximo_intento"].is_string());
        s.set_connected(true);
        s.forwarded(300, 30_000);
        let snap = s.snapshot(QueueState::default());
        assert!(snap.connected && !snap.auth_refused);
        assert_eq!(snap.forwarded, 300);
        assert!((snap.rate_per_s - 10.0).abs() < 1e-9);
        let j = s.to_json(QueueState::default(), chrono_tz::UTC);
        assert_eq!(j["bytes_por_lectura"], 100.0);
    }
}
