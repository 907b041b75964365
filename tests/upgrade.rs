//! A store and a backup written by the release before readings were stored in chunks (schema
//! version 2: one row per reading) open, migrate and serve every reading, with the real
//! binary.

mod common;

use std::path::Path;
use std::time::Duration;

use biogestor::store::codec::encode_reading;
use biogestor::store::readings::from_key;
use common::{ADMIN_PASS, ADMIN_USER, Appliance, Options, Publisher, run_bin};
use redb::{ReadableDatabase, TableDefinition};
use serde_json::{Value, json};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const CHUNKS: TableDefinition<(u64, i64), &[u8]> = TableDefinition::new("reading_chunks");
const LEGACY: TableDefinition<(u64, i64), &[u8]> = TableDefinition::new("readings");

/// Rewrites a store file the way schema version 2 laid readings out: one row per reading.
fn downgrade(path: &Path) {
    let db = redb::Database::open(path).expect("open store");
    let txn = db.begin_write().expect("write");
    let rows: Vec<((u64, i64), Vec<u8>)> = {
        let t = txn.open_table(CHUNKS).expect("chunks");
        from_key(&t, (0, i64::MIN))
            .expect("rows")
            .map(|r| {
                let (key, reading) = r.expect("row");
                (key, encode_reading(&reading, Vec::new()).expect("encode"))
            })
            .collect()
    };
    assert!(!rows.is_empty());
    txn.delete_table(CHUNKS).expect("delete");
    {
        let mut legacy = txn.open_table(LEGACY).expect("legacy");
        for (key, bytes) in &rows {
            legacy.insert(*key, bytes.as_slice()).expect("insert");
        }
        txn.open_table(META)
            .expect("meta")
            .insert("schema_version", 2)
            .expect("schema");
    }
    txn.commit().expect("commit");
}

fn tables(path: &Path) -> Vec<String> {
    let db = redb::Database::open(path).expect("open store");
    let txn = db.begin_read().expect("read");
    txn.list_tables()
        .expect("tables")
        .map(|t| redb::TableHandle::name(&t).to_string())
        .collect()
}

/// (seq, presion) of every reading the API lists, in order.
async fn listed(app: &Appliance) -> Vec<(u64, f64)> {
    app.all_readings()
        .await
        .iter()
        .map(|r: &Value| {
            (
                r["seq"].as_f64().expect("seq") as u64,
                r["presion"].as_f64().expect("presion"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_store_and_an_older_backup_open_with_every_reading() {
    let mut app = Appliance::start(Options::default());
    let mut p = Publisher::sensor(app.mqtt_port, "upgrade").await;
    let n = 1500u64;
    for i in 0..n {
        let payload = json!({"presion": 1006.0 + (i % 17) as f64 * 0.1, "seq": i});
        p.publish("Prueba", payload.to_string()).await;
    }
    assert_eq!(p.wait_acked(n, Duration::from_secs(20)).await, n);
    assert_eq!(app.wait_readings(n, Duration::from_secs(20)).await, n);
    let before = listed(&app).await;
    assert_eq!(before.len() as u64, n);
    drop(p);
    app.signal("TERM", Duration::from_secs(10));

    let store = app.data_dir().join("biogestor.redb");
    assert!(tables(&store).contains(&"reading_chunks".to_string()));
    downgrade(&store);
    let old_backup = app.dir.path().join("anterior.redb");
    std::fs::copy(&store, &old_backup).expect("copy");
    assert!(tables(&store).contains(&"readings".to_string()));

    // The older store: the service moves the readings at start and lists them all.
    app.restart();
    assert!(
        app.log().contains("readings stored in chunks"),
        "{}",
        app.log()
    );
    assert_eq!(listed(&app).await, before);
    assert_eq!(app.stats().await["lecturas_total"], json!(n));
    // New readings go on after them.
    let mut p = Publisher::sensor(app.mqtt_port, "upgrade-2").await;
    for i in n..n + 100 {
        p.publish("Prueba", json!({"presion": 1000.5, "seq": i}).to_string())
            .await;
    }
    assert_eq!(p.wait_acked(100, Duration::from_secs(20)).await, 100);
    assert_eq!(
        app.wait_readings(n + 100, Duration::from_secs(20)).await,
        n + 100
    );
    drop(p);
    app.signal("TERM", Duration::from_secs(10));
    let names = tables(&store);
    assert!(
        names.contains(&"reading_chunks".to_string()) && !names.contains(&"readings".to_string()),
        "{names:?}"
    );

    // The older backup restores, and the service opens it with its readings.
    let (status, text) = run_bin(
        &[
            "restore",
            old_backup.to_str().expect("path"),
            "--config",
            app.config_path.to_str().expect("path"),
        ],
        &[],
        app.dir.path(),
    );
    assert!(status.success(), "restore: {text}");
    app.restart();
    // A restore ends the sessions of the replaced store.
    app.token = app.login_blocking(ADMIN_USER, ADMIN_PASS);
    assert_eq!(listed(&app).await, before);
}
