//! `/api/dashboard/readings/` (raw pages and chart buckets) and `/api/dashboard/stats/`.
//! Pages and bucket lists are written to the connection piece by piece (see
//! [`super::stream`]), so their size does not decide the service's memory.

use std::ops::ControlFlow;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, blocking};
use super::extract::Query;
use super::routes::{Access, Route};
use super::stream::{self, PIECE_BYTES, PieceError, Pieces};
use crate::live::reading_object;
use crate::sitetime::{parse_rfc3339, rfc3339, today};
use crate::store::users::Permission;
use crate::store::{Bucket, ReadingsCursor, Store, StoreError, Walk};

/// Most readings one page may hold.
const MAX_LIMIT: usize = 10_000;
/// Most buckets one chart request may ask for.
const MAX_BUCKETS: i64 = 10_000;

/// Readings and counters (`VerDashboard`).
pub fn routes() -> Vec<Route> {
    let see = Access::Permission(Permission::VerDashboard);
    vec![
        Route::get("/api/dashboard/readings/", see, readings),
        Route::get("/api/dashboard/stats/", see, stats),
    ]
}

/// Query of the readings endpoint; times are RFC 3339.
#[derive(Debug, Deserialize)]
struct ReadingsQuery {
    stage: Option<u64>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    bucket: Option<i64>,
}

fn time_param(name: &str, value: &Option<String>, default: i64) -> Result<i64, ApiError> {
    match value {
        None => Ok(default),
        Some(text) => parse_rfc3339(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`{name}` = {text:?} no es una fecha RFC 3339 (ej. 2026-03-01T00:00:00-05:00)"
            ))
        }),
    }
}

async fn readings(
    State(st): State<AppState>,
    Query(q): Query<ReadingsQuery>,
) -> Result<Response, ApiError> {
    let tz = st.store.timezone();
    let mut from = time_param("from", &q.from, i64::MIN)?;
    let to = time_param("to", &q.to, i64::MAX)?;
    if let Some(cursor) = &q.cursor {
        from = cursor
            .parse()
            .map_err(|_| ApiError::BadRequest("`cursor` no es válido".into()))?;
    }
    if from >= to {
        return Err(ApiError::BadRequest(
            "`from` debe ser anterior a `to`".into(),
        ));
    }
    let store = st.store.clone();
    if let Some(bucket_s) = q.bucket {
        if q.from.is_none() || q.to.is_none() {
            return Err(ApiError::BadRequest(
                "`bucket` requiere `from` y `to`".into(),
            ));
        }
        let bucket_us = bucket_s
            .checked_mul(1_000_000)
            .filter(|b| *b > 0)
            .ok_or_else(|| {
                ApiError::BadRequest("`bucket` debe ser un número de segundos > 0".into())
            })?;
        if (to - from) / bucket_us > MAX_BUCKETS {
            return Err(ApiError::BadRequest(format!(
                "demasiados intervalos: como máximo {MAX_BUCKETS} por consulta"
            )));
        }
        let buckets = blocking(move || store.buckets(q.stage, from, to, bucket_us)).await?;
        return stream::json(BucketPieces {
            tz,
            bucket_s,
            buckets: buckets.into_iter(),
            started: false,
            any: false,
            done: false,
        })
        .await;
    }
    let limit = q.limit.unwrap_or(1000);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "`limit` debe estar entre 1 y {MAX_LIMIT}"
        )));
    }
    let stage = q.stage;
    let cursor = {
        let store = store.clone();
        blocking(move || store.readings_cursor(stage, from, to)).await?
    };
    stream::json(ReadingPieces {
        store,
        tz,
        cursor,
        remaining: limit,
        started: false,
        any: false,
        done: false,
    })
    .await
}

/// `{"readings": [...], "next": cursor}` written from short store walks, one piece each.
struct ReadingPieces {
    store: Store,
    tz: Tz,
    cursor: ReadingsCursor,
    /// Readings the page may still hold.
    remaining: usize,
    started: bool,
    /// Whether a reading was written (the next one needs a comma).
    any: bool,
    done: bool,
}

impl Pieces for ReadingPieces {
    fn next_piece(&mut self) -> Result<Option<Vec<u8>>, PieceError> {
        if self.done {
            return Ok(None);
        }
        let mut buf = Vec::with_capacity(PIECE_BYTES + PIECE_BYTES / 4);
        if !self.started {
            buf.extend_from_slice(b"{\"readings\":[");
            self.started = true;
        }
        let (tz, remaining, any) = (self.tz, &mut self.remaining, &mut self.any);
        let mut next_us = None;
        let mut failed = None;
        let walk = self.store.walk_readings(&mut self.cursor, |r| {
            if *remaining == 0 {
                next_us = Some(r.ts_us);
                return ControlFlow::Break(());
            }
            if *any {
                buf.push(b',');
            }
            *any = true;
            *remaining -= 1;
            let object = reading_object(tz, r.stage, r.ts_us, &r.reading);
            if let Err(e) = serde_json::to_writer(&mut buf, &object) {
                failed = Some(e);
                return ControlFlow::Break(());
            }
            if buf.len() >= PIECE_BYTES {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        if walk == Walk::Exhausted || next_us.is_some() {
            buf.extend_from_slice(b"],\"next\":");
            serde_json::to_writer(&mut buf, &next_us.map(|us| us.to_string()))?;
            buf.push(b'}');
            self.done = true;
        }
        Ok(Some(buf))
    }
}

/// `{"bucket_s": n, "buckets": [...]}` written from the computed buckets, one piece each.
struct BucketPieces {
    tz: Tz,
    bucket_s: i64,
    buckets: std::vec::IntoIter<Bucket>,
    started: bool,
    /// Whether a bucket was written (the next one needs a comma).
    any: bool,
    done: bool,
}

impl Pieces for BucketPieces {
    fn next_piece(&mut self) -> Result<Option<Vec<u8>>, PieceError> {
        if self.done {
            return Ok(None);
        }
        let mut buf = Vec::with_capacity(PIECE_BYTES + PIECE_BYTES / 4);
        if !self.started {
            let head = format!("{{\"bucket_s\":{},\"buckets\":[", self.bucket_s);
            buf.extend_from_slice(head.as_bytes());
            self.started = true;
        }
        for b in self.buckets.by_ref() {
            if self.any {
                buf.push(b',');
            }
            self.any = true;
            let mut m = serde_json::Map::new();
            m.insert("ts".into(), Value::from(rfc3339(self.tz, b.start_us)));
            m.insert("count".into(), Value::from(b.count));
            for c in b.channels {
                m.insert(
                    c.name,
                    json!({"min": c.stats.min, "avg": c.stats.mean(), "max": c.stats.max, "count": c.stats.count}),
                );
            }
            serde_json::to_writer(&mut buf, &m)?;
            if buf.len() >= PIECE_BYTES {
                break;
            }
        }
        if self.buckets.len() == 0 {
            buf.extend_from_slice(b"]}");
            self.done = true;
        }
        Ok(Some(buf))
    }
}

async fn stats(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let tz = store.timezone();
    let (today_count, reports) = blocking(move || {
        Ok::<_, StoreError>((store.readings_on_day(today(tz))?, store.reports_count()?))
    })
    .await?;
    let c = st.store.counters();
    let last = c.last_reading_us.load(Ordering::Relaxed);
    Ok(Json(json!({
        "etapas_activas": u64::from(st.store.active_stage_id() != 0),
        "reportes_generados": reports,
        "lecturas_hoy": today_count,
        "lecturas_total": c.readings_total.load(Ordering::Relaxed),
        "mensajes_rechazados": c.rejected.load(Ordering::Relaxed),
        "mensajes_perdidos": c.dropped.load(Ordering::Relaxed),
        "mqtt_rechazos": st
            .mqtt
            .refusals
            .snapshot()
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::from(v)))
            .collect::<serde_json::Map<_, _>>(),
        "ultima_lectura": (last > 0).then(|| rfc3339(tz, last)),
        "reloj": super::clock::clock_json(&st, &st.clock.status()),
    })))
}
