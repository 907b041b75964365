use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable};

use super::*;
use crate::store::Store;
use crate::store::writer::{self, Incoming, WriterConfig};

fn reading(presion: f64, extra: Option<f64>) -> Reading {
    let mut values = [None; CHANNELS];
    values[0] = Some(presion);
    Reading {
        values,
        extra: extra.map(|v| ("ph".to_string(), v)).into_iter().collect(),
        sensor_ts_ms: None,
        source: "t".into(),
        clock: Default::default(),
    }
}

fn rollups_of(store: &Store) -> Vec<((u64, i64), Rollup)> {
    let db = store.db().expect("db");
    let txn = db.begin_read().expect("read");
    let t = txn.open_table(ROLLUPS).expect("table");
    t.iter()
        .expect("iter")
        .map(|row| {
            let (k, v) = row.expect("row");
            (k.value(), decode(v.value()).expect("decode"))
        })
        .collect()
}

/// Readings of two stages across three buckets, written by the real writer.
fn write(store: &Store, t0: i64) {
    let (w, join) = writer::spawn(
        store.clone(),
        WriterConfig::new(Duration::from_millis(20), 1000, Default::default()),
    )
    .expect("writer");
    for i in 0..30i64 {
        let stage = 1 + (i % 2) as u64;
        let ts_us = t0 + i * 60_000_000; // one a minute: 3 buckets
        w.submit(Incoming {
            stage,
            ts_us,
            reading: reading(1000.0 + i as f64, (i % 3 == 0).then_some(7.0)),
        })
        .expect("submit");
    }
    w.flush().expect("flush");
    drop(w);
    join.join().expect("join");
}

#[test]
fn the_writer_keeps_ten_minute_statistics_per_stage() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("store");
    let t0 = 1_764_500_400_000_000i64; // a bucket boundary
    assert_eq!(t0 % ROLLUP_US, 0);
    write(&store, t0);
    let rows = rollups_of(&store);
    assert_eq!(rows.len(), 6, "3 buckets × 2 stages");
    let ((stage, start), first) = &rows[0];
    assert_eq!((*stage, *start), (1, t0 / 1_000_000));
    // Stage 1 has the even minutes 0, 2, .., 8 of the first bucket.
    assert_eq!(first.count, 5);
    let p = first.channels[0].as_ref().expect("presion");
    assert_eq!((p.min, p.max, p.count), (1000.0, 1008.0, 5));
    assert_eq!(p.mean(), 1004.0);
    let ph = &first.extra[0];
    assert_eq!((ph.0.as_str(), ph.1.count), ("ph", 2), "minutes 0 and 6");
    store.close().expect("close");
}

#[test]
fn rollups_built_for_an_older_store_equal_the_writers() {
    let t0 = 1_764_500_400_000_000i64;
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("store");
    write(&store, t0);
    let expected = rollups_of(&store);
    // Make it a store from before rollups: readings, no rollups.
    {
        let db = store.db().expect("db");
        let txn = db.begin_write().expect("write");
        txn.delete_table(ROLLUPS).expect("drop");
        txn.commit().expect("commit");
    }
    store.close().expect("close");
    let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("reopen");
    assert!(rollups_of(&store).is_empty());
    // The writer builds them in the background, then keeps folding new readings.
    write(&store, t0 + 30 * 60_000_000);
    let rows = rollups_of(&store);
    assert_eq!(rows.len(), 12);
    assert_eq!(&rows[..3], &expected[..3], "stage 1, older buckets");
    let cursor = {
        let db = store.db().expect("db");
        let txn = db.begin_read().expect("read");
        load_cursor(&txn.open_table(META).expect("meta")).expect("cursor")
    };
    assert_eq!(cursor, None, "nothing left to build");
    let total: u64 = rows.iter().map(|(_, r)| r.count).sum();
    assert_eq!(total, 60, "every reading counted once");
    store.close().expect("close");
}

#[test]
fn a_reading_ahead_of_the_walk_is_left_for_it() {
    assert!(folded_on_insert(None, (1, 5)));
    assert!(folded_on_insert(Some((2, 0)), (1, 5)));
    assert!(!folded_on_insert(Some((1, 5)), (1, 5)));
    assert!(!folded_on_insert(Some((1, 5)), (3, 0)));
}

#[test]
fn long_charts_from_rollups_equal_charts_from_readings() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("store");
    let t0 = 1_764_500_400_000_000i64;
    write(&store, t0);
    let (from, to) = (t0 - ROLLUP_US, t0 + 6 * ROLLUP_US);
    let db = store.db().expect("db");
    let txn = db.begin_read().expect("read");
    assert!(covers(&txn, from, to, 2 * ROLLUP_US).expect("covers"));
    assert!(!covers(&txn, from + 1, to, 2 * ROLLUP_US).expect("covers"));
    for stage in [None, Some(2)] {
        let fast = buckets(&txn, stage, from, to, 2 * ROLLUP_US).expect("rollups");
        let raw = store
            .raw_buckets(&txn, stage, from, to, 2 * ROLLUP_US)
            .expect("raw");
        assert_eq!(fast.len(), 2);
        assert_eq!(format!("{fast:?}"), format!("{raw:?}"));
    }
    drop(txn);
    drop(db);
    store.close().expect("close");
}
