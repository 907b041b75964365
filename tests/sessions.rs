//! Sessions that must end: after a restore (no token of the old store works, and no account
//! id is handed out twice), after a logout (the access token too), after a password change,
//! a reset, disabling or deleting the account. Each test performs the attack first.

mod common;

use std::time::Duration;

use common::accounts::{USER_PASS, call, post, register, tokens, user_with};
use common::{ADMIN_PASS, ADMIN_USER, Appliance, Options, run_bin};
use futures_util::StreamExt;
use serde_json::{Value, json};

async fn me(app: &Appliance, token: &str) -> (u16, Value) {
    call(app, "GET", "/api/usuario/actual/", Some(token), None).await
}

async fn refresh(app: &Appliance, token: &str) -> (u16, Value) {
    post(app, "/api/refrescar-token/", json!({ "refresh": token })).await
}

/// Runs `biogestor <args> --config <the appliance's config>` and asserts it succeeded.
fn cli(app: &Appliance, args: &[&str]) -> String {
    let config = app.config_path.to_str().expect("config path").to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--config", &config]);
    let (status, out) = run_bin(&all, &[], app.dir.path());
    assert!(status.success(), "biogestor {args:?}: {out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_ends_every_session_and_never_hands_an_old_token_a_new_account() {
    let mut app = Appliance::start(Options::default());
    let before_snapshot = app.token.clone();
    app.signal("TERM", Duration::from_secs(10));
    let snap = app.dir.path().join("antes.redb");
    cli(&app, &["backup", "--out", snap.to_str().expect("path")]);
    app.restart();

    // After the snapshot: an account that the restore will delete, with a session, and an
    // administrator session that is logged out.
    let (gone_id, gone_access, gone_refresh) = user_with(&app, "intrusa", &["VerDashboard"]).await;
    let (_, logged_out) = tokens(&app, ADMIN_USER, ADMIN_PASS).await;
    let (status, body) = post(
        &app,
        "/api/cerrar-sesion/",
        json!({ "refresh": logged_out }),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    app.signal("TERM", Duration::from_secs(10));
    cli(&app, &["restore", snap.to_str().expect("path")]);
    app.restart();

    app.token = tokens(&app, ADMIN_USER, ADMIN_PASS).await.0;
    let new_id = register(&app, "nueva").await;
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/usuario/{new_id}/aprobar/"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let old_access = me(&app, &gone_access).await;
    let old_refresh = refresh(&app, &gone_refresh).await;
    let revoked_refresh = refresh(&app, &logged_out).await;
    let older_access = me(&app, &before_snapshot).await;
    eprintln!(
        "after restore: deleted user's id {gone_id}, new account's id {new_id}; the deleted \
         user's access token -> {} {}, its refresh token -> {}, a refresh token logged out \
         after the snapshot -> {}, an access token from before the snapshot -> {}",
        old_access.0, old_access.1["username"], old_refresh.0, revoked_refresh.0, older_access.0
    );
    assert_ne!(new_id, gone_id, "an id is never handed out twice");
    assert!(new_id > gone_id, "ids keep growing across a restore");
    assert_eq!(old_access.0, 401, "{}", old_access.1);
    assert_eq!(old_refresh.0, 401, "{}", old_refresh.1);
    assert_eq!(revoked_refresh.0, 401, "{}", revoked_refresh.1);
    assert_eq!(
        older_access.0, 401,
        "a restore ends every session: {}",
        older_access.1
    );

    // A plain restart keeps sessions.
    let (access, refresh_token) = tokens(&app, "nueva", USER_PASS).await;
    app.signal("TERM", Duration::from_secs(10));
    app.restart();
    assert_eq!(me(&app, &access).await.0, 200);
    assert_eq!(refresh(&app, &refresh_token).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_access_token_of_the_session_too() {
    let app = Appliance::start(Options::default());
    user_with(&app, "turno", &["VerDashboard"]).await;
    let (access, refresh_token) = tokens(&app, "turno", USER_PASS).await;
    let (other_access, _) = tokens(&app, "turno", USER_PASS).await;
    let (status, pair) = refresh(&app, &refresh_token).await;
    assert_eq!(status, 200, "{pair}");
    let rotated_access = pair["access"].as_str().expect("access").to_string();
    let rotated_refresh = pair["refresh"].as_str().expect("refresh").to_string();
    let (status, body) = post(
        &app,
        "/api/cerrar-sesion/",
        json!({ "refresh": rotated_refresh }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let after = me(&app, &access).await;
    eprintln!("access token after its session logged out: {}", after.0);
    assert_eq!(
        after.0, 401,
        "the session's first access token: {}",
        after.1
    );
    assert_eq!(
        me(&app, &rotated_access).await.0,
        401,
        "its rotated access token"
    );
    assert_eq!(
        me(&app, &other_access).await.0,
        200,
        "another session of the same user goes on"
    );
    // Logging out with the access token in the header ends that session as well.
    let (a2, r2) = tokens(&app, "turno", USER_PASS).await;
    let resp = common::accounts::http()
        .post(app.url("/api/cerrar-sesion/"))
        .bearer_auth(&a2)
        .json(&json!({ "refresh": r2 }))
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(me(&app, &a2).await.0, 401);
    assert_eq!(refresh(&app, &r2).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_changes_resets_and_disabling_end_sessions_at_once() {
    let app = Appliance::start(Options::default());
    let (id, access, refresh_token) = user_with(&app, "cambia", &["VerDashboard"]).await;

    // Own change: old + new; the other sessions end, the caller gets a fresh pair.
    let (status, body) = call(
        &app,
        "POST",
        "/api/usuario/cambiar-clave/",
        Some(&access),
        Some(json!({
            "old_password": USER_PASS,
            "new_password": "Otra-Clave-Nueva-31",
            "new_password2": "Otra-Clave-Nueva-31",
        })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["access"].as_str().expect("new access").to_string();
    assert_eq!(me(&app, &access).await.0, 401, "the old session ended");
    assert_eq!(refresh(&app, &refresh_token).await.0, 401);
    assert_eq!(me(&app, &fresh).await.0, 200, "the new pair works");

    // Reset by an administrator: every session ends.
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/usuario/{id}/restablecer-clave/"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let generated = body["password"]
        .as_str()
        .expect("generated password")
        .to_string();
    assert_eq!(me(&app, &fresh).await.0, 401, "a reset ends the sessions");
    let (access, _) = tokens(&app, "cambia", &generated).await;

    // Disabled: the token stops working at once, and login is refused.
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/usuario/{id}/deshabilitar/"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me(&app, &access).await.0, 401);
    let (status, body) = common::accounts::login(&app, "cambia", &generated).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("deshabilitada")),
        "{body}"
    );
    // Enabled again: old tokens stay dead, a new login works.
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/usuario/{id}/habilitar/"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me(&app, &access).await.0, 401);
    let (access, _) = tokens(&app, "cambia", &generated).await;
    // Deleted: the token no longer works.
    let (status, body) = call(
        &app,
        "DELETE",
        &format!("/api/usuario/{id}/"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me(&app, &access).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_closes_when_its_session_ends() {
    let app = Appliance::start(Options::default());
    user_with(&app, "pantalla", &["VerDashboard"]).await;
    let (access, refresh_token) = tokens(&app, "pantalla", USER_PASS).await;
    let url = format!("ws://127.0.0.1:{}/ws/mqtt/?token={access}", app.http_port);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connect");
    let (status, body) = post(
        &app,
        "/api/cerrar-sesion/",
        json!({ "refresh": refresh_token }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let started = std::time::Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(25), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    eprintln!(
        "live feed after its session logged out: closed after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(closed.is_ok(), "the feed stayed open after the logout");
}
