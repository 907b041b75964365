//! Online backup and restore of the store.
//!
//! redb has no backup API, and copying the file while the writer commits can produce a torn
//! copy. A snapshot is therefore logical: one read transaction (a consistent MVCC view, so
//! ingest keeps committing meanwhile) is copied table by table, row by row, into a fresh redb
//! file, committed in chunks so memory stays bounded on a Raspberry Pi. The copy is also
//! compact: no free pages, no history.
//!
//! A restore never trusts a file: its header and size are looked at first (a file that is not
//! redb, or bigger than the free space, is refused before anything is copied), then it is
//! copied next to the store, opened with redb's integrity check, its schema version and tables
//! are checked, a sample of rows of every table is decoded, and only then does it replace
//! `biogestor.redb` (the previous file is kept aside as `biogestor.redb.before-restore-<time>`).
//! A refused snapshot changes nothing. The restored store is a new instance: tokens issued
//! before the restore stop working, and account ids continue above any ever handed out.
//! Snapshot and staging files are owner-only: they hold password hashes.

mod download;
mod restore;

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono_tz::Tz;
use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
    Value,
};

use crate::config::ValidConfig;
use crate::store::tables::{
    CONSUMERS, DAILY, META, METERS, READINGS, REPORTS, REVOKED, ROLLUPS, SENSORS, STAGES, USERS,
    USERS_BY_EMAIL, USERS_BY_NAME, meta_key,
};
use crate::store::{DB_FILE, Store, StoreError};

pub use restore::{Restored, Validated, restore, validate};

/// Folder of `data_dir` where snapshots are written before they are sent.
pub const BACKUP_DIR: &str = "backups";

/// Prefix of snapshot files being written (leftovers of a crash are removed on the next run).
const PARTIAL_PREFIX: &str = ".snapshot-";

/// Rows copied per write transaction of the snapshot (a few MB of dirty pages at most).
const CHUNK_ROWS: usize = 20_000;

/// Page cache of the snapshot file being written: it is written once, in key order.
const SNAPSHOT_CACHE: usize = 4 << 20;

/// Why a backup or restore failed; the messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The service holds the store (direct backup or restore while it runs).
    #[error("{0}")]
    InUse(String),
    /// No store where the configuration points.
    #[error(
        "no store at {0}: check storage.data_dir in the configuration (--config) or that \
         the path is right"
    )]
    NoStore(PathBuf),
    /// The file is not a usable biogestor snapshot.
    #[error("{path} is not a usable biogestor snapshot: {reason}. Nothing was changed")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The snapshot was written by a newer release.
    #[error(
        "{path} was written by a newer biogestor (schema version {found}; this release reads \
         up to {supported}). Install that release to restore it. Nothing was changed"
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: u64,
        /// The newest schema version this release reads.
        supported: u64,
    },
    /// Not enough free space beside the store for the copy a restore makes.
    #[error(
        "{file} needs {needed} bytes free in {dir} to be restored, but only {free} are free: \
         free some space and try again. Nothing was changed"
    )]
    NoSpace {
        /// The snapshot.
        file: PathBuf,
        /// The data folder.
        dir: PathBuf,
        /// Bytes needed (the file and a margin).
        needed: u64,
        /// Bytes free.
        free: u64,
    },
    /// The store has a table this build does not know how to copy.
    #[error("the store has a table {0:?} that this release does not back up")]
    UnknownTable(String),
    /// A file or folder could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The `--url` (first) is not something this client can talk to, and why (second).
    #[error("--url {0:?}: {1}")]
    BadUrl(String, String),
    /// The service could not be reached or broke the transfer.
    #[error("downloading from {url}: {detail}")]
    Transfer {
        /// The `--url` given.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The service answered with an error status.
    #[error("the service answered {status}: {detail}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The service's explanation (its `detail`), with a hint.
        detail: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// redb failed.
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for BackupError {
            fn from(e: $t) -> Self {
                BackupError::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BackupError + 'a {
    move |source| BackupError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

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

/// Every table of the store, by name: a backup copies exactly these, and a restore requires
/// each of them except the [`optional_tables`].
pub fn table_names() -> [&'static str; 13] {
    [
        META.name(),
        READINGS.name(),
        DAILY.name(),
        METERS.name(),
        REPORTS.name(),
        STAGES.name(),
        USERS.name(),
        USERS_BY_NAME.name(),
        USERS_BY_EMAIL.name(),
        REVOKED.name(),
        SENSORS.name(),
        ROLLUPS.name(),
        CONSUMERS.name(),
    ]
}

/// Tables added after the first release without a schema change: a snapshot written before
/// them lacks them and is still restorable (opening the store creates them empty).
pub fn optional_tables() -> [&'static str; 3] {
    [SENSORS.name(), ROLLUPS.name(), CONSUMERS.name()]
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
            + copy_table(&src, &dst, CONSUMERS)?)
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
    if let Ok(entries) = std::fs::read_dir(backup_dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(PARTIAL_PREFIX) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let path = backup_dir.join(format!(
        "{PARTIAL_PREFIX}{}-{}.redb",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    ));
    let info = snapshot(store, &path)?;
    Ok(PendingSnapshot { path, info })
}

/// `site` reduced to lower-case ASCII letters, digits and dashes, for a file name.
pub fn site_slug(site: &str) -> String {
    let mut out = String::new();
    for c in site.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'á' | 'à' | 'ä' | 'â' => 'a',
            'é' | 'è' | 'ë' | 'ê' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            'ñ' => 'n',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() { "sitio".into() } else { out }
}

/// Site-local time as used in file names: `20261127-153000`.
pub fn file_timestamp(tz: Tz) -> String {
    chrono::Utc::now()
        .with_timezone(&tz)
        .format("%Y%m%d-%H%M%S")
        .to_string()
}

/// The download name of a snapshot: `biogestor-<site>-<time>.redb`.
pub fn download_name(site: &str, tz: Tz) -> String {
    format!("biogestor-{}-{}.redb", site_slug(site), file_timestamp(tz))
}

// ---------------------------------------------------------------------------------------------
// Files

/// Copies `from` to `to` and flushes it to disk.
fn copy_synced(from: &Path, to: &Path) -> Result<u64, BackupError> {
    let mut src = File::open(from).map_err(io("cannot read", from))?;
    let mut dst = crate::fsmode::create_new(to).map_err(io("cannot create", to))?;
    let n = std::io::copy(&mut src, &mut dst).map_err(io("cannot write", to))?;
    dst.sync_all().map_err(io("cannot flush", to))?;
    Ok(n)
}

/// Flushes a directory entry (after a rename) to disk.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A private folder beside `target` for files being prepared, removed when dropped.
struct Staging(PathBuf);

impl Staging {
    fn new(parent: &Path, what: &str) -> Result<Staging, BackupError> {
        let dir = parent.join(format!(".biogestor-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::fsmode::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
        Ok(Staging(dir))
    }

    fn file(&self) -> PathBuf {
        self.0.join(DB_FILE)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The parent folder of `out` (the current folder for a bare file name).
fn parent_of(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Moves the prepared file into place as `out` (atomic on one file system).
fn install(prepared: &Path, out: &Path) -> Result<(), BackupError> {
    std::fs::rename(prepared, out).map_err(io("cannot create", out))?;
    sync_dir(&parent_of(out));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// CLI: backup

/// The address the CLI suggests for `--url` (the service's own HTTP address on loopback).
pub fn local_url(cfg: &ValidConfig) -> String {
    let addr = crate::watchdog::loopback_for(cfg.http_bind);
    format!("http://{addr}")
}

/// `biogestor backup --out FILE` with the service stopped: snapshots the store directly.
pub fn backup_direct(cfg: &ValidConfig, out: &Path) -> Result<SnapshotInfo, BackupError> {
    let store_file = cfg.data_dir().join(DB_FILE);
    if !store_file.exists() {
        return Err(BackupError::NoStore(store_file));
    }
    let store =
        Store::open(cfg.data_dir(), cfg.raw.storage.cache_size_mb, cfg.timezone).map_err(|e| {
            match e {
                StoreError::InUse { .. } => BackupError::InUse(format!(
                    "the store in {} is in use by the running service. Back it up through the \
                 service instead (an administrator's access token, from POST \
                 /api/iniciar-sesion/):\n  biogestor backup --url {} --token ACCESS_TOKEN --out {}",
                    cfg.data_dir().display(),
                    local_url(cfg),
                    out.display()
                )),
                other => BackupError::Store(other),
            }
        })?;
    let staging = Staging::new(&parent_of(out), "backup")?;
    let result = snapshot(&store, &staging.file());
    store.close()?;
    let info = result?;
    if let Ok(f) = File::open(staging.file()) {
        let _ = f.sync_all();
    }
    install(&staging.file(), out)?;
    Ok(info)
}

/// `biogestor backup --url URL --token TOKEN --out FILE`: downloads a snapshot from the
/// running service, checks it, and writes `out` atomically. Returns its size and what it holds.
pub fn backup_remote(
    url: &str,
    token: &str,
    out: &Path,
    tz: Tz,
) -> Result<(u64, Validated), BackupError> {
    let staging = Staging::new(&parent_of(out), "backup")?;
    let bytes = download::download(url, token, &staging.file())?;
    // Validate a copy: the check may commit to the file it opens.
    let check = Staging::new(&parent_of(out), "check")?;
    copy_synced(&staging.file(), &check.file())?;
    let found = validate(&check.0, tz)?;
    drop(check);
    install(&staging.file(), out)?;
    Ok((bytes, found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SCHEMA_VERSION;

    #[test]
    fn site_names_become_file_names() {
        assert_eq!(site_slug("Biodigestor"), "biodigestor");
        assert_eq!(site_slug("Finca La Esperanza #2"), "finca-la-esperanza-2");
        assert_eq!(site_slug("Año Ñuñoa"), "ano-nunoa");
        assert_eq!(site_slug("///"), "sitio");
    }

    #[test]
    fn every_table_of_a_new_store_is_backed_up() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("store");
        let txn = store.db().expect("open").begin_read().expect("read");
        let mut present: Vec<String> = txn
            .list_tables()
            .expect("tables")
            .map(|t| t.name().to_string())
            .collect();
        drop(txn);
        present.sort();
        let mut listed: Vec<String> = table_names().iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(present, listed);

        let out = dir.path().join("snap");
        std::fs::create_dir_all(&out).expect("dir");
        let info = snapshot(&store, &out.join(DB_FILE)).expect("snapshot");
        store.close().expect("close");
        assert!(info.rows >= 1 && info.bytes > 0);
        let found = validate(&out, chrono_tz::UTC).expect("valid");
        assert_eq!(found.schema, SCHEMA_VERSION);
    }

    #[test]
    fn a_snapshot_from_before_the_sensor_registry_is_restorable() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("store");
        let out = dir.path().join("snap");
        std::fs::create_dir_all(&out).expect("dir");
        snapshot(&store, &out.join(DB_FILE)).expect("snapshot");
        store.close().expect("close");
        {
            let db = Database::create(out.join(DB_FILE)).expect("open snapshot");
            let txn = db.begin_write().expect("write");
            assert!(txn.delete_table(SENSORS).expect("delete"));
            txn.commit().expect("commit");
        }
        let found = validate(&out, chrono_tz::UTC).expect("valid without the sensors table");
        assert_eq!(found.schema, SCHEMA_VERSION);
    }
}
