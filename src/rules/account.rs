//! The account fields people type, checked the same way by the web registration, the
//! administration API, the `user` commands and the import from the old system: what a user
//! name, an e-mail and a name may be, how long anything typed at login may be before it is
//! refused without any work, and the permissions an account gets by default.

use super::FieldErrors;
use crate::store::users::Permission;

/// Longest user name (Django's limit, kept from the old system).
pub const USERNAME_MAX: usize = 150;
/// Longest first or last name.
pub const NAME_MAX: usize = 150;
/// Longest e-mail address (RFC 5321's path limit).
pub const EMAIL_MAX: usize = 254;
/// Longest password accepted at login. Longer than [`super::password::MAX_LENGTH`] so that a
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

/// Message for an e-mail that breaks [`valid_email`].
pub const EMAIL_RULE: &str = "Introduce un correo electrónico válido.";

/// Permissions of an account approved (or created by `biogestor user add`) without an
/// explicit list: it can watch the digester and read reports, nothing more.
pub const DEFAULT_PERMISSIONS: [Permission; 2] =
    [Permission::VerDashboard, Permission::VerReportes];

/// [`DEFAULT_PERMISSIONS`] as a bit set.
pub fn default_permission_bits() -> u32 {
    DEFAULT_PERMISSIONS.iter().fold(0, |acc, p| acc | *p as u32)
}

/// Permission flags of the old system that have no counterpart here (its inventory module
/// was not carried over): accepted from its clients and its exported data, and ignored.
pub const RETIRED_PERMISSIONS: [&str; 2] = ["VerInventario", "ModificarInventario"];

/// The identity of an account as typed (already trimmed where the caller trims).
pub struct Identity<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
}

impl Identity<'_> {
    /// What a new password is compared with by the similarity rule.
    pub fn attributes(&self) -> [&str; 4] {
        [self.username, self.email, self.first_name, self.last_name]
    }

    /// Every rule the fields break, by field name (`username`, `email`, `first_name`,
    /// `last_name`). An empty user name or e-mail is left to the caller (a form says "this
    /// field is required", a command names its option).
    pub fn check(&self, errors: &mut FieldErrors) {
        if !self.username.is_empty() && !valid_username(self.username) {
            super::push(errors, "username", USERNAME_RULE);
        }
        if !self.email.is_empty() && !valid_email(self.email) {
            super::push(errors, "email", EMAIL_RULE);
        }
        for (field, value) in [
            ("first_name", self.first_name),
            ("last_name", self.last_name),
        ] {
            if !valid_name(value) {
                super::push(
                    errors,
                    field,
                    format!("Como máximo {NAME_MAX} caracteres, sin caracteres de control."),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_errors_name_their_field() {
        let mut errors = FieldErrors::new();
        Identity {
            username: "con espacio",
            email: "ana@finca",
            first_name: "Ana",
            last_name: "x\u{7}",
        }
        .check(&mut errors);
        assert_eq!(errors["username"], vec![USERNAME_RULE.to_string()]);
        assert_eq!(errors["email"], vec![EMAIL_RULE.to_string()]);
        assert!(errors.contains_key("last_name") && !errors.contains_key("first_name"));
    }

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
