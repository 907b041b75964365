//! Accounts and revoked refresh tokens. Uniqueness of user names (case-insensitive) and
//! e-mails is checked and written in one transaction, so two registrations cannot race.

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::codec;
use super::tables::{REVOKED, USERS, USERS_BY_EMAIL, USERS_BY_NAME};
use super::{Store, StoreError};

/// Permission flags (bits of [`User::permissions`]). Bit positions are stored: append only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Permission {
    AprobarUsuarios = 1,
    VerDashboard = 1 << 1,
    VerReportes = 1 << 2,
    GenerarReportes = 1 << 3,
    GestionarLlenados = 1 << 4,
}

impl Permission {
    /// Every permission, in display order.
    pub const ALL: [Permission; 5] = [
        Permission::AprobarUsuarios,
        Permission::VerDashboard,
        Permission::VerReportes,
        Permission::GenerarReportes,
        Permission::GestionarLlenados,
    ];

    /// The name used by the API.
    pub fn name(self) -> &'static str {
        match self {
            Permission::AprobarUsuarios => "AprobarUsuarios",
            Permission::VerDashboard => "VerDashboard",
            Permission::VerReportes => "VerReportes",
            Permission::GenerarReportes => "GenerarReportes",
            Permission::GestionarLlenados => "GestionarLlenados",
        }
    }

    /// Parses an API name.
    pub fn from_name(name: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Every permission as a bit set.
    pub fn all_bits() -> u32 {
        Permission::ALL.iter().fold(0, |acc, p| acc | *p as u32)
    }
}

/// A stored account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password_hash: String,
    pub approved: bool,
    pub permissions: u32,
    pub created_us: i64,
}

impl User {
    /// Whether the user holds `p`.
    pub fn has(&self, p: Permission) -> bool {
        self.permissions & p as u32 != 0
    }

    /// Names of the permissions held.
    pub fn permission_names(&self) -> Vec<&'static str> {
        Permission::ALL
            .iter()
            .filter(|p| self.has(**p))
            .map(|p| p.name())
            .collect()
    }
}

fn encode_user(v: &User) -> Result<Vec<u8>, StoreError> {
    codec::encode("users", v)
}

fn decode_user(bytes: &[u8]) -> Result<User, StoreError> {
    codec::decode("users", bytes)
}

/// Why an account could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("username taken")]
    UsernameTaken,
    #[error("email taken")]
    EmailTaken,
    #[error("no such user")]
    NotFound,
    #[error("the last user allowed to approve users cannot lose that permission")]
    LastApprover,
    #[error(transparent)]
    Store(#[from] StoreError),
}

super::from_redb_errors!(UserError, |e| UserError::Store(StoreError::Db(e)));

/// The fields of a new account (the password already hashed).
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password_hash: String,
    pub approved: bool,
    pub permissions: u32,
}

impl Store {
    /// Creates an account; user names are unique ignoring case, e-mails unique ignoring case.
    pub fn create_user(&self, new: NewUser) -> Result<User, UserError> {
        let txn = self.db()?.begin_write()?;
        let user = {
            let mut by_name = txn.open_table(USERS_BY_NAME)?;
            let mut by_email = txn.open_table(USERS_BY_EMAIL)?;
            let mut users = txn.open_table(USERS)?;
            let name_key = new.username.to_lowercase();
            let email_key = new.email.to_lowercase();
            if by_name.get(name_key.as_str())?.is_some() {
                return Err(UserError::UsernameTaken);
            }
            if by_email.get(email_key.as_str())?.is_some() {
                return Err(UserError::EmailTaken);
            }
            let id = users.last()?.map(|(k, _)| k.value() + 1).unwrap_or(1);
            let user = User {
                id,
                username: new.username,
                email: new.email,
                first_name: new.first_name,
                last_name: new.last_name,
                password_hash: new.password_hash,
                approved: new.approved,
                permissions: new.permissions,
                created_us: crate::sitetime::now_us(),
            };
            users.insert(id, encode_user(&user)?.as_slice())?;
            by_name.insert(name_key.as_str(), id)?;
            by_email.insert(email_key.as_str(), id)?;
            user
        };
        txn.commit()?;
        Ok(user)
    }

    /// The account with `id`.
    pub fn user(&self, id: u64) -> Result<Option<User>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(USERS)?;
        t.get(id)?.map(|v| decode_user(v.value())).transpose()
    }

    /// The account named `username` (any case).
    pub fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let names = txn.open_table(USERS_BY_NAME)?;
        let Some(id) = names
            .get(username.to_lowercase().as_str())?
            .map(|v| v.value())
        else {
            return Ok(None);
        };
        let t = txn.open_table(USERS)?;
        t.get(id)?.map(|v| decode_user(v.value())).transpose()
    }

    /// Every account, oldest first.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(USERS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            out.push(decode_user(row?.1.value())?);
        }
        Ok(out)
    }

    /// Number of accounts.
    pub fn user_count(&self) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(USERS)?.len()?)
    }

    /// Changes an account with `f`, refusing to leave nobody able to approve users.
    pub fn update_user(&self, id: u64, f: impl FnOnce(&mut User)) -> Result<User, UserError> {
        let txn = self.db()?.begin_write()?;
        let user = {
            let mut users = txn.open_table(USERS)?;
            let mut user = match users.get(id)? {
                Some(v) => decode_user(v.value())?,
                None => return Err(UserError::NotFound),
            };
            let had = user.has(Permission::AprobarUsuarios) && user.approved;
            f(&mut user);
            if had && !(user.has(Permission::AprobarUsuarios) && user.approved) {
                let mut others = 0;
                for row in users.iter()? {
                    let other = decode_user(row?.1.value())?;
                    if other.id != id && other.approved && other.has(Permission::AprobarUsuarios) {
                        others += 1;
                    }
                }
                if others == 0 {
                    return Err(UserError::LastApprover);
                }
            }
            users.insert(id, encode_user(&user)?.as_slice())?;
            user
        };
        txn.commit()?;
        Ok(user)
    }

    /// Records a refresh token id as revoked until its expiry (µs).
    pub fn revoke_token(&self, jti: &str, exp_s: i64) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(REVOKED)?.insert(jti, exp_s)?;
        txn.commit()?;
        Ok(())
    }

    /// Revokes `old` and reports whether it was still valid, atomically: two concurrent
    /// refreshes with the same token cannot both succeed.
    pub fn revoke_if_active(&self, jti: &str, exp_s: i64) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_write()?;
        let fresh = {
            let mut t = txn.open_table(REVOKED)?;
            let fresh = t.get(jti)?.is_none();
            if fresh {
                t.insert(jti, exp_s)?;
            }
            fresh
        };
        txn.commit()?;
        Ok(fresh)
    }

    /// Whether a token id was revoked.
    pub fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(REVOKED)?.get(jti)?.is_some())
    }

    /// Forgets revocations of tokens that have expired anyway; returns how many.
    pub fn prune_revoked(&self, now_s: i64) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_write()?;
        let removed = {
            let mut t = txn.open_table(REVOKED)?;
            let mut n = 0;
            t.retain(|_, exp| {
                let keep = exp > now_s;
                if !keep {
                    n += 1;
                }
                keep
            })?;
            n
        };
        txn.commit()?;
        Ok(removed)
    }
}
