//! Failed MQTT logins per source address: past the configured number within a minute, the
//! address is refused (CONNACK 3) until a minute has passed since its last failure, so a
//! password guesser on the LAN gets a handful of tries a minute instead of thousands.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The window failures are counted in, and how long an address stays refused.
const WINDOW: Duration = Duration::from_secs(60);
/// Most addresses tracked; beyond it the oldest entries are forgotten first.
const MAX_ADDRESSES: usize = 4096;

struct Entry {
    failures: u64,
    since: Instant,
    last: Instant,
}

/// Per-address failure counts.
pub struct Throttle {
    limit: u64,
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

impl Throttle {
    /// Refuses an address after `limit` failures within a minute.
    pub fn new(limit: u64) -> Throttle {
        Throttle {
            limit,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// True while `addr` must be refused without checking its credentials.
    pub fn is_throttled(&self, addr: IpAddr, now: Instant) -> bool {
        self.entries
            .lock()
            .get(&addr)
            .is_some_and(|e| e.failures >= self.limit && now.duration_since(e.last) < WINDOW)
    }

    /// Records a failed login from `addr`.
    pub fn failed(&self, addr: IpAddr, now: Instant) {
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_ADDRESSES && !entries.contains_key(&addr) {
            entries.retain(|_, e| now.duration_since(e.last) < WINDOW);
            if entries.len() >= MAX_ADDRESSES
                && let Some(oldest) = entries.iter().min_by_key(|(_, e)| e.last).map(|(a, _)| *a)
            {
                entries.remove(&oldest);
            }
        }
        let e = entries.entry(addr).or_insert(Entry {
            failures: 0,
            since: now,
            last: now,
        });
        // A fresh window once the previous one has passed without reaching the limit.
        if e.failures < self.limit && now.duration_since(e.since) >= WINDOW {
            e.failures = 0;
            e.since = now;
        }
        e.failures += 1;
        e.last = now;
    }

    /// Forgets an address's failures after it logged in successfully.
    pub fn succeeded(&self, addr: IpAddr) {
        self.entries.lock().remove(&addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_for_a_minute() {
        let t = Throttle::new(3);
        let ip: IpAddr = [192, 168, 1, 9].into();
        let other: IpAddr = [192, 168, 1, 10].into();
        let t0 = Instant::now();
        for _ in 0..2 {
            t.failed(ip, t0);
        }
        assert!(!t.is_throttled(ip, t0));
        t.failed(ip, t0);
        assert!(t.is_throttled(ip, t0));
        assert!(!t.is_throttled(other, t0), "other addresses are unaffected");
        assert!(t.is_throttled(ip, t0 + Duration::from_secs(59)));
        assert!(!t.is_throttled(ip, t0 + Duration::from_secs(61)));
    }

    #[test]
    fn slow_failures_never_add_up() {
        let t = Throttle::new(3);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let t0 = Instant::now();
        for i in 0..10 {
            t.failed(ip, t0 + Duration::from_secs(40 * i));
        }
        assert!(!t.is_throttled(ip, t0 + Duration::from_secs(400)));
    }

    #[test]
    fn success_clears() {
        let t = Throttle::new(1);
        let ip: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        t.failed(ip, t0);
        assert!(t.is_throttled(ip, t0));
        t.succeeded(ip);
        assert!(!t.is_throttled(ip, t0));
    }
}
