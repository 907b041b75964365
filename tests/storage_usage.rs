//! The store's room on *Estado* and `/metrics`: size, free space, days until full, oldest raw
//! reading kept and last prune, from the real binary.

mod common;

use std::time::Duration;

use common::{Appliance, Options, Publisher};
use serde_json::{Value, json};

/// The store's META table and the rows retention writes (the interface with pruning).
const META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
const LAST_PRUNE_US: &str = "last_prune_us";
const PRUNED_TOTAL: &str = "pruned_total";

/// `name value` of every sample without labels in a Prometheus text exposition.
fn samples(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.contains('{'))
        .filter_map(|l| {
            let (name, v) = l.split_once(' ')?;
            Some((name.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

async fn metrics(app: &Appliance) -> std::collections::BTreeMap<String, f64> {
    let resp = app
        .client()
        .get(app.url("/metrics"))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("metrics");
    assert_eq!(resp.status(), 200);
    samples(&resp.text().await.expect("body"))
}

fn secs(rfc3339: &Value) -> f64 {
    let text = rfc3339.as_str().expect("a time");
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .timestamp_micros() as f64
        / 1e6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estado_and_metrics_show_the_stores_room_oldest_reading_and_last_prune() {
    let mut app = Appliance::start(Options::default());
    // Without a token /healthz tells nothing about the store.
    let open = reqwest::get(app.url("/healthz")).await.expect("healthz");
    let open: Value = open.json().await.expect("json");
    assert!(open.get("storage").is_none(), "{open}");

    let empty = app.get_json("/healthz").await;
    let st = &empty["storage"];
    assert_eq!(st["oldest_reading"], Value::Null, "{st}");
    assert_eq!(st["last_prune"], Value::Null);
    assert_eq!(st["pruned_total"], json!(0));
    // Fresh service: less than an hour of samples, so no rate and no days until full.
    assert_eq!(st["days_until_full"], Value::Null);
    assert_eq!(st["growth_bytes_per_day"], Value::Null);

    let mut p = Publisher::sensor(app.mqtt_port, "room").await;
    for i in 0..300 {
        p.publish("Prueba", json!({"presion": 1000.0 + i as f64}).to_string())
            .await;
    }
    assert_eq!(p.wait_acked(300, Duration::from_secs(20)).await, 300);
    assert_eq!(app.wait_readings(300, Duration::from_secs(20)).await, 300);
    let readings = app.all_readings().await;
    let first = secs(&readings[0]["ts"]);

    let h = app.get_json("/healthz").await;
    let st = &h["storage"];
    // What the file occupies on disk (redb extends it ahead of use).
    let file = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(app.data_dir().join("biogestor.redb"))
            .expect("store file")
            .blocks()
            * 512
    };
    let store_bytes = st["store_bytes"].as_u64().expect("store_bytes");
    assert!(store_bytes > 0 && store_bytes <= file, "{st} vs {file}");
    let file = store_bytes;
    let free = st["free_bytes"].as_u64().expect("free");
    let size = st["filesystem_bytes"].as_u64().expect("size");
    assert!(free > 0 && free < size, "{st}");
    // The same file system as statvfs sees it (other writers may move it a little).
    let df = rustix::fs::statvfs(app.data_dir().as_path()).expect("statvfs");
    let df_free = df.f_bavail * df.f_frsize;
    assert!(free.abs_diff(df_free) < 256 << 20, "{free} vs {df_free}");
    assert!(
        (secs(&st["oldest_reading"]) - first).abs() < 0.002,
        "{st} vs {first}"
    );
    assert_eq!(st["last_prune"], Value::Null);

    let m = metrics(&app).await;
    // The store may have grown since the health check: between that size and today's.
    let now_on_disk = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(app.data_dir().join("biogestor.redb"))
            .expect("store file")
            .blocks()
            * 512
    };
    let reported = m["biogestor_store_file_size_bytes"];
    assert!(
        reported >= file as f64 && reported <= now_on_disk as f64,
        "{reported} not within {file}..={now_on_disk}"
    );
    assert!(m["biogestor_store_filesystem_free_bytes"] > 0.0);
    assert_eq!(m["biogestor_store_filesystem_size_bytes"], size as f64);
    assert!((m["biogestor_store_oldest_reading_timestamp_seconds"] - first).abs() < 0.002);
    assert_eq!(m.get("biogestor_store_pruned_readings_total"), Some(&0.0));
    for absent in [
        "biogestor_store_last_prune_timestamp_seconds",
        "biogestor_store_days_until_full",
        "biogestor_store_growth_bytes_per_day",
    ] {
        assert!(!m.contains_key(absent), "{absent} shown without a value");
    }

    // A prune recorded in the store (as retention writes it) is shown after a restart.
    app.signal("TERM", Duration::from_secs(20));
    let pruned_at_us: u64 = 1_764_500_000_123_000;
    {
        let db = redb::Database::open(app.data_dir().join("biogestor.redb")).expect("open");
        let txn = db.begin_write().expect("write");
        {
            let mut meta = txn.open_table(META).expect("meta");
            meta.insert(LAST_PRUNE_US, pruned_at_us).expect("insert");
            meta.insert(PRUNED_TOTAL, 4321u64).expect("insert");
        }
        txn.commit().expect("commit");
    }
    app.restart();
    let st = app.get_json("/healthz").await["storage"].clone();
    assert_eq!(st["pruned_total"], json!(4321), "{st}");
    assert!(
        (secs(&st["last_prune"]) - pruned_at_us as f64 / 1e6).abs() < 0.001,
        "{st}"
    );
    assert!(
        st["last_prune"].as_str().expect("time").ends_with("-05:00"),
        "site time: {st}"
    );
    let m = metrics(&app).await;
    assert_eq!(m["biogestor_store_pruned_readings_total"], 4321.0);
    assert!(
        (m["biogestor_store_last_prune_timestamp_seconds"] - pruned_at_us as f64 / 1e6).abs()
            < 0.001
    );
}
