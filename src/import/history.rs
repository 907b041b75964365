//! The digester's history in the old system: stages (`dashboard.fillingstage`, checked by the
//! stage form's rules), readings (`dashboard.sensorreading`, through the sensor payload rules)
//! and report records (`dashboard.report`, with their files from the media folder).

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde_json::{Map, Value};

use super::dump::{BadRecord, Ctx, Parsed, Record, SOURCE, pk_of};
use crate::payload::{self, Limits};
use crate::reports::files::Kind;
use crate::rules::stage::{self, Site};
use crate::sitetime::date_day;
use crate::store::import::{Batch, ImportReading, ImportReport, ImportStage};
use crate::store::reports::ReportRecord;
use crate::store::stages::Stage;

/// Stages (`dashboard.fillingstage`), checked by the same rules as the web form.
pub(super) fn stages(
    site: &Site,
    records: &[&Record],
    batch: &mut Batch,
) -> Result<Vec<u64>, BadRecord> {
    let mut keys = Vec::new();
    let mut active: Option<String> = None;
    for r in records {
        let ctx = Ctx {
            tz: site.timezone,
            model: &r.model,
            pk: r.pk.to_string(),
        };
        let f = &r.fields()?;
        let mut body = Map::new();
        for name in ["date", "people", "material_type"] {
            if let Some(v) = f.get(name) {
                body.insert(name.into(), v.clone());
            }
        }
        body.insert("number".into(), ctx.field(f, "number")?.clone());
        for name in [
            "material_amount_kg",
            "material_humidity_pct",
            "added_water_m3",
            "temperature_c",
        ] {
            if let Some(v) = ctx.number(f, name)? {
                body.insert(name.into(), Value::from(v));
            }
        }
        let date = match f
            .get("date")
            .and_then(Value::as_str)
            .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d"))
        {
            Some(Ok(d)) => date_day(d),
            _ => return Err(ctx.bad("`date` is not a YYYY-MM-DD date")),
        };
        let mut fields = stage::read_form(site, &body, stage::creation_defaults(date), false)
            .map_err(|errors| {
                let all: Vec<String> = errors
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.join(" ")))
                    .collect();
                ctx.bad(all.join("; "))
            })?;
        if !body.contains_key("temperature_c") {
            fields.temperature_c = stage::default_temperature(None).0;
        }
        let is_active = ctx.flag(f, "active")?;
        if is_active && let Some(other) = active.replace(ctx.pk.clone()) {
            return Err(ctx.bad(format!("two active stages (pk {other} and {})", ctx.pk)));
        }
        let created_us = ctx.time(f, "created_at")?;
        let key = pk_of(r).unwrap_or_default();
        keys.push(key);
        batch.stages.push(ImportStage {
            key,
            stage: Stage {
                id: 0,
                number: fields.number.unwrap_or(1),
                date: fields.date,
                people: fields.people,
                material_type: fields.material_type,
                material_amount_kg: fields.material_amount_kg,
                material_humidity_pct: fields.material_humidity_pct,
                added_water_m3: fields.added_water_m3,
                temperature_c: fields.temperature_c,
                active: is_active,
                created_us,
                closed_us: None,
            },
        });
    }
    // A closed stage ended when the next one (by creation) began.
    let mut order: Vec<usize> = (0..batch.stages.len()).collect();
    order.sort_by_key(|&i| batch.stages[i].stage.created_us);
    for w in order.windows(2) {
        let next = batch.stages[w[1]].stage.created_us;
        let s = &mut batch.stages[w[0]].stage;
        if !s.active {
            s.closed_us = Some(next);
        }
    }
    if let Some(&last) = order.last() {
        let s = &mut batch.stages[last].stage;
        if !s.active {
            s.closed_us = Some(s.created_us);
        }
    }
    Ok(keys)
}

/// Readings (`dashboard.sensorreading`): the raw payload through the payload rules, else the
/// typed columns; a reading without a stage is stored as the live system stores one (stage 0).
pub(super) fn readings(
    tz: Tz,
    records: &[&Record],
    stages: &[u64],
    limits: Limits,
    out: &mut Parsed,
) -> Result<(), BadRecord> {
    for r in records {
        let ctx = Ctx {
            tz,
            model: &r.model,
            pk: r.pk.to_string(),
        };
        let f = &r.fields()?;
        let stage_key = match ctx.key(f, "stage")? {
            Some(k) if stages.contains(&k) => k,
            Some(k) => {
                return Err(ctx.bad(format!(
                    "`stage` names dashboard.fillingstage pk={k}, which is not in the file"
                )));
            }
            None => 0,
        };
        let ts_us = ctx.time(f, "timestamp")?;
        let raw = match f.get("raw_payload") {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.as_bytes().to_vec()),
            Some(v @ Value::Object(_)) => Some(v.to_string().into_bytes()),
            _ => None,
        };
        let from_raw = raw.map(|p| payload::parse(&p, SOURCE, limits));
        let reading = match from_raw {
            Some(Ok(reading)) => Ok(reading),
            other => {
                let mut typed = Map::new();
                for name in ["pressure_hpa", "biol_flow", "gas_flow"] {
                    if let Some(v) = ctx.number(f, name)? {
                        typed.insert(name.into(), Value::from(v));
                    }
                }
                match payload::parse(Value::Object(typed).to_string().as_bytes(), SOURCE, limits) {
                    Ok(reading) => Ok(reading),
                    Err(e) => Err(match other {
                        Some(Err(raw_e)) => format!("raw_payload: {raw_e}; columns: {e}"),
                        _ => format!("columns: {e}"),
                    }),
                }
            }
        };
        match reading {
            Ok(reading) => out.batch.readings.push(ImportReading {
                stage_key,
                ts_us,
                reading,
            }),
            Err(why) => out
                .rejected
                .push(format!("{} pk={}: {why}", r.model, ctx.pk)),
        }
    }
    Ok(())
}

/// Report records (`dashboard.report`) and, with a media folder, their files.
pub(super) fn reports(
    tz: Tz,
    records: &[&Record],
    stages: &[u64],
    names: &HashMap<u64, String>,
    media: Option<&Path>,
    out: &mut Parsed,
) -> Result<(), BadRecord> {
    for r in records {
        let ctx = Ctx {
            tz,
            model: &r.model,
            pk: r.pk.to_string(),
        };
        let f = &r.fields()?;
        let stage_key = match ctx.key(f, "stage")? {
            Some(k) if stages.contains(&k) => k,
            Some(k) => {
                return Err(ctx.bad(format!(
                    "`stage` names dashboard.fillingstage pk={k}, which is not in the file"
                )));
            }
            None => return Err(ctx.bad("`stage` is empty")),
        };
        let user_name = match f.get("user").and_then(Value::as_u64) {
            Some(k) => names.get(&k).cloned().ok_or_else(|| {
                ctx.bad(format!(
                    "`user` names auth.user pk={k}, which is not in the file"
                ))
            })?,
            None => String::new(),
        };
        let report_type = ctx.text(f, "report_type")?;
        if report_type != "normal" && report_type != "final" {
            return Err(ctx.bad(format!(
                "`report_type` {report_type:?} is neither normal nor final"
            )));
        }
        let position = out.batch.reports.len();
        for (name, kind) in [
            ("file_pdf", Kind::Pdf),
            ("file_excel", Kind::Excel),
            ("file_csv", Kind::Csv),
        ] {
            let rel = ctx.text(f, name)?;
            let (Some(dir), false) = (media, rel.is_empty()) else {
                continue;
            };
            let rel_path = Path::new(&rel);
            if rel_path.is_absolute()
                || rel_path
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(ctx.bad(format!(
                    "`{name}` {rel:?} is not a path inside the media folder"
                )));
            }
            let src = dir.join(rel_path);
            if !src.is_file() {
                return Err(ctx.bad(format!("`{name}`: {} does not exist", src.display())));
            }
            out.media.push((position, kind, src));
        }
        out.batch.reports.push(ImportReport {
            stage_key,
            record: ReportRecord {
                id: 0,
                created_us: ctx.time(f, "created_at")?,
                report_type,
                stage_id: 0,
                stage_number: 0,
                user_name,
                production_estimated: ctx.number(f, "production_estimated")?.unwrap_or(0.0),
                production_real: ctx.number(f, "production_real")?.unwrap_or(0.0),
                observations: ctx.text(f, "observations")?,
                inferences: ctx.text(f, "inferences")?,
                inferences_custom: true,
                regenerated_us: None,
            },
        });
    }
    Ok(())
}
