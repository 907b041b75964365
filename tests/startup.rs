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
