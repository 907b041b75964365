//! Per-material parameters of the expected-production model and their literature defaults.
//!
//! Source keys used below refer to the source list of the project's domain notes:
//! - **I**: IPCC 2006 Vol. 4 Ch. 10 defaults, tabulated in Wolf et al. 2017, Carbon Balance
//!   Manag. 12:16, Table 2.
//! - **F**: FNR *Guide to Biogas* 2012 (via energypedia "Substrate Types and Management").
//! - **A**: ASABE D384.2 values as quoted in Trans. ASABE p. 1316.
//! - **L**: Luna-delRisco et al. 2011, Agron. Res. 9:331.
//! - **S**: Sun, Cao & Liu 2015, Appl. Biochem. Biotechnol., doi:10.1007/s12010-015-1792-y.
//! - **B**: Bouallagui et al. 2005, Process Biochem. 40:989.
//! - **G**: GTZ Schriftenreihe 97, after Maramba 1978.
//! - **N**: GTZ/GATE manual (rule of thumb: 1 kg fresh cattle dung ≈ 40 L biogas).
//!
//! The Gompertz kinetics (lag and rate) of every default are **placeholders, unverified**: no
//! fitted λ/Rm values were confirmed against a primary source. They sit inside the ranges noted
//! in the domain notes (manures Rm/A ≈ 0.04–0.10 d⁻¹ with λ 0–3 d; food/vegetable waste
//! Rm/A ≈ 0.1–0.3 d⁻¹ with λ 0–2 d) and must be replaced once fitted values are available.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Literature parameters of one substrate ("material") that the expected-production model needs.
///
/// Exists so that each material type loaded into the digester has its own yield and kinetics,
/// with the published source kept beside the numbers; operators may override any of them in
/// `config.toml`, which is why unknown fields are rejected and [`MaterialParams::validate`]
/// exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaterialParams {
    /// Volatile solids as a fraction of total solids (kg VS / kg TS), in (0, 1].
    pub vs_ts: f64,
    /// Methane potential B0 in m³ CH₄ per kg VS, in (0, 1].
    pub b0_m3_ch4_per_kg_vs: f64,
    /// Methane share of the biogas (m³ CH₄ / m³ biogas), in (0, 1].
    pub methane_fraction: f64,
    /// Gompertz lag time λ at 35 °C, in days, in [0, 60].
    pub lag_days: f64,
    /// Gompertz rate k = Rm/A at 35 °C, in d⁻¹, in (0, 5].
    pub k_per_day: f64,
    /// Published source(s) of these numbers, with unverified values labelled as such.
    pub source: String,
}

/// Checks that `value` lies in the given range and builds a message naming `field` otherwise.
///
/// Written with positive comparisons so that NaN always fails.
fn check_range(
    field: &str,
    value: f64,
    min: f64,
    min_inclusive: bool,
    max: f64,
) -> Result<(), String> {
    let above_min = if min_inclusive {
        value >= min
    } else {
        value > min
    };
    if above_min && value <= max {
        Ok(())
    } else {
        let open = if min_inclusive { '[' } else { '(' };
        Err(format!(
            "{field} must be in {open}{min}, {max}], got {value}"
        ))
    }
}

impl MaterialParams {
    /// Checks every numeric parameter against its plausible range.
    ///
    /// Exists because operators can override parameters in `config.toml`; a typo there (a
    /// percentage written where a fraction is expected, a NaN) must be reported with the field
    /// name instead of silently producing absurd expectations.
    pub fn validate(&self) -> Result<(), String> {
        check_range("vs_ts", self.vs_ts, 0.0, false, 1.0)?;
        check_range(
            "b0_m3_ch4_per_kg_vs",
            self.b0_m3_ch4_per_kg_vs,
            0.0,
            false,
            1.0,
        )?;
        check_range("methane_fraction", self.methane_fraction, 0.0, false, 1.0)?;
        check_range("lag_days", self.lag_days, 0.0, true, 60.0)?;
        check_range("k_per_day", self.k_per_day, 0.0, false, 5.0)?;
        Ok(())
    }
}

/// Regional preset of the built-in material defaults (`site.region`).
///
/// Exists because IPCC 2006 gives different *ultimate* methane capacities (B0) for the same
/// animal in different regions (herd diet and genetics), and a practical default cannot
/// exceed the ultimate value of the herd it describes. The table of defaults and sources is in
/// `docs/model-defaults.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// Latin America (IPCC dairy cattle B0 0.13, other cattle 0.10 m³ CH₄/kg VS).
    #[default]
    LatinAmerica,
    /// Developed regions: US/Canada, Europe, Oceania (IPCC dairy cattle B0 0.24).
    Developed,
}

impl Region {
    /// The configuration name of the preset.
    pub fn name(self) -> &'static str {
        match self {
            Region::LatinAmerica => "latin_america",
            Region::Developed => "developed",
        }
    }

    /// The preset called `name` in the configuration.
    pub fn from_name(name: &str) -> Option<Region> {
        match name {
            "latin_america" => Some(Region::LatinAmerica),
            "developed" => Some(Region::Developed),
            _ => None,
        }
    }
}

/// Practical bovine B0 for Latin America, m³ CH₄/kg VS (derived): IPCC's ultimate 0.13 for
/// Latin-American dairy cattle × FNR's practical-to-ultimate ratio for cattle in developed
/// regions (0.19 / 0.24 = 0.79) = 0.103, rounded to 0.10; equal to IPCC's 0.10 for
/// Latin-American "other" cattle. Below the 0.13 ultimate, as a practical value must be.
pub const BOVINE_B0_LATAM: f64 = 0.10;

/// Practical bovine B0 for developed regions, m³ CH₄/kg VS: FNR Guide to Biogas 2012
/// (derived), below IPCC's ultimate 0.24 for dairy cattle of those regions.
pub const BOVINE_B0_DEVELOPED: f64 = 0.19;

/// Built-in parameters of the Latin-American preset (the default `site.region`); see
/// [`default_materials_for`].
pub fn default_materials() -> BTreeMap<String, MaterialParams> {
    default_materials_for(Region::default())
}

/// Built-in parameters for the material types a farm typically loads, keyed by material name,
/// for the site's regional preset.
///
/// Exists so the model works out of the box and every default carries its source. B0 uses
/// *practical* values (achievable in real digesters), never above IPCC's *ultimate*
/// (maximum-capacity) value for the same herd:
///
/// - **bovino**: [`BOVINE_B0_LATAM`] = 0.10 in Latin America (IPCC ultimate 0.13, I) and
///   [`BOVINE_B0_DEVELOPED`] = 0.19 in developed regions (FNR practical, derived F; IPCC
///   ultimate 0.24, I; a 36 °C BMP test gave 0.238, L). The previous single default 0.19
///   exceeded the Latin-American ultimate.
/// - **porcino**: B0 = 0.35 (practical, derived F) rather than IPCC's ultimate 0.45–0.48 (I)
///   or the 0.488 BMP (S); with F's 6 % TS and VS/TS 0.80 it reproduces F's 28 m³/t. The
///   IPCC value for Latin-American swine was not read (unverified) and may be lower.
/// - **avicola**: B0 = 0.37 (practical, derived F); IPCC poultry values are unverified.
/// - **vegetal**: B0 = 0.42 (practical, two-stage reactor, B).
///
/// All lag and rate values are placeholders, unverified (see the module documentation).
pub fn default_materials_for(region: Region) -> BTreeMap<String, MaterialParams> {
    let (bovine_b0, bovine_source) = match region {
        Region::LatinAmerica => (
            BOVINE_B0_LATAM,
            "VS/TS: ASABE D384.2 (Trans. ASABE p. 1316); B0 0.10 practical, derived: IPCC 2006 \
             V4 Ch10 (Wolf et al. 2017 Table 2) ultimate 0.13 for Latin-America dairy cattle x \
             FNR 2012 practical/ultimate 0.19/0.24, = IPCC 0.10 Latin-America other cattle; \
             CH4: FNR 2012; lag and k: placeholder, unverified",
        ),
        Region::Developed => (
            BOVINE_B0_DEVELOPED,
            "VS/TS: ASABE D384.2 (Trans. ASABE p. 1316); B0 0.19: FNR Guide to Biogas 2012, \
             practical (derived), below IPCC 2006 V4 Ch10 (Wolf et al. 2017 Table 2) ultimate \
             0.24 for dairy cattle of developed regions; CH4: FNR 2012; lag and k: \
             placeholder, unverified",
        ),
    };
    let mut m = BTreeMap::new();
    m.insert(
        "bovino".to_string(),
        MaterialParams {
            // ASABE D384.2 gives 0.84–0.87 (A); FNR gives 0.80 (F). Lower end of A.
            vs_ts: 0.84,
            // Practical, never above IPCC's ultimate for the region's herd (I, F): see
            // BOVINE_B0_LATAM and BOVINE_B0_DEVELOPED.
            b0_m3_ch4_per_kg_vs: bovine_b0,
            // FNR 60 % (F); GTZ 65 % (G); 65.6 % in a Colombian field digester (C).
            methane_fraction: 0.60,
            // Placeholder, unverified: manure range λ 0–3 d.
            lag_days: 2.0,
            // Placeholder, unverified: manure range Rm/A 0.04–0.10 d⁻¹; cattle manure is slow.
            k_per_day: 0.06,
            source: bovine_source.to_string(),
        },
    );
    m.insert(
        "porcino".to_string(),
        MaterialParams {
            // FNR (F).
            vs_ts: 0.80,
            // Practical, derived from FNR (F); IPCC ultimate 0.45–0.48 (I); BMP 0.488 (S).
            b0_m3_ch4_per_kg_vs: 0.35,
            // FNR 60 % (F); GTZ 65–70 % (G).
            methane_fraction: 0.60,
            // Placeholder, unverified: manure range λ 0–3 d.
            lag_days: 1.0,
            // Placeholder, unverified: pig manure digests faster than buffalo manure (S);
            // upper end of the manure range.
            k_per_day: 0.10,
            source: "VS/TS, B0 (practical, derived), CH4: FNR Guide to Biogas 2012; cf. IPCC \
                     2006 V4 Ch10 (Wolf et al. 2017 Table 2) ultimate 0.45-0.48 and Sun et al. \
                     2015 BMP 0.488; lag and k: placeholder, unverified"
                .to_string(),
        },
    );
    m.insert(
        "avicola".to_string(),
        MaterialParams {
            // FNR (F).
            vs_ts: 0.75,
            // Practical, derived from FNR (F); IPCC poultry values unverified.
            b0_m3_ch4_per_kg_vs: 0.37,
            // FNR and GTZ 60 % (F, G).
            methane_fraction: 0.60,
            // Placeholder, unverified: manure range λ 0–3 d.
            lag_days: 2.0,
            // Placeholder, unverified: manure range Rm/A 0.04–0.10 d⁻¹.
            k_per_day: 0.08,
            source: "VS/TS, B0 (practical, derived), CH4: FNR Guide to Biogas 2012; CH4 also \
                     GTZ Schriftenreihe 97; IPCC poultry values placeholder, unverified; lag \
                     and k: placeholder, unverified"
                .to_string(),
        },
    );
    m.insert(
        "vegetal".to_string(),
        MaterialParams {
            // Midpoint of 0.86–0.92 for fruit and vegetable waste (B).
            vs_ts: 0.89,
            // ≈0.42, practical, two-stage reactor (B).
            b0_m3_ch4_per_kg_vs: 0.42,
            // FNR 60 % (F).
            methane_fraction: 0.60,
            // Placeholder, unverified: food/vegetable waste range λ 0–2 d.
            lag_days: 1.0,
            // Placeholder, unverified: food/vegetable waste range Rm/A 0.1–0.3 d⁻¹.
            k_per_day: 0.20,
            source: "VS/TS and B0: Bouallagui et al. 2005, Process Biochem. 40:989; CH4: FNR \
                     Guide to Biogas 2012; lag and k: placeholder, unverified"
                .to_string(),
        },
    );
    m
}
