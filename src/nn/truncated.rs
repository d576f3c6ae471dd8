//! The truncated normal distribution, drawn by the inverse CDF as PyTorch's
//! `trunc_normal_` does: a uniform draw between Phi(a) and Phi(b), mapped
//! back through Phi^-1. Every draw costs one uniform number, however little
//! of the normal's mass the interval holds. Unlike PyTorch (which works with
//! erfinv in the tensor's dtype, so an interval far in a tail collapses to
//! its bound), an interval in the upper tail is mirrored into the lower
//! tail, where Phi keeps full relative precision down to about -37.

use crate::rng::Stream;

/// Standardised bounds beyond which Phi underflows in f64 (Phi(-37.5) is
/// about 5e-308): an interval wholly beyond them cannot be sampled.
pub const MAX_STANDARD_DISTANCE: f64 = 37.0;

/// Mean and variance of N(mean, std^2) truncated to [a, b]: with
/// alpha = (a - mean) / std, beta = (b - mean) / std, Z = Phi(beta) - Phi(alpha),
/// mean + std (phi(alpha) - phi(beta)) / Z and
/// std^2 [1 + (alpha phi(alpha) - beta phi(beta)) / Z - ((phi(alpha) - phi(beta)) / Z)^2]
/// (Johnson, Kotz and Balakrishnan, Continuous Univariate Distributions 1, Eq. 13.134-13.135).
pub fn moments(mean: f64, std: f64, a: f64, b: f64) -> (f64, f64) {
    let density = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let (alpha, beta) = ((a - mean) / std, (b - mean) / std);
    let z = normal_cdf(beta) - normal_cdf(alpha);
    let (da, db) = (density(alpha), density(beta));
    let shift = (da - db) / z;
    let variance = std * std * (1.0 + (alpha * da - beta * db) / z - shift * shift);
    (mean + std * shift, variance)
}

/// The standard normal CDF, Phi(x) = erfc(-x / sqrt 2) / 2, accurate to a
/// few ulp relative in the lower tail.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

/// The standard normal quantile Phi^-1(p) for p in (0, 1): Acklam's rational
/// approximation (relative error 1.15e-9), refined by one step of Halley's
/// method on erfc, which brings it to about machine precision.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // Halley: e = Phi(x) - p, u = e / phi(x), x -= u / (1 + x u / 2).
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// Fills `out` with draws of N(mean, std^2) restricted to [a, b] (absolute
/// bounds, a < b, std > 0), one uniform number per value.
pub fn fill(out: &mut [f32], mean: f64, std: f64, a: f64, b: f64, stream: &mut Stream) {
    let (alpha, beta) = ((a - mean) / std, (b - mean) / std);
    // Work in the lower tail, where Phi is precise; mirror back afterwards.
    let mirrored = alpha + beta > 0.0;
    let (lo, hi) = if mirrored { (-beta, -alpha) } else { (alpha, beta) };
    let (cdf_lo, cdf_hi) = (normal_cdf(lo), normal_cdf(hi));
    for w in out.iter_mut() {
        let p = cdf_lo + (cdf_hi - cdf_lo) * stream.unit_f64();
        let z = if p > 0.0 && p < 1.0 { normal_quantile(p).clamp(lo, hi) } else { lo };
        let z = if mirrored { -z } else { z };
        *w = (mean + std * z).clamp(a, b) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_inverts_the_cdf_across_the_range() {
        // Above the median Phi(x) rounds towards 1, so the lower tail is where precision matters.
        for x in [-37.0, -30.0, -10.0, -5.9, -3.0, -1.0, -0.1, 0.0, 0.3, 2.0] {
            let back = normal_quantile(normal_cdf(x));
            assert!((back - x).abs() < 1e-9 * x.abs().max(1.0), "{x}: {back}");
        }
        // Known values: Phi^-1(0.975) = 1.959963984540054, Phi(-1) = 0.15865525393145707.
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-14);
        assert!((normal_cdf(-1.0) - 0.158_655_253_931_457_07).abs() < 1e-16);
    }

    /// The sample mean and variance against the truncated normal's closed
    /// forms (Johnson, Kotz & Balakrishnan 1994, Sec. 10.1): with alpha,
    /// beta the standardised bounds and Z = Phi(beta) - Phi(alpha),
    /// mean = mu + sigma (phi(alpha) - phi(beta)) / Z and
    /// var = sigma^2 (1 + (alpha phi(alpha) - beta phi(beta)) / Z - ((phi(alpha) - phi(beta)) / Z)^2).
    #[test]
    fn moments_match_the_closed_form_even_far_in_a_tail() {
        let phi = |x: f64| (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        for (mean, std, a, b) in
            [(0.0, 1.0, 5.9, 6.0), (0.0, 1.0, -6.0, -5.9), (1.0, 2.0, -1.0, 3.0), (0.0, 1.0, -12.0, -11.0)]
        {
            let (al, be) = ((a - mean) / std, (b - mean) / std);
            // Z and the phi differences in the lower tail, where they are precise.
            let (l, h) = if al + be > 0.0 { (-be, -al) } else { (al, be) };
            let z = normal_cdf(h) - normal_cdf(l);
            let sign = if al + be > 0.0 { -1.0 } else { 1.0 };
            let m = mean + sign * std * (phi(l) - phi(h)) / z;
            let v = std * std * (1.0 + (l * phi(l) - h * phi(h)) / z - ((phi(l) - phi(h)) / z).powi(2));
            let mut out = vec![0.0f32; 200_000];
            fill(&mut out, mean, std, a, b, &mut Stream::new(7, "t", 0));
            assert!(out.iter().all(|&x| (a as f32..=b as f32).contains(&x)), "[{a}, {b}]: a draw outside");
            let n = out.len() as f64;
            let got_m = out.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
            let got_v = out.iter().map(|&x| (f64::from(x) - got_m).powi(2)).sum::<f64>() / n;
            // Five standard errors of the mean; 2 % on the variance (its standard error is about 0.3 %).
            assert!((got_m - m).abs() < 5.0 * (v / n).sqrt() + 1e-6, "[{a}, {b}]: mean {got_m}, closed form {m}");
            assert!((got_v / v - 1.0).abs() < 0.02, "[{a}, {b}]: variance {got_v}, closed form {v}");
        }
    }
}
