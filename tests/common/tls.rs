//! TLS helpers of the black-box tests: an appliance started with HTTPS and MQTT over TLS on a
//! certificate made by `biogestor tls-cert`, and rustls clients that trust a given
//! certificate (the way a sensor pins it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};

use super::{Appliance, Options, free_port, run_bin};

/// A certificate and key written by `biogestor tls-cert` into a folder of their own.
pub struct CertDir {
    pub dir: TempDir,
    /// The fingerprint line the command printed (`sha256 Fingerprint=AB:...`).
    pub printed: String,
}

impl CertDir {
    /// Runs `biogestor tls-cert --out-dir <tmp>` and keeps its output.
    pub fn create() -> CertDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let out_dir = dir.path().to_str().expect("path").to_string();
        let (status, out) = run_bin(&["tls-cert", "--out-dir", &out_dir], &[], dir.path());
        assert!(status.success(), "tls-cert: {out}");
        let printed = out
            .lines()
            .find(|l| l.starts_with("sha256 Fingerprint="))
            .unwrap_or_else(|| panic!("no fingerprint line in: {out}"))
            .to_string();
        CertDir { dir, printed }
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
}

/// An appliance serving HTTPS and MQTT over TLS besides its plain listeners.
pub struct TlsAppliance {
    pub app: Appliance,
    pub certs: CertDir,
    pub https_port: u16,
    pub mqtts_port: u16,
}

/// `[tls]` and the two `tls_bind` keys added to `opts`.
pub fn with_tls(mut opts: Options, certs: &CertDir, https_port: u16, mqtts_port: u16) -> Options {
    opts.http_toml
        .push_str(&format!("\ntls_bind = \"127.0.0.1:{https_port}\"\n"));
    opts.mqtt_extra
        .push_str(&format!("\ntls_bind = \"127.0.0.1:{mqtts_port}\"\n"));
    opts.extra_toml.push_str(&format!(
        "\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        certs.cert().display(),
        certs.key().display()
    ));
    opts
}

impl TlsAppliance {
    pub fn start(opts: Options) -> TlsAppliance {
        let certs = CertDir::create();
        let (https_port, mqtts_port) = (free_port(), free_port());
        let app = Appliance::start(with_tls(opts, &certs, https_port, mqtts_port));
        TlsAppliance {
            app,
            certs,
            https_port,
            mqtts_port,
        }
    }

    /// A client that trusts exactly this appliance's certificate.
    pub fn client(&self) -> Arc<ClientConfig> {
        client_trusting(&self.certs.cert())
    }
}

/// A rustls client (ring provider) whose only trust anchor is the certificate in `pem`.
pub fn client_trusting(pem: &Path) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pem).expect("read cert") {
        roots.add(cert.expect("cert")).expect("add root");
    }
    let config = ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Opens TCP to 127.0.0.1:`port` and completes a TLS handshake for the name `localhost`.
pub async fn connect(
    port: u16,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("localhost").expect("name");
    tokio::time::timeout(
        Duration::from_secs(10),
        TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// Reads until the peer closes (or `limit` passes); a close without TLS close_notify counts as
/// the end too.
pub async fn read_all<S: AsyncRead + Unpin>(s: &mut S, limit: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// One HTTPS/1.1 request on a new TLS connection: (status, body).
pub async fn https_request(
    port: u16,
    config: Arc<ClientConfig>,
    method: &str,
    path: &str,
    token: Option<&str>,
    json: Option<&str>,
) -> (u16, String) {
    let mut s = connect(port, config).await.expect("TLS connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = json.unwrap_or("");
    if json.is_some() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("write request");
    let text =
        String::from_utf8_lossy(&read_all(&mut s, Duration::from_secs(30)).await).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Logs in over HTTPS and returns the access token.
pub async fn https_login(port: u16, config: Arc<ClientConfig>, user: &str, pass: &str) -> String {
    let body = serde_json::json!({"username": user, "password": pass}).to_string();
    let (status, text) = https_request(
        port,
        config,
        "POST",
        "/api/iniciar-sesion/",
        None,
        Some(&body),
    )
    .await;
    assert_eq!(status, 200, "HTTPS login {user}: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("login json");
    v["access"].as_str().expect("access token").to_string()
}

/// Sends an MQTT 3.1.1 CONNECT (clean session, user name and password) on `s` and returns the
/// CONNACK return code, or None when the broker closes without one.
pub async fn mqtt_connack<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    client_id: &str,
    user: &str,
    password: &str,
) -> Option<u8> {
    fn field(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s);
    }
    let mut body = Vec::new();
    field(&mut body, b"MQTT");
    body.push(4);
    body.push(0xC2);
    body.extend_from_slice(&30u16.to_be_bytes());
    field(&mut body, client_id.as_bytes());
    field(&mut body, user.as_bytes());
    field(&mut body, password.as_bytes());
    assert!(body.len() < 128, "short CONNECT only");
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    s.write_all(&packet).await.ok()?;
    let mut ack = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut ack))
        .await
        .ok()?
        .ok()?;
    (ack[0] == 0x20).then_some(ack[3])
}
