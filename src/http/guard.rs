//! Access control: every protected route group is wrapped with [`protect`], which requires a
//! valid access token (`Authorization: Bearer`, or `?token=` for the WebSocket and report
//! downloads, which browsers cannot send headers with) of a live session (see
//! [`crate::auth::sessions`]: an approved, enabled account whose stamp, session and store
//! instance still match), and the group's permission. No token or a bad one → 401; a valid
//! token without the permission → 403. The account is read on each request, so approvals,
//! permission changes, disabling and logouts apply at once.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::{ApiError, BAD_TOKEN, NO_CREDENTIALS, blocking};
use crate::auth::sessions::live_account;
use crate::auth::{Claims, TokenType};
use crate::store::users::{Permission, User};

/// The authenticated account, available to handlers as `Extension<CurrentUser>`.
#[derive(Clone, Debug)]
pub struct CurrentUser(pub User);

/// The verified claims of the request's access token (its session), as
/// `Extension<CurrentSession>`: the WebSocket re-checks the session while it stays open.
#[derive(Clone, Debug)]
pub struct CurrentSession(pub Claims);

/// Paths where the token may travel in the query string.
fn query_token_allowed(path: &str) -> bool {
    path.starts_with("/ws/") || path.starts_with("/api/dashboard/report/download/")
}

fn token_of(req: &Request) -> Option<String> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION)
        && let Ok(text) = value.to_str()
    {
        let mut parts = text.splitn(2, ' ');
        if let (Some(scheme), Some(token)) = (parts.next(), parts.next())
            && scheme.eq_ignore_ascii_case("bearer")
        {
            return Some(token.trim().to_string());
        }
        return None;
    }
    if query_token_allowed(req.uri().path()) {
        return req.uri().query().and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "token")
                .map(|(_, v)| v.to_string())
        });
    }
    None
}

/// Resolves a request's access token to the account of a live session.
pub async fn authenticate(st: &AppState, token: Option<String>) -> Result<User, ApiError> {
    authenticate_session(st, token).await.map(|(u, _)| u)
}

/// Like [`authenticate`], also returning the token's claims.
pub async fn authenticate_session(
    st: &AppState,
    token: Option<String>,
) -> Result<(User, Claims), ApiError> {
    let token = token.ok_or_else(|| ApiError::Unauthorized(NO_CREDENTIALS.into()))?;
    let claims = st
        .auth
        .keys
        .verify(&token, TokenType::Access)
        .map_err(|_| ApiError::Unauthorized(BAD_TOKEN.into()))?;
    let store = st.store.clone();
    let checked = claims.clone();
    let user = blocking(move || live_account(&store, &checked)).await?;
    match user {
        Some(u) => Ok((u, claims)),
        None => Err(ApiError::Unauthorized(BAD_TOKEN.into())),
    }
}

/// The bearer token of a request's `Authorization` header, if any.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    let text = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

async fn check(st: AppState, need: Option<Permission>, mut req: Request, next: Next) -> Response {
    let token = token_of(&req);
    let (user, claims) = match authenticate_session(&st, token).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    if let Some(p) = need
        && !user.has(p)
    {
        return forbidden(p).into_response();
    }
    req.extensions_mut().insert(CurrentUser(user));
    req.extensions_mut().insert(CurrentSession(claims));
    next.run(req).await
}

fn forbidden(p: Permission) -> ApiError {
    ApiError::Forbidden(format!(
        "No tienes permiso para realizar esta acción (requiere {}).",
        p.name()
    ))
}

/// Wraps every route of `routes` with the token check and, if given, the permission.
pub fn protect(
    routes: Router<AppState>,
    state: &AppState,
    need: Option<Permission>,
) -> Router<AppState> {
    routes.route_layer(middleware::from_fn_with_state(
        state.clone(),
        move |State(st): State<AppState>, req: Request, next: Next| check(st, need, req, next),
    ))
}

/// A permission a handler requires, as a type, so the requirement is part of its signature.
pub trait Requirement: Send + Sync + 'static {
    const PERMISSION: Permission;
}

macro_rules! requirement {
    ($($name:ident),*) => {$(
        #[doc = concat!("Requires the `", stringify!($name), "` permission.")]
        pub struct $name;
        impl Requirement for $name {
            const PERMISSION: Permission = Permission::$name;
        }
    )*};
}
requirement!(
    VerDashboard,
    VerReportes,
    GenerarReportes,
    GestionarLlenados
);

/// The authenticated user, checked to hold `R`'s permission (403 otherwise). Needs the route
/// to be behind [`protect`], which authenticates.
pub struct Authorized<R: Requirement>(pub User, pub std::marker::PhantomData<R>);

impl<S: Send + Sync, R: Requirement> axum::extract::FromRequestParts<S> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        let Some(CurrentUser(user)) = parts.extensions.get::<CurrentUser>().cloned() else {
            return Err(ApiError::Unauthorized(NO_CREDENTIALS.into()));
        };
        if !user.has(R::PERMISSION) {
            return Err(forbidden(R::PERMISSION));
        }
        Ok(Authorized(user, std::marker::PhantomData))
    }
}
