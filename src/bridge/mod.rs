//! Store-and-forward to a central MQTT broker (`[bridge]`). Every reading committed while the
//! bridge is on is queued with its `seq` in the store ([`crate::store::outbox`]); this task
//! publishes the queue in batches on `<prefix>/<site>/lecturas` with QoS 1 and removes an
//! entry only after the broker's PUBACK, so an outage of the link, of the central broker or of
//! the appliance (restart, power cut) only delays readings. After one, readings that arrive
//! are sent at once while the backlog is sent oldest first at `max_backfill_per_s` at most.
//! Delivery is at least once: a batch whose PUBACK was lost is sent again with the same seqs.
//!
//! The filling stages go as one retained `.../llenados` message and the alarms not cleared
//! as one retained `.../alarmas` message, each sent at connection and whenever it changes.
//! Each stage's daily figures (`.../diario`) and the report records (`.../reportes`) are sent
//! at connection and then whatever changed ([`figures`]). A retained `.../estado` message says
//! the site is online; the last will (and a clean stop) replace it with an offline one. A
//! refused login is retried only every few minutes.

pub mod figures;
pub mod message;
pub mod metrics;
pub mod status;
pub mod tls;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions,
    Outgoing, Packet, QoS, TlsConfiguration, Transport,
};
use tokio_util::sync::CancellationToken;

use crate::config::ValidConfig;
use crate::store::Store;
use crate::store::outbox::Queued;
pub use status::{BridgeStatus, Snapshot};

/// Most readings in one message.
const MAX_BATCH: usize = 500;
/// How often the queue is looked at when nothing is in flight.
const POLL: Duration = Duration::from_millis(200);
/// How often the stages and the alarms are checked for changes.
const STAGES_EVERY: Duration = Duration::from_secs(5);
/// How often the daily figures and report records are compared with what was sent.
const FIGURES_EVERY: Duration = Duration::from_secs(60);
/// How often the retained status is refreshed.
const HEARTBEAT: Duration = Duration::from_secs(60);
/// A batch not acknowledged by then ends the connection (it is sent again on the next).
const ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the CONNACK.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Waits between failed connections: doubling from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Wait after the central broker refused the credentials: a wrong password is not fixed by
/// trying again, and trying often can get the site banned.
const AUTH_RETRY: Duration = Duration::from_secs(300);

/// How a connection ended.
enum Ended {
    Stopped,
    Failed { message: String, auth: bool },
}

/// The fixed parts of the bridge, from the configuration.
struct Setup {
    opts: MqttOptions,
    site: String,
    readings_topic: String,
    status_topic: String,
    stages_topic: String,
    daily_topic: String,
    reports_topic: String,
    alarms_topic: String,
    backfill_per_s: u64,
    tz: chrono_tz::Tz,
    cfg: Arc<ValidConfig>,
}

/// Starts the bridge when `[bridge]` is on and returns its status (None when off). When it is
/// off, readings queued by an earlier run are forgotten (nothing would send them, and
/// retention would keep them forever).
pub fn start(
    cfg: &Arc<ValidConfig>,
    store: &Store,
    stop: CancellationToken,
) -> Result<Option<BridgeStatus>, tls::BridgeTlsError> {
    let b = &cfg.raw.bridge;
    if !b.enabled() {
        match store.outbox_clear() {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                readings = n,
                "bridge is off: readings still queued for the central broker will not be sent"
            ),
            Err(e) => tracing::warn!(error = %e, "could not empty the bridge queue"),
        }
        return Ok(None);
    }
    let Ok(target) = b.target() else {
        return Ok(None);
    };
    let base = message::base(&b.topic_prefix, &b.site_id);
    let mut opts = MqttOptions::new(b.client_id(), target.host.clone(), target.port);
    opts.set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(1 << 20, 1 << 20)
        .set_last_will(LastWill::new(
            message::status_topic(&base),
            message::status_payload(&b.site_id, false, cfg.timezone, None),
            QoS::AtLeastOnce,
            true,
        ));
    if !b.username.is_empty() {
        opts.set_credentials(b.username.clone(), b.password.clone());
    }
    if target.tls {
        let config = tls::client_config(b)?;
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
    }
    let status = BridgeStatus::configured(
        format!("{}:{}", target.host, target.port),
        target.tls,
        base.clone(),
    );
    let setup = Setup {
        opts,
        site: b.site_id.clone(),
        readings_topic: message::readings_topic(&base),
        status_topic: message::status_topic(&base),
        stages_topic: message::stages_topic(&base),
        daily_topic: message::daily_topic(&base),
        alarms_topic: message::alarms_topic(&base),
        reports_topic: message::reports_topic(&base),
        backfill_per_s: b.max_backfill_per_s,
        tz: cfg.timezone,
        cfg: cfg.clone(),
    };
    tokio::spawn(run(setup, store.clone(), status.clone(), stop));
    Ok(Some(status))
}

async fn run(setup: Setup, store: Store, status: BridgeStatus, stop: CancellationToken) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        let started = Instant::now();
        let (message, auth) = match connection(&setup, &store, &status, &stop).await {
            Ended::Stopped => break,
            Ended::Failed { message, auth } => (message, auth),
        };
        // A connection that lasted starts the backoff over.
        if started.elapsed() > BACKOFF_MAX {
            backoff = BACKOFF_FIRST;
        }
        let wait = if auth { AUTH_RETRY } else { backoff };
        backoff = (backoff * 2).min(BACKOFF_MAX);
        tracing::warn!(error = %message, retry_in_s = wait.as_secs(), "bridge to the central broker");
        status.failed(message, auth, wait);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    status.set_connected(false);
}

/// Why the connection failed, in Spanish for Estado; whether the login was refused.
fn describe(e: &ConnectionError) -> (String, bool) {
    match e {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => (
            "el broker central rechazó el usuario o la contraseña (bridge.username / \
             bridge.password)"
                .into(),
            true,
        ),
        ConnectionError::ConnectionRefused(code) => (
            format!("el broker central rechazó la conexión: {code:?}"),
            false,
        ),
        ConnectionError::Tls(t) => (format!("error TLS con el broker central: {t}"), false),
        ConnectionError::Io(io) => (
            format!("no se pudo conectar con el broker central: {io}"),
            false,
        ),
        other => (
            format!("conexión con el broker central perdida: {other}"),
            false,
        ),
    }
}

fn failed(e: &ConnectionError) -> Ended {
    let (message, auth) = describe(e);
    Ended::Failed { message, auth }
}

/// A message published and not yet acknowledged.
struct InFlight {
    /// None: the status message.
    batch: Option<Batch>,
    pkid: Option<u16>,
}

struct Batch {
    seqs: Vec<u64>,
    bytes: u64,
    sent: Instant,
}

/// Where sending stands within one connection.
struct Progress {
    /// Seqs up to this one were queued before the connection: the backlog.
    live_from: u64,
    /// Highest backlog seq sent; the backlog is done when nothing remains up to `live_from`.
    backfill_after: u64,
    /// Highest live seq sent.
    live_after: u64,
    next_backfill: Instant,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

async fn connection(
    setup: &Setup,
    store: &Store,
    status: &BridgeStatus,
    stop: &CancellationToken,
) -> Ended {
    let (client, mut events) = AsyncClient::new(setup.opts.clone(), 16);
    if let Some(end) = wait_connack(&mut events, stop).await {
        return end;
    }
    status.set_connected(true);
    tracing::info!(topic = %setup.readings_topic, "bridge connected to the central broker");
    let s = store.clone();
    let tail = blocking(move || s.outbox_state())
        .await
        .map_or(0, |q| q.tail_seq);
    let mut p = Progress {
        live_from: tail,
        backfill_after: 0,
        live_after: tail,
        next_backfill: Instant::now(),
    };
    let mut inflight: VecDeque<InFlight> = VecDeque::new();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut poll = tokio::time::interval(POLL);
    let mut stages_tick = tokio::time::interval(STAGES_EVERY);
    // What was last sent on `.../llenados` in this connection.
    let mut stages_sent: Option<Vec<u8>> = None;
    // What was last sent on `.../alarmas` in this connection.
    let mut alarms_sent: Option<Vec<u8>> = None;
    let mut figures_tick = tokio::time::interval(FIGURES_EVERY);
    // What was last sent on `.../diario` and `.../reportes` in this connection.
    let mut figures_sent = figures::Sent::default();
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                let offline = message::status_payload(&setup.site, false, setup.tz, None);
                let _ = client.publish(&setup.status_topic, QoS::AtLeastOnce, true, offline).await;
                let _ = client.disconnect().await;
                // Let the event loop send both.
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while events.poll().await.is_ok() {}
                }).await;
                return Ended::Stopped;
            }
            ev = events.poll() => match ev {
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    if let Some(f) = inflight.iter_mut().find(|f| f.pkid.is_none()) {
                        f.pkid = Some(pkid);
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    let Some(i) = inflight.iter().position(|f| f.pkid == Some(ack.pkid)) else {
                        continue;
                    };
                    let Some(done) = inflight.remove(i) else { continue };
                    if let Some(batch) = done.batch {
                        let n = batch.seqs.len() as u64;
                        let s = store.clone();
                        if let Err(e) = blocking(move || s.outbox_ack(&batch.seqs)).await {
                            return Ended::Failed {
                                message: format!("no se pudo guardar la confirmación: {e}"),
                                auth: false,
                            };
                        }
                        status.forwarded(n, batch.bytes);
                    }
                }
                Ok(_) => {}
                Err(e) => return failed(&e),
            },
            _ = heartbeat.tick() => {
                let s = store.clone();
                let waiting = blocking(move || s.outbox_state()).await.ok().map(|q| q.waiting);
                let body = message::status_payload(&setup.site, true, setup.tz, waiting);
                if client.try_publish(&setup.status_topic, QoS::AtLeastOnce, true, body).is_ok() {
                    inflight.push_back(InFlight { batch: None, pkid: None });
                }
            }
            _ = stages_tick.tick() => {
                let s = store.clone();
                let body = blocking(move || s.stages()).await
                    .map(|list| message::stages_payload(setup.tz, &setup.site, &list));
                if let Ok(body) = body
                    && stages_sent.as_ref() != Some(&body)
                    && client
                        .try_publish(&setup.stages_topic, QoS::AtLeastOnce, true, body.clone())
                        .is_ok()
                {
                    inflight.push_back(InFlight { batch: None, pkid: None });
                    stages_sent = Some(body);
                }
                let s = store.clone();
                let body = blocking(move || s.alarms()).await
                    .map(|list| message::alarms_payload(setup.tz, &setup.site, &list));
                if let Ok(body) = body
                    && alarms_sent.as_ref() != Some(&body)
                    && client
                        .try_publish(&setup.alarms_topic, QoS::AtLeastOnce, true, body.clone())
                        .is_ok()
                {
                    inflight.push_back(InFlight { batch: None, pkid: None });
                    alarms_sent = Some(body);
                }
            }
            _ = figures_tick.tick() => {
                let (s, cfg) = (store.clone(), setup.cfg.clone());
                match blocking(move || figures::collect(&s, &cfg)).await {
                    Ok(snap) => {
                        for p in figures_sent.pending(&snap, &setup.site, setup.tz) {
                            let topic = if p.daily { &setup.daily_topic } else { &setup.reports_topic };
                            if client.try_publish(topic, QoS::AtLeastOnce, false, p.payload.clone()).is_err() {
                                break;
                            }
                            inflight.push_back(InFlight { batch: None, pkid: None });
                            figures_sent.mark(p);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not read the daily figures to send"),
                }
            }
            _ = poll.tick() => {}
        }
        if inflight.iter().any(|f| {
            f.batch
                .as_ref()
                .is_some_and(|b| b.sent.elapsed() > ACK_TIMEOUT)
        }) {
            return Ended::Failed {
                message: "el broker central no confirmó un mensaje en 60 s".into(),
                auth: false,
            };
        }
        if inflight.iter().all(|f| f.batch.is_none()) {
            match next_batch(setup, store, &mut p).await {
                Ok(Some(items)) => {
                    let payload = message::readings_payload(setup.tz, &setup.site, &items);
                    let bytes = payload.len() as u64;
                    let seqs = items.iter().map(|q| q.seq).collect();
                    if client
                        .try_publish(&setup.readings_topic, QoS::AtLeastOnce, false, payload)
                        .is_err()
                    {
                        return Ended::Failed {
                            message: "la cola de envío del cliente MQTT está llena".into(),
                            auth: false,
                        };
                    }
                    inflight.push_back(InFlight {
                        batch: Some(Batch {
                            seqs,
                            bytes,
                            sent: Instant::now(),
                        }),
                        pkid: None,
                    });
                }
                Ok(None) => {}
                Err(message) => {
                    return Ended::Failed {
                        message,
                        auth: false,
                    };
                }
            }
        }
    }
}

/// Waits for the broker's CONNACK; None once connected.
async fn wait_connack(events: &mut EventLoop, stop: &CancellationToken) -> Option<Ended> {
    let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Some(Ended::Stopped),
            _ = tokio::time::sleep_until(deadline) => {
                return Some(Ended::Failed {
                    message: "el broker central no respondió a la conexión en 20 s".into(),
                    auth: false,
                });
            }
            ev = events.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return None,
                Ok(_) => {}
                Err(e) => return Some(failed(&e)),
            }
        }
    }
}

/// The next batch to send: backlog when its turn under the rate limit has come, otherwise
/// what arrived since the connection.
async fn next_batch(
    setup: &Setup,
    store: &Store,
    p: &mut Progress,
) -> Result<Option<Vec<Queued>>, String> {
    let now = Instant::now();
    if p.backfill_after < p.live_from && now >= p.next_backfill {
        // About two backlog messages a second, so the rate stays even.
        let n = (setup.backfill_per_s as usize / 2).clamp(1, MAX_BATCH);
        let (s, after, upto) = (store.clone(), p.backfill_after, p.live_from);
        let items = blocking(move || s.outbox_batch(after, upto, n)).await?;
        match items.last() {
            Some(last) => {
                p.backfill_after = last.seq;
                // Spaced from the previous slot, not from now: waiting for the PUBACK and the
                // next poll does not lower the rate below the limit (nor raise it above).
                let spacing =
                    Duration::from_secs_f64(items.len() as f64 / setup.backfill_per_s as f64);
                let floor = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
                p.next_backfill = p.next_backfill.max(floor) + spacing;
                return Ok(Some(items));
            }
            None => p.backfill_after = p.live_from,
        }
    }
    let (s, after) = (store.clone(), p.live_after);
    let items = blocking(move || s.outbox_batch(after, u64::MAX, MAX_BATCH)).await?;
    Ok(items.last().map(|last| last.seq).map(|seq| {
        p.live_after = seq;
        items
    }))
}
