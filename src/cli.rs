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
    /// Publish simulated sensor readings to an MQTT broker.
    Simulate(SimulateArgs),
    /// Manage accounts while the service is stopped.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
}

/// Account operations.
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
}
