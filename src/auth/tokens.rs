//! Session tokens: HS256 JWTs with a type claim, so an access token never works as a refresh
//! token or the other way round. The signing secret comes from `auth.jwt_secret` or is
//! generated once into `data_dir/jwt-secret` (mode 0600); it is never logged.
//!
//! Besides the account id, every token names its session (`sid`, shared by the tokens issued
//! since one login, so a logout ends them all), the account's security stamp (`stamp`: a
//! password change, reset or disabling gives the account a new one) and the store instance
//! that issued it (`inst`: a restore makes a new instance). A token is only accepted while all
//! three still match.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Which kind of token a JWT is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

/// The claims of both token types.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: u64,
    /// Token kind.
    pub typ: TokenType,
    /// Unique id, used to revoke a refresh token once used or logged out.
    pub jti: String,
    /// Session id, shared by every token issued since one login.
    pub sid: String,
    /// The account's security stamp when the token was issued.
    pub stamp: u64,
    /// The store instance that issued the token.
    pub inst: u64,
    pub iat: i64,
    pub exp: i64,
}

/// Who a token is issued to: the account, its current stamp, the session and the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub user_id: u64,
    pub stamp: u64,
    pub sid: String,
    pub instance: u64,
}

impl Subject {
    /// A subject for a new session (a login).
    pub fn new_session(user_id: u64, stamp: u64, instance: u64) -> Subject {
        Subject {
            user_id,
            stamp,
            sid: random_token(24),
            instance,
        }
    }
}

/// Why a token was refused (the client only ever sees "invalid or expired").
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid: {0}")]
    Invalid(String),
    #[error("wrong token type")]
    WrongType,
    #[error("cannot read or create the signing secret {path}: {source}")]
    Secret {
        path: String,
        source: std::io::Error,
    },
}

/// Signs and checks tokens with one secret.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub access_s: i64,
    pub refresh_s: i64,
}

/// File of the generated secret inside `data_dir`.
pub const SECRET_FILE: &str = "jwt-secret";

/// Loads the secret from config, else from `data_dir/jwt-secret`, creating it (0600) on
/// first start.
pub fn load_secret(configured: &str, data_dir: &Path) -> Result<Vec<u8>, TokenError> {
    if !configured.is_empty() {
        return Ok(configured.as_bytes().to_vec());
    }
    let path = data_dir.join(SECRET_FILE);
    let err = |source| TokenError::Secret {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => {
            crate::fsmode::restrict_file(&path).map_err(err)?;
            return Ok(s.trim().as_bytes().to_vec());
        }
        Ok(_) => {
            return Err(err(std::io::Error::other(
                "the file holds fewer than 32 characters",
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let secret = random_token(48);
    crate::fsmode::write_atomic(&path, secret.as_bytes()).map_err(err)?;
    tracing::info!(path = %path.display(), "generated a new token signing secret");
    Ok(secret.into_bytes())
}

/// Compares secrets without an early exit that would reveal how much of them matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A random alphanumeric string of `len` characters.
pub fn random_token(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

impl Keys {
    /// Keys for `secret` with the configured lifetimes.
    pub fn new(secret: &[u8], access_minutes: u64, refresh_days: u64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            access_s: access_minutes as i64 * 60,
            refresh_s: refresh_days as i64 * 86_400,
        }
    }

    /// Signs a new token for `subject`.
    pub fn issue(&self, subject: &Subject, typ: TokenType) -> Result<(String, Claims), TokenError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: subject.user_id,
            typ,
            jti: random_token(24),
            sid: subject.sid.clone(),
            stamp: subject.stamp,
            inst: subject.instance,
            iat: now,
            exp: now
                + match typ {
                    TokenType::Access => self.access_s,
                    TokenType::Refresh => self.refresh_s,
                },
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        Ok((token, claims))
    }

    /// Verifies signature, algorithm (HS256 only), expiry (no leeway) and type.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.set_required_spec_claims(&["exp"]);
        let data = decode::<Claims>(token, &self.decoding, &v).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid(e.to_string()),
        })?;
        if data.claims.typ != expected {
            return Err(TokenError::WrongType);
        }
        Ok(data.claims)
    }

    /// Encodes and decodes once at start-up: a crypto backend misconfiguration in the JWT
    /// library only shows at run time, and should stop start-up rather than the first login.
    pub fn self_test(&self) -> Result<(), TokenError> {
        let (t, _) = self.issue(&Subject::new_session(0, 0, 0), TokenType::Access)?;
        self.verify(&t, TokenType::Access).map(|_| ())
    }

    /// Seconds after which every token issued now has expired.
    pub fn longest_lifetime_s(&self) -> i64 {
        self.access_s.max(self.refresh_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_not_interchangeable() {
        let k = Keys::new(b"0123456789abcdef0123456789abcdef", 60, 7);
        let who = Subject::new_session(3, 11, 99);
        let (access, _) = k.issue(&who, TokenType::Access).unwrap();
        let (refresh, r) = k.issue(&who, TokenType::Refresh).unwrap();
        let a = k.verify(&access, TokenType::Access).unwrap();
        assert_eq!((a.sub, a.stamp, a.inst), (3, 11, 99));
        assert_eq!(a.sid, r.sid, "one session");
        assert_ne!(a.jti, r.jti);
        assert!(matches!(
            k.verify(&access, TokenType::Refresh),
            Err(TokenError::WrongType)
        ));
        assert!(matches!(
            k.verify(&refresh, TokenType::Access),
            Err(TokenError::WrongType)
        ));
        let other = Keys::new(b"another-secret-another-secret-xx", 60, 7);
        assert!(matches!(
            other.verify(&access, TokenType::Access),
            Err(TokenError::Invalid(_))
        ));
        k.self_test().unwrap();
    }

    #[test]
    fn secret_file_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = load_secret("", dir.path()).unwrap();
        let b = load_secret("", dir.path()).unwrap();
        assert_eq!(a, b);
        let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            load_secret("configured-secret-of-32-characters!", dir.path())
                .unwrap()
                .len(),
            35
        );
    }
}
