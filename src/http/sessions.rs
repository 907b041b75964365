//! Sessions: login, token refresh with rotation, logout, and changing one's own password.
//!
//! Logins are throttled per user name and address, per address and per name
//! ([`crate::auth::throttle`]); an address where the account logged in successfully within
//! [`TRUST`] is only subject to the first, so failures elsewhere never lock the owner out.
//! Each login starts a session whose id every token carries: a logout revokes the session, so
//! the access tokens issued in it stop working too, not only the refresh token.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::accounts::{FieldErrors, WithTokens, check_new_password, push, user_json, with_tokens};
use super::error::{ApiError, BAD_TOKEN, blocking};
use super::guard::{CurrentUser, bearer};
use super::routes::{Access, Route};
use crate::auth::sessions::{live_account, token_pair};
use crate::auth::throttle::{Attempt, Lockout, Refused, TRUST, address_key};
use crate::auth::{Claims, Subject, TokenType};
use crate::logsafe::Clean;
use crate::rules::account::{LOGIN_PASSWORD_MAX, USERNAME_MAX};
use crate::store::users::User;

/// Sessions: open to everyone (they are how one gets a token), except changing one's own
/// password, which any logged-in account may do.
pub fn routes() -> Vec<Route> {
    vec![
        Route::post("/api/iniciar-sesion/", Access::Open, login),
        Route::post("/api/refrescar-token/", Access::Open, refresh),
        Route::post("/api/cerrar-sesion/", Access::Open, logout),
        // The same, at the paths the old system's web application calls.
        Route::post("/api/token/refresh/", Access::Open, refresh),
        Route::post("/api/logout/", Access::Open, logout),
        Route::post("/api/usuario/cambiar-clave/", Access::User, change_password),
    ]
}

const BAD_CREDENTIALS: &str = "Usuario o contraseña incorrectos.";

/// A login address already recorded this recently is not written again.
const MARK_EVERY_US: i64 = 3600 * 1_000_000;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn throttled(r: Refused) -> ApiError {
    ApiError::TooManyRequests {
        retry_after_s: r.wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

/// Logs the counters a failure made (or kept) throttling.
fn log_lockouts(lockouts: &[Lockout], name: &str, address: &str) {
    for l in lockouts {
        let wait_s = l
            .until
            .duration_since(std::time::SystemTime::now())
            .map(|d| d.as_secs_f64().ceil() as u64)
            .unwrap_or(0);
        tracing::warn!(
            scope = l.scope.code(),
            user = %Clean(name),
            client = %address,
            failures = l.failures,
            wait_s,
            "login throttled"
        );
    }
}

/// Charges a password check for `user` (the name as typed, lower-cased) from `address`.
fn charge(
    st: &AppState,
    name_key: &str,
    address: &str,
    user: Option<&User>,
) -> Result<Attempt, ApiError> {
    let since = crate::sitetime::now_us() - TRUST.as_micros() as i64;
    let trusted = user.is_some_and(|u| u.logged_in_from(address, since));
    st.auth
        .throttle
        .charge(name_key, address, trusted)
        .map_err(throttled)
}

/// A new session for `user`: a token pair and the user as the API shows it.
fn new_session(st: &AppState, user: &User) -> Result<Value, ApiError> {
    let who = Subject::new_session(user.id, user.stamp, st.store.instance_id());
    let (access, refresh) = token_pair(&st.auth.keys, &who).map_err(internal)?;
    Ok(json!({ "access": access, "refresh": refresh, "user": user_json(user) }))
}

/// Replaces an imported (Django) hash by an argon2id one after a successful login; the
/// account has no session here yet, so the new stamp ends nothing.
async fn upgrade_hash(st: &AppState, user: User, password: String) -> Result<User, ApiError> {
    let hash = st.auth.hasher.hash(password).await?;
    let store = st.store.clone();
    let id = user.id;
    let user = blocking(move || store.set_password(id, hash)).await?;
    tracing::info!(user = %Clean(&user.username), "imported password hash replaced by argon2id");
    Ok(user)
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(
    State(st): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    b: Result<Json<LoginBody>, JsonRejection>,
) -> Result<WithTokens, ApiError> {
    let Json(b) = b?;
    let name = b.username.trim().to_string();
    if name.chars().count() > USERNAME_MAX || b.password.chars().count() > LOGIN_PASSWORD_MAX {
        return Err(ApiError::BadRequest(
            "El usuario o la contraseña son demasiado largos.".into(),
        ));
    }
    let name_key = name.to_lowercase();
    let address = address_key(client.ip());
    let store = st.store.clone();
    let lookup = name.clone();
    let user = blocking(move || store.user_by_name(&lookup)).await?;
    let attempt = charge(&st, &name_key, &address, user.as_ref())?;
    let legacy = user
        .as_ref()
        .is_some_and(|u| crate::auth::password::is_legacy(&u.password_hash));
    let password = legacy.then(|| b.password.clone());
    let ok = st
        .auth
        .hasher
        .verify(b.password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            let lockouts = attempt.failed();
            tracing::info!(user = %Clean(&name_key), client = %address, "login failed");
            log_lockouts(&lockouts, &name_key, &address);
            return Err(ApiError::Unauthorized(BAD_CREDENTIALS.into()));
        }
    };
    attempt.succeeded();
    let user = match password {
        Some(p) if user.active() => upgrade_hash(&st, user, p).await?,
        _ => user,
    };
    if !user.approved {
        return Err(ApiError::Forbidden(
            "Tu cuenta está pendiente de aprobación.".into(),
        ));
    }
    if user.disabled {
        return Err(ApiError::Forbidden(
            "Tu cuenta está deshabilitada. Habla con un administrador.".into(),
        ));
    }
    let (store, id, at) = (st.store.clone(), user.id, crate::sitetime::now_us());
    // One write per address and hour at most: SD cards wear with every commit.
    if !user.logged_in_from(&address, at - MARK_EVERY_US) {
        let marked = address.clone();
        if let Err(e) = blocking(move || store.record_login(id, &marked, at)).await {
            // The session is still fine; only the protection of this address waits a login.
            tracing::warn!(error = %e, user = id, "could not record the login address");
        }
    }
    Ok(with_tokens(new_session(&st, &user)?))
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

/// The verified claims of the refresh token in the body (`refresh` or `refresh_token`).
fn refresh_claims(
    st: &AppState,
    b: Result<Json<RefreshBody>, JsonRejection>,
) -> Result<Claims, ApiError> {
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
    let checked = claims.clone();
    let user = blocking(move || {
        // Spend the token first: of two concurrent refreshes with it, one wins.
        if !store.revoke_if_active(&checked.jti, checked.exp)? {
            return Ok::<_, ApiError>(None);
        }
        Ok(live_account(&store, &checked)?)
    })
    .await?
    .ok_or_else(|| ApiError::Unauthorized(BAD_TOKEN.into()))?;
    let who = Subject {
        user_id: user.id,
        stamp: user.stamp,
        sid: claims.sid,
        instance: claims.inst,
    };
    let (access, refresh) = token_pair(&st.auth.keys, &who).map_err(internal)?;
    Ok(with_tokens(json!({ "access": access, "refresh": refresh })))
}

async fn logout(
    State(st): State<AppState>,
    headers: HeaderMap,
    b: Result<Json<RefreshBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let claims = refresh_claims(&st, b)?;
    let until = crate::sitetime::now_us() / 1_000_000 + st.auth.keys.longest_lifetime_s();
    // The access token sent along (if any) may belong to another session of the same browser.
    let other = bearer(&headers)
        .and_then(|t| st.auth.keys.verify(&t, TokenType::Access).ok())
        .filter(|a| a.sub == claims.sub && a.sid != claims.sid);
    let store = st.store.clone();
    blocking(move || {
        store.end_session(&claims.jti, claims.exp, &claims.sid, until)?;
        if let Some(a) = other {
            store.end_session(&a.jti, a.exp, &a.sid, until)?;
        }
        Ok::<_, ApiError>(())
    })
    .await?;
    Ok(Json(json!({ "mensaje": "Sesión cerrada." })))
}

#[derive(Deserialize)]
struct ChangeBody {
    old_password: Option<String>,
    new_password: Option<String>,
    new_password2: Option<String>,
}

/// `POST /api/usuario/cambiar-clave/`: the current password and a new one (twice, with the
/// registration rules). Every session of the account ends; the caller gets a new one.
async fn change_password(
    State(st): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Extension(CurrentUser(user)): Extension<CurrentUser>,
    b: Result<Json<ChangeBody>, JsonRejection>,
) -> Result<WithTokens, ApiError> {
    let Json(b) = b?;
    let mut errors = FieldErrors::new();
    let mut field = |name: &str, v: Option<String>| match v {
        Some(s) if !s.is_empty() => s,
        _ => {
            push(&mut errors, name, "Este campo es requerido.");
            String::new()
        }
    };
    let old = field("old_password", b.old_password);
    let new = field("new_password", b.new_password);
    let again = field("new_password2", b.new_password2);
    if old.chars().count() > LOGIN_PASSWORD_MAX {
        push(
            &mut errors,
            "old_password",
            "La contraseña actual no es correcta.",
        );
    }
    check_new_password(
        &mut errors,
        ("new_password", &new),
        ("new_password2", &again),
        &[
            &user.username,
            &user.email,
            &user.first_name,
            &user.last_name,
        ],
    );
    if !errors.is_empty() {
        return Err(ApiError::Fields(errors));
    }
    let name_key = user.username.to_lowercase();
    let address = address_key(client.ip());
    let attempt = charge(&st, &name_key, &address, Some(&user))?;
    let ok = st
        .auth
        .hasher
        .verify(old, Some(user.password_hash.clone()))
        .await?;
    if !ok {
        let lockouts = attempt.failed();
        log_lockouts(&lockouts, &name_key, &address);
        return Err(ApiError::field(
            "old_password",
            "La contraseña actual no es correcta.",
        ));
    }
    attempt.succeeded();
    let hash = st.auth.hasher.hash(new).await?;
    let store = st.store.clone();
    let id = user.id;
    let user = blocking(move || store.set_password(id, hash)).await?;
    tracing::info!(user = %Clean(&user.username), id, "password changed by its owner");
    let mut body = new_session(&st, &user)?;
    if let Value::Object(m) = &mut body {
        m.insert(
            "mensaje".into(),
            Value::from("Contraseña cambiada. Las demás sesiones se cerraron."),
        );
    }
    Ok(with_tokens(body))
}
