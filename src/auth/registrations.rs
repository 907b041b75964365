//! Registration limits: a sliding hour per client address and for everybody together
//! (`auth.registrations_per_address_per_hour`, `auth.registrations_per_hour`). A registration
//! costs a password hash and leaves an account for an administrator to review, so a flood from
//! the farm's Wi-Fi is refused cheaply, before any hashing, with how long to wait. The cap on
//! accounts waiting for approval is enforced by the store when the account is written.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The sliding window of both limits.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// Addresses tracked at most (the oldest are forgotten first).
const MAX_ADDRESSES: usize = 10_000;

/// Which limit refused a registration, and how long until it admits one again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many from this address.
    Address(Duration),
    /// Too many from everybody.
    Everyone(Duration),
}

/// The two registration limits (cheap to share behind an `Arc`).
pub struct RegistrationLimits {
    per_address: usize,
    everyone: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    by_address: HashMap<String, VecDeque<Instant>>,
    all: VecDeque<Instant>,
}

/// Drops times older than the window; `Some(wait)` when `limit` remain.
fn full(q: &mut VecDeque<Instant>, limit: usize, now: Instant) -> Option<Duration> {
    while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
        q.pop_front();
    }
    if q.len() >= limit {
        q.front().map(|t| {
            WINDOW
                .saturating_sub(now.duration_since(*t))
                .max(Duration::from_secs(1))
        })
    } else {
        None
    }
}

impl RegistrationLimits {
    /// Limits of `per_address` and `everyone` registrations per hour.
    pub fn new(per_address: u64, everyone: u64) -> Self {
        Self {
            per_address: per_address as usize,
            everyone: everyone as usize,
            state: Mutex::default(),
        }
    }

    /// Counts a registration from `address` unless a limit refuses it. `everyone` false
    /// leaves it out of the limit for everybody (the owner's setup code).
    pub fn admit(&self, address: &str, everyone: bool) -> Result<(), Refusal> {
        let now = Instant::now();
        let Ok(mut st) = self.state.lock() else {
            return Ok(());
        };
        if let Some(wait) = st
            .by_address
            .get_mut(address)
            .and_then(|q| full(q, self.per_address, now))
        {
            return Err(Refusal::Address(wait));
        }
        if everyone && let Some(wait) = full(&mut st.all, self.everyone, now) {
            return Err(Refusal::Everyone(wait));
        }
        if st.by_address.len() >= MAX_ADDRESSES && !st.by_address.contains_key(address) {
            st.by_address
                .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
            if st.by_address.len() >= MAX_ADDRESSES
                && let Some(oldest) = st
                    .by_address
                    .iter()
                    .min_by_key(|(_, q)| q.back().copied())
                    .map(|(k, _)| k.clone())
            {
                st.by_address.remove(&oldest);
            }
        }
        st.by_address
            .entry(address.to_string())
            .or_default()
            .push_back(now);
        if everyone {
            st.all.push_back(now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_then_for_everybody() {
        let l = RegistrationLimits::new(2, 3);
        l.admit("a", true).unwrap();
        l.admit("a", true).unwrap();
        let Err(Refusal::Address(wait)) = l.admit("a", true) else {
            panic!("third from one address");
        };
        assert!(wait > Duration::from_secs(3590) && wait <= WINDOW);
        l.admit("b", true).unwrap();
        assert!(matches!(l.admit("c", true), Err(Refusal::Everyone(_))));
        l.admit("c", false).unwrap();
        assert!(matches!(l.admit("c", false), Ok(())));
        assert!(matches!(l.admit("c", false), Err(Refusal::Address(_))));
    }
}
