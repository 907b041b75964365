use std::path::Path;
use std::time::Duration;

use super::*;
use crate::reading::{CHANNELS, Reading, TimeMark};
use crate::store::writer::{self, Incoming, WriterConfig};

fn reading(v: f64, clock: TimeMark) -> Reading {
    let mut values = [None; CHANNELS];
    values[0] = Some(v);
    Reading {
        values,
        extra: vec![],
        sensor_ts_ms: None,
        source: "t".into(),
        clock,
    }
}

/// Stores `items` (stage, receive time, mark) through the writer with forwarding on.
fn store_items(dir: &Path, items: &[(u64, i64, TimeMark)]) -> Store {
    let store = Store::open(dir, 4, chrono_tz::UTC).expect("store");
    let cfg = WriterConfig {
        forward: true,
        ..WriterConfig::new(Duration::from_millis(20), 10_000, Default::default())
    };
    let (w, join) = writer::spawn(store.clone(), cfg).expect("writer");
    for (i, (stage, ts_us, clock)) in items.iter().enumerate() {
        w.submit(Incoming {
            stage: *stage,
            ts_us: *ts_us,
            reading: reading(i as f64, *clock),
        })
        .expect("submit");
    }
    w.flush().expect("flush");
    drop(w);
    join.join().expect("join");
    store
}

#[test]
fn every_reading_gets_a_seq_that_never_repeats_even_when_times_do() {
    let dir = tempfile::tempdir().expect("tmp");
    let now = crate::sitetime::now_us();
    // The same receive time on two stages, and a clock that stepped back.
    let items = [
        (1, now, TimeMark::Synced),
        (2, now, TimeMark::Synced),
        (1, now - 5_000_000, TimeMark::Synced),
        (1, now - 5_000_000, TimeMark::Synced),
    ];
    let store = store_items(dir.path(), &items);
    let q = store.outbox_batch(0, u64::MAX, 100).expect("batch");
    assert_eq!(q.len(), 4);
    assert!(
        q.windows(2).all(|w| w[0].seq < w[1].seq),
        "strictly increasing"
    );
    assert!(q.iter().all(|r| r.reading.is_some()));
    assert!(q[0].seq >= now as u64, "at least the receive time in µs");
    let st = store.outbox_state().expect("state");
    assert_eq!(
        (st.waiting, st.tail_seq, st.last_seq),
        (4, q[3].seq, q[3].seq)
    );

    // Acknowledged entries leave the queue; new ones continue above the last seq.
    store.outbox_ack(&[q[0].seq, q[1].seq]).expect("ack");
    let rest = store.outbox_batch(0, u64::MAX, 100).expect("batch");
    assert_eq!(
        rest.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![q[2].seq, q[3].seq]
    );
    store.close().expect("close");
    let store = store_items(dir.path(), &[(1, now - 10_000_000, TimeMark::Synced)]);
    let all = store.outbox_batch(0, u64::MAX, 100).expect("batch");
    assert_eq!(all.len(), 3);
    assert!(all[2].seq > q[3].seq, "a restart never reuses a seq");
    store.close().expect("close");
}

#[test]
fn re_dating_moves_the_queue_entry_with_its_reading() {
    let dir = tempfile::tempdir().expect("tmp");
    let now = crate::sitetime::now_us();
    let old = now - 3_600_000_000;
    let store = store_items(
        dir.path(),
        &[(1, old, TimeMark::Unsynced), (1, old + 1, TimeMark::Synced)],
    );
    let before = store.outbox_batch(0, u64::MAX, 10).expect("batch");
    let by = 1_800_000_000;
    {
        let db = store.db().expect("db");
        let txn = db.begin_write().expect("write");
        crate::store::redate::redate(
            &txn,
            chrono_tz::UTC,
            Default::default(),
            (old - 1, old + 10, by),
            &|| {},
        )
        .expect("redate");
        txn.commit().expect("commit");
    }
    let after = store.outbox_batch(0, u64::MAX, 10).expect("batch");
    assert_eq!(after.len(), 2);
    assert_eq!(after[0].seq, before[0].seq, "same seq");
    assert_eq!(after[0].ts_us, old + by, "new time");
    assert!(matches!(
        after[0].reading.as_ref().map(|r| r.clock),
        Some(TimeMark::Redated { .. })
    ));
    assert_eq!((after[1].seq, after[1].ts_us), (before[1].seq, old + 1));
    store.close().expect("close");
}

#[test]
fn queued_readings_are_pruned_only_when_allowed_and_the_gap_is_recorded() {
    let dir = tempfile::tempdir().expect("tmp");
    let now = crate::sitetime::now_us();
    let hour = 3_600_000_000i64;
    let items: Vec<_> = (0..10)
        .map(|h| (1, now - (10 - h) * hour, TimeMark::Synced))
        .collect();
    let store = store_items(dir.path(), &items);
    let q = store.outbox_batch(0, u64::MAX, 100).expect("batch");
    // The first four were forwarded.
    store
        .outbox_ack(&q[..4].iter().map(|r| r.seq).collect::<Vec<_>>())
        .expect("ack");
    assert_eq!(
        store.prune_raw(i64::MAX, u64::MAX).expect("prune"),
        4,
        "forwarded only"
    );
    assert_eq!(store.outbox_state().expect("state").lost_total, 0);
    // Critically full: two more go, and the queue says which seqs were lost.
    assert_eq!(store.prune_raw_queued(i64::MAX, 2).expect("prune"), 2);
    let st = store.outbox_state().expect("state");
    assert_eq!(st.waiting, 4);
    assert_eq!(st.lost_total, 2);
    assert_eq!(st.gap, Some((q[4].seq, q[5].seq)));
    assert_eq!(
        store.outbox_batch(0, u64::MAX, 100).expect("batch")[0].seq,
        q[6].seq
    );
    store.close().expect("close");
}
