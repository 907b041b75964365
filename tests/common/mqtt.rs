//! MQTT 3.1.1 conformance and abuse scenarios that run against any broker given by its
//! loopback port and accounts: the appliance's embedded broker in `mqtt_conformance` and
//! `mqtt_abuse`, the appliance and Mosquitto 2 side by side in `mqtt_compare`.
//!
//! Every scenario returns an [`Outcome`]: a short description of what the broker did (the
//! cell of the comparison table) and whether that is the appliance's target behaviour (MQTT
//! 3.1.1 §3.2.2.3 return codes, topic permissions, no loss of acknowledged readings).
//! Refusals and crash sequences are driven with hand-built packets on raw sockets, the rest
//! with rumqttc.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, ConnAck, Event, LastWill, MqttOptions, Outgoing, Packet, Publish, QoS, SubAck,
    SubscribeReasonCode,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Appliance, MQTT_PASS, MQTT_USER, Options};

// ---------------------------------------------------------------------------------------------
// Accounts, limits and the broker under test

/// A user name and password.
#[derive(Clone, Debug)]
pub struct Creds {
    pub user: String,
    pub pass: String,
}

impl Creds {
    pub fn new(user: &str, pass: &str) -> Creds {
        Creds {
            user: user.into(),
            pass: pass.into(),
        }
    }
}

/// Observer: publishes and subscribes everywhere (`#` and `$dollar/#`).
pub const OBSERVER_USER: &str = "observador";
pub const OBSERVER_PASS: &str = "mira-todo-2026";
/// A sensor whose password is given as an argon2id hash; publishes to `sensores/#` only.
pub const HASHED_USER: &str = "campo";
pub const HASHED_PASS: &str = "clave-con-hash-77";
/// Sensors of the old `name = "password"` form used to fill the broker (16 connections
/// each at most, so five of them can reach 64).
pub const FILLER_COUNT: usize = 5;
/// The reading topic every sensor may publish to.
pub const READING_TOPIC: &str = "Prueba";

pub fn sensor() -> Creds {
    Creds::new(MQTT_USER, MQTT_PASS)
}

pub fn observer() -> Creds {
    Creds::new(OBSERVER_USER, OBSERVER_PASS)
}

pub fn hashed() -> Creds {
    Creds::new(HASHED_USER, HASHED_PASS)
}

pub fn fillers() -> Vec<Creds> {
    (0..FILLER_COUNT)
        .map(|i| Creds::new(&format!("relleno{i}"), &format!("relleno-clave-{i}")))
        .collect()
}

/// The connection limits written into the broker's configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub per_user: usize,
    pub auth_failures: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            per_user: 16,
            auth_failures: 10,
        }
    }
}

/// Reads the appliance's store over HTTP (administrator token).
#[derive(Clone, Debug)]
pub struct StoreProbe {
    pub http_port: u16,
    pub token: String,
}

impl StoreProbe {
    async fn get(&self, path: &str) -> Value {
        let url = format!("http://127.0.0.1:{}{path}", self.http_port);
        let resp = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(20))
            .send()
            .await;
        match resp {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    /// `/api/dashboard/stats/` (Null when the service does not answer).
    pub async fn stats(&self) -> Value {
        self.get("/api/dashboard/stats/").await
    }

    /// `lecturas_total`.
    pub async fn total(&self) -> u64 {
        self.stats().await["lecturas_total"].as_u64().unwrap_or(0)
    }

    /// The `seq` field of every stored reading, following the pagination cursor.
    pub async fn seqs(&self) -> Vec<u64> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/dashboard/readings/?limit=10000&cursor={c}"),
                None => "/api/dashboard/readings/?limit=10000".to_string(),
            };
            let page = self.get(&path).await;
            if let Some(rows) = page["readings"].as_array() {
                out.extend(
                    rows.iter()
                        .filter_map(|r| r["seq"].as_f64())
                        .map(|v| v as u64),
                );
            }
            match page["next"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }
}

/// A broker to run the scenarios against.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub port: u16,
    pub sensor: Creds,
    pub observer: Creds,
    pub hashed: Creds,
    pub fillers: Vec<Creds>,
    pub limits: Limits,
    /// The appliance's store; without it "stored" is measured by an observer subscribed to
    /// the reading topic ("delivered").
    pub store: Option<StoreProbe>,
}

/// `[mqtt]` lines of the target configuration.
pub fn mqtt_toml(limits: Limits) -> String {
    format!(
        "max_connections = {}\nmax_connections_per_user = {}\nauth_failures_per_address = {}\n",
        limits.max_connections, limits.per_user, limits.auth_failures
    )
}

/// An argon2id PHC string of [`HASHED_PASS`], computed once per test process.
pub fn hashed_password_phc() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        biogestor::auth::password::hash_blocking(HASHED_PASS)
            .expect("argon2 hash of the test password")
    })
    .clone()
}

/// `[mqtt.users]` lines after the test sensor: the fillers (old form), the observer and the
/// hashed-password sensor (tables).
pub fn users_toml() -> String {
    let mut s = String::new();
    for f in fillers() {
        s.push_str(&format!("{} = \"{}\"\n", f.user, f.pass));
    }
    s.push_str(&format!(
        "[mqtt.users.{OBSERVER_USER}]\npassword = \"{OBSERVER_PASS}\"\n\
         publish = [\"#\", \"$dollar/#\"]\nsubscribe = [\"#\", \"$dollar/#\"]\n"
    ));
    s.push_str(&format!(
        "[mqtt.users.{HASHED_USER}]\npassword_hash = \"{}\"\npublish = [\"sensores/#\"]\n",
        hashed_password_phc()
    ));
    s
}

/// Appliance options with the target MQTT configuration (observer, hashed sensor, fillers,
/// limits). The appliance refuses it until it knows the new keys.
pub fn appliance_options(limits: Limits) -> Options {
    Options {
        mqtt_extra: mqtt_toml(limits),
        users_extra: users_toml(),
        ..Options::default()
    }
}

/// The appliance as a [`Target`] (with its store).
pub fn appliance_target(app: &Appliance, limits: Limits) -> Target {
    Target {
        name: "biogestor".into(),
        port: app.mqtt_port,
        sensor: sensor(),
        observer: observer(),
        hashed: hashed(),
        fillers: fillers(),
        limits,
        store: (!app.token.is_empty()).then(|| StoreProbe {
            http_port: app.http_port,
            token: app.token.clone(),
        }),
    }
}

/// The body of a valid reading carrying `seq`.
pub fn reading(seq: u64) -> Vec<u8> {
    format!("{{\"presion\":1006.5,\"temperatura\":35.0,\"seq\":{seq}}}").into_bytes()
}

/// `seq` of a reading body, if it is one.
pub fn reading_seq(payload: &[u8]) -> Option<u64> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    v["seq"].as_u64()
}

// ---------------------------------------------------------------------------------------------
// Outcomes and the scenario list

/// What a broker did in one scenario, and whether that is the target behaviour.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub pass: bool,
    pub text: String,
}

impl Outcome {
    pub fn new(pass: bool, text: impl Into<String>) -> Outcome {
        Outcome {
            pass,
            text: text.into(),
        }
    }
    pub fn fail(text: impl Into<String>) -> Outcome {
        Self::new(false, text)
    }
}

pub type Running = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// One row of the comparison: a name, the target behaviour and the code.
pub struct Scenario {
    pub name: &'static str,
    pub target: &'static str,
    pub run: fn(Target) -> Running,
}

fn boxed(f: impl Future<Output = Outcome> + Send + 'static) -> Running {
    Box::pin(f)
}

macro_rules! scenarios {
    ($($f:ident => $target:literal),* $(,)?) => {
        /// Every scenario, in the order of the comparison table.
        pub fn all() -> Vec<Scenario> {
            vec![$(Scenario { name: stringify!($f), target: $target, run: |t| boxed($f(t)) }),*]
        }
    };
}

scenarios! {
    basic_pubsub => "received 3/3",
    delivery_qos_minimum => "QoS 0, 1, 1 on a QoS 1 subscription",
    retained_messages => "retained 3/3, cleared",
    will_on_abrupt_close => "will delivered",
    no_will_after_disconnect => "no will",
    persistent_session_queue => "session present, queued QoS 1 and 2 delivered",
    clean_session_discards => "no session, nothing queued",
    redelivery_on_reconnect => "redelivered 2/2",
    takeover_same_id => "first closed, second works",
    unsubscribe_stops_delivery => "only the remaining subscription delivers",
    dollar_topics_not_matched => "# skips $dollar/conf, $dollar/# gets it",
    keepalive_zero => "CONNACK 0, PINGRESP after 2 s",
    special_client_ids => "CONNACK 0 for all 5",
    zero_length_id_clean => "CONNACK 0",
    zero_length_id_persistent => "CONNACK 2",
    refuse_mqtt5 => "CONNACK 1",
    refuse_mqtt31 => "CONNACK 1",
    refuse_wrong_password => "CONNACK 4",
    refuse_unknown_user => "CONNACK 4",
    refuse_no_username => "CONNACK 5",
    hashed_password_login => "right: CONNACK 0, wrong: CONNACK 4",
    crash_double_connect => "then connected",
    crash_full_then_retry => "64 accepted, extra: CONNACK 3 ×3; then connected",
    crash_reset_after_connect => "then connected",
    per_user_limit => "16 accepted, 17th: CONNACK 3; then connected",
    connect_storm_200 => "64 accepted, 136× CONNACK 3; then sensor stored 1/1",
    perm_sensor_subscribe_all => "SUBACK 0x80, still connected",
    perm_sensor_publish_outside => "PUBACK, not delivered, not stored",
    perm_observer_receives_sensor => "delivered, stored",
    perm_hashed_topics => "sensores/x stored, Prueba discarded",
    oversize_then_valid => "stored 15/15, 0 reconnects",
    unthrottled_no_loss => "every PUBACK stored",
    throttle_after_failures => "CONNACK 4 ×10, then CONNACK 3; right password: CONNACK 3",
}

/// The scenario named `name`.
pub fn scenario(name: &str) -> &'static Scenario {
    static ALL: std::sync::OnceLock<Vec<Scenario>> = std::sync::OnceLock::new();
    ALL.get_or_init(all)
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
}

/// Runs `f` with an overall time limit.
pub async fn bounded(limit: Duration, f: impl Future<Output = Outcome>) -> Outcome {
    match tokio::time::timeout(limit, f).await {
        Ok(o) => o,
        Err(_) => Outcome::fail(format!("did not finish within {limit:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Raw packets

/// Appends an MQTT length-prefixed string.
fn field(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// Fixed header with the variable-length "remaining length".
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![first];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        p.push(byte);
        if len == 0 {
            break;
        }
    }
    p.extend_from_slice(body);
    p
}

/// A will: topic, message, QoS, retain.
#[derive(Clone, Debug)]
pub struct RawWill {
    pub topic: String,
    pub message: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
}

/// Everything a CONNECT packet can say.
#[derive(Clone, Debug)]
pub struct ConnectSpec {
    pub protocol: &'static str,
    pub level: u8,
    pub client_id: String,
    pub clean: bool,
    pub keep_alive: u16,
    pub creds: Option<Creds>,
    pub will: Option<RawWill>,
}

impl ConnectSpec {
    /// MQTT 3.1.1, clean session, keep-alive 60 s.
    pub fn v311(client_id: &str, creds: Option<&Creds>) -> ConnectSpec {
        ConnectSpec {
            protocol: "MQTT",
            level: 4,
            client_id: client_id.into(),
            clean: true,
            keep_alive: 60,
            creds: creds.cloned(),
            will: None,
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        field(&mut body, self.protocol.as_bytes());
        body.push(self.level);
        let mut flags = 0u8;
        if self.clean {
            flags |= 0x02;
        }
        if let Some(w) = &self.will {
            flags |= 0x04 | (w.qos << 3);
            if w.retain {
                flags |= 0x20;
            }
        }
        if self.creds.is_some() {
            flags |= 0xC0;
        }
        body.push(flags);
        body.extend_from_slice(&self.keep_alive.to_be_bytes());
        if self.level == 5 {
            body.push(0); // no properties
        }
        field(&mut body, self.client_id.as_bytes());
        if let Some(w) = &self.will {
            if self.level == 5 {
                body.push(0); // no will properties
            }
            field(&mut body, w.topic.as_bytes());
            field(&mut body, &w.message);
        }
        if let Some(c) = &self.creds {
            field(&mut body, c.user.as_bytes());
            field(&mut body, c.pass.as_bytes());
        }
        packet(0x10, &body)
    }
}

pub const DISCONNECT: [u8; 2] = [0xE0, 0x00];
pub const PINGREQ: [u8; 2] = [0xC0, 0x00];

/// What a read from a raw socket gave.
#[derive(Debug)]
pub enum Read {
    Packet(u8, Vec<u8>),
    Closed,
    Reset,
    Timeout,
    Error(String),
}

/// Describes the answer to a CONNECT.
pub fn describe_connack(r: &Read) -> String {
    match r {
        Read::Packet(0x20, body) if body.len() == 2 => format!("CONNACK {}", body[1]),
        Read::Packet(0x20, body) if body.len() > 2 => format!("CONNACK {} (MQTT 5)", body[1]),
        Read::Packet(t, _) => format!("packet 0x{t:02x} instead of CONNACK"),
        Read::Closed => "no CONNACK, closed".into(),
        Read::Reset => "no CONNACK, reset".into(),
        Read::Timeout => "no CONNACK within 5 s".into(),
        Read::Error(e) => format!("no CONNACK, {e}"),
    }
}

/// A TCP connection speaking hand-built MQTT.
pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub async fn open(port: u16) -> std::io::Result<Raw> {
        let stream = tokio::time::timeout(
            Duration::from_secs(5),
            TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        .map_err(|_| std::io::Error::other("TCP connect timed out"))??;
        stream.set_nodelay(true)?;
        Ok(Raw {
            stream,
            buf: Vec::new(),
        })
    }

    /// Connects from another loopback source address (e.g. 127.0.0.2).
    pub async fn open_from(source: std::net::Ipv4Addr, port: u16) -> std::io::Result<Raw> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind((source, 0).into())?;
        let stream = tokio::time::timeout(
            Duration::from_secs(5),
            socket.connect(([127, 0, 0, 1], port).into()),
        )
        .await
        .map_err(|_| std::io::Error::other("TCP connect timed out"))??;
        Ok(Raw {
            stream,
            buf: Vec::new(),
        })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The next whole packet (or why there is none) within `timeout`.
    pub async fn read(&mut self, timeout: Duration) -> Read {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some((first, body, used)) = parse_packet(&self.buf) {
                self.buf.drain(..used);
                return Read::Packet(first, body);
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Read::Timeout,
                Ok(Ok(0)) => return Read::Closed,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Read::Reset;
                }
                Ok(Err(e)) => return Read::Error(e.to_string()),
            }
        }
    }

    /// Waits until the broker closes the connection (true) or `timeout` passes (false),
    /// skipping any packets it still sends.
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read(left).await {
                Read::Packet(..) => continue,
                Read::Timeout => return false,
                _ => return true,
            }
        }
    }

    /// Ends the connection with a TCP reset (SO_LINGER 0, then close).
    pub fn reset(self) {
        // A zero linger never blocks on close, which is what the deprecation is about.
        #[allow(deprecated)]
        let _ = self.stream.set_linger(Some(Duration::ZERO));
        drop(self);
    }

    /// Sends DISCONNECT and closes.
    pub async fn disconnect(mut self) {
        let _ = self.send(&DISCONNECT).await;
        let _ = self.stream.shutdown().await;
    }
}

fn parse_packet(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let first = *buf.first()?;
    let mut len = 0usize;
    let mut mult = 1usize;
    let mut i = 1;
    loop {
        let b = *buf.get(i)?;
        len += (b & 0x7f) as usize * mult;
        mult *= 128;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        if i > 4 {
            // Malformed length: hand back what there is.
            return Some((first, buf[1..].to_vec(), buf.len()));
        }
    }
    if buf.len() < i + len {
        return None;
    }
    Some((first, buf[i..i + len].to_vec(), i + len))
}

/// Opens a connection, sends `spec` and reads the answer: (description, the connection when
/// it was accepted).
pub async fn raw_connect(port: u16, spec: &ConnectSpec) -> (String, Option<Raw>) {
    let mut raw = match Raw::open(port).await {
        Ok(r) => r,
        Err(e) => return (format!("TCP connect failed: {e}"), None),
    };
    if let Err(e) = raw.send(&spec.bytes()).await {
        return (format!("no CONNACK, send failed: {e}"), None);
    }
    let r = raw.read(Duration::from_secs(5)).await;
    let text = describe_connack(&r);
    let accepted = matches!(&r, Read::Packet(0x20, b) if b.len() >= 2 && b[1] == 0);
    (text, accepted.then_some(raw))
}

/// One CONNECT attempt whose connection is closed right after the answer.
pub async fn raw_attempt(port: u16, spec: &ConnectSpec) -> String {
    let (text, raw) = raw_connect(port, spec).await;
    if let Some(r) = raw {
        r.disconnect().await;
    }
    text
}

// ---------------------------------------------------------------------------------------------
// rumqttc client that records everything it sees

#[derive(Default)]
struct Seen {
    connacks: Vec<ConnAck>,
    publishes: Vec<Publish>,
    subacks: Vec<SubAck>,
    unsubacks: usize,
    pubacks: u64,
    pubcomps: u64,
    errors: Vec<String>,
    closed: bool,
    /// Outgoing QoS > 0 publishes written so far (retransmissions included).
    out_publishes: u64,
    /// Packet id → index of the outgoing publish that used it last.
    pkid_index: HashMap<u16, u64>,
    /// Indexes (0-based order of `publish` calls) of the acknowledged publishes.
    acked_index: Vec<u64>,
}

/// How to connect a [`Mq`].
#[derive(Clone, Debug)]
pub struct MqOpts {
    pub id: String,
    pub creds: Option<Creds>,
    pub clean: bool,
    pub keep_alive: Duration,
    pub will: Option<LastWill>,
    pub manual_acks: bool,
    /// Keep polling after an error, so rumqttc reconnects (as a device would).
    pub reconnect: bool,
    pub max_packet: usize,
    pub inflight: u16,
}

impl MqOpts {
    pub fn new(id: &str, creds: &Creds) -> MqOpts {
        MqOpts {
            id: id.into(),
            creds: Some(creds.clone()),
            clean: true,
            keep_alive: Duration::from_secs(30),
            will: None,
            manual_acks: false,
            reconnect: false,
            max_packet: 1 << 20,
            inflight: 100,
        }
    }
}

/// A rumqttc client whose event loop runs in the background, recording every event.
pub struct Mq {
    pub client: AsyncClient,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

fn error_text(e: &rumqttc::ConnectionError) -> String {
    match e {
        rumqttc::ConnectionError::ConnectionRefused(code) => format!("CONNACK {}", *code as u8),
        other => format!("no CONNACK: {other}"),
    }
}

/// Records one event loop result: (stop polling, pause before polling again).
fn record(
    seen: &Mutex<Seen>,
    ev: Result<Event, rumqttc::ConnectionError>,
    reconnect: bool,
) -> (bool, bool) {
    let mut g = seen.lock().expect("seen");
    match ev {
        Ok(Event::Incoming(p)) => match p {
            Packet::ConnAck(c) => g.connacks.push(c),
            Packet::Publish(p) => g.publishes.push(p),
            Packet::SubAck(a) => g.subacks.push(a),
            Packet::UnsubAck(_) => g.unsubacks += 1,
            Packet::PubAck(a) => {
                g.pubacks += 1;
                if let Some(i) = g.pkid_index.remove(&a.pkid) {
                    g.acked_index.push(i);
                }
            }
            Packet::PubComp(c) => {
                g.pubcomps += 1;
                if let Some(i) = g.pkid_index.remove(&c.pkid) {
                    g.acked_index.push(i);
                }
            }
            _ => {}
        },
        // A packet id still waiting for its acknowledgement is a retransmission.
        Ok(Event::Outgoing(Outgoing::Publish(pkid))) if pkid != 0 => {
            if !g.pkid_index.contains_key(&pkid) {
                let i = g.out_publishes;
                g.out_publishes += 1;
                g.pkid_index.insert(pkid, i);
            }
        }
        Ok(Event::Outgoing(Outgoing::Disconnect)) => {
            g.closed = true;
            return (true, false);
        }
        Ok(_) => {}
        Err(e) => {
            let done = matches!(e, rumqttc::ConnectionError::RequestsDone);
            g.errors.push(error_text(&e));
            if !reconnect || done {
                g.closed = true;
                return (true, false);
            }
            return (false, true);
        }
    }
    (false, false)
}

impl Mq {
    /// Connects and waits for the CONNACK; `Err` says what happened instead.
    pub async fn connect(port: u16, o: MqOpts) -> Result<Mq, String> {
        let mut opts = MqttOptions::new(o.id.clone(), "127.0.0.1", port);
        opts.set_keep_alive(o.keep_alive);
        if !o.id.is_empty() {
            opts.set_clean_session(o.clean);
        }
        opts.set_max_packet_size(o.max_packet, o.max_packet);
        opts.set_inflight(o.inflight);
        opts.set_manual_acks(o.manual_acks);
        if let Some(c) = &o.creds {
            opts.set_credentials(c.user.clone(), c.pass.clone());
        }
        if let Some(w) = o.will.clone() {
            opts.set_last_will(w);
        }
        let (client, mut el) = AsyncClient::new(opts, 1000);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        let reconnect = o.reconnect;
        let task = tokio::spawn(async move {
            loop {
                let ev = el.poll().await;
                let (stop, pause) = record(&s, ev, reconnect);
                if stop {
                    return;
                }
                if pause {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        let mq = Mq { client, seen, task };
        let r = mq
            .wait_for(Duration::from_secs(10), |s| {
                if !s.connacks.is_empty() {
                    Some(Ok(()))
                } else {
                    s.errors.first().map(|e| Err(e.clone()))
                }
            })
            .await;
        match r {
            Some(Ok(())) => Ok(mq),
            Some(Err(e)) => Err(e),
            None => Err("no CONNACK within 10 s".into()),
        }
    }

    /// Polls `f` over what was seen until it gives a value or `timeout` passes.
    async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&Seen) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = {
                let g = self.seen.lock().expect("seen");
                f(&g)
            };
            if r.is_some() {
                return r;
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn session_present(&self) -> bool {
        self.seen
            .lock()
            .expect("seen")
            .connacks
            .last()
            .is_some_and(|c| c.session_present)
    }

    pub fn connacks(&self) -> usize {
        self.seen.lock().expect("seen").connacks.len()
    }

    pub fn is_closed(&self) -> bool {
        self.seen.lock().expect("seen").closed
    }

    /// The last connection error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.seen.lock().expect("seen").errors.last().cloned()
    }

    pub fn pubacks(&self) -> u64 {
        self.seen.lock().expect("seen").pubacks
    }

    /// Indexes (order of the publish calls) of the acknowledged QoS 1/2 publishes.
    pub fn acked_indexes(&self) -> Vec<u64> {
        self.seen.lock().expect("seen").acked_index.clone()
    }

    pub fn messages(&self) -> Vec<Publish> {
        self.seen.lock().expect("seen").publishes.clone()
    }

    /// Subscribes and returns the SUBACK return code (0x80 = failure).
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<u8, String> {
        let before = self.seen.lock().expect("seen").subacks.len();
        self.client
            .subscribe(filter, qos)
            .await
            .map_err(|e| format!("subscribe {filter}: {e}"))?;
        self.wait_for(Duration::from_secs(5), |s| s.subacks.get(before).cloned())
            .await
            .and_then(|a| a.return_codes.first().cloned())
            .map(|c| match c {
                SubscribeReasonCode::Success(q) => q as u8,
                SubscribeReasonCode::Failure => 0x80,
            })
            .ok_or_else(|| format!("no SUBACK for {filter} within 5 s"))
    }

    pub async fn unsubscribe(&self, filter: &str) -> Result<(), String> {
        let before = self.seen.lock().expect("seen").unsubacks;
        self.client
            .unsubscribe(filter)
            .await
            .map_err(|e| format!("unsubscribe {filter}: {e}"))?;
        self.wait_for(Duration::from_secs(5), |s| {
            (s.unsubacks > before).then_some(())
        })
        .await
        .ok_or_else(|| format!("no UNSUBACK for {filter} within 5 s"))
    }

    /// Queues a publish (the event loop sends it).
    pub async fn publish(&self, topic: &str, qos: QoS, retain: bool, payload: Vec<u8>) {
        let _ = self.client.publish(topic, qos, retain, payload).await;
    }

    /// Publishes and waits for the end of its flow (PUBACK for QoS 1, PUBCOMP for QoS 2;
    /// a short pause for QoS 0).
    pub async fn publish_acked(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
    ) -> Result<(), String> {
        let (acks, comps) = {
            let g = self.seen.lock().expect("seen");
            (g.pubacks, g.pubcomps)
        };
        self.client
            .publish(topic, qos, retain, payload)
            .await
            .map_err(|e| format!("publish {topic}: {e}"))?;
        match qos {
            QoS::AtMostOnce => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(())
            }
            QoS::AtLeastOnce => self
                .wait_for(Duration::from_secs(5), |s| (s.pubacks > acks).then_some(()))
                .await
                .ok_or_else(|| format!("no PUBACK for {topic} within 5 s")),
            QoS::ExactlyOnce => self
                .wait_for(Duration::from_secs(5), |s| {
                    (s.pubcomps > comps).then_some(())
                })
                .await
                .ok_or_else(|| format!("no PUBCOMP for {topic} within 5 s")),
        }
    }

    /// Waits until `n` messages whose topic starts with `prefix` arrived (or `timeout`),
    /// returning those that did.
    pub async fn wait_messages(&self, prefix: &str, n: usize, timeout: Duration) -> Vec<Publish> {
        let pick = |s: &Seen| -> Vec<Publish> {
            s.publishes
                .iter()
                .filter(|p| p.topic.starts_with(prefix))
                .cloned()
                .collect()
        };
        self.wait_for(timeout, |s| {
            let m = pick(s);
            (m.len() >= n).then_some(m)
        })
        .await
        .unwrap_or_else(|| pick(&self.seen.lock().expect("seen")))
    }

    /// Waits until the broker closed the connection.
    pub async fn wait_closed(&self, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| s.closed.then_some(()))
            .await
            .is_some()
    }

    /// Sends DISCONNECT and waits until the event loop has written it.
    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
        self.wait_closed(Duration::from_secs(3)).await;
    }
}

impl Drop for Mq {
    /// Dropping stops the event loop: the socket closes without DISCONNECT.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A normal sensor connection that publishes one reading and gets its PUBACK.
pub async fn sensor_round_trip(t: &Target, id: &str) -> Result<(), String> {
    let mq = Mq::connect(t.port, MqOpts::new(id, &t.sensor)).await?;
    mq.publish_acked(READING_TOPIC, QoS::AtLeastOnce, false, reading(900_000))
        .await?;
    mq.disconnect().await;
    Ok(())
}

/// "then connected", or what each normal connection after a sequence got instead. Give a
/// plain id first: it tells a dead broker from a refused id.
async fn then_connect(t: &Target, ids: &[&str]) -> (bool, String) {
    let mut failed = Vec::new();
    for id in ids {
        if let Err(e) = sensor_round_trip(t, id).await {
            failed.push(format!("{id}: {e}"));
        }
    }
    if failed.is_empty() {
        (true, "then connected".into())
    } else {
        (false, format!("then {}", failed.join("; ")))
    }
}

// ---------------------------------------------------------------------------------------------
// Where accepted readings end up: the store, or an observer subscribed to the reading topic

/// Counts readings accepted from now on.
pub enum Sink {
    Store { probe: StoreProbe, base: u64 },
    Subscriber(Mq),
}

impl Sink {
    pub async fn open(t: &Target, id: &str) -> Result<Sink, String> {
        if let Some(probe) = &t.store {
            // Wait for earlier readings still being committed.
            let mut base = probe.total().await;
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let now = probe.total().await;
                if now == base {
                    break;
                }
                base = now;
            }
            return Ok(Sink::Store {
                probe: probe.clone(),
                base,
            });
        }
        let mut o = MqOpts::new(id, &t.observer);
        o.inflight = 1000;
        let mq = Mq::connect(t.port, o).await?;
        for filter in [READING_TOPIC, "sensores/#"] {
            let code = mq.subscribe(filter, QoS::AtLeastOnce).await?;
            if code == 0x80 {
                return Err(format!("observer may not subscribe to {filter}"));
            }
        }
        Ok(Sink::Subscriber(mq))
    }

    /// "stored" or "delivered".
    pub fn label(&self) -> &'static str {
        match self {
            Sink::Store { .. } => "stored",
            Sink::Subscriber(_) => "delivered",
        }
    }

    /// Readings accepted since [`Sink::open`].
    pub async fn count(&self) -> u64 {
        match self {
            Sink::Store { probe, base } => probe.total().await.saturating_sub(*base),
            Sink::Subscriber(mq) => mq
                .messages()
                .iter()
                .filter(|p| reading_seq(&p.payload).is_some())
                .count() as u64,
        }
    }

    /// Waits until [`Sink::count`] reaches `n` (or `timeout`) and returns it.
    pub async fn wait(&self, n: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.count().await;
            if c >= n || Instant::now() >= deadline {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the count reaches `n`, stops changing for `quiet`, or `timeout` passes;
    /// then lets one more commit interval pass and returns it.
    pub async fn settle_to(&self, n: u64, quiet: Duration, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut last = self.count().await;
        let mut since = Instant::now();
        while last < n && since.elapsed() < quiet && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let c = self.count().await;
            if c != last {
                last = c;
                since = Instant::now();
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.count().await
    }

    /// The `seq` of every accepted reading (for the store: every stored reading).
    pub async fn seqs(&self) -> Vec<u64> {
        match self {
            Sink::Store { probe, .. } => probe.seqs().await,
            Sink::Subscriber(mq) => mq
                .messages()
                .iter()
                .filter_map(|p| reading_seq(&p.payload))
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Paho-style conformance scenarios (observer account)

fn payloads(msgs: &[Publish]) -> Vec<String> {
    msgs.iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect()
}

async fn observer_client(t: &Target, id: &str) -> Result<Mq, String> {
    Mq::connect(t.port, MqOpts::new(id, &t.observer))
        .await
        .map_err(|e| format!("observer connect: {e}"))
}

/// Connect, subscribe at QoS 2, publish at QoS 0, 1 and 2, receive all three.
pub async fn basic_pubsub(t: Target) -> Outcome {
    let r: Result<Outcome, String> = async {
        let mq = observer_client(&t, "conf-basic").await?;
        let topic = "conf/basic/TopicA";
        let code = mq.subscribe(topic, QoS::ExactlyOnce).await?;
        if code != 2 {
            return Ok(Outcome::fail(format!("SUBACK 0x{code:02x} for QoS 2")));
        }
        for (qos, body) in [
            (QoS::AtMostOnce, "qos 0"),
            (QoS::AtLeastOnce, "qos 1"),
            (QoS::ExactlyOnce, "qos 2"),
        ] {
            mq.publish_acked(topic, qos, false, body.into()).await?;
        }
        let got = mq.wait_messages(topic, 3, Duration::from_secs(5)).await;
        let mut qos: Vec<u8> = got.iter().map(|p| p.qos as u8).collect();
        qos.sort();
        mq.disconnect().await;
        let pass = got.len() == 3;
        Ok(Outcome::new(
            pass,
            format!(
                "received {}/3 (delivered at QoS {})",
                got.len(),
                qos.iter()
                    .map(|q| q.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
    .await;
    r.unwrap_or_else(Outcome::fail)
}

/// A message is delivered at the smaller of its publish QoS and the subscription's QoS
/// (§3.3.5): publishing at 0, 1 and 2 to a QoS 1 subscription delivers at 0, 1 and 1.
pub async fn delivery_qos_minimum(t: Target) -> Outcome {
    let r: Result<Outcome, String> = async {
        let mq = observer_client(&t, "conf-minqos").await?;
        let topic = "conf/minqos/t";
        mq.subscribe(topic, QoS::AtLeastOnce).await?;
        for (qos, body) in [
            (QoS::AtMostOnce, "0"),
            (QoS::AtLeastOnce, "1"),
            (QoS::ExactlyOnce, "2"),
        ] {
            mq.publish_acked(topic, qos, false, body.into()).await?;
        }
        let got = mq.wait_messages(topic, 3, Duration::from_secs(5)).await;
        mq.disconnect().await;
        let mut pairs: Vec<(String, u8)> = got
            .iter()
            .map(|p| {
                (
                    String::from_utf8_lossy(&p.payload).into_owned(),
                    p.qos as u8,
                )
            })
            .collect();
        pairs.sort();
        let qos: Vec<String> = pairs.iter().map(|(_, q)| q.to_string()).collect();
        let pass = pairs == [("0".into(), 0), ("1".into(), 1), ("2".into(), 1)];
        Ok(Outcome::new(
            pass,
            format!("QoS {} on a QoS 1 subscription", qos.join(", ")),
        ))
    }
    .await;
    r.unwrap_or_else(Outcome::fail)
}

/// Retained messages reach a later wildcard subscriber, and an empty retained publish
/// clears them.
pub async fn retained_messages(t: Target) -> Outcome {
    let r: Result<Outcome, String> = async {
        let p = "conf/ret";
        let topics = [
            (format!("{p}/TopicA/B"), QoS::AtMostOnce),
            (format!("{p}/Topic/C"), QoS::AtLeastOnce),
            (format!("{p}/TopicA/C"), QoS::ExactlyOnce),
        ];
        let pubc = observer_client(&t, "conf-ret-pub").await?;
        for (topic, qos) in &topics {
            pubc.publish_acked(topic, *qos, true, format!("retenido {topic}").into_bytes())
                .await?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sub = observer_client(&t, "conf-ret-sub").await?;
        sub.subscribe(&format!("{p}/+/+"), QoS::ExactlyOnce).await?;
        let got = sub.wait_messages(p, 3, Duration::from_secs(3)).await;
        let flagged = got.iter().filter(|m| m.retain).count();
        sub.disconnect().await;
        for (topic, _) in &topics {
            pubc.publish_acked(topic, QoS::AtLeastOnce, true, Vec::new())
                .await?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sub2 = observer_client(&t, "conf-ret-sub2").await?;
        sub2.subscribe(&format!("{p}/+/+"), QoS::ExactlyOnce)
            .await?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let left = sub2
            .messages()
            .iter()
            .filter(|m| m.topic.starts_with(p))
            .count();
        sub2.disconnect().await;
        pubc.disconnect().await;
        let mut text = format!("retained {}/3", got.len());
        if flagged != got.len() {
            text.push_str(&format!(" ({flagged} with the retain flag)"));
        }
        if left == 0 {
            text.push_str(", cleared");
        } else {
            text.push_str(&format!(", {left} still retained after clearing"));
        }
        Ok(Outcome::new(
            got.len() == 3 && flagged == 3 && left == 0,
            text,
        ))
    }
    .await;
    r.unwrap_or_else(Outcome::fail)
}

fn will_spec(t: &Target, id: &str, topic: &str) -> ConnectSpec {
    let mut spec = ConnectSpec::v311(id, Some(&t.observer));
    spec.will = Some(RawWill {
        topic: topic.into(),
        message: b"se fue".to_vec(),
        qos: 1,
        retain: false,
    });
    spec
}

/// A client whose network connection ends without DISCONNECT has its will published.
pub async fn will_on_abrupt_close(t: Target) -> Outcome {
    let r: Result<Outcome, String> = async {
        let topic = "conf/will/abrupt";
        let sub = observer_client(&t, "conf-will-sub").await?;
        sub.subscribe("conf/will/#", QoS::AtLeastOnce).await?;
        let (text, raw) = raw_connect(t.port, &will_spec(&t, "conf-will-a", topic)).await;
        let Some(raw) = raw else {
            return Ok(Outcome::fail(format!("client with a will: {text}")));
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(raw);
        let got = sub.wait_messages(topic, 1, Duration::from_secs(5)).await;
        sub.disconnect().await;
        Ok(if got.is_empty() {
            Outcome::fail("no will within 5 s")
        } else {
            Outcome::new(true, "will delivered")
        })
    }
    .await;
    r.unwrap_or_else(Outcome::fail)
}

/// A client that sends DISCONNECT has its will discarded.
pub async fn no_will_after_disconnect(t: Target) -> Outcome {
    let r: Result<Outcome, String> = async {
        let topic = "conf/will/clean";
        let sub = observer_client(&t, "conf-nowill-sub").await?;
        sub.subscribe("conf/will/#", QoS::AtLeastOnce).await?;
        let (text, raw) = raw_connect(t.port, &will_spec(&t, "conf-nowill-a", topic)).await;
        let Some(raw) = raw else {
            return Ok(Outcome::fail(format!("client with a will: {text}")));
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        raw.disconnect().await;
        let got = sub.wait_messages(topic, 1, Duration::from_secs(2)).await;
        sub.disconnect().await;
        Ok(if got.is_empty() {
            Outcome::new(true, "no will")
        } else {
            Outcome::fail("will delivered after DISCONNECT")
        })
    }
    .await;
    r.unwrap_or_else(Outcome::fail)
}

fn persistent(t: &Target, id: &str, clean: bool) -> MqOpts {
    let mut o = MqOpts::new(id, &t.observer);
    o.clean = clean;
    o
}

/// Ends a persistent session (a clean-session connect and disconnect).
async fn purge_session(t: &Target, id: &str) {
    if let Ok(mq) = Mq::connect(t.port, persistent(t, id, true)).await {
        mq.disconnect().await;
    }
}

/// A persistent session keeps its subscription while offline; QoS 1 and 2 messages
/// published meanwhile arrive after the reconnect.
pub async fn persistent_session_queue(t: Target) -> Outcome {
    let id = "conf-persist";
    let r: Result<Outcome, String> = async {
        let prefix = "conf/persist";
        let a = Mq::connect(t.port, persistent(&t, id, false)).await?;
        a.subscribe(&format!("{prefix}/#"), QoS::ExactlyOnce)
            .await?;
        a.disconnect().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let p = observer_client(&t, "conf-persist-pub").await?;
        for (qos, body) in [
            (QoS::AtMostOnce, "q0"),
            (QoS::AtLeastOnce, "q1"),
            (QoS::ExactlyOnce, "q2"),
        ] {
            p.publish_acked(&format!("{prefix}/x"), qos, false, body.into())
                .await?;
        }
        p.disconnect().await;
        let a = Mq::connect(t.port, persistent(&t, id, false)).await?;
        let present = a.session_present();
        let got = a.wait_messages(prefix, 2, Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let bodies = payloads(&a.messages());
        a.disconnect().await;
        let has = |b: &str| bodies.iter().any(|x| x == b);
        let queued = has("q1") && has("q2");
        let mut text = if present {
            "session present".to_string()
        } else {
            "no session present".to_string()
        };
        if queued {
            text.push_str(", queued QoS 1 and 2 delivered");
            if has("q0") {
                text.push_str(" (QoS 0 too)");
            }
        } else {
            text.push_str(&format!(", received {:?} of q1, q2", payloads(&got)));
        }
        Ok(Outcome::new(present && queued, text))
    }
    .await;
    purge_session(&t, id).await;
    r.unwrap_or_else(Outcome::fail)
}

/// A clean-session connect discards the stored session: nothing is queued afterwards.
pub async fn clean_session_discards(t: Target) -> Outcome {
    let id = "conf-clean";
    let r: Result<Outcome, String> = async {
        let prefix = "conf/clean";
        let a = Mq::connect(t.port, persistent(&t, id, false)).await?;
        a.subscribe(&format!("{prefix}/#"), QoS::AtLeastOnce).await?;
        a.disconnect().await;
        let a = Mq::connect(t.port, persistent(&t, id, true)).await?;
        let present_clean = a.session_present();
        a.disconnect().await;
        let p = observer_client(&t, "conf-clean-pub").await?;
        p.publish_acked(&format!("{prefix}/x"), QoS::AtLeastOnce, false, b"tarde".to_vec())
            .await?;
        p.disconnect().await;
        let a = Mq::connect(t.port, persistent(&t, id, false)).await?;
        let present = a.session_present();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let got = a
            .messages()
            .iter()
            .filter(|m| m.topic.starts_with(prefix))
            .count();
        a.disconnect().await;
        let pass = !present_clean && !present && got == 0;
        let text = if pass {
            "no session, nothing queued".to_string()
        } else {
            format!(
                "session present on clean connect: {present_clean}, afterwards: {present}, {got} queued"
            )
        };
        Ok(Outcome::new(pass, text))
    }
    .await;
    purge_session(&t, id).await;
    r.unwrap_or_else(Outcome::fail)
}

/// QoS 1 and 2 messages received but not acknowledged are sent again after a reconnect of
/// the persistent session.
pub async fn redelivery_on_reconnect(t: Target) -> Outcome {
    let id = "conf-redeliver";
    let r: Result<Outcome, String> = async {
        let prefix = "conf/redeliver";
        let mut o = persistent(&t, id, false);
        o.manual_acks = true;
        let a = Mq::connect(t.port, o).await?;
        a.subscribe(&format!("{prefix}/#"), QoS::ExactlyOnce)
            .await?;
        let p = observer_client(&t, "conf-redeliver-pub").await?;
        p.publish_acked(
            &format!("{prefix}/1"),
            QoS::AtLeastOnce,
            false,
            b"r1".to_vec(),
        )
        .await?;
        p.publish_acked(
            &format!("{prefix}/2"),
            QoS::ExactlyOnce,
            false,
            b"r2".to_vec(),
        )
        .await?;
        p.disconnect().await;
        let first = a.wait_messages(prefix, 2, Duration::from_secs(5)).await;
        if first.len() < 2 {
            return Ok(Outcome::fail(format!(
                "only {} of 2 delivered before the reconnect",
                first.len()
            )));
        }
        drop(a); // no acknowledgements, no DISCONNECT
        tokio::time::sleep(Duration::from_millis(300)).await;
        let a = Mq::connect(t.port, persistent(&t, id, false)).await?;
        let again = a.wait_messages(prefix, 2, Duration::from_secs(5)).await;
        a.disconnect().await;
        let dup = again.iter().filter(|m| m.dup).count();
        let text = format!("redelivered {}/2 ({dup} with DUP)", again.len());
        Ok(Outcome::new(again.len() == 2, text))
    }
    .await;
    purge_session(&t, id).await;
    r.unwrap_or_else(Outcome::fail)
}

/// A second connection with the same client id takes over: the first is closed.
pub async fn takeover_same_id(t: Target) -> Outcome {
    let r: Result<Outcome, String> = async {
        let id = "conf-takeover";
        let a = observer_client(&t, id).await?;
        let b = match observer_client(&t, id).await {
            Ok(b) => b,
            Err(e) => return Ok(Outcome::fail(format!("second: {e}"))),
        };
        if !a.wait_closed(Duration::from_secs(5)).await {
            return Ok(Outcome::fail("first still connected after 5 s"));
        }
        let topic = "conf/takeover/t";
        b.subscribe(topic, QoS::AtLeastOnce).await?;
        b.publish_acked(topic, QoS::AtLeastOnce, false, b"sigo".to_vec())
            .await?;
        let got = b.wait_messages(topic, 1, Duration::from_secs(3)).await;
        b.disconnect().await;
        Ok(if got.is_empty() {
            Outcome::fail("first closed, second receives nothing")
        } else {
            Outcome::new(true, "first closed, second works")
        })
    }
    .await;
    r.unwrap_or_else(Outcome::fail)
}

/// After UNSUBSCRIBE nothing arrives on that filter; the other subscription still works.
pub async fn unsubscribe_stops_delivery(t: Target) -> Outcome {
    let r: Result<Outcome, String> = async {
        let p = "conf/unsub";
        let s = observer_client(&t, "conf-unsub").await?;
        s.subscribe(&format!("{p}/a"), QoS::AtLeastOnce).await?;
        s.subscribe(&format!("{p}/b"), QoS::AtLeastOnce).await?;
        s.unsubscribe(&format!("{p}/a")).await?;
        let pubc = observer_client(&t, "conf-unsub-pub").await?;
        pubc.publish_acked(&format!("{p}/a"), QoS::AtLeastOnce, false, b"a".to_vec())
            .await?;
        pubc.publish_acked(&format!("{p}/b"), QoS::AtLeastOnce, false, b"b".to_vec())
            .await?;
        pubc.disconnect().await;
        s.wait_messages(&format!("{p}/b"), 1, Duration::from_secs(3))
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let topics: Vec<String> = s.messages().iter().map(|m| m.topic.clone()).collect();
        s.disconnect().await;
        let on_a = topics.iter().filter(|x| x.ends_with("/a")).count();
        let on_b = topics.iter().filter(|x| x.ends_with("/b")).count();
        let pass = on_a == 0 && on_b == 1;
        Ok(Outcome::new(
            pass,
            if pass {
                "only the remaining subscription delivers".to_string()
            } else {
                format!("{on_a} on the unsubscribed filter, {on_b} on the other")
            },
        ))
    }
    .await;
    r.unwrap_or_else(Outcome::fail)
}

/// `#` does not match topics starting with `$`; an explicit `$dollar/#` does.
pub async fn dollar_topics_not_matched(t: Target) -> Outcome {
    let r: Result<Outcome, String> = async {
        let all = observer_client(&t, "conf-dollar-all").await?;
        all.subscribe("#", QoS::AtLeastOnce).await?;
        let dollar = observer_client(&t, "conf-dollar-d").await?;
        dollar.subscribe("$dollar/#", QoS::AtLeastOnce).await?;
        let p = observer_client(&t, "conf-dollar-pub").await?;
        p.publish_acked("$dollar/conf", QoS::AtLeastOnce, false, b"d".to_vec())
            .await?;
        p.publish_acked("conf/dollar/plain", QoS::AtLeastOnce, false, b"p".to_vec())
            .await?;
        p.disconnect().await;
        let got_d = dollar
            .wait_messages("$dollar/", 1, Duration::from_secs(3))
            .await;
        let got_plain = all
            .wait_messages("conf/dollar/", 1, Duration::from_secs(3))
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let leaked: Vec<String> = all
            .messages()
            .iter()
            .filter(|m| m.topic.starts_with('$'))
            .map(|m| m.topic.clone())
            .collect();
        all.disconnect().await;
        dollar.disconnect().await;
        let pass = got_d.len() == 1 && !got_plain.is_empty() && leaked.is_empty();
        let text = if pass {
            "# skips $dollar/conf, $dollar/# gets it".to_string()
        } else {
            format!(
                "# got $ topics {leaked:?}; $dollar/# got {}; # got the plain topic: {}",
                got_d.len(),
                !got_plain.is_empty()
            )
        };
        Ok(Outcome::new(pass, text))
    }
    .await;
    r.unwrap_or_else(Outcome::fail)
}

/// Keep-alive 0 turns the keep-alive off: the connection stays up without traffic.
pub async fn keepalive_zero(t: Target) -> Outcome {
    let mut spec = ConnectSpec::v311("conf-ka0", Some(&t.observer));
    spec.keep_alive = 0;
    let (text, raw) = raw_connect(t.port, &spec).await;
    let Some(mut raw) = raw else {
        return Outcome::fail(text);
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    if raw.send(&PINGREQ).await.is_err() {
        return Outcome::fail("CONNACK 0, closed before PINGREQ");
    }
    match raw.read(Duration::from_secs(3)).await {
        Read::Packet(0xD0, _) => {
            raw.disconnect().await;
            Outcome::new(true, "CONNACK 0, PINGRESP after 2 s")
        }
        other => Outcome::fail(format!("CONNACK 0, then {other:?} instead of PINGRESP")),
    }
}

/// Client ids with `/ + # $` and non-ASCII characters are ordinary UTF-8 ids.
pub async fn special_client_ids(t: Target) -> Outcome {
    let ids = ["granja/sensor1", "a+b", "c#d", "$e", "ñandú-1"];
    let mut bad = Vec::new();
    for id in ids {
        let text = raw_attempt(t.port, &ConnectSpec::v311(id, Some(&t.sensor))).await;
        if text != "CONNACK 0" {
            bad.push(format!("{id}: {text}"));
        }
    }
    if bad.is_empty() {
        Outcome::new(true, format!("CONNACK 0 for all {}", ids.len()))
    } else {
        Outcome::fail(bad.join("; "))
    }
}

fn expect_code(text: String, want: &str) -> Outcome {
    Outcome::new(text == want, text)
}

/// Zero-length client id with a clean session: accepted (the server assigns one).
pub async fn zero_length_id_clean(t: Target) -> Outcome {
    expect_code(
        raw_attempt(t.port, &ConnectSpec::v311("", Some(&t.observer))).await,
        "CONNACK 0",
    )
}

/// Zero-length client id without a clean session: identifier rejected (2).
pub async fn zero_length_id_persistent(t: Target) -> Outcome {
    let mut spec = ConnectSpec::v311("", Some(&t.observer));
    spec.clean = false;
    expect_code(raw_attempt(t.port, &spec).await, "CONNACK 2")
}

/// An MQTT 5 CONNECT (protocol level 5): unacceptable protocol version (1).
pub async fn refuse_mqtt5(t: Target) -> Outcome {
    let mut spec = ConnectSpec::v311("conf-v5", Some(&t.sensor));
    spec.level = 5;
    expect_code(raw_attempt(t.port, &spec).await, "CONNACK 1")
}

/// An MQTT 3.1 CONNECT ("MQIsdp", level 3): unacceptable protocol version (1).
pub async fn refuse_mqtt31(t: Target) -> Outcome {
    let mut spec = ConnectSpec::v311("conf-v31", Some(&t.sensor));
    spec.protocol = "MQIsdp";
    spec.level = 3;
    expect_code(raw_attempt(t.port, &spec).await, "CONNACK 1")
}

/// Wrong password: bad user name or password (4).
pub async fn refuse_wrong_password(t: Target) -> Outcome {
    let creds = Creds::new(&t.sensor.user, "no-es-la-clave");
    expect_code(
        raw_attempt(t.port, &ConnectSpec::v311("conf-badpass", Some(&creds))).await,
        "CONNACK 4",
    )
}

/// Unknown user: bad user name or password (4).
pub async fn refuse_unknown_user(t: Target) -> Outcome {
    let creds = Creds::new("nadie", "da-igual");
    expect_code(
        raw_attempt(t.port, &ConnectSpec::v311("conf-nouser", Some(&creds))).await,
        "CONNACK 4",
    )
}

/// No user name while anonymous clients are not allowed: not authorized (5).
pub async fn refuse_no_username(t: Target) -> Outcome {
    expect_code(
        raw_attempt(t.port, &ConnectSpec::v311("conf-anon", None)).await,
        "CONNACK 5",
    )
}

/// An account given by an argon2id hash logs in with its password, not with another.
pub async fn hashed_password_login(t: Target) -> Outcome {
    let right = raw_attempt(t.port, &ConnectSpec::v311("conf-hash-ok", Some(&t.hashed))).await;
    let wrong_creds = Creds::new(&t.hashed.user, "otra-clave");
    let wrong = raw_attempt(
        t.port,
        &ConnectSpec::v311("conf-hash-bad", Some(&wrong_creds)),
    )
    .await;
    Outcome::new(
        right == "CONNACK 0" && wrong == "CONNACK 4",
        format!("right: {right}, wrong: {wrong}"),
    )
}

// ---------------------------------------------------------------------------------------------
// Sequences that used to stop the broker for good

/// Two CONNECTs with client id `granja/sensor1`: the second while the first is being
/// answered, then the second after the first's CONNACK, then twice on one connection.
pub async fn crash_double_connect(t: Target) -> Outcome {
    let id = "granja/sensor1";
    let spec = ConnectSpec::v311(id, Some(&t.sensor));
    // Second while the first is still being answered.
    let (a, b) = tokio::join!(raw_connect(t.port, &spec), raw_connect(t.port, &spec));
    let racing = format!("racing: {} / {}", a.0, b.0);
    drop((a, b));
    // Second after the first's CONNACK.
    let (first, keep) = raw_connect(t.port, &spec).await;
    let (second, keep2) = raw_connect(t.port, &spec).await;
    let mut first_closed = None;
    if let Some(mut k) = keep {
        first_closed = Some(k.closed_within(Duration::from_secs(3)).await);
    }
    drop(keep2);
    // Two CONNECTs on one connection (a protocol violation: the broker closes it).
    let mut twice = "TCP connect failed".to_string();
    if let Ok(mut raw) = Raw::open(t.port).await {
        let _ = raw.send(&spec.bytes()).await;
        let r1 = describe_connack(&raw.read(Duration::from_secs(5)).await);
        let _ = raw.send(&spec.bytes()).await;
        let closed = raw.closed_within(Duration::from_secs(3)).await;
        twice = format!(
            "{r1}, second CONNECT {}",
            if closed { "closed it" } else { "ignored" }
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ok, then) = then_connect(&t, &["despues-1", id]).await;
    let details = format!(
        "{racing}; after: {first} / {second}{}; same socket: {twice}",
        match first_closed {
            Some(true) => " (first closed)",
            Some(false) => " (first still open)",
            None => "",
        }
    );
    Outcome::new(
        ok,
        if ok {
            then
        } else {
            format!("{then} [{details}]")
        },
    )
}

/// Fills the broker to `max_connections`, lets a refused client retry with the same id,
/// then connects normally once the others are gone.
pub async fn crash_full_then_retry(t: Target) -> Outcome {
    let max = t.limits.max_connections;
    let mut held = Vec::new();
    let mut fill_stop = None;
    for i in 0..max {
        let creds = &t.fillers[i % t.fillers.len()];
        let (text, raw) = raw_connect(
            t.port,
            &ConnectSpec::v311(&format!("lleno-{i}"), Some(creds)),
        )
        .await;
        match raw {
            Some(r) => held.push(r),
            None => {
                fill_stop = Some(format!("connection {}: {text}", i + 1));
                break;
            }
        }
    }
    let accepted = held.len();
    let mut extra = Vec::new();
    for _ in 0..3 {
        extra.push(raw_attempt(t.port, &ConnectSpec::v311("granja-extra", Some(&t.sensor))).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for r in held {
        r.disconnect().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, then) = then_connect(&t, &["despues-2", "granja-extra"]).await;
    let extra_text = if extra.iter().all(|e| e == &extra[0]) {
        format!("{} ×3", extra[0])
    } else {
        extra.join(", ")
    };
    let mut text = format!("{accepted} accepted, extra: {extra_text}; {then}");
    if let Some(s) = fill_stop {
        text.push_str(&format!(" (filling stopped at {s})"));
    }
    let pass = ok && accepted == max && extra.iter().all(|e| e == "CONNACK 3");
    Outcome::new(pass, text)
}

/// CONNECT followed at once by a TCP reset (before and after the CONNACK), then a
/// reconnect with the same id.
pub async fn crash_reset_after_connect(t: Target) -> Outcome {
    let id = "granja-reset";
    let spec = ConnectSpec::v311(id, Some(&t.sensor));
    for _ in 0..5 {
        if let Ok(mut raw) = Raw::open(t.port).await {
            let _ = raw.send(&spec.bytes()).await;
            raw.reset();
        }
    }
    for _ in 0..2 {
        if let Ok(mut raw) = Raw::open(t.port).await {
            let _ = raw.send(&spec.bytes()).await;
            let _ = raw.read(Duration::from_secs(2)).await;
            raw.reset();
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ok, then) = then_connect(&t, &["despues-3", id]).await;
    Outcome::new(ok, then)
}

// ---------------------------------------------------------------------------------------------
// Limits, permissions, oversize, load, throttling

/// More than `per_user` connections of one user name: the extra one gets 3.
pub async fn per_user_limit(t: Target) -> Outcome {
    let n = t.limits.per_user;
    let creds = t.fillers[0].clone();
    let mut held = Vec::new();
    for i in 0..n {
        let (text, raw) = raw_connect(
            t.port,
            &ConnectSpec::v311(&format!("usuario-{i}"), Some(&creds)),
        )
        .await;
        match raw {
            Some(r) => held.push(r),
            None => {
                for r in held {
                    r.disconnect().await;
                }
                return Outcome::fail(format!("connection {} of {n}: {text}", i + 1));
            }
        }
    }
    let extra = raw_attempt(t.port, &ConnectSpec::v311("usuario-extra", Some(&creds))).await;
    for r in held {
        r.disconnect().await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ok = match Mq::connect(t.port, MqOpts::new("usuario-despues", &creds)).await {
        Ok(mq) => {
            mq.disconnect().await;
            Ok(())
        }
        Err(e) => Err(e),
    };
    let then = match &ok {
        Ok(()) => "then connected".to_string(),
        Err(e) => format!("then: {e}"),
    };
    Outcome::new(
        extra == "CONNACK 3" && ok.is_ok(),
        format!("{n} accepted, {}th: {extra}; {then}", n + 1),
    )
}

/// 200 clients connect at once with `max_connections` = 64: 64 are accepted, the others
/// get 3; once they leave a sensor connects and its reading is accepted.
pub async fn connect_storm_200(t: Target) -> Outcome {
    let r: Result<Outcome, String> = async {
        const N: usize = 200;
        let max = t.limits.max_connections;
        let sink = Sink::open(&t, "storm-sink").await?;
        let mut tasks = Vec::new();
        for i in 0..N {
            let creds = t.fillers[i % t.fillers.len()].clone();
            let port = t.port;
            tasks.push(tokio::spawn(async move {
                raw_connect(
                    port,
                    &ConnectSpec::v311(&format!("tormenta-{i}"), Some(&creds)),
                )
                .await
            }));
        }
        let mut held = Vec::new();
        let mut answers: HashMap<String, usize> = HashMap::new();
        for task in tasks {
            let (text, raw) = task.await.map_err(|e| e.to_string())?;
            *answers.entry(text).or_default() += 1;
            if let Some(r) = raw {
                held.push(r);
            }
        }
        // The sink's own subscriber (Mosquitto) counts as one connection.
        let sink_conn = usize::from(matches!(sink, Sink::Subscriber(_)));
        let accepted = answers.remove("CONNACK 0").unwrap_or(0);
        let refused = answers.remove("CONNACK 3").unwrap_or(0);
        for r in held {
            r.disconnect().await;
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let then = match sensor_round_trip(&t, "tormenta-despues").await {
            Ok(()) => {
                let n = sink.wait(1, Duration::from_secs(5)).await;
                format!("then sensor {} {n}/1", sink.label())
            }
            Err(e) => format!("then: {e}"),
        };
        let mut text = format!("{accepted} accepted, {refused}× CONNACK 3");
        let mut others: Vec<_> = answers.into_iter().collect();
        others.sort();
        for (k, v) in &others {
            text.push_str(&format!(", {v}× {k}"));
        }
        text.push_str(&format!("; {then}"));
        let pass = accepted + sink_conn == max && refused == N - accepted && then.ends_with(" 1/1");
        Ok(Outcome::new(pass, text))
    }
    .await;
    r.unwrap_or_else(Outcome::fail)
}

/// A sensor (old form) subscribing to `#` gets SUBACK 0x80 and stays connected.
pub async fn perm_sensor_subscribe_all(t: Target) -> Outcome {
    let r: Result<Outcome, String> = async {
        let mq = Mq::connect(t.port, MqOpts::new("perm-sub", &t.sensor)).await?;
        let code = mq.subscribe("#", QoS::AtLeastOnce).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ended = mq.last_error();
        let alive = mq
            .publish_acked(READING_TOPIC, QoS::AtLeastOnce, false, reading(1))
            .await
            .is_ok()
            && !mq.is_closed();
        mq.disconnect().await;
        let code_text = match &code {
            Ok(c) => format!("SUBACK 0x{c:02x}"),
            Err(e) => e.clone(),
        };
        let text = format!(
            "{code_text}, {}",
            if alive {
                "still connected".to_string()
            } else {
                format!(
                    "connection ended ({})",
                    ended.unwrap_or_else(|| "no error".into())
                )
            }
        );
        Ok(Outcome::new(code == Ok(0x80) && alive, text))
    }
    .await;
    r.unwrap_or_else(Outcome::fail)
}

/// A sensor publishing outside its topics gets its PUBACK, but the message is neither
/// forwarded nor stored.
pub async fn perm_sensor_publish_outside(t: Target) -> Outcome {
    let r: Result<Outcome, String> = async {
        let obs = observer_client(&t, "perm-out-obs").await?;
        obs.subscribe("otro/#", QoS::AtLeastOnce).await?;
        let sink = Sink::open(&t, "perm-out-sink").await?;
        let mq = Mq::connect(t.port, MqOpts::new("perm-out", &t.sensor)).await?;
        let acked = mq
            .publish_acked("otro/tema", QoS::AtLeastOnce, false, reading(7))
            .await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let connected = !mq.is_closed();
        let ended = mq.last_error();
        mq.disconnect().await;
        let forwarded = obs.messages().len();
        obs.disconnect().await;
        let stored = sink.count().await;
        let mut parts = vec![match &acked {
            Ok(()) => "PUBACK".to_string(),
            Err(e) => e.clone(),
        }];
        parts.push(if forwarded == 0 {
            "not delivered".into()
        } else {
            format!("delivered to the observer ×{forwarded}")
        });
        if matches!(sink, Sink::Store { .. }) {
            parts.push(if stored == 0 {
                "not stored".into()
            } else {
                format!("stored ×{stored}")
            });
        }
        if !connected {
            parts.push(format!(
                "connection ended ({})",
                ended.unwrap_or_else(|| "no error".into())
            ));
        }
        Ok(Outcome::new(
            acked.is_ok() && forwarded == 0 && stored == 0 && connected,
            parts.join(", "),
        ))
    }
    .await;
    r.unwrap_or_else(Outcome::fail)
}

/// An observer with `subscribe = ["#"]` receives what a sensor publishes (and the reading
/// is stored).
pub async fn perm_observer_receives_sensor(t: Target) -> Outcome {
    let r: Result<Outcome, String> = async {
        let obs = observer_client(&t, "perm-obs").await?;
        let code = obs.subscribe("#", QoS::AtLeastOnce).await?;
        if code == 0x80 {
            return Ok(Outcome::fail("observer: SUBACK 0x80 for #"));
        }
        let store = t.store.clone();
        let base = match &store {
            Some(s) => Some(s.total().await),
            None => None,
        };
        let mq = Mq::connect(t.port, MqOpts::new("perm-obs-sensor", &t.sensor)).await?;
        mq.publish_acked(READING_TOPIC, QoS::AtLeastOnce, false, reading(42))
            .await?;
        mq.disconnect().await;
        let got = obs
            .wait_messages(READING_TOPIC, 1, Duration::from_secs(3))
            .await;
        obs.disconnect().await;
        let mut parts = vec![if got.is_empty() {
            "not delivered".to_string()
        } else {
            "delivered".to_string()
        }];
        let mut stored_ok = true;
        if let (Some(s), Some(b)) = (store, base) {
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut n = s.total().await.saturating_sub(b);
            while n < 1 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                n = s.total().await.saturating_sub(b);
            }
            stored_ok = n == 1;
            parts.push(if stored_ok {
                "stored".into()
            } else {
                format!("stored {n}/1")
            });
        }
        Ok(Outcome::new(!got.is_empty() && stored_ok, parts.join(", ")))
    }
    .await;
    r.unwrap_or_else(Outcome::fail)
}

/// The hashed-password sensor may publish to `sensores/#` only.
pub async fn perm_hashed_topics(t: Target) -> Outcome {
    let r: Result<Outcome, String> = async {
        let obs = observer_client(&t, "perm-hash-obs").await?;
        obs.subscribe("#", QoS::AtLeastOnce).await?;
        let sink = Sink::open(&t, "perm-hash-sink").await?;
        let mq = Mq::connect(t.port, MqOpts::new("perm-hash", &t.hashed)).await?;
        mq.publish_acked("sensores/digestor1", QoS::AtLeastOnce, false, reading(1))
            .await?;
        mq.publish_acked(READING_TOPIC, QoS::AtLeastOnce, false, reading(2))
            .await?;
        mq.disconnect().await;
        sink.wait(1, Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let seqs = sink.seqs().await;
        let forwarded: Vec<String> = obs.messages().iter().map(|m| m.topic.clone()).collect();
        obs.disconnect().await;
        let allowed = seqs.contains(&1) && forwarded.iter().any(|x| x == "sensores/digestor1");
        let denied = !seqs.contains(&2) && !forwarded.iter().any(|x| x == READING_TOPIC);
        let label = sink.label();
        let text = format!(
            "sensores/x {}, Prueba {}",
            if allowed {
                label.to_string()
            } else {
                format!("not {label}")
            },
            if denied {
                "discarded".to_string()
            } else {
                format!("{label} too")
            }
        );
        Ok(Outcome::new(allowed && denied, text))
    }
    .await;
    r.unwrap_or_else(Outcome::fail)
}

/// A 100 KiB publish (over the 64 KiB hard limit) from an auto-reconnecting QoS 1 client,
/// then 15 valid readings: all 15 accepted, few or no reconnects.
pub async fn oversize_then_valid(t: Target) -> Outcome {
    let r: Result<Outcome, String> = async {
        let sink = Sink::open(&t, "oversize-sink").await?;
        let mut o = MqOpts::new("oversize-1", &t.sensor);
        o.reconnect = true;
        o.max_packet = 4 << 20;
        let mq = Mq::connect(t.port, o).await?;
        let big = format!(
            "{{\"presion\":1006,\"relleno\":\"{}\"}}",
            "x".repeat(100 * 1024)
        );
        mq.publish(READING_TOPIC, QoS::AtLeastOnce, false, big.into_bytes())
            .await;
        for seq in 0..15 {
            mq.publish(READING_TOPIC, QoS::AtLeastOnce, false, reading(seq))
                .await;
        }
        let n = sink.wait(15, Duration::from_secs(15)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let reconnects = mq.connacks().saturating_sub(1);
        let acks = mq.pubacks();
        mq.disconnect().await;
        Ok(Outcome::new(
            n == 15 && reconnects <= 1,
            format!(
                "{} {n}/15, {reconnects} reconnects ({acks}/16 PUBACK)",
                sink.label()
            ),
        ))
    }
    .await;
    r.unwrap_or_else(Outcome::fail)
}

/// Totals of a run of [`unthrottled`].
#[derive(Debug, Default)]
pub struct LoadResult {
    pub published: u64,
    pub acked: u64,
    pub accepted: u64,
    pub missing: u64,
    pub disconnects: usize,
    pub label: &'static str,
}

/// `clients` sensors publish QoS 1 readings as fast as they can for `duration`; returns
/// what was published, acknowledged and accepted (the acknowledged `seq`s missing from the
/// store or the observer).
pub async fn unthrottled(
    t: &Target,
    clients: usize,
    duration: Duration,
) -> Result<LoadResult, String> {
    const SPACE: u64 = 10_000_000;
    let sink = Sink::open(t, "carga-sink").await?;
    let mut conns = Vec::new();
    for c in 0..clients {
        let o = MqOpts::new(&format!("carga-{c}"), &t.sensor);
        conns.push(Arc::new(Mq::connect(t.port, o).await?));
    }
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for (c, mq) in conns.iter().enumerate() {
        let mq = mq.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline && !mq.is_closed() {
                let seq = c as u64 * SPACE + n;
                let publish =
                    mq.client
                        .publish(READING_TOPIC, QoS::AtLeastOnce, false, reading(seq));
                match tokio::time::timeout(Duration::from_secs(1), publish).await {
                    Ok(Ok(())) => n += 1,
                    Ok(Err(_)) => break,
                    Err(_) => {}
                }
            }
            n
        }));
    }
    let mut published = 0;
    for task in tasks {
        published += task.await.map_err(|e| e.to_string())?;
    }
    // Let the last acknowledgements arrive.
    let settle = Instant::now() + Duration::from_secs(15);
    let mut last = 0;
    let mut quiet = Instant::now();
    while Instant::now() < settle {
        let acked: u64 = conns.iter().map(|m| m.pubacks()).sum();
        if acked != last {
            last = acked;
            quiet = Instant::now();
        } else if acked >= published || quiet.elapsed() > Duration::from_secs(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut acked_seqs = Vec::new();
    for (c, mq) in conns.iter().enumerate() {
        acked_seqs.extend(mq.acked_indexes().into_iter().map(|i| c as u64 * SPACE + i));
    }
    let disconnects = conns.iter().filter(|m| m.is_closed()).count();
    for mq in &conns {
        let _ = mq.client.disconnect().await;
    }
    let acked = acked_seqs.len() as u64;
    let accepted = sink
        .settle_to(acked, Duration::from_secs(3), Duration::from_secs(30))
        .await;
    let have: BTreeSet<u64> = sink.seqs().await.into_iter().collect();
    let missing = acked_seqs.iter().filter(|s| !have.contains(s)).count() as u64;
    Ok(LoadResult {
        published,
        acked,
        accepted,
        missing,
        disconnects,
        label: sink.label(),
    })
}

/// Eight unthrottled QoS 1 publishers for 10 s: every acknowledged reading is accepted.
pub async fn unthrottled_no_loss(t: Target) -> Outcome {
    match unthrottled(&t, 8, Duration::from_secs(10)).await {
        Ok(r) => Outcome::new(
            r.missing == 0 && r.acked > 0,
            format!(
                "{} PUBACK of {} sent, {} {}, {} acknowledged missing{}",
                r.acked,
                r.published,
                r.accepted,
                r.label,
                r.missing,
                if r.disconnects > 0 {
                    format!(", {} clients disconnected", r.disconnects)
                } else {
                    String::new()
                }
            ),
        ),
        Err(e) => Outcome::fail(e),
    }
}

/// Run-length summary: "CONNACK 4 ×10, CONNACK 3 ×5".
pub fn runs(answers: &[String]) -> String {
    let mut out: Vec<(String, usize)> = Vec::new();
    for a in answers {
        match out.last_mut() {
            Some((last, n)) if last == a => *n += 1,
            _ => out.push((a.clone(), 1)),
        }
    }
    out.iter()
        .map(|(a, n)| format!("{a} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The answers to 15 wrong passwords from 127.0.0.1, then to the right one.
pub async fn throttle_answers(t: &Target) -> (Vec<String>, String) {
    let wrong = Creds::new(&t.sensor.user, "clave-equivocada");
    let mut answers = Vec::new();
    for i in 0..15 {
        answers.push(
            raw_attempt(
                t.port,
                &ConnectSpec::v311(&format!("fuerza-{i}"), Some(&wrong)),
            )
            .await,
        );
    }
    let right = raw_attempt(t.port, &ConnectSpec::v311("fuerza-ok", Some(&t.sensor))).await;
    (answers, right)
}

/// 15 wrong passwords in a row: after `auth_failures_per_address` of them the address gets
/// 3, even with the right password.
pub async fn throttle_after_failures(t: Target) -> Outcome {
    let (answers, right) = throttle_answers(&t).await;
    let limit = t.limits.auth_failures;
    let pass = answers[..limit].iter().all(|a| a == "CONNACK 4")
        && answers[limit + 1..].iter().all(|a| a == "CONNACK 3")
        && right == "CONNACK 3";
    Outcome::new(pass, format!("{}; right password: {right}", runs(&answers)))
}
