//! Samples the appliance's own condition (store writer, free disk, clock, refused MQTT
//! connections) and publishes it on the event bus for the alarm engine and other consumers,
//! with the close of each site-local day.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::broker::refusals::Refusals;
use crate::events::{Bus, Event, SystemEvent};
use crate::store::Store;

/// How often the condition is sampled.
const EVERY: Duration = Duration::from_secs(5);

/// Publishes a sample of every condition each [`EVERY`], and [`Event::DayClosed`] when the
/// site-local day changes, until `stop`.
pub fn spawn(store: Store, refusals: Arc<Refusals>, bus: Bus, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        let tz = store.timezone();
        let mut day = crate::sitetime::today(tz);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = crate::sitetime::today(tz);
            if now > day {
                bus.publish(Event::DayClosed { day: now - 1 });
            }
            day = now;
            let healthy = store.counters().writer_healthy.load(Ordering::Relaxed);
            bus.publish(Event::System(SystemEvent::Writer { healthy }));
            let synced = crate::clock::state() != crate::clock::ClockState::Unsynced;
            bus.publish(Event::System(SystemEvent::Clock { synced }));
            let dir = store.path().parent().map(|p| p.to_path_buf());
            let free = tokio::task::spawn_blocking(move || {
                dir.and_then(|d| crate::store::usage::filesystem(&d))
            })
            .await;
            if let Ok(Some((free_bytes, _))) = free {
                bus.publish(Event::System(SystemEvent::Disk { free_bytes }));
            }
            let total = refusals.snapshot().iter().map(|(_, n)| n).sum();
            bus.publish(Event::System(SystemEvent::MqttRefused { total }));
        }
    });
}
