//! The in-process event bus: what happens in the appliance (accepted readings, stage
//! changes, system conditions, alarm transitions) as typed events on one broadcast channel.
//! The live feed, the alarm engine and later consumers each subscribe; a subscriber that falls
//! more than the channel's capacity behind skips the oldest events (and learns how many), so
//! no subscriber can slow ingest or another subscriber.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::alarms::Transition;
use crate::reading::Reading;

/// A reading ingest accepted and queued for the store.
#[derive(Debug)]
pub struct Accepted {
    /// The stage it belongs to (0: none active).
    pub stage: u64,
    /// Receive time, µs since the epoch (the appliance's clock).
    pub ts_us: i64,
    pub reading: Reading,
}

/// A condition of the appliance itself, sampled by [`crate::alarms::system`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SystemEvent {
    /// The store writer's health changed.
    Writer { healthy: bool },
    /// Free bytes on the store's file system (sampled).
    Disk { free_bytes: u64 },
    /// The clock's synchronisation changed.
    Clock { synced: bool },
    /// MQTT connections refused since the start (sent when it grows).
    MqttRefused { total: u64 },
}

/// One event of the bus.
#[derive(Debug, Clone)]
pub enum Event {
    Reading(Arc<Accepted>),
    /// A new stage became the active one (its id).
    StageChanged {
        stage: u64,
    },
    System(SystemEvent),
    /// The site-local day changed: `day` (a [`crate::sitetime::DayNumber`]) is over.
    DayClosed {
        day: crate::sitetime::DayNumber,
    },
    /// An alarm was raised, acknowledged or cleared.
    Alarm(Arc<Transition>),
}

/// Cheap-to-clone publishing handle of the bus.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Event>,
}

impl Bus {
    /// A bus whose subscribers may lag `capacity` events before skipping.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Self { tx }
    }

    /// Publishes an event (nothing happens when nobody listens).
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// Publishes an accepted reading.
    pub fn reading(&self, stage: u64, ts_us: i64, reading: Reading) {
        self.publish(Event::Reading(Arc::new(Accepted {
            stage,
            ts_us,
            reading,
        })));
    }

    /// A new subscription receiving every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
