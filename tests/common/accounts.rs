//! Account helpers for the authentication tests: JSON calls with or without a token,
//! registration and approval through the API, and hand-made tokens (expired, signed with
//! another key, `alg: none`) built from the appliance's real signing secret and the claims of
//! a real token.

use serde_json::{Value, json};

use super::Appliance;

/// A password every rule accepts, used for the accounts the tests create.
pub const USER_PASS: &str = "Girasol-Morado-77";

/// Every permission the API knows, in its display order.
pub const ALL_PERMISSIONS: [&str; 6] = [
    "AprobarUsuarios",
    "VerDashboard",
    "VerReportes",
    "GenerarReportes",
    "GestionarLlenados",
    "GestionarAlarmas",
];

/// A plain client (no default token).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}

/// Sends `method path` with an optional bearer token and JSON body: (status, JSON or Null).
pub async fn call(
    app: &Appliance,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = http().request(method.clone(), app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// POST with a JSON body and no token.
pub async fn post(app: &Appliance, path: &str, body: Value) -> (u16, Value) {
    call(app, "POST", path, None, Some(body)).await
}

/// Asserts `body` is a JSON object with a non-empty `detail` string.
pub fn assert_detail(body: &Value, context: &str) {
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty()),
        "{context}: the error body must be JSON with a `detail` string, got {body}"
    );
}

/// The registration form for `username` with [`USER_PASS`].
pub fn form(username: &str) -> Value {
    json!({
        "username": username,
        "password": USER_PASS,
        "password2": USER_PASS,
        "email": format!("{username}@finca.test"),
        "first_name": "Nombre",
        "last_name": "Apellido",
    })
}

/// Registers `username` (pending) and returns its id.
pub async fn register(app: &Appliance, username: &str) -> u64 {
    let (status, body) = post(app, "/api/crear-usuario/", form(username)).await;
    assert_eq!(status, 201, "register {username}: {body}");
    body["usuario"]["id"].as_u64().expect("user id")
}

/// POST /api/iniciar-sesion/: (status, body).
pub async fn login(app: &Appliance, username: &str, password: &str) -> (u16, Value) {
    post(
        app,
        "/api/iniciar-sesion/",
        json!({"username": username, "password": password}),
    )
    .await
}

/// Logs in and returns (access, refresh), failing the test on anything but 200.
pub async fn tokens(app: &Appliance, username: &str, password: &str) -> (String, String) {
    let (status, body) = login(app, username, password).await;
    assert_eq!(status, 200, "login {username}: {body}");
    (
        body["access"].as_str().expect("access").to_string(),
        body["refresh"].as_str().expect("refresh").to_string(),
    )
}

/// Registers `username`, has the administrator approve it and set exactly `permissions`,
/// logs in, and returns (id, access token, refresh token).
pub async fn user_with(
    app: &Appliance,
    username: &str,
    permissions: &[&str],
) -> (u64, String, String) {
    let id = register(app, username).await;
    let (status, body) = call(
        app,
        "POST",
        &format!("/api/usuario/{id}/aprobar/"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "approve {username}: {body}");
    let (status, body) = call(
        app,
        "POST",
        &format!("/api/usuarios/{id}/cambiar-permisos/"),
        Some(&app.token),
        Some(json!({ "permisos": permissions })),
    )
    .await;
    assert_eq!(status, 200, "permissions of {username}: {body}");
    assert_eq!(
        body["usuario"]["permisos"],
        json!(permissions),
        "{username} must hold exactly the requested permissions"
    );
    let (access, refresh) = tokens(app, username, USER_PASS).await;
    (id, access, refresh)
}

/// The permission names of user `id`, as the administrator sees them.
pub async fn permissions_of(app: &Appliance, id: u64) -> Value {
    let (status, body) = call(
        app,
        "GET",
        &format!("/api/usuarios/{id}/ver-permisos/"),
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "ver-permisos {id}: {body}");
    body["permisos"].clone()
}

/// The appliance's token signing secret (`<data_dir>/jwt-secret`).
pub fn secret(app: &Appliance) -> Vec<u8> {
    std::fs::read_to_string(app.data_dir().join("jwt-secret"))
        .expect("jwt-secret file")
        .trim()
        .as_bytes()
        .to_vec()
}

/// Seconds since the epoch.
pub fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of a token, read without checking its signature.
pub fn claims_of(token: &str) -> Value {
    jsonwebtoken::dangerous::insecure_decode_claims(token).expect("token claims")
}

/// Claims shaped like the appliance's, with the session, security stamp and store instance of
/// the real token `like`: `sub` and `typ` as given, `exp` is `now + exp_in_s`.
pub fn claims(like: &str, sub: u64, typ: &str, exp_in_s: i64) -> Value {
    let now = now_s();
    let mut c = claims_of(like);
    c["sub"] = json!(sub);
    c["typ"] = json!(typ);
    c["jti"] = json!(format!("prueba-{sub}-{typ}-{exp_in_s}"));
    c["iat"] = json!(now.min(now + exp_in_s) - 60);
    c["exp"] = json!(now + exp_in_s);
    c
}

/// An HS256 token over `claims` signed with `key`.
pub fn sign(key: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .expect("sign token")
}

/// An unsigned token: header `{"alg":"none"}`, the claims, and an empty signature.
pub fn unsigned(claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT"}).to_string();
    format!(
        "{}.{}.",
        base64url(header.as_bytes()),
        base64url(claims.to_string().as_bytes())
    )
}

/// Base64url without padding (RFC 4648 §5), as JWTs use.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}
