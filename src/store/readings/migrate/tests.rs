use std::path::Path;

use redb::{Database, ReadableDatabase, TableHandle};

use super::*;
use crate::reading::{CHANNELS, TimeMark};
use crate::store::codec::encode_reading;
use crate::store::readings::{count, range};
use crate::store::tables::{META, meta_key};
use crate::store::{DB_FILE, SCHEMA_VERSION, Store};

fn reading(i: i64) -> Reading {
    let mut values = [None; CHANNELS];
    values[0] = Some(1006.0 + (i % 17) as f64 * 0.1);
    values[1] = Some(35.0 + (i % 11) as f64 * 0.5);
    Reading {
        values,
        extra: Vec::new(),
        sensor_ts_ms: None,
        source: "Prueba".into(),
        clock: if i % 7 == 0 {
            TimeMark::Unsynced
        } else {
            TimeMark::Synced
        },
    }
}

/// Writes a store file the way schema version 2 had it: one row per reading.
fn old_store(dir: &Path, per_stage: &[(u64, i64)]) {
    let store = Store::open(dir, 4, chrono_tz::UTC).expect("store");
    store.close().expect("close");
    let db = Database::open(dir.join(DB_FILE)).expect("db");
    let txn = db.begin_write().expect("write");
    txn.delete_table(READINGS).expect("delete");
    {
        let mut t = txn.open_table(LEGACY_READINGS).expect("legacy");
        for &(stage, n) in per_stage {
            for i in 0..n {
                let bytes = encode_reading(&reading(i), Vec::new()).expect("encode");
                t.insert(
                    (stage, 1_764_500_000_000_000 + i * 100_000),
                    bytes.as_slice(),
                )
                .expect("insert");
            }
        }
        txn.open_table(META)
            .expect("meta")
            .insert(meta_key::SCHEMA, 2)
            .expect("schema");
    }
    txn.commit().expect("commit");
}

#[test]
fn an_older_store_has_its_readings_moved_into_chunks_when_opened() {
    let dir = tempfile::tempdir().expect("tmp");
    // More than one transaction's worth, over two stages.
    old_store(dir.path(), &[(1, 30_000), (2, 12_345)]);
    let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("open");
    assert_eq!(store.ping().expect("ping"), SCHEMA_VERSION);
    {
        let db = store.db().expect("db");
        let txn = db.begin_read().expect("read");
        let names: Vec<String> = txn
            .list_tables()
            .expect("tables")
            .map(|t| t.name().to_string())
            .collect();
        assert!(!names.contains(&LEGACY_READINGS.name().to_string()));
        let t = txn.open_table(READINGS).expect("chunks");
        assert_eq!(count(&t).expect("count"), 42_345);
        for (stage, n) in [(1u64, 30_000i64), (2, 12_345)] {
            let rows: Vec<_> = range(&t, stage, i64::MIN, i64::MAX)
                .expect("range")
                .collect::<Result<_, _>>()
                .expect("rows");
            assert_eq!(rows.len() as i64, n);
            for (i, ((s, ts), r)) in rows.into_iter().enumerate() {
                let want = reading(i as i64);
                assert_eq!((s, ts), (stage, 1_764_500_000_000_000 + i as i64 * 100_000));
                assert_eq!(r.values, want.values);
                assert_eq!(r.clock, want.clock);
            }
        }
    }
    store.close().expect("close");
    // Opening it again changes nothing.
    let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("reopen");
    assert_eq!(store.raw_count().expect("count"), 42_345);
    store.close().expect("close");
}

#[test]
fn a_move_interrupted_half_way_carries_on_at_the_next_open() {
    let dir = tempfile::tempdir().expect("tmp");
    old_store(dir.path(), &[(1, 50_000)]);
    // One transaction of the move committed, then the power went.
    {
        let db = Database::open(dir.path().join(DB_FILE)).expect("db");
        let txn = db.begin_write().expect("write");
        txn.open_table(READINGS).expect("chunks");
        txn.commit().expect("commit");
        let txn = db.begin_write().expect("write");
        {
            let mut legacy = txn.open_table(LEGACY_READINGS).expect("legacy");
            let mut chunks = txn.open_table(READINGS).expect("chunks");
            let mut rows = Vec::new();
            for row in legacy.iter().expect("iter").take(BATCH) {
                let (k, v) = row.expect("row");
                rows.push((k.value().1, decode_reading(v.value()).expect("decode")));
            }
            let last = (1, rows[rows.len() - 1].0);
            insert(&mut chunks, 1, rows).expect("insert");
            legacy.retain_in(..=last, |_, _| false).expect("retain");
        }
        txn.commit().expect("commit");
    }
    let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("open");
    assert_eq!(store.raw_count().expect("count"), 50_000);
    let page = store
        .readings(Some(1), i64::MIN, i64::MAX, 60_000)
        .expect("page");
    assert_eq!(page.readings.len(), 50_000);
    assert!(page.readings.windows(2).all(|w| w[0].ts_us < w[1].ts_us));
    store.close().expect("close");
}

/// Migration speed, for the README (`cargo test --release --lib measure_migration --
/// --ignored --nocapture`).
#[test]
#[ignore]
fn measure_migration() {
    let dir = tempfile::tempdir().expect("tmp");
    let n = 1_000_000;
    old_store(dir.path(), &[(1, n)]);
    let bytes_before = std::fs::metadata(dir.path().join(DB_FILE))
        .expect("size")
        .len();
    let started = std::time::Instant::now();
    let store = Store::open(dir.path(), 64, chrono_tz::UTC).expect("open");
    let took = started.elapsed().as_secs_f64();
    assert_eq!(store.raw_count().expect("count"), n as u64);
    store.close().expect("close");
    let bytes_after = std::fs::metadata(dir.path().join(DB_FILE))
        .expect("size")
        .len();
    println!(
        "moved {n} readings in {took:.2} s ({:.0}/s); file {bytes_before} B before, {bytes_after} B after",
        n as f64 / took
    );
}
