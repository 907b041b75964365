use super::*;

#[test]
fn an_idle_writer_keeps_beating_even_with_a_long_commit_interval() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("store");
    let (handle, join) = spawn(
        store.clone(),
        WriterConfig::new(Duration::from_secs(60), 100, MeterRules::default()),
    )
    .expect("writer");
    let beat = handle.heartbeat();
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(150));
        assert!(
            beat.age() <= TICK + Duration::from_millis(100),
            "{:?}",
            beat.age()
        );
    }
    drop(handle);
    join.join().expect("join");
    store.close().expect("close");
}

#[test]
fn a_burst_in_one_microsecond_keeps_every_reading_in_order() {
    use redb::ReadableDatabase;
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("store");
    let (handle, join) = spawn(
        store.clone(),
        WriterConfig::new(Duration::from_millis(20), 10_000, MeterRules::default()),
    )
    .expect("writer");
    let t0 = 1_764_500_000_000_000i64;
    let n: i32 = 3000;
    for i in 0..n {
        let mut values = [None; crate::reading::CHANNELS];
        values[0] = Some(f64::from(i));
        let reading = Reading {
            values,
            extra: vec![],
            sensor_ts_ms: None,
            source: "t".into(),
            clock: Default::default(),
        };
        // A burst stamped in one microsecond, then one stamped a whole second earlier
        // (a clock step back) that must keep its own time.
        let ts_us = if i == n - 1 { t0 - 1_000_000 } else { t0 };
        handle
            .submit(Incoming {
                stage: 1,
                ts_us,
                reading,
            })
            .expect("submit");
    }
    handle.flush().expect("flush");
    drop(handle);
    join.join().expect("join");
    let db = store.db().expect("db");
    let txn = db.begin_read().expect("read");
    let table = txn
        .open_table(crate::store::tables::READINGS)
        .expect("table");
    let rows: Vec<(i64, f64)> = crate::store::readings::from_key(&table, (0, i64::MIN))
        .expect("rows")
        .map(|row| {
            let ((_, ts), r) = row.expect("row");
            (ts, r.values[0].expect("value"))
        })
        .collect();
    assert_eq!(rows.len(), n as usize, "no reading overwrote another");
    assert_eq!(
        rows[0],
        (t0 - 1_000_000, f64::from(n - 1)),
        "the step back keeps its time"
    );
    for (i, (ts, v)) in rows[1..].iter().enumerate() {
        assert_eq!(
            (*ts, *v),
            (t0 + i as i64, i as f64),
            "burst kept in arrival order"
        );
    }
    drop(table);
    drop(txn);
    drop(db);
    store.close().expect("close");
}

#[test]
fn journaled_readings_a_crash_left_behind_are_stored_once_at_the_next_start() {
    use crate::store::journal::Journal;
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("store");
    // What a run that was killed after journaling two batches left: the records, and a
    // database that never got them.
    {
        let (mut j, _) =
            Journal::open(dir.path(), 1 << 20, store.instance_id(), 0).expect("journal");
        for batch in 0..2i64 {
            let mut rows = Vec::new();
            for i in 0..5i64 {
                let mut values = [None; crate::reading::CHANNELS];
                values[0] = Some((batch * 5 + i) as f64);
                let r = Reading {
                    values,
                    extra: vec![],
                    sensor_ts_ms: None,
                    source: "t".into(),
                    clock: Default::default(),
                };
                rows.push((1u64, 1_764_500_000_000_000 + batch * 5 + i, r));
            }
            j.append(rows.iter().map(|(s, t, r)| (*s, *t, r)))
                .expect("append");
        }
    }
    let count = |store: &Store| {
        let db = store.db().expect("db");
        let txn = db.begin_read().expect("read");
        crate::store::readings::count(&txn.open_table(crate::store::tables::READINGS).expect("t"))
            .expect("count")
    };
    for _ in 0..2 {
        let (handle, join) = spawn(
            store.clone(),
            WriterConfig::new(Duration::from_millis(20), 100, MeterRules::default()),
        )
        .expect("writer");
        handle.flush().expect("flush");
        drop(handle);
        join.join().expect("join");
        assert_eq!(
            count(&store),
            10,
            "applied once, not again at the second start"
        );
    }
    assert_eq!(store.counters().readings_total.load(Ordering::Relaxed), 10);
    store.close().expect("close");
}
