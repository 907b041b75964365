//! Accounts and sessions: registration, login, token refresh with rotation, logout. Paths and
//! field names are the old system's; the administration of users is in `users.rs`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderName, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, BAD_TOKEN, blocking};
use super::routes::{Access, Route};
use crate::auth::{TokenType, rules};
use crate::store::users::{NewUser, Permission, User};

/// Registration and sessions: open to everyone (they are how one gets a token).
pub fn routes() -> Vec<Route> {
    vec![
        Route::post("/api/crear-usuario/", Access::Open, register),
        Route::post("/api/iniciar-sesion/", Access::Open, login),
        Route::post("/api/refrescar-token/", Access::Open, refresh),
        Route::post("/api/cerrar-sesion/", Access::Open, logout),
    ]
}

/// A response carrying tokens: never stored by the browser or a proxy.
type WithTokens = ([(HeaderName, &'static str); 1], Json<Value>);

fn with_tokens(body: Value) -> WithTokens {
    ([(header::CACHE_CONTROL, "no-store")], Json(body))
}

/// A user as the API shows it (never the password hash).
pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "email": u.email,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "perfil": { "aprobado": u.approved },
        "permisos": u.permission_names(),
    })
}

fn body(b: Result<Json<Value>, JsonRejection>) -> Result<serde_json::Map<String, Value>, ApiError> {
    match b?.0 {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::BadRequest(
            "El cuerpo debe ser un objeto JSON.".into(),
        )),
    }
}

/// Reads a string field; `None` when absent or empty, an error when of another type.
fn text(
    m: &serde_json::Map<String, Value>,
    name: &str,
    errors: &mut BTreeMap<String, Vec<String>>,
) -> Option<String> {
    match m.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors
                .entry(name.into())
                .or_default()
                .push("Debe ser un texto.".into());
            None
        }
    }
}

fn required(
    m: &serde_json::Map<String, Value>,
    name: &str,
    errors: &mut BTreeMap<String, Vec<String>>,
) -> String {
    let v = text(m, name, errors);
    if v.is_none() && !errors.contains_key(name) {
        errors
            .entry(name.into())
            .or_default()
            .push("Este campo es requerido.".into());
    }
    v.unwrap_or_default()
}

fn valid_username(u: &str) -> bool {
    !u.is_empty()
        && u.chars().count() <= 150
        && u.chars()
            .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.len() <= 254
        && !e.chars().any(char::is_whitespace)
}

async fn register(
    State(st): State<AppState>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let m = body(b)?;
    let mut errors = BTreeMap::new();
    let username = required(&m, "username", &mut errors).trim().to_string();
    let email = required(&m, "email", &mut errors).trim().to_string();
    let password = required(&m, "password", &mut errors);
    let password2 = required(&m, "password2", &mut errors);
    let first_name = text(&m, "first_name", &mut errors).unwrap_or_default();
    let last_name = text(&m, "last_name", &mut errors).unwrap_or_default();
    let setup_code = text(&m, "setup_code", &mut errors);
    if !username.is_empty() && !valid_username(&username) {
        errors.entry("username".into()).or_default().push(
            "Usa como máximo 150 letras, dígitos o los signos @ . + - _ (sin espacios).".into(),
        );
    }
    if !email.is_empty() && !valid_email(&email) {
        errors
            .entry("email".into())
            .or_default()
            .push("Introduce un correo electrónico válido.".into());
    }
    for (name, value) in [("first_name", &first_name), ("last_name", &last_name)] {
        if value.chars().count() > 150 {
            errors
                .entry(name.into())
                .or_default()
                .push("Como máximo 150 caracteres.".into());
        }
    }
    if !password.is_empty() && !password2.is_empty() && password != password2 {
        errors
            .entry("password2".into())
            .or_default()
            .push("Las contraseñas no coinciden.".into());
    }
    if !password.is_empty() {
        let broken = rules::check(&password, &[&username, &email, &first_name, &last_name]);
        if !broken.is_empty() {
            errors.entry("password".into()).or_default().extend(broken);
        }
    }
    if let Some(code) = &setup_code
        && !st.auth.setup_pending()
    {
        let _ = code;
        errors.entry("setup_code".into()).or_default().push(
            "No hay un código de configuración pendiente: el administrador ya existe.".into(),
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::Fields(errors));
    }
    let admin = match &setup_code {
        Some(code) if st.auth.claim_setup_code(code) => true,
        Some(_) => {
            return Err(ApiError::field(
                "setup_code",
                "El código de configuración no es válido.",
            ));
        }
        None => false,
    };
    let hash = match st.auth.hasher.hash(password).await {
        Ok(h) => h,
        Err(e) => {
            if let (true, Some(code)) = (admin, &setup_code) {
                st.auth.restore_setup_code(code);
            }
            return Err(e.into());
        }
    };
    let store = st.store.clone();
    let new = NewUser {
        username,
        email,
        first_name,
        last_name,
        password_hash: hash,
        approved: admin,
        permissions: if admin { Permission::all_bits() } else { 0 },
    };
    let created = blocking(move || store.create_user(new)).await;
    let user = match created {
        Ok(u) => u,
        Err(e) => {
            if let (true, Some(code)) = (admin, &setup_code) {
                st.auth.restore_setup_code(code);
            }
            return Err(e);
        }
    };
    let mensaje = if admin {
        st.auth.setup_code_used();
        "Administrador creado. Ya puedes iniciar sesión."
    } else {
        "Usuario registrado. Tu cuenta está pendiente de aprobación por un administrador."
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({ "mensaje": mensaje, "usuario": user_json(&user) })),
    ))
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

const BAD_CREDENTIALS: &str = "Usuario o contraseña incorrectos.";

/// A login attempt, counted as a failure against the user name and the client address
/// before the password is checked (so simultaneous guesses cannot all get past the limit),
/// and given back when dropped without having failed.
struct Attempt<'a> {
    st: &'a AppState,
    user_key: String,
    addr_key: String,
    failed: bool,
}

impl<'a> Attempt<'a> {
    fn charge(st: &'a AppState, user_key: String, addr: IpAddr) -> Result<Self, ApiError> {
        let addr_key = addr.to_string();
        let by_user = st.auth.by_user.charge(&user_key);
        let by_addr = st.auth.by_addr.charge(&addr_key);
        match (by_user, by_addr) {
            (Ok(()), Ok(())) => Ok(Attempt {
                st,
                user_key,
                addr_key,
                failed: false,
            }),
            (u, a) => {
                if u.is_ok() {
                    st.auth.by_user.forgive(&user_key);
                }
                if a.is_ok() {
                    st.auth.by_addr.forgive(&addr_key);
                }
                let wait = u.err().max(a.err()).unwrap_or_default();
                Err(ApiError::TooManyRequests {
                    retry_after_s: wait.as_secs().max(1),
                })
            }
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.failed {
            self.st.auth.by_user.forgive(&self.user_key);
            self.st.auth.by_addr.forgive(&self.addr_key);
        }
    }
}

async fn login(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    b: Result<Json<LoginBody>, JsonRejection>,
) -> Result<WithTokens, ApiError> {
    let Json(b) = b?;
    let mut attempt = Attempt::charge(&st, b.username.trim().to_lowercase(), addr.ip())?;
    let store = st.store.clone();
    let name = b.username.trim().to_string();
    let user = blocking(move || store.user_by_name(&name)).await?;
    let ok = st
        .auth
        .hasher
        .verify(b.password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            attempt.failed = true;
            tracing::info!(user = %attempt.user_key, client = %attempt.addr_key, "login failed");
            return Err(ApiError::Unauthorized(BAD_CREDENTIALS.into()));
        }
    };
    if !user.approved {
        return Err(ApiError::Forbidden(
            "Tu cuenta está pendiente de aprobación.".into(),
        ));
    }
    let (access, refresh) = token_pair(&st, user.id)?;
    Ok(with_tokens(
        json!({ "access": access, "refresh": refresh, "user": user_json(&user) }),
    ))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh: Option<String>,
    refresh_token: Option<String>,
}

impl RefreshBody {
    fn token(self) -> Result<String, ApiError> {
        self.refresh
            .or(self.refresh_token)
            .ok_or_else(|| ApiError::field("refresh", "Este campo es requerido."))
    }
}

/// A new access and refresh token for `user_id`.
fn token_pair(st: &AppState, user_id: u64) -> Result<(String, String), ApiError> {
    let (access, _) = st
        .auth
        .keys
        .issue(user_id, TokenType::Access)
        .map_err(internal)?;
    let (refresh, _) = st
        .auth
        .keys
        .issue(user_id, TokenType::Refresh)
        .map_err(internal)?;
    Ok((access, refresh))
}

/// The verified claims of the refresh token in the body (`refresh` or `refresh_token`).
fn refresh_claims(
    st: &AppState,
    b: Result<Json<RefreshBody>, JsonRejection>,
) -> Result<crate::auth::Claims, ApiError> {
    let token = b?.0.token()?;
    st.auth
        .keys
        .verify(&token, TokenType::Refresh)
        .map_err(|_| ApiError::Unauthorized(BAD_TOKEN.into()))
}

async fn refresh(
    State(st): State<AppState>,
    b: Result<Json<RefreshBody>, JsonRejection>,
) -> Result<WithTokens, ApiError> {
    let claims = refresh_claims(&st, b)?;
    let store = st.store.clone();
    let (jti, exp, sub) = (claims.jti.clone(), claims.exp, claims.sub);
    let (fresh, user) =
        blocking(move || Ok::<_, ApiError>((store.revoke_if_active(&jti, exp)?, store.user(sub)?)))
            .await?;
    let user = match (fresh, user) {
        (true, Some(u)) if u.approved => u,
        _ => return Err(ApiError::Unauthorized(BAD_TOKEN.into())),
    };
    let (access, refresh) = token_pair(&st, user.id)?;
    Ok(with_tokens(json!({ "access": access, "refresh": refresh })))
}

async fn logout(
    State(st): State<AppState>,
    b: Result<Json<RefreshBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let claims = refresh_claims(&st, b)?;
    let store = st.store.clone();
    blocking(move || store.revoke_token(&claims.jti, claims.exp)).await?;
    Ok(Json(json!({ "mensaje": "Sesión cerrada." })))
}
