//! Access control, attached by the router to every route from its [`RouteInfo`]: a valid
//! access token (`Authorization: Bearer`, or `?token=` or a `Sec-WebSocket-Protocol` value on
//! the routes that allow it: the WebSocket and report downloads, which browsers cannot send
//! headers with) of a live session
//! (see [`crate::auth::sessions`]: an approved, enabled account whose stamp, session and store
//! instance still match), and the route's permission. No token or a bad one → 401; a valid
//! token without the permission → 403. The account is read on each request, so approvals,
//! permission changes, disabling and logouts apply at once.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use super::AppState;
use super::error::{ApiError, BAD_TOKEN, NO_CREDENTIALS, blocking};
use super::routes::{Access, RouteInfo};
use crate::auth::sessions::live_account;
use crate::auth::{Claims, TokenType};
use crate::store::users::{Permission, User};

/// The authenticated account, available to handlers as `Extension<CurrentUser>`.
#[derive(Clone, Debug)]
pub struct CurrentUser(pub User);

/// The verified claims of the request's access token, available as `Extension<AccessClaims>`
/// (the live feed needs to know when its token expires).
#[derive(Clone, Debug)]
pub struct AccessClaims(pub Claims);

/// What a request's `Authorization` header holds.
pub enum AuthHeader {
    Absent,
    Bearer(String),
    /// Another scheme, or unreadable: the query string is then not consulted either.
    Other,
}

/// Reads the `Authorization` header of `headers`.
pub fn auth_header(headers: &HeaderMap) -> AuthHeader {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return AuthHeader::Absent;
    };
    match value.to_str().ok().and_then(|t| t.split_once(' ')) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            AuthHeader::Bearer(token.trim().to_string())
        }
        _ => AuthHeader::Other,
    }
}

fn token_of(req: &Request, in_query: bool) -> Option<String> {
    match auth_header(req.headers()) {
        AuthHeader::Bearer(token) => return Some(token),
        AuthHeader::Absent => {}
        AuthHeader::Other => return None,
    }
    if in_query {
        return req
            .uri()
            .query()
            .and_then(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| *k == "token")
                    .map(|(_, v)| v.to_string())
            })
            .or_else(|| protocol_token(req.headers()));
    }
    None
}

/// The subprotocol a client names to say that the next offered one is its access token
/// (`new WebSocket(url, ["bearer", token])`); the server selects it, so the token is never
/// echoed back.
pub const TOKEN_PROTOCOL: &str = "bearer";

/// The access token offered as a `Sec-WebSocket-Protocol` value: browsers cannot set
/// headers on a WebSocket, and a token in the URL ends up in logs and history. The value
/// shaped like a token (three dot-separated parts) is taken.
pub fn protocol_token(headers: &HeaderMap) -> Option<String> {
    offered_protocols(headers)
        .into_iter()
        .find(|p| p.split('.').count() == 3 && p.split('.').all(|part| !part.is_empty()))
}

/// The values of the request's `Sec-WebSocket-Protocol` headers, in order.
pub fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Resolves a token to the account of a live session and the token's claims.
pub async fn authenticate(
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
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    match auth_header(headers) {
        AuthHeader::Bearer(token) => Some(token),
        _ => None,
    }
}

/// Whether `token` is the configured metrics token.
pub fn is_metrics_token(st: &AppState, token: Option<&str>) -> bool {
    let configured = &st.config.raw.auth.metrics_token;
    !configured.is_empty()
        && token.is_some_and(|t| {
            crate::auth::tokens::constant_time_eq(configured.as_bytes(), t.as_bytes())
        })
}

async fn check(st: AppState, route: RouteInfo, mut req: Request, next: Next) -> Response {
    let token = token_of(&req, route.token_in_query);
    let need = match route.access {
        Access::Open => None,
        Access::User => None,
        Access::Permission(p) => Some(p),
        Access::MetricsScraper => {
            if is_metrics_token(&st, token.as_deref()) {
                return next.run(req).await;
            }
            Some(Permission::AprobarUsuarios)
        }
    };
    let (user, claims) = match authenticate(&st, token).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    if let Some(p) = need
        && !user.has(p)
    {
        return forbidden(p).into_response();
    }
    req.extensions_mut().insert(CurrentUser(user));
    req.extensions_mut().insert(AccessClaims(claims));
    next.run(req).await
}

/// The refusal of an account that lacks `p`.
pub fn forbidden(p: Permission) -> ApiError {
    ApiError::Forbidden(format!(
        "No tienes permiso para realizar esta acción (requiere {}).",
        p.name()
    ))
}

/// Puts `handler` behind the checks `route` requires (none for [`Access::Open`]).
pub fn guard(
    handler: MethodRouter<AppState>,
    route: &RouteInfo,
    state: &AppState,
) -> MethodRouter<AppState> {
    if route.access == Access::Open {
        return handler;
    }
    let route = route.clone();
    handler.route_layer(middleware::from_fn_with_state(
        state.clone(),
        move |State(st): State<AppState>, req: Request, next: Next| {
            check(st, route.clone(), req, next)
        },
    ))
}
