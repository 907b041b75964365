//! `biogestor reindex`: recomputes the daily gas figures from the stored readings, directly in
//! the store, so days stored by an earlier release (or under another
//! `site.max_gas_flow_m3_h`, or other gas settings: their normal cubic metres are recomputed
//! interval by interval) show what this release's rules give. It needs the service
//! stopped (the store admits one process).

use crate::compact::{CompactError, open_stopped};
use crate::config::ValidConfig;
use crate::store::reindex::Rebuilt;

/// Why the rebuild did not happen: the same reasons as any command that needs the service
/// stopped (see [`crate::compact`]).
pub type ReindexError = CompactError;

/// Rebuilds the daily aggregates and meter states of the configured store.
pub fn run(cfg: &ValidConfig) -> Result<Rebuilt, ReindexError> {
    let store = open_stopped(cfg)?;
    let rebuilt = store.reindex(cfg.meter_rules())?;
    store.close()?;
    Ok(rebuilt)
}
