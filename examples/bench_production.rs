//! Production-query benchmark helper for `scripts/bench.sh`.
//!
//! - `seed DATA_DIR READINGS DAYS [EXTRA]`: with the service stopped, creates a stage loaded
//!   DAYS ago and writes READINGS readings spread evenly over those days through the store's
//!   batch writer (the same path as MQTT ingest), with a cumulative gas counter and EXTRA
//!   extra channels per reading (default 0; 32 is the most a payload may carry).
//! - `scan DATA_DIR`: times the daily-aggregate path against recomputing the same per-day gas
//!   by scanning every raw reading of the stage; prints both medians and the ratio.
//! - `http PORT TOKEN N`: times N `GET /api/dashboard/production/current/`; prints p50/p99.
//! - `report PORT TOKEN N`: times N `POST /api/dashboard/report/create/`; prints the median.

use std::time::{Duration, Instant};

use biogestor::production::Calendar;
use biogestor::reading::{CHANNELS, Channel, Reading};
use biogestor::sitetime::{day_date, now_us, today};
use biogestor::store::Store;
use biogestor::store::daily::fold::Fold;
use biogestor::store::daily::{Daily, MeterRules};
use biogestor::store::stages::StageFields;
use biogestor::store::writer::{self, Incoming, WriterConfig};

type Error = Box<dyn std::error::Error>;
const TZ: &str = "America/Bogota";

fn open(dir: &str) -> Result<Store, Error> {
    Ok(Store::open(std::path::Path::new(dir), 64, TZ.parse()?)?)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn seed(dir: &str, n: u64, days: u64, extra: usize) -> Result<(), Error> {
    let store = open(dir)?;
    let tz = store.timezone();
    let start_day = today(tz) - days as i32;
    let start_us = now_us() - days as i64 * 86_400_000_000;
    let (stage, _) = store.create_stage(
        StageFields {
            number: None,
            date: start_day,
            people: "benchmark".into(),
            material_type: "bovino".into(),
            material_amount_kg: 5000.0,
            material_humidity_pct: 87.0,
            added_water_m3: 2.0,
            temperature_c: 30.0,
        },
        start_us,
    )?;
    let (w, join) = writer::spawn(
        store.clone(),
        WriterConfig::new(Duration::from_millis(1000), 20_000, Default::default()),
    )?;
    let step = (days as i64 * 86_400_000_000) / n as i64;
    let t = Instant::now();
    for i in 0..n as i64 {
        let mut values = [None; CHANNELS];
        values[Channel::GasTotal as usize] = Some(i as f64 * 0.0004);
        values[Channel::Presion as usize] = Some(1006.0 + (i % 17) as f64 * 0.1);
        values[Channel::Temperatura as usize] = Some(30.0 + (i % 11) as f64 * 0.1);
        values[Channel::Calidad as usize] = Some(60.0);
        w.submit(Incoming {
            stage: stage.id,
            ts_us: start_us + i * step,
            reading: Reading {
                values,
                extra: (0..extra)
                    .map(|k| {
                        (
                            format!("canal_extra_{k:02}"),
                            (i % 97) as f64 + k as f64 * 0.5,
                        )
                    })
                    .collect(),
                sensor_ts_ms: None,
                source: "Prueba".into(),
                clock: Default::default(),
            },
        })?;
    }
    w.flush()?;
    drop(w);
    let _ = join.join();
    println!(
        "seeded {n} readings over {days} days into stage {} in {:.1} s",
        stage.id,
        t.elapsed().as_secs_f64()
    );
    store.close()?;
    Ok(())
}

fn scan(dir: &str) -> Result<(), Error> {
    let store = open(dir)?;
    let tz = store.timezone();
    let stage = store.stages()?.into_iter().next().ok_or("no stage")?;
    let materials = biogestor::model::default_materials();
    let compute = |daily: &[(i32, Daily)]| {
        biogestor::production::compute(
            &stage,
            materials.get(&stage.material_type),
            daily,
            Calendar {
                tz,
                today: today(tz),
                today_elapsed: 1.0,
            },
            None,
            biogestor::production::SiteModel::default(),
        )
    };
    let mut fast = Vec::new();
    let mut fast_total = 0.0;
    for _ in 0..50 {
        let t = Instant::now();
        let daily = store.daily(stage.id, stage.date, i32::MAX)?;
        fast_total = compute(&daily)?.summary.actual_total_m3;
        fast.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut slow = Vec::new();
    let mut slow_total = 0.0;
    let mut rows = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let mut meters = std::collections::HashMap::new();
        let mut fold = Fold::new(tz, MeterRules::default(), &mut meters);
        let mut from = i64::MIN;
        rows = 0;
        loop {
            let page = store.readings(Some(stage.id), from, i64::MAX, 100_000)?;
            for r in &page.readings {
                fold.apply(stage.id, r.ts_us, &r.reading, &mut |_| Ok::<_, Error>(None))?;
            }
            rows += page.readings.len();
            match page.next_us {
                Some(n) => from = n,
                None => break,
            }
        }
        let mut days: Vec<(i32, Daily)> = fold
            .finish()
            .0
            .into_iter()
            .map(|((_, day), d)| (day, d))
            .collect();
        days.sort_by_key(|(day, _)| *day);
        slow_total = compute(&days)?.summary.actual_total_m3;
        slow.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (f, s) = (median(fast), median(slow));
    println!(
        "scan readings={rows} days={} daily_path_ms={f:.3} raw_scan_ms={s:.1} ratio={:.0} totals_equal={}",
        store.daily(stage.id, stage.date, i32::MAX)?.len(),
        s / f,
        (fast_total - slow_total).abs() < 1e-6 * fast_total.max(1.0)
    );
    let _ = day_date(stage.date);
    Ok(())
}

async fn http(port: u16, token: &str, n: usize) -> Result<(), Error> {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/dashboard/production/current/");
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 5 {
        let t = Instant::now();
        let resp = client.get(&url).bearer_auth(token).send().await?;
        let status = resp.status();
        let _ = resp.bytes().await?;
        if !status.is_success() {
            return Err(format!("HTTP {status}").into());
        }
        if i >= 5 {
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "production_current_ms p50={:.2} p99={:.2} n={n}",
        times[n / 2],
        times[(n * 99 / 100).min(n - 1)]
    );
    Ok(())
}

async fn report(port: u16, token: &str, n: usize) -> Result<(), Error> {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/dashboard/report/create/");
    let mut times = Vec::with_capacity(n);
    let mut last_id = 0;
    for _ in 0..n {
        let t = Instant::now();
        let resp = client
            .post(&url)
            .bearer_auth(token)
            .json(&serde_json::json!({"report_type": "normal", "observations": "benchmark"}))
            .send()
            .await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await?;
        if !status.is_success() {
            return Err(format!("HTTP {status}: {body}").into());
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        last_id = body["id"].as_u64().unwrap_or(0);
    }
    println!(
        "report_create_ms median={:.1} n={n} last_id={last_id}",
        median(times)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("seed") if args.len() == 5 || args.len() == 6 => seed(
            &args[2],
            args[3].parse()?,
            args[4].parse()?,
            args.get(5).map_or(Ok(0), |e| e.parse())?,
        ),
        Some("scan") if args.len() == 3 => scan(&args[2]),
        Some("http") if args.len() == 5 => http(args[2].parse()?, &args[3], args[4].parse()?).await,
        Some("report") if args.len() == 5 => report(args[2].parse()?, &args[3], args[4].parse()?).await,
        _ => Err("usage: bench_production seed DIR N DAYS [EXTRA] | scan DIR | http PORT TOKEN N | report PORT TOKEN N".into()),
    }
}
