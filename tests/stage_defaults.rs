//! Filling defaults as the original system documented them, on the real binary: the digester
//! temperature defaults to the measured mean of the last 24 h (else 35 °C) and the answer says
//! which was used; the number defaults to the next free one; a number in use is refused with a
//! message naming the next free one.

mod common;

use std::time::Duration;

use common::{Appliance, Options, Publisher};
use serde_json::{Value, json};

async fn create(app: &Appliance, body: Value) -> (u16, Value) {
    let resp = app
        .client()
        .post(app.url("/api/dashboard/fillings/"))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn cattle() -> Value {
    json!({"material_type": "bovino", "material_amount_kg": 1000, "material_humidity_pct": 87})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temperature_defaults_to_measured_mean_else_35_and_numbers_to_next_free() {
    let app = Appliance::start(Options::default());

    // No temperature typed, none measured: 35 °C, said to be the default.
    let (status, first) = create(&app, cattle()).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["temperature_c"], json!(35.0));
    assert_eq!(first["temperature_source"], json!("predeterminada"));
    assert_eq!(first["number"], json!(1));

    // The digester sensor reports 30 and 32 °C: the next stage starts at their mean.
    let sensor = Publisher::sensor(app.mqtt_port, "termo").await;
    sensor.publish("Prueba", r#"{"temperatura": 30.0}"#).await;
    sensor.publish("Prueba", r#"{"temperatura": 32.0}"#).await;
    assert_eq!(app.wait_readings(2, Duration::from_secs(10)).await, 2);
    let (status, second) = create(&app, cattle()).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["temperature_c"], json!(31.0), "{second}");
    assert_eq!(second["temperature_source"], json!("medida"));
    assert_eq!(second["temperature_readings"], json!(2));
    assert_eq!(second["number"], json!(2), "next free number");

    // A typed temperature wins and is said to be typed.
    let mut typed = cattle();
    typed["temperature_c"] = json!(37.5);
    typed["number"] = json!(10);
    let (status, third) = create(&app, typed).await;
    assert_eq!(status, 201, "{third}");
    assert_eq!(third["temperature_c"], json!(37.5));
    assert_eq!(third["temperature_source"], json!("indicada"));

    // A number in use: 400 with a detail naming the next free one (after the highest, 10).
    let mut dup = cattle();
    dup["number"] = json!(2);
    let (status, body) = create(&app, dup).await;
    assert_eq!(status, 400, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("número 2") && detail.contains("11"),
        "{body}"
    );
    // Nothing was created by the refused request: the next default is 11.
    let (status, fourth) = create(&app, cattle()).await;
    assert_eq!((status, &fourth["number"]), (201, &json!(11)), "{fourth}");
}
