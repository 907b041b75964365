//! Caps on open live-feed WebSockets, in all and per account, so one token (or one stolen
//! token) cannot hold hundreds of sockets.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// Why a live feed was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsRefusal {
    /// The account already holds its share.
    PerUser(usize),
    /// Every live-feed slot is taken.
    Full(usize),
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_user: HashMap<u64, usize>,
}

/// The live-feed caps and the current counts (cheap to clone).
#[derive(Clone)]
pub struct WsSlots {
    max: usize,
    per_user: usize,
    counts: Arc<Mutex<Counts>>,
}

impl WsSlots {
    /// At most `max` feeds in all and `per_user` per account.
    pub fn new(max: usize, per_user: usize) -> Self {
        Self {
            max,
            per_user,
            counts: Arc::default(),
        }
    }

    /// Takes a slot for a feed of `user`, released when the returned guard drops.
    pub fn take(&self, user: u64) -> Result<WsSlot, WsRefusal> {
        let mut c = self.counts.lock();
        if c.by_user.get(&user).copied().unwrap_or(0) >= self.per_user {
            return Err(WsRefusal::PerUser(self.per_user));
        }
        if c.total >= self.max {
            return Err(WsRefusal::Full(self.max));
        }
        c.total += 1;
        *c.by_user.entry(user).or_insert(0) += 1;
        Ok(WsSlot {
            counts: self.counts.clone(),
            user,
        })
    }
}

/// One open feed's place, given back when dropped.
pub struct WsSlot {
    counts: Arc<Mutex<Counts>>,
    user: u64,
}

impl Drop for WsSlot {
    fn drop(&mut self) {
        let mut c = self.counts.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                c.by_user.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_account_then_in_all() {
        let slots = WsSlots::new(3, 2);
        let a1 = slots.take(1).unwrap();
        let _a2 = slots.take(1).unwrap();
        assert_eq!(slots.take(1).err(), Some(WsRefusal::PerUser(2)));
        let _b1 = slots.take(2).unwrap();
        assert_eq!(slots.take(3).err(), Some(WsRefusal::Full(3)));
        drop(a1);
        assert!(slots.take(3).is_ok());
        assert!(slots.take(1).is_ok(), "a closed feed gives its slot back");
    }
}
