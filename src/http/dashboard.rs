//! `/api/dashboard/readings/` (raw pages and chart buckets) and `/api/dashboard/stats/`.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, blocking};
use super::extract::Query;
use super::routes::{Access, Route};
use crate::live::reading_object;
use crate::sitetime::{parse_rfc3339, rfc3339, today};
use crate::store::StoreError;
use crate::store::users::Permission;

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
) -> Result<Json<Value>, ApiError> {
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
        let list: Vec<Value> = buckets
            .into_iter()
            .map(|b| {
                let mut m = serde_json::Map::new();
                m.insert("ts".into(), Value::from(rfc3339(tz, b.start_us)));
                m.insert("count".into(), Value::from(b.count));
                for c in b.channels {
                    m.insert(
                        c.name,
                        json!({"min": c.stats.min, "avg": c.stats.mean(), "max": c.stats.max, "count": c.stats.count}),
                    );
                }
                Value::Object(m)
            })
            .collect();
        return Ok(Json(json!({ "bucket_s": bucket_s, "buckets": list })));
    }
    let limit = q.limit.unwrap_or(1000);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "`limit` debe estar entre 1 y {MAX_LIMIT}"
        )));
    }
    let page = blocking(move || store.readings(q.stage, from, to, limit)).await?;
    let readings: Vec<Value> = page
        .readings
        .iter()
        .map(|r| Value::Object(reading_object(tz, r.stage, r.ts_us, &r.reading)))
        .collect();
    Ok(Json(json!({
        "readings": readings,
        "next": page.next_us.map(|us| us.to_string()),
    })))
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
    })))
}
