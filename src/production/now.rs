//! The comparison of a stage as of now, read from the store: the one entry point for every
//! consumer (the production chart, reports, the production alarm), so they all show the same
//! figures.

use crate::model::MaterialParams;
use crate::sitetime::{elapsed_fraction_of_today, local_day, today};
use crate::store::stages::Stage;
use crate::store::{Store, StoreError};

use super::{Calendar, Production, ProductionError, SiteModel, compute};

/// Why the comparison as of now cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum NowError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Production(#[from] ProductionError),
}

/// Compares `stage` with its stored daily rows up to today (or its close). Blocking: reads
/// the store.
pub fn compute_now(
    store: &Store,
    stage: &Stage,
    material: Option<&MaterialParams>,
    site: SiteModel,
) -> Result<Production, NowError> {
    let tz = store.timezone();
    let daily = store.daily(stage.id, stage.date, i32::MAX)?;
    let closed_day = stage.closed_us.map(|us| local_day(tz, us));
    Ok(compute(
        stage,
        material,
        &daily,
        Calendar {
            tz,
            today: today(tz),
            today_elapsed: elapsed_fraction_of_today(tz),
        },
        closed_day,
        site,
    )?)
}
