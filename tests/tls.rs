//! Optional TLS (`[tls]`, `http.tls_bind`, `mqtt.tls_bind`) with the real binary and a
//! certificate made by `biogestor tls-cert`: HTTPS, wss and MQTT over TLS work with clients
//! that pin that certificate, and the listeners keep the plain ones' protections (credentials,
//! throttling, connection caps, timeouts). Certificate and configuration errors:
//! `tests/tls_certificates.rs`; memory after HTTPS logins: `tests/memory.rs`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::tls::{
    CertDir, TlsAppliance, client_trusting, connect, https_login, https_request, mqtt_connack,
    read_all,
};
use common::{ADMIN_PASS, ADMIN_USER, MQTT_PASS, MQTT_USER, Options};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_login_works_and_plain_http_on_the_tls_port_gets_no_answer() {
    let t = TlsAppliance::start(Options::default());
    let token = https_login(t.https_port, t.client(), ADMIN_USER, ADMIN_PASS).await;
    let (status, body) = https_request(
        t.https_port,
        t.client(),
        "GET",
        "/api/dashboard/stats/",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("lecturas_total"), "{body}");

    // Plain HTTP sent to the TLS port: no HTTP answer, and the connection is closed.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", t.https_port))
        .await
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_all(&mut plain, Duration::from_secs(10)).await;
    assert!(started.elapsed() < Duration::from_secs(5), "not closed");
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1"),
        "plain HTTP answered on the TLS port: {answer:?}"
    );
    // The plain listener keeps working beside it.
    assert_eq!(
        common::http_get_status(t.app.http_port, "/healthz"),
        Some(200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_feed_shows_a_reading_published_over_mqtts_by_mosquitto_pub() {
    let t = TlsAppliance::start(Options::default());
    let tls = connect(t.https_port, t.client()).await.unwrap();
    let url = format!(
        "wss://localhost:{}/ws/mqtt/?token={}",
        t.https_port, t.app.token
    );
    let (ws, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("wss handshake");
    let (_, mut read) = ws.split();

    let cert = t.certs.cert();
    let out = Command::new("mosquitto_pub")
        .args(["-h", "localhost", "-p", &t.mqtts_port.to_string()])
        .args(["--cafile", cert.to_str().unwrap()])
        .args([
            "-u",
            MQTT_USER,
            "-P",
            MQTT_PASS,
            "-q",
            "1",
            "-i",
            "sensor-tls",
        ])
        .args([
            "-t",
            "Prueba",
            "-m",
            r#"{"temperatura": 36.6, "presion": 1010}"#,
        ])
        .output()
        .expect("mosquitto_pub (apt-get install mosquitto-clients)");
    assert!(
        out.status.success(),
        "mosquitto_pub over TLS: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(t.app.wait_readings(1, Duration::from_secs(10)).await, 1);
    let readings = t.app.all_readings().await;
    assert_eq!(
        readings[0]["temperatura"],
        serde_json::json!(36.6),
        "{readings:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = false;
    while !seen && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), read.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(m)))) => {
                seen = m.contains("sensor_data") && m.contains("36.6");
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("wss feed ended: {other:?}"),
        }
    }
    assert!(seen, "the reading did not reach the wss feed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtts_checks_passwords_like_the_plain_listener() {
    let t = TlsAppliance::start(Options::default());
    let mut s = connect(t.mqtts_port, t.client()).await.unwrap();
    assert_eq!(
        mqtt_connack(&mut s, "tls-bueno", MQTT_USER, MQTT_PASS).await,
        Some(0)
    );
    let mut s = connect(t.mqtts_port, t.client()).await.unwrap();
    assert_eq!(
        mqtt_connack(&mut s, "tls-malo", MQTT_USER, "otra-clave").await,
        Some(4),
        "a wrong password over TLS must get CONNACK 4"
    );
    let mut s = connect(t.mqtts_port, t.client()).await.unwrap();
    assert_eq!(
        mqtt_connack(&mut s, "tls-nadie", "desconocido", "x").await,
        Some(4)
    );
    assert!(t.app.log().contains("bad_credentials"), "{}", t.app.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_over_tls_throttles_the_address_on_both_listeners() {
    let t = TlsAppliance::start(Options {
        mqtt_extra: "auth_failures_per_address = 3\n".into(),
        ..Options::default()
    });
    let mut answers = Vec::new();
    for i in 0..5 {
        let mut s = connect(t.mqtts_port, t.client()).await.unwrap();
        answers.push(mqtt_connack(&mut s, &format!("adivina-{i}"), MQTT_USER, "no-es").await);
    }
    assert_eq!(&answers[..3], &[Some(4); 3], "{answers:?}");
    assert_eq!(answers[4], Some(3), "throttled over TLS: {answers:?}");
    // The right password from the throttled address: refused on both listeners alike.
    let mut s = connect(t.mqtts_port, t.client()).await.unwrap();
    assert_eq!(
        mqtt_connack(&mut s, "correcto-tls", MQTT_USER, MQTT_PASS).await,
        Some(3)
    );
    let plain = common::mqtt_connack(t.app.mqtt_port, "correcto-plano", MQTT_USER, MQTT_PASS);
    assert_eq!(
        plain,
        Some(3),
        "the plain listener shares the TLS listener's throttle"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pinning_another_certificate_fails_the_handshake() {
    let t = TlsAppliance::start(Options::default());
    let other = CertDir::create();
    let wrong = client_trusting(&other.cert());
    for port in [t.https_port, t.mqtts_port] {
        let err = connect(port, wrong.clone()).await.err();
        assert!(
            err.is_some(),
            "handshake on {port} succeeded with another certificate pinned"
        );
    }
    let out = Command::new("mosquitto_pub")
        .args(["-h", "localhost", "-p", &t.mqtts_port.to_string()])
        .args(["--cafile", other.cert().to_str().unwrap()])
        .args([
            "-u",
            MQTT_USER,
            "-P",
            MQTT_PASS,
            "-t",
            "Prueba",
            "-m",
            "{\"presion\":1}",
        ])
        .output()
        .expect("mosquitto_pub");
    assert!(
        !out.status.success(),
        "mosquitto_pub trusted another certificate"
    );
    // Nothing was stored, and the right certificate still works afterwards.
    let mut s = connect(t.mqtts_port, t.client()).await.unwrap();
    assert_eq!(
        mqtt_connack(&mut s, "despues", MQTT_USER, MQTT_PASS).await,
        Some(0)
    );
    assert_eq!(t.app.stats().await["lecturas_total"], serde_json::json!(0));
}

/// Where the "other machine" of these tests connects from: to the appliance, 127.0.0.2 is a
/// client like any on the LAN (127.0.0.1, the address it listens on, counts as itself).
const LAN_CLIENT: [u8; 4] = [127, 0, 0, 2];

/// A TCP connection from [`LAN_CLIENT`].
async fn connect_from_lan(port: u16) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((LAN_CLIENT, 0).into()).unwrap();
    socket.connect(([127, 0, 0, 1], port).into()).await.unwrap()
}

/// A TCP connection from the LAN that never starts (or never finishes) the TLS handshake.
async fn half_open(port: u16, partial_hello: bool) -> tokio::net::TcpStream {
    let mut s = connect_from_lan(port).await;
    if partial_hello {
        // The first bytes of a TLS record header announcing a ClientHello, then silence.
        s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .await
            .unwrap();
    }
    s
}

/// Seconds until the server closes `s` (reading nothing), at most `limit`.
async fn closed_after(mut s: tokio::net::TcpStream, started: Instant, limit: Duration) -> f64 {
    let _ = read_all(&mut s, limit).await;
    started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_tls_handshakes_are_closed_in_time_and_block_nobody() {
    const HEADER_TIMEOUT_S: f64 = 4.0;
    let opts = Options {
        http_toml: "header_timeout_s = 4\nmax_connections_per_address = 12\n".into(),
        ..Options::default()
    };
    let t = TlsAppliance::start(opts);
    let started = Instant::now();
    let mut http_half = Vec::new();
    for i in 0..12 {
        http_half.push(half_open(t.https_port, i % 2 == 0).await);
    }
    // The per-address cap counts TLS connections: 12 half-open handshakes fill the address's
    // 12 slots, so its next plain request is refused with 503 and its next TLS connection is
    // closed before any handshake.
    // The handshakes are counted once the server has accepted them, which a loaded machine
    // may do a little after the client's connect returned: ask again until they are.
    let answer = loop {
        let mut plain = connect_from_lan(t.app.http_port).await;
        plain
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_all(&mut plain, Duration::from_secs(1)).await;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        if answer.starts_with("HTTP/1.1 503") || started.elapsed().as_secs_f64() > 2.5 {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        started.elapsed().as_secs_f64() < HEADER_TIMEOUT_S,
        "too slow to test the cap"
    );
    assert!(
        answer.starts_with("HTTP/1.1 503"),
        "the cap shared by both HTTP listeners did not count the TLS connections: {answer:?}"
    );
    let mut refused = connect_from_lan(t.https_port).await;
    let quick = Instant::now();
    assert!(
        read_all(&mut refused, Duration::from_secs(3))
            .await
            .is_empty()
    );
    assert!(
        quick.elapsed() < Duration::from_secs(1),
        "over-cap TLS connection was held"
    );

    // Half-open MQTT handshakes do not stop the broker's TLS listener: a complete client gets
    // its CONNACK at once (before patch 13 it waited for them forever).
    let mqtt_started = Instant::now();
    let mut mqtt_half = Vec::new();
    for i in 0..10 {
        mqtt_half.push(half_open(t.mqtts_port, i % 2 == 0).await);
    }
    let mut s = connect(t.mqtts_port, t.client()).await.unwrap();
    assert_eq!(
        mqtt_connack(&mut s, "mientras", MQTT_USER, MQTT_PASS).await,
        Some(0)
    );
    assert!(
        mqtt_started.elapsed() < Duration::from_secs(5),
        "MQTT over TLS waited on half-open handshakes"
    );
    // A client from this machine still gets HTTPS while the LAN address is at its cap.
    let (status, _) = https_request(t.https_port, t.client(), "GET", "/healthz", None, None).await;
    assert_eq!(status, 200);

    // HTTPS: the handshake counts towards header_timeout_s.
    let limit = Duration::from_secs(20);
    let mut worst = 0.0f64;
    for s in http_half {
        worst = worst.max(closed_after(s, started, limit).await);
    }
    eprintln!("half-open HTTPS handshakes closed after at most {worst:.1} s");
    assert!(
        worst < HEADER_TIMEOUT_S + 2.0,
        "half-open HTTPS handshakes stayed {worst:.1} s (header timeout {HEADER_TIMEOUT_S} s)"
    );

    // MQTT over TLS: within the broker's connection timeout (10 s).
    let mut worst = 0.0f64;
    for s in mqtt_half {
        worst = worst.max(closed_after(s, mqtt_started, limit).await);
    }
    eprintln!("half-open MQTT TLS handshakes closed after at most {worst:.1} s");
    assert!(
        worst < 12.5,
        "half-open MQTT TLS handshakes stayed {worst:.1} s"
    );
    let mut s = connect(t.mqtts_port, t.client()).await.unwrap();
    assert_eq!(
        mqtt_connack(&mut s, "despues", MQTT_USER, MQTT_PASS).await,
        Some(0)
    );
}
