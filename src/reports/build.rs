//! Assembles a [`ReportData`] from a stage, its production comparison and its daily sensor
//! statistics. The numbers are rounded here, once, with the same rules the documents print.

use crate::production::Production;
use crate::reading::Channel;
use crate::store::daily::{ChannelStats, Daily};

use super::data::{ChannelStat, DayRow, ReportData, ReportType, StageInfo, Totals};
use super::render::format::{es_nm3, es_pct, round_m3, round_pct};

/// Channels summarised in the sensor table, with their Spanish labels.
const SENSOR_CHANNELS: [(Channel, &str); 5] = [
    (Channel::Presion, "Presión (hPa)"),
    (Channel::Temperatura, "Temperatura (°C)"),
    (Channel::Humedad, "Humedad (%)"),
    (Channel::Calidad, "Metano (% CH₄)"),
    (Channel::CaudalGasLmin, "Caudal de gas (L/min)"),
];

/// Who asked for the report and what they added.
pub struct Request {
    pub id: u64,
    pub report_type: ReportType,
    pub observations: String,
    pub inferences: Option<String>,
    pub author: String,
    pub generated_at: String,
    pub site_name: String,
}

/// The default interpretation of the totals, unless the author wrote one (Spanish notation,
/// the same digits as the tables).
pub fn default_inference(actual: f64, expected: f64, diff_pct: Option<f64>) -> String {
    match diff_pct {
        None => format!(
            "Aún no hay producción esperada con la que comparar la producción real ({}).",
            es_nm3(actual)
        ),
        Some(d) if round_pct(d) == 0.0 => format!(
            "La producción real ({}) coincide con la estimada ({}).",
            es_nm3(actual),
            es_nm3(expected)
        ),
        Some(d) => format!(
            "La producción real ({}) está {} de la estimada ({}) en {}.",
            es_nm3(actual),
            if d < 0.0 { "por debajo" } else { "por encima" },
            es_nm3(expected),
            es_pct(Some(d.abs()))
        ),
    }
}

fn merged(
    daily: &[(i32, Daily)],
    pick: impl Fn(&Daily) -> Option<ChannelStats>,
) -> Option<ChannelStats> {
    daily
        .iter()
        .filter_map(|(_, d)| pick(d))
        .reduce(|mut a, b| {
            a.merge(&b);
            a
        })
}

fn stat(channel: &str, label: &str, s: ChannelStats) -> ChannelStat {
    ChannelStat {
        channel: channel.to_string(),
        label: label.to_string(),
        min: s.min,
        mean: s.mean(),
        max: s.max,
        count: s.count,
    }
}

/// Per-channel min/mean/max/count over the stage's days, known channels first.
pub fn sensor_stats(daily: &[(i32, Daily)]) -> Vec<ChannelStat> {
    let mut out: Vec<ChannelStat> = SENSOR_CHANNELS
        .iter()
        .filter_map(|(c, label)| {
            merged(daily, |d| d.channel(*c).copied()).map(|s| stat(c.name(), label, s))
        })
        .collect();
    let mut extra_names: Vec<&str> = daily
        .iter()
        .flat_map(|(_, d)| d.extra.iter().map(|(n, _)| n.as_str()))
        .collect();
    extra_names.sort_unstable();
    extra_names.dedup();
    for name in extra_names {
        if let Some(s) = merged(daily, |d| {
            d.extra.iter().find(|(n, _)| n == name).map(|(_, s)| *s)
        }) {
            out.push(stat(name, name, s));
        }
    }
    out
}

/// Builds the report content.
pub fn report_data(
    req: Request,
    stage_json: StageInfo,
    p: &Production,
    daily: &[(i32, Daily)],
) -> ReportData {
    let e = &p.expected;
    let a = &p.actual;
    let days: Vec<DayRow> = (0..a.days.len())
        .map(|i| {
            let exp_cum = e
                .cumulative_biogas_m3
                .get(i)
                .or(e.cumulative_biogas_m3.last())
                .copied()
                .unwrap_or(0.0);
            DayRow {
                day: a.days[i],
                date: a.dates[i].clone(),
                expected_m3: round_m3(e.daily_biogas_m3.get(i).copied().unwrap_or(0.0)),
                actual_m3: round_m3(a.daily_biogas_m3[i]),
                actual_measured_m3: round_m3(a.daily_biogas_m3_medido[i]),
                expected_cumulative_m3: round_m3(exp_cum),
                actual_cumulative_m3: round_m3(a.cumulative_biogas_m3[i]),
                missing: a.missing[i],
            }
        })
        .collect();
    let s = &p.summary;
    let inferences = req
        .inferences
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| {
            default_inference(s.actual_total_m3, s.expected_to_date_m3, s.difference_pct)
        });
    ReportData {
        id: req.id,
        site_name: req.site_name,
        report_type: req.report_type,
        stage: stage_json,
        missing_days: days
            .iter()
            .filter(|d| d.missing)
            .map(|d| d.date.clone())
            .collect(),
        days,
        totals: Totals {
            expected_to_date_m3: round_m3(s.expected_to_date_m3),
            expected_total_m3: round_m3(s.expected_total_m3),
            actual_total_m3: round_m3(s.actual_total_m3),
            difference_pct: s.difference_pct,
            yield_m3_per_kg_fresh: s.yield_m3_per_kg_fresh,
            yield_m3_per_kg_vs: s.yield_m3_per_kg_vs,
            methane_yield_nm3_per_kg_vs: s.rendimiento_metano_nm3_por_kg_sv,
            actual_total_m3_medido: round_m3(s.actual_total_m3_medido),
            ts_kg: e.params.ts_kg,
            vs_kg: e.params.vs_kg,
            a_biogas_m3: round_m3(e.a_biogas_m3),
        },
        sensors: sensor_stats(daily),
        inferences,
        observations: req.observations,
        author: req.author,
        generated_at: req.generated_at,
        model_source: e.params.material.source.clone(),
        alarms: Vec::new(),
    }
}
