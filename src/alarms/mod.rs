//! Alarms with digester presets: the engine evaluates every accepted reading and system
//! condition from the event bus against the site's rules ([`rules`]), keeps each alarm's
//! lifecycle (active → acknowledged → cleared) in the store, and announces every transition on
//! the bus (the live feed shows it). Ingest never waits for it: the engine is one more bus
//! subscriber.

pub mod edit;
pub mod engine;
pub mod mail;
pub mod mqtt;
pub mod production;
pub mod rules;
pub mod system;
pub mod webhook;

use std::sync::Arc;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::events::{Bus, Event};
use crate::sitetime::rfc3339;
use crate::store::{Store, StoreError};
use engine::{Change, Engine};
use rules::{RuleId, RuleSet, Severity};

/// How often time-dependent rules (silence) are evaluated.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Cleared alarms the API lists, newest first.
const HISTORY_LEN: usize = 200;

/// Who acknowledged an alarm, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub by: String,
    pub at_us: i64,
    pub comment: String,
}

/// One alarm, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    pub id: u64,
    /// The rule's API name.
    pub rule: String,
    /// What the rule watched (the topic of a silent sensor), empty for site-wide rules.
    pub subject: String,
    pub severity: Severity,
    /// When it was raised, µs since the epoch.
    pub since_us: i64,
    /// The value that raised it, in the rule's unit.
    pub value: f64,
    pub threshold: f64,
    pub message: String,
    pub ack: Option<Ack>,
    pub cleared_us: Option<i64>,
}

impl Alarm {
    /// `activa`, `reconocida` or `despejada`.
    pub fn state(&self) -> &'static str {
        match (&self.ack, self.cleared_us) {
            (_, Some(_)) => "despejada",
            (Some(_), None) => "reconocida",
            (None, None) => "activa",
        }
    }

    /// The alarm as the API shows it.
    pub fn json(&self, tz: Tz) -> Value {
        let rule = RuleId::from_name(&self.rule);
        json!({
            "id": self.id,
            "regla": self.rule,
            "titulo": rule.map(|r| r.title()),
            "sujeto": self.subject,
            "severidad": self.severity.name(),
            "estado": self.state(),
            "desde": rfc3339(tz, self.since_us),
            "valor": (self.value * 100.0).round() / 100.0,
            "umbral": self.threshold,
            "unidad": rule.map(|r| r.unit()),
            "mensaje": self.message,
            "reconocida": self.ack.as_ref().map(|a| json!({
                "por": a.by,
                "en": rfc3339(tz, a.at_us),
                "comentario": a.comment,
            })),
            "despejada": self.cleared_us.map(|us| rfc3339(tz, us)),
        })
    }
}

/// An alarm transition, announced on the bus.
#[derive(Debug, Clone)]
pub struct Transition {
    pub change: Change,
    pub alarm: Alarm,
}

impl Transition {
    /// `{"type":"alarm","evento":..., <alarm>}` for the live feed.
    pub fn message(&self, tz: Tz) -> Value {
        let mut v = self.alarm.json(tz);
        if let Value::Object(m) = &mut v {
            m.insert("type".into(), Value::from("alarm"));
            m.insert("evento".into(), Value::from(self.change.name()));
        }
        v
    }
}

/// Why an alarm operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    #[error("{0}")]
    Invalid(String),
    #[error("La alarma no existe o ya se despejó.")]
    NotOpen,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Cheap-to-clone handle of the running alarm engine.
#[derive(Clone)]
pub struct Alarms {
    engine: Arc<Mutex<Engine>>,
    store: Store,
    bus: Bus,
    production: Arc<production::ProductionSource>,
}

impl Alarms {
    /// Loads the rules and open alarms from the store and starts evaluating the bus until
    /// `stop`. `gauge_hpa_per_unit`: see [`Engine::new`].
    pub fn start(
        store: Store,
        bus: Bus,
        gauge_hpa_per_unit: Option<f64>,
        production: production::ProductionSource,
        stop: CancellationToken,
    ) -> Result<Alarms, StoreError> {
        let rules = store.alarm_rules()?.unwrap_or_default();
        let all = store.alarms()?;
        let next_id = all.iter().map(|a| a.id).max().unwrap_or(0) + 1;
        let open = all.into_iter().filter(|a| a.cleared_us.is_none()).collect();
        let now = crate::sitetime::now_us();
        let engine = Engine::new(rules, open, next_id, now, gauge_hpa_per_unit);
        let alarms = Alarms {
            engine: Arc::new(Mutex::new(engine)),
            store,
            bus,
            production: Arc::new(production),
        };
        let rx = alarms.bus.subscribe();
        tokio::spawn(alarms.clone().run(rx, stop));
        Ok(alarms)
    }

    async fn run(self, mut rx: tokio::sync::broadcast::Receiver<Event>, stop: CancellationToken) {
        // Days may have closed while the appliance was off.
        self.check_production().await;
        let mut tick = tokio::time::interval(TICK);
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {
                    let mut e = self.engine.lock().await;
                    let changes = e.tick(crate::sitetime::now_us());
                    self.commit(changes).await;
                    continue;
                }
                ev = rx.recv() => match ev {
                    Ok(ev) => ev,
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "alarms: fell behind the event bus");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
            };
            if let Event::DayClosed { .. } | Event::StageChanged { .. } = event {
                self.check_production().await;
                continue;
            }
            let mut e = self.engine.lock().await;
            let changes = match &event {
                Event::Reading(a) => e.reading(&a.reading, a.ts_us),
                Event::System(s) => e.system(*s, crate::sitetime::now_us()),
                _ => continue,
            };
            self.commit(changes).await;
        }
    }

    /// Evaluates the production rule on the active stage (see [`production`]).
    async fn check_production(&self) {
        let settings = self.engine.lock().await.rules.get(RuleId::ProduccionBaja);
        if !settings.habilitada {
            return;
        }
        let days = (settings.duracion_s as f64 / 86_400.0).round().max(1.0) as u32;
        let (store, src) = (self.store.clone(), self.production.clone());
        let found =
            match tokio::task::spawn_blocking(move || production::evaluate(&store, &src, days))
                .await
            {
                Ok(found) => found,
                Err(e) => {
                    tracing::error!(error = %e, "alarms: production check failed");
                    return;
                }
            };
        let (stage, value) = found.unwrap_or((0, None));
        let mut e = self.engine.lock().await;
        let changes = e.production(stage, value, crate::sitetime::now_us());
        self.commit(changes).await;
    }

    /// Stores and announces transitions (called with the engine locked, so stored states
    /// follow each other in order). A store failure is logged; the alarm still shows.
    async fn commit(&self, changes: Vec<(Change, Alarm)>) {
        for (change, alarm) in changes {
            let store = self.store.clone();
            let a = alarm.clone();
            match tokio::task::spawn_blocking(move || store.put_alarm(&a)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "alarms: cannot store an alarm"),
                Err(e) => tracing::error!(error = %e, "alarms: store task failed"),
            }
            tracing::info!(id = alarm.id, rule = %alarm.rule, change = change.name(), "alarm");
            self.bus
                .publish(Event::Alarm(Arc::new(Transition { change, alarm })));
        }
    }

    /// The alarms not cleared, most severe first, then newest.
    pub async fn open(&self) -> Vec<Alarm> {
        let mut open: Vec<Alarm> = self.engine.lock().await.open.values().cloned().collect();
        open.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(b.since_us.cmp(&a.since_us))
        });
        open
    }

    /// The alarms not cleared (see [`Alarms::open`]) and the latest cleared ones (newest
    /// first).
    pub async fn list(&self) -> Result<(Vec<Alarm>, Vec<Alarm>), AlarmError> {
        let open = self.open().await;
        let store = self.store.clone();
        let all = tokio::task::spawn_blocking(move || store.alarms()).await??;
        let history = all
            .into_iter()
            .rev()
            .filter(|a| a.cleared_us.is_some())
            .take(HISTORY_LEN)
            .collect();
        Ok((open, history))
    }

    /// Acknowledges open alarm `id` on behalf of `by`.
    pub async fn acknowledge(
        &self,
        id: u64,
        by: &str,
        comment: String,
    ) -> Result<Alarm, AlarmError> {
        let mut engine = self.engine.lock().await;
        let ack = Ack {
            by: by.to_string(),
            at_us: crate::sitetime::now_us(),
            comment,
        };
        let (change, alarm) = engine.acknowledge(id, ack).ok_or(AlarmError::NotOpen)?;
        self.commit(vec![(change, alarm.clone())]).await;
        Ok(alarm)
    }

    /// The site's rules.
    pub async fn rules(&self) -> RuleSet {
        self.engine.lock().await.rules.clone()
    }

    /// Applies an edit of the rules (see [`edit::apply`]), stores and returns the result.
    pub async fn update_rules(&self, body: &Value) -> Result<RuleSet, AlarmError> {
        let mut engine = self.engine.lock().await;
        let rules = edit::apply(&engine.rules, body)?;
        let store = self.store.clone();
        let saved = rules.clone();
        tokio::task::spawn_blocking(move || store.save_alarm_rules(&saved)).await??;
        let changes = engine.set_rules(rules.clone(), crate::sitetime::now_us());
        self.commit(changes).await;
        drop(engine);
        self.check_production().await;
        Ok(rules)
    }
}
