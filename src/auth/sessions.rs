//! Whether a token still stands for a live session: issued by this store instance (a restore
//! makes a new one), for an account that exists, is approved and not disabled, whose security
//! stamp has not changed since (password change or reset, disabling), in a session that was
//! not logged out. Signature, type and expiry are checked before, by [`super::Keys::verify`].

use super::tokens::{Claims, Keys, Subject, TokenError, TokenType};
use crate::store::users::User;
use crate::store::{Store, StoreError};

/// The account a verified token stands for, or `None` when its session is over. Blocking (one
/// read transaction).
pub fn live_account(store: &Store, claims: &Claims) -> Result<Option<User>, StoreError> {
    if claims.inst != store.instance_id() {
        return Ok(None);
    }
    let (user, logged_out) = store.session_state(claims.sub, &claims.sid)?;
    Ok(user.filter(|u| !logged_out && u.active() && u.stamp == claims.stamp))
}

/// A new access token and refresh token for `subject`.
pub fn token_pair(keys: &Keys, subject: &Subject) -> Result<(String, String), TokenError> {
    let (access, _) = keys.issue(subject, TokenType::Access)?;
    let (refresh, _) = keys.issue(subject, TokenType::Refresh)?;
    Ok((access, refresh))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::NewUser;

    #[test]
    fn stamp_instance_session_and_state_all_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).unwrap();
        let u = store
            .create_user(NewUser {
                username: "ana".into(),
                email: "ana@finca.co".into(),
                first_name: String::new(),
                last_name: String::new(),
                password_hash: "h".into(),
                approved: true,
                permissions: 0,
            })
            .unwrap();
        let keys = Keys::new(b"0123456789abcdef0123456789abcdef", 60, 7);
        let who = Subject::new_session(u.id, u.stamp, store.instance_id());
        let (access, _) = token_pair(&keys, &who).unwrap();
        let claims = keys.verify(&access, TokenType::Access).unwrap();
        assert!(live_account(&store, &claims).unwrap().is_some());

        let mut other = claims.clone();
        other.inst += 1;
        assert!(
            live_account(&store, &other).unwrap().is_none(),
            "another instance"
        );
        store.set_password(u.id, "h2".into()).unwrap();
        assert!(
            live_account(&store, &claims).unwrap().is_none(),
            "new stamp"
        );

        let u = store.user(u.id).unwrap().unwrap();
        let who = Subject::new_session(u.id, u.stamp, store.instance_id());
        let claims = keys
            .verify(&token_pair(&keys, &who).unwrap().0, TokenType::Access)
            .unwrap();
        assert!(live_account(&store, &claims).unwrap().is_some());
        store
            .end_session(&claims.jti, claims.exp, &claims.sid, claims.exp)
            .unwrap();
        assert!(
            live_account(&store, &claims).unwrap().is_none(),
            "logged out"
        );
    }
}
