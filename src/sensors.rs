//! The sensor registry: what the appliance knows about each MQTT client, for the installer
//! standing in the field with a phone — is the sensor connected, from which address, when did
//! it last connect and last send, how many of its messages were accepted or refused and why,
//! and which fields it sends. The broker and the ingest report events here; the API reads a
//! snapshot; a background thread saves what changed every few seconds, so the history of a
//! sensor survives a restart without one write per message.
//!
//! Client ids come from the network and are not trusted: they are bounded in length, and the
//! registry in number of entries, so a client inventing ids cannot grow memory or the store.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use crate::store::sensors::SensorRecord;
use crate::store::{Store, StoreError};

/// Most sensors remembered. Past it, a new client id replaces the entry that matters least
/// (see [`Inner::evict_one`]).
pub const MAX_SENSORS: usize = 512;
/// Longest client id kept, in characters (longer ones are cut).
pub const MAX_CLIENT_ID_CHARS: usize = 256;
/// Longest MQTT user name kept, in characters.
pub const MAX_USER_CHARS: usize = 256;
/// Most field names remembered per sensor.
pub const MAX_FIELDS: usize = 64;
/// Longest field name kept, in characters.
pub const MAX_FIELD_CHARS: usize = 64;
/// Longest refusal code kept, in characters.
pub const MAX_REASON_CHARS: usize = 64;
/// How often the background thread saves the registry.
pub const PERSIST_INTERVAL: Duration = Duration::from_secs(5);

/// One sensor as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorStatus {
    /// MQTT client id (cut to [`MAX_CLIENT_ID_CHARS`]).
    pub client_id: String,
    /// Whether at least one connection with this client id is open now.
    pub connected: bool,
    /// Everything else, as persisted.
    pub record: SensorRecord,
}

/// One entry of the registry.
#[derive(Debug, Clone, Default)]
struct Entry {
    record: SensorRecord,
    /// Open connections with this client id. A counter rather than a flag: when a sensor
    /// reconnects before the broker noticed its old connection died, MQTT hands the client id
    /// to the new connection and the old one's end may be reported after the new start.
    connections: u32,
}

impl Entry {
    /// Last time anything was heard from the client (connect, message or refusal).
    fn last_heard_us(&self) -> i64 {
        let r = &self.record;
        [
            r.last_connect_us,
            r.last_disconnect_us,
            r.last_message_us,
            r.last_rejection_us,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(i64::MIN)
    }
}

#[derive(Default)]
struct Inner {
    entries: BTreeMap<String, Entry>,
    /// Client ids changed since the last save.
    dirty: BTreeSet<String>,
    /// Client ids to delete from the store at the next save.
    removed: BTreeSet<String>,
    /// A save was committed without a sync; the next durable save must commit even if
    /// nothing changed, so those commits reach the disk.
    unsynced: bool,
}

impl Inner {
    /// The entry of `client_id`, created (evicting another one if full) when new.
    fn entry(&mut self, client_id: &str) -> &mut Entry {
        let id = bounded(client_id, MAX_CLIENT_ID_CHARS);
        if !self.entries.contains_key(id) {
            while self.entries.len() >= MAX_SENSORS {
                self.evict_one();
            }
            self.entries.insert(id.to_string(), Entry::default());
            self.removed.remove(id);
        }
        self.dirty.insert(id.to_string());
        self.entries.entry(id.to_string()).or_default()
    }

    /// Forgets the entry that matters least: a disconnected one before a connected one; one
    /// that never had a message accepted (e.g. a stream of refused logins with invented ids)
    /// before a real sensor; and among those the one silent for longest.
    fn evict_one(&mut self) {
        let victim = self
            .entries
            .iter()
            .min_by_key(|(_, e)| (e.connections > 0, e.record.accepted > 0, e.last_heard_us()))
            .map(|(id, _)| id.clone());
        if let Some(id) = victim {
            self.entries.remove(&id);
            self.dirty.remove(&id);
            self.removed.insert(id);
        }
    }
}

/// Registry of MQTT clients (cheap to clone; every clone shares the same entries).
#[derive(Clone, Default)]
pub struct SensorRegistry {
    inner: Arc<Mutex<Inner>>,
    /// Held for a whole save, so two saves never commit their copies out of order.
    saving: Arc<Mutex<()>>,
}

/// `text` cut to at most `max` characters (on a character boundary).
fn bounded(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

fn max_opt(current: Option<i64>, now_us: i64) -> Option<i64> {
    Some(current.map_or(now_us, |c| c.max(now_us)))
}

impl SensorRegistry {
    /// An empty registry (nothing persisted yet, or tests).
    pub fn new() -> SensorRegistry {
        SensorRegistry::default()
    }

    /// Loads what was persisted (empty registry when nothing was). Every entry starts
    /// disconnected: a restart dropped every connection.
    pub fn load(store: &Store) -> Result<SensorRegistry, StoreError> {
        let rows = store.sensors()?;
        let mut inner = Inner::default();
        inner.removed.extend(rows.undecodable);
        for (id, record) in rows.records {
            let bounded_id = bounded(&id, MAX_CLIENT_ID_CHARS);
            if bounded_id != id {
                // Written by a build with a longer bound: keep it under the bounded id.
                inner.removed.insert(id.clone());
                inner.dirty.insert(bounded_id.to_string());
            }
            let entry = Entry {
                record,
                connections: 0,
            };
            inner.entries.insert(bounded_id.to_string(), entry);
        }
        while inner.entries.len() > MAX_SENSORS {
            inner.evict_one();
        }
        Ok(SensorRegistry {
            inner: Arc::new(Mutex::new(inner)),
            saving: Arc::default(),
        })
    }

    /// A client completed CONNECT (user = MQTT user name if any; addr = peer address).
    pub fn connected(&self, client_id: &str, user: Option<&str>, addr: SocketAddr, now_us: i64) {
        let mut inner = self.inner.lock();
        let e = inner.entry(client_id);
        e.connections = e.connections.saturating_add(1);
        e.record.user = user.map(|u| bounded(u, MAX_USER_CHARS).to_string());
        e.record.addr = Some(addr);
        e.record.last_connect_us = max_opt(e.record.last_connect_us, now_us);
    }

    /// Its connection ended. Call once per [`SensorRegistry::connected`].
    pub fn disconnected(&self, client_id: &str, now_us: i64) {
        let mut inner = self.inner.lock();
        let id = bounded(client_id, MAX_CLIENT_ID_CHARS);
        if !inner.entries.contains_key(id) {
            return;
        }
        let e = inner.entry(id);
        e.connections = e.connections.saturating_sub(1);
        e.record.last_disconnect_us = max_opt(e.record.last_disconnect_us, now_us);
    }

    /// `count` messages accepted from it since the last call; `fields` = field names seen in
    /// them (deduplicated, at most [`MAX_FIELDS`] per sensor, names cut to
    /// [`MAX_FIELD_CHARS`]).
    pub fn accepted(&self, client_id: &str, count: u64, fields: &[String], now_us: i64) {
        let mut inner = self.inner.lock();
        let e = inner.entry(client_id);
        let r = &mut e.record;
        r.accepted = r.accepted.saturating_add(count);
        if count > 0 {
            r.last_message_us = max_opt(r.last_message_us, now_us);
        }
        for name in fields {
            let name = bounded(name, MAX_FIELD_CHARS);
            if let Err(at) = r.fields.binary_search_by(|f| f.as_str().cmp(name))
                && r.fields.len() < MAX_FIELDS
            {
                r.fields.insert(at, name.to_string());
            }
        }
    }

    /// A refused CONNECT or a dropped publish attributed to this client id (reason is a short
    /// snake_case code such as `bad_credentials`, `not_authorized`, `oversize`,
    /// `topic_not_allowed`, `invalid_payload`). user/addr may be None when unknown; a known
    /// one replaces the remembered one.
    pub fn rejected(
        &self,
        client_id: &str,
        user: Option<&str>,
        addr: Option<SocketAddr>,
        reason: &str,
        now_us: i64,
    ) {
        let mut inner = self.inner.lock();
        let e = inner.entry(client_id);
        let r = &mut e.record;
        r.rejected = r.rejected.saturating_add(1);
        r.last_rejection = Some(bounded(reason, MAX_REASON_CHARS).to_string());
        r.last_rejection_us = max_opt(r.last_rejection_us, now_us);
        if let Some(u) = user {
            r.user = Some(bounded(u, MAX_USER_CHARS).to_string());
        }
        if addr.is_some() {
            r.addr = addr;
        }
    }

    /// Everything, for the API (sorted by client id).
    pub fn snapshot(&self) -> Vec<SensorStatus> {
        let inner = self.inner.lock();
        inner
            .entries
            .iter()
            .map(|(id, e)| SensorStatus {
                client_id: id.clone(),
                connected: e.connections > 0,
                record: e.record.clone(),
            })
            .collect()
    }

    /// Writes the registry to the store if it changed since the last call (one small write
    /// transaction, synced to disk). Never called per message.
    pub fn persist(&self, store: &Store) -> Result<(), StoreError> {
        self.save(store, true)
    }

    /// Like [`SensorRegistry::persist`] but without a sync of its own: the commit reaches the
    /// disk with the next durable commit of the store (the readings writer commits durably
    /// every commit interval while sensors send), sparing the SD card one sync per save. A
    /// crash loses at most the changes since then, which only delays diagnostics.
    pub fn persist_unsynced(&self, store: &Store) -> Result<(), StoreError> {
        self.save(store, false)
    }

    fn save(&self, store: &Store, durable: bool) -> Result<(), StoreError> {
        let _saving = self.saving.lock();
        let (changed, removed) = {
            let mut inner = self.inner.lock();
            if inner.dirty.is_empty() && inner.removed.is_empty() && !(durable && inner.unsynced) {
                return Ok(());
            }
            let dirty = std::mem::take(&mut inner.dirty);
            let changed: Vec<(String, SensorRecord)> = dirty
                .into_iter()
                .filter_map(|id| {
                    let record = inner.entries.get(&id)?.record.clone();
                    Some((id, record))
                })
                .collect();
            let removed: Vec<String> = std::mem::take(&mut inner.removed).into_iter().collect();
            (changed, removed)
        };
        let result = store.put_sensors(&changed, &removed, durable);
        let mut inner = self.inner.lock();
        match result {
            Ok(()) => inner.unsynced = !durable,
            Err(_) => {
                // Try again at the next save, unless the entry changed fate meanwhile.
                for (id, _) in changed {
                    if inner.entries.contains_key(&id) {
                        inner.dirty.insert(id);
                    }
                }
                for id in removed {
                    if !inner.entries.contains_key(&id) {
                        inner.removed.insert(id);
                    }
                }
            }
        }
        result
    }
}

/// The thread that saves the registry every [`PERSIST_INTERVAL`]; stopping it saves once more
/// (durably), so it must be stopped before the store is closed.
pub struct Persister {
    stop: Sender<()>,
    join: JoinHandle<()>,
}

impl Persister {
    /// Starts the thread.
    pub fn spawn(registry: SensorRegistry, store: Store) -> Result<Persister, StoreError> {
        Self::spawn_every(registry, store, PERSIST_INTERVAL)
    }

    /// Starts the thread with another interval (tests).
    pub fn spawn_every(
        registry: SensorRegistry,
        store: Store,
        interval: Duration,
    ) -> Result<Persister, StoreError> {
        let (stop, rx) = channel::<()>();
        let join = std::thread::Builder::new()
            .name("sensor-registry".into())
            .spawn(move || {
                // Logged when saving starts and stops failing, not every few seconds while the
                // disk is full (the writer reports that condition too).
                let mut failing = false;
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(interval) {
                    match registry.persist_unsynced(&store) {
                        Err(e) if !failing => {
                            tracing::warn!(error = %e, "saving the sensor registry failed; retrying");
                            failing = true;
                        }
                        Ok(()) if failing => {
                            tracing::info!("sensor registry saved again");
                            failing = false;
                        }
                        _ => {}
                    }
                }
                if let Err(e) = registry.persist(&store) {
                    tracing::warn!(error = %e, "saving the sensor registry at stop failed");
                }
            })
            .map_err(|e| StoreError::Db(e.into()))?;
        Ok(Persister { stop, join })
    }

    /// Saves one last time and waits for the thread to end (releasing its store handle).
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.join.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_780_000_000_000_000;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 168, 1, 20], port))
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn one(reg: &SensorRegistry, id: &str) -> SensorStatus {
        reg.snapshot()
            .into_iter()
            .find(|s| s.client_id == id)
            .unwrap_or_else(|| panic!("{id} listed"))
    }

    #[test]
    fn events_update_one_entry() {
        let reg = SensorRegistry::new();
        reg.connected("granja/sensor1", Some("sensor1"), addr(51234), T0);
        reg.accepted(
            "granja/sensor1",
            3,
            &names(&["temperatura", "presion"]),
            T0 + 5,
        );
        reg.rejected("granja/sensor1", None, None, "oversize", T0 + 7);
        let s = one(&reg, "granja/sensor1");
        assert!(s.connected);
        let r = &s.record;
        assert_eq!(r.user.as_deref(), Some("sensor1"));
        assert_eq!(r.addr, Some(addr(51234)));
        assert_eq!(
            (r.last_connect_us, r.last_message_us),
            (Some(T0), Some(T0 + 5))
        );
        assert_eq!((r.accepted, r.rejected), (3, 1));
        assert_eq!(r.last_rejection.as_deref(), Some("oversize"));
        assert_eq!(r.last_rejection_us, Some(T0 + 7));
        assert_eq!(r.fields, names(&["presion", "temperatura"]));
        reg.disconnected("granja/sensor1", T0 + 9);
        assert!(!one(&reg, "granja/sensor1").connected);
        // The end of a connection of an unknown client creates nothing.
        reg.disconnected("nadie", T0);
        assert_eq!(reg.snapshot().len(), 1);
    }

    #[test]
    fn a_takeover_keeps_the_sensor_connected() {
        let reg = SensorRegistry::new();
        reg.connected("esp32", None, addr(1), T0);
        // The sensor reconnects before the old connection's end is noticed.
        reg.connected("esp32", None, addr(2), T0 + 1);
        reg.disconnected("esp32", T0 + 2);
        let s = one(&reg, "esp32");
        assert!(s.connected);
        assert_eq!(s.record.addr, Some(addr(2)));
        reg.disconnected("esp32", T0 + 3);
        reg.disconnected("esp32", T0 + 4);
        assert!(!one(&reg, "esp32").connected);
    }

    #[test]
    fn fields_are_deduplicated_sorted_and_bounded() {
        let reg = SensorRegistry::new();
        reg.accepted("s", 1, &names(&["b", "a", "b"]), T0);
        reg.accepted("s", 1, &names(&["a", "c"]), T0 + 1);
        assert_eq!(one(&reg, "s").record.fields, names(&["a", "b", "c"]));
        let many: Vec<String> = (0..200).map(|i| format!("canal_{i:03}")).collect();
        reg.accepted("s", 1, &many, T0 + 2);
        let long = "ñ".repeat(100);
        reg.accepted("t", 1, &[long.clone(), long], T0);
        let s = one(&reg, "s");
        assert_eq!(s.record.fields.len(), MAX_FIELDS);
        assert_eq!(s.record.accepted, 3);
        let t = one(&reg, "t");
        assert_eq!(t.record.fields, vec!["ñ".repeat(MAX_FIELD_CHARS)]);
    }

    #[test]
    fn client_ids_are_bounded_and_kept_verbatim() {
        let reg = SensorRegistry::new();
        let odd = "granja/+/#/$SYS/ñandú";
        reg.accepted(odd, 1, &[], T0);
        let long = "x".repeat(1000);
        reg.accepted(&long, 1, &[], T0);
        reg.accepted(&long, 1, &[], T0 + 1);
        let ids: Vec<String> = reg.snapshot().into_iter().map(|s| s.client_id).collect();
        assert_eq!(ids, vec![odd.to_string(), "x".repeat(MAX_CLIENT_ID_CHARS)]);
        assert_eq!(one(&reg, &"x".repeat(256)).record.accepted, 2);
    }

    #[test]
    fn the_registry_is_bounded_and_evicts_the_least_useful_entry() {
        let reg = SensorRegistry::new();
        // A real sensor, disconnected and silent for long, and a connected one.
        reg.accepted("antiguo", 10, &[], T0);
        reg.connected("conectado", None, addr(1), T0);
        // Refused attempts with invented ids fill the registry, then overflow it.
        for i in 0..MAX_SENSORS + 100 {
            reg.rejected(
                &format!("intruso-{i:04}"),
                None,
                None,
                "bad_credentials",
                T0 + 1_000 + i as i64,
            );
        }
        let snap = reg.snapshot();
        assert_eq!(snap.len(), MAX_SENSORS);
        // The invented ids went first, the oldest of them before the newest.
        assert!(snap.iter().any(|s| s.client_id == "antiguo"));
        assert!(snap.iter().any(|s| s.client_id == "conectado"));
        assert!(!snap.iter().any(|s| s.client_id == "intruso-0000"));
        assert!(
            snap.iter()
                .any(|s| s.client_id == format!("intruso-{:04}", MAX_SENSORS + 99))
        );
        // Among real sensors, the one silent for longest goes first; a connected one stays.
        let reg = SensorRegistry::new();
        reg.connected("conectado", None, addr(1), T0 - 10);
        for i in 0..MAX_SENSORS {
            reg.accepted(&format!("s{i:04}"), 1, &[], T0 + i as i64);
        }
        let ids: Vec<String> = reg.snapshot().into_iter().map(|s| s.client_id).collect();
        assert_eq!(ids.len(), MAX_SENSORS);
        assert!(ids.contains(&"conectado".to_string()));
        assert!(!ids.contains(&"s0000".to_string()));
        assert!(ids.contains(&"s0001".to_string()));
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("store");
        (dir, store)
    }

    #[test]
    fn persist_and_load_round_trip_marks_every_sensor_disconnected() {
        let (dir, store) = store();
        let reg = SensorRegistry::load(&store).expect("load empty");
        assert!(reg.snapshot().is_empty());
        reg.connected("granja/sensor1", Some("sensor1"), addr(51234), T0);
        reg.accepted("granja/sensor1", 120, &names(&["presion"]), T0 + 1);
        reg.rejected("granja/sensor1", None, None, "oversize", T0 + 2);
        reg.connected("otro", None, addr(9), T0);
        reg.persist_unsynced(&store).expect("persist");
        reg.accepted("otro", 1, &names(&["humedad"]), T0 + 3);
        reg.persist(&store).expect("persist");
        store.close().expect("close");

        let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("reopen");
        let back = SensorRegistry::load(&store).expect("load");
        let before: Vec<SensorStatus> = reg
            .snapshot()
            .into_iter()
            .map(|s| SensorStatus {
                connected: false,
                ..s
            })
            .collect();
        assert_eq!(back.snapshot(), before);
        assert!(back.snapshot().iter().all(|s| !s.connected));
        assert_eq!(one(&back, "granja/sensor1").record.accepted, 120);
    }

    #[test]
    fn persist_writes_only_what_changed_and_forgets_evicted_sensors() {
        let (dir, store) = store();
        let reg = SensorRegistry::load(&store).expect("load");
        for i in 0..MAX_SENSORS {
            reg.accepted(&format!("s{i:04}"), 1, &[], T0 + i as i64);
        }
        reg.persist(&store).expect("persist");
        assert!(reg.inner.lock().dirty.is_empty());
        reg.accepted("nuevo", 1, &[], T0 + 10_000);
        assert_eq!(reg.inner.lock().dirty.len(), 1);
        reg.persist(&store).expect("persist");
        store.close().expect("close");
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("reopen");
        let ids: Vec<String> = SensorRegistry::load(&store)
            .expect("load")
            .snapshot()
            .into_iter()
            .map(|s| s.client_id)
            .collect();
        assert_eq!(ids.len(), MAX_SENSORS);
        assert!(ids.contains(&"nuevo".to_string()));
        assert!(!ids.contains(&"s0000".to_string()), "evicted row deleted");
    }

    #[test]
    fn the_persister_saves_periodically_and_at_stop() {
        let (dir, store) = store();
        let reg = SensorRegistry::load(&store).expect("load");
        let persister =
            Persister::spawn_every(reg.clone(), store.clone(), Duration::from_millis(20))
                .expect("spawn");
        reg.accepted("a", 1, &[], T0);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while store.sensors().expect("read").records.is_empty() {
            assert!(std::time::Instant::now() < deadline, "saved periodically");
            std::thread::sleep(Duration::from_millis(10));
        }
        reg.accepted("b", 1, &[], T0);
        persister.stop();
        store.close().expect("close");
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).expect("reopen");
        assert_eq!(store.sensors().expect("read").records.len(), 2);
    }
}
