//! The account fields people type, checked the same way by the web registration, the
//! administration API and the `user` commands: what a user name, an e-mail and a name may
//! be, and how long anything typed at login may be before it is refused without any work.

/// Longest user name (Django's limit, kept from the old system).
pub const USERNAME_MAX: usize = 150;
/// Longest first or last name.
pub const NAME_MAX: usize = 150;
/// Longest e-mail address (RFC 5321's path limit).
pub const EMAIL_MAX: usize = 254;
/// Longest password accepted at login. Longer than [`super::rules::MAX_LENGTH`] so that a
/// password chosen before that limit existed still works; beyond it no account can match.
pub const LOGIN_PASSWORD_MAX: usize = 1024;
/// Longest setup code accepted (the real one has 14 characters).
pub const SETUP_CODE_MAX: usize = 64;

/// Message for a user name that breaks [`valid_username`].
pub const USERNAME_RULE: &str =
    "Usa como máximo 150 letras, dígitos o los signos @ . + - _ (sin espacios).";

/// Letters, digits and `@ . + - _`, at most [`USERNAME_MAX`] characters: no spaces and no
/// control characters, so a name is safe in logs, file names and the interface.
pub fn valid_username(u: &str) -> bool {
    !u.is_empty()
        && u.chars().count() <= USERNAME_MAX
        && u.chars()
            .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
}

/// A plausible e-mail address: something@domain.tld, no spaces, at most [`EMAIL_MAX`] bytes.
pub fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.len() <= EMAIL_MAX
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A first or last name: at most [`NAME_MAX`] characters, no control characters.
pub fn valid_name(n: &str) -> bool {
    n.chars().count() <= NAME_MAX && !n.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses() {
        assert!(valid_username("ana.pérez+1@finca"));
        assert!(!valid_username("con espacio"));
        assert!(!valid_username("ana\r\nadmin"));
        assert!(!valid_username(&"a".repeat(151)));
        assert!(valid_email("ana@finca.co"));
        assert!(!valid_email("ana@finca"));
        assert!(!valid_email("ana\u{1b}@finca.co"));
        assert!(valid_name("José Núñez"));
        assert!(!valid_name("José\u{7}"));
        assert!(!valid_name(&"n".repeat(151)));
    }
}
