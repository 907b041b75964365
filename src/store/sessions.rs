//! Revoked tokens and sessions. A token id (`jti`) is revoked when a refresh token is used
//! (rotation) or logged out; a session id (`sid`, shared by every token issued since one
//! login) is revoked at logout, which ends the access tokens of that session too. Entries are
//! kept until the tokens they name have expired anyway, then pruned.

use redb::{ReadableDatabase, ReadableTable};

use super::tables::{REVOKED, USERS};
use super::users::{User, decode_user};
use super::{Store, StoreError};

/// Key of a revoked session in the revocation table (token ids have no prefix).
fn session_key(sid: &str) -> String {
    format!("sid:{sid}")
}

impl Store {
    /// Records a token id as revoked until `exp_s` (s since the epoch).
    pub fn revoke_token(&self, jti: &str, exp_s: i64) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(REVOKED)?.insert(jti, exp_s)?;
        txn.commit()?;
        Ok(())
    }

    /// Revokes a used or logged-out token and its session (until `session_until_s`, the latest
    /// expiry any token of the session can have) in one commit.
    pub fn end_session(
        &self,
        jti: &str,
        exp_s: i64,
        sid: &str,
        session_until_s: i64,
    ) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write()?;
        {
            let mut t = txn.open_table(REVOKED)?;
            t.insert(jti, exp_s)?;
            t.insert(session_key(sid).as_str(), session_until_s)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Revokes `jti` and reports whether it was still valid, atomically: two concurrent
    /// refreshes with the same token cannot both succeed.
    pub fn revoke_if_active(&self, jti: &str, exp_s: i64) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_write()?;
        let fresh = {
            let mut t = txn.open_table(REVOKED)?;
            let fresh = t.get(jti)?.is_none();
            if fresh {
                t.insert(jti, exp_s)?;
            }
            fresh
        };
        txn.commit()?;
        Ok(fresh)
    }

    /// Whether a token id was revoked.
    pub fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(REVOKED)?.get(jti)?.is_some())
    }

    /// The account `user_id` and whether session `sid` was logged out, read together (one
    /// read transaction per authenticated request).
    pub fn session_state(
        &self,
        user_id: u64,
        sid: &str,
    ) -> Result<(Option<User>, bool), StoreError> {
        let txn = self.db()?.begin_read()?;
        let revoked = txn
            .open_table(REVOKED)?
            .get(session_key(sid).as_str())?
            .is_some();
        let users = txn.open_table(USERS)?;
        let user = users
            .get(user_id)?
            .map(|v| decode_user(v.value()))
            .transpose()?;
        Ok((user, revoked))
    }

    /// Forgets revocations of tokens and sessions that have expired anyway; returns how many.
    pub fn prune_revoked(&self, now_s: i64) -> Result<u64, StoreError> {
        let txn = self.db()?.begin_write()?;
        let removed = {
            let mut t = txn.open_table(REVOKED)?;
            let mut n = 0;
            t.retain(|_, exp| {
                let keep = exp > now_s;
                if !keep {
                    n += 1;
                }
                keep
            })?;
            n
        };
        txn.commit()?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_tokens_are_revoked_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, chrono_tz::UTC).unwrap();
        assert_eq!(store.session_state(1, "s1").unwrap(), (None, false));
        store.end_session("jti-1", 100, "s1", 200).unwrap();
        assert!(store.is_revoked("jti-1").unwrap());
        assert!(store.session_state(1, "s1").unwrap().1);
        assert!(!store.session_state(1, "s2").unwrap().1);
        assert!(!store.revoke_if_active("jti-1", 100).unwrap());
        assert_eq!(store.prune_revoked(150).unwrap(), 1);
        assert!(store.session_state(1, "s1").unwrap().1);
        assert_eq!(store.prune_revoked(250).unwrap(), 1);
    }
}
