//! Which differences of a cumulative meter counter (`gas_total_m3`, `biol_total_m3`) are gas.
//!
//! A counter only moves forward at a bounded speed, so every sample is checked against the
//! last accepted value (the *baseline*):
//!
//! - an increase no larger than the maximum flow allows over the elapsed time is counted;
//! - a decrease of at most [`JITTER_M3`] is jitter (float rounding, a meter read while it
//!   turns): nothing is counted and the baseline stays;
//! - a sample older than the baseline (by the sensor's `ts`) is out of order: ignored;
//! - anything else is a discontinuity. It is held as a *chain* of samples consistent with each
//!   other, and neither counted nor allowed to move the baseline until it is confirmed:
//!   - a drop to below [`RESET_FRACTION`] of the baseline is a meter reset, confirmed by
//!     [`CONFIRM_RESET`] samples; the new meter's readings then count from zero;
//!   - a jump above the maximum flow, or a drop to a value that is not small, is confirmed as a
//!     new meter (a replacement) by [`CONFIRM_NEW_METER`] samples; the gas of the switch is
//!     not counted, the new meter's increments are;
//!   - a sample consistent with the old baseline refutes the chain: its samples were a glitch
//!     (`glitch`) or values re-sent out of order (`out_of_order`), and are never counted.
//!
//! So a glitch never adds gas, a sample re-sent late never adds gas, and a real reset or a
//! new meter costs at most the gas of the switch.

use serde::{Deserialize, Serialize};

use super::Discards;

/// Largest decrease treated as jitter, m³. A sensor sending a 32-bit float loses about 0.008
/// m³ of resolution at 100 000 m³; 10 L covers that and a meter read while it turns.
pub const JITTER_M3: f64 = 0.01;

/// A drop to below this fraction of the baseline is a meter reset (power loss of a pulse
/// counter, a rollover, a new meter starting near zero). A smaller drop is not a reset: a
/// reset meter restarts near zero, and a sample re-sent late is close to the baseline.
pub const RESET_FRACTION: f64 = 0.1;

/// Samples consistent with each other that confirm a reset (the low value and one more). A
/// single low sample (a read error giving 0) is refuted by the next normal one.
pub const CONFIRM_RESET: u8 = 2;

/// Samples consistent with each other that confirm a new meter with a different baseline.
pub const CONFIRM_NEW_METER: u8 = 3;

/// Time added to every interval before the maximum flow is applied (1 minute): timestamps in
/// whole seconds, delivery delays and samples sent in a burst after a reconnection.
pub const TIME_SLACK_US: i64 = 60_000_000;

/// Time of a baseline whose time is unknown (kept by an earlier version): any interval from
/// it is long enough.
pub const UNKNOWN_TIME: i64 = i64::MIN;

/// A counter value at a meter time (µs since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// Counter reading, m³.
    pub value: f64,
    /// Meter time of the reading, µs since the epoch ([`UNKNOWN_TIME`] when not stored).
    pub at_us: i64,
}

/// What a chain of unconfirmed samples would be if confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChainKind {
    /// A drop to near zero: a reset.
    Reset,
    /// A jump above the maximum flow: a glitch, or a new meter with a higher reading.
    Jump,
    /// A drop that is not small: values re-sent out of order, or a new meter with a lower
    /// reading.
    Drop,
}

impl ChainKind {
    fn confirmations(self) -> u8 {
        match self {
            ChainKind::Reset => CONFIRM_RESET,
            ChainKind::Jump | ChainKind::Drop => CONFIRM_NEW_METER,
        }
    }
}

/// Samples that do not fit the baseline but fit each other.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    /// What the chain would be if confirmed.
    pub kind: ChainKind,
    /// The sample that left the baseline (the switch is counted from it only for a reset).
    pub first: Mark,
    /// The newest sample, which later ones must continue.
    pub last: Mark,
    /// Samples in the chain.
    pub len: u8,
}

/// One counter's memory: the baseline and an unconfirmed chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    /// The last value counted from; `None` before the first sample.
    pub base: Option<Mark>,
    /// Samples waiting for confirmation.
    pub chain: Option<Chain>,
}

/// What one sample did to the day's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    /// Volume counted, m³: `Some(0.0)` when the sample shows the meter standing still,
    /// `None` when it says nothing about the gas (first sample, discarded, unconfirmed).
    pub counted: Option<f64>,
    /// Samples set aside by this step, by reason.
    pub discards: Discards,
}

/// Most volume the meter can register over `dt_us`, m³ (unbounded without a limit).
fn allowed(max_flow_m3_h: Option<f64>, dt_us: i64) -> f64 {
    match max_flow_m3_h {
        None => f64::INFINITY,
        Some(q) => {
            let us = dt_us.max(0).saturating_add(TIME_SLACK_US);
            q * us as f64 / 3.6e9
        }
    }
}

/// Whether `now` continues `from` as a counter can: no real decrease, no jump beyond the flow.
fn fits(from: Mark, now: Mark, max_flow_m3_h: Option<f64>) -> bool {
    let d = now.value - from.value;
    d >= -JITTER_M3 && d <= allowed(max_flow_m3_h, now.at_us.saturating_sub(from.at_us))
}

impl Counter {
    /// Takes one sample `value` read at `at_us` (the sensor's time when it sends one).
    pub fn step(&mut self, value: f64, at_us: i64, max_flow_m3_h: Option<f64>) -> Step {
        let now = Mark { value, at_us };
        let Some(base) = self.base else {
            self.base = Some(now);
            return Step::default();
        };
        let mut step = Step::default();
        if at_us < base.at_us {
            step.discards.out_of_order += 1;
            return step;
        }
        if fits(base, now, max_flow_m3_h) {
            self.refute(&mut step.discards);
            if value >= base.value {
                step.counted = Some(value - base.value);
                self.base = Some(now);
            } else {
                step.counted = Some(0.0);
                step.discards.jitter += 1;
            }
            return step;
        }
        if let Some(chain) = &mut self.chain {
            if at_us < chain.last.at_us {
                step.discards.out_of_order += 1;
                return step;
            }
            if fits(chain.last, now, max_flow_m3_h) {
                if value < chain.last.value {
                    step.discards.jitter += 1;
                    return step;
                }
                chain.last = now;
                chain.len = chain.len.saturating_add(1);
                if chain.len >= chain.kind.confirmations() {
                    self.accept(base, max_flow_m3_h, &mut step);
                }
                return step;
            }
        }
        self.refute(&mut step.discards);
        let kind = if value > base.value {
            ChainKind::Jump
        } else if value < RESET_FRACTION * base.value {
            ChainKind::Reset
        } else {
            ChainKind::Drop
        };
        self.chain = Some(Chain {
            kind,
            first: now,
            last: now,
            len: 1,
        });
        step
    }

    /// The chain is confirmed: it becomes the baseline.
    fn accept(&mut self, base: Mark, max_flow_m3_h: Option<f64>, step: &mut Step) {
        let Some(chain) = self.chain.take() else {
            return;
        };
        let mut counted = chain.last.value - chain.first.value;
        let since_reset_plausible = chain.first.value
            <= allowed(max_flow_m3_h, chain.first.at_us.saturating_sub(base.at_us));
        if chain.kind == ChainKind::Reset && since_reset_plausible {
            counted += chain.first.value;
        } else {
            step.discards.meter_change += 1;
        }
        step.counted = Some(counted);
        self.base = Some(chain.last);
    }

    /// A sample fits the baseline again: the pending chain was never gas.
    fn refute(&mut self, discards: &mut Discards) {
        if let Some(chain) = self.chain.take() {
            let n = u32::from(chain.len);
            match chain.kind {
                ChainKind::Drop => discards.out_of_order += n,
                ChainKind::Reset | ChainKind::Jump => discards.glitch += n,
            }
        }
    }
}
