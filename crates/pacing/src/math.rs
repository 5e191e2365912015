//! Small numeric helpers: the normal and lognormal distribution functions.

/// Complementary error function, fractional error below 1.2e-7 everywhere (Chebyshev fit).
pub(crate) fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Standard normal distribution function.
pub(crate) fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z * std::f64::consts::FRAC_1_SQRT_2)
}

/// Natural log of the standard normal distribution function, finite far into the lower tail.
pub(crate) fn ln_normal_cdf(z: f64) -> f64 {
    if z > -30.0 {
        normal_cdf(z).ln()
    } else {
        // Mills ratio: Phi(z) ~ phi(z) / -z (1 - 1/z^2 + 3/z^4).
        let z2 = z * z;
        -0.5 * z2 - 0.918_938_533_204_672_8 - (-z).ln() + (1.0 - 1.0 / z2 + 3.0 / (z2 * z2)).ln()
    }
}

/// Distribution function of a lognormal with the given median and shape `sigma` at `x`.
pub(crate) fn lognormal_cdf(x: f64, median: f64, sigma: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    normal_cdf((x / median).ln() / sigma)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_matches_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((normal_cdf(-1.0) - 0.158_655_25).abs() < 1e-6);
        assert!(normal_cdf(-40.0) >= 0.0 && normal_cdf(40.0) <= 1.0);
    }

    #[test]
    fn ln_normal_cdf_is_continuous_into_the_tail() {
        let (a, b) = (ln_normal_cdf(-30.0 + 1e-9), ln_normal_cdf(-30.0 - 1e-9));
        assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        assert!((ln_normal_cdf(0.0) - 0.5f64.ln()).abs() < 1e-6);
        assert!(ln_normal_cdf(-1e4).is_finite());
    }

    #[test]
    fn lognormal_median_is_half() {
        assert!((lognormal_cdf(10.0, 10.0, 0.4) - 0.5).abs() < 1e-7);
        assert_eq!(lognormal_cdf(0.0, 10.0, 0.4), 0.0);
    }
}
