//! The alarm state on the embedded broker, for local tools (a display, Node-RED, Home
//! Assistant): after every transition, the alarms not cleared are published retained on
//! `biogestor/<site>/alarmas`, so a client that subscribes later still gets the current state.

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::protocol::{Packet, Publish};

use super::{Alarms, Transition};
use crate::events::{Bus, Event};

/// `biogestor/<site slug>/alarmas`.
pub fn topic(site_name: &str) -> String {
    format!("biogestor/{}/alarmas", crate::backup::site_slug(site_name))
}

/// What the topic holds: the site, the alarms not cleared, the worst severity and the
/// transition that caused this update (`null` for the state at start-up).
async fn state(alarms: &Alarms, site: &str, tz: chrono_tz::Tz, last: Option<&Transition>) -> Value {
    let open = alarms.open().await;
    json!({
        "sitio": site,
        "activas": open.iter().map(|a| a.json(tz)).collect::<Vec<_>>(),
        "peor": open.iter().map(|a| a.severity).max().map(|s| s.name()),
        "evento": last.map(|t| t.message(tz)),
    })
}

/// Publishes the state at start and after every transition, until `stop`.
pub fn spawn(
    alarms: Alarms,
    link: (LinkTx, LinkRx),
    site: String,
    tz: chrono_tz::Tz,
    bus: &Bus,
    stop: CancellationToken,
) {
    let mut events = bus.subscribe();
    tokio::spawn(async move {
        // The receiving half stays alive with the task: the router keeps the link.
        let (mut tx, _rx) = link;
        let topic = topic(&site);
        let mut pending = Some(state(&alarms, &site, tz, None).await);
        loop {
            if let Some(body) = pending.take() {
                let packet = Packet::Publish(
                    Publish::new(
                        bytes::Bytes::from(topic.clone()),
                        bytes::Bytes::from(body.to_string()),
                        true,
                    ),
                    None,
                );
                if let Err(e) = tx.send(packet).await {
                    tracing::warn!(error = %e, "alarms: cannot publish the state over MQTT");
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                ev = events.recv() => match ev {
                    Ok(Event::Alarm(t)) => pending = Some(state(&alarms, &site, tz, Some(&t)).await),
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => pending = Some(state(&alarms, &site, tz, None).await),
                    Err(RecvError::Closed) => return,
                },
            }
        }
    });
}
