//! Accounts, sessions and permissions: password hashing, token signing, failed-login
//! throttling, registration limits and the one-time setup code that creates the first
//! administrator.

pub mod django;
pub mod password;
pub mod registrations;
pub mod sessions;
pub mod throttle;
pub mod tokens;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::AuthConfig;
use crate::store::users::Pending;
use crate::store::{Store, StoreError};

pub use password::Hasher;
pub use registrations::RegistrationLimits;
pub use throttle::LoginThrottle;
pub use tokens::{Claims, Keys, Subject, TokenError, TokenType};

/// File (in `data_dir`) holding the first-run setup code until it is used.
pub const SETUP_CODE_FILE: &str = "setup-code";

/// Everything the HTTP layer needs to authenticate requests (cheap to clone).
#[derive(Clone)]
pub struct Auth {
    pub keys: Keys,
    pub hasher: Hasher,
    /// Failed-login counters.
    pub throttle: Arc<LoginThrottle>,
    /// Registrations per address and for everybody.
    pub registrations: Arc<RegistrationLimits>,
    /// The cap on accounts waiting for approval (`auth.max_pending_accounts`).
    pub pending: Pending,
    setup: Arc<Mutex<Option<String>>>,
    data_dir: PathBuf,
}

/// Errors preparing authentication at start-up.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the setup code {path}: {source}")]
    SetupFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Auth {
    /// Loads (or creates) the signing secret, checks the JWT library works, and while no
    /// approved account may approve users prepares the one-time setup code (accounts
    /// registered before that stay pending, and nobody could approve them otherwise).
    pub fn start(store: &Store, data_dir: &Path, cfg: &AuthConfig) -> Result<Auth, AuthSetupError> {
        let keys = Keys::new(
            &tokens::load_secret(&cfg.jwt_secret, data_dir)?,
            cfg.access_minutes,
            cfg.refresh_days,
        );
        keys.self_test()?;
        let has_approver = store.users()?.iter().any(|u| u.approves());
        let setup = if !has_approver {
            Some(Self::setup_code(data_dir)?)
        } else {
            let _ = std::fs::remove_file(data_dir.join(SETUP_CODE_FILE));
            None
        };
        Ok(Auth {
            keys,
            hasher: Hasher::default(),
            throttle: Arc::default(),
            registrations: Arc::new(RegistrationLimits::new(
                cfg.registrations_per_address_per_hour,
                cfg.registrations_per_hour,
            )),
            pending: Pending {
                max: cfg.max_pending_accounts,
            },
            setup: Arc::new(Mutex::new(setup)),
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// Reads the pending setup code or creates one (mode 0600), and logs it.
    fn setup_code(data_dir: &Path) -> Result<String, AuthSetupError> {
        let path = data_dir.join(SETUP_CODE_FILE);
        let code = match std::fs::read_to_string(&path) {
            Ok(c) if c.trim().len() >= 8 => c.trim().to_string(),
            _ => {
                let raw = tokens::random_token(12).to_uppercase();
                let code = format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..]);
                crate::fsmode::write_atomic(&path, format!("{code}\n").as_bytes()).map_err(
                    |source| AuthSetupError::SetupFile {
                        path: path.clone(),
                        source,
                    },
                )?;
                code
            }
        };
        tracing::warn!(
            setup_code = %code,
            file = %path.display(),
            "no administrator yet: register in the web interface with this one-time setup code to \
             become the administrator"
        );
        Ok(code)
    }

    /// Takes the pending setup code if `code` matches it (constant-time comparison), so two
    /// registrations cannot both use it. Give it back with [`Auth::restore_setup_code`] if the
    /// account could not be created, or finish with [`Auth::setup_code_used`].
    pub fn claim_setup_code(&self, code: &str) -> bool {
        let Ok(mut guard) = self.setup.lock() else {
            return false;
        };
        let code = code.trim();
        let matches = guard.as_deref().is_some_and(|c| {
            c.len() == code.len()
                && c.bytes()
                    .zip(code.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if matches {
            *guard = None;
        }
        matches
    }

    /// Puts a claimed setup code back (the registration failed).
    pub fn restore_setup_code(&self, code: &str) {
        if let Ok(mut guard) = self.setup.lock() {
            *guard = Some(code.trim().to_string());
        }
    }

    /// Deletes the setup-code file once the administrator exists.
    pub fn setup_code_used(&self) {
        let _ = std::fs::remove_file(self.data_dir.join(SETUP_CODE_FILE));
        tracing::info!("administrator created with the setup code; the code is no longer valid");
    }

    /// Whether a setup code is waiting to be used.
    pub fn setup_pending(&self) -> bool {
        self.setup.lock().is_ok_and(|g| g.is_some())
    }
}
