//! MQTT credentials from `[mqtt.users]` and the topics each may publish and subscribe to.
//!
//! A sensor publishes only to its topics and cannot subscribe unless allowed; an observer
//! account (Node-RED, Home Assistant) may be given subscribe filters to read the traffic.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::auth::password::Hasher;
use crate::auth::tokens::constant_time_eq;
use crate::config::MqttConfig;
use crate::topic;

/// How an account's password is checked.
enum Secret {
    Plain(String),
    /// A PHC string (argon2), checked on the blocking pool.
    Hash(String),
}

/// One MQTT login and its permissions.
pub struct Account {
    /// The user name; `None` for clients admitted without one (`allow_anonymous`).
    pub name: Option<String>,
    secret: Option<Secret>,
    publish: Vec<String>,
    subscribe: Vec<String>,
}

impl Account {
    /// Whether this account may publish to `topic`. `$` topics only match filters that
    /// start with `$` themselves, as in subscriptions.
    pub fn may_publish(&self, topic: &str) -> bool {
        let system = topic::is_system(topic);
        self.publish
            .iter()
            .any(|f| topic::is_system(f) == system && topic::matches(f, topic))
    }

    /// Whether every topic `filter` can match is one this account may read.
    pub fn may_subscribe(&self, filter: &str) -> bool {
        self.subscribe.iter().any(|f| topic::covers(f, filter))
    }
}

/// The outcome of checking a login.
pub enum Login {
    Accepted(Arc<Account>),
    /// No user name while anonymous clients are not allowed (CONNACK 5).
    MissingUser,
    /// Unknown user or wrong password (CONNACK 4).
    Refused,
}

/// Every configured account, with a cache of passwords already verified against a hash so a
/// reconnecting sensor costs one argon2 run per restart, not one per connection.
pub struct Accounts {
    by_name: HashMap<String, Arc<Account>>,
    anonymous: Option<Arc<Account>>,
    verified: Mutex<HashMap<String, String>>,
    hasher: Hasher,
}

impl Accounts {
    /// Builds the accounts of a validated `[mqtt]` section.
    pub fn new(m: &MqttConfig, hasher: Hasher) -> Accounts {
        let by_name = m
            .users
            .iter()
            .map(|(name, entry)| {
                let a = entry.account();
                let secret = match (a.password, a.password_hash) {
                    (_, Some(h)) => Secret::Hash(h),
                    (Some(p), None) => Secret::Plain(p),
                    (None, None) => Secret::Plain(String::new()),
                };
                let account = Account {
                    name: Some(name.clone()),
                    secret: Some(secret),
                    publish: a.publish.unwrap_or_else(|| m.topics.clone()),
                    subscribe: a.subscribe,
                };
                (name.clone(), Arc::new(account))
            })
            .collect();
        let anonymous = m.allow_anonymous.then(|| {
            Arc::new(Account {
                name: None,
                secret: None,
                publish: m.topics.clone(),
                subscribe: Vec::new(),
            })
        });
        Accounts {
            by_name,
            anonymous,
            verified: Mutex::new(HashMap::new()),
            hasher,
        }
    }

    /// Checks a CONNECT's user name and password. A known user must give its password; with
    /// `allow_anonymous` a client without a user name, or with an unknown one, is admitted as
    /// a sensor of the reading topics.
    pub async fn login(&self, user: Option<&str>, password: Option<&str>) -> Login {
        let Some(user) = user else {
            return match &self.anonymous {
                Some(a) => Login::Accepted(a.clone()),
                None => Login::MissingUser,
            };
        };
        let Some(account) = self.by_name.get(user) else {
            return match &self.anonymous {
                Some(a) => Login::Accepted(a.clone()),
                None => Login::Refused,
            };
        };
        let password = password.unwrap_or_default();
        let ok = match &account.secret {
            None => true,
            Some(Secret::Plain(p)) => constant_time_eq(p.as_bytes(), password.as_bytes()),
            Some(Secret::Hash(h)) => self.verify_hash(user, password, h).await,
        };
        if ok {
            Login::Accepted(account.clone())
        } else {
            Login::Refused
        }
    }

    async fn verify_hash(&self, user: &str, password: &str, hash: &str) -> bool {
        let cached = self.verified.lock().get(user).cloned();
        if let Some(known) = cached {
            return constant_time_eq(known.as_bytes(), password.as_bytes());
        }
        let ok = self
            .hasher
            .verify(password.to_string(), Some(hash.to_string()))
            .await
            .unwrap_or(false);
        if ok {
            self.verified
                .lock()
                .insert(user.to_string(), password.to_string());
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MqttAccount, MqttUser};

    fn config() -> MqttConfig {
        let mut m = MqttConfig {
            topics: vec!["Prueba".into(), "granja/+/datos".into()],
            ..MqttConfig::default()
        };
        m.users
            .insert("sensor".into(), MqttUser::Password("s3cret".into()));
        m.users.insert(
            "obs".into(),
            MqttUser::Account(MqttAccount {
                password: Some("mira".into()),
                publish: Some(vec![]),
                subscribe: vec!["#".into()],
                ..MqttAccount::default()
            }),
        );
        m
    }

    fn accepted(l: Login) -> Arc<Account> {
        match l {
            Login::Accepted(a) => a,
            _ => panic!("login refused"),
        }
    }

    #[tokio::test]
    async fn sensors_publish_readings_only_and_observers_read() {
        let acc = Accounts::new(&config(), Hasher::default());
        let sensor = accepted(acc.login(Some("sensor"), Some("s3cret")).await);
        assert!(sensor.may_publish("Prueba"));
        assert!(sensor.may_publish("granja/g1/datos"));
        assert!(!sensor.may_publish("otra/cosa"));
        assert!(!sensor.may_subscribe("#"));
        assert!(!sensor.may_subscribe("Prueba"));
        let obs = accepted(acc.login(Some("obs"), Some("mira")).await);
        assert!(obs.may_subscribe("#"));
        assert!(obs.may_subscribe("granja/+/datos"));
        assert!(!obs.may_publish("Prueba"));
    }

    #[tokio::test]
    async fn refusals_and_anonymous() {
        let acc = Accounts::new(&config(), Hasher::default());
        assert!(matches!(
            acc.login(Some("sensor"), Some("mal")).await,
            Login::Refused
        ));
        assert!(matches!(
            acc.login(Some("nadie"), Some("x")).await,
            Login::Refused
        ));
        assert!(matches!(acc.login(None, None).await, Login::MissingUser));
        let mut m = config();
        m.allow_anonymous = true;
        let acc = Accounts::new(&m, Hasher::default());
        let anon = accepted(acc.login(None, None).await);
        assert!(anon.may_publish("Prueba") && !anon.may_subscribe("#"));
        assert!(matches!(
            acc.login(Some("sensor"), Some("mal")).await,
            Login::Refused
        ));
    }

    #[tokio::test]
    async fn hashed_passwords() {
        let hash = crate::auth::password::hash_blocking("clave-larga").unwrap();
        let mut m = config();
        m.users.insert(
            "h".into(),
            MqttUser::Account(MqttAccount {
                password_hash: Some(hash),
                ..MqttAccount::default()
            }),
        );
        let acc = Accounts::new(&m, Hasher::default());
        assert!(matches!(
            acc.login(Some("h"), Some("otra")).await,
            Login::Refused
        ));
        accepted(acc.login(Some("h"), Some("clave-larga")).await);
        // Second time from the cache; a wrong password is still refused.
        accepted(acc.login(Some("h"), Some("clave-larga")).await);
        assert!(matches!(
            acc.login(Some("h"), Some("otra")).await,
            Login::Refused
        ));
    }

    #[test]
    fn dollar_topics_need_dollar_filters() {
        let acc = Accounts::new(&config(), Hasher::default());
        let obs = acc.by_name["obs"].clone();
        let wide = Account {
            name: None,
            secret: None,
            publish: vec!["#".into()],
            subscribe: vec![],
        };
        assert!(!wide.may_publish("$SYS/x"));
        assert!(wide.may_publish("a/b"));
        assert!(!obs.may_publish("$SYS/x"));
    }
}
