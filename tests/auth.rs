//! Accounts and sessions against the real binary: registration, approval, login, token
//! rotation and revocation, the first-run setup code, the `user add` command, permission
//! rules, password rules, malformed requests, and what survives a restart. Access control per
//! route is in `auth_matrix.rs`, failed-login throttling in `login_throttle.rs`, the account
//! life cycle in `lifecycle.rs`, ending sessions in `sessions.rs`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::accounts::{
    ALL_PERMISSIONS, USER_PASS, assert_detail, call, form, login, permissions_of, post, register,
    tokens, user_with,
};
use common::{ADMIN_PASS, ADMIN_USER, Appliance, Options, run_bin};
use serde_json::{Value, json};

/// The messages of `field` in a form error, joined.
fn field_messages(body: &Value, field: &str) -> String {
    body[field]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default()
}

/// Asserts a 400 form error whose `field` has a message containing `needle`.
fn assert_field_error(status: u16, body: &Value, field: &str, needle: &str, context: &str) {
    assert_eq!(status, 400, "{context}: {body}");
    assert_detail(body, context);
    let messages = field_messages(body, field);
    assert!(
        messages.contains(needle),
        "{context}: expected a message on `{field}` containing {needle:?}, got {body}"
    );
}

/// The administrator's own id.
async fn my_id(app: &Appliance, token: &str) -> u64 {
    let (status, me) = call(app, "GET", "/api/usuario/actual/", Some(token), None).await;
    assert_eq!(status, 200, "{me}");
    me["id"].as_u64().expect("id")
}

async fn refresh(app: &Appliance, body: Value) -> (u16, Value) {
    post(app, "/api/refrescar-token/", body).await
}

async fn logout(app: &Appliance, body: Value) -> (u16, Value) {
    post(app, "/api/cerrar-sesion/", body).await
}

/// Total of pending accounts as the administrator sees it.
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
async fn account_life_cycle_from_registration_to_logout() {
    let app = Appliance::start(Options::default());
    let (status, created) = post(
        &app,
        "/api/crear-usuario/",
        json!({
            "username": "lucia",
            "password": USER_PASS,
            "password2": USER_PASS,
            "email": "lucia@finca.test",
            "first_name": "Lucía",
            "last_name": "Gómez",
        }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert!(created["mensaje"].is_string(), "{created}");
    let u = &created["usuario"];
    let id = u["id"].as_u64().expect("numeric id");
    assert_eq!(u["username"], json!("lucia"));
    assert_eq!(u["email"], json!("lucia@finca.test"));
    assert_eq!(u["first_name"], json!("Lucía"));
    assert_eq!(u["last_name"], json!("Gómez"));
    assert_eq!(u["perfil"], json!({"aprobado": false}));
    let text = created.to_string();
    assert!(
        !text.contains(USER_PASS) && !text.contains("argon2"),
        "neither the password nor its hash is returned: {text}"
    );
    assert_eq!(pending_total(&app).await, 1);

    let (status, body) = login(&app, "lucia", USER_PASS).await;
    assert_eq!(status, 403, "pending account: {body}");
    assert_eq!(
        body,
        json!({"detail": "Tu cuenta está pendiente de aprobación."})
    );

    let (status, approved) = call(
        &app,
        "POST",
        &format!("/api/usuario/{id}/aprobar/"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["usuario"]["perfil"]["aprobado"], json!(true));
    assert_eq!(
        approved["usuario"]["permisos"],
        json!(["VerDashboard", "VerReportes"]),
        "approval without a list grants the default permissions"
    );
    assert_eq!(pending_total(&app).await, 0);

    let (status, session) = login(&app, "lucia", USER_PASS).await;
    assert_eq!(status, 200, "{session}");
    let access1 = session["access"].as_str().expect("access").to_string();
    let refresh1 = session["refresh"].as_str().expect("refresh").to_string();
    assert_ne!(access1, refresh1);
    assert_eq!(session["user"]["id"], json!(id));
    assert_eq!(session["user"]["username"], json!("lucia"));
    assert_eq!(session["user"]["perfil"]["aprobado"], json!(true));
    let (status, me) = call(&app, "GET", "/api/usuario/actual/", Some(&access1), None).await;
    assert_eq!((status, &me["id"]), (200, &json!(id)), "{me}");

    // Rotation: a refresh token gives a new pair once.
    let (status, pair) = refresh(&app, json!({ "refresh": refresh1 })).await;
    assert_eq!(status, 200, "{pair}");
    let access2 = pair["access"].as_str().expect("new access").to_string();
    let refresh2 = pair["refresh"].as_str().expect("new refresh").to_string();
    assert_ne!(refresh2, refresh1);
    assert_ne!(access2, access1);
    let (status, me) = call(&app, "GET", "/api/usuario/actual/", Some(&access2), None).await;
    assert_eq!((status, &me["id"]), (200, &json!(id)), "{me}");
    let (status, body) = refresh(&app, json!({ "refresh": refresh1 })).await;
    assert_eq!(status, 401, "a used refresh token is spent: {body}");
    assert_detail(&body, "reused refresh");
    let (status, body) = refresh(&app, json!({ "refresh": access2 })).await;
    assert_eq!(status, 401, "an access token is no refresh token: {body}");
    assert_detail(&body, "access as refresh");

    // Logout with `refresh_token`.
    let (status, body) = logout(&app, json!({ "refresh_token": refresh2 })).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = refresh(&app, json!({ "refresh": refresh2 })).await;
    assert_eq!(status, 401, "logged-out refresh token: {body}");
    assert_detail(&body, "logged-out refresh");

    // Logout with `refresh`.
    let (_, refresh3) = tokens(&app, "lucia", USER_PASS).await;
    let (status, body) = logout(&app, json!({ "refresh": refresh3 })).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = refresh(&app, json!({ "refresh_token": refresh3 })).await;
    assert_eq!(status, 401, "logged-out refresh token: {body}");

    // Logout needs a real refresh token.
    let (status, body) = logout(&app, json!({ "refresh": "basura" })).await;
    assert_eq!(status, 401, "{body}");
    assert_detail(&body, "logout with garbage");
    let (status, body) = logout(&app, json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert_detail(&body, "logout without a token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_get_the_same_answer_whether_the_user_exists_or_not() {
    let app = Appliance::start(Options::default());
    register(&app, "pendiente").await;
    let (s1, existing) = login(&app, ADMIN_USER, "Clave-Equivocada-1").await;
    let (s2, unknown) = login(&app, "fantasma", "Clave-Equivocada-1").await;
    let (s3, pending) = login(&app, "pendiente", "Clave-Equivocada-1").await;
    assert_eq!((s1, s2, s3), (401, 401, 401));
    assert_detail(&existing, "wrong password");
    assert_eq!(
        existing, unknown,
        "an unknown user must look like a wrong password"
    );
    assert_eq!(
        existing, pending,
        "a pending account must not be revealed by a wrong password"
    );
    assert_eq!(
        existing.as_object().map(|o| o.len()),
        Some(1),
        "only `detail`: {existing}"
    );
    // The right password still works afterwards.
    let (status, body) = login(&app, ADMIN_USER, ADMIN_PASS).await;
    assert_eq!(status, 200, "{body}");
}

/// The setup code the appliance wrote, after checking the file is private and the code is in
/// the log.
fn setup_code(app: &Appliance) -> String {
    let path = app.data_dir().join("setup-code");
    let meta = std::fs::metadata(&path).expect("setup-code file on an empty store");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "setup-code mode");
    let code = std::fs::read_to_string(&path)
        .expect("read setup-code")
        .trim()
        .to_string();
    assert!(code.len() >= 8, "setup code {code:?}");
    assert!(app.log().contains(&code), "the code is in the log");
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_code_creates_the_first_administrator_once() {
    let mut app = Appliance::start(Options {
        create_admin: false,
        ..Options::default()
    });
    let code = setup_code(&app);

    let mut first = form("duena");
    first["setup_code"] = json!("AAAA-BBBB-CCCC");
    let (status, body) = post(&app, "/api/crear-usuario/", first.clone()).await;
    assert_field_error(status, &body, "setup_code", "no es válido", "wrong code");
    assert!(app.data_dir().join("setup-code").exists());

    first["setup_code"] = json!(code);
    let (status, created) = post(&app, "/api/crear-usuario/", first).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["usuario"]["perfil"]["aprobado"], json!(true));
    assert_eq!(created["usuario"]["permisos"], json!(ALL_PERMISSIONS));
    assert!(
        !app.data_dir().join("setup-code").exists(),
        "the used code's file is deleted"
    );
    app.token = tokens(&app, "duena", USER_PASS).await.0;
    assert_eq!(pending_total(&app).await, 0, "the administrator works");

    let mut second = form("intrusa");
    second["setup_code"] = json!(code);
    let (status, body) = post(&app, "/api/crear-usuario/", second).await;
    assert_field_error(status, &body, "setup_code", "ya existe", "reused code");

    app.signal("TERM", Duration::from_secs(10));
    app.restart();
    assert!(
        !app.data_dir().join("setup-code").exists(),
        "no new setup code once an administrator exists"
    );
    assert_eq!(
        app.log().matches(code.as_str()).count(),
        1,
        "only the first start announced a setup code:\n{}",
        app.log()
    );
    let mut third = form("tercera");
    third["setup_code"] = json!(code);
    let (status, body) = post(&app, "/api/crear-usuario/", third).await;
    assert_eq!(status, 400, "old code after a restart: {body}");
    let (status, body) = call(&app, "GET", "/api/usuarios/", Some(&app.token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], json!(1), "only the administrator: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_code_survives_until_an_administrator_exists() {
    // Someone registers normally before the owner uses the code: that account is pending and
    // nobody can approve it, so the code must still work, also after a restart.
    let mut app = Appliance::start(Options {
        create_admin: false,
        ..Options::default()
    });
    let code = setup_code(&app);
    let early = register(&app, "madrugador").await;
    assert!(app.data_dir().join("setup-code").exists());
    app.signal("TERM", Duration::from_secs(10));
    app.restart();
    assert_eq!(
        setup_code(&app),
        code,
        "the pending code is kept across the restart"
    );
    let mut owner = form("duena");
    owner["setup_code"] = json!(code);
    let (status, created) = post(&app, "/api/crear-usuario/", owner).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["usuario"]["permisos"], json!(ALL_PERMISSIONS));
    app.token = tokens(&app, "duena", USER_PASS).await.0;
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/usuario/{early}/aprobar/"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(
        status, 200,
        "the administrator approves the early account: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_user_add_needs_the_service_stopped_and_refuses_weak_passwords() {
    let mut app = Appliance::start(Options::default());
    let config = app.config_path.to_str().expect("config path").to_string();
    let dir = app.dir.path().to_path_buf();
    let add = |user: &str, password: &str| {
        let email = format!("{user}@finca.test");
        run_bin(
            &[
                "user",
                "add",
                "--username",
                user,
                "--password",
                password,
                "--email",
                &email,
                "--config",
                &config,
            ],
            &[],
            &dir,
        )
    };

    let (status, out) = add("capataz", "Tractor-Rojo-2026");
    assert!(!status.success(), "user add must fail while serving: {out}");
    assert!(out.contains("in use"), "says the store is in use: {out}");
    assert!(
        out.contains("Stop it first") && out.contains("register in the web interface"),
        "says what to do: {out}"
    );
    assert_eq!(
        common::http_get_status(app.http_port, "/healthz"),
        Some(200)
    );

    let exit = app.signal("TERM", Duration::from_secs(10));
    assert!(exit.success(), "clean stop: {exit}");
    let (status, out) = add("debil", "12345678");
    assert!(!status.success(), "weak password accepted: {out}");
    assert!(
        out.contains("password rejected") && out.contains("numérica"),
        "{out}"
    );
    let (status, out) = add("parecido", "parecido2026");
    assert!(
        !status.success(),
        "password like the user name accepted: {out}"
    );
    assert!(out.contains("similar"), "{out}");
    let (status, out) = add("capataz", "Tractor-Rojo-2026");
    assert!(status.success(), "user add with the service stopped: {out}");
    let (status, out) = add("Capataz", "Tractor-Azul-2026");
    assert!(!status.success(), "duplicate name accepted: {out}");
    assert!(out.contains("already exists"), "{out}");

    app.restart();
    let (status, session) = login(&app, "capataz", "Tractor-Rojo-2026").await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["user"]["perfil"]["aprobado"], json!(true));
    assert_eq!(
        session["user"]["permisos"],
        json!(["VerDashboard", "VerReportes"]),
        "without --admin: the default permissions"
    );
    for (refused, password) in [("debil", "12345678"), ("parecido", "parecido2026")] {
        let (status, body) = login(&app, refused, password).await;
        assert_eq!(status, 401, "{refused} must not exist: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_approver_keeps_aprobar_usuarios() {
    let app = Appliance::start(Options::default());
    let admin = my_id(&app, &app.token).await;
    let change = |id: u64, token: String, permisos: Value| {
        let app = &app;
        async move {
            call(
                app,
                "POST",
                &format!("/api/usuarios/{id}/cambiar-permisos/"),
                Some(&token),
                Some(json!({ "permisos": permisos })),
            )
            .await
        }
    };

    let (status, body) = change(admin, app.token.clone(), json!(["VerDashboard"])).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("AprobarUsuarios")),
        "{body}"
    );
    assert_eq!(permissions_of(&app, admin).await, json!(ALL_PERMISSIONS));

    let (helper, helper_token, _) = user_with(&app, "ayudante", &["VerDashboard"]).await;
    let (status, body) = change(
        helper,
        app.token.clone(),
        json!(["AprobarUsuarios", "VerDashboard"]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = change(admin, app.token.clone(), json!(["VerDashboard"])).await;
    assert_eq!(status, 200, "with a second approver: {body}");
    let (status, body) = call(
        &app,
        "GET",
        &format!("/api/usuarios/{admin}/ver-permisos/"),
        Some(&helper_token),
        None,
    )
    .await;
    assert_eq!(
        (status, &body["permisos"]),
        (200, &json!(["VerDashboard"])),
        "{body}"
    );
    let (status, body) = call(&app, "GET", "/api/usuarios/", Some(&app.token), None).await;
    assert_eq!(status, 403, "the former approver at once: {body}");
    let (status, body) = call(&app, "GET", "/api/usuarios/", Some(&helper_token), None).await;
    assert_eq!(status, 200, "the new approver: {body}");
    let (status, body) = change(helper, helper_token.clone(), json!([])).await;
    assert_eq!(status, 400, "now the helper is the last one: {body}");
    let (status, body) = change(
        helper,
        helper_token.clone(),
        json!(["AprobarUsuarios", "VerDashboard", "VerReportes"]),
    )
    .await;
    assert_eq!(status, 200, "changing other permissions is fine: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_permission_names_are_refused_not_ignored() {
    let app = Appliance::start(Options::default());
    let (id, _, _) = user_with(&app, "ordenador", &["VerDashboard"]).await;
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/usuarios/{id}/cambiar-permisos/"),
        Some(&app.token),
        Some(json!({"permisos": ["VerReportes", "Volar", "verdashboard"]})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let messages = field_messages(&body, "permisos");
    assert!(
        messages.contains("Volar") && messages.contains("verdashboard"),
        "every unknown name is listed: {body}"
    );
    assert_eq!(
        permissions_of(&app, id).await,
        json!(["VerDashboard"]),
        "nothing applied from a refused list"
    );

    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/usuarios/{id}/cambiar-permisos/"),
        Some(&app.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 400, "the list is required: {body}");
    assert_eq!(permissions_of(&app, id).await, json!(["VerDashboard"]));

    // Approval with a list: unknown names refuse it, known ones are granted exactly.
    let pending = register(&app, "aprendiz").await;
    let approve = |permisos: Value| {
        let app = &app;
        async move {
            call(
                app,
                "POST",
                &format!("/api/usuario/{pending}/aprobar/"),
                Some(&app.token),
                Some(json!({ "permisos": permisos })),
            )
            .await
        }
    };
    let (status, body) = approve(json!(["GenerarReportes", "Nadar"])).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        field_messages(&body, "permisos").contains("Nadar"),
        "{body}"
    );
    assert_eq!(pending_total(&app).await, 1, "still pending");
    let (status, body) = approve(json!(["GenerarReportes"])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["usuario"]["permisos"], json!(["GenerarReportes"]));

    let (status, body) = call(
        &app,
        "POST",
        "/api/usuario/9999/aprobar/",
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_detail(&body, "approve a missing user");
    let (status, body) = call(
        &app,
        "GET",
        "/api/usuarios/9999/ver-permisos/",
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_detail(&body, "permissions of a missing user");
}

/// Refused registrations: (case, username, email, password, password2, the field with the
/// error, a fragment of its message). `admin` / `admin@finca.test` exist already.
#[rustfmt::skip]
const FORM_CASES: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
    ("too short", "rosa", "rosa@finca.test", "Ab-1x", "Ab-1x", "password", "corta"),
    ("numeric", "rosa", "rosa@finca.test", "9081726354", "9081726354", "password", "numérica"),
    ("common", "rosa", "rosa@finca.test", "Biogas123", "Biogas123", "password", "común"),
    ("like the user name", "marisol", "m.r@finca.test", "marisol2026", "marisol2026", "password",
        "similar"),
    ("like the e-mail", "pedro", "girasoles.rojos@finca.test", "girasolesrojos", "girasolesrojos",
        "password", "similar"),
    ("mismatch", "rosa", "rosa@finca.test", USER_PASS, "Girasol-Morado-78", "password2",
        "no coinciden"),
    ("user name taken, other case", "Admin", "otra@finca.test", USER_PASS, USER_PASS, "username",
        "Ya existe"),
    ("e-mail taken, other case", "nueva", "ADMIN@finca.test", USER_PASS, USER_PASS, "email",
        "Ya existe"),
    ("bad user name", "con espacio", "e@finca.test", USER_PASS, USER_PASS, "username",
        "sin espacios"),
    ("bad e-mail", "sinarroba", "sinarroba.finca.test", USER_PASS, USER_PASS, "email", "válido"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_rules_and_unique_names_are_enforced() {
    let app = Appliance::start(Options::default());
    for &(case, username, email, password, password2, field, fragment) in FORM_CASES {
        let (status, body) = post(
            &app,
            "/api/crear-usuario/",
            json!({
                "username": username,
                "email": email,
                "password": password,
                "password2": password2,
            }),
        )
        .await;
        assert_field_error(status, &body, field, fragment, case);
        for other in ["username", "email", "password", "password2"] {
            if other != field {
                assert!(body.get(other).is_none(), "{case}: only `{field}`: {body}");
            }
        }
    }
    assert_eq!(pending_total(&app).await, 0, "no account was created");
    let (status, body) = call(&app, "GET", "/api/usuarios/", Some(&app.token), None).await;
    assert_eq!((status, &body["total"]), (200, &json!(1)), "{body}");
}

/// Sends raw bytes with a chosen content type: (status, JSON or Null).
async fn raw_post(
    app: &Appliance,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let mut req = common::accounts::http()
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_json_errors() {
    let app = Appliance::start(Options::default());
    let admin = my_id(&app, &app.token).await;
    let change_path = format!("/api/usuarios/{admin}/cambiar-permisos/");
    let waiting = register(&app, "en-espera").await;
    let approve_path = format!("/api/usuario/{waiting}/aprobar/");
    let json = "application/json";
    let valid = form("correcta").to_string();
    let open_forms = [
        "/api/crear-usuario/",
        "/api/iniciar-sesion/",
        "/api/refrescar-token/",
        "/api/cerrar-sesion/",
    ];
    for path in open_forms {
        let (status, body) = raw_post(&app, path, None, json, "{\"username\": \"x\",").await;
        assert_eq!(status, 400, "{path} malformed JSON: {body}");
        assert_detail(&body, &format!("{path} malformed JSON"));
        let (status, body) = raw_post(&app, path, None, "text/plain", valid.clone()).await;
        assert_eq!(status, 400, "{path} text/plain: {body}");
        assert_detail(&body, &format!("{path} text/plain"));
        let (status, body) = raw_post(&app, path, None, json, "{}").await;
        assert_eq!(status, 400, "{path} missing fields: {body}");
        assert_detail(&body, &format!("{path} missing fields"));
    }
    let (status, body) = raw_post(&app, "/api/crear-usuario/", None, json, "{}").await;
    assert_eq!(status, 400);
    for field in ["username", "email", "password", "password2"] {
        assert!(
            field_messages(&body, field).contains("requerido"),
            "`{field}` is required: {body}"
        );
    }
    let (status, body) = raw_post(&app, "/api/crear-usuario/", None, json, "[]").await;
    assert_eq!(status, 400, "an array is no form: {body}");
    assert_detail(&body, "array body");
    let (status, body) = raw_post(
        &app,
        "/api/iniciar-sesion/",
        None,
        json,
        "{\"username\":\"admin\"}",
    )
    .await;
    assert_eq!(status, 400, "login without a password: {body}");
    assert_detail(&body, "login without a password");
    // The permission forms (the approval's body is optional, but not when it is broken).
    for path in [&change_path, &approve_path] {
        let token = Some(app.token.as_str());
        let (status, body) = raw_post(&app, path, token, json, "{\"permisos\":").await;
        assert_eq!(status, 400, "{path} malformed JSON: {body}");
        assert_detail(&body, &format!("{path} malformed JSON"));
        let list = r#"{"permisos": ["VerDashboard"]}"#;
        let (status, body) = raw_post(&app, path, token, "text/plain", list).await;
        assert_eq!(status, 400, "{path} text/plain: {body}");
        assert_detail(&body, &format!("{path} text/plain"));
        let not_a_list = r#"{"permisos": "VerDashboard"}"#;
        let (status, body) = raw_post(&app, path, token, json, not_a_list).await;
        assert_eq!(status, 400, "{path} permisos not a list: {body}");
        assert_detail(&body, &format!("{path} permisos not a list"));
    }

    // 200 KB against the default 64 KiB limit.
    let mut big = form("grande");
    big["first_name"] = json!("x".repeat(200 * 1024));
    let big = big.to_string();
    for (path, token) in [
        ("/api/crear-usuario/", None),
        ("/api/iniciar-sesion/", None),
        (change_path.as_str(), Some(app.token.as_str())),
        (approve_path.as_str(), Some(app.token.as_str())),
    ] {
        let (status, body) = raw_post(&app, path, token, json, big.clone()).await;
        assert_eq!(status, 413, "{path} with 200 KB: {body}");
        assert_detail(&body, &format!("{path} with 200 KB"));
    }
    assert_eq!(
        pending_total(&app).await,
        1,
        "no account was created or approved"
    );
    assert_eq!(permissions_of(&app, admin).await, json!(ALL_PERMISSIONS));
    assert_eq!(permissions_of(&app, waiting).await, json!([]));

    // Malformed path ids and query strings, and a method a route does not have: the same
    // JSON errors as everything else.
    let token = Some(app.token.as_str());
    for (method, path) in [
        ("GET", "/api/usuarios/abc/ver-permisos/"),
        ("POST", "/api/usuario/-1/aprobar/"),
        ("GET", "/api/dashboard/fillings/1x/"),
        ("GET", "/api/dashboard/production/99999999999999999999999/"),
        ("POST", "/api/dashboard/report/regenerate/uno/"),
        ("GET", "/api/dashboard/readings/?limit=muchos"),
        ("GET", "/api/dashboard/readings/?stage=-3"),
    ] {
        let (status, body) = call(&app, method, path, token, None).await;
        assert_eq!(status, 400, "{method} {path}: {body}");
        assert_detail(&body, &format!("{method} {path}"));
    }
    let (status, body) = call(&app, "DELETE", "/api/dashboard/fillings/", token, None).await;
    assert_eq!(status, 405, "{body}");
    assert_detail(&body, "DELETE on a route without it");
    assert_eq!(permissions_of(&app, waiting).await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_revocations_and_the_secret_survive_a_restart() {
    let mut app = Appliance::start(Options::default());
    let (_, ended, revoked) = user_with(&app, "turno-noche", &["VerDashboard"]).await;
    let (access, kept) = tokens(&app, "turno-noche", USER_PASS).await;
    let (status, body) = logout(&app, json!({ "refresh": revoked })).await;
    assert_eq!(status, 200, "{body}");
    let secret_before = std::fs::read(app.data_dir().join("jwt-secret")).expect("secret");

    let exit = app.signal("TERM", Duration::from_secs(10));
    assert!(exit.success(), "clean stop: {exit}");
    app.restart();

    assert_eq!(
        std::fs::read(app.data_dir().join("jwt-secret")).expect("secret"),
        secret_before,
        "the signing secret is kept"
    );
    let (status, body) = refresh(&app, json!({ "refresh": revoked })).await;
    assert_eq!(status, 401, "the revocation survived: {body}");
    let (status, body) = call(&app, "GET", "/api/dashboard/stats/", Some(&ended), None).await;
    assert_eq!(status, 401, "so did the end of its session: {body}");
    let (status, body) = call(&app, "GET", "/api/dashboard/stats/", Some(&access), None).await;
    assert_eq!(
        status, 200,
        "an access token from before the restart: {body}"
    );
    let (status, body) = app.get("/api/usuarios/").await;
    assert_eq!(status, 200, "the administrator's token too: {body}");
    let (status, body) = refresh(&app, json!({ "refresh": kept })).await;
    assert_eq!(status, 200, "a refresh token that was not revoked: {body}");
    let (status, body) = login(&app, "turno-noche", USER_PASS).await;
    assert_eq!(status, 200, "the account survived: {body}");
    assert_eq!(body["user"]["permisos"], json!(["VerDashboard"]));
}
