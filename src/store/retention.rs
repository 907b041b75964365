//! Retention: raw readings are kept `storage.raw_retention_days`, and fewer when the disk
//! budget needs the room (`storage.min_free_mb` free on the filesystem, `storage.max_store_mb`
//! for the store). Only raw readings are ever pruned, oldest first; daily rows, rollups,
//! stages, reports and accounts are kept. A reading is never pruned while a consumer (a
//! forwarder's cursor, table `consumers`) still needs it or before it is in a rollup.
//!
//! Pruning runs on its own thread in transactions of at most [`CHUNK`] readings, so the writer
//! waits for one short transaction at a time. The database file never shrinks by itself:
//! pruned pages are reused for new readings (`biogestor compact`, service stopped, gives the
//! space back to the filesystem). Because of that, the disk budget is enforced by growth:
//! while the filesystem is below its minimum (or the store above its maximum) and the store
//! still grows, or the writer cannot commit, a share of the oldest readings is pruned and the
//! freed pages made reusable with a synced commit, until the store stops growing.
//!
//! Readings still queued for the bridge to a central broker ([`super::outbox`]) are kept too,
//! unless the disk is critically full (the writer cannot commit, or less than half of
//! `storage.min_free_mb` is free) and nothing else can go: then the oldest are pruned and the
//! seq range lost is recorded for the bridge's status and logged.
//!
//! A small reserve file (`biogestor.reserve`) is kept beside the store while there is room:
//! when the disk is full it is deleted first, so the prune itself has space to commit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Durability, ReadableDatabase, ReadableTable};

use super::outbox::{self, OUTBOX_KEYS};
use super::readings as stored;
use super::tables::{CONSUMERS, META, READINGS, meta_key};
use super::{Store, StoreError, rollups};

/// Most readings removed per transaction.
pub const CHUNK: usize = 5_000;
/// How far past the next stage's oldest reading one stage is pruned in one transaction.
const SLACK_US: i64 = 3_600 * 1_000_000;
/// Size of the reserve file released when the disk is full.
const RESERVE_BYTES: u64 = 8 << 20;
/// File name of the reserve inside `data_dir`.
pub const RESERVE_FILE: &str = "biogestor.reserve";

/// What to keep (from `[storage]`).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Raw readings older than this are pruned; None keeps them until space is needed.
    pub raw_retention: Option<Duration>,
    pub min_free_bytes: u64,
    /// 0: no limit.
    pub max_store_bytes: u64,
}

/// What one prune did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Readings removed for their age.
    pub aged: u64,
    /// Readings removed for the disk budget.
    pub for_space: u64,
}

impl Store {
    /// Sets where consumer `name` stands: it still needs every reading received at or after
    /// `from_us`, so retention keeps them.
    pub fn set_consumer_cursor(&self, name: &str, from_us: i64) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(CONSUMERS)?.insert(name, from_us)?;
        txn.commit()?;
        Ok(())
    }

    /// Forgets consumer `name` (its readings may be pruned again).
    pub fn remove_consumer(&self, name: &str) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(CONSUMERS)?.remove(name)?;
        txn.commit()?;
        Ok(())
    }

    /// Removes raw readings received before `before_us` (and no others that must be kept),
    /// oldest first, at most `limit`, in transactions of at most [`CHUNK`]. Returns how many.
    pub fn prune_raw(&self, before_us: i64, limit: u64) -> Result<u64, StoreError> {
        self.prune_raw_with(before_us, limit, true)
    }

    /// [`Store::prune_raw`] that may also prune readings still queued for the bridge (when
    /// the disk is critically full).
    pub fn prune_raw_queued(&self, before_us: i64, limit: u64) -> Result<u64, StoreError> {
        self.prune_raw_with(before_us, limit, false)
    }

    fn prune_raw_with(
        &self,
        before_us: i64,
        limit: u64,
        keep_queued: bool,
    ) -> Result<u64, StoreError> {
        let mut removed = 0u64;
        while removed < limit {
            let max = (limit - removed).min(CHUNK as u64) as usize;
            let n = self.prune_chunk(before_us, max, keep_queued)?;
            if n == 0 {
                break;
            }
            removed += n;
        }
        Ok(removed)
    }

    /// One transaction of [`Store::prune_raw`]: the oldest readings across stages.
    fn prune_chunk(
        &self,
        before_us: i64,
        max: usize,
        keep_queued: bool,
    ) -> Result<u64, StoreError> {
        let mut txn = self.db()?.begin_write()?;
        txn.set_durability(Durability::None)
            .map_err(|e| StoreError::Db(e.into()))?;
        let limit = {
            let consumers = txn.open_table(CONSUMERS)?;
            let mut limit = before_us;
            for row in consumers.iter()? {
                limit = limit.min(row?.1.value());
            }
            if keep_queued
                && let Some(oldest) = outbox::oldest_queued_us(&txn.open_table(OUTBOX_KEYS)?)?
            {
                limit = limit.min(oldest);
            }
            limit
        };
        let cursor = rollups::load_cursor(&txn.open_table(META)?)?;
        let mut keys = Vec::with_capacity(max);
        {
            let readings = txn.open_table(READINGS)?;
            // The oldest first key among stages; prune that stage up to the next stage's.
            let mut firsts = Vec::new();
            let mut from = Some(0u64);
            while let Some(s) = from {
                let Some((k, _)) = readings.range((s, i64::MIN)..)?.next().transpose()? else {
                    break;
                };
                let (stage, ts) = k.value();
                firsts.push((ts, stage));
                from = stage.checked_add(1);
            }
            firsts.sort_unstable();
            let Some(&(_, stage)) = firsts.first() else {
                return Ok(0);
            };
            // Stages are filled one after another, so their ranges rarely overlap; when they
            // do, an hour of slack keeps each transaction from taking one reading at a time.
            let upto = firsts
                .get(1)
                .map_or(limit, |(ts, _)| limit.min(ts.saturating_add(SLACK_US)));
            for row in stored::range(&readings, stage, i64::MIN, upto)? {
                let key = row?.0;
                if keys.len() == max || !rollups::folded_on_insert(cursor, key) {
                    break;
                }
                keys.push(key);
            }
            // The oldest stage is done but another's oldest is still too old.
            if keys.is_empty() && firsts.iter().skip(1).any(|(ts, _)| *ts < limit) {
                for (ts, s) in firsts.iter().skip(1).filter(|(ts, _)| *ts < limit) {
                    for row in stored::range(&readings, *s, *ts, limit)? {
                        let key = row?.0;
                        if keys.len() == max || !rollups::folded_on_insert(cursor, key) {
                            break;
                        }
                        keys.push(key);
                    }
                    if !keys.is_empty() {
                        break;
                    }
                }
            }
        }
        if keys.is_empty() {
            return Ok(0);
        }
        let newest = keys.iter().map(|k| k.1).max().unwrap_or(i64::MIN);
        if let Some((n, first, last)) = outbox::drop_pruned(&txn, &keys)? {
            tracing::error!(
                readings = n,
                seq_first = first,
                seq_last = last,
                "disk critically full: readings not yet forwarded to the central broker were \
                 pruned; the central side will miss this seq range"
            );
        }
        {
            let mut readings = txn.open_table(READINGS)?;
            let mut by_stage: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
            for (stage, ts) in &keys {
                by_stage.entry(*stage).or_default().push(*ts);
            }
            for (stage, mut ts) in by_stage {
                ts.sort_unstable();
                stored::remove(&mut readings, stage, &ts)?;
            }
            let mut meta = txn.open_table(META)?;
            let total = meta.get(meta_key::PRUNED_TOTAL)?.map_or(0, |v| v.value());
            meta.insert(meta_key::PRUNED_TOTAL, total + keys.len() as u64)?;
            let kept = meta
                .get(meta_key::RAW_KEPT_FROM_US)?
                .map_or(0, |v| v.value() as i64);
            meta.insert(meta_key::RAW_KEPT_FROM_US, kept.max(newest + 1) as u64)?;
            meta.insert(meta_key::LAST_PRUNE_US, crate::sitetime::now_us() as u64)?;
        }
        txn.commit()?;
        Ok(keys.len() as u64)
    }

    /// A synced empty commit: pages freed by earlier unsynced commits become reusable.
    pub fn sync(&self) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.commit()?;
        Ok(())
    }

    /// Raw readings stored now.
    pub fn raw_count(&self) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_read()?;
        stored::count(&txn.open_table(READINGS)?)
    }
}

/// The retention thread's state between passes.
pub struct Pruner {
    store: Store,
    policy: Policy,
    dir: PathBuf,
    last_len: u64,
}

impl Pruner {
    /// A pruner for `store` under `policy`.
    pub fn new(store: Store, policy: Policy) -> Pruner {
        let dir = store.path().parent().unwrap_or(store.path()).to_path_buf();
        let last_len = file_len(store.path());
        Pruner {
            store,
            policy,
            dir,
            last_len,
        }
    }

    /// One pass: prunes by age, then for the disk budget when needed.
    pub fn pass(&mut self) -> Result<Pruned, StoreError> {
        let mut done = Pruned::default();
        if let Some(keep) = self.policy.raw_retention {
            let horizon = crate::sitetime::now_us() - keep.as_micros() as i64;
            done.aged = self.store.prune_raw(horizon, u64::MAX)?;
        }
        let free = free_bytes(&self.dir).unwrap_or(u64::MAX);
        let len = file_len(self.store.path());
        let grew = len > self.last_len;
        let healthy = self.store.counters().writer_healthy.load(Ordering::Relaxed);
        let low = free < self.policy.min_free_bytes
            || (self.policy.max_store_bytes > 0 && len >= self.policy.max_store_bytes);
        tracing::trace!(free, len, grew, healthy, low, "retention pass");
        if !healthy && free < RESERVE_BYTES * 2 {
            release_reserve(&self.dir);
        }
        if (low && grew) || (!healthy && free < self.policy.min_free_bytes.max(RESERVE_BYTES)) {
            // A share of the oldest readings, enough to absorb a while of growth.
            let share = (self.store.raw_count()? / 50).max(10_000);
            done.for_space = self.store.prune_raw(i64::MAX, share)?;
            let critical = !healthy || free < self.policy.min_free_bytes / 2;
            if done.for_space == 0 && critical {
                done.for_space = self.store.prune_raw_queued(i64::MAX, share)?;
            }
            if done.for_space > 0 {
                tracing::warn!(
                    pruned = done.for_space,
                    free_mb = free >> 20,
                    store_mb = len >> 20,
                    "disk budget: oldest raw readings pruned"
                );
            }
        }
        if done.aged + done.for_space > 0 {
            self.store.sync()?;
        }
        if !low && free > self.policy.min_free_bytes + RESERVE_BYTES * 4 {
            ensure_reserve(&self.dir);
        }
        self.last_len = file_len(self.store.path());
        Ok(done)
    }
}

/// Starts the retention thread: a pass every `every` until `stop` is set.
pub fn spawn(
    store: Store,
    policy: Policy,
    every: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || {
            let mut pruner = Pruner::new(store, policy);
            while !stop.load(Ordering::Relaxed) {
                match pruner.pass() {
                    Ok(p) if p.aged > 0 => {
                        tracing::info!(pruned = p.aged, "raw readings past their retention pruned")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning failed; retrying later"),
                }
                let until = std::time::Instant::now() + every;
                while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        })
}

/// Bytes the file occupies on disk. redb extends its file before writing into it, so the
/// length runs ahead of the space used; the allocated blocks show the real growth.
fn file_len(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or(0, |m| m.blocks() * 512)
}

/// Bytes available to this user on the filesystem of `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

fn ensure_reserve(dir: &Path) {
    let path = dir.join(RESERVE_FILE);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() >= RESERVE_BYTES) {
        return;
    }
    let made = crate::fsmode::create_private_if_missing(&path).and_then(|()| {
        let f = std::fs::OpenOptions::new().write(true).open(&path)?;
        rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, RESERVE_BYTES)?;
        Ok(())
    });
    if let Err(e) = made {
        let _ = std::fs::remove_file(&path);
        tracing::debug!(error = %e, "reserve file not created");
    }
}

fn release_reserve(dir: &Path) {
    if std::fs::remove_file(dir.join(RESERVE_FILE)).is_ok() {
        tracing::warn!("disk full: reserve file released so pruning can commit");
    }
}

#[cfg(test)]
mod tests;
