//! The embedded MQTT broker (rumqttd) and the in-process link the ingest reads from.
//!
//! rumqttd runs its router and listeners on threads of its own and logs (rather than returns)
//! a failed bind, so the address is checked here first and the listener is probed after start:
//! a taken port becomes a clear start-up error instead of a silent broker-less appliance.
//! rumqttd logs ordinary disconnects at error level, so its own logs are off by default
//! (`RUST_LOG=rumqttd=info` shows them) except its warning that a reader fell so far behind that
//! messages were dropped; refused logins are logged here instead.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttd::local::LinkRx;
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

use crate::config::ValidConfig;

/// Errors starting the broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("mqtt.bind = {addr}: cannot listen there: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("mqtt.bind = {addr}: the broker did not start listening")]
    NotListening { addr: SocketAddr },
    #[error("MQTT broker link failed: {0}")]
    Link(String),
}

/// Bytes of one in-memory commit-log segment per subscribed filter, and how many are kept.
/// The ingest link must never fall further behind than this (≈ 8 MiB, ~50,000 readings).
const SEGMENT_BYTES: usize = 1 << 20;
const SEGMENT_COUNT: usize = 8;

/// Largest MQTT packet the broker reads before dropping the connection. Payloads between
/// `max_payload_bytes` and this are delivered and counted as rejected by the ingest.
pub fn hard_packet_limit(max_payload_bytes: u64) -> usize {
    (max_payload_bytes as usize * 4).max(64 * 1024)
}

/// Compares secrets without an early exit that would reveal how much of them matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lets one log line through per 10 s, so a misconfigured sensor cannot flood the journal.
#[derive(Default)]
struct RateLimited {
    last: Mutex<Option<Instant>>,
}

impl RateLimited {
    fn allow(&self) -> bool {
        let Ok(mut last) = self.last.lock() else {
            return false;
        };
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(10)) {
            return false;
        }
        *last = Some(now);
        true
    }
}

fn rumqttd_config(cfg: &ValidConfig) -> Config {
    let m = &cfg.raw.mqtt;
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: hard_packet_limit(m.max_payload_bytes),
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    if !m.allow_anonymous {
        let users: HashMap<String, String> = m.users.clone().into_iter().collect();
        let refused = Arc::new(RateLimited::default());
        connections.set_auth_handler(move |client_id: String, user: String, pass: String| {
            let ok = users
                .get(&user)
                .is_some_and(|expected| constant_time_eq(expected.as_bytes(), pass.as_bytes()));
            if !ok && refused.allow() {
                tracing::warn!(
                    client_id,
                    user,
                    "MQTT login refused: unknown user or wrong password"
                );
            }
            async move { ok }
        });
    }
    let server = ServerSettings {
        name: "mqtt-v4".into(),
        listen: cfg.mqtt_bind,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: m.max_connections as usize + 1,
            max_outgoing_packet_count: 1024,
            max_segment_size: SEGMENT_BYTES,
            max_segment_count: SEGMENT_COUNT,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("v4".to_string(), server)])),
        ..Default::default()
    }
}

/// Starts the broker, subscribes the ingest link to the configured topics and waits until the
/// listener accepts connections.
pub fn start(cfg: &ValidConfig) -> Result<LinkRx, BrokerError> {
    let addr = cfg.mqtt_bind;
    // rumqttd would only log this; check it while an error can still stop start-up.
    drop(TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?);

    let mut broker = Broker::new(rumqttd_config(cfg));
    let (mut link_tx, link_rx) = broker
        .link("biogestor-ingest")
        .map_err(|e| BrokerError::Link(e.to_string()))?;
    for topic in &cfg.raw.mqtt.topics {
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

    let probe = if addr.ip().is_unspecified() {
        SocketAddr::new(
            if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            },
            addr.port(),
        )
    } else {
        addr
    };
    let login = if cfg.raw.mqtt.allow_anonymous {
        None
    } else {
        cfg.raw.mqtt.users.iter().next()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if probe_connect(probe, login).is_ok() {
            return Ok(link_rx);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::NotListening { addr })
}

/// Connects as an MQTT 3.1.1 client, waits for the CONNACK and disconnects cleanly, proving
/// the listener and its authentication work (a bare TCP probe would be logged as an error).
fn probe_connect(addr: SocketAddr, login: Option<(&String, &String)>) -> std::io::Result<()> {
    use std::io::{Read, Write};
    fn field(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s);
    }
    let mut body = Vec::new();
    field(&mut body, b"MQTT");
    body.push(4); // protocol level 3.1.1
    body.push(if login.is_some() { 0xC2 } else { 0x02 }); // clean session (+ user, password)
    body.extend_from_slice(&5u16.to_be_bytes()); // keep-alive seconds
    field(&mut body, b"biogestor-startup-probe");
    if let Some((user, pass)) = login {
        field(&mut body, user.as_bytes());
        field(&mut body, pass.as_bytes());
    }
    let mut packet = vec![0x10];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        packet.push(byte);
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(&body);
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(&packet)?;
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack)?;
    if ack[0] != 0x20 || ack[3] != 0 {
        return Err(std::io::Error::other("CONNACK refused"));
    }
    // Let the router register the session before it ends, or it logs a spurious error.
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(&[0xE0, 0x00])
}
