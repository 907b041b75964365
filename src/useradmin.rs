//! `biogestor user add`: creates an account directly in the store, for the first
//! administrator or for recovery. It needs the service stopped (the store admits one process).

use crate::auth::{password, rules};
use crate::config::ValidConfig;
use crate::store::users::{NewUser, Permission, UserError};
use crate::store::{Store, StoreError};

/// Permissions of an account created without `--admin`.
const DEFAULT_PERMISSIONS: [Permission; 2] = [Permission::VerDashboard, Permission::VerReportes];

/// What the operator asked for.
pub struct AddUser {
    pub username: String,
    pub password: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub admin: bool,
}

/// Why the account was not created; messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum AddUserError {
    #[error(
        "the store in {0} is in use by the running service. Stop it first \
         (`sudo systemctl stop biogestor`), run this command again, then start it; or, without \
         stopping it, register in the web interface and have an administrator approve you"
    )]
    InUse(String),
    #[error("password rejected: {0}")]
    WeakPassword(String),
    #[error("a user named {0:?} already exists")]
    UsernameTaken(String),
    #[error("a user with e-mail {0:?} already exists")]
    EmailTaken(String),
    #[error("{0}")]
    Other(String),
}

/// Creates the account and returns its id.
pub fn add(cfg: &ValidConfig, req: AddUser) -> Result<u64, AddUserError> {
    let broken = rules::check(
        &req.password,
        &[&req.username, &req.email, &req.first_name, &req.last_name],
    );
    if !broken.is_empty() {
        return Err(AddUserError::WeakPassword(broken.join(" ")));
    }
    let store =
        Store::open(cfg.data_dir(), cfg.raw.storage.cache_size_mb, cfg.timezone).map_err(|e| {
            match e {
                StoreError::InUse { .. } => {
                    AddUserError::InUse(cfg.data_dir().display().to_string())
                }
                other => AddUserError::Other(other.to_string()),
            }
        })?;
    let hash =
        password::hash_blocking(&req.password).map_err(|e| AddUserError::Other(e.to_string()))?;
    let permissions = if req.admin {
        Permission::all_bits()
    } else {
        DEFAULT_PERMISSIONS.iter().fold(0, |acc, p| acc | *p as u32)
    };
    let (username, email) = (req.username.clone(), req.email.clone());
    let user = store
        .create_user(NewUser {
            username: req.username,
            email: req.email,
            first_name: req.first_name,
            last_name: req.last_name,
            password_hash: hash,
            approved: true,
            permissions,
        })
        .map_err(|e| match e {
            UserError::UsernameTaken => AddUserError::UsernameTaken(username),
            UserError::EmailTaken => AddUserError::EmailTaken(email),
            other => AddUserError::Other(other.to_string()),
        })?;
    store
        .close()
        .map_err(|e| AddUserError::Other(e.to_string()))?;
    Ok(user.id)
}
