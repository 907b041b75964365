//! Resident memory comes back near idle after bursts: each login runs an argon2 hash over
//! 19 MiB, and a page of 10 000 readings with many channels is tens of MB of JSON. Neither may
//! stay resident afterwards (the unit runs under `MemoryMax=256M`), nor may one large page
//! need more than a few MB while it is sent.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{ADMIN_PASS, ADMIN_USER, Appliance, Options, Publisher, rss_kib};
use serde_json::{Value, json};

/// How far above idle the resident memory may stay after a burst.
const MARGIN_KIB: u64 = 40 * 1024;

/// Resident memory once it has stopped moving for a moment (threads finishing, freed pages
/// going back), sampled for at most a few seconds.
fn settled_rss(pid: u32) -> u64 {
    let mut last = rss_kib(pid);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(250));
        let now = rss_kib(pid);
        if now.abs_diff(last) < 512 {
            return now;
        }
        last = now;
    }
    last
}

/// Samples the resident memory of `pid` every few milliseconds until dropped; `peak()` is
/// the highest value seen.
struct PeakSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakSampler {
    fn start(pid: u32) -> PeakSampler {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (peak, stop) = (peak.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        PeakSampler {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for PeakSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn memory_returns_near_idle_after_100_logins() {
    let app = Appliance::start(Options::default());
    let pid = app.pid();
    let idle = settled_rss(pid);
    let started = Instant::now();
    // Four clients at once keep both hashing slots busy and spread the hashes over several
    // blocking threads (and so over several allocator arenas).
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..25 {
                    app.login_blocking(ADMIN_USER, ADMIN_PASS);
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let after = settled_rss(pid);
    eprintln!(
        "100 logins in {:.1} s: idle {} KiB, after {} KiB",
        elapsed.as_secs_f64(),
        idle,
        after
    );
    assert!(
        after <= idle + MARGIN_KIB,
        "100 logins left {} KiB resident over idle ({idle} → {after} KiB)",
        after.saturating_sub(idle)
    );
}

/// A payload with the known channels and 32 extra ones (the most a reading keeps).
fn wide_payload(i: u64) -> String {
    let mut m = serde_json::Map::new();
    m.insert("presion".into(), json!(1000.0 + (i % 50) as f64 * 0.1));
    m.insert("temperatura".into(), json!(30.0 + (i % 7) as f64 * 0.1));
    m.insert("gas_total_m3".into(), json!(i as f64 * 0.001));
    for k in 0..32 {
        m.insert(
            format!("canal_extra_{k:02}"),
            json!(k as f64 + (i % 13) as f64),
        );
    }
    Value::Object(m).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_returns_near_idle_after_repeated_large_pages() {
    const READINGS: u64 = 10_000;
    let app = Appliance::start(Options::default());
    let pid = app.pid();
    let mut p = Publisher::sensor(app.mqtt_port, "ancho").await;
    for i in 0..READINGS {
        p.publish("Prueba", wide_payload(i)).await;
    }
    assert_eq!(
        p.wait_acked(READINGS, Duration::from_secs(60)).await,
        READINGS
    );
    assert_eq!(
        app.wait_readings(READINGS, Duration::from_secs(60)).await,
        READINGS
    );
    let idle = tokio::task::spawn_blocking(move || settled_rss(pid))
        .await
        .unwrap();

    let sampler = PeakSampler::start(pid);
    let client = app.client();
    let url = app.url("/api/dashboard/readings/?limit=10000");
    let fetch = |client: reqwest::Client, url: String| async move {
        let resp = client.get(&url).send().await.expect("GET readings");
        assert_eq!(resp.status(), 200);
        let page: Value = resp.json().await.expect("a complete JSON page");
        let list = page["readings"].as_array().expect("readings array");
        assert_eq!(list.len(), READINGS as usize);
        assert!(page["next"].is_null(), "one page holds everything");
        assert_eq!(list[0]["canal_extra_31"], json!(31.0));
        list.len()
    };
    let started = Instant::now();
    for _ in 0..10 {
        fetch(client.clone(), url.clone()).await;
    }
    // And four at once.
    let together: Vec<_> = (0..4)
        .map(|_| tokio::spawn(fetch(client.clone(), url.clone())))
        .collect();
    for t in together {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let peak = sampler.peak();
    drop(sampler);
    let after = tokio::task::spawn_blocking(move || settled_rss(pid))
        .await
        .unwrap();
    eprintln!(
        "14 pages of {READINGS} wide readings in {:.1} s: idle {idle} KiB, peak {peak} KiB, \
         after {after} KiB",
        elapsed.as_secs_f64()
    );
    assert!(
        after <= idle + MARGIN_KIB,
        "the pages left {} KiB resident over idle ({idle} → {after} KiB)",
        after.saturating_sub(idle)
    );
    assert!(
        peak <= idle + MARGIN_KIB,
        "sending the pages took {} KiB over idle (peak {peak} KiB)",
        peak.saturating_sub(idle)
    );
}

/// The same with TLS: each login on a new HTTPS connection (a full handshake) leaves nothing
/// resident either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_returns_near_idle_after_200_https_logins() {
    const LOGINS: usize = 200;
    let t = common::tls::TlsAppliance::start(Options::default());
    let pid = t.app.pid();
    // One HTTPS request first, so idle includes what the TLS stack sets up once.
    common::tls::https_request(t.https_port, t.client(), "GET", "/healthz", None, None).await;
    let idle = tokio::task::spawn_blocking(move || settled_rss(pid))
        .await
        .unwrap();
    let started = Instant::now();
    // Four clients at once, each login on a new connection with a full handshake.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (port, config) = (t.https_port, t.client());
        tasks.push(tokio::spawn(async move {
            for _ in 0..LOGINS / 4 {
                common::tls::https_login(port, config.clone(), ADMIN_USER, ADMIN_PASS).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let after = tokio::task::spawn_blocking(move || settled_rss(pid))
        .await
        .unwrap();
    eprintln!(
        "{LOGINS} HTTPS logins in {:.1} s: idle {idle} KiB, after {after} KiB",
        elapsed.as_secs_f64()
    );
    assert!(
        after <= idle + MARGIN_KIB,
        "{LOGINS} HTTPS logins left {} KiB resident over idle ({idle} → {after} KiB)",
        after.saturating_sub(idle)
    );
}
