//! `biogestor simulate`: a sensor simulator speaking real MQTT to any broker, replacing the
//! old `mqtt_simulator.py`. Its deltas and counters are mutually consistent: each message's
//! `gas_total_m3` minus the previous one equals its `caudal_gas` (likewise for biol).

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Packet, QoS};
use serde_json::{Map, Value, json};

/// Which gas/biol fields the simulated sensor sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// `caudal_gas` / `caudal_biol`: volume since the previous message.
    Delta,
    /// `gas_total_m3` / `biol_total_m3`: cumulative counters.
    Cumulative,
    /// Both, consistent with each other.
    Both,
}

/// Simulator options (see `biogestor simulate --help`).
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Broker host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port.
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
    /// Topic to publish to.
    #[arg(long, default_value = "Prueba")]
    pub topic: String,
    /// Seconds between messages (0 = as fast as the broker accepts).
    #[arg(long, default_value_t = 5.0)]
    pub interval: f64,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Stop after this many messages.
    #[arg(long)]
    pub count: Option<u64>,
    /// Which production fields to send.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    pub mode: Mode,
    /// Seed for reproducible values.
    #[arg(long)]
    pub seed: Option<u64>,
    /// MQTT quality of service (0 or 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: u8,
    /// User name for the broker.
    #[arg(long)]
    pub username: Option<String>,
    /// Password for the broker.
    #[arg(long)]
    pub password: Option<String>,
    /// MQTT client id (default: `biogestor-sim-` and a random suffix).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Gas production rate in m³ per hour used to compute deltas.
    #[arg(long, default_value_t = 0.5)]
    pub gas_rate_m3h: f64,
}

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("invalid option: {0}")]
    Args(String),
    #[error("MQTT connection to {addr} failed: {source}")]
    Connection {
        addr: String,
        source: ConnectionError,
    },
    #[error("MQTT client error: {0}")]
    Client(#[from] rumqttc::ClientError),
    #[error("broker acknowledged {acked} of {sent} QoS 1 messages before the timeout")]
    Unacknowledged { acked: u64, sent: u64 },
}

/// State of the simulated sensor between messages.
pub struct Sensor {
    rng: StdRng,
    mode: Mode,
    gas_total: f64,
    biol_total: f64,
    last: Option<Instant>,
    interval_s: f64,
    gas_rate_m3h: f64,
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

impl Sensor {
    /// A sensor with reproducible values for a given seed.
    pub fn new(seed: u64, mode: Mode, interval_s: f64, gas_rate_m3h: f64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            mode,
            gas_total: 0.0,
            biol_total: 0.0,
            last: None,
            interval_s,
            gas_rate_m3h,
        }
    }

    /// The next payload. Deltas cover the time since the previous message (the nominal
    /// interval for the first one, or when publishing as fast as possible).
    pub fn next_payload(&mut self) -> Value {
        let now = Instant::now();
        let elapsed_s = match self.last {
            Some(t) if self.interval_s > 0.0 => now.duration_since(t).as_secs_f64(),
            _ => self.interval_s.max(1.0),
        };
        self.last = Some(now);
        let r = &mut self.rng;
        let gas = round(
            self.gas_rate_m3h / 3600.0 * elapsed_s * r.random_range(0.7..1.3),
            6,
        );
        let biol = round(gas * r.random_range(0.05..0.15), 6);
        self.gas_total = round(self.gas_total + gas, 6);
        self.biol_total = round(self.biol_total + biol, 6);
        let mut m = Map::new();
        m.insert(
            "presion".into(),
            json!(round(1006.0 + r.random_range(-8.0..8.0), 2)),
        );
        m.insert(
            "temperatura".into(),
            json!(round(35.0 + r.random_range(-2.0..2.0), 2)),
        );
        m.insert(
            "humedad".into(),
            json!(round(r.random_range(55.0..75.0), 2)),
        );
        m.insert(
            "calidad".into(),
            json!(round(r.random_range(55.0..68.0), 2)),
        );
        if matches!(self.mode, Mode::Delta | Mode::Both) {
            m.insert("caudal_gas".into(), json!(gas));
            m.insert("caudal_biol".into(), json!(biol));
        }
        if matches!(self.mode, Mode::Cumulative | Mode::Both) {
            m.insert("gas_total_m3".into(), json!(self.gas_total));
            m.insert("biol_total_m3".into(), json!(self.biol_total));
        }
        Value::Object(m)
    }
}

/// Publishes until `--count` or `--duration` is reached (or forever); returns how many
/// messages were published (and, at QoS 1, acknowledged).
pub async fn run(args: SimulateArgs) -> Result<u64, SimulateError> {
    if !(args.interval.is_finite() && args.interval >= 0.0) {
        return Err(SimulateError::Args("--interval must be ≥ 0 seconds".into()));
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let client_id = args
        .client_id
        .clone()
        .unwrap_or_else(|| format!("biogestor-sim-{:08x}", rand::random::<u32>()));
    let mut opts = MqttOptions::new(client_id, args.host.clone(), args.port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    if let (Some(u), Some(p)) = (&args.username, &args.password) {
        opts.set_credentials(u.clone(), p.clone());
    } else if let Some(u) = &args.username {
        opts.set_credentials(u.clone(), String::new());
    }
    let qos = if args.qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    let addr = format!("{}:{}", args.host, args.port);
    let (client, mut eventloop) = AsyncClient::new(opts, 1000);

    // Wait for the CONNACK so a refused connection is reported as such.
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => break,
            Ok(_) => {}
            Err(source) => return Err(SimulateError::Connection { addr, source }),
        }
    }
    let (ack_tx, mut ack_rx) = tokio::sync::watch::channel((0u64, None::<String>));
    let poller = tokio::spawn(async move {
        let mut acked = 0u64;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acked += 1;
                    let _ = ack_tx.send((acked, None));
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = ack_tx.send((acked, Some(e.to_string())));
                    break;
                }
            }
        }
    });

    let mut sensor = Sensor::new(seed, args.mode, args.interval, args.gas_rate_m3h);
    let start = Instant::now();
    let deadline = args
        .duration
        .map(|d| start + Duration::from_secs_f64(d.max(0.0)));
    let mut sent = 0u64;
    loop {
        if args.count.is_some_and(|c| sent >= c) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if let Some(err) = ack_rx.borrow().1.clone() {
            return Err(SimulateError::Args(format!("connection lost: {err}")));
        }
        let payload = sensor.next_payload().to_string();
        client
            .publish(args.topic.clone(), qos, false, payload)
            .await?;
        sent += 1;
        if args.interval > 0.0 {
            let next = start + Duration::from_secs_f64(args.interval * sent as f64);
            let wake = deadline.map_or(next, |d| next.min(d));
            tokio::time::sleep_until(wake.into()).await;
        }
    }
    if qos == QoS::AtLeastOnce {
        let wait = ack_rx.wait_for(|(n, e)| *n >= sent || e.is_some());
        let _ = tokio::time::timeout(Duration::from_secs(30), wait).await;
        let acked = ack_rx.borrow().0;
        if acked < sent {
            return Err(SimulateError::Unacknowledged { acked, sent });
        }
    } else {
        // Give the event loop a moment to write the last QoS 0 packets.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), poller).await;
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_match_counter_differences() {
        let mut s = Sensor::new(7, Mode::Both, 0.0, 3600.0);
        let mut prev_total = 0.0;
        for _ in 0..50 {
            let p = s.next_payload();
            let total = p["gas_total_m3"].as_f64().unwrap();
            let delta = p["caudal_gas"].as_f64().unwrap();
            assert!((total - prev_total - delta).abs() < 1e-9);
            prev_total = total;
            let pr = p["presion"].as_f64().unwrap();
            assert!((998.0..=1014.0).contains(&pr));
            let t = p["temperatura"].as_f64().unwrap();
            assert!((33.0..=37.0).contains(&t));
        }
    }

    #[test]
    fn modes_choose_fields() {
        let p = Sensor::new(1, Mode::Delta, 1.0, 1.0).next_payload();
        assert!(p.get("caudal_gas").is_some() && p.get("gas_total_m3").is_none());
        let p = Sensor::new(1, Mode::Cumulative, 1.0, 1.0).next_payload();
        assert!(p.get("caudal_gas").is_none() && p.get("gas_total_m3").is_some());
    }
}
