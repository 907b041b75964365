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
mod error;
mod naming;
mod restore;
mod snapshot;
mod staging;

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use redb::TableHandle;

use crate::config::ValidConfig;
use crate::store::outbox::{OUTBOX, OUTBOX_KEYS};
use crate::store::tables::{
    ALARM_OUTBOX, ALARM_RULES, ALARMS, CONSUMERS, DAILY, META, METERS, READINGS, REPORTS, REVOKED,
    ROLLUPS, SENSORS, STAGES, USERS, USERS_BY_EMAIL, USERS_BY_NAME,
};
use crate::store::{DB_FILE, Store, StoreError};
use error::io;
use staging::{Staging, copy_synced, install, parent_of};

pub use error::BackupError;
pub use naming::{download_name, file_timestamp, site_slug};
pub use restore::{Restored, Validated, restore, validate};
pub use snapshot::{PendingSnapshot, SnapshotInfo, snapshot, snapshot_for_download};
pub use staging::remove_stale;

/// Folder of `data_dir` where snapshots are written before they are sent.
pub const BACKUP_DIR: &str = "backups";

/// Removes what interrupted backups, restores and downloads left in `data_dir` and its
/// `backups/` folder (see [`remove_stale`]); the service calls it at start-up, once it holds
/// the store. Returns what was removed.
pub fn remove_leftovers(data_dir: &Path) -> Vec<PathBuf> {
    let mut removed = remove_stale(data_dir);
    removed.extend(remove_stale(&data_dir.join(BACKUP_DIR)));
    removed
}

/// Every table of the store, by name: a backup copies exactly these, and a restore requires
/// each of them except the [`optional_tables`].
pub fn table_names() -> [&'static str; 18] {
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
        OUTBOX.name(),
        OUTBOX_KEYS.name(),
        ALARMS.name(),
        ALARM_RULES.name(),
        ALARM_OUTBOX.name(),
    ]
}

/// Tables a snapshot written by an earlier release may lack and still be restorable: tables
/// added without a schema change (opening the store creates them empty), and the readings'
/// chunks, which replaced
/// [`crate::store::tables::LEGACY_READINGS`] (opening the store moves the readings over).
pub fn optional_tables() -> [&'static str; 9] {
    [
        READINGS.name(),
        SENSORS.name(),
        ROLLUPS.name(),
        CONSUMERS.name(),
        OUTBOX.name(),
        OUTBOX_KEYS.name(),
        ALARMS.name(),
        ALARM_RULES.name(),
        ALARM_OUTBOX.name(),
    ]
}

// ---------------------------------------------------------------------------------------------
// CLI: backup

/// The address the CLI suggests for `--url` (the service's own HTTP address on loopback).
pub fn local_url(cfg: &ValidConfig) -> String {
    let addr = crate::watchdog::loopback_for(cfg.http_bind);
    format!("http://{addr}")
}

/// Removes, and tells about, what interrupted backups left beside `out`.
fn clean_beside(out: &Path) {
    for path in remove_stale(&parent_of(out)) {
        eprintln!(
            "biogestor backup: removed {}, left by an interrupted backup",
            path.display()
        );
    }
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
    clean_beside(out);
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
    clean_beside(out);
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
    use redb::{Database, ReadableDatabase};

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
