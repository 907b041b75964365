//! Appliance configuration: `config.toml`, overridden by `BIOGESTOR_SECTION__KEY` variables,
//! validated once at start-up so that a bad value stops the service with a message naming it.

pub mod alarms;
pub mod bridge;
pub mod clock;
mod env;
pub mod gas;
pub mod placeholder;
mod tls;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{
    MaterialParams, ModelTemperature, Region, default_materials, default_materials_for,
};
use crate::normal_volume::{GasHumidity, GasTemperature, PressureReading, PressureUnit};
pub use tls::{TlsConfig, TlsFiles, TlsListeners};
pub use validate::ValidConfig;

/// Why a configuration could not be used; every variant names the key and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML or a key has the wrong type or is unknown.
    #[error("configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// An environment override names an unknown key or carries an unusable value.
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    /// A key is present with a value outside what the appliance accepts.
    #[error("invalid value for `{key}` = {value:?}: {allowed}")]
    Invalid {
        key: String,
        value: String,
        allowed: String,
    },
}

/// The whole configuration as written in `config.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub http: HttpConfig,
    pub mqtt: MqttConfig,
    pub storage: StorageConfig,
    pub site: SiteConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    /// `[tls]`: certificate and key of the optional TLS listeners.
    pub tls: TlsConfig,
    pub clock: clock::ClockConfig,
    /// `[materials.<name>]`: kinetic parameters per material type; the built-in defaults
    /// (with their sources) are completed or overridden key by key from the file.
    pub materials: BTreeMap<String, MaterialParams>,
    /// `[bridge]`: forwarding to a central MQTT broker (off unless `url` is set).
    pub bridge: bridge::BridgeConfig,
    /// `[alarms]`: the optional webhook of alarm notifications.
    pub alarms: alarms::AlarmsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: HttpConfig::default(),
            mqtt: MqttConfig::default(),
            storage: StorageConfig::default(),
            site: SiteConfig::default(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            tls: TlsConfig::default(),
            clock: clock::ClockConfig::default(),
            materials: default_materials(),
            bridge: bridge::BridgeConfig::default(),
            alarms: alarms::AlarmsConfig::default(),
        }
    }
}

/// Fills each built-in material's keys that the file leaves out, so a file may override a
/// single parameter (`[materials.bovino] b0_m3_ch4_per_kg_vs = 0.13`). The built-in values are
/// those of the preset named by `site.region` (an unknown name is reported when the section
/// is read).
fn merge_default_materials(table: &mut toml::Table) -> Result<(), String> {
    let region = table
        .get("site")
        .and_then(|s| s.get("region"))
        .and_then(toml::Value::as_str)
        .and_then(Region::from_name)
        .unwrap_or_default();
    let defaults =
        toml::Table::try_from(default_materials_for(region)).map_err(|e| e.to_string())?;
    let materials = table
        .entry("materials")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .ok_or("`materials` must be a section")?;
    for (name, params) in defaults {
        let entry = materials
            .entry(name.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or(format!("`materials.{name}` must be a section"))?;
        if let toml::Value::Table(params) = params {
            for (k, v) in params {
                entry.entry(k).or_insert(v);
            }
        }
    }
    Ok(())
}

/// `[http]`: where the API, WebSocket and UI listen, and the limits that keep one client from
/// taking every connection, descriptor or byte of memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub bind: String,
    /// Where HTTPS listens besides `bind` (empty: no HTTPS).
    pub tls_bind: String,
    pub max_body_bytes: u64,
    pub ws_buffer: u64,
    /// Seconds a client has to send a request's header (also how long a kept-alive
    /// connection may wait for its next request).
    pub header_timeout_s: u64,
    /// Seconds a request body or a response may stall before the connection is closed.
    pub idle_timeout_s: u64,
    /// Most HTTP connections (WebSockets included) open at once.
    pub max_connections: u64,
    /// Most HTTP connections from one client address.
    pub max_connections_per_address: u64,
    /// Most live-feed WebSockets open at once.
    pub ws_max_clients: u64,
    /// Most live-feed WebSockets of one account.
    pub ws_max_clients_per_user: u64,
    /// Seconds between the live feed's checks that its token, session and permission still hold.
    pub ws_recheck_s: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0:8080".into(),
            tls_bind: String::new(),
            max_body_bytes: 64 * 1024,
            ws_buffer: 4096,
            header_timeout_s: 10,
            idle_timeout_s: 60,
            max_connections: 256,
            max_connections_per_address: 32,
            ws_max_clients: 64,
            ws_max_clients_per_user: 8,
            ws_recheck_s: 15,
        }
    }
}

/// `[mqtt]`: the embedded broker the sensors publish to.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    pub bind: String,
    /// Where MQTT over TLS listens besides `bind` (empty: none).
    pub tls_bind: String,
    pub topics: Vec<String>,
    pub allow_anonymous: bool,
    pub users: BTreeMap<String, MqttUser>,
    pub max_payload_bytes: u64,
    pub max_fields: u64,
    pub max_connections: u64,
    /// Most connections one user name may hold at once (a leaked credential cannot take
    /// every slot).
    pub max_connections_per_user: u64,
    /// Failed logins from one address within a minute before that address is refused for a
    /// minute.
    pub auth_failures_per_address: u64,
}

/// One `[mqtt.users]` entry: the first-version form `name = "password"` (a sensor that
/// publishes to the reading topics), or a table with a password or PHC hash and topic
/// permissions.
#[derive(Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MqttUser {
    Password(String),
    Account(MqttAccount),
}

/// `[mqtt.users.<name>]`: a credential with its own topic permissions.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttAccount {
    /// Plain password (compared in constant time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// PHC hash string (argon2), so the file need not hold the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// Filters it may publish to; absent means the reading topics (`mqtt.topics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<Vec<String>>,
    /// Filters it may subscribe to; none by default.
    #[serde(default)]
    pub subscribe: Vec<String>,
}

impl MqttUser {
    /// The entry as a table (the short form means a plain password and default permissions).
    pub fn account(&self) -> MqttAccount {
        match self {
            MqttUser::Password(p) => MqttAccount {
                password: Some(p.clone()),
                ..MqttAccount::default()
            },
            MqttUser::Account(a) => a.clone(),
        }
    }
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0:1883".into(),
            tls_bind: String::new(),
            topics: vec!["Prueba".into()],
            allow_anonymous: false,
            users: BTreeMap::new(),
            max_payload_bytes: 16 * 1024,
            max_fields: 64,
            max_connections: 64,
            max_connections_per_user: 16,
            auth_failures_per_address: 10,
        }
    }
}

impl fmt::Debug for MqttConfig {
    /// Passwords never reach logs: users are listed by name only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttConfig")
            .field("bind", &self.bind)
            .field("tls_bind", &self.tls_bind)
            .field("topics", &self.topics)
            .field("allow_anonymous", &self.allow_anonymous)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("max_fields", &self.max_fields)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_user", &self.max_connections_per_user)
            .field("auth_failures_per_address", &self.auth_failures_per_address)
            .finish()
    }
}

/// `[storage]`: the data folder and the durability window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub commit_interval_ms: u64,
    pub commit_max_readings: u64,
    pub cache_size_mb: u64,
    /// Size of the preallocated readings journal (`store::journal`); 0: no journal, every
    /// commit synced.
    pub journal_mb: u64,
    /// Longest time between synced database commits while the journal is in use.
    pub checkpoint_interval_s: u64,
    /// Days raw readings are kept (fractions allowed); 0 keeps them until the disk budget
    /// needs the space. Daily figures and rollups are kept regardless.
    pub raw_retention_days: f64,
    /// Free space to keep on the store's filesystem, MiB: the oldest raw readings are pruned
    /// to keep it.
    pub min_free_mb: u64,
    /// Largest the store may grow, MiB (0: no limit besides `min_free_mb`).
    pub max_store_mb: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            commit_interval_ms: 1000,
            commit_max_readings: 10_000,
            cache_size_mb: 16,
            journal_mb: 4,
            checkpoint_interval_s: 1800,
            raw_retention_days: 365.0,
            min_free_mb: 256,
            max_store_mb: 0,
        }
    }
}

/// `[site]`: what the operator sees (the site's name and its local time zone) and what the
/// site's gas meter can register.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    pub name: String,
    pub timezone: String,
    /// Most gas the meter can register per hour; a counter step above it is not counted until
    /// the meter confirms a new baseline (see `store::daily::counter`).
    pub max_gas_flow_m3_h: f64,
    /// Regional preset of the material defaults (`model::Region`).
    pub region: Region,
    /// Site altitude, m: the ambient pressure when `ambient_pressure_hpa` is 0.
    pub altitude_m: f64,
    /// Mean ambient pressure, hPa; 0 = from the altitude (standard atmosphere).
    pub ambient_pressure_hpa: f64,
    /// Whether `presion` is absolute or gauge.
    pub pressure_reading: PressureReading,
    /// Unit of `presion`.
    pub pressure_unit: PressureUnit,
    /// Gas temperature from the `temperatura` channel or fixed.
    pub gas_temperature: GasTemperature,
    /// Fixed gas temperature, and the fallback without a recent reading, °C.
    pub gas_temperature_c: f64,
    /// Water vapour in the gas: saturated, or the `humedad` channel.
    pub gas_humidity: GasHumidity,
    /// Temperature the expected curve advances by: measured daily means or the typed value.
    pub model_temperature: ModelTemperature,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            name: "Biodigestor".into(),
            timezone: "America/Bogota".into(),
            max_gas_flow_m3_h: crate::store::daily::meter::DEFAULT_MAX_GAS_FLOW_M3_H,
            region: Region::default(),
            altitude_m: gas::DEFAULT_ALTITUDE_M,
            ambient_pressure_hpa: 0.0,
            pressure_reading: PressureReading::Absolute,
            pressure_unit: PressureUnit::HPa,
            gas_temperature: GasTemperature::Sensor,
            gas_temperature_c: gas::DEFAULT_GAS_TEMPERATURE_C,
            gas_humidity: GasHumidity::Saturated,
            model_temperature: ModelTemperature::Measured,
        }
    }
}

/// `[auth]`: token lifetimes and the signing secret of the web sessions.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HS256 signing secret; empty means "generate one into data_dir/jwt-secret".
    pub jwt_secret: String,
    pub access_minutes: u64,
    pub refresh_days: u64,
    /// Bearer token accepted by `/metrics` besides an administrator's access token.
    pub metrics_token: String,
    /// Accounts one client address may register per hour.
    pub registrations_per_address_per_hour: u64,
    /// Accounts all addresses together may register per hour.
    pub registrations_per_hour: u64,
    /// Most accounts waiting for approval at once; registration answers 429 beyond it.
    pub max_pending_accounts: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: String::new(),
            access_minutes: 60,
            refresh_days: 7,
            metrics_token: String::new(),
            registrations_per_address_per_hour: 5,
            registrations_per_hour: 20,
            max_pending_accounts: 20,
        }
    }
}

impl fmt::Debug for AuthConfig {
    /// Secrets never reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "jwt_secret",
                &if self.jwt_secret.is_empty() {
                    "(generated)"
                } else {
                    "(set)"
                },
            )
            .field("access_minutes", &self.access_minutes)
            .field("refresh_days", &self.refresh_days)
            .field(
                "metrics_token",
                &if self.metrics_token.is_empty() {
                    "(none)"
                } else {
                    "(set)"
                },
            )
            .field(
                "registrations_per_address_per_hour",
                &self.registrations_per_address_per_hour,
            )
            .field("registrations_per_hour", &self.registrations_per_hour)
            .field("max_pending_accounts", &self.max_pending_accounts)
            .finish()
    }
}

/// `[log]`: verbosity of the journal output (`RUST_LOG` wins when set).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

impl Config {
    /// Reads `path`, applies the process environment's overrides and validates the result.
    pub fn load(path: &Path) -> Result<ValidConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path, std::env::vars())
    }

    /// Parses TOML text, applies `vars` as overrides and validates; `origin` names the file in
    /// messages. Split from [`Config::load`] so tests can pass their own environment.
    pub fn from_toml(
        text: &str,
        origin: &Path,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ValidConfig, ConfigError> {
        let parse_err = |message: String| ConfigError::Parse {
            path: origin.to_path_buf(),
            message,
        };
        // First pass with spans, so unknown keys and wrong types in the file point at a line
        // (materials are checked after their defaults are merged in).
        let _: Config = toml::from_str(text).or_else(|e| {
            if e.message().contains("missing field") {
                Ok(Config::default())
            } else {
                Err(parse_err(e.to_string()))
            }
        })?;
        let mut table: toml::Table = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        // Overrides first, so that BIOGESTOR_SITE__REGION picks the preset merged in.
        let overridden = env::apply_overrides(&mut table, vars)?;
        merge_default_materials(&mut table).map_err(parse_err)?;
        let mut config: Config = table.try_into().map_err(|e: toml::de::Error| {
            let message = e.to_string();
            match overridden.first() {
                Some(var) => ConfigError::Env {
                    var: var.clone(),
                    message,
                },
                None => parse_err(message),
            }
        })?;
        config.tls.resolve(origin.parent());
        config.validate()
    }
}

/// Parses `host:port`, naming the key on failure.
pub(crate) fn parse_bind(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        allowed: "an IP address and port such as 0.0.0.0:8080 or 127.0.0.1:1883".into(),
    })
}
