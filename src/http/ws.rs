//! WebSocket `/ws/mqtt/`: every accepted reading, as it arrives.
//!
//! A client that cannot keep up skips the oldest readings and receives
//! `{"type":"lagged","skipped":n}` instead; a client whose socket accepts nothing for
//! [`SEND_TIMEOUT`] is disconnected. Neither case slows ingest or other clients.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::routes::{Access, Route};
use crate::store::users::Permission;

/// Longest a single send may block before the client is considered dead.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The live feed (`VerDashboard`; the token may travel as `?token=`).
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

async fn upgrade(State(st): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| client(socket, st))
}

async fn client(socket: WebSocket, st: AppState) {
    let (mut rx, _guard) = st.live.subscribe();
    let (mut sink, mut stream) = socket.split();
    loop {
        let outgoing = tokio::select! {
            _ = st.shutdown.cancelled() => {
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
