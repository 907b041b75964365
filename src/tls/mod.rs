//! Optional TLS for the web interface and the MQTT broker (`[tls]`, `http.tls_bind`,
//! `mqtt.tls_bind`): loading and checking the certificate and key once at start-up, the
//! rustls server configuration the HTTPS listener uses, and the certificate's fingerprint that
//! sensors pin.
//!
//! rustls runs on the `ring` provider (installed process-wide by [`install_provider`], so the
//! broker's own rustls configuration uses it too): it builds with Debian's gcc cross
//! toolchains, unlike aws-lc-rs.

pub mod cert;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// Why the certificate or key cannot be used; each names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read (missing, no permission).
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The certificate file holds no PEM `CERTIFICATE` block, or an unreadable one.
    #[error("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: PathBuf },
    /// The key file holds no PEM private key.
    #[error("{path} holds no PEM private key (-----BEGIN PRIVATE KEY-----, EC or RSA)")]
    NoKey { path: PathBuf },
    /// The key is not the certificate's, or one of them is not usable by rustls.
    #[error("{0}")]
    Unusable(String),
}

/// Makes `ring` the process's rustls provider. Idempotent; call before any TLS configuration
/// is built (the broker's listener builds its own with the process default).
pub fn install_provider() {
    // An error only means a provider is already installed (a second call, or a test).
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The certificate chain in a PEM file (the server's certificate first).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate {
            path: path.to_path_buf(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| TlsError::NoKey {
        path: path.to_path_buf(),
    })
}

/// Which file a [`TlsError`] is about, so configuration errors can name the key (`tls.cert`
/// or `tls.key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Culprit {
    Cert,
    Key,
}

/// Reads and checks the certificate and key and builds the HTTPS listener's configuration
/// (HTTP/1.1 only, TLS 1.2 and 1.3: sensors' mbedTLS stacks speak 1.2). Fails if either
/// file is unreadable or malformed, or if the key does not belong to the certificate.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, (Culprit, TlsError)> {
    install_provider();
    let chain = read_certificates(cert).map_err(|e| (Culprit::Cert, e))?;
    let key_der = read_key(key).map_err(|e| (Culprit::Key, e))?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => (
                Culprit::Key,
                TlsError::Unusable(format!(
                    "the private key in {} does not belong to the certificate in {}",
                    key.display(),
                    cert.display()
                )),
            ),
            rustls::Error::InvalidCertificate(_) | rustls::Error::InvalidCertRevocationList(_) => (
                Culprit::Cert,
                TlsError::Unusable(format!("{}: unusable certificate: {e}", cert.display())),
            ),
            other => (
                Culprit::Key,
                TlsError::Unusable(format!("{}: unusable private key: {other}", key.display())),
            ),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The SHA-256 fingerprint of a DER certificate as `openssl x509 -noout -fingerprint -sha256`
/// prints it after `=`: upper-case hex bytes separated by colons.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_colon_separated_upper_hex_of_sha256() {
        // SHA-256 of the empty input.
        assert_eq!(
            fingerprint(b""),
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_named_as_the_culprit() {
        let dir = tempfile::tempdir().unwrap();
        let a = cert::generate(&["a.example".into()]).unwrap();
        let b = cert::generate(&["b.example".into()]).unwrap();
        std::fs::write(dir.path().join("a.pem"), &a.cert_pem).unwrap();
        std::fs::write(dir.path().join("b.key"), &b.key_pem).unwrap();
        std::fs::write(dir.path().join("a.key"), &a.key_pem).unwrap();
        let err = server_config(&dir.path().join("a.pem"), &dir.path().join("b.key")).unwrap_err();
        assert_eq!(err.0, Culprit::Key);
        assert!(err.1.to_string().contains("does not belong"), "{}", err.1);
        assert!(server_config(&dir.path().join("a.pem"), &dir.path().join("a.key")).is_ok());
        let swapped = server_config(&dir.path().join("a.key"), &dir.path().join("a.pem"));
        assert_eq!(swapped.unwrap_err().0, Culprit::Cert);
    }
}
