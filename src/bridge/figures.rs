//! The daily figures and report records the bridge sends besides the readings. They are
//! derived data that change in place (today's row grows, a re-dating or `reindex` rewrites
//! past days, a report is re-rendered), so there is no queue: every minute the bridge compares
//! what the store says now with what it has sent in this connection and sends what changed.
//! A new connection starts with nothing sent, so after an outage everything goes once more
//! (at least once; the central side keeps the newest per stage and date, or per report id).

use std::collections::HashMap;

use chrono_tz::Tz;
use serde_json::Value;

use super::message;
use crate::config::ValidConfig;
use crate::production;
use crate::store::reports::ReportRecord;
use crate::store::{Store, StoreError};

/// Days per `.../diario` message, so that a long stage sent at connection stays well under
/// the packet size limit.
const DAYS_PER_MESSAGE: usize = 100;

/// What the store says now.
pub struct Snapshot {
    /// Each stage's days, as `(date, figures)`.
    stages: Vec<(u64, Vec<(String, Value)>)>,
    reports: Vec<ReportRecord>,
}

/// Reads every stage's daily figures (as the production chart computes them) and every report
/// record. A stage whose material is no longer configured has no figures and is left out.
pub fn collect(store: &Store, cfg: &ValidConfig) -> Result<Snapshot, StoreError> {
    let mut stages = Vec::new();
    for stage in store.stages()? {
        let material = cfg.raw.materials.get(&stage.material_type);
        match production::compute_now(store, &stage, material, cfg.site_model()) {
            Ok(p) => stages.push((stage.id, message::daily_days(&p.actual))),
            Err(production::NowError::Store(e)) => return Err(e),
            Err(e) => tracing::debug!(stage = stage.id, error = %e, "no daily figures to send"),
        }
    }
    Ok(Snapshot {
        stages,
        reports: store.reports()?,
    })
}

/// One message to send, and what it covers once the client has taken it.
pub struct Pending {
    /// True for `.../diario`, false for `.../reportes`.
    pub daily: bool,
    pub payload: Vec<u8>,
    days: Vec<(u64, String, Value)>,
    reports: Vec<(u64, Option<i64>)>,
}

/// What this connection has sent.
#[derive(Default)]
pub struct Sent {
    days: HashMap<(u64, String), Value>,
    reports: HashMap<u64, Option<i64>>,
}

impl Sent {
    /// The messages for whatever changed since it was last marked sent.
    pub fn pending(&self, snap: &Snapshot, site: &str, tz: Tz) -> Vec<Pending> {
        let mut out = Vec::new();
        for (stage, days) in &snap.stages {
            let changed: Vec<&(String, Value)> = days
                .iter()
                .filter(|(date, v)| self.days.get(&(*stage, date.clone())) != Some(v))
                .collect();
            for chunk in changed.chunks(DAYS_PER_MESSAGE) {
                let values: Vec<Value> = chunk.iter().map(|(_, v)| v.clone()).collect();
                out.push(Pending {
                    daily: true,
                    payload: message::daily_payload(site, *stage, &values),
                    days: chunk
                        .iter()
                        .map(|(d, v)| (*stage, d.clone(), v.clone()))
                        .collect(),
                    reports: Vec::new(),
                });
            }
        }
        let new: Vec<ReportRecord> = snap
            .reports
            .iter()
            .filter(|r| self.reports.get(&r.id) != Some(&r.regenerated_us))
            .cloned()
            .collect();
        if !new.is_empty() {
            out.push(Pending {
                daily: false,
                payload: message::reports_payload(tz, site, &new),
                days: Vec::new(),
                reports: new.iter().map(|r| (r.id, r.regenerated_us)).collect(),
            });
        }
        out
    }

    /// Records that `p` was handed to the client (its PUBACK is the client's business: a lost
    /// one ends the connection, and the next starts with nothing sent).
    pub fn mark(&mut self, p: Pending) {
        for (stage, date, v) in p.days {
            self.days.insert((stage, date), v);
        }
        self.reports.extend(p.reports);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snap(today: f64, reports: Vec<ReportRecord>) -> Snapshot {
        Snapshot {
            stages: vec![(
                1,
                vec![
                    (
                        "2026-11-01".into(),
                        json!({"fecha": "2026-11-01", "biogas_nm3": 1.5}),
                    ),
                    (
                        "2026-11-02".into(),
                        json!({"fecha": "2026-11-02", "biogas_nm3": today}),
                    ),
                ],
            )],
            reports,
        }
    }

    fn report(id: u64, regenerated_us: Option<i64>) -> ReportRecord {
        ReportRecord {
            id,
            created_us: 0,
            report_type: "normal".into(),
            stage_id: 1,
            stage_number: 1,
            user_name: "ana".into(),
            production_estimated: 2.0,
            production_real: 1.8,
            observations: String::new(),
            inferences: String::new(),
            inferences_custom: false,
            regenerated_us,
        }
    }

    fn days_in(p: &Pending) -> Vec<String> {
        let v: Value = serde_json::from_slice(&p.payload).unwrap();
        v["dias"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["fecha"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn only_changed_days_and_reports_are_sent_again() {
        let mut sent = Sent::default();
        let first = sent.pending(&snap(0.2, vec![report(7, None)]), "f1", chrono_tz::UTC);
        assert_eq!(first.len(), 2);
        assert_eq!(days_in(&first[0]), ["2026-11-01", "2026-11-02"]);
        for p in first {
            sent.mark(p);
        }
        assert!(
            sent.pending(&snap(0.2, vec![report(7, None)]), "f1", chrono_tz::UTC)
                .is_empty()
        );
        // Today's figure grew and the report was re-rendered.
        let next = sent.pending(&snap(0.4, vec![report(7, Some(5))]), "f1", chrono_tz::UTC);
        assert_eq!(next.len(), 2);
        assert_eq!(days_in(&next[0]), ["2026-11-02"]);
        let r: Value = serde_json::from_slice(&next[1].payload).unwrap();
        assert_eq!(r["reportes"][0]["id"], 7);
        assert_eq!(r["site"], "f1");
    }

    #[test]
    fn nothing_is_marked_sent_until_the_client_took_it() {
        let sent = Sent::default();
        let s = snap(0.2, Vec::new());
        assert_eq!(sent.pending(&s, "f1", chrono_tz::UTC).len(), 1);
        assert_eq!(sent.pending(&s, "f1", chrono_tz::UTC).len(), 1);
    }
}
