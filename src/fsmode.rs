//! Private files in the data folder. The store holds password hashes, `jwt-secret` signs every
//! session, reports and backups hold the farm's data: whatever umask the process inherits (a
//! shell's 022, or 000), what biogestor creates there is owner-only, folders 0700 and files
//! 0600, set explicitly at creation instead of trusting the umask.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the folders biogestor creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the files biogestor creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` and its missing parents as owner-only folders (existing ones are left as
/// they are: the data folder may have been made by the installer or systemd on purpose).
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Creates a new owner-only file; fails if it exists.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Creates or truncates an owner-only file (an existing file is made owner-only too).
pub fn create(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(f)
}

/// Writes an owner-only file atomically: a temporary name beside it, synced, then renamed.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = create(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Creates `path` as an empty owner-only file unless it exists (so a library that creates the
/// file itself, such as redb, finds it private).
pub fn create_private_if_missing(path: &Path) -> io::Result<()> {
    match create_new(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes an existing file owner-only if it is readable or writable by others (a store or a
/// secret written by an earlier release under a loose umask). Missing files are fine.
pub fn restrict_file(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, Permissions::from_mode(FILE_MODE))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_private_and_loose_files_restricted() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_dir_all(&nested).unwrap();
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&nested), 0o700);
        let f = nested.join("f");
        write_atomic(&f, b"x").unwrap();
        assert_eq!(mode(&f), 0o600);
        let loose = nested.join("loose");
        std::fs::write(&loose, b"x").unwrap();
        std::fs::set_permissions(&loose, Permissions::from_mode(0o644)).unwrap();
        restrict_file(&loose).unwrap();
        assert_eq!(mode(&loose), 0o600);
        restrict_file(&nested.join("missing")).unwrap();
        assert!(create_new(&f).is_err());
    }
}
