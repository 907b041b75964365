//! The one place where failures become HTTP responses: `{"detail": "..."}` (plus one list of
//! messages per field for invalid forms) with the status its name says. Internal errors are
//! logged and never leak details to clients.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::password::PasswordError;
use crate::store::StoreError;
use crate::store::users::UserError;

/// Errors a handler can return.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// An invalid form: a message list per field.
    #[error("invalid fields")]
    Fields(BTreeMap<String, Vec<String>>),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large")]
    TooLarge,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("too many attempts")]
    TooManyRequests { retry_after_s: u64 },
    /// A limit other than failed attempts (registrations, accounts waiting): its own
    /// explanation, and how long to wait when known.
    #[error("{detail}")]
    RateLimited {
        detail: String,
        retry_after_s: Option<u64>,
    },
    /// A cap on open connections of some kind was reached; the message says which.
    #[error("{0}")]
    TooMany(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Internal(String),
    /// A file could not be written (disk full, permissions): the operator must act, so the
    /// message says what failed.
    #[error("{0}")]
    WriteFailed(String),
}

/// The message for a missing or unusable token (as the old system worded it).
pub const NO_CREDENTIALS: &str = "Las credenciales de autenticación no se proveyeron.";
/// The message for an expired, forged or revoked token.
pub const BAD_TOKEN: &str = "Token inválido o expirado.";

/// Retry-After when the list of accounts waiting for approval is full (nobody knows when an
/// administrator will look at it).
const PENDING_RETRY_S: u64 = 600;

impl ApiError {
    /// One field error.
    pub fn field(name: &str, message: impl Into<String>) -> ApiError {
        ApiError::Fields(BTreeMap::from([(name.to_string(), vec![message.into()])]))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(format!("Parámetros inválidos: {}", r.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        match r {
            PathRejection::FailedToDeserializePathParams(e) => {
                ApiError::BadRequest(format!("Ruta inválida: {}", e.body_text()))
            }
            other => ApiError::Internal(other.body_text()),
        }
    }
}

/// The answer to a known path with a method it does not accept.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::TooLarge
            }
            JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest(
                "El cuerpo debe ser JSON (Content-Type: application/json).".into(),
            ),
            other => ApiError::BadRequest(format!("JSON inválido: {}", other.body_text())),
        }
    }
}

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::UsernameTaken => {
                ApiError::field("username", "Ya existe un usuario con este nombre.")
            }
            UserError::EmailTaken => {
                ApiError::field("email", "Ya existe un usuario con este correo electrónico.")
            }
            UserError::NotFound => ApiError::NotFound("Usuario no encontrado.".into()),
            UserError::LastApprover => ApiError::BadRequest(
                "Es la última cuenta activa con AprobarUsuarios: no se le puede quitar ese \
                 permiso, ni deshabilitarla, ni eliminarla. Da antes AprobarUsuarios a otra cuenta."
                    .into(),
            ),
            UserError::AlreadyApproved => ApiError::Conflict(
                "La cuenta ya está aprobada: para quitarle el acceso, deshabilítala o elimínala."
                    .into(),
            ),
            UserError::TooManyPending(n) => ApiError::RateLimited {
                detail: format!(
                    "Hay demasiadas cuentas pendientes de aprobación ({n}). Intenta más tarde \
                     o pide a un administrador que revise las pendientes."
                ),
                retry_after_s: Some(PENDING_RETRY_S),
            },
            UserError::Store(s) => ApiError::Store(s),
        }
    }
}

impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => ApiError::TooManyRequests { retry_after_s: 5 },
            PasswordError::Hash(m) => ApiError::Internal(m),
        }
    }
}

/// The `detail` of a form's errors: the specific message first (clients of the old system
/// show only `detail`), and how many more there are.
fn fields_detail(fields: &BTreeMap<String, Vec<String>>) -> String {
    let mut all = fields.values().flatten();
    let Some(first) = all.next() else {
        return "Revisa los datos del formulario.".into();
    };
    match all.count() {
        0 => first.clone(),
        1 => format!("{first} (hay 1 error más en el formulario)"),
        n => format!("{first} (hay {n} errores más en el formulario)"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({ "detail": m })),
            ApiError::Fields(fields) => {
                let mut body = serde_json::Map::new();
                body.insert("detail".into(), Value::from(fields_detail(fields)));
                for (k, v) in fields {
                    body.insert(k.clone(), json!(v));
                }
                (StatusCode::BAD_REQUEST, Value::Object(body))
            }
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, json!({ "detail": m })),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, json!({ "detail": m })),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, json!({ "detail": m })),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, json!({ "detail": m })),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({ "detail": "Método no permitido en esta ruta." }),
            ),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "detail": "El cuerpo de la petición es demasiado grande." }),
            ),
            ApiError::TooManyRequests { retry_after_s } => {
                let mut resp = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({
                        "detail": format!("Demasiados intentos. Intenta de nuevo en {retry_after_s} s.")
                    })),
                )
                    .into_response();
                if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return resp;
            }
            ApiError::RateLimited {
                detail,
                retry_after_s,
            } => {
                let mut resp = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({ "detail": detail })),
                )
                    .into_response();
                if let Some(v) =
                    retry_after_s.and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
                {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return resp;
            }
            ApiError::TooMany(m) => (StatusCode::TOO_MANY_REQUESTS, json!({ "detail": m })),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, json!({ "detail": m })),
            ApiError::WriteFailed(m) => {
                tracing::error!(error = %m, "write failed");
                (StatusCode::INTERNAL_SERVER_ERROR, json!({ "detail": m }))
            }
            ApiError::Store(_) | ApiError::Join(_) | ApiError::Internal(_) => {
                tracing::error!(error = %self, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "detail": "Error interno del servidor." }),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

/// Runs blocking store work off the async executor.
pub async fn blocking<T, F, E>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await?.map_err(Into::into)
}
