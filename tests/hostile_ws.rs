//! A hostile client of the live feed: huge client messages, hundreds of sockets from one token,
//! and a feed that would outlive the token or permission that opened it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::accounts::{call, claims, secret, sign, user_with};
use common::{Appliance, Options, Publisher, memory_kib};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

fn feed_url(app: &Appliance, token: &str) -> String {
    format!("ws://127.0.0.1:{}/ws/mqtt/?token={token}", app.http_port)
}

/// Opens the live feed: the socket, or the refusal's status and JSON body.
async fn open_feed(app: &Appliance, token: &str) -> Result<Ws, (u16, Value)> {
    match tokio_tungstenite::connect_async(feed_url(app, token)).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((resp.status().as_u16(), body))
        }
        Err(e) => panic!("live feed: {e}"),
    }
}

/// Reads until the server closes: (close code, reason, time taken), or None on timeout.
async fn close_of(ws: &mut Ws, timeout: Duration) -> Option<(u16, String, Duration)> {
    let start = Instant::now();
    loop {
        let left = timeout.checked_sub(start.elapsed())?;
        match tokio::time::timeout(left, ws.next()).await.ok()? {
            Some(Ok(Message::Close(Some(f)))) => {
                return Some((u16::from(f.code), f.reason.to_string(), start.elapsed()));
            }
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                return Some((0, String::new(), start.elapsed()));
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Waits for one `sensor_data` message.
async fn reading(ws: &mut Ws, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains("sensor_data") => return true,
            Ok(Some(Ok(_))) => {}
            _ => return false,
        }
    }
    false
}

/// Upgrades a plain TCP connection to the live feed by hand (so the test can send frames
/// without building them in memory).
async fn raw_feed(app: &Appliance, token: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", app.http_port))
        .await
        .expect("connect");
    let req = format!(
        "GET /ws/mqtt/?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).await.expect("read"),
            1,
            "handshake answer"
        );
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn huge_client_messages_are_refused_before_they_are_buffered() {
    let app = Appliance::start(Options::default());
    let pid = app.pid();
    let idle = memory_kib(pid, "VmRSS");
    let peak = Arc::new(AtomicU64::new(idle));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(memory_kib(pid, "VmRSS"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    // Four clients at once, each sending one 60 MiB message as four 15 MiB frames (zero mask).
    const FRAME: u64 = 15 << 20;
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut s = raw_feed(&app, &app.token).await;
        clients.push(tokio::spawn(async move {
            let chunk = vec![b'x'; 1 << 20];
            let mut sent = 0u64;
            for i in 0..4 {
                let opcode = if i == 0 { 0x2 } else { 0x0 };
                let fin = if i == 3 { 0x80 } else { 0 };
                let mut head = vec![fin | opcode, 0x80 | 127];
                head.extend_from_slice(&FRAME.to_be_bytes());
                head.extend_from_slice(&[0, 0, 0, 0]);
                if s.write_all(&head).await.is_err() {
                    return sent;
                }
                for _ in 0..(FRAME >> 20) {
                    if s.write_all(&chunk).await.is_err() {
                        return sent;
                    }
                    sent += chunk.len() as u64;
                }
            }
            sent
        }));
    }
    let mut sent = Vec::new();
    for c in clients {
        sent.push(
            tokio::time::timeout(Duration::from_secs(30), c)
                .await
                .expect("client ends")
                .expect("task"),
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    done.store(true, Ordering::Relaxed);
    watcher.await.expect("watcher");
    let grew_mib = (peak.load(Ordering::Relaxed).saturating_sub(idle)) as f64 / 1024.0;
    eprintln!(
        "4 x 60 MiB client messages: sent before the server closed {:?} MiB; resident memory \
         idle {:.1} MiB, grew by at most {grew_mib:.1} MiB",
        sent.iter().map(|b| b >> 20).collect::<Vec<_>>(),
        idle as f64 / 1024.0
    );
    assert!(
        sent.iter().all(|b| *b < 60 << 20),
        "the server closes before taking a whole message: {sent:?}"
    );
    assert!(grew_mib < 16.0, "memory grew by {grew_mib:.1} MiB");

    // An oversized message gets a clear close code; small ones are fine.
    let mut ws = open_feed(&app, &app.token).await.expect("feed");
    ws.send(Message::Text("x".repeat(1024).into()))
        .await
        .expect("small message");
    let sensor = Publisher::sensor(app.mqtt_port, "sensor-ws").await;
    sensor
        .publish("Prueba", json!({"presion": 1000.5}).to_string())
        .await;
    assert!(
        reading(&mut ws, Duration::from_secs(10)).await,
        "still streaming"
    );
    ws.send(Message::Text("x".repeat(8 * 1024).into()))
        .await
        .expect("send");
    let (code, reason, _) = close_of(&mut ws, Duration::from_secs(5))
        .await
        .expect("closed");
    assert_eq!(code, u16::from(CloseCode::Size), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_are_capped_per_account_and_in_all() {
    let app = Appliance::start(Options {
        http_toml: "ws_max_clients = 4\nws_max_clients_per_user = 2\n".into(),
        ..Options::default()
    });
    let (_, ana, _) = user_with(&app, "ana", &["VerDashboard"]).await;
    let (_, luis, _) = user_with(&app, "luis", &["VerDashboard"]).await;
    let mut admin_feeds = vec![
        open_feed(&app, &app.token).await.expect("1st"),
        open_feed(&app, &app.token).await.expect("2nd"),
    ];
    let (status, body) = open_feed(&app, &app.token).await.expect_err("3rd refused");
    assert_eq!(status, 429, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains('2')),
        "{body}"
    );
    let _ana_feeds = [
        open_feed(&app, &ana).await.expect("ana 1st"),
        open_feed(&app, &ana).await.expect("ana 2nd"),
    ];
    let (status, body) = open_feed(&app, &luis).await.expect_err("all taken");
    assert_eq!(status, 429, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains('4')),
        "{body}"
    );
    // A closed feed gives its slot back.
    let mut first = admin_feeds.remove(0);
    first.close(None).await.expect("close");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match open_feed(&app, &luis).await {
            Ok(_) => break,
            Err((429, _)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => panic!("luis after a slot was freed: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_hundred_sockets_from_one_token_cost_little() {
    let app = Appliance::start(Options::default());
    let idle = memory_kib(app.pid(), "VmRSS");
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..1500 {
        match open_feed(&app, &app.token).await {
            Ok(ws) => open.push(ws),
            Err((429, _)) => refused += 1,
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let with = memory_kib(app.pid(), "VmRSS");
    eprintln!(
        "1500 feeds with one token: {} open, {refused} refused with 429; resident memory idle \
         {:.1} MiB, with them {:.1} MiB",
        open.len(),
        idle as f64 / 1024.0,
        with as f64 / 1024.0
    );
    assert_eq!(open.len(), 8, "http.ws_max_clients_per_user defaults to 8");
    assert!(
        with.saturating_sub(idle) < 8 * 1024,
        "memory: {idle} KiB idle, {with} KiB with the sockets"
    );
}

fn quick_recheck() -> Options {
    Options {
        http_toml: "ws_recheck_s = 1\n".into(),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_closes_with_4403_when_its_permission_is_removed() {
    let app = Appliance::start(quick_recheck());
    let (id, token, _) = user_with(&app, "operario", &["VerDashboard", "VerReportes"]).await;
    let mut ws = open_feed(&app, &token).await.expect("feed");
    let sensor = Publisher::sensor(app.mqtt_port, "sensor-permiso").await;
    // The feed survives its re-checks while the permission holds.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    sensor
        .publish("Prueba", json!({"presion": 1001.0}).to_string())
        .await;
    assert!(
        reading(&mut ws, Duration::from_secs(10)).await,
        "still streaming"
    );
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/usuarios/{id}/cambiar-permisos/"),
        Some(&app.token),
        Some(json!({"permisos": ["VerReportes"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (code, reason, took) = close_of(&mut ws, Duration::from_secs(10))
        .await
        .expect("the feed must close");
    eprintln!("permission removed: feed closed with {code} ({reason}) after {took:?}");
    assert_eq!(code, 4403, "{reason}");
    assert!(
        took < Duration::from_secs(3),
        "within the re-check interval: {took:?}"
    );
    let (status, _) = open_feed(&app, &token).await.expect_err("no new feed");
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_closes_with_4401_when_its_token_expires() {
    let app = Appliance::start(quick_recheck());
    let (_, me) = call(&app, "GET", "/api/usuario/actual/", Some(&app.token), None).await;
    let admin_id = me["id"].as_u64().expect("id");
    let short = sign(&secret(&app), &claims(&app.token, admin_id, "access", 3));
    let mut ws = open_feed(&app, &short).await.expect("feed");
    let (code, reason, took) = close_of(&mut ws, Duration::from_secs(10))
        .await
        .expect("the feed must close");
    eprintln!("token expiring in 3 s: feed closed with {code} ({reason}) after {took:?}");
    assert_eq!(code, 4401, "{reason}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
        "at expiry: {took:?}"
    );
}
