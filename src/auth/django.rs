//! Password hashes of the old (Django) system, `pbkdf2_sha256$<iterations>$<salt>$<hash>`,
//! so imported accounts keep their passwords: verified at the first login here, then
//! replaced by an argon2id hash (see the login in `http::sessions`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The prefix of the hashes this module verifies.
pub const PREFIX: &str = "pbkdf2_sha256$";

/// Most iterations accepted (Django 5 uses 870 000–1 000 000); a hash asking for more is
/// refused rather than spending minutes of a Raspberry Pi's CPU on one login.
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// A parsed Django hash.
pub struct DjangoHash<'a> {
    iterations: u32,
    salt: &'a str,
    hash: Vec<u8>,
}

/// Parses `encoded`; `None` when it is not a well-formed `pbkdf2_sha256` hash.
pub fn parse(encoded: &str) -> Option<DjangoHash<'_>> {
    let rest = encoded.strip_prefix(PREFIX)?;
    let mut parts = rest.split('$');
    let iterations: u32 = parts.next()?.parse().ok()?;
    let salt = parts.next()?;
    let hash = STANDARD.decode(parts.next()?).ok()?;
    if parts.next().is_some()
        || iterations == 0
        || iterations > MAX_ITERATIONS
        || salt.is_empty()
        || salt.contains('$')
        || hash.len() != 32
    {
        return None;
    }
    Some(DjangoHash {
        iterations,
        salt,
        hash,
    })
}

/// Whether `password` matches the Django hash `encoded` (constant-time comparison).
pub fn verify(password: &str, encoded: &str) -> bool {
    let Some(h) = parse(encoded) else {
        return false;
    };
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        password.as_bytes(),
        h.salt.as_bytes(),
        h.iterations,
        &mut out,
    );
    crate::auth::tokens::constant_time_eq(&out, &h.hash)
}

/// Computes a Django hash of `password` (for tests and fixtures of the import).
pub fn encode(password: &str, salt: &str, iterations: u32) -> String {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt.as_bytes(), iterations, &mut out);
    format!("{PREFIX}{iterations}${salt}${}", STANDARD.encode(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_django_hashes() {
        let h = encode("Vaca-Lechera-9", "sal1234", 1000);
        assert!(verify("Vaca-Lechera-9", &h));
        assert!(!verify("vaca-lechera-9", &h));
        assert!(!verify("Vaca-Lechera-9", "pbkdf2_sha256$0$x$AAAA"));
        assert!(!verify("x", "argon2id$..."));
        assert!(parse(&format!("pbkdf2_sha256${}$s$AAAA", MAX_ITERATIONS + 1)).is_none());
    }

    #[test]
    fn matches_the_published_pbkdf2_sha256_vector() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256("passwd", "salt", 1), first 32 bytes.
        let h = encode("passwd", "salt", 1);
        let expected = "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc";
        let bytes = STANDARD.decode(h.rsplit('$').next().unwrap()).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }
}
