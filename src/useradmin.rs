//! `biogestor user add|list|passwd|disable|enable|delete`: account operations straight on the
//! store, for the first administrator, for recovery (a forgotten administrator password, an
//! administrator locked out) and for scripts. They need the service stopped (the store admits
//! one process) and keep the same rules as the web: field and password rules, and somebody
//! active must keep `AprobarUsuarios`.

use crate::auth::password;
use crate::cli::UserCommand;
use crate::config::ValidConfig;
use crate::logsafe::Clean;
use crate::rules::account::{self, Identity};
use crate::rules::{FieldErrors, password as rules};
use crate::store::users::{NewUser, Permission, User, UserError};
use crate::store::{Store, StoreError};

/// What the operator asked for.
pub struct AddUser {
    pub username: String,
    pub password: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub admin: bool,
}

/// Why an account operation failed; messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum UserAdminError {
    #[error(
        "the store in {dir} is in use by the running service. Stop it first \
         (`sudo systemctl stop biogestor`), run this command again, then start it{hint}"
    )]
    InUse { dir: String, hint: &'static str },
    #[error("password rejected: {0}")]
    WeakPassword(String),
    #[error("a user named {0:?} already exists")]
    UsernameTaken(String),
    #[error("a user with e-mail {0:?} already exists")]
    EmailTaken(String),
    #[error("{0}")]
    InvalidField(String),
    #[error("no account is named {0:?} (`biogestor user list` shows them)")]
    NoSuchUser(String),
    #[error(
        "{0:?} is the last active account that can approve users (AprobarUsuarios); give that \
         permission to another account first"
    )]
    LastApprover(String),
    #[error("{0}")]
    Other(String),
}

/// Hint for `user add` when the service holds the store.
const ADD_HINT: &str = "; or, without stopping it, register in the web interface and have an \
                        administrator approve you";

fn open(cfg: &ValidConfig, hint: &'static str) -> Result<Store, UserAdminError> {
    Store::open(cfg.data_dir(), cfg.raw.storage.cache_size_mb, cfg.timezone).map_err(|e| match e {
        StoreError::InUse { .. } => UserAdminError::InUse {
            dir: cfg.data_dir().display().to_string(),
            hint,
        },
        other => UserAdminError::Other(other.to_string()),
    })
}

/// Runs `f` on the store and closes it, whatever `f` returned.
fn with_store<T>(
    cfg: &ValidConfig,
    hint: &'static str,
    f: impl FnOnce(&Store) -> Result<T, UserAdminError>,
) -> Result<T, UserAdminError> {
    let store = open(cfg, hint)?;
    let result = f(&store);
    store
        .close()
        .map_err(|e| UserAdminError::Other(e.to_string()))?;
    result
}

fn by_name(store: &Store, username: &str) -> Result<User, UserAdminError> {
    store
        .user_by_name(username.trim())
        .map_err(|e| UserAdminError::Other(e.to_string()))?
        .ok_or_else(|| UserAdminError::NoSuchUser(username.to_string()))
}

fn changed(username: &str) -> impl FnOnce(UserError) -> UserAdminError + '_ {
    move |e| match e {
        UserError::LastApprover => UserAdminError::LastApprover(username.to_string()),
        UserError::NotFound => UserAdminError::NoSuchUser(username.to_string()),
        other => UserAdminError::Other(other.to_string()),
    }
}

/// The rules' messages, each after the option it is about (`--username: …`).
fn options_message(errors: &FieldErrors) -> String {
    errors
        .iter()
        .map(|(field, msgs)| format!("--{}: {}", field.replace('_', "-"), msgs.join(" ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Creates the account and returns its id. The user name and e-mail are trimmed like the
/// registration form trims them, then checked by the same rules.
pub fn add(cfg: &ValidConfig, mut req: AddUser) -> Result<u64, UserAdminError> {
    req.username = req.username.trim().to_string();
    req.email = req.email.trim().to_string();
    let identity = Identity {
        username: &req.username,
        email: &req.email,
        first_name: &req.first_name,
        last_name: &req.last_name,
    };
    let mut errors = FieldErrors::new();
    identity.check(&mut errors);
    if req.username.is_empty() {
        crate::rules::push(&mut errors, "username", account::USERNAME_RULE);
    }
    if req.email.is_empty() {
        crate::rules::push(&mut errors, "email", account::EMAIL_RULE);
    }
    if !errors.is_empty() {
        return Err(UserAdminError::InvalidField(options_message(&errors)));
    }
    let broken = rules::check(&req.password, &identity.attributes());
    if !broken.is_empty() {
        return Err(UserAdminError::WeakPassword(broken.join(" ")));
    }
    let permissions = if req.admin {
        Permission::all_bits()
    } else {
        account::default_permission_bits()
    };
    with_store(cfg, ADD_HINT, |store| {
        let hash = password::hash_blocking(&req.password)
            .map_err(|e| UserAdminError::Other(e.to_string()))?;
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
                UserError::UsernameTaken => UserAdminError::UsernameTaken(username),
                UserError::EmailTaken => UserAdminError::EmailTaken(email),
                other => UserAdminError::Other(other.to_string()),
            })?;
        Ok(user.id)
    })
}

/// One line per account.
fn describe(u: &User) -> String {
    let state = match (u.approved, u.disabled) {
        (false, _) => "pending",
        (true, true) => "disabled",
        (true, false) => "active",
    };
    let perms = u.permission_names().join(",");
    format!(
        "{:>5}  {:<24} {:<32} {:<8} {}",
        u.id,
        Clean(&u.username).to_string(),
        Clean(&u.email).to_string(),
        state,
        if perms.is_empty() { "-" } else { &perms }
    )
}

/// Runs an account command other than `add`; returns what to print.
pub fn execute(cfg: &ValidConfig, action: UserCommand) -> Result<String, UserAdminError> {
    match action {
        UserCommand::Add {
            username,
            password,
            email,
            admin,
            first_name,
            last_name,
            ..
        } => {
            let req = AddUser {
                username: username.clone(),
                password,
                email,
                first_name: first_name.unwrap_or_default(),
                last_name: last_name.unwrap_or_default(),
                admin,
            };
            let id = add(cfg, req)?;
            let role = if admin { "administrator" } else { "user" };
            Ok(format!("created {role} {username:?} (id {id})"))
        }
        UserCommand::List { .. } => with_store(cfg, "", |store| {
            let users = store
                .users()
                .map_err(|e| UserAdminError::Other(e.to_string()))?;
            let mut out = format!(
                "{:>5}  {:<24} {:<32} {:<8} permissions",
                "id", "username", "email", "state"
            );
            for u in &users {
                out.push('\n');
                out.push_str(&describe(u));
            }
            Ok(out)
        }),
        UserCommand::Passwd {
            username, password, ..
        } => with_store(cfg, "", |store| {
            let user = by_name(store, &username)?;
            let generated = password.is_none();
            let password = password.unwrap_or_else(rules::generated);
            let broken = rules::check(
                &password,
                &[
                    &user.username,
                    &user.email,
                    &user.first_name,
                    &user.last_name,
                ],
            );
            if !broken.is_empty() {
                return Err(UserAdminError::WeakPassword(broken.join(" ")));
            }
            let hash = password::hash_blocking(&password)
                .map_err(|e| UserAdminError::Other(e.to_string()))?;
            store
                .set_password(user.id, hash)
                .map_err(changed(&username))?;
            let mut out = format!(
                "new password set for {:?}; its sessions have ended",
                user.username
            );
            if generated {
                out.push_str(&format!(
                    "\n  password: {password}\nIt is shown only this once."
                ));
            }
            Ok(out)
        }),
        UserCommand::Disable { username, .. } => set_disabled(cfg, &username, true),
        UserCommand::Enable { username, .. } => set_disabled(cfg, &username, false),
        UserCommand::Delete { username, .. } => with_store(cfg, "", |store| {
            let user = by_name(store, &username)?;
            store.delete_user(user.id).map_err(changed(&username))?;
            Ok(format!("deleted {:?} (id {})", user.username, user.id))
        }),
    }
}

fn set_disabled(
    cfg: &ValidConfig,
    username: &str,
    disabled: bool,
) -> Result<String, UserAdminError> {
    with_store(cfg, "", |store| {
        let user = by_name(store, username)?;
        store
            .set_disabled(user.id, disabled)
            .map_err(changed(username))?;
        Ok(if disabled {
            format!("disabled {:?}; its sessions have ended", user.username)
        } else {
            format!("enabled {:?}", user.username)
        })
    })
}
