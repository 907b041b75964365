//! The production rule on the real binary: a stage loaded days ago whose last whole day after
//! the model's lag measured too little gas raises exactly one warning at start-up, with the
//! share the production chart shows; with enough gas, none. Past days are measured by running
//! the appliance with its clock rehearsed one day back (`clock.start_offset_s`, NTP absent),
//! then restarting it on today's time.

mod common;

use std::time::{Duration, Instant};

use common::accounts::call;
use common::{ADMIN_PASS, ADMIN_USER, Appliance, Options, Publisher};
use serde_json::{Value, json};

const RULE: &str = "produccion_baja";
const DAY_S: i64 = 86_400;

async fn production_alarms(app: &Appliance) -> Vec<Value> {
    let (status, body) = app.get("/api/dashboard/alarms/").await;
    assert_eq!(status, 200, "{body}");
    let mut all: Vec<Value> = body["activas"].as_array().unwrap().clone();
    all.extend(body["historial"].as_array().unwrap().iter().cloned());
    all.into_iter().filter(|a| a["regla"] == RULE).collect()
}

async fn wait_alarms(app: &Appliance, timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let all = production_alarms(app).await;
        if !all.is_empty() || Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A stage loaded four days ago (bovino, lag 2 days) whose gas meter counted `steps` m³ in
/// ten-minute steps yesterday; the rule judges one whole day. Returns the appliance running
/// on today's clock, yesterday's (expected, measured) Nm³ from the production chart, and the
/// folder of the clock's synchronisation flag.
async fn seeded(steps: &[f64]) -> (Appliance, f64, f64, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    // The rehearsal offset only holds while NTP is not synchronised: no flag file.
    let flag = dir.path().join("synchronized");
    let clock = |offset: i64| {
        format!(
            "[clock]\nsync_check = \"file\"\nsync_file = \"{}\"\nstart_offset_s = {offset}\n",
            flag.display()
        )
    };
    let mut app = Appliance::start(Options {
        extra_toml: clock(-DAY_S),
        ..Options::default()
    });
    let tz: chrono_tz::Tz = "America/Bogota".parse().unwrap();
    let date = chrono::Utc::now().with_timezone(&tz).date_naive() - chrono::Days::new(4);
    let (status, stage) = call(
        &app,
        "POST",
        "/api/dashboard/fillings/",
        Some(&app.token),
        Some(json!({"date": date.to_string(), "material_type": "bovino",
                    "material_amount_kg": 1000, "material_humidity_pct": 87,
                    "temperature_c": 35})),
    )
    .await;
    assert_eq!(status, 201, "{stage}");
    let (status, body) = call(
        &app,
        "PUT",
        "/api/dashboard/alarms/reglas/",
        Some(&app.token),
        Some(json!({"reglas": {RULE: {"duracion_s": DAY_S}}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The appliance's clock reads yesterday: these readings are yesterday's.
    let mut p = Publisher::sensor(app.mqtt_port, "medidor").await;
    let now = chrono::Utc::now().timestamp() - DAY_S;
    let mut total = 10.0;
    let n = steps.len() + 1;
    for i in 0..n {
        if i > 0 {
            total += steps[i - 1];
        }
        let ts = now - (n - 1 - i) as i64 * 600;
        let payload = json!({"gas_total_m3": total, "temperatura": 34.0, "presion": 1005.0,
                             "calidad": 60.0, "ts": ts});
        p.publish("Prueba", payload.to_string()).await;
    }
    assert_eq!(
        p.wait_acked(n as u64, Duration::from_secs(5)).await,
        n as u64
    );
    assert_eq!(
        app.wait_readings(n as u64, Duration::from_secs(5)).await,
        n as u64
    );
    drop(p);
    app.signal("TERM", Duration::from_secs(20));
    let config = std::fs::read_to_string(&app.config_path).unwrap();
    let config = config.replace(&clock(-DAY_S), &clock(0));
    std::fs::write(&app.config_path, config).unwrap();
    app.restart();
    app.token = app.login_blocking(ADMIN_USER, ADMIN_PASS);
    let (status, chart) = app.get("/api/dashboard/production/current/").await;
    assert_eq!(status, 200, "{chart}");
    // Yesterday is the stage's fourth day.
    let expected = chart["expected"]["daily_biogas_nm3"][3].as_f64().unwrap();
    let actual = chart["actual"]["daily_biogas_nm3"][3].as_f64().unwrap();
    assert_eq!(chart["actual"]["missing"][3], false, "{chart}");
    assert!(expected > 0.1, "{chart}");
    (app, expected, actual, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_little_gas_after_the_lag_raises_one_warning_with_the_charts_share() {
    let (app, expected, actual, _flag) = seeded(&[0.02, 0.02]).await;
    let share = actual / expected * 100.0;
    assert!(
        share < 50.0,
        "expected {expected} Nm³, measured {actual} Nm³"
    );
    let all = wait_alarms(&app, Duration::from_secs(10)).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let a = &all[0];
    assert_eq!(a["estado"], "activa");
    assert_eq!(a["severidad"], "aviso");
    let value = a["valor"].as_f64().unwrap();
    assert!((value - share).abs() < 0.01, "{value} vs {share}: {a}");
    eprintln!("expected {expected:.3} Nm³, measured {actual:.3} Nm³, alarm {a}");
    // Another evaluation (a rule edit) does not raise it again.
    let (status, _) = call(
        &app,
        "PUT",
        "/api/dashboard/alarms/reglas/",
        Some(&app.token),
        Some(json!({"reglas": {RULE: {"histeresis": 5}}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(production_alarms(&app).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enough_gas_raises_no_production_warning() {
    let (app, expected, actual, _flag) = seeded(&[0.9; 5]).await;
    let share = actual / expected * 100.0;
    assert!(
        share > 60.0,
        "expected {expected} Nm³, measured {actual} Nm³"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(production_alarms(&app).await, Vec::<Value>::new());
    // The day was judged: a threshold above its share raises the warning.
    let (status, body) = call(
        &app,
        "PUT",
        "/api/dashboard/alarms/reglas/",
        Some(&app.token),
        Some(json!({"reglas": {RULE: {"umbral": share + 10.0}}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let all = wait_alarms(&app, Duration::from_secs(10)).await;
    assert_eq!(all.len(), 1, "{all:?}");
    eprintln!("expected {expected:.3} Nm³, measured {actual:.3} Nm³");
}
