//! `[tls]` and the TLS listeners (`http.tls_bind`, `mqtt.tls_bind`): the certificate and key
//! are read and matched at start-up (and by `check-config`), so a missing, unreadable or
//! mismatched file stops the service with the key to fix instead of failing each handshake.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_rustls::rustls::ServerConfig;

use super::{Config, ConfigError, parse_bind};
use crate::tls::{Culprit, TlsError};

/// `[tls]`: the certificate and key both TLS listeners serve. Empty means none; a relative
/// path is taken from the folder of the configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate (chain), the server's own first.
    pub cert: String,
    /// PEM private key of that certificate (PKCS#8, SEC1 or PKCS#1).
    pub key: String,
}

impl TlsConfig {
    /// Makes relative paths relative to `base` (the configuration file's folder).
    pub(super) fn resolve(&mut self, base: Option<&Path>) {
        let Some(base) = base.filter(|b| !b.as_os_str().is_empty()) else {
            return;
        };
        for p in [&mut self.cert, &mut self.key] {
            if !p.is_empty() && Path::new(p.as_str()).is_relative() {
                *p = base.join(p.as_str()).to_string_lossy().into_owned();
            }
        }
    }
}

/// The checked certificate and key, with the rustls configuration the HTTPS listener uses.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub server: Arc<ServerConfig>,
}

/// The TLS listeners a valid configuration asks for.
#[derive(Debug, Clone, Default)]
pub struct TlsListeners {
    /// `http.tls_bind`: where HTTPS (and wss for the live feed) listens.
    pub http: Option<SocketAddr>,
    /// `mqtt.tls_bind`: where MQTT over TLS listens (conventionally port 8883).
    pub mqtt: Option<SocketAddr>,
    /// Present whenever a listener is, or `[tls]` names files.
    pub files: Option<TlsFiles>,
}

const CREATE: &str = "create a certificate with `biogestor tls-cert --out-dir /etc/biogestor/tls` \
                      and set tls.cert and tls.key to its cert.pem and key.pem";

fn optional_bind(key: &str, value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if value.trim().is_empty() {
        Ok(None)
    } else {
        parse_bind(key, value).map(Some)
    }
}

/// Checks the TLS keys against each other and the plain binds, and loads the files.
pub(super) fn check(
    c: &Config,
    http_bind: SocketAddr,
    mqtt_bind: SocketAddr,
) -> Result<TlsListeners, ConfigError> {
    let http = optional_bind("http.tls_bind", &c.http.tls_bind)?;
    let mqtt = optional_bind("mqtt.tls_bind", &c.mqtt.tls_bind)?;
    let mut taken = vec![("http.bind", http_bind), ("mqtt.bind", mqtt_bind)];
    for (key, addr, raw) in [
        ("http.tls_bind", http, &c.http.tls_bind),
        ("mqtt.tls_bind", mqtt, &c.mqtt.tls_bind),
    ] {
        let Some(addr) = addr else { continue };
        if let Some((other, _)) = taken.iter().find(|(_, a)| a.port() == addr.port()) {
            return Err(ConfigError::Invalid {
                key: key.into(),
                value: raw.clone(),
                allowed: format!("a port different from {other}'s"),
            });
        }
        taken.push((key, addr));
    }
    let t = &c.tls;
    let wanted = http.is_some() || mqtt.is_some();
    if !wanted && t.cert.is_empty() && t.key.is_empty() {
        return Ok(TlsListeners::default());
    }
    let missing = |key: &str| ConfigError::Invalid {
        key: key.into(),
        value: String::new(),
        allowed: format!(
            "the PEM file the TLS listeners (http.tls_bind, mqtt.tls_bind) use: {CREATE}"
        ),
    };
    if t.cert.is_empty() {
        return Err(missing("tls.cert"));
    }
    if t.key.is_empty() {
        return Err(missing("tls.key"));
    }
    let (cert, key) = (PathBuf::from(&t.cert), PathBuf::from(&t.key));
    let server = crate::tls::server_config(&cert, &key).map_err(|(culprit, e)| {
        let (name, value) = match culprit {
            Culprit::Cert => ("tls.cert", &t.cert),
            Culprit::Key => ("tls.key", &t.key),
        };
        let allowed = match e {
            TlsError::Unusable(_) if culprit == Culprit::Key => format!(
                "{e}; point tls.key at the key.pem created together with tls.cert, or \
                 create a new pair with `biogestor tls-cert --out-dir DIR --force` (sensors \
                 that pin the old certificate must then be updated)"
            ),
            _ => format!("{e}; {CREATE}"),
        };
        ConfigError::Invalid {
            key: name.into(),
            value: value.clone(),
            allowed,
        }
    })?;
    Ok(TlsListeners {
        http,
        mqtt,
        files: Some(TlsFiles { cert, key, server }),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError};

    fn load(text: &str) -> Result<crate::config::ValidConfig, ConfigError> {
        Config::from_toml(text, Path::new("/etc/biogestor/config.toml"), Vec::new())
    }

    const BASE: &str = "[mqtt]\nallow_anonymous = true\n";

    #[test]
    fn plain_listeners_are_the_default() {
        let c = load(BASE).unwrap();
        assert!(c.tls.http.is_none() && c.tls.mqtt.is_none() && c.tls.files.is_none());
    }

    #[test]
    fn a_tls_listener_without_certificate_names_tls_cert() {
        let err = load("[http]\ntls_bind = \"0.0.0.0:8443\"\n[mqtt]\nallow_anonymous = true\n")
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("`tls.cert`") && msg.contains("tls-cert"),
            "{msg}"
        );
    }

    #[test]
    fn relative_paths_start_at_the_config_folder() {
        let err = load(&format!(
            "[tls]\ncert = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\n{BASE}"
        ))
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/etc/biogestor/tls/cert.pem"), "{msg}");
    }

    #[test]
    fn tls_ports_must_differ_from_the_plain_ones() {
        let err =
            load("[mqtt]\nallow_anonymous = true\ntls_bind = \"0.0.0.0:1883\"\n").unwrap_err();
        assert!(err.to_string().contains("mqtt.tls_bind"), "{err}");
    }
}
