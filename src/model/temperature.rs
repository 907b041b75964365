//! Temperature factor f(T) = rate(T) / rate(35 °C) for the Gompertz kinetics.
//!
//! This is a modelling choice, assembled from three pieces (all in °C, f dimensionless):
//!
//! 1. **20–60 °C: Chen–Hashimoto linear rate**, μm(T) = 0.013·T − 0.129 d⁻¹, normalised to
//!    35 °C: f(T) = μm(T)/μm(35) = (0.013·T − 0.129)/0.326. f(20) ≈ 0.402, f(30) ≈ 0.801.
//!    The coefficients are unverified: the primary text was not confirmed.
//! 2. **Below 20 °C: Q10 = 2 decay**, f(T) = f(20)·2^((T − 20)/10). The linear rate reaches
//!    zero at 9.9 °C and must not be extrapolated below 20 °C, yet unheated bag digesters often
//!    run colder; the Q10 branch is continuous with the linear one at 20 °C, strictly positive,
//!    and gives f(15) ≈ 0.284, f(10) ≈ 0.201, f(0) ≈ 0.100. The Q10 = 2 rule is unverified;
//!    Arrhenius constants for stored cattle slurry (Sommer et al. 2004) imply Q10 ≈ 4–5, so
//!    this branch may overestimate production in the cold.
//! 3. **Above 60 °C: clamped** at f(60) ≈ 1.997, the end of the Chen–Hashimoto range. A
//!    mesophilic culture would in reality be inhibited well before that; the clamp only keeps
//!    f monotonic and bounded for out-of-range sensor readings.
//!
//! f is continuous, non-decreasing, strictly positive on the model's input range and f(35) is
//! exactly 1 (the rate is divided by itself).

/// Reference temperature at which material kinetics are specified (°C).
pub const REFERENCE_TEMPERATURE_C: f64 = 35.0;

/// Lower end of the range in which the linear Chen–Hashimoto rate is used (°C).
pub const LINEAR_MIN_C: f64 = 20.0;

/// Upper end of the Chen–Hashimoto range; f is held constant above it (°C).
pub const LINEAR_MAX_C: f64 = 60.0;

/// Q10 used below [`LINEAR_MIN_C`] (rate ratio per 10 °C). Placeholder, unverified.
pub const Q10_BELOW_LINEAR: f64 = 2.0;

/// Chen–Hashimoto maximum specific growth rate μm(T) = 0.013·T − 0.129 (d⁻¹, T in °C).
///
/// Exists as the shape of the temperature response in its stated validity range 20–60 °C.
/// Coefficients unverified (primary text not confirmed). Not meaningful below 20 °C.
pub fn chen_hashimoto_mu_max(temperature_c: f64) -> f64 {
    0.013 * temperature_c - 0.129
}

/// Temperature factor f(T) = rate(T)/rate(35 °C), dimensionless; see the module documentation.
///
/// Exists so that the 35 °C kinetics of each material can be scaled to the digester's actual
/// temperature: k(T) = k35·f(T) and λ(T) = λ35/f(T).
pub fn temperature_factor(temperature_c: f64) -> f64 {
    let reference = chen_hashimoto_mu_max(REFERENCE_TEMPERATURE_C);
    let t = temperature_c.min(LINEAR_MAX_C);
    if t >= LINEAR_MIN_C {
        chen_hashimoto_mu_max(t) / reference
    } else {
        let at_min = chen_hashimoto_mu_max(LINEAR_MIN_C) / reference;
        at_min * Q10_BELOW_LINEAR.powf((t - LINEAR_MIN_C) / 10.0)
    }
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

    #[test]
    fn factor_matches_hand_worked_values() {
        // Linear branch: (0.013·30 − 0.129)/0.326 = 0.261/0.326 = 0.80061.
        assert!(close(temperature_factor(30.0), 0.261 / 0.326, 1e-12));
        // f(20) = 0.131/0.326 = 0.40184.
        let f20 = 0.131 / 0.326;
        assert!(close(temperature_factor(20.0), f20, 1e-12));
        // Q10 branch: f(15) = f(20)·2^(−0.5) = 0.40184·0.70711 = 0.28414.
        assert!(close(temperature_factor(15.0), f20 / 2f64.sqrt(), 1e-12));
        // f(10) = f(20)/2 = 0.20092.
        assert!(close(temperature_factor(10.0), f20 / 2.0, 1e-12));
        // Clamp: f(70) = f(60) = 0.651/0.326 = 1.99693.
        assert!(close(temperature_factor(70.0), 0.651 / 0.326, 1e-12));
    }

    #[test]
    fn factor_is_continuous_at_20() {
        let below = temperature_factor(20.0 - 1e-9);
        let at = temperature_factor(20.0);
        assert!(close(below, at, 1e-9));
    }

    #[test]
    fn factor_is_monotonic_positive_and_bounded() {
        let mut previous = 0.0;
        for i in 0..=900 {
            let t = -10.0 + f64::from(i) * 0.1;
            let f = temperature_factor(t);
            assert!(f.is_finite() && f > 0.0, "f({t}) = {f}");
            assert!(f >= previous, "f not monotonic at {t}");
            assert!(f <= 2.0, "f({t}) = {f} above cap");
            previous = f;
        }
        // Still clearly positive at the coldest accepted temperature: f(20)·2^(−3) ≈ 0.0502.
        assert!(temperature_factor(-10.0) > 0.05);
    }
}
