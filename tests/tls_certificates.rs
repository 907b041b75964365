//! The TLS certificate and its configuration, with the real binary: `biogestor tls-cert`
//! prints the fingerprint openssl shows and never replaces a key without `--force`; a missing,
//! unreadable, swapped or mismatched certificate or key stops start-up naming `tls.cert` or
//! `tls.key` and the fix.

mod common;

use std::process::Command;

use common::tls::{CertDir, with_tls};
use common::{Options, free_port, run_bin};

/// Runs `biogestor serve` on a configuration that must be refused; returns its output.
fn refused_start(opts: Options) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let text = format!(
        "[http]\nbind = \"127.0.0.1:{}\"\n{}\n[mqtt]\nbind = \"127.0.0.1:{}\"\n{}\n\
         [mqtt.users]\nsensor = \"clave-de-prueba\"\n[storage]\ndata_dir = \"{}\"\n{}\n",
        free_port(),
        opts.http_toml,
        free_port(),
        opts.mqtt_extra,
        dir.path().join("data").display(),
        opts.extra_toml
    );
    std::fs::write(&config, text).unwrap();
    let (status, out) = run_bin(
        &["serve", "--config", config.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(
        status.code(),
        Some(2),
        "serve should refuse the configuration: {out}"
    );
    out
}

#[test]
fn a_bad_certificate_or_key_stops_start_up_naming_the_key() {
    let certs = CertDir::create();
    let other = CertDir::create();
    let (h, m) = (free_port(), free_port());

    // A TLS listener without [tls].
    let out = refused_start(Options {
        http_toml: format!("tls_bind = \"127.0.0.1:{h}\""),
        ..Options::default()
    });
    assert!(
        out.contains("`tls.cert`") && out.contains("biogestor tls-cert"),
        "{out}"
    );

    // A missing certificate file.
    let mut opts = with_tls(Options::default(), &certs, h, m);
    opts.extra_toml = opts.extra_toml.replace("cert.pem", "falta.pem");
    let out = refused_start(opts);
    assert!(
        out.contains("`tls.cert`") && out.contains("cannot read"),
        "{out}"
    );

    // The key of another certificate.
    let mut opts = with_tls(Options::default(), &certs, h, m);
    opts.extra_toml = opts.extra_toml.replace(
        &certs.key().display().to_string(),
        &other.key().display().to_string(),
    );
    let out = refused_start(opts);
    assert!(
        out.contains("`tls.key`") && out.contains("does not belong"),
        "{out}"
    );

    // Certificate and key swapped.
    let mut opts = with_tls(Options::default(), &certs, h, m);
    opts.extra_toml = format!(
        "\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        certs.key().display(),
        certs.cert().display()
    );
    let out = refused_start(opts);
    assert!(
        out.contains("`tls.cert`") && out.contains("no PEM certificate"),
        "{out}"
    );

    // An unreadable key (permissions; root reads anything, so only checked as another user).
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(true);
    if !is_root {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(certs.key(), std::fs::Permissions::from_mode(0o000)).unwrap();
        let out = refused_start(with_tls(Options::default(), &certs, h, m));
        assert!(
            out.contains("`tls.key`") && out.contains("cannot read"),
            "{out}"
        );
    }
}

#[test]
fn tls_cert_prints_the_fingerprint_openssl_shows_and_keeps_an_existing_key() {
    let certs = CertDir::create();
    let openssl = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(certs.cert())
        .output()
        .expect("openssl");
    let shown = String::from_utf8_lossy(&openssl.stdout).trim().to_string();
    let value = |line: &str| line.split_once('=').map(|(_, v)| v.trim().to_string());
    assert_eq!(value(&certs.printed), value(&shown), "openssl: {shown}");
    assert!(value(&shown).is_some_and(|v| v.len() == 95), "{shown}");

    let key_before = std::fs::read(certs.key()).unwrap();
    let dir = certs.dir.path().to_str().unwrap();
    let (status, out) = run_bin(&["tls-cert", "--out-dir", dir], &[], certs.dir.path());
    assert!(!status.success() && out.contains("--force"), "{out}");
    assert_eq!(
        std::fs::read(certs.key()).unwrap(),
        key_before,
        "key overwritten"
    );
    let (status, out) = run_bin(
        &["tls-cert", "--out-dir", dir, "--force"],
        &[],
        certs.dir.path(),
    );
    assert!(status.success(), "{out}");
    assert_ne!(std::fs::read(certs.key()).unwrap(), key_before);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(certs.key()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // `tls-fingerprint` shows the new certificate's, as openssl does.
    let (status, out) = run_bin(
        &["tls-fingerprint", "--cert", certs.cert().to_str().unwrap()],
        &[],
        certs.dir.path(),
    );
    assert!(status.success(), "{out}");
    let openssl = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(certs.cert())
        .output()
        .expect("openssl");
    let shown = String::from_utf8_lossy(&openssl.stdout).trim().to_string();
    assert_eq!(value(out.trim()), value(&shown));
    assert_ne!(
        value(out.trim()),
        value(&certs.printed),
        "--force kept the old certificate"
    );
}
