use super::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

fn material(name: &str) -> MaterialParams {
    default_materials()
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("missing default material {name}"))
}

/// A stage loaded at midnight with no measured temperature.
fn stage(name: &str, mass: f64, humidity: f64, temperature: f64) -> StageInput {
    StageInput {
        material_amount_kg: mass,
        material_humidity_pct: humidity,
        temperature_c: temperature,
        material: material(name),
        first_day_fraction: 1.0,
        measured_temperature_c: Vec::new(),
    }
}

fn run(input: &StageInput) -> Expected {
    expected_production(input, DEFAULT_MAX_DAYS).unwrap()
}

#[test]
fn hand_worked_cattle_stage_at_35c() {
    // 1000 kg cattle faeces at 87 % humidity, bovino Latin-American defaults (VS/TS 0.84,
    // B0 0.10, CH4 0.60, λ35 = 2 d, k35 = 0.06 d⁻¹), 35 °C so f = 1:
    //   TS = 1000 × (1 − 0.87)     = 130 kg
    //   VS = 130 × 0.84            = 109.2 kg
    //   CH4 = 109.2 × 0.10         = 10.92 Nm³
    //   A = 10.92 / 0.60           = 18.2 Nm³
    //   Rm = 0.06 × 18.2           = 1.092 Nm³/d
    let e = run(&stage("bovino", 1000.0, 87.0, 35.0));
    assert!(close(e.ts_kg, 130.0, 1e-9));
    assert!(close(e.vs_kg, 109.2, 1e-9));
    assert!(close(e.methane_potential_m3, 10.92, 1e-9));
    assert!(close(e.a_biogas_m3, 18.2, 1e-9));
    assert!(close(e.rm_m3_per_day, 1.092, 1e-9));
    assert_eq!(e.temperature_factor, 1.0);
    assert_eq!(e.lag_days, 2.0);
    assert_eq!(e.k_per_day, 0.06);
    // Day 1:
    //   g(0) = exp(−exp(0.06·e·2 + 1)) = exp(−exp(1.326194)) = exp(−3.766679) = 0.0231287
    //   g(1) = exp(−exp(0.06·e·1 + 1)) = exp(−exp(1.163097)) = exp(−3.199828) = 0.0407692
    //   G*(1) = 18.2 × (0.0407692 − 0.0231287)/(1 − 0.0231287) = 18.2 × 0.0180582 = 0.32866
    assert!(close(e.cumulative_biogas_m3[0], 0.32866, 1e-4));
    assert!(close(e.daily_biogas_m3[0], 0.32866, 1e-4));
}

#[test]
fn the_curve_ends_at_a() {
    // The curve used to stop at 95 % of A (day 27 here), so a long batch drifted "above
    // expected". Now it runs until less than 0.1 % of A remains: G*(50)/A = 0.99898,
    // G*(51)/A = 0.99906, so day 51 is the last and takes the remaining 0.094 % of A.
    let e = run(&stage("bovino", 1000.0, 87.0, 35.0));
    assert_eq!(e.days.len(), 51);
    assert!(e.reached_a && e.reached_95pct);
    assert_eq!(e.cumulative_biogas_m3.last().copied(), Some(e.a_biogas_m3));
    let sum: f64 = e.daily_biogas_m3.iter().sum();
    assert!(close(sum, e.a_biogas_m3, 1e-9));
    for name in ["porcino", "avicola", "vegetal"] {
        let e = run(&stage(name, 500.0, 85.0, 30.0));
        assert!(e.reached_a, "{name}");
        assert_eq!(e.cumulative_biogas_m3.last().copied(), Some(e.a_biogas_m3));
        assert!(e.daily_biogas_m3.iter().all(|v| *v >= 0.0), "{name}");
    }
}

#[test]
fn the_curve_starts_at_the_loading_time() {
    // Loaded at noon: day 1 has half a day of kinetics, day d ends at τ = d − 0.5.
    //   g(0.5) = exp(−exp(0.06·e·1.5 + 1)) = exp(−exp(1.244645)) = exp(−3.471702) = 0.0310641
    //   G*(0.5) = 18.2 × (0.0310641 − 0.0231287)/(1 − 0.0231287) = 18.2 × 0.0081232 = 0.14784
    //   G*(1.5) = 0.54497 at the end of day 2.
    let mut input = stage("bovino", 1000.0, 87.0, 35.0);
    input.first_day_fraction = 0.5;
    let e = run(&input);
    assert!(close(e.cumulative_biogas_m3[0], 0.14784, 1e-4));
    assert!(close(e.cumulative_biogas_m3[1], 0.54497, 1e-4));
    let midnight = run(&stage("bovino", 1000.0, 87.0, 35.0));
    assert!(e.cumulative_biogas_m3[0] < midnight.cumulative_biogas_m3[0] / 2.0);
    assert_eq!(e.cumulative_biogas_m3.last().copied(), Some(e.a_biogas_m3));
}

#[test]
fn a_measured_day_advances_by_its_own_temperature() {
    // Typed 35 °C, but day 1 measured 25 °C: f(25) = γ(25)/γ(35) with
    // γ(25) = (−20)(10²)/{21[21(−11) − (−9)(51 − 50)]} = −2000/(21 × −222) = 0.429000,
    // f(25) = 0.429000/0.992063 = 0.432432. τ1 = 0.432432, τ2 = 1.432432:
    //   G*(τ1) = 18.2 × 0.0069231 = 0.12600, G*(τ2) = 0.51359.
    let mut input = stage("bovino", 1000.0, 87.0, 35.0);
    input.measured_temperature_c = vec![Some(25.0), None];
    let e = run(&input);
    assert!(close(temperature_factor(25.0), 0.432432, 1e-6));
    assert!(close(e.cumulative_biogas_m3[0], 0.12600, 1e-4));
    assert!(close(e.cumulative_biogas_m3[1], 0.51359, 1e-4));
    assert_eq!(e.temperature_c[..2], [25.0, 35.0]);
    assert_eq!(e.temperature_measured[..2], [true, false]);
}

#[test]
fn humidity_of_zero_or_one_hundred_is_refused() {
    for humidity in [0.0, 100.0, -1.0, 101.0, f64::NAN] {
        let err =
            expected_production(&stage("bovino", 1000.0, humidity, 35.0), 10).expect_err("refused");
        assert!(
            matches!(
                err,
                ModelError::InvalidInput {
                    field: "material_humidity_pct",
                    ..
                }
            ),
            "{humidity}: {err}"
        );
    }
    assert!(expected_production(&stage("bovino", 1000.0, 99.9, 35.0), 10).is_ok());
}

#[test]
fn volatile_solids_come_from_humidity_not_fresh_mass() {
    // 1000 kg at 87 % humidity has 130 kg TS and 130 × 0.84 = 109.2 kg VS; treating the
    // 1000 kg as VS would give 1000 × 0.10 / 0.60 = 166.67 Nm³ instead of 18.2 Nm³, i.e.
    // 1/(0.13 × 0.84) = 9.158× too high.
    let input = stage("bovino", 1000.0, 87.0, 35.0);
    let e = run(&input);
    assert!(close(e.vs_kg, e.ts_kg * input.material.vs_ts, 1e-12));
    let fresh_as_vs = 1000.0 * 0.10 / 0.60;
    assert!(close(
        fresh_as_vs / e.a_biogas_m3,
        1.0 / (0.13 * 0.84),
        1e-9
    ));
}

#[test]
fn defaults_never_exceed_the_ipcc_ultimate_of_their_region() {
    // IPCC 2006 V4 Ch10 (Wolf et al. 2017 Table 2): dairy cattle B0 0.13 in Latin America,
    // 0.24 in developed regions; a practical value cannot exceed the ultimate.
    let latam = default_materials_for(Region::LatinAmerica);
    let developed = default_materials_for(Region::Developed);
    assert_eq!(latam["bovino"].b0_m3_ch4_per_kg_vs, 0.10);
    assert!(latam["bovino"].b0_m3_ch4_per_kg_vs <= 0.13);
    assert_eq!(developed["bovino"].b0_m3_ch4_per_kg_vs, 0.19);
    assert!(developed["bovino"].b0_m3_ch4_per_kg_vs <= 0.24);
    assert_eq!(default_materials(), latam);
    for m in latam.values().chain(developed.values()) {
        m.validate().expect("valid default");
    }
}

#[test]
fn defaults_reproduce_fnr_yields_per_fresh_tonne() {
    // FNR per fresh tonne: pig slurry 28 m³ (6 % TS), poultry 140 m³ (30 % TS); developed-
    // region cattle slurry 25 m³ (10 % TS).
    //   porcino: 1000 × 0.06 × 0.80 × 0.35 / 0.60 = 28.0 Nm³
    //   avicola: 1000 × 0.30 × 0.75 × 0.37 / 0.60 = 138.75 Nm³
    //   bovino (developed): 1000 × 0.10 × 0.84 × 0.19 / 0.60 = 26.6 Nm³
    let pig = run(&stage("porcino", 1000.0, 94.0, 35.0));
    assert!(
        (pig.a_biogas_m3 - 28.0).abs() / 28.0 < 0.10,
        "{}",
        pig.a_biogas_m3
    );
    let poultry = run(&stage("avicola", 1000.0, 70.0, 35.0));
    assert!(close(poultry.a_biogas_m3, 138.75, 1e-9));
    let mut cattle = stage("bovino", 1000.0, 90.0, 35.0);
    cattle.material = default_materials_for(Region::Developed)["bovino"].clone();
    assert!(close(run(&cattle).a_biogas_m3, 26.6, 1e-9));
}

#[test]
fn nearer_the_optimum_is_faster_and_above_it_slower() {
    let cold = run(&stage("bovino", 1000.0, 87.0, 25.0));
    let reference = run(&stage("bovino", 1000.0, 87.0, 35.0));
    let hot = run(&stage("bovino", 1000.0, 87.0, 42.0));
    assert!(cold.rm_m3_per_day < reference.rm_m3_per_day);
    assert!(hot.rm_m3_per_day < reference.rm_m3_per_day);
    assert!(cold.days.len() > reference.days.len());
    assert!(hot.days.len() > reference.days.len());
    for e in [&cold, &reference, &hot] {
        assert!(e.reached_a);
        // Same load, same asymptote: temperature changes the speed, not A.
        assert!(close(e.a_biogas_m3, 18.2, 1e-9));
    }
}

#[test]
fn at_or_below_the_cardinal_minimum_nothing_is_expected() {
    // f(15) = 0: the curve does not advance; it stays at 0 for the whole horizon, with
    // finite numbers (no NaN from λ/f).
    let e = expected_production(&stage("bovino", 1000.0, 87.0, 15.0), 30).unwrap();
    assert_eq!(e.temperature_factor, 0.0);
    assert_eq!(e.days.len(), 30);
    assert!(!e.reached_a && !e.reached_95pct);
    assert!(e.cumulative_biogas_m3.iter().all(|v| *v == 0.0));
    // A warm measured day still moves it.
    let mut input = stage("bovino", 1000.0, 87.0, 15.0);
    input.measured_temperature_c = vec![Some(35.0)];
    let e = expected_production(&input, 30).unwrap();
    assert!(close(e.cumulative_biogas_m3[0], 0.32866, 1e-4));
    assert_eq!(e.cumulative_biogas_m3[29], e.cumulative_biogas_m3[0]);
}
