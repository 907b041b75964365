//! File names of snapshots: the site's name made safe for a file system, and the site's time.

use chrono_tz::Tz;

/// `site` reduced to lower-case ASCII letters, digits and dashes, for a file name.
pub fn site_slug(site: &str) -> String {
    let mut out = String::new();
    for c in site.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'á' | 'à' | 'ä' | 'â' => 'a',
            'é' | 'è' | 'ë' | 'ê' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            'ñ' => 'n',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() { "sitio".into() } else { out }
}

/// Site-local time as used in file names: `20261127-153000`.
pub fn file_timestamp(tz: Tz) -> String {
    chrono::Utc::now()
        .with_timezone(&tz)
        .format("%Y%m%d-%H%M%S")
        .to_string()
}

/// The download name of a snapshot: `biogestor-<site>-<time>.redb`.
pub fn download_name(site: &str, tz: Tz) -> String {
    format!("biogestor-{}-{}.redb", site_slug(site), file_timestamp(tz))
}
