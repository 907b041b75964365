//! Per-day aggregates, maintained in the same transaction as the readings, so that production
//! and report queries cost one row per day instead of one per reading.
//!
//! Gas produced on a day is taken, in order of preference, from the differences of the
//! cumulative meter counter (`gas_total_m3`; a counter that goes backwards is a meter reset and
//! counts its new value from zero), else the sum of `caudal_gas` deltas, else the sum of legacy
//! `gas_flow` deltas, else the L/min flow integrated over time. A difference or an integrated
//! interval belongs to the day of the later reading.

use serde::{Deserialize, Serialize};

use crate::reading::{CHANNELS, Channel, Reading};

/// Longest gap between two L/min readings that is integrated; a longer silence (sensor off,
/// power cut) contributes nothing rather than an invented volume.
pub const MAX_FLOW_GAP_US: i64 = 15 * 60 * 1_000_000;

/// min / max / sum / count of one channel over a day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
}

impl ChannelStats {
    fn new(v: f64) -> Self {
        Self {
            count: 1,
            min: v,
            max: v,
            sum: v,
        }
    }

    fn add(&mut self, v: f64) {
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
    }

    /// Folds another day's statistics into this one.
    pub fn merge(&mut self, o: &ChannelStats) {
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
    }

    /// Mean of the values.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// Volume produced in a day by each method the sensors may report, so the preferred one can
/// be chosen when reading.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MeterDay {
    pub from_counter: Option<f64>,
    pub from_delta: Option<f64>,
    pub from_legacy: Option<f64>,
    pub from_flow: Option<f64>,
}

impl MeterDay {
    /// Volume by the preferred method present that day (see the module docs).
    pub fn produced(&self) -> Option<f64> {
        self.from_counter
            .or(self.from_delta)
            .or(self.from_legacy)
            .or(self.from_flow)
    }
}

fn add(slot: &mut Option<f64>, v: f64) {
    *slot = Some(slot.unwrap_or(0.0) + v);
}

/// One stage's aggregate for one site-local day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Daily {
    pub count: u64,
    pub first_us: i64,
    pub last_us: i64,
    #[serde(with = "crate::store::codec::channel_array")]
    pub channels: [Option<ChannelStats>; CHANNELS],
    pub extra: Vec<(String, ChannelStats)>,
    pub gas: MeterDay,
    pub biol: MeterDay,
}

/// Last counter values and flow sample per source, carried across days, stages and restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MeterState {
    pub gas_total: Option<f64>,
    pub biol_total: Option<f64>,
    pub flow: Option<(i64, f64)>,
}

/// Difference of a cumulative counter, treating a decrease as a reset to zero.
fn counter_delta(prev: Option<f64>, now: f64) -> f64 {
    match prev {
        Some(p) if now >= p => now - p,
        Some(_) => now,
        None => 0.0,
    }
}

impl Daily {
    /// Adds one reading received at `ts_us`, updating the source's meter state.
    pub fn apply(&mut self, ts_us: i64, r: &Reading, meter: &mut MeterState) {
        if self.count == 0 || ts_us < self.first_us {
            self.first_us = ts_us;
        }
        self.last_us = self.last_us.max(ts_us);
        self.count += 1;
        for (slot, value) in self.channels.iter_mut().zip(r.values.iter()) {
            if let Some(v) = *value {
                match slot {
                    Some(s) => s.add(v),
                    None => *slot = Some(ChannelStats::new(v)),
                }
            }
        }
        for (name, v) in &r.extra {
            if let Some((_, s)) = self.extra.iter_mut().find(|(n, _)| n == name) {
                s.add(*v);
            } else if self.extra.len() < crate::payload::MAX_EXTRA {
                self.extra.push((name.clone(), ChannelStats::new(*v)));
            }
        }
        if let Some(total) = r.get(Channel::GasTotal) {
            add(
                &mut self.gas.from_counter,
                counter_delta(meter.gas_total, total),
            );
            meter.gas_total = Some(total);
        }
        if let Some(d) = r.get(Channel::CaudalGas) {
            add(&mut self.gas.from_delta, d);
        }
        if let Some(d) = r.get(Channel::GasFlow) {
            add(&mut self.gas.from_legacy, d);
        }
        if let Some(lmin) = r.get(Channel::CaudalGasLmin) {
            let mut volume = 0.0;
            if let Some((t0, f0)) = meter.flow {
                let dt = ts_us - t0;
                if dt > 0 && dt <= MAX_FLOW_GAP_US {
                    // Trapezoid: mean flow (L/min) × minutes → litres → m³.
                    volume = (f0 + lmin) / 2.0 * (dt as f64 / 60e6) / 1000.0;
                }
            }
            add(&mut self.gas.from_flow, volume);
            meter.flow = Some((ts_us, lmin));
        }
        if let Some(total) = r.get(Channel::BiolTotal) {
            add(
                &mut self.biol.from_counter,
                counter_delta(meter.biol_total, total),
            );
            meter.biol_total = Some(total);
        }
        if let Some(d) = r.get(Channel::CaudalBiol) {
            add(&mut self.biol.from_delta, d);
        }
    }

    /// Statistics of a known channel that day.
    pub fn channel(&self, c: Channel) -> Option<&ChannelStats> {
        self.channels[c as usize].as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(fields: &[(Channel, f64)]) -> Reading {
        let mut values = [None; CHANNELS];
        for (c, v) in fields {
            values[*c as usize] = Some(*v);
        }
        Reading {
            values,
            extra: vec![],
            sensor_ts_ms: None,
            source: "t".into(),
        }
    }

    #[test]
    fn counter_reset_never_negative() {
        let mut d = Daily::default();
        let mut m = MeterState::default();
        // 10.0 (baseline) → 10.5 (+0.5) → 11.0 (+0.5) → reset to 0.2 (+0.2) → 0.7 (+0.5)
        for (i, v) in [10.0, 10.5, 11.0, 0.2, 0.7].iter().enumerate() {
            d.apply(i as i64, &reading(&[(Channel::GasTotal, *v)]), &mut m);
        }
        assert!((d.gas.produced().unwrap() - 1.7).abs() < 1e-9);
        assert_eq!(m.gas_total, Some(0.7));
    }

    #[test]
    fn counter_preferred_over_deltas_then_flow() {
        let mut d = Daily::default();
        let mut m = MeterState::default();
        d.apply(
            0,
            &reading(&[(Channel::CaudalGas, 0.3), (Channel::CaudalGasLmin, 6.0)]),
            &mut m,
        );
        assert_eq!(d.gas.produced(), Some(0.3));
        d.apply(60_000_000, &reading(&[(Channel::GasTotal, 5.0)]), &mut m);
        assert_eq!(d.gas.produced(), Some(0.0));
        let mut flow_only = Daily::default();
        let mut m = MeterState::default();
        // 6 L/min then 6 L/min one minute later → 6 L = 0.006 m³
        flow_only.apply(0, &reading(&[(Channel::CaudalGasLmin, 6.0)]), &mut m);
        flow_only.apply(
            60_000_000,
            &reading(&[(Channel::CaudalGasLmin, 6.0)]),
            &mut m,
        );
        assert!((flow_only.gas.produced().unwrap() - 0.006).abs() < 1e-12);
        // a gap over 15 minutes is not integrated
        flow_only.apply(
            60_000_000 + MAX_FLOW_GAP_US + 1,
            &reading(&[(Channel::CaudalGasLmin, 6.0)]),
            &mut m,
        );
        assert!((flow_only.gas.produced().unwrap() - 0.006).abs() < 1e-12);
    }

    #[test]
    fn channel_statistics() {
        let mut d = Daily::default();
        let mut m = MeterState::default();
        for (i, t) in [34.0, 36.0, 35.0].iter().enumerate() {
            d.apply(i as i64, &reading(&[(Channel::Temperatura, *t)]), &mut m);
        }
        let s = d.channel(Channel::Temperatura).unwrap();
        assert_eq!((s.count, s.min, s.max, s.mean()), (3, 34.0, 36.0, 35.0));
        assert_eq!(d.count, 3);
    }
}
