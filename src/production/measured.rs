//! A day's measured gas in the units of the comparison: actual m³ as counted, normal m³ of
//! dry gas, and methane.

use crate::normal_volume::{Conditions, GasSite, Sample};
use crate::reading::Channel;
use crate::store::daily::Daily;

/// Plausible mean digester temperature, °C (the model accepts −10 to 80).
const TEMPERATURE_RANGE: (f64, f64) = (-10.0, 80.0);

/// Gas of one day (or a sum of days).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DayGas {
    /// Actual m³ counted by the meter.
    pub m3: f64,
    /// Normal m³ of dry biogas.
    pub nm3: f64,
    /// Normal m³ of methane.
    pub ch4_nm3: f64,
    /// Whether `nm3` was estimated from the day's mean conditions.
    pub estimated: bool,
}

impl DayGas {
    /// The day's gas by its preferred method; `None` when nothing was measured. A row stored
    /// before normal volumes existed is converted with the day's mean pressure, temperature,
    /// humidity and methane (else the site settings) and marked as estimated.
    pub fn of(row: &Daily, site: &GasSite, methane_share: f64) -> Option<DayGas> {
        let (_, m3, normal) = row.gas.measured_and_normal()?;
        Some(match normal {
            Some(n) => DayGas {
                m3,
                nm3: n.nm3,
                ch4_nm3: n.methane_nm3(methane_share),
                estimated: false,
            },
            None => {
                let applied = day_conditions(row).applied(site, 0);
                let nm3 = m3 * applied.factor;
                DayGas {
                    m3,
                    nm3,
                    ch4_nm3: nm3 * applied.methane.unwrap_or(methane_share),
                    estimated: true,
                }
            }
        })
    }

    /// Adds another day.
    pub fn add(&mut self, o: &DayGas) {
        self.m3 += o.m3;
        self.nm3 += o.nm3;
        self.ch4_nm3 += o.ch4_nm3;
        self.estimated |= o.estimated;
    }
}

/// The day's mean conditions, as if read at time 0.
fn day_conditions(row: &Daily) -> Conditions {
    let mean = |c: Channel| {
        row.channel(c).filter(|s| s.count > 0).map(|s| Sample {
            value: s.mean(),
            at_us: 0,
        })
    };
    Conditions {
        pressure: mean(Channel::Presion),
        temperature: mean(Channel::Temperatura),
        humidity: mean(Channel::Humedad),
        methane: mean(Channel::Calidad),
    }
}

/// The day's mean measured digester temperature, °C, when plausible.
pub fn mean_temperature(row: &Daily) -> Option<f64> {
    row.channel(Channel::Temperatura)
        .filter(|s| s.count > 0)
        .map(|s| s.mean())
        .filter(|t| (TEMPERATURE_RANGE.0..=TEMPERATURE_RANGE.1).contains(t))
}
