//! The life of an account beyond registration, on the real binary: rejecting a registration,
//! disabling, enabling and deleting an account, an administrator resetting a forgotten
//! password, users changing their own, the last-approver rule for each, and the same through
//! `biogestor user list|passwd|disable|enable|delete` with the service stopped.

mod common;

use std::time::Duration;

use common::accounts::{USER_PASS, assert_detail, call, login, register, tokens, user_with};
use common::{ADMIN_PASS, ADMIN_USER, Appliance, Options, run_bin};
use serde_json::{Value, json};

async fn admin_post(app: &Appliance, path: &str, body: Option<Value>) -> (u16, Value) {
    call(app, "POST", path, Some(&app.token), body).await
}

async fn my_id(app: &Appliance, token: &str) -> u64 {
    let (status, me) = call(app, "GET", "/api/usuario/actual/", Some(token), None).await;
    assert_eq!(status, 200, "{me}");
    me["id"].as_u64().expect("id")
}

/// The approved accounts as the administrator lists them, by user name.
async fn listed(app: &Appliance, username: &str) -> Option<Value> {
    let (status, body) = call(app, "GET", "/api/usuarios/", Some(&app.token), None).await;
    assert_eq!(status, 200, "{body}");
    body["usuarios"]
        .as_array()
        .expect("list")
        .iter()
        .find(|u| u["username"] == json!(username))
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_rejected_and_accounts_disabled_enabled_and_deleted() {
    let app = Appliance::start(Options::default());
    // Reject: only a pending account, which disappears (its name is free again).
    let pending = register(&app, "dudosa").await;
    let (status, body) = admin_post(&app, &format!("/api/usuario/{pending}/rechazar/"), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &app,
        "GET",
        &format!("/api/usuarios/{pending}/ver-permisos/"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 404, "a rejected registration is gone: {body}");
    let again = register(&app, "dudosa").await;
    assert!(again > pending, "a new id, never the old one");
    let (id, _, _) = user_with(&app, "aprobada", &["VerDashboard"]).await;
    let (status, body) = admin_post(&app, &format!("/api/usuario/{id}/rechazar/"), None).await;
    assert_eq!(status, 409, "an approved account is not rejected: {body}");
    assert_detail(&body, "reject approved");

    // Disable / enable, shown in the list.
    let (status, body) = admin_post(&app, &format!("/api/usuario/{id}/deshabilitar/"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["usuario"]["activo"], json!(false));
    assert_eq!(
        listed(&app, "aprobada").await.expect("listed")["activo"],
        json!(false)
    );
    let (status, body) = login(&app, "aprobada", USER_PASS).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = login(&app, "aprobada", "Clave-Equivocada-9").await;
    assert_eq!(status, 401, "a wrong password reveals nothing: {body}");
    let (status, body) = admin_post(&app, &format!("/api/usuario/{id}/habilitar/"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        listed(&app, "aprobada").await.expect("listed")["activo"],
        json!(true)
    );
    tokens(&app, "aprobada", USER_PASS).await;

    // Delete, both ways.
    let (status, body) = call(
        &app,
        "DELETE",
        &format!("/api/usuario/{id}/"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(listed(&app, "aprobada").await.is_none());
    let (status, body) = login(&app, "aprobada", USER_PASS).await;
    assert_eq!(status, 401, "{body}");
    let (other, _, _) = user_with(&app, "segunda", &[]).await;
    let (status, body) = admin_post(&app, &format!("/api/usuario/{other}/eliminar/"), None).await;
    assert_eq!(status, 200, "{body}");
    for action in [
        "rechazar",
        "deshabilitar",
        "habilitar",
        "eliminar",
        "restablecer-clave",
    ] {
        let (status, body) = admin_post(&app, &format!("/api/usuario/9999/{action}/"), None).await;
        assert_eq!(status, 404, "{action} on a missing account: {body}");
        assert_detail(&body, action);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_approver_cannot_be_disabled_deleted_or_lose_the_permission() {
    let app = Appliance::start(Options::default());
    let admin = my_id(&app, &app.token).await;
    // The administrator cannot lock themselves out here.
    for action in ["deshabilitar", "eliminar"] {
        let (status, body) =
            admin_post(&app, &format!("/api/usuario/{admin}/{action}/"), None).await;
        assert_eq!(status, 400, "{action} oneself: {body}");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("propia")),
            "{body}"
        );
    }
    // A second approver acting on the first: allowed while another approver remains, refused
    // for the last one.
    let (second, second_token, _) =
        user_with(&app, "ayudante", &["AprobarUsuarios", "VerDashboard"]).await;
    let as_second = |path: String| {
        let (app, token) = (&app, second_token.clone());
        async move { call(app, "POST", &path, Some(&token), None).await }
    };
    let (status, body) = as_second(format!("/api/usuario/{admin}/deshabilitar/")).await;
    assert_eq!(status, 200, "another approver remains: {body}");
    // `ayudante` is now the only active approver and the disabled administrator's session has
    // ended. With a third approver, one of the two may go.
    let (status, _) = call(&app, "GET", "/api/usuarios/", Some(&app.token), None).await;
    assert_eq!(status, 401, "the disabled administrator's session ended");
    let (third, third_token, _) = {
        let id = register(&app, "tercera").await;
        let (status, body) = as_second(format!("/api/usuario/{id}/aprobar/")).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = call(
            &app,
            "POST",
            &format!("/api/usuarios/{id}/cambiar-permisos/"),
            Some(&second_token),
            Some(json!({"permisos": ["AprobarUsuarios"]})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (a, r) = tokens(&app, "tercera", USER_PASS).await;
        (id, a, r)
    };
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/usuario/{second}/eliminar/"),
        Some(&third_token),
        None,
    )
    .await;
    assert_eq!(status, 200, "two approvers, one goes: {body}");
    // `tercera` is the last one: its own permissions cannot drop AprobarUsuarios, and the
    // disabled administrator coming back makes two again.
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/usuarios/{third}/cambiar-permisos/"),
        Some(&third_token),
        Some(json!({"permisos": []})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("AprobarUsuarios")),
        "{body}"
    );
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/usuario/{admin}/habilitar/"),
        Some(&third_token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = login(&app, ADMIN_USER, ADMIN_PASS).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_reset_by_an_administrator_or_changed_by_their_owner() {
    let app = Appliance::start(Options::default());
    let (id, access, _) = user_with(&app, "olvidadiza", &["VerDashboard"]).await;

    // Chosen by the administrator, with the registration rules.
    let reset = format!("/api/usuario/{id}/restablecer-clave/");
    let (status, body) = admin_post(
        &app,
        &reset,
        Some(json!({"password": "12345678901", "password2": "12345678901"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["password"].to_string().contains("numérica"), "{body}");
    let (status, body) = admin_post(
        &app,
        &reset,
        Some(json!({"password": "Nueva-Clave-Campo-8", "password2": "Otra"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = admin_post(
        &app,
        &reset,
        Some(json!({"password": "Nueva-Clave-Campo-8", "password2": "Nueva-Clave-Campo-8"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["generada"], json!(false));
    assert!(
        body.get("password").is_none(),
        "a chosen password is not echoed: {body}"
    );
    assert_eq!(
        call(&app, "GET", "/api/usuario/actual/", Some(&access), None)
            .await
            .0,
        401
    );
    let (status, _) = login(&app, "olvidadiza", USER_PASS).await;
    assert_eq!(status, 401, "the old password no longer works");
    let (access, _) = tokens(&app, "olvidadiza", "Nueva-Clave-Campo-8").await;

    // Generated.
    let (status, body) = admin_post(&app, &reset, None).await;
    assert_eq!(status, 200, "{body}");
    let generated = body["password"].as_str().expect("generated").to_string();
    assert!(generated.len() >= 16, "{generated}");
    let (access2, _) = tokens(&app, "olvidadiza", &generated).await;
    assert_eq!(
        call(&app, "GET", "/api/usuario/actual/", Some(&access), None)
            .await
            .0,
        401
    );

    // Own change: wrong current password, rules, mismatch, then right.
    let change = |body: Value| {
        let (app, token) = (&app, access2.clone());
        async move {
            call(
                app,
                "POST",
                "/api/usuario/cambiar-clave/",
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    let (status, body) = change(json!({"old_password": "no-es", "new_password": "Cosecha-Lluvia-44", "new_password2": "Cosecha-Lluvia-44"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["old_password"].to_string().contains("no es correcta"),
        "{body}"
    );
    let (status, body) = change(json!({"old_password": generated, "new_password": "olvidadiza1", "new_password2": "olvidadiza1"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["new_password"].to_string().contains("similar"),
        "{body}"
    );
    let (status, body) = change(json!({"old_password": generated, "new_password": "Cosecha-Lluvia-44", "new_password2": "Cosecha-Lluvia-45"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["new_password2"].to_string().contains("no coinciden"),
        "{body}"
    );
    let (status, body) = change(json!({"old_password": generated, "new_password": "Cosecha-Lluvia-44", "new_password2": "Cosecha-Lluvia-44"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["access"].is_string() && body["refresh"].is_string(),
        "{body}"
    );
    assert_eq!(body["user"]["id"], json!(id));
    tokens(&app, "olvidadiza", "Cosecha-Lluvia-44").await;
}

/// `biogestor user <args> --config <config>`: (success, output).
fn user_cli(app: &Appliance, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let config = app.config_path.to_str().expect("config").to_string();
    let mut all = vec!["user"];
    all.extend_from_slice(args);
    all.extend(["--config", &config]);
    let (status, out) = run_bin(&all, env, app.dir.path());
    (status.success(), out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_command_lists_resets_disables_enables_and_deletes_with_the_service_stopped() {
    let mut app = Appliance::start(Options::default());
    user_with(&app, "ordenadora", &["VerDashboard"]).await;
    register(&app, "esperando").await;
    let (ok, out) = user_cli(&app, &["list"], &[]);
    assert!(
        !ok && out.contains("in use") && out.contains("Stop it first"),
        "{out}"
    );
    app.signal("TERM", Duration::from_secs(10));

    let (ok, out) = user_cli(&app, &["list"], &[]);
    assert!(ok, "{out}");
    eprintln!("{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} listed:\n{out}"))
            .to_string()
    };
    assert!(line("admin").contains("active") && line("admin").contains("AprobarUsuarios"));
    assert!(line("ordenadora").contains("active") && line("ordenadora").contains("VerDashboard"));
    assert!(line("esperando").contains("pending"));

    let (ok, out) = user_cli(&app, &["passwd", "ordenadora"], &[]);
    assert!(ok, "{out}");
    let generated = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("generated password printed: {out}"))
        .to_string();
    let (ok, out) = user_cli(
        &app,
        &["passwd", "ordenadora"],
        &[("BIOGESTOR_PASSWORD", "1234567890")],
    );
    assert!(!ok && out.contains("numérica"), "{out}");
    let (ok, out) = user_cli(&app, &["passwd", "nadie"], &[]);
    assert!(!ok && out.contains("no account is named"), "{out}");
    let (ok, out) = user_cli(&app, &["disable", "admin"], &[]);
    assert!(!ok && out.contains("last active account"), "{out}");
    let (ok, out) = user_cli(&app, &["delete", "admin"], &[]);
    assert!(!ok && out.contains("last active account"), "{out}");
    let (ok, out) = user_cli(&app, &["disable", "ordenadora"], &[]);
    assert!(ok, "{out}");
    let (ok, out) = user_cli(
        &app,
        &["passwd", "admin", "--password", "Otra-Clave-Admin-55"],
        &[],
    );
    assert!(ok, "{out}");
    assert!(
        !out.contains("Otra-Clave-Admin-55"),
        "a chosen password is not printed: {out}"
    );

    app.restart();
    let (status, body) = login(&app, "ordenadora", &generated).await;
    assert_eq!(status, 403, "disabled: {body}");
    let (status, _) = login(&app, ADMIN_USER, ADMIN_PASS).await;
    assert_eq!(status, 401, "the administrator's password was changed");
    tokens(&app, ADMIN_USER, "Otra-Clave-Admin-55").await;
    app.signal("TERM", Duration::from_secs(10));
    let (ok, out) = user_cli(&app, &["enable", "ordenadora"], &[]);
    assert!(ok, "{out}");
    let (ok, out) = user_cli(&app, &["delete", "esperando"], &[]);
    assert!(ok, "{out}");
    let (ok, out) = user_cli(&app, &["list"], &[]);
    assert!(ok && !out.contains("esperando"), "{out}");
    app.restart();
    tokens(&app, "ordenadora", &generated).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_command_refuses_the_user_names_and_emails_registration_refuses() {
    let mut app = Appliance::start(Options::default());
    // What the web refuses, to compare messages with.
    let mut bad = common::accounts::form("con espacio");
    bad["email"] = json!("ana@finca");
    let (status, web) = call(&app, "POST", "/api/crear-usuario/", None, Some(bad)).await;
    assert_eq!(status, 400, "{web}");
    let web_username = web["username"][0]
        .as_str()
        .expect("username message")
        .to_string();
    let web_email = web["email"][0].as_str().expect("email message").to_string();
    let (status, pending) = call(
        &app,
        "GET",
        "/api/usuarios/pendientes/",
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{pending}");
    assert_eq!(
        pending["permisos_al_aprobar"],
        json!(["VerDashboard", "VerReportes"]),
        "the interface reads the approval defaults from the API"
    );
    app.signal("TERM", Duration::from_secs(10));

    let add = |username: &str, email: &str| {
        user_cli(
            &app,
            &[
                "add",
                "--username",
                username,
                "--email",
                email,
                "--password",
                "Tractor-Rojo-2026",
            ],
            &[],
        )
    };
    let (ok, out) = add("con espacio", "ana@finca.test");
    assert!(!ok, "a user name with a space is refused: {out}");
    assert!(
        out.contains("--username") && out.contains(&web_username),
        "{out}"
    );
    let (ok, out) = add("ana\r\nadmin", "ana@finca.test");
    assert!(
        !ok && out.contains("--username"),
        "control characters refused: {out}"
    );
    let (ok, out) = add("ana", "ana@finca");
    assert!(!ok, "an address without a domain is refused: {out}");
    assert!(out.contains("--email") && out.contains(&web_email), "{out}");
    let (ok, out) = add("ana", "ana finca@finca.test");
    assert!(!ok && out.contains("--email"), "{out}");
    let (ok, out) = add(&"a".repeat(151), "ana@finca.test");
    assert!(!ok && out.contains("--username"), "{out}");
    let (ok, out) = user_cli(&app, &["list"], &[]);
    assert!(
        ok && !out.contains("con espacio") && !out.contains(" ana "),
        "nothing created: {out}"
    );

    // Surrounding spaces are trimmed as the form trims them; the account gets the defaults.
    let (ok, out) = add("  ana  ", " ana@finca.test ");
    assert!(ok, "{out}");
    app.restart();
    let (status, body) = login(&app, "ana", "Tractor-Rojo-2026").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["email"], json!("ana@finca.test"));
    assert_eq!(
        body["user"]["permisos"],
        json!(["VerDashboard", "VerReportes"])
    );
}
