//! The embedded MQTT broker (rumqttd) and the in-process link the ingest reads from.
//!
//! rumqttd runs its router and listeners on threads of its own and logs (rather than returns)
//! a failed bind, so the address is checked here first and the listener is probed after start:
//! a taken port becomes a clear start-up error instead of a silent broker-less appliance.
//! rumqttd logs ordinary disconnects at error level, so its own logs are off by default
//! (`RUST_LOG=rumqttd=info` shows them) except its warning that a reader fell so far behind that
//! messages were dropped; refusals are counted and logged by [`refusals`] instead.
//!
//! rumqttd is vendored with the patches in `vendor/rumqttd/PATCHES.md`; [`admission`] holds
//! the decisions it delegates to the appliance.

pub mod accounts;
pub mod admission;
pub mod enroll;
pub mod probe;
pub mod refusals;
pub mod throttle;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings, TlsConfig};

use self::admission::{BrokerHooks, Gate, GateConfig, PROBE_USER};
use self::probe::probe_connect;
use crate::config::ValidConfig;

/// Errors starting the broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("{key} = {addr}: cannot listen there: {source}")]
    Bind {
        key: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{key} = {addr}: the broker did not start listening")]
    NotListening { key: &'static str, addr: SocketAddr },
    #[error("MQTT broker link failed: {0}")]
    Link(String),
}

/// Bytes of one in-memory commit-log segment per subscribed filter, and how many are kept.
/// The ingest link must never fall further behind than this (≈ 8 MiB, ~50,000 readings).
const SEGMENT_BYTES: usize = 1 << 20;
const SEGMENT_COUNT: usize = 8;

/// Largest MQTT packet the broker reads into memory. A larger publish is acknowledged and
/// skipped unread; one between `max_payload_bytes` and this is acknowledged and discarded
/// after reading. Both are counted as `oversize`, and the connection stays open.
pub fn hard_packet_limit(max_payload_bytes: u64) -> usize {
    (max_payload_bytes as usize * 4).max(64 * 1024)
}

fn rumqttd_config(cfg: &ValidConfig, hooks: BrokerHooks) -> Config {
    let m = &cfg.raw.mqtt;
    let connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: hard_packet_limit(m.max_payload_bytes),
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
        hooks: Some(Arc::new(hooks)),
    };
    let mut servers = HashMap::from([(
        "v4".to_string(),
        ServerSettings {
            name: "mqtt-v4".into(),
            listen: cfg.mqtt_bind,
            tls: None,
            next_connection_delay_ms: 0,
            connections: connections.clone(),
        },
    )]);
    // MQTT over TLS: the same connection settings, so the same hooks (admission, passwords,
    // throttling, topic permissions) decide; the handshake must end within
    // connection_timeout_ms (patch 13 in vendor/rumqttd/PATCHES.md).
    if let (Some(listen), Some(files)) = (cfg.tls.mqtt, &cfg.tls.files) {
        servers.insert(
            "v4-tls".to_string(),
            ServerSettings {
                name: "mqtt-v4-tls".into(),
                listen,
                tls: Some(TlsConfig::Rustls {
                    capath: None,
                    certpath: files.cert.to_string_lossy().into_owned(),
                    keypath: files.key.to_string_lossy().into_owned(),
                }),
                next_connection_delay_ms: 0,
                connections,
            },
        );
    }
    Config {
        id: 0,
        router: RouterConfig {
            // The caps are enforced (and answered with CONNACK 3) by the admission hooks; the
            // router's own limit leaves room for the ingest link, the probe and takeovers.
            max_connections: m.max_connections as usize + 8,
            max_outgoing_packet_count: 1024,
            max_segment_size: SEGMENT_BYTES,
            max_segment_count: SEGMENT_COUNT,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(servers),
        ..Default::default()
    }
}

/// The running broker as the rest of the appliance sees it.
pub struct Running {
    /// The in-process link ingest reads the reading topics from.
    pub link: LinkRx,
    /// An in-process link that only publishes (the alarm state, `crate::alarms::mqtt`); its
    /// receiving half is kept so the router keeps the link.
    pub publisher: (LinkTx, LinkRx),
    /// Admission state: refusal counts, the intake-full and closing flags.
    pub gate: Arc<Gate>,
    /// The loopback address and credentials of the liveness probe.
    pub probe_addr: SocketAddr,
    pub probe_login: (String, String),
}

/// What [`start`] needs besides the configuration.
pub struct BrokerDeps {
    pub registry: crate::sensors::SensorRegistry,
    pub counters: Arc<crate::store::Counters>,
    pub hasher: crate::auth::password::Hasher,
}

/// Starts the broker, subscribes the ingest link to the configured topics and waits until the
/// listener completes a real MQTT CONNECT.
pub fn start(cfg: &ValidConfig, deps: BrokerDeps) -> Result<Running, BrokerError> {
    let addr = cfg.mqtt_bind;
    // rumqttd would only log these; check them while an error can still stop start-up.
    let listeners = std::iter::once(("mqtt.bind", addr))
        .chain(cfg.tls.mqtt.map(|a| ("mqtt.tls_bind", a)))
        .collect::<Vec<_>>();
    for &(key, addr) in &listeners {
        drop(TcpListener::bind(addr).map_err(|source| BrokerError::Bind { key, addr, source })?);
    }

    let m = &cfg.raw.mqtt;
    let probe_password = crate::auth::tokens::random_token(32);
    let gate = Arc::new(Gate::new(GateConfig {
        accounts: accounts::Accounts::new(m, deps.hasher),
        refusals: Arc::new(refusals::Refusals::new()),
        registry: deps.registry,
        counters: deps.counters,
        filters: m.topics.clone(),
        limits: crate::payload::Limits {
            max_bytes: m.max_payload_bytes as usize,
            max_fields: m.max_fields as usize,
        },
        max_total: m.max_connections as usize,
        max_per_user: m.max_connections_per_user as usize,
        auth_failures_per_address: m.auth_failures_per_address,
        probe_password: probe_password.clone(),
    }));

    let mut broker = Broker::new(rumqttd_config(cfg, BrokerHooks(gate.clone())));
    let (mut link_tx, link_rx) = broker
        .link("biogestor-ingest")
        .map_err(|e| BrokerError::Link(e.to_string()))?;
    let publisher = broker
        .link("biogestor-alarmas")
        .map_err(|e| BrokerError::Link(e.to_string()))?;
    for topic in &m.topics {
        link_tx
            .subscribe(topic.clone())
            .map_err(|e| BrokerError::Link(e.to_string()))?;
    }
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            // Keep the link's sender alive as long as the broker runs.
            let _link_tx = link_tx;
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "MQTT broker stopped");
            } else {
                tracing::error!("MQTT broker stopped");
            }
        })
        .map_err(|e| BrokerError::Link(e.to_string()))?;

    let probe_addr = crate::watchdog::loopback_for(addr);
    let deadline = Instant::now() + Duration::from_secs(5);
    while probe_connect(probe_addr, Some((PROBE_USER, &probe_password))).is_err() {
        if Instant::now() >= deadline {
            return Err(BrokerError::NotListening {
                key: "mqtt.bind",
                addr,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The TLS listener's thread starts with the plain one's; its certificate was checked with
    // the configuration, so accepting TCP means it serves.
    if let Some(tls_addr) = cfg.tls.mqtt {
        let local = crate::watchdog::loopback_for(tls_addr);
        while std::net::TcpStream::connect_timeout(&local, Duration::from_millis(200)).is_err() {
            if Instant::now() >= deadline {
                return Err(BrokerError::NotListening {
                    key: "mqtt.tls_bind",
                    addr: tls_addr,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(Running {
        link: link_rx,
        publisher,
        gate,
        probe_addr,
        probe_login: (PROBE_USER.to_string(), probe_password),
    })
}
