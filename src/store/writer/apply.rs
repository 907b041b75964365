//! What one writer transaction does with a batch: unique keys for the readings, the readings
//! themselves, their daily aggregates, meter states and rollups.

use std::collections::{BTreeMap, HashMap};

use redb::{ReadableTable, WriteTransaction};

use super::Incoming;
use crate::reading::Reading;
use crate::store::codec::{decode_daily, decode_meter, encode_daily, encode_meter};
use crate::store::daily::fold::Fold;
use crate::store::daily::{Daily, MeterRules, MeterState};
use crate::store::readings as stored;
use crate::store::rollups::{self, RollupFold};
use crate::store::tables::{DAILY, META, METERS, READINGS, ROLLUPS};
use crate::store::{Store, StoreError};

/// A reading stamped at most this far behind the newest stored key is stored right after it
/// (a shift of at most 100 ms) instead of searching for a free microsecond near its own stamp.
const BURST_SHIFT_US: i64 = 100_000;

/// What the writer keeps between transactions to avoid reading it back: meter states and the
/// newest key per stage. Cloned per transaction, kept only when it commits.
#[derive(Clone, Default)]
pub(super) struct Caches {
    pub meters: HashMap<String, MeterState>,
    pub last_key: HashMap<u64, i64>,
}

impl Caches {
    /// Loads the meter states from the store (the newest keys are read on demand).
    pub fn load(store: &Store) -> Result<Caches, StoreError> {
        let mut meters = HashMap::new();
        let txn = redb::ReadableDatabase::begin_read(&*store.db()?)?;
        let t = txn.open_table(METERS)?;
        for row in t.iter()? {
            let (k, v) = row?;
            meters.insert(k.value().to_string(), decode_meter(v.value())?);
        }
        Ok(Caches {
            meters,
            last_key: HashMap::new(),
        })
    }
}

/// Inserts `items` and updates daily aggregates, meter states and rollups (and, with
/// `forward`, queues them for the bridge); returns the newest receive time written.
pub(super) fn write_items<'a>(
    txn: &WriteTransaction,
    (tz, rules, forward): (chrono_tz::Tz, MeterRules, bool),
    caches: &mut Caches,
    items: impl Iterator<Item = &'a Incoming>,
) -> Result<Option<i64>, StoreError> {
    let cursor = rollups::load_cursor(&txn.open_table(META)?)?;
    let mut fold = Fold::new(tz, rules, &mut caches.meters);
    let mut rollup = RollupFold::default();
    let mut newest = None;
    let mut written = Vec::new();
    // This transaction's readings per stage, stored together at the end (one chunk rewrite
    // per stage instead of one per reading).
    let mut fresh: BTreeMap<u64, BTreeMap<i64, Reading>> = BTreeMap::new();
    {
        let readings = txn.open_table(READINGS)?;
        let rollup_table = txn.open_table(ROLLUPS)?;
        let daily = txn.open_table(DAILY)?;
        let mut load = |key| -> Result<Option<Daily>, StoreError> {
            daily.get(key)?.map(|v| decode_daily(v.value())).transpose()
        };
        let mut lookup = stored::Lookup::new(&readings);
        for item in items {
            let stage = item.stage;
            let last = match caches.last_key.get(&stage) {
                Some(v) => *v,
                None => stored::last_ts(&readings, stage)?.unwrap_or(i64::MIN),
            };
            // Keys are unique: a reading never overwrites another, even when the clock steps
            // back or two arrive in the same microsecond. A reading just behind the newest key
            // (a burst stamped within the same few microseconds) takes the next free
            // microsecond directly: probing upward from its own stamp would walk the whole
            // dense run of keys the burst wrote, once per reading.
            let mut ts = item.ts_us;
            let pending = fresh.entry(stage).or_default();
            if ts <= last {
                if last - ts <= BURST_SHIFT_US {
                    ts = last + 1;
                } else {
                    while pending.contains_key(&ts) || lookup.get(stage, ts)?.is_some() {
                        ts += 1;
                    }
                }
            }
            pending.insert(ts, item.reading.clone());
            if forward {
                written.push((stage, ts));
            }
            caches.last_key.insert(stage, last.max(ts));
            newest = newest.max(Some(ts));
            fold.apply(stage, ts, &item.reading, &mut load)?;
            if rollups::folded_on_insert(cursor, (stage, ts)) {
                rollup.apply(&rollup_table, stage, ts, &item.reading)?;
            }
        }
    }
    let mut readings = txn.open_table(READINGS)?;
    for (stage, rows) in fresh {
        stored::insert(&mut readings, stage, rows.into_iter().collect())?;
    }
    drop(readings);
    crate::store::outbox::enqueue(txn, &written)?;
    rollup.finish(&mut txn.open_table(ROLLUPS)?)?;
    let (days, touched) = fold.finish();
    let mut daily = txn.open_table(DAILY)?;
    for (key, day) in &days {
        daily.insert(*key, encode_daily(day)?.as_slice())?;
    }
    let mut meter_table = txn.open_table(METERS)?;
    for source in &touched {
        if let Some(m) = caches.meters.get(source) {
            meter_table.insert(source.as_str(), encode_meter(m)?.as_slice())?;
        }
    }
    Ok(newest)
}
