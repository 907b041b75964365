//! The MQTT scenarios of `common::mqtt` against the appliance and against Mosquitto 2 with
//! the same accounts, permissions and limits, printed as a markdown table. A report, not a
//! check (the checks are `mqtt_conformance` and `mqtt_abuse`), so it only runs on request:
//!
//! ```text
//! cargo test --release --test mqtt_compare -- --ignored --nocapture
//! MQTT_COMPARE_ONLY=basic_pubsub,refuse_mqtt5 cargo test --release --test mqtt_compare -- --ignored --nocapture
//! ```
//!
//! Each scenario gets a fresh appliance and a fresh Mosquitto (`mosquitto` and
//! `mosquitto_passwd` on PATH or in /usr/sbin). When the binary refuses the target MQTT
//! configuration, the appliance column is run with the configuration it accepts (no
//! per-user limit or throttling keys, the observer and the hashed sensor as plain
//! `name = "password"` users) and the table says so.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::mqtt::{self, Limits, Outcome, Target};
use common::{Appliance, Options};

/// A Mosquitto 2 broker on a free loopback port with its own configuration, password file
/// and ACL file mirroring the appliance's accounts and permissions.
struct Mosquitto {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

fn program(name: &str) -> Option<PathBuf> {
    let in_path = Command::new(name)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if in_path {
        return Some(PathBuf::from(name));
    }
    let sbin = Path::new("/usr/sbin").join(name);
    sbin.exists().then_some(sbin)
}

impl Mosquitto {
    fn start(limits: Limits) -> Result<Mosquitto, String> {
        let broker = program("mosquitto").ok_or("mosquitto is not installed")?;
        let passwd_tool = program("mosquitto_passwd").ok_or("mosquitto_passwd is not installed")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = common::free_port();
        let passwd = dir.path().join("passwd");
        let mut accounts = vec![mqtt::sensor(), mqtt::observer(), mqtt::hashed()];
        accounts.extend(mqtt::fillers());
        for (i, c) in accounts.iter().enumerate() {
            let mut cmd = Command::new(&passwd_tool);
            if i == 0 {
                cmd.arg("-c");
            }
            let out = cmd
                .arg("-b")
                .arg(&passwd)
                .arg(&c.user)
                .arg(&c.pass)
                .output()
                .map_err(|e| format!("mosquitto_passwd: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "mosquitto_passwd {}: {}",
                    c.user,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        // Sensors publish to the reading topics only; the observer does everything; the
        // hashed-password sensor publishes to sensores/# only.
        let mut acl = String::new();
        for c in std::iter::once(mqtt::sensor()).chain(mqtt::fillers()) {
            acl.push_str(&format!(
                "user {}\ntopic write Prueba\ntopic write sensores/#\n\n",
                c.user
            ));
        }
        acl.push_str(&format!(
            "user {}\ntopic readwrite #\ntopic readwrite $dollar/#\n\n",
            mqtt::OBSERVER_USER
        ));
        acl.push_str(&format!(
            "user {}\ntopic write sensores/#\n",
            mqtt::HASHED_USER
        ));
        let acl_path = dir.path().join("acl");
        std::fs::write(&acl_path, acl).map_err(|e| e.to_string())?;
        let conf = format!(
            "per_listener_settings false\n\
             allow_anonymous false\n\
             password_file {passwd}\n\
             acl_file {acl}\n\
             persistence false\n\
             # The appliance's hard packet limit (4 × max_payload_bytes, at least 64 KiB).\n\
             max_packet_size 65536\n\
             max_queued_messages 0\n\
             log_dest stderr\n\
             log_type error\n\
             log_type warning\n\
             user root\n\
             listener {port} 127.0.0.1\n\
             max_connections {max}\n",
            passwd = passwd.display(),
            acl = acl_path.display(),
            max = limits.max_connections,
        );
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(dir.path().join("mosquitto.log")).map_err(|e| e.to_string())?;
        let child = Command::new(&broker)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::from(log.try_clone().map_err(|e| e.to_string())?))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("mosquitto: {e}"))?;
        let mut m = Mosquitto { dir, port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = m.child.try_wait() {
                return Err(format!("mosquitto exited with {status}: {}", m.log()));
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(m);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("mosquitto did not listen: {}", m.log()))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    fn target(&self, limits: Limits) -> Target {
        Target {
            name: "mosquitto".into(),
            port: self.port,
            sensor: mqtt::sensor(),
            observer: mqtt::observer(),
            hashed: mqtt::hashed(),
            fillers: mqtt::fillers(),
            limits,
            store: None,
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration the current binary accepts when it refuses the target one.
fn legacy_options(limits: Limits) -> Options {
    let mut users = String::new();
    for c in mqtt::fillers()
        .into_iter()
        .chain([mqtt::observer(), mqtt::hashed()])
    {
        users.push_str(&format!("{} = \"{}\"\n", c.user, c.pass));
    }
    Options {
        mqtt_extra: format!("max_connections = {}\n", limits.max_connections),
        users_extra: users,
        ..Options::default()
    }
}

/// Starts the appliance with the target configuration, or the legacy one (second value
/// true) when the binary refuses it.
fn start_appliance(limits: Limits) -> Result<(Appliance, bool), String> {
    match Appliance::try_start(mqtt::appliance_options(limits)) {
        Ok(app) => Ok((app, false)),
        Err(_) => Appliance::try_start(legacy_options(limits)).map(|a| (a, true)),
    }
}

/// Escapes a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn mark(o: &Outcome) -> String {
    if o.pass {
        cell(&o.text)
    } else {
        format!("✗ {}", cell(&o.text))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "comparison report: run with --ignored --nocapture"]
async fn biogestor_vs_mosquitto() {
    let limits = Limits::default();
    let only: Option<Vec<String>> = std::env::var("MQTT_COMPARE_ONLY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let mut rows = Vec::new();
    let mut legacy_used = false;
    let mut mosquitto_missing = None;
    let limit = Duration::from_secs(90);
    for s in mqtt::all() {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|n| n == s.name))
        {
            continue;
        }
        eprintln!("== {}", s.name);
        let bio = match start_appliance(limits) {
            Ok((app, legacy)) => {
                legacy_used |= legacy;
                let t = mqtt::appliance_target(&app, limits);
                let o = mqtt::bounded(limit, (s.run)(t)).await;
                drop(app);
                o
            }
            Err(e) => Outcome::fail(format!(
                "appliance did not start: {}",
                e.lines().next().unwrap_or("")
            )),
        };
        let mosq = match Mosquitto::start(limits) {
            Ok(m) => {
                let o = mqtt::bounded(limit, (s.run)(m.target(limits))).await;
                if !o.pass {
                    let log = m.log();
                    if !log.trim().is_empty() {
                        eprintln!("-- mosquitto log ({}):\n{}", s.name, log.trim());
                    }
                }
                o
            }
            Err(e) => {
                mosquitto_missing.get_or_insert(e.clone());
                Outcome::fail(format!("not run: {e}"))
            }
        };
        eprintln!("   biogestor: {}\n   mosquitto: {}", bio.text, mosq.text);
        rows.push((s.name, s.target, bio, mosq));
    }
    let mut out = String::new();
    out.push_str("| scenario | target | biogestor | mosquitto 2 |\n|---|---|---|---|\n");
    for (name, target, bio, mosq) in &rows {
        out.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            cell(target),
            mark(bio),
            mark(mosq)
        ));
    }
    out.push_str("\n✗ = differs from the target behaviour of the appliance.\n");
    if legacy_used {
        out.push_str(
            "The binary refused the target MQTT configuration; the biogestor column ran with the \
             configuration it accepts (observer and hashed sensor as plain users, no per-user \
             limit, no throttling keys).\n",
        );
    }
    out.push_str(
        "Mosquitto: same accounts (mosquitto_passwd), an ACL file with the same topic \
         permissions, max_connections 64, max_packet_size 65536, no persistence; \"delivered\" \
         counts readings an observer subscribed to the reading topics received (Mosquitto has \
         no store).\n",
    );
    if let Some(e) = mosquitto_missing {
        out.push_str(&format!("Mosquitto was not run: {e}\n"));
    }
    println!("\n{out}");
}
