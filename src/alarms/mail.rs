//! Alarm e-mail over SMTP (`alarms.smtp_host`): each queued message (see [`super::webhook`],
//! which queues, retries and reports failures for both channels) becomes one plain-text
//! e-mail. TLS through rustls with ring; no OpenSSL.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::webhook::Outgoing;
use crate::config::alarms::{AlarmsConfig, SmtpTls};

/// How long one delivery may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The SMTP connection settings and addresses.
pub struct Mailer {
    transport: Result<AsyncSmtpTransport<Tokio1Executor>, String>,
    from: Option<Mailbox>,
    to: Vec<Mailbox>,
}

impl Mailer {
    /// Prepares the transport from validated configuration (see
    /// [`AlarmsConfig::validate`]); a transport that cannot be built is reported on each send.
    pub fn new(cfg: &AlarmsConfig) -> Mailer {
        let host = cfg.smtp_host.as_str();
        let builder = match cfg.smtp_tls {
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        };
        let transport = builder
            .map(|b| {
                let b = b.port(cfg.smtp_port()).timeout(Some(TIMEOUT));
                if cfg.smtp_user.is_empty() {
                    b.build()
                } else {
                    b.credentials(Credentials::new(
                        cfg.smtp_user.clone(),
                        cfg.smtp_password.clone(),
                    ))
                    .build()
                }
            })
            .map_err(|e| format!("servidor SMTP: {e}"));
        Mailer {
            transport,
            from: cfg.smtp_from.parse().ok(),
            to: cfg
                .smtp_recipients()
                .filter_map(|a| a.parse().ok())
                .collect(),
        }
    }

    /// Sends `n` as an e-mail: its title as the subject, its text and the alarm's details as
    /// the body.
    pub async fn send(&self, n: &Outgoing) -> Result<(), String> {
        let transport = self.transport.as_ref().map_err(Clone::clone)?;
        let from = self.from.clone().ok_or("remitente no válido")?;
        let mut b = Message::builder()
            .from(from)
            .subject(n.title.clone())
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            b = b.to(to.clone());
        }
        let details = serde_json::from_str::<serde_json::Value>(&n.json)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| n.json.clone());
        let body = format!("{}\n\nDetalle:\n{details}\n", n.text);
        let msg = b.body(body).map_err(|e| format!("mensaje: {e}"))?;
        transport
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}
