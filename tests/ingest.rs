//! MQTT → store → WebSocket with real clients against the real binary.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Appliance, MQTT_PASS, MQTT_USER, Options, Publisher, WsClient};
use serde_json::{Value, json};

const N: u64 = 5_000;

fn seqs(readings: &[Value]) -> BTreeSet<u64> {
    readings
        .iter()
        .filter_map(|r| r["seq"].as_f64())
        .map(|v| v as u64)
        .collect()
}

async fn five_thousand_with_ws_clients(ws_clients: usize) {
    let app = Appliance::start(Options::default());
    let mut clients = Vec::new();
    for _ in 0..ws_clients {
        clients.push(WsClient::connect(&app).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut publisher = Publisher::sensor(app.mqtt_port, "pub-5000").await;
    for seq in 0..N {
        let payload =
            json!({"presion": 1006.0, "temperatura": 35.0, "caudal_gas": 0.001, "seq": seq});
        publisher.publish("Prueba", payload.to_string()).await;
    }
    assert_eq!(
        publisher.wait_acked(N, Duration::from_secs(60)).await,
        N,
        "all PUBACKs"
    );
    assert_eq!(app.wait_readings(N, Duration::from_secs(30)).await, N);
    // Settle one more commit interval: no duplicate may appear later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stored = app.all_readings().await;
    assert_eq!(
        stored.len() as u64,
        N,
        "exactly one stored reading per message"
    );
    assert_eq!(seqs(&stored), (0..N).collect(), "every message stored once");
    assert_eq!(app.stats().await["lecturas_total"], json!(N));
    for c in &clients {
        assert_eq!(
            c.wait_for(N as usize, Duration::from_secs(20)).await,
            N as usize
        );
        let got: BTreeSet<u64> = c
            .messages
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m["type"] == "sensor_data")
            .map(|m| m["seq"].as_f64().unwrap() as u64)
            .collect();
        assert_eq!(
            got,
            (0..N).collect(),
            "each WebSocket client receives every reading"
        );
        assert_eq!(c.count("lagged"), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn qos1_5000_no_websocket() {
    five_thousand_with_ws_clients(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn qos1_5000_one_websocket() {
    five_thousand_with_ws_clients(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn qos1_5000_three_websockets() {
    five_thousand_with_ws_clients(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_pub_5000_lines() {
    let app = Appliance::start(Options::default());
    let ws = WsClient::connect(&app).await;
    let mut child = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &app.mqtt_port.to_string()])
        .args([
            "-u", MQTT_USER, "-P", MQTT_PASS, "-q", "1", "-t", "Prueba", "-l",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub must be installed (the test command installs mosquitto-clients)");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for seq in 0..N {
            writeln!(stdin, "{{\"presion\":1005.5,\"calidad\":60,\"seq\":{seq}}}").expect("write");
        }
    }
    assert!(child.wait().expect("mosquitto_pub").success());
    assert_eq!(app.wait_readings(N, Duration::from_secs(30)).await, N);
    let stored = app.all_readings().await;
    assert_eq!(stored.len() as u64, N);
    assert_eq!(seqs(&stored), (0..N).collect());
    assert_eq!(
        ws.wait_for(N as usize, Duration::from_secs(10)).await,
        N as usize
    );
}

/// Payloads that must be refused without touching the valid messages around them.
fn bad_corpus() -> Vec<(&'static str, Vec<u8>)> {
    let oversize = format!("{{\"presion\":1,\"relleno\":\"{}\"}}", "x".repeat(250_000));
    let fields: Vec<String> = (0..10_000).map(|i| format!("\"f{i}\":{i}")).collect();
    let many_fields = format!("{{{}}}", fields.join(","));
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200));
    vec![
        ("not JSON", b"esto no es json".to_vec()),
        ("JSON array", b"[1006, 35]".to_vec()),
        ("JSON string", b"\"1006\"".to_vec()),
        ("NaN", b"{\"presion\": NaN}".to_vec()),
        ("Infinity", b"{\"temperatura\": Infinity}".to_vec()),
        (
            "number as string",
            b"{\"presion\": \"1006\", \"temperatura\": \"35\"}".to_vec(),
        ),
        ("over the size limit", oversize.into_bytes()),
        ("10,000 fields", many_fields.into_bytes()),
        ("deep array nesting", deep.into_bytes()),
        ("deep object nesting", deep_obj.into_bytes()),
        (
            "invalid UTF-8",
            b"{\"presion\": 1006, \"id\": \"\xff\xfe\xfd\"}".to_vec(),
        ),
        ("empty", Vec::new()),
        ("absurd value", b"{\"humedad\": 250}".to_vec()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_are_counted_and_harmless() {
    let app = Appliance::start(Options {
        max_payload_bytes: 200_000,
        max_fields: 64,
        ..Options::default()
    });
    let ws = WsClient::connect(&app).await;
    let mut p = Publisher::sensor(app.mqtt_port, "corpus").await;
    let corpus = bad_corpus();
    let mut sent = 0;
    for (i, (_, bad)) in corpus.iter().enumerate() {
        p.publish("Prueba", json!({"presion": 1000 + i, "seq": i}).to_string())
            .await;
        p.publish("Prueba", bad.clone()).await;
        sent += 2;
    }
    p.publish(
        "Prueba",
        json!({"presion": 999, "seq": corpus.len()}).to_string(),
    )
    .await;
    sent += 1;
    assert_eq!(p.wait_acked(sent, Duration::from_secs(20)).await, sent);
    let valid = corpus.len() as u64 + 1;
    assert_eq!(
        app.wait_readings(valid, Duration::from_secs(10)).await,
        valid
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut stats = app.stats().await;
    while stats["mensajes_rechazados"] != json!(corpus.len())
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stats = app.stats().await;
    }
    assert_eq!(
        stats["mensajes_rechazados"],
        json!(corpus.len()),
        "one rejection per bad payload: {stats}"
    );
    let stored = app.all_readings().await;
    assert_eq!(
        seqs(&stored),
        (0..valid).collect(),
        "every valid message around the bad ones stored"
    );
    assert_eq!(
        ws.wait_for(valid as usize, Duration::from_secs(5)).await,
        valid as usize
    );

    // A packet beyond the broker's hard limit closes only that sender's connection.
    let rogue = Publisher::sensor(app.mqtt_port, "rogue").await;
    rogue.publish("Prueba", vec![b'{'; 2 << 20]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.publish("Prueba", json!({"presion": 998, "seq": 1000}).to_string())
        .await;
    assert_eq!(
        p.wait_acked(sent + 1, Duration::from_secs(10)).await,
        sent + 1
    );
    assert_eq!(
        app.wait_readings(valid + 1, Duration::from_secs(10)).await,
        valid + 1
    );
    assert_eq!(
        common::http_get_status(app.http_port, "/healthz"),
        Some(200)
    );
    // The rejection reasons reach the log (rate-limited, so at least the first one).
    assert!(app.log().contains("payload rejected"), "{}", app.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_checks_credentials() {
    let app = Appliance::start(Options::default());
    let wrong = tokio::spawn({
        let port = app.mqtt_port;
        async move { Publisher::connect(port, "bad-pass", Some((MQTT_USER, "wrong"))).await }
    });
    assert!(wrong.await.is_err(), "a wrong password must not connect");
    let anon = tokio::spawn({
        let port = app.mqtt_port;
        async move { Publisher::connect(port, "anon", None).await }
    });
    assert!(
        anon.await.is_err(),
        "anonymous clients refused when allow_anonymous = false"
    );
    // Each refusal is logged with its CONNACK code and what to change.
    let log = app.log();
    assert!(
        log.contains("MQTT connection refused (CONNACK 4)") && log.contains("bad_credentials"),
        "{log}"
    );
    assert!(
        log.contains("MQTT connection refused (CONNACK 5)") && log.contains("allow_anonymous"),
        "{log}"
    );

    let open = Appliance::start(Options {
        allow_anonymous: true,
        ..Options::default()
    });
    let mut p = Publisher::connect(open.mqtt_port, "anon-ok", None).await;
    p.publish("sensores/digestor1", b"{\"presion\": 1001}".to_vec())
        .await;
    assert_eq!(p.wait_acked(1, Duration::from_secs(5)).await, 1);
    assert_eq!(open.wait_readings(1, Duration::from_secs(5)).await, 1);
    let r = open.all_readings().await;
    assert_eq!(r[0]["presion"], json!(1001.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_publishes_consistent_readings() {
    let app = Appliance::start(Options::default());
    let (status, out) = common::run_bin(
        &[
            "simulate",
            "--port",
            &app.mqtt_port.to_string(),
            "--username",
            MQTT_USER,
            "--password",
            MQTT_PASS,
            "--interval",
            "0.01",
            "--count",
            "50",
            "--mode",
            "both",
            "--seed",
            "42",
        ],
        &[],
        app.dir.path(),
    );
    assert!(status.success(), "{out}");
    assert!(out.contains("published 50 messages"), "{out}");
    assert_eq!(app.wait_readings(50, Duration::from_secs(10)).await, 50);
    let r = app.all_readings().await;
    let mut prev = 0.0;
    for x in &r {
        let total = x["gas_total_m3"].as_f64().unwrap();
        let delta = x["caudal_gas"].as_f64().unwrap();
        assert!(
            (total - prev - delta).abs() < 1e-9,
            "counter and delta agree"
        );
        prev = total;
        let p = x["presion"].as_f64().unwrap();
        assert!((998.0..=1014.0).contains(&p));
        assert!(x["temperatura"].as_f64().is_some() && x["humedad"].as_f64().is_some());
        assert!(x["calidad"].as_f64().is_some() && x["biol_total_m3"].as_f64().is_some());
    }
    // Duration stops it too, and a refused login is a clear failure.
    let (status, out) = common::run_bin(
        &[
            "simulate",
            "--port",
            &app.mqtt_port.to_string(),
            "--username",
            MQTT_USER,
            "--password",
            "mala",
            "--count",
            "1",
        ],
        &[],
        app.dir.path(),
    );
    assert!(!status.success(), "{out}");
    assert!(out.contains("MQTT connection"), "{out}");
    let (status, out) = common::run_bin(
        &[
            "simulate",
            "--port",
            &app.mqtt_port.to_string(),
            "--username",
            MQTT_USER,
            "--password",
            MQTT_PASS,
            "--interval",
            "0.2",
            "--duration",
            "1",
            "--mode",
            "delta",
            "--qos",
            "0",
        ],
        &[],
        app.dir.path(),
    );
    assert!(status.success(), "{out}");
    let n: u64 = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(
        (4..=6).contains(&n),
        "about 5 messages in 1 s at 0.2 s: {out}"
    );
}
