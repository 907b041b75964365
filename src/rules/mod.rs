//! The rules every way into the appliance applies alike — the web API, the `biogestor`
//! commands and the import from the old system: what an account's fields and password may
//! be, which permissions an account gets by default, and what a filling stage may contain
//! and which values it takes when none are given. The callers only translate their input
//! (a JSON form, command-line options, an exported record) and the messages.

pub mod account;
pub mod password;
pub mod stage;

use std::collections::BTreeMap;

/// Per-field messages (Spanish, for the user), as the API returns them.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Adds `message` to `field`.
pub fn push(errors: &mut FieldErrors, field: &str, message: impl Into<String>) {
    errors.entry(field.into()).or_default().push(message.into());
}

/// The password rules' messages for `password` (and a mismatch with `again`), on `field`.
pub fn check_new_password(
    errors: &mut FieldErrors,
    (field, password): (&str, &str),
    (again_field, again): (&str, &str),
    attributes: &[&str],
) {
    if !password.is_empty() && !again.is_empty() && password != again {
        push(errors, again_field, "Las contraseñas no coinciden.");
    }
    if !password.is_empty() {
        let broken = password::check(password, attributes);
        if !broken.is_empty() {
            errors.entry(field.into()).or_default().extend(broken);
        }
    }
}
