//! TEMP stub
use super::AppState;
use axum::Router;
pub fn router() -> Router<AppState> {
    Router::new()
}
