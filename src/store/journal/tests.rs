use std::os::unix::fs::FileExt;

use super::*;

fn entries(n: usize, base: i64) -> Vec<(u64, i64, Vec<u8>)> {
    (0..n)
        .map(|i| (1u64, base + i as i64, vec![i as u8; 20]))
        .collect()
}

fn append(j: &mut Journal, batch: &[(u64, i64, Vec<u8>)]) -> Result<u64, JournalError> {
    j.append(batch.iter().map(|(s, t, r)| (*s, *t, r.as_slice())))
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
    assert_eq!(pending[0].entries[1].reading, vec![1u8; 20]);
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
