//! Table definitions. Keys are fixed-width integers so range scans by stage and time are cheap.

use redb::{TableDefinition, WriteTransaction};

/// Counters and schema version, by name.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// (stage id, receive time in µs since the epoch, UTC, of the chunk's first reading) → a chunk
/// of that stage's readings ([`super::codec::chunk`]); read and written through
/// [`super::readings`] only.
pub const READINGS: TableDefinition<(u64, i64), &[u8]> = TableDefinition::new("reading_chunks");

/// Readings as schema versions before 5 stored them, one row per reading: (stage id, receive
/// time) → postcard [`crate::reading::Reading`]. Moved into [`READINGS`] when such a store
/// (or a restored backup of one) is opened, then deleted.
pub const LEGACY_READINGS: TableDefinition<(u64, i64), &[u8]> = TableDefinition::new("readings");

/// (stage id, site-local day as days since 0001-01-01) → postcard [`super::daily::Daily`].
pub const DAILY: TableDefinition<(u64, i32), &[u8]> = TableDefinition::new("daily");

/// Source topic → postcard [`super::daily::MeterState`], so meter differences carry over
/// restarts and stage changes.
pub const METERS: TableDefinition<&str, &[u8]> = TableDefinition::new("meters");

/// Report id → postcard report record (written by the reports module).
pub const REPORTS: TableDefinition<u64, &[u8]> = TableDefinition::new("reports");

/// Stage id (from 1) → postcard [`super::stages::Stage`].
pub const STAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("stages");

/// User id → postcard [`super::users::User`].
pub const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");

/// Lower-cased user name → user id.
pub const USERS_BY_NAME: TableDefinition<&str, u64> = TableDefinition::new("users_by_name");

/// Lower-cased e-mail → user id.
pub const USERS_BY_EMAIL: TableDefinition<&str, u64> = TableDefinition::new("users_by_email");

/// Revoked token id, or `sid:` + revoked session id → when the tokens it names expire (s since
/// the epoch), pruned after that.
pub const REVOKED: TableDefinition<&str, i64> = TableDefinition::new("revoked_tokens");

/// MQTT client id → postcard [`super::sensors::SensorRecord`]: what the sensor registry
/// remembers about each client across restarts.
pub const SENSORS: TableDefinition<&str, &[u8]> = TableDefinition::new("sensors");

/// (stage id, start of a 10-minute bucket in s since the epoch, UTC) → postcard
/// [`super::rollups::Rollup`]: per-channel min/mean/max kept for years after the raw readings
/// are pruned; long charts read these.
pub const ROLLUPS: TableDefinition<(u64, i64), &[u8]> = TableDefinition::new("rollups");

/// Consumer name → receive time (µs) of the oldest reading it still needs (e.g. a forwarder
/// that has not sent it yet): retention never prunes a reading at or after the smallest one.
pub const CONSUMERS: TableDefinition<&str, i64> = TableDefinition::new("consumers");

/// Alarm id → postcard [`crate::alarms::Alarm`]: every alarm raised, active or cleared, with
/// who acknowledged it.
pub const ALARMS: TableDefinition<u64, &[u8]> = TableDefinition::new("alarms");

/// `"reglas"` → postcard [`crate::alarms::rules::RuleSet`]: the site's alarm thresholds.
pub const ALARM_RULES: TableDefinition<&str, &[u8]> = TableDefinition::new("alarm_rules");

/// Notification id → postcard [`crate::alarms::webhook::Outgoing`]: webhook messages not yet
/// delivered, with their retry state, so retries outlive a restart.
pub const ALARM_OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("alarm_outbox");

/// Names of the rows of [`META`].
pub mod meta_key {
    pub const SCHEMA: &str = "schema_version";
    pub const REJECTED: &str = "rejected_total";
    pub const DROPPED: &str = "dropped_total";
    pub const READINGS_TOTAL: &str = "readings_total";
    pub const LAST_READING_US: &str = "last_reading_us";
    /// Start (µs, the clock of that time) of the current period with an unsynchronised
    /// clock, absent when the clock is trusted (`crate::clock`).
    pub const CLOCK_UNSYNCED_FROM_US: &str = "clock_unsynced_from_us";
    /// Version of the meter rules the daily aggregates were computed with (missing: the
    /// first rules, before `biogestor reindex` existed).
    pub const AGGREGATES: &str = "aggregates_version";
    /// Random id of this store instance (renewed by a restore); tokens carry it.
    pub const INSTANCE_ID: &str = "instance_id";
    /// The next account id; never lowered, so ids are not handed out twice.
    pub const NEXT_USER_ID: &str = "next_user_id";
    /// Sequence of the last journal record applied to the database (see `store::journal`).
    pub const JOURNAL_SEQ: &str = "journal_seq";
    /// Where building rollups from readings stored before rollups existed stands (stage and
    /// receive time of the next reading to fold); absent when there is nothing left to build.
    pub const ROLLUP_CURSOR_STAGE: &str = "rollup_cursor_stage";
    pub const ROLLUP_CURSOR_US: &str = "rollup_cursor_us";
    /// Raw readings received before this time (µs) may have been pruned: days before it are
    /// only in the daily rows and rollups, which `reindex` must keep.
    pub const RAW_KEPT_FROM_US: &str = "raw_kept_from_us";
    /// When the last prune that removed raw readings ran (µs since the epoch); missing: never.
    pub const LAST_PRUNE_US: &str = "last_prune_us";
    /// Raw readings pruned since the store was created (missing: none).
    pub const PRUNED_TOTAL: &str = "pruned_total";
}

/// Creates every table so read transactions never meet a missing one.
pub fn create_all(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(META)?;
    txn.open_table(READINGS)?;
    txn.open_table(DAILY)?;
    txn.open_table(METERS)?;
    txn.open_table(REPORTS)?;
    txn.open_table(STAGES)?;
    txn.open_table(USERS)?;
    txn.open_table(USERS_BY_NAME)?;
    txn.open_table(USERS_BY_EMAIL)?;
    txn.open_table(REVOKED)?;
    txn.open_table(SENSORS)?;
    txn.open_table(ROLLUPS)?;
    txn.open_table(CONSUMERS)?;
    super::outbox::create_tables(txn)?;
    txn.open_table(ALARMS)?;
    txn.open_table(ALARM_RULES)?;
    txn.open_table(ALARM_OUTBOX)?;
    Ok(())
}
