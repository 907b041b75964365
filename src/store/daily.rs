//! Per-day aggregates, maintained in the same transaction as the readings, so that production
//! and report queries cost one row per day instead of one per reading.
//!
//! Gas produced on a day is taken, in order of preference, from the differences of the
//! cumulative meter counter (`gas_total_m3`), else the sum of `caudal_gas` deltas, else the
//! sum of legacy `gas_flow` deltas, else the L/min flow integrated over time. A difference or
//! an integrated interval belongs to the day of the later reading. What counts as gas, and
//! what is set aside, is decided per source in [`meter`] and [`counter`]; [`fold`] applies
//! readings to the rows, for the writer and for a rebuild alike.

pub mod counter;
pub mod fold;
pub mod meter;
#[cfg(test)]
mod normal_tests;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::normal_volume::Applied;
use crate::reading::{CHANNELS, Channel, Reading};
pub use meter::{MeterRules, MeterState};

/// Longest gap between two L/min readings that is integrated; a longer silence (sensor off,
/// power cut) contributes nothing rather than an invented volume, and counts as minutes
/// without data.
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

/// Meter samples that were not counted, by reason, so an operator can see why a day's figure
/// is what it is. The names are the API's (`descartes` of the production response).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discards {
    /// The same message received again (QoS 1 redelivery): same `seq`, or same `ts`, and the
    /// same meter values from the same topic.
    pub duplicate: u32,
    /// A sample older than one already used (re-sent late), or a counter value below the
    /// baseline that later samples showed was not a new meter.
    pub out_of_order: u32,
    /// A counter decrease of at most [`counter::JITTER_M3`].
    pub jitter: u32,
    /// A counter value that no later sample confirmed (a jump above the maximum flow, a drop
    /// to zero followed by the old values).
    pub glitch: u32,
    /// A new counter baseline confirmed by consistent samples (a replaced meter): the gas of
    /// the switch is not counted, so the day is only partly known.
    pub meter_change: u32,
}

impl Discards {
    /// Adds another set of counts.
    pub fn merge(&mut self, o: &Discards) {
        self.duplicate += o.duplicate;
        self.out_of_order += o.out_of_order;
        self.jitter += o.jitter;
        self.glitch += o.glitch;
        self.meter_change += o.meter_change;
    }

    /// Samples set aside in total.
    pub fn total(&self) -> u32 {
        self.duplicate + self.out_of_order + self.jitter + self.glitch + self.meter_change
    }
}

/// A day's gas by one method in normal cubic metres (dry, 0 °C, 1013.25 hPa), each interval
/// converted with its own pressure and temperature (see [`crate::normal_volume`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Normal {
    /// Dry biogas, Nm³.
    pub nm3: f64,
    /// Methane of the intervals whose `calidad` was measured, Nm³ CH₄.
    pub ch4_nm3: f64,
    /// The part of `nm3` whose methane share was measured, Nm³.
    pub nm3_quality: f64,
}

impl Normal {
    fn add(slot: &mut Option<Normal>, m3: f64, applied: Applied) {
        let n = slot.get_or_insert_with(Normal::default);
        let nm3 = m3 * applied.factor;
        n.nm3 += nm3;
        if let Some(share) = applied.methane {
            n.ch4_nm3 += nm3 * share;
            n.nm3_quality += nm3;
        }
    }

    /// Methane, Nm³ CH₄: measured where `calidad` was known, `default_share` of the rest.
    pub fn methane_nm3(&self, default_share: f64) -> f64 {
        self.ch4_nm3 + (self.nm3 - self.nm3_quality).max(0.0) * default_share
    }
}

/// Normal volumes of a day by each method (absent in rows written before they existed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Normals {
    pub counter: Option<Normal>,
    pub delta: Option<Normal>,
    pub legacy: Option<Normal>,
    pub flow: Option<Normal>,
}

impl Normals {
    /// The normal volumes of `method`.
    pub fn of(&self, method: Method) -> Option<Normal> {
        match method {
            Method::Counter => self.counter,
            Method::Delta => self.delta,
            Method::Legacy => self.legacy,
            Method::Flow => self.flow,
        }
    }
}

/// Volume produced in a day by each method the sensors may report, so the preferred one can
/// be chosen when reading, with what is known about its completeness.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MeterDay {
    /// Counter differences counted; `None` unless a difference was known.
    pub from_counter: Option<f64>,
    /// Deltas summed.
    pub from_delta: Option<f64>,
    /// Legacy deltas summed.
    pub from_legacy: Option<f64>,
    /// L/min integrated; `None` unless at least one interval was integrated.
    pub from_flow: Option<f64>,
    /// Time of the day covered by integrated L/min intervals, µs (the rest of the day has no
    /// flow data).
    pub flow_covered_us: i64,
    /// Samples not counted, by reason.
    pub discards: Discards,
    /// The same gas in normal cubic metres, by method (gas only; empty for biol).
    pub normal: Normals,
}

/// Which measurement a day's production comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Differences of `gas_total_m3`.
    Counter,
    /// Sum of `caudal_gas`.
    Delta,
    /// Sum of `gas_flow`.
    Legacy,
    /// `caudal_gas_lmin` integrated over time.
    Flow,
}

impl Method {
    /// The API's name: the payload field the figure comes from.
    pub fn name(self) -> &'static str {
        match self {
            Method::Counter => "gas_total_m3",
            Method::Delta => "caudal_gas",
            Method::Legacy => "gas_flow",
            Method::Flow => "caudal_gas_lmin",
        }
    }
}

impl MeterDay {
    /// Volume by the preferred method present that day (see the module docs).
    pub fn produced(&self) -> Option<f64> {
        self.method_and_volume().map(|(_, v)| v)
    }

    /// The preferred method present that day and its volume.
    pub fn method_and_volume(&self) -> Option<(Method, f64)> {
        [
            (Method::Counter, self.from_counter),
            (Method::Delta, self.from_delta),
            (Method::Legacy, self.from_legacy),
            (Method::Flow, self.from_flow),
        ]
        .into_iter()
        .find_map(|(m, v)| v.map(|v| (m, v)))
    }

    /// The preferred method present that day with its measured m³ and its normal volumes
    /// (`None` in a row stored before normal volumes existed).
    pub fn measured_and_normal(&self) -> Option<(Method, f64, Option<Normal>)> {
        self.method_and_volume()
            .map(|(m, v)| (m, v, self.normal.of(m)))
    }

    /// Books a counter step; `applied` converts it to normal volumes (gas only).
    fn book(&mut self, step: counter::Step, applied: Option<Applied>) {
        if let Some(v) = step.counted {
            add(&mut self.from_counter, v);
            if let Some(a) = applied {
                Normal::add(&mut self.normal.counter, v, a);
            }
        }
        self.discards.merge(&step.discards);
    }
}

fn add(slot: &mut Option<f64>, v: f64) {
    *slot = Some(slot.unwrap_or(0.0) + v);
}

/// Counts the values of `r` in per-channel statistics (known channels by position, extra
/// fields by name, at most [`crate::payload::MAX_EXTRA`] of them); shared by the daily rows and
/// the rollups.
pub(crate) fn record_values(
    channels: &mut [Option<ChannelStats>; CHANNELS],
    extra: &mut Vec<(String, ChannelStats)>,
    r: &Reading,
) {
    for (slot, value) in channels.iter_mut().zip(r.values.iter()) {
        if let Some(v) = *value {
            match slot {
                Some(s) => s.add(v),
                None => *slot = Some(ChannelStats::new(v)),
            }
        }
    }
    for (name, v) in &r.extra {
        if let Some((_, s)) = extra.iter_mut().find(|(n, _)| n == name) {
            s.add(*v);
        } else if extra.len() < crate::payload::MAX_EXTRA {
            extra.push((name.clone(), ChannelStats::new(*v)));
        }
    }
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

impl Daily {
    /// Counts one reading stored at `ts_us` in the channel statistics (the meters are
    /// [`MeterState::apply`]'s part).
    pub fn record(&mut self, ts_us: i64, r: &Reading) {
        if self.count == 0 || ts_us < self.first_us {
            self.first_us = ts_us;
        }
        self.last_us = self.last_us.max(ts_us);
        self.count += 1;
        record_values(&mut self.channels, &mut self.extra, r);
    }

    /// Statistics of a known channel that day.
    pub fn channel(&self, c: Channel) -> Option<&ChannelStats> {
        self.channels[c as usize].as_ref()
    }
}
