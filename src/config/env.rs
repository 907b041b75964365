//! `BIOGESTOR_SECTION__KEY=value` overrides, typed after the key they replace so that
//! `BIOGESTOR_HTTP__BIND=127.0.0.1:18080` stays a string and `..._ALLOW_ANONYMOUS=true` a bool.

use super::{Config, ConfigError};

const PREFIX: &str = "BIOGESTOR_";

/// Sections whose keys are free-form names (a map), not fixed fields.
const MAP_KEYS: &[&str] = &["mqtt.users"];

/// Applies every `BIOGESTOR_*__*` variable to `table`; returns the names of the variables used.
pub(super) fn apply_overrides(
    table: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>, ConfigError> {
    let defaults = toml::Table::try_from(Config::default()).map_err(|e| ConfigError::Env {
        var: PREFIX.into(),
        message: format!("internal error describing defaults: {e}"),
    })?;
    let mut used = Vec::new();
    let mut vars: Vec<_> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(PREFIX) && k.contains("__"))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let path: Vec<String> = var[PREFIX.len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let err = |message: String| ConfigError::Env {
            var: var.clone(),
            message,
        };
        if path.iter().any(|p| p.is_empty()) {
            return Err(err("empty key segment; use BIOGESTOR_SECTION__KEY".into()));
        }
        let value = typed_value(&defaults, &path, &raw).map_err(err)?;
        insert(table, &path, value).map_err(err)?;
        used.push(var);
    }
    Ok(used)
}

/// Finds what type the overridden key has and converts `raw` to it.
fn typed_value(defaults: &toml::Table, path: &[String], raw: &str) -> Result<toml::Value, String> {
    let dotted = path.join(".");
    let parent = path[..path.len() - 1].join(".");
    if MAP_KEYS.contains(&parent.as_str()) {
        return Ok(toml::Value::String(raw.to_string()));
    }
    let mut node: Option<&toml::Value> = None;
    let mut table = defaults;
    for (i, seg) in path.iter().enumerate() {
        match table.get(seg) {
            Some(toml::Value::Table(t)) if i + 1 < path.len() => table = t,
            Some(v) if i + 1 == path.len() => node = Some(v),
            _ => return Err(format!("unknown configuration key `{dotted}`")),
        }
    }
    let Some(default) = node else {
        return Err(format!("unknown configuration key `{dotted}`"));
    };
    let bad = |what: &str| format!("`{dotted}` = {raw:?} is not {what}");
    Ok(match default {
        toml::Value::String(_) => toml::Value::String(raw.to_string()),
        toml::Value::Integer(_) => {
            toml::Value::Integer(raw.trim().parse().map_err(|_| bad("an integer"))?)
        }
        toml::Value::Float(_) => {
            toml::Value::Float(raw.trim().parse().map_err(|_| bad("a number"))?)
        }
        toml::Value::Boolean(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
            "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
            _ => return Err(bad("true or false")),
        },
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',')
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        toml::Value::Table(_) | toml::Value::Datetime(_) => {
            return Err(format!(
                "`{dotted}` is a section; set one of its keys instead"
            ));
        }
    })
}

fn insert(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut cur = table;
    for seg in parents {
        let entry = cur
            .entry(seg.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{seg}` is not a section"))?;
    }
    cur.insert(last.clone(), value);
    Ok(())
}
