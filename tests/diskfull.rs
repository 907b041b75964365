//! A full disk: acknowledged readings are kept in the preallocated journal (or memory), health
//! reports the failure, once space is freed everything is committed without a restart, and a
//! stop while the disk is full ends in bounded time without losing what was acknowledged.

mod common;

use std::time::{Duration, Instant};

use common::disk::{SmallDisk, free_bytes};
use common::{Appliance, Options, Publisher};
use serde_json::{Value, json};

/// Publishes readings with 30 extra fields (about 500 bytes stored each) numbered by `seq`,
/// and waits for every acknowledgement.
async fn publish_wide(p: &mut Publisher, seqs: std::ops::Range<u64>) {
    let mut fields = serde_json::Map::new();
    for k in 0..30 {
        fields.insert(format!("canal_{k}"), json!(1000.0 + k as f64));
    }
    let n = seqs.end - seqs.start;
    let before = p.acked();
    for i in seqs {
        let mut m = fields.clone();
        m.insert("presion".into(), json!(1000.0));
        m.insert("seq".into(), json!(i));
        p.publish("Prueba", Value::Object(m).to_string()).await;
    }
    assert_eq!(
        p.wait_acked(before + n, Duration::from_secs(30)).await,
        before + n
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_keeps_readings_until_space_is_freed() {
    let outer = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&outer.path().join("disk"), "8m");
    let app = Appliance::start(Options {
        data_dir: Some(disk.0.join("data")),
        // Sync the database every second, so the full disk shows at once (with the default
        // ten minutes the journal alone would carry the readings until then).
        // The small disk is far below the default free-space goal (256 MB): without
        // min_free_mb = 0 retention would prune, at its own pace, the readings counted here.
        storage_toml: "checkpoint_interval_s = 1\nmin_free_mb = 0".into(),
        ..Options::default()
    });
    // Leave about 300 KB free.
    let filler = disk.0.join("filler");
    let fill = free_bytes(&disk.0).saturating_sub(300 * 1024);
    std::fs::write(&filler, vec![0u8; fill as usize]).unwrap();

    let mut p = Publisher::sensor(app.mqtt_port, "diskfull").await;
    let n = 4000u64;
    publish_wide(&mut p, 0..n).await;
    // The disk fills: health says so and not everything is stored yet.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut status = 200;
    while Instant::now() < deadline {
        status = common::http_get_status(app.http_port, "/healthz").unwrap_or(0);
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        503,
        "a writer that cannot commit makes /healthz fail:\n{}",
        app.log()
    );
    assert!(
        app.log().contains("commit failed; readings kept"),
        "{}",
        app.log()
    );

    // Space comes back: the writer reopens the store and commits what it kept.
    std::fs::remove_file(&filler).unwrap();
    let stored = app.wait_readings(n, Duration::from_secs(40)).await;
    assert_eq!(
        stored,
        n,
        "every acknowledged reading committed after the disk recovered:\n{}",
        app.log()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while common::http_get_status(app.http_port, "/healthz") != Some(200)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        common::http_get_status(app.http_port, "/healthz"),
        Some(200),
        "{}",
        app.log()
    );
    assert!(app.log().contains("store reopened"), "{}", app.log());
    let seqs: std::collections::BTreeSet<u64> = app
        .all_readings()
        .await
        .iter()
        .map(|r| r["seq"].as_f64().unwrap() as u64)
        .collect();
    assert_eq!(seqs, (0..n).collect(), "each exactly once");
    drop(p);
    drop(app);
    drop(disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_the_disk_is_full_ends_in_time_and_loses_nothing_acknowledged() {
    let outer = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&outer.path().join("disk"), "8m");
    let mut app = Appliance::start(Options {
        data_dir: Some(disk.0.join("data")),
        // The small disk is far below the default free-space goal (256 MB): without
        // min_free_mb = 0 retention would prune, at its own pace, the readings counted here.
        storage_toml: "checkpoint_interval_s = 1\nmin_free_mb = 0".into(),
        ..Options::default()
    });
    let filler = disk.0.join("filler");
    let fill = free_bytes(&disk.0).saturating_sub(300 * 1024);
    std::fs::write(&filler, vec![0u8; fill as usize]).unwrap();
    let mut p = Publisher::sensor(app.mqtt_port, "diskfull-stop").await;
    let n = 4000u64;
    publish_wide(&mut p, 0..n).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::http_get_status(app.http_port, "/healthz") != Some(503)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(p);
    // The unit gives a stop 30 s before SIGKILL: it must end well before.
    let started = Instant::now();
    app.signal("TERM", Duration::from_secs(20));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "stop took {took:?}:\n{}",
        app.log()
    );
    assert!(
        app.log()
            .contains("journaled readings are applied at the next start"),
        "{}",
        app.log()
    );
    // Space comes back; the next start applies the journal.
    std::fs::remove_file(&filler).unwrap();
    app.restart();
    let stored = app.wait_readings(n, Duration::from_secs(30)).await;
    assert_eq!(stored, n, "{}", app.log());
    let seqs: std::collections::BTreeSet<u64> = app
        .all_readings()
        .await
        .iter()
        .map(|r| r["seq"].as_f64().unwrap() as u64)
        .collect();
    assert_eq!(seqs.len() as u64, n, "each exactly once");
    drop(app);
    drop(disk);
}
