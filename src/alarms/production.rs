//! The production rule's value: how the gas measured on the last whole days after the model's
//! lag compares with the expected curve, from the same comparison the production chart shows
//! ([`crate::production::compute_now`]). Evaluated when a day closes and at start-up, never
//! per reading: a day's share is only known once the day is over.

use std::collections::BTreeMap;

use chrono_tz::Tz;

use crate::model::MaterialParams;
use crate::production::{Production, SiteModel, compute_now, loading_time_us};
use crate::sitetime::{DayNumber, day_bounds, local_day, today};
use crate::store::Store;
use crate::store::stages::Stage;

/// Expected daily production below which a day is not judged, Nm³ (the tail of the curve).
const MIN_EXPECTED_NM3: f64 = 0.01;

/// What the production rule needs from the configuration.
#[derive(Debug, Clone, Default)]
pub struct ProductionSource {
    pub materials: BTreeMap<String, MaterialParams>,
    pub site: SiteModel,
}

/// The active stage's id and the rule's value (see [`share`]), `None` when it cannot be judged
/// yet. Blocking: reads the store. `None` overall when no stage is active.
pub fn evaluate(store: &Store, src: &ProductionSource, days: u32) -> Option<(u64, Option<f64>)> {
    let id = store.active_stage_id();
    if id == 0 {
        return None;
    }
    let stage = match store.stage(id) {
        Ok(Some(s)) => s,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "alarms: cannot read the active stage");
            return None;
        }
    };
    let p = match compute_now(
        store,
        &stage,
        src.materials.get(&stage.material_type),
        src.site,
    ) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, stage = id, "alarms: no production comparison");
            return Some((id, None));
        }
    };
    let tz = store.timezone();
    Some((id, share(&p, &stage, tz, today(tz), days)))
}

/// The highest share (measured ÷ expected × 100, Nm³ as on the chart) among the last `days`
/// whole days of `stage` before `today`: below the threshold only if every one of them is.
/// `None` while fewer than `days` whole days have passed since the end of the lag phase, or
/// when one of them has no gas data or only partial data (the `sin_datos_gas` rule and the
/// chart's marks cover those).
pub fn share(p: &Production, stage: &Stage, tz: Tz, today: DayNumber, days: u32) -> Option<f64> {
    let days = days.max(1) as i32;
    let last = stage
        .closed_us
        .map_or(today - 1, |us| local_day(tz, us) - 1)
        .min(today - 1);
    let first = last - days + 1;
    let lag_end_us = loading_time_us(tz, stage) + (p.expected.params.lag_days * 86_400e6) as i64;
    if first < stage.date || day_bounds(tz, first)?.0 < lag_end_us {
        return None;
    }
    let mut best = f64::NEG_INFINITY;
    for day in first..=last {
        let i = (day - stage.date) as usize;
        let a = &p.actual;
        if *a.missing.get(i)? || *a.parcial.get(i)? {
            return None;
        }
        let expected = *p.expected.daily_biogas_nm3.get(i)?;
        if expected < MIN_EXPECTED_NM3 {
            return None;
        }
        best = best.max(a.daily_biogas_nm3.get(i)? / expected * 100.0);
    }
    best.is_finite().then_some(best)
}
