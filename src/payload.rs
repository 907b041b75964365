//! Turns an MQTT payload into a [`Reading`], or says precisely why it cannot be one.
//! Pure and allocation-light: it runs once per message on the ingest path.

use serde_json::{Map, Value};

use crate::reading::{CHANNELS, Channel, Reading};

/// Most extra (unknown numeric) channels kept per reading; further ones are dropped.
pub const MAX_EXTRA: usize = 32;
/// Longest extra channel name kept, in bytes.
pub const MAX_EXTRA_NAME: usize = 64;

/// Limits applied to every payload (from `[mqtt]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_fields: usize,
}

/// Why a payload was not stored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("empty payload")]
    Empty,
    #[error("payload of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("not valid JSON: {0}")]
    NotJson(String),
    #[error("JSON is not an object")]
    NotObject,
    #[error("{0} fields exceed the limit")]
    TooManyFields(usize),
    #[error("field `{0}` is not a number")]
    WrongType(String),
    #[error("field `{field}` = {value} is outside the plausible range")]
    OutOfRange { field: String, value: f64 },
    #[error("no measurement fields")]
    NoMeasurements,
}

/// Parses `payload` received on `topic`.
pub fn parse(payload: &[u8], topic: &str, limits: Limits) -> Result<Reading, Rejection> {
    if payload.is_empty() {
        return Err(Rejection::Empty);
    }
    if payload.len() > limits.max_bytes {
        return Err(Rejection::TooLarge(payload.len()));
    }
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| Rejection::NotJson(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(Rejection::NotObject);
    };
    from_object(map, topic, limits)
}

fn from_object(map: Map<String, Value>, topic: &str, limits: Limits) -> Result<Reading, Rejection> {
    if map.len() > limits.max_fields {
        return Err(Rejection::TooManyFields(map.len()));
    }
    let mut values = [None; CHANNELS];
    let mut extra = Vec::new();
    let mut sensor_ts_ms = None;
    for (field, value) in map {
        // `timestamp` is the original system's name for `ts`; `ts` wins when both are sent.
        if field == "ts" || field == "timestamp" {
            let parsed = parse_ts(&value);
            if field == "ts" || sensor_ts_ms.is_none() {
                sensor_ts_ms = parsed.or(sensor_ts_ms);
            }
            continue;
        }
        if let Some(channel) = Channel::from_field(&field) {
            let v = match value {
                Value::Null => continue,
                Value::Number(n) => n
                    .as_f64()
                    .ok_or_else(|| Rejection::WrongType(field.clone()))?,
                _ => return Err(Rejection::WrongType(field)),
            };
            let (lo, hi) = channel.plausible();
            if !v.is_finite() || v < lo || v > hi {
                return Err(Rejection::OutOfRange { field, value: v });
            }
            values[channel as usize] = Some(v);
        } else if let Value::Number(n) = value {
            let Some(v) = n.as_f64().filter(|v| v.is_finite()) else {
                continue;
            };
            if extra.len() < MAX_EXTRA && field.len() <= MAX_EXTRA_NAME && !field.is_empty() {
                extra.push((field, v));
            }
        }
        // Other non-numeric fields (device ids, flags) carry no measurement and are ignored.
    }
    if values.iter().all(Option::is_none) && extra.is_empty() {
        return Err(Rejection::NoMeasurements);
    }
    Ok(Reading {
        values,
        extra,
        sensor_ts_ms,
        source: topic.to_string(),
        clock: crate::reading::TimeMark::Synced,
    })
}

/// Earliest and latest sensor timestamps believed (2000-01-01 .. 2100-01-01), in ms.
const TS_RANGE_MS: (i64, i64) = (946_684_800_000, 4_102_444_800_000);

/// Accepts RFC 3339 text or epoch seconds / milliseconds; anything else is ignored (the
/// reading keeps its receive time, which is what stores and attributes it).
fn parse_ts(value: &Value) -> Option<i64> {
    let ms = match value {
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()?
            .timestamp_millis(),
        Value::Number(n) => {
            let v = n.as_f64()?;
            if !v.is_finite() {
                return None;
            }
            if v.abs() < 1.0e11 {
                (v * 1000.0) as i64
            } else {
                v as i64
            }
        }
        _ => return None,
    };
    (TS_RANGE_MS.0..TS_RANGE_MS.1).contains(&ms).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_bytes: 4096,
        max_fields: 16,
    };

    fn p(s: &[u8]) -> Result<Reading, Rejection> {
        parse(s, "Prueba", L)
    }

    #[test]
    fn accepts_spanish_and_english_names() {
        let r = p(br#"{"presion":1006.5,"temperature_c":35,"calidad":61.2,"caudal_gas":0.01,"ts":1767225600}"#)
            .unwrap();
        assert_eq!(r.get(Channel::Presion), Some(1006.5));
        assert_eq!(r.get(Channel::Temperatura), Some(35.0));
        assert_eq!(r.get(Channel::Calidad), Some(61.2));
        assert_eq!(r.get(Channel::CaudalGas), Some(0.01));
        assert_eq!(r.sensor_ts_ms, Some(1_767_225_600_000));
        assert_eq!(r.source, "Prueba");
    }

    #[test]
    fn keeps_extra_numeric_fields_and_ignores_text() {
        let r = p(br#"{"ph":7.1,"device":"esp32","ok":true,"gas_flow_lmin":2.5}"#).unwrap();
        assert_eq!(r.extra, vec![("ph".to_string(), 7.1)]);
        assert_eq!(r.get(Channel::CaudalGasLmin), Some(2.5));
    }

    #[test]
    fn rejects_bad_payloads() {
        assert_eq!(p(b""), Err(Rejection::Empty));
        assert!(matches!(p(b"hola"), Err(Rejection::NotJson(_))));
        assert!(matches!(
            p(b"{\"presion\": NaN}"),
            Err(Rejection::NotJson(_))
        ));
        assert!(matches!(
            p(b"{\"presion\": Infinity}"),
            Err(Rejection::NotJson(_))
        ));
        assert!(matches!(
            p(b"{\"presion\": 1e400}"),
            Err(Rejection::NotJson(_))
        ));
        assert!(matches!(p(b"\xff\xfe{}"), Err(Rejection::NotJson(_))));
        assert_eq!(p(b"[1,2]"), Err(Rejection::NotObject));
        assert_eq!(p(b"\"1006\""), Err(Rejection::NotObject));
        assert_eq!(
            p(br#"{"presion":"1006"}"#),
            Err(Rejection::WrongType("presion".into()))
        );
        assert_eq!(p(br#"{"device":"x"}"#), Err(Rejection::NoMeasurements));
        assert_eq!(p(b"{}"), Err(Rejection::NoMeasurements));
        assert!(matches!(
            p(br#"{"humedad":140}"#),
            Err(Rejection::OutOfRange { .. })
        ));
        assert!(matches!(
            p(br#"{"caudal_gas":-1}"#),
            Err(Rejection::OutOfRange { .. })
        ));
        let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
        assert!(p(deep.as_bytes()).is_err());
        let many: String = (0..20)
            .map(|i| format!("\"f{i}\":{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            p(format!("{{{many}}}").as_bytes()),
            Err(Rejection::TooManyFields(20))
        );
        assert_eq!(p(&[b' '; 5000]), Err(Rejection::TooLarge(5000)));
    }

    #[test]
    fn original_system_names_timestamp_and_capitalised_calidad() {
        let r = p(br#"{"Calidad":58.5,"timestamp":1767225600}"#).unwrap();
        assert_eq!(r.get(Channel::Calidad), Some(58.5));
        assert_eq!(r.sensor_ts_ms, Some(1_767_225_600_000));
        let r = p(br#"{"calidad":1,"timestamp":1767225600123}"#).unwrap();
        assert_eq!(r.sensor_ts_ms, Some(1_767_225_600_123), "milliseconds");
        let r = p(br#"{"calidad":1,"ts":1767225601,"timestamp":1767225600}"#).unwrap();
        assert_eq!(r.sensor_ts_ms, Some(1_767_225_601_000), "ts wins");
        let r = p(br#"{"calidad":1,"timestamp":1767225600,"ts":1767225601}"#).unwrap();
        assert_eq!(
            r.sensor_ts_ms,
            Some(1_767_225_601_000),
            "ts wins in any order"
        );
        assert!(matches!(
            p(br#"{"Calidad":140}"#),
            Err(Rejection::OutOfRange { .. })
        ));
    }

    #[test]
    fn timestamps_in_seconds_millis_or_text() {
        let ms = |s: &str| {
            p(format!("{{\"presion\":1,\"ts\":{s}}}").as_bytes())
                .unwrap()
                .sensor_ts_ms
        };
        assert_eq!(ms("1767225600123"), Some(1_767_225_600_123));
        assert_eq!(ms("\"2026-01-01T00:00:00-05:00\""), Some(1_767_243_600_000));
        assert_eq!(ms("0"), None);
        assert_eq!(ms("\"ayer\""), None);
    }
}
