//! Field operations: systemd readiness and watchdog, online backup and restore, Prometheus
//! metrics, and logs that never carry secrets. Every test runs the real binary.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::accounts::{call, tokens, user_with};
use common::{
    ADMIN_PASS, ADMIN_USER, Appliance, BIN, MQTT_PASS, Options, Publisher, free_port,
    http_get_status, run_bin,
};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers

/// A `biogestor serve` started by the test itself (with its own environment); killed on drop.
struct Serve {
    child: Option<Child>,
    log: PathBuf,
    http_port: u16,
}

impl Serve {
    /// Starts `serve --config config` with `env` added and `RUST_LOG` as given (removed when
    /// None, so the configured level applies).
    fn start(config: &Path, env: &[(&str, &str)], rust_log: Option<&str>, log: &Path) -> Serve {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config"])
            .arg(config)
            .env_remove("WATCHDOG_PID")
            .env_remove("WATCHDOG_USEC")
            .env_remove("NOTIFY_SOCKET")
            .envs(env.iter().copied())
            .stdout(Stdio::from(out.try_clone().expect("log")))
            .stderr(Stdio::from(out));
        match rust_log {
            Some(l) => cmd.env("RUST_LOG", l),
            None => cmd.env_remove("RUST_LOG"),
        };
        let child = cmd.spawn().expect("spawn biogestor");
        let http_port = config_port(config);
        Serve {
            child: Some(child),
            log: log.to_path_buf(),
            http_port,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/healthz` answers 200.
    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("biogestor exited early with {status}:\n{}", self.log());
            }
            if http_get_status(self.http_port, "/healthz") == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("biogestor did not become healthy:\n{}", self.log());
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM and wait for a clean exit.
    fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "exit after SIGTERM: {status}\n{}",
                    self.log()
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("no exit after SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The HTTP port of a test configuration.
fn config_port(config: &Path) -> u16 {
    let text = std::fs::read_to_string(config).expect("config");
    let line = text
        .lines()
        .find(|l| l.starts_with("bind = \"127.0.0.1:"))
        .expect("http bind");
    line.trim_end_matches('"')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

/// A configuration for a fresh appliance whose store lives in `data_dir`.
fn fresh_config(dir: &Path, data_dir: &Path) -> PathBuf {
    let path = dir.join("fresh.toml");
    let config = format!(
        r#"[http]
bind = "127.0.0.1:{http}"
[mqtt]
bind = "127.0.0.1:{mqtt}"
topics = ["Prueba"]
[mqtt.users]
sensor = "{MQTT_PASS}"
[storage]
data_dir = "{data}"
commit_interval_ms = 200
[site]
timezone = "America/Bogota"
"#,
        http = free_port(),
        mqtt = free_port(),
        data = data_dir.display(),
    );
    std::fs::write(&path, config).expect("write config");
    path
}

/// GET `path` on `port` with `token`: (status, headers, body bytes).
async fn get_raw(
    port: u16,
    path: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = reqwest::Client::new().get(format!("http://127.0.0.1:{port}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("GET");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

async fn get_json(port: u16, path: &str, token: &str) -> Value {
    let (status, _, body) = get_raw(port, path, Some(token)).await;
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).expect("json")
}

/// Every stored reading (all stages), following the pagination cursor.
async fn all_readings(port: u16, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/dashboard/readings/?limit=10000&cursor={c}"),
            None => "/api/dashboard/readings/?limit=10000".to_string(),
        };
        let page = get_json(port, &path, token).await;
        out.extend(page["readings"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

/// Logs in over HTTP and returns the access token.
async fn login(port: u16, user: &str, pass: &str) -> String {
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/iniciar-sesion/"))
        .json(&json!({"username": user, "password": pass}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status().as_u16(), 200, "login {user}");
    let v: Value = resp.json().await.expect("json");
    v["access"].as_str().expect("access").to_string()
}

/// Publishes `{"presion":..,"seq":n}`: the first `burst` as fast as the broker takes them,
/// then one every `every`, until `stop` is set.
fn steady_publisher(
    p: Arc<Publisher>,
    burst: u64,
    every: Duration,
    stop: Arc<AtomicBool>,
    published: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0u64;
        let mut paced_from: Option<Instant> = None;
        while !stop.load(Ordering::SeqCst) {
            p.publish(
                "Prueba",
                json!({"presion": 1000.0 + (n % 10) as f64, "seq": n}).to_string(),
            )
            .await;
            n += 1;
            published.store(n, Ordering::SeqCst);
            if n >= burst {
                let start = *paced_from.get_or_insert_with(Instant::now);
                tokio::time::sleep_until((start + every * (n - burst) as u32).into()).await;
            }
        }
    })
}

/// The `seq` values of readings.
fn seqs(readings: &[Value]) -> BTreeSet<u64> {
    readings
        .iter()
        .filter_map(|r| r["seq"].as_f64())
        .map(|s| s as u64)
        .collect()
}

/// Size and a cheap fingerprint of a file (to prove it did not change).
fn fingerprint(path: &Path) -> (u64, u64) {
    let bytes = std::fs::read(path).expect("read");
    let mut h: u64 = 0xcbf29ce484222325;
    for b in &bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
    }
    (bytes.len() as u64, h)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// 1. systemd notify + watchdog

/// Collects notify datagrams as (arrival, text) until `until` returns true or `timeout`.
fn receive(
    sock: &UnixDatagram,
    timeout: Duration,
    mut until: impl FnMut(&str) -> bool,
) -> Vec<(Instant, String)> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("timeout");
        match sock.recv(&mut buf) {
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                let stop = until(&text);
                got.push((Instant::now(), text));
                if stop {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("notify socket: {e}"),
        }
    }
    got
}

#[test]
fn systemd_ready_after_http_answers_then_watchdog_pings_then_stopping() {
    let mut app = Appliance::start(Options::default());
    app.signal("TERM", Duration::from_secs(10));
    let sock_path = app.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    let sock_env = sock_path.to_str().expect("path");
    let started = Instant::now();
    let mut serve = Serve::start(
        &app.config_path,
        &[("NOTIFY_SOCKET", sock_env), ("WATCHDOG_USEC", "2000000")],
        Some("info"),
        &app.dir.path().join("notify.log"),
    );

    let first = receive(&sock, Duration::from_secs(20), |_| true);
    let (ready_at, text) = first.first().cloned().expect("a notification");
    assert!(text.contains("READY=1"), "first message: {text:?}");
    // READY is only sent once the HTTP server answers: an immediate request succeeds.
    assert_eq!(
        http_get_status(serve.http_port, "/healthz"),
        Some(200),
        "healthz right after READY=1"
    );
    let log = serve.log();
    assert!(log.contains("biogestor ready"), "{log}");

    // With WATCHDOG_USEC=2 s the service pings every second.
    let window = Duration::from_millis(5500);
    let pings: Vec<Instant> = receive(&sock, window, |_| false)
        .into_iter()
        .filter(|(_, t)| t.contains("WATCHDOG=1"))
        .map(|(at, _)| at)
        .collect();
    let gaps: Vec<f64> = pings
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    eprintln!(
        "READY=1 {:.2} s after start; {} WATCHDOG=1 pings in {:.1} s, gaps {:?}",
        (ready_at - started).as_secs_f64(),
        pings.len(),
        window.as_secs_f64(),
        gaps.iter().map(|g| format!("{g:.2}")).collect::<Vec<_>>()
    );
    assert!(pings.len() >= 4, "pings: {}\n{}", pings.len(), serve.log());
    for g in &gaps {
        assert!((0.5..=1.6).contains(g), "ping gap {g:.2} s: {gaps:?}");
    }
    assert!(
        !serve.log().contains("watchdog ping withheld"),
        "{}",
        serve.log()
    );

    // SIGTERM: STOPPING=1, then no more pings.
    let pid = serve.pid();
    let killer = std::thread::spawn(move || {
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill")
    });
    let tail = receive(&sock, Duration::from_secs(10), |t| t.contains("STOPPING=1"));
    assert!(killer.join().expect("kill thread").success());
    let stopping = tail
        .iter()
        .position(|(_, t)| t.contains("STOPPING=1"))
        .unwrap_or_else(|| panic!("no STOPPING=1: {tail:?}\n{}", serve.log()));
    let after = receive(&sock, Duration::from_millis(1500), |_| false);
    assert!(
        after.iter().all(|(_, t)| !t.contains("WATCHDOG=1")),
        "pings after STOPPING=1: {after:?} (stopping at message {stopping})"
    );
    let mut child = serve.child.take().expect("child");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}\n{}", serve.log());
}

#[test]
fn watchdog_meant_for_another_process_is_not_fed() {
    let mut app = Appliance::start(Options::default());
    app.signal("TERM", Duration::from_secs(10));
    let sock_path = app.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind");
    let mut serve = Serve::start(
        &app.config_path,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().expect("path")),
            ("WATCHDOG_USEC", "1000000"),
            // sd_notify::watchdog_enabled() honours WATCHDOG_PID: here it names PID 1.
            ("WATCHDOG_PID", "1"),
        ],
        Some("info"),
        &app.dir.path().join("notify.log"),
    );
    let first = receive(&sock, Duration::from_secs(20), |_| true);
    assert!(first.first().is_some_and(|(_, t)| t.contains("READY=1")));
    let later = receive(&sock, Duration::from_millis(2500), |_| false);
    assert!(
        later.iter().all(|(_, t)| !t.contains("WATCHDOG=1")),
        "{later:?}"
    );
    serve.stop();
}

// ---------------------------------------------------------------------------------------------
// 2. Backup and restore

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_during_ingest_restores_every_committed_reading() {
    let app = Appliance::start(Options::default());
    let p = Arc::new(Publisher::sensor(app.mqtt_port, "backup-steady").await);
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    // A store of some size first (so the snapshot takes a while), then a steady rate that
    // keeps committing while the snapshot is copied.
    let burst = 40_000;
    let task = steady_publisher(
        p.clone(),
        burst,
        Duration::from_millis(2),
        stop.clone(),
        published.clone(),
    );
    assert!(
        app.wait_readings(burst + 500, Duration::from_secs(60))
            .await
            >= burst + 500
    );

    // Committed readings just before the request: the snapshot holds at least these.
    let committed_before = app.stats().await["lecturas_total"].as_u64().expect("total");
    let out = app.dir.path().join("copia.redb");
    let url = format!("http://127.0.0.1:{}", app.http_port);
    let (out_s, token, cfg) = (
        out.to_str().expect("path").to_string(),
        app.token.clone(),
        app.config_path.clone(),
    );
    let t0 = Instant::now();
    let (status, text) = tokio::task::spawn_blocking(move || {
        run_bin(
            &["backup", "--url", &url, "--out", &out_s],
            &[("BIOGESTOR_TOKEN", &token)],
            cfg.parent().expect("dir"),
        )
    })
    .await
    .expect("backup task");
    let backup_s = t0.elapsed().as_secs_f64();
    assert!(status.success(), "backup --url: {text}");
    let published_during = published.load(Ordering::SeqCst);

    // The download endpoint itself: headers, and no file left behind.
    let t1 = Instant::now();
    let (code, headers, body) = get_raw(app.http_port, "/api/admin/backup", Some(&app.token)).await;
    let http_s = t1.elapsed().as_secs_f64();
    assert_eq!(code, 200);
    assert_eq!(headers["content-type"], "application/octet-stream");
    let disposition = headers["content-disposition"].to_str().expect("ascii");
    assert!(
        disposition.starts_with("attachment; filename=\"biogestor-biodigestor-")
            && disposition.ends_with(".redb\""),
        "{disposition}"
    );
    assert_eq!(
        headers["content-length"].to_str().ok(),
        Some(body.len().to_string().as_str())
    );
    assert!(
        entries(&app.data_dir().join("backups")).is_empty(),
        "snapshot files left: {:?}",
        entries(&app.data_dir().join("backups"))
    );

    stop.store(true, Ordering::SeqCst);
    task.await.expect("publisher");
    let snapshot_bytes = std::fs::metadata(&out).expect("backup file").len();

    // Restore into a fresh data folder and start the appliance there.
    let fresh_dir = app.dir.path().join("fresh-data");
    let cfg2 = fresh_config(app.dir.path(), &fresh_dir);
    let (status, text) = run_bin(
        &[
            "restore",
            out.to_str().expect("path"),
            "--config",
            cfg2.to_str().expect("path"),
        ],
        &[],
        app.dir.path(),
    );
    assert!(status.success(), "restore: {text}");
    let mut b = Serve::start(&cfg2, &[], Some("info"), &app.dir.path().join("fresh.log"));
    b.wait_healthy();
    let token_b = login(b.http_port, ADMIN_USER, ADMIN_PASS).await;
    let restored = all_readings(b.http_port, &token_b).await;
    let stats_b = get_json(b.http_port, "/api/dashboard/stats/", &token_b).await;
    let restored_total = stats_b["lecturas_total"].as_u64().expect("total");
    let present = seqs(&restored);
    let missing: Vec<u64> = (0..committed_before)
        .filter(|s| !present.contains(s))
        .collect();
    eprintln!(
        "backup during ingest: {committed_before} readings committed before the request, \
         {} published by the time it finished; snapshot {snapshot_bytes} bytes in \
         {backup_s:.2} s (CLI --url, download + validation), {http_s:.2} s for a plain GET \
         ({} bytes); restored {} readings (lecturas_total {restored_total}); store file {} bytes",
        published_during,
        body.len(),
        restored.len(),
        std::fs::metadata(app.data_dir().join("biogestor.redb"))
            .map(|m| m.len())
            .unwrap_or(0)
    );
    assert!(
        missing.is_empty(),
        "{} committed seqs missing: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    // One read transaction: the counter and the rows of the snapshot agree exactly, and the
    // readings form a prefix of what was published.
    assert_eq!(restored.len() as u64, restored_total);
    assert_eq!(present.len(), restored.len(), "no duplicates");
    assert_eq!(
        present.iter().next_back().copied(),
        Some(restored_total - 1)
    );
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_backup_needs_the_service_stopped_or_a_url() {
    let mut app = Appliance::start(Options::default());
    let mut p = Publisher::sensor(app.mqtt_port, "cli-backup").await;
    for i in 0..200 {
        p.publish("Prueba", json!({"presion": 900.0, "seq": i}).to_string())
            .await;
    }
    assert_eq!(p.wait_acked(200, Duration::from_secs(10)).await, 200);
    assert_eq!(app.wait_readings(200, Duration::from_secs(10)).await, 200);
    let out = app.dir.path().join("stopped.redb");
    let (out_s, cfg_s, dir) = (
        out.to_str().expect("path").to_string(),
        app.config_path.to_str().expect("path").to_string(),
        app.dir.path().to_path_buf(),
    );
    let args = ["backup", "--out", &out_s, "--config", &cfg_s];

    // Running: the store is in use; the message shows the --url/--token form.
    let (status, text) = run_bin(&args, &[], &dir);
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("in use")
            && text.contains("--url http://127.0.0.1:")
            && text.contains("--token"),
        "{text}"
    );
    assert!(!out.exists());
    // --url without a token is refused before anything happens.
    let (status, text) = run_bin(
        &["backup", "--out", "x.redb", "--url", "http://127.0.0.1:1"],
        &[],
        app.dir.path(),
    );
    assert!(!status.success() && text.contains("--token"), "{text}");

    drop(p);
    app.signal("TERM", Duration::from_secs(10));
    let t0 = Instant::now();
    let (status, text) = run_bin(&args, &[], &dir);
    assert!(status.success(), "{text}");
    eprintln!(
        "CLI backup (service stopped): {text}in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    assert!(text.contains("200 readings"), "{text}");
    assert!(
        entries(app.dir.path())
            .iter()
            .all(|n| !n.starts_with(".biogestor-")),
        "staging left: {:?}",
        entries(app.dir.path())
    );

    // The file restores and the service starts on it with the same readings.
    let fresh_dir = app.dir.path().join("fresh-data");
    let cfg2 = fresh_config(app.dir.path(), &fresh_dir);
    let (status, text) = run_bin(
        &[
            "restore",
            out.to_str().expect("path"),
            "--config",
            cfg2.to_str().expect("path"),
        ],
        &[],
        app.dir.path(),
    );
    assert!(status.success(), "{text}");
    let mut b = Serve::start(&cfg2, &[], Some("info"), &app.dir.path().join("fresh.log"));
    b.wait_healthy();
    let token = login(b.http_port, ADMIN_USER, ADMIN_PASS).await;
    assert_eq!(seqs(&all_readings(b.http_port, &token).await).len(), 200);
    b.stop();

    // The original store is untouched by the backup: the service starts there as before.
    app.restart();
    assert_eq!(app.stats().await["lecturas_total"], json!(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_damaged_newer_and_foreign_files_and_changes_nothing() {
    let mut app = Appliance::start(Options::default());
    let mut p = Publisher::sensor(app.mqtt_port, "restore-refusals").await;
    for i in 0..3000 {
        p.publish("Prueba", json!({"temperatura": 30.0, "seq": i}).to_string())
            .await;
    }
    assert_eq!(p.wait_acked(3000, Duration::from_secs(20)).await, 3000);
    assert_eq!(app.wait_readings(3000, Duration::from_secs(20)).await, 3000);
    drop(p);
    let good = app.dir.path().join("good.redb");

    // Restore while the service runs: refused, it must be stopped first.
    let (status, text) = run_bin(
        &[
            "backup",
            "--url",
            &format!("http://127.0.0.1:{}", app.http_port),
            "--token",
            &app.token,
            "--out",
            good.to_str().expect("path"),
        ],
        &[],
        app.dir.path(),
    );
    assert!(status.success(), "{text}");
    let (cfg, dir) = (app.config_path.clone(), app.dir.path().to_path_buf());
    let restore = |file: &Path| {
        run_bin(
            &[
                "restore",
                file.to_str().expect("path"),
                "--config",
                cfg.to_str().expect("path"),
            ],
            &[],
            &dir,
        )
    };
    let (status, text) = restore(&good);
    assert!(!status.success() && text.contains("in use"), "{text}");
    app.signal("TERM", Duration::from_secs(10));

    let store = app.data_dir().join("biogestor.redb");
    let before = fingerprint(&store);
    let listing = entries(&app.data_dir());

    // Truncated.
    let bytes = std::fs::read(&good).expect("read");
    let truncated = app.dir.path().join("truncated.redb");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    // Not a database at all.
    let garbage = app.dir.path().join("garbage.redb");
    std::fs::write(
        &garbage,
        b"this is not a redb file, just some text\n".repeat(500),
    )
    .expect("write");
    // A few bytes flipped in the middle of the data.
    let flipped = app.dir.path().join("flipped.redb");
    let mut damaged = bytes.clone();
    let mid = damaged.len() / 2;
    for b in &mut damaged[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&flipped, &damaged).expect("write");
    // Written by a "newer release": schema version 99.
    let newer = app.dir.path().join("newer.redb");
    std::fs::copy(&good, &newer).expect("copy");
    {
        let db = redb::Database::create(&newer).expect("open copy");
        let txn = db.begin_write().expect("write");
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .expect("meta");
            meta.insert("schema_version", 99).expect("insert");
        }
        txn.commit().expect("commit");
    }
    // A valid redb file that is not a biogestor store.
    let foreign = app.dir.path().join("foreign.redb");
    {
        let db = redb::Database::create(&foreign).expect("create");
        let txn = db.begin_write().expect("write");
        txn.open_table(redb::TableDefinition::<u64, u64>::new("otra_cosa"))
            .expect("table")
            .insert(1, 2)
            .expect("insert");
        txn.commit().expect("commit");
    }

    for (file, expect) in [
        (&truncated, "damaged"),
        (&garbage, "not a usable biogestor snapshot"),
        (&flipped, "not a usable biogestor snapshot"),
        (&newer, "newer biogestor (schema version 99"),
        (&foreign, "tables missing"),
    ] {
        let (status, text) = restore(file);
        eprintln!("restore {}: {}", file.display(), text.trim());
        assert!(!status.success(), "{} accepted: {text}", file.display());
        assert!(
            text.contains(expect) && text.contains("Nothing was changed"),
            "{}: {text}",
            file.display()
        );
        assert_eq!(
            fingerprint(&store),
            before,
            "store changed by {}",
            file.display()
        );
        assert_eq!(entries(&app.data_dir()), listing, "data dir changed");
    }

    // The good one goes in, the old store is kept aside, and the service starts on it.
    let (status, text) = restore(&good);
    assert!(status.success(), "{text}");
    let aside: Vec<String> = entries(&app.data_dir())
        .into_iter()
        .filter(|n| n.starts_with("biogestor.redb.before-restore-"))
        .collect();
    assert_eq!(aside.len(), 1, "{:?}", entries(&app.data_dir()));
    assert_eq!(fingerprint(&app.data_dir().join(&aside[0])), before);
    app.restart();
    // A restore ends every session: the old token is refused, a new login works.
    let (status, _) = app.get("/api/dashboard/stats/").await;
    assert_eq!(status, 401, "a token from before the restore");
    app.token = app.login_blocking(ADMIN_USER, ADMIN_PASS);
    assert_eq!(app.stats().await["lecturas_total"], json!(3000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_metrics_are_for_administrators() {
    let app = Appliance::start(Options {
        extra_toml: "[auth]\nmetrics_token = \"scraper-token-0123456789\"\n".into(),
        ..Options::default()
    });
    let (_, viewer, _) = user_with(&app, "operador", &["VerDashboard", "VerReportes"]).await;
    for path in ["/api/admin/backup", "/metrics"] {
        let (status, _, body) = get_raw(app.http_port, path, None).await;
        assert_eq!(status, 401, "{path} without a token");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert!(v["detail"].is_string(), "{path}: {v}");
        let (status, _, body) = get_raw(app.http_port, path, Some(&viewer)).await;
        assert_eq!(status, 403, "{path} as a non-administrator");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert!(v["detail"].is_string(), "{path}: {v}");
        let (status, _, _) = get_raw(app.http_port, path, Some("not-a-token")).await;
        assert_eq!(status, 401, "{path} with garbage");
    }
    // The metrics token opens /metrics only.
    let (status, _, _) = get_raw(app.http_port, "/metrics", Some("scraper-token-0123456789")).await;
    assert_eq!(status, 200);
    let (status, _, _) = get_raw(app.http_port, "/metrics", Some("scraper-token-0123456788")).await;
    assert_eq!(status, 401);
    let (status, _, _) = get_raw(
        app.http_port,
        "/api/admin/backup",
        Some("scraper-token-0123456789"),
    )
    .await;
    assert_eq!(status, 401);
    // The CLI reports the refusal.
    let (status, text) = run_bin(
        &[
            "backup",
            "--url",
            &format!("http://127.0.0.1:{}", app.http_port),
            "--token",
            &viewer,
            "--out",
            "denied.redb",
        ],
        &[],
        app.dir.path(),
    );
    assert!(!status.success() && text.contains("403"), "{text}");
    assert!(!app.dir.path().join("denied.redb").exists());
}

// ---------------------------------------------------------------------------------------------
// 3. Metrics

/// Parses Prometheus text with the reference Python parser: (name, labels) → value.
fn parse_prometheus(text: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let script = r#"
import json, sys
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.exit("prometheus_client is missing: python3 -m pip install prometheus_client (scripts/test.sh does)")
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
    }
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "the Prometheus parser refused the output: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<(String, BTreeMap<String, String>, f64)> =
        serde_json::from_slice(&out.stdout).expect("parser json");
    samples.into_iter().map(|(n, l, v)| ((n, l), v)).collect()
}

fn value(
    samples: &BTreeMap<(String, BTreeMap<String, String>), f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples.get(&(name.to_string(), labels)).copied()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_count_what_happened() {
    let app = Appliance::start(Options::default());
    let _ws = common::WsClient::connect(&app).await;
    let mut p = Publisher::sensor(app.mqtt_port, "metrics").await;
    let good = 250u64;
    for i in 0..good {
        p.publish("Prueba", json!({"presion": 1000.0, "seq": i}).to_string())
            .await;
    }
    p.publish("Prueba", b"{not json".to_vec()).await;
    p.publish("Prueba", json!({"presion": "alta"}).to_string())
        .await;
    assert_eq!(
        p.wait_acked(good + 2, Duration::from_secs(10)).await,
        good + 2
    );
    assert_eq!(app.wait_readings(good, Duration::from_secs(10)).await, good);
    for _ in 0..3 {
        app.stats().await;
    }
    let (status, _) = app.get("/api/usuario/999999/no-existe/").await;
    assert!(status >= 400);
    let (status, headers, body) = get_raw(app.http_port, "/metrics", Some(&app.token)).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{headers:?}"
    );
    let text = String::from_utf8(body).expect("utf-8");
    let s = parse_prometheus(&text);

    let v = |name: &str| value(&s, name, &[]).unwrap_or_else(|| panic!("{name} missing:\n{text}"));
    assert_eq!(v("biogestor_mqtt_messages_accepted_total"), good as f64);
    assert_eq!(v("biogestor_mqtt_messages_rejected_total"), 2.0);
    assert_eq!(
        v("biogestor_mqtt_messages_received_total"),
        good as f64 + 2.0
    );
    assert_eq!(v("biogestor_mqtt_messages_dropped_total"), 0.0);
    assert_eq!(v("biogestor_readings_committed_total"), good as f64);
    let batches = v("biogestor_commit_batch_readings_count");
    assert!(batches >= 1.0);
    assert_eq!(v("biogestor_commit_batch_readings_sum"), good as f64);
    assert_eq!(v("biogestor_commit_duration_seconds_count"), batches);
    assert_eq!(
        value(
            &s,
            "biogestor_commit_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        Some(batches)
    );
    assert_eq!(v("biogestor_websocket_clients"), 1.0);
    assert_eq!(v("biogestor_writer_healthy"), 1.0);
    assert!(v("biogestor_store_file_size_bytes") > 10_000.0);
    assert!(v("process_resident_memory_bytes") > 1e6);
    assert!(v("biogestor_uptime_seconds") > 0.0);
    assert_eq!(v("biogestor_report_generation_seconds_count"), 0.0);
    assert_eq!(
        value(
            &s,
            "biogestor_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    let stats_ok = value(
        &s,
        "biogestor_http_requests_total",
        &[
            ("route", "/api/dashboard/stats/"),
            ("method", "GET"),
            ("status", "200"),
        ],
    )
    .unwrap_or(0.0);
    assert!(
        stats_ok >= 4.0,
        "stats requests counted: {stats_ok}\n{text}"
    );
    let health = value(
        &s,
        "biogestor_http_requests_total",
        &[("route", "/healthz"), ("method", "GET"), ("status", "200")],
    )
    .unwrap_or(0.0);
    assert!(health >= 1.0, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("biogestor_http_requests_total{route=\"unmatched\""))
            || text.contains("route=\"/api/usuario/{id}"),
        "{text}"
    );
    eprintln!("{} samples parsed by prometheus_client", s.len());
}

// ---------------------------------------------------------------------------------------------
// 4. Logs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_carry_secrets() {
    let mut app = Appliance::start(Options {
        extra_toml:
            "[auth]\nmetrics_token = \"scraper-secret-9876543210\"\n[log]\nlevel = \"debug\"\n"
                .into(),
        ..Options::default()
    });
    app.signal("TERM", Duration::from_secs(10));
    let log_path = app.dir.path().join("debug.log");
    // The configured level (debug) applies: no RUST_LOG.
    let mut serve = Serve::start(&app.config_path, &[], None, &log_path);
    serve.wait_healthy();

    let (access, refresh) = tokens(&app, ADMIN_USER, ADMIN_PASS).await;
    let (status, body) = call(
        &app,
        "POST",
        "/api/refrescar-token/",
        None,
        Some(json!({ "refresh": refresh })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access2 = body["access"].as_str().expect("access").to_string();
    let refresh2 = body["refresh"].as_str().expect("refresh").to_string();
    let (status, _) = call(&app, "GET", "/api/usuario/actual/", Some(&access2), None).await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        "POST",
        "/api/iniciar-sesion/",
        None,
        Some(json!({"username": ADMIN_USER, "password": "Clave-Equivocada-1"})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, _) = get_raw(
        serve.http_port,
        "/metrics",
        Some("scraper-secret-9876543210"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = get_raw(serve.http_port, "/api/admin/backup", Some(&access)).await;
    assert_eq!(status, 200);
    // The WebSocket carries its token in the query string.
    let ws_url = format!("ws://127.0.0.1:{}/ws/mqtt/?token={access}", serve.http_port);
    let (ws, _) = tokio_tungstenite::connect_async(ws_url).await.expect("ws");
    let mut p = Publisher::sensor(app.mqtt_port, "log-check").await;
    p.publish("Prueba", json!({"presion": 1000.0}).to_string())
        .await;
    p.wait_acked(1, Duration::from_secs(5)).await;
    drop(ws);
    drop(p);
    let (_, _, _) = get_raw(serve.http_port, "/api/dashboard/stats/", Some(&access2)).await;
    serve.stop();

    let log = std::fs::read_to_string(&log_path).expect("log");
    let jwt_secret = std::fs::read_to_string(app.data_dir().join("jwt-secret"))
        .expect("secret file")
        .trim()
        .to_string();
    assert!(jwt_secret.len() >= 32);
    for (what, secret) in [
        ("access token", access.as_str()),
        ("refresh token", refresh.as_str()),
        ("rotated access token", access2.as_str()),
        ("rotated refresh token", refresh2.as_str()),
        ("JWT secret", jwt_secret.as_str()),
        ("MQTT password", MQTT_PASS),
        ("admin password", ADMIN_PASS),
        ("wrong password", "Clave-Equivocada-1"),
        ("metrics token", "scraper-secret-9876543210"),
    ] {
        assert!(!log.contains(secret), "{what} appears in the log:\n{log}");
    }
    // Debug level shows request spans by matched route, one line per event.
    assert!(log.contains("route=\"/api/refrescar-token/\""), "{log}");
    assert!(log.contains("route=\"/ws/mqtt/\""), "{log}");
    assert!(!log.contains("store still in use"), "{log}");
    assert!(!log.contains("?token="), "{log}");
    assert!(log.lines().count() > 10);
    eprintln!("{} log lines checked for secrets", log.lines().count());
}
