//! WebSocket `/ws/mqtt/`: every accepted reading, as it arrives.
//!
//! A client that cannot keep up skips the oldest readings and receives
//! `{"type":"lagged","skipped":n}` instead; a client whose socket accepts nothing for
//! [`SEND_TIMEOUT`] is disconnected. Neither case slows ingest or other clients. The session
//! is checked again every [`RECHECK`]: a logout, a disabled account or a removed permission
//! closes the feed.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::guard::CurrentSession;
use crate::auth::Claims;
use crate::auth::sessions::live_account;
use crate::store::users::Permission;

/// Longest a single send may block before the client is considered dead.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an open feed checks that its session is still valid.
const RECHECK: Duration = Duration::from_secs(15);

pub fn router() -> Router<AppState> {
    Router::new().route("/ws/mqtt/", get(upgrade))
}

async fn upgrade(
    State(st): State<AppState>,
    Extension(CurrentSession(claims)): Extension<CurrentSession>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |socket| client(socket, st, claims))
}

/// Whether the session behind the feed still stands and may see the dashboard.
async fn still_allowed(st: &AppState, claims: &Claims) -> bool {
    let (store, claims) = (st.store.clone(), claims.clone());
    matches!(
        tokio::task::spawn_blocking(move || live_account(&store, &claims)).await,
        Ok(Ok(Some(u))) if u.has(Permission::VerDashboard)
    )
}

async fn client(socket: WebSocket, st: AppState, claims: Claims) {
    let (mut rx, _guard) = st.live.subscribe();
    let (mut sink, mut stream) = socket.split();
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
    loop {
        let outgoing = tokio::select! {
            _ = st.shutdown.cancelled() => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
            _ = recheck.tick() => {
                if still_allowed(&st, &claims).await {
                    continue;
                }
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
            msg = rx.recv() => match msg {
                Ok(text) => Message::Text(text),
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
