//! Access control of every protected route against every kind of caller, on the real binary.
//! The routes come from the router's own table (`biogestor::http::routes()`), the one it is
//! built and guarded from: a new route is in this matrix without anyone adding it here.

mod common;

use biogestor::http::{Access, routes};
use common::accounts::{
    ALL_PERMISSIONS, assert_detail, base64url, call, claims, form, permissions_of, post, secret,
    sign, tokens, unsigned, user_with,
};
use common::{ADMIN_PASS, ADMIN_USER, Appliance, Options};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;

/// What a route demands beyond a valid access token.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Need {
    /// Any approved account, whatever its permissions.
    AnyUser,
    /// This permission.
    Perm(&'static str),
    /// Any approved account, acting on its own credentials: the admitted call is judged by
    /// passing the guard (any answer but 401/403), since succeeding would end the caller's
    /// sessions.
    OwnAccount,
}
use Need::{AnyUser, OwnAccount, Perm};

/// A protected route: method ("WS" for a WebSocket handshake with `?token=`), path template,
/// requirement, and the JSON body of a successful call.
#[derive(Clone, Debug)]
struct Route {
    method: String,
    path: &'static str,
    need: Need,
    body: Option<&'static str>,
    /// The route accepts the token as `?token=`.
    token_in_query: bool,
    /// Admitted calls aim at an account of their own (see [`FRESH_TARGET`]).
    fresh_target: bool,
}

/// Bodies for calls whose effect the test checks afterwards, or that must not succeed.
const BODIES: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/api/usuarios/{id}/cambiar-permisos/",
        r#"{"permisos": ["VerReportes"]}"#,
    ),
    (
        "POST",
        "/api/usuario/cambiar-clave/",
        r#"{"old_password": "no-es-la-clave", "new_password": "Otra-Clave-Nueva-31", "new_password2": "Otra-Clave-Nueva-31"}"#,
    ),
];

/// Routes open to any account that act on the caller's own credentials.
const OWN_ACCOUNT: &[(&str, &str)] = &[("POST", "/api/usuario/cambiar-clave/")];

/// Routes whose admitted calls reject, disable, enable, reset or delete the account `{id}`:
/// refused calls aim at the shared target (which must come out untouched), admitted ones at
/// a pending account registered for that one call.
const FRESH_TARGET: &[(&str, &str)] = &[
    ("POST", "/api/usuario/{id}/rechazar/"),
    ("POST", "/api/usuario/{id}/deshabilitar/"),
    ("POST", "/api/usuario/{id}/habilitar/"),
    ("POST", "/api/usuario/{id}/restablecer-clave/"),
    ("POST", "/api/usuario/{id}/eliminar/"),
    ("DELETE", "/api/usuario/{id}/"),
];

/// The routes anyone may call. Opening a route is a decision, written down here.
const OPEN: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("POST", "/api/crear-usuario/"),
    ("POST", "/api/iniciar-sesion/"),
    ("POST", "/api/refrescar-token/"),
    ("POST", "/api/cerrar-sesion/"),
    ("POST", "/api/token/refresh/"),
    ("POST", "/api/logout/"),
];

/// Every protected route of the router's table.
fn protected() -> Vec<Route> {
    routes()
        .into_iter()
        .filter_map(|r| {
            let own = OWN_ACCOUNT
                .iter()
                .any(|(m, p)| *m == r.method.as_str() && *p == r.path);
            let need = match r.access {
                Access::Open => return None,
                Access::User if own => OwnAccount,
                Access::User => AnyUser,
                Access::Permission(p) => Perm(p.name()),
                // The metrics token is tested in ops.rs; accounts need AprobarUsuarios.
                Access::MetricsScraper => Perm("AprobarUsuarios"),
            };
            let method = if r.path.starts_with("/ws/") {
                "WS".to_string()
            } else {
                r.method.to_string()
            };
            let body = BODIES
                .iter()
                .find(|(m, p, _)| *m == method && *p == r.path)
                .map(|(_, _, b)| *b);
            Some(Route {
                method,
                path: r.path,
                need,
                body,
                token_in_query: r.token_in_query,
                fresh_target: FRESH_TARGET
                    .iter()
                    .any(|(m, p)| *m == r.method.as_str() && *p == r.path),
            })
        })
        .collect()
}

#[test]
fn the_open_routes_are_exactly_the_listed_ones() {
    let mut open: Vec<(String, &str)> = routes()
        .into_iter()
        .filter(|r| r.access == Access::Open)
        .map(|r| (r.method.to_string(), r.path))
        .collect();
    open.sort();
    let mut expected: Vec<(String, &str)> = OPEN.iter().map(|(m, p)| (m.to_string(), *p)).collect();
    expected.sort();
    assert_eq!(open, expected);
    assert!(protected().len() >= 20, "the table lists the API");
}

#[test]
fn the_account_routes_are_in_the_table_with_their_access() {
    let table = routes();
    let access_of = |method: &str, path: &str| {
        table
            .iter()
            .find(|r| r.method.as_str() == method && r.path == path)
            .map(|r| r.access)
            .unwrap_or_else(|| panic!("{method} {path} is not in the route table"))
    };
    for (method, path) in FRESH_TARGET
        .iter()
        .chain(&[("GET", "/api/usuarios/bloqueos/")])
    {
        assert_eq!(
            access_of(method, path),
            Access::Permission(biogestor::store::users::Permission::AprobarUsuarios),
            "{method} {path}"
        );
    }
    for (method, path) in OWN_ACCOUNT {
        assert_eq!(access_of(method, path), Access::User, "{method} {path}");
    }
    assert_eq!(
        access_of("GET", "/api/dashboard/sensors/"),
        Access::Permission(biogestor::store::users::Permission::VerDashboard)
    );
}

/// Who calls, and how the token travels.
#[derive(Clone, Debug)]
enum Caller {
    NoToken,
    Malformed,
    Expired,
    OtherKey,
    AlgNone,
    RefreshAsAccess,
    UnknownUser,
    /// A valid administrator token in `?token=` on a route that only reads the header.
    QueryOnHttpRoute,
    /// A valid administrator token with the scheme `Basic` instead of `Bearer`.
    WrongScheme,
    /// A validly signed token of the administrator with another security stamp (as after a
    /// password change).
    OtherStamp,
    /// A validly signed token of the administrator from another store instance (as before a
    /// restore).
    OtherInstance,
    /// A real access token of the administrator whose session was logged out.
    LoggedOut,
    /// A valid token of an account holding every permission except the route's.
    WithoutPermission,
    /// A valid token of an account holding only the route's permission (none for `AnyUser`).
    WithPermission,
    /// A token forged like the others but otherwise valid: proves the refusals above come
    /// from the one property each of them breaks.
    ForgedValid,
}

const REFUSED: [Caller; 13] = [
    Caller::NoToken,
    Caller::Malformed,
    Caller::Expired,
    Caller::OtherKey,
    Caller::AlgNone,
    Caller::RefreshAsAccess,
    Caller::UnknownUser,
    Caller::QueryOnHttpRoute,
    Caller::WrongScheme,
    Caller::OtherStamp,
    Caller::OtherInstance,
    Caller::LoggedOut,
    Caller::WithoutPermission,
];

/// Tokens of every caller.
struct Tokens {
    admin: String,
    admin_id: u64,
    refresh: String,
    expired: String,
    other_key: String,
    alg_none: String,
    unknown_user: String,
    other_stamp: String,
    other_instance: String,
    logged_out: String,
    forged_valid: String,
    /// Per permission: (token of a user without it, token of a user with only it).
    by_permission: Vec<(&'static str, String, String)>,
    /// Token of an approved user with no permission at all.
    no_permission: String,
}

impl Tokens {
    /// The token to send (None: none) and the expected status class for `caller` on `need`.
    /// `None` when the combination does not apply.
    fn of(&self, caller: &Caller, need: Need) -> Option<(Option<String>, Expect)> {
        let t = |s: &String| Some(s.clone());
        Some(match caller {
            Caller::NoToken => (None, Expect::Unauthorized),
            Caller::Malformed => (Some("esto.no-es.un-token".into()), Expect::Unauthorized),
            Caller::Expired => (t(&self.expired), Expect::Unauthorized),
            Caller::OtherKey => (t(&self.other_key), Expect::Unauthorized),
            Caller::AlgNone => (t(&self.alg_none), Expect::Unauthorized),
            Caller::RefreshAsAccess => (t(&self.refresh), Expect::Unauthorized),
            Caller::UnknownUser => (t(&self.unknown_user), Expect::Unauthorized),
            Caller::OtherStamp => (t(&self.other_stamp), Expect::Unauthorized),
            Caller::OtherInstance => (t(&self.other_instance), Expect::Unauthorized),
            Caller::LoggedOut => (t(&self.logged_out), Expect::Unauthorized),
            Caller::QueryOnHttpRoute | Caller::WrongScheme => {
                (t(&self.admin), Expect::Unauthorized)
            }
            Caller::WithoutPermission => match need {
                AnyUser | OwnAccount => return None,
                Perm(p) => (t(self.for_permission(p).0), Expect::Forbidden),
            },
            Caller::WithPermission => match need {
                AnyUser | OwnAccount => (t(&self.no_permission), Expect::Admitted),
                Perm(p) => (t(self.for_permission(p).1), Expect::Admitted),
            },
            Caller::ForgedValid => (t(&self.forged_valid), Expect::Admitted),
        })
    }

    fn for_permission(&self, p: &str) -> (&String, &String) {
        let (_, without, with) = self
            .by_permission
            .iter()
            .find(|(name, _, _)| *name == p)
            .unwrap_or_else(|| panic!("no users prepared for {p}"));
        (without, with)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Unauthorized,
    Forbidden,
    Admitted,
}

impl Expect {
    fn matches(self, status: u16) -> bool {
        match self {
            Expect::Unauthorized => status == 401,
            Expect::Forbidden => status == 403,
            // 101: the WebSocket upgrade was accepted.
            // The guard let the call through: whatever the handler made of it (a 404 for an
            // id that does not exist, a 400 for a missing body) but a refusal, or a method
            // the route does not have (the table and the router disagree), or a server error.
            Expect::Admitted => !matches!(status, 401 | 403 | 405) && status < 500,
        }
    }
}

/// Registers a pending account for one admitted call of a [`FRESH_TARGET`] route.
async fn fresh_account(app: &Appliance) -> u64 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (status, created) = post(app, "/api/crear-usuario/", form(&format!("nueva{n}"))).await;
    assert_eq!(status, 201, "{created}");
    created["usuario"]["id"].as_u64().expect("id")
}

/// `template` with its parameters filled: `{id}` is the target user, `{kind}` a report file
/// kind, any other parameter `1`.
fn fill(template: &str, target: u64) -> String {
    template
        .split('/')
        .map(|seg| match seg {
            "{id}" => target.to_string(),
            "{kind}" => "pdf".to_string(),
            s if s.starts_with('{') => "1".to_string(),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Calls `route` as `caller` would: (status, JSON body or Null).
async fn send(
    app: &Appliance,
    route: &Route,
    caller: &Caller,
    token: Option<&str>,
    target: u64,
) -> (u16, Value) {
    let method = route.method.as_str();
    let target = match caller {
        Caller::WithPermission | Caller::ForgedValid if route.fresh_target => {
            fresh_account(app).await
        }
        _ => target,
    };
    let path = fill(route.path, target);
    let body = route.body;
    if method == "WS" {
        let url = match token {
            Some(t) => format!("ws://127.0.0.1:{}{path}?token={t}", app.http_port),
            None => format!("ws://127.0.0.1:{}{path}", app.http_port),
        };
        return match tokio_tungstenite::connect_async(url).await {
            Ok((mut ws, _)) => {
                let _ = ws.close(None).await;
                (101, Value::Null)
            }
            Err(tungstenite::Error::Http(resp)) => {
                let body = resp
                    .body()
                    .as_deref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                (resp.status().as_u16(), body)
            }
            Err(e) => panic!("WS {path}: {e}"),
        };
    }
    let body: Option<Value> = body.map(|b| serde_json::from_str(b).expect("route body"));
    match caller {
        Caller::QueryOnHttpRoute => {
            let path = format!("{path}?token={}", token.expect("token"));
            call(app, method, &path, None, body).await
        }
        Caller::WrongScheme => {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let mut req = common::accounts::http()
                .request(method, app.url(&path))
                .header("Authorization", format!("Basic {}", token.expect("token")));
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.expect("request");
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(Value::Null))
        }
        _ => call(app, method, &path, token, body).await,
    }
}

/// Prepares the accounts and hand-made tokens of every caller.
async fn prepare(app: &Appliance) -> Tokens {
    let (_, me) = call(app, "GET", "/api/usuario/actual/", Some(&app.token), None).await;
    let admin_id = me["id"].as_u64().expect("admin id");
    let (_, refresh) = tokens(app, ADMIN_USER, ADMIN_PASS).await;
    let (logged_out, ended) = tokens(app, ADMIN_USER, ADMIN_PASS).await;
    let (status, body) = post(app, "/api/cerrar-sesion/", json!({ "refresh": ended })).await;
    assert_eq!(status, 200, "{body}");
    let key = secret(app);
    let shifted = |field: &str| {
        let mut c = claims(&app.token, admin_id, "access", 3600);
        c[field] = json!(c[field].as_u64().expect("numeric claim") + 1);
        sign(&key, &c)
    };
    let mut needed: Vec<&'static str> = protected()
        .iter()
        .filter_map(|r| match r.need {
            Perm(p) => Some(p),
            AnyUser | OwnAccount => None,
        })
        .collect();
    needed.sort_unstable();
    needed.dedup();
    let mut by_permission = Vec::new();
    for p in needed {
        assert!(
            ALL_PERMISSIONS.contains(&p),
            "unknown permission {p} in the route table"
        );
        let others: Vec<&str> = ALL_PERMISSIONS.into_iter().filter(|q| *q != p).collect();
        let name = p.to_lowercase();
        let (_, without, _) = user_with(app, &format!("sin-{name}"), &others).await;
        let (_, with, _) = user_with(app, &format!("solo-{name}"), &[p]).await;
        by_permission.push((p, without, with));
    }
    let (_, no_permission, _) = user_with(app, "sin-permisos", &[]).await;
    Tokens {
        admin: app.token.clone(),
        admin_id,
        refresh,
        expired: sign(&key, &claims(&app.token, admin_id, "access", -3600)),
        other_key: sign(
            b"otra-clave-que-no-es-la-del-equipo-0123456789",
            &claims(&app.token, admin_id, "access", 3600),
        ),
        alg_none: unsigned(&claims(&app.token, admin_id, "access", 3600)),
        unknown_user: sign(&key, &claims(&app.token, admin_id + 1000, "access", 3600)),
        other_stamp: shifted("stamp"),
        other_instance: shifted("inst"),
        logged_out,
        forged_valid: sign(&key, &claims(&app.token, admin_id, "access", 3600)),
        by_permission,
        no_permission,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protected_route_refuses_every_bad_caller_and_admits_the_right_one() {
    let app = Appliance::start(Options::default());
    let tokens = prepare(&app).await;
    let (status, created) = post(&app, "/api/crear-usuario/", form("objetivo")).await;
    assert_eq!(status, 201, "{created}");
    let target = created["usuario"]["id"].as_u64().expect("target id");

    let mut failures = Vec::new();
    let mut checked = 0;
    let table = protected();
    for route in &table {
        for caller in &REFUSED {
            let skip = match caller {
                // The token in the query is this route's documented way in.
                Caller::QueryOnHttpRoute => route.method == "WS" || route.token_in_query,
                // A handshake has no header to get wrong.
                Caller::WrongScheme => route.method == "WS",
                _ => false,
            };
            if skip {
                continue;
            }
            let Some((token, expect)) = tokens.of(caller, route.need) else {
                continue;
            };
            let (status, body) = send(&app, route, caller, token.as_deref(), target).await;
            checked += 1;
            let what = format!("{} {} as {caller:?}", route.method, route.path);
            if !expect.matches(status) {
                failures.push(format!("{what}: expected {expect:?}, got {status} {body}"));
            } else if body["detail"].as_str().is_none_or(|d| d.trim().is_empty()) {
                failures.push(format!("{what}: error body without `detail`: {body}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} refused calls misbehaved:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // None of the refused calls had an effect on the target account.
    let (_, pending) = call(
        &app,
        "GET",
        "/api/usuarios/pendientes/",
        Some(&tokens.admin),
        None,
    )
    .await;
    assert!(
        pending["usuarios"]
            .as_array()
            .expect("pending list")
            .iter()
            .any(|u| u["id"] == json!(target)),
        "refused calls must not approve the target: {pending}"
    );
    assert_eq!(permissions_of(&app, target).await, json!([]));

    for route in &table {
        let mut admitted = vec![Caller::WithPermission, Caller::ForgedValid];
        if route.token_in_query && route.method != "WS" {
            admitted.push(Caller::QueryOnHttpRoute);
        }
        for caller in admitted {
            let (token, expect) = match caller {
                Caller::QueryOnHttpRoute => (Some(tokens.admin.clone()), Expect::Admitted),
                _ => tokens.of(&caller, route.need).expect("applies"),
            };
            let (status, body) = send(&app, route, &caller, token.as_deref(), target).await;
            checked += 1;
            if !expect.matches(status) {
                failures.push(format!(
                    "{} {} as {caller:?}: expected {expect:?}, got {status} {body}",
                    route.method, route.path
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "admitted calls misbehaved:\n{}",
        failures.join("\n")
    );
    // The successful calls did take effect.
    assert_eq!(permissions_of(&app, target).await, json!(["VerReportes"]));
    assert!(
        checked > table.len() * 10,
        "the matrix ran: {checked} calls"
    );
    assert_ne!(tokens.admin_id, target);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_user_sees_itself_whatever_its_permissions() {
    let app = Appliance::start(Options::default());
    let (id, token, _) = user_with(&app, "sin-nada", &[]).await;
    let (status, me) = call(&app, "GET", "/api/usuario/actual/", Some(&token), None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["id"], json!(id));
    assert_eq!(me["username"], json!("sin-nada"));
    assert_eq!(me["permisos"], json!([]));
    assert!(me.get("password_hash").is_none(), "never the hash: {me}");
    // Permission changes apply to the next request, without a new login.
    let (status, body) = call(&app, "GET", "/api/dashboard/stats/", Some(&token), None).await;
    assert_eq!(status, 403, "{body}");
    assert_detail(&body, "stats without VerDashboard");
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/usuarios/{id}/cambiar-permisos/"),
        Some(&app.token),
        Some(json!({"permisos": ["VerDashboard"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&app, "GET", "/api/dashboard/stats/", Some(&token), None).await;
    assert_eq!(status, 200, "the new permission counts at once: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_routes_answer_without_a_token() {
    let app = Appliance::start(Options::default());
    let client = common::accounts::http();
    let health = client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let ui = client.get(app.url("/")).send().await.expect("UI");
    assert_eq!(ui.status(), 200);
    let content_type = ui.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        ui.text().await.expect("html").contains("<html"),
        "the UI page"
    );

    let (status, body) = post(&app, "/api/crear-usuario/", form("visitante")).await;
    assert_eq!(status, 201, "register without a token: {body}");
    let (status, body) = common::accounts::login(&app, ADMIN_USER, ADMIN_PASS).await;
    assert_eq!(status, 200, "login without a token: {body}");
    assert!(body["access"].is_string(), "{body}");
}

#[test]
fn base64url_matches_the_rfc_examples() {
    for (input, expected) in [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64url(input.as_bytes()), expected);
    }
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
}
