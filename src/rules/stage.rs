//! What a filling stage may contain and the values it takes when none are given: the same
//! for a stage created or corrected in the web interface and one brought from the old system.

use std::collections::BTreeSet;

use chrono_tz::Tz;
use serde_json::{Map, Value};

use super::FieldErrors;
use crate::sitetime::{DayNumber, date_day, today};
use crate::store::stages::StageFields;

/// Plausible digester temperatures (°C): unheated bag digesters can run cold.
pub const TEMPERATURE_RANGE: (f64, f64) = (-10.0, 70.0);
/// Digester temperature of a new stage when none is typed and none was measured (°C): the
/// original system's documented default, mesophilic operation.
pub const DEFAULT_TEMPERATURE_C: f64 = 35.0;
/// Largest mass accepted for one loading, kg.
const MAX_AMOUNT_KG: f64 = 10_000_000.0;
/// Who loaded the digester when nobody says.
pub const DEFAULT_PEOPLE: &str = "Sin especificar";

/// What the checks need to know about the site.
pub struct Site {
    pub timezone: Tz,
    /// The configured material types (`[materials.*]`).
    pub materials: BTreeSet<String>,
}

/// The fields of a new stage before the form fills them in (dated `day`).
pub fn creation_defaults(day: DayNumber) -> StageFields {
    StageFields {
        number: None,
        date: day,
        people: DEFAULT_PEOPLE.into(),
        material_type: String::new(),
        material_amount_kg: 0.0,
        material_humidity_pct: 0.0,
        added_water_m3: 0.0,
        temperature_c: 0.0,
    }
}

/// The temperature a new stage gets when none was typed: the measured mean when it is
/// plausible (rounded to 0.1 °C), else [`DEFAULT_TEMPERATURE_C`]; with the source's name as
/// the API reports it.
pub fn default_temperature(measured_mean: Option<f64>) -> (f64, &'static str) {
    match measured_mean {
        Some(mean) if (TEMPERATURE_RANGE.0..=TEMPERATURE_RANGE.1).contains(&mean) => {
            ((mean * 10.0).round() / 10.0, "medida")
        }
        _ => (DEFAULT_TEMPERATURE_C, "predeterminada"),
    }
}

/// Why 0 % and 100 % humidity are refused: the model would expect the whole fresh mass as
/// solids, or nothing at all; both are typing mistakes or "unknown".
const HUMIDITY_LIMITS_MESSAGE: &str = "La humedad debe ser mayor que 0 % y menor que 100 %: \
     0 % sería material totalmente seco y 100 % agua pura. Si no la conoces, usa la típica \
     del material (estiércol bovino fresco: 87 %; porcino: 94 %; avícola: 70 %).";

/// Field-by-field reading of a stage form, collecting every error.
struct Form<'a> {
    body: &'a Map<String, Value>,
    errors: FieldErrors,
}

impl Form<'_> {
    fn err(&mut self, field: &str, msg: impl Into<String>) {
        self.errors
            .entry(field.into())
            .or_default()
            .push(msg.into());
    }

    fn present(&self, field: &str) -> bool {
        !matches!(self.body.get(field), None | Some(Value::Null))
    }

    /// A number in `[lo, hi]` (`lo` excluded when `open_lo`), or the error says which.
    fn number(&mut self, field: &str, lo: f64, open_lo: bool, hi: f64, unit: &str) -> Option<f64> {
        let v = match self.body.get(field) {
            None | Some(Value::Null) => {
                self.err(field, "Este campo es requerido.");
                return None;
            }
            Some(Value::Number(n)) => n.as_f64(),
            Some(_) => None,
        };
        let Some(v) = v else {
            self.err(field, "Debe ser un número.");
            return None;
        };
        let low_ok = if open_lo { v > lo } else { v >= lo };
        if !(low_ok && v <= hi) {
            let from = if open_lo {
                format!("mayor que {lo}")
            } else {
                format!("entre {lo}")
            };
            let msg = if open_lo {
                format!("Debe ser {from} {unit} (como máximo {hi}).")
            } else {
                format!("Debe estar {from} y {hi} {unit}.")
            };
            self.err(field, msg);
            return None;
        }
        Some(v)
    }

    fn text(&mut self, field: &str, max: usize) -> Option<String> {
        match self.body.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() <= max => Some(s.trim().to_string()),
            Some(Value::String(_)) => {
                self.err(field, format!("Como máximo {max} caracteres."));
                None
            }
            Some(_) => {
                self.err(field, "Debe ser un texto.");
                None
            }
        }
    }
}

/// Validates the stage fields present in `body` (the API's field names, which are also the
/// old system's); `base` supplies those absent (creation defaults, the stage being corrected,
/// or an imported stage's stored values).
pub fn read_form(
    site: &Site,
    body: &Map<String, Value>,
    base: StageFields,
    partial: bool,
) -> Result<StageFields, FieldErrors> {
    let mut f = Form {
        body,
        errors: FieldErrors::new(),
    };
    let mut out = base;
    let tz = site.timezone;
    if f.present("date") {
        match f
            .text("date", 10)
            .map(|t| chrono::NaiveDate::parse_from_str(&t, "%Y-%m-%d"))
        {
            Some(Ok(d)) if date_day(d) <= today(tz) + 1 => out.date = date_day(d),
            Some(Ok(_)) => f.err("date", "La fecha no puede estar en el futuro."),
            Some(Err(_)) => f.err("date", "Usa el formato AAAA-MM-DD."),
            None => {}
        }
    }
    if f.present("number") {
        match body.get("number").and_then(Value::as_u64) {
            Some(n) if (1..=1_000_000).contains(&n) => out.number = Some(n as u32),
            _ => f.err("number", "Debe ser un número entero positivo."),
        }
    }
    if f.present("people")
        && let Some(p) = f.text("people", 200)
    {
        out.people = if p.is_empty() {
            DEFAULT_PEOPLE.into()
        } else {
            p
        };
    }
    if !partial || f.present("material_type") {
        match f.text("material_type", 32) {
            Some(m) if site.materials.contains(&m) => out.material_type = m,
            Some(m) => {
                let known: Vec<_> = site.materials.iter().cloned().collect();
                f.err(
                    "material_type",
                    format!(
                        "Material {m:?} desconocido. Opciones: {}.",
                        known.join(", ")
                    ),
                );
            }
            None if !f.errors.contains_key("material_type") => {
                f.err("material_type", "Este campo es requerido.")
            }
            None => {}
        }
    }
    let num = |f: &mut Form, field: &str, lo, open, hi, unit, slot: &mut f64| {
        if (!partial || f.present(field))
            && let Some(v) = f.number(field, lo, open, hi, unit)
        {
            *slot = v;
        }
    };
    num(
        &mut f,
        "material_amount_kg",
        0.0,
        true,
        MAX_AMOUNT_KG,
        "kg",
        &mut out.material_amount_kg,
    );
    num(
        &mut f,
        "material_humidity_pct",
        0.0,
        false,
        100.0,
        "%",
        &mut out.material_humidity_pct,
    );
    if f.present("material_humidity_pct")
        && !f.errors.contains_key("material_humidity_pct")
        && !(out.material_humidity_pct > 0.0 && out.material_humidity_pct < 100.0)
    {
        f.err("material_humidity_pct", HUMIDITY_LIMITS_MESSAGE);
    }
    if !partial && !f.present("temperature_c") {
        // Left to the caller's default (measured mean, else 35 °C).
    } else {
        num(
            &mut f,
            "temperature_c",
            TEMPERATURE_RANGE.0,
            false,
            TEMPERATURE_RANGE.1,
            "°C",
            &mut out.temperature_c,
        );
    }
    if f.present("added_water_m3") {
        num(
            &mut f,
            "added_water_m3",
            0.0,
            false,
            100_000.0,
            "m³",
            &mut out.added_water_m3,
        );
    }
    if f.errors.is_empty() {
        Ok(out)
    } else {
        Err(f.errors)
    }
}
