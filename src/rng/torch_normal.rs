//! The Box-Muller block of PyTorch's float32 `normal_` on x86 CPUs with
//! AVX2 or AVX-512 (`NormalFill16<float>` in
//! `aten/src/ATen/native/cpu/DistributionTemplates.h`): 8 pairs of uniforms
//! become 16 normals through `log256_ps` and `sincos256_ps` of
//! `avx_mathfun.h` (Pommier's SSE port of the Cephes `logf` and `sinf`/
//! `cosf`, Garberoglio's AVX version), lane by lane.
//!
//! For bit-identity the arithmetic below is the header's, operation for
//! operation, in float32, with a fused multiply-add (`mul_add`) exactly
//! where GCC contracts the header's `_mm256_mul_ps` into the following
//! `_mm256_add_ps`/`_mm256_sub_ps` (PyTorch builds these kernels with FMA
//! and contraction on): a product whose only use is one addition. Checked
//! against PyTorch 2.15's own draws in `tests/torch_rng.rs`.

// The header's constants are double literals stored as float; they are
// written here as the same literals, rounded the same way.
/// Cephes `logf` coefficients (`cephes_log_p0..p8`).
const LOG_P: [f32; 9] = [
    7.0376836292E-2f64 as f32,
    -1.1514610310E-1f64 as f32,
    1.1676998740E-1f64 as f32,
    -1.2420140846E-1f64 as f32,
    1.4249322787E-1f64 as f32,
    -1.6668057665E-1f64 as f32,
    2.0000714765E-1f64 as f32,
    -2.4999993993E-1f64 as f32,
    3.3333331174E-1f64 as f32,
];
const LOG_Q1: f32 = -2.12194440e-4f64 as f32;
const LOG_Q2: f32 = 0.693359375f64 as f32;
const SQRT_HALF: f32 = std::f64::consts::FRAC_1_SQRT_2 as f32; // the literal 0.707106781186547524
/// 4 / pi, and pi / 4 split into three parts (Cody-Waite reduction).
const FOUR_OVER_PI: f32 = 1.27323954473516f64 as f32;
#[allow(clippy::excessive_precision)] // the header's literals, verbatim
const MINUS_DP: [f32; 3] =
    [-0.78515625f64 as f32, -2.4187564849853515625e-4f64 as f32, -3.77489497744594108e-8f64 as f32];
const SIN_P: [f32; 3] = [-1.9515295891E-4f64 as f32, 8.3321608736E-3f64 as f32, -1.6666654611E-1f64 as f32];
const COS_P: [f32; 3] =
    [2.443315711809948E-005f64 as f32, -1.388731625493765E-003f64 as f32, 4.166664568298827E-002f64 as f32];

/// `log256_ps` for one lane and a positive normal `x` (the uniforms here are
/// in (0, 1], never zero or subnormal).
fn log(x: f32) -> f32 {
    let bits = x.max(f32::MIN_POSITIVE).to_bits();
    let mut e = ((bits >> 23) as i32 - 0x7f) as f32 + 1.0;
    // The mantissa as a number in [0.5, 1).
    let mut m = f32::from_bits((bits & !0x7f80_0000) | 0.5f32.to_bits());
    let small = m < SQRT_HALF;
    let tmp = if small { m } else { 0.0 };
    if small {
        e -= 1.0;
    }
    m = (m - 1.0) + tmp;
    let z = m * m;
    let mut y = LOG_P[0];
    for &p in &LOG_P[1..] {
        y = y.mul_add(m, p);
    }
    y *= m;
    y = y.mul_add(z, e * LOG_Q1);
    y = (-z).mul_add(0.5, y);
    e.mul_add(LOG_Q2, m + y)
}

/// `sincos256_ps` for one lane: `(sin x, cos x)`.
fn sin_cos(x: f32) -> (f32, f32) {
    let sin_negative = x.is_sign_negative();
    let mut x = x.abs();
    let mut j = (x * FOUR_OVER_PI) as i32;
    j = (j + 1) & !1;
    let y = j as f32;
    let swap_sin = j & 4 != 0;
    let first_polynomial_is_cos = j & 2 == 0;
    let negate_cos = !(j - 2) & 4 != 0;
    for dp in MINUS_DP {
        x = y.mul_add(dp, x);
    }
    let z = x * x;
    let mut c = COS_P[0].mul_add(z, COS_P[1]).mul_add(z, COS_P[2]) * z;
    c = c.mul_add(z, -(z * 0.5)) + 1.0;
    let s = (SIN_P[0].mul_add(z, SIN_P[1]).mul_add(z, SIN_P[2]) * z).mul_add(x, x);
    let (sin, cos) = if first_polynomial_is_cos { (s, c) } else { (c, s) };
    let sin = if sin_negative != swap_sin { -sin } else { sin };
    let cos = if negate_cos { -cos } else { cos };
    (sin, cos)
}

/// Turns 16 uniforms in [0, 1) into 16 normals of `mean` and `std`: lane
/// `j` pairs `block[j]` (radius) with `block[j + 8]` (angle), the cosine
/// going to `j` and the sine to `j + 8`.
pub fn normal_fill_16(block: &mut [f32], mean: f32, std: f32) {
    let two_pi = (2.0 * std::f64::consts::PI) as f32;
    for j in 0..8 {
        let u1 = 1.0 - block[j];
        let u2 = block[j + 8];
        let radius = (-2.0 * log(u1)).sqrt();
        let (sin, cos) = sin_cos(two_pi * u2);
        block[j] = (radius * cos).mul_add(std, mean);
        block[j + 8] = (radius * sin).mul_add(std, mean);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cephes_log_and_sincos_are_accurate() {
        for i in 1..2000 {
            let x = i as f32 / 2000.0;
            assert!((f64::from(log(x)) - f64::from(x).ln()).abs() < 3e-7, "log {x}");
            let t = x * std::f32::consts::TAU;
            let (s, c) = sin_cos(t);
            assert!((f64::from(s) - f64::from(t).sin()).abs() < 3e-7, "sin {t}");
            assert!((f64::from(c) - f64::from(t).cos()).abs() < 3e-7, "cos {t}");
        }
    }
}
