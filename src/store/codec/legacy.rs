//! Stored forms of earlier versions, kept as their own structs so that later changes to the
//! live types never change how old rows decode.

use serde::Deserialize;

use crate::reading::{CHANNELS, Reading, TimeMark};
use crate::store::daily::counter::{Counter, Mark, UNKNOWN_TIME};
use crate::store::daily::meter::FlowSample;
use crate::store::daily::{ChannelStats, Daily, Discards, MeterDay, MeterState};

/// Channels the first version stored, as a fixed-length tuple.
const V1_CHANNELS: usize = 10;

/// Copies a version-1 fixed array into this build's array (never shorter than 10).
fn widen<T: Clone, U>(
    old: &[Option<T>; V1_CHANNELS],
    f: impl Fn(&T) -> U,
) -> [Option<U>; CHANNELS] {
    std::array::from_fn(|i| old.get(i).and_then(|v| v.as_ref().map(&f)))
}

/// A reading as version 1 stored it.
#[derive(Deserialize)]
pub(super) struct ReadingV1 {
    values: [Option<f64>; V1_CHANNELS],
    extra: Vec<(String, f64)>,
    sensor_ts_ms: Option<i64>,
    source: String,
}

impl From<ReadingV1> for Reading {
    fn from(o: ReadingV1) -> Reading {
        Reading {
            values: widen(&o.values, |v| *v),
            extra: o.extra,
            sensor_ts_ms: o.sensor_ts_ms,
            source: o.source,
            clock: TimeMark::Synced,
        }
    }
}

/// A reading as version 2 stored it (length-prefixed channels, no clock mark).
#[derive(Deserialize)]
pub(super) struct ReadingV2 {
    #[serde(with = "crate::store::codec::channel_array")]
    values: [Option<f64>; CHANNELS],
    extra: Vec<(String, f64)>,
    sensor_ts_ms: Option<i64>,
    source: String,
}

impl From<ReadingV2> for Reading {
    fn from(o: ReadingV2) -> Reading {
        Reading {
            values: o.values,
            extra: o.extra,
            sensor_ts_ms: o.sensor_ts_ms,
            source: o.source,
            clock: TimeMark::Synced,
        }
    }
}

/// Channel statistics as versions 1 and 2 stored them.
#[derive(Deserialize, Clone)]
pub(super) struct ChannelStatsV1 {
    count: u64,
    min: f64,
    max: f64,
    sum: f64,
}

impl From<&ChannelStatsV1> for ChannelStats {
    fn from(o: &ChannelStatsV1) -> ChannelStats {
        ChannelStats {
            count: o.count,
            min: o.min,
            max: o.max,
            sum: o.sum,
        }
    }
}

/// A meter's day as versions 1 and 2 stored it.
#[derive(Deserialize)]
pub(super) struct MeterDayV1 {
    from_counter: Option<f64>,
    from_delta: Option<f64>,
    from_legacy: Option<f64>,
    from_flow: Option<f64>,
}

impl From<MeterDayV1> for MeterDay {
    fn from(o: MeterDayV1) -> MeterDay {
        MeterDay {
            from_counter: o.from_counter,
            from_delta: o.from_delta,
            from_legacy: o.from_legacy,
            from_flow: o.from_flow,
            flow_covered_us: 0,
            discards: Default::default(),
            normal: Default::default(),
        }
    }
}

/// A daily aggregate as version 1 stored it.
#[derive(Deserialize)]
pub(super) struct DailyV1 {
    count: u64,
    first_us: i64,
    last_us: i64,
    channels: [Option<ChannelStatsV1>; V1_CHANNELS],
    extra: Vec<(String, ChannelStatsV1)>,
    gas: MeterDayV1,
    biol: MeterDayV1,
}

impl From<DailyV1> for Daily {
    fn from(o: DailyV1) -> Daily {
        Daily {
            count: o.count,
            first_us: o.first_us,
            last_us: o.last_us,
            channels: widen(&o.channels, |s| ChannelStats::from(s)),
            extra: o.extra.iter().map(|(n, s)| (n.clone(), s.into())).collect(),
            gas: o.gas.into(),
            biol: o.biol.into(),
        }
    }
}

/// A daily aggregate as version 2 stored it: version 1 with length-prefixed channels.
#[derive(Deserialize)]
pub(super) struct DailyV2 {
    count: u64,
    first_us: i64,
    last_us: i64,
    #[serde(with = "crate::store::codec::channel_array")]
    channels: [Option<ChannelStatsV1>; CHANNELS],
    extra: Vec<(String, ChannelStatsV1)>,
    gas: MeterDayV1,
    biol: MeterDayV1,
}

impl From<DailyV2> for Daily {
    fn from(o: DailyV2) -> Daily {
        Daily {
            count: o.count,
            first_us: o.first_us,
            last_us: o.last_us,
            channels: o.channels.map(|c| c.as_ref().map(ChannelStats::from)),
            extra: o.extra.iter().map(|(n, s)| (n.clone(), s.into())).collect(),
            gas: o.gas.into(),
            biol: o.biol.into(),
        }
    }
}

/// A meter state as version 1 stored it: last counter values without their time, and the
/// last flow sample at its receive time.
#[derive(Deserialize)]
pub(super) struct MeterStateV1 {
    gas_total: Option<f64>,
    biol_total: Option<f64>,
    flow: Option<(i64, f64)>,
}

/// A baseline whose time was not stored.
fn untimed(value: Option<f64>) -> Counter {
    Counter {
        base: value.map(|value| Mark {
            value,
            at_us: UNKNOWN_TIME,
        }),
        chain: None,
    }
}

impl From<MeterStateV1> for MeterState {
    fn from(o: MeterStateV1) -> MeterState {
        MeterState {
            gas_total: untimed(o.gas_total),
            biol_total: untimed(o.biol_total),
            flow: o.flow.map(|(at_us, lmin)| FlowSample { at_us, lmin }),
            recent: Vec::new(),
            conditions: Default::default(),
        }
    }
}

/// A meter's day as version 3 stored it: version 1 plus the flow coverage and the discarded
/// samples, without normal volumes.
#[derive(Deserialize)]
pub(super) struct MeterDayV3 {
    from_counter: Option<f64>,
    from_delta: Option<f64>,
    from_legacy: Option<f64>,
    from_flow: Option<f64>,
    flow_covered_us: i64,
    discards: DiscardsV3,
}

/// Discarded samples as version 3 stored them.
#[derive(Deserialize)]
pub(super) struct DiscardsV3 {
    duplicate: u32,
    out_of_order: u32,
    jitter: u32,
    glitch: u32,
    meter_change: u32,
}

impl From<MeterDayV3> for MeterDay {
    fn from(o: MeterDayV3) -> MeterDay {
        let d = o.discards;
        MeterDay {
            from_counter: o.from_counter,
            from_delta: o.from_delta,
            from_legacy: o.from_legacy,
            from_flow: o.from_flow,
            flow_covered_us: o.flow_covered_us,
            discards: Discards {
                duplicate: d.duplicate,
                out_of_order: d.out_of_order,
                jitter: d.jitter,
                glitch: d.glitch,
                meter_change: d.meter_change,
            },
            normal: Default::default(),
        }
    }
}

/// A daily aggregate as version 3 stored it (no normal volumes: they are estimated from the
/// day's mean conditions until `biogestor reindex` recomputes them).
#[derive(Deserialize)]
pub(super) struct DailyV3 {
    count: u64,
    first_us: i64,
    last_us: i64,
    #[serde(with = "crate::store::codec::channel_array")]
    channels: [Option<ChannelStatsV1>; CHANNELS],
    extra: Vec<(String, ChannelStatsV1)>,
    gas: MeterDayV3,
    biol: MeterDayV3,
}

impl From<DailyV3> for Daily {
    fn from(o: DailyV3) -> Daily {
        Daily {
            count: o.count,
            first_us: o.first_us,
            last_us: o.last_us,
            channels: o.channels.map(|c| c.as_ref().map(ChannelStats::from)),
            extra: o.extra.iter().map(|(n, s)| (n.clone(), s.into())).collect(),
            gas: o.gas.into(),
            biol: o.biol.into(),
        }
    }
}

/// A meter state as version 2 stored it: without the conditions of the gas.
#[derive(Deserialize)]
pub(super) struct MeterStateV2 {
    gas_total: Counter,
    biol_total: Counter,
    flow: Option<FlowSample>,
    recent: Vec<u64>,
}

impl From<MeterStateV2> for MeterState {
    fn from(o: MeterStateV2) -> MeterState {
        MeterState {
            gas_total: o.gas_total,
            biol_total: o.biol_total,
            flow: o.flow,
            recent: o.recent,
            conditions: Default::default(),
        }
    }
}
