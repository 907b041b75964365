//! `biogestor tls-cert`: a self-signed certificate for this unit (ECDSA P-256, valid ten
//! years), named for every way sensors and browsers reach it, written beside its key.
//!
//! Self-signed because a farm's appliance has no public name a certificate authority could
//! vouch for: sensors pin this certificate (or its fingerprint) instead, and browsers warn once.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chrono::Datelike;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, date_time_ymd,
};

use super::fingerprint;

/// Years the certificate is valid: longer than a unit's life between re-installs, because
/// renewing means updating every sensor that pins it.
pub const VALID_YEARS: i32 = 10;

/// File names written into `--out-dir`.
pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";

/// Why a certificate could not be created or written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("`{0}` is not a usable host name or IP address")]
    BadName(String),
    #[error("creating the certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(
        "{0} already exists; keeping it (sensors may pin this certificate). \
         Add --force to replace the certificate and key, then update every sensor that pins it"
    )]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A created certificate and key, PEM-encoded.
pub struct Generated {
    pub cert_pem: String,
    pub key_pem: String,
    /// SHA-256 fingerprint of the certificate (see [`fingerprint`]).
    pub fingerprint: String,
    /// Last day of validity, `YYYY-MM-DD`.
    pub not_after: String,
}

/// A self-signed server certificate for `names` (host names or IP addresses; the first is the
/// common name), with a new P-256 key.
pub fn generate(names: &[String]) -> Result<Generated, CertError> {
    let mut sans = Vec::new();
    for name in names {
        let san = match name.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) if is_dns_name(name) => SanType::DnsName(
                name.as_str()
                    .try_into()
                    .map_err(|_| CertError::BadName(name.clone()))?,
            ),
            Err(_) => return Err(CertError::BadName(name.clone())),
        };
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Biogestor");
    dn.push(
        DnType::CommonName,
        names.first().map(String::as_str).unwrap_or("biogestor"),
    );
    params.distinguished_name = dn;
    // A leaf, not a CA: rustls and mbedTLS then accept it when it is itself the trust anchor.
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // From yesterday, so a client whose clock is a little behind accepts it at once.
    let start = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    let day = start.day().min(28) as u8;
    params.not_before = date_time_ymd(start.year(), start.month() as u8, start.day() as u8);
    params.not_after = date_time_ymd(start.year() + VALID_YEARS, start.month() as u8, day);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    Ok(Generated {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        fingerprint: fingerprint(cert.der()),
        not_after: format!(
            "{:04}-{:02}-{:02}",
            start.year() + VALID_YEARS,
            start.month(),
            day
        ),
    })
}

/// Letters, digits, `-` and `.` in labels of at most 63 characters.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The names a certificate for this unit should carry: this machine's host name (and its
/// `.local` mDNS name), `biogestor.local`, `localhost`, the loopback addresses, then `extra`
/// (the installer passes the unit's LAN addresses).
pub fn unit_names(extra: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(host) = host_name() {
        names.push(host.clone());
        if !host.contains('.') {
            names.push(format!("{host}.local"));
        }
    }
    for n in ["biogestor.local", "localhost", "127.0.0.1", "::1"] {
        names.push(n.to_string());
    }
    names.extend(extra.iter().map(|s| s.trim().to_string()));
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| !n.is_empty() && seen.insert(n.to_ascii_lowercase()));
    names
}

/// The kernel's host name (Linux), if it is a usable DNS name.
fn host_name() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let host = raw.trim().to_ascii_lowercase();
    (host != "localhost" && is_dns_name(&host)).then_some(host)
}

/// Writes `cert.pem` (0644) and `key.pem` (0600) into `dir`, creating it. Refuses to replace
/// either file unless `force`: sensors that pin the old certificate would stop connecting.
pub fn write(dir: &Path, g: &Generated, force: bool) -> Result<(PathBuf, PathBuf), CertError> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    if !force {
        for p in [&key_path, &cert_path] {
            if p.exists() {
                return Err(CertError::Exists(p.clone()));
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| CertError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    write_file(&key_path, g.key_pem.as_bytes(), 0o600)?;
    write_file(&cert_path, g.cert_pem.as_bytes(), 0o644)?;
    Ok((cert_path, key_path))
}

/// Writes `bytes` to `path` through a temporary file created with `mode` (the key is never
/// readable by others, not even for a moment) and renamed into place.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    let err = |source| CertError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("pem.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    let mut f = opts.open(&tmp).map_err(err)?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(err)?;
    #[cfg(unix)]
    {
        // The umask may have removed bits from a 0644 certificate.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

/// `biogestor tls-cert`: creates and writes the certificate for this unit, returning what to
/// tell the operator (files, names, validity and the fingerprint line sensors pin).
pub fn create(dir: &Path, hosts: &[String], force: bool) -> Result<String, CertError> {
    let names = unit_names(hosts);
    let g = generate(&names)?;
    let (cert, key) = write(dir, &g, force)?;
    Ok(format!(
        "certificate: {}\nkey:         {} (mode 0600)\nnames:       {}\nvalid until: {}\n\
         sha256 Fingerprint={}",
        cert.display(),
        key.display(),
        names.join(", "),
        g.not_after,
        g.fingerprint
    ))
}

/// One line for `check-config`: the TLS listeners and the certificate's fingerprint.
pub fn describe(c: &crate::config::ValidConfig) -> Option<String> {
    let files = c.tls.files.as_ref()?;
    let show = |a: Option<std::net::SocketAddr>| a.map_or("off".to_string(), |a| a.to_string());
    let fp = super::read_certificates(&files.cert)
        .ok()
        .and_then(|chain| chain.first().map(|der| fingerprint(der)))
        .unwrap_or_default();
    Some(format!(
        "TLS: https {} · mqtts {} · certificate {} (sha256 {fp})",
        show(c.tls.http),
        show(c.tls.mqtt),
        files.cert.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_start_with_the_unit_and_keep_extra_addresses_once() {
        let n = unit_names(&["192.168.1.20".into(), "LOCALHOST".into(), "".into()]);
        assert!(n.contains(&"biogestor.local".to_string()));
        assert!(n.contains(&"192.168.1.20".to_string()));
        assert_eq!(
            n.iter()
                .filter(|x| x.eq_ignore_ascii_case("localhost"))
                .count(),
            1
        );
        assert!(!n.iter().any(String::is_empty));
    }

    #[test]
    fn an_existing_key_is_not_replaced_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let first = generate(&["a.example".into()]).unwrap();
        write(dir.path(), &first, false).unwrap();
        let second = generate(&["a.example".into()]).unwrap();
        let err = write(dir.path(), &second, false).unwrap_err();
        assert!(matches!(err, CertError::Exists(_)), "{err}");
        let key = std::fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
        assert_eq!(key, first.key_pem);
        write(dir.path(), &second, true).unwrap();
        let key = std::fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
        assert_eq!(key, second.key_pem);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_bad_name_is_refused() {
        assert!(matches!(
            generate(&["bad name!".into()]),
            Err(CertError::BadName(_))
        ));
    }
}
