//! The messages sent to the central broker, as described by the JSON Schemas in
//! `docs/schemas/` (version [`SCHEMA_VERSION`]): topics and payloads.

use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use crate::alarms::Alarm;
use crate::production::ActualSeries;
use crate::reading::Channel;
use crate::reports::data::{StageInfo, record_json};
use crate::sitetime::rfc3339;
use crate::store::outbox::Queued;
use crate::store::reports::ReportRecord;
use crate::store::stages::Stage;

/// Version of the message schemas; a change that could break a consumer raises it.
pub const SCHEMA_VERSION: u32 = 1;

/// `<topic_prefix>/<site_id>`.
pub fn base(prefix: &str, site: &str) -> String {
    format!("{prefix}/{site}")
}

/// Topic of the reading batches.
pub fn readings_topic(base: &str) -> String {
    format!("{base}/lecturas")
}

/// Topic of the retained status (and of the last will).
pub fn status_topic(base: &str) -> String {
    format!("{base}/estado")
}

/// Topic of the retained list of filling stages.
pub fn stages_topic(base: &str) -> String {
    format!("{base}/llenados")
}

/// Topic of the daily figures of each stage.
pub fn daily_topic(base: &str) -> String {
    format!("{base}/diario")
}

/// Topic of the report records.
pub fn reports_topic(base: &str) -> String {
    format!("{base}/reportes")
}

/// Topic of the retained alarm state.
pub fn alarms_topic(base: &str) -> String {
    format!("{base}/alarmas")
}

/// The alarms not cleared, as the alarms API lists them, and the worst severity:
/// `{"v": 1, "site": ..., "activas": [...], "peor": ...}` (retained; sent at connection and
/// whenever an alarm is raised, acknowledged or cleared).
pub fn alarms_payload(tz: Tz, site: &str, alarms: &[Alarm]) -> Vec<u8> {
    let open: Vec<&Alarm> = alarms.iter().filter(|a| a.cleared_us.is_none()).collect();
    let body = json!({
        "v": SCHEMA_VERSION,
        "site": site,
        "activas": open.iter().map(|a| a.json(tz)).collect::<Vec<_>>(),
        "peor": open.iter().map(|a| a.severity).max().map(|s| s.name()),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Each day of a stage's measured production, as the production chart shows it, keyed by
/// its date: the bridge sends only the days whose figures changed since it last sent them.
pub fn daily_days(a: &ActualSeries) -> Vec<(String, Value)> {
    a.dates
        .iter()
        .enumerate()
        .map(|(i, date)| {
            let day = json!({
                "fecha": date,
                "dia": a.days.get(i),
                "biogas_nm3": a.daily_biogas_nm3.get(i),
                "biogas_m3_medido": a.daily_biogas_m3_medido.get(i),
                "metano_nm3": a.daily_metano_nm3.get(i),
                "nm3_estimado": a.nm3_estimado.get(i),
                "temperatura_media_c": a.temperatura_media_c.get(i),
                "sin_datos": a.missing.get(i),
                "lecturas": a.readings.get(i),
                "minutos_sin_datos": a.minutos_sin_datos.get(i),
                "parcial": a.parcial.get(i),
                "metodo": a.metodo.get(i),
                "descartes": a.descartes.get(i),
            });
            (date.clone(), day)
        })
        .collect()
}

/// Changed days of one stage on `.../diario`: `{"v": 1, "site": ..., "stage": ..., "dias": [...]}`.
pub fn daily_payload(site: &str, stage: u64, days: &[Value]) -> Vec<u8> {
    let body = json!({ "v": SCHEMA_VERSION, "site": site, "stage": stage, "dias": days });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// New or re-rendered report records on `.../reportes`, with the history's field names:
/// `{"v": 1, "site": ..., "reportes": [...]}` (the files stay on the appliance).
pub fn reports_payload(tz: Tz, site: &str, records: &[ReportRecord]) -> Vec<u8> {
    let list: Vec<Value> = records.iter().map(|r| record_json(tz, r)).collect();
    let body = json!({ "v": SCHEMA_VERSION, "site": site, "reportes": list });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Every filling stage, as the reports describe it: `{"v": 1, "site": ..., "llenados": [...]}`
/// (retained, sent again whenever a stage is created, changed or closed).
pub fn stages_payload(tz: Tz, site: &str, stages: &[Stage]) -> Vec<u8> {
    let list: Vec<StageInfo> = stages.iter().map(|s| StageInfo::of(tz, s)).collect();
    let body = json!({ "v": SCHEMA_VERSION, "site": site, "llenados": list });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// One reading: its fields, `ts`, `stage`, `seq` (and `reloj` when its time was stamped by
/// an unsynchronised clock or re-dated since).
fn reading_json(tz: Tz, q: &Queued) -> Option<Value> {
    let r = q.reading.as_ref()?;
    let mut m = Map::new();
    for (name, v) in &r.extra {
        m.insert(name.clone(), Value::from(*v));
    }
    for c in Channel::ALL {
        if let Some(v) = r.get(c) {
            m.insert(c.name().into(), Value::from(v));
        }
    }
    m.insert("ts".into(), Value::from(rfc3339(tz, q.ts_us)));
    m.insert("stage".into(), Value::from(q.stage));
    m.insert("seq".into(), Value::from(q.seq));
    if let Some(mark) = r.clock.label() {
        m.insert("reloj".into(), Value::from(mark));
    }
    Some(Value::Object(m))
}

/// A batch on `.../lecturas`: `{"v": 1, "site": ..., "readings": [...]}`. Queue entries
/// whose reading is gone are left out (they are only removed from the queue).
pub fn readings_payload(tz: Tz, site: &str, batch: &[Queued]) -> Vec<u8> {
    let readings: Vec<Value> = batch.iter().filter_map(|q| reading_json(tz, q)).collect();
    let body = json!({ "v": SCHEMA_VERSION, "site": site, "readings": readings });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The retained status on `.../estado`. `online: false` is also the last will.
pub fn status_payload(site: &str, online: bool, tz: Tz, waiting: Option<u64>) -> Vec<u8> {
    let mut body = json!({
        "v": SCHEMA_VERSION,
        "site": site,
        "estado": if online { "en_linea" } else { "desconectado" },
        "version": env!("CARGO_PKG_VERSION"),
    });
    if online {
        body["ts"] = Value::from(rfc3339(tz, crate::sitetime::now_us()));
    }
    if let Some(n) = waiting {
        body["pendientes"] = Value::from(n);
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::{CHANNELS, Reading};

    #[test]
    fn a_batch_carries_fields_time_stage_and_seq() {
        let mut values = [None; CHANNELS];
        values[Channel::ALL[0] as usize] = Some(21.5);
        let q = Queued {
            seq: 1_764_000_000_000_001,
            stage: 3,
            ts_us: 0,
            reading: Some(Reading {
                values,
                extra: vec![("ph".into(), 7.1)],
                sensor_ts_ms: None,
                source: "Prueba".into(),
                clock: Default::default(),
            }),
        };
        let gone = Queued {
            reading: None,
            ..q.clone()
        };
        let v: Value =
            serde_json::from_slice(&readings_payload(chrono_tz::UTC, "f1", &[q, gone])).unwrap();
        assert_eq!(v["v"], 1);
        let r = &v["readings"];
        assert_eq!(r.as_array().map(Vec::len), Some(1));
        assert_eq!(r[0]["seq"], 1_764_000_000_000_001u64);
        assert_eq!(r[0]["stage"], 3);
        assert_eq!(r[0]["ph"], 7.1);
        assert_eq!(r[0][Channel::ALL[0].name()], 21.5);
        assert!(
            r[0]["ts"]
                .as_str()
                .is_some_and(|t| t.starts_with("1970-01-01T00:00:00"))
        );
    }

    /// Every key of `sent` is a property of `schema`'s items under `list`.
    fn keys_in_schema(schema: &str, list: &str, sent: &Value) {
        let schema: Value = serde_json::from_str(schema).expect("schema is JSON");
        let props = &schema["properties"][list]["items"]["properties"];
        let item = &sent[list][0];
        for key in item.as_object().expect("an item").keys() {
            assert!(
                props.get(key).is_some(),
                "{key} missing from the {list} schema"
            );
        }
    }

    #[test]
    fn daily_figures_and_reports_match_their_schemas() {
        let a = ActualSeries {
            days: vec![0],
            dates: vec!["2026-11-30".into()],
            daily_biogas_m3: vec![1.0],
            cumulative_biogas_m3: vec![1.0],
            daily_biogas_nm3: vec![1.0],
            cumulative_biogas_nm3: vec![1.0],
            daily_biogas_m3_medido: vec![1.5],
            cumulative_biogas_m3_medido: vec![1.5],
            daily_metano_nm3: vec![0.6],
            nm3_estimado: vec![false],
            temperatura_media_c: vec![Some(30.0)],
            missing: vec![false],
            readings: vec![1440],
            minutos_sin_datos: vec![0],
            parcial: vec![false],
            descartes: vec![Default::default()],
            metodo: vec![Some("gas_total_m3")],
        };
        let days: Vec<Value> = daily_days(&a).into_iter().map(|(_, v)| v).collect();
        assert_eq!(days[0]["biogas_m3_medido"], 1.5);
        let sent: Value = serde_json::from_slice(&daily_payload("f1", 2, &days)).unwrap();
        assert_eq!(sent["stage"], 2);
        keys_in_schema(
            include_str!("../../docs/schemas/diario.v1.schema.json"),
            "dias",
            &sent,
        );
        let r = ReportRecord {
            id: 3,
            created_us: 0,
            report_type: "final".into(),
            stage_id: 2,
            stage_number: 1,
            user_name: "ana".into(),
            production_estimated: 10.0,
            production_real: 9.0,
            observations: String::new(),
            inferences: String::new(),
            inferences_custom: false,
            regenerated_us: None,
        };
        let sent: Value =
            serde_json::from_slice(&reports_payload(chrono_tz::UTC, "f1", &[r])).unwrap();
        keys_in_schema(
            include_str!("../../docs/schemas/reportes.v1.schema.json"),
            "reportes",
            &sent,
        );
    }

    #[test]
    fn the_alarm_state_lists_what_is_not_cleared_and_matches_its_schema() {
        let alarm = |id, cleared_us, severity| Alarm {
            id,
            rule: "temperatura_baja".into(),
            subject: String::new(),
            severity,
            since_us: 0,
            value: 9.0,
            threshold: 15.0,
            message: "Temperatura baja".into(),
            ack: Some(crate::alarms::Ack {
                by: "ana".into(),
                at_us: 1,
                comment: "revisando".into(),
            }),
            cleared_us,
        };
        use crate::alarms::rules::Severity;
        let list = [
            alarm(1, Some(5), Severity::Critica),
            alarm(2, None, Severity::Alarma),
        ];
        let sent: Value =
            serde_json::from_slice(&alarms_payload(chrono_tz::UTC, "f1", &list)).unwrap();
        assert_eq!(sent["activas"].as_array().map(Vec::len), Some(1));
        assert_eq!(sent["activas"][0]["id"], 2);
        assert_eq!(sent["peor"], "alarma");
        keys_in_schema(
            include_str!("../../docs/schemas/alarmas.v1.schema.json"),
            "activas",
            &sent,
        );
        let none: Value =
            serde_json::from_slice(&alarms_payload(chrono_tz::UTC, "f1", &[])).unwrap();
        assert_eq!(none["peor"], Value::Null);
    }

    #[test]
    fn the_published_schemas_name_every_field_sent() {
        let schema: Value =
            serde_json::from_str(include_str!("../../docs/schemas/lecturas.v1.schema.json"))
                .expect("lecturas schema is JSON");
        assert_eq!(schema["properties"]["v"]["const"], SCHEMA_VERSION);
        let props = &schema["$defs"]["reading"]["properties"];
        for name in Channel::ALL
            .map(Channel::name)
            .iter()
            .chain(&["ts", "stage", "seq", "reloj"])
        {
            assert!(props.get(*name).is_some(), "{name} missing from the schema");
        }
        let estado: Value =
            serde_json::from_str(include_str!("../../docs/schemas/estado.v1.schema.json"))
                .expect("estado schema is JSON");
        let sent: Value =
            serde_json::from_slice(&status_payload("f1", true, chrono_tz::UTC, Some(3))).unwrap();
        for key in sent.as_object().expect("object").keys() {
            assert!(
                estado["properties"].get(key).is_some(),
                "{key} missing from the schema"
            );
        }
    }
}
