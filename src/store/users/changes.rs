//! Creating, changing and removing accounts. Every change runs in one write transaction that
//! also checks the rules spanning accounts: unique names and e-mails, the cap on accounts
//! waiting for approval, and the last-approver rule (somebody active must keep
//! `AprobarUsuarios`, or nobody could approve or repair accounts from the web interface).

use redb::{ReadableTable, Table, WriteTransaction};

use super::{
    LoginMark, MAX_LOGIN_MARKS, NewUser, User, UserError, decode_user, encode_user, random_id,
};
use crate::store::Store;
use crate::store::tables::{META, USERS, USERS_BY_EMAIL, USERS_BY_NAME, meta_key};

/// A cap on accounts waiting for approval, for registrations from the web.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    /// Most unapproved accounts that may exist; the new one is refused beyond it.
    pub max: u64,
}

/// Refuses a change after which no active account could approve users.
fn keep_an_approver(
    users: &Table<u64, &'static [u8]>,
    before: &User,
    after: Option<&User>,
) -> Result<(), UserError> {
    if !before.approves() || after.is_some_and(User::approves) {
        return Ok(());
    }
    for row in users.iter()? {
        let other = decode_user(row?.1.value())?;
        if other.id != before.id && other.approves() {
            return Ok(());
        }
    }
    Err(UserError::LastApprover)
}

fn load(users: &Table<u64, &'static [u8]>, id: u64) -> Result<User, UserError> {
    match users.get(id)? {
        Some(v) => Ok(decode_user(v.value())?),
        None => Err(UserError::NotFound),
    }
}

/// The next account id: above every id ever handed out in this store (the counter survives
/// deletions, and a restore raises it above the replaced store's), and above the rows present.
fn next_id(txn: &WriteTransaction, users: &Table<u64, &'static [u8]>) -> Result<u64, UserError> {
    let mut meta = txn.open_table(META)?;
    let counter = meta.get(meta_key::NEXT_USER_ID)?.map(|v| v.value());
    let after_rows = users.last()?.map(|(k, _)| k.value() + 1).unwrap_or(1);
    let id = counter.unwrap_or(1).max(after_rows);
    meta.insert(meta_key::NEXT_USER_ID, id + 1)?;
    Ok(id)
}

/// Inserts a new account inside `txn` (user names and e-mails unique ignoring case; an empty
/// e-mail, which only an imported account can have, is not indexed).
pub(in crate::store) fn insert_user(
    txn: &WriteTransaction,
    new: NewUser,
    created_us: i64,
) -> Result<User, UserError> {
    let mut by_name = txn.open_table(USERS_BY_NAME)?;
    let mut by_email = txn.open_table(USERS_BY_EMAIL)?;
    let mut users = txn.open_table(USERS)?;
    let name_key = new.username.to_lowercase();
    let email_key = new.email.to_lowercase();
    if by_name.get(name_key.as_str())?.is_some() {
        return Err(UserError::UsernameTaken);
    }
    if !email_key.is_empty() && by_email.get(email_key.as_str())?.is_some() {
        return Err(UserError::EmailTaken);
    }
    let id = next_id(txn, &users)?;
    let user = User {
        id,
        username: new.username,
        email: new.email,
        first_name: new.first_name,
        last_name: new.last_name,
        password_hash: new.password_hash,
        approved: new.approved,
        permissions: new.permissions,
        created_us,
        stamp: random_id(),
        disabled: false,
        logins: Vec::new(),
    };
    users.insert(id, encode_user(&user)?.as_slice())?;
    by_name.insert(name_key.as_str(), id)?;
    if !email_key.is_empty() {
        by_email.insert(email_key.as_str(), id)?;
    }
    Ok(user)
}

impl Store {
    /// Creates an account (operator or setup path: no cap on pending accounts).
    pub fn create_user(&self, new: NewUser) -> Result<User, UserError> {
        self.register_user(new, None)
    }

    /// Creates an account; user names and e-mails are unique ignoring case. With `pending`,
    /// an unapproved account is refused when as many are already waiting.
    pub fn register_user(&self, new: NewUser, pending: Option<Pending>) -> Result<User, UserError> {
        let txn = self.db()?.begin_write()?;
        let user = {
            let users = txn.open_table(USERS)?;
            if let (Some(cap), false) = (pending, new.approved) {
                let mut waiting = 0;
                for row in users.iter()? {
                    if !decode_user(row?.1.value())?.approved {
                        waiting += 1;
                    }
                }
                if waiting >= cap.max {
                    return Err(UserError::TooManyPending(waiting));
                }
            }
            drop(users);
            insert_user(&txn, new, crate::sitetime::now_us())?
        };
        txn.commit()?;
        Ok(user)
    }

    /// Changes an account with `f`, refusing to leave nobody able to approve users.
    pub fn update_user(&self, id: u64, f: impl FnOnce(&mut User)) -> Result<User, UserError> {
        let txn = self.db()?.begin_write()?;
        let user = {
            let mut users = txn.open_table(USERS)?;
            let before = load(&users, id)?;
            let mut user = before.clone();
            f(&mut user);
            keep_an_approver(&users, &before, Some(&user))?;
            users.insert(id, encode_user(&user)?.as_slice())?;
            user
        };
        txn.commit()?;
        Ok(user)
    }

    /// Approves an account, adding `bits` to its permissions if it was pending.
    pub fn approve_user(&self, id: u64, bits: u32) -> Result<User, UserError> {
        self.update_user(id, |u| {
            if !u.approved {
                u.permissions |= bits;
            }
            u.approved = true;
        })
    }

    /// Replaces an account's permissions (its sessions go on; see the module docs).
    pub fn set_permissions(&self, id: u64, bits: u32) -> Result<User, UserError> {
        self.update_user(id, |u| u.permissions = bits)
    }

    /// Disables (ending every session) or enables an account. Enabling keeps the stamp given
    /// at disabling, so tokens from before stay refused.
    pub fn set_disabled(&self, id: u64, disabled: bool) -> Result<User, UserError> {
        self.update_user(id, |u| {
            if disabled && !u.disabled {
                u.stamp = random_id();
            }
            u.disabled = disabled;
        })
    }

    /// Sets a new password hash and a new stamp, ending every session of the account.
    pub fn set_password(&self, id: u64, password_hash: String) -> Result<User, UserError> {
        self.update_user(id, |u| {
            u.password_hash = password_hash;
            u.stamp = random_id();
        })
    }

    /// Remembers a successful login from `address` at `at_us` (newest first, bounded).
    pub fn record_login(&self, id: u64, address: &str, at_us: i64) -> Result<User, UserError> {
        self.update_user(id, |u| {
            u.logins.retain(|m| m.address != address);
            u.logins.insert(
                0,
                LoginMark {
                    address: address.to_string(),
                    at_us,
                },
            );
            u.logins.truncate(MAX_LOGIN_MARKS);
        })
    }

    /// Deletes an account and its name and e-mail entries; the id is never handed out again.
    pub fn delete_user(&self, id: u64) -> Result<User, UserError> {
        self.remove_user(id, false)
    }

    /// Deletes an account that is still waiting for approval (a rejected registration).
    pub fn reject_user(&self, id: u64) -> Result<User, UserError> {
        self.remove_user(id, true)
    }

    fn remove_user(&self, id: u64, only_pending: bool) -> Result<User, UserError> {
        let txn = self.db()?.begin_write()?;
        let user = {
            let mut users = txn.open_table(USERS)?;
            let user = load(&users, id)?;
            if only_pending && user.approved {
                return Err(UserError::AlreadyApproved);
            }
            keep_an_approver(&users, &user, None)?;
            users.remove(id)?;
            let mut by_name = txn.open_table(USERS_BY_NAME)?;
            by_name.remove(user.username.to_lowercase().as_str())?;
            let mut by_email = txn.open_table(USERS_BY_EMAIL)?;
            by_email.remove(user.email.to_lowercase().as_str())?;
            // Deleting the newest account must not let its id come back.
            let mut meta = txn.open_table(META)?;
            let counter = meta.get(meta_key::NEXT_USER_ID)?.map(|v| v.value());
            meta.insert(meta_key::NEXT_USER_ID, counter.unwrap_or(0).max(id + 1))?;
            user
        };
        txn.commit()?;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::Permission;

    fn new(name: &str, approved: bool, permissions: u32) -> NewUser {
        NewUser {
            username: name.into(),
            email: format!("{name}@finca.co"),
            first_name: String::new(),
            last_name: String::new(),
            password_hash: "x".into(),
            approved,
            permissions,
        }
    }

    #[test]
    fn ids_are_never_reused_and_an_approver_always_remains() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).unwrap();
        let admin = store
            .create_user(new("admin", true, Permission::all_bits()))
            .unwrap();
        let b = store.create_user(new("b", false, 0)).unwrap();
        store.reject_user(b.id).unwrap();
        let c = store.create_user(new("c", true, 0)).unwrap();
        assert!(c.id > b.id, "{} after {}", c.id, b.id);
        store.delete_user(c.id).unwrap();
        assert!(store.create_user(new("d", true, 0)).unwrap().id > c.id);

        for result in [
            store.delete_user(admin.id),
            store.set_disabled(admin.id, true),
            store.set_permissions(admin.id, 0),
        ] {
            assert!(matches!(result, Err(UserError::LastApprover)), "{result:?}");
        }
        let e = store.create_user(new("e", false, 0)).unwrap();
        assert!(matches!(
            store.reject_user(admin.id),
            Err(UserError::AlreadyApproved)
        ));
        // A disabled approver does not count.
        let f = store
            .create_user(new("f", true, Permission::AprobarUsuarios as u32))
            .unwrap();
        store.set_disabled(f.id, true).unwrap();
        assert!(matches!(
            store.delete_user(admin.id),
            Err(UserError::LastApprover)
        ));
        store.set_disabled(f.id, false).unwrap();
        store.delete_user(admin.id).unwrap();

        let capped = store.register_user(new("g", false, 0), Some(Pending { max: 1 }));
        assert!(
            matches!(capped, Err(UserError::TooManyPending(1))),
            "{capped:?}"
        );
        store.reject_user(e.id).unwrap();
        store
            .register_user(new("g", false, 0), Some(Pending { max: 1 }))
            .unwrap();
    }

    #[test]
    fn password_and_disabling_renew_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).unwrap();
        let u = store.create_user(new("u", true, 0)).unwrap();
        let p = store.set_password(u.id, "y".into()).unwrap();
        assert_ne!(p.stamp, u.stamp);
        let perms = store.set_permissions(u.id, 2).unwrap();
        assert_eq!(perms.stamp, p.stamp, "permissions keep the sessions");
        let off = store.set_disabled(u.id, true).unwrap();
        assert_ne!(off.stamp, p.stamp);
        let on = store.set_disabled(u.id, false).unwrap();
        assert_eq!(on.stamp, off.stamp);
        let seen = store.record_login(u.id, "10.0.0.2", 9).unwrap();
        assert!(seen.logged_in_from("10.0.0.2", 0));
        assert_eq!(seen.stamp, on.stamp);
    }
}
