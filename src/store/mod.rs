//! The appliance's only persistent state: one redb file in `data_dir`. Handlers and the ingest
//! path use this narrow typed API and never open tables themselves.

pub mod alarms;
pub mod codec;
pub mod daily;
pub mod import;
pub mod instance;
pub mod journal;
pub mod outbox;
mod queries;
pub mod readings;
pub mod redate;
pub mod reindex;
pub mod reports;
pub mod retention;
pub mod rollups;
pub mod sensors;
mod sessions;
pub mod stages;
pub(crate) mod tables;
pub mod usage;
pub mod users;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use chrono_tz::Tz;
use parking_lot::{MappedRwLockReadGuard, RwLock, RwLockReadGuard};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableHandle};

pub use queries::{Bucket, BucketStats, ReadingsCursor, ReadingsPage, StoredReading, Walk};
use tables::{META, meta_key};

/// Version of the table layout this build writes. A file with a higher number was written by a
/// newer release and is refused rather than misread. Version 2 added security stamps,
/// disabling and login addresses to accounts, the store instance id and the account-id
/// counter; a version-1 store is migrated when it is opened ([`instance`]). Version 3 stores
/// readings in chunks; the readings of an older store are moved when it is opened
/// ([`readings::migrate`]).
pub const SCHEMA_VERSION: u64 = 3;

/// Version of the meter rules this build computes daily aggregates with (see
/// [`daily::counter`] and [`daily::meter`]). Rows computed by earlier rules stay as they were
/// until `biogestor reindex` rebuilds them from the readings.
pub const AGGREGATES_VERSION: u64 = 2;

/// File name of the database inside `data_dir`.
pub const DB_FILE: &str = "biogestor.redb";

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage.data_dir = {path}: the folder cannot be used: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the store {path} is in use by another biogestor process; stop it first \
         (e.g. `systemctl stop biogestor`) or use a different storage.data_dir"
    )]
    InUse { path: PathBuf },
    #[error(
        "the store {path} has schema version {found}, newer than this release understands \
         ({supported}); install a newer biogestor or restore a backup"
    )]
    NewerSchema {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("stored record in {table} could not be decoded: {detail}")]
    Corrupt { table: &'static str, detail: String },
    #[error("the writer is not running")]
    WriterGone,
    #[error("the store is being reopened after an I/O error; try again")]
    Reopening,
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
}

/// Implements `From` for redb's per-operation error types on a store-layer error, through
/// `$wrap` (each redb error becomes `redb::Error`, then the layer's error).
macro_rules! from_redb_errors {
    ($target:ty, $wrap:expr) => {
        impl From<redb::TransactionError> for $target {
            fn from(e: redb::TransactionError) -> Self {
                $wrap(redb::Error::from(e))
            }
        }
        impl From<redb::TableError> for $target {
            fn from(e: redb::TableError) -> Self {
                $wrap(redb::Error::from(e))
            }
        }
        impl From<redb::StorageError> for $target {
            fn from(e: redb::StorageError) -> Self {
                $wrap(redb::Error::from(e))
            }
        }
        impl From<redb::CommitError> for $target {
            fn from(e: redb::CommitError) -> Self {
                $wrap(redb::Error::from(e))
            }
        }
    };
}
pub(crate) use from_redb_errors;

from_redb_errors!(StoreError, StoreError::Db);

/// Opens (or creates) the database file with a bounded cache. The file holds password hashes:
/// it is created owner-only (and an older, looser one is made so) before redb opens it.
fn open_database(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    let private = crate::fsmode::create_private_if_missing(path)
        .and_then(|()| crate::fsmode::restrict_file(path));
    if let Err(source) = private {
        return Err(StoreError::DataDir {
            path: path.parent().unwrap_or(path).to_path_buf(),
            source,
        });
    }
    Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
                path: path.to_path_buf(),
            },
            redb::DatabaseError::Storage(redb::StorageError::Io(source)) => StoreError::DataDir {
                path: path.parent().unwrap_or(path).to_path_buf(),
                source,
            },
            other => StoreError::Db(other.into()),
        })
}

/// Counters kept in memory for the API and persisted by the writer at each commit.
#[derive(Debug, Default)]
pub struct Counters {
    /// Payloads refused since the store was created.
    pub rejected: AtomicU64,
    /// Messages the broker acknowledged but dropped before ingest read them (overload),
    /// since the store was created.
    pub dropped: AtomicU64,
    /// Readings committed since the store was created.
    pub readings_total: AtomicU64,
    /// Receive time (µs since the epoch) of the newest committed reading, 0 when none.
    pub last_reading_us: AtomicI64,
    /// False while the writer cannot commit (disk full, I/O error); health reports it.
    pub writer_healthy: AtomicBool,
}

/// Shared handle to the open store (cheap to clone).
#[derive(Clone)]
pub struct Store {
    db: Arc<RwLock<Option<Database>>>,
    path: PathBuf,
    cache_bytes: usize,
    tz: Tz,
    counters: Arc<Counters>,
    active_stage: Arc<AtomicU64>,
    /// See [`Store::instance_id`].
    instance: Arc<AtomicU64>,
}

impl Store {
    /// Opens (or creates) the store in `data_dir`, checking the schema version and that no
    /// other process holds it.
    pub fn open(data_dir: &Path, cache_size_mb: u64, tz: Tz) -> Result<Store, StoreError> {
        let dir_err = |source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        };
        crate::fsmode::create_dir_all(data_dir).map_err(dir_err)?;
        let path = data_dir.join(DB_FILE);
        let cache_bytes = (cache_size_mb as usize) << 20;
        let db = open_database(&path, cache_bytes).map_err(|e| match e {
            StoreError::DataDir { source, .. } => dir_err(source),
            other => other,
        })?;
        let store = Store {
            db: Arc::new(RwLock::new(Some(db))),
            path,
            cache_bytes,
            tz,
            counters: Arc::new(Counters::default()),
            active_stage: Arc::new(AtomicU64::new(0)),
            instance: Arc::new(AtomicU64::new(0)),
        };
        store.check_schema()?;
        readings::migrate::run(&*store.db()?)?;
        {
            let txn = store.db()?.begin_write()?;
            rollups::start_backfill_if_needed(&txn)?;
            txn.commit()?;
        }
        store.load_instance()?;
        store.load_counters()?;
        store.load_active_stage()?;
        Ok(store)
    }

    /// Checks the schema version, creates missing tables and migrates an older layout, in one
    /// transaction (a crash half-way leaves the store as it was).
    fn check_schema(&self) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        let found = {
            let meta = txn.open_table(META)?;
            meta.get(meta_key::SCHEMA)?.map(|v| v.value())
        };
        if let Some(v) = found
            && v > SCHEMA_VERSION
        {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found: v,
                supported: SCHEMA_VERSION,
            });
        }
        tables::create_all(&txn)?;
        {
            // A store without readings has no aggregates to be outdated.
            let legacy = txn
                .list_tables()?
                .any(|t| t.name() == tables::LEGACY_READINGS.name());
            let empty = txn.open_table(tables::READINGS)?.is_empty()?
                && (!legacy || txn.open_table(tables::LEGACY_READINGS)?.is_empty()?);
            let mut meta = txn.open_table(META)?;
            if empty && meta.get(meta_key::AGGREGATES)?.is_none() {
                meta.insert(meta_key::AGGREGATES, AGGREGATES_VERSION)?;
            }
        }
        if found.is_some_and(|v| v < 2) {
            let done = instance::migrate_v1(&txn)?;
            tracing::info!(
                path = %self.path.display(),
                accounts = done.accounts,
                "store migrated from schema version 1 to 2: accounts got a security stamp"
            );
        }
        instance::ensure_ids(&txn)?;
        txn.open_table(META)?
            .insert(meta_key::SCHEMA, SCHEMA_VERSION)?;
        txn.commit()?;
        Ok(())
    }

    /// Whether the daily aggregates were computed by earlier meter rules (a store written by
    /// an earlier release) and need `biogestor reindex`.
    pub fn aggregates_outdated(&self) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_read()?;
        let meta = txn.open_table(META)?;
        let found = meta.get(meta_key::AGGREGATES)?.map(|v| v.value());
        Ok(found.unwrap_or(1) < AGGREGATES_VERSION)
    }

    fn load_counters(&self) -> Result<(), StoreError> {
        let txn = self.db()?.begin_read()?;
        let meta = txn.open_table(META)?;
        let get =
            |k| -> Result<u64, StoreError> { Ok(meta.get(k)?.map(|v| v.value()).unwrap_or(0)) };
        let c = &self.counters;
        c.rejected
            .store(get(meta_key::REJECTED)?, Ordering::Relaxed);
        c.dropped.store(get(meta_key::DROPPED)?, Ordering::Relaxed);
        c.readings_total
            .store(get(meta_key::READINGS_TOTAL)?, Ordering::Relaxed);
        c.last_reading_us
            .store(get(meta_key::LAST_READING_US)? as i64, Ordering::Relaxed);
        c.writer_healthy.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The in-memory counters (rejected payloads, readings, last reading time).
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The site's time zone, which defines the days of the daily aggregates.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open database. Held only for the start of a transaction (transactions do not
    /// borrow it), so [`Store::reopen`] can swap it.
    pub(crate) fn db(&self) -> Result<MappedRwLockReadGuard<'_, Database>, StoreError> {
        RwLockReadGuard::try_map(self.db.read(), Option::as_ref).map_err(|_| StoreError::Reopening)
    }

    /// Closes and reopens the database file. redb refuses every commit after an I/O error
    /// (e.g. a full disk) until the file is reopened; the writer calls this so that, once
    /// space is freed, the readings it kept in memory are committed without a restart.
    pub(crate) fn reopen(&self) -> Result<(), StoreError> {
        let mut guard = self.db.write();
        drop(guard.take());
        let db = open_database(&self.path, self.cache_bytes)?;
        *guard = Some(db);
        tracing::info!(path = %self.path.display(), "store reopened");
        Ok(())
    }

    /// Rewrites the file without its free pages (`biogestor compact`, service stopped);
    /// returns the file size before and after.
    pub fn compact(&self) -> Result<(u64, u64), StoreError> {
        let size = || std::fs::metadata(&self.path).map_or(0, |m| m.len());
        let before = size();
        let mut guard = self.db.write();
        let db = guard.as_mut().ok_or(StoreError::Reopening)?;
        while db
            .compact()
            .map_err(|e| StoreError::Db(redb::Error::from(e)))?
        {}
        drop(guard);
        Ok((before, size()))
    }

    /// Proves the store answers: opens a read transaction and reads the schema version.
    pub fn ping(&self) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(meta_key::SCHEMA)?.map(|v| v.value()).unwrap_or(0))
    }

    /// Closes the database cleanly so the next start needs no repair. Fails if another handle
    /// (a request still running) holds it; the file is then closed when the last one drops.
    pub fn close(self) -> Result<(), StoreError> {
        let taken = self.db.write().take();
        match taken {
            Some(db) => db.close().map_err(|e| StoreError::Db(e.into())),
            None => Ok(()),
        }
    }
}
