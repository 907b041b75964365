//! The evaluation of the rules: each (rule, subject) pair has a track that raises an alarm
//! when its value stays past the threshold for the rule's minimum duration, and clears it when
//! the value stays back inside by the hysteresis for as long. Pure logic, no I/O: the caller
//! persists and announces what [`Engine`] returns.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::rules::{Direction, RuleId, RuleSet};
use super::{Ack, Alarm};

/// Window of the daily temperature swing, µs, and the width of its buckets.
const SWING_WINDOW_US: i64 = 24 * 3600 * 1_000_000;
const SWING_BUCKET_US: i64 = 600 * 1_000_000;

/// Window over which refused MQTT connections are counted, µs.
const REFUSAL_WINDOW_US: i64 = 5 * 60 * 1_000_000;

/// What happened to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Raised,
    Acknowledged,
    Cleared,
}

impl Change {
    /// The name the WebSocket and MQTT messages use.
    pub fn name(self) -> &'static str {
        match self {
            Change::Raised => "activada",
            Change::Acknowledged => "reconocida",
            Change::Cleared => "despejada",
        }
    }
}

/// How long a value has been past (or back inside) its threshold.
#[derive(Debug, Default, Clone)]
struct Track {
    since_us: Option<i64>,
    samples: u32,
}

impl Track {
    /// Counts a sample that meets the condition; whether it has held long enough.
    fn hold(&mut self, t_us: i64, duration_s: u64) -> bool {
        let since = *self.since_us.get_or_insert(t_us);
        self.samples += 1;
        let long = t_us - since >= duration_s as i64 * 1_000_000;
        // One noisy sample neither raises nor clears: at least two unless no duration is set.
        long && (duration_s == 0 || self.samples >= 2)
    }

    fn reset(&mut self) {
        self.since_us = None;
        self.samples = 0;
    }
}

/// The rule state of the appliance.
pub struct Engine {
    pub(super) rules: RuleSet,
    tracks: HashMap<(RuleId, String), Track>,
    /// Alarms not cleared, by id.
    pub(super) open: BTreeMap<u64, Alarm>,
    next_id: u64,
    /// Last reading time of each topic seen since the start.
    last_seen: HashMap<String, i64>,
    /// Last reading with a gas channel (or the start).
    last_gas_us: i64,
    /// (bucket start, min, max) of the temperature over the last 24 hours.
    swing: VecDeque<(i64, f64, f64)>,
    /// (time, refused connections since the start) samples of the last window.
    refusals: VecDeque<(i64, u64)>,
    /// hPa per unit of `presion` when it is a gauge reading; `None` for an absolute sensor,
    /// whose few hPa of digester pressure cannot be told from the weather.
    gauge_hpa_per_unit: Option<f64>,
}

impl Engine {
    /// An engine with `rules`, the alarms still open in the store and the next free id.
    pub fn new(
        rules: RuleSet,
        open: Vec<Alarm>,
        next_id: u64,
        now_us: i64,
        gauge_hpa_per_unit: Option<f64>,
    ) -> Engine {
        Engine {
            rules,
            tracks: HashMap::new(),
            open: open.into_iter().map(|a| (a.id, a)).collect(),
            next_id,
            last_seen: HashMap::new(),
            last_gas_us: now_us,
            refusals: VecDeque::new(),
            swing: VecDeque::new(),
            gauge_hpa_per_unit,
        }
    }

    fn open_for(&self, rule: RuleId, subject: &str) -> Option<u64> {
        self.open
            .values()
            .find(|a| a.rule == rule.name() && a.subject == subject)
            .map(|a| a.id)
    }

    /// Evaluates one value of `rule` for `subject` at `t_us`.
    pub fn observe(
        &mut self,
        rule: RuleId,
        subject: &str,
        value: f64,
        t_us: i64,
    ) -> Vec<(Change, Alarm)> {
        let s = self.rules.get(rule);
        if !s.habilitada || !value.is_finite() {
            return Vec::new();
        }
        let (past, back) = match rule.direction() {
            Direction::Above => (value > s.umbral, value <= s.umbral - s.histeresis),
            Direction::Below => (value < s.umbral, value >= s.umbral + s.histeresis),
        };
        // The production rule's duration is a count of whole days, already in its value.
        let hold_s = match rule {
            RuleId::ProduccionBaja => 0,
            _ => s.duracion_s,
        };
        let key = (rule, subject.to_string());
        let open = self.open_for(rule, subject);
        let track = self.tracks.entry(key).or_default();
        match open {
            None if past => {
                if !track.hold(t_us, hold_s) {
                    return Vec::new();
                }
                track.reset();
                let id = self.next_id;
                self.next_id += 1;
                let alarm = Alarm {
                    id,
                    rule: rule.name().to_string(),
                    subject: subject.to_string(),
                    severity: s.severidad,
                    since_us: t_us,
                    value,
                    threshold: s.umbral,
                    message: message(rule, subject, value, s.umbral),
                    ack: None,
                    cleared_us: None,
                };
                self.open.insert(id, alarm.clone());
                vec![(Change::Raised, alarm)]
            }
            Some(id) if back => {
                if !track.hold(t_us, hold_s) {
                    return Vec::new();
                }
                track.reset();
                self.clear(id, t_us).into_iter().collect()
            }
            _ => {
                track.reset();
                Vec::new()
            }
        }
    }

    fn clear(&mut self, id: u64, t_us: i64) -> Option<(Change, Alarm)> {
        let mut alarm = self.open.remove(&id)?;
        alarm.cleared_us = Some(t_us);
        Some((Change::Cleared, alarm))
    }

    /// Evaluates an accepted reading.
    pub fn reading(&mut self, r: &crate::reading::Reading, t_us: i64) -> Vec<(Change, Alarm)> {
        use crate::reading::Channel;
        let mut out = Vec::new();
        self.last_seen.insert(r.source.clone(), t_us);
        out.extend(self.observe(RuleId::SensorSilencioso, &r.source, 0.0, t_us));
        if let Some(t) = r.get(Channel::Temperatura) {
            out.extend(self.observe(RuleId::TemperaturaBaja, "", t, t_us));
            out.extend(self.observe(RuleId::TemperaturaAlta, "", t, t_us));
            let swing = self.swing_with(t, t_us);
            out.extend(self.observe(RuleId::OscilacionTemperatura, "", swing, t_us));
        }
        if let Some(m) = r.get(Channel::Calidad) {
            out.extend(self.observe(RuleId::MetanoBajo, "", m, t_us));
        }
        if let (Some(p), Some(per_unit)) = (r.get(Channel::Presion), self.gauge_hpa_per_unit) {
            let hpa = p * per_unit;
            out.extend(self.observe(RuleId::PresionAlta, "", hpa, t_us));
            out.extend(self.observe(RuleId::PresionBaja, "", hpa, t_us));
        }
        let gas = [
            Channel::GasTotal,
            Channel::CaudalGas,
            Channel::GasFlow,
            Channel::CaudalGasLmin,
        ];
        if gas.iter().any(|c| r.get(*c).is_some()) {
            self.last_gas_us = t_us;
            out.extend(self.observe(RuleId::SinGas, "", 0.0, t_us));
        }
        out
    }

    /// Adds a temperature to the 24-hour window; the spread (max − min) of the window.
    fn swing_with(&mut self, t: f64, t_us: i64) -> f64 {
        let bucket = t_us - t_us.rem_euclid(SWING_BUCKET_US);
        match self.swing.back_mut() {
            Some((b, lo, hi)) if *b == bucket => {
                *lo = lo.min(t);
                *hi = hi.max(t);
            }
            _ => self.swing.push_back((bucket, t, t)),
        }
        while self
            .swing
            .front()
            .is_some_and(|(b, _, _)| *b <= t_us - SWING_WINDOW_US)
        {
            self.swing.pop_front();
        }
        let lo = self.swing.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
        let hi = self
            .swing
            .iter()
            .map(|x| x.2)
            .fold(f64::NEG_INFINITY, f64::max);
        hi - lo
    }

    /// Evaluates the rules that depend on time passing (silence).
    pub fn tick(&mut self, now_us: i64) -> Vec<(Change, Alarm)> {
        let mut out = Vec::new();
        let seen: Vec<(String, i64)> = self
            .last_seen
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (source, last) in seen {
            let minutes = (now_us - last) as f64 / 60e6;
            out.extend(self.observe(RuleId::SensorSilencioso, &source, minutes, now_us));
        }
        let hours = (now_us - self.last_gas_us) as f64 / 3600e6;
        out.extend(self.observe(RuleId::SinGas, "", hours, now_us));
        out
    }

    /// Evaluates the production rule for active `stage` (0: none) with its value (see
    /// [`super::production::share`]); alarms of other stages are cleared.
    pub fn production(
        &mut self,
        stage: u64,
        value: Option<f64>,
        t_us: i64,
    ) -> Vec<(Change, Alarm)> {
        let subject = stage.to_string();
        let stale: Vec<u64> = self
            .open
            .values()
            .filter(|a| a.rule == RuleId::ProduccionBaja.name() && a.subject != subject)
            .map(|a| a.id)
            .collect();
        let mut out: Vec<_> = stale
            .into_iter()
            .filter_map(|id| self.clear(id, t_us))
            .collect();
        if let (true, Some(v)) = (stage != 0, value) {
            out.extend(self.observe(RuleId::ProduccionBaja, &subject, v, t_us));
        }
        out
    }

    /// Evaluates a system condition.
    pub fn system(&mut self, e: crate::events::SystemEvent, t_us: i64) -> Vec<(Change, Alarm)> {
        use crate::events::SystemEvent;
        match e {
            SystemEvent::Writer { healthy } => {
                self.observe(RuleId::EscritorConFallas, "", flag(!healthy), t_us)
            }
            SystemEvent::Clock { synced } => {
                self.observe(RuleId::RelojNoSincronizado, "", flag(!synced), t_us)
            }
            SystemEvent::Disk { free_bytes } => {
                self.observe(RuleId::DiscoBajo, "", free_bytes as f64 / 1e6, t_us)
            }
            SystemEvent::MqttRefused { total } => {
                self.refusals.push_back((t_us, total));
                while self
                    .refusals
                    .front()
                    .is_some_and(|(t, _)| *t < t_us - REFUSAL_WINDOW_US)
                {
                    self.refusals.pop_front();
                }
                let first = self.refusals.front().map_or(total, |(_, n)| *n);
                self.observe(
                    RuleId::RechazosMqtt,
                    "",
                    total.saturating_sub(first) as f64,
                    t_us,
                )
            }
        }
    }

    /// Records an acknowledgement of open alarm `id`; `None` if it is not open.
    pub fn acknowledge(&mut self, id: u64, ack: Ack) -> Option<(Change, Alarm)> {
        let alarm = self.open.get_mut(&id)?;
        alarm.ack = Some(ack);
        Some((Change::Acknowledged, alarm.clone()))
    }

    /// Replaces the rules; alarms of rules now disabled are cleared.
    pub fn set_rules(&mut self, rules: RuleSet, now_us: i64) -> Vec<(Change, Alarm)> {
        self.rules = rules;
        self.tracks.clear();
        let disabled: Vec<u64> = self
            .open
            .values()
            .filter(|a| RuleId::from_name(&a.rule).is_some_and(|r| !self.rules.get(r).habilitada))
            .map(|a| a.id)
            .collect();
        disabled
            .into_iter()
            .filter_map(|id| self.clear(id, now_us))
            .collect()
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The alarm's text for people.
fn message(rule: RuleId, subject: &str, value: f64, threshold: f64) -> String {
    let unit = rule.unit();
    match rule {
        RuleId::SensorSilencioso => format!(
            "{}: «{subject}» lleva {value:.0} min sin enviar datos (umbral {threshold} min).",
            rule.title()
        ),
        RuleId::RelojNoSincronizado | RuleId::EscritorConFallas => format!("{}.", rule.title()),
        RuleId::ProduccionBaja => format!(
            "{}: la etapa {subject} produjo como mucho {value:.0} % del biogás esperado (Nm³) \
             en cada uno de los últimos días (umbral {threshold} %).",
            rule.title()
        ),
        _ => format!(
            "{}: {value:.1} {unit} (umbral {threshold} {unit}).",
            rule.title()
        ),
    }
}

#[cfg(test)]
mod tests;
