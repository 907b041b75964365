//! The kernel calls of the field clock, through `libc` (bindings only): the NTP state, the
//! boot-time clock and setting the system clock.
#![allow(unsafe_code)]

/// The kernel's NTP state: `Some(true)` when an NTP client keeps the clock synchronised
/// (`STA_UNSYNC` cleared), `None` when the call is refused (a system-call filter).
pub fn kernel_synchronised() -> Option<bool> {
    // SAFETY: `timex` is plain old data; zeroed means modes = 0, a read-only query that needs
    // no privilege. The kernel only writes into the struct we own.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return None;
    }
    Some(tx.status & libc::STA_UNSYNC == 0 && state != libc::TIME_ERROR)
}

/// Milliseconds since boot, counting suspended time (`CLOCK_BOOTTIME`): steady across
/// wall-clock steps.
pub fn boottime_ms() -> Option<i64> {
    // SAFETY: `timespec` is plain old data written by the kernel; the pointer is to our own.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (rc == 0).then_some(ts.tv_sec as i64 * 1000 + ts.tv_nsec as i64 / 1_000_000)
}

/// Sets the system clock (`CLOCK_REALTIME`) to `us` µs since the epoch.
pub fn set_realtime(us: i64) -> std::io::Result<()> {
    // 32-bit `time_t` on armv7 cannot hold every i64: refuse instead of wrapping.
    #[allow(
        clippy::useless_conversion,
        reason = "time_t is i64 on 64-bit targets, i32 on armv7"
    )]
    let secs = us.div_euclid(1_000_000).try_into().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "time outside what this system's clock can hold",
        )
    })?;
    let ts = libc::timespec {
        tv_sec: secs,
        tv_nsec: (us.rem_euclid(1_000_000) * 1000) as _,
    };
    // SAFETY: the pointer is to a valid `timespec` we own; the kernel only reads it.
    let rc = unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
