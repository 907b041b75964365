//! The single writer thread: readings queue in a bounded channel and are committed together,
//! at the latest `commit_interval` after the oldest one arrived or as soon as the batch holds
//! `max_batch` readings. One durable (fsync'd) commit per batch keeps SD-card writes low; the
//! commit interval is the durability window.
//!
//! A failed commit (disk full, I/O error) keeps the batch in memory and retries with back-off;
//! the health check reports the writer unhealthy meanwhile. Nothing is dropped.
//!
//! The thread beats a [`Heartbeat`] at every loop turn (at least every [`TICK`], even when
//! idle) and at every retry, so the systemd watchdog can tell a writer that waits or retries
//! from one that is stuck inside a commit.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{ReadableTable, WriteTransaction};

use super::codec::{decode_daily, decode_meter, encode_daily, encode_meter, encode_reading};
use super::daily::fold::Fold;
use super::daily::{Daily, MeterRules, MeterState};
use super::tables::{DAILY, META, METERS, READINGS, meta_key};
use super::{Store, StoreError};
use crate::metrics;
use crate::reading::Reading;
use crate::watchdog::Heartbeat;

/// A reading stamped at most this far behind the newest stored key is stored right after it
/// (a shift of at most 100 ms) instead of searching for a free microsecond near its own stamp.
const BURST_SHIFT_US: i64 = 100_000;

/// Longest the writer waits without beating its heartbeat.
pub const TICK: Duration = Duration::from_millis(250);

/// A parsed reading waiting to be committed.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub stage: u64,
    pub ts_us: i64,
    pub reading: Reading,
}

enum Msg {
    Reading(Box<Incoming>),
    Flush(SyncSender<()>),
    Exclusive(ExclusiveJob, SyncSender<Result<(), StoreError>>),
}

/// Work that rewrites stored readings (re-dating after a clock jump): it runs in its own write
/// transaction between two batches, after everything queued before it is committed; the
/// writer then forgets its caches (newest key per stage, meter states) and reloads them. The
/// job calls the given function as it makes progress (the writer's heartbeat, so a long job
/// is not taken for a stuck writer).
pub type ExclusiveJob =
    Box<dyn FnOnce(&WriteTransaction, &dyn Fn()) -> Result<(), StoreError> + Send>;

/// How long a flush (shutdown) waits for a store that keeps failing before giving up.
const SHUTDOWN_GIVE_UP: Duration = Duration::from_secs(8);

/// Queue depth between ingest and the writer (≈ 10 MB at most): over a second at full rate.
const QUEUE: usize = 32_768;

/// Sending side of the writer queue (cheap to clone).
#[derive(Clone)]
pub struct WriterHandle {
    tx: SyncSender<Msg>,
    heartbeat: Heartbeat,
}

impl WriterHandle {
    /// The writer thread's heartbeat (for the watchdog).
    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }

    /// Queues a reading; blocks only when the queue is full (the writer is behind).
    pub fn submit(&self, item: Incoming) -> Result<(), StoreError> {
        self.tx
            .send(Msg::Reading(Box::new(item)))
            .map_err(|_| StoreError::WriterGone)
    }

    /// Queues `job` behind every reading queued before it; the receiver gets its outcome once
    /// it is committed (or failed, changing nothing).
    pub fn exclusive(
        &self,
        job: ExclusiveJob,
    ) -> Result<std::sync::mpsc::Receiver<Result<(), StoreError>>, StoreError> {
        let (tx, rx) = sync_channel(1);
        self.tx
            .send(Msg::Exclusive(job, tx))
            .map_err(|_| StoreError::WriterGone)?;
        Ok(rx)
    }

    /// Commits everything queued before this call and waits for it.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = sync_channel(1);
        self.tx
            .send(Msg::Flush(tx))
            .map_err(|_| StoreError::WriterGone)?;
        rx.recv().map_err(|_| StoreError::WriterGone)
    }
}

/// Batching parameters (from `[storage]`) and the meter rules of the daily aggregates (from
/// `[site]`).
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    pub commit_interval: Duration,
    pub max_batch: usize,
    pub meter: MeterRules,
}

/// Starts the writer thread. It runs until every [`WriterHandle`] is dropped, then commits
/// what is left and returns.
pub fn spawn(
    store: Store,
    cfg: WriterConfig,
) -> Result<(WriterHandle, JoinHandle<()>), StoreError> {
    let (tx, rx) = sync_channel(QUEUE);
    let mut writer = Writer::new(store, cfg)?;
    let heartbeat = writer.heartbeat.clone();
    let join = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || writer.run(rx))
        .map_err(|e| StoreError::Db(e.into()))?;
    Ok((WriterHandle { tx, heartbeat }, join))
}

struct Writer {
    store: Store,
    cfg: WriterConfig,
    batch: Vec<Incoming>,
    waiters: Vec<SyncSender<()>>,
    meters: HashMap<String, MeterState>,
    last_key: HashMap<u64, i64>,
    persisted_rejected: u64,
    persisted_dropped: u64,
    heartbeat: Heartbeat,
}

/// What waiting for the queue produced.
enum Received {
    Msg(Msg),
    Deadline,
    Closed,
}

impl Writer {
    fn new(store: Store, cfg: WriterConfig) -> Result<Self, StoreError> {
        let meters = load_meters(&store)?;
        let persisted_rejected = store.counters.rejected.load(Ordering::Relaxed);
        let persisted_dropped = store.counters.dropped.load(Ordering::Relaxed);
        Ok(Self {
            store,
            cfg,
            batch: Vec::new(),
            waiters: Vec::new(),
            meters,
            last_key: HashMap::new(),
            persisted_rejected,
            persisted_dropped,
            heartbeat: Heartbeat::new(),
        })
    }

    /// Waits for the next message until `deadline`, beating the heartbeat at least every
    /// [`TICK`].
    fn recv_until(&self, rx: &Receiver<Msg>, deadline: Instant) -> Received {
        loop {
            self.heartbeat.beat();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Received::Deadline;
            }
            match rx.recv_timeout(left.min(TICK)) {
                Ok(msg) => return Received::Msg(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Received::Closed,
            }
        }
    }

    fn run(&mut self, rx: Receiver<Msg>) {
        let mut open = true;
        while open {
            // Wait for the first item of a batch, waking up now and then to persist counters.
            match self.recv_until(&rx, Instant::now() + self.cfg.commit_interval) {
                Received::Msg(msg) => self.take(msg),
                Received::Deadline => {}
                Received::Closed => open = false,
            }
            let deadline = Instant::now() + self.cfg.commit_interval;
            while open && self.waiters.is_empty() && self.batch.len() < self.cfg.max_batch {
                match self.recv_until(&rx, deadline) {
                    Received::Msg(msg) => self.take(msg),
                    Received::Deadline => break,
                    Received::Closed => open = false,
                }
            }
            self.commit_with_retry(open);
        }
        tracing::debug!("store writer stopped");
    }

    /// Sleeps `d` while beating the heartbeat: retrying is being alive.
    fn sleep_beating(&self, d: Duration) {
        let until = Instant::now() + d;
        loop {
            self.heartbeat.beat();
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(TICK));
        }
    }

    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Reading(r) => self.batch.push(*r),
            Msg::Flush(done) => self.waiters.push(done),
            Msg::Exclusive(job, done) => {
                self.commit_with_retry(true);
                let _ = done.send(self.run_exclusive(job));
            }
        }
    }

    /// Runs an [`ExclusiveJob`] in its own transaction, then drops the caches it may have
    /// made stale.
    fn run_exclusive(&mut self, job: ExclusiveJob) -> Result<(), StoreError> {
        self.heartbeat.beat();
        let txn = self.store.db()?.begin_write()?;
        let beat = self.heartbeat.clone();
        job(&txn, &move || beat.beat())?;
        txn.commit()?;
        self.last_key.clear();
        self.meters = load_meters(&self.store)?;
        Ok(())
    }

    fn dirty(&self) -> bool {
        !self.batch.is_empty()
            || self.store.counters.rejected.load(Ordering::Relaxed) != self.persisted_rejected
            || self.store.counters.dropped.load(Ordering::Relaxed) != self.persisted_dropped
    }

    /// Commits the batch; on failure keeps it and retries (while the process runs).
    fn commit_with_retry(&mut self, running: bool) {
        let mut backoff = Duration::from_millis(200);
        let mut failing_since: Option<Instant> = None;
        while self.dirty() {
            self.heartbeat.beat();
            let started = Instant::now();
            match self.commit() {
                Ok(n) => {
                    self.store
                        .counters
                        .writer_healthy
                        .store(true, Ordering::Relaxed);
                    if n > 0 {
                        metrics::committed(n as u64, started.elapsed());
                        tracing::trace!(
                            readings = n,
                            ms = started.elapsed().as_millis() as u64,
                            "batch committed"
                        );
                    }
                    break;
                }
                Err(e) => {
                    self.store
                        .counters
                        .writer_healthy
                        .store(false, Ordering::Relaxed);
                    tracing::error!(error = %e, pending = self.batch.len(), "commit failed; readings kept in memory, retrying");
                    // After an I/O error (a full disk) redb refuses every later commit until
                    // the file is reopened: reopen, so freeing space is enough to recover.
                    if matches!(
                        e,
                        StoreError::Db(redb::Error::PreviousIo | redb::Error::Io(_))
                            | StoreError::Reopening
                    ) && let Err(reopen) = self.store.reopen()
                    {
                        tracing::error!(error = %reopen, "reopening the store failed; retrying");
                    }
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    // A shutdown waits for the flush; don't let a dead disk hold it past the
                    // service's stop timeout.
                    if !self.waiters.is_empty() && since.elapsed() > SHUTDOWN_GIVE_UP {
                        tracing::error!(
                            lost = self.batch.len(),
                            "store not writable at shutdown: giving up"
                        );
                        break;
                    }
                    self.sleep_beating(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    if !running && backoff >= Duration::from_secs(10) {
                        tracing::error!(
                            lost = self.batch.len(),
                            "giving up at shutdown: store not writable"
                        );
                        break;
                    }
                }
            }
        }
        for w in self.waiters.drain(..) {
            let _ = w.send(());
        }
    }

    fn commit(&mut self) -> Result<usize, StoreError> {
        let txn = self.store.db()?.begin_write()?;
        let mut meters = self.meters.clone();
        let mut last_key = self.last_key.clone();
        let last_us = self.write_batch(&txn, &mut meters, &mut last_key)?;
        let n = self.batch.len() as u64;
        let rejected = self.store.counters.rejected.load(Ordering::Relaxed);
        let dropped = self.store.counters.dropped.load(Ordering::Relaxed);
        let total = self.store.counters.readings_total.load(Ordering::Relaxed) + n;
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(meta_key::READINGS_TOTAL, total)?;
            meta.insert(meta_key::REJECTED, rejected)?;
            meta.insert(meta_key::DROPPED, dropped)?;
            if let Some(us) = last_us {
                meta.insert(meta_key::LAST_READING_US, us as u64)?;
            }
        }
        txn.commit()?;
        let c = &self.store.counters;
        c.readings_total.store(total, Ordering::Relaxed);
        if let Some(us) = last_us {
            c.last_reading_us.fetch_max(us, Ordering::Relaxed);
        }
        self.persisted_rejected = rejected;
        self.persisted_dropped = dropped;
        self.meters = meters;
        self.last_key = last_key;
        let done = self.batch.len();
        self.batch.clear();
        if self.batch.capacity() > 4 * self.cfg.max_batch.min(65_536) {
            self.batch.shrink_to(1024);
        }
        Ok(done)
    }

    /// Inserts the batch's readings and updates daily aggregates and meter states; returns the
    /// newest receive time written.
    fn write_batch(
        &self,
        txn: &WriteTransaction,
        meters: &mut HashMap<String, MeterState>,
        last_key: &mut HashMap<u64, i64>,
    ) -> Result<Option<i64>, StoreError> {
        let mut fold = Fold::new(self.store.tz, self.cfg.meter, meters);
        let mut newest = None;
        let mut buf = Vec::with_capacity(256);
        {
            let mut readings = txn.open_table(READINGS)?;
            let daily = txn.open_table(DAILY)?;
            let mut load = |key| -> Result<Option<Daily>, StoreError> {
                daily.get(key)?.map(|v| decode_daily(v.value())).transpose()
            };
            for item in &self.batch {
                let stage = item.stage;
                let last = match last_key.get(&stage) {
                    Some(v) => *v,
                    None => readings
                        .range((stage, i64::MIN)..=(stage, i64::MAX))?
                        .next_back()
                        .transpose()?
                        .map(|(k, _)| k.value().1)
                        .unwrap_or(i64::MIN),
                };
                // Keys are unique: a reading never overwrites another, even when the clock
                // steps back or two arrive in the same microsecond. A reading just behind the
                // newest key (a burst stamped within the same few microseconds) takes the next
                // free microsecond directly: probing upward from its own stamp would walk the
                // whole dense run of keys the burst wrote, once per reading.
                let mut ts = item.ts_us;
                if ts <= last {
                    if last - ts <= BURST_SHIFT_US {
                        ts = last + 1;
                    } else {
                        while readings.get((stage, ts))?.is_some() {
                            ts += 1;
                        }
                    }
                }
                buf = encode_reading(&item.reading, buf)?;
                readings.insert((stage, ts), buf.as_slice())?;
                last_key.insert(stage, last.max(ts));
                newest = newest.max(Some(ts));
                fold.apply(stage, ts, &item.reading, &mut load)?;
            }
        }
        let (days, touched) = fold.finish();
        let mut daily = txn.open_table(DAILY)?;
        for (key, day) in &days {
            daily.insert(*key, encode_daily(day)?.as_slice())?;
        }
        let mut meter_table = txn.open_table(METERS)?;
        for source in &touched {
            if let Some(m) = meters.get(source) {
                meter_table.insert(source.as_str(), encode_meter(m)?.as_slice())?;
            }
        }
        Ok(newest)
    }
}

/// Every source's stored meter state.
fn load_meters(store: &Store) -> Result<HashMap<String, MeterState>, StoreError> {
    let mut meters = HashMap::new();
    let txn = redb::ReadableDatabase::begin_read(&*store.db()?)?;
    let t = txn.open_table(METERS)?;
    for row in t.iter()? {
        let (k, v) = row?;
        meters.insert(k.value().to_string(), decode_meter(v.value())?);
    }
    Ok(meters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_writer_keeps_beating_even_with_a_long_commit_interval() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("store");
        let (handle, join) = spawn(
            store.clone(),
            WriterConfig {
                commit_interval: Duration::from_secs(60),
                max_batch: 100,
                meter: MeterRules::default(),
            },
        )
        .expect("writer");
        let beat = handle.heartbeat();
        for _ in 0..8 {
            std::thread::sleep(Duration::from_millis(150));
            assert!(
                beat.age() <= TICK + Duration::from_millis(100),
                "{:?}",
                beat.age()
            );
        }
        drop(handle);
        join.join().expect("join");
        store.close().expect("close");
    }

    #[test]
    fn a_burst_in_one_microsecond_keeps_every_reading_in_order() {
        use redb::{ReadableDatabase, ReadableTable};
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("store");
        let (handle, join) = spawn(
            store.clone(),
            WriterConfig {
                commit_interval: Duration::from_millis(20),
                max_batch: 10_000,
                meter: MeterRules::default(),
            },
        )
        .expect("writer");
        let t0 = 1_764_500_000_000_000i64;
        let n = 3000;
        for i in 0..n {
            let mut values = [None; crate::reading::CHANNELS];
            values[0] = Some(f64::from(i));
            let reading = Reading {
                values,
                extra: vec![],
                sensor_ts_ms: None,
                source: "t".into(),
                clock: Default::default(),
            };
            // A burst stamped in one microsecond, then one stamped a whole second earlier
            // (a clock step back) that must keep its own time.
            let ts_us = if i == n - 1 { t0 - 1_000_000 } else { t0 };
            handle
                .submit(Incoming {
                    stage: 1,
                    ts_us,
                    reading,
                })
                .expect("submit");
        }
        handle.flush().expect("flush");
        drop(handle);
        join.join().expect("join");
        let db = store.db().expect("db");
        let txn = db.begin_read().expect("read");
        let table = txn
            .open_table(crate::store::tables::READINGS)
            .expect("table");
        let rows: Vec<(i64, f64)> = table
            .iter()
            .expect("iter")
            .map(|row| {
                let (k, v) = row.expect("row");
                let r = crate::store::codec::decode_reading(v.value()).expect("decode");
                (k.value().1, r.values[0].expect("value"))
            })
            .collect();
        assert_eq!(rows.len(), n as usize, "no reading overwrote another");
        assert_eq!(
            rows[0],
            (t0 - 1_000_000, f64::from(n - 1)),
            "the step back keeps its time"
        );
        for (i, (ts, v)) in rows[1..].iter().enumerate() {
            assert_eq!(
                (*ts, *v),
                (t0 + i as i64, i as f64),
                "burst kept in arrival order"
            );
        }
        drop(table);
        drop(txn);
        drop(db);
        store.close().expect("close");
    }
}
