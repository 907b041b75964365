//! `[bridge]`: forwarding every stored reading to a central MQTT broker (see `crate::bridge`).
//! Off by default; when `url` is set, `site_id` is required and the rest is checked here so a
//! bad value stops start-up with a message naming the key.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[bridge]` keys as written in `config.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeConfig {
    /// `mqtt://host:port` or `mqtts://host:port`; empty: the bridge is off.
    pub url: String,
    /// PEM file of the CA that signed the central broker's certificate (`mqtts://`).
    pub ca_file: PathBuf,
    /// SHA-256 fingerprint of the central broker's certificate, instead of a CA (`mqtts://`).
    pub pin_sha256: String,
    pub username: String,
    pub password: String,
    /// MQTT client id; empty: `biogestor-<site_id>`.
    pub client_id: String,
    /// This site's name in the topics (`<topic_prefix>/<site_id>/...`).
    pub site_id: String,
    pub topic_prefix: String,
    /// Most stored (backlog) readings forwarded per second; live readings are not limited.
    pub max_backfill_per_s: u64,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            ca_file: PathBuf::new(),
            pin_sha256: String::new(),
            username: String::new(),
            password: String::new(),
            client_id: String::new(),
            site_id: String::new(),
            topic_prefix: "biogestor".into(),
            max_backfill_per_s: 200,
        }
    }
}

/// How to reach the central broker, parsed from `bridge.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeTarget {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

fn invalid(key: &str, value: impl Into<String>, allowed: &str) -> ConfigError {
    ConfigError::Invalid {
        key: format!("bridge.{key}"),
        value: value.into(),
        allowed: allowed.into(),
    }
}

/// A topic level: no MQTT wildcards or separators, not empty, at most 64 bytes.
fn topic_level(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The 32 bytes of a hex fingerprint (colons and spaces allowed between bytes).
pub fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let hex: String = s.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl BridgeConfig {
    /// Whether forwarding is configured.
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// The client id used at the central broker.
    pub fn client_id(&self) -> String {
        if self.client_id.is_empty() {
            format!("biogestor-{}", self.site_id)
        } else {
            self.client_id.clone()
        }
    }

    /// Parses `url` (call only when [`Self::enabled`]).
    pub fn target(&self) -> Result<BridgeTarget, ConfigError> {
        let allowed = "mqtt://host:port or mqtts://host:port (port optional: 1883 or 8883)";
        let url = self.url.trim();
        let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("mqtt://") {
            (false, r)
        } else {
            return Err(invalid("url", url, allowed));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port: u16 = p.parse().map_err(|_| invalid("url", url, allowed))?;
                (h, port)
            }
            _ => (rest, if tls { 8883 } else { 1883 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) || port == 0 {
            return Err(invalid("url", url, allowed));
        }
        Ok(BridgeTarget {
            host: host.to_string(),
            port,
            tls,
        })
    }

    /// Checks what serde cannot (only when the bridge is on).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        let target = self.target()?;
        if !topic_level(&self.site_id) {
            return Err(invalid(
                "site_id",
                &self.site_id,
                "required with bridge.url: 1 to 64 letters, digits, '-', '_' or '.' \
                 (it becomes a topic level)",
            ));
        }
        let prefix_ok = !self.topic_prefix.is_empty()
            && self.topic_prefix.len() <= 128
            && self.topic_prefix.split('/').all(topic_level);
        if !prefix_ok {
            return Err(invalid(
                "topic_prefix",
                &self.topic_prefix,
                "levels of letters, digits, '-', '_' or '.' separated by '/', no wildcards",
            ));
        }
        let id = self.client_id();
        if id.len() > 128 || id.chars().any(|c| c.is_control() || c == ' ') {
            return Err(invalid(
                "client_id",
                &self.client_id,
                "at most 128 characters, no spaces",
            ));
        }
        if !(1..=100_000).contains(&self.max_backfill_per_s) {
            return Err(invalid(
                "max_backfill_per_s",
                self.max_backfill_per_s.to_string(),
                "readings per second from 1 to 100000",
            ));
        }
        if !self.password.is_empty() && self.username.is_empty() {
            return Err(invalid(
                "username",
                "",
                "required when bridge.password is set",
            ));
        }
        let has_ca = !self.ca_file.as_os_str().is_empty();
        let has_pin = !self.pin_sha256.trim().is_empty();
        if has_pin && parse_fingerprint(&self.pin_sha256).is_none() {
            return Err(invalid(
                "pin_sha256",
                &self.pin_sha256,
                "the SHA-256 fingerprint of the central broker's certificate: 64 hex digits, \
                 colons allowed (openssl x509 -noout -fingerprint -sha256 -in cert.pem)",
            ));
        }
        if target.tls {
            if has_ca == has_pin {
                return Err(invalid(
                    "ca_file",
                    self.ca_file.display().to_string(),
                    "with mqtts:// exactly one of bridge.ca_file (a PEM CA file, e.g. \
                     /etc/ssl/certs/ca-certificates.crt for a public CA) or bridge.pin_sha256",
                ));
            }
            if has_ca && !self.ca_file.is_file() {
                return Err(invalid(
                    "ca_file",
                    self.ca_file.display().to_string(),
                    "a readable PEM file of CA certificates",
                ));
            }
        } else if has_ca || has_pin {
            return Err(invalid(
                if has_ca { "ca_file" } else { "pin_sha256" },
                "(set)",
                "only with an mqtts:// bridge.url",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(url: &str) -> BridgeConfig {
        BridgeConfig {
            url: url.into(),
            site_id: "finca-1".into(),
            ..BridgeConfig::default()
        }
    }

    #[test]
    fn urls_parse_with_default_ports() {
        let t = on("mqtt://central.example.org").target().expect("url");
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("central.example.org", 1883, false)
        );
        let t = on("mqtts://10.0.0.5:9883").target().expect("url");
        assert_eq!((t.host.as_str(), t.port, t.tls), ("10.0.0.5", 9883, true));
        assert!(on("http://x").validate().is_err());
        assert!(on("mqtt://x:notaport").validate().is_err());
        assert!(on("mqtt://").validate().is_err());
    }

    #[test]
    fn errors_name_the_key() {
        let msg = |c: BridgeConfig| c.validate().expect_err("invalid").to_string();
        assert!(
            msg(BridgeConfig {
                site_id: String::new(),
                ..on("mqtt://h")
            })
            .contains("bridge.site_id")
        );
        assert!(
            msg(BridgeConfig {
                site_id: "a/b".into(),
                ..on("mqtt://h")
            })
            .contains("bridge.site_id")
        );
        assert!(msg(on("mqtts://h")).contains("bridge.ca_file"));
        assert!(
            msg(BridgeConfig {
                pin_sha256: "zz".into(),
                ..on("mqtts://h")
            })
            .contains("bridge.pin_sha256")
        );
        assert!(
            msg(BridgeConfig {
                max_backfill_per_s: 0,
                ..on("mqtt://h")
            })
            .contains("bridge.max_backfill_per_s")
        );
        assert!(
            msg(BridgeConfig {
                topic_prefix: "a/#".into(),
                ..on("mqtt://h")
            })
            .contains("bridge.topic_prefix")
        );
        assert!(BridgeConfig::default().validate().is_ok());
        assert!(on("mqtt://h:1883").validate().is_ok());
    }

    #[test]
    fn fingerprints_accept_colons() {
        let hex = "AB:".repeat(31) + "CD";
        let fp = parse_fingerprint(&hex).expect("fingerprint");
        assert_eq!((fp[0], fp[31]), (0xab, 0xcd));
        assert!(parse_fingerprint("AB:CD").is_none());
    }

    #[test]
    fn environment_overrides_every_key() {
        let vars = [
            ("BIOGESTOR_BRIDGE__URL", "mqtt://central:1884"),
            ("BIOGESTOR_BRIDGE__SITE_ID", "finca-7"),
            ("BIOGESTOR_BRIDGE__MAX_BACKFILL_PER_S", "50"),
            ("BIOGESTOR_BRIDGE__USERNAME", "finca7"),
            ("BIOGESTOR_BRIDGE__PASSWORD", "s3creto"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let text = "[mqtt]\nallow_anonymous = true\n";
        let c = super::super::Config::from_toml(text, std::path::Path::new("t.toml"), vars)
            .expect("valid");
        let b = &c.raw.bridge;
        assert_eq!(b.target().expect("url").port, 1884);
        assert_eq!((b.site_id.as_str(), b.max_backfill_per_s), ("finca-7", 50));
        assert_eq!(b.client_id(), "biogestor-finca-7");
        let bad = [("BIOGESTOR_BRIDGE__URL".to_string(), "mqtt://h".to_string())];
        let e = super::super::Config::from_toml(text, std::path::Path::new("t.toml"), bad)
            .expect_err("no site id");
        assert!(e.to_string().contains("bridge.site_id"), "{e}");
    }
}
