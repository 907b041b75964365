//! The clock's watcher: once a second it reads the synchronisation state, notices jumps of the
//! best estimate (against the monotonic clock, which never jumps) and keeps the
//! unsynchronised period; a jump that ends such a period re-dates what was stamped in it,
//! through the store writer (which forgets its caches afterwards).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{ClockState, jumped, now_us, offset_us, set_offset_us, set_state, state, sys};
use crate::config::clock::{ClockConfig, SyncCheck};
use crate::sitetime::PLAUSIBLE_CLOCK_US;
use crate::store::daily::MeterRules;
use crate::store::redate::{Redated, close_period, redate};
use crate::store::writer::WriterHandle;
use crate::store::{Store, StoreError};

/// A change of the best estimate against the monotonic clock larger than this is a jump
/// (NTP slews by at most 0.5 ms per second).
pub const JUMP_US: i64 = 2_000_000;
/// A clock this far behind the newest stored reading is not trusted.
const BEHIND_US: i64 = 60_000_000;
/// The period starts this long before it is noticed: readings stamped just before are in it.
const PERIOD_SLACK_US: i64 = 5_000_000;
/// How often the state is read.
const TICK: Duration = Duration::from_secs(1);

/// Boot-time millisecond of the last jump (`i64::MIN` when none): token revocations are kept
/// a token lifetime past it (see `serve`).
static LAST_JUMP_BOOT_MS: AtomicI64 = AtomicI64::new(i64::MIN);

/// The jumps of this process: (boot-time millisecond, µs), newest last, at most
/// [`MAX_JUMPS`]. The time is the earliest the jump may have happened (for a jump noticed by
/// the watcher, its previous check), so a token issued near a jump is never moved by a jump
/// that came before it: at worst it expires early.
static JUMPS: Mutex<Vec<(i64, i64)>> = parking_lot::const_mutex(Vec::new());
/// Jumps remembered for token expiry.
const MAX_JUMPS: usize = 64;

/// Sum of the clock's jumps (µs) after the boot-time millisecond `boot_ms`: how far a
/// wall-clock time taken then has to move to be in today's clock (`auth::tokens`).
pub fn jumps_after(boot_ms: i64) -> i64 {
    JUMPS
        .lock()
        .iter()
        .filter(|(at, _)| *at > boot_ms)
        .map(|(_, by)| by)
        .sum()
}

/// Remembers a jump by `by_us` that happened at the earliest at boot-time `at_ms`.
fn record_jump(at_ms: Option<i64>, by_us: i64) {
    if let Some(at) = at_ms {
        LAST_JUMP_BOOT_MS.store(at, Ordering::Relaxed);
        let mut j = JUMPS.lock();
        if j.len() == MAX_JUMPS {
            j.remove(0);
        }
        j.push((at, by_us));
    }
}

/// Seconds since the last jump of the clock, `None` when it never jumped.
pub fn since_last_jump_s() -> Option<i64> {
    let at = LAST_JUMP_BOOT_MS.load(Ordering::Relaxed);
    (at != i64::MIN).then(|| sys::boottime_ms().map_or(0, |now| (now - at) / 1000))
}

/// Why the clock is not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No NTP client has synchronised it.
    NoNtp,
    /// It reads a time before the release year.
    BeforeRelease,
    /// It reads a time before the newest stored reading.
    BehindReadings,
}

impl Reason {
    /// The operator's explanation.
    pub fn text(self) -> &'static str {
        match self {
            Reason::NoNtp => {
                "El reloj no está sincronizado por NTP (sin internet o sin servidor de hora)."
            }
            Reason::BeforeRelease => {
                "El reloj marca una fecha anterior a 2026: el equipo arrancó sin hora."
            }
            Reason::BehindReadings => {
                "El reloj marca una hora anterior a la última lectura guardada."
            }
        }
    }
}

/// The last jump and what it re-dated.
#[derive(Debug, Clone, PartialEq)]
pub struct Jump {
    /// Best estimate right after the jump (µs).
    pub at_us: i64,
    pub by_us: i64,
    /// What the re-dating changed (`None`: no unsynchronised period to re-date).
    pub redated: Option<Redated>,
}

/// What the API shows about the clock.
#[derive(Debug, Clone)]
pub struct ClockStatus {
    pub state: ClockState,
    pub reason: Option<Reason>,
    pub now_us: i64,
    pub offset_us: i64,
    pub period_from_us: Option<i64>,
    pub last_jump: Option<Jump>,
}

struct Track {
    /// Best estimate minus monotonic time at the last check (µs).
    base_us: i64,
    /// Boot-time millisecond of the last check: the earliest a jump it notices happened.
    checked_ms: Option<i64>,
    /// Set by an administrator since the service started.
    adjusted: bool,
    period_from: Option<i64>,
    reason: Option<Reason>,
    last_jump: Option<Jump>,
}

/// What [`FieldClock::status`] reads, so a request never waits for a check (which may be
/// waiting for a re-dating).
#[derive(Default, Clone)]
struct Shown {
    reason: Option<Reason>,
    period_from: Option<i64>,
    last_jump: Option<Jump>,
}

struct Inner {
    shown: Mutex<Shown>,
    cfg: ClockConfig,
    store: Store,
    rules: MeterRules,
    writer: Mutex<Option<WriterHandle>>,
    track: Mutex<Track>,
    origin: Instant,
    stop: AtomicBool,
}

/// Handle to the field clock (cheap to clone).
#[derive(Clone)]
pub struct FieldClock {
    inner: Arc<Inner>,
}

/// Why a check could not finish.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store writer is not running")]
    NoWriter,
}

impl FieldClock {
    /// Applies the rehearsal offset, reads the stored period and the current state. Call
    /// before ingest starts, so the first readings are marked right.
    pub fn start(
        cfg: ClockConfig,
        store: Store,
        rules: MeterRules,
    ) -> Result<FieldClock, CheckError> {
        super::rehearse_offset(cfg.start_offset_s);
        let period_from = store.clock_period()?;
        let clock = FieldClock {
            inner: Arc::new(Inner {
                shown: Mutex::new(Shown::default()),
                cfg,
                store,
                rules,
                writer: Mutex::new(None),
                track: Mutex::new(Track {
                    base_us: 0,
                    checked_ms: sys::boottime_ms(),
                    adjusted: false,
                    period_from,
                    reason: None,
                    last_jump: None,
                }),
                origin: Instant::now(),
                stop: AtomicBool::new(false),
            }),
        };
        {
            let mut t = clock.inner.track.lock();
            t.base_us = now_us() - clock.mono_us();
        }
        clock.check()?;
        Ok(clock)
    }

    /// Gives the clock the writer that re-dates; starts the once-a-second watcher.
    pub fn run(&self, writer: WriterHandle) -> std::io::Result<()> {
        *self.inner.writer.lock() = Some(writer);
        let me = self.clone();
        std::thread::Builder::new()
            .name("field-clock".into())
            .spawn(move || {
                while !me.inner.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    if let Err(e) = me.check() {
                        tracing::error!(error = %e, "clock check failed");
                    }
                }
            })?;
        Ok(())
    }

    /// Stops the watcher (at shutdown, before the writer stops).
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        *self.inner.writer.lock() = None;
    }

    fn mono_us(&self) -> i64 {
        self.inner.origin.elapsed().as_micros() as i64
    }

    /// Whether an NTP client keeps the system clock synchronised.
    pub(super) fn ntp_synchronised(&self) -> bool {
        let flag = || self.inner.cfg.sync_file.exists();
        match self.inner.cfg.sync_check {
            SyncCheck::Kernel => sys::kernel_synchronised().unwrap_or_else(flag),
            SyncCheck::File => flag(),
        }
    }

    /// How an administrator's time is applied.
    pub fn config(&self) -> &ClockConfig {
        &self.inner.cfg
    }

    /// Reads the state, handles a jump and keeps the period.
    pub fn check(&self) -> Result<(), CheckError> {
        let mut t = self.inner.track.lock();
        let ntp = self.ntp_synchronised();
        if ntp {
            // NTP is better than any browser: drop the appliance's own correction (and a
            // rehearsal's wrong start, as NTP stepping a wrong system clock would).
            t.adjusted = false;
            if offset_us() != 0 {
                set_offset_us(0);
            }
        }
        let best = now_us();
        let base = best - self.mono_us();
        let by = base - t.base_us;
        if by.abs() > JUMP_US {
            tracing::warn!(by_s = by / 1_000_000, "the clock jumped");
            record_jump(t.checked_ms, by);
            self.on_jump(&mut t, by, best - by)?;
        }
        t.base_us = base;
        t.checked_ms = sys::boottime_ms();
        let last = self
            .inner
            .store
            .counters()
            .last_reading_us
            .load(Ordering::Relaxed);
        t.reason = if ntp || t.adjusted {
            None
        } else if best < PLAUSIBLE_CLOCK_US {
            Some(Reason::BeforeRelease)
        } else if last > 0 && best < last - BEHIND_US {
            Some(Reason::BehindReadings)
        } else {
            Some(Reason::NoNtp)
        };
        let new = if ntp {
            ClockState::Synced
        } else if t.adjusted {
            ClockState::Adjusted
        } else {
            ClockState::Unsynced
        };
        self.settle(&mut t, new, best)
    }

    /// Moves to state `new`, opening or closing the unsynchronised period.
    fn settle(&self, t: &mut Track, new: ClockState, best: i64) -> Result<(), CheckError> {
        let done = self.settle_period(t, new, best);
        *self.inner.shown.lock() = Shown {
            reason: t.reason,
            period_from: t.period_from,
            last_jump: t.last_jump.clone(),
        };
        done
    }

    fn settle_period(&self, t: &mut Track, new: ClockState, best: i64) -> Result<(), CheckError> {
        match (new, t.period_from) {
            (ClockState::Unsynced, None) => {
                let from = best - PERIOD_SLACK_US;
                set_state(new);
                self.inner.store.set_clock_period(Some(from))?;
                t.period_from = Some(from);
                tracing::warn!("the clock is not synchronised: readings are marked until it is");
            }
            (ClockState::Synced | ClockState::Adjusted, Some(_)) => {
                // Trusted again without a jump: the clock was right all along.
                set_state(new);
                self.inner.store.set_clock_period(None)?;
                t.period_from = None;
            }
            _ => set_state(new),
        }
        Ok(())
    }

    /// Records a jump by `by_us` (the best estimate read `old_now_us` before it) and re-dates
    /// the open period.
    fn on_jump(&self, t: &mut Track, by_us: i64, old_now_us: i64) -> Result<(), CheckError> {
        let Some(from) = t.period_from else {
            jumped(by_us, || ());
            t.last_jump = Some(Jump {
                at_us: now_us(),
                by_us,
                redated: None,
            });
            return Ok(());
        };
        let writer = self
            .inner
            .writer
            .lock()
            .clone()
            .ok_or(CheckError::NoWriter)?;
        let (tz, rules) = (self.inner.store.timezone(), self.inner.rules);
        let result = Arc::new(Mutex::new(None));
        let slot = result.clone();
        let job = Box::new(move |txn: &redb::WriteTransaction, progress: &dyn Fn()| {
            let out = redate(txn, tz, rules, (from, old_now_us, by_us), progress)?;
            close_period(txn)?;
            *slot.lock() = Some(out);
            Ok(())
        });
        // Queued while no stamp can be resolved: every reading stamped before the jump is
        // queued before the re-dating, every later one is stamped in the new clock.
        let done = jumped(by_us, || writer.exclusive(job))?;
        done.recv().map_err(|_| CheckError::NoWriter)??;
        let out = result.lock().take().unwrap_or_default();
        self.inner
            .store
            .counters()
            .last_reading_us
            .store(out.last_reading_us, Ordering::Relaxed);
        tracing::warn!(
            by_s = by_us / 1_000_000,
            readings = out.readings,
            stages = out.stages,
            "readings and stages of the unsynchronised period re-dated"
        );
        t.period_from = None;
        t.last_jump = Some(Jump {
            at_us: now_us(),
            by_us,
            redated: Some(out),
        });
        Ok(())
    }

    /// Sets the time an administrator's browser reads (µs), the jump measured against the
    /// best estimate; returns the jump. The caller has checked it may.
    pub(super) fn apply_set(
        &self,
        browser_us: i64,
        set: impl FnOnce(i64) -> std::io::Result<()>,
    ) -> Result<Result<Jump, std::io::Error>, CheckError> {
        let mut t = self.inner.track.lock();
        let before = now_us();
        let by = browser_us - before;
        // Recorded before the clock moves: a token issued meanwhile is not moved by it.
        let at = sys::boottime_ms();
        if let Err(e) = set(by) {
            return Ok(Err(e));
        }
        record_jump(at, by);
        t.adjusted = true;
        self.on_jump(&mut t, by, before)?;
        t.base_us = now_us() - self.mono_us();
        t.reason = None;
        self.settle(&mut t, ClockState::Adjusted, now_us())?;
        Ok(Ok(t.last_jump.clone().unwrap_or(Jump {
            at_us: now_us(),
            by_us: by,
            redated: None,
        })))
    }

    /// What the API shows (as of the last finished check).
    pub fn status(&self) -> ClockStatus {
        let t = self.inner.shown.lock().clone();
        ClockStatus {
            state: state(),
            reason: t.reason,
            now_us: now_us(),
            offset_us: offset_us(),
            period_from_us: t.period_from,
            last_jump: t.last_jump.clone(),
        }
    }
}
