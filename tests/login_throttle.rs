//! Failed-login throttling on the real binary: per user name and address with growing delays,
//! an address where the user logged in recently unaffected by failures elsewhere, per-address
//! and per-name limits for guesses spread over many names or many addresses, simultaneous
//! guesses counted up front, and lockouts in the log and in `GET /api/usuarios/bloqueos/`.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::accounts::{USER_PASS, assert_detail, call, user_with};
use common::{ADMIN_PASS, ADMIN_USER, Appliance, Options};
use serde_json::{Value, json};

/// A login from a chosen loopback address: (status, Retry-After in s, body).
async fn login_from(
    app: &Appliance,
    from: [u8; 4],
    user: &str,
    pass: &str,
) -> (u16, Option<u64>, Value) {
    let client = reqwest::Client::builder()
        .local_address(IpAddr::from(from))
        .build()
        .expect("client");
    let resp = client
        .post(app.url("/api/iniciar-sesion/"))
        .json(&json!({"username": user, "password": pass}))
        .send()
        .await
        .expect("login request");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

/// Asserts a 429 with a `detail` and a Retry-After within `range` seconds; returns it.
fn assert_limited(
    got: (u16, Option<u64>, Value),
    range: std::ops::RangeInclusive<u64>,
    context: &str,
) -> u64 {
    let (status, retry, body) = got;
    assert_eq!(status, 429, "{context}: {body}");
    assert_detail(&body, context);
    let secs = retry.unwrap_or_else(|| panic!("{context}: Retry-After in seconds"));
    assert!(
        range.contains(&secs),
        "{context}: Retry-After {secs}, expected {range:?}"
    );
    secs
}

/// The lockouts an administrator sees.
async fn lockouts(app: &Appliance) -> Vec<Value> {
    let (status, body) = call(
        app,
        "GET",
        "/api/usuarios/bloqueos/",
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["bloqueos"].as_array().cloned().expect("bloqueos list")
}

const HOME: [u8; 4] = [127, 0, 0, 1];
const WRONG: &str = "Clave-Equivocada-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_from_one_address_do_not_lock_the_admin_out_elsewhere() {
    // The administrator logged in from 127.0.0.1 when the appliance started.
    let app = Appliance::start(Options::default());
    const ATTACKER: [u8; 4] = [127, 0, 0, 66];
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(login_from(&app, ATTACKER, ADMIN_USER, WRONG).await.0);
    }
    let home = login_from(&app, HOME, ADMIN_USER, ADMIN_PASS).await;
    let elsewhere = login_from(&app, [127, 0, 0, 77], ADMIN_USER, ADMIN_PASS).await;
    let attacker = login_from(&app, ATTACKER, ADMIN_USER, ADMIN_PASS).await;
    eprintln!(
        "10 wrong passwords for admin from {ATTACKER:?}: answers {answers:?}; then the real \
         admin from its usual address: {} (Retry-After {:?}), from a new address: {} \
         (Retry-After {:?}), from the attacker's address: {} (Retry-After {:?})",
        home.0, home.1, elsewhere.0, elsewhere.1, attacker.0, attacker.1
    );
    assert_eq!(home.0, 200, "the usual address is not locked: {}", home.2);
    assert_eq!(
        elsewhere.0, 200,
        "nor a new one after 10 failures: {}",
        elsewhere.2
    );
    assert_eq!(
        answers.iter().filter(|s| **s == 401).count(),
        5,
        "five free attempts per name and address, then waiting: {answers:?}"
    );
    assert!(answers[5..].iter().all(|s| *s == 429), "{answers:?}");
    assert_limited(
        attacker,
        1..=2,
        "the attacker's address, even with the right password",
    );

    // Delays grow with each further failure.
    let mut waits = Vec::new();
    for _ in 0..2 {
        let (status, retry, _) = login_from(&app, ATTACKER, ADMIN_USER, WRONG).await;
        assert_eq!(status, 429);
        tokio::time::sleep(
            Duration::from_secs(retry.expect("Retry-After")) + Duration::from_millis(200),
        )
        .await;
        let (status, _, body) = login_from(&app, ATTACKER, ADMIN_USER, WRONG).await;
        assert_eq!(status, 401, "checked again after the wait: {body}");
        let (_, retry, _) = login_from(&app, ATTACKER, ADMIN_USER, WRONG).await;
        waits.push(retry.expect("Retry-After"));
    }
    eprintln!("delays after the 6th and 7th failures: {waits:?} s");
    assert!(
        waits[1] > waits[0] && waits[0] >= 2,
        "growing delays: {waits:?}"
    );

    // Logged, escaped, and visible to administrators (not to others).
    let log = app.log();
    assert!(
        log.lines().any(|l| l.contains("login throttled")
            && l.contains("127.0.0.66")
            && l.contains("admin")),
        "lockout in the log:\n{log}"
    );
    let list = lockouts(&app).await;
    let entry = list
        .iter()
        .find(|b| b["usuario"] == json!("admin") && b["direccion"] == json!("127.0.0.66"))
        .unwrap_or_else(|| panic!("admin at 127.0.0.66 listed: {list:?}"));
    assert_eq!(entry["ambito"], json!("usuario_direccion"), "{entry}");
    assert!(entry["fallos"].as_u64().is_some_and(|n| n >= 7), "{entry}");
    assert!(
        entry["activo"].is_boolean() && entry["hasta"].is_string(),
        "{entry}"
    );
    let (_, plain, _) = user_with(&app, "mirona", &["VerDashboard"]).await;
    let (status, body) = call(&app, "GET", "/api/usuarios/bloqueos/", Some(&plain), None).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = call(&app, "GET", "/api/usuarios/bloqueos/", None, None).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_spread_over_many_addresses_slow_the_name_only_where_it_never_logged_in() {
    let app = Appliance::start(Options::default());
    let mut answers = Vec::new();
    for i in 0..25u8 {
        answers.push(
            login_from(&app, [127, 0, 3, 1 + i], ADMIN_USER, WRONG)
                .await
                .0,
        );
    }
    eprintln!("25 guesses for admin from 25 addresses: {answers:?}");
    assert!(answers[..20].iter().all(|s| *s == 401), "{answers:?}");
    assert!(answers[20..].iter().all(|s| *s == 429), "{answers:?}");
    let (status, _, body) = login_from(&app, HOME, ADMIN_USER, ADMIN_PASS).await;
    assert_eq!(status, 200, "where the administrator logs in: {body}");
    assert_limited(
        login_from(&app, [127, 0, 3, 200], ADMIN_USER, ADMIN_PASS).await,
        1..=60,
        "a new address after 25 guesses from 25 addresses",
    );
    let list = lockouts(&app).await;
    assert!(
        list.iter()
            .any(|b| b["usuario"] == json!("admin") && b["ambito"] == json!("usuario")),
        "the name-wide throttle is listed: {list:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_over_many_names_lock_the_address() {
    let app = Appliance::start(Options::default());
    user_with(&app, "vecina", &["VerDashboard"]).await;
    const PROBER: [u8; 4] = [127, 0, 0, 3];
    for i in 0..10 {
        let (status, _, body) = login_from(&app, PROBER, &format!("intruso{i}"), WRONG).await;
        assert_eq!(status, 401, "failure {i}: {body}");
    }
    assert_limited(
        login_from(&app, PROBER, "vecina", USER_PASS).await,
        1..=900,
        "another name from the probing address",
    );
    let (status, _, body) = login_from(&app, [127, 0, 0, 4], "vecina", USER_PASS).await;
    assert_eq!(status, 200, "the same name from another address: {body}");
    // Tokens issued before keep working: only logins are throttled.
    let (status, body) = app.get("/api/usuarios/").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_guesses_cannot_outrun_the_limit() {
    // Guesses sent all at once must not all be checked before the first one is counted.
    let app = Appliance::start(Options::default());
    const FROM: [u8; 4] = [127, 0, 0, 5];
    let guesses: Vec<_> = (0..30)
        .map(|i| {
            let url = app.url("/api/iniciar-sesion/");
            tokio::spawn(async move {
                let body = json!({"username": ADMIN_USER, "password": format!("Intento-{i}")});
                let client = reqwest::Client::builder()
                    .local_address(IpAddr::from(FROM))
                    .build()
                    .expect("client");
                let resp = client.post(url).json(&body).send().await.expect("login");
                resp.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for g in guesses {
        statuses.push(g.await.expect("task"));
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + limited, 30, "{statuses:?}");
    assert!(
        (1..=5).contains(&checked),
        "{checked} of 30 simultaneous guesses were checked against the password: {statuses:?}"
    );
    assert_limited(
        login_from(&app, FROM, ADMIN_USER, ADMIN_PASS).await,
        1..=900,
        "after the burst, from the same address",
    );
}
