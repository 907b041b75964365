//! Field time on the real binary: a clock stuck in 2020 (rehearsed with
//! `clock.start_offset_s`, the appliance's own correction of its time source) is shown as not
//! synchronised; readings are keyed by the appliance's time (never a sensor's 2099 `ts`) and
//! marked; when the clock jumps — an administrator setting it from the browser, or NTP
//! synchronising (rehearsed with `clock.sync_check = "file"` and the flag file appearing) —
//! the readings and stages of the period are re-dated onto their real days, and the tokens
//! issued before keep working.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::accounts::{call, tokens};
use common::{ADMIN_PASS, ADMIN_USER, Appliance, Options, Publisher};
use serde_json::{Value, json};

/// 2020-06-01T12:00:00-05:00 (noon in Bogotá): where the rehearsed clock starts.
const STUCK_S: i64 = 1_591_030_800;
/// 2099-01-01T00:00:00Z: a sensor clock far in the future.
const SENSOR_2099_S: i64 = 4_070_908_800;

fn real_today() -> String {
    let tz: chrono_tz::Tz = "America/Bogota".parse().expect("tz");
    chrono::Utc::now()
        .with_timezone(&tz)
        .date_naive()
        .to_string()
}

/// An appliance whose clock reads 2020, with NTP state taken from `flag` and the browser's
/// time applied by the appliance itself.
fn stuck_in_2020(flag: &Path) -> Appliance {
    let offset = STUCK_S - chrono::Utc::now().timestamp();
    Appliance::start(Options {
        extra_toml: format!(
            "[clock]\nsync_check = \"file\"\nsync_file = \"{}\"\nset_clock = \"appliance\"\n\
             start_offset_s = {offset}\n",
            flag.display()
        ),
        ..Options::default()
    })
}

async fn send(app: &Appliance, method: &str, path: &str, body: Value) -> (u16, Value) {
    call(app, method, path, Some(&app.token), Some(body)).await
}

/// Stage, readings and a second session made while the clock reads 2020; returns the refresh
/// token of that session.
async fn work_while_stuck(app: &Appliance) -> String {
    let (status, stage) = send(
        app,
        "POST",
        "/api/dashboard/fillings/",
        json!({"material_type": "bovino", "material_amount_kg": 1000, "material_humidity_pct": 87}),
    )
    .await;
    assert_eq!(status, 201, "{stage}");
    assert!(
        stage["date"]
            .as_str()
            .unwrap_or("")
            .starts_with("2020-06-01"),
        "the stuck clock's day: {stage}"
    );
    // The original system's test sensor: `timestamp` and `Calidad`, with a clock in 2099.
    let sensor = Publisher::sensor(app.mqtt_port, "medidor").await;
    for i in 0..7 {
        let ts = SENSOR_2099_S + i * 60;
        sensor
            .publish(
                "Prueba",
                format!(r#"{{"caudal_gas": 10.0, "Calidad": 60.5, "timestamp": {ts}}}"#),
            )
            .await;
    }
    assert_eq!(app.wait_readings(7, Duration::from_secs(10)).await, 7);
    let (_, refresh) = tokens(app, ADMIN_USER, ADMIN_PASS).await;
    refresh
}

fn assert_all_readings(readings: &[Value], day: &str, mark: &str) {
    assert_eq!(readings.len(), 7, "{readings:?}");
    for r in readings {
        let ts = r["ts"].as_str().unwrap_or_default();
        assert!(ts.starts_with(day), "reading on {day}: {r}");
        assert_eq!(r["reloj"], json!(mark), "{r}");
        assert_eq!(r["calidad"], json!(60.5), "`Calidad` is `calidad`: {r}");
        assert!(
            r.get("timestamp").is_none() && r.get("Calidad").is_none(),
            "aliases are not extra channels: {r}"
        );
    }
}

/// What must hold once the clock is right: readings, production, stage, tokens.
async fn assert_redated(app: &Appliance, refresh: &str) {
    let today = real_today();
    assert_all_readings(&app.all_readings().await, &today, "corregida");
    let stats = app.stats().await;
    assert!(
        stats["ultima_lectura"]
            .as_str()
            .unwrap_or("")
            .starts_with(&today),
        "last reading today, not 2020 or 2099: {stats}"
    );
    let production = app.get_json("/api/dashboard/production/current/").await;
    assert_eq!(production["stage"]["date"], json!(today), "{production}");
    assert_eq!(
        production["summary"]["days_elapsed"],
        json!(1),
        "not 2,000 days elapsed: {production}"
    );
    // What the meter counted (the Nm³ figures depend on the site's altitude).
    let total = production["summary"]["actual_total_m3_medido"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(
        (total - 70.0).abs() < 1e-6,
        "all 70 m³ on the real day: {production}"
    );
    let (status, stages) = send(app, "GET", "/api/dashboard/fillings/", Value::Null).await;
    assert_eq!(status, 200);
    let stage = &stages["fillings"][0];
    assert_eq!(stage["date"], json!(today), "{stage}");
    assert!(
        stage["created_at"]
            .as_str()
            .unwrap_or("")
            .starts_with(&today),
        "{stage}"
    );
    // Tokens issued while the clock read 2020 still work: the access token of the start and
    // the refresh token of the later session.
    let (status, body) = send(app, "GET", "/api/dashboard/stats/", Value::Null).await;
    assert_eq!(status, 200, "access token from before the jump: {body}");
    let (status, body) = call(
        app,
        "POST",
        "/api/refrescar-token/",
        None,
        Some(json!({"refresh": refresh})),
    )
    .await;
    assert_eq!(status, 200, "refresh token from before the jump: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_sets_a_clock_stuck_in_2020_and_the_period_is_redated() {
    let flag_dir = tempfile::tempdir().expect("tmp");
    let flag = flag_dir.path().join("synchronized");
    let app = stuck_in_2020(&flag);

    let stats = app.stats().await;
    assert_eq!(
        stats["reloj"]["estado"],
        json!("no_sincronizado"),
        "{stats}"
    );
    assert!(
        stats["reloj"]["motivo"]
            .as_str()
            .unwrap_or("")
            .contains("2026"),
        "{stats}"
    );
    assert_eq!(stats["reloj"]["se_puede_ajustar"], json!(true));
    let (_, health) = send(&app, "GET", "/healthz", Value::Null).await;
    assert_eq!(health["clock_ok"], json!(false), "{health}");
    assert_eq!(health["reloj"]["estado"], json!("no_sincronizado"));

    let refresh = work_while_stuck(&app).await;
    // Keyed by the appliance's (wrong, but marked) time, never by the sensor's 2099.
    assert_all_readings(&app.all_readings().await, "2020-06-01", "no_sincronizada");
    let stats = app.stats().await;
    assert!(
        stats["ultima_lectura"]
            .as_str()
            .unwrap_or("")
            .starts_with("2020-06-01"),
        "{stats}"
    );

    // Bad requests change nothing.
    let (status, body) = send(&app, "POST", "/api/admin/reloj/", json!({})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = send(
        &app,
        "POST",
        "/api/admin/reloj/",
        json!({"ahora_ms": 1_000_000_000_000i64}),
    )
    .await;
    assert_eq!(status, 400, "a browser in 2001 is refused: {body}");
    assert!(body["detail"].as_str().unwrap_or("").contains("plausible"));

    let now_ms = chrono::Utc::now().timestamp_millis();
    let (status, body) = send(
        &app,
        "POST",
        "/api/admin/reloj/",
        json!({"ahora_ms": now_ms}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("7 lecturas"),
        "{body}"
    );
    assert_eq!(body["reloj"]["estado"], json!("ajustado"));
    assert_eq!(
        body["reloj"]["ultimo_salto"]["lecturas_corregidas"],
        json!(7)
    );
    assert_eq!(
        body["reloj"]["ultimo_salto"]["llenados_corregidos"],
        json!(1)
    );
    let jump = body["reloj"]["ultimo_salto"]["salto_s"]
        .as_f64()
        .unwrap_or(0.0);
    let expected = (now_ms / 1000 - STUCK_S) as f64;
    assert!((jump - expected).abs() < 120.0, "{jump} vs {expected}");
    assert_redated(&app, &refresh).await;

    // New readings are trusted and land today.
    let sensor = Publisher::sensor(app.mqtt_port, "despues").await;
    sensor.publish("Prueba", r#"{"caudal_gas": 1.0}"#).await;
    assert_eq!(app.wait_readings(8, Duration::from_secs(10)).await, 8);
    let last = app.all_readings().await;
    let newest = last
        .iter()
        .max_by_key(|r| r["ts"].as_str().unwrap_or("").to_string())
        .expect("reading");
    assert!(
        newest["ts"]
            .as_str()
            .unwrap_or("")
            .starts_with(&real_today())
    );
    assert!(newest.get("reloj").is_none(), "{newest}");

    // Once NTP synchronises, the browser may no longer set the time.
    std::fs::write(&flag, b"").expect("flag");
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.stats().await["reloj"]["estado"] != json!("sincronizado") {
        assert!(Instant::now() < deadline, "NTP state not noticed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = send(
        &app,
        "POST",
        "/api/admin/reloj/",
        json!({"ahora_ms": now_ms}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("NTP"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ntp_step_redates_the_period_and_keeps_the_sessions() {
    let flag_dir = tempfile::tempdir().expect("tmp");
    let flag = flag_dir.path().join("synchronized");
    let app = stuck_in_2020(&flag);
    let refresh = work_while_stuck(&app).await;
    assert_all_readings(&app.all_readings().await, "2020-06-01", "no_sincronizada");

    // NTP synchronises: the clock steps six years ahead.
    std::fs::write(&flag, b"").expect("flag");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, stats) = send(&app, "GET", "/api/dashboard/stats/", Value::Null).await;
        assert_eq!(status, 200, "the token of before the step: {stats}");
        if stats["reloj"]["ultimo_salto"]["lecturas_corregidas"] == json!(7) {
            assert_eq!(stats["reloj"]["estado"], json!("sincronizado"));
            break;
        }
        assert!(Instant::now() < deadline, "no re-dating: {stats}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_redated(&app, &refresh).await;
}
