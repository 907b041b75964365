//! Stored forms of earlier versions, kept as their own structs so that later changes to the
//! live types never change how old rows decode.

use serde::Deserialize;

use crate::reading::{CHANNELS, Reading};
use crate::store::daily::{ChannelStats, Daily, MeterDay};

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
        }
    }
}

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
