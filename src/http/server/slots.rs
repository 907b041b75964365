//! Connection caps: a global number of open HTTP connections and a number per client address,
//! so one laptop on the farm's network cannot take every file descriptor of the process. An
//! IPv6 client counts by its /64 network: one host can use any address of its /64 at will.
//!
//! Connections from the appliance itself (the peer address is the address it connected to,
//! as for the watchdog's loopback probe or an administrator's `curl` on the Pi) are never
//! limited per address and may use a small reserve beyond the global cap: the watchdog must
//! keep answering while a flood holds every ordinary slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// Slots beyond the global cap that only connections from the appliance itself may use.
pub const LOCAL_RESERVE: usize = 16;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is taken.
    Full,
    /// The client address already holds its share.
    PerAddress,
}

impl Refusal {
    /// Label of the refusal in metrics and logs.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Full => "max_connections",
            Refusal::PerAddress => "max_connections_per_address",
        }
    }
}

#[derive(Default)]
struct Counts {
    /// Open connections counted against the global cap.
    shared: usize,
    /// Open local connections using the reserve.
    reserve: usize,
    /// Open connections per client (see [`client_key`]; local ones are not counted here).
    by_addr: HashMap<IpAddr, usize>,
}

/// The caps and the current counts (cheap to clone).
#[derive(Clone)]
pub struct Slots {
    max: usize,
    per_addr: usize,
    counts: Arc<Mutex<Counts>>,
}

impl Slots {
    /// Caps of `max` connections in all and `per_addr` from one address.
    pub fn new(max: usize, per_addr: usize) -> Self {
        Self {
            max,
            per_addr,
            counts: Arc::default(),
        }
    }

    /// Takes a slot for a connection from `peer` to `local`, released when the returned guard
    /// drops.
    pub fn admit(&self, peer: IpAddr, local: IpAddr) -> Result<Slot, Refusal> {
        let is_local = same_host(peer, local);
        let key = client_key(peer);
        let mut c = self.counts.lock();
        if !is_local && c.by_addr.get(&key).copied().unwrap_or(0) >= self.per_addr {
            return Err(Refusal::PerAddress);
        }
        let kind = if c.shared < self.max {
            c.shared += 1;
            Kind::Shared
        } else if is_local && c.reserve < LOCAL_RESERVE {
            c.reserve += 1;
            Kind::Reserve
        } else {
            return Err(Refusal::Full);
        };
        let addr = (!is_local).then(|| {
            *c.by_addr.entry(key).or_insert(0) += 1;
            key
        });
        Ok(Slot {
            counts: self.counts.clone(),
            kind,
            addr,
        })
    }

    /// Connections open now (including the reserve).
    pub fn open(&self) -> usize {
        let c = self.counts.lock();
        c.shared + c.reserve
    }
}

/// What the per-address cap counts by: the IPv4 address, or the /64 network of an IPv6 one.
fn client_key(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// Whether a connection comes from this machine: its source is the address it connected to
/// (IPv4-mapped IPv6 addresses compare as IPv4). A host on the network cannot send from one of
/// the appliance's own addresses over TCP.
fn same_host(peer: IpAddr, local: IpAddr) -> bool {
    peer.to_canonical() == local.to_canonical()
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Shared,
    Reserve,
}

/// One open connection's place, given back when dropped.
pub struct Slot {
    counts: Arc<Mutex<Counts>>,
    kind: Kind,
    addr: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock();
        match self.kind {
            Kind::Shared => c.shared = c.shared.saturating_sub(1),
            Kind::Reserve => c.reserve = c.reserve.saturating_sub(1),
        }
        if let Some(addr) = self.addr
            && let Some(n) = c.by_addr.get_mut(&addr)
        {
            *n -= 1;
            if *n == 0 {
                c.by_addr.remove(&addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_address_gets_its_share_and_no_more() {
        let slots = Slots::new(10, 3);
        let server = ip("192.168.1.10");
        let held: Vec<_> = (0..3)
            .map(|_| slots.admit(ip("192.168.1.50"), server).unwrap())
            .collect();
        assert_eq!(
            slots.admit(ip("192.168.1.50"), server).err(),
            Some(Refusal::PerAddress)
        );
        assert!(slots.admit(ip("192.168.1.51"), server).is_ok());
        drop(held);
        assert!(slots.admit(ip("192.168.1.50"), server).is_ok());
        assert_eq!(slots.open(), 0, "every guard returned its slot");
    }

    #[test]
    fn local_connections_use_the_reserve_when_the_rest_is_full() {
        let slots = Slots::new(4, 4);
        let server = ip("127.0.0.1");
        let flood: Vec<_> = (0..4)
            .map(|i| {
                slots
                    .admit(ip(&format!("127.0.0.{}", i + 2)), server)
                    .unwrap()
            })
            .collect();
        assert_eq!(
            slots.admit(ip("127.0.0.9"), server).err(),
            Some(Refusal::Full),
            "another address of the loopback network is a client like any other"
        );
        let local: Vec<_> = (0..LOCAL_RESERVE)
            .map(|_| slots.admit(server, server).expect("reserve"))
            .collect();
        assert_eq!(slots.admit(server, server).err(), Some(Refusal::Full));
        assert_eq!(slots.open(), 4 + LOCAL_RESERVE);
        drop(local);
        drop(flood);
        assert_eq!(slots.open(), 0);
    }

    #[test]
    fn an_ipv6_host_counts_by_its_network() {
        let slots = Slots::new(100, 2);
        let server = ip("2001:db8:1:1::10");
        let _a = slots.admit(ip("2001:db8:1:2::a"), server).unwrap();
        let _b = slots.admit(ip("2001:db8:1:2::b"), server).unwrap();
        assert_eq!(
            slots.admit(ip("2001:db8:1:2:dead:beef::1"), server).err(),
            Some(Refusal::PerAddress),
            "another address of the same /64"
        );
        assert!(slots.admit(ip("2001:db8:1:3::a"), server).is_ok());
        assert!(slots.admit(ip("::ffff:192.0.2.7"), server).is_ok());
    }

    #[test]
    fn local_connections_have_no_per_address_cap() {
        let slots = Slots::new(100, 2);
        let me = ip("::ffff:192.168.1.10");
        let held: Vec<_> = (0..10)
            .map(|_| slots.admit(ip("192.168.1.10"), me).expect("local"))
            .collect();
        assert_eq!(held.len(), 10);
    }
}
