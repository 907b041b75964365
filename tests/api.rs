//! HTTP API shapes against the real binary: readings pages and buckets, stats, health, errors,
//! the bundled UI, and a WebSocket client that stops reading.

mod common;

use std::time::Duration;

use common::{Appliance, Options, Publisher, WsClient};
use serde_json::{Value, json};

async fn seeded(n: u64) -> Appliance {
    let app = Appliance::start(Options::default());
    let mut p = Publisher::sensor(app.mqtt_port, "seed").await;
    for i in 0..n {
        p.publish(
            "Prueba",
            json!({"presion": 1000.0 + i as f64, "ph": 7.0, "seq": i}).to_string(),
        )
        .await;
    }
    assert_eq!(p.wait_acked(n, Duration::from_secs(10)).await, n);
    assert_eq!(app.wait_readings(n, Duration::from_secs(10)).await, n);
    app
}

async fn get(app: &Appliance, path: &str) -> (u16, Value) {
    app.get(path).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_pages_follow_the_cursor_in_time_order() {
    let app = seeded(25).await;
    let mut seqs = Vec::new();
    let mut path = "/api/dashboard/readings/?limit=10".to_string();
    let mut pages = 0;
    loop {
        let (status, page) = get(&app, &path).await;
        assert_eq!(status, 200);
        pages += 1;
        let rows = page["readings"].as_array().unwrap();
        for r in rows {
            seqs.push(r["seq"].as_f64().unwrap() as u64);
            assert_eq!(r["stage"], json!(0), "no stage active: stage 0");
            assert!(
                r["ts"].as_str().unwrap().ends_with("-05:00"),
                "site time zone: {r}"
            );
        }
        match page["next"].as_str() {
            Some(c) => path = format!("/api/dashboard/readings/?limit=10&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seqs, (0..25).collect::<Vec<_>>());
    let (_, none) = get(&app, "/api/dashboard/readings/?stage=7").await;
    assert_eq!(none["readings"], json!([]));
    let (_, stage0) = get(&app, "/api/dashboard/readings/?stage=0&limit=1").await;
    assert_eq!(stage0["readings"][0]["seq"], json!(0.0));
    // A time window in another zone's notation selects the same instants.
    let first = stage0["readings"][0]["ts"].as_str().unwrap().to_string();
    let (_, from) = get(
        &app,
        &format!(
            "/api/dashboard/readings/?from={}",
            first.replace('+', "%2B")
        ),
    )
    .await;
    assert_eq!(from["readings"].as_array().unwrap().len(), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_give_min_avg_max_per_channel() {
    let app = seeded(10).await;
    let now = chrono::Utc::now();
    let from =
        (now - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = (now + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, body) = get(
        &app,
        &format!("/api/dashboard/readings/?from={from}&to={to}&bucket=7200"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let buckets = body["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 1, "{body}");
    let b = &buckets[0];
    assert_eq!(b["count"], json!(10));
    assert_eq!(b["presion"]["min"], json!(1000.0));
    assert_eq!(b["presion"]["max"], json!(1009.0));
    assert_eq!(b["presion"]["avg"], json!(1004.5));
    assert_eq!(b["ph"]["avg"], json!(7.0), "extra channels are kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_get_json_errors() {
    let app = seeded(1).await;
    for (path, status) in [
        ("/api/dashboard/readings/?from=ayer", 400),
        ("/api/dashboard/readings/?limit=0", 400),
        ("/api/dashboard/readings/?limit=100000", 400),
        ("/api/dashboard/readings/?limit=muchos", 400),
        ("/api/dashboard/readings/?stage=-1", 400),
        ("/api/dashboard/readings/?bucket=60", 400),
        ("/api/dashboard/readings/?cursor=abc", 400),
        (
            "/api/dashboard/readings/?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z&bucket=1",
            400,
        ),
        (
            "/api/dashboard/readings/?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
        ),
        ("/api/no-existe/", 404),
    ] {
        let (got, body) = get(&app, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body["detail"].is_string(), "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_health_and_ui() {
    let app = seeded(3).await;
    let stats = app.stats().await;
    for key in [
        "etapas_activas",
        "reportes_generados",
        "lecturas_hoy",
        "lecturas_total",
        "mensajes_rechazados",
        "ultima_lectura",
    ] {
        assert!(stats.get(key).is_some(), "missing {key}: {stats}");
    }
    assert_eq!(stats["lecturas_hoy"], json!(3));
    assert_eq!(stats["lecturas_total"], json!(3));
    assert_eq!(stats["etapas_activas"], json!(0));
    assert!(stats["ultima_lectura"].as_str().unwrap().contains('T'));
    let (status, health) = get(&app, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], json!("ok"));
    assert_eq!(
        health["version"],
        json!(env!("CARGO_PKG_VERSION")),
        "details with a token"
    );
    let resp = reqwest::get(app.url("/")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(resp.headers()["cache-control"], "no-cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_websocket_client_slows_nobody() {
    let app = Appliance::start(Options::default());
    // This client upgrades and then never reads a byte.
    let (stalled, _) = tokio_tungstenite::connect_async(format!(
        "ws://127.0.0.1:{}/ws/mqtt/?token={}",
        app.http_port, app.token
    ))
    .await
    .unwrap();
    let healthy = WsClient::connect(&app).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut p = Publisher::sensor(app.mqtt_port, "many").await;
    let n = 20_000u64;
    // 30 extra numeric channels make each WebSocket message ~700 bytes: 14 MB in all, more
    // than the stalled socket's buffers hold, so its sender really blocks.
    let mut fields = serde_json::Map::new();
    for k in 0..30 {
        fields.insert(format!("canal_extra_{k}"), json!(123456.789 + k as f64));
    }
    for i in 0..n {
        let mut m = fields.clone();
        m.insert("presion".into(), json!(1000.0));
        m.insert("seq".into(), json!(i));
        p.publish("Prueba", Value::Object(m).to_string()).await;
    }
    assert_eq!(p.wait_acked(n, Duration::from_secs(60)).await, n);
    let stored = app.wait_readings(n, Duration::from_secs(30)).await;
    assert_eq!(stored, n, "{}", app.log());
    assert_eq!(
        healthy.wait_for(n as usize, Duration::from_secs(30)).await,
        n as usize
    );
    assert_eq!(
        common::http_get_status(app.http_port, "/healthz"),
        Some(200)
    );
    drop(stalled);
}

/// `name` of `resp`'s headers, or "".
fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_details_need_a_token() {
    let app = Appliance::start(Options::default());
    let anonymous = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(anonymous.status(), 200);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body, json!({"status": "ok"}), "only whether it is healthy");
    let forged = common::accounts::http()
        .get(app.url("/healthz"))
        .bearer_auth("no.es-un.token")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 200);
    assert_eq!(
        forged.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    let (status, details) = get(&app, "/healthz").await;
    assert_eq!(status, 200);
    for key in [
        "store",
        "writer",
        "mqtt",
        "version",
        "uptime_s",
        "clock_ok",
        "ws_clients",
        "site",
        "setup_pending",
    ] {
        assert!(details.get(key).is_some(), "{key} for a token: {details}");
    }
    assert_eq!(details["site"]["name"], json!("Biodigestor"));
    assert_eq!(details["setup_pending"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_security_headers_and_tokens_are_never_cached() {
    let app = Appliance::start(Options::default());
    let ui = reqwest::get(app.url("/")).await.unwrap();
    let csp = header(&ui, "content-security-policy");
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(header(&ui, "x-frame-options"), "DENY");
    assert_eq!(header(&ui, "referrer-policy"), "no-referrer");
    assert_eq!(header(&ui, "x-content-type-options"), "nosniff");
    // The page needs nothing the policy forbids: no inline script, style or handler.
    let html = ui.text().await.unwrap();
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script type=\"module\" src=\"/").count(),
        "only external scripts: {html}"
    );
    assert!(
        !html.contains("<style") && !html.contains(" style="),
        "{html}"
    );
    assert!(
        !html.contains(" onclick=") && !html.contains(" onload="),
        "{html}"
    );

    let api = app
        .client()
        .get(app.url("/api/dashboard/stats/"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    assert!(header(&api, "content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(header(&api, "referrer-policy"), "no-referrer");
    assert_eq!(header(&api, "x-content-type-options"), "nosniff");

    let login = common::accounts::http()
        .post(app.url("/api/iniciar-sesion/"))
        .json(&json!({"username": common::ADMIN_USER, "password": common::ADMIN_PASS}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert_eq!(header(&login, "cache-control"), "no-store");
    let pair: Value = login.json().await.unwrap();
    let refreshed = common::accounts::http()
        .post(app.url("/api/refrescar-token/"))
        .json(&json!({"refresh": pair["refresh"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    assert_eq!(header(&refreshed, "cache-control"), "no-store");
}
