//! Files being prepared: private staging folders beside a target, atomic installation, and
//! the removal of what an interrupted backup or restore left behind.
//!
//! A backup or restore prepares its file in `.biogestor-<kind>-<pid>` beside the target, and
//! the service writes download snapshots as `backups/.snapshot-<pid>-<ms>.redb`. A kill or a
//! power cut leaves them behind. They are removed by the next backup in the same folder and
//! by the service at start-up, under one rule: a leftover is stale unless the process whose
//! id is in its name is still running *and* is a biogestor (its `/proc/<pid>/comm` is
//! `biogestor` or this program's own name). A leftover bearing this process's own id is
//! stale too: it is checked before this process creates its own. When `/proc` cannot be read
//! nothing is removed.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{BackupError, io};
use crate::store::DB_FILE;

/// Prefix of snapshot files being written for a download.
pub(super) const PARTIAL_PREFIX: &str = ".snapshot-";

/// Prefix of staging folders; the kind (`backup`, `check`, `restore`) and the pid follow.
const STAGING_PREFIX: &str = ".biogestor-";

/// The kinds of staging folder this program makes.
const STAGING_KINDS: [&str; 3] = ["backup", "check", "restore"];

/// Copies `from` to `to` and flushes it to disk.
pub(super) fn copy_synced(from: &Path, to: &Path) -> Result<u64, BackupError> {
    let mut src = File::open(from).map_err(io("cannot read", from))?;
    let mut dst = crate::fsmode::create_new(to).map_err(io("cannot create", to))?;
    let n = std::io::copy(&mut src, &mut dst).map_err(io("cannot write", to))?;
    dst.sync_all().map_err(io("cannot flush", to))?;
    Ok(n)
}

/// Flushes a directory entry (after a rename) to disk.
pub(super) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A private folder beside `target` for files being prepared, removed when dropped.
pub(super) struct Staging(pub(super) PathBuf);

impl Staging {
    /// Creates `parent/.biogestor-<what>-<pid>` (call [`remove_stale`] on `parent` first,
    /// before any staging of this process exists there).
    pub(super) fn new(parent: &Path, what: &str) -> Result<Staging, BackupError> {
        let dir = parent.join(format!("{STAGING_PREFIX}{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::fsmode::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
        Ok(Staging(dir))
    }

    /// The store file inside the folder.
    pub(super) fn file(&self) -> PathBuf {
        self.0.join(DB_FILE)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The parent folder of `out` (the current folder for a bare file name).
pub(super) fn parent_of(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Moves the prepared file into place as `out` (atomic on one file system).
pub(super) fn install(prepared: &Path, out: &Path) -> Result<(), BackupError> {
    std::fs::rename(prepared, out).map_err(io("cannot create", out))?;
    sync_dir(&parent_of(out));
    Ok(())
}

/// The pid in a staging folder's name (`.biogestor-backup-123`), if it is one.
fn staging_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(STAGING_PREFIX)?;
    let (kind, pid) = rest.split_once('-')?;
    if !STAGING_KINDS.contains(&kind) || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// The pid in a download snapshot's name (`.snapshot-123-1700000000000.redb`), if it is one.
fn snapshot_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PARTIAL_PREFIX)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

/// The name a process runs under (`/proc/<pid>/comm`, without the newline).
fn comm(pid: &str) -> std::io::Result<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/comm"))?;
    Ok(text.trim_end_matches('\n').to_string())
}

/// Whether the files of `pid` may be in use: `None` when it cannot be told.
fn in_use_by(pid: u32, own_name: &str) -> Option<bool> {
    if pid == std::process::id() {
        return Some(false);
    }
    match comm(&pid.to_string()) {
        Ok(name) => Some(name == "biogestor" || name == own_name),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false),
        Err(_) => None,
    }
}

/// Removes the stale staging folders and download snapshots directly in `dir` (see the
/// module's rule) and returns what was removed. Errors only leave things in place.
pub fn remove_stale(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    // Without a readable /proc every process would look gone: remove nothing.
    let Ok(own_name) = comm("self") else {
        return removed;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let (pid, folder) = match (staging_pid(&name), snapshot_pid(&name)) {
            (Some(pid), _) if kind.is_dir() => (pid, true),
            (_, Some(pid)) if kind.is_file() => (pid, false),
            _ => continue,
        };
        if in_use_by(pid, &own_name) != Some(false) {
            continue;
        }
        let path = entry.path();
        let gone = if folder {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if gone.is_ok() {
            removed.push(path);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_leftovers_are_recognised() {
        assert_eq!(staging_pid(".biogestor-backup-123"), Some(123));
        assert_eq!(staging_pid(".biogestor-check-7"), Some(7));
        assert_eq!(staging_pid(".biogestor-restore-42"), Some(42));
        assert_eq!(staging_pid(".biogestor-other-42"), None);
        assert_eq!(staging_pid(".biogestor-backup-12x"), None);
        assert_eq!(staging_pid(".biogestor-backup-+12"), None);
        assert_eq!(staging_pid("biogestor-backup-12"), None);
        assert_eq!(snapshot_pid(".snapshot-99-1700000000000.redb"), Some(99));
        assert_eq!(snapshot_pid(".snapshot-x-1.redb"), None);
    }

    #[test]
    fn only_leftovers_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().expect("tmp");
        // A pid above the kernel's maximum is never running.
        let dead = dir.path().join(".biogestor-backup-4194305");
        let dead_check = dir.path().join(".biogestor-check-4194305");
        let own = dir
            .path()
            .join(format!(".biogestor-backup-{}", std::process::id()));
        // pid 1 is running and is not biogestor: its name is a leftover too.
        let other = dir.path().join(".biogestor-restore-1");
        let dead_snapshot = dir.path().join(".snapshot-4194305-1.redb");
        for d in [&dead, &dead_check, &own, &other] {
            std::fs::create_dir_all(d).expect("mkdir");
            std::fs::write(d.join(DB_FILE), b"x").expect("write");
        }
        std::fs::write(&dead_snapshot, b"x").expect("write");
        let kept = dir.path().join("biogestor-sitio-20260101-000000.redb");
        std::fs::write(&kept, b"x").expect("write");
        let mut removed = remove_stale(dir.path());
        removed.sort();
        let mut want = vec![dead, dead_check, own, other, dead_snapshot];
        want.sort();
        assert_eq!(removed, want);
        assert!(kept.exists());
    }
}
