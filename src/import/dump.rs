//! Reading a `manage.py dumpdata auth.user usuarios dashboard` file of the old system into a
//! validated [`Batch`]: every record is checked before anything is written, and an error names
//! the record (model and pk). The records' fields are read here; accounts ([`super::accounts`])
//! and the digester's history ([`super::history`]) go through the same rules as the web and
//! the sensors ([`crate::rules`], [`crate::payload`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::payload::Limits;
use crate::reports::files::Kind;
use crate::rules::stage::Site;
use crate::store::import::Batch;

/// The topic imported readings are stored under (their meter differences are their own).
pub const SOURCE: &str = "django";

/// One record of the file. Its fields stay unparsed text until they are read, so a file of
/// millions of readings never holds all their parsed fields at once.
#[derive(Deserialize)]
pub struct Record {
    pub model: String,
    pub pk: Value,
    fields: Box<RawValue>,
}

impl Record {
    /// The record's fields.
    pub fn fields(&self) -> Result<Map<String, Value>, BadRecord> {
        serde_json::from_str(self.fields.get()).map_err(|e| BadRecord {
            model: self.model.clone(),
            pk: self.pk.to_string(),
            message: format!("`fields` is not an object: {e}"),
        })
    }
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

/// The record being read, for its error messages and the site's time zone.
pub(super) struct Ctx<'a> {
    pub(super) tz: Tz,
    pub(super) model: &'a str,
    pub(super) pk: String,
}

impl Ctx<'_> {
    pub(super) fn bad(&self, message: impl Into<String>) -> BadRecord {
        BadRecord {
            model: self.model.to_string(),
            pk: self.pk.clone(),
            message: message.into(),
        }
    }

    pub(super) fn field<'f>(
        &self,
        f: &'f Map<String, Value>,
        name: &str,
    ) -> Result<&'f Value, BadRecord> {
        f.get(name)
            .ok_or_else(|| self.bad(format!("missing field `{name}`")))
    }

    pub(super) fn text(&self, f: &Map<String, Value>, name: &str) -> Result<String, BadRecord> {
        match f.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(self.bad(format!("`{name}` is not text"))),
        }
    }

    pub(super) fn flag(&self, f: &Map<String, Value>, name: &str) -> Result<bool, BadRecord> {
        match f.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.bad(format!("`{name}` is not true/false"))),
        }
    }

    /// A number, or a Django decimal (written as a string); `None` when null.
    pub(super) fn number(
        &self,
        f: &Map<String, Value>,
        name: &str,
    ) -> Result<Option<f64>, BadRecord> {
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
    pub(super) fn key(&self, f: &Map<String, Value>, name: &str) -> Result<Option<u64>, BadRecord> {
        match self.field(f, name)? {
            Value::Null => Ok(None),
            v => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.bad(format!("`{name}` is not a record id"))),
        }
    }

    /// A Django date-time (RFC 3339; without an offset, site time), in µs since the epoch.
    pub(super) fn time(&self, f: &Map<String, Value>, name: &str) -> Result<i64, BadRecord> {
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

/// The record's pk (checked to be a whole number when the file is read).
pub(super) fn pk_of(r: &Record) -> Option<u64> {
    r.pk.as_u64()
}

/// Reads and validates every record of `file`.
pub fn parse(
    file: impl std::io::Read,
    site: &Site,
    limits: Limits,
    media: Option<&Path>,
) -> Result<Parsed, BadRecord> {
    let records: Vec<Record> =
        serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| BadRecord {
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
    let names = super::accounts::users(site.timezone, &take, &mut out)?;
    let stage_keys = super::history::stages(site, &take("dashboard.fillingstage"), &mut out.batch)?;
    super::history::readings(
        site.timezone,
        &take("dashboard.sensorreading"),
        &stage_keys,
        limits,
        &mut out,
    )?;
    super::history::reports(
        site.timezone,
        &take("dashboard.report"),
        &stage_keys,
        &names,
        media,
        &mut out,
    )?;
    Ok(out)
}
