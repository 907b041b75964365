//! How much room the store takes and has left: the size of its file, the free space of the
//! file system it lives on, how fast the file grows (so how many days until that space is
//! gone), the oldest raw reading still kept and the last prune. *Estado* and `/metrics` show
//! these so an operator sees a filling SD card before nothing more can be stored.
//!
//! Growth is measured from samples of the file size kept in memory (one a minute by the
//! service, the last 24 hours): after a restart it is unknown for [`MIN_SPAN`] again.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use redb::ReadableDatabase;

use super::tables::{META, READINGS, meta_key};
use super::{Store, StoreError};

/// How often the service samples the size of the store file.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(60);

/// How far back the growth rate looks.
pub const WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The shortest span of samples a growth rate is computed from: the file grows in steps, and
/// one step over a few minutes would predict the disk full far too soon.
pub const MIN_SPAN: Duration = Duration::from_secs(3600);

/// Samples of the store file's size over the last [`WINDOW`], oldest first.
#[derive(Debug, Default)]
pub struct Growth {
    /// (seconds since the sampler started, file size in bytes).
    samples: VecDeque<(u64, u64)>,
}

impl Growth {
    /// Adds a sample taken `at_s` seconds after the first and forgets those older than the
    /// window.
    pub fn record(&mut self, at_s: u64, bytes: u64) {
        if self.samples.back().is_some_and(|&(t, _)| at_s < t) {
            return;
        }
        self.samples.push_back((at_s, bytes));
        while self
            .samples
            .front()
            .is_some_and(|&(t, _)| at_s - t > WINDOW.as_secs())
        {
            self.samples.pop_front();
        }
    }

    /// Bytes a day the file grew over the samples kept; `None` while they span less than
    /// [`MIN_SPAN`]. A file that shrank counts as not growing (0).
    pub fn bytes_per_day(&self) -> Option<f64> {
        let (&(t0, b0), &(t1, b1)) = (self.samples.front()?, self.samples.back()?);
        let span = t1 - t0;
        if span < MIN_SPAN.as_secs() {
            return None;
        }
        Some(b1.saturating_sub(b0) as f64 * 86_400.0 / span as f64)
    }
}

/// Days until `free` bytes are used up at `per_day` bytes a day; `None` when the rate is
/// unknown or the store is not growing.
pub fn days_until_full(free: u64, per_day: Option<f64>) -> Option<f64> {
    per_day.filter(|r| *r > 0.0).map(|r| free as f64 / r)
}

/// The samples of this process (one store per service).
static GROWTH: LazyLock<Mutex<Growth>> = LazyLock::new(Mutex::default);

/// When the first sample was taken.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Records the current size of the store file (the service calls it every [`SAMPLE_EVERY`]).
pub fn sample(store: &Store) {
    let Ok(meta) = std::fs::metadata(store.path()) else {
        return;
    };
    let at = EPOCH.elapsed().as_secs();
    if let Ok(mut g) = GROWTH.lock() {
        g.record(at, on_disk(&meta));
    }
}

/// Bytes a file occupies on disk: redb extends its file ahead of use, so the allocated blocks,
/// not the length, show what it takes and how it grows.
fn on_disk(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.blocks() * 512
}

/// The free and total bytes of the file system holding `dir` (free: what this user may use).
pub fn filesystem(dir: &Path) -> Option<(u64, u64)> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some((
        st.f_bavail.saturating_mul(st.f_frsize),
        st.f_blocks.saturating_mul(st.f_frsize),
    ))
}

/// What the store takes and has left; `None` where it is not known.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// Size of the store file.
    pub store_bytes: Option<u64>,
    /// Bytes free on its file system (for this user).
    pub free_bytes: Option<u64>,
    /// Size of its file system.
    pub filesystem_bytes: Option<u64>,
    /// How fast the store file grew over the last 24 hours (at least an hour of samples).
    pub growth_bytes_per_day: Option<f64>,
    /// Days until the free space is used up at that rate; `None` when unknown or not growing.
    pub days_until_full: Option<f64>,
    /// Receive time (µs since the epoch) of the oldest raw reading kept, over every stage.
    pub oldest_reading_us: Option<i64>,
    /// When the last prune that removed readings ran (µs since the epoch); `None`: never.
    pub last_prune_us: Option<i64>,
    /// Raw readings pruned since the store was created.
    pub pruned_total: u64,
}

/// The oldest receive time in READINGS: the first chunk key of each stage, found by skipping
/// from one stage to the next (one short range lookup per stage, not a scan).
fn oldest_reading(txn: &redb::ReadTransaction) -> Result<Option<i64>, StoreError> {
    let table = txn.open_table(READINGS)?;
    let mut oldest: Option<i64> = None;
    let mut stage = 0u64;
    loop {
        let Some(row) = table.range((stage, i64::MIN)..)?.next() else {
            break;
        };
        let (s, ts) = row?.0.value();
        oldest = Some(oldest.map_or(ts, |o| o.min(ts)));
        match s.checked_add(1) {
            Some(next) => stage = next,
            None => break,
        }
    }
    Ok(oldest)
}

/// Reads the current [`Usage`] of `store` (a short read transaction and two system calls).
pub fn usage(store: &Store) -> Result<Usage, StoreError> {
    let txn = store.db()?.begin_read()?;
    let meta = txn.open_table(META)?;
    let last_prune_us = meta
        .get(meta_key::LAST_PRUNE_US)?
        .map(|v| v.value())
        .filter(|&v| v > 0)
        .and_then(|v| i64::try_from(v).ok());
    let pruned_total = meta
        .get(meta_key::PRUNED_TOTAL)?
        .map(|v| v.value())
        .unwrap_or(0);
    drop(meta);
    let oldest_reading_us = oldest_reading(&txn)?;
    drop(txn);
    let store_bytes = std::fs::metadata(store.path()).ok().map(|m| on_disk(&m));
    let fs = store.path().parent().and_then(filesystem);
    let growth_bytes_per_day = GROWTH.lock().ok().and_then(|g| g.bytes_per_day());
    Ok(Usage {
        store_bytes,
        free_bytes: fs.map(|f| f.0),
        filesystem_bytes: fs.map(|f| f.1),
        growth_bytes_per_day,
        days_until_full: fs.and_then(|f| days_until_full(f.0, growth_bytes_per_day)),
        oldest_reading_us,
        last_prune_us,
        pruned_total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_needs_an_hour_of_samples_and_forgets_after_a_day() {
        let mut g = Growth::default();
        assert_eq!(g.bytes_per_day(), None);
        g.record(0, 1_000_000);
        g.record(1800, 1_500_000);
        assert_eq!(g.bytes_per_day(), None, "half an hour is too short");
        g.record(3600, 2_000_000);
        // 1 MB an hour is 24 MB a day.
        assert_eq!(g.bytes_per_day(), Some(24_000_000.0));
        // A day later only the last 24 h count: flat since then.
        g.record(3600 + 86_400, 2_000_000);
        assert_eq!(g.bytes_per_day(), Some(0.0), "flat over the last day");
        g.record(3600 + 86_400 + 60, 2_000_000);
        assert_eq!(g.bytes_per_day(), None, "what is left spans a minute");
        g.record(3600 + 86_400 + 3600, 2_600_000);
        // 600 kB over the hour kept: 14.4 MB a day.
        assert_eq!(g.bytes_per_day(), Some(14_400_000.0));
        // A sample from before the last is ignored.
        g.record(10, 9_000_000);
        assert_eq!(g.bytes_per_day(), Some(14_400_000.0));
    }

    #[test]
    fn days_until_full_only_when_growing() {
        assert_eq!(days_until_full(10_000_000, Some(1_000_000.0)), Some(10.0));
        assert_eq!(days_until_full(10_000_000, Some(0.0)), None);
        assert_eq!(days_until_full(10_000_000, None), None);
    }

    #[test]
    fn oldest_reading_is_the_first_key_of_any_stage() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("store");
        let empty = usage(&store).expect("usage");
        assert_eq!(empty.oldest_reading_us, None);
        assert_eq!(empty.last_prune_us, None);
        assert_eq!(empty.pruned_total, 0);
        assert!(empty.store_bytes.is_some_and(|b| b > 0));
        assert!(empty.free_bytes.is_some() && empty.filesystem_bytes.is_some());
        {
            let db = store.db().expect("db");
            let txn = db.begin_write().expect("write");
            {
                let mut t = txn.open_table(READINGS).expect("readings");
                for (stage, ts) in [(0u64, 500i64), (0, 900), (3, 200), (3, 950), (7, 300)] {
                    let r = crate::reading::Reading {
                        values: [Some(1.0); crate::reading::CHANNELS],
                        extra: Vec::new(),
                        sensor_ts_ms: None,
                        source: "Prueba".into(),
                        clock: crate::reading::TimeMark::Synced,
                    };
                    crate::store::readings::insert(&mut t, stage, vec![(ts, r)]).expect("insert");
                }
                let mut m = txn.open_table(META).expect("meta");
                m.insert(meta_key::LAST_PRUNE_US, 1_764_000_000_000_000u64)
                    .expect("meta");
                m.insert(meta_key::PRUNED_TOTAL, 1234u64).expect("meta");
            }
            txn.commit().expect("commit");
        }
        let u = usage(&store).expect("usage");
        assert_eq!(u.oldest_reading_us, Some(200));
        assert_eq!(u.last_prune_us, Some(1_764_000_000_000_000));
        assert_eq!(u.pruned_total, 1234);
        store.close().expect("close");
    }
}
