//! Security headers on every response. The UI is plain modules and stylesheets from this
//! origin, with no inline script or style, so its Content-Security-Policy allows nothing else;
//! no page of the appliance may be framed by another site, and no URL (which may carry a token
//! in its query) leaks to another site through the `Referer` header.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;

/// The policy of the UI's pages: scripts, styles, fetches and the live feed from this origin
/// only (`'self'` covers `ws:` to the same host); `data:` only for the empty favicon.
pub const UI_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// The policy of everything else (JSON, scripts, styles): nothing to run, not framable.
/// Downloads (`Content-Disposition`) get none, so browsers' PDF viewers work on them.
const DATA_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

async fn add_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let is_html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if is_html {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(UI_POLICY),
        );
    } else if !h.contains_key(header::CONTENT_DISPOSITION) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DATA_POLICY),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The appliance's best estimate of now (the browser derives its clock skew from it, to
    // time token refreshes), not the raw system clock the server would otherwise send.
    let now = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(crate::sitetime::now_us())
        .unwrap_or_default();
    if let Ok(v) = HeaderValue::from_str(&now.format("%a, %d %b %Y %H:%M:%S GMT").to_string()) {
        h.insert(header::DATE, v);
    }
    resp
}

/// Adds the security headers to every response of `router`.
pub fn secure(router: Router) -> Router {
    router.layer(middleware::from_fn(add_headers))
}
