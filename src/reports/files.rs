//! The report files on disk: `data_dir/reports/{pdf,excel,csv}/reporte_<id>.<ext>`. Each file
//! is written under a temporary name, synced and renamed into place, so a crash or a full
//! disk never leaves a partial report behind. Paths are built from the numeric id and a fixed
//! kind only, so nothing outside the reports folder can ever be named. Folders and files are
//! owner-only ([`crate::fsmode`]).

use std::io::Write;
use std::path::{Path, PathBuf};

/// The three renderings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pdf,
    Excel,
    Csv,
}

impl Kind {
    /// Every kind, in the order they are written.
    pub const ALL: [Kind; 3] = [Kind::Pdf, Kind::Excel, Kind::Csv];

    /// From the URL segment (`pdf`, `excel`, `csv`).
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "pdf" => Some(Kind::Pdf),
            "excel" => Some(Kind::Excel),
            "csv" => Some(Kind::Csv),
            _ => None,
        }
    }

    /// The URL segment and folder name.
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Excel => "excel",
            Kind::Csv => "csv",
        }
    }

    /// File extension.
    pub fn ext(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Excel => "xlsx",
            Kind::Csv => "csv",
        }
    }

    /// HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Pdf => "application/pdf",
            Kind::Excel => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Kind::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// Why a report file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct WriteError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// File name of a report file.
pub fn file_name(id: u64, kind: Kind) -> String {
    format!("reporte_{id}.{}", kind.ext())
}

/// Where a report file lives.
pub fn path(data_dir: &Path, id: u64, kind: Kind) -> PathBuf {
    data_dir
        .join("reports")
        .join(kind.segment())
        .join(file_name(id, kind))
}

/// Writes `bytes` atomically to the report file of `id` and `kind`.
pub fn write(data_dir: &Path, id: u64, kind: Kind, bytes: &[u8]) -> Result<(), WriteError> {
    let target = path(data_dir, id, kind);
    let dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
    let tmp = dir.join(format!(".{}.tmp", file_name(id, kind)));
    let err = |source| WriteError {
        path: target.clone(),
        source,
    };
    let result = (|| {
        crate::fsmode::create_dir_all(&dir)?;
        let mut f = crate::fsmode::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        // Persist the rename itself.
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Removes the files of a report whose creation failed half-way.
pub fn remove_all(data_dir: &Path, id: u64) {
    for kind in Kind::ALL {
        let _ = std::fs::remove_file(path(data_dir, id, kind));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_and_failure_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 7, Kind::Csv, b"a,b\n").unwrap();
        assert_eq!(
            std::fs::read(path(dir.path(), 7, Kind::Csv)).unwrap(),
            b"a,b\n"
        );
        // A folder where the file should be makes the rename fail: no temporary file remains.
        std::fs::create_dir_all(path(dir.path(), 8, Kind::Pdf)).unwrap();
        assert!(write(dir.path(), 8, Kind::Pdf, b"%PDF").is_err());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("reports/pdf"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
