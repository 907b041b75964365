//! Normal cubic metres end to end: a sensor trace with pressure and temperature published over
//! MQTT to the real binary, read back where the operator reads it,
//! `GET /api/dashboard/production/current/`; and the stage humidity limits.

mod common;

use std::time::Duration;

use common::{Appliance, Options, Publisher, run_bin};
use serde_json::{Value, json};

/// Epoch seconds `minutes_ago` minutes before now.
fn ago(minutes_ago: i64) -> i64 {
    chrono::Utc::now().timestamp() - minutes_ago * 60
}

/// Bogotá (2,640 m), a manometer on the bag in mbar (gauge), gas temperature from the sensor.
fn bogota() -> Options {
    Options {
        extra_toml: "altitude_m = 2640\npressure_reading = \"gauge\"\npressure_unit = \"mbar\"\n\
                     gas_temperature = \"sensor\"\ngas_humidity = \"saturated\"\n"
            .into(),
        ..Options::default()
    }
}

async fn post_stage(app: &Appliance, body: Value) -> (u16, Value) {
    let resp = app
        .client()
        .post(app.url("/api/dashboard/fillings/"))
        .json(&body)
        .send()
        .await
        .expect("create stage");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

fn close(v: &Value, want: f64, tol: f64, what: &str) {
    let got = v.as_f64().unwrap_or_else(|| panic!("{what}: {v}"));
    assert!((got - want).abs() <= tol, "{what}: got {got}, want {want}");
}

/// Two 1 m³ intervals at Bogotá with their own pressure and temperature:
///
/// ambient P = 1013.25·(1 − 2.25577e-5·2640)^5.25588 = 733.78 hPa = 73.378 kPa.
/// 1. Counter 100 → 101 with 10 mbar gauge, 25 °C, 60 % CH4 sent with the first reading:
///    P = 73.378 + 1.0 = 74.378 kPa, p_w(25) = 3.16174 kPa,
///    Nm³ = (74.378 − 3.16174)/101.325 · 273.15/298.15 = 0.702851 · 0.916150 = 0.643917.
/// 2. Counter 101 → 102 with 20 mbar, 15 °C sent with it (calidad 60 % still fresh):
///    P = 75.378 kPa, p_w(15) = 1.70198 kPa,
///    Nm³ = (75.378 − 1.70198)/101.325 · 273.15/288.15 = 0.727127 · 0.947944 = 0.689276.
///
/// Measured 2.000 m³; 1.333192 Nm³; methane 0.60 × 1.333192 = 0.799915 Nm³ CH4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_shows_normal_and_measured_cubic_metres() {
    let mut app = Appliance::start(bogota());
    let (status, _) = post_stage(
        &app,
        json!({"material_type": "bovino", "material_amount_kg": 1000,
               "material_humidity_pct": 87, "added_water_m3": 1.0, "temperature_c": 35}),
    )
    .await;
    assert_eq!(status, 201);
    let payloads = [
        json!({"presion": 10.0, "temperatura": 25.0, "calidad": 60.0, "gas_total_m3": 100.0,
               "ts": ago(30)}),
        json!({"gas_total_m3": 101.0, "ts": ago(20)}),
        json!({"presion": 20.0, "temperatura": 15.0, "gas_total_m3": 102.0, "ts": ago(10)}),
    ];
    let mut p = Publisher::sensor(app.mqtt_port, "nm3").await;
    for payload in &payloads {
        p.publish("sensores/gas", payload.to_string()).await;
    }
    assert_eq!(p.wait_acked(3, Duration::from_secs(10)).await, 3);
    assert_eq!(app.wait_readings(3, Duration::from_secs(10)).await, 3);

    let prod = app.get_json("/api/dashboard/production/current/").await;
    let (a, s) = (&prod["actual"], &prod["summary"]);
    let last = a["days"].as_array().expect("days").len() - 1;
    close(&a["daily_biogas_m3_medido"][last], 2.0, 1e-9, "measured m³");
    close(&a["daily_biogas_nm3"][last], 1.333192, 1e-5, "Nm³");
    // The first version's field holds the comparison unit, Nm³.
    close(
        &a["daily_biogas_m3"][last],
        1.333192,
        1e-5,
        "daily_biogas_m3",
    );
    close(&a["daily_metano_nm3"][last], 0.799915, 1e-5, "methane");
    assert_eq!(a["nm3_estimado"][last], json!(false));
    assert_eq!(s["unidad"], json!("Nm³"));
    close(&s["actual_total_m3_medido"], 2.0, 1e-9, "total measured");
    close(&s["actual_total_nm3"], 1.333192, 1e-5, "total Nm³");
    close(&s["actual_total_m3"], 1.333192, 1e-5, "actual_total_m3");
    close(&s["actual_metano_nm3"], 0.799915, 1e-5, "total methane");
    // Yields: 109.2 kg VS; biogas 1.333192/109.2 = 0.012209, methane 0.799915/109.2 = 0.007325.
    close(
        &s["rendimiento_biogas_nm3_por_kg_sv"],
        0.012209,
        1e-6,
        "biogas/kg VS",
    );
    close(
        &s["yield_m3_per_kg_vs"],
        0.012209,
        1e-6,
        "yield_m3_per_kg_vs",
    );
    close(
        &s["rendimiento_metano_nm3_por_kg_sv"],
        0.007325,
        1e-6,
        "CH4/kg VS",
    );
    // The difference compares Nm³ with Nm³.
    let expected = s["expected_to_date_m3"].as_f64().expect("expected");
    let diff = s["difference_pct"].as_f64().expect("difference");
    let actual = s["actual_total_nm3"].as_f64().expect("actual");
    let want = (actual - expected) / expected * 100.0;
    assert!(
        (diff - want).abs() <= 1e-9 * want.abs().max(1.0),
        "{diff} vs {want}"
    );

    // The curve advanced by today's measured mean (25 + 15)/2 = 20 °C, from the loading time.
    let e = &prod["expected"];
    assert_eq!(e["params"]["temperatura_modelo"], json!("medida"));
    assert_eq!(e["temperatura_medida"][0], json!(true));
    close(&e["temperatura_c"][0], 20.0, 1e-9, "day 1 temperature");
    let created = prod["stage"]["created_at"].as_str().expect("created_at");
    assert_eq!(
        e["inicio"].as_str(),
        Some(created),
        "the curve starts at loading"
    );
    // A (18.2 Nm³ with the Latin-American bovine B0 0.10) is where the curve ends.
    close(&e["A_biogas_m3"], 18.2, 1e-9, "A");

    // The site was really at sea level: fix the setting and rebuild. Ambient 101.325 kPa:
    // 1. (102.325 − 3.16174)/101.325 · 273.15/298.15 = 0.978665 · 0.916150 = 0.896604
    // 2. (103.325 − 1.70198)/101.325 · 273.15/288.15 = 1.002941 · 0.947944 = 0.950732
    // = 1.847336 Nm³ from the same 2 m³.
    app.signal("TERM", Duration::from_secs(10));
    let text = std::fs::read_to_string(&app.config_path).expect("config");
    std::fs::write(
        &app.config_path,
        text.replace("altitude_m = 2640", "altitude_m = 0"),
    )
    .expect("write config");
    let config = app.config_path.to_str().expect("path").to_string();
    let (status, out) = run_bin(&["reindex", "--config", &config], &[], app.dir.path());
    assert!(status.success(), "{out}");
    app.restart();
    let prod = app.get_json("/api/dashboard/production/current/").await;
    let a = &prod["actual"];
    close(
        &a["daily_biogas_m3_medido"][last],
        2.0,
        1e-9,
        "measured m³ after reindex",
    );
    close(
        &a["daily_biogas_nm3"][last],
        1.847336,
        1e-5,
        "Nm³ after reindex",
    );
    assert_eq!(a["nm3_estimado"][last], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn humidity_of_zero_or_one_hundred_percent_is_refused() {
    let app = Appliance::start(Options::default());
    for humidity in [0, 100] {
        let (status, body) = post_stage(
            &app,
            json!({"material_type": "bovino", "material_amount_kg": 1000,
                   "material_humidity_pct": humidity, "temperature_c": 30}),
        )
        .await;
        assert_eq!(status, 400, "{humidity}: {body}");
        let msg = body["material_humidity_pct"][0]
            .as_str()
            .unwrap_or_default();
        assert!(
            msg.contains("mayor que 0 %") && msg.contains("menor que 100 %"),
            "{body}"
        );
    }
    let (status, stage) = post_stage(
        &app,
        json!({"material_type": "bovino", "material_amount_kg": 1000,
               "material_humidity_pct": 87, "temperature_c": 30}),
    )
    .await;
    assert_eq!(status, 201);
    let id = stage["id"].as_u64().expect("id");
    for humidity in [0, 100] {
        let resp = app
            .client()
            .patch(app.url(&format!("/api/dashboard/fillings/{id}/")))
            .json(&json!({"material_humidity_pct": humidity}))
            .send()
            .await
            .expect("patch");
        assert_eq!(resp.status().as_u16(), 400, "{humidity}");
    }
    // Nothing else changed.
    let now = app
        .get_json(&format!("/api/dashboard/fillings/{id}/"))
        .await;
    assert_eq!(now["material_humidity_pct"], json!(87.0));
}
