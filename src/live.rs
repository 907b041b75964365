//! Fan-out of accepted readings to WebSocket clients. Each reading is serialised once and
//! shared; a client that falls more than the buffer behind skips the oldest readings (and is
//! told how many), so it never slows ingest or the other clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::ws::Utf8Bytes;
use chrono_tz::Tz;
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::reading::{Channel, Reading};
use crate::sitetime::rfc3339;

/// Cheap-to-clone publisher/subscriber handle of the live feed.
#[derive(Clone)]
pub struct LiveHub {
    tx: broadcast::Sender<Utf8Bytes>,
    tz: Tz,
    clients: Arc<AtomicUsize>,
}

impl LiveHub {
    /// A hub whose clients may lag `buffer` readings before skipping.
    pub fn new(buffer: usize, tz: Tz) -> Self {
        let (tx, _) = broadcast::channel(buffer);
        Self {
            tx,
            tz,
            clients: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Sends a reading to every connected client (no work at all when none is connected).
    pub fn publish(&self, stage: u64, ts_us: i64, reading: &Reading) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let _ = self
            .tx
            .send(Utf8Bytes::from(message(self.tz, stage, ts_us, reading)));
    }

    /// A new subscription, counted until the returned guard drops.
    pub fn subscribe(&self) -> (broadcast::Receiver<Utf8Bytes>, ClientGuard) {
        self.clients.fetch_add(1, Ordering::Relaxed);
        (
            self.tx.subscribe(),
            ClientGuard {
                clients: self.clients.clone(),
            },
        )
    }

    /// Connected WebSocket clients.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }
}

/// Decrements the client count when a WebSocket ends.
pub struct ClientGuard {
    clients: Arc<AtomicUsize>,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `{"type":"sensor_data", <channels>, <extra>, "ts": ..., "stage": ...}`.
pub fn message(tz: Tz, stage: u64, ts_us: i64, r: &Reading) -> String {
    let mut m = reading_object(tz, stage, ts_us, r);
    m.insert("type".into(), Value::from("sensor_data"));
    Value::Object(m).to_string()
}

/// A reading as the API shows it: channel names as sensors send them, extra channels, the
/// receive time in the site's zone and the stage it belongs to.
pub fn reading_object(tz: Tz, stage: u64, ts_us: i64, r: &Reading) -> Map<String, Value> {
    let mut m = Map::new();
    for (name, v) in &r.extra {
        m.insert(name.clone(), Value::from(*v));
    }
    for c in Channel::ALL {
        if let Some(v) = r.get(c) {
            m.insert(c.name().into(), Value::from(v));
        }
    }
    m.insert("ts".into(), Value::from(rfc3339(tz, ts_us)));
    m.insert("stage".into(), Value::from(stage));
    // A time stamped by an unsynchronised clock (or re-dated since) says so.
    if let Some(mark) = r.clock.label() {
        m.insert("reloj".into(), Value::from(mark));
    }
    m
}
