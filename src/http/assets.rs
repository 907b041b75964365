//! The bundled web UI, compiled into the binary from `static/`, with explicit content types
//! and cache headers: `index.html` is revalidated, versioned assets (`?v=`) are cached for a
//! year. The text `__V__` in HTML, JS and CSS files is replaced by a hash of the whole bundle,
//! so every asset URL changes when any asset does and a cached old file is never used.

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::LazyLock;

use rust_embed::Embed;

#[derive(Embed)]
#[folder = "static/"]
struct Assets;

/// Hash of every embedded file, the cache-busting version of asset URLs.
static BUNDLE_VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut names: Vec<_> = Assets::iter().collect();
    names.sort();
    // FNV-1a over the files' SHA-256 digests: short, stable, and changes with any file.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for name in names {
        if let Some(f) = Assets::get(&name) {
            for b in name
                .as_bytes()
                .iter()
                .chain(f.metadata.sha256_hash().iter())
            {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    format!("{h:016x}")
});

/// Text files with `__V__` replaced, prepared once.
static VERSIONED: LazyLock<HashMap<String, Vec<u8>>> = LazyLock::new(|| {
    Assets::iter()
        .filter(|n| n.ends_with(".html") || n.ends_with(".js") || n.ends_with(".css"))
        .filter_map(|n| {
            let f = Assets::get(&n)?;
            let text = String::from_utf8(f.data.into_owned()).ok()?;
            Some((
                n.to_string(),
                text.replace("__V__", &BUNDLE_VERSION).into_bytes(),
            ))
        })
        .collect()
});

/// Serves an embedded file; unknown paths outside `/api/` get the UI's `index.html`.
pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") || path.starts_with("ws/") {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"detail": "No encontrado."})),
        )
            .into_response();
    }
    let (name, file) = match Assets::get(path).filter(|_| !path.is_empty()) {
        Some(f) => (path, f),
        None => match Assets::get("index.html") {
            Some(f) => ("index.html", f),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    let mime = file.metadata.mimetype();
    let cache = if name == "index.html" {
        "no-cache"
    } else if uri.query().is_some_and(|q| q.starts_with("v=")) {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let body = match VERSIONED.get(name) {
        Some(text) => text.clone(),
        None => file.data.into_owned(),
    };
    let mut resp = body.into_response();
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
