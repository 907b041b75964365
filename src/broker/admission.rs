//! The broker's decisions (rumqttd [`Hooks`]): who may connect, within which caps, what each
//! connection may publish and subscribe to, and when the broker stops reading from clients
//! because intake is full or the appliance is stopping.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use rumqttd::hooks::{Admission, ConnectRequest, Hooks, Refusal, Session};

use super::accounts::{Account, Accounts, Login};
use super::refusals::{Reason, Refusals, truncate};
use super::throttle::Throttle;
use crate::payload::{self, Limits};
use crate::sensors::SensorRegistry;
use crate::sitetime::now_us;
use crate::store::Counters;

/// User name of the appliance's own liveness probe (with a per-process random password).
pub const PROBE_USER: &str = "biogestor-probe";

/// Live connections, in total and per user name.
#[derive(Default)]
struct Live {
    total: usize,
    per_user: HashMap<String, usize>,
}

/// Shared state of every connection's decisions.
pub struct Gate {
    pub accounts: Accounts,
    pub refusals: Arc<Refusals>,
    throttle: Throttle,
    registry: SensorRegistry,
    counters: Arc<Counters>,
    /// The configured reading filters (`mqtt.topics`).
    filters: Vec<String>,
    limits: Limits,
    max_total: usize,
    max_per_user: usize,
    live: Mutex<Live>,
    probe_password: String,
    /// Set by ingest while its queue is over the high-water mark.
    pub intake_full: Arc<AtomicBool>,
    /// Set when the appliance starts stopping: no more reads, no new connections.
    pub closing: AtomicBool,
}

/// Everything [`Gate::new`] needs.
pub struct GateConfig {
    pub accounts: Accounts,
    pub refusals: Arc<Refusals>,
    pub registry: SensorRegistry,
    pub counters: Arc<Counters>,
    pub filters: Vec<String>,
    pub limits: Limits,
    pub max_total: usize,
    pub max_per_user: usize,
    pub auth_failures_per_address: u64,
    pub probe_password: String,
}

impl Gate {
    /// The broker's gate for `c`.
    pub fn new(c: GateConfig) -> Gate {
        Gate {
            accounts: c.accounts,
            refusals: c.refusals,
            throttle: Throttle::new(c.auth_failures_per_address),
            registry: c.registry,
            counters: c.counters,
            filters: c.filters,
            limits: c.limits,
            max_total: c.max_total,
            max_per_user: c.max_per_user,
            live: Mutex::new(Live::default()),
            probe_password: c.probe_password,
            intake_full: Arc::new(AtomicBool::new(false)),
            closing: AtomicBool::new(false),
        }
    }

    fn refuse(&self, req: &ConnectRequest, reason: Reason, refusal: Refusal) -> Refusal {
        let user = req.username.as_deref();
        self.refusals.record(
            reason,
            Some(req.peer.ip()),
            &req.client_id,
            user.unwrap_or(""),
        );
        if reason != Reason::Stopping {
            self.registry.rejected(
                truncate(&req.client_id, 256),
                user,
                Some(req.peer),
                reason.code(),
                now_us(),
            );
        }
        refusal
    }

    async fn decide(self: Arc<Self>, req: ConnectRequest) -> Result<Box<dyn Session>, Refusal> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(self.refuse(&req, Reason::Stopping, Refusal::ServerUnavailable));
        }
        if req.username.as_deref() == Some(PROBE_USER) && req.peer.ip().is_loopback() {
            let ok = req.password.as_deref().is_some_and(|p| {
                crate::auth::tokens::constant_time_eq(p.as_bytes(), self.probe_password.as_bytes())
            });
            if ok {
                return Ok(Box::new(ProbeSession));
            }
        }
        let ip = req.peer.ip();
        if self.throttle.is_throttled(ip, Instant::now()) {
            return Err(self.refuse(&req, Reason::Throttled, Refusal::ServerUnavailable));
        }
        let login = self
            .accounts
            .login(req.username.as_deref(), req.password.as_deref())
            .await;
        let account = match login {
            Login::Accepted(a) => a,
            Login::MissingUser => {
                self.throttle.failed(ip, Instant::now());
                return Err(self.refuse(&req, Reason::NotAuthorized, Refusal::NotAuthorized));
            }
            Login::Refused => {
                self.throttle.failed(ip, Instant::now());
                return Err(self.refuse(&req, Reason::BadCredentials, Refusal::BadCredentials));
            }
        };
        self.throttle.succeeded(ip);
        let user_key = account.name.clone().unwrap_or_default();
        {
            let mut live = self.live.lock();
            if live.total >= self.max_total {
                drop(live);
                return Err(self.refuse(&req, Reason::BrokerFull, Refusal::ServerUnavailable));
            }
            // Clients without a user name (allow_anonymous) share only the global cap.
            let of_user = live.per_user.get(&user_key).copied().unwrap_or(0);
            if account.name.is_some() && of_user >= self.max_per_user {
                drop(live);
                return Err(self.refuse(&req, Reason::UserFull, Refusal::ServerUnavailable));
            }
            live.total += 1;
            *live.per_user.entry(user_key.clone()).or_default() += 1;
        }
        let client_id = truncate(&req.client_id, 256).to_string();
        self.registry
            .connected(&client_id, account.name.as_deref(), req.peer, now_us());
        Ok(Box::new(SensorSession {
            gate: self.clone(),
            client_id,
            user_key,
            peer: req.peer,
            account,
            last_fields: AtomicU64::new(u64::MAX),
        }))
    }
}

/// The rumqttd hooks: a cheap handle around the shared [`Gate`].
#[derive(Clone)]
pub struct BrokerHooks(pub Arc<Gate>);

impl Hooks for BrokerHooks {
    fn admit(&self, request: ConnectRequest) -> Admission {
        Box::pin(self.0.clone().decide(request))
    }

    fn refused(&self, peer: SocketAddr, client_id: Option<&str>, refusal: Refusal) {
        let reason = match refusal {
            Refusal::ProtocolVersion => Reason::ProtocolVersion,
            Refusal::IdentifierRejected => Reason::IdentifierRejected,
            Refusal::ServerUnavailable => Reason::BrokerFull,
            Refusal::BadCredentials => Reason::BadCredentials,
            Refusal::NotAuthorized => Reason::NotAuthorized,
        };
        self.0
            .refusals
            .record(reason, Some(peer.ip()), client_id.unwrap_or(""), "");
        if let Some(id) = client_id.filter(|id| !id.is_empty()) {
            self.0
                .registry
                .rejected(truncate(id, 256), None, Some(peer), reason.code(), now_us());
        }
    }

    fn pause_reads(&self) -> bool {
        self.0.intake_full.load(Ordering::Relaxed) || self.0.closing.load(Ordering::Relaxed)
    }
}

/// The appliance's own probe: may do nothing but connect.
struct ProbeSession;

impl Session for ProbeSession {
    fn check_publish(&self, _topic: &[u8], _payload: &[u8]) -> bool {
        false
    }
    fn may_subscribe(&self, _filter: &str) -> bool {
        false
    }
    fn oversize(&self, _topic: &str, _size: usize) {}
}

/// One admitted client: its permissions, and its share of the live counts until it ends.
struct SensorSession {
    gate: Arc<Gate>,
    /// Bounded for the registry.
    client_id: String,
    user_key: String,
    peer: SocketAddr,
    account: Arc<Account>,
    /// Which fields the last accepted reading carried, so the registry is told only on change.
    last_fields: AtomicU64,
}

impl SensorSession {
    fn drop_publish(&self, reason: Reason, topic: &str) {
        self.gate.refusals.record(
            reason,
            Some(self.peer.ip()),
            &self.client_id,
            truncate(topic, 128),
        );
        self.gate.registry.rejected(
            &self.client_id,
            self.account.name.as_deref(),
            Some(self.peer),
            reason.code(),
            now_us(),
        );
    }

    /// Counts an accepted reading for the sensor page, naming its fields when they change.
    fn accepted(&self, reading: &crate::reading::Reading) {
        let mut mask = 0u64;
        for (i, v) in reading.values.iter().enumerate() {
            if v.is_some() {
                mask |= 1 << i;
            }
        }
        mask |= (reading.extra.len() as u64) << 32;
        let fields: Vec<String> = if self.last_fields.swap(mask, Ordering::Relaxed) == mask {
            Vec::new()
        } else {
            crate::reading::Channel::ALL
                .iter()
                .filter(|c| reading.get(**c).is_some())
                .map(|c| c.name().to_string())
                .chain(reading.extra.iter().map(|(n, _)| n.clone()))
                .collect()
        };
        self.gate
            .registry
            .accepted(&self.client_id, 1, &fields, now_us());
    }
}

impl Session for SensorSession {
    fn check_publish(&self, topic: &[u8], payload: &[u8]) -> bool {
        let topic = String::from_utf8_lossy(topic);
        if !self.account.may_publish(&topic) {
            self.drop_publish(Reason::TopicNotAllowed, &topic);
            return false;
        }
        if !self
            .gate
            .filters
            .iter()
            .any(|f| crate::topic::matches(f, &topic))
        {
            // Relayed to subscribers, but not stored: counted so it does not vanish unseen.
            self.drop_publish(Reason::TopicNotStored, &topic);
            return true;
        }
        match payload::parse(payload, &topic, self.gate.limits) {
            Ok(reading) => {
                self.accepted(&reading);
                true
            }
            Err(payload::Rejection::TooLarge(_)) => {
                self.gate.counters.rejected.fetch_add(1, Ordering::Relaxed);
                crate::metrics::mqtt_rejected();
                self.drop_publish(Reason::Oversize, &topic);
                false
            }
            // Refused later by ingest with its reason (counted and logged there); the sensor
            // page learns of it here.
            Err(_) => {
                self.gate.registry.rejected(
                    &self.client_id,
                    self.account.name.as_deref(),
                    Some(self.peer),
                    "invalid_payload",
                    now_us(),
                );
                true
            }
        }
    }

    fn may_subscribe(&self, filter: &str) -> bool {
        let ok = self.account.may_subscribe(filter);
        if !ok {
            self.drop_publish(Reason::SubscribeNotAllowed, filter);
        }
        ok
    }

    fn oversize(&self, topic: &str, size: usize) {
        self.gate.counters.rejected.fetch_add(1, Ordering::Relaxed);
        crate::metrics::mqtt_rejected();
        let detail = format!("{} ({size} bytes)", truncate(topic, 128));
        self.drop_publish(Reason::Oversize, &detail);
    }
}

impl Drop for SensorSession {
    fn drop(&mut self) {
        {
            let mut live = self.gate.live.lock();
            live.total = live.total.saturating_sub(1);
            if let Some(n) = live.per_user.get_mut(&self.user_key) {
                *n -= 1;
                if *n == 0 {
                    live.per_user.remove(&self.user_key);
                }
            }
        }
        // Paired with `connected`: the registry counts a client's open connections, so a
        // takeover by the same client id keeps it connected.
        self.gate.registry.disconnected(&self.client_id, now_us());
    }
}
