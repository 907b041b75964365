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

/// `[alarms]` keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmsConfig {
    /// URL every alarm transition is POSTed to; empty: no webhook.
    pub webhook_url: String,
    pub webhook_format: WebhookFormat,
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        Self {
            webhook_url: String::new(),
            webhook_format: WebhookFormat::Json,
        }
    }
}

impl AlarmsConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
