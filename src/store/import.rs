//! Writing what was brought from the old system (see [`crate::import`]): accounts, stages,
//! readings and report records in one write transaction, so a failure — or a dry run, which
//! takes the same path and aborts — leaves the store as it was. Whatever is already there
//! (an account of the same name, a stage of the same number and day, a reading of the same
//! stage and time, a report of the same stage and creation time) is kept and counted, so
//! running the import again adds nothing. The daily aggregates and the 10-minute rollups are
//! rebuilt in the same transaction.

use std::collections::{BTreeMap, HashMap, HashSet};

use redb::{ReadableTable, WriteTransaction};

use super::codec;
use super::daily::MeterRules;
use super::readings as stored;
use super::reports::ReportRecord;
use super::stages::Stage;
use super::tables::{META, READINGS, REPORTS, STAGES, USERS_BY_NAME, meta_key};
use super::users::{NewUser, UserError, insert_user};
use super::{Store, StoreError};
use crate::reading::Reading;

/// A stage, keyed by its id in the old system.
pub struct ImportStage {
    pub key: u64,
    /// Everything but `id` (assigned here); `active` is kept only when the store had no stage.
    pub stage: Stage,
}

/// A reading of the old stage `stage_key`, at `ts_us`.
pub struct ImportReading {
    pub stage_key: u64,
    pub ts_us: i64,
    pub reading: Reading,
}

/// A report record of the old stage `stage_key` (`id`, `stage_id` and `stage_number` are
/// assigned here).
pub struct ImportReport {
    pub stage_key: u64,
    pub record: ReportRecord,
}

/// Everything to write, already validated.
#[derive(Default)]
pub struct Batch {
    /// Accounts with their creation time.
    pub users: Vec<(NewUser, i64)>,
    pub stages: Vec<ImportStage>,
    pub readings: Vec<ImportReading>,
    pub reports: Vec<ImportReport>,
}

/// What was added and what was there already.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Added {
    pub users: u64,
    pub users_present: u64,
    pub stages: u64,
    pub stages_present: u64,
    pub readings: u64,
    pub readings_present: u64,
    pub reports: u64,
    pub reports_present: u64,
    /// Daily rows after the rebuild.
    pub days: usize,
    /// The new report ids, by position in [`Batch::reports`] (the files take these ids).
    pub report_ids: Vec<(usize, u64)>,
}

/// Why the import could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ImportStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("account {0:?}: {1}")]
    User(String, UserError),
    #[error(
        "stage number {number} already exists here with another loading day; the old \
         system's stage {key} cannot be matched with it"
    )]
    StageNumber { number: u32, key: u64 },
    #[error("{0}")]
    BeforeCommit(String),
}

impl From<redb::Error> for ImportStoreError {
    fn from(e: redb::Error) -> Self {
        ImportStoreError::Store(e.into())
    }
}

macro_rules! redb_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for ImportStoreError {
            fn from(e: $t) -> Self {
                ImportStoreError::Store(e.into())
            }
        }
    )*};
}
redb_errors!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl Store {
    /// Writes `batch` in one transaction under the meter `rules`; with `forward` (the bridge
    /// to a central broker is on) the new readings are queued for it like live ones, so the
    /// central side receives the installation's history too. `before_commit` runs last,
    /// with what was added (it copies the report files); when it fails, or when `commit` is
    /// false (a dry run), the transaction is dropped and nothing changes.
    pub fn import(
        &self,
        batch: Batch,
        rules: MeterRules,
        forward: bool,
        commit: bool,
        before_commit: impl FnOnce(&Added) -> Result<(), String>,
    ) -> Result<Added, ImportStoreError> {
        let txn = self.db()?.begin_write()?;
        let mut added = Added::default();
        import_users(&txn, batch.users, &mut added)?;
        let stages = import_stages(&txn, batch.stages, &mut added)?;
        let keys = import_readings(&txn, batch.readings, &stages, &mut added)?;
        if forward {
            super::outbox::enqueue(&txn, &keys)?;
        }
        import_reports(&txn, batch.reports, &stages, &mut added)?;
        added.days = super::reindex::rebuild(&txn, self.tz, rules, &|| {})?.1;
        if !commit {
            txn.abort()?;
            return Ok(added);
        }
        if let Err(e) = before_commit(&added) {
            txn.abort()?;
            return Err(ImportStoreError::BeforeCommit(e));
        }
        txn.commit()?;
        Ok(added)
    }
}

fn import_users(
    txn: &WriteTransaction,
    users: Vec<(NewUser, i64)>,
    added: &mut Added,
) -> Result<(), ImportStoreError> {
    for (new, created_us) in users {
        let present = txn
            .open_table(USERS_BY_NAME)?
            .get(new.username.to_lowercase().as_str())?
            .is_some();
        if present {
            added.users_present += 1;
            continue;
        }
        let name = new.username.clone();
        insert_user(txn, new, created_us).map_err(|e| ImportStoreError::User(name, e))?;
        added.users += 1;
    }
    Ok(())
}

/// Writes the stages; returns the store's (id, number) of each old stage.
fn import_stages(
    txn: &WriteTransaction,
    stages: Vec<ImportStage>,
    added: &mut Added,
) -> Result<HashMap<u64, (u64, u32)>, ImportStoreError> {
    let mut t = txn.open_table(STAGES)?;
    let mut existing = Vec::new();
    for row in t.iter()? {
        existing.push(codec::decode::<Stage>("stages", row?.1.value())?);
    }
    let had_stages = !existing.is_empty();
    let mut next_id = existing.iter().map(|s| s.id).max().unwrap_or(0) + 1;
    // Readings the old system kept without a stage are stored as the live system stores them.
    let mut ids = HashMap::from([(0, (0, 0))]);
    for ImportStage { key, mut stage } in stages {
        if let Some(same) = existing.iter().find(|s| s.number == stage.number) {
            if same.date != stage.date {
                return Err(ImportStoreError::StageNumber {
                    number: stage.number,
                    key,
                });
            }
            ids.insert(key, (same.id, same.number));
            added.stages_present += 1;
            continue;
        }
        if had_stages && stage.active {
            // The store's own stages come later in its life: an imported stage is history.
            stage.active = false;
            stage.closed_us.get_or_insert(stage.created_us);
        }
        stage.id = next_id;
        next_id += 1;
        t.insert(stage.id, codec::encode("stages", &stage)?.as_slice())?;
        ids.insert(key, (stage.id, stage.number));
        existing.push(stage);
        added.stages += 1;
    }
    Ok(ids)
}

fn import_readings(
    txn: &WriteTransaction,
    readings: Vec<ImportReading>,
    stages: &HashMap<u64, (u64, u32)>,
    added: &mut Added,
) -> Result<Vec<(u64, i64)>, ImportStoreError> {
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    let mut keys = Vec::new();
    let mut by_stage: BTreeMap<u64, BTreeMap<i64, Reading>> = BTreeMap::new();
    {
        let t = txn.open_table(READINGS)?;
        let mut lookup = stored::Lookup::new(&t);
        for r in readings {
            let Some(&(stage, _)) = stages.get(&r.stage_key) else {
                continue;
            };
            let new = by_stage.entry(stage).or_default();
            if new.contains_key(&r.ts_us) || lookup.get(stage, r.ts_us)?.is_some() {
                added.readings_present += 1;
                continue;
            }
            new.insert(r.ts_us, r.reading);
            keys.push((stage, r.ts_us));
            added.readings += 1;
            lo = lo.min(r.ts_us);
            hi = hi.max(r.ts_us);
        }
    }
    let mut t = txn.open_table(READINGS)?;
    for (stage, rows) in by_stage {
        stored::insert(&mut t, stage, rows.into_iter().collect())?;
    }
    drop(t);
    if added.readings > 0 {
        super::rollups::rebuild_range(txn, lo, hi)?;
        let mut meta = txn.open_table(META)?;
        let total = meta.get(meta_key::READINGS_TOTAL)?.map_or(0, |v| v.value());
        meta.insert(meta_key::READINGS_TOTAL, total + added.readings)?;
        let last = meta
            .get(meta_key::LAST_READING_US)?
            .map_or(0, |v| v.value());
        meta.insert(meta_key::LAST_READING_US, last.max(hi.max(0) as u64))?;
    }
    Ok(keys)
}

fn import_reports(
    txn: &WriteTransaction,
    reports: Vec<ImportReport>,
    stages: &HashMap<u64, (u64, u32)>,
    added: &mut Added,
) -> Result<(), ImportStoreError> {
    let mut t = txn.open_table(REPORTS)?;
    let mut present = HashSet::new();
    for row in t.iter()? {
        let r: ReportRecord = codec::decode("reports", row?.1.value())?;
        present.insert((r.stage_id, r.created_us));
    }
    let mut next_id = t.last()?.map_or(0, |(k, _)| k.value()) + 1;
    for (
        i,
        ImportReport {
            stage_key,
            mut record,
        },
    ) in reports.into_iter().enumerate()
    {
        let Some(&(stage_id, number)) = stages.get(&stage_key) else {
            continue;
        };
        if !present.insert((stage_id, record.created_us)) {
            added.reports_present += 1;
            continue;
        }
        record.id = next_id;
        record.stage_id = stage_id;
        record.stage_number = number;
        next_id += 1;
        t.insert(record.id, codec::encode("reports", &record)?.as_slice())?;
        added.report_ids.push((i, record.id));
        added.reports += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use redb::{ReadableDatabase, ReadableTableMetadata};

    use super::*;
    use crate::payload::{Limits, parse};

    fn batch(email: &str) -> Batch {
        let limits = Limits {
            max_bytes: 1024,
            max_fields: 16,
        };
        let stage = Stage {
            id: 0,
            number: 1,
            date: 739_000,
            people: "Ana".into(),
            material_type: "bovino".into(),
            material_amount_kg: 500.0,
            material_humidity_pct: 87.0,
            added_water_m3: 0.0,
            temperature_c: 30.0,
            active: true,
            created_us: 1_000_000,
            closed_us: None,
        };
        Batch {
            users: vec![(
                NewUser {
                    username: "ana".into(),
                    email: email.into(),
                    first_name: String::new(),
                    last_name: String::new(),
                    password_hash: "pbkdf2_sha256$1$s$AAAA".into(),
                    approved: true,
                    permissions: 2,
                },
                0,
            )],
            stages: vec![ImportStage { key: 7, stage }],
            readings: (0..3)
                .map(|i| ImportReading {
                    stage_key: 7,
                    ts_us: 2_000_000 + i * 60_000_000,
                    reading: parse(
                        br#"{"presion": 1000, "caudal_gas": 0.01}"#,
                        "django",
                        limits,
                    )
                    .unwrap(),
                })
                .collect(),
            reports: Vec::new(),
        }
    }

    fn nothing_written(store: &Store) {
        assert!(store.users().unwrap().is_empty());
        assert!(store.stages().unwrap().is_empty());
        let txn = store.db().unwrap().begin_read().unwrap();
        assert_eq!(txn.open_table(READINGS).unwrap().len().unwrap(), 0);
    }

    #[test]
    fn a_failure_or_a_dry_run_leaves_the_store_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).unwrap();
        let rules = MeterRules::default();

        let dry = store
            .import(batch("ana@finca.co"), rules, false, false, |_| Ok(()))
            .unwrap();
        assert_eq!((dry.users, dry.stages, dry.readings), (1, 1, 3));
        nothing_written(&store);

        let failed = store.import(batch("ana@finca.co"), rules, false, true, |_| {
            Err("disco lleno".into())
        });
        assert!(matches!(failed, Err(ImportStoreError::BeforeCommit(m)) if m == "disco lleno"));
        nothing_written(&store);

        let added = store
            .import(batch("ana@finca.co"), rules, false, true, |_| Ok(()))
            .unwrap();
        assert_eq!((added.users, added.stages, added.readings), (1, 1, 3));
        assert!(added.days >= 1);
        let again = store
            .import(batch("ana@finca.co"), rules, false, true, |_| Ok(()))
            .unwrap();
        assert_eq!((again.users, again.stages, again.readings), (0, 0, 0));
        assert_eq!(
            (
                again.users_present,
                again.stages_present,
                again.readings_present
            ),
            (1, 1, 3)
        );
    }

    #[test]
    fn with_the_bridge_on_imported_readings_are_queued_for_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).unwrap();
        let rules = MeterRules::default();
        store
            .import(batch("ana@finca.co"), rules, true, true, |_| Ok(()))
            .unwrap();
        assert_eq!(store.outbox_state().unwrap().waiting, 3);
        store
            .import(batch("ana@finca.co"), rules, true, true, |_| Ok(()))
            .unwrap();
        assert_eq!(
            store.outbox_state().unwrap().waiting,
            3,
            "a second run queues nothing"
        );
    }
}
