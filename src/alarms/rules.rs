//! The alarm rules, their digester presets and the site's thresholds (stored in the store and
//! edited through the API). Every rule works with no configuration: a fresh install uses the
//! defaults of the `tubular` preset. README.md gives the source or reasoning of each default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How serious an alarm is, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    Aviso,
    Alarma,
    Critica,
}

impl Severity {
    /// The API's name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Aviso => "aviso",
            Severity::Alarma => "alarma",
            Severity::Critica => "crítica",
        }
    }

    /// Parses an API name (`critica` without the accent is accepted too).
    pub fn from_name(s: &str) -> Option<Severity> {
        match s {
            "aviso" => Some(Severity::Aviso),
            "alarma" => Some(Severity::Alarma),
            "crítica" | "critica" => Some(Severity::Critica),
            _ => None,
        }
    }
}

/// The kind of digester the thresholds are preset for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// Unheated tubular (bag) digester, following the weather: the usual small-farm digester.
    Tubular,
    /// Heated mesophilic digester (dome or tank kept near 35 °C).
    Mesofilico,
}

impl Preset {
    pub const ALL: [Preset; 2] = [Preset::Tubular, Preset::Mesofilico];

    /// The API's name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Tubular => "tubular",
            Preset::Mesofilico => "mesofilico",
        }
    }

    /// Parses an API name.
    pub fn from_name(s: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// Which way a value must go to raise the alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Above,
    Below,
}

/// Every rule the engine evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleId {
    TemperaturaBaja,
    TemperaturaAlta,
    OscilacionTemperatura,
    MetanoBajo,
    PresionAlta,
    PresionBaja,
    SensorSilencioso,
    SinGas,
    DiscoBajo,
    RelojNoSincronizado,
    EscritorConFallas,
    RechazosMqtt,
    ProduccionBaja,
}

impl RuleId {
    pub const ALL: [RuleId; 13] = [
        RuleId::TemperaturaBaja,
        RuleId::TemperaturaAlta,
        RuleId::OscilacionTemperatura,
        RuleId::MetanoBajo,
        RuleId::PresionAlta,
        RuleId::PresionBaja,
        RuleId::SensorSilencioso,
        RuleId::SinGas,
        RuleId::DiscoBajo,
        RuleId::RelojNoSincronizado,
        RuleId::EscritorConFallas,
        RuleId::RechazosMqtt,
        RuleId::ProduccionBaja,
    ];

    /// The API's name (`regla`).
    pub fn name(self) -> &'static str {
        match self {
            RuleId::TemperaturaBaja => "temperatura_baja",
            RuleId::TemperaturaAlta => "temperatura_alta",
            RuleId::OscilacionTemperatura => "oscilacion_temperatura",
            RuleId::MetanoBajo => "metano_bajo",
            RuleId::PresionAlta => "presion_alta",
            RuleId::PresionBaja => "presion_baja",
            RuleId::SensorSilencioso => "sensor_silencioso",
            RuleId::SinGas => "sin_datos_gas",
            RuleId::DiscoBajo => "disco_bajo",
            RuleId::RelojNoSincronizado => "reloj_no_sincronizado",
            RuleId::EscritorConFallas => "escritor_con_fallas",
            RuleId::RechazosMqtt => "rechazos_mqtt",
            RuleId::ProduccionBaja => "produccion_baja",
        }
    }

    /// Parses an API name.
    pub fn from_name(s: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.name() == s)
    }

    /// What the rule watches, for people.
    pub fn title(self) -> &'static str {
        match self {
            RuleId::TemperaturaBaja => "Temperatura del digestor bajo la banda",
            RuleId::TemperaturaAlta => "Temperatura del digestor sobre la banda",
            RuleId::OscilacionTemperatura => "Oscilación diaria de temperatura",
            RuleId::MetanoBajo => "Metano bajo",
            RuleId::PresionAlta => "Presión del gas alta",
            RuleId::PresionBaja => "Presión del gas baja",
            RuleId::SensorSilencioso => "Sensor sin datos",
            RuleId::SinGas => "Sin datos de gas",
            RuleId::DiscoBajo => "Poco espacio en disco",
            RuleId::RelojNoSincronizado => "Reloj no sincronizado",
            RuleId::EscritorConFallas => "Fallas al guardar datos",
            RuleId::RechazosMqtt => "Conexiones MQTT rechazadas",
            RuleId::ProduccionBaja => "Producción bajo la curva esperada",
        }
    }

    /// Unit of the threshold and of the value.
    pub fn unit(self) -> &'static str {
        match self {
            RuleId::TemperaturaBaja | RuleId::TemperaturaAlta | RuleId::OscilacionTemperatura => {
                "°C"
            }
            RuleId::MetanoBajo => "%",
            RuleId::ProduccionBaja => "% de lo esperado",
            RuleId::PresionAlta | RuleId::PresionBaja => "hPa",
            RuleId::SensorSilencioso => "min",
            RuleId::SinGas => "h",
            RuleId::DiscoBajo => "MB",
            RuleId::RelojNoSincronizado | RuleId::EscritorConFallas => "",
            RuleId::RechazosMqtt => "rechazos en 5 min",
        }
    }

    /// Which way the value goes to raise the alarm.
    pub fn direction(self) -> Direction {
        match self {
            RuleId::TemperaturaBaja
            | RuleId::MetanoBajo
            | RuleId::PresionBaja
            | RuleId::DiscoBajo
            | RuleId::ProduccionBaja => Direction::Below,
            _ => Direction::Above,
        }
    }

    /// Whether the threshold depends on the digester preset.
    pub fn preset_dependent(self) -> bool {
        matches!(
            self,
            RuleId::TemperaturaBaja
                | RuleId::TemperaturaAlta
                | RuleId::PresionAlta
                | RuleId::PresionBaja
        )
    }

    /// The default settings for `preset` (see the table in README.md).
    pub fn default_for(self, preset: Preset) -> RuleSettings {
        let tubular = preset == Preset::Tubular;
        let (severidad, umbral, duracion_s, histeresis) = match self {
            RuleId::TemperaturaBaja => (
                Severity::Alarma,
                if tubular { 15.0 } else { 30.0 },
                600,
                1.0,
            ),
            RuleId::TemperaturaAlta => (Severity::Alarma, 40.0, 600, 1.0),
            RuleId::OscilacionTemperatura => (Severity::Aviso, 3.0, 0, 0.5),
            RuleId::MetanoBajo => (Severity::Alarma, 45.0, 1800, 2.0),
            RuleId::PresionAlta => (
                Severity::Critica,
                if tubular { 30.0 } else { 60.0 },
                60,
                3.0,
            ),
            RuleId::PresionBaja => (Severity::Aviso, 1.0, 1800, 1.0),
            RuleId::SensorSilencioso => (Severity::Alarma, 30.0, 0, 0.0),
            RuleId::SinGas => (Severity::Alarma, 24.0, 0, 0.0),
            RuleId::DiscoBajo => (Severity::Critica, 200.0, 60, 50.0),
            RuleId::RelojNoSincronizado => (Severity::Aviso, 0.5, 600, 0.0),
            RuleId::EscritorConFallas => (Severity::Critica, 0.5, 60, 0.0),
            RuleId::RechazosMqtt => (Severity::Aviso, 20.0, 0, 10.0),
            // The duration counts whole days (3), see `alarms::production`.
            RuleId::ProduccionBaja => (Severity::Aviso, 50.0, 3 * 86_400, 10.0),
        };
        RuleSettings {
            habilitada: true,
            severidad,
            umbral,
            duracion_s,
            histeresis,
        }
    }
}

/// The settings of one rule at this site.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RuleSettings {
    pub habilitada: bool,
    pub severidad: Severity,
    /// The threshold, in the rule's unit.
    pub umbral: f64,
    /// How long the value must stay past the threshold to raise, and back inside (by the
    /// hysteresis) to clear, seconds.
    pub duracion_s: u64,
    /// How far back inside the threshold the value must come to clear, in the rule's unit.
    pub histeresis: f64,
}

/// The site's preset and thresholds, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSet {
    pub preset: Preset,
    /// By rule name; a rule missing here (added by a later release) uses its default.
    pub rules: BTreeMap<String, RuleSettings>,
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet::for_preset(Preset::Tubular)
    }
}

impl RuleSet {
    /// Every rule at the defaults of `preset`.
    pub fn for_preset(preset: Preset) -> RuleSet {
        RuleSet {
            preset,
            rules: RuleId::ALL
                .into_iter()
                .map(|r| (r.name().to_string(), r.default_for(preset)))
                .collect(),
        }
    }

    /// The settings of `rule`.
    pub fn get(&self, rule: RuleId) -> RuleSettings {
        self.rules
            .get(rule.name())
            .copied()
            .unwrap_or_else(|| rule.default_for(self.preset))
    }
}

/// Longest minimum duration accepted, seconds (a week).
pub const MAX_DURATION_S: u64 = 7 * 24 * 3600;
