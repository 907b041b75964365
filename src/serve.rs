//! `biogestor serve`: opens the store, starts the writer, broker, ingest and HTTP server, and
//! on SIGTERM/SIGINT stops them in the order that loses nothing: intake first (draining what
//! the broker acknowledged), then the pending batch is committed and the store closed last.
//!
//! Under systemd (`Type=notify`) it reports `READY=1` once the HTTP server answers (the store
//! is open and the broker listens by then), `STOPPING=1` when the stop signal arrives, and
//! feeds the watchdog while ingest, the writer and HTTP are alive (see [`crate::watchdog`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::alarms::Alarms;
use crate::auth::{Auth, AuthSetupError};
use crate::broker::probe::MqttHealth;
use crate::broker::{self, BrokerDeps, BrokerError};
use crate::config::ValidConfig;
use crate::config::placeholder::{self, PlaceholderError};
use crate::events::Bus;
use crate::http::{self, AppState};
use crate::ingest::{Ingest, IngestDeps};
use crate::live::LiveHub;
use crate::payload::Limits;
use crate::sensors::{self, SensorRegistry};
use crate::store::retention;
use crate::store::usage;
use crate::store::writer;
use crate::store::{Store, StoreError};
use crate::watchdog::{self, Liveness};

/// How often retention checks ages and the disk budget.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("{key} = {addr}: cannot listen there: {source}")]
    HttpBind {
        key: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    #[error(transparent)]
    Placeholder(#[from] PlaceholderError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Clock(#[from] crate::clock::monitor::CheckError),
    #[error(transparent)]
    BridgeTls(#[from] crate::bridge::tls::BridgeTlsError),
}

/// Binds one of the HTTP listeners, naming its key if the address cannot be used.
async fn bind_http(
    key: &'static str,
    addr: std::net::SocketAddr,
) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::HttpBind { key, addr, source })
}

/// Forgets revoked tokens and sessions once they have expired anyway, hourly, until `stop` (so its
/// store handle is released before the store is closed).
/// After a clock jump it waits a token lifetime (`lifetime_s`): tokens issued before the jump
/// stay valid by their own age (`auth::tokens`), so their revocations must outlive it.
fn spawn_revocation_pruner(store: Store, stop: CancellationToken, lifetime_s: i64) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            if crate::clock::monitor::since_last_jump_s().is_some_and(|s| s < lifetime_s) {
                continue;
            }
            let s = store.clone();
            let now = crate::sitetime::now_us() / 1_000_000;
            match tokio::task::spawn_blocking(move || s.prune_revoked(now)).await {
                Ok(Ok(n)) if n > 0 => tracing::debug!(pruned = n, "expired revocations removed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "pruning revoked tokens failed"),
                _ => {}
            }
        }
    });
}

/// Samples the store file's size every minute, for the growth rate and days until full.
fn spawn_usage_sampler(store: Store, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(usage::SAMPLE_EVERY);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => usage::sample(&store),
            }
        }
    });
}

/// Runs the appliance until `stop` resolves.
pub async fn run(
    mut cfg: ValidConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let started = Instant::now();
    crate::tls::install_provider();
    let store = Store::open(
        &cfg.raw.storage.data_dir,
        cfg.raw.storage.cache_size_mb,
        cfg.timezone,
    )?;
    // Administrators of a store older than alarms may manage them (once, before accounts load).
    store.grant_alarms_to_admins()?;
    // The store is held now, so no other service can be writing a snapshot here.
    for path in crate::backup::remove_leftovers(&cfg.raw.storage.data_dir) {
        tracing::info!(path = %path.display(), "removed a leftover of an interrupted backup");
    }
    if store.aggregates_outdated()? {
        tracing::warn!(
            "the daily gas figures of earlier days were computed by an earlier release's meter \
             rules; stop the service and run `biogestor reindex` to recompute them"
        );
    }
    // Before anything takes a timestamp: the clock's state marks the first readings.
    let clock =
        crate::clock::FieldClock::start(cfg.raw.clock.clone(), store.clone(), cfg.meter_rules())?;
    // Before the broker builds its accounts: a published password never reaches them on a
    // bind other machines can connect to.
    placeholder::replace_published(&mut cfg)?;
    let cfg = Arc::new(cfg);
    let raw = &cfg.raw;
    let auth = Auth::start(&store, &raw.storage.data_dir, &raw.auth)?;
    let shutdown = CancellationToken::new();
    spawn_revocation_pruner(
        store.clone(),
        shutdown.clone(),
        auth.keys.longest_lifetime_s(),
    );
    spawn_usage_sampler(store.clone(), shutdown.clone());
    let (writer, writer_thread) = writer::spawn(store.clone(), cfg.writer_config())?;
    let retention_stop = Arc::new(AtomicBool::new(false));
    let retention_thread = retention::spawn(
        store.clone(),
        cfg.retention_policy(),
        RETENTION_EVERY,
        retention_stop.clone(),
    )?;
    clock.run(writer.clone())?;
    let bridge = crate::bridge::start(&cfg, &store, shutdown.clone())?;
    let bus = Bus::new(raw.http.ws_buffer as usize);
    let live = LiveHub::new(bus.clone(), cfg.timezone);
    let sensors = SensorRegistry::load(&store)?;
    let sensor_persister = sensors::Persister::spawn(sensors.clone(), store.clone())?;

    let http_listener = bind_http("http.bind", cfg.http_bind).await?;
    let https_listener = match (cfg.tls.http, &cfg.tls.files) {
        (Some(addr), Some(files)) => Some(http::server::TlsListener {
            listener: bind_http("http.tls_bind", addr).await?,
            config: files.server.clone(),
        }),
        _ => None,
    };
    let broker_cfg = cfg.clone();
    let broker_deps = BrokerDeps {
        registry: sensors.clone(),
        counters: store.counters().clone(),
        hasher: auth.hasher.clone(),
    };
    let mqtt = tokio::task::spawn_blocking(move || broker::start(&broker_cfg, broker_deps))
        .await
        .map_err(|e| BrokerError::Link(e.to_string()))??;
    let mqtt_health = MqttHealth::new();
    let prober_stop = Arc::new(AtomicBool::new(false));
    mqtt_health.spawn_prober(
        mqtt.probe_addr,
        mqtt.probe_login.clone(),
        prober_stop.clone(),
    )?;
    let gate = mqtt.gate.clone();
    let ingest = Ingest::spawn(
        mqtt.link,
        IngestDeps {
            filters: raw.mqtt.topics.clone(),
            writer: writer.clone(),
            bus: bus.clone(),
            limits: Limits {
                max_bytes: raw.mqtt.max_payload_bytes as usize,
                max_fields: raw.mqtt.max_fields as usize,
            },
            store: store.clone(),
            counters: store.counters().clone(),
            intake_full: gate.intake_full.clone(),
        },
    )?;

    let alarms = Alarms::start(
        store.clone(),
        bus.clone(),
        // Pressure alarms need a gauge reading (see `alarms::engine`): hPa per unit.
        (raw.site.pressure_reading == crate::normal_volume::PressureReading::Gauge)
            .then(|| raw.site.pressure_unit.kpa() * 10.0),
        crate::alarms::production::ProductionSource {
            materials: raw.materials.clone(),
            site: cfg.site_model(),
        },
        shutdown.clone(),
    )?;
    crate::alarms::system::spawn(
        store.clone(),
        gate.refusals.clone(),
        bus.clone(),
        shutdown.clone(),
    );
    crate::alarms::mqtt::spawn(
        alarms.clone(),
        mqtt.publisher,
        raw.site.name.clone(),
        cfg.timezone,
        &bus,
        shutdown.clone(),
    );
    let webhook = crate::alarms::webhook::Webhook::start(
        &raw.alarms,
        store.clone(),
        raw.site.name.clone(),
        cfg.timezone,
        &bus,
        shutdown.clone(),
    );
    let mail = crate::alarms::webhook::Webhook::start_mail(
        &raw.alarms,
        store.clone(),
        raw.site.name.clone(),
        cfg.timezone,
        &bus,
        shutdown.clone(),
    );
    let state = AppState {
        webhook,
        mail,
        bus: bus.clone(),
        alarms,
        clock: clock.clone(),
        bridge,
        store: store.clone(),
        live,
        config: cfg.clone(),
        started,
        auth,
        reports: http::ReportSlots::new(store.last_report_id()?),
        sensors,
        mqtt: gate.clone(),
        mqtt_health: mqtt_health.clone(),
        shutdown: shutdown.clone(),
        ws_slots: http::WsSlots::new(
            raw.http.ws_max_clients as usize,
            raw.http.ws_max_clients_per_user as usize,
        ),
    };
    let app = http::router(state);
    let http_addr = http_listener.local_addr()?;

    let signal = shutdown.clone();
    let closing_gate = gate.clone();
    let stopping_writer = writer.clone();
    http::server::check_descriptor_budget(&raw.http, raw.mqtt.max_connections);
    let limits = http::server::Limits::from_config(&raw.http);
    let server = http::server::serve(http_listener, https_listener, app, limits, async move {
        stop.await;
        watchdog::notify_stopping();
        tracing::info!("shutting down: stopping intake and committing pending readings");
        // The broker stops reading (so stops acknowledging) and refuses new connections
        // before intake drains: nothing acknowledged after this point can be left behind.
        closing_gate.closing.store(true, Ordering::SeqCst);
        stopping_writer.begin_stop();
        signal.cancel();
    });
    let server = tokio::spawn(server);

    // Ready means answering: the store is open and the broker listens already.
    if watchdog::wait_http(http_addr, &shutdown).await {
        tracing::info!(
            http = %cfg.http_bind,
            mqtt = %cfg.mqtt_bind,
            https = ?cfg.tls.http,
            mqtts = ?cfg.tls.mqtt,
            data_dir = %raw.storage.data_dir.display(),
            topics = ?raw.mqtt.topics,
            startup_ms = started.elapsed().as_millis() as u64,
            "biogestor ready"
        );
        watchdog::notify_ready();
        watchdog::spawn(
            Liveness {
                ingest: ingest.heartbeat.clone(),
                writer: writer.heartbeat(),
                http: http_addr,
                mqtt: mqtt_health.clone(),
            },
            shutdown.clone(),
        );
    }
    let served = server
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;

    // Intake first, so every message the broker acknowledged reaches the writer. Packets the
    // broker read just before it stopped reading are still on their way to its log: give the
    // router a moment before ingest starts waiting for quiet.
    gate.closing.store(true, Ordering::SeqCst);
    prober_stop.store(true, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    retention_stop.store(true, Ordering::SeqCst);
    clock.stop();
    tokio::task::spawn_blocking(move || {
        let _ = retention_thread.join();
        ingest.stop();
        let flushed = writer.flush();
        drop(writer);
        let _ = writer_thread.join();
        // Last, so the registry's final save includes what the intake reported while draining.
        sensor_persister.stop();
        flushed
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))??;
    store.close()?;
    tracing::info!("store closed; bye");
    served?;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
