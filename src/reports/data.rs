//! Everything one report shows, built once and rendered three ways (PDF, Excel, CSV), so the
//! three files and the API always carry the same numbers.

use serde::Serialize;

/// Normal (intermediate) or final (closes the stage) report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportType {
    Normal,
    Final,
}

impl ReportType {
    /// The Spanish label used in documents.
    pub fn label(self) -> &'static str {
        match self {
            ReportType::Normal => "Reporte de seguimiento",
            ReportType::Final => "Reporte final",
        }
    }
}

/// The stage's fields as shown in a report.
#[derive(Debug, Clone, Serialize)]
pub struct StageInfo {
    pub id: u64,
    pub number: u32,
    /// Loading date, `YYYY-MM-DD`.
    pub date: String,
    pub people: String,
    pub material_type: String,
    pub material_amount_kg: f64,
    pub material_humidity_pct: f64,
    pub added_water_m3: f64,
    pub temperature_c: f64,
    pub active: bool,
    /// RFC 3339 in the site's zone.
    pub created_at: String,
    pub closed_at: Option<String>,
}

impl StageInfo {
    /// `s` with its dates in the site's zone `tz`: what the API, the reports and the bridge
    /// all show of a stage.
    pub fn of(tz: chrono_tz::Tz, s: &crate::store::stages::Stage) -> StageInfo {
        use crate::sitetime::{day_date, rfc3339};
        StageInfo {
            id: s.id,
            number: s.number,
            date: day_date(s.date).to_string(),
            people: s.people.clone(),
            material_type: s.material_type.clone(),
            material_amount_kg: s.material_amount_kg,
            material_humidity_pct: s.material_humidity_pct,
            added_water_m3: s.added_water_m3,
            temperature_c: s.temperature_c,
            active: s.active,
            created_at: rfc3339(tz, s.created_us),
            closed_at: s.closed_us.map(|us| rfc3339(tz, us)),
        }
    }
}

/// A report record with the history's field names (without its download links), for the
/// history API and the bridge.
pub fn record_json(
    tz: chrono_tz::Tz,
    r: &crate::store::reports::ReportRecord,
) -> serde_json::Value {
    use crate::sitetime::rfc3339;
    serde_json::json!({
        "id": r.id,
        "created_at": rfc3339(tz, r.created_us),
        "regenerated_at": r.regenerated_us.map(|us| rfc3339(tz, us)),
        "report_type": r.report_type,
        "stage": r.stage_id,
        "stage_number": r.stage_number,
        "user_name": r.user_name,
        "production_estimated": r.production_estimated,
        "production_real": r.production_real,
        "observations": r.observations,
        "inferences": r.inferences,
    })
}

/// One row of the daily table (day 1 = loading day).
#[derive(Debug, Clone, Serialize)]
pub struct DayRow {
    pub day: u32,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Expected production that day, Nm³ (0 past the end of the expected curve).
    pub expected_m3: f64,
    /// Measured production that day, Nm³ (0 when missing).
    pub actual_m3: f64,
    /// What the meter counted that day, actual m³ (0 when missing).
    pub actual_measured_m3: f64,
    pub expected_cumulative_m3: f64,
    pub actual_cumulative_m3: f64,
    /// No gas measurement that day (distinct from a measured zero).
    pub missing: bool,
}

/// min / mean / max / count of one sensor channel over the stage.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelStat {
    /// API name of the channel (e.g. `temperatura`).
    pub channel: String,
    /// Spanish label with unit (e.g. `Temperatura (°C)`).
    pub label: String,
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    pub count: u64,
}

/// Totals and ratios of the stage.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    /// Expected cumulative production at the last day with data, m³.
    pub expected_to_date_m3: f64,
    /// Expected production of the whole curve, m³ (the model's total).
    pub expected_total_m3: f64,
    pub actual_total_m3: f64,
    /// (actual − expected to date) / expected to date × 100.
    pub difference_pct: Option<f64>,
    /// Biogas per kg fresh material, Nm³/kg.
    pub yield_m3_per_kg_fresh: f64,
    /// Biogas per kg VS, Nm³/kg VS (not B0).
    pub yield_m3_per_kg_vs: Option<f64>,
    /// Methane per kg VS, Nm³ CH₄/kg VS (comparable with B0).
    pub methane_yield_nm3_per_kg_vs: Option<f64>,
    /// What the meter counted over the stage, actual m³.
    pub actual_total_m3_medido: f64,
    /// Model inputs derived from the stage: total and volatile solids, biogas potential.
    pub ts_kg: f64,
    pub vs_kg: f64,
    pub a_biogas_m3: f64,
}

/// An alarm active at some time during the report's period, as printed.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmLine {
    /// Site-local `YYYY-MM-DD HH:MM` when it was raised, and cleared (`None`: still active).
    pub since: String,
    pub until: Option<String>,
    pub severity: String,
    pub message: String,
    pub acknowledged_by: Option<String>,
}

/// The complete content of one report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    pub id: u64,
    pub site_name: String,
    pub report_type: ReportType,
    pub stage: StageInfo,
    /// Every day from the loading day to the last day with data or the end of the expected
    /// curve, whichever is later.
    pub days: Vec<DayRow>,
    pub totals: Totals,
    pub sensors: Vec<ChannelStat>,
    /// Dates (`YYYY-MM-DD`) without gas data.
    pub missing_days: Vec<String>,
    pub inferences: String,
    pub observations: String,
    pub author: String,
    /// RFC 3339 in the site's zone.
    pub generated_at: String,
    /// Source of the model parameters, printed with them.
    pub model_source: String,
    /// The alarms of the stage's period, oldest first.
    pub alarms: Vec<AlarmLine>,
}
