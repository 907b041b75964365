//! The logical snapshot: one read transaction of the store copied table by table into a
//! fresh, compact redb file while ingest keeps committing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
    Value,
};

use super::staging::{PARTIAL_PREFIX, remove_stale};
use super::{BackupError, io, table_names};
use crate::store::Store;
use crate::store::tables::{
    ALARM_OUTBOX, ALARM_RULES, ALARMS, CONSUMERS, DAILY, META, METERS, READINGS, REPORTS, REVOKED,
    ROLLUPS, SENSORS, STAGES, USERS, USERS_BY_EMAIL, USERS_BY_NAME, meta_key,
};

/// Rows copied per write transaction of the snapshot (a few MB of dirty pages at most).
const CHUNK_ROWS: usize = 20_000;

/// Page cache of the snapshot file being written: it is written once, in key order.
const SNAPSHOT_CACHE: usize = 4 << 20;

/// What a snapshot holds and what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Rows copied, all tables together.
    pub rows: u64,
    /// Readings committed when the snapshot was taken (`readings_total` in it).
    pub readings: u64,
    /// Size of the snapshot file.
    pub bytes: u64,
    /// Time taken to write it.
    pub elapsed: Duration,
}
/// Copies one table from the read snapshot into `dst`, `CHUNK_ROWS` rows per commit.
fn copy_table<K: Key + 'static, V: Value + 'static>(
    src: &ReadTransaction,
    dst: &Database,
    def: TableDefinition<'static, K, V>,
) -> Result<u64, BackupError> {
    let table = src.open_table(def)?;
    let mut rows = table.iter()?;
    let mut copied = 0u64;
    loop {
        let txn = dst.begin_write()?;
        let mut done = false;
        {
            let mut out = txn.open_table(def)?;
            for _ in 0..CHUNK_ROWS {
                match rows.next() {
                    Some(row) => {
                        let (k, v) = row?;
                        out.insert(k.value(), v.value())?;
                        copied += 1;
                    }
                    None => {
                        done = true;
                        break;
                    }
                }
            }
        }
        txn.commit()?;
        if done {
            return Ok(copied);
        }
    }
}

/// Writes a consistent snapshot of `store` to `dest` (which must not exist), while the
/// service keeps running. Blocking: call it from a blocking thread.
pub fn snapshot(store: &Store, dest: &Path) -> Result<SnapshotInfo, BackupError> {
    let started = Instant::now();
    let src = store.db()?.begin_read()?;
    let known: BTreeSet<&str> = table_names().into_iter().collect();
    for t in src.list_tables()? {
        if !known.contains(t.name()) {
            return Err(BackupError::UnknownTable(t.name().to_string()));
        }
    }
    let readings = src
        .open_table(META)?
        .get(meta_key::READINGS_TOTAL)?
        .map(|v| v.value())
        .unwrap_or(0);
    if dest.exists() {
        return Err(BackupError::Io {
            what: "refusing to overwrite",
            path: dest.to_path_buf(),
            source: std::io::ErrorKind::AlreadyExists.into(),
        });
    }
    // Created owner-only and empty, so redb initialises it without widening its mode.
    crate::fsmode::create_new(dest).map_err(io("cannot create", dest))?;
    let dst = Database::builder()
        .set_cache_size(SNAPSHOT_CACHE)
        .create(dest)?;
    let copy = || -> Result<u64, BackupError> {
        Ok(copy_table(&src, &dst, META)?
            + copy_table(&src, &dst, READINGS)?
            + copy_table(&src, &dst, DAILY)?
            + copy_table(&src, &dst, METERS)?
            + copy_table(&src, &dst, REPORTS)?
            + copy_table(&src, &dst, STAGES)?
            + copy_table(&src, &dst, USERS)?
            + copy_table(&src, &dst, USERS_BY_NAME)?
            + copy_table(&src, &dst, USERS_BY_EMAIL)?
            + copy_table(&src, &dst, REVOKED)?
            + copy_table(&src, &dst, SENSORS)?
            + copy_table(&src, &dst, ROLLUPS)?
            + copy_table(&src, &dst, CONSUMERS)?
            + copy_table(&src, &dst, crate::store::outbox::OUTBOX)?
            + copy_table(&src, &dst, crate::store::outbox::OUTBOX_KEYS)?
            + copy_table(&src, &dst, ALARMS)?
            + copy_table(&src, &dst, ALARM_RULES)?
            + copy_table(&src, &dst, ALARM_OUTBOX)?)
    };
    let rows = match copy() {
        Ok(rows) => rows,
        Err(e) => {
            drop(dst);
            let _ = std::fs::remove_file(dest);
            return Err(e);
        }
    };
    drop(src);
    // Chunked commits leave the file grown in steps; compacting returns the slack, so the
    // download is about the size of the data.
    let mut dst = dst;
    while dst.compact().map_err(|e| BackupError::Db(e.into()))? {}
    dst.close()?;
    let bytes = std::fs::metadata(dest)
        .map_err(io("cannot read the size of", dest))?
        .len();
    Ok(SnapshotInfo {
        rows,
        readings,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// A snapshot file written in `data_dir/backups/` for the HTTP download.
#[derive(Debug)]
pub struct PendingSnapshot {
    /// The file; the caller sends it and deletes it.
    pub path: PathBuf,
    /// What it holds.
    pub info: SnapshotInfo,
}

/// Writes a snapshot under `backup_dir` with a temporary name, first removing the leftovers
/// of an interrupted earlier one. Only one may run at a time (the caller serialises).
pub fn snapshot_for_download(
    store: &Store,
    backup_dir: &Path,
) -> Result<PendingSnapshot, BackupError> {
    crate::fsmode::create_dir_all(backup_dir).map_err(io("cannot create", backup_dir))?;
    remove_stale(backup_dir);
    let path = backup_dir.join(format!(
        "{PARTIAL_PREFIX}{}-{}.redb",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    ));
    let info = snapshot(store, &path)?;
    Ok(PendingSnapshot { path, info })
}
