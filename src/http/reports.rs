//! Reports: create (normal or final), history, download, regenerate. Rendering runs on the
//! blocking pool, a bounded number at a time, and each file is written atomically.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::AppState;
use super::error::{ApiError, blocking};
use super::extract::{Path, Query};
use super::guard::CurrentUser;
use super::production::production_of;
use super::routes::{Access, Route};
use super::stages::stage_info;
use crate::reports::data::ReportType;
use crate::reports::files::{self, Kind};
use crate::reports::{self, build};
use crate::sitetime::{now_us, rfc3339};
use crate::store::reports::ReportRecord;
use crate::store::stages::Stage;
use crate::store::users::{Permission, User};

/// Shared report state: the next id and the rendering slots.
#[derive(Clone)]
pub struct ReportSlots {
    next_id: Arc<AtomicU64>,
    rendering: Arc<Semaphore>,
}

impl ReportSlots {
    /// Continues numbering after `last_id`; at most two reports render at once (each holds
    /// its document in memory; a Pi has little).
    pub fn new(last_id: u64) -> Self {
        Self {
            next_id: Arc::new(AtomicU64::new(last_id + 1)),
            rendering: Arc::new(Semaphore::new(2)),
        }
    }
}

/// Reports: reading needs `VerReportes`, generating `GenerarReportes`.
pub fn routes() -> Vec<Route> {
    let see = Access::Permission(Permission::VerReportes);
    let generate = Access::Permission(Permission::GenerarReportes);
    vec![
        Route::post("/api/dashboard/report/create/", generate, create),
        Route::get("/api/dashboard/report/history/", see, history),
        Route::get("/api/dashboard/report/download/{id}/{kind}/", see, download).token_in_query(),
        Route::post(
            "/api/dashboard/report/regenerate/{id}/",
            generate,
            regenerate,
        ),
    ]
}

fn url(id: u64, kind: Kind) -> String {
    format!("/api/dashboard/report/download/{id}/{}/", kind.segment())
}

fn author(u: &User) -> String {
    let full = format!("{} {}", u.first_name, u.last_name)
        .trim()
        .to_string();
    if full.is_empty() {
        u.username.clone()
    } else {
        full
    }
}

fn record_json(st: &AppState, r: &ReportRecord) -> Value {
    let mut v = crate::reports::data::record_json(st.store.timezone(), r);
    if let Value::Object(m) = &mut v {
        for (name, kind) in [
            ("pdf_url", Kind::Pdf),
            ("excel_url", Kind::Excel),
            ("csv_url", Kind::Csv),
            // The old system's names for the same links, which its history screen reads.
            ("file_pdf", Kind::Pdf),
            ("file_excel", Kind::Excel),
            ("file_csv", Kind::Csv),
        ] {
            m.insert(name.into(), Value::from(url(r.id, kind)));
        }
    }
    v
}

/// Renders and writes the three files of report `id` for `stage`; returns the record fields
/// (estimated, real, inferences) as printed.
async fn render(
    st: &AppState,
    id: u64,
    stage: &Stage,
    report_type: ReportType,
    observations: String,
    inferences: Option<String>,
    author: String,
) -> Result<(f64, f64, String), ApiError> {
    let production = production_of(st, stage).await?;
    let store = st.store.clone();
    let (sid, from) = (stage.id, stage.date);
    let daily = blocking(move || store.daily(sid, from, i32::MAX)).await?;
    let mut data = build::report_data(
        build::Request {
            id,
            report_type,
            observations,
            inferences,
            author,
            generated_at: rfc3339(st.store.timezone(), now_us()),
            site_name: st.config.raw.site.name.clone(),
        },
        stage_info(st, stage),
        &production,
        &daily,
    );
    let (from, to) = (stage.created_us, stage.closed_us.unwrap_or_else(now_us));
    let store = st.store.clone();
    let alarms = blocking(move || store.alarms_between(from, to)).await?;
    let tz = st.store.timezone();
    data.alarms = alarms
        .iter()
        .map(|a| crate::reports::data::AlarmLine {
            since: local_minute(tz, a.since_us),
            until: a.cleared_us.map(|us| local_minute(tz, us)),
            severity: a.severity.name().into(),
            message: a.message.clone(),
            acknowledged_by: a.ack.as_ref().map(|k| k.by.clone()),
        })
        .collect();
    let summary = (
        data.totals.expected_to_date_m3,
        data.totals.actual_total_m3,
        data.inferences.clone(),
    );
    let _slot = st
        .reports
        .rendering
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let data_dir = st.config.data_dir().clone();
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(move || reports::write_all(&data_dir, &data))
        .await?
        .map_err(|e| {
            tracing::error!(report = id, error = %e, "report not written");
            ApiError::WriteFailed(format!("No se pudo generar el reporte: {e}"))
        })?;
    crate::metrics::observe_report_seconds(started.elapsed().as_secs_f64());
    Ok(summary)
}

#[derive(Deserialize)]
struct CreateBody {
    report_type: Option<String>,
    observations: Option<String>,
    inferences: Option<String>,
    stage_id: Option<u64>,
}

fn report_type(s: Option<&str>) -> Result<ReportType, ApiError> {
    match s.unwrap_or("normal") {
        "normal" => Ok(ReportType::Normal),
        "final" => Ok(ReportType::Final),
        other => Err(ApiError::field(
            "report_type",
            format!(
                "Tipo {:?} no válido: usa \"normal\" o \"final\".",
                other.chars().take(32).collect::<String>()
            ),
        )),
    }
}

/// Longest observations or inferences text of a report: pages of the PDF, and far below what
/// one spreadsheet cell holds (32,767 characters).
pub const MAX_NOTE_CHARS: usize = 10_000;

/// Refuses observations or inferences longer than [`MAX_NOTE_CHARS`].
fn check_notes(b: &CreateBody) -> Result<(), ApiError> {
    let mut errors = std::collections::BTreeMap::new();
    for (field, text) in [
        ("observations", &b.observations),
        ("inferences", &b.inferences),
    ] {
        if text
            .as_ref()
            .is_some_and(|t| t.chars().count() > MAX_NOTE_CHARS)
        {
            errors.insert(
                field.to_string(),
                vec![format!("Como máximo {MAX_NOTE_CHARS} caracteres.")],
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Fields(errors))
    }
}

async fn create(
    State(st): State<AppState>,
    Extension(CurrentUser(user)): Extension<CurrentUser>,
    b: Result<Json<CreateBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = b?;
    check_notes(&b)?;
    let kind = report_type(b.report_type.as_deref())?;
    let store = st.store.clone();
    let stage = match b.stage_id {
        Some(id) => blocking(move || store.stage(id))
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("La etapa {id} no existe.")))?,
        None => {
            let id = st.store.active_stage_id();
            let stage = if id == 0 {
                None
            } else {
                blocking(move || store.stage(id)).await?
            };
            stage.ok_or_else(|| {
                ApiError::BadRequest(
                    "No hay una etapa activa: crea un llenado o indica stage_id para reportar una etapa cerrada."
                        .into(),
                )
            })?
        }
    };
    if kind == ReportType::Final && !stage.active {
        return Err(ApiError::Conflict(format!(
            "La etapa {} ya está cerrada; no admite otro reporte final.",
            stage.number
        )));
    }
    let id = st.reports.next_id.fetch_add(1, Ordering::SeqCst);
    let observations = b.observations.unwrap_or_default();
    let custom = b.inferences.clone().filter(|t| !t.trim().is_empty());
    let (estimated, real, inferences) = render(
        &st,
        id,
        &stage,
        kind,
        observations.clone(),
        custom.clone(),
        author(&user),
    )
    .await?;
    let mut stage_active = stage.active;
    if kind == ReportType::Final {
        let store = st.store.clone();
        let sid = stage.id;
        match blocking(move || store.close_stage(sid, now_us())).await {
            Ok(_) => stage_active = false,
            Err(e) => {
                files::remove_all(st.config.data_dir(), id);
                return Err(match e {
                    ApiError::Conflict(_) => {
                        ApiError::Conflict("La etapa ya fue cerrada por otro reporte final.".into())
                    }
                    other => other,
                });
            }
        }
    }
    let record = ReportRecord {
        id,
        created_us: now_us(),
        report_type: if kind == ReportType::Final {
            "final"
        } else {
            "normal"
        }
        .into(),
        stage_id: stage.id,
        stage_number: stage.number,
        user_name: author(&user),
        production_estimated: estimated,
        production_real: real,
        observations,
        inferences,
        inferences_custom: custom.is_some(),
        regenerated_us: None,
    };
    let store = st.store.clone();
    let saved = record.clone();
    blocking(move || store.put_report(&saved)).await?;
    let detail = match kind {
        ReportType::Final => format!(
            "Reporte final {id} generado; el llenado {} quedó cerrado.",
            stage.number
        ),
        ReportType::Normal => format!("Reporte {id} generado."),
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id,
            "pdf_url": url(id, Kind::Pdf),
            "excel_url": url(id, Kind::Excel),
            "csv_url": url(id, Kind::Csv),
            "stage_active": stage_active,
            "detail": detail,
        })),
    ))
}

async fn history(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let list = blocking(move || store.reports()).await?;
    Ok(Json(
        json!({ "history": list.iter().map(|r| record_json(&st, r)).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize)]
struct DownloadQuery {
    inline: Option<String>,
}

async fn download(
    State(st): State<AppState>,
    Path((id, kind)): Path<(String, String)>,
    Query(q): Query<DownloadQuery>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound("Reporte no encontrado.".into());
    let id: u64 = id.parse().map_err(|_| not_found())?;
    let kind = Kind::parse(&kind).ok_or_else(not_found)?;
    let store = st.store.clone();
    blocking(move || store.report(id))
        .await?
        .ok_or_else(not_found)?;
    let file = tokio::fs::File::open(files::path(st.config.data_dir(), id, kind))
        .await
        .map_err(|_| not_found())?;
    let len = file.metadata().await.map(|m| m.len()).ok();
    let inline = matches!(q.inline.as_deref(), Some("1" | "true"));
    let disposition = format!(
        "{}; filename=\"{}\"",
        if inline { "inline" } else { "attachment" },
        files::file_name(id, kind)
    );
    let mut resp = Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(kind.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

async fn regenerate(
    State(st): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let mut record = blocking(move || store.report(id))
        .await?
        .ok_or_else(|| ApiError::NotFound("Reporte no encontrado.".into()))?;
    let store = st.store.clone();
    let sid = record.stage_id;
    let stage = blocking(move || store.stage(sid))
        .await?
        .ok_or_else(|| ApiError::NotFound("La etapa del reporte ya no existe.".into()))?;
    let kind = report_type(Some(&record.report_type))?;
    let custom = record.inferences_custom.then(|| record.inferences.clone());
    let (estimated, real, inferences) = render(
        &st,
        id,
        &stage,
        kind,
        record.observations.clone(),
        custom,
        record.user_name.clone(),
    )
    .await?;
    record.production_estimated = estimated;
    record.production_real = real;
    record.inferences = inferences;
    record.regenerated_us = Some(now_us());
    let store = st.store.clone();
    let saved = record.clone();
    blocking(move || store.put_report(&saved)).await?;
    let mut body = record_json(&st, &record);
    if let Value::Object(m) = &mut body {
        m.insert(
            "detail".into(),
            Value::from(format!("Reporte {id} regenerado con los datos actuales.")),
        );
        m.insert("stage_active".into(), Value::from(stage.active));
    }
    Ok(Json(body))
}

/// `YYYY-MM-DD HH:MM` in the site's zone.
fn local_minute(tz: chrono_tz::Tz, us: i64) -> String {
    let t = rfc3339(tz, us);
    t.get(..16).unwrap_or(&t).replace('T', " ")
}
