//! What one source (MQTT topic) remembers between readings, and how one reading changes a
//! day's gas and biol figures.
//!
//! - A reading's *meter time* is the sensor's own `ts` when it sends one, else its receive
//!   time: intervals and order are the sensor's, so a message delivered late is recognised.
//! - A repeated message (a QoS 1 redelivery: same `seq`, or same `ts`, with the same meter
//!   values) changes nothing and is counted as `duplicate`. The last [`RECENT_KEYS`] messages
//!   of each source are remembered; a message with neither `seq` nor `ts` cannot be told from
//!   a new one.
//! - Counters follow [`super::counter`].
//! - Deltas (`caudal_gas`, `gas_flow`, `caudal_biol`) are summed.
//! - Every gas volume is also converted to normal cubic metres with the newest pressure,
//!   temperature, humidity and methane readings of the source at that time (the same message
//!   first), else the site settings ([`crate::normal_volume`]).
//! - L/min flow is integrated between consecutive samples (trapezoids) up to
//!   [`MAX_FLOW_GAP_US`] apart; a longer gap is time without data, never zero gas. A sample
//!   not newer than the last integrated one is not integrated (`out_of_order`), so time going
//!   backwards never counts an interval twice.

use serde::{Deserialize, Serialize};

use super::counter::Counter;
use super::{MAX_FLOW_GAP_US, MeterDay, Normal, add};
use crate::normal_volume::{Applied, Conditions, GasSite};
use crate::reading::{Channel, Reading};

/// Messages remembered per source to recognise a redelivery. A QoS 1 redelivery follows
/// its original within the sender's in-flight window (a handful of messages).
pub const RECENT_KEYS: usize = 16;

/// Default of `site.max_gas_flow_m3_h`: 6 m³/h is Qmax of a G4 diaphragm gas meter (EN 1359),
/// the largest of the domestic sizes (G1.6, G2.5, G4) used on farm-scale bag digesters, which
/// produce well under 1 m³/h. A meter cannot register much more than its Qmax, so a larger
/// step is not gas.
pub const DEFAULT_MAX_GAS_FLOW_M3_H: f64 = 6.0;

/// Limits that separate gas from noise, and the site's gas conditions (from `[site]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeterRules {
    /// Most gas the meter can register per hour; a counter step above it over the elapsed
    /// time is a glitch until confirmed (see [`super::counter`]).
    pub max_gas_flow_m3_h: f64,
    /// How measured m³ become normal m³ (see [`crate::normal_volume`]).
    pub gas: GasSite,
}

impl Default for MeterRules {
    fn default() -> Self {
        Self {
            max_gas_flow_m3_h: DEFAULT_MAX_GAS_FLOW_M3_H,
            gas: GasSite::default(),
        }
    }
}

/// The last L/min sample integrated from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FlowSample {
    /// Meter time, µs since the epoch.
    pub at_us: i64,
    /// Flow at that time, L/min.
    pub lmin: f64,
}

/// Counters, the flow sample and recent message keys of one source, carried across days,
/// stages and restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MeterState {
    /// The gas meter's cumulative counter.
    pub gas_total: Counter,
    /// Effluent leaves a batch digester in bursts when it is loaded, so the biol counter has
    /// no flow limit; the other counter rules apply.
    pub biol_total: Counter,
    /// The last L/min sample, the start of the next interval.
    pub flow: Option<FlowSample>,
    /// Fingerprints of the last [`RECENT_KEYS`] messages with a meter field, oldest first.
    pub recent: Vec<u64>,
    /// The newest pressure, temperature, humidity and methane readings of this source.
    pub conditions: Conditions,
}

const GAS_FIELDS: [Channel; 4] = [
    Channel::GasTotal,
    Channel::CaudalGas,
    Channel::GasFlow,
    Channel::CaudalGasLmin,
];
const BIOL_FIELDS: [Channel; 2] = [Channel::CaudalBiol, Channel::BiolTotal];

/// FNV-1a, 64 bit: a hash that is the same in every build, since fingerprints are stored.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Identity of a message for recognising a redelivery: its `seq` (else its `ts`) and its meter
/// values. The values are part of it so that two sensors sharing a topic and a second, or a
/// `seq` restarted by a reboot, are not taken for repeats. `None` without `seq` or `ts`.
fn fingerprint(r: &Reading) -> Option<u64> {
    let mut h = Fnv::new();
    if let Some((_, seq)) = r.extra.iter().find(|(name, _)| name == "seq") {
        h.write(b"seq");
        h.write(&seq.to_bits().to_le_bytes());
    } else {
        h.write(b"ts");
        h.write(&r.sensor_ts_ms?.to_le_bytes());
    }
    for c in GAS_FIELDS.iter().chain(BIOL_FIELDS.iter()) {
        if let Some(v) = r.get(*c) {
            h.write(&[*c as u8]);
            h.write(&v.to_bits().to_le_bytes());
        }
    }
    Some(h.0)
}

/// The time intervals and order of a source are judged by: the sensor's `ts` when present.
pub fn meter_time(r: &Reading, received_us: i64) -> i64 {
    r.sensor_ts_ms
        .and_then(|ms| ms.checked_mul(1000))
        .unwrap_or(received_us)
}

impl MeterState {
    /// Applies the meter fields of `r`, stored at `ts_us` on the day starting at
    /// `day_start_us`, to that day's `gas` and `biol`. Returns the part of an integrated flow
    /// interval (µs) that lies before the day's start, which the caller books as covered on
    /// the previous day.
    pub fn apply(
        &mut self,
        rules: &MeterRules,
        ts_us: i64,
        day_start_us: i64,
        r: &Reading,
        gas: &mut MeterDay,
        biol: &mut MeterDay,
    ) -> i64 {
        let has_gas = GAS_FIELDS.iter().any(|c| r.get(*c).is_some());
        let has_biol = BIOL_FIELDS.iter().any(|c| r.get(*c).is_some());
        if !has_gas && !has_biol {
            self.conditions.update(r, meter_time(r, ts_us));
            return 0;
        }
        if let Some(key) = fingerprint(r) {
            if self.recent.contains(&key) {
                if has_gas {
                    gas.discards.duplicate += 1;
                }
                if has_biol {
                    biol.discards.duplicate += 1;
                }
                return 0;
            }
            if self.recent.len() >= RECENT_KEYS {
                self.recent.remove(0);
            }
            self.recent.push(key);
        }
        let at = meter_time(r, ts_us);
        // Conditions sent in the same message describe this interval.
        self.conditions.update(r, at);
        let applied = self.conditions.applied(&rules.gas, at);
        if let Some(v) = r.get(Channel::GasTotal) {
            gas.book(
                self.gas_total.step(v, at, Some(rules.max_gas_flow_m3_h)),
                Some(applied),
            );
        }
        if let Some(d) = r.get(Channel::CaudalGas) {
            add(&mut gas.from_delta, d);
            Normal::add(&mut gas.normal.delta, d, applied);
        }
        if let Some(d) = r.get(Channel::GasFlow) {
            add(&mut gas.from_legacy, d);
            Normal::add(&mut gas.normal.legacy, d, applied);
        }
        if let Some(v) = r.get(Channel::BiolTotal) {
            biol.book(self.biol_total.step(v, at, None), None);
        }
        if let Some(d) = r.get(Channel::CaudalBiol) {
            add(&mut biol.from_delta, d);
        }
        match r.get(Channel::CaudalGasLmin) {
            Some(lmin) => self.integrate(at, lmin, ts_us, day_start_us, applied, gas),
            None => 0,
        }
    }

    /// Integrates the flow from the last sample to this one; returns the covered time before
    /// `day_start_us`.
    fn integrate(
        &mut self,
        at: i64,
        lmin: f64,
        ts_us: i64,
        day_start_us: i64,
        applied: Applied,
        gas: &mut MeterDay,
    ) -> i64 {
        let mut before_day = 0;
        if let Some(prev) = self.flow {
            if at <= prev.at_us {
                gas.discards.out_of_order += 1;
                return 0;
            }
            let dt = at - prev.at_us;
            if dt <= MAX_FLOW_GAP_US {
                // Trapezoid: mean flow (L/min) × minutes → litres → m³.
                let m3 = (prev.lmin + lmin) / 2.0 * (dt as f64 / 60e6) / 1000.0;
                add(&mut gas.from_flow, m3);
                Normal::add(&mut gas.normal.flow, m3, applied);
                // The interval ends at the reading's stored time, like its volume.
                before_day = (day_start_us - (ts_us - dt)).clamp(0, dt);
                gas.flow_covered_us += dt - before_day;
            }
        }
        self.flow = Some(FlowSample { at_us: at, lmin });
        before_day
    }
}
