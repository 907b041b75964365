//! `biogestor reindex`: recomputes the daily gas figures from the stored readings, directly in
//! the store, so days stored by an earlier release (or under another
//! `site.max_gas_flow_m3_h`, or other gas settings: their normal cubic metres are recomputed
//! interval by interval) show what this release's rules give. It needs the service
//! stopped (the store admits one process).

use crate::config::ValidConfig;
use crate::store::StoreError;
use crate::store::reindex::Rebuilt;

/// Why the rebuild did not happen; messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReindexError {
    /// The service holds the store.
    #[error(
        "the store in {0} is in use by the running service. Stop it first \
         (`sudo systemctl stop biogestor`), run this command again, then start it"
    )]
    InUse(String),
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Rebuilds the daily aggregates and meter states of the configured store.
pub fn run(cfg: &ValidConfig) -> Result<Rebuilt, ReindexError> {
    let store = crate::compact::open_stopped(cfg).map_err(|e| match e {
        crate::compact::CompactError::InUse(dir) => ReindexError::InUse(dir),
        crate::compact::CompactError::Store(e) => e.into(),
    })?;
    let rebuilt = store.reindex(cfg.meter_rules())?;
    store.close()?;
    Ok(rebuilt)
}
