//! Range and format checks that serde cannot express, producing the typed values the
//! appliance runs with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;

use super::{Config, ConfigError, parse_bind};
use crate::store::daily::MeterRules;
use crate::store::retention::Policy;
use crate::store::writer::WriterConfig;

/// A configuration that passed every check, with addresses and the time zone parsed.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    pub raw: Config,
    pub http_bind: SocketAddr,
    pub mqtt_bind: SocketAddr,
    /// The optional HTTPS and MQTT-over-TLS listeners and their certificate.
    pub tls: super::TlsListeners,
    pub timezone: Tz,
    pub commit_interval: Duration,
}

impl ValidConfig {
    /// The folder holding the store, reports and generated secrets.
    pub fn data_dir(&self) -> &PathBuf {
        &self.raw.storage.data_dir
    }

    /// The site settings the expected-against-measured comparison depends on (the chart,
    /// reports, the production alarm and the bridge's daily figures use the same).
    pub fn site_model(&self) -> crate::production::SiteModel {
        crate::production::SiteModel {
            model_temperature: self.raw.site.model_temperature,
            gas: super::gas::gas_site(&self.raw.site),
        }
    }

    /// The rules that separate gas from meter noise in the daily aggregates.
    pub fn meter_rules(&self) -> MeterRules {
        MeterRules {
            max_gas_flow_m3_h: self.raw.site.max_gas_flow_m3_h,
            gas: super::gas::gas_site(&self.raw.site),
        }
    }

    /// How the store writer batches, journals and syncs (`[storage]`).
    pub fn writer_config(&self) -> WriterConfig {
        let s = &self.raw.storage;
        WriterConfig {
            journal_bytes: s.journal_mb << 20,
            checkpoint_interval: Duration::from_secs(s.checkpoint_interval_s),
            forward: self.raw.bridge.enabled(),
            ..WriterConfig::new(
                self.commit_interval,
                s.commit_max_readings as usize,
                self.meter_rules(),
            )
        }
    }

    /// What retention keeps (`[storage]`).
    pub fn retention_policy(&self) -> Policy {
        let s = &self.raw.storage;
        Policy {
            raw_retention: (s.raw_retention_days > 0.0)
                .then(|| Duration::from_secs_f64(s.raw_retention_days * 86_400.0)),
            min_free_bytes: s.min_free_mb << 20,
            max_store_bytes: s.max_store_mb << 20,
        }
    }
}

fn range(key: &str, value: u64, lo: u64, hi: u64, unit: &str) -> Result<(), ConfigError> {
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key: key.into(),
            value: value.to_string(),
            allowed: format!("a whole number from {lo} to {hi} {unit}"),
        })
    }
}

/// Whether `f` is a usable MQTT topic filter (wildcards only as whole levels, `#` last).
pub(crate) fn valid_filter(f: &str) -> bool {
    let levels: Vec<&str> = f.split('/').collect();
    let bad_level = |(i, lvl): (usize, &&str)| {
        (lvl.contains('#') && (*lvl != "#" || i + 1 != levels.len()))
            || (lvl.contains('+') && *lvl != "+")
    };
    !f.is_empty() && !f.contains('\0') && !levels.iter().enumerate().any(bad_level)
}

/// One `[mqtt.users.<name>]` entry: a name, exactly one of password / password_hash (a hash
/// that parses as a PHC string), and valid filters.
fn check_mqtt_user(user: &str, a: &crate::config::MqttAccount) -> Result<(), ConfigError> {
    let invalid = |key: String, value: String, allowed: &str| ConfigError::Invalid {
        key,
        value,
        allowed: allowed.into(),
    };
    let key = format!("mqtt.users.{user}");
    match (&a.password, &a.password_hash) {
        _ if user.is_empty() => Err(invalid(key, String::new(), "a non-empty user name")),
        (Some(p), None) if !p.is_empty() => Ok(()),
        (None, Some(h)) if argon2::PasswordHash::new(h).is_ok() => Ok(()),
        (None, Some(_)) => Err(invalid(
            format!("{key}.password_hash"),
            "(hidden)".into(),
            "a PHC hash string such as the one `biogestor sensor add` writes ($argon2id$...)",
        )),
        _ => Err(invalid(
            key,
            "(hidden)".into(),
            "a non-empty password, or a table with exactly one of password / password_hash",
        )),
    }?;
    let lists = [
        ("publish", a.publish.as_deref().unwrap_or(&[])),
        ("subscribe", &a.subscribe),
    ];
    for (name, list) in lists {
        if let Some(f) = list.iter().find(|f| !valid_filter(f)) {
            return Err(invalid(
                format!("mqtt.users.{user}.{name}"),
                f.clone(),
                "MQTT topic filters such as Prueba or sensores/# (wildcards + and # only as \
                 whole levels, # last)",
            ));
        }
    }
    Ok(())
}

/// The connection and WebSocket limits of `[http]`.
fn check_http(h: &crate::config::HttpConfig) -> Result<(), ConfigError> {
    range(
        "http.header_timeout_s",
        h.header_timeout_s,
        1,
        300,
        "seconds",
    )?;
    range("http.idle_timeout_s", h.idle_timeout_s, 1, 3600, "seconds")?;
    range(
        "http.max_connections",
        h.max_connections,
        8,
        100_000,
        "connections",
    )?;
    range(
        "http.max_connections_per_address",
        h.max_connections_per_address,
        1,
        h.max_connections,
        "connections (at most http.max_connections)",
    )?;
    range(
        "http.ws_max_clients",
        h.ws_max_clients,
        1,
        h.max_connections,
        "WebSockets (at most http.max_connections)",
    )?;
    range(
        "http.ws_max_clients_per_user",
        h.ws_max_clients_per_user,
        1,
        h.ws_max_clients,
        "WebSockets (at most http.ws_max_clients)",
    )?;
    range("http.ws_recheck_s", h.ws_recheck_s, 1, 30, "seconds")
}

impl Config {
    /// Checks every key against what the appliance accepts.
    pub fn validate(self) -> Result<ValidConfig, ConfigError> {
        let http_bind = parse_bind("http.bind", &self.http.bind)?;
        let mqtt_bind = parse_bind("mqtt.bind", &self.mqtt.bind)?;
        if http_bind == mqtt_bind {
            return Err(ConfigError::Invalid {
                key: "mqtt.bind".into(),
                value: self.mqtt.bind.clone(),
                allowed: "an address different from http.bind".into(),
            });
        }
        let timezone: Tz = self
            .site
            .timezone
            .parse()
            .map_err(|_| ConfigError::Invalid {
                key: "site.timezone".into(),
                value: self.site.timezone.clone(),
                allowed: "an IANA time zone name such as America/Bogota, America/Lima or UTC"
                    .into(),
            })?;
        if self.site.name.trim().is_empty() || self.site.name.chars().count() > 120 {
            return Err(ConfigError::Invalid {
                key: "site.name".into(),
                value: self.site.name.clone(),
                allowed: "a non-empty name of at most 120 characters".into(),
            });
        }
        let flow = self.site.max_gas_flow_m3_h;
        if !(flow.is_finite() && (0.01..=10_000.0).contains(&flow)) {
            return Err(ConfigError::Invalid {
                key: "site.max_gas_flow_m3_h".into(),
                value: flow.to_string(),
                allowed: "a number of m³/h from 0.01 to 10000: the most the gas meter can \
                          register (Qmax on its plate, e.g. 6 for a G4 meter)"
                    .into(),
            });
        }
        super::gas::check(&self.site)?;
        self.alarms.validate()?;
        let s = &self.storage;
        range(
            "storage.commit_interval_ms",
            s.commit_interval_ms,
            10,
            60_000,
            "milliseconds",
        )?;
        range(
            "storage.commit_max_readings",
            s.commit_max_readings,
            1,
            1_000_000,
            "readings",
        )?;
        range("storage.cache_size_mb", s.cache_size_mb, 1, 4096, "MiB")?;
        range("storage.journal_mb", s.journal_mb, 0, 1024, "MiB")?;
        range(
            "storage.checkpoint_interval_s",
            s.checkpoint_interval_s,
            1,
            86_400,
            "seconds",
        )?;
        range("storage.min_free_mb", s.min_free_mb, 0, 1 << 30, "MiB")?;
        if s.max_store_mb != 0 && s.max_store_mb < 16 {
            return Err(ConfigError::Invalid {
                key: "storage.max_store_mb".into(),
                value: s.max_store_mb.to_string(),
                allowed: "0 (no limit) or at least 16 MiB".into(),
            });
        }
        let days = s.raw_retention_days;
        if !(days.is_finite() && (days == 0.0 || (0.0001..=36_500.0).contains(&days))) {
            return Err(ConfigError::Invalid {
                key: "storage.raw_retention_days".into(),
                value: days.to_string(),
                allowed: "0 (keep raw readings until space is needed) or a number of days \
                          from 0.0001 to 36500"
                    .into(),
            });
        }
        if s.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "storage.data_dir".into(),
                value: String::new(),
                allowed: "a folder path".into(),
            });
        }
        let m = &self.mqtt;
        range(
            "mqtt.max_payload_bytes",
            m.max_payload_bytes,
            64,
            1 << 20,
            "bytes",
        )?;
        range("mqtt.max_fields", m.max_fields, 1, 1024, "fields")?;
        range(
            "mqtt.max_connections",
            m.max_connections,
            1,
            10_000,
            "connections",
        )?;
        range(
            "http.max_body_bytes",
            self.http.max_body_bytes,
            1024,
            64 << 20,
            "bytes",
        )?;
        range(
            "http.ws_buffer",
            self.http.ws_buffer,
            16,
            1 << 20,
            "messages",
        )?;
        check_http(&self.http)?;
        self.clock.validate()?;
        self.bridge.validate()?;
        if m.topics.is_empty() {
            return Err(ConfigError::Invalid {
                key: "mqtt.topics".into(),
                value: "[]".into(),
                allowed: "at least one topic or filter, e.g. [\"Prueba\"]".into(),
            });
        }
        for t in &m.topics {
            let bad_wildcard = t
                .split('/')
                .any(|lvl| (lvl.contains('#') && lvl != "#") || (lvl.contains('+') && lvl != "+"));
            if t.is_empty() || bad_wildcard || t.contains('\0') {
                return Err(ConfigError::Invalid {
                    key: "mqtt.topics".into(),
                    value: t.clone(),
                    allowed: "MQTT topic filters such as Prueba or sensores/# (wildcards + and # \
                              only as whole levels)"
                        .into(),
                });
            }
        }
        for (i, a) in m.topics.iter().enumerate() {
            if let Some(b) = m.topics[i + 1..]
                .iter()
                .find(|b| crate::topic::overlap(a, b))
            {
                return Err(ConfigError::Invalid {
                    key: "mqtt.topics".into(),
                    value: format!("{a}, {b}"),
                    allowed:
                        "filters that do not overlap (a message matching two would be stored twice)"
                            .into(),
                });
            }
        }
        if !m.allow_anonymous && m.users.is_empty() {
            return Err(ConfigError::Invalid {
                key: "mqtt.users".into(),
                value: "{}".into(),
                allowed: "at least one user = \"password\" entry while mqtt.allow_anonymous is \
                          false (otherwise no sensor could connect)"
                    .into(),
            });
        }
        range(
            "mqtt.max_connections_per_user",
            m.max_connections_per_user,
            1,
            10_000,
            "connections",
        )?;
        range(
            "mqtt.auth_failures_per_address",
            m.auth_failures_per_address,
            1,
            10_000,
            "failed logins per minute",
        )?;
        for (user, entry) in &m.users {
            check_mqtt_user(user, &entry.account())?;
        }
        let a = &self.auth;
        range(
            "auth.access_minutes",
            a.access_minutes,
            1,
            24 * 60,
            "minutes",
        )?;
        range("auth.refresh_days", a.refresh_days, 1, 365, "days")?;
        range(
            "auth.registrations_per_address_per_hour",
            a.registrations_per_address_per_hour,
            1,
            100_000,
            "registrations per hour",
        )?;
        range(
            "auth.registrations_per_hour",
            a.registrations_per_hour,
            1,
            100_000,
            "registrations per hour",
        )?;
        range(
            "auth.max_pending_accounts",
            a.max_pending_accounts,
            1,
            100_000,
            "accounts",
        )?;
        if !a.jwt_secret.is_empty() && a.jwt_secret.len() < 32 {
            return Err(ConfigError::Invalid {
                key: "auth.jwt_secret".into(),
                value: "(hidden)".into(),
                allowed: "at least 32 characters, or empty to generate one in data_dir".into(),
            });
        }
        if !a.metrics_token.is_empty() && a.metrics_token.len() < 16 {
            return Err(ConfigError::Invalid {
                key: "auth.metrics_token".into(),
                value: "(hidden)".into(),
                allowed: "at least 16 characters, or empty to allow only administrators".into(),
            });
        }
        if self.materials.is_empty() {
            return Err(ConfigError::Invalid {
                key: "materials".into(),
                value: "{}".into(),
                allowed: "at least one material".into(),
            });
        }
        for (name, params) in &self.materials {
            let good_name = !name.is_empty()
                && name.len() <= 32
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !good_name {
                return Err(ConfigError::Invalid {
                    key: format!("materials.{name}"),
                    value: name.clone(),
                    allowed: "a name of up to 32 lower-case letters, digits or _".into(),
                });
            }
            params.validate().map_err(|e| ConfigError::Invalid {
                key: format!("materials.{name}"),
                value: "(section)".into(),
                allowed: e,
            })?;
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log.level.as_str()) {
            return Err(ConfigError::Invalid {
                key: "log.level".into(),
                value: self.log.level.clone(),
                allowed: "one of error, warn, info, debug, trace".into(),
            });
        }
        let tls = super::tls::check(&self, http_bind, mqtt_bind)?;
        Ok(ValidConfig {
            http_bind,
            mqtt_bind,
            tls,
            timezone,
            commit_interval: Duration::from_millis(self.storage.commit_interval_ms),
            raw: self,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn load(text: &str, vars: &[(&str, &str)]) -> Result<ValidConfig, ConfigError> {
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::from_toml(text, Path::new("test.toml"), vars)
    }

    const BASE: &str = "[mqtt]\nallow_anonymous = true\n";

    #[test]
    fn env_overrides_keep_types() {
        let c = load(
            "[mqtt]\nusers = { sensor = \"x\" }\n",
            &[
                ("BIOGESTOR_HTTP__BIND", "127.0.0.1:18080"),
                ("BIOGESTOR_MQTT__BIND", "127.0.0.1:11883"),
                ("BIOGESTOR_STORAGE__DATA_DIR", "./data-test"),
                ("BIOGESTOR_MQTT__ALLOW_ANONYMOUS", "true"),
                ("BIOGESTOR_STORAGE__COMMIT_INTERVAL_MS", "250"),
                ("BIOGESTOR_MQTT__TOPICS", "a/b, c/#"),
                ("BIOGESTOR_MQTT__USERS__OTHER", "pw"),
                ("BIOGESTOR_SITE__NAME", "1234"),
            ],
        )
        .unwrap();
        assert_eq!(c.http_bind.port(), 18080);
        assert_eq!(c.mqtt_bind.port(), 11883);
        assert!(c.raw.mqtt.allow_anonymous);
        assert_eq!(c.raw.storage.data_dir, PathBuf::from("./data-test"));
        assert_eq!(c.commit_interval, Duration::from_millis(250));
        assert_eq!(c.raw.mqtt.topics, vec!["a/b", "c/#"]);
        assert_eq!(c.raw.mqtt.users.len(), 2);
        assert_eq!(c.raw.site.name, "1234");
    }

    #[test]
    fn errors_name_key_and_value() {
        let e = load(BASE, &[("BIOGESTOR_HTTP__BIND", "nope")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("http.bind") && e.contains("nope"), "{e}");
        let e = load(BASE, &[("BIOGESTOR_HTTP__PORTX", "1")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("BIOGESTOR_HTTP__PORTX") && e.contains("http.portx"),
            "{e}"
        );
        let e = load("[http]\nbindx = 1\n", &[]).unwrap_err().to_string();
        assert!(e.contains("bindx"), "{e}");
        let e = load(BASE, &[("BIOGESTOR_STORAGE__COMMIT_INTERVAL_MS", "soon")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("commit_interval_ms") && e.contains("soon"),
            "{e}"
        );
        let e = load(
            "[site]\ntimezone = \"Mars/Base\"\n[mqtt]\nallow_anonymous = true\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("site.timezone") && e.contains("Mars/Base"),
            "{e}"
        );
        let e = load("", &[]).unwrap_err().to_string();
        assert!(e.contains("mqtt.users"), "{e}");
        let e = load(
            "[storage]\ncache_size_mb = 0\n[mqtt]\nallow_anonymous = true\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("storage.cache_size_mb") && e.contains("1 to 4096"),
            "{e}"
        );
        let e = load(BASE, &[("BIOGESTOR_SITE__MAX_GAS_FLOW_M3_H", "0")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("site.max_gas_flow_m3_h") && e.contains("G4"),
            "{e}"
        );
        let c = load(
            "[site]\nmax_gas_flow_m3_h = 10\n[mqtt]\nallow_anonymous = true\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.meter_rules().max_gas_flow_m3_h, 10.0);
    }

    #[test]
    fn http_limits_are_checked_against_each_other() {
        let e = load(
            "[http]\nmax_connections = 16\n[mqtt]\nallow_anonymous = true\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("http.max_connections_per_address") && e.contains("1 to 16"),
            "{e}"
        );
        let e = load(BASE, &[("BIOGESTOR_HTTP__WS_RECHECK_S", "60")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("http.ws_recheck_s") && e.contains("1 to 30"),
            "{e}"
        );
        let e = load(BASE, &[("BIOGESTOR_HTTP__HEADER_TIMEOUT_S", "0")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("http.header_timeout_s"), "{e}");
        let c = load(BASE, &[("BIOGESTOR_HTTP__MAX_CONNECTIONS", "512")]).unwrap();
        assert_eq!(c.raw.http.max_connections, 512);
        assert_eq!(c.raw.http.header_timeout_s, 10);
    }

    #[test]
    fn materials_override_key_by_key() {
        let c = load(
            "[mqtt]\nallow_anonymous = true\n[materials.bovino]\nb0_m3_ch4_per_kg_vs = 0.13\n\
             [materials.ovino]\nvs_ts = 0.8\nb0_m3_ch4_per_kg_vs = 0.2\nmethane_fraction = 0.6\n\
             lag_days = 2\nk_per_day = 0.05\nsource = \"ensayo propio\"\n",
            &[("BIOGESTOR_MATERIALS__PORCINO__LAG_DAYS", "3")],
        )
        .unwrap();
        let m = &c.raw.materials;
        assert_eq!(m["bovino"].b0_m3_ch4_per_kg_vs, 0.13);
        assert_eq!(
            m["bovino"].vs_ts,
            crate::model::default_materials()["bovino"].vs_ts
        );
        assert_eq!(m["ovino"].source, "ensayo propio");
        assert_eq!(m["porcino"].lag_days, 3.0);
        let e = load(
            "[mqtt]\nallow_anonymous = true\n[materials.bovino]\nvs_ts = 7\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("materials.bovino") && e.contains("vs_ts"), "{e}");
        let e = load(
            "[mqtt]\nallow_anonymous = true\n[materials.nuevo]\nvs_ts = 0.5\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("missing field"), "{e}");
    }

    #[test]
    fn repository_config_is_valid() {
        let text = include_str!("../../config.toml");
        let c = load(text, &[]).unwrap();
        assert_eq!(
            c.raw.materials,
            crate::model::default_materials(),
            "config.toml lists the built-in defaults"
        );
        assert_eq!(c.raw.mqtt.topics, vec!["Prueba"]);
        assert_eq!(c.commit_interval, Duration::from_millis(1000));
    }
}
