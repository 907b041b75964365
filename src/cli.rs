//! Command-line interface: one subcommand per operator verb.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::simulate::SimulateArgs;

/// Biogas digester appliance: MQTT broker, storage, live dashboard and reports in one binary.
#[derive(Debug, Parser)]
#[command(name = "biogestor", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the appliance (broker, ingest, web interface).
    Serve {
        /// Configuration file.
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Check a configuration file (and the environment overrides) without starting.
    CheckConfig {
        /// Configuration file.
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Create a self-signed TLS certificate for this unit (ECDSA P-256, valid 10 years) in
    /// DIR/cert.pem and DIR/key.pem (mode 0600), and print its SHA-256 fingerprint. It names
    /// this host, HOST.local, biogestor.local, localhost and every --host.
    TlsCert {
        /// Folder to write cert.pem and key.pem into (created if missing).
        #[arg(long)]
        out_dir: PathBuf,
        /// A further host name or IP address sensors or browsers use to reach the unit
        /// (repeat it, or separate with commas).
        #[arg(long = "host", value_delimiter = ',')]
        hosts: Vec<String>,
        /// Replace an existing certificate and key (sensors that pin the old certificate
        /// must then be updated).
        #[arg(long)]
        force: bool,
    },
    /// Print the SHA-256 fingerprint of the TLS certificate (tls.cert of the configuration,
    /// or --cert), as `openssl x509 -noout -fingerprint -sha256` does.
    TlsFingerprint {
        /// A PEM certificate file instead of the configuration's tls.cert.
        #[arg(long)]
        cert: Option<PathBuf>,
        /// Configuration file.
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Publish simulated sensor readings to an MQTT broker.
    Simulate(SimulateArgs),
    /// Give a sensor its own MQTT user (restart the service afterwards).
    Sensor {
        #[command(subcommand)]
        action: SensorCommand,
    },
    /// Manage accounts while the service is stopped.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Save a consistent snapshot of the store to a file: through the running service with
    /// --url and --token, or directly from the store when the service is stopped.
    Backup {
        /// File to write (replaced atomically once complete and checked).
        #[arg(long)]
        out: PathBuf,
        /// Address of the running service, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: Option<String>,
        /// An administrator's access token (from POST /api/iniciar-sesion/). The
        /// BIOGESTOR_TOKEN variable keeps it out of the process list.
        #[arg(long, env = "BIOGESTOR_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Configuration file (for the data folder, when not using --url).
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Rebuild the daily gas figures and meter states from the stored readings under this
    /// release's meter rules (service stopped). Needed once for days stored by an earlier
    /// release, and after changing site.max_gas_flow_m3_h or the gas settings of [site]
    /// (altitude, pressure, temperature, humidity: the normal cubic metres).
    Reindex {
        /// Configuration file (for the data folder, time zone and meter rules).
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Bring an installation of the old (Django) system along (service stopped): accounts with
    /// their passwords, stages, readings and reports from `manage.py dumpdata auth.user
    /// usuarios dashboard`. Running it again adds nothing.
    ImportDjango {
        /// The JSON file written by dumpdata.
        file: PathBuf,
        /// The old system's MEDIA_ROOT, to copy the report files from.
        #[arg(long)]
        media: Option<PathBuf>,
        /// Only check the file and print what would be added.
        #[arg(long)]
        dry_run: bool,
        /// Configuration file (for the data folder, time zone, materials and payload limits).
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Give the space of pruned readings back to the filesystem (service stopped). The store
    /// reuses that space by itself; this shrinks its file.
    Compact {
        /// Configuration file (for the data folder).
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Replace the store with a snapshot made by `backup` (service stopped). The snapshot is
    /// checked first; the current store is kept as biogestor.redb.before-restore-<time>.
    Restore {
        /// The snapshot file.
        file: PathBuf,
        /// Configuration file (for the data folder).
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
}

/// MQTT credential operations.
#[derive(Debug, Subcommand)]
pub enum SensorCommand {
    /// Create a credential NAME with a random password (printed once; only its hash is
    /// written to the configuration file).
    Add {
        /// The sensor's MQTT user name.
        name: String,
        /// The only topic it may publish to (default: the reading topics, mqtt.topics).
        #[arg(long)]
        topic: Option<String>,
        /// Configuration file to add it to.
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
}

/// Account operations (the service must be stopped: the store admits one process).
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an approved account (with every permission when --admin is given).
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        email: String,
        /// Grant every permission, including approving other users.
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
        /// Configuration file (for the data folder).
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// List every account: id, name, e-mail, state and permissions.
    List {
        /// Configuration file (for the data folder).
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Give an account a new password (generated and printed once unless --password is
    /// given); every session of the account ends.
    Passwd {
        /// The account's user name.
        username: String,
        /// The new password. The BIOGESTOR_PASSWORD variable keeps it out of the process list.
        #[arg(long, env = "BIOGESTOR_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Configuration file (for the data folder).
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Disable an account: it cannot log in and its sessions end.
    Disable {
        /// The account's user name.
        username: String,
        /// Configuration file (for the data folder).
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Enable a disabled account.
    Enable {
        /// The account's user name.
        username: String,
        /// Configuration file (for the data folder).
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Delete an account (its id is never handed out again).
    Delete {
        /// The account's user name.
        username: String,
        /// Configuration file (for the data folder).
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
}

impl UserCommand {
    /// The configuration file the command names.
    pub fn config(&self) -> &PathBuf {
        match self {
            UserCommand::Add { config, .. }
            | UserCommand::List { config }
            | UserCommand::Passwd { config, .. }
            | UserCommand::Disable { config, .. }
            | UserCommand::Enable { config, .. }
            | UserCommand::Delete { config, .. } => config,
        }
    }

    /// The verb, for error messages.
    pub fn verb(&self) -> &'static str {
        match self {
            UserCommand::Add { .. } => "add",
            UserCommand::List { .. } => "list",
            UserCommand::Passwd { .. } => "passwd",
            UserCommand::Disable { .. } => "disable",
            UserCommand::Enable { .. } => "enable",
            UserCommand::Delete { .. } => "delete",
        }
    }
}
