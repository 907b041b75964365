use std::time::Duration;

use redb::{ReadableDatabase, ReadableTableMetadata};

use super::*;
use crate::reading::{CHANNELS, Reading};
use crate::store::tables::{DAILY, ROLLUPS};
use crate::store::writer::{self, Incoming, WriterConfig};

const DAY_US: i64 = 86_400 * 1_000_000;

fn reading(v: f64) -> Reading {
    let mut values = [None; CHANNELS];
    values[0] = Some(v);
    Reading {
        values,
        extra: vec![],
        sensor_ts_ms: None,
        source: "t".into(),
        clock: Default::default(),
    }
}

/// Ten days of readings of stages 1 and 2 (one an hour), the last one just now.
fn store_with_days(dir: &Path) -> (Store, i64) {
    let store = Store::open(dir, 4, chrono_tz::UTC).expect("store");
    let (w, join) = writer::spawn(
        store.clone(),
        WriterConfig::new(Duration::from_millis(20), 10_000, Default::default()),
    )
    .expect("writer");
    let now = crate::sitetime::now_us();
    for h in (0..240i64).rev() {
        for stage in 1..=2u64 {
            w.submit(Incoming {
                stage,
                ts_us: now - h * 3_600_000_000,
                reading: reading(h as f64),
            })
            .expect("submit");
        }
    }
    w.flush().expect("flush");
    drop(w);
    join.join().expect("join");
    (store, now)
}

fn counts(store: &Store) -> (u64, u64, u64) {
    let db = store.db().expect("db");
    let txn = db.begin_read().expect("read");
    (
        crate::store::readings::count(&txn.open_table(READINGS).expect("r")).expect("count"),
        txn.open_table(DAILY).expect("d").len().expect("len"),
        txn.open_table(ROLLUPS).expect("u").len().expect("len"),
    )
}

#[test]
fn age_pruning_removes_only_old_raw_readings_and_keeps_what_consumers_need() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, now) = store_with_days(dir.path());
    let (raw, daily, rollups) = counts(&store);
    assert_eq!(raw, 480);
    // A forwarder still needs everything from 8 days ago on.
    store
        .set_consumer_cursor("bridge", now - 8 * DAY_US)
        .expect("cursor");
    let removed = store.prune_raw(now - 3 * DAY_US, u64::MAX).expect("prune");
    // Hours 239..=193 of both stages (older than 8 days) only: 2 × 47.
    assert_eq!(removed, 94);
    store.remove_consumer("bridge").expect("forget");
    let removed = store.prune_raw(now - 3 * DAY_US, u64::MAX).expect("prune");
    // Now down to 3 days: hours 192..=73, both stages.
    assert_eq!(removed, 2 * 120);
    let (raw2, daily2, rollups2) = counts(&store);
    assert_eq!(raw2, 480 - 94 - 240);
    assert_eq!((daily2, rollups2), (daily, rollups), "aggregates untouched");
    // The oldest kept reading is from 72 h ago; the horizon is recorded for reindex.
    let db = store.db().expect("db");
    let txn = db.begin_read().expect("read");
    let meta = txn.open_table(META).expect("meta");
    assert_eq!(
        meta.get(meta_key::PRUNED_TOTAL)
            .expect("g")
            .map(|v| v.value()),
        Some(334)
    );
    let kept = meta
        .get(meta_key::RAW_KEPT_FROM_US)
        .expect("g")
        .map(|v| v.value() as i64)
        .expect("kept");
    assert!(kept > now - 73 * 3_600_000_000 && kept <= now - 72 * 3_600_000_000 + 1);
    drop(meta);
    drop(txn);
    drop(db);
    store.close().expect("close");
}

#[test]
fn readings_not_yet_in_a_rollup_are_never_pruned() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, now) = store_with_days(dir.path());
    // As if rollups of an older store were still being built up to stage 1, 100 h ago.
    {
        let db = store.db().expect("db");
        let txn = db.begin_write().expect("write");
        {
            let mut meta = txn.open_table(META).expect("meta");
            meta.insert(meta_key::ROLLUP_CURSOR_STAGE, 1)
                .expect("stage");
            meta.insert(
                meta_key::ROLLUP_CURSOR_US,
                (now - 100 * 3_600_000_000) as u64,
            )
            .expect("us");
        }
        txn.commit().expect("commit");
    }
    let removed = store.prune_raw(i64::MAX, u64::MAX).expect("prune");
    assert_eq!(removed, 139, "stage 1's hours 239..=101 only");
    store.close().expect("close");
}

#[test]
fn the_oldest_readings_go_first_across_stages() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, now) = store_with_days(dir.path());
    let removed = store.prune_raw(i64::MAX, 10).expect("prune");
    assert_eq!(removed, 10);
    let page = store.readings(None, i64::MIN, i64::MAX, 4).expect("page");
    let oldest = page.readings.iter().map(|r| r.ts_us).min().expect("some");
    // Oldest first (within an hour of slack): both stages lost hours 239..=235.
    assert_eq!(oldest, now - 234 * 3_600_000_000);
    let stages: Vec<u64> = page.readings.iter().map(|r| r.stage).collect();
    assert_eq!(stages, vec![1, 2, 1, 2]);
    store.close().expect("close");
}
