//! Password hashing (argon2id) for a Raspberry Pi: each hash takes ~19 MiB and a noticeable
//! fraction of a second, so hashes run off the async executor and at most [`MAX_CONCURRENT`]
//! at once; a login flood waits in line (and gives up after [`QUEUE_TIMEOUT`]) instead of
//! exhausting memory or CPU. The 19 MiB of each hash come from their own mapping and go back
//! to the system afterwards (see [`crate::memory`]).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// Argon2id memory cost in KiB (19 MiB), iterations and lanes: the OWASP baseline
/// (m=19456, t=2, p=1), which keeps a login under half a second on a Raspberry Pi 4.
pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const LANES: u32 = 1;

/// Hashes computed at the same time (one per core of a Pi 3/4 would be 4; two leaves the
/// broker and the writer room).
pub const MAX_CONCURRENT: usize = 2;

/// Longest a request waits for a free hashing slot.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(15);

/// Errors of the password layer.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("too many logins at once; try again")]
    Busy,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

fn argon2() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A hash of a random password, verified against when the user does not exist so that both
/// cases take the same time.
static DUMMY_HASH: LazyLock<Option<String>> =
    LazyLock::new(|| hash_blocking("biogestor-dummy-password").ok());

/// Hashes `password` on the calling thread (for the CLI and tests).
pub fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    argon2()?
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    if is_legacy(hash) {
        return super::django::verify(password, hash);
    }
    argon2().is_ok_and(|a| a.verify_password(password.as_bytes(), hash).is_ok())
}

/// Whether `hash` is one brought from the old system, to be replaced by an argon2id hash at
/// the next successful login.
pub fn is_legacy(hash: &str) -> bool {
    hash.starts_with(super::django::PREFIX)
}

/// Runs hashes on the blocking pool, a bounded number at a time.
#[derive(Clone)]
pub struct Hasher {
    slots: Arc<Semaphore>,
}

impl Default for Hasher {
    fn default() -> Self {
        Self {
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT)),
        }
    }
}

impl Hasher {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
        Ok(out)
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.run(move || hash_blocking(&password)).await?
    }

    /// Checks `password` against `hash`, or spends the same time on a dummy hash when the
    /// account does not exist.
    pub async fn verify(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, PasswordError> {
        self.run(move || match hash {
            Some(h) => verify_blocking(&password, &h),
            None => {
                if let Some(d) = DUMMY_HASH.as_deref() {
                    let _ = verify_blocking(&password, d);
                }
                false
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = Hasher::default();
        let hash = h.hash("Tres-Vacas-Pintas".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            h.verify("Tres-Vacas-Pintas".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !h.verify("tres-vacas-pintas".into(), Some(hash))
                .await
                .unwrap()
        );
        assert!(!h.verify("x".into(), None).await.unwrap());
    }
}
