//! Registration flood from the farm's Wi-Fi: many addresses sending registrations as fast as
//! the appliance answers. Refused registrations are cheap (no password hash), the accounts
//! created stay within the configured limits, and the administrator's login is not slowed.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::accounts::{USER_PASS, assert_detail, call, form};
use common::{ADMIN_PASS, ADMIN_USER, Appliance, Options};
use serde_json::{Value, json};

/// A client whose requests leave from `addr` (any 127.x.y.z works on Linux loopback).
fn client_from(addr: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(addr))
        .build()
        .expect("client")
}

/// POST /api/crear-usuario/ from `addr`: (status, Retry-After, body).
async fn register_from(
    client: &reqwest::Client,
    app: &Appliance,
    body: &Value,
) -> (u16, Option<String>, Value) {
    let resp = client
        .post(app.url("/api/crear-usuario/"))
        .json(body)
        .send()
        .await
        .expect("register request");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

/// Seconds one administrator login takes.
async fn admin_login_seconds(app: &Appliance) -> f64 {
    let t = Instant::now();
    let (status, body) = common::accounts::login(app, ADMIN_USER, ADMIN_PASS).await;
    assert_eq!(status, 200, "{body}");
    t.elapsed().as_secs_f64()
}

async fn pending_total(app: &Appliance) -> u64 {
    let (status, body) = call(
        app,
        "GET",
        "/api/usuarios/pendientes/",
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["total_pendientes"].as_u64().expect("total_pendientes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_flood_stays_within_the_limits_and_the_admin_logs_in_at_normal_speed() {
    let app = Arc::new(Appliance::start(Options {
        production_limits: true,
        ..Options::default()
    }));
    let mut baseline = Vec::new();
    for _ in 0..3 {
        baseline.push(admin_login_seconds(&app).await);
    }
    baseline.sort_by(f64::total_cmp);
    let baseline = baseline[1];

    // 8 workers for 20 s, each cycling through 5 of 40 addresses.
    const FLOOD: Duration = Duration::from_secs(20);
    let created = Arc::new(AtomicU64::new(0));
    let limited = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let bad_refusals = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let started = Instant::now();
    let workers: Vec<_> = (0..8u8)
        .map(|w| {
            let (app, created, limited, other, bad) = (
                app.clone(),
                created.clone(),
                limited.clone(),
                other.clone(),
                bad_refusals.clone(),
            );
            tokio::spawn(async move {
                let clients: Vec<_> = (0..5u8)
                    .map(|i| client_from([127, 0, 1, 1 + w * 5 + i]))
                    .collect();
                let mut n = 0u32;
                while started.elapsed() < FLOOD {
                    let client = &clients[n as usize % clients.len()];
                    let body = form(&format!("flood-{w}-{n}"));
                    n += 1;
                    let (status, retry, body) = register_from(client, &app, &body).await;
                    match status {
                        201 => {
                            created.fetch_add(1, Ordering::Relaxed);
                        }
                        429 => {
                            limited.fetch_add(1, Ordering::Relaxed);
                            let spanish = body["detail"].as_str().is_some_and(|d| {
                                d.contains("registro") || d.contains("pendientes")
                            });
                            let retry_ok = retry
                                .as_deref()
                                .and_then(|r| r.parse::<u64>().ok())
                                .is_some();
                            if !spanish || !retry_ok {
                                bad.lock()
                                    .unwrap()
                                    .push(format!("{body} retry-after {retry:?}"));
                            }
                            // A refused client does not hammer: the flood keeps its pace anyway.
                        }
                        _ => {
                            other.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    // The administrator logs in three times during the flood.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut during = Vec::new();
    for _ in 0..3 {
        during.push(admin_login_seconds(&app).await);
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    for w in workers {
        w.await.expect("worker");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let pending = pending_total(&app).await;
    let worst = during.iter().copied().fold(0.0, f64::max);
    eprintln!(
        "registration flood: {} created, {} refused with 429, {} other in {elapsed:.1} s; \
         {pending} pending afterwards; admin login {baseline:.3} s before, {:?} s during",
        created.load(Ordering::Relaxed),
        limited.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed),
        during.iter().map(|s| format!("{s:.3}")).collect::<Vec<_>>()
    );

    assert!(
        pending <= 20,
        "{pending} accounts pending: the default allows 20"
    );
    assert!(created.load(Ordering::Relaxed) <= 20);
    assert_eq!(other.load(Ordering::Relaxed), 0, "only 201 or 429");
    let bad = bad_refusals.lock().unwrap();
    assert!(
        bad.is_empty(),
        "429 without a Spanish detail or Retry-After: {:?}",
        &bad[..bad.len().min(3)]
    );
    assert!(
        worst <= baseline * 3.0 + 0.5,
        "admin login took {worst:.3} s during the flood ({baseline:.3} s before)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_registers_a_few_accounts_then_waits() {
    let app = Appliance::start(Options {
        production_limits: true,
        ..Options::default()
    });
    let client = client_from([127, 0, 2, 1]);
    for i in 0..5 {
        let (status, _, body) = register_from(&client, &app, &form(&format!("vecino{i}"))).await;
        assert_eq!(status, 201, "registration {i}: {body}");
    }
    let (status, retry, body) = register_from(&client, &app, &form("vecino5")).await;
    assert_eq!(
        status, 429,
        "the sixth from one address within an hour: {body}"
    );
    assert_detail(&body, "per-address limit");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("esta dirección")),
        "{body}"
    );
    let secs: u64 = retry.and_then(|r| r.parse().ok()).expect("Retry-After");
    assert!((1..=3600).contains(&secs), "Retry-After {secs}");
    // Another address is not affected.
    let (status, _, body) =
        register_from(&client_from([127, 0, 2, 2]), &app, &form("vecina")).await;
    assert_eq!(status, 201, "{body}");
    // Form errors are answered before any limit is spent or checked.
    let mut bad = form("mal");
    bad["password2"] = json!("otra-cosa-distinta");
    let (status, _, body) = register_from(&client, &app, &bad).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_accounts_are_capped_until_an_administrator_decides() {
    let app = Appliance::start(Options {
        production_limits: true,
        extra_toml: "[auth]\nmax_pending_accounts = 3\nregistrations_per_address_per_hour = 100\n"
            .into(),
        ..Options::default()
    });
    let mut ids = Vec::new();
    for i in 0..3 {
        let (status, body) =
            common::accounts::post(&app, "/api/crear-usuario/", form(&format!("espera{i}"))).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["usuario"]["id"].as_u64().expect("id"));
    }
    let (status, body) = common::accounts::post(&app, "/api/crear-usuario/", form("espera3")).await;
    assert_eq!(status, 429, "a fourth pending account: {body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("pendientes")),
        "{body}"
    );
    assert_eq!(pending_total(&app).await, 3);
    // Rejecting one frees a place.
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/usuario/{}/rechazar/", ids[0]),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = common::accounts::post(&app, "/api/crear-usuario/", form("espera3")).await;
    assert_eq!(status, 201, "{body}");
    let _ = USER_PASS;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_code_works_even_when_the_pending_list_is_full() {
    let app = Appliance::start(Options {
        production_limits: true,
        create_admin: false,
        extra_toml: "[auth]\nmax_pending_accounts = 2\n".into(),
        ..Options::default()
    });
    for i in 0..2 {
        let (status, body) =
            common::accounts::post(&app, "/api/crear-usuario/", form(&format!("antes{i}"))).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = common::accounts::post(&app, "/api/crear-usuario/", form("antes2")).await;
    assert_eq!(status, 429, "{body}");
    let code = std::fs::read_to_string(app.data_dir().join("setup-code"))
        .expect("setup code")
        .trim()
        .to_string();
    let mut owner = form("duena");
    owner["setup_code"] = json!(code);
    let (status, body) = common::accounts::post(&app, "/api/crear-usuario/", owner).await;
    assert_eq!(
        status, 201,
        "the owner is never locked out by a full list: {body}"
    );
    assert_eq!(body["usuario"]["perfil"]["aprobado"], json!(true));
}
