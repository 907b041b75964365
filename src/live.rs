//! Fan-out of the event bus to WebSocket clients. Each client subscribes to the bus and
//! serialises the events it shows (readings and alarm transitions); a client that falls more
//! than the bus's capacity behind skips the oldest events (and is told how many), so it never
//! slows ingest, the alarm engine or the other clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::ws::Utf8Bytes;
use chrono_tz::Tz;
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::events::{Bus, Event};
use crate::reading::{Channel, Reading};
use crate::sitetime::rfc3339;

/// Cheap-to-clone subscriber handle of the live feed.
#[derive(Clone)]
pub struct LiveHub {
    bus: Bus,
    tz: Tz,
    clients: Arc<AtomicUsize>,
}

impl LiveHub {
    /// The live feed of `bus`, with times shown in `tz`.
    pub fn new(bus: Bus, tz: Tz) -> Self {
        Self {
            bus,
            tz,
            clients: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A new subscription, counted until the returned guard drops.
    pub fn subscribe(&self) -> (broadcast::Receiver<Event>, ClientGuard) {
        self.clients.fetch_add(1, Ordering::Relaxed);
        (
            self.bus.subscribe(),
            ClientGuard {
                clients: self.clients.clone(),
            },
        )
    }

    /// The WebSocket text of an event, or `None` for events the feed does not show.
    pub fn render(&self, event: &Event) -> Option<Utf8Bytes> {
        match event {
            Event::Reading(a) => Some(Utf8Bytes::from(message(
                self.tz, a.stage, a.ts_us, &a.reading,
            ))),
            Event::Alarm(t) => Some(Utf8Bytes::from(t.message(self.tz).to_string())),
            Event::StageChanged { .. } | Event::System(_) | Event::DayClosed { .. } => None,
        }
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
