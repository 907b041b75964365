//! The embedded broker under abuse: connection limits, a connect storm, topic permissions,
//! oversize packets, unthrottled publishers, password guessing, SIGTERM under load, and the
//! refusal counters of `/api/dashboard/stats/` and `/metrics`.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::mqtt::{self, ConnectSpec, Creds, Limits, Mq, MqOpts, Outcome, Target};
use common::{Appliance, Options};
use rumqttc::QoS;
use serde_json::{Value, json};

/// Every refusal reason, in the order of `mqtt_rechazos`.
const REASONS: [&str; 12] = [
    "bad_credentials",
    "not_authorized",
    "protocol_version",
    "identifier_rejected",
    "broker_full",
    "user_full",
    "throttled",
    "topic_not_allowed",
    "topic_not_stored",
    "oversize",
    "subscribe_not_allowed",
    "stopping",
];

fn start(limits: Limits) -> (Appliance, Target) {
    let app = Appliance::start(mqtt::appliance_options(limits));
    let target = mqtt::appliance_target(&app, limits);
    (app, target)
}

fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn assert_outcome(app: &Appliance, name: &str, o: &Outcome) {
    let target = mqtt::scenario(name).target;
    assert!(
        o.pass,
        "{name}: expected {target:?}, got {:?}\n--- service log (last lines) ---\n{}",
        o.text,
        tail(&app.log(), 30)
    );
}

async fn run(app: &Appliance, t: &Target, name: &str) -> Outcome {
    let s = mqtt::scenario(name);
    let o = mqtt::bounded(Duration::from_secs(50), (s.run)(t.clone())).await;
    eprintln!("{name}: {}", o.text);
    assert_outcome(app, name, &o);
    o
}

/// `mqtt_rechazos` of the dashboard stats (Null when absent).
async fn refusals(app: &Appliance) -> Value {
    app.stats().await["mqtt_rechazos"].clone()
}

/// `biogestor_mqtt_refused_total{reason="..."}` of every reason present in `/metrics`.
async fn refused_metrics(app: &Appliance) -> Value {
    let resp = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(resp.status().as_u16(), 200, "/metrics");
    let text = resp.text().await.expect("metrics body");
    let mut out = serde_json::Map::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("biogestor_mqtt_refused_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once('}') else {
            continue;
        };
        let reason = labels
            .split(',')
            .find_map(|l| l.trim().strip_prefix("reason=\""))
            .and_then(|r| r.strip_suffix('"'));
        if let (Some(reason), Ok(v)) = (reason, value.trim().parse::<f64>()) {
            out.insert(reason.to_string(), json!(v as u64));
        }
    }
    Value::Object(out)
}

/// Waits until `reason` reaches `n` in the stats (or 5 s) and returns the whole object.
async fn wait_refusal(app: &Appliance, reason: &str, n: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = refusals(app).await;
        if r[reason].as_u64() >= Some(n) || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_limit_refuses_with_code_3() {
    let (app, t) = start(Limits::default());
    run(&app, &t, "per_user_limit").await;
    let r = wait_refusal(&app, "user_full", 1).await;
    assert_eq!(r["user_full"], json!(1), "user_full counted once: {r}");
    assert_eq!(r["broker_full"], json!(0), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_storm_200_with_max_64() {
    // One user may hold every connection, so each refusal is the broker being full.
    let limits = Limits {
        per_user: 256,
        ..Limits::default()
    };
    let (app, t) = start(limits);
    run(&app, &t, "connect_storm_200").await;
    let r = wait_refusal(&app, "broker_full", 136).await;
    assert_eq!(r["broker_full"], json!(136), "136 refusals counted: {r}");
    assert_eq!(
        common::http_get_status(app.http_port, "/healthz"),
        Some(200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_matrix() {
    let (app, t) = start(Limits::default());
    let mut failures = Vec::new();
    for name in [
        "perm_sensor_subscribe_all",
        "perm_sensor_publish_outside",
        "perm_observer_receives_sensor",
        "perm_hashed_topics",
    ] {
        let s = mqtt::scenario(name);
        let o = mqtt::bounded(Duration::from_secs(30), (s.run)(t.clone())).await;
        if !o.pass {
            failures.push(format!("{name}: expected {:?}, got {:?}", s.target, o.text));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n--- service log (last lines) ---\n{}",
        failures.join("\n"),
        tail(&app.log(), 30)
    );
    // The sensor's `otro/tema` and the hashed sensor's `Prueba`; the sensor's `#`.
    let r = wait_refusal(&app, "topic_not_allowed", 2).await;
    assert_eq!(r["topic_not_allowed"], json!(2), "{r}");
    assert_eq!(r["subscribe_not_allowed"], json!(1), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_is_discarded_and_the_connection_kept() {
    let (app, t) = start(Limits::default());
    run(&app, &t, "oversize_then_valid").await;
    let r = wait_refusal(&app, "oversize", 1).await;
    assert_eq!(r["oversize"], json!(1), "one oversize publish counted: {r}");
    let stats = app.stats().await;
    assert_eq!(stats["lecturas_total"], json!(15), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unthrottled_publishers_lose_nothing_acknowledged() {
    let (app, t) = start(Limits::default());
    let r = mqtt::unthrottled(&t, 8, Duration::from_secs(15))
        .await
        .unwrap_or_else(|e| panic!("load run: {e}\n{}", tail(&app.log(), 30)));
    eprintln!("unthrottled: {r:?}");
    assert!(r.acked > 0, "nothing acknowledged: {r:?}");
    assert_eq!(
        r.missing,
        0,
        "acknowledged readings missing from the store: {r:?}\n{}",
        tail(&app.log(), 30)
    );
    assert!(r.accepted >= r.acked, "{r:?}");
    let stats = app.stats().await;
    assert_eq!(
        stats["mensajes_perdidos"],
        json!(0),
        "the ingest dropped readings: {stats}"
    );
    assert_eq!(r.disconnects, 0, "publishers were disconnected: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_throttles_the_address() {
    let (app, t) = start(Limits::default());
    let (answers, right) = mqtt::throttle_answers(&t).await;
    let limit = t.limits.auth_failures;
    assert!(
        answers[..limit].iter().all(|a| a == "CONNACK 4"),
        "the first {limit} wrong passwords get 4: {}",
        mqtt::runs(&answers)
    );
    assert!(
        answers[limit + 1..].iter().all(|a| a == "CONNACK 3"),
        "once throttled, attempts get 3: {}",
        mqtt::runs(&answers)
    );
    assert_eq!(
        right, "CONNACK 3",
        "the right password from a throttled address gets 3 too"
    );
    // Another source address is not throttled.
    let mut other = mqtt::Raw::open_from([127, 0, 0, 2].into(), t.port)
        .await
        .expect("connect from 127.0.0.2");
    other
        .send(&ConnectSpec::v311("fuerza-otra", Some(&t.sensor)).bytes())
        .await
        .expect("send");
    let answer = mqtt::describe_connack(&other.read(Duration::from_secs(5)).await);
    assert_eq!(answer, "CONNACK 0", "127.0.0.2 is not throttled");
    other.disconnect().await;

    let threes = answers.iter().filter(|a| *a == "CONNACK 3").count() as u64 + 1;
    let fours = answers.iter().filter(|a| *a == "CONNACK 4").count() as u64;
    let r = wait_refusal(&app, "throttled", threes).await;
    assert_eq!(r["throttled"], json!(threes), "{r}");
    assert_eq!(r["bad_credentials"], json!(fours), "{r}");
}

/// Each reason once or twice, then the exact counters in the stats and in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_counters_in_stats_and_metrics() {
    let limits = Limits {
        max_connections: 4,
        per_user: 2,
        auth_failures: 10,
    };
    // sensor3 is a table with a password only: it publishes to the reading topics.
    let users = "sensor2 = \"clave-dos\"\n\
                 [mqtt.users.sensor3]\npassword = \"clave-tres\"\n\
                 [mqtt.users.estado]\npassword = \"clave-estado\"\npublish = [\"Prueba\", \"estado/#\"]\n";
    let app = Appliance::start(Options {
        mqtt_extra: mqtt::mqtt_toml(limits),
        users_extra: users.into(),
        ..Options::default()
    });
    let port = app.mqtt_port;
    let sensor = mqtt::sensor();
    let sensor2 = Creds::new("sensor2", "clave-dos");
    let sensor3 = Creds::new("sensor3", "clave-tres");
    let estado = Creds::new("estado", "clave-estado");
    let attempt = |id: &str, creds: Option<&Creds>| ConnectSpec::v311(id, creds);

    // bad_credentials ×2, not_authorized ×1
    let a = mqtt::raw_attempt(port, &attempt("c1", Some(&Creds::new("sensor", "mala")))).await;
    assert_eq!(a, "CONNACK 4", "wrong password");
    let a = mqtt::raw_attempt(port, &attempt("c2", Some(&Creds::new("nadie", "x")))).await;
    assert_eq!(a, "CONNACK 4", "unknown user");
    let a = mqtt::raw_attempt(port, &attempt("c3", None)).await;
    assert_eq!(a, "CONNACK 5", "no user name");
    // protocol_version ×2
    let mut v5 = attempt("c4", Some(&sensor));
    v5.level = 5;
    assert_eq!(mqtt::raw_attempt(port, &v5).await, "CONNACK 1", "MQTT 5");
    let mut v31 = attempt("c5", Some(&sensor));
    v31.protocol = "MQIsdp";
    v31.level = 3;
    assert_eq!(mqtt::raw_attempt(port, &v31).await, "CONNACK 1", "MQTT 3.1");
    // identifier_rejected ×1
    let mut zero = attempt("", Some(&sensor));
    zero.clean = false;
    assert_eq!(
        mqtt::raw_attempt(port, &zero).await,
        "CONNACK 2",
        "empty id, persistent"
    );
    // user_full ×1: a third connection of `sensor` (limit 2)
    let mut held = Vec::new();
    for id in ["u1", "u2"] {
        let (a, raw) = mqtt::raw_connect(port, &attempt(id, Some(&sensor))).await;
        held.push(raw.unwrap_or_else(|| panic!("sensor connection {id}: {a}")));
    }
    assert_eq!(
        mqtt::raw_attempt(port, &attempt("u3", Some(&sensor))).await,
        "CONNACK 3",
        "third connection of one user"
    );
    // broker_full ×1: four connections (limit 4), a fifth user
    for (id, c) in [("u4", &estado), ("u5", &sensor2)] {
        let (a, raw) = mqtt::raw_connect(port, &attempt(id, Some(c))).await;
        held.push(raw.unwrap_or_else(|| panic!("connection {id}: {a}")));
    }
    assert_eq!(
        mqtt::raw_attempt(port, &attempt("u6", Some(&sensor3))).await,
        "CONNACK 3",
        "fifth connection with max_connections = 4"
    );
    for r in held {
        r.disconnect().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // topic_not_allowed, subscribe_not_allowed, oversize: one sensor connection
    let mut o = MqOpts::new("c-sensor", &sensor);
    o.max_packet = 4 << 20;
    let mq = Mq::connect(port, o).await.expect("sensor connects");
    mq.publish_acked("otro/tema", QoS::AtLeastOnce, false, mqtt::reading(1))
        .await
        .expect("PUBACK outside the allowed topics");
    assert_eq!(
        mq.subscribe("#", QoS::AtLeastOnce).await,
        Ok(0x80),
        "a sensor may not subscribe"
    );
    let big = vec![b'x'; 100 * 1024];
    mq.publish_acked("Prueba", QoS::AtLeastOnce, false, big)
        .await
        .expect("PUBACK for an oversize publish");
    mq.publish_acked("Prueba", QoS::AtLeastOnce, false, mqtt::reading(2))
        .await
        .expect("still connected after the oversize publish");
    mq.disconnect().await;
    // topic_not_stored: `estado` may publish to `estado/#`, which is no reading topic
    let mq = Mq::connect(port, MqOpts::new("c-estado", &estado))
        .await
        .expect("estado connects");
    mq.publish_acked(
        "estado/bomba",
        QoS::AtLeastOnce,
        false,
        b"encendida".to_vec(),
    )
    .await
    .expect("PUBACK");
    mq.disconnect().await;
    // A table without `publish` may publish to the reading topics.
    let mq = Mq::connect(port, MqOpts::new("c-sensor3", &sensor3))
        .await
        .expect("sensor3 connects");
    mq.publish_acked("Prueba", QoS::AtLeastOnce, false, mqtt::reading(3))
        .await
        .expect("PUBACK");
    mq.disconnect().await;

    let expected = json!({
        "bad_credentials": 2,
        "not_authorized": 1,
        "protocol_version": 2,
        "identifier_rejected": 1,
        "broker_full": 1,
        "user_full": 1,
        "throttled": 0,
        "topic_not_allowed": 1,
        "topic_not_stored": 1,
        "oversize": 1,
        "subscribe_not_allowed": 1,
        "stopping": 0,
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = refusals(&app).await;
    while got != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = refusals(&app).await;
    }
    assert_eq!(got, expected, "mqtt_rechazos of /api/dashboard/stats/");
    let metrics = refused_metrics(&app).await;
    for reason in REASONS {
        assert_eq!(
            metrics[reason], expected[reason],
            "biogestor_mqtt_refused_total{{reason=\"{reason}\"}} in /metrics: {metrics}"
        );
    }
    assert_eq!(
        app.wait_readings(2, Duration::from_secs(5)).await,
        2,
        "the valid readings of sensor and sensor3 stored"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.stats().await["lecturas_total"],
        json!(2),
        "nothing else stored (not the oversize, outside-topic or estado/ messages)"
    );
}

/// SIGTERM while a publisher sends QoS 1 at ~200/s, rounds `first..first + count` of 20
/// (two tests of 10, since each stop may drain for up to 3 s): every reading whose PUBACK
/// reached the client, before or after the signal, is stored after the restart.
async fn sigterm_rounds(first: u64, count: u64) {
    const SPACE: u64 = 1_000_000;
    let limits = Limits::default();
    let mut app = Appliance::start(Options {
        commit_interval_ms: 1000,
        ..mqtt::appliance_options(limits)
    });
    let probe = mqtt::appliance_target(&app, limits)
        .store
        .expect("administrator token");
    let started = Instant::now();
    let mut all_acked = BTreeSet::new();
    for round in first..first + count {
        let mq = Arc::new(
            Mq::connect(
                app.mqtt_port,
                MqOpts::new(&format!("term-{round}"), &mqtt::sensor()),
            )
            .await
            .unwrap_or_else(|e| panic!("round {round}: connect: {e}\n{}", tail(&app.log(), 30))),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let publisher = {
            let (mq, stop) = (mq.clone(), stop.clone());
            tokio::spawn(async move {
                let t0 = Instant::now();
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) && !mq.is_closed() {
                    mq.publish(
                        "Prueba",
                        QoS::AtLeastOnce,
                        false,
                        mqtt::reading(round * SPACE + n),
                    )
                    .await;
                    n += 1;
                    let due = t0 + Duration::from_millis(n * 5);
                    tokio::time::sleep_until(due.into()).await;
                }
            })
        };
        // 150–450 ms of traffic before the signal, different in each round; the publisher
        // goes on until the broker closes its connection.
        tokio::time::sleep(Duration::from_millis(150 + (round * 97) % 300)).await;
        let (back, status) = tokio::task::spawn_blocking(move || {
            let status = app.signal("TERM", Duration::from_secs(15));
            (app, status)
        })
        .await
        .expect("signal task");
        app = back;
        assert!(
            status.success(),
            "round {round}: exit after SIGTERM: {status}\n{}",
            tail(&app.log(), 30)
        );
        mq.wait_closed(Duration::from_secs(5)).await;
        stop.store(true, Ordering::SeqCst);
        let _ = publisher.await;
        let acked: Vec<u64> = mq
            .acked_indexes()
            .into_iter()
            .map(|i| round * SPACE + i)
            .collect();
        all_acked.extend(acked.iter().copied());
        let back = tokio::task::spawn_blocking(move || {
            app.restart();
            app
        })
        .await
        .expect("restart task");
        app = back;
        let stored: BTreeSet<u64> = probe.seqs().await.into_iter().collect();
        let missing: Vec<u64> = all_acked
            .iter()
            .filter(|s| !stored.contains(s))
            .copied()
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} acknowledged readings lost across SIGTERM (first {:?}); {} acknowledged this round",
            missing.len(),
            &missing[..missing.len().min(10)],
            acked.len()
        );
    }
    eprintln!(
        "SIGTERM rounds {first}..{}: {} acknowledged readings, all stored, in {:?}",
        first + count,
        all_acked.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_rounds_1_to_10() {
    sigterm_rounds(0, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_rounds_11_to_20() {
    sigterm_rounds(10, 10).await;
}
