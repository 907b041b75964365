//! Session tokens: HS256 JWTs with a type claim, so an access token never works as a refresh
//! token or the other way round. The signing secret comes from `auth.jwt_secret` or is
//! generated once into `data_dir/jwt-secret` (mode 0600); it is never logged.
//!
//! Besides the account id, every token names its session (`sid`, shared by the tokens issued
//! since one login, so a logout ends them all), the account's security stamp (`stamp`: a
//! password change, reset or disabling gives the account a new one) and the store instance
//! that issued it (`inst`: a restore makes a new instance). A token is only accepted while all
//! three still match.
//!
//! Expiry survives clock steps. A Raspberry Pi's clock may jump by years when NTP (or an
//! administrator) finally sets it, which would expire every token issued before, or keep
//! alive for years those issued while it ran ahead. So a token also carries the boot it was
//! issued in (`boot`, the kernel's boot id) and the milliseconds since that boot (`up`,
//! `CLOCK_BOOTTIME`, which no clock step moves); the field clock remembers when (on that
//! clock) and by how much the time jumped (`clock::monitor::jumps_after`). A token of this
//! boot has its `iat`/`exp` moved by the jumps after its issue, so it lives its lifetime,
//! no more and no less; a token of an earlier boot (or release) keeps its wall-clock `exp`.
//! Verified claims come back with the moved `iat`/`exp`, so revocation records made from them
//! expire when the token does (and the pruner waits a token lifetime after a jump).

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
    /// Kernel boot id at issue (absent in tokens of earlier releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
    /// Milliseconds since boot at issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<i64>,
}

/// The kernel's id of this boot, read once.
fn boot_id() -> Option<&'static str> {
    static ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

/// Milliseconds since boot (steady across clock steps).
fn uptime_ms() -> Option<i64> {
    crate::clock::boottime_ms()
}

/// Milliseconds the clock jumped after boot-time millisecond `up`.
fn jumps_after_ms(up: i64) -> i64 {
    crate::clock::monitor::jumps_after(up).div_euclid(1000)
}

/// A jump noticed by the field clock's watcher is known to within its check interval; a
/// token issued this long before the recorded time may predate the jump.
const JUMP_WINDOW_MS: i64 = 2_000;

/// The appliance's best estimate of now, in seconds.
fn now_s() -> i64 {
    crate::clock::now_us().div_euclid(1_000_000)
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
        let now = now_s();
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
            boot: boot_id().map(str::to_string),
            up: uptime_ms(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        Ok((token, claims))
    }

    /// Verifies signature, algorithm (HS256 only), expiry (no leeway, see the module
    /// comment) and type; the claims come back with `iat`/`exp` in the current clock.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.validate_exp = false;
        v.set_required_spec_claims(&["exp"]);
        let data = decode::<Claims>(token, &self.decoding, &v)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let mut claims = data.claims;
        let now_ms = crate::clock::now_us().div_euclid(1000);
        let shift = jump_shift_s(&claims, boot_id(), now_ms, uptime_ms(), jumps_after_ms);
        claims.iat += shift;
        claims.exp += shift;
        if claims.exp <= now_s() {
            return Err(TokenError::Expired);
        }
        if claims.typ != expected {
            return Err(TokenError::WrongType);
        }
        Ok(claims)
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

/// Seconds a token's times move: for a token of this boot (`boot`), the clock's recorded
/// jumps since its issue — whichever reading of them (none; those after its issue; those
/// after it less the watcher's window) best matches how far the clock moved against the boot
/// clock since (`now_ms`, `uptime_ms`); else none. A token whose times disagree with every
/// recorded jump keeps its wall-clock `exp`.
fn jump_shift_s(
    c: &Claims,
    boot: Option<&str>,
    now_ms: i64,
    uptime_ms: Option<i64>,
    jumps_after_ms: impl Fn(i64) -> i64,
) -> i64 {
    let (Some(issued_in), Some(up), Some(this), Some(uptime)) =
        (c.boot.as_deref(), c.up, boot, uptime_ms)
    else {
        return 0;
    };
    if issued_in != this {
        return 0;
    }
    let moved_ms = (now_ms - uptime) - (c.iat * 1000 - up);
    [0, jumps_after_ms(up), jumps_after_ms(up - JUMP_WINDOW_MS)]
        .into_iter()
        .min_by_key(|j| (moved_ms - j).abs())
        .unwrap_or(0)
        .div_euclid(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(iat: i64, lifetime: i64, boot: Option<&str>, up: Option<i64>) -> Claims {
        Claims {
            sub: 1,
            typ: TokenType::Access,
            jti: "j".into(),
            sid: "s".into(),
            stamp: 0,
            inst: 0,
            iat,
            exp: iat + lifetime,
            boot: boot.map(str::to_string),
            up,
        }
    }

    /// Issued at 2020-01-01 (a clock stuck in the past) at boot millisecond 100 000 with an
    /// hour to live; NTP stepped the clock six years ahead at boot millisecond 400 000 and
    /// it is checked at 700 000.
    #[test]
    fn a_clock_step_neither_expires_nor_prolongs_a_token_of_this_boot() {
        let stuck = 1_577_836_800;
        let step = 6 * 365 * 86_400;
        let now_ms = (stuck + step + 600) * 1000;
        let jumps = |after: i64| if after < 400_000 { step * 1000 } else { 0 };
        let shift = |c: &Claims, boot, jumps: &dyn Fn(i64) -> i64| {
            jump_shift_s(c, Some(boot), now_ms, Some(700_000), jumps)
        };
        let c = claims(stuck, 3600, Some("b1"), Some(100_000));
        assert_eq!(shift(&c, "b1", &jumps), step, "moves with the step");
        // Issued after the step: nothing to move.
        let later = claims(stuck + step + 100, 3600, Some("b1"), Some(500_000));
        assert_eq!(shift(&later, "b1", &jumps), 0);
        // Issued just after a step the watcher recorded a second late: not moved either.
        let near = claims(stuck + step - 299, 3600, Some("b1"), Some(401_000));
        let late = |after: i64| if after < 402_000 { step * 1000 } else { 0 };
        assert_eq!(shift(&near, "b1", &late), 0);
        // Times that match no recorded jump (a forged "expired" token): not moved.
        let forged = claims(stuck + step + 500, 60, Some("b1"), Some(699_000));
        assert_eq!(shift(&forged, "b1", &|_| 0), 0);
        // Issued while the clock ran ahead, stepped back later: the hour ends on time, not
        // years later.
        let ahead = claims(stuck + 2 * step, 3600, Some("b1"), Some(100_000));
        let back = |after: i64| if after < 400_000 { -step * 1000 } else { 0 };
        assert_eq!(shift(&ahead, "b1", &back), -step);
        // Another boot (or a token of an earlier release): the wall-clock `exp` decides.
        assert_eq!(shift(&c, "b2", &jumps), 0);
        assert_eq!(shift(&claims(stuck, 3600, None, None), "b1", &jumps), 0);
    }

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
