//! Failed-login throttling. Three counters, each with its own [`Policy`] (a number of free
//! failures, then a wait after each further failure that doubles up to a ceiling):
//!
//! - per user name *and* client address ([`PAIR`]): somebody guessing one account from one
//!   place waits longer and longer; nobody else is affected;
//! - per client address ([`ADDRESS`]): one place trying many names is slowed;
//! - per user name ([`NAME`]): guesses spread over many addresses are slowed too.
//!
//! The last two are not applied where the account logged in successfully within [`TRUST`]
//! (the caller says so): failures elsewhere can never lock the owner out of the computer or
//! phone they use. Only the name-and-address counter applies there, so even a guesser sharing
//! that address only delays themselves.
//!
//! An attempt is counted before its password is checked ([`LoginThrottle::charge`]), so a
//! burst of simultaneous guesses cannot all pass the check before the first has failed; it is
//! given back if it turns out not to be a failure. Counters are forgotten after [`FORGET`]
//! without failures, and memory is bounded. Lockouts are returned to the caller for the log
//! and listed for administrators ([`LoginThrottle::lockouts`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How a counter answers failures: `free` failures cost nothing; after each further one the
/// next attempt waits `first`, doubled per additional failure, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub free: u32,
    pub first: Duration,
    pub max: Duration,
}

impl Policy {
    /// The wait after `n` failures (none below `free`).
    fn delay(self, n: u32) -> Option<Duration> {
        let extra = n.checked_sub(self.free)?;
        let factor = 1u32 << extra.min(16);
        Some(self.first.saturating_mul(factor).min(self.max))
    }
}

/// One user name from one address.
pub const PAIR: Policy = Policy {
    free: 5,
    first: Duration::from_secs(2),
    max: Duration::from_secs(15 * 60),
};
/// Any user name from one address.
pub const ADDRESS: Policy = Policy {
    free: 10,
    first: Duration::from_secs(30),
    max: Duration::from_secs(15 * 60),
};
/// One user name from addresses where it has not logged in recently.
pub const NAME: Policy = Policy {
    free: 20,
    first: Duration::from_secs(60),
    max: Duration::from_secs(15 * 60),
};
/// A counter without failures for this long starts again from zero.
pub const FORGET: Duration = Duration::from_secs(3600);
/// How long a successful login from an address protects the account there.
pub const TRUST: Duration = Duration::from_secs(30 * 86_400);
/// Counters kept at most (the oldest idle ones are forgotten first).
const MAX_KEYS: usize = 30_000;

/// Which counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Pair,
    Address,
    Name,
}

impl Scope {
    /// The name the API uses.
    pub fn code(self) -> &'static str {
        match self {
            Scope::Pair => "usuario_direccion",
            Scope::Address => "direccion",
            Scope::Name => "usuario",
        }
    }

    fn policy(self) -> Policy {
        match self {
            Scope::Pair => PAIR,
            Scope::Address => ADDRESS,
            Scope::Name => NAME,
        }
    }
}

/// The key of a client address: an IPv4 address as is, an IPv6 address as its /64 network
/// (one device easily has many addresses in it).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    scope: Scope,
    name: String,
    address: String,
}

#[derive(Debug, Clone)]
struct Entry {
    failures: u32,
    /// Attempts charged whose verdict is not known yet.
    pending: u32,
    last: Instant,
}

impl Entry {
    fn idle(&self, now: Instant) -> bool {
        self.pending == 0 && now.duration_since(self.last) >= FORGET
    }

    fn count(&self, now: Instant) -> u32 {
        if self.idle(now) {
            0
        } else {
            self.failures + self.pending
        }
    }

    /// When the counter admits the next attempt, if it is throttling.
    fn until(&self, policy: Policy, now: Instant) -> Option<Instant> {
        policy.delay(self.count(now)).map(|d| self.last + d)
    }
}

/// A counter that is throttling, as the log and administrators see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Lockout {
    pub scope: Scope,
    /// The user name (lower case), unless the counter is per address only.
    pub name: Option<String>,
    /// The client address, unless the counter is per user name only.
    pub address: Option<String>,
    pub failures: u32,
    /// When the next attempt is admitted.
    pub until: SystemTime,
    /// Whether that is still ahead.
    pub active: bool,
}

/// A refused attempt: the counter that refused it and how long until it would be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub scope: Scope,
    pub wait: Duration,
}

/// The three counters (share behind an `Arc`).
#[derive(Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<Key, Entry>>,
}

fn wall(at: Instant, now: Instant) -> SystemTime {
    let sys = SystemTime::now();
    if at >= now {
        sys + (at - now)
    } else {
        sys - (now - at)
    }
}

fn lockout(key: &Key, e: &Entry, now: Instant) -> Option<Lockout> {
    let until = e.until(key.scope.policy(), now)?;
    Some(Lockout {
        scope: key.scope,
        name: (key.scope != Scope::Address).then(|| key.name.clone()),
        address: (key.scope != Scope::Name).then(|| key.address.clone()),
        failures: e.count(now),
        until: wall(until, now),
        active: until > now,
    })
}

/// Makes room for one more counter: idle ones go first, then the least recently used.
fn make_room(entries: &mut HashMap<Key, Entry>, now: Instant) {
    if entries.len() < MAX_KEYS {
        return;
    }
    entries.retain(|_, e| !e.idle(now));
    if entries.len() >= MAX_KEYS
        && let Some(oldest) = entries
            .iter()
            .filter(|(_, e)| e.pending == 0)
            .min_by_key(|(_, e)| e.last)
            .map(|(k, _)| k.clone())
    {
        entries.remove(&oldest);
    }
}

impl LoginThrottle {
    /// Charges a login attempt for `name` (lower case) from `address` (see [`address_key`])
    /// before its password is checked, unless a counter refuses it. `trusted`: the account
    /// logged in from this address within [`TRUST`], so only the name-and-address counter
    /// applies. Settle the attempt with [`Attempt::failed`] or [`Attempt::succeeded`];
    /// dropping it gives the charge back.
    pub fn charge(
        self: &Arc<Self>,
        name: &str,
        address: &str,
        trusted: bool,
    ) -> Result<Attempt, Refused> {
        let now = Instant::now();
        let keys = [Scope::Pair, Scope::Address, Scope::Name].map(|scope| Key {
            scope,
            name: if scope == Scope::Address {
                String::new()
            } else {
                name.to_string()
            },
            address: if scope == Scope::Name {
                String::new()
            } else {
                address.to_string()
            },
        });
        let Ok(mut entries) = self.entries.lock() else {
            return Ok(Attempt::empty(self.clone()));
        };
        let refused = keys
            .iter()
            .filter(|k| k.scope == Scope::Pair || !trusted)
            .filter_map(|k| {
                let until = entries.get(k)?.until(k.scope.policy(), now)?;
                (until > now).then(|| Refused {
                    scope: k.scope,
                    wait: until - now,
                })
            })
            .max_by_key(|r| r.wait);
        if let Some(r) = refused {
            return Err(r);
        }
        let mut charged = Vec::with_capacity(keys.len());
        for key in keys {
            if !entries.contains_key(&key) {
                make_room(&mut entries, now);
            }
            let e = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                pending: 0,
                last: now,
            });
            if e.idle(now) {
                e.failures = 0;
            }
            e.pending += 1;
            e.last = now;
            charged.push(key);
        }
        Ok(Attempt {
            throttle: self.clone(),
            keys: charged,
            settled: false,
        })
    }

    /// Every counter that is throttling or did within [`FORGET`], longest wait first.
    pub fn lockouts(&self) -> Vec<Lockout> {
        let now = Instant::now();
        let Ok(entries) = self.entries.lock() else {
            return Vec::new();
        };
        let mut out: Vec<Lockout> = entries
            .iter()
            .filter_map(|(k, e)| lockout(k, e, now))
            .collect();
        out.sort_by_key(|l| std::cmp::Reverse(l.until));
        out
    }

    fn settle(&self, keys: &[Key], verdict: Verdict) -> Vec<Lockout> {
        let now = Instant::now();
        let mut started = Vec::new();
        let Ok(mut entries) = self.entries.lock() else {
            return started;
        };
        for key in keys {
            let Some(e) = entries.get_mut(key) else {
                continue;
            };
            e.pending = e.pending.saturating_sub(1);
            match verdict {
                Verdict::Failed => {
                    e.failures += 1;
                    e.last = now;
                    if let Some(l) = lockout(key, e, now) {
                        started.push(l);
                    }
                }
                Verdict::Succeeded if key.scope == Scope::Pair => e.failures = 0,
                Verdict::Succeeded | Verdict::Released => {}
            }
            if e.failures == 0 && e.pending == 0 {
                entries.remove(key);
            }
        }
        started
    }
}

#[derive(Clone, Copy)]
enum Verdict {
    Failed,
    Succeeded,
    Released,
}

/// A charged login attempt; see [`LoginThrottle::charge`].
pub struct Attempt {
    throttle: Arc<LoginThrottle>,
    keys: Vec<Key>,
    settled: bool,
}

impl Attempt {
    fn empty(throttle: Arc<LoginThrottle>) -> Attempt {
        Attempt {
            throttle,
            keys: Vec::new(),
            settled: true,
        }
    }

    /// The password was wrong: the charges become failures. Returns the counters now
    /// throttling because of it (to log).
    pub fn failed(mut self) -> Vec<Lockout> {
        self.settled = true;
        self.throttle.settle(&self.keys, Verdict::Failed)
    }

    /// The password was right: the charges are given back and the failures of this name at
    /// this address forgotten.
    pub fn succeeded(mut self) {
        self.settled = true;
        self.throttle.settle(&self.keys, Verdict::Succeeded);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.settled {
            self.throttle.settle(&self.keys, Verdict::Released);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(t: &Arc<LoginThrottle>, name: &str, addr: &str) -> Vec<Lockout> {
        t.charge(name, addr, false).expect("admitted").failed()
    }

    #[test]
    fn delays_double_up_to_the_ceiling() {
        assert_eq!(PAIR.delay(4), None);
        assert_eq!(PAIR.delay(5), Some(Duration::from_secs(2)));
        assert_eq!(PAIR.delay(7), Some(Duration::from_secs(8)));
        assert_eq!(PAIR.delay(40), Some(PAIR.max));
    }

    #[test]
    fn one_address_guessing_one_name_waits_alone() {
        let t = Arc::new(LoginThrottle::default());
        for _ in 0..4 {
            assert!(fail(&t, "admin", "10.0.0.66").is_empty());
        }
        let started = fail(&t, "admin", "10.0.0.66");
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].scope, Scope::Pair);
        let refused = t
            .charge("admin", "10.0.0.66", false)
            .err()
            .expect("refused");
        assert_eq!(refused.scope, Scope::Pair);
        assert!(refused.wait <= PAIR.first);
        t.charge("admin", "10.0.0.1", true)
            .expect("home")
            .succeeded();
        t.charge("admin", "10.0.0.2", false)
            .expect("elsewhere")
            .succeeded();
        assert_eq!(t.lockouts().len(), 1);
    }

    #[test]
    fn spread_guesses_spare_trusted_addresses_only() {
        let t = Arc::new(LoginThrottle::default());
        for i in 0..NAME.free {
            fail(&t, "admin", &format!("10.1.0.{i}"));
        }
        let refused = t.charge("admin", "10.9.9.9", false).err().expect("refused");
        assert_eq!(refused.scope, Scope::Name);
        t.charge("admin", "10.0.0.1", true)
            .expect("trusted")
            .succeeded();
        t.charge("ana", "10.9.9.9", false)
            .expect("other name")
            .succeeded();
    }

    #[test]
    fn simultaneous_attempts_are_charged_up_front_and_given_back() {
        let t = Arc::new(LoginThrottle::default());
        let held: Vec<Attempt> = (0..PAIR.free)
            .map(|_| t.charge("ana", "10.0.0.5", false).expect("admitted"))
            .collect();
        assert!(t.charge("ana", "10.0.0.5", false).is_err());
        drop(held);
        assert!(t.lockouts().is_empty());
        t.charge("ana", "10.0.0.5", false)
            .expect("after release")
            .succeeded();
    }

    #[test]
    fn addresses_are_keyed_by_ipv4_or_ipv6_network() {
        assert_eq!(address_key("192.168.1.7".parse().unwrap()), "192.168.1.7");
        assert_eq!(
            address_key("2001:db8:1:2:aa:bb:cc:dd".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(address_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
    }
}
