//! The sensor registry seen from outside: real MQTT clients connect, publish and are refused,
//! and `/api/dashboard/sensors/` shows each one — connected or not, counts, fields — also after
//! a restart of the appliance.

mod common;

use std::time::{Duration, Instant};

use common::{Appliance, MQTT_USER, Options, Publisher};
use serde_json::{Value, json};

const SENSORS: &str = "/api/dashboard/sensors/";

/// The entry of `client_id`, if listed.
async fn sensor(app: &Appliance, client_id: &str) -> Option<Value> {
    let list = app.get_json(SENSORS).await;
    list["sensores"]
        .as_array()
        .expect("sensores is a list")
        .iter()
        .find(|s| s["client_id"] == json!(client_id))
        .cloned()
}

/// Polls until the entry of `client_id` satisfies `ok` (the registry is fed asynchronously),
/// returning it; fails with the last answer after `timeout`.
async fn wait_sensor(
    app: &Appliance,
    client_id: &str,
    timeout: Duration,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let found = sensor(app, client_id).await;
        if let Some(s) = &found
            && ok(s)
        {
            return s.clone();
        }
        if Instant::now() > deadline {
            panic!(
                "{client_id}: not as expected after {timeout:?}; last: {found:?}; all: {}",
                app.get_json(SENSORS).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_site_time(v: &Value) -> bool {
    v.as_str().is_some_and(|t| t.ends_with("-05:00"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_registry_answers_with_the_site_time() {
    let app = Appliance::start(Options::default());
    let body = app.get_json(SENSORS).await;
    assert_eq!(body["sensores"], json!([]), "{body}");
    assert!(is_site_time(&body["ahora"]), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publishing_sensor_is_listed_and_remembered_across_a_restart() {
    let mut app = Appliance::start(Options::default());
    let id = "granja-sensor1";
    let mut p = Publisher::sensor(app.mqtt_port, id).await;
    for i in 0..3 {
        let reading = json!({"presion": 1001.0 + f64::from(i), "temperatura": 31.5});
        p.publish("Prueba", reading.to_string()).await;
    }
    assert_eq!(p.wait_acked(3, Duration::from_secs(10)).await, 3);
    assert_eq!(app.wait_readings(3, Duration::from_secs(10)).await, 3);

    let s = wait_sensor(&app, id, Duration::from_secs(10), |s| {
        s["aceptados"] == json!(3)
    })
    .await;
    assert_eq!(s["conectado"], json!(true), "{s}");
    assert_eq!(s["usuario"], json!(MQTT_USER), "{s}");
    assert!(
        s["direccion"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{s}"
    );
    assert!(is_site_time(&s["ultima_conexion"]), "{s}");
    assert!(is_site_time(&s["ultimo_mensaje"]), "{s}");
    assert_eq!(s["rechazados"], json!(0), "{s}");
    assert_eq!(s["ultimo_rechazo"], Value::Null, "{s}");
    let campos: Vec<&str> = s["campos"]
        .as_array()
        .expect("campos")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        campos.contains(&"presion") && campos.contains(&"temperatura"),
        "{s}"
    );
    assert!(
        s["silencio_s"].as_u64().is_some_and(|v| v < 60),
        "a sensor that just sent is not silent: {s}"
    );

    p.client.disconnect().await.expect("disconnect");
    let s = wait_sensor(&app, id, Duration::from_secs(10), |s| {
        s["conectado"] == json!(false)
    })
    .await;
    assert_eq!(s["aceptados"], json!(3), "{s}");

    // A restart drops every connection but not the sensor's history.
    let status = app.signal("TERM", Duration::from_secs(15));
    assert!(status.success(), "{status}");
    app.restart();
    let s = sensor(&app, id)
        .await
        .expect("still listed after a restart");
    assert_eq!(s["conectado"], json!(false), "{s}");
    assert_eq!(s["aceptados"], json!(3), "{s}");
    assert_eq!(s["usuario"], json!(MQTT_USER), "{s}");
    assert!(is_site_time(&s["ultimo_mensaje"]), "{s}");
    assert!(
        s["campos"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("presion"))),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_counted_against_the_client_id_with_their_reason() {
    let app = Appliance::start(Options::default());
    let wrong = tokio::spawn({
        let port = app.mqtt_port;
        async move { Publisher::connect(port, "granja-intruso", Some((MQTT_USER, "mala"))).await }
    });
    assert!(wrong.await.is_err(), "a wrong password must not connect");
    let s = wait_sensor(&app, "granja-intruso", Duration::from_secs(10), |s| {
        s["rechazados"].as_u64() >= Some(1)
    })
    .await;
    assert_eq!(s["ultimo_rechazo"], json!("bad_credentials"), "{s}");
    assert!(is_site_time(&s["ultimo_rechazo_en"]), "{s}");
    assert_eq!(s["conectado"], json!(false), "{s}");
    assert_eq!(s["aceptados"], json!(0), "{s}");
    assert_eq!(s["silencio_s"], Value::Null, "never sent anything: {s}");

    // A payload that is not JSON is dropped and attributed to its sender.
    let mut p = Publisher::sensor(app.mqtt_port, "granja-roto").await;
    p.publish("Prueba", b"esto no es json".to_vec()).await;
    p.publish("Prueba", json!({"presion": 1000.0}).to_string())
        .await;
    assert_eq!(p.wait_acked(2, Duration::from_secs(10)).await, 2);
    let s = wait_sensor(&app, "granja-roto", Duration::from_secs(10), |s| {
        s["rechazados"] == json!(1) && s["aceptados"] == json!(1)
    })
    .await;
    assert_eq!(s["ultimo_rechazo"], json!("invalid_payload"), "{s}");
    assert_eq!(s["conectado"], json!(true), "{s}");
}
