//! Alarms end to end: sensor traces published over MQTT to the real binary raise exactly one
//! alarm each and clear it with hysteresis; acknowledgement and restart keep the state; the
//! rules API refuses bad edits with a Spanish `detail`; transitions reach the live feed.
//! Rule durations are shortened through the rules API so the traces take seconds.

mod common;

use std::time::{Duration, Instant};

use common::accounts::{assert_detail, call, user_with};
use common::{Appliance, Options, Publisher, WsClient};
use serde_json::{Value, json};

const ALARMS: &str = "/api/dashboard/alarms/";
const RULES: &str = "/api/dashboard/alarms/reglas/";

async fn put_rules(app: &Appliance, body: Value) -> (u16, Value) {
    call(app, "PUT", RULES, Some(&app.token), Some(body)).await
}

/// Sets `rule`'s fields, asserting the edit is accepted.
async fn set_rule(app: &Appliance, rule: &str, fields: Value) {
    let (status, body) = put_rules(app, json!({ "reglas": { rule: fields } })).await;
    assert_eq!(status, 200, "{body}");
}

/// Every alarm of `rule`, active or in the history.
async fn alarms_of(app: &Appliance, rule: &str) -> Vec<Value> {
    let (status, body) = app.get(ALARMS).await;
    assert_eq!(status, 200, "{body}");
    let mut all: Vec<Value> = body["activas"].as_array().unwrap().clone();
    all.extend(body["historial"].as_array().unwrap().iter().cloned());
    all.into_iter().filter(|a| a["regla"] == rule).collect()
}

/// Waits until `rule` has an alarm in `estado`, returning every alarm of the rule.
async fn wait_state(app: &Appliance, rule: &str, estado: &str, timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let all = alarms_of(app, rule).await;
        if all.iter().any(|a| a["estado"] == estado) || Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Publishes `payload` on `topic` every `every` for `count` times.
async fn trace(p: &Publisher, topic: &str, payload: Value, count: usize, every: Duration) {
    for _ in 0..count {
        p.publish(topic, payload.to_string()).await;
        tokio::time::sleep(every).await;
    }
}

const STEP: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_install_has_the_digester_presets_enabled() {
    let app = Appliance::start(Options::default());
    let (status, body) = app.get(RULES).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["preset"], "tubular");
    let rule = |name: &str| {
        body["reglas"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["regla"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing: {body}"))
    };
    for r in body["reglas"].as_array().unwrap() {
        assert_eq!(r["habilitada"], true, "{r}");
    }
    assert_eq!(rule("temperatura_baja")["umbral"], 15.0);
    assert_eq!(rule("temperatura_baja")["duracion_s"], 600);
    assert_eq!(rule("temperatura_alta")["umbral"], 40.0);
    assert_eq!(rule("metano_bajo")["umbral"], 45.0);
    assert_eq!(rule("presion_alta")["severidad"], "crítica");
    assert_eq!(rule("sensor_silencioso")["umbral"], 30.0);
    // Choosing the heated preset moves the band, and it is kept across a restart.
    let (status, body) = put_rules(&app, json!({ "preset": "mesofilico" })).await;
    assert_eq!(status, 200, "{body}");
    let mut app = app;
    app.signal("TERM", Duration::from_secs(20));
    app.restart();
    let (_, body) = app.get(RULES).await;
    assert_eq!(body["preset"], "mesofilico");
    let low = body["reglas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["regla"] == "temperatura_baja")
        .unwrap()
        .clone();
    assert_eq!(low["umbral"], 30.0, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temperature_drifting_out_and_back_raises_one_alarm_and_clears_with_hysteresis() {
    let app = Appliance::start(Options::default());
    set_rule(
        &app,
        "temperatura_baja",
        json!({"duracion_s": 2, "histeresis": 1.0}),
    )
    .await;
    let ws = WsClient::connect(&app).await;
    let p = Publisher::sensor(app.mqtt_port, "temp").await;
    let t = "sensores/digestor";
    // One cold reading between normal ones raises nothing.
    trace(&p, t, json!({"temperatura": 20.0}), 2, STEP).await;
    trace(&p, t, json!({"temperatura": 8.0}), 1, STEP).await;
    trace(&p, t, json!({"temperatura": 20.0}), 6, STEP).await;
    assert!(alarms_of(&app, "temperatura_baja").await.is_empty());
    // Drifting out, staying out: one alarm.
    trace(&p, t, json!({"temperatura": 10.0}), 10, STEP).await;
    let all = wait_state(&app, "temperatura_baja", "activa", Duration::from_secs(5)).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["severidad"], "alarma");
    assert_eq!(all[0]["valor"], 10.0);
    assert!(all[0]["mensaje"].as_str().unwrap().contains("Temperatura"));
    // Back inside the band but within the hysteresis (15.5 < 15 + 1): still active.
    trace(&p, t, json!({"temperatura": 15.5}), 8, STEP).await;
    let all = alarms_of(&app, "temperatura_baja").await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["estado"], "activa", "{all:?}");
    // Clearly back: cleared, still one alarm.
    trace(&p, t, json!({"temperatura": 18.0}), 8, STEP).await;
    let all = wait_state(
        &app,
        "temperatura_baja",
        "despejada",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["estado"], "despejada");
    let events: Vec<Value> = ws
        .messages
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "alarm" && m["regla"] == "temperatura_baja")
        .cloned()
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["evento"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["activada", "despejada"], "{events:?}");
    // The readings themselves still reach the feed as before.
    assert!(ws.count("sensor_data") >= 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_methane_dip_raises_one_alarm_and_clears_with_hysteresis() {
    let app = Appliance::start(Options::default());
    set_rule(&app, "metano_bajo", json!({"duracion_s": 2})).await;
    let p = Publisher::sensor(app.mqtt_port, "ch4").await;
    let t = "sensores/gas";
    trace(&p, t, json!({"calidad": 60.0}), 3, STEP).await;
    trace(&p, t, json!({"calidad": 40.0}), 8, STEP).await;
    let all = wait_state(&app, "metano_bajo", "activa", Duration::from_secs(5)).await;
    assert_eq!(all.len(), 1, "{all:?}");
    // 46 % is above the threshold but not by the 2-point hysteresis.
    trace(&p, t, json!({"calidad": 46.0}), 8, STEP).await;
    assert_eq!(alarms_of(&app, "metano_bajo").await[0]["estado"], "activa");
    trace(&p, t, json!({"calidad": 55.0}), 8, STEP).await;
    let all = wait_state(&app, "metano_bajo", "despejada", Duration::from_secs(5)).await;
    assert_eq!(all.len(), 1, "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pressure_spike_raises_one_critical_alarm_and_clears() {
    let app = Appliance::start(Options {
        extra_toml: "pressure_reading = \"gauge\"\n".into(),
        ..Options::default()
    });
    set_rule(&app, "presion_alta", json!({"duracion_s": 1})).await;
    let p = Publisher::sensor(app.mqtt_port, "bolsa").await;
    let t = "sensores/bolsa";
    trace(&p, t, json!({"presion": 10.0}), 3, STEP).await;
    trace(&p, t, json!({"presion": 45.0}), 6, STEP).await;
    let all = wait_state(&app, "presion_alta", "activa", Duration::from_secs(5)).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["severidad"], "crítica");
    // 28 hPa is under 30 but not by the 3 hPa hysteresis.
    trace(&p, t, json!({"presion": 28.0}), 6, STEP).await;
    assert_eq!(alarms_of(&app, "presion_alta").await[0]["estado"], "activa");
    trace(&p, t, json!({"presion": 12.0}), 6, STEP).await;
    let all = wait_state(&app, "presion_alta", "despejada", Duration::from_secs(5)).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(alarms_of(&app, "presion_baja").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pressure_drop_raises_one_warning_and_clears() {
    let app = Appliance::start(Options {
        extra_toml: "pressure_reading = \"gauge\"\n".into(),
        ..Options::default()
    });
    set_rule(&app, "presion_baja", json!({"duracion_s": 1})).await;
    let p = Publisher::sensor(app.mqtt_port, "bolsa").await;
    let t = "sensores/bolsa";
    trace(&p, t, json!({"presion": 8.0}), 3, STEP).await;
    assert!(alarms_of(&app, "presion_baja").await.is_empty());
    // The bag empties (a leak): the gauge pressure falls to nothing.
    trace(&p, t, json!({"presion": 0.2}), 6, STEP).await;
    let all = wait_state(&app, "presion_baja", "activa", Duration::from_secs(5)).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["severidad"], "aviso");
    // 1.5 hPa is above 1 but not by the 1 hPa hysteresis.
    trace(&p, t, json!({"presion": 1.5}), 6, STEP).await;
    assert_eq!(alarms_of(&app, "presion_baja").await[0]["estado"], "activa");
    trace(&p, t, json!({"presion": 8.0}), 6, STEP).await;
    let all = wait_state(&app, "presion_baja", "despejada", Duration::from_secs(5)).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(alarms_of(&app, "presion_alta").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absolute_pressure_sensor_raises_no_pressure_alarm() {
    // 1006 hPa absolute at the default altitude would read as ~260 hPa over the ambient: an
    // absolute sensor cannot tell the bag's few hPa from the weather, so no pressure rule runs.
    let app = Appliance::start(Options::default());
    set_rule(&app, "presion_alta", json!({"duracion_s": 0})).await;
    let p = Publisher::sensor(app.mqtt_port, "baro").await;
    trace(&p, "sensores/baro", json!({"presion": 1006.0}), 6, STEP).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(alarms_of(&app, "presion_alta").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_sensor_raises_one_alarm_and_its_next_reading_clears_it() {
    let app = Appliance::start(Options::default());
    // 0.05 min = 3 s of silence.
    set_rule(&app, "sensor_silencioso", json!({"umbral": 0.05})).await;
    let p = Publisher::sensor(app.mqtt_port, "mudo").await;
    trace(&p, "sensores/mudo", json!({"temperatura": 20.0}), 4, STEP).await;
    assert!(alarms_of(&app, "sensor_silencioso").await.is_empty());
    let all = wait_state(&app, "sensor_silencioso", "activa", Duration::from_secs(10)).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["sujeto"], "sensores/mudo");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(alarms_of(&app, "sensor_silencioso").await.len(), 1);
    trace(&p, "sensores/mudo", json!({"temperatura": 20.0}), 1, STEP).await;
    let all = wait_state(
        &app,
        "sensor_silencioso",
        "despejada",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(all.len(), 1, "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_free_disk_raises_a_critical_alarm() {
    let app = Appliance::start(Options::default());
    // More megabytes than any test disk has free.
    set_rule(
        &app,
        "disco_bajo",
        json!({"umbral": 1.0e12, "duracion_s": 0}),
    )
    .await;
    let all = wait_state(&app, "disco_bajo", "activa", Duration::from_secs(15)).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["severidad"], "crítica");
    set_rule(
        &app,
        "disco_bajo",
        json!({"umbral": 1.0, "histeresis": 0.0}),
    )
    .await;
    let all = wait_state(&app, "disco_bajo", "despejada", Duration::from_secs(15)).await;
    assert_eq!(all.len(), 1, "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_alarm_stays_acknowledged_across_a_restart_and_is_not_raised_again() {
    let mut app = Appliance::start(Options::default());
    set_rule(&app, "temperatura_alta", json!({"duracion_s": 1})).await;
    let p = Publisher::sensor(app.mqtt_port, "caliente").await;
    trace(&p, "sensores/d", json!({"temperatura": 46.0}), 6, STEP).await;
    let all = wait_state(&app, "temperatura_alta", "activa", Duration::from_secs(5)).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let id = all[0]["id"].as_u64().unwrap();
    let path = format!("{ALARMS}{id}/reconocer/");
    let (status, body) = call(
        &app,
        "POST",
        &path,
        Some(&app.token),
        Some(json!({"comentario": "Se abrió la cubierta"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["estado"], "reconocida");
    assert_eq!(body["reconocida"]["por"], "admin");
    drop(p);
    app.signal("TERM", Duration::from_secs(20));
    app.restart();
    let all = alarms_of(&app, "temperatura_alta").await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["estado"], "reconocida");
    assert_eq!(all[0]["reconocida"]["comentario"], "Se abrió la cubierta");
    // Still too hot after the restart: the same alarm, not a new one.
    let p = Publisher::sensor(app.mqtt_port, "caliente2").await;
    trace(&p, "sensores/d", json!({"temperatura": 46.0}), 6, STEP).await;
    let all = alarms_of(&app, "temperatura_alta").await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["id"], id);
    // And it clears as usual.
    trace(&p, "sensores/d", json!({"temperatura": 35.0}), 6, STEP).await;
    let all = wait_state(
        &app,
        "temperatura_alta",
        "despejada",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["reconocida"]["por"], "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rule_edits_and_acknowledgements_are_refused_in_spanish() {
    let app = Appliance::start(Options::default());
    let cases = [
        (json!([1, 2]), "not an object"),
        (json!({"preset": "volcanico"}), "unknown preset"),
        (json!({"otra": 1}), "unknown top-level field"),
        (json!({"reglas": []}), "reglas not an object"),
        (json!({"reglas": {"lluvia": {}}}), "unknown rule"),
        (json!({"reglas": {"metano_bajo": 5}}), "rule not an object"),
        (
            json!({"reglas": {"metano_bajo": {"umbral": "alto"}}}),
            "threshold not a number",
        ),
        (
            json!({"reglas": {"metano_bajo": {"severidad": "grave"}}}),
            "unknown severity",
        ),
        (
            json!({"reglas": {"metano_bajo": {"histeresis": -1}}}),
            "negative hysteresis",
        ),
        (
            json!({"reglas": {"metano_bajo": {"duracion_s": -5}}}),
            "negative duration",
        ),
        (
            json!({"reglas": {"metano_bajo": {"duracion_s": 99999999}}}),
            "duration over a week",
        ),
        (
            json!({"reglas": {"metano_bajo": {"habilitada": "si"}}}),
            "enabled not a bool",
        ),
        (
            json!({"reglas": {"metano_bajo": {"color": "rojo"}}}),
            "unknown rule field",
        ),
        (
            json!({"reglas": {"temperatura_baja": {"umbral": 45}}}),
            "low band above the high one",
        ),
    ];
    let (_, before) = app.get(RULES).await;
    for (body, why) in cases {
        let (status, answer) = put_rules(&app, body).await;
        assert_eq!(status, 400, "{why}: {answer}");
        assert_detail(&answer, why);
    }
    // Nothing of the refused edits was applied.
    let (_, after) = app.get(RULES).await;
    assert_eq!(before, after);
    // Not JSON at all.
    let resp = app
        .client()
        .put(app.url(RULES))
        .header("content-type", "application/json")
        .body("{umbral")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_detail(&resp.json().await.unwrap(), "malformed JSON");
    // Acknowledging: an alarm that does not exist, a comment that is not text or too long.
    let (status, body) = call(
        &app,
        "POST",
        &format!("{ALARMS}77/reconocer/"),
        Some(&app.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_detail(&body, "unknown alarm");
    let (status, body) = call(
        &app,
        "POST",
        &format!("{ALARMS}77/reconocer/"),
        Some(&app.token),
        Some(json!({"comentario": 5})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_detail(&body, "comment not text");
    let long = "x".repeat(501);
    let (status, body) = call(
        &app,
        "POST",
        &format!("{ALARMS}77/reconocer/"),
        Some(&app.token),
        Some(json!({"comentario": long})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_detail(&body, "comment too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_alarms_needs_the_dashboard_and_managing_them_its_own_permission() {
    let app = Appliance::start(Options::default());
    let (_, viewer, _) = user_with(&app, "operaria", &["VerDashboard"]).await;
    let (status, _) = call(&app, "GET", ALARMS, Some(&viewer), None).await;
    assert_eq!(status, 200);
    let (status, _) = call(&app, "GET", RULES, Some(&viewer), None).await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &app,
        "PUT",
        RULES,
        Some(&viewer),
        Some(json!({"preset": "mesofilico"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (_, manager, _) = user_with(&app, "jefa", &["VerDashboard", "GestionarAlarmas"]).await;
    let (status, body) = call(
        &app,
        "PUT",
        RULES,
        Some(&manager),
        Some(json!({"preset": "mesofilico"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The administrator holds the new permission.
    let (_, me) = app.get("/api/usuario/actual/").await;
    assert!(me.to_string().contains("GestionarAlarmas"), "{me}");
}

/// Subscribes to `topic` as a new client and returns the first message (the retained one).
async fn retained(app: &Appliance, topic: &str) -> Value {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut opts = MqttOptions::new(
        format!("mirador-{}", common::free_port()),
        "127.0.0.1",
        app.mqtt_port,
    );
    opts.set_credentials("tablero", "clave-del-tablero");
    let (client, mut el) = AsyncClient::new(opts, 10);
    client.subscribe(topic, QoS::AtMostOnce).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Event::Incoming(Packet::Publish(p))) = el.poll().await {
                assert!(p.retain, "the alarm state must be retained");
                return serde_json::from_slice::<Value>(&p.payload).unwrap();
            }
        }
    })
    .await
    .expect("no retained alarm state");
    let _ = client.disconnect().await;
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alarm_state_is_retained_on_the_embedded_broker() {
    let app = Appliance::start(Options {
        extra_toml: "name = \"Finca La Esperanza\"\n".into(),
        // A local display that may read the alarm topics.
        users_extra: "[mqtt.users.tablero]\npassword = \"clave-del-tablero\"\n\
                      subscribe = [\"biogestor/#\"]\n"
            .into(),
        ..Options::default()
    });
    let topic = "biogestor/finca-la-esperanza/alarmas";
    let state = retained(&app, topic).await;
    assert_eq!(state["activas"], json!([]), "{state}");
    // The trace also swings 17 °C; this test is about one alarm.
    set_rule(&app, "oscilacion_temperatura", json!({"habilitada": false})).await;
    set_rule(&app, "temperatura_alta", json!({"duracion_s": 0})).await;
    let p = Publisher::sensor(app.mqtt_port, "sol").await;
    trace(&p, "sensores/d", json!({"temperatura": 47.0}), 2, STEP).await;
    wait_state(&app, "temperatura_alta", "activa", Duration::from_secs(5)).await;
    let state = retained(&app, topic).await;
    assert_eq!(state["activas"].as_array().unwrap().len(), 1, "{state}");
    assert_eq!(state["activas"][0]["regla"], "temperatura_alta");
    assert_eq!(state["peor"], "alarma");
    assert_eq!(state["evento"]["evento"], "activada");
    trace(&p, "sensores/d", json!({"temperatura": 30.0}), 2, STEP).await;
    wait_state(
        &app,
        "temperatura_alta",
        "despejada",
        Duration::from_secs(5),
    )
    .await;
    let state = retained(&app, topic).await;
    assert_eq!(state["activas"], json!([]), "{state}");
    assert_eq!(state["evento"]["evento"], "despejada");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_refused_mqtt_connections_raises_a_warning() {
    let app = Appliance::start(Options::default());
    set_rule(
        &app,
        "rechazos_mqtt",
        json!({"umbral": 3.0, "histeresis": 3.0}),
    )
    .await;
    for i in 0..6 {
        let code = common::mqtt_connack(app.mqtt_port, &format!("intruso{i}"), "sensor", "mala");
        assert_ne!(code, Some(0));
    }
    let all = wait_state(&app, "rechazos_mqtt", "activa", Duration::from_secs(15)).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["severidad"], "aviso");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_gas_data_raises_an_alarm_and_gas_readings_clear_it() {
    let app = Appliance::start(Options::default());
    // 0.001 h = 3.6 s without any gas channel.
    set_rule(&app, "sin_datos_gas", json!({"umbral": 0.001})).await;
    let all = wait_state(&app, "sin_datos_gas", "activa", Duration::from_secs(15)).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let p = Publisher::sensor(app.mqtt_port, "medidor").await;
    trace(
        &p,
        "sensores/medidor",
        json!({"gas_total_m3": 12.5}),
        1,
        STEP,
    )
    .await;
    let all = wait_state(&app, "sin_datos_gas", "despejada", Duration::from_secs(5)).await;
    assert_eq!(all.len(), 1, "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_lists_the_alarms_of_its_period() {
    let app = Appliance::start(Options::default());
    let tz: chrono_tz::Tz = "America/Bogota".parse().unwrap();
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    let (status, stage) = call(
        &app,
        "POST",
        "/api/dashboard/fillings/",
        Some(&app.token),
        Some(json!({"date": today.to_string(), "material_type": "bovino",
                    "material_amount_kg": 500, "material_humidity_pct": 87, "temperature_c": 30})),
    )
    .await;
    assert_eq!(status, 201, "{stage}");
    set_rule(&app, "temperatura_baja", json!({"duracion_s": 0})).await;
    let p = Publisher::sensor(app.mqtt_port, "frio").await;
    trace(
        &p,
        "Prueba",
        json!({"temperatura": 9.0, "gas_total_m3": 1.0}),
        2,
        STEP,
    )
    .await;
    wait_state(&app, "temperatura_baja", "activa", Duration::from_secs(5)).await;
    let (status, created) = call(
        &app,
        "POST",
        "/api/dashboard/report/create/",
        Some(&app.token),
        Some(json!({"report_type": "normal"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let url = created["pdf_url"].as_str().unwrap();
    let pdf = app
        .client()
        .get(app.url(url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args([path.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (scripts/test.sh installs poppler-utils)");
    let text = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
    assert!(text.contains("Alarmas del período"), "{text}");
    assert!(
        text.contains("Temperatura del digestor bajo la banda"),
        "{text}"
    );
    assert!(text.contains("sigue activa"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_temperature_swing_over_three_degrees_raises_one_warning() {
    let app = Appliance::start(Options::default());
    let p = Publisher::sensor(app.mqtt_port, "vaiven").await;
    trace(&p, "Prueba", json!({"temperatura": 24.0}), 2, STEP).await;
    trace(&p, "Prueba", json!({"temperatura": 26.5}), 2, STEP).await;
    assert!(alarms_of(&app, "oscilacion_temperatura").await.is_empty());
    trace(&p, "Prueba", json!({"temperatura": 27.5}), 3, STEP).await;
    let all = wait_state(
        &app,
        "oscilacion_temperatura",
        "activa",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["severidad"], "aviso");
    assert_eq!(all[0]["valor"], 3.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsynchronised_clock_raises_a_warning() {
    let app = Appliance::start(Options {
        extra_toml: "\n[clock]\nsync_check = \"file\"\nsync_file = \"/nonexistent/synchronized\"\n"
            .into(),
        ..Options::default()
    });
    set_rule(&app, "reloj_no_sincronizado", json!({"duracion_s": 0})).await;
    let all = wait_state(
        &app,
        "reloj_no_sincronizado",
        "activa",
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["severidad"], "aviso");
}
