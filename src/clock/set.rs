//! Setting the time from an administrator's browser. Allowed only while the clock is not
//! synchronised by NTP (NTP is better than a browser). With `clock.set_clock = "system"` the
//! system clock is set (`clock_settime`, which needs `CAP_SYS_TIME`); with `"appliance"` the
//! measured difference is kept in the appliance and applied to its own time. Either way the
//! jump re-dates the unsynchronised period.

use super::monitor::{CheckError, FieldClock, Jump};
use super::{offset_us, set_offset_us, sys};
use crate::config::clock::SetClock;
use crate::sitetime::PLAUSIBLE_CLOCK_US;

/// Latest time a browser may claim: 2100-01-01.
const LATEST_US: i64 = 4_102_444_800_000_000;

/// Why the time was not set.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// NTP keeps the clock synchronised.
    #[error("the clock is synchronised by NTP")]
    Synced,
    /// The browser's time is before the release year or after 2100.
    #[error("implausible time")]
    Implausible,
    /// The service may not set the system clock (no `CAP_SYS_TIME`, or a system-call filter).
    #[error("not permitted to set the system clock: {0}")]
    NotPermitted(std::io::Error),
    /// Setting the system clock failed otherwise.
    #[error("setting the system clock failed: {0}")]
    Failed(std::io::Error),
    #[error(transparent)]
    Check(#[from] CheckError),
}

impl FieldClock {
    /// Sets the time to `browser_us` (µs since the epoch, read from the browser's clock).
    pub fn set_from_browser(&self, browser_us: i64) -> Result<Jump, SetError> {
        if self.ntp_synchronised() {
            return Err(SetError::Synced);
        }
        if !(PLAUSIBLE_CLOCK_US..LATEST_US).contains(&browser_us) {
            return Err(SetError::Implausible);
        }
        let mode = self.config().set_clock;
        let applied = self.apply_set(browser_us, |by_us| match mode {
            SetClock::System => {
                // The system clock takes the browser's time; the appliance's own correction
                // is then none.
                sys::set_realtime(super::system_us() + offset_us() + by_us)?;
                set_offset_us(0);
                Ok(())
            }
            SetClock::Appliance => {
                set_offset_us(offset_us() + by_us);
                Ok(())
            }
        })?;
        applied.map_err(refused)
    }
}

/// What a failed `clock_settime` means: missing privilege (no `CAP_SYS_TIME`, or a
/// system-call filter answering EPERM) or another failure.
fn refused(e: std::io::Error) -> SetError {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => SetError::NotPermitted(e),
        _ => SetError::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_capability_is_told_apart_from_other_failures() {
        let eperm = std::io::Error::from_raw_os_error(libc::EPERM);
        assert!(matches!(refused(eperm), SetError::NotPermitted(_)));
        let einval = std::io::Error::from_raw_os_error(libc::EINVAL);
        assert!(matches!(refused(einval), SetError::Failed(_)));
    }
}
