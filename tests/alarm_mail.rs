//! Alarm e-mail against a local SMTP server (Python's aiosmtpd, installed by
//! scripts/test.sh): an alarm raised while the server is down shows as failing in *Estado*,
//! stays queued and arrives once the server is up, naming the rule and its value; the test
//! notification arrives too. A bad address stops start-up naming the key.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::accounts::call;
use common::{Appliance, Options};
use serde_json::json;

/// A running aiosmtpd writing every message it receives into a maildir.
struct SmtpServer(Child);

impl SmtpServer {
    fn start(port: u16, maildir: &Path) -> SmtpServer {
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd)");
        SmtpServer(child)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Messages delivered into `maildir`, as text.
fn mails(maildir: &Path) -> Vec<String> {
    let dir: PathBuf = maildir.join("new");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect()
}

/// Waits for a message containing `needle`.
async fn wait_mail(maildir: &Path, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(m) = mails(maildir).into_iter().find(|m| m.contains(needle)) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "no mail with {needle:?}: {:?}",
            mails(maildir)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alarm_email_arrives_after_the_smtp_server_comes_back() {
    let smtp_port = common::free_port();
    let app = Appliance::start(Options {
        extra_toml: format!(
            "\n[alarms]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {smtp_port}\nsmtp_tls = \"none\"\n\
             smtp_from = \"Biogestor <biogestor@granja.local>\"\n\
             smtp_to = \"operador@granja.local, tecnico@granja.local\"\n"
        ),
        ..Options::default()
    });
    // An alarm while the server is down: a disk threshold above any free space.
    let (status, body) = call(
        &app,
        "PUT",
        "/api/dashboard/alarms/reglas/",
        Some(&app.token),
        Some(json!({"reglas": {"disco_bajo": {"umbral": 1.0e12, "duracion_s": 0}}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, h) = app.get("/healthz").await;
        let m = &h["notificaciones"]["correo"];
        if m["ultimo_error"].is_string() && m["pendientes"].as_u64() >= Some(1) {
            assert!(m["ultimo_error"].as_str().unwrap().contains("SMTP"), "{m}");
            assert_eq!(h["notificaciones"]["webhook"], serde_json::Value::Null);
            break;
        }
        assert!(Instant::now() < deadline, "the failure never showed: {h}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let tmp = tempfile::tempdir().unwrap();
    // aiosmtpd's Mailbox handler creates the maildir (and its tmp/new/cur) when it is absent.
    let maildir = tmp.path().join("correo");
    let _server = SmtpServer::start(smtp_port, &maildir);
    let mail = wait_mail(&maildir, "disco_bajo", Duration::from_secs(40)).await;
    assert!(
        mail.contains("Subject: Biogestor") && mail.contains("Poco espacio en disco (activada)"),
        "{mail}"
    );
    assert!(
        mail.contains("To: operador@granja.local, tecnico@granja.local"),
        "{mail}"
    );
    // The body names the value and the threshold (in MB).
    assert!(mail.contains("umbral 1000000000000 MB"), "{mail}");
    assert!(mail.contains("\"valor\""), "{mail}");

    let (status, body) = call(
        &app,
        "POST",
        "/api/dashboard/alarms/prueba/",
        Some(&app.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["correo"], "en cola");
    assert_eq!(body["webhook"], "no configurado");
    let mail = wait_mail(&maildir, "Prueba de notificaci", Duration::from_secs(20)).await;
    assert!(mail.contains("prueba"), "{mail}");
    let (_, h) = app.get("/healthz").await;
    assert!(
        h["notificaciones"]["correo"]["ultimo_envio"].is_string(),
        "{h}"
    );
    assert_eq!(h["notificaciones"]["correo"]["pendientes"], 0, "{h}");
}

#[test]
fn a_bad_smtp_address_stops_start_up_naming_the_key() {
    for (toml, key) in [
        (
            "smtp_host = \"mail\"\nsmtp_to = \"a@b.c\"\nsmtp_from = \"no es correo\"\n",
            "alarms.smtp_from",
        ),
        (
            "smtp_host = \"mail\"\nsmtp_from = \"a@b.c\"\n",
            "alarms.smtp_to",
        ),
        (
            "smtp_host = \"mail\"\nsmtp_from = \"a@b.c\"\nsmtp_to = \"a@b.c\"\nsmtp_user = \"u\"\n",
            "alarms.smtp_password",
        ),
        ("smtp_tls = \"ssl\"\n", "smtp_tls"),
    ] {
        let err = Appliance::try_start(Options {
            extra_toml: format!("\n[alarms]\n{toml}"),
            ..Options::default()
        })
        .err()
        .expect("must refuse");
        assert!(err.contains(key), "{key}: {err}");
    }
}
