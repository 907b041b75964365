//! Failed-login limiting: at most [`MAX_FAILURES`] failures per key (user name, client
//! address) in a sliding [`WINDOW`]; after that the key is refused until the oldest failure
//! leaves the window. Only failures count, so a user who logs in correctly is never slowed.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per key within [`WINDOW`].
pub const MAX_FAILURES: usize = 10;
/// The sliding window.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);
/// Keys tracked at most (oldest forgotten first), so a spray of user names cannot grow memory.
const MAX_KEYS: usize = 10_000;

/// Sliding-window failure counter per key.
#[derive(Default)]
pub struct FailureLimiter {
    keys: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailureLimiter {
    /// `Some(wait)` when `key` is locked out, with how long until it may try again.
    pub fn locked(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut keys = self.keys.lock().ok()?;
        lockout(keys.get_mut(key)?, now)
    }

    /// Records a failure for `key`.
    pub fn fail(&self, key: &str) {
        let now = Instant::now();
        if let Ok(mut keys) = self.keys.lock() {
            record(&mut keys, key, now);
        }
    }

    /// Counts an attempt for `key` as a failure before it is checked, unless `key` is locked
    /// out (then how long to wait). Checking and counting under one lock keeps simultaneous
    /// attempts from all passing the check before the first of them has failed; give a
    /// successful attempt back with [`FailureLimiter::forgive`].
    pub fn charge(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let Ok(mut keys) = self.keys.lock() else {
            return Ok(());
        };
        if let Some(wait) = keys.get_mut(key).and_then(|q| lockout(q, now)) {
            return Err(wait);
        }
        record(&mut keys, key, now);
        Ok(())
    }

    /// Takes back one charge of `key` (the attempt did not fail).
    pub fn forgive(&self, key: &str) {
        if let Ok(mut keys) = self.keys.lock()
            && let Some(q) = keys.get_mut(key)
        {
            q.pop_back();
            if q.is_empty() {
                keys.remove(key);
            }
        }
    }
}

/// Drops failures older than the window; `Some(wait)` when the rest reach the limit.
fn lockout(q: &mut VecDeque<Instant>, now: Instant) -> Option<Duration> {
    while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
        q.pop_front();
    }
    if q.len() >= MAX_FAILURES {
        q.front().map(|t| {
            WINDOW
                .saturating_sub(now.duration_since(*t))
                .max(Duration::from_secs(1))
        })
    } else {
        None
    }
}

fn record(keys: &mut HashMap<String, VecDeque<Instant>>, key: &str, now: Instant) {
    if keys.len() >= MAX_KEYS && !keys.contains_key(key) {
        keys.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        if keys.len() >= MAX_KEYS {
            return;
        }
    }
    let q = keys.entry(key.to_string()).or_default();
    q.push_back(now);
    while q.len() > MAX_FAILURES {
        q.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_ten_failures() {
        let l = FailureLimiter::default();
        for _ in 0..MAX_FAILURES - 1 {
            l.fail("ana");
        }
        assert!(l.locked("ana").is_none());
        l.fail("ana");
        let wait = l.locked("ana").unwrap();
        assert!(wait > Duration::from_secs(290) && wait <= WINDOW);
        assert!(l.locked("otro").is_none());
    }

    #[test]
    fn charges_count_until_forgiven() {
        let l = FailureLimiter::default();
        for _ in 0..MAX_FAILURES {
            l.charge("ana").unwrap();
        }
        assert!(
            l.charge("ana").is_err(),
            "the 11th concurrent attempt waits"
        );
        l.forgive("ana");
        assert!(l.locked("ana").is_none());
        l.charge("ana").unwrap();
        assert!(l.locked("ana").is_some());
    }
}
