//! The original React application's calls, replayed against the real binary: the paths it
//! calls, the bodies it sends and the fields it reads from each answer (registration,
//! login, the users and permissions screens, stages, the production chart, reports and their
//! history, the live feed with the token as a WebSocket subprotocol). Each call's status is
//! printed as a table.

mod common;

use common::accounts::{USER_PASS, call, form};
use common::{Appliance, Options};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// One replayed call and its outcome, for the table.
struct Replay {
    rows: Vec<(String, String, u16)>,
}

impl Replay {
    async fn call(
        &mut self,
        app: &Appliance,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, out) = call(app, method, path, token, body).await;
        self.rows.push((method.into(), path.into(), status));
        (status, out)
    }
}

/// What the original registration screen shows on an error:
/// `detail || message || username[0] || email[0]`.
fn shown_error(body: &Value) -> String {
    body["detail"]
        .as_str()
        .or(body["message"].as_str())
        .or(body["username"][0].as_str())
        .or(body["email"][0].as_str())
        .unwrap_or("Error en el registro")
        .to_string()
}

/// Opens the live feed the way a browser can: the token offered as subprotocols.
async fn ws_with_protocols(app: &Appliance, protocols: &str) -> Result<Option<String>, String> {
    let mut req = format!("ws://127.0.0.1:{}/ws/mqtt/", app.http_port)
        .into_client_request()
        .map_err(|e| e.to_string())?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        protocols.parse().map_err(|_| "header".to_string())?,
    );
    let (ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| e.to_string())?;
    let selected = resp
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    drop(ws.split());
    Ok(selected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_frontend_works_against_the_appliance() {
    let app = Appliance::start(Options::default());
    let mut r = Replay { rows: Vec::new() };

    // Registration (authService.register) and its error message.
    let (status, body) = r
        .call(
            &app,
            "POST",
            "/api/crear-usuario/",
            None,
            Some(form("operaria")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        body["mensaje"].is_string() && body["usuario"]["id"].is_u64(),
        "{body}"
    );
    let id = body["usuario"]["id"].as_u64().expect("id");
    let mut again = form("operaria");
    again["email"] = json!("otra@finca.test");
    let (status, body) = r
        .call(&app, "POST", "/api/crear-usuario/", None, Some(again))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        shown_error(&body),
        body["username"][0].as_str().expect("username message"),
        "the original screen shows the specific message: {body}"
    );
    let mut bad = form("otra");
    bad["email"] = json!("otra@finca");
    let (status, body) = r
        .call(&app, "POST", "/api/crear-usuario/", None, Some(bad))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        shown_error(&body),
        body["email"][0].as_str().expect("email message")
    );

    // Login (authService.login) keeps access, refresh and user.
    let (status, login) = r
        .call(
            &app,
            "POST",
            "/api/iniciar-sesion/",
            None,
            Some(json!({"username": common::ADMIN_USER, "password": common::ADMIN_PASS})),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["user"]["perfil"]["aprobado"], json!(true));
    let token = login["access"].as_str().expect("access").to_string();
    assert!(login["refresh"].is_string());
    let t = Some(token.as_str());

    // Users screen (userService).
    let (status, me) = r.call(&app, "GET", "/api/usuario/actual/", t, None).await;
    assert_eq!(
        (status, me["username"].as_str()),
        (200, Some(common::ADMIN_USER))
    );
    let (status, approved) = r.call(&app, "GET", "/api/usuarios/", t, None).await;
    assert_eq!(status, 200);
    assert!(approved["usuarios"].is_array() && approved["total"].is_u64());
    let (status, pending) = r
        .call(&app, "GET", "/api/usuarios/pendientes/", t, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(pending["total_pendientes"], json!(1));
    let (status, body) = r
        .call(
            &app,
            "POST",
            &format!("/api/usuario/{id}/aprobar/"),
            t,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["mensaje"].is_string() && body["usuario"]["id"] == json!(id));

    // Permissions screen: the administrator's own flags are all shown as granted.
    let admin_id = me["id"].as_u64().expect("admin id");
    let (status, perms) = r
        .call(
            &app,
            "GET",
            &format!("/api/usuarios/{admin_id}/ver-permisos/"),
            t,
            None,
        )
        .await;
    assert_eq!(status, 200, "{perms}");
    assert_eq!(perms["Usuario_id"], json!(admin_id));
    assert_eq!(perms["UserName"], json!(common::ADMIN_USER));
    let flags = perms["Permisos"].as_object().expect("Permisos object");
    assert!(
        flags.len() >= 5 && flags.values().all(|v| v == &json!(true)),
        "{perms}"
    );
    let path = format!("/api/usuarios/{id}/ver-permisos/");
    let (_, perms) = r.call(&app, "GET", &path, t, None).await;
    assert_eq!(perms["Permisos"]["VerDashboard"], json!(true));
    assert_eq!(perms["Permisos"]["GenerarReportes"], json!(false));

    // The screen sends back every flag it showed, as a flat object, plus the old ones.
    let mut sent: serde_json::Map<String, Value> =
        perms["Permisos"].as_object().expect("flags").clone();
    sent.insert("GenerarReportes".into(), json!(true));
    sent.insert("VerReportes".into(), json!(false));
    sent.insert("VerInventario".into(), json!(true));
    sent.insert("ModificarInventario".into(), json!(false));
    let change = format!("/api/usuarios/{id}/cambiar-permisos/");
    let (status, body) = r
        .call(&app, "POST", &change, t, Some(Value::Object(sent)))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["mensaje"]
            .as_str()
            .is_some_and(|m| m.contains("VerInventario")),
        "{body}"
    );
    assert_eq!(
        body["ignorados"],
        json!(["ModificarInventario", "VerInventario"])
    );
    let (_, perms) = r.call(&app, "GET", &path, t, None).await;
    assert_eq!(perms["Permisos"]["GenerarReportes"], json!(true));
    assert_eq!(perms["Permisos"]["VerReportes"], json!(false));
    assert_eq!(perms["Permisos"]["VerDashboard"], json!(true));
    let (status, body) = r
        .call(
            &app,
            "POST",
            &change,
            t,
            Some(json!({"VerTodo": true, "VerDashboard": false})),
        )
        .await;
    assert_eq!(status, 400, "a truly unknown flag is refused: {body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("VerTodo")),
        "{body}"
    );
    let (_, perms) = r.call(&app, "GET", &path, t, None).await;
    assert_eq!(
        perms["Permisos"]["VerDashboard"],
        json!(true),
        "nothing changed"
    );

    // Stage, production chart and reports (dashboard.api).
    let (status, stage) = r
        .call(
            &app,
            "POST",
            "/api/dashboard/fillings/",
            t,
            Some(json!({
                "number": 1, "people": "Ana", "material_type": "bovino",
                "material_amount_kg": 500.0, "material_humidity_pct": 87.0,
                "added_water_m3": 0.5, "temperature_c": 30.0,
            })),
        )
        .await;
    assert_eq!(status, 201, "{stage}");
    assert!(stage["id"].is_u64());
    let (status, prod) = r
        .call(&app, "GET", "/api/dashboard/production/current/", t, None)
        .await;
    assert_eq!(status, 200, "{prod}");
    assert_eq!(prod["stage"]["id"], stage["id"]);
    for series in ["expected", "actual"] {
        for key in ["days", "daily_biogas_m3", "cumulative_biogas_m3"] {
            assert!(prod[series][key].is_array(), "{series}.{key}: {prod}");
        }
    }
    let (status, body) = r
        .call(
            &app,
            "POST",
            "/api/dashboard/report/create/",
            t,
            Some(json!({"report_type": "normal", "observations": "Todo en orden"})),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let (status, hist) = r
        .call(&app, "GET", "/api/dashboard/report/history/", t, None)
        .await;
    assert_eq!(status, 200);
    let item = &hist["history"][0];
    for key in ["file_pdf", "file_excel", "file_csv"] {
        let url = item[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key}: {item}"));
        // downloadReportFile(url): the same client, with the Authorization header.
        let resp = common::accounts::http()
            .get(app.url(url))
            .bearer_auth(&token)
            .send()
            .await
            .expect("download");
        r.rows.push((
            "GET".into(),
            format!("{key} ({url})"),
            resp.status().as_u16(),
        ));
        assert_eq!(resp.status().as_u16(), 200, "{key}");
        assert!(!resp.bytes().await.expect("bytes").is_empty());
    }

    // Live feed: the token as a subprotocol, alone or after the "bearer" marker; the
    // server selects one so a browser completes the handshake.
    let selected = ws_with_protocols(&app, &token)
        .await
        .expect("ws with the token");
    assert_eq!(selected.as_deref(), Some(token.as_str()));
    r.rows
        .push(("WS".into(), "/ws/mqtt/ (protocol: token)".into(), 101));
    let selected = ws_with_protocols(&app, &format!("bearer, {token}"))
        .await
        .expect("ws with bearer, token");
    assert_eq!(selected.as_deref(), Some("bearer"));
    r.rows.push((
        "WS".into(),
        "/ws/mqtt/ (protocols: bearer, token)".into(),
        101,
    ));
    let refused = ws_with_protocols(&app, "bearer, a.b.c").await;
    assert!(
        refused.is_err_and(|e| e.contains("401")),
        "a bad token is refused"
    );
    r.rows
        .push(("WS".into(), "/ws/mqtt/ (bad token)".into(), 401));

    // The new account logs in with its permissions as changed.
    let (status, body) = r
        .call(
            &app,
            "POST",
            "/api/iniciar-sesion/",
            None,
            Some(json!({"username": "operaria", "password": USER_PASS})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["user"]["permisos"],
        json!(["VerDashboard", "GenerarReportes"])
    );

    // Session upkeep (authService.refreshToken, authService.logout).
    let refresh = body["refresh"].as_str().expect("refresh").to_string();
    let (status, renewed) = r
        .call(
            &app,
            "POST",
            "/api/token/refresh/",
            None,
            Some(json!({"refresh": refresh})),
        )
        .await;
    assert_eq!(status, 200, "{renewed}");
    let access = renewed["access"].as_str().expect("new access").to_string();
    let rotated = renewed["refresh"].as_str().unwrap_or(&refresh).to_string();
    let (status, body) = r
        .call(
            &app,
            "POST",
            "/api/logout/",
            Some(&access),
            Some(json!({"refresh_token": rotated})),
        )
        .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let (status, _) = r
        .call(&app, "GET", "/api/usuario/actual/", Some(&access), None)
        .await;
    assert_eq!(
        status, 401,
        "after logout the session's access token stops working"
    );

    eprintln!("| method | path | status |\n|---|---|---|");
    for (m, p, s) in &r.rows {
        eprintln!("| {m} | {p} | {s} |");
    }
}
