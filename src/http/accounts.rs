//! Registration (`POST /api/crear-usuario/`). Paths and field names are the old system's.
//! Sessions are in `sessions.rs`, the administration of users in `users.rs`.
//!
//! A registration is limited per client address and for everybody per hour, and refused while
//! too many accounts wait for approval ([`crate::auth::registrations`]); the limits are
//! checked after the form (so a typo never spends one) and before the password is hashed (so
//! a flood costs little). The one-time setup code bypasses the hourly limit for everybody and
//! the cap on waiting accounts: a flood can never stop the owner from creating the
//! administrator.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderName, StatusCode, header};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, blocking};
use super::routes::{Access, Route};
use crate::auth::registrations::Refusal;
use crate::auth::throttle::address_key;
use crate::logsafe::Clean;
use crate::rules::account::{Identity, SETUP_CODE_MAX};
pub use crate::rules::{FieldErrors, check_new_password, push};
use crate::store::users::{NewUser, Permission, User};

/// Registration: open to everyone (it is how one gets an account).
pub fn routes() -> Vec<Route> {
    vec![Route::post("/api/crear-usuario/", Access::Open, register)]
}

/// A response carrying tokens: never stored by the browser or a proxy.
pub type WithTokens = ([(HeaderName, &'static str); 1], Json<Value>);

/// `body` sent with `Cache-Control: no-store`.
pub fn with_tokens(body: Value) -> WithTokens {
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
        "activo": !u.disabled,
    })
}

/// The fields of a JSON object body.
pub fn body(
    b: Result<Json<Value>, JsonRejection>,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    match b?.0 {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::BadRequest(
            "El cuerpo debe ser un objeto JSON.".into(),
        )),
    }
}

/// Reads a string field; `None` when absent or empty, an error when of another type.
pub fn text(
    m: &serde_json::Map<String, Value>,
    name: &str,
    errors: &mut FieldErrors,
) -> Option<String> {
    match m.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            push(errors, name, "Debe ser un texto.");
            None
        }
    }
}

/// Reads a string field that must be present.
pub fn required(
    m: &serde_json::Map<String, Value>,
    name: &str,
    errors: &mut FieldErrors,
) -> String {
    let v = text(m, name, errors);
    if v.is_none() && !errors.contains_key(name) {
        push(errors, name, "Este campo es requerido.");
    }
    v.unwrap_or_default()
}

fn refused(r: Refusal) -> ApiError {
    let (detail, wait) = match r {
        Refusal::Address(wait) => (
            format!(
                "Demasiados registros desde esta dirección. Intenta de nuevo en {} min.",
                wait.as_secs().div_ceil(60)
            ),
            wait,
        ),
        Refusal::Everyone(wait) => (
            format!(
                "Demasiados registros en la última hora. Intenta de nuevo en {} min.",
                wait.as_secs().div_ceil(60)
            ),
            wait,
        ),
    };
    ApiError::RateLimited {
        detail,
        retry_after_s: Some(wait.as_secs().max(1)),
    }
}

async fn register(
    State(st): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let m = body(b)?;
    let mut errors = FieldErrors::new();
    let username = required(&m, "username", &mut errors).trim().to_string();
    let email = required(&m, "email", &mut errors).trim().to_string();
    let password = required(&m, "password", &mut errors);
    let password2 = required(&m, "password2", &mut errors);
    let first_name = text(&m, "first_name", &mut errors).unwrap_or_default();
    let last_name = text(&m, "last_name", &mut errors).unwrap_or_default();
    let setup_code = text(&m, "setup_code", &mut errors);
    let identity = Identity {
        username: &username,
        email: &email,
        first_name: &first_name,
        last_name: &last_name,
    };
    identity.check(&mut errors);
    check_new_password(
        &mut errors,
        ("password", &password),
        ("password2", &password2),
        &identity.attributes(),
    );
    match &setup_code {
        Some(code) if code.chars().count() > SETUP_CODE_MAX => {
            push(
                &mut errors,
                "setup_code",
                "El código de configuración no es válido.",
            );
        }
        Some(_) if !st.auth.setup_pending() => push(
            &mut errors,
            "setup_code",
            "No hay un código de configuración pendiente: el administrador ya existe.",
        ),
        _ => {}
    }
    if !errors.is_empty() {
        return Err(ApiError::Fields(errors));
    }
    let address = address_key(client.ip());
    st.auth
        .registrations
        .admit(&address, setup_code.is_none())
        .map_err(refused)?;
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
    let give_back = |st: &AppState| {
        if let (true, Some(code)) = (admin, &setup_code) {
            st.auth.restore_setup_code(code);
        }
    };
    let pending = (!admin).then_some(st.auth.pending);
    if let Some(cap) = pending {
        // A cheap look before hashing; the store checks again when writing.
        let store = st.store.clone();
        let waiting = blocking(move || store.users())
            .await?
            .iter()
            .filter(|u| !u.approved)
            .count() as u64;
        if waiting >= cap.max {
            return Err(crate::store::users::UserError::TooManyPending(waiting).into());
        }
    }
    let hash = match st.auth.hasher.hash(password).await {
        Ok(h) => h,
        Err(e) => {
            give_back(&st);
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
    let user = match blocking(move || store.register_user(new, pending)).await {
        Ok(u) => u,
        Err(e) => {
            give_back(&st);
            return Err(e);
        }
    };
    tracing::info!(
        user = %Clean(&user.username),
        id = user.id,
        client = %address,
        administrator = admin,
        "account registered"
    );
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
