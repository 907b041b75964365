use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

use super::*;
use crate::reading::{CHANNELS, Channel, TimeMark};

const T: TableDefinition<Key, &[u8]> = TableDefinition::new("chunks");

fn reading(v: f64) -> Reading {
    let mut values = [None; CHANNELS];
    values[Channel::Temperatura as usize] = Some(v);
    values[Channel::Presion as usize] = Some(1006.0 + v);
    Reading {
        values,
        extra: Vec::new(),
        sensor_ts_ms: None,
        source: "Prueba".into(),
        clock: TimeMark::Synced,
    }
}

fn db() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().expect("tmp");
    let db = Database::create(dir.path().join("t.redb")).expect("db");
    (dir, db)
}

fn write(db: &Database, f: impl FnOnce(&mut Table<Key, &'static [u8]>)) {
    let txn = db.begin_write().expect("write");
    {
        let mut t = txn.open_table(T).expect("table");
        f(&mut t);
    }
    txn.commit().expect("commit");
}

/// Everything the table holds, read back through `from_key`, checking the chunk invariants.
fn contents(db: &Database) -> BTreeMap<Key, f64> {
    let txn = db.begin_read().expect("read");
    let t = txn.open_table(T).expect("table");
    let mut prev: Option<(Key, Key)> = None;
    for row in t.iter().expect("iter") {
        let (k, v) = row.expect("row");
        let rows = chunk::decode(v.value()).expect("chunk");
        assert!(!rows.is_empty(), "empty chunk at {:?}", k.value());
        assert_eq!(rows[0].0, k.value().1, "a chunk's key is its first time");
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0), "times in order");
        assert!(v.value().len() <= MAX_BYTES);
        let last = (k.value().0, rows[rows.len() - 1].0);
        if let Some((_, prev_last)) = prev {
            assert!(prev_last < k.value(), "chunks overlap");
        }
        prev = Some((k.value(), last));
    }
    let mut out = BTreeMap::new();
    for row in from_key(&t, (0, i64::MIN)).expect("rows") {
        let (k, r) = row.expect("row");
        out.insert(k, r.values[Channel::Temperatura as usize].expect("value"));
    }
    assert_eq!(count(&t).expect("count"), out.len() as u64);
    out
}

#[test]
fn appended_readings_fill_chunks_and_come_back_in_order() {
    let (_dir, db) = db();
    for batch in 0..60 {
        write(&db, |t| {
            let rows = (0..100)
                .map(|i| {
                    let n = batch * 100 + i;
                    (n * 100_000, reading((n % 50) as f64 * 0.1))
                })
                .collect();
            insert(t, 1, rows).expect("insert");
        });
    }
    let all = contents(&db);
    assert_eq!(all.len(), 6000);
    let txn = db.begin_read().expect("read");
    let t = txn.open_table(T).expect("table");
    let chunks = t.len().expect("len");
    // Readings of a few bytes each: a handful of full chunks, not one per batch.
    assert!(chunks < 10, "{chunks} chunks");
    assert_eq!(first_ts(&t, 1).expect("first"), Some(0));
    assert_eq!(last_ts(&t, 1).expect("last"), Some(5999 * 100_000));
    assert_eq!(stages(&t).expect("stages"), vec![1]);
    let mid: Vec<i64> = range(&t, 1, 1_234_500_000 / 10 + 1, 300_000_000)
        .expect("range")
        .map(|r| r.expect("row").0.1)
        .collect();
    assert_eq!(mid.first(), Some(&123_500_000));
    assert_eq!(mid.last(), Some(&299_900_000));
    assert_eq!(mid.len(), 1765);
    assert!(get(&t, 1, 4_200_000).expect("get").is_some());
    assert!(get(&t, 1, 4_200_001).expect("get").is_none());
    assert!(get(&t, 2, 4_200_000).expect("get").is_none());
}

#[test]
fn random_inserts_and_removals_match_a_plain_map() {
    let (_dir, db) = db();
    let mut model: BTreeMap<Key, f64> = BTreeMap::new();
    let mut rng = StdRng::seed_from_u64(13);
    for round in 0..200 {
        let stage = rng.random_range(1..4u64);
        if round % 5 == 4 {
            // Remove some stored times (and some never stored).
            let mut ts: Vec<i64> = model
                .keys()
                .filter(|k| k.0 == stage && rng.random_bool(0.3))
                .map(|k| k.1)
                .collect();
            ts.push(rng.random_range(0..10_000_000));
            ts.sort_unstable();
            ts.dedup();
            let expected = ts
                .iter()
                .filter(|t| model.contains_key(&(stage, **t)))
                .count();
            write(&db, |t| {
                assert_eq!(remove(t, stage, &ts).expect("remove"), expected);
            });
            for t in ts {
                model.remove(&(stage, t));
            }
        } else {
            // A batch anywhere: appended, in the middle, before everything, over stored times.
            let base = rng.random_range(0..10_000_000i64);
            let mut rows: BTreeMap<i64, f64> = BTreeMap::new();
            for _ in 0..rng.random_range(1..400) {
                let ts = base + rng.random_range(0..2_000_000);
                rows.insert(ts, rng.random_range(0..1000) as f64 / 10.0);
            }
            for (ts, v) in &rows {
                model.insert((stage, *ts), *v);
            }
            write(&db, |t| {
                let rows = rows.into_iter().map(|(ts, v)| (ts, reading(v))).collect();
                insert(t, stage, rows).expect("insert");
            });
        }
        if round % 20 == 0 {
            assert_eq!(contents(&db), model);
        }
    }
    assert_eq!(contents(&db), model);
    let txn = db.begin_read().expect("read");
    let t = txn.open_table(T).expect("table");
    for stage in 1..4u64 {
        let (from, to) = (3_000_000, 7_000_000);
        let got: Vec<Key> = range(&t, stage, from, to)
            .expect("range")
            .map(|r| r.expect("row").0)
            .collect();
        let want: Vec<Key> = model
            .range((stage, from)..(stage, to))
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(got, want);
        let first = model.range((stage, i64::MIN)..=(stage, i64::MAX)).next();
        assert_eq!(first_ts(&t, stage).expect("first"), first.map(|(k, _)| k.1));
        let last = model
            .range((stage, i64::MIN)..=(stage, i64::MAX))
            .next_back();
        assert_eq!(last_ts(&t, stage).expect("last"), last.map(|(k, _)| k.1));
    }
    // From the middle of one stage on, through the later ones.
    let start = (2, 5_000_000);
    let got: Vec<Key> = from_key(&t, start)
        .expect("rows")
        .map(|r| r.expect("row").0)
        .collect();
    let want: Vec<Key> = model.range(start..).map(|(k, _)| *k).collect();
    assert_eq!(got, want);
}
