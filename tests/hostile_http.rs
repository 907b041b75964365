//! A hostile laptop on the farm's network, HTTP side: floods of half-open requests, stalled
//! bodies and idle kept-alive connections must not starve the UI, the API, the MQTT sensors or
//! the watchdog's loopback health check, even under the 1024 open files a service gets when
//! its unit sets no `LimitNOFILE`.
//!
//! The attacker's connections come from other addresses of the loopback network (127.0.0.2
//! and up): to the appliance they are clients like any on the LAN, while its own checks come
//! from 127.0.0.1, the address it listens on.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Appliance, Options, Publisher, http_get_status, open_fds};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Header timeout of these tests (the default is 10 s).
const HEADER_TIMEOUT_S: u64 = 2;

/// The defaults of `[http]` the flood runs against.
const MAX_CONNECTIONS: usize = 256;
const MAX_PER_ADDRESS: usize = 32;

/// Connects from `source` and sends the start of a request that never ends.
async fn half_open(source: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let mut s = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: biogestor\r\n")
        .await?;
    Ok(s)
}

/// How a half-open connection ended: refused on arrival (a 503, or closed before any answer
/// within `quick`), or held by the server until it closed it after `lifetime`.
#[derive(Debug)]
enum Fate {
    Refused,
    Held { lifetime: Duration },
    StillOpen,
}

async fn fate(mut s: TcpStream, opened: Instant, quick: Duration, limit: Duration) -> Fate {
    let mut buf = [0u8; 256];
    let mut first = true;
    loop {
        let left = limit.saturating_sub(opened.elapsed());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return Fate::StillOpen,
            Ok(Ok(n)) if n > 0 && first && buf.starts_with(b"HTTP/1.1 503") => {
                return Fate::Refused;
            }
            Ok(Ok(n)) if n > 0 => first = false,
            // EOF or reset.
            Ok(_) if opened.elapsed() < quick => return Fate::Refused,
            Ok(_) => {
                return Fate::Held {
                    lifetime: opened.elapsed(),
                };
            }
        }
    }
}

fn http_section() -> String {
    format!("header_timeout_s = {HEADER_TIMEOUT_S}\nidle_timeout_s = 2\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_half_open_requests_starves_nobody() {
    common::raise_open_files(8192);
    let app = Appliance::start(Options {
        http_toml: http_section(),
        open_files: Some(1024),
        ..Options::default()
    });
    let idle_fds = open_fds(app.pid());
    let started = Instant::now();
    // One laptop with 100 connections, and 50 more addresses with 20 each: 1,100 in all.
    let mut sources = vec![Ipv4Addr::new(127, 0, 0, 2); 100];
    for i in 0..1000u32 {
        sources.push(Ipv4Addr::new(127, 0, 0, 3 + (i % 50) as u8));
    }
    // Each connection is watched from the moment it opens, so a refusal (closed at once) and
    // a connection held until the header timeout are told apart by when they close.
    let limit = Duration::from_secs(HEADER_TIMEOUT_S + 8);
    let quick = Duration::from_millis(HEADER_TIMEOUT_S * 1000 / 2);
    let mut tasks = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let s = half_open(*source, app.http_port)
            .await
            .unwrap_or_else(|e| panic!("attack connection {i}: {e}"));
        let (source, opened) = (*source, Instant::now());
        tasks.push(tokio::spawn(async move {
            (source, fate(s, opened, quick, limit).await)
        }));
    }
    let opened_in = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let attack_fds = open_fds(app.pid());

    // Everything still works while the flood holds every slot it could get.
    let probe = Instant::now();
    assert_eq!(http_get_status(app.http_port, "/healthz"), Some(200));
    let ui = reqwest::get(app.url("/")).await.expect("UI");
    assert_eq!(ui.status(), 200);
    let (status, _) = app.get("/api/dashboard/stats/").await;
    assert_eq!(status, 200, "the API answers during the flood");
    let mut sensor = Publisher::sensor(app.mqtt_port, "sensor-durante-ataque").await;
    sensor
        .publish("Prueba", json!({"presion": 1013.2}).to_string())
        .await;
    assert_eq!(sensor.wait_acked(1, Duration::from_secs(10)).await, 1);
    assert_eq!(app.wait_readings(1, Duration::from_secs(10)).await, 1);
    let probe_took = probe.elapsed();

    // Then the server closes every connection it held within the header timeout.
    let mut held = 0;
    let mut held_by_laptop = 0;
    let mut refused = 0;
    let mut longest = Duration::ZERO;
    let mut still_open = 0;
    for t in tasks {
        let (source, fate) = t.await.expect("task");
        match fate {
            Fate::Refused => refused += 1,
            Fate::Held { lifetime } => {
                held += 1;
                held_by_laptop += usize::from(source == Ipv4Addr::new(127, 0, 0, 2));
                longest = longest.max(lifetime);
            }
            Fate::StillOpen => still_open += 1,
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_fds = open_fds(app.pid());
    eprintln!(
        "flood: 1100 half-open connections opened in {opened_in:?}; server fds idle {idle_fds}, \
         under attack {attack_fds}, after {after_fds}; held {held} (laptop {held_by_laptop}), \
         refused {refused}, still open {still_open}; longest held {longest:?}; \
         UI/API/MQTT/healthz answered in {probe_took:?}"
    );
    assert_eq!(
        still_open, 0,
        "every half-open request is closed by the server"
    );
    assert!(
        longest <= Duration::from_secs(HEADER_TIMEOUT_S) + Duration::from_millis(1500),
        "held connections close after the header timeout, longest {longest:?}"
    );
    assert!(held <= MAX_CONNECTIONS, "global cap: {held} held");
    assert!(
        held_by_laptop <= MAX_PER_ADDRESS,
        "per-address cap: the laptop held {held_by_laptop}"
    );
    assert_eq!(held + refused, 1100);
    assert!(
        attack_fds <= idle_fds + MAX_CONNECTIONS + 40,
        "descriptors stay bounded: {attack_fds} (idle {idle_fds})"
    );
    assert!(
        after_fds <= idle_fds + 10,
        "and are given back: {after_fds}"
    );
    let log = app.log();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(
        log.contains("HTTP connections refused (limit reached)"),
        "refusals are logged:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_and_idle_keep_alive_connections_are_closed() {
    let app = Appliance::start(Options {
        http_toml: http_section(),
        ..Options::default()
    });
    // A body that stops arriving: the request fails and the connection closes.
    let mut s = TcpStream::connect(("127.0.0.1", app.http_port))
        .await
        .expect("connect");
    s.write_all(
        b"POST /api/iniciar-sesion/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"username\":",
    )
    .await
    .expect("send");
    let start = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    let stalled = start.elapsed();
    assert!(read.is_ok(), "a stalled body must not hold the connection");
    assert!(
        stalled < Duration::from_secs(5),
        "closed after the idle timeout, took {stalled:?}"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");

    // A kept-alive connection waiting for its next request closes after the header timeout.
    let mut s = TcpStream::connect(("127.0.0.1", app.http_port))
        .await
        .expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.expect("answer");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let start = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
    let idle = start.elapsed();
    assert!(read.is_ok(), "an idle keep-alive connection must be closed");
    assert!(
        idle >= Duration::from_millis(HEADER_TIMEOUT_S * 1000 - 200)
            && idle < Duration::from_secs(HEADER_TIMEOUT_S + 2),
        "closed after about the header timeout, took {idle:?}"
    );
}
