use std::os::unix::fs::FileExt;

use super::*;
use crate::reading::{CHANNELS, TimeMark};

fn reading(v: f64) -> Reading {
    let mut values = [None; CHANNELS];
    values[0] = Some(v);
    Reading {
        values,
        extra: Vec::new(),
        sensor_ts_ms: None,
        source: "Prueba".into(),
        clock: TimeMark::Synced,
    }
}

fn entries(n: usize, base: i64) -> Vec<(u64, i64, Reading)> {
    (0..n)
        .map(|i| (1u64, base + i as i64, reading(i as f64)))
        .collect()
}

fn append(j: &mut Journal, batch: &[(u64, i64, Reading)]) -> Result<u64, JournalError> {
    j.append(batch.iter().map(|(s, t, r)| (*s, *t, r)))
}

#[test]
fn records_not_applied_come_back_after_reopen_in_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut j, pending) = Journal::open(dir.path(), 64 * 1024, 7, 0).expect("open");
    assert!(pending.is_empty());
    assert_eq!(append(&mut j, &entries(3, 100)).expect("a"), 1);
    assert_eq!(append(&mut j, &entries(2, 200)).expect("b"), 2);
    assert_eq!(append(&mut j, &entries(1, 300)).expect("c"), 3);
    drop(j);
    // The database applied record 1 before the power cut.
    let (j, pending) = Journal::open(dir.path(), 64 * 1024, 7, 1).expect("reopen");
    let seqs: Vec<u64> = pending.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![2, 3]);
    assert_eq!(pending[0].entries.len(), 2);
    assert_eq!(pending[0].entries[1].ts_us, 201);
    assert_eq!(pending[0].entries[1].reading.values[0], Some(1.0));
    assert_eq!(j.last_seq(), 3);
    let again = j.records_after(2);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].seq, 3);
}

#[test]
fn a_torn_last_record_is_ignored_and_later_appends_continue_the_sequence() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut j, _) = Journal::open(dir.path(), 64 * 1024, 7, 0).expect("open");
    append(&mut j, &entries(3, 100)).expect("a");
    let end_of_first = HEADER_LEN + j.used();
    append(&mut j, &entries(3, 200)).expect("b");
    // Tear the second record: its last bytes never reached the disk.
    let path = dir.path().join(JOURNAL_FILE);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("file");
    f.write_all_at(&[0xff; 8], end_of_first + 40).expect("tear");
    drop(j);
    let (mut j, pending) = Journal::open(dir.path(), 64 * 1024, 7, 0).expect("reopen");
    assert_eq!(pending.len(), 1, "only the intact record");
    assert_eq!(j.last_seq(), 1);
    assert_eq!(append(&mut j, &entries(1, 300)).expect("c"), 2);
    drop(j);
    let (_, pending) = Journal::open(dir.path(), 64 * 1024, 7, 0).expect("reopen");
    assert_eq!(
        pending.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2]
    );
}

#[test]
fn after_a_reset_old_records_are_never_replayed() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut j, _) = Journal::open(dir.path(), 64 * 1024, 7, 0).expect("open");
    for i in 0..5 {
        append(&mut j, &entries(4, i * 10)).expect("append");
    }
    j.reset().expect("reset");
    assert_eq!(j.used(), 0);
    assert_eq!(append(&mut j, &entries(1, 999)).expect("new"), 6);
    drop(j);
    let (_, pending) = Journal::open(dir.path(), 64 * 1024, 7, 5).expect("reopen");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].seq, 6);
    assert_eq!(pending[0].entries[0].ts_us, 999);
}

#[test]
fn a_journal_of_another_store_is_not_replayed() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut j, _) = Journal::open(dir.path(), 64 * 1024, 7, 0).expect("open");
    append(&mut j, &entries(2, 1)).expect("append");
    drop(j);
    // A restored backup is another instance.
    let (j, pending) = Journal::open(dir.path(), 64 * 1024, 8, 0).expect("reopen");
    assert!(pending.is_empty());
    assert_eq!(j.used(), 0);
}

#[test]
fn a_full_journal_refuses_without_writing_and_the_file_is_allocated() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut j, _) = Journal::open(dir.path(), 16 * 1024, 7, 0).expect("open");
    let meta = std::fs::metadata(dir.path().join(JOURNAL_FILE)).expect("meta");
    assert_eq!(meta.len(), 16 * 1024);
    let mut n = 0;
    loop {
        match append(&mut j, &entries(10, n * 10)) {
            Ok(_) => n += 1,
            Err(JournalError::Full) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(n > 10, "{n} records fit");
    drop(j);
    let (_, pending) = Journal::open(dir.path(), 16 * 1024, 7, 0).expect("reopen");
    assert_eq!(pending.len() as i64, n);
}

#[test]
fn records_of_the_first_version_are_still_replayed() {
    let dir = tempfile::tempdir().expect("tmp");
    let (j, _) = Journal::open(dir.path(), 64 * 1024, 7, 0).expect("open");
    // A record as the first version wrote it: one encoded reading per entry.
    let bytes = crate::store::codec::encode_reading(&reading(5.5), Vec::new()).expect("enc");
    let payload = postcard::to_allocvec(&vec![(3u64, 42i64, bytes)]).expect("payload");
    let mut buf = vec![0u8; RECORD_HEAD];
    buf.extend_from_slice(&payload);
    buf[0..4].copy_from_slice(&RECORD_MAGIC_V1.to_le_bytes());
    buf[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    buf[12..20].copy_from_slice(&j.generation.to_le_bytes());
    buf[20..28].copy_from_slice(&1u64.to_le_bytes());
    let crc = crc32fast::hash(&buf[12..]);
    buf[8..12].copy_from_slice(&crc.to_le_bytes());
    j.file.write_all_at(&buf, j.write_at).expect("write");
    drop(j);
    let (mut j, pending) = Journal::open(dir.path(), 64 * 1024, 7, 0).expect("reopen");
    assert_eq!(pending.len(), 1);
    let e = &pending[0].entries[0];
    assert_eq!((e.stage, e.ts_us), (3, 42));
    assert_eq!(e.reading.values[0], Some(5.5));
    // New records follow it in the current format.
    assert_eq!(append(&mut j, &entries(2, 100)).expect("append"), 2);
    drop(j);
    let (_, pending) = Journal::open(dir.path(), 64 * 1024, 7, 0).expect("reopen");
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[1].entries[1].ts_us, 101);
}

#[test]
fn a_batch_of_several_stages_comes_back_in_its_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut j, _) = Journal::open(dir.path(), 64 * 1024, 7, 0).expect("open");
    let batch = vec![
        (1u64, 10i64, reading(1.0)),
        (1, 5, reading(2.0)),
        (2, 7, reading(3.0)),
        (1, 5, reading(4.0)),
    ];
    append(&mut j, &batch).expect("append");
    drop(j);
    let (_, pending) = Journal::open(dir.path(), 64 * 1024, 7, 0).expect("reopen");
    let got: Vec<(u64, i64, Option<f64>)> = pending[0]
        .entries
        .iter()
        .map(|e| (e.stage, e.ts_us, e.reading.values[0]))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, 10, Some(1.0)),
            (1, 5, Some(2.0)),
            (2, 7, Some(3.0)),
            (1, 5, Some(4.0))
        ]
    );
}

#[test]
fn records_of_a_page_or_more_start_on_a_page_and_all_come_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut j, _) = Journal::open(dir.path(), 256 * 1024, 7, 0).expect("open");
    // Readings with noisy values, so a few hundred take more than a page.
    let big = |base: i64| -> Vec<(u64, i64, Reading)> {
        (0..600)
            .map(|i| {
                (
                    1u64,
                    base + i,
                    reading((base + i) as f64 * 1.000_1 + 0.123_456_7),
                )
            })
            .collect()
    };
    append(&mut j, &entries(3, 10)).expect("small");
    let small_end = j.write_at;
    append(&mut j, &big(1000)).expect("big");
    let big_start = small_end.next_multiple_of(HEADER_LEN);
    assert!(
        j.write_at > big_start + HEADER_LEN,
        "the record is larger than a page"
    );
    append(&mut j, &entries(2, 5000)).expect("small after");
    append(&mut j, &big(9000)).expect("big after");
    drop(j);
    let (j, pending) = Journal::open(dir.path(), 256 * 1024, 7, 0).expect("reopen");
    let sizes: Vec<usize> = pending.iter().map(|r| r.entries.len()).collect();
    assert_eq!(sizes, vec![3, 600, 2, 600]);
    assert_eq!(pending[3].entries[599].ts_us, 9599);
    assert_eq!(j.last_seq(), 4);
    // A big record's first page was not shared with the record before it.
    let mut head = [0u8; 4];
    j.file.read_exact_at(&mut head, big_start).expect("read");
    assert_eq!(u32::from_le_bytes(head), RECORD_MAGIC);
}

/// How many readings of a five-channel sensor a 4 MiB journal holds, for the README
/// (`cargo test --release --lib journal_capacity -- --ignored --nocapture`).
#[test]
#[ignore]
fn journal_capacity() {
    use crate::reading::Channel;
    for batch in [10usize, 600] {
        let dir = tempfile::tempdir().expect("tmp");
        let (mut j, _) = Journal::open(dir.path(), 4 << 20, 7, 0).expect("open");
        let (mut n, mut gas) = (0usize, 0.0f64);
        loop {
            let rows: Vec<(u64, i64, Reading)> = (0..batch)
                .map(|k| {
                    let i = n + k;
                    gas += 0.0042;
                    let mut r = reading(1006.0 + (i % 17) as f64 * 0.1);
                    r.values[Channel::Temperatura as usize] = Some(35.0 + (i % 11) as f64 / 10.0);
                    r.values[Channel::Humedad as usize] = Some(60.0 + (i % 13) as f64 * 0.5);
                    r.values[Channel::Calidad as usize] = Some(60.0 + (i % 7) as f64 * 0.3);
                    r.values[Channel::GasTotal as usize] = Some((gas * 1e6).round() / 1e6);
                    (1, 1_764_500_000_000_000 + i as i64 * 100_037, r)
                })
                .collect();
            match append(&mut j, &rows) {
                Ok(_) => n += batch,
                Err(JournalError::Full) => break,
                Err(e) => panic!("{e}"),
            }
        }
        println!("batches of {batch}: {n} readings in 4 MiB");
    }
}
