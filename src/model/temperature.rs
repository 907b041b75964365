//! Temperature factor f(T) = rate(T) / rate(35 °C) for the Gompertz kinetics.
//!
//! The factor is the cardinal-temperature model with inflection of Rosso et al. 1993 (CTMI),
//! with the cardinal temperatures of the mesophilic methanogen group of the ABM model (Dalby
//! et al. 2021, PLoS ONE 16:e0252881): T_min = 15 °C, T_opt = 36 °C, T_max = 45 °C.
//!
//! γ(T) = (T − T_max)(T − T_min)² / {(T_opt − T_min)[(T_opt − T_min)(T − T_opt)
//!        − (T_opt − T_max)(T_opt + T_min − 2T)]} for T_min < T < T_max, 0 otherwise;
//! γ(T_opt) = 1. The material kinetics are given at 35 °C, so f(T) = γ(T)/γ(35), with
//! γ(35) = 4000/4032 = 0.99206: f(36) ≈ 1.008 is the maximum, f(38) ≈ 0.971, f(40) ≈ 0.847,
//! f(42) ≈ 0.614 and f(15) = f(45) = 0.
//!
//! Why this model: a mesophilic community stops speeding up near 35–38 °C and is inhibited
//! above ~40 °C; the linear Chen–Hashimoto rate used before kept rising to twice the 35 °C
//! rate at 60 °C. Below 15 °C the model expects no methanogenic activity at all, so the
//! expected curve does not advance on such days (a cold day delays the curve; it does not
//! remove gas from it).

/// Reference temperature at which material kinetics are specified (°C).
pub const REFERENCE_TEMPERATURE_C: f64 = 35.0;

/// Cardinal temperatures of the mesophilic group (°C), Dalby et al. 2021 (ABM model).
pub const T_MIN_C: f64 = 15.0;
/// Optimum temperature (°C), Dalby et al. 2021.
pub const T_OPT_C: f64 = 36.0;
/// Maximum temperature (°C), Dalby et al. 2021.
pub const T_MAX_C: f64 = 45.0;

/// Rosso's cardinal-temperature model γ(T), 1 at [`T_OPT_C`], 0 at and outside the cardinal
/// minimum and maximum.
///
/// Exists as the shape of the temperature response; [`temperature_factor`] rescales it to the
/// 35 °C reference of the material kinetics.
pub fn cardinal_gamma(temperature_c: f64) -> f64 {
    let t = temperature_c;
    if !(t > T_MIN_C && t < T_MAX_C) {
        return 0.0;
    }
    let span = T_OPT_C - T_MIN_C;
    let numerator = (t - T_MAX_C) * (t - T_MIN_C).powi(2);
    let denominator =
        span * (span * (t - T_OPT_C) - (T_OPT_C - T_MAX_C) * (T_OPT_C + T_MIN_C - 2.0 * t));
    (numerator / denominator).max(0.0)
}

/// Temperature factor f(T) = γ(T)/γ(35 °C), dimensionless; see the module documentation.
///
/// Exists so that the 35 °C kinetics of each material can be scaled to the digester's actual
/// temperature: the curve advances f(T) days of 35 °C kinetics per day at T.
pub fn temperature_factor(temperature_c: f64) -> f64 {
    cardinal_gamma(temperature_c) / cardinal_gamma(REFERENCE_TEMPERATURE_C)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn factor_is_exactly_one_at_35() {
        assert_eq!(temperature_factor(35.0), 1.0);
    }

    /// Hand calculation with T_min/T_opt/T_max = 15/36/45 (span T_opt − T_min = 21):
    /// γ(35) = (−10)(20²) / {21[21(−1) − (−9)(51 − 70)]} = −4000 / (21 × −192) = 0.992063.
    /// γ(38) = (−7)(23²) / {21[21·2 − (−9)(51 − 76)]} = −3703 / (21 × −183) = 0.963570
    ///   → f(38) = 0.963570 / 0.992063 = 0.971279.
    /// γ(42) = (−3)(27²) / {21[21·6 − (−9)(51 − 84)]} = −2187 / (21 × −171) = 0.609022
    ///   → f(42) = 0.613895.
    /// f(15) = f(45) = 0 (cardinal limits).
    #[test]
    fn factor_at_the_cardinal_and_test_temperatures() {
        let g35 = 4000.0 / 4032.0;
        assert!(close(cardinal_gamma(35.0), g35, 1e-12));
        assert!(close(cardinal_gamma(36.0), 1.0, 1e-12));
        assert_eq!(temperature_factor(15.0), 0.0);
        assert_eq!(temperature_factor(35.0), 1.0);
        assert!(close(
            temperature_factor(38.0),
            3703.0 / 3843.0 / g35,
            1e-12
        ));
        assert!(close(temperature_factor(38.0), 0.971279, 1e-6));
        assert!(close(
            temperature_factor(42.0),
            2187.0 / 3591.0 / g35,
            1e-12
        ));
        assert!(close(temperature_factor(42.0), 0.613895, 1e-6));
        assert_eq!(temperature_factor(45.0), 0.0);
        // Outside the cardinal range nothing happens either.
        assert_eq!(temperature_factor(10.0), 0.0);
        assert_eq!(temperature_factor(60.0), 0.0);
    }

    #[test]
    fn factor_peaks_at_the_optimum_and_falls_on_both_sides() {
        let mut previous = 0.0;
        for i in 0..=210 {
            let t = 15.0 + f64::from(i) * 0.1;
            let f = temperature_factor(t);
            assert!(f.is_finite() && f >= previous, "f not rising at {t}");
            previous = f;
        }
        for i in 0..=90 {
            let t = 36.0 + f64::from(i) * 0.1;
            let f = temperature_factor(t);
            assert!(
                f.is_finite() && f <= previous + 1e-12,
                "f not falling at {t}"
            );
            previous = f;
        }
        assert!(temperature_factor(36.0) < 1.01);
    }
}
