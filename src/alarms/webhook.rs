//! The optional webhook (`alarms.webhook_url`): every alarm transition, and the test message,
//! is queued in the store and POSTed from there. A failed delivery is retried with a growing
//! pause (2, 4, 8 … seconds, at most [`MAX_BACKOFF_S`]), also after a restart, until it is
//! delivered; messages go out in order. Failures are shown in *Estado* and never touch ingest.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::Transition;
use super::rules::Severity;
use crate::config::alarms::{AlarmsConfig, WebhookFormat};
use crate::events::{Bus, Event};
use crate::store::Store;

/// Longest pause between two attempts, seconds.
pub const MAX_BACKOFF_S: i64 = 300;
/// How long one attempt may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Which outbound channel a queued message is for; each sender takes only its own, so a
/// failing webhook never holds back e-mail or the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Channel {
    Webhook,
    Mail,
}

/// A queued webhook or e-mail message, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    /// Set by the store when queued.
    pub id: u64,
    pub channel: Channel,
    /// Title line (ntfy's `Title`).
    pub title: String,
    /// One line for people (Telegram's `text`, ntfy's body).
    pub text: String,
    /// ntfy priority, 3 (default) to 5 (urgent).
    pub priority: u8,
    /// The JSON body of the `json` format.
    pub json: String,
    pub attempts: u32,
    /// Earliest time of the next attempt, µs since the epoch.
    pub next_us: i64,
}

/// What *Estado* shows about the webhook.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub pendientes: usize,
    pub ultimo_error: Option<String>,
    /// µs since the epoch of the last failure and of the last delivery.
    #[serde(skip)]
    pub error_us: Option<i64>,
    #[serde(skip)]
    pub sent_us: Option<i64>,
}

/// Where a sender delivers.
enum Target {
    Http { url: String, format: WebhookFormat },
    Mail(Box<super::mail::Mailer>),
}

/// Handle of a running sender (the webhook, or e-mail: [`Webhook::start_mail`]).
#[derive(Clone)]
pub struct Webhook {
    channel: Channel,
    store: Store,
    site: String,
    status: Arc<Mutex<Status>>,
    wake: Arc<Notify>,
}

fn priority(s: Severity) -> u8 {
    match s {
        Severity::Aviso => 3,
        Severity::Alarma => 4,
        Severity::Critica => 5,
    }
}

impl Webhook {
    /// Starts the sender when `alarms.webhook_url` is set; `None` otherwise.
    pub fn start(
        cfg: &AlarmsConfig,
        store: Store,
        site: String,
        tz: chrono_tz::Tz,
        bus: &Bus,
        stop: CancellationToken,
    ) -> Option<Webhook> {
        if cfg.webhook_url.is_empty() {
            return None;
        }
        let target = Target::Http {
            url: cfg.webhook_url.clone(),
            format: cfg.webhook_format,
        };
        Some(Self::spawn(
            Channel::Webhook,
            target,
            store,
            site,
            tz,
            bus,
            stop,
        ))
    }

    /// Starts the e-mail sender when `alarms.smtp_host` is set; `None` otherwise.
    pub fn start_mail(
        cfg: &AlarmsConfig,
        store: Store,
        site: String,
        tz: chrono_tz::Tz,
        bus: &Bus,
        stop: CancellationToken,
    ) -> Option<Webhook> {
        if cfg.smtp_host.is_empty() {
            return None;
        }
        let mailer = super::mail::Mailer::new(cfg);
        let target = Target::Mail(Box::new(mailer));
        Some(Self::spawn(
            Channel::Mail,
            target,
            store,
            site,
            tz,
            bus,
            stop,
        ))
    }

    fn spawn(
        channel: Channel,
        target: Target,
        store: Store,
        site: String,
        tz: chrono_tz::Tz,
        bus: &Bus,
        stop: CancellationToken,
    ) -> Webhook {
        let hook = Webhook {
            channel,
            store,
            site,
            status: Arc::new(Mutex::new(Status::default())),
            wake: Arc::new(Notify::new()),
        };
        let events = bus.subscribe();
        tokio::spawn(hook.clone().run(target, tz, events, stop));
        hook
    }

    /// The sender's state for *Estado*.
    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Queues a message and wakes the sender.
    pub async fn queue(&self, title: String, text: String, priority: u8, body: Value) {
        let n = Outgoing {
            id: 0,
            channel: self.channel,
            title,
            text,
            priority,
            json: body.to_string(),
            attempts: 0,
            next_us: 0,
        };
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.queue_notification(n)).await {
            Ok(Ok(())) => self.wake.notify_one(),
            Ok(Err(e)) => self.failed(format!("no se pudo poner en cola: {e}")),
            Err(e) => self.failed(e.to_string()),
        }
    }

    /// Queues the "send a test notification" message.
    pub async fn queue_test(&self, by: &str) {
        let text = format!(
            "Prueba de notificación de Biogestor ({}), pedida por {by}.",
            self.site
        );
        let body = json!({"text": text, "sitio": self.site, "evento": "prueba"});
        self.queue(format!("Biogestor {}: prueba", self.site), text, 3, body)
            .await;
    }

    async fn queue_transition(&self, t: &Transition, tz: chrono_tz::Tz) {
        let a = &t.alarm;
        let text = format!(
            "[{}] {} ({})",
            a.severity.name(),
            a.message,
            t.change.name()
        );
        let body = json!({
            "text": text,
            "sitio": self.site,
            "evento": t.change.name(),
            "alarma": a.json(tz),
        });
        let what = super::rules::RuleId::from_name(&a.rule).map_or(a.rule.as_str(), |r| r.title());
        let title = format!("Biogestor {}: {what} ({})", self.site, t.change.name());
        self.queue(title, text, priority(a.severity), body).await;
    }

    fn failed(&self, why: String) {
        tracing::warn!(error = %why, "alarm webhook");
        if let Ok(mut s) = self.status.lock() {
            s.ultimo_error = Some(why);
            s.error_us = Some(crate::sitetime::now_us());
        }
    }

    async fn run(
        self,
        target: Target,
        tz: chrono_tz::Tz,
        mut events: tokio::sync::broadcast::Receiver<Event>,
        stop: CancellationToken,
    ) {
        let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
            Ok(c) => c,
            Err(e) => return self.failed(format!("cliente HTTP: {e}")),
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                ev = events.recv() => match ev {
                    Ok(Event::Alarm(t)) => self.queue_transition(&t, tz).await,
                    Ok(_) | Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {}
                _ = self.wake.notified() => {}
            }
            self.deliver_due(&client, &target).await;
        }
    }

    /// Sends the queued messages that are due, oldest first; stops at the first failure so
    /// they arrive in order.
    async fn deliver_due(&self, client: &reqwest::Client, target: &Target) {
        let store = self.store.clone();
        let queued = match tokio::task::spawn_blocking(move || store.queued_notifications()).await {
            Ok(Ok(q)) => q,
            _ => return,
        };
        let queued: Vec<Outgoing> = queued
            .into_iter()
            .filter(|n| n.channel == self.channel)
            .collect();
        if let Ok(mut s) = self.status.lock() {
            s.pendientes = queued.len();
        }
        let now = crate::sitetime::now_us();
        for mut n in queued {
            if n.next_us > now {
                return;
            }
            let outcome = match target {
                Target::Http { url, format } => post(client, url, *format, &n).await,
                Target::Mail(m) => m.send(&n).await,
            };
            let delivered = outcome.is_ok();
            match outcome {
                Ok(()) => {
                    if let Ok(mut s) = self.status.lock() {
                        s.sent_us = Some(crate::sitetime::now_us());
                        s.pendientes = s.pendientes.saturating_sub(1);
                    }
                }
                Err(why) => {
                    n.attempts += 1;
                    let pause = 2i64.saturating_pow(n.attempts.min(16)).min(MAX_BACKOFF_S);
                    n.next_us = crate::sitetime::now_us() + pause * 1_000_000;
                    self.failed(format!("intento {}: {why}", n.attempts));
                }
            }
            let store = self.store.clone();
            let settled = n.clone();
            let _ =
                tokio::task::spawn_blocking(move || store.settle_notification(&settled, delivered))
                    .await;
            if !delivered {
                return;
            }
        }
    }
}

/// POSTs one message to the webhook.
async fn post(
    client: &reqwest::Client,
    url: &str,
    format: WebhookFormat,
    n: &Outgoing,
) -> Result<(), String> {
    let req = match format {
        WebhookFormat::Json => client
            .post(url)
            .header("content-type", "application/json")
            .body(n.json.clone()),
        WebhookFormat::Ntfy => client
            .post(url)
            .header("Title", n.title.clone())
            .header("Priority", n.priority.to_string())
            .header("Tags", "warning")
            .body(n.text.clone()),
    };
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("respuesta {}", r.status())),
        Err(e) => Err(format!("sin conexión: {e}")),
    }
}
