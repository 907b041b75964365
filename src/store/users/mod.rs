//! Accounts. Uniqueness of user names and e-mails (ignoring case) is checked and written in
//! one transaction, so two registrations cannot race; every change that must keep somebody
//! able to approve users checks that in the same transaction (see [`changes`]).
//!
//! Each account carries a security *stamp*, a random number copied into every token issued
//! to it: giving the account a new stamp (password change or reset, disabling) ends every
//! session at once. Permission changes keep the stamp: the account is read on each request,
//! so a removed permission counts from the next request without logging anybody out.

mod changes;

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::tables::{USERS, USERS_BY_NAME};
use super::{Store, StoreError};

pub use changes::Pending;
pub(in crate::store) use changes::insert_user;

/// Permission flags (bits of [`User::permissions`]). Bit positions are stored: append only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Permission {
    AprobarUsuarios = 1,
    VerDashboard = 1 << 1,
    VerReportes = 1 << 2,
    GenerarReportes = 1 << 3,
    GestionarLlenados = 1 << 4,
    /// Acknowledge alarms, edit their thresholds, send a test notification.
    GestionarAlarmas = 1 << 5,
}

impl Permission {
    /// Every permission, in display order.
    pub const ALL: [Permission; 6] = [
        Permission::AprobarUsuarios,
        Permission::VerDashboard,
        Permission::VerReportes,
        Permission::GenerarReportes,
        Permission::GestionarLlenados,
        Permission::GestionarAlarmas,
    ];

    /// The name used by the API.
    pub fn name(self) -> &'static str {
        match self {
            Permission::AprobarUsuarios => "AprobarUsuarios",
            Permission::VerDashboard => "VerDashboard",
            Permission::VerReportes => "VerReportes",
            Permission::GenerarReportes => "GenerarReportes",
            Permission::GestionarLlenados => "GestionarLlenados",
            Permission::GestionarAlarmas => "GestionarAlarmas",
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

/// Where and when an account last logged in successfully from one address (normalised as the
/// login throttle keys it), so failures elsewhere do not lock it out there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginMark {
    /// The client address (an IPv6 address as its /64 network).
    pub address: String,
    /// Time of the latest successful login from it, µs since the epoch.
    pub at_us: i64,
}

/// Most login addresses remembered per account.
pub const MAX_LOGIN_MARKS: usize = 8;

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
    /// Copied into every token of the account; a new one ends all its sessions.
    pub stamp: u64,
    /// A disabled account cannot log in and its tokens are refused.
    pub disabled: bool,
    /// Recent successful logins, newest first, at most [`MAX_LOGIN_MARKS`].
    pub logins: Vec<LoginMark>,
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

    /// Whether the account may sign in and use tokens: approved and not disabled.
    pub fn active(&self) -> bool {
        self.approved && !self.disabled
    }

    /// Whether the account can approve users right now (what the last-approver rule keeps).
    pub fn approves(&self) -> bool {
        self.active() && self.has(Permission::AprobarUsuarios)
    }

    /// Whether the account logged in from `address` at or after `since_us`.
    pub fn logged_in_from(&self, address: &str, since_us: i64) -> bool {
        self.logins
            .iter()
            .any(|m| m.address == address && m.at_us >= since_us)
    }
}

/// An account as schema version 1 stored it (before stamps, disabling and login marks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct UserV1 {
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

impl UserV1 {
    /// The account with the fields added since, and `stamp`.
    pub(crate) fn upgrade(self, stamp: u64) -> User {
        User {
            id: self.id,
            username: self.username,
            email: self.email,
            first_name: self.first_name,
            last_name: self.last_name,
            password_hash: self.password_hash,
            approved: self.approved,
            permissions: self.permissions,
            created_us: self.created_us,
            stamp,
            disabled: false,
            logins: Vec::new(),
        }
    }
}

/// A row of the `users` table: the version byte first, so old rows stay readable.
#[derive(Serialize, Deserialize)]
pub(crate) enum StoredUser {
    V1(UserV1),
    V2(User),
}

#[derive(Serialize)]
enum StoredUserRef<'a> {
    #[allow(dead_code)]
    V1(&'a UserV1),
    V2(&'a User),
}

pub(crate) fn encode_user(v: &User) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(&StoredUserRef::V2(v)).map_err(|e| StoreError::Corrupt {
        table: "users",
        detail: e.to_string(),
    })
}

/// Decodes a row of any version. A version-1 row not migrated yet gets stamp 0 (the migration
/// at start-up gives each a random one before any token is issued).
pub(crate) fn decode_user(bytes: &[u8]) -> Result<User, StoreError> {
    match decode_stored(bytes)? {
        StoredUser::V1(old) => Ok(old.upgrade(0)),
        StoredUser::V2(u) => Ok(u),
    }
}

pub(crate) fn decode_stored(bytes: &[u8]) -> Result<StoredUser, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        table: "users",
        detail: e.to_string(),
    })
}

/// A random non-zero number below 2⁵³ (exact in JavaScript too): security stamps, session
/// and store-instance ids.
pub fn random_id() -> u64 {
    loop {
        let v = rand::random::<u64>() >> 11;
        if v != 0 {
            return v;
        }
    }
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
    #[error("the last account that can approve users must keep that ability")]
    LastApprover,
    #[error("the account is already approved")]
    AlreadyApproved,
    #[error("too many accounts are waiting for approval ({0})")]
    TooManyPending(u64),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A schema-1 row: postcard bytes of `Row::V1(UserV1 { id: 7, username: "ana", email:
    /// "ana@finca.co", first_name: "Ana", last_name: "Pérez", password_hash: "$argon2id$…",
    /// approved: true, permissions: 3, created_us: 1_764_230_400_000_000 })`.
    const V1_ROW: &str = "000703616e610c616e614066696e63612e636f03416e610650c3a972657a2c246172676f6e\
        32696424763d3139246d3d31393435362c743d322c703d3124633246736441246147467a614101038080\
        dae4dca3a206";

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn schema_1_rows_decode() {
        let u = decode_user(&hex(V1_ROW)).unwrap();
        assert_eq!(u.id, 7);
        assert_eq!(u.username, "ana");
        assert_eq!(u.last_name, "Pérez");
        assert!(u.approved && u.has(Permission::AprobarUsuarios) && !u.disabled);
        assert_eq!(u.created_us, 1_764_230_400_000_000);
        assert_eq!((u.stamp, u.logins.len()), (0, 0));
        // The generic codec wrote version-1 rows; its bytes are the same.
        let StoredUser::V1(old) = decode_stored(&hex(V1_ROW)).unwrap() else {
            panic!("a version-1 row");
        };
        assert_eq!(
            super::super::codec::encode("users", &old).unwrap(),
            hex(V1_ROW)
        );
    }

    #[test]
    fn current_rows_round_trip() {
        let mut u = decode_user(&hex(V1_ROW)).unwrap();
        u.stamp = random_id();
        u.disabled = true;
        u.logins.push(LoginMark {
            address: "192.168.1.20".into(),
            at_us: 5,
        });
        assert_eq!(decode_user(&encode_user(&u).unwrap()).unwrap(), u);
        assert!(u.logged_in_from("192.168.1.20", 5) && !u.logged_in_from("192.168.1.20", 6));
        assert!(!u.active() && !u.approves());
    }
}
