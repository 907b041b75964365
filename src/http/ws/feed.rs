//! One live-feed socket: readings out, nothing expected in, and the right to watch re-checked.
//!
//! A client that cannot keep up skips the oldest readings and receives
//! `{"type":"lagged","skipped":n}` instead; a client whose socket accepts nothing for
//! [`SEND_TIMEOUT`] is disconnected. Neither case slows ingest or other clients.
//!
//! The feed lives longer than the request that opened it, so it checks again what the guard
//! checked then: when the access token expires it closes with [`TOKEN_INVALID`] at once, and
//! every `http.ws_recheck_s` it checks the token's session ([`live_account`]): a logout, an
//! account gone, no longer approved or disabled, a changed password (security stamp) or a
//! restored store closes with [`TOKEN_INVALID`], an account without `VerDashboard` with
//! [`FORBIDDEN`]. Browsers reconnect with a fresh token (or stop, if the permission is gone).

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::WsSlot;
use crate::auth::Claims;
use crate::auth::sessions::live_account;
use crate::http::AppState;
use crate::http::error::blocking;
use crate::store::users::Permission;

/// Longest a single send may block before the client is considered dead.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Close code: the token expired, or its session ended (logout, password change, account
/// gone, no longer approved or disabled, store restored).
pub const TOKEN_INVALID: u16 = 4401;
/// Close code: the account no longer holds `VerDashboard`.
pub const FORBIDDEN: u16 = 4403;
/// Close code of a client message over the size limit (RFC 6455 "message too big").
const TOO_BIG: u16 = 1009;

/// Whose feed this is: the verified claims of the access token that opened it (its session,
/// and its expiry in Unix seconds as `exp`).
pub struct Viewer {
    pub claims: Claims,
}

type Sink = SplitSink<WebSocket, Message>;

async fn close(sink: &mut Sink, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
}

/// When the token expires, as a point on the runtime's clock.
fn expiry(token_exp: i64) -> Instant {
    let left = token_exp
        .saturating_sub(crate::sitetime::now_us() / 1_000_000)
        .max(0);
    Instant::now() + Duration::from_secs(left as u64)
}

/// Why the feed must end, if it must: (close code, reason).
async fn recheck(st: &AppState, viewer: &Viewer) -> Option<(u16, &'static str)> {
    if crate::sitetime::now_us() / 1_000_000 >= viewer.claims.exp {
        return Some((TOKEN_INVALID, "El token expiró."));
    }
    let store = st.store.clone();
    let claims = viewer.claims.clone();
    match blocking(move || live_account(&store, &claims)).await {
        Ok(Some(u)) if !u.has(Permission::VerDashboard) => {
            Some((FORBIDDEN, "La cuenta ya no tiene el permiso VerDashboard."))
        }
        Ok(Some(_)) => None,
        Ok(None) => Some((TOKEN_INVALID, "La sesión terminó.")),
        Err(e) => {
            // A passing store failure must not drop every browser; the next check decides.
            tracing::warn!(error = %e, "live feed: cannot re-check the account");
            None
        }
    }
}

/// Whether a read error is a client message over the size limit.
fn too_big(e: axum::Error) -> bool {
    e.into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// Streams readings to `socket` until the client leaves, the feed must close, or shutdown.
pub async fn run(socket: WebSocket, st: AppState, viewer: Viewer, _slot: WsSlot) {
    let (mut rx, _guard) = st.live.subscribe();
    let (mut sink, mut stream) = socket.split();
    let every = Duration::from_secs(st.config.raw.http.ws_recheck_s);
    let mut checks = tokio::time::interval_at(Instant::now() + every, every);
    let expires = tokio::time::sleep_until(expiry(viewer.claims.exp));
    let mut expires = std::pin::pin!(expires);
    loop {
        let outgoing = tokio::select! {
            _ = st.shutdown.cancelled() => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
            _ = &mut expires => {
                close(&mut sink, TOKEN_INVALID, "El token expiró.").await;
                break;
            }
            _ = checks.tick() => match recheck(&st, &viewer).await {
                Some((code, reason)) => {
                    close(&mut sink, code, reason).await;
                    break;
                }
                None => continue,
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(e)) => {
                    if too_big(e) {
                        close(&mut sink, TOO_BIG, "Mensaje demasiado grande.").await;
                    }
                    break;
                }
                Some(Ok(_)) => continue,
            },
            msg = rx.recv() => match msg {
                Ok(event) => match st.live.render(&event) {
                    Some(text) => Message::Text(text),
                    None => continue,
                },
                Err(RecvError::Lagged(n)) => {
                    Message::Text(format!("{{\"type\":\"lagged\",\"skipped\":{n}}}").into())
                }
                Err(RecvError::Closed) => break,
            },
        };
        match tokio::time::timeout(SEND_TIMEOUT, sink.send(outgoing)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => {
                tracing::info!("dropping a WebSocket client that stopped reading");
                break;
            }
        }
    }
}
