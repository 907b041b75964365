//! Restarts, SIGTERM and `kill -9`: what was acknowledged stays stored.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Appliance, Options, Publisher, WsClient};
use serde_json::json;

/// Publishes `{"presion":..,"seq":n}` at roughly `per_second` until `stop` is set; returns
/// the number published.
fn steady_publisher(
    p: Arc<Publisher>,
    per_second: u64,
    stop: Arc<AtomicBool>,
    published: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            p.publish(
                "Prueba",
                json!({"presion": 1000.0 + (n % 10) as f64, "seq": n}).to_string(),
            )
            .await;
            n += 1;
            published.store(n, Ordering::SeqCst);
            let due = start + Duration::from_secs_f64(n as f64 / per_second as f64);
            tokio::time::sleep_until(due.into()).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_readings_and_counters() {
    let mut app = Appliance::start(Options::default());
    let mut p = Publisher::sensor(app.mqtt_port, "restart").await;
    for i in 0..300 {
        p.publish(
            "Prueba",
            json!({"temperatura": 30.0 + (i % 5) as f64}).to_string(),
        )
        .await;
    }
    p.publish("Prueba", b"roto".to_vec()).await;
    assert_eq!(p.wait_acked(301, Duration::from_secs(10)).await, 301);
    assert_eq!(app.wait_readings(300, Duration::from_secs(10)).await, 300);
    let before = app.stats().await;
    let readings_before = app.all_readings().await;
    drop(p);
    let status = app.signal("TERM", Duration::from_secs(10));
    assert!(status.success(), "SIGTERM exits 0: {status}\n{}", app.log());
    app.restart();
    let after = app.stats().await;
    assert_eq!(after["lecturas_total"], json!(300));
    assert_eq!(after["mensajes_rechazados"], json!(1));
    assert_eq!(after["ultima_lectura"], before["ultima_lectura"]);
    assert_eq!(app.all_readings().await, readings_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_loses_nothing_acknowledged() {
    // A long commit interval guarantees a pending batch when the signal arrives.
    let mut app = Appliance::start(Options {
        commit_interval_ms: 5000,
        ..Options::default()
    });
    let _ws1 = WsClient::connect(&app).await;
    let _ws2 = WsClient::connect(&app).await;
    let p = Arc::new(Publisher::sensor(app.mqtt_port, "term").await);
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let task = steady_publisher(p.clone(), 400, stop.clone(), published.clone());
    while p.acked() < 600 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let acked_before_signal = p.acked();
    eprintln!("SIGTERM after {acked_before_signal} acknowledged");
    let t = Instant::now();
    let status = app.signal("TERM", Duration::from_secs(15));
    let stop_time = t.elapsed();
    stop.store(true, Ordering::SeqCst);
    let _ = task.await;
    assert!(
        status.success(),
        "exit 0 after SIGTERM: {status}\n{}",
        app.log()
    );
    assert!(
        stop_time < Duration::from_secs(6),
        "stopped in {stop_time:?}"
    );
    app.restart();
    let stored = app.stats().await["lecturas_total"].as_u64().unwrap();
    assert!(
        stored >= acked_before_signal,
        "stored {stored} < acknowledged before SIGTERM {acked_before_signal}"
    );
    assert!(stored <= published.load(Ordering::SeqCst));
    let seqs: std::collections::BTreeSet<u64> = app
        .all_readings()
        .await
        .iter()
        .map(|r| r["seq"].as_f64().unwrap() as u64)
        .collect();
    assert_eq!(seqs.len() as u64, stored, "no duplicates");
    assert!(
        (0..acked_before_signal).all(|s| seqs.contains(&s)),
        "a prefix of the stream is complete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_loses_at_most_one_commit_interval() {
    const RATE: u64 = 500;
    let interval_ms = 1000;
    let mut app = Appliance::start(Options {
        commit_interval_ms: interval_ms,
        ..Options::default()
    });
    let p = Arc::new(Publisher::sensor(app.mqtt_port, "kill9").await);
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let task = steady_publisher(p.clone(), RATE, stop.clone(), published.clone());
    tokio::time::sleep(Duration::from_millis(3300)).await;
    let acked = p.acked();
    app.signal("KILL", Duration::from_secs(5));
    stop.store(true, Ordering::SeqCst);
    let _ = task.await;
    app.restart();
    let stored = app.stats().await["lecturas_total"].as_u64().unwrap();
    let readings = app.all_readings().await;
    assert_eq!(
        readings.len() as u64,
        stored,
        "the counter matches the stored rows"
    );
    let lost = acked.saturating_sub(stored);
    eprintln!("kill -9: acked {acked}, stored {stored}, lost {lost}");
    // One commit interval of readings at RATE, plus the batch being committed at the kill.
    let allowed = RATE * interval_ms / 1000 + RATE / 5;
    assert!(
        lost <= allowed,
        "lost {lost} acknowledged readings (allowed {allowed}); acked {acked}, stored {stored}"
    );
    assert!(stored > 0 && stored <= published.load(Ordering::SeqCst));
    assert_eq!(
        common::http_get_status(app.http_port, "/healthz"),
        Some(200)
    );
}
