//! Storage that lasts, on the real binary: raw readings past their retention are pruned while
//! daily figures and 10-minute rollups stay; a small filesystem filling up makes the oldest
//! raw readings go so new ones are still stored; `biogestor compact` gives the space back.

mod common;

use std::time::{Duration, Instant};

use common::disk::{SmallDisk, free_bytes};
use common::{Appliance, Options, Publisher};
use serde_json::{Value, json};

/// `/api/dashboard/readings/` in 10-minute buckets over the last hour (aligned, so served from
/// the rollups): readings counted in all buckets.
async fn readings_in_buckets(app: &Appliance) -> u64 {
    let now = chrono::Utc::now().timestamp();
    let from = (now - 3600).div_euclid(600) * 600;
    let iso = |s: i64| {
        chrono::DateTime::from_timestamp(s, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let path = format!(
        "/api/dashboard/readings/?from={}&to={}&bucket=600",
        iso(from),
        iso(now + 600)
    );
    let body = app.get_json(&path).await;
    body["buckets"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|b| b["count"].as_u64().unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_readings_past_retention_go_and_daily_figures_and_rollups_stay() {
    let app = Appliance::start(Options {
        // 8.6 seconds.
        storage_toml: "raw_retention_days = 0.0001".into(),
        ..Options::default()
    });
    let mut p = Publisher::sensor(app.mqtt_port, "retention").await;
    for i in 0..50u64 {
        p.publish(
            "Prueba",
            json!({"presion": 1000.0 + i as f64, "seq": i}).to_string(),
        )
        .await;
    }
    assert_eq!(p.wait_acked(50, Duration::from_secs(10)).await, 50);
    assert_eq!(app.wait_readings(50, Duration::from_secs(10)).await, 50);
    assert_eq!(app.all_readings().await.len(), 50);
    // Within a retention pass (5 s) after they are 8.6 s old.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !app.all_readings().await.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        app.all_readings().await.is_empty(),
        "raw readings past retention are pruned:\n{}",
        app.log()
    );
    assert_eq!(
        readings_in_buckets(&app).await,
        50,
        "the 10-minute chart still shows them (rollups)"
    );
    let stats = app.stats().await;
    assert_eq!(stats["lecturas_total"], 50, "{stats}");
    assert_eq!(
        stats["lecturas_hoy"], 50,
        "today's daily row is kept: {stats}"
    );
}

/// Publishes `n` readings of about 500 stored bytes each, numbered from `first`.
async fn publish_wide(p: &mut Publisher, first: u64, n: u64) {
    let mut fields = serde_json::Map::new();
    for k in 0..30 {
        fields.insert(format!("canal_{k}"), json!(1000.0 + k as f64));
    }
    let before = p.acked();
    for i in first..first + n {
        let mut m = fields.clone();
        m.insert("seq".into(), json!(i));
        p.publish("Prueba", Value::Object(m).to_string()).await;
    }
    assert_eq!(
        p.wait_acked(before + n, Duration::from_secs(60)).await,
        before + n
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filling_disk_prunes_the_oldest_raw_readings_and_compact_gives_space_back() {
    let outer = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&outer.path().join("disk"), "40m");
    let mut app = Appliance::start(Options {
        data_dir: Some(disk.0.join("data")),
        storage_toml: "journal_mb = 1\nmin_free_mb = 12\ncheckpoint_interval_s = 1".into(),
        ..Options::default()
    });
    // About 18 MB left for the store: it may use 6 MB before the budget applies.
    let filler = disk.0.join("filler");
    let fill = free_bytes(&disk.0).saturating_sub(18 << 20);
    std::fs::write(&filler, vec![0u8; fill as usize]).unwrap();
    let mut p = Publisher::sensor(app.mqtt_port, "budget").await;
    let (rounds, per_round) = (12u64, 4_000u64);
    for r in 0..rounds {
        publish_wide(&mut p, r * per_round, per_round).await;
        app.wait_readings((r + 1) * per_round, Duration::from_secs(30))
            .await;
        // Give retention a pass to react to the growth.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let total = rounds * per_round;
    assert_eq!(
        app.wait_readings(total, Duration::from_secs(30)).await,
        total
    );
    assert!(
        app.log()
            .contains("disk budget: oldest raw readings pruned"),
        "{}",
        app.log()
    );
    let kept: Vec<u64> = app
        .all_readings()
        .await
        .iter()
        .map(|r| r["seq"].as_f64().unwrap() as u64)
        .collect();
    assert!((kept.len() as u64) < total, "some raw readings were pruned");
    let newest: std::collections::BTreeSet<u64> = kept.iter().copied().collect();
    assert!(
        ((rounds - 1) * per_round..total).all(|s| newest.contains(&s)),
        "the newest readings are all stored"
    );
    assert!(
        kept.iter().min() > Some(&0),
        "the oldest went first: oldest kept {:?}",
        kept.iter().min()
    );
    assert_eq!(
        common::http_get_status(app.http_port, "/healthz"),
        Some(200)
    );
    let db_len = std::fs::metadata(disk.0.join("data").join("biogestor.redb"))
        .unwrap()
        .len();
    eprintln!(
        "free {} KiB, store {} KiB",
        free_bytes(&disk.0) >> 10,
        db_len >> 10
    );
    assert!(
        free_bytes(&disk.0) > 2 << 20,
        "the disk never filled up:\n{}",
        app.log()
    );
    assert_eq!(
        readings_in_buckets(&app).await,
        total,
        "rollups still count every reading"
    );
    // Stopped, `compact` shrinks the file.
    app.signal("TERM", Duration::from_secs(20));
    let db = disk.0.join("data").join("biogestor.redb");
    let before = std::fs::metadata(&db).unwrap().len();
    let (status, out) = common::run_bin(
        &["compact", "--config", app.config_path.to_str().unwrap()],
        &[],
        outer.path(),
    );
    assert!(status.success(), "{out}");
    let after = std::fs::metadata(&db).unwrap().len();
    assert!(after < before, "compact: {before} -> {after}: {out}");
    app.restart();
    assert_eq!(
        app.all_readings().await.len(),
        kept.len(),
        "nothing lost by compaction"
    );
    drop(app);
    drop(disk);
}
