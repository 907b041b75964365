//! The field clock. A Raspberry Pi has no real-time clock and a farm often has no internet, so
//! the system clock may be wrong for weeks. This module owns:
//!
//! - the appliance's best estimate of now ([`now_us`]): the system clock plus a correction an
//!   administrator measured from a browser when the system clock cannot be set
//!   (`clock.set_clock = "appliance"`); every timestamp the appliance takes comes from here;
//! - whether that estimate can be trusted ([`ClockState`]), from the kernel's NTP state or
//!   systemd-timesyncd's flag file, and from the clock running behind the newest stored
//!   reading or before the release year;
//! - what happens when it jumps (an NTP step, `date -s`, the administrator setting it): the
//!   readings and stages stamped during the unsynchronised period are re-dated by the
//!   measured jump (see [`monitor`] and `store::redate`).

pub mod monitor;
pub mod set;
mod sys;

use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};

use parking_lot::{RwLock, RwLockReadGuard};

use crate::reading::TimeMark;

pub use monitor::FieldClock;

/// Correction added to the system clock (µs): the start offset of a rehearsal, or what an
/// administrator measured when the system clock could not be set.
static OFFSET_US: AtomicI64 = AtomicI64::new(0);
/// Sum of the jumps of the best estimate so far (µs). A time taken before a jump converts to
/// the current clock by adding the difference of this value between then and now.
static FRAME_US: RwLock<i64> = parking_lot::const_rwlock(0);
/// The current [`ClockState`].
static STATE: AtomicU8 = AtomicU8::new(ClockState::Synced as u8);

/// Whether the best estimate of now can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ClockState {
    /// An NTP client keeps the clock synchronised.
    Synced = 0,
    /// Not synchronised: timestamps may be wrong by anything.
    Unsynced = 1,
    /// Set by an administrator from a browser's clock since the service started.
    Adjusted = 2,
}

impl ClockState {
    /// The API's name.
    pub fn label(self) -> &'static str {
        match self {
            ClockState::Synced => "sincronizado",
            ClockState::Unsynced => "no_sincronizado",
            ClockState::Adjusted => "ajustado",
        }
    }

    fn from_u8(v: u8) -> ClockState {
        match v {
            1 => ClockState::Unsynced,
            2 => ClockState::Adjusted,
            _ => ClockState::Synced,
        }
    }
}

/// The system clock, µs since the epoch.
pub fn system_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// The appliance's best estimate of now, µs since the epoch.
pub fn now_us() -> i64 {
    system_us() + OFFSET_US.load(Ordering::Relaxed)
}

/// The correction the appliance applies to the system clock, µs.
pub fn offset_us() -> i64 {
    OFFSET_US.load(Ordering::Relaxed)
}

fn set_offset_us(v: i64) {
    OFFSET_US.store(v, Ordering::Relaxed);
}

/// Milliseconds since boot on a clock no step moves (`CLOCK_BOOTTIME`).
pub fn boottime_ms() -> Option<i64> {
    sys::boottime_ms()
}

/// The current state.
pub fn state() -> ClockState {
    ClockState::from_u8(STATE.load(Ordering::Relaxed))
}

fn set_state(s: ClockState) {
    STATE.store(s as u8, Ordering::Relaxed);
}

/// A receive time as the ingest path takes it: the best estimate with the clock's frame and
/// state at that moment.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    us: i64,
    frame: i64,
    unsynced: bool,
}

/// Takes a receive time.
pub fn stamp() -> Stamp {
    let frame = *FRAME_US.read();
    Stamp {
        us: now_us(),
        frame,
        unsynced: state() == ClockState::Unsynced,
    }
}

/// Holds the clock's frame while a stamped reading is converted and queued, so a jump cannot
/// slip between the two (the jump then waits, and its re-dating comes after the reading).
pub struct FrameGuard(RwLockReadGuard<'static, i64>);

/// Locks the frame for [`FrameGuard::resolve`].
pub fn frame_guard() -> FrameGuard {
    FrameGuard(FRAME_US.read())
}

impl FrameGuard {
    /// The stamp in the current clock, with its mark: a stamp taken before a jump is moved by
    /// the jump (and marked re-dated).
    pub fn resolve(&self, s: Stamp) -> (i64, TimeMark) {
        let shift = *self.0 - s.frame;
        match (s.unsynced, shift) {
            (true, 0) => (s.us, TimeMark::Unsynced),
            (true, by_us) => (s.us + by_us, TimeMark::Redated { by_us }),
            (false, by_us) => (s.us + by_us, TimeMark::Synced),
        }
    }
}

/// Records a jump of the best estimate by `by_us` and runs `then` while no stamp can be
/// resolved (used to queue the re-dating behind every reading stamped before the jump).
fn jumped<T>(by_us: i64, then: impl FnOnce() -> T) -> T {
    let mut frame = FRAME_US.write();
    *frame += by_us;
    then()
}

/// Applies a rehearsal's start offset (`clock.start_offset_s`); call once at start.
pub fn rehearse_offset(offset_s: i64) {
    if offset_s != 0 {
        set_offset_us(offset_s * 1_000_000);
        tracing::warn!(
            offset_s,
            "clock.start_offset_s is set: the appliance's clock is deliberately wrong (rehearsal)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_taken_before_a_jump_moves_with_it() {
        let s = Stamp {
            us: 1_000,
            frame: 5,
            unsynced: true,
        };
        let g = FrameGuard(FRAME_US.read());
        let now = *g.0;
        let same = Stamp { frame: now, ..s };
        assert_eq!(g.resolve(same), (1_000, TimeMark::Unsynced));
        let before = Stamp {
            frame: now - 700,
            ..s
        };
        assert_eq!(g.resolve(before), (1_700, TimeMark::Redated { by_us: 700 }));
        let synced = Stamp {
            unsynced: false,
            frame: now,
            ..s
        };
        assert_eq!(g.resolve(synced), (1_000, TimeMark::Synced));
    }
}
