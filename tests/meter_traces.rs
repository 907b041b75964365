//! Field traces published over MQTT to the real binary, one filling stage each, checked where
//! an operator reads them: `GET /api/dashboard/production/current/`. Each payload carries the
//! sensor's own `ts` (epoch seconds, in the past), which gives the intervals between samples.
//! Then `biogestor reindex` with the service stopped rebuilds the same figures.

mod common;

use std::time::Duration;

use common::{Appliance, Options, Publisher, run_bin};
use serde_json::{Value, json};

/// One trace: what the sensor sends and what the day must show.
struct Trace {
    name: &'static str,
    payloads: Vec<Value>,
    /// The day's gas, m³; `None`: no gas data (missing).
    want_m3: Option<f64>,
    /// Expected `descartes` entries (others zero).
    want_discards: &'static [(&'static str, u64)],
    want_partial: bool,
}

/// Epoch seconds `minutes_ago` minutes before now.
fn ago(minutes_ago: i64) -> i64 {
    chrono::Utc::now().timestamp() - minutes_ago * 60
}

/// Counter values `step` minutes apart, ending now.
fn counter(values: &[f64], step: i64) -> Vec<Value> {
    let n = values.len() as i64;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"gas_total_m3": v, "ts": ago((n - i as i64) * step)}))
        .collect()
}

fn traces() -> Vec<Trace> {
    let resent = vec![
        json!({"gas_total_m3": 1234.50, "ts": ago(40)}),
        json!({"gas_total_m3": 1234.60, "ts": ago(20)}),
        json!({"gas_total_m3": 1234.55, "ts": ago(30)}), // re-sent late with its own ts
        json!({"gas_total_m3": 1234.70, "ts": ago(10)}),
    ];
    let flow: Vec<Value> = (0..5)
        .map(|i| json!({"caudal_gas_lmin": 6.0, "ts": ago(100 - 20 * i)}))
        .collect();
    let mut deltas = Vec::new();
    for i in 0..100 {
        let p = json!({"caudal_gas": 0.01, "ts": ago(120 - i)});
        deltas.push(p.clone());
        if i % 20 == 7 {
            deltas.push(p); // a QoS 1 redelivery: the same message again
        }
    }
    vec![
        Trace {
            name: "counter re-sent out of order",
            payloads: resent,
            want_m3: Some(0.20),
            want_discards: &[("out_of_order", 1)],
            want_partial: false,
        },
        Trace {
            name: "counter jitter",
            payloads: counter(&[1500.000, 1499.999, 1500.002], 10),
            want_m3: Some(0.002),
            want_discards: &[("jitter", 1)],
            want_partial: false,
        },
        Trace {
            name: "one glitch",
            payloads: counter(&[1234.5, 99999.0, 1234.6], 10),
            want_m3: Some(0.1),
            want_discards: &[("glitch", 1)],
            want_partial: false,
        },
        Trace {
            name: "L/min every 20 min (15-min gap limit)",
            payloads: flow,
            want_m3: None,
            want_discards: &[],
            want_partial: false,
        },
        Trace {
            name: "5 % of caudal_gas redelivered",
            payloads: deltas,
            want_m3: Some(1.0),
            want_discards: &[("duplicate", 5)],
            want_partial: false,
        },
        Trace {
            name: "genuine reset",
            payloads: counter(&[10.0, 10.5, 11.0, 0.2, 0.7], 10),
            want_m3: Some(1.7),
            want_discards: &[],
            want_partial: false,
        },
        Trace {
            name: "meter replaced",
            payloads: counter(&[500.0, 500.2, 7000.0, 7000.1, 7000.3], 10),
            want_m3: Some(0.5),
            want_discards: &[("meter_change", 1)],
            want_partial: true,
        },
    ]
}

async fn new_stage(app: &Appliance) -> u64 {
    let body = json!({"material_type": "bovino", "material_amount_kg": 1000,
                      "material_humidity_pct": 87, "added_water_m3": 1.5, "temperature_c": 35});
    let resp = app
        .client()
        .post(app.url("/api/dashboard/fillings/"))
        .json(&body)
        .send()
        .await
        .expect("create stage");
    assert_eq!(resp.status().as_u16(), 201);
    let v: Value = resp.json().await.expect("stage json");
    v["id"].as_u64().expect("stage id")
}

/// Today's entry of a production response: (gas the meter counted in m³, missing, partial,
/// discards, minutes, method). These traces are about what the meter counted; the normal
/// cubic metres of the comparison are checked in `tests/normal_volume.rs`.
fn today_of(prod: &Value) -> (f64, bool, bool, Value, u64, Value) {
    let a = &prod["actual"];
    let last = a["days"].as_array().expect("days").len() - 1;
    (
        a["daily_biogas_m3_medido"][last].as_f64().expect("gas"),
        a["missing"][last].as_bool().expect("missing"),
        a["parcial"][last].as_bool().expect("parcial"),
        a["descartes"][last].clone(),
        a["minutos_sin_datos"][last].as_u64().expect("minutes"),
        a["metodo"][last].clone(),
    )
}

fn check(t: &Trace, prod: &Value) {
    let (m3, missing, partial, discards, minutes, method) = today_of(prod);
    eprintln!(
        "| {} | {} | missing={missing} parcial={partial} minutos_sin_datos={minutes} \
         metodo={method} descartes={discards} |",
        t.name,
        if missing {
            "missing".to_string()
        } else {
            format!("{m3:.3} m³")
        },
    );
    match t.want_m3 {
        Some(want) => {
            assert!(!missing, "{}: measured", t.name);
            assert!((m3 - want).abs() < 1e-9, "{}: {m3} m³, want {want}", t.name);
        }
        None => {
            assert!(missing, "{}: no gas data is missing, not zero", t.name);
            assert_eq!(m3, 0.0);
            assert_eq!(method, Value::Null);
            assert_eq!(prod["summary"]["days_missing"], json!(1));
        }
    }
    assert_eq!(partial, t.want_partial, "{}", t.name);
    for reason in [
        "duplicate",
        "out_of_order",
        "jitter",
        "glitch",
        "meter_change",
    ] {
        let want = t
            .want_discards
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n);
        assert_eq!(discards[reason], json!(want), "{}: {reason}", t.name);
        assert_eq!(
            prod["summary"]["descartes"][reason],
            json!(want),
            "{}: summary {reason}",
            t.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_trace_shows_the_true_figure_and_survives_a_rebuild() {
    let mut app = Appliance::start(Options::default());
    let traces = traces();
    let mut published = 0u64;
    let mut stages = Vec::new();
    for (i, t) in traces.iter().enumerate() {
        let stage = new_stage(&app).await;
        let mut p = Publisher::sensor(app.mqtt_port, &format!("trace-{i}")).await;
        for payload in &t.payloads {
            p.publish(&format!("sensores/traza{i}"), payload.to_string())
                .await;
        }
        let n = t.payloads.len() as u64;
        assert_eq!(p.wait_acked(n, Duration::from_secs(10)).await, n);
        published += n;
        assert_eq!(
            app.wait_readings(published, Duration::from_secs(10)).await,
            published
        );
        let prod = app.get_json("/api/dashboard/production/current/").await;
        assert_eq!(prod["stage"]["id"], json!(stage));
        check(t, &prod);
        stages.push(stage);
    }
    let mut before = Vec::new();
    for s in &stages {
        before.push(
            app.get_json(&format!("/api/dashboard/production/{s}/"))
                .await,
        );
    }

    // The rebuild refuses to run beside the service, then rebuilds the same figures.
    let config = app.config_path.to_str().expect("path").to_string();
    let (status, out) = run_bin(&["reindex", "--config", &config], &[], app.dir.path());
    assert!(!status.success() && out.contains("in use"), "{out}");
    app.signal("TERM", Duration::from_secs(10));
    let (status, out) = run_bin(&["reindex", "--config", &config], &[], app.dir.path());
    assert!(status.success(), "{out}");
    assert!(out.contains(&format!("from {published} readings")), "{out}");
    app.restart();
    for (s, old) in stages.iter().zip(&before) {
        let now = app
            .get_json(&format!("/api/dashboard/production/{s}/"))
            .await;
        // Minutes without data grow with the time of day; everything else is the same.
        for key in [
            "daily_biogas_m3",
            "cumulative_biogas_m3",
            "daily_biogas_m3_medido",
            "daily_biogas_nm3",
            "nm3_estimado",
            "missing",
            "parcial",
            "descartes",
            "metodo",
            "readings",
        ] {
            assert_eq!(now["actual"][key], old["actual"][key], "stage {s}: {key}");
        }
        assert_eq!(now["summary"]["descartes"], old["summary"]["descartes"]);
    }
    let last = traces.len() - 1;
    check(
        &traces[last],
        &app.get_json("/api/dashboard/production/current/").await,
    );
}
