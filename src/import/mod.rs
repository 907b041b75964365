//! `biogestor import-django FILE [--media DIR] [--dry-run]`: brings an installation of the old
//! (Django) system along — accounts with their passwords, approval and permissions, filling
//! stages, sensor readings (with the daily aggregates rebuilt) and report records with their
//! files — with the service stopped. The whole file is validated first ([`dump`]); then one
//! store transaction writes it ([`crate::store::import`]), so a failure leaves the store as it
//! was and a second run adds nothing.

mod accounts;
pub mod dump;
mod history;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::compact::{CompactError, open_stopped};
use crate::config::ValidConfig;
use crate::payload::Limits;
use crate::reports::files;
use crate::rules::stage::Site;
use crate::store::import::{Added, ImportStoreError};

/// Why the import did not happen (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a folder")]
    NoMedia { path: PathBuf },
    #[error("nothing imported: {0}")]
    Record(#[from] dump::BadRecord),
    #[error(transparent)]
    Stopped(#[from] CompactError),
    #[error("nothing imported: {0}")]
    Store(#[from] ImportStoreError),
}

/// What the import found and did.
#[derive(Debug)]
pub struct Summary {
    pub dry_run: bool,
    /// Records per model in the file.
    pub counts: std::collections::BTreeMap<String, u64>,
    pub added: Added,
    pub rejected: Vec<String>,
    pub unusable_passwords: Vec<String>,
    /// Report files copied.
    pub files: usize,
    /// Readings in the file older than `storage.raw_retention_days` (0: no retention).
    pub beyond_retention: u64,
    pub elapsed: Duration,
}

impl Summary {
    /// The lines printed for the operator.
    pub fn describe(&self) -> String {
        let a = &self.added;
        let verb = if self.dry_run { "would add" } else { "added" };
        let total: u64 = self.counts.values().sum();
        let mut out = format!("file: {total} records");
        for (model, n) in &self.counts {
            out.push_str(&format!("\n  {model}: {n}"));
        }
        out.push_str(&format!(
            "\n{verb}: {} accounts, {} stages, {} readings, {} reports ({} report files)\
             \nalready present: {} accounts, {} stages, {} readings, {} reports\
             \ndaily rows after the import: {}",
            a.users,
            a.stages,
            a.readings,
            a.reports,
            self.files,
            a.users_present,
            a.stages_present,
            a.readings_present,
            a.reports_present,
            a.days
        ));
        if !self.rejected.is_empty() {
            out.push_str(&format!(
                "\nreadings refused by the payload rules (as the live system would): {}",
                self.rejected.len()
            ));
            for r in self.rejected.iter().take(10) {
                out.push_str(&format!("\n  {r}"));
            }
        }
        if !self.unusable_passwords.is_empty() {
            out.push_str(&format!(
                "\naccounts without a usable password (set one with `biogestor user passwd`): {}",
                self.unusable_passwords.join(", ")
            ));
        }
        if self.beyond_retention > 0 {
            out.push_str(&format!(
                "\n{} readings are older than storage.raw_retention_days: their daily figures \
                 and 10-minute statistics stay, the raw readings are pruned at the next start",
                self.beyond_retention
            ));
        }
        let secs = self.elapsed.as_secs_f64().max(1e-6);
        out.push_str(&format!(
            "\n{:.2} s, {:.0} records/s",
            secs,
            total as f64 / secs
        ));
        out
    }
}

/// Imports `file` into the configured store (or, with `dry_run`, says what it would add).
pub fn run(
    cfg: &ValidConfig,
    file: &Path,
    media: Option<&Path>,
    dry_run: bool,
) -> Result<Summary, ImportError> {
    let started = Instant::now();
    let text = std::fs::File::open(file).map_err(|source| ImportError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    if let Some(m) = media
        && !m.is_dir()
    {
        return Err(ImportError::NoMedia {
            path: m.to_path_buf(),
        });
    }
    let site = Site {
        timezone: cfg.timezone,
        materials: cfg.raw.materials.keys().cloned().collect(),
    };
    let limits = Limits {
        max_bytes: cfg.raw.mqtt.max_payload_bytes as usize,
        max_fields: cfg.raw.mqtt.max_fields as usize,
    };
    let parsed = dump::parse(text, &site, limits, media)?;
    let retention_days = cfg.raw.storage.raw_retention_days;
    let horizon_us = crate::sitetime::now_us() - (retention_days * 86_400e6) as i64;
    let beyond_retention = if retention_days > 0.0 {
        parsed
            .batch
            .readings
            .iter()
            .filter(|r| r.ts_us < horizon_us)
            .count() as u64
    } else {
        0
    };
    let store = open_stopped(cfg)?;
    let data_dir = cfg.data_dir().clone();
    let media_files = parsed.media;
    let mut copied = 0;
    let forward = cfg.raw.bridge.enabled();
    let result = store.import(
        parsed.batch,
        cfg.meter_rules(),
        forward,
        !dry_run,
        |added| copy_files(&data_dir, added, &media_files).map(|n| copied = n),
    );
    store.close().map_err(CompactError::from)?;
    let added = result?;
    let files = if dry_run {
        media_files
            .iter()
            .filter(|(i, _, _)| added.report_ids.iter().any(|(p, _)| p == i))
            .count()
    } else {
        copied
    };
    Ok(Summary {
        dry_run,
        counts: parsed.counts,
        added,
        rejected: parsed.rejected,
        unusable_passwords: parsed.unusable_passwords,
        files,
        beyond_retention,
        elapsed: started.elapsed(),
    })
}

/// Copies the files of the reports added into the reports folder; on a failure removes the
/// ones copied, so the transaction can be dropped with nothing left behind.
fn copy_files(data_dir: &Path, added: &Added, media: &[dump::MediaFile]) -> Result<usize, String> {
    let mut done = Vec::new();
    for (position, kind, src) in media {
        let Some(&(_, id)) = added.report_ids.iter().find(|(p, _)| p == position) else {
            continue;
        };
        let copy = std::fs::read(src)
            .map_err(|e| e.to_string())
            .and_then(|bytes| files::write(data_dir, id, *kind, &bytes).map_err(|e| e.to_string()));
        if let Err(e) = copy {
            for id in &done {
                files::remove_all(data_dir, *id);
            }
            return Err(format!("copying {}: {e}", src.display()));
        }
        done.push(id);
    }
    Ok(media
        .iter()
        .filter(|(p, _, _)| added.report_ids.iter().any(|(q, _)| q == p))
        .count())
}
