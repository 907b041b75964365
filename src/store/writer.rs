//! The single writer thread: readings queue in a bounded channel and are committed together,
//! at the latest `commit_interval` after the oldest one arrived or as soon as the batch holds
//! `max_batch` readings. The commit interval is the durability window.
//!
//! Each batch is first appended to the [`Journal`] (one small synced write), then committed to
//! the database without a sync of its own; every `checkpoint_interval` (or when the journal
//! is half full, or at a flush) the database commit is durable and the journal starts over.
//! After a power cut the journal's records the database lost are applied again. Without a
//! journal (`storage.journal_mb = 0`, or when it cannot be created) every commit is durable.
//!
//! A failed commit (disk full, I/O error) does not stop intake while the journal has room:
//! batches keep being journaled (the file is preallocated, so a full disk does not stop it)
//! and are applied from it once the database can commit again. When the journal is full too,
//! the writer stops taking readings: the queue fills and the broker stops reading from
//! sensors, which keep their unacknowledged messages. At shutdown a failing store is retried
//! for [`STOP_GRACE`] at most; what is journaled is applied at the next start.
//!
//! The thread beats a [`Heartbeat`] at every loop turn (at least every [`TICK`], even when
//! idle) and at every retry, so the systemd watchdog can tell a writer that waits or retries
//! from one that is stuck inside a commit.

mod apply;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Durability, ReadableDatabase, WriteTransaction};

use super::daily::MeterRules;
use super::journal::{Journal, JournalError, Record};
use super::rollups;
use super::tables::{META, meta_key};
use super::{Store, StoreError};
use crate::metrics;
use crate::reading::Reading;
use crate::watchdog::Heartbeat;
use apply::Caches;

/// Longest the writer waits without beating its heartbeat.
pub const TICK: Duration = Duration::from_millis(250);

/// How long a stop retries a store that keeps failing before leaving the rest to the journal.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

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

/// Work that rewrites stored readings (re-dating after a clock jump): it runs in its own
/// (synced) write transaction between two batches, after everything queued before it is
/// committed; the writer then forgets its caches (newest key per stage, meter states) and
/// reloads them. The job calls the given function as it makes progress (the writer's
/// heartbeat, so a long job is not taken for a stuck writer).
pub type ExclusiveJob =
    Box<dyn FnOnce(&WriteTransaction, &dyn Fn()) -> Result<(), StoreError> + Send>;

/// Queue depth between ingest and the writer (≈ 10 MB at most): over a second at full rate.
const QUEUE: usize = 32_768;

/// Sending side of the writer queue (cheap to clone).
#[derive(Clone)]
pub struct WriterHandle {
    tx: SyncSender<Msg>,
    heartbeat: Heartbeat,
    stopping: Arc<AtomicBool>,
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

    /// Commits everything queued before this call durably and waits for it.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = sync_channel(1);
        self.tx
            .send(Msg::Flush(tx))
            .map_err(|_| StoreError::WriterGone)?;
        rx.recv().map_err(|_| StoreError::WriterGone)
    }

    /// Tells the writer the service is stopping: a store that cannot commit is retried for
    /// [`STOP_GRACE`] at most, and readings that fit nowhere no longer block intake.
    pub fn begin_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }
}

/// Batching parameters (from `[storage]`) and the meter rules of the daily aggregates (from
/// `[site]`).
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    pub commit_interval: Duration,
    pub max_batch: usize,
    pub meter: MeterRules,
    /// Size of the journal file; 0 commits every batch durably instead.
    pub journal_bytes: u64,
    /// Longest time between durable database commits while the journal is in use.
    pub checkpoint_interval: Duration,
    /// Queue every committed reading for the bridge to a central broker (`[bridge]` on).
    pub forward: bool,
}

impl WriterConfig {
    /// The settings of `[storage]` with the given meter rules.
    pub fn new(commit_interval: Duration, max_batch: usize, meter: MeterRules) -> Self {
        Self {
            commit_interval,
            max_batch,
            meter,
            journal_bytes: 4 << 20,
            checkpoint_interval: Duration::from_secs(1800),
            forward: false,
        }
    }
}

/// Starts the writer thread. Records a previous run left in the journal are applied first.
/// It runs until every [`WriterHandle`] is dropped, then commits what is left and returns.
pub fn spawn(
    store: Store,
    cfg: WriterConfig,
) -> Result<(WriterHandle, JoinHandle<()>), StoreError> {
    let (tx, rx) = sync_channel(QUEUE);
    let mut writer = Writer::new(store, cfg)?;
    // What the journal holds beyond the database is stored before the service says it is
    // ready (a store that cannot take it now gets it from the loop, once it can).
    if writer.backlog {
        writer.cycle(false);
    }
    let heartbeat = writer.heartbeat.clone();
    let stopping = writer.stopping.clone();
    let join = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || writer.run(rx))
        .map_err(|e| StoreError::Db(e.into()))?;
    Ok((
        WriterHandle {
            tx,
            heartbeat,
            stopping,
        },
        join,
    ))
}

/// A store that cannot commit: since when, and when to try again.
struct Failing {
    since: Instant,
    backoff: Duration,
    retry_at: Instant,
}

struct Writer {
    store: Store,
    cfg: WriterConfig,
    /// Received and not yet journaled (or, without a journal, not yet committed).
    batch: Vec<Incoming>,
    /// Sequence of the journal record holding `batch`, once written.
    journaled: Option<u64>,
    waiters: Vec<SyncSender<()>>,
    caches: Caches,
    persisted_rejected: u64,
    persisted_dropped: u64,
    heartbeat: Heartbeat,
    stopping: Arc<AtomicBool>,
    journal: Option<Journal>,
    /// Last journal record the database holds (committed, maybe not yet durably).
    applied_seq: u64,
    /// Journal records after `applied_seq` that are no longer in memory.
    backlog: bool,
    /// The last commit was not durable: a checkpoint is owed.
    unsynced: bool,
    last_durable: Instant,
    failing: Option<Failing>,
    /// The database was reopened after an error: caches and counters must be read again.
    reload: bool,
    /// Readings lost at a stop because neither the store nor the journal could take them.
    lost: u64,
}

/// What waiting for the queue produced.
enum Received {
    Msg(Msg),
    Deadline,
    Closed,
}

impl Writer {
    fn new(store: Store, cfg: WriterConfig) -> Result<Self, StoreError> {
        let caches = Caches::load(&store)?;
        let applied_seq = read_meta(&store, meta_key::JOURNAL_SEQ)?;
        let (journal, backlog) = open_journal(&store, &cfg, applied_seq);
        let persisted_rejected = store.counters.rejected.load(Ordering::Relaxed);
        let persisted_dropped = store.counters.dropped.load(Ordering::Relaxed);
        Ok(Self {
            store,
            cfg,
            batch: Vec::new(),
            journaled: None,
            waiters: Vec::new(),
            caches,
            persisted_rejected,
            persisted_dropped,
            heartbeat: Heartbeat::new(),
            stopping: Arc::new(AtomicBool::new(false)),
            journal,
            applied_seq,
            backlog,
            unsynced: false,
            last_durable: Instant::now(),
            failing: None,
            reload: false,
            lost: 0,
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
        loop {
            if self.blocked() {
                // Neither the store nor the journal can take more: leave readings in the
                // queue (back-pressure reaches the broker) until the retry is due.
                self.wait_for_retry(&rx, &mut open);
            } else {
                self.gather(&rx, &mut open);
            }
            self.cycle(open);
            if self.gave_up(open) {
                // A flush (the stop) does not wait for a store that cannot be written: what
                // it asked for is in the journal.
                for w in self.waiters.drain(..) {
                    let _ = w.send(());
                }
            }
            let idle = self.batch.is_empty() && !self.backlog && self.waiters.is_empty();
            if !open && (idle || self.gave_up(open)) {
                break;
            }
            if self.failing.is_none() {
                self.backfill_rollups();
            }
        }
        self.finish_stop();
        tracing::debug!("store writer stopped");
    }

    /// Collects a batch: waits for its first reading (waking up now and then to persist
    /// counters and checkpoints), then until the commit interval, `max_batch` or a flush.
    fn gather(&mut self, rx: &Receiver<Msg>, open: &mut bool) {
        match self.recv_until(rx, Instant::now() + self.cfg.commit_interval) {
            Received::Msg(msg) => self.take(msg),
            Received::Deadline => {}
            Received::Closed => *open = false,
        }
        let deadline = Instant::now() + self.cfg.commit_interval;
        while *open && self.waiters.is_empty() && self.batch.len() < self.cfg.max_batch {
            match self.recv_until(rx, deadline) {
                Received::Msg(msg) => self.take(msg),
                Received::Deadline => break,
                Received::Closed => *open = false,
            }
        }
    }

    /// Sleeps (beating) until the retry is due; while stopping, also empties the queue of what
    /// can no longer be stored so that intake can finish.
    fn wait_for_retry(&mut self, rx: &Receiver<Msg>, open: &mut bool) {
        let due = self
            .failing
            .as_ref()
            .map_or_else(Instant::now, |f| f.retry_at);
        while Instant::now() < due {
            self.heartbeat.beat();
            if self.gave_up(*open) {
                loop {
                    match rx.try_recv() {
                        Ok(Msg::Reading(_)) => self.lost += 1,
                        Ok(Msg::Flush(w)) => self.waiters.push(w),
                        Ok(Msg::Exclusive(_, done)) => {
                            let _ = done.send(Err(StoreError::WriterGone));
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            *open = false;
                            break;
                        }
                    }
                }
            }
            std::thread::sleep(TICK.min(due.saturating_duration_since(Instant::now())));
        }
    }

    /// The store is failing and the batch cannot be journaled: taking more would only grow
    /// memory.
    fn blocked(&self) -> bool {
        self.failing.is_some() && !self.batch.is_empty() && self.journaled.is_none()
    }

    /// A stop is under way (or every handle is gone) and the store has failed for longer than
    /// [`STOP_GRACE`].
    fn gave_up(&self, open: bool) -> bool {
        (self.stopping.load(Ordering::Relaxed) || !open)
            && self
                .failing
                .as_ref()
                .is_some_and(|f| f.since.elapsed() > STOP_GRACE)
    }

    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Reading(r) => self.batch.push(*r),
            Msg::Flush(done) => self.waiters.push(done),
            Msg::Exclusive(job, done) => {
                self.cycle(true);
                let _ = done.send(self.run_exclusive(job));
            }
        }
    }

    /// Runs an [`ExclusiveJob`] in its own synced transaction, then drops the caches it may
    /// have made stale.
    fn run_exclusive(&mut self, job: ExclusiveJob) -> Result<(), StoreError> {
        self.heartbeat.beat();
        let txn = self.store.db()?.begin_write()?;
        let beat = self.heartbeat.clone();
        job(&txn, &move || beat.beat())?;
        txn.commit()?;
        self.caches = Caches::load(&self.store)?;
        self.checkpointed();
        Ok(())
    }

    fn counters_dirty(&self) -> bool {
        self.store.counters.rejected.load(Ordering::Relaxed) != self.persisted_rejected
            || self.store.counters.dropped.load(Ordering::Relaxed) != self.persisted_dropped
    }

    /// Journals the batch, then commits whatever the database lacks when there is anything
    /// (skipping commits that would change nothing), unless a retry is not yet due.
    fn cycle(&mut self, open: bool) {
        self.journal_batch();
        let checkpoint_due = self.unsynced
            && (self.last_durable.elapsed() >= self.cfg.checkpoint_interval
                || !open
                || !self.waiters.is_empty()
                || self.stopping.load(Ordering::Relaxed)
                || self
                    .journal
                    .as_ref()
                    .is_some_and(|j| j.used() > j.room() / 2));
        let work = !self.batch.is_empty() || self.backlog || self.counters_dirty();
        if !work && !checkpoint_due {
            self.answer_waiters();
            return;
        }
        if let Some(f) = &self.failing
            && Instant::now() < f.retry_at
        {
            // Not due yet: a journaled batch waits in the journal, not in memory, so the next
            // batch can be journaled on its own.
            if self.journaled.take().is_some() {
                self.batch.clear();
                self.backlog = true;
            }
            return;
        }
        let durable = checkpoint_due
            || self.journal.is_none()
            || (!self.batch.is_empty() && self.journaled.is_none())
            || !self.waiters.is_empty()
            || !open;
        let started = Instant::now();
        match self.commit(durable) {
            Ok(n) => {
                if self.failing.take().is_some() {
                    tracing::info!("store writable again: pending readings committed");
                }
                self.store
                    .counters
                    .writer_healthy
                    .store(true, Ordering::Relaxed);
                if n > 0 {
                    metrics::committed(n as u64, started.elapsed());
                }
                if durable {
                    self.checkpointed();
                } else {
                    self.unsynced = true;
                }
                self.answer_waiters();
            }
            Err(e) => self.failed(e),
        }
    }

    /// Appends the batch to the journal once (a retry does not append it again).
    fn journal_batch(&mut self) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        if self.batch.is_empty() || self.journaled.is_some() {
            return;
        }
        let entries = self.batch.iter().map(|i| (i.stage, i.ts_us, &i.reading));
        match journal.append(entries) {
            Ok(seq) => self.journaled = Some(seq),
            // Committed durably without the journal (or kept until the store can be written).
            Err(JournalError::Full) => {}
            Err(e) => tracing::error!(error = %e, "journal write failed; committing durably"),
        }
    }

    /// One database transaction with everything the database lacks. Returns the readings
    /// committed.
    fn commit(&mut self, durable: bool) -> Result<usize, StoreError> {
        if self.reload {
            self.reload_after_reopen()?;
        }
        let mut txn = self.store.db()?.begin_write()?;
        if !durable {
            txn.set_durability(Durability::None)
                .map_err(|e| StoreError::Db(e.into()))?;
        }
        let mut caches = self.caches.clone();
        let (n, last_us, seq) = self.write_pending(&txn, &mut caches)?;
        let rejected = self.store.counters.rejected.load(Ordering::Relaxed);
        let dropped = self.store.counters.dropped.load(Ordering::Relaxed);
        let total = self.store.counters.readings_total.load(Ordering::Relaxed) + n as u64;
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(meta_key::READINGS_TOTAL, total)?;
            meta.insert(meta_key::REJECTED, rejected)?;
            meta.insert(meta_key::DROPPED, dropped)?;
            if let Some(us) = last_us {
                meta.insert(meta_key::LAST_READING_US, us as u64)?;
            }
            if let Some(seq) = seq {
                meta.insert(meta_key::JOURNAL_SEQ, seq)?;
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
        self.caches = caches;
        if let Some(seq) = seq {
            self.applied_seq = seq;
        }
        self.backlog = false;
        self.journaled = None;
        self.batch.clear();
        if self.batch.capacity() > 4 * self.cfg.max_batch.min(65_536) {
            self.batch.shrink_to(1024);
        }
        Ok(n)
    }

    /// Writes the journal records the database lacks (read back from the journal after a
    /// failure or a restart) or the batch in memory. Returns the readings written, the newest
    /// receive time and the last journal sequence applied.
    fn write_pending(
        &self,
        txn: &WriteTransaction,
        caches: &mut Caches,
    ) -> Result<(usize, Option<i64>, Option<u64>), StoreError> {
        let (tz, rules) = (self.store.tz, self.cfg.meter);
        if self.backlog
            && let Some(journal) = &self.journal
        {
            let records = journal.records_after(self.applied_seq);
            let mut items = Vec::new();
            let mut seq = None;
            for Record { seq: s, entries } in records {
                for e in entries {
                    items.push(Incoming {
                        stage: e.stage,
                        ts_us: e.ts_us,
                        reading: e.reading,
                    });
                }
                seq = Some(s);
            }
            // A batch the journal could not take is only in memory.
            if self.journaled.is_none() {
                items.extend(self.batch.iter().cloned());
            }
            let newest =
                apply::write_items(txn, (tz, rules, self.cfg.forward), caches, items.iter())?;
            return Ok((items.len(), newest, seq.or(Some(self.applied_seq))));
        }
        let newest = apply::write_items(
            txn,
            (tz, rules, self.cfg.forward),
            caches,
            self.batch.iter(),
        )?;
        Ok((self.batch.len(), newest, self.journaled))
    }

    /// A durable commit succeeded: the journal can start over if the database holds all of it.
    fn checkpointed(&mut self) {
        self.unsynced = false;
        self.last_durable = Instant::now();
        if let Some(j) = self.journal.as_mut()
            && j.last_seq() == self.applied_seq
            && j.used() > 0
            && let Err(e) = j.reset()
        {
            tracing::error!(error = %e, "journal reset failed; its records stay until the next checkpoint");
        }
    }

    fn failed(&mut self, e: StoreError) {
        self.store
            .counters
            .writer_healthy
            .store(false, Ordering::Relaxed);
        let pending = self.batch.len();
        // A journaled batch is safe on disk: free its memory, it is read back on the retry.
        if self.journaled.is_some() {
            self.batch.clear();
            self.journaled = None;
            self.backlog = true;
        }
        tracing::error!(
            error = %e,
            pending,
            journaled = self.backlog,
            "commit failed; readings kept (journaled or in memory), retrying"
        );
        // After an I/O error (a full disk) redb refuses every later commit until the file is
        // reopened: reopen, so freeing space is enough to recover. What the database had only
        // in memory may be gone: it is read again, and the journal applied again.
        if matches!(
            e,
            StoreError::Db(redb::Error::PreviousIo | redb::Error::Io(_)) | StoreError::Reopening
        ) {
            match self.store.reopen() {
                Ok(()) => self.reload = true,
                Err(reopen) => {
                    tracing::error!(error = %reopen, "reopening the store failed; retrying")
                }
            }
        }
        let now = Instant::now();
        let f = self.failing.get_or_insert(Failing {
            since: now,
            backoff: Duration::from_millis(100),
            retry_at: now,
        });
        f.backoff = (f.backoff * 2).min(Duration::from_secs(10));
        f.retry_at = now + f.backoff;
    }

    /// After a reopen: the database is what was last made durable.
    fn reload_after_reopen(&mut self) -> Result<(), StoreError> {
        self.caches = Caches::load(&self.store)?;
        self.applied_seq = read_meta(&self.store, meta_key::JOURNAL_SEQ)?;
        let c = &self.store.counters;
        c.readings_total.store(
            read_meta(&self.store, meta_key::READINGS_TOTAL)?,
            Ordering::Relaxed,
        );
        self.backlog = self
            .journal
            .as_ref()
            .is_some_and(|j| j.last_seq() > self.applied_seq);
        self.reload = false;
        Ok(())
    }

    fn answer_waiters(&mut self) {
        if self.batch.is_empty() && !self.backlog && !self.unsynced {
            for w in self.waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    /// One step of building rollups for readings stored before rollups existed.
    fn backfill_rollups(&mut self) {
        let step = || -> Result<bool, StoreError> {
            let db = self.store.db()?;
            let cursor = rollups::load_cursor(&db.begin_read()?.open_table(META)?)?;
            let Some(cursor) = cursor else {
                return Ok(false);
            };
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::None)
                .map_err(|e| StoreError::Db(e.into()))?;
            rollups::backfill_step(&txn, cursor)?;
            txn.commit()?;
            Ok(true)
        };
        match step() {
            Ok(stepped) => self.unsynced |= stepped,
            Err(e) => tracing::warn!(error = %e, "building rollups failed; retrying later"),
        }
    }

    /// The end of a stop: answers waiters and says what the next start will find.
    fn finish_stop(&mut self) {
        if self.backlog || !self.batch.is_empty() || self.lost > 0 {
            let unjournaled = if self.journaled.is_none() {
                self.batch.len() as u64
            } else {
                0
            };
            tracing::error!(
                journaled = self.backlog || self.journaled.is_some(),
                lost = self.lost + unjournaled,
                "store not writable at stop: journaled readings are applied at the next start"
            );
        }
        for w in self.waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

/// Opens the journal (none when disabled or impossible) and says whether it holds records the
/// database lacks.
fn open_journal(store: &Store, cfg: &WriterConfig, applied_seq: u64) -> (Option<Journal>, bool) {
    if cfg.journal_bytes == 0 {
        return (None, false);
    }
    let dir = store.path().parent().unwrap_or(store.path());
    match Journal::open(dir, cfg.journal_bytes, store.instance_id(), applied_seq) {
        Ok((journal, pending)) => {
            if !pending.is_empty() {
                let readings: usize = pending.iter().map(|r| r.entries.len()).sum();
                tracing::info!(
                    readings,
                    "applying journaled readings the last run did not store"
                );
            }
            (Some(journal), !pending.is_empty())
        }
        Err(e) => {
            tracing::error!(error = %e, "no journal: every commit is synced instead");
            (None, false)
        }
    }
}

fn read_meta(store: &Store, key: &str) -> Result<u64, StoreError> {
    let txn = store.db()?.begin_read()?;
    let meta = txn.open_table(META)?;
    Ok(meta.get(key)?.map(|v| v.value()).unwrap_or(0))
}

#[cfg(test)]
mod tests;
