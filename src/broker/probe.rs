//! A real MQTT CONNECT → CONNACK over loopback: proves the listener accepts connections (a
//! bare TCP probe would not notice a broker that accepts sockets but never answers CONNECT).
//! Used once at start-up and then periodically for `/healthz` and the systemd watchdog.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Connects as an MQTT 3.1.1 client, waits for the CONNACK and disconnects cleanly, proving
/// the listener and its authentication work (a bare TCP probe would be logged as an error).
pub fn probe_connect(addr: SocketAddr, login: Option<(&str, &str)>) -> std::io::Result<()> {
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
    field(&mut body, b"biogestor-probe");
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

/// How recently the broker answered a probe, shared with `/healthz` and the watchdog.
#[derive(Clone, Debug)]
pub struct MqttHealth {
    started: Instant,
    /// Milliseconds after `started` of the last answered probe.
    last_ok_ms: Arc<AtomicU64>,
}

/// A broker that has not answered a probe for this long is reported unhealthy.
pub const MAX_SILENCE: Duration = Duration::from_secs(15);
/// How often the broker is probed.
pub const EVERY: Duration = Duration::from_secs(5);

impl Default for MqttHealth {
    fn default() -> Self {
        Self::new()
    }
}

impl MqttHealth {
    /// Counts as answered now (the broker was just probed at start-up).
    pub fn new() -> MqttHealth {
        MqttHealth {
            started: Instant::now(),
            last_ok_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A health whose last answer was `ago` (for tests of what reads it).
    pub fn answered_ago(ago: Duration) -> MqttHealth {
        let now = Instant::now();
        MqttHealth {
            started: now.checked_sub(ago).unwrap_or(now),
            last_ok_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn answered(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_ok_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the broker last completed a CONNECT.
    pub fn silence(&self) -> Duration {
        let ms = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(ms.saturating_sub(self.last_ok_ms.load(Ordering::Relaxed)))
    }

    /// True while the broker answered a probe recently.
    pub fn healthy(&self) -> bool {
        self.silence() <= MAX_SILENCE
    }

    /// Probes `addr` every [`EVERY`] on a thread of its own until `stop` is set, logging when
    /// the broker stops or resumes answering.
    pub fn spawn_prober(
        &self,
        addr: SocketAddr,
        login: (String, String),
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> std::io::Result<()> {
        let health = self.clone();
        std::thread::Builder::new()
            .name("mqtt-probe".into())
            .spawn(move || {
                let mut failing = false;
                while !stop.load(Ordering::Relaxed) {
                    match probe_connect(addr, Some((&login.0, &login.1))) {
                        Ok(()) => {
                            health.answered();
                            if failing {
                                tracing::info!("the MQTT broker accepts connections again");
                                failing = false;
                            }
                        }
                        Err(e) if !failing && !stop.load(Ordering::Relaxed) => {
                            tracing::error!(error = %e, "the MQTT broker did not answer a CONNECT on loopback");
                            failing = true;
                        }
                        Err(_) => {}
                    }
                    let until = Instant::now() + EVERY;
                    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })
            .map(|_| ())
    }
}
