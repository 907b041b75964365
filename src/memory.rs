//! Keeping the resident memory near idle after bursts, with glibc's allocator.
//!
//! glibc raises its mmap threshold to the size of every large block freed (up to 32 MiB), so
//! after the first argon2 hash (19 MiB) or large response, such blocks come from the heap of
//! whichever of its per-thread arenas the blocking thread uses, and the heaps keep them: 200
//! logins left 870 MB resident, past the unit's `MemoryMax=256M`. Fixing the threshold (what
//! `MALLOC_MMAP_THRESHOLD_=131072` does) gives every block of 128 KiB or more its own mapping,
//! returned to the system when freed: 200 logins leave 16 MB. Limiting the arenas instead
//! (`MALLOC_ARENA_MAX=2`) made it worse (1.27 GB). The price is a fresh zeroed mapping per
//! hash, about 20 ms more per hash on the (loaded) build machine; musl's allocator works that
//! way anyway, so there this is a no-op (and musl has no `mallopt`).
//!
//! The only `unsafe` of the crate: one call into the C library with constant arguments.
#![allow(unsafe_code)]

/// Blocks at least this large get their own mapping and go back to the system when freed.
pub const MMAP_THRESHOLD_BYTES: i32 = 128 * 1024;

/// Applies the allocator settings; call first thing in `main`, before other threads exist.
/// Returns whether the allocator accepted them (always `true` where there is nothing to set).
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; the arguments are constants
        // glibc documents for it, and it returns 0 when it rejects them.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        true
    }
}
