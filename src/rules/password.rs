//! Password rules modelled on Django's default validators, with Spanish messages as the old
//! system showed them: minimum length, not entirely numeric, not too similar to the user's
//! attributes, not a common password.

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 8;

/// Longest new password accepted (a passphrase fits; megabytes of text would only cost
/// hashing time).
pub const MAX_LENGTH: usize = 128;

/// Similarity (0–1) from which a password counts as too close to a user attribute (Django's
/// default threshold).
const MAX_SIMILARITY: f64 = 0.7;

/// A short list of passwords attackers try first, including Spanish and agricultural ones.
const COMMON: &str = include_str!("common_passwords.txt");

/// Letters and digits that cannot be mistaken for one another when read aloud or copied by
/// hand (no 0/O, 1/l/I).
const READABLE: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A random password every rule accepts, for a reset by an administrator: four groups of four
/// readable characters (about 93 bits), e.g. `Kq7m-Xp3r-Tz8a-Hw4c`.
pub fn generated() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..4)
        .map(|_| {
            (0..4)
                .map(|_| char::from(READABLE[rng.random_range(0..READABLE.len())]))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Every rule `password` breaks, as messages for the user.
pub fn check(password: &str, attributes: &[&str]) -> Vec<String> {
    let mut errors = Vec::new();
    if password.chars().count() < MIN_LENGTH {
        errors.push(format!(
            "La contraseña es demasiado corta. Debe contener al menos {MIN_LENGTH} caracteres."
        ));
    }
    if password.chars().count() > MAX_LENGTH {
        errors.push(format!(
            "La contraseña es demasiado larga. Debe contener como máximo {MAX_LENGTH} caracteres."
        ));
        return errors;
    }
    if !password.is_empty() && password.chars().all(|c| c.is_ascii_digit()) {
        errors.push("La contraseña no puede ser completamente numérica.".into());
    }
    let lower = password.to_lowercase();
    if COMMON.lines().any(|l| l.trim() == lower) {
        errors.push("La contraseña es demasiado común.".into());
    }
    if attributes
        .iter()
        .any(|a| too_similar(&lower, &a.to_lowercase()))
    {
        errors.push("La contraseña es demasiado similar a los datos del usuario.".into());
    }
    errors
}

/// Compares with the attribute and, like Django, with its parts split at non-word characters
/// (so `ana.perez@finca.co` is also compared with `ana`, `perez`, `finca`).
fn too_similar(password: &str, attribute: &str) -> bool {
    if attribute.is_empty() {
        return false;
    }
    let parts = std::iter::once(attribute).chain(attribute.split(|c: char| !c.is_alphanumeric()));
    for part in parts.filter(|p| p.chars().count() >= 3) {
        if password.contains(part) && part.chars().count() * 2 >= password.chars().count() {
            return true;
        }
        if similarity(password, part) >= MAX_SIMILARITY {
            return true;
        }
    }
    false
}

/// 2·M / T where M is the length of the longest common subsequence and T the total length:
/// close to the ratio of Python's `SequenceMatcher` that Django uses.
fn similarity(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut prev = vec![0usize; b.len() + 1];
    for x in &a {
        let mut cur = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                cur[j].max(prev[j + 1])
            };
        }
        prev = cur;
    }
    2.0 * prev[b.len()] as f64 / (a.len() + b.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_like_rules() {
        assert!(check("Tr3s-Vacas-Pintas", &["ana", "ana@finca.co"]).is_empty());
        assert_eq!(check("corta1", &[]).len(), 1);
        assert!(check("12345678901", &[])[0].contains("numérica"));
        assert!(check("password", &[]).iter().any(|e| e.contains("común")));
        assert!(check("Contraseña", &[]).iter().any(|e| e.contains("común")));
        assert!(
            check("operador2026", &["operador2026x"])
                .iter()
                .any(|e| e.contains("similar"))
        );
        assert!(
            check("perez1234", &["juan", "j.perez@granja.org"])
                .iter()
                .any(|e| e.contains("similar"))
        );
        assert!(check("Granja-Norte-42", &["maria"]).is_empty());
        assert!(check(&"Larga-".repeat(30), &[])[0].contains("larga"));
        for _ in 0..50 {
            let p = generated();
            assert_eq!(p.len(), 19);
            assert!(check(&p, &["admin", "admin@finca.co"]).is_empty(), "{p}");
        }
    }
}
