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

fn stage(name: &str, mass: f64, humidity: f64, temperature: f64) -> StageInput {
    StageInput {
        material_amount_kg: mass,
        material_humidity_pct: humidity,
        temperature_c: temperature,
        material: material(name),
    }
}

fn run(input: &StageInput) -> Expected {
    expected_production(input, DEFAULT_MAX_DAYS).unwrap()
}

#[test]
fn hand_worked_cattle_stage_at_35c() {
    // 1000 kg cattle faeces at 87 % humidity, bovino defaults (VS/TS 0.84, B0 0.19, CH4 0.60,
    // λ35 = 2 d, k35 = 0.06 d⁻¹), 35 °C so f = 1:
    //   TS = 1000 × (1 − 0.87)     = 130 kg
    //   VS = 130 × 0.84            = 109.2 kg
    //   CH4 = 109.2 × 0.19         = 20.748 m³
    //   A = 20.748 / 0.60          = 34.58 m³ (domain check line: 34.6 m³ ≈ 35 L/kg fresh)
    //   Rm = 0.06 × 34.58          = 2.0748 m³/d
    let e = run(&stage("bovino", 1000.0, 87.0, 35.0));
    assert!(close(e.ts_kg, 130.0, 1e-9));
    assert!(close(e.vs_kg, 109.2, 1e-9));
    assert!(close(e.methane_potential_m3, 20.748, 1e-9));
    assert!(close(e.a_biogas_m3, 34.58, 1e-9));
    assert!(close(e.rm_m3_per_day, 2.0748, 1e-9));
    assert_eq!(e.temperature_factor, 1.0);
    assert_eq!(e.lag_days, 2.0);
    assert_eq!(e.k_per_day, 0.06);
    // Day 1:
    //   g(0) = exp(−exp(0.06·e·2 + 1)) = exp(−exp(1.326194)) = exp(−3.766679) = 0.0231287
    //   g(1) = exp(−exp(0.06·e·1 + 1)) = exp(−exp(1.163097)) = exp(−3.199828) = 0.0407692
    //   G*(1) = 34.58 × (0.0407692 − 0.0231287)/(1 − 0.0231287) = 34.58 × 0.0180583 = 0.62445
    assert!(close(e.cumulative_biogas_m3[0], 0.62445, 1e-4));
    assert!(close(e.daily_biogas_m3[0], 0.62445, 1e-4));
    // t95 = 2 + 1.461/0.06 = 26.35 d for the raw curve; the corrected curve needs
    // g = 0.95 + 0.05·g(0) = 0.95116, reached on day 27 (G*(26)/A = 0.9460, G*(27)/A = 0.9539).
    assert_eq!(e.days.len(), 27);
    assert!(e.reached_95pct);
}

#[test]
fn volatile_solids_come_from_humidity_not_fresh_mass() {
    // The fresh mass must not be used as VS. 1000 kg at 87 % humidity has 130 kg TS and
    // 130 × 0.84 = 109.2 kg VS; treating the 1000 kg as VS would give
    // 1000 × 0.19 / 0.60 = 316.67 m³ instead of 34.58 m³, i.e. 1/(0.13 × 0.84) = 9.158×
    // too high.
    let input = stage("bovino", 1000.0, 87.0, 35.0);
    let e = run(&input);
    assert!(close(e.vs_kg, e.ts_kg * input.material.vs_ts, 1e-12));
    let fresh_as_vs = 1000.0 * 0.19 / 0.60;
    assert!(close(
        fresh_as_vs / e.a_biogas_m3,
        1.0 / (0.13 * 0.84),
        1e-9
    ));
    assert!(fresh_as_vs / e.a_biogas_m3 > 9.0);

    // Dry material: TS equals the fresh mass.
    let dry = run(&stage("vegetal", 50.0, 0.0, 35.0));
    assert!(close(dry.ts_kg, 50.0, 1e-12));
    assert!(close(dry.vs_kg, 50.0 * 0.89, 1e-12));

    // Pure water: nothing to digest, and the result is still finite.
    let water = run(&stage("porcino", 50.0, 100.0, 35.0));
    assert_eq!(water.ts_kg, 0.0);
    assert_eq!(water.a_biogas_m3, 0.0);
    assert!(water.cumulative_biogas_m3.iter().all(|v| *v == 0.0));
}

#[test]
fn defaults_reproduce_fnr_yields_per_fresh_tonne() {
    // FNR per fresh tonne: cattle slurry 25 m³ (10 % TS), pig slurry 28 m³ (6 % TS),
    // poultry 140 m³ (30 % TS).
    //   bovino: 1000 × 0.10 × 0.84 × 0.19 / 0.60 = 26.6 m³ (VS/TS from ASABE, 0.80 in FNR)
    //   porcino: 1000 × 0.06 × 0.80 × 0.35 / 0.60 = 28.0 m³
    //   avicola: 1000 × 0.30 × 0.75 × 0.37 / 0.60 = 138.75 m³
    for (name, humidity, fnr) in [("bovino", 90.0, 25.0), ("porcino", 94.0, 28.0)] {
        let e = run(&stage(name, 1000.0, humidity, 35.0));
        assert!(
            (e.a_biogas_m3 - fnr).abs() / fnr < 0.10,
            "{name}: {}",
            e.a_biogas_m3
        );
    }
    let poultry = run(&stage("avicola", 1000.0, 70.0, 35.0));
    assert!(close(poultry.a_biogas_m3, 138.75, 1e-9));
}

#[test]
fn warmer_is_faster_and_reaches_95pct_sooner() {
    let cold = run(&stage("bovino", 1000.0, 87.0, 25.0));
    let reference = run(&stage("bovino", 1000.0, 87.0, 35.0));
    let warm = run(&stage("bovino", 1000.0, 87.0, 45.0));
    assert!(cold.rm_m3_per_day < reference.rm_m3_per_day);
    assert!(reference.rm_m3_per_day < warm.rm_m3_per_day);
    assert!(cold.lag_days > reference.lag_days && reference.lag_days > warm.lag_days);
    assert!(cold.days.len() > reference.days.len());
    assert!(reference.days.len() > warm.days.len());
    for e in [&cold, &reference, &warm] {
        assert!(e.reached_95pct);
        // Same load, same asymptote: temperature changes the speed, not A.
        assert!(close(e.a_biogas_m3, 34.58, 1e-9));
    }
}

#[test]
fn cold_digester_still_produces() {
    // 15 °C: f = f(20)·2^(−0.5) = 0.40184 × 0.70711 = 0.28414;
    // k = 0.06 × 0.28414 = 0.017049 d⁻¹; λ = 2 / 0.28414 = 7.0387 d;
    // raw t95 = 7.0387 + 1.461/0.017049 = 92.73 d; corrected curve stops on day 94.
    let e = run(&stage("bovino", 1000.0, 87.0, 15.0));
    assert!(close(e.temperature_factor, 0.28414, 1e-5));
    assert!(close(e.k_per_day, 0.017049, 1e-6));
    assert!(close(e.lag_days, 7.0387, 1e-4));
    assert!(e.reached_95pct);
    assert_eq!(e.days.len(), 94);
    assert!(e.daily_biogas_m3.iter().all(|v| v.is_finite() && *v > 0.0));
    let last = e.cumulative_biogas_m3.last().copied().unwrap();
    assert!(last.is_finite() && last > 0.0);
}

#[test]
fn stops_at_first_day_reaching_95pct() {
    for (name, temperature) in [("bovino", 35.0), ("porcino", 28.0), ("vegetal", 20.0)] {
        let e = run(&stage(name, 500.0, 85.0, temperature));
        assert!(e.reached_95pct);
        let n = e.cumulative_biogas_m3.len();
        assert!(n >= 2);
        let threshold = 0.95 * e.a_biogas_m3;
        assert!(e.cumulative_biogas_m3[n - 1] >= threshold, "{name}");
        assert!(e.cumulative_biogas_m3[n - 2] < threshold, "{name}");
        // The corrected curve reaches 95 % no earlier than the raw curve's t95.
        assert!(f64::from(e.days[n - 1]) >= t95_days(e.lag_days, e.k_per_day));
    }
}

#[test]
fn max_days_caps_a_slow_curve() {
    let mut input = stage("bovino", 1000.0, 87.0, 10.0);
    input.material.k_per_day = 0.01;
    let e = expected_production(&input, 30).unwrap();
    assert_eq!(e.days, (1..=30).collect::<Vec<u32>>());
    assert_eq!(e.daily_biogas_m3.len(), 30);
    assert!(!e.reached_95pct);
    assert!(e.cumulative_biogas_m3[29] < 0.95 * e.a_biogas_m3);
}

#[test]
fn cumulative_starts_at_zero_is_monotonic_and_matches_daily_sums() {
    let e = run(&stage("bovino", 1000.0, 87.0, 22.0));
    assert_eq!(
        gompertz_from_zero(e.a_biogas_m3, e.k_per_day, e.lag_days, 0.0),
        0.0
    );
    // Day 1 is small compared with A (the raw curve would already start at 2.3 % of A).
    assert!(e.cumulative_biogas_m3[0] < 0.01 * e.a_biogas_m3);
    let mut previous = 0.0;
    let mut sum = 0.0;
    for (daily, cumulative) in e.daily_biogas_m3.iter().zip(&e.cumulative_biogas_m3) {
        assert!(*cumulative >= previous);
        assert!(*daily >= 0.0);
        sum += daily;
        assert!(close(sum, *cumulative, 1e-9));
        previous = *cumulative;
    }
    assert_eq!(e.days, (1..=e.days.len() as u32).collect::<Vec<u32>>());
}

#[test]
fn corrected_curve_tends_to_a() {
    let (a, k, lag) = (34.58, 0.06, 2.0);
    assert!(gompertz(a, k, lag, 0.0) > 0.0);
    assert!(close(gompertz_from_zero(a, k, lag, 1000.0), a, 1e-9));
}

#[test]
fn t95_relation_holds_numerically() {
    // The exact constant is (1 − ln(−ln 0.95))/e = 1.460553; 1.461 is its rounding.
    for (lag, k) in [
        (0.0, 0.05),
        (2.0, 0.06),
        (3.0, 0.1),
        (1.0, 0.3),
        (10.0, 0.017),
    ] {
        let t = t95_days(lag, k);
        let fraction = gompertz(1.0, k, lag, t);
        assert!(close(fraction, 0.95, 2e-4), "λ={lag} k={k}: {fraction}");
        // t90 = λ + 1.196/k from the same derivation.
        assert!(close(gompertz(1.0, k, lag, lag + 1.196 / k), 0.90, 2e-4));
    }
}

#[test]
fn defaults_validate_and_name_sources() {
    let materials = default_materials();
    for name in ["bovino", "porcino", "vegetal", "avicola"] {
        let m = materials.get(name).unwrap();
        assert_eq!(m.validate(), Ok(()), "{name}");
        assert!(m.source.contains("placeholder, unverified"), "{name}");
        assert!(m.source.contains("FNR") || m.source.contains("Bouallagui"));
    }
}

#[test]
fn validate_names_the_offending_field() {
    let good = material("bovino");
    type Corruption = (&'static str, fn(&mut MaterialParams));
    let cases: [Corruption; 8] = [
        ("vs_ts", |m| m.vs_ts = 0.0),
        ("vs_ts", |m| m.vs_ts = 84.0),
        ("b0_m3_ch4_per_kg_vs", |m| m.b0_m3_ch4_per_kg_vs = f64::NAN),
        ("methane_fraction", |m| m.methane_fraction = 60.0),
        ("lag_days", |m| m.lag_days = -1.0),
        ("lag_days", |m| m.lag_days = 61.0),
        ("k_per_day", |m| m.k_per_day = 0.0),
        ("k_per_day", |m| m.k_per_day = 6.0),
    ];
    for (field, corrupt) in cases {
        let mut m = good.clone();
        corrupt(&mut m);
        let message = m.validate().unwrap_err();
        assert!(message.contains(field), "{message}");
    }
    let mut edge = good;
    edge.lag_days = 0.0;
    edge.vs_ts = 1.0;
    assert_eq!(edge.validate(), Ok(()));
}

#[test]
fn material_params_round_trip_and_reject_unknown_fields() {
    let m = material("porcino");
    let text = toml::to_string(&m).unwrap();
    let back: MaterialParams = toml::from_str(&text).unwrap();
    assert_eq!(back, m);
    let with_typo = format!("{text}\nb0 = 0.3\n");
    assert!(toml::from_str::<MaterialParams>(&with_typo).is_err());
}

#[test]
fn invalid_inputs_are_rejected_with_the_field_name() {
    let cases = [
        ("material_amount_kg", 0.0, 87.0, 35.0),
        ("material_amount_kg", -5.0, 87.0, 35.0),
        ("material_amount_kg", f64::NAN, 87.0, 35.0),
        ("material_amount_kg", f64::INFINITY, 87.0, 35.0),
        ("material_humidity_pct", 1000.0, -0.1, 35.0),
        ("material_humidity_pct", 1000.0, 100.5, 35.0),
        ("material_humidity_pct", 1000.0, f64::NAN, 35.0),
        ("temperature_c", 1000.0, 87.0, -10.5),
        ("temperature_c", 1000.0, 87.0, 80.5),
        ("temperature_c", 1000.0, 87.0, f64::NAN),
    ];
    for (field, mass, humidity, temperature) in cases {
        let err =
            expected_production(&stage("bovino", mass, humidity, temperature), 365).unwrap_err();
        assert!(err.to_string().contains(field), "{err}");
    }
    let zero_days = expected_production(&stage("bovino", 1.0, 87.0, 35.0), 0).unwrap_err();
    assert!(zero_days.to_string().contains("max_days"));
    let mut bad = stage("bovino", 1.0, 87.0, 35.0);
    bad.material.methane_fraction = 0.0;
    let err = expected_production(&bad, 365).unwrap_err();
    assert!(err.to_string().contains("methane_fraction"), "{err}");
    // Range ends are accepted.
    assert!(expected_production(&stage("bovino", 1.0, 87.0, -10.0), 365).is_ok());
    assert!(expected_production(&stage("bovino", 1.0, 87.0, 80.0), 365).is_ok());
}
