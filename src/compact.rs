//! `biogestor compact`: gives the space of pruned readings back to the filesystem. The store
//! reuses freed pages by itself but never shrinks its file; with the service stopped this
//! rewrites it without them. Readings a previous run left in the journal are stored first.

use crate::config::ValidConfig;
use crate::store::{Store, StoreError, writer};

/// Why a command that needs the service stopped (`compact`, `reindex`) did not run; messages
/// say what to do.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// The service holds the store.
    #[error(
        "the store in {0} is in use by the running service. Stop it first \
         (`sudo systemctl stop biogestor`), run this command again, then start it"
    )]
    InUse(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Opens the configured store (refusing while the service runs), applies any journaled
/// readings, and returns it for a maintenance command.
pub fn open_stopped(cfg: &ValidConfig) -> Result<Store, CompactError> {
    let store =
        Store::open(cfg.data_dir(), cfg.raw.storage.cache_size_mb, cfg.timezone).map_err(|e| {
            match e {
                StoreError::InUse { .. } => {
                    CompactError::InUse(cfg.data_dir().display().to_string())
                }
                other => other.into(),
            }
        })?;
    let (w, join) = writer::spawn(store.clone(), cfg.writer_config())?;
    let flushed = w.flush();
    drop(w);
    let _ = join.join();
    flushed?;
    Ok(store)
}

/// Compacts the configured store; returns its size before and after, in bytes.
pub fn run(cfg: &ValidConfig) -> Result<(u64, u64), CompactError> {
    let store = open_stopped(cfg)?;
    let sizes = store.compact()?;
    store.close()?;
    Ok(sizes)
}
