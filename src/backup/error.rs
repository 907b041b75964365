//! What can go wrong in a backup or restore, as one error type whose messages say what to do.

use std::path::{Path, PathBuf};

use crate::store::StoreError;

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

pub(super) fn io<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> BackupError + 'a {
    move |source| BackupError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}
