//! The rustls client configuration for an `mqtts://` central broker: trusting the CAs of
//! `bridge.ca_file`, or exactly the certificate whose SHA-256 is `bridge.pin_sha256` (a
//! self-signed broker certificate, whatever name it carries).

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore};

use crate::config::bridge::{BridgeConfig, parse_fingerprint};

/// Why the TLS settings cannot be used (checked at start-up).
#[derive(Debug, thiserror::Error)]
pub enum BridgeTlsError {
    #[error("bridge.ca_file: {0}")]
    Ca(String),
    #[error("bridge.pin_sha256: not a SHA-256 fingerprint")]
    Pin,
}

/// The client configuration for `cfg` (an `mqtts://` bridge).
pub fn client_config(cfg: &BridgeConfig) -> Result<Arc<ClientConfig>, BridgeTlsError> {
    crate::tls::install_provider();
    if !cfg.pin_sha256.trim().is_empty() {
        let pin = parse_fingerprint(&cfg.pin_sha256).ok_or(BridgeTlsError::Pin)?;
        let provider = rustls::crypto::ring::default_provider();
        let verifier = Pinned {
            pin,
            algorithms: provider.signature_verification_algorithms,
        };
        let config = ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        return Ok(Arc::new(config));
    }
    let certs = crate::tls::read_certificates(&cfg.ca_file)
        .map_err(|e| BridgeTlsError::Ca(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(BridgeTlsError::Ca(format!(
            "{} holds no usable CA certificate",
            cfg.ca_file.display()
        )));
    }
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts exactly one certificate, by its SHA-256; signatures are still checked.
#[derive(Debug)]
struct Pinned {
    pin: [u8; 32],
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if digest == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the central broker's certificate is not the pinned one (bridge.pin_sha256)".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
