//! Alarms and alarm thresholds in the store: every alarm raised (active, acknowledged or
//! cleared) and the site's rule set, so both survive restarts and travel in backups.

use redb::{ReadableDatabase, ReadableTable};

use super::tables::{ALARM_OUTBOX, ALARM_RULES, ALARMS, META, USERS};
use super::{Store, StoreError, codec};
use crate::alarms::Alarm;
use crate::alarms::rules::RuleSet;
use crate::alarms::webhook::Outgoing;

/// Key of the one row of [`ALARM_RULES`].
const RULES_KEY: &str = "reglas";

/// Row of META set once administrators were given `GestionarAlarmas`.
const ADMINS_GRANTED: &str = "alarm_permission_granted";

impl Store {
    /// Once per store: every account holding `AprobarUsuarios` (the administrators of a store
    /// made before alarms existed) gets `GestionarAlarmas`; later it is granted like any other.
    pub fn grant_alarms_to_admins(&self) -> Result<(), StoreError> {
        use crate::store::users::{Permission, decode_user, encode_user};
        let txn = self.db()?.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            if meta.get(ADMINS_GRANTED)?.is_some() {
                return Ok(());
            }
            let mut users = txn.open_table(USERS)?;
            let mut admins = Vec::new();
            for row in users.iter()? {
                let u = decode_user(row?.1.value())?;
                if u.has(Permission::AprobarUsuarios) && !u.has(Permission::GestionarAlarmas) {
                    admins.push(u);
                }
            }
            for mut u in admins {
                u.permissions |= Permission::GestionarAlarmas as u32;
                users.insert(u.id, encode_user(&u)?.as_slice())?;
            }
            meta.insert(ADMINS_GRANTED, 1)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The stored rule set, `None` while the defaults were never changed.
    pub fn alarm_rules(&self) -> Result<Option<RuleSet>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(ALARM_RULES)?;
        match t.get(RULES_KEY)? {
            Some(v) => Ok(Some(codec::decode("alarm_rules", v.value())?)),
            None => Ok(None),
        }
    }

    /// Replaces the stored rule set.
    pub fn save_alarm_rules(&self, rules: &RuleSet) -> Result<(), StoreError> {
        let bytes = codec::encode("alarm_rules", rules)?;
        let txn = self.db()?.begin_write()?;
        txn.open_table(ALARM_RULES)?
            .insert(RULES_KEY, bytes.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Writes (inserts or updates) an alarm.
    pub fn put_alarm(&self, alarm: &Alarm) -> Result<(), StoreError> {
        let bytes = codec::encode("alarms", alarm)?;
        let txn = self.db()?.begin_write()?;
        txn.open_table(ALARMS)?.insert(alarm.id, bytes.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Every alarm, oldest first.
    pub fn alarms(&self) -> Result<Vec<Alarm>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(ALARMS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            out.push(codec::decode("alarms", row?.1.value())?);
        }
        Ok(out)
    }

    /// The alarms that were active at some time in `[from_us, to_us)`, oldest first.
    pub fn alarms_between(&self, from_us: i64, to_us: i64) -> Result<Vec<Alarm>, StoreError> {
        Ok(self
            .alarms()?
            .into_iter()
            .filter(|a| a.since_us < to_us && a.cleared_us.is_none_or(|c| c >= from_us))
            .collect())
    }

    /// Queues a webhook message under the next free id.
    pub fn queue_notification(&self, mut n: Outgoing) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        {
            let mut t = txn.open_table(ALARM_OUTBOX)?;
            n.id = t.last()?.map_or(1, |(k, _)| k.value() + 1);
            t.insert(n.id, codec::encode("alarm_outbox", &n)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Every queued webhook message, oldest first.
    pub fn queued_notifications(&self) -> Result<Vec<Outgoing>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(ALARM_OUTBOX)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            out.push(codec::decode("alarm_outbox", row?.1.value())?);
        }
        Ok(out)
    }

    /// Removes a delivered message, or stores its new retry state.
    pub fn settle_notification(&self, n: &Outgoing, delivered: bool) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        {
            let mut t = txn.open_table(ALARM_OUTBOX)?;
            if delivered {
                t.remove(n.id)?;
            } else {
                t.insert(n.id, codec::encode("alarm_outbox", n)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;
    use crate::store::users::NewUser;
    use crate::store::users::Permission;

    fn new(name: &str, permissions: u32) -> NewUser {
        NewUser {
            username: name.into(),
            email: format!("{name}@finca.co"),
            first_name: String::new(),
            last_name: String::new(),
            password_hash: "x".into(),
            approved: true,
            permissions,
        }
    }

    #[test]
    fn administrators_of_an_older_store_get_the_alarm_permission_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).unwrap();
        let admin = store
            .create_user(new("admin", Permission::AprobarUsuarios as u32))
            .unwrap();
        let viewer = store
            .create_user(new("vista", Permission::VerDashboard as u32))
            .unwrap();
        store.grant_alarms_to_admins().unwrap();
        let admin = store.user(admin.id).unwrap().unwrap();
        assert!(admin.has(Permission::GestionarAlarmas));
        assert!(
            !store
                .user(viewer.id)
                .unwrap()
                .unwrap()
                .has(Permission::GestionarAlarmas)
        );
        // Taken away later, it stays away: the grant runs once.
        store
            .set_permissions(admin.id, Permission::AprobarUsuarios as u32)
            .unwrap();
        store.grant_alarms_to_admins().unwrap();
        let again = store.user(admin.id).unwrap().unwrap();
        assert!(
            !again.has(Permission::GestionarAlarmas),
            "the grant must not run twice"
        );
    }
}
