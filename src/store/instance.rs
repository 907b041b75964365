//! What makes one store distinguishable from another and from its own earlier copies: a random
//! *instance id* that every token carries (a restore writes a new one, so no token issued
//! before the restore works afterwards, whatever the restored accounts and revocations say),
//! and the account-id counter (never lowered, so an id is never handed out twice). Also the
//! migration that introduced them (schema version 1 → 2).

use redb::{ReadableTable, WriteTransaction};

use super::tables::{META, USERS, meta_key};
use super::users::{StoredUser, decode_stored, encode_user, random_id};
use super::{Store, StoreError};

/// What the migration from schema version 1 did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// Accounts given a security stamp.
    pub accounts: u64,
}

/// Rewrites every version-1 account row as version 2 with a random security stamp. Runs in
/// the start-up transaction, before any token can be issued.
pub(super) fn migrate_v1(txn: &WriteTransaction) -> Result<Migrated, StoreError> {
    let mut users = txn.open_table(USERS)?;
    let mut old = Vec::new();
    for row in users.iter()? {
        let (k, v) = row?;
        if let StoredUser::V1(u) = decode_stored(v.value())? {
            old.push((k.value(), u));
        }
    }
    let accounts = old.len() as u64;
    for (id, u) in old {
        users.insert(id, encode_user(&u.upgrade(random_id()))?.as_slice())?;
    }
    Ok(Migrated { accounts })
}

/// Gives the store an instance id and an account-id counter if it has none yet.
pub(super) fn ensure_ids(txn: &WriteTransaction) -> Result<(), StoreError> {
    let after_rows = txn
        .open_table(USERS)?
        .last()?
        .map(|(k, _)| k.value() + 1)
        .unwrap_or(1);
    let mut meta = txn.open_table(META)?;
    if meta.get(meta_key::INSTANCE_ID)?.is_none() {
        meta.insert(meta_key::INSTANCE_ID, random_id())?;
    }
    let counter = meta.get(meta_key::NEXT_USER_ID)?.map(|v| v.value());
    if counter.is_none_or(|c| c < after_rows) {
        meta.insert(meta_key::NEXT_USER_ID, after_rows)?;
    }
    Ok(())
}

impl Store {
    /// The id of this store instance, carried by every token it issues.
    pub fn instance_id(&self) -> u64 {
        self.instance.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The next account id the store will hand out.
    pub fn next_user_id(&self) -> Result<u64, StoreError> {
        use redb::ReadableDatabase;
        let txn = self.db()?.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta
            .get(meta_key::NEXT_USER_ID)?
            .map(|v| v.value())
            .unwrap_or(1))
    }

    /// Makes this store a new instance: a new instance id (ending every session issued
    /// before) and an account-id counter of at least `min_next_user_id`. Used by a restore
    /// on the snapshot before it replaces the store.
    pub fn renew_instance(&self, min_next_user_id: u64) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_write()?;
        let id = random_id();
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(meta_key::INSTANCE_ID, id)?;
            let counter = meta
                .get(meta_key::NEXT_USER_ID)?
                .map(|v| v.value())
                .unwrap_or(1);
            meta.insert(meta_key::NEXT_USER_ID, counter.max(min_next_user_id))?;
        }
        txn.commit()?;
        self.instance
            .store(id, std::sync::atomic::Ordering::Relaxed);
        Ok(id)
    }

    pub(super) fn load_instance(&self) -> Result<(), StoreError> {
        use redb::ReadableDatabase;
        let txn = self.db()?.begin_read()?;
        let meta = txn.open_table(META)?;
        let id = meta
            .get(meta_key::INSTANCE_ID)?
            .map(|v| v.value())
            .unwrap_or(0);
        self.instance
            .store(id, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SCHEMA_VERSION;
    use crate::store::users::{Permission, UserV1};

    /// A store as schema version 1 left it: version-1 rows, no instance id, no counter.
    fn schema_1_store(dir: &std::path::Path) {
        let db = redb::Database::create(dir.join(crate::store::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            meta.insert(meta_key::SCHEMA, 1).unwrap();
            let mut users = txn.open_table(USERS).unwrap();
            let mut names = txn.open_table(crate::store::tables::USERS_BY_NAME).unwrap();
            for (id, name) in [(1u64, "admin"), (4, "ana")] {
                let old = UserV1 {
                    id,
                    username: name.into(),
                    email: format!("{name}@finca.co"),
                    first_name: String::new(),
                    last_name: String::new(),
                    password_hash: "h".into(),
                    approved: true,
                    permissions: Permission::all_bits(),
                    created_us: 1,
                };
                let bytes = crate::store::codec::encode("users", &old).unwrap();
                users.insert(id, bytes.as_slice()).unwrap();
                names.insert(name, id).unwrap();
            }
        }
        txn.commit().unwrap();
    }

    #[test]
    fn a_schema_1_store_opens_with_stamps_an_instance_and_a_counter() {
        let dir = tempfile::tempdir().unwrap();
        schema_1_store(dir.path());
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).unwrap();
        assert_eq!(store.ping().unwrap(), SCHEMA_VERSION);
        let users = store.users().unwrap();
        assert_eq!(users.len(), 2);
        assert!(users.iter().all(|u| u.stamp != 0 && !u.disabled));
        assert_ne!(users[0].stamp, users[1].stamp);
        assert_ne!(store.instance_id(), 0);
        assert_eq!(store.next_user_id().unwrap(), 5);
        let (instance, stamps) = (store.instance_id(), users.clone());
        store.close().unwrap();
        // A second start changes nothing.
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).unwrap();
        assert_eq!(store.instance_id(), instance);
        assert_eq!(store.users().unwrap(), stamps);
        let renewed = store.renew_instance(9).unwrap();
        assert_ne!(renewed, instance);
        assert_eq!(store.next_user_id().unwrap(), 9);
        store.renew_instance(2).unwrap();
        assert_eq!(store.next_user_id().unwrap(), 9, "never lowered");
    }
}
