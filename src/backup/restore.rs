//! Checking a snapshot thoroughly and putting it in place of the store (`biogestor restore`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono_tz::Tz;
use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
};

use super::staging::{Staging, copy_synced, sync_dir};
use super::{BackupError, file_timestamp, io, optional_tables, table_names};
use crate::config::ValidConfig;
use crate::store::codec::{chunk, decode_daily, decode_meter, decode_reading};
use crate::store::sensors::decode_sensor;
use crate::store::tables::{DAILY, LEGACY_READINGS, META, METERS, READINGS, SENSORS, meta_key};
use crate::store::{DB_FILE, SCHEMA_VERSION, Store, StoreError};

/// Page cache used to open a snapshot for validation.
const VALIDATE_CACHE: usize = 16 << 20;

/// The first bytes of every redb file (`MAGICNUMBER` in redb's
/// `tree_store/page_store/header.rs`, inspired by PNG's).
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Smallest file that can be a store: redb's header (320 bytes) and at least one page.
const MIN_SNAPSHOT_BYTES: u64 = 4096;

/// Free space kept besides the copy: validation may grow the copy a little, and a full disk
/// would stop the service that starts on it.
const SPACE_MARGIN: u64 = 64 << 20;

/// Rows decoded at each end of the large tables when validating a snapshot.
const SAMPLE_ROWS: usize = 1000;

/// What a validated snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validated {
    /// Its schema version.
    pub schema: u64,
    /// `readings_total` recorded in it.
    pub readings: u64,
    /// Rows in the readings table.
    pub reading_rows: u64,
    /// Accounts in it.
    pub users: u64,
}

fn invalid(path: &Path, reason: impl Into<String>) -> BackupError {
    BackupError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Opens a redb file and runs its integrity check (every page checksum), refusing, never
/// repairing, a damaged one: a snapshot written by [`super::snapshot`] was closed cleanly, so one
/// that needs a repair is damaged. redb may panic on a file altered outside it, so a panic is
/// caught and reported as damage too.
fn open_checked(path: &Path) -> Result<Database, BackupError> {
    let needed_repair = Arc::new(AtomicBool::new(false));
    let flag = needed_repair.clone();
    let path_buf = path.to_path_buf();
    let damaged = |detail: &str| {
        invalid(
            path,
            format!("the file is damaged ({detail}; truncated, altered or not closed cleanly)"),
        )
    };
    let opened = std::panic::catch_unwind(move || {
        let mut db = Database::builder()
            .set_cache_size(VALIDATE_CACHE)
            .set_repair_callback(move |session| {
                flag.store(true, Ordering::Relaxed);
                session.abort();
            })
            .open(&path_buf)?;
        let intact = db.check_integrity()?;
        Ok::<_, redb::DatabaseError>((db, intact))
    });
    match opened {
        Ok(Ok((db, true))) => Ok(db),
        Ok(Ok((_, false))) => Err(damaged("redb's integrity check failed")),
        Ok(Err(_)) if needed_repair.load(Ordering::Relaxed) => {
            Err(damaged("redb would have to repair it"))
        }
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(why)))) => {
            Err(damaged(&format!("redb: {why}")))
        }
        Ok(Err(e)) => Err(invalid(path, format!("redb cannot open it ({e})"))),
        Err(_) => Err(damaged("redb could not read its structure")),
    }
}

/// Decodes up to `SAMPLE_ROWS` rows at each end of `def` with `decode`; returns the row count.
fn sample<K: Key + 'static>(
    txn: &ReadTransaction,
    def: TableDefinition<'static, K, &'static [u8]>,
    decode: impl Fn(&[u8]) -> Result<(), StoreError>,
) -> Result<u64, BackupError> {
    use redb::ReadableTableMetadata;
    let t = txn.open_table(def)?;
    let len = t.len()?;
    for row in t.iter()?.take(SAMPLE_ROWS) {
        decode(row?.1.value())?;
    }
    for row in t.iter()?.rev().take(SAMPLE_ROWS) {
        decode(row?.1.value())?;
    }
    Ok(len)
}

/// Checks the snapshot `dir/biogestor.redb` thoroughly: integrity, schema version, every
/// table present, and a sample of every table decodable. Blocking. The file may be modified
/// by the check (redb commits the verified state), so call it on a copy.
pub fn validate(dir: &Path, tz: Tz) -> Result<Validated, BackupError> {
    let path = dir.join(DB_FILE);
    let db = open_checked(&path)?;
    let checks = (|| -> Result<Validated, BackupError> {
        let txn = db.begin_read()?;
        let present: BTreeSet<String> = txn.list_tables()?.map(|t| t.name().to_string()).collect();
        let missing: Vec<&str> = table_names()
            .into_iter()
            .filter(|n| !present.contains(*n) && !optional_tables().contains(n))
            .collect();
        if !missing.is_empty() {
            return Err(invalid(
                &path,
                format!("tables missing: {}", missing.join(", ")),
            ));
        }
        let meta = txn.open_table(META)?;
        let schema = match meta.get(meta_key::SCHEMA)? {
            Some(v) => v.value(),
            None => return Err(invalid(&path, "no schema version recorded")),
        };
        if schema > SCHEMA_VERSION {
            return Err(BackupError::NewerSchema {
                path: path.clone(),
                found: schema,
                supported: SCHEMA_VERSION,
            });
        }
        let known: BTreeSet<&str> = table_names()
            .into_iter()
            .chain([LEGACY_READINGS.name()])
            .collect();
        if let Some(extra) = present.iter().find(|n| !known.contains(n.as_str())) {
            return Err(invalid(
                &path,
                format!("unknown table {extra:?} for schema version {schema}"),
            ));
        }
        let readings = meta
            .get(meta_key::READINGS_TOTAL)?
            .map(|v| v.value())
            .unwrap_or(0);
        // A snapshot of an earlier release has its readings one per row.
        let mut reading_rows = 0;
        if present.contains(LEGACY_READINGS.name()) {
            reading_rows += sample(&txn, LEGACY_READINGS, |b| decode_reading(b).map(drop))?;
        }
        if present.contains(READINGS.name()) {
            sample(&txn, READINGS, |b| chunk::decode(b).map(drop))?;
            reading_rows += crate::store::readings::count(&txn.open_table(READINGS)?)?;
        }
        sample(&txn, DAILY, |b| decode_daily(b).map(drop))?;
        sample(&txn, METERS, |b| decode_meter(b).map(drop))?;
        if present.contains(SENSORS.name()) {
            sample(&txn, SENSORS, |b| decode_sensor(b).map(drop))?;
        }
        Ok(Validated {
            schema,
            readings,
            reading_rows,
            users: 0,
        })
    })();
    let mut found = match checks {
        Ok(v) => v,
        Err(BackupError::Store(StoreError::Corrupt { table, detail })) => {
            return Err(invalid(
                &path,
                format!("rows of {table} cannot be decoded ({detail})"),
            ));
        }
        Err(e) => return Err(e),
    };
    db.close()?;

    // Accounts, stages and reports through the store's own readers (all rows: few of them).
    let store = Store::open(dir, (VALIDATE_CACHE >> 20) as u64, tz)?;
    let decoded = (|| -> Result<u64, StoreError> {
        let users = store.users()?;
        for u in &users {
            if store.user_by_name(&u.username)?.map(|x| x.id) != Some(u.id) {
                return Err(StoreError::Corrupt {
                    table: "users_by_name",
                    detail: format!("no index entry for user {}", u.id),
                });
            }
        }
        store.stages()?;
        store.reports()?;
        Ok(users.len() as u64)
    })();
    store.close()?;
    match decoded {
        Ok(users) => found.users = users,
        Err(StoreError::Corrupt { table, detail }) => {
            return Err(invalid(
                &path,
                format!("rows of {table} cannot be decoded ({detail})"),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(found)
}

/// Whether another process (the service) holds the store file. Checked with a read-only open,
/// which writes nothing: a refused restore must leave the current file as it was. A file that
/// cannot be opened for other reasons (damaged: the reason to restore) is not "in use".
fn held_by_another_process(path: &Path) -> bool {
    if !path.exists() {
        return false;
    }
    let p = path.to_path_buf();
    let opened = std::panic::catch_unwind(move || redb::ReadOnlyDatabase::open(&p).map(drop));
    matches!(opened, Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)))
}

/// Bytes available to this user on the file system of `dir`.
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Refuses, before anything is copied, a file that is too small, does not start with redb's
/// header, or does not fit in the free space beside the store.
fn check_before_copy(file: &Path, data_dir: &Path) -> Result<(), BackupError> {
    use std::io::Read;
    let len = std::fs::metadata(file)
        .map_err(io("cannot read", file))?
        .len();
    if len < MIN_SNAPSHOT_BYTES {
        return Err(invalid(
            file,
            format!("the file is too small to be a store ({len} bytes)"),
        ));
    }
    let mut head = [0u8; REDB_MAGIC.len()];
    std::fs::File::open(file)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(io("cannot read", file))?;
    if head != REDB_MAGIC {
        return Err(invalid(
            file,
            "not a redb file (it does not start with redb's header)",
        ));
    }
    let free = free_bytes(data_dir).map_err(io("cannot measure the free space of", data_dir))?;
    let needed = len.saturating_add(SPACE_MARGIN);
    if needed > free {
        return Err(BackupError::NoSpace {
            file: file.to_path_buf(),
            dir: data_dir.to_path_buf(),
            needed,
            free,
        });
    }
    Ok(())
}

/// The next account id of the store being replaced, read without writing to it (it is kept
/// aside unchanged). `None` when it cannot be read (damaged: often the reason to restore).
fn replaced_next_user_id(target: &Path) -> Option<u64> {
    use crate::store::tables::USERS;
    if !target.exists() {
        return None;
    }
    let p = target.to_path_buf();
    let read = std::panic::catch_unwind(move || -> Result<u64, redb::Error> {
        let db = redb::ReadOnlyDatabase::open(&p)?;
        let txn = db.begin_read()?;
        let counter = txn
            .open_table(META)?
            .get(meta_key::NEXT_USER_ID)?
            .map(|v| v.value())
            .unwrap_or(1);
        let after_rows = txn
            .open_table(USERS)?
            .last()?
            .map(|(k, _)| k.value() + 1)
            .unwrap_or(1);
        Ok(counter.max(after_rows))
    });
    match read {
        Ok(Ok(n)) => Some(n),
        _ => None,
    }
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// What the restored snapshot holds.
    pub found: Validated,
    /// The account id the restored store hands out next (above every id of the store it
    /// replaced, when that could be read).
    pub next_user_id: u64,
    /// Where the replaced store was kept, if there was one.
    pub previous: Option<PathBuf>,
    /// The store file now in place.
    pub installed: PathBuf,
    /// Set when the restored file could not be given the owner of the store it replaces (the
    /// service user could then not open it): says what to run.
    pub ownership_warning: Option<String>,
}

/// Gives `file` the owner and group of `like` (the store being replaced, or the data folder)
/// and mode 0600: a restore run as root must leave a file the service user can open, and
/// nobody else.
fn match_owner(file: &Path, like: &Path) -> Option<String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(like).ok()?;
    let (uid, gid) = (meta.uid(), meta.gid());
    let mode = crate::fsmode::FILE_MODE;
    let _ = std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode));
    let current = std::fs::metadata(file).ok()?;
    if (current.uid(), current.gid()) == (uid, gid) {
        return None;
    }
    match std::os::unix::fs::chown(file, Some(uid), Some(gid)) {
        Ok(()) => None,
        Err(e) => Some(format!(
            "could not give {} the owner of {} ({e}); run: sudo chown {uid}:{gid} {}",
            file.display(),
            like.display(),
            file.display()
        )),
    }
}

/// `biogestor restore FILE` (service stopped): validates the snapshot on a copy, then puts it
/// in place of `data_dir/biogestor.redb`, keeping the old file beside it.
pub fn restore(cfg: &ValidConfig, file: &Path) -> Result<Restored, BackupError> {
    if !file.is_file() {
        return Err(BackupError::Io {
            what: "cannot read",
            path: file.to_path_buf(),
            source: std::io::ErrorKind::NotFound.into(),
        });
    }
    let data_dir = cfg.data_dir();
    crate::fsmode::create_dir_all(data_dir).map_err(io("cannot create", data_dir))?;
    let target = data_dir.join(DB_FILE);
    if held_by_another_process(&target) {
        return Err(BackupError::InUse(format!(
            "the store {} is in use by the running service. Stop it first \
             (`sudo systemctl stop biogestor`), run the restore again, then start it",
            target.display()
        )));
    }
    for path in super::remove_leftovers(data_dir) {
        eprintln!(
            "biogestor restore: removed {}, left by an interrupted backup or restore",
            path.display()
        );
    }
    check_before_copy(file, data_dir)?;
    let staging = Staging::new(data_dir, "restore")?;
    copy_synced(file, &staging.file())?;
    let found = validate(&staging.0, cfg.timezone).map_err(|e| match e {
        // Name the operator's file, not the private copy.
        BackupError::Invalid { reason, .. } => BackupError::Invalid {
            path: file.to_path_buf(),
            reason,
        },
        BackupError::NewerSchema {
            found, supported, ..
        } => BackupError::NewerSchema {
            path: file.to_path_buf(),
            found,
            supported,
        },
        other => other,
    })?;
    // A new instance: no token of the old store or of the snapshot's time works any more,
    // and ids continue above every id either of them handed out.
    let next_user_id = {
        let store = Store::open(&staging.0, (VALIDATE_CACHE >> 20) as u64, cfg.timezone)?;
        let min_next = replaced_next_user_id(&target).unwrap_or(1);
        let renewed = store
            .renew_instance(min_next)
            .and_then(|_| store.next_user_id());
        store.close()?;
        renewed?
    };
    let like = if target.exists() {
        target.clone()
    } else {
        data_dir.clone()
    };
    let ownership_warning = match_owner(&staging.file(), &like);
    let previous = if target.exists() {
        let aside = data_dir.join(format!(
            "{DB_FILE}.before-restore-{}",
            file_timestamp(cfg.timezone)
        ));
        std::fs::rename(&target, &aside).map_err(io("cannot move aside", &target))?;
        let _ = crate::fsmode::restrict_file(&aside);
        Some(aside)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(staging.file(), &target) {
        if let Some(aside) = &previous {
            let _ = std::fs::rename(aside, &target);
        }
        return Err(io("cannot put the snapshot in place at", &target)(e));
    }
    sync_dir(data_dir);
    Ok(Restored {
        found,
        next_user_id,
        previous,
        installed: target,
        ownership_warning,
    })
}
