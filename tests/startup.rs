//! Start-up refusals: every bad configuration or unusable store stops the binary with a
//! non-zero exit and a message naming the key.

mod common;

use std::net::TcpListener;
use std::path::Path;

use common::{Appliance, Options, free_port, run_bin};

fn write_config(dir: &Path, body: &str) -> String {
    let path = dir.join("config.toml");
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

fn base(http: u16, mqtt: u16, data: &Path) -> String {
    format!(
        "[http]\nbind = \"127.0.0.1:{http}\"\n[mqtt]\nbind = \"127.0.0.1:{mqtt}\"\nallow_anonymous = true\n\
         [storage]\ndata_dir = \"{}\"\n",
        data.display()
    )
}

fn serve_fails(config: &str, dir: &Path, env: &[(&str, &str)], expect: &[&str]) {
    let (status, out) = run_bin(&["serve", "--config", config], env, dir);
    assert!(!status.success(), "must not start: {out}");
    for e in expect {
        assert!(out.contains(e), "message should contain {e:?}: {out}");
    }
}

#[test]
fn version_and_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let (status, out) = run_bin(&["--version"], &[], dir.path());
    assert!(status.success());
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
    let repo_config = concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml");
    let (status, out) = run_bin(&["check-config", "--config", repo_config], &[], dir.path());
    assert!(status.success(), "{out}");
    assert!(out.contains("configuration OK"), "{out}");
    // The repository's config is the default file name.
    std::fs::copy(repo_config, dir.path().join("config.toml")).unwrap();
    let (status, out) = run_bin(
        &["check-config"],
        &[("BIOGESTOR_HTTP__BIND", "127.0.0.1:18080")],
        dir.path(),
    );
    assert!(status.success() && out.contains("127.0.0.1:18080"), "{out}");
}

#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let good = base(free_port(), free_port(), &data);

    let cfg = write_config(dir.path(), &format!("{good}[site]\nnombre = \"x\"\n"));
    let (status, out) = run_bin(&["check-config", "--config", &cfg], &[], dir.path());
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("nombre"), "{out}");

    let cfg = write_config(dir.path(), &good);
    serve_fails(
        &cfg,
        dir.path(),
        &[("BIOGESTOR_HTTP__BIND", "localhost")],
        &["http.bind", "localhost"],
    );
    serve_fails(
        &cfg,
        dir.path(),
        &[("BIOGESTOR_MQTT__BIND", "1.2.3.4.5:1")],
        &["mqtt.bind"],
    );
    serve_fails(
        &cfg,
        dir.path(),
        &[("BIOGESTOR_STORAGE__COMMIT_INTERVAL_MS", "pronto")],
        &["BIOGESTOR_STORAGE__COMMIT_INTERVAL_MS", "pronto"],
    );
    serve_fails(
        &cfg,
        dir.path(),
        &[("BIOGESTOR_SITE__TIMEZONE", "Luna/Base")],
        &["site.timezone", "Luna/Base"],
    );
    serve_fails(
        &cfg,
        dir.path(),
        &[("BIOGESTOR_HTTP__BINDD", "x")],
        &["http.bindd"],
    );
    let (status, out) = run_bin(
        &["serve", "--config", "/nonexistent/config.toml"],
        &[],
        dir.path(),
    );
    assert!(
        !status.success() && out.contains("/nonexistent/config.toml"),
        "{out}"
    );
}

#[test]
fn ports_in_use_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = write_config(dir.path(), &base(port, free_port(), &dir.path().join("d1")));
    serve_fails(&cfg, dir.path(), &[], &["http.bind", &port.to_string()]);
    let cfg = write_config(dir.path(), &base(free_port(), port, &dir.path().join("d2")));
    serve_fails(&cfg, dir.path(), &[], &["mqtt.bind", &port.to_string()]);
}

#[test]
fn unusable_data_dir_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let cfg = write_config(
        dir.path(),
        &base(free_port(), free_port(), &file.join("data")),
    );
    serve_fails(&cfg, dir.path(), &[], &["storage.data_dir"]);
}

#[test]
fn second_process_on_same_store_is_refused() {
    let app = Appliance::start(Options::default());
    let (status, out) = run_bin(
        &["serve", "--config", app.config_path.to_str().unwrap()],
        &[
            (
                "BIOGESTOR_HTTP__BIND",
                &format!("127.0.0.1:{}", free_port()),
            ),
            (
                "BIOGESTOR_MQTT__BIND",
                &format!("127.0.0.1:{}", free_port()),
            ),
        ],
        app.dir.path(),
    );
    assert!(!status.success(), "{out}");
    assert!(out.contains("in use by another biogestor process"), "{out}");
    assert_eq!(
        common::http_get_status(app.http_port, "/healthz"),
        Some(200)
    );
}

#[test]
fn store_from_a_newer_release_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    {
        let db = redb::Database::create(data.join("biogestor.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
            let mut t = txn.open_table(meta).unwrap();
            t.insert("schema_version", 99).unwrap();
        }
        txn.commit().unwrap();
    }
    let cfg = write_config(dir.path(), &base(free_port(), free_port(), &data));
    serve_fails(&cfg, dir.path(), &[], &["schema version 99", "newer"]);
}

/// Starts `serve` on the repository's own config.toml with `env` overrides; returns the child
/// once /healthz answers (its output goes to `log`).
fn serve_repo_config(
    dir: &Path,
    env: &[(&str, String)],
    http: u16,
    log: &Path,
) -> std::process::Child {
    let repo_config = concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = std::process::Command::new(common::BIN)
        .args(["serve", "--config", repo_config])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while common::http_get_status(http, "/healthz") != Some(200) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(std::time::Instant::now() < deadline, "not healthy");
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    child
}

fn stop(mut child: std::process::Child) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(child.wait().unwrap().success());
}

fn generated_password(data: &Path) -> String {
    let text = std::fs::read_to_string(data.join("mqtt-passwords.toml")).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    table["sensor"].as_str().unwrap().to_string()
}

/// The repository's config.toml as shipped (broker on 0.0.0.0, `sensor` with the published
/// password): `check-config` names the key and the fix, `serve` still starts, refuses the
/// published password with CONNACK 4, and accepts the password it generated for this
/// installation, logged once and the same after a restart. On loopback nothing changes.
#[test]
fn published_sensor_password_is_never_accepted_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (http, mqtt) = (free_port(), free_port());
    let env = [
        ("BIOGESTOR_HTTP__BIND", format!("127.0.0.1:{http}")),
        ("BIOGESTOR_MQTT__BIND", format!("0.0.0.0:{mqtt}")),
        ("BIOGESTOR_STORAGE__DATA_DIR", data.display().to_string()),
    ];
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let repo_config = concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml");
    let (status, out) = run_bin(
        &["check-config", "--config", repo_config],
        &env_refs,
        dir.path(),
    );
    assert!(status.success(), "{out}");
    assert!(
        out.contains("warning: mqtt.users.sensor")
            && out.contains("mqtt-passwords.toml")
            && out.contains("127.0.0.1"),
        "{out}"
    );

    let log = dir.path().join("serve.log");
    let child = serve_repo_config(dir.path(), &env, http, &log);
    assert_eq!(
        common::mqtt_connack(mqtt, "publicada", "sensor", "cambiar-esta-clave"),
        Some(4),
        "the published password must be refused"
    );
    let generated = generated_password(&data);
    assert_eq!(generated.len(), 24);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("mqtt-passwords.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(
        common::mqtt_connack(mqtt, "generada", "sensor", &generated),
        Some(0)
    );
    stop(child);
    let first_log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        first_log.matches(generated.as_str()).count(),
        1,
        "printed once when created: {first_log}"
    );

    let child = serve_repo_config(dir.path(), &env, http, &log);
    assert_eq!(generated_password(&data), generated);
    assert_eq!(
        common::mqtt_connack(mqtt, "generada-2", "sensor", &generated),
        Some(0)
    );
    assert_eq!(
        common::mqtt_connack(mqtt, "publicada-2", "sensor", "cambiar-esta-clave"),
        Some(4)
    );
    stop(child);
    let second_log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        second_log.matches(generated.as_str()).count(),
        1,
        "not printed again: {second_log}"
    );
    assert!(second_log.contains("mqtt-passwords.toml"), "{second_log}");

    // Loopback only: the published password keeps working and nothing is reported.
    let loopback = [
        ("BIOGESTOR_HTTP__BIND", format!("127.0.0.1:{http}")),
        ("BIOGESTOR_MQTT__BIND", format!("127.0.0.1:{mqtt}")),
        ("BIOGESTOR_STORAGE__DATA_DIR", data.display().to_string()),
    ];
    let refs: Vec<(&str, &str)> = loopback.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, out) = run_bin(
        &["check-config", "--config", repo_config],
        &refs,
        dir.path(),
    );
    assert!(status.success() && !out.contains("warning"), "{out}");
    let child = serve_repo_config(dir.path(), &loopback, http, &log);
    assert_eq!(
        common::mqtt_connack(mqtt, "local", "sensor", "cambiar-esta-clave"),
        Some(0)
    );
    stop(child);
}
