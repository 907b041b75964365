//! A sensor reading as the appliance understands it, independent of how it arrived.

use serde::{Deserialize, Serialize};

/// The known measurement channels. The discriminant is the position in stored rows: append new
/// channels at the end (and raise [`CHANNELS`]), never reorder. Rows are stored length-prefixed
/// (`store::codec`), so older rows simply have the new channel empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Channel {
    /// Digester gas pressure, hPa.
    Presion = 0,
    /// Digester temperature, °C.
    Temperatura = 1,
    /// Humidity, %.
    Humedad = 2,
    /// Methane content of the gas, %.
    Calidad = 3,
    /// Cumulative counter of the gas meter, m³.
    GasTotal = 4,
    /// Gas produced since the previous message, m³.
    CaudalGas = 5,
    /// Legacy per-message gas delta, m³.
    GasFlow = 6,
    /// Instantaneous gas flow, L/min.
    CaudalGasLmin = 7,
    /// Effluent (biol) produced since the previous message, m³.
    CaudalBiol = 8,
    /// Cumulative effluent (biol) counter, m³.
    BiolTotal = 9,
}

/// Number of known channels (size of the per-reading value array).
pub const CHANNELS: usize = 10;

impl Channel {
    /// Every channel in storage order.
    pub const ALL: [Channel; CHANNELS] = [
        Channel::Presion,
        Channel::Temperatura,
        Channel::Humedad,
        Channel::Calidad,
        Channel::GasTotal,
        Channel::CaudalGas,
        Channel::GasFlow,
        Channel::CaudalGasLmin,
        Channel::CaudalBiol,
        Channel::BiolTotal,
    ];

    /// The field name used in the API and WebSocket (the legacy Spanish names sensors send).
    pub fn name(self) -> &'static str {
        match self {
            Channel::Presion => "presion",
            Channel::Temperatura => "temperatura",
            Channel::Humedad => "humedad",
            Channel::Calidad => "calidad",
            Channel::GasTotal => "gas_total_m3",
            Channel::CaudalGas => "caudal_gas",
            Channel::GasFlow => "gas_flow",
            Channel::CaudalGasLmin => "caudal_gas_lmin",
            Channel::CaudalBiol => "caudal_biol",
            Channel::BiolTotal => "biol_total_m3",
        }
    }

    /// Maps a payload field name (Spanish or English alias) to its channel.
    pub fn from_field(field: &str) -> Option<Channel> {
        Some(match field {
            "presion" | "pressure_hpa" => Channel::Presion,
            "temperatura" | "temperature_c" => Channel::Temperatura,
            "humedad" | "humidity_pct" => Channel::Humedad,
            // `Calidad`: as the original system's test sensor spells it.
            "calidad" | "Calidad" | "methane_pct" => Channel::Calidad,
            "gas_total_m3" => Channel::GasTotal,
            "caudal_gas" => Channel::CaudalGas,
            "gas_flow" => Channel::GasFlow,
            "caudal_gas_lmin" | "gas_flow_lmin" => Channel::CaudalGasLmin,
            "caudal_biol" | "biol_flow" => Channel::CaudalBiol,
            "biol_total_m3" => Channel::BiolTotal,
            _ => return None,
        })
    }

    /// Values outside this range are physically absurd for the channel and reject the payload.
    pub fn plausible(self) -> (f64, f64) {
        match self {
            Channel::Presion => (0.0, 20_000.0),
            Channel::Temperatura => (-50.0, 150.0),
            Channel::Humedad | Channel::Calidad => (0.0, 100.0),
            Channel::GasTotal | Channel::BiolTotal => (0.0, 1.0e9),
            Channel::CaudalGas | Channel::GasFlow | Channel::CaudalBiol => (0.0, 1.0e4),
            Channel::CaudalGasLmin => (0.0, 1.0e6),
        }
    }
}

/// One accepted reading, as stored (without its key) and broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Values of the known channels, indexed by `Channel as usize` (stored length-prefixed,
    /// so a channel can be added).
    #[serde(with = "crate::store::codec::channel_array")]
    pub values: [Option<f64>; CHANNELS],
    /// Other numeric fields, by name (bounded in count and name length at parse time).
    pub extra: Vec<(String, f64)>,
    /// The sensor's own timestamp (ms since the epoch) when it sent one.
    pub sensor_ts_ms: Option<i64>,
    /// Topic the reading arrived on.
    pub source: String,
    /// Whether the appliance's clock could be trusted when the reading was stamped.
    pub clock: TimeMark,
}

/// How far the stored time of a reading can be trusted (see `clock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TimeMark {
    /// Stamped by a synchronised (or administrator-set) clock.
    #[default]
    Synced,
    /// Stamped while the clock was not synchronised: its day may be wrong until the clock is
    /// set, when it is re-dated.
    Unsynced,
    /// Stamped while unsynchronised, then moved by the measured clock jump (µs).
    Redated { by_us: i64 },
}

impl TimeMark {
    /// The API's name of the mark (`null` for a trusted time).
    pub fn label(self) -> Option<&'static str> {
        match self {
            TimeMark::Synced => None,
            TimeMark::Unsynced => Some("no_sincronizada"),
            TimeMark::Redated { .. } => Some("corregida"),
        }
    }
}

impl Reading {
    /// The value of `channel`, if the payload carried it.
    pub fn get(&self, channel: Channel) -> Option<f64> {
        self.values[channel as usize]
    }
}
