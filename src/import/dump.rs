//! Reading a `manage.py dumpdata auth.user usuarios dashboard` file of the old system into a
//! validated [`Batch`]: every record is checked before anything is written, and an error names
//! the record (model and pk). Accounts, stages and readings go through the same rules as the
//! web and the sensors ([`crate::rules`], [`crate::payload`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::payload::{self, Limits};
use crate::reports::files::Kind;
use crate::rules::account::{self, Identity};
use crate::rules::stage::{self, Site};
use crate::sitetime::date_day;
use crate::store::import::{Batch, ImportReading, ImportReport, ImportStage};
use crate::store::reports::ReportRecord;
use crate::store::stages::Stage;
use crate::store::users::{NewUser, Permission};

/// The topic imported readings are stored under (their meter differences are their own).
pub const SOURCE: &str = "django";

/// One record of the file.
#[derive(Deserialize)]
pub struct Record {
    pub model: String,
    pub pk: Value,
    pub fields: Map<String, Value>,
}

/// What is wrong with the file, naming the record.
#[derive(Debug, thiserror::Error)]
#[error("{model} pk={pk}: {message}")]
pub struct BadRecord {
    pub model: String,
    pub pk: String,
    pub message: String,
}

/// A report file to copy from the media folder: (report position in the batch, kind, source).
pub type MediaFile = (usize, Kind, PathBuf);

/// The validated contents of a file and what the import noted on the way.
pub struct Parsed {
    pub batch: Batch,
    pub media: Vec<MediaFile>,
    /// Records per model in the file.
    pub counts: BTreeMap<String, u64>,
    /// Readings the payload rules refused (as the live system would have), with why.
    pub rejected: Vec<String>,
    /// Accounts whose password hash cannot be verified here (they need a new password).
    pub unusable_passwords: Vec<String>,
}

struct Ctx<'a> {
    tz: Tz,
    model: &'a str,
    pk: String,
}

impl Ctx<'_> {
    fn bad(&self, message: impl Into<String>) -> BadRecord {
        BadRecord {
            model: self.model.to_string(),
            pk: self.pk.clone(),
            message: message.into(),
        }
    }

    fn field<'f>(&self, f: &'f Map<String, Value>, name: &str) -> Result<&'f Value, BadRecord> {
        f.get(name)
            .ok_or_else(|| self.bad(format!("missing field `{name}`")))
    }

    fn text(&self, f: &Map<String, Value>, name: &str) -> Result<String, BadRecord> {
        match f.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(self.bad(format!("`{name}` is not text"))),
        }
    }

    fn flag(&self, f: &Map<String, Value>, name: &str) -> Result<bool, BadRecord> {
        match f.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.bad(format!("`{name}` is not true/false"))),
        }
    }

    /// A number, or a Django decimal (written as a string); `None` when null.
    fn number(&self, f: &Map<String, Value>, name: &str) -> Result<Option<f64>, BadRecord> {
        match f.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(Some)
                .ok_or_else(|| self.bad(format!("`{name}` = {s:?} is not a number"))),
            Some(_) => Err(self.bad(format!("`{name}` is not a number"))),
        }
    }

    /// A foreign key (a pk), `None` when null.
    fn key(&self, f: &Map<String, Value>, name: &str) -> Result<Option<u64>, BadRecord> {
        match self.field(f, name)? {
            Value::Null => Ok(None),
            v => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.bad(format!("`{name}` is not a record id"))),
        }
    }

    /// A Django date-time (RFC 3339; without an offset, site time), in µs since the epoch.
    fn time(&self, f: &Map<String, Value>, name: &str) -> Result<i64, BadRecord> {
        let s = match self.field(f, name)? {
            Value::String(s) => s.trim(),
            _ => return Err(self.bad(format!("`{name}` is not a date-time"))),
        };
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(t.timestamp_micros());
        }
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
            .ok()
            .and_then(|n| self.tz.from_local_datetime(&n).earliest())
            .map(|t| t.timestamp_micros())
            .ok_or_else(|| self.bad(format!("`{name}` = {s:?} is not a date-time")))
    }
}

fn pk_of(r: &Record) -> Option<u64> {
    r.pk.as_u64()
}

/// Reads and validates every record of `text`.
pub fn parse(
    text: &str,
    site: &Site,
    limits: Limits,
    media: Option<&Path>,
) -> Result<Parsed, BadRecord> {
    let records: Vec<Record> = serde_json::from_str(text).map_err(|e| BadRecord {
        model: "(file)".into(),
        pk: "-".into(),
        message: format!("not a dumpdata JSON list of records: {e}"),
    })?;
    let mut by_model: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for r in &records {
        *counts.entry(r.model.clone()).or_insert(0) += 1;
        let ctx = Ctx {
            tz: site.timezone,
            model: &r.model,
            pk: r.pk.to_string(),
        };
        if pk_of(r).is_none() {
            return Err(ctx.bad("pk is not a positive whole number"));
        }
        by_model.entry(r.model.as_str()).or_default().push(r);
    }
    let take = |m: &str| by_model.get(m).cloned().unwrap_or_default();
    let mut out = Parsed {
        batch: Batch::default(),
        media: Vec::new(),
        counts,
        rejected: Vec::new(),
        unusable_passwords: Vec::new(),
    };
    let names = users(site.timezone, &take, &mut out)?;
    let stage_keys = stages(site, &take("dashboard.fillingstage"), &mut out.batch)?;
    readings(
        site.timezone,
        &take("dashboard.sensorreading"),
        &stage_keys,
        limits,
        &mut out,
    )?;
    reports(
        site.timezone,
        &take("dashboard.report"),
        &stage_keys,
        &names,
        media,
        &mut out,
    )?;
    Ok(out)
}

/// Flags of `usuarios.permisos` that exist here.
const FLAGS: [(&str, Permission); 4] = [
    ("AprobarUsuarios", Permission::AprobarUsuarios),
    ("VerDashboard", Permission::VerDashboard),
    ("VerReportes", Permission::VerReportes),
    ("GenerarReportes", Permission::GenerarReportes),
];

/// Accounts: `auth.user` with its `usuarios.perfil` and `usuarios.permisos`. Returns the user
/// names by old pk (reports name their author).
fn users<'a>(
    tz: Tz,
    take: &dyn Fn(&str) -> Vec<&'a Record>,
    out: &mut Parsed,
) -> Result<HashMap<u64, String>, BadRecord> {
    let mut flags: HashMap<u64, u32> = HashMap::new();
    for r in take("usuarios.permisos") {
        let ctx = Ctx {
            tz,
            model: &r.model,
            pk: r.pk.to_string(),
        };
        let mut bits = 0;
        for (name, p) in FLAGS {
            if ctx.flag(&r.fields, name)? {
                bits |= p as u32;
            }
        }
        for name in account::RETIRED_PERMISSIONS {
            ctx.flag(&r.fields, name)?;
        }
        flags.insert(pk_of(r).unwrap_or_default(), bits);
    }
    let mut profiles: HashMap<u64, (bool, u32)> = HashMap::new();
    for r in take("usuarios.perfil") {
        let ctx = Ctx {
            tz,
            model: &r.model,
            pk: r.pk.to_string(),
        };
        let user = ctx
            .key(&r.fields, "user")?
            .ok_or_else(|| ctx.bad("`user` is empty"))?;
        let permisos = match r.fields.get("permisos") {
            None => None,
            Some(_) => ctx.key(&r.fields, "permisos")?,
        };
        let bits = match permisos {
            Some(k) => *flags.get(&k).ok_or_else(|| {
                ctx.bad(format!(
                    "`permisos` names usuarios.permisos pk={k}, which is not in the file"
                ))
            })?,
            None => 0,
        };
        profiles.insert(user, (ctx.flag(&r.fields, "aprobado")?, bits));
    }
    let mut names = HashMap::new();
    let mut emails: HashMap<String, String> = HashMap::new();
    for r in take("auth.user") {
        let ctx = Ctx {
            tz,
            model: &r.model,
            pk: r.pk.to_string(),
        };
        let f = &r.fields;
        let username = ctx.text(f, "username")?.trim().to_string();
        let email = ctx.text(f, "email")?.trim().to_string();
        let (first_name, last_name) = (ctx.text(f, "first_name")?, ctx.text(f, "last_name")?);
        let mut errors = crate::rules::FieldErrors::new();
        Identity {
            username: &username,
            email: &email,
            first_name: &first_name,
            last_name: &last_name,
        }
        .check(&mut errors);
        if username.is_empty() {
            crate::rules::push(&mut errors, "username", account::USERNAME_RULE);
        }
        if let Some((field, msgs)) = errors.iter().next() {
            return Err(ctx.bad(format!("{field}: {}", msgs.join(" "))));
        }
        if !email.is_empty()
            && let Some(other) = emails.insert(email.to_lowercase(), username.clone())
        {
            return Err(ctx.bad(format!("e-mail {email:?} is also the e-mail of {other:?}")));
        }
        let password = ctx.text(f, "password")?;
        if crate::auth::django::parse(&password).is_none() {
            out.unusable_passwords.push(username.clone());
        }
        let superuser = ctx.flag(f, "is_superuser")?;
        let active = f.get("is_active").and_then(Value::as_bool).unwrap_or(true);
        let (approved, bits) = profiles
            .get(&pk_of(r).unwrap_or_default())
            .copied()
            .unwrap_or((false, 0));
        let (approved, permissions) = if superuser {
            (active, Permission::all_bits())
        } else if approved && active {
            // Every approved account could create stages in the old system.
            (true, bits | Permission::GestionarLlenados as u32)
        } else {
            (false, 0)
        };
        let created_us = ctx
            .time(f, "date_joined")
            .unwrap_or_else(|_| crate::sitetime::now_us());
        names.insert(pk_of(r).unwrap_or_default(), username.clone());
        out.batch.users.push((
            NewUser {
                username,
                email,
                first_name,
                last_name,
                password_hash: password,
                approved,
                permissions,
            },
            created_us,
        ));
    }
    Ok(names)
}

/// Stages (`dashboard.fillingstage`), checked by the same rules as the web form.
fn stages(site: &Site, records: &[&Record], batch: &mut Batch) -> Result<Vec<u64>, BadRecord> {
    let mut keys = Vec::new();
    let mut active: Option<String> = None;
    for r in records {
        let ctx = Ctx {
            tz: site.timezone,
            model: &r.model,
            pk: r.pk.to_string(),
        };
        let f = &r.fields;
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
fn readings(
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
        let f = &r.fields;
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
fn reports(
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
        let f = &r.fields;
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
