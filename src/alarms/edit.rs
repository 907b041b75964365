//! Reading an edit of the alarm rules from the API and showing the rules: every field is
//! checked, and a bad one refuses the whole edit with a message naming it.

use serde_json::{Map, Value, json};

use super::AlarmError;
use super::rules::{MAX_DURATION_S, Preset, RuleId, RuleSet, RuleSettings, Severity};

fn bad(msg: impl Into<String>) -> AlarmError {
    AlarmError::Invalid(msg.into())
}

/// Applies `{"preset": "...", "reglas": {"<regla>": {"habilitada", "severidad", "umbral",
/// "duracion_s", "histeresis"}}}` (every part optional) to `current`. A new preset first resets
/// the thresholds that depend on it; the rules given are applied after.
pub fn apply(current: &RuleSet, body: &Value) -> Result<RuleSet, AlarmError> {
    let Value::Object(body) = body else {
        return Err(bad("El cuerpo debe ser un objeto JSON."));
    };
    for key in body.keys() {
        if key != "preset" && key != "reglas" {
            return Err(bad(format!(
                "Campo desconocido «{key}»: se aceptan «preset» y «reglas»."
            )));
        }
    }
    let mut next = current.clone();
    if let Some(p) = body.get("preset") {
        let preset = p.as_str().and_then(Preset::from_name).ok_or_else(|| {
            bad("«preset» debe ser «tubular» (sin calefacción) o «mesofilico» (calefaccionado).")
        })?;
        if preset != next.preset {
            next.preset = preset;
            for r in RuleId::ALL.into_iter().filter(|r| r.preset_dependent()) {
                next.rules.insert(r.name().into(), r.default_for(preset));
            }
        }
    }
    if let Some(rules) = body.get("reglas") {
        let Value::Object(rules) = rules else {
            return Err(bad(
                "«reglas» debe ser un objeto con una entrada por regla.",
            ));
        };
        for (name, fields) in rules {
            let rule = RuleId::from_name(name)
                .ok_or_else(|| bad(format!("La regla «{name}» no existe.")))?;
            let Value::Object(fields) = fields else {
                return Err(bad(format!("La regla «{name}» debe ser un objeto.")));
            };
            let s = edit_rule(name, next.get(rule), fields)?;
            next.rules.insert(name.clone(), s);
        }
    }
    check_bands(&next)?;
    Ok(next)
}

fn number(name: &str, field: &str, v: &Value) -> Result<f64, AlarmError> {
    v.as_f64()
        .filter(|x| x.is_finite())
        .ok_or_else(|| bad(format!("«{name}.{field}» debe ser un número.")))
}

fn edit_rule(
    name: &str,
    mut s: RuleSettings,
    fields: &Map<String, Value>,
) -> Result<RuleSettings, AlarmError> {
    for (field, v) in fields {
        match field.as_str() {
            "habilitada" => {
                s.habilitada = v
                    .as_bool()
                    .ok_or_else(|| bad(format!("«{name}.habilitada» debe ser true o false.")))?;
            }
            "severidad" => {
                s.severidad = v.as_str().and_then(Severity::from_name).ok_or_else(|| {
                    bad(format!(
                        "«{name}.severidad» debe ser «aviso», «alarma» o «crítica»."
                    ))
                })?;
            }
            "umbral" => s.umbral = number(name, field, v)?,
            "histeresis" => {
                let h = number(name, field, v)?;
                if h < 0.0 {
                    return Err(bad(format!("«{name}.histeresis» no puede ser negativa.")));
                }
                s.histeresis = h;
            }
            "duracion_s" => {
                s.duracion_s = v.as_u64().filter(|d| *d <= MAX_DURATION_S).ok_or_else(|| {
                    bad(format!(
                        "«{name}.duracion_s» debe ser un número entero de segundos entre 0 y \
                         {MAX_DURATION_S} (una semana)."
                    ))
                })?;
            }
            other => {
                return Err(bad(format!(
                    "Campo desconocido «{name}.{other}»: se aceptan habilitada, severidad, \
                     umbral, duracion_s e histeresis."
                )));
            }
        }
    }
    Ok(s)
}

/// A low threshold must stay under its high one (else both would hold at once).
fn check_bands(r: &RuleSet) -> Result<(), AlarmError> {
    let pairs = [
        (RuleId::TemperaturaBaja, RuleId::TemperaturaAlta),
        (RuleId::PresionBaja, RuleId::PresionAlta),
    ];
    for (low, high) in pairs {
        if r.get(low).umbral >= r.get(high).umbral {
            return Err(bad(format!(
                "El umbral de «{}» debe ser menor que el de «{}».",
                low.name(),
                high.name()
            )));
        }
    }
    Ok(())
}

/// The rules as the API shows them.
pub fn rules_json(r: &RuleSet) -> Value {
    let reglas: Vec<Value> = RuleId::ALL
        .into_iter()
        .map(|id| {
            let s = r.get(id);
            json!({
                "regla": id.name(),
                "titulo": id.title(),
                "unidad": id.unit(),
                "habilitada": s.habilitada,
                "severidad": s.severidad.name(),
                "umbral": s.umbral,
                "duracion_s": s.duracion_s,
                "histeresis": s.histeresis,
                "segun_preset": id.preset_dependent(),
            })
        })
        .collect();
    json!({
        "preset": r.preset.name(),
        "presets": Preset::ALL.map(|p| p.name()),
        "reglas": reglas,
    })
}
