//! WebSocket `/ws/mqtt/`: every accepted reading, as it arrives (see [`feed`]).
//!
//! The feed only sends, so what a client may send is capped at [`CLIENT_MESSAGE_LIMIT`] (a
//! bigger message closes the socket with 1009 before it is buffered), and each socket's
//! buffers are small. The number of feeds is capped in all and per account
//! (`http.ws_max_clients`, `http.ws_max_clients_per_user`): one more is answered with 429.

mod feed;
mod slots;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::guard::{AccessClaims, CurrentUser, TOKEN_PROTOCOL, offered_protocols, protocol_token};
use super::routes::{Access, Route};
use crate::logsafe::Clean;
use crate::store::users::Permission;
pub use slots::{WsRefusal, WsSlot, WsSlots};

/// Largest message (and frame) a client may send: the feed expects none but pings and close
/// frames, and without a cap the WebSocket library buffers up to 64 MiB per message.
pub const CLIENT_MESSAGE_LIMIT: usize = 4 * 1024;

/// Initial capacity of each socket's read buffer (the library's default is 128 KiB, which a
/// few hundred idle sockets turn into tens of MiB).
const READ_BUFFER: usize = 4 * 1024;

/// Most bytes waiting to be written to one socket when its writes fail; readings are written
/// as they come (no batching buffer), so this only bounds a socket in trouble.
const MAX_WRITE_BUFFER: usize = 64 * 1024;

/// The live feed (`VerDashboard`; the token may travel as `?token=` or as a
/// `Sec-WebSocket-Protocol` value).
pub fn routes() -> Vec<Route> {
    vec![
        Route::get(
            "/ws/mqtt/",
            Access::Permission(Permission::VerDashboard),
            upgrade,
        )
        .token_in_query(),
    ]
}

impl From<WsRefusal> for ApiError {
    fn from(r: WsRefusal) -> Self {
        ApiError::TooMany(match r {
            WsRefusal::PerUser(n) => format!(
                "Ya tienes {n} conexiones en vivo abiertas; cierra alguna pestaña e intenta de nuevo."
            ),
            WsRefusal::Full(n) => format!(
                "El equipo ya atiende {n} conexiones en vivo; intenta de nuevo en un momento."
            ),
        })
    }
}

async fn upgrade(
    State(st): State<AppState>,
    Extension(CurrentUser(user)): Extension<CurrentUser>,
    Extension(AccessClaims(claims)): Extension<AccessClaims>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let slot = match st.ws_slots.take(user.id) {
        Ok(slot) => slot,
        Err(refusal) => {
            tracing::info!(user = %Clean(&user.username), ?refusal, "live feed refused");
            return ApiError::from(refusal).into_response();
        }
    };
    // A browser that offered subprotocols fails the handshake unless one is selected: the
    // marker when it offered one, else the token it offered.
    let offered = offered_protocols(&headers);
    let selected = if offered.iter().any(|p| p == TOKEN_PROTOCOL) {
        Some(TOKEN_PROTOCOL.to_string())
    } else {
        protocol_token(&headers)
    };
    let ws = match selected {
        Some(p) => ws.protocols([p]),
        None => ws,
    };
    ws.max_message_size(CLIENT_MESSAGE_LIMIT)
        .max_frame_size(CLIENT_MESSAGE_LIMIT)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| feed::run(socket, st, feed::Viewer { claims }, slot))
}
