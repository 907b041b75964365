//! `[alarms]`: where alarm notifications go besides the web interface, the live feed and the
//! embedded broker (which need no configuration).

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// How the webhook's body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// JSON with the alarm and a `text` line (a Telegram bot's `sendMessage` reads `text`).
    Json,
    /// The text as the body, with ntfy's `Title`, `Priority` and `Tags` headers.
    Ntfy,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a relay on the local network only); port 25 by default.
    None,
    /// Plain connection upgraded with STARTTLS (required); port 587 by default.
    Starttls,
    /// TLS from the first byte (SMTPS); port 465 by default.
    Tls,
}

/// `[alarms]` keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmsConfig {
    /// URL every alarm transition is POSTed to; empty: no webhook.
    pub webhook_url: String,
    pub webhook_format: WebhookFormat,
    /// SMTP server alarm e-mail goes through; empty: no e-mail.
    pub smtp_host: String,
    /// 0: the port of `smtp_tls` (25, 587 or 465).
    pub smtp_port: u16,
    /// Login; empty: none.
    pub smtp_user: String,
    pub smtp_password: String,
    pub smtp_from: String,
    /// Recipients, separated by commas.
    pub smtp_to: String,
    pub smtp_tls: SmtpTls,
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        Self {
            webhook_url: String::new(),
            webhook_format: WebhookFormat::Json,
            smtp_host: String::new(),
            smtp_port: 0,
            smtp_user: String::new(),
            smtp_password: String::new(),
            smtp_from: String::new(),
            smtp_to: String::new(),
            smtp_tls: SmtpTls::Starttls,
        }
    }
}

impl AlarmsConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_webhook()?;
        self.validate_smtp()
    }

    /// The recipients of `smtp_to`.
    pub fn smtp_recipients(&self) -> impl Iterator<Item = &str> {
        self.smtp_to
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// The SMTP port: `smtp_port`, or the usual one of `smtp_tls`.
    pub fn smtp_port(&self) -> u16 {
        match (self.smtp_port, self.smtp_tls) {
            (0, SmtpTls::None) => 25,
            (0, SmtpTls::Starttls) => 587,
            (0, SmtpTls::Tls) => 465,
            (p, _) => p,
        }
    }

    fn validate_smtp(&self) -> Result<(), ConfigError> {
        if self.smtp_host.is_empty() {
            return Ok(());
        }
        let bad = |key: &str, value: &str, allowed: &str| ConfigError::Invalid {
            key: format!("alarms.{key}"),
            value: value.to_string(),
            allowed: allowed.into(),
        };
        if self
            .smtp_host
            .contains(|c: char| c.is_whitespace() || c == '/')
        {
            return Err(bad("smtp_host", &self.smtp_host, "a host name or address"));
        }
        if self.smtp_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(bad(
                "smtp_from",
                &self.smtp_from,
                "an e-mail address (required with smtp_host)",
            ));
        }
        let mut to = self.smtp_recipients().peekable();
        if to.peek().is_none() || !to.all(|a| a.parse::<lettre::message::Mailbox>().is_ok()) {
            return Err(bad(
                "smtp_to",
                &self.smtp_to,
                "one or more e-mail addresses separated by commas (required with smtp_host)",
            ));
        }
        if self.smtp_user.is_empty() != self.smtp_password.is_empty() {
            return Err(bad(
                "smtp_password",
                "(hidden)",
                "set together with smtp_user (both or neither)",
            ));
        }
        Ok(())
    }

    fn validate_webhook(&self) -> Result<(), ConfigError> {
        let url = &self.webhook_url;
        if url.is_empty() {
            return Ok(());
        }
        let ok = reqwest::Url::parse(url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !ok {
            return Err(ConfigError::Invalid {
                key: "alarms.webhook_url".into(),
                value: url.clone(),
                allowed: "empty (no webhook) or an http:// or https:// URL".into(),
            });
        }
        Ok(())
    }
}
