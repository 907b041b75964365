//! The bridge to a central broker against a real Mosquitto started by each test: every
//! committed reading arrives despite a central outage and a SIGKILL of the appliance
//! (duplicates only with the same seq), the backlog is sent at the configured rate, TLS with a
//! test CA, and refused credentials shown in the status API without a tight retry loop.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use rumqttc::QoS;
use serde_json::{Value, json};

use common::central::{Central, Received, SITE, subscribe};
use common::{Appliance, Options, Publisher};

fn bridge_opts(url: &str, more: &str) -> Options {
    Options {
        extra_toml: format!("\n[bridge]\nurl = \"{url}\"\nsite_id = \"{SITE}\"\n{more}\n"),
        ..Options::default()
    }
}

/// Publishes `n` numbered readings at `per_s`, starting at number `from`.
async fn publish(p: &Publisher, from: u64, n: u64, per_s: u64) {
    let start = Instant::now();
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / per_s as f64);
        tokio::time::sleep_until(due.into()).await;
        let body = json!({"temperatura": 35.0, "n": (from + i) as f64});
        let _ = p
            .client
            .try_publish("Prueba", QoS::AtLeastOnce, false, body.to_string());
    }
}

/// POSTs `body` as the administrator; the answer must be a success.
async fn post_json(app: &Appliance, path: &str, body: Value) -> Value {
    let resp = app
        .client()
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .expect("POST");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap_or(Value::Null)
}

async fn bridge_status(app: &Appliance) -> Value {
    app.get_json("/api/puente/").await
}

/// Waits until nothing is queued (after the readings just published are committed: the
/// tests commit every 200 ms).
async fn wait_drained(app: &Appliance, timeout: Duration) -> Value {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let deadline = Instant::now() + timeout;
    loop {
        let s = bridge_status(app).await;
        if s["pendientes"] == 0 && s["conectado"] == true || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Checks that the central side has every reading the appliance stored, and that a reading
/// received twice carries the same seq both times (and one seq names one reading).
async fn assert_complete(app: &Appliance, got: &Received) {
    let stored = app.all_readings().await;
    let mut seq_of: HashMap<u64, u64> = HashMap::new();
    let mut n_of: HashMap<u64, u64> = HashMap::new();
    for r in got.readings() {
        let n = r["n"].as_f64().expect("n") as u64;
        let seq = r["seq"].as_u64().expect("seq");
        assert_eq!(
            *seq_of.entry(n).or_insert(seq),
            seq,
            "reading {n} with two seqs"
        );
        assert_eq!(
            *n_of.entry(seq).or_insert(n),
            n,
            "seq {seq} on two readings"
        );
    }
    let missing: Vec<u64> = stored
        .iter()
        .map(|r| r["n"].as_f64().expect("n") as u64)
        .filter(|n| !seq_of.contains_key(n))
        .collect();
    assert!(
        missing.is_empty(),
        "{} stored readings never reached the central broker: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert_eq!(
        seq_of.len(),
        stored.len(),
        "the central side has readings the appliance does not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_reading_reaches_the_central_broker_across_outages_and_a_sigkill() {
    let mut central = Central::start(Some(("finca1", "clave-central")), false);
    let got = subscribe(central.port, Some(("finca1", "clave-central")), None).await;
    let url = format!("mqtt://127.0.0.1:{}", central.port);
    let mut app = Appliance::start(bridge_opts(
        &url,
        "username = \"finca1\"\npassword = \"clave-central\"\nmax_backfill_per_s = 400",
    ));
    let t0 = Instant::now();
    // 0-10 s: live; 10-30 s: the central broker is down; 40 s: SIGKILL and restart; 60 s: end.
    let p = Publisher::sensor(app.mqtt_port, "sensor-a").await;
    publish(&p, 0, 500, 50).await;
    central.pause();
    publish(&p, 500, 1000, 50).await;
    let waiting = bridge_status(&app).await;
    assert_eq!(waiting["conectado"], false, "{waiting}");
    assert!(
        waiting["pendientes"].as_u64().unwrap_or(0) > 500,
        "{waiting}"
    );
    central.resume();
    // A filling stage and a report: the restarted bridge sends their daily figures and record.
    let stage = post_json(
        &app,
        "/api/dashboard/fillings/",
        json!({"material_type": "bovino", "material_amount_kg": 1000,
            "material_humidity_pct": 87, "added_water_m3": 1.5, "temperature_c": 35}),
    )
    .await;
    let stage_id = stage["id"].as_u64().expect("stage id");
    publish(&p, 1500, 500, 50).await;
    let report = post_json(&app, "/api/dashboard/report/create/", json!({})).await;
    let report_id = report["id"].as_u64().expect("report id");
    app.signal("KILL", Duration::from_secs(5));
    drop(p);
    app.restart();
    let p = Publisher::sensor(app.mqtt_port, "sensor-a").await;
    publish(&p, 2000, 1000, 50).await;
    eprintln!("published for {:?}", t0.elapsed());
    let s = wait_drained(&app, Duration::from_secs(60)).await;
    assert_eq!(s["pendientes"], 0, "{s}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stored = app.stats().await["lecturas_total"].as_u64().unwrap_or(0);
    assert!(
        stored >= 2900,
        "most published readings were stored: {stored}"
    );
    assert_complete(&app, &got).await;
    // The stage's day, counted as the production chart counts it, and the report record.
    let diario = got.last("diario").expect("daily figures on .../diario");
    assert_eq!(diario["stage"], stage_id, "{diario}");
    let day = &diario["dias"][0];
    assert!(day["lecturas"].as_u64().unwrap_or(0) >= 400, "{diario}");
    assert_eq!(day["sin_datos"], true, "no gas was measured: {diario}");
    let reportes = got
        .last("reportes")
        .expect("report records on .../reportes");
    assert_eq!(reportes["reportes"][0]["id"], report_id, "{reportes}");
    assert_eq!(reportes["reportes"][0]["stage"], stage_id, "{reportes}");
    eprintln!(
        "stored {stored}, received {} (duplicates {}), status {s}",
        got.len(),
        got.len() as u64 - stored
    );
    // /metrics shows the bridge too.
    let metrics = app
        .client()
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    let text = metrics.text().await.expect("text");
    assert!(text.contains("biogestor_bridge_connected 1"), "{text}");
    assert!(
        text.contains("biogestor_bridge_readings_waiting 0"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_is_sent_at_the_configured_rate_while_live_readings_flow() {
    let mut central = Central::start(None, false);
    let port = central.port;
    central.pause();
    let url = format!("mqtt://127.0.0.1:{port}");
    let app = Appliance::start(bridge_opts(&url, "max_backfill_per_s = 200"));
    let p = Publisher::sensor(app.mqtt_port, "sensor-b").await;
    publish(&p, 0, 1000, 1000).await;
    assert!(app.wait_readings(1000, Duration::from_secs(20)).await >= 1000);
    central.resume();
    let got = subscribe(port, None, None).await;
    // Live readings during the backfill.
    let live = publish(&p, 1000, 100, 20);
    let drained = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while got.len() < 1100 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::join!(live, drained);
    assert_complete(&app, &got).await;
    let arrivals = got.0.lock().unwrap().clone();
    let backlog: Vec<Instant> = arrivals
        .iter()
        .filter(|(_, r)| r["n"].as_f64().unwrap_or(0.0) < 1000.0)
        .map(|(t, _)| *t)
        .collect();
    let span = *backlog.iter().max().unwrap() - *backlog.iter().min().unwrap();
    // 1000 readings at 200/s: about 5 s (the first batch of 100 goes at once).
    assert!(
        span >= Duration::from_millis(4000),
        "backlog sent in {span:?}"
    );
    // Live readings were not held back behind the whole backlog.
    let first_live = arrivals
        .iter()
        .filter(|(_, r)| r["n"].as_f64().unwrap_or(0.0) >= 1000.0)
        .map(|(t, _)| *t)
        .min()
        .expect("live readings");
    assert!(
        first_live < *backlog.iter().max().unwrap(),
        "live readings waited for the backlog"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_over_tls_to_a_broker_signed_by_a_test_ca() {
    let central = Central::start(None, true);
    let got = subscribe(central.port, None, Some(central.ca())).await;
    let url = format!("mqtts://127.0.0.1:{}", central.port);
    let app = Appliance::start(bridge_opts(
        &url,
        &format!("ca_file = \"{}\"", central.ca().display()),
    ));
    let p = Publisher::sensor(app.mqtt_port, "sensor-c").await;
    publish(&p, 0, 50, 100).await;
    assert_eq!(app.wait_readings(50, Duration::from_secs(10)).await, 50);
    let s = wait_drained(&app, Duration::from_secs(20)).await;
    assert_eq!(s["tls"], true, "{s}");
    assert_eq!(s["pendientes"], 0, "{s}");
    assert_complete(&app, &got).await;
    assert!(got.len() >= 50);
    let estado = got.last("estado").expect("retained status");
    assert_eq!(estado["estado"], "en_linea", "{estado}");
    // A new filling stage reaches the central side in the retained list of stages.
    let body = json!({"material_type": "bovino", "material_amount_kg": 1000,
        "material_humidity_pct": 87, "added_water_m3": 1.5, "temperature_c": 35});
    let resp = app
        .client()
        .post(app.url("/api/dashboard/fillings/"))
        .json(&body)
        .send()
        .await
        .expect("create stage");
    assert!(resp.status().is_success(), "{}", resp.status());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list = got.last("llenados").unwrap_or(Value::Null);
        let stages = list["llenados"].as_array().cloned().unwrap_or_default();
        if stages
            .iter()
            .any(|s| s["material_type"] == "bovino" && s["active"] == true)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no stage list with the new stage: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // An alarm reaches the central side in the retained alarm state, and so does its clearing.
    let resp = app
        .client()
        .put(app.url("/api/dashboard/alarms/reglas/"))
        .json(&json!({"reglas": {"temperatura_alta": {"duracion_s": 1}}}))
        .send()
        .await
        .expect("rules");
    assert!(resp.status().is_success(), "{}", resp.status());
    for t in [50.0, 50.0, 50.0, 50.0] {
        p.publish("Prueba", json!({ "temperatura": t }).to_string())
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let raised = |v: &Value| {
        v["activas"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["regla"] == "temperatura_alta"))
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !got.last("alarmas").is_some_and(|v| raised(&v)) {
        assert!(
            Instant::now() < deadline,
            "no alarm state with the alarm: {:?}",
            got.last("alarmas")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got.last("alarmas").unwrap_or_default()["peor"], "alarma");
    for _ in 0..6 {
        p.publish("Prueba", json!({ "temperatura": 35.0 }).to_string())
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while got.last("alarmas").is_none_or(|v| raised(&v)) {
        assert!(
            Instant::now() < deadline,
            "the cleared alarm stayed: {:?}",
            got.last("alarmas")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A clean stop replaces the retained status with the offline one.
    let mut app = app;
    app.signal("TERM", Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.last("estado").map(|e| e["estado"].clone()) != Some(json!("desconectado")) {
        assert!(Instant::now() < deadline, "no offline status after a stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The same broker trusted by the SHA-256 of its own certificate instead of the CA.
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(central.dir.path().join("server.pem"))
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let pin = text
        .trim()
        .split('=')
        .nth(1)
        .expect("fingerprint")
        .to_string();
    let before = got.len();
    let pinned = Appliance::start(bridge_opts(&url, &format!("pin_sha256 = \"{pin}\"")));
    let p = Publisher::sensor(pinned.mqtt_port, "sensor-e").await;
    publish(&p, 1000, 20, 100).await;
    assert_eq!(pinned.wait_readings(20, Duration::from_secs(10)).await, 20);
    let s = wait_drained(&pinned, Duration::from_secs(20)).await;
    assert_eq!(s["pendientes"], 0, "{s}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < before + 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        got.len(),
        before + 20,
        "the pinned bridge forwarded its readings"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_shown_and_not_retried_in_a_loop() {
    let central = Central::start(Some(("finca1", "clave-central")), false);
    let url = format!("mqtt://127.0.0.1:{}", central.port);
    let app = Appliance::start(bridge_opts(
        &url,
        "username = \"finca1\"\npassword = \"equivocada\"",
    ));
    let p = Publisher::sensor(app.mqtt_port, "sensor-d").await;
    publish(&p, 0, 10, 100).await;
    assert_eq!(app.wait_readings(10, Duration::from_secs(10)).await, 10);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = bridge_status(&app).await;
    while s["credenciales_rechazadas"] != true && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        s = bridge_status(&app).await;
    }
    assert_eq!(s["credenciales_rechazadas"], true, "{s}");
    assert_eq!(s["conectado"], false, "{s}");
    assert!(
        s["ultimo_error"]
            .as_str()
            .unwrap_or("")
            .contains("contraseña"),
        "{s}"
    );
    assert!(s["proximo_intento"].is_string(), "{s}");
    assert_eq!(s["pendientes"], 10, "{s}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let attempts = central.log().matches("not authorised").count();
    assert_eq!(
        attempts,
        1,
        "one refused attempt in 5 s:\n{}",
        central.log()
    );
    // The readings stay queued for when the password is fixed.
    assert_eq!(bridge_status(&app).await["pendientes"], 10);
}

/// A measurement, not a check: an hour of readings at 10/s (36,000) stored while the central
/// broker is down, then the time the bridge takes to send them, the forwarded rate and the
/// bytes per reading on the wire. `BRIDGE_BACKFILL_PER_S` sets `max_backfill_per_s` (default
/// 200, the shipped value; a high value measures the sustained forwarding rate):
///
/// ```text
/// cargo test --release --test bridge -- --ignored --nocapture measure_backfill
/// BRIDGE_BACKFILL_PER_S=100000 cargo test --release --test bridge -- --ignored --nocapture measure_backfill
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_backfill_after_an_hour_outage() {
    const N: u64 = 36_000;
    let rate: u64 = std::env::var("BRIDGE_BACKFILL_PER_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut central = Central::start(None, false);
    let port = central.port;
    central.pause();
    let url = format!("mqtt://127.0.0.1:{port}");
    let app = Appliance::start(bridge_opts(&url, &format!("max_backfill_per_s = {rate}")));
    let p = Publisher::sensor(app.mqtt_port, "sensor-m").await;
    for chunk in 0..N / 1000 {
        publish(&p, chunk * 1000, 1000, 4000).await;
        app.wait_readings((chunk + 1) * 1000, Duration::from_secs(30))
            .await;
    }
    assert_eq!(app.wait_readings(N, Duration::from_secs(30)).await, N);
    central.resume();
    let got = subscribe(port, None, None).await;
    let start = Instant::now();
    let s = wait_drained(&app, Duration::from_secs(3600)).await;
    let took = start.elapsed();
    assert_eq!(s["pendientes"], 0, "{s}");
    while (got.len() as u64) < N && start.elapsed() < took + Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_complete(&app, &got).await;
    eprintln!(
        "backfill of {N} readings at max_backfill_per_s = {rate}: {:.1} s ({:.0} readings/s), \
         {} bytes per reading (payload), {} messages",
        took.as_secs_f64(),
        N as f64 / took.as_secs_f64(),
        s["bytes_por_lectura"],
        s["mensajes"]
    );
}
