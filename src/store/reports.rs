//! Report records (the files themselves live in `data_dir/reports/`).

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::codec;
use super::tables::REPORTS;
use super::{Store, StoreError};

/// One generated report, as listed in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRecord {
    pub id: u64,
    pub created_us: i64,
    /// `normal` or `final`.
    pub report_type: String,
    pub stage_id: u64,
    pub stage_number: u32,
    pub user_name: String,
    /// Expected production to date and measured production, m³ (as printed in the files).
    pub production_estimated: f64,
    pub production_real: f64,
    pub observations: String,
    pub inferences: String,
    /// Whether the author wrote the inferences (else they are regenerated with the data).
    pub inferences_custom: bool,
    /// Last re-rendering, if any.
    pub regenerated_us: Option<i64>,
}

fn encode_report(v: &ReportRecord) -> Result<Vec<u8>, StoreError> {
    codec::encode("reports", v)
}

fn decode_report(bytes: &[u8]) -> Result<ReportRecord, StoreError> {
    codec::decode("reports", bytes)
}

impl Store {
    /// Saves (or replaces) a report record.
    pub fn put_report(&self, r: &ReportRecord) -> Result<(), StoreError> {
        let bytes = encode_report(r)?;
        let txn = self.db()?.begin_write()?;
        txn.open_table(REPORTS)?.insert(r.id, bytes.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// The report with `id`.
    pub fn report(&self, id: u64) -> Result<Option<ReportRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(REPORTS)?;
        let Some(v) = t.get(id)? else {
            return Ok(None);
        };
        Ok(Some(decode_report(v.value())?))
    }

    /// Every report, newest first.
    pub fn reports(&self) -> Result<Vec<ReportRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(REPORTS)?;
        let mut out = Vec::new();
        for row in t.iter()?.rev() {
            out.push(decode_report(row?.1.value())?);
        }
        Ok(out)
    }

    /// The highest report id used so far (0 when none).
    pub fn last_report_id(&self) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(REPORTS)?;
        Ok(t.last()?.map(|(k, _)| k.value()).unwrap_or(0))
    }
}
