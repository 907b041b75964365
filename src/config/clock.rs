//! `[clock]`: how the appliance tells whether its clock is synchronised and how an
//! administrator's "set the time from my browser" is applied (see `crate::clock`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Where the synchronisation state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncCheck {
    /// The kernel's NTP state (`adjtimex`, cleared `STA_UNSYNC` = synchronised), which any
    /// NTP client (systemd-timesyncd, chrony, ntpd) maintains; where the call is not allowed,
    /// the `sync_file` flag.
    Kernel,
    /// Only the `sync_file` flag, which systemd-timesyncd creates once it has synchronised.
    File,
}

/// How an administrator's time is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetClock {
    /// Set the system clock (`clock_settime`; the service needs `CAP_SYS_TIME`).
    System,
    /// Keep the measured difference in the appliance and apply it to its own time (the
    /// system clock stays as it is; the difference is forgotten at a restart).
    Appliance,
}

/// `[clock]` keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockConfig {
    pub sync_check: SyncCheck,
    /// Flag file of systemd-timesyncd.
    pub sync_file: PathBuf,
    pub set_clock: SetClock,
    /// Seconds added to the system clock at start, to rehearse a wrong clock (a Pi booting in
    /// the past); 0 in production.
    pub start_offset_s: i64,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            sync_check: SyncCheck::Kernel,
            sync_file: PathBuf::from("/run/systemd/timesync/synchronized"),
            set_clock: SetClock::System,
            start_offset_s: 0,
        }
    }
}

/// Largest `start_offset_s` either way: 100 years.
const MAX_OFFSET_S: i64 = 100 * 366 * 86_400;

impl ClockConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.start_offset_s.abs() > MAX_OFFSET_S {
            return Err(ConfigError::Invalid {
                key: "clock.start_offset_s".into(),
                value: self.start_offset_s.to_string(),
                allowed: format!("seconds between -{MAX_OFFSET_S} and {MAX_OFFSET_S}"),
            });
        }
        if self.sync_file.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "clock.sync_file".into(),
                value: String::new(),
                allowed: "a file path (systemd-timesyncd's flag file)".into(),
            });
        }
        Ok(())
    }
}
