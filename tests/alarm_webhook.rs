//! The alarm webhook against a local HTTP receiver: a message queued while the receiver is
//! down is delivered once it is back, also across a restart of the appliance; the test
//! notification arrives; a failed delivery shows in the health details (*Estado*); a bad URL
//! stops start-up naming the key.

mod common;

use std::time::{Duration, Instant};

use common::accounts::call;
use common::{Appliance, Options};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Accepts requests on `port`, answers 200 and forwards each JSON body.
async fn receiver(port: u16) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind receiver");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        let body = &buf[end + 4..end + 4 + len];
                        let _ = tx.send(serde_json::from_slice(body).unwrap_or(Value::Null));
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                }
            });
        }
    });
    rx
}

async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>, timeout: Duration) -> Value {
    tokio::time::timeout(timeout, rx.recv())
        .await
        .expect("no webhook arrived")
        .expect("receiver ended")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_arrives_after_the_receiver_comes_back_even_across_a_restart() {
    let hook_port = common::free_port();
    let mut app = Appliance::start(Options {
        extra_toml: format!("\n[alarms]\nwebhook_url = \"http://127.0.0.1:{hook_port}/avisos\"\n"),
        ..Options::default()
    });
    // An alarm while nobody listens: a disk threshold above any free space.
    let (status, body) = call(
        &app,
        "PUT",
        "/api/dashboard/alarms/reglas/",
        Some(&app.token),
        Some(json!({"reglas": {"disco_bajo": {"umbral": 1.0e12, "duracion_s": 0}}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, h) = app.get("/healthz").await;
        let w = &h["notificaciones"]["webhook"];
        if w["ultimo_error"].is_string() && w["pendientes"].as_u64() >= Some(1) {
            assert!(
                w["ultimo_error"].as_str().unwrap().contains("intento"),
                "{w}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the failure never showed: {h}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    app.signal("TERM", Duration::from_secs(20));
    // The receiver comes back while the appliance is stopped; the queue survived.
    let mut rx = receiver(hook_port).await;
    app.restart();
    let got = next(&mut rx, Duration::from_secs(30)).await;
    assert_eq!(got["evento"], "activada", "{got}");
    assert_eq!(got["alarma"]["regla"], "disco_bajo", "{got}");
    assert!(got["text"].as_str().unwrap().contains("disco"), "{got}");
    // The test notification goes the same way.
    let (status, body) = call(
        &app,
        "POST",
        "/api/dashboard/alarms/prueba/",
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["webhook"], "en cola");
    let got = next(&mut rx, Duration::from_secs(15)).await;
    assert_eq!(got["evento"], "prueba", "{got}");
    let (_, h) = app.get("/healthz").await;
    assert!(
        h["notificaciones"]["webhook"]["ultimo_envio"].is_string(),
        "{h}"
    );
}

#[test]
fn a_webhook_url_that_is_not_http_stops_start_up_naming_the_key() {
    let err = Appliance::try_start(Options {
        extra_toml: "\n[alarms]\nwebhook_url = \"ftp://ejemplo\"\n".into(),
        ..Options::default()
    })
    .err()
    .expect("must refuse");
    assert!(err.contains("alarms.webhook_url"), "{err}");
}
