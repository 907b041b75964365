//! Large JSON answers sent in pieces. A page of 10 000 readings with many extra channels is
//! hundreds of MB as a `serde_json::Value` tree and tens of MB as text; built whole, a few
//! such requests at once pass the service's memory limit, and what the allocator keeps of them
//! afterwards stays resident. Written piece by piece instead, an answer never holds more than
//! one piece of text and the few rows behind it, whatever its length.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::error::ApiError;
use crate::store::StoreError;

/// Size at which a piece is handed to the connection (it ends after the row that crosses it).
pub const PIECE_BYTES: usize = 64 * 1024;

/// Why a piece could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum PieceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("JSON encoding failed: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<PieceError> for ApiError {
    fn from(e: PieceError) -> Self {
        match e {
            PieceError::Store(s) => ApiError::Store(s),
            PieceError::Json(j) => ApiError::Internal(j.to_string()),
        }
    }
}

/// The source of one streamed answer: each call returns the next piece of the document, or
/// `None` after the last one. Called on the blocking pool, one piece at a time, only when the
/// connection has taken the previous piece (a slow client slows the source, nothing piles up).
pub trait Pieces: Send + 'static {
    /// The next piece of the document, `None` once it is complete.
    fn next_piece(&mut self) -> Result<Option<Vec<u8>>, PieceError>;
}

async fn piece<P: Pieces>(mut source: P) -> Result<(P, Option<Vec<u8>>), ApiError> {
    tokio::task::spawn_blocking(move || {
        let p = source.next_piece()?;
        Ok::<_, PieceError>((source, p))
    })
    .await?
    .map_err(ApiError::from)
}

/// Answers 200 with the JSON document `source` writes. The first piece is produced before the
/// status line, so a store that fails at once still gets its JSON error; a failure after that
/// is logged and aborts the connection, so the client sees a truncated transfer, never a
/// complete-looking document.
pub async fn json<P: Pieces>(source: P) -> Result<Response, ApiError> {
    let (source, first) = piece(source).await?;
    let rest =
        futures_util::stream::try_unfold(first.is_some().then_some(source), |state| async move {
            let Some(source) = state else {
                return Ok(None);
            };
            match piece(source).await {
                Ok((source, Some(bytes))) => Ok(Some((Bytes::from(bytes), Some(source)))),
                Ok((_, None)) => Ok(None),
                Err(e) => {
                    tracing::error!(error = %e, "streamed answer aborted");
                    Err(std::io::Error::other(e.to_string()))
                }
            }
        });
    let body = futures_util::stream::iter(first.map(|b| Ok(Bytes::from(b)))).chain(rest);
    let mut resp = Body::from_stream(body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
