//! Every refused MQTT connection and every dropped publish, counted by reason (for
//! `/api/dashboard/stats/` and `/metrics`) and logged at most once a minute per
//! (reason, address, client id), naming what the installer should change.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Why a connection was refused or a publish/subscription dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    BadCredentials,
    NotAuthorized,
    ProtocolVersion,
    IdentifierRejected,
    BrokerFull,
    UserFull,
    Throttled,
    Stopping,
    TopicNotAllowed,
    TopicNotStored,
    Oversize,
    SubscribeNotAllowed,
}

impl Reason {
    /// Every reason, in the order the API lists them.
    pub const ALL: [Reason; 12] = [
        Reason::BadCredentials,
        Reason::NotAuthorized,
        Reason::ProtocolVersion,
        Reason::IdentifierRejected,
        Reason::BrokerFull,
        Reason::UserFull,
        Reason::Throttled,
        Reason::Stopping,
        Reason::TopicNotAllowed,
        Reason::TopicNotStored,
        Reason::Oversize,
        Reason::SubscribeNotAllowed,
    ];

    /// The stable code used as a JSON key, a metric label and in the sensor page.
    pub fn code(self) -> &'static str {
        match self {
            Reason::BadCredentials => "bad_credentials",
            Reason::NotAuthorized => "not_authorized",
            Reason::ProtocolVersion => "protocol_version",
            Reason::IdentifierRejected => "identifier_rejected",
            Reason::BrokerFull => "broker_full",
            Reason::UserFull => "user_full",
            Reason::Throttled => "throttled",
            Reason::Stopping => "stopping",
            Reason::TopicNotAllowed => "topic_not_allowed",
            Reason::TopicNotStored => "topic_not_stored",
            Reason::Oversize => "oversize",
            Reason::SubscribeNotAllowed => "subscribe_not_allowed",
        }
    }

    /// What happened and what to change, for the log line.
    fn explanation(self) -> &'static str {
        match self {
            Reason::BadCredentials => {
                "MQTT connection refused (CONNACK 4): unknown user or wrong password; use a \
                 user and password from [mqtt.users] (`biogestor sensor add NAME` creates one)"
            }
            Reason::NotAuthorized => {
                "MQTT connection refused (CONNACK 5): the client sent no user name and \
                 mqtt.allow_anonymous is false; give the sensor a user and password \
                 (`biogestor sensor add NAME`), or set mqtt.allow_anonymous = true for old \
                 sensors on a trusted network"
            }
            Reason::ProtocolVersion => {
                "MQTT connection refused (CONNACK 1): only MQTT 3.1.1 is served; set the client \
                 to MQTT 3.1.1 (protocol level 4)"
            }
            Reason::IdentifierRejected => {
                "MQTT connection refused (CONNACK 2): an empty client id needs clean session; \
                 give the client an id or turn clean session on"
            }
            Reason::BrokerFull => {
                "MQTT connection refused (CONNACK 3): mqtt.max_connections reached; raise it or \
                 find clients that reconnect without closing their old connection"
            }
            Reason::UserFull => {
                "MQTT connection refused (CONNACK 3): this user holds \
                 mqtt.max_connections_per_user connections already; give each sensor its own \
                 user or raise the limit"
            }
            Reason::Throttled => {
                "MQTT connection refused (CONNACK 3): too many failed logins from this address \
                 (mqtt.auth_failures_per_address a minute); it is refused for a minute, then \
                 fix the sensor's user and password"
            }
            Reason::Stopping => "MQTT connection refused (CONNACK 3): the appliance is stopping",
            Reason::TopicNotAllowed => {
                "MQTT publish acknowledged and discarded: the topic is outside the user's \
                 allowed topics (mqtt.users.NAME.publish, by default mqtt.topics)"
            }
            Reason::TopicNotStored => {
                "MQTT publish not stored: its topic matches no mqtt.topics filter (it is still \
                 relayed to subscribers); add the topic to mqtt.topics or fix the sensor's topic"
            }
            Reason::Oversize => {
                "MQTT publish acknowledged and discarded: the payload is over \
                 mqtt.max_payload_bytes; shorten the sensor's message or raise the limit"
            }
            Reason::SubscribeNotAllowed => {
                "MQTT subscription refused (SUBACK 0x80): the filter is outside the user's \
                 mqtt.users.NAME.subscribe list"
            }
        }
    }
}

/// Log lines are repeated at most this often per (reason, address, client id).
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Most (reason, address, client id) keys remembered for rate limiting.
const MAX_LOG_KEYS: usize = 4096;

/// What one log line is rate-limited by.
type LogKey = (Reason, Option<IpAddr>, String);

/// Counts and logs refusals; shared by every connection of the broker.
#[derive(Default)]
pub struct Refusals {
    counts: [AtomicU64; Reason::ALL.len()],
    logged: Mutex<HashMap<LogKey, Instant>>,
}

impl Refusals {
    /// Counters for every reason, each already listed in `/metrics` at 0.
    pub fn new() -> Refusals {
        for r in Reason::ALL {
            crate::metrics::mqtt_refused_declare(r.code());
        }
        Refusals::default()
    }

    /// Counts one refusal and logs it unless the same one was logged within a minute.
    pub fn record(&self, reason: Reason, addr: Option<IpAddr>, client_id: &str, detail: &str) {
        self.counts[reason as usize].fetch_add(1, Ordering::Relaxed);
        crate::metrics::mqtt_refused(reason.code());
        let now = Instant::now();
        let mut logged = self.logged.lock();
        let key = (reason, addr, truncate(client_id, 128).to_string());
        if logged
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < LOG_EVERY)
        {
            return;
        }
        if logged.len() >= MAX_LOG_KEYS {
            logged.retain(|_, t| now.duration_since(*t) < LOG_EVERY);
            if logged.len() >= MAX_LOG_KEYS {
                return;
            }
        }
        logged.insert(key, now);
        drop(logged);
        let addr = addr.map(|a| a.to_string()).unwrap_or_default();
        tracing::warn!(
            reason = reason.code(),
            address = %addr,
            client_id = %truncate(client_id, 128).escape_debug(),
            detail = %detail.escape_debug(),
            "{}",
            reason.explanation()
        );
    }

    /// The count of one reason since start-up.
    pub fn count(&self, reason: Reason) -> u64 {
        self.counts[reason as usize].load(Ordering::Relaxed)
    }

    /// Every reason with its count, for the stats endpoint.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Reason::ALL
            .iter()
            .map(|r| (r.code(), self.count(*r)))
            .collect()
    }
}

/// The first `max` characters of `s` (client ids and topics come from the network).
pub fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_codes_are_unique() {
        let r = Refusals::default();
        r.record(Reason::Oversize, None, "a", "");
        r.record(Reason::Oversize, None, "a", "");
        r.record(Reason::BadCredentials, Some([10, 0, 0, 1].into()), "b", "");
        assert_eq!(r.count(Reason::Oversize), 2);
        assert_eq!(r.count(Reason::BadCredentials), 1);
        assert_eq!(r.count(Reason::Throttled), 0);
        let mut codes: Vec<_> = Reason::ALL.iter().map(|r| r.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Reason::ALL.len());
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "ALL is in declaration order");
        }
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("ñandú", 2), "ña");
        assert_eq!(truncate("ab", 5), "ab");
    }
}
