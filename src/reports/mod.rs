//! Reports handed to agronomists and funders: one [`data::ReportData`] per report, rendered
//! to PDF, Excel and CSV under `data_dir/reports/`.

pub mod build;
pub mod data;
pub mod files;
pub mod render;

use std::path::Path;

use data::ReportData;
use files::Kind;

/// Why a report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("rendering failed: {0}")]
    Render(#[from] render::RenderError),
    #[error(transparent)]
    Write(#[from] files::WriteError),
}

/// Renders the three files in memory, then writes each atomically. A new report whose
/// writing fails leaves no file at all; a re-rendered one keeps its previous files for the
/// kinds not yet replaced.
pub fn write_all(data_dir: &Path, data: &ReportData) -> Result<(), ReportError> {
    let rendered = [
        (Kind::Pdf, render::pdf::render_pdf(data)?),
        (Kind::Excel, render::excel::render_xlsx(data)?),
        (Kind::Csv, render::csv::render_csv(data)?),
    ];
    let existed = files::path(data_dir, data.id, Kind::Pdf).exists();
    for (kind, bytes) in &rendered {
        if let Err(e) = files::write(data_dir, data.id, *kind, bytes) {
            if !existed {
                files::remove_all(data_dir, data.id);
            }
            return Err(e.into());
        }
    }
    Ok(())
}
