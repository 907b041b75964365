//! Burst driver for the memory table of `scripts/bench.sh`: drives a running service over
//! HTTP so the script can read its resident memory before and after.
//!
//! - `logins PORT USER PASSWORD N CONCURRENCY`: N logins, CONCURRENCY at a time; prints the
//!   time taken.
//! - `pages PORT TOKEN N LIMIT`: N `GET /api/dashboard/readings/?limit=LIMIT`, one after the
//!   other, each read to the end and parsed; prints the readings per page and the page size.

use std::time::Instant;

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn logins(port: u16, user: &str, password: &str, n: usize, conc: usize) -> Result<(), Error> {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/iniciar-sesion/");
    let body = serde_json::json!({"username": user, "password": password});
    let left = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(n));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc.max(1) {
        let (client, url, body, left) = (client.clone(), url.clone(), body.clone(), left.clone());
        tasks.push(tokio::spawn(async move {
            use std::sync::atomic::Ordering;
            while left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1))
                .is_ok()
            {
                let resp = client.post(&url).json(&body).send().await?;
                let status = resp.status();
                let _ = resp.bytes().await?;
                if !status.is_success() {
                    return Err::<(), Error>(format!("login: HTTP {status}").into());
                }
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!(
        "logins n={n} concurrency={conc} seconds={:.1}",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn pages(port: u16, token: &str, n: usize, limit: usize) -> Result<(), Error> {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/dashboard/readings/?limit={limit}");
    let t = Instant::now();
    let (mut rows, mut bytes) = (0, 0);
    for _ in 0..n {
        let resp = client.get(&url).bearer_auth(token).send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if !status.is_success() {
            return Err(format!("readings: HTTP {status}").into());
        }
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        rows = page["readings"].as_array().map_or(0, Vec::len);
        bytes = body.len();
    }
    println!(
        "pages n={n} readings_per_page={rows} bytes_per_page={bytes} seconds={:.1}",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("logins") if args.len() == 7 => {
            logins(
                args[2].parse()?,
                &args[3],
                &args[4],
                args[5].parse()?,
                args[6].parse()?,
            )
            .await
        }
        Some("pages") if args.len() == 6 => {
            pages(args[2].parse()?, &args[3], args[4].parse()?, args[5].parse()?).await
        }
        _ => Err("usage: bench_memory logins PORT USER PASSWORD N CONCURRENCY | pages PORT TOKEN N LIMIT".into()),
    }
}
