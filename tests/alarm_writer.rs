//! The `escritor_con_fallas` rule provoked for real: the store's disk fills (a small tmpfs,
//! mounting needs root as CI runs), the writer cannot commit and the critical alarm is raised
//! once; space freed, the writer recovers and the alarm clears.

mod common;

use std::time::{Duration, Instant};

use common::accounts::call;
use common::disk::{SmallDisk, free_bytes};
use common::{Appliance, Options, Publisher};
use serde_json::{Value, json};

const RULE: &str = "escritor_con_fallas";

async fn writer_alarms(app: &Appliance) -> Vec<Value> {
    let (status, body) = app.get("/api/dashboard/alarms/").await;
    assert_eq!(status, 200, "{body}");
    let mut all: Vec<Value> = body["activas"].as_array().unwrap().clone();
    all.extend(body["historial"].as_array().unwrap().iter().cloned());
    all.into_iter().filter(|a| a["regla"] == RULE).collect()
}

async fn wait_state(app: &Appliance, estado: &str, timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let all = writer_alarms(app).await;
        if all.iter().any(|a| a["estado"] == estado) || Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_makes_the_writer_fail_raising_one_critical_alarm_that_clears() {
    let outer = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&outer.path().join("disk"), "8m");
    let app = Appliance::start(Options {
        data_dir: Some(disk.0.join("data")),
        // Commit every second so the full disk shows at once.
        // The small disk is far below the default free-space goal (256 MB): without
        // min_free_mb = 0 retention would prune, at its own pace, the readings counted here.
        storage_toml: "checkpoint_interval_s = 1\nmin_free_mb = 0".into(),
        ..Options::default()
    });
    // Two samples (5 s apart) of a failing writer instead of a minute.
    let (status, body) = call(
        &app,
        "PUT",
        "/api/dashboard/alarms/reglas/",
        Some(&app.token),
        Some(json!({"reglas": {RULE: {"duracion_s": 5}}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(writer_alarms(&app).await, Vec::<Value>::new());

    let filler = disk.0.join("filler");
    let fill = free_bytes(&disk.0).saturating_sub(300 * 1024);
    std::fs::write(&filler, vec![0u8; fill as usize]).unwrap();
    let mut p = Publisher::sensor(app.mqtt_port, "escritor").await;
    let mut fields = serde_json::Map::new();
    for k in 0..30 {
        fields.insert(format!("canal_{k}"), json!(1000.0 + k as f64));
    }
    let n = 4000u64;
    for i in 0..n {
        let mut m = fields.clone();
        m.insert("seq".into(), json!(i));
        p.publish("Prueba", Value::Object(m).to_string()).await;
    }
    assert_eq!(p.wait_acked(n, Duration::from_secs(30)).await, n);

    let all = wait_state(&app, "activa", Duration::from_secs(30)).await;
    assert_eq!(all.len(), 1, "{all:?}\n{}", app.log());
    assert_eq!(all[0]["severidad"], "crítica");
    assert_eq!(all[0]["estado"], "activa");

    std::fs::remove_file(&filler).unwrap();
    assert_eq!(app.wait_readings(n, Duration::from_secs(40)).await, n);
    let all = wait_state(&app, "despejada", Duration::from_secs(30)).await;
    assert_eq!(all.len(), 1, "{all:?}\n{}", app.log());
    assert_eq!(all[0]["estado"], "despejada");
    drop(p);
    drop(app);
    drop(disk);
}
