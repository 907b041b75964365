//! Shared helpers of the black-box tests: start the real `biogestor` binary on free loopback
//! ports with a temporary data folder, and talk to it with real MQTT, HTTP and WebSocket
//! clients.

#![allow(dead_code)]

pub mod accounts;
pub mod central;
pub mod disk;
pub mod mqtt;
pub mod tls;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_biogestor");
pub const MQTT_USER: &str = "sensor";
pub const MQTT_PASS: &str = "clave-de-prueba";
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASS: &str = "Vacas-Pintas-2026";

/// A port nobody listens on right now, and one this test process has not
/// handed out before: the kernel may offer the same free port twice in a row,
/// and an appliance given one port for HTTP and MQTT refuses to start.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// How to start the appliance.
#[derive(Clone)]
pub struct Options {
    pub commit_interval_ms: u64,
    pub max_payload_bytes: u64,
    pub max_fields: u64,
    pub allow_anonymous: bool,
    pub timezone: String,
    /// Lines added to the `[http]` section.
    pub http_toml: String,
    pub extra_toml: String,
    /// Extra keys of `[storage]`.
    pub storage_toml: String,
    /// Lines added inside `[mqtt]` (e.g. `max_connections = 64`).
    pub mqtt_extra: String,
    /// Lines added after the test sensor in `[mqtt.users]`: more `name = "password"` pairs
    /// first, then `[mqtt.users.NAME]` tables.
    pub users_extra: String,
    /// Create the administrator `admin` with `biogestor user add --admin` before the first
    /// start and log in as it. Without it the store starts empty (setup-code path).
    pub create_admin: bool,
    /// Where the store lives (default: `data` in the appliance's temporary folder).
    pub data_dir: Option<PathBuf>,
    /// Run with the shipped registration limits. Off by default: most tests register many
    /// accounts from one address within seconds, so `Appliance::start` lifts the limits through
    /// `BIOGESTOR_AUTH__*` variables unless a test is about them.
    pub production_limits: bool,
    /// Start the binary (and `user add`) with this file-creation mask instead of the test
    /// runner's, e.g. `Some(0)` to prove files are private whatever the umask.
    pub umask: Option<u32>,
    /// Start the service with this open-file limit (`ulimit -n`), as systemd would without
    /// `LimitNOFILE`.
    pub open_files: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            commit_interval_ms: 200,
            max_payload_bytes: 16384,
            max_fields: 64,
            allow_anonymous: false,
            timezone: "America/Bogota".into(),
            http_toml: String::new(),
            extra_toml: String::new(),
            storage_toml: String::new(),
            mqtt_extra: String::new(),
            users_extra: String::new(),
            create_admin: true,
            data_dir: None,
            production_limits: false,
            umask: None,
            open_files: None,
        }
    }
}

/// A running (or stopped) appliance with its own ports and data folder.
pub struct Appliance {
    pub dir: TempDir,
    pub http_port: u16,
    pub mqtt_port: u16,
    pub config_path: PathBuf,
    data_dir: PathBuf,
    /// Access token of the administrator created before the first start.
    pub token: String,
    /// Variables added to the service's environment.
    env: Vec<(String, String)>,
    umask: Option<u32>,
    child: Option<Child>,
    open_files: Option<u64>,
}

/// Registration limits high enough for tests that create many accounts from one address.
const RELAXED_LIMITS: [(&str, &str); 3] = [
    (
        "BIOGESTOR_AUTH__REGISTRATIONS_PER_ADDRESS_PER_HOUR",
        "10000",
    ),
    ("BIOGESTOR_AUTH__REGISTRATIONS_PER_HOUR", "10000"),
    ("BIOGESTOR_AUTH__MAX_PENDING_ACCOUNTS", "10000"),
];

impl Appliance {
    /// Writes a config and starts `biogestor serve`, waiting until `/healthz` answers 200.
    pub fn start(opts: Options) -> Appliance {
        Self::try_start(opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Appliance::start`], but a configuration the binary refuses (or a service that
    /// does not become healthy) is an error instead of a panic.
    pub fn try_start(opts: Options) -> Result<Appliance, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let http_port = free_port();
        let mqtt_port = free_port();
        let config_path = dir.path().join("config.toml");
        let config = format!(
            r#"[http]
bind = "127.0.0.1:{http_port}"
{http_extra}
[mqtt]
bind = "127.0.0.1:{mqtt_port}"
topics = ["Prueba", "sensores/#"]
allow_anonymous = {anon}
max_payload_bytes = {maxp}
max_fields = {maxf}
{mqtt_extra}
[mqtt.users]
{MQTT_USER} = "{MQTT_PASS}"
{users_extra}
[storage]
data_dir = "{data}"
commit_interval_ms = {commit}
{storage_extra}
[site]
timezone = "{tz}"
{extra}
"#,
            anon = opts.allow_anonymous,
            maxp = opts.max_payload_bytes,
            maxf = opts.max_fields,
            data = opts
                .data_dir
                .clone()
                .unwrap_or_else(|| dir.path().join("data"))
                .display(),
            commit = opts.commit_interval_ms,
            tz = opts.timezone,
            http_extra = opts.http_toml,
            extra = opts.extra_toml,
            storage_extra = opts.storage_toml,
            mqtt_extra = opts.mqtt_extra,
            users_extra = opts.users_extra,
        );
        std::fs::write(&config_path, config).expect("write config");
        if opts.create_admin {
            let (status, out) = run_bin_with_umask(
                opts.umask,
                &[
                    "user",
                    "add",
                    "--username",
                    ADMIN_USER,
                    "--password",
                    ADMIN_PASS,
                    "--email",
                    "admin@finca.test",
                    "--admin",
                    "--config",
                    config_path.to_str().expect("path"),
                ],
                &[],
                dir.path(),
            );
            if !status.success() {
                return Err(format!("user add: {out}"));
            }
        }
        let data_dir = opts
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let mut app = Appliance {
            data_dir,
            dir,
            http_port,
            mqtt_port,
            config_path,
            token: String::new(),
            env: if opts.production_limits {
                Vec::new()
            } else {
                RELAXED_LIMITS
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            },
            umask: opts.umask,
            child: None,
            open_files: opts.open_files,
        };
        app.try_restart()?;
        if opts.create_admin {
            app.token = app.login_blocking(ADMIN_USER, ADMIN_PASS);
        }
        Ok(app)
    }

    /// Logs in over plain HTTP (usable from sync code) and returns the access token.
    pub fn login_blocking(&self, user: &str, pass: &str) -> String {
        let body = serde_json::json!({"username": user, "password": pass}).to_string();
        let (status, text) = http_request(
            self.http_port,
            "POST",
            "/api/iniciar-sesion/",
            None,
            Some(&body),
        );
        assert_eq!(status, 200, "login {user}: {text}");
        let v: Value = serde_json::from_str(&text).expect("login json");
        v["access"].as_str().expect("access token").to_string()
    }

    /// An HTTP client that sends the administrator's token.
    pub fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", self.token).parse().expect("header"),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client")
    }

    /// GET with the administrator's token: (status, JSON body or Null).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.client().get(self.url(path)).send().await.expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Starts the binary again on the same ports and data folder.
    pub fn restart(&mut self) {
        self.try_restart().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Like [`Appliance::restart`], returning what went wrong instead of panicking.
    pub fn try_restart(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("serve.log"))
            .expect("log file");
        let child = service_command(self.umask, self.open_files)
            .args(["serve", "--config"])
            .arg(&self.config_path)
            .env(
                "RUST_LOG",
                std::env::var("BG_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn biogestor");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "biogestor exited early with {status}:\n{}",
                    self.log()
                ));
            }
            if http_get_status(self.http_port, "/healthz") == Some(200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err(format!("biogestor did not become healthy:\n{}", self.log()))
    }

    /// Everything the service printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.http_port, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends `signal` (e.g. "TERM", "KILL") and waits for the process to exit.
    pub fn signal(&mut self, signal: &str, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill");
        assert!(ok.success());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "biogestor did not exit within {timeout:?} after SIG{signal}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// GET a JSON document.
    pub async fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert!((200..300).contains(&status), "GET {path}: {status} {body}");
        body
    }

    /// `/api/dashboard/stats/`.
    pub async fn stats(&self) -> Value {
        self.get_json("/api/dashboard/stats/").await
    }

    /// Waits until `lecturas_total` reaches `n` (or the timeout), returning the last value.
    pub async fn wait_readings(&self, n: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let total = self.stats().await["lecturas_total"].as_u64().unwrap_or(0);
            if total >= n || Instant::now() > deadline {
                return total;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every stored reading (all stages), following the pagination cursor.
    pub async fn all_readings(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/dashboard/readings/?limit=10000&cursor={c}"),
                None => "/api/dashboard/readings/?limit=10000".to_string(),
            };
            let page = self.get_json(&path).await;
            out.extend(page["readings"].as_array().cloned().unwrap_or_default());
            match page["next"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Status of a plain HTTP GET (no client library, usable from sync code).
pub fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let (status, _) = try_http_request(port, "GET", path, None, None)?;
    Some(status)
}

/// A plain HTTP/1.1 request: (status, body). Panics when the server does not answer.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    json: Option<&str>,
) -> (u16, String) {
    try_http_request(port, method, path, token, json).expect("HTTP request")
}

fn try_http_request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    json: Option<&str>,
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = json.unwrap_or("");
    if json.is_some() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// A connected MQTT client whose event loop runs in the background, counting PUBACKs.
pub struct Publisher {
    pub client: AsyncClient,
    acks: tokio::sync::watch::Receiver<u64>,
}

impl Publisher {
    /// Connects with the test credentials (or anonymously when `creds` is None).
    pub async fn connect(port: u16, id: &str, creds: Option<(&str, &str)>) -> Publisher {
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(4 << 20, 4 << 20);
        opts.set_inflight(100);
        if let Some((u, p)) = creds {
            opts.set_credentials(u, p);
        }
        let (client, mut el) = AsyncClient::new(opts, 1000);
        let (tx, rx) = tokio::sync::watch::channel(0u64);
        let (conn_tx, conn_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut conn_tx = Some(conn_tx);
            let mut acks = 0u64;
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if let Some(t) = conn_tx.take() {
                            let _ = t.send(Ok(()));
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acks += 1;
                        let _ = tx.send(acks);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if let Some(t) = conn_tx.take() {
                            let _ = t.send(Err(e.to_string()));
                        }
                        break;
                    }
                }
            }
        });
        match tokio::time::timeout(Duration::from_secs(10), conn_rx).await {
            Ok(Ok(Ok(()))) => {}
            other => panic!("MQTT connect failed: {other:?}"),
        }
        Publisher { client, acks: rx }
    }

    /// Default test connection with the configured credentials.
    pub async fn sensor(port: u16, id: &str) -> Publisher {
        Self::connect(port, id, Some((MQTT_USER, MQTT_PASS))).await
    }

    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .expect("publish");
    }

    pub fn acked(&self) -> u64 {
        *self.acks.borrow()
    }

    /// Waits until `n` PUBACKs arrived.
    pub async fn wait_acked(&mut self, n: u64, timeout: Duration) -> u64 {
        let _ = tokio::time::timeout(timeout, self.acks.wait_for(|v| *v >= n)).await;
        self.acked()
    }
}

/// A WebSocket client collecting every text message in the background.
pub struct WsClient {
    pub messages: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WsClient {
    pub async fn connect(app: &Appliance) -> WsClient {
        let url = format!(
            "ws://127.0.0.1:{}/ws/mqtt/?token={}",
            app.http_port, app.token
        );
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let m = messages.clone();
        let task = tokio::spawn(async move {
            let (_, mut read) = ws.split();
            while let Some(Ok(msg)) = read.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(t) = msg
                    && let Ok(v) = serde_json::from_str::<Value>(&t)
                {
                    m.lock().unwrap().push(v);
                }
            }
        });
        WsClient { messages, task }
    }

    pub fn count(&self, kind: &str) -> usize {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m["type"] == kind)
            .count()
    }

    /// Waits until `n` sensor_data messages arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        while self.count("sensor_data") < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.count("sensor_data")
    }
}

impl Drop for WsClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs the binary with arguments and returns (exit status, stdout + stderr).
pub fn run_bin(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> (ExitStatus, String) {
    run_bin_with_umask(None, args, env, cwd)
}

/// The binary as a command, started through `sh` with `umask` set when given (`exec` keeps
/// the process id, so signals reach the binary itself).
pub fn bin_command(umask: Option<u32>) -> Command {
    service_command(umask, None)
}

/// The binary as a command, started through `sh` with `umask` and an open-file limit
/// (`ulimit -n`, as systemd would without `LimitNOFILE`) set when given; `exec` keeps the
/// child's pid the service's own.
pub fn service_command(umask: Option<u32>, open_files: Option<u64>) -> Command {
    let mut setup = Vec::new();
    if let Some(mask) = umask {
        setup.push(format!("umask {mask:03o}"));
    }
    if let Some(n) = open_files {
        setup.push(format!("ulimit -n {n}"));
    }
    if setup.is_empty() {
        return Command::new(BIN);
    }
    let mut c = Command::new("sh");
    c.args([
        "-c",
        &format!("{} && exec \"$0\" \"$@\"", setup.join(" && ")),
        BIN,
    ]);
    c
}

/// [`run_bin`] with a chosen file-creation mask.
pub fn run_bin_with_umask(
    umask: Option<u32>,
    args: &[&str],
    env: &[(&str, &str)],
    cwd: &Path,
) -> (ExitStatus, String) {
    let out = bin_command(umask)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .output()
        .expect("run biogestor");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

/// Resident memory of process `pid` in KiB (`VmRSS` of /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS")
}

/// Sends one MQTT 3.1.1 CONNECT with `user`/`password` and returns the CONNACK return code
/// (0 accepted, 4 bad user name or password, 5 not authorised), or None when the broker
/// closes the connection without one.
pub fn mqtt_connack(port: u16, client_id: &str, user: &str, password: &str) -> Option<u8> {
    use std::io::{Read, Write};
    fn field(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s);
    }
    let mut body = Vec::new();
    field(&mut body, b"MQTT");
    body.push(4);
    body.push(0xC2); // clean session, user name, password
    body.extend_from_slice(&30u16.to_be_bytes());
    field(&mut body, client_id.as_bytes());
    field(&mut body, user.as_bytes());
    field(&mut body, password.as_bytes());
    assert!(body.len() < 128, "short CONNECT only");
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(&packet).ok()?;
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).ok()?;
    let _ = s.write_all(&[0xE0, 0x00]);
    (ack[0] == 0x20).then_some(ack[3])
}

/// Open file descriptors of process `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A memory figure of process `pid` in KiB, from `/proc/<pid>/status` (`VmRSS`, `VmHWM`).
pub fn memory_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Raises this test process's open-file limit to at least `n` (up to the hard limit), for
/// tests that hold many client sockets.
pub fn raise_open_files(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < n as libc::rlim_t {
            lim.rlim_cur = (n as libc::rlim_t).min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
