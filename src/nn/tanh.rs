//! `tanh` over a slice in plain single-precision arithmetic, in SIMD
//! registers (AVX-512 intrinsics, or code the compiler vectorises), giving
//! the same bits on every machine.
//!
//! The C library's `tanhf` is scalar: in a deep tanh network it took 70 %
//! of training time (perf, 784-64^20-10 on MNIST), three times the matrix
//! products. Here `tanh` is one rational function of `x^2`,
//!
//! ```text
//! tanh(x) ~ x P(x^2) / Q(x^2),   P of degree 6, Q of degree 3, P(0) = Q(0) = 1,
//! ```
//!
//! the minimax fit (least maximum error in units in the last place) on
//! `[0, 9.010913]`, made by `scripts/fit-tanh.py` (the differential
//! correction algorithm, Cheney and Loeb 1961) and rounded to single
//! precision; the same form as Eigen's `generic_fast_tanh_float`, with
//! coefficients of our own. `|x|` is clamped at `ln(2^26 - 1) / 2 =
//! 9.010913`, beyond which `tanh` rounds to 1, and the result capped at 1.
//! Per 16 lanes that is 10 fused multiply-adds, 5 other operations and one
//! division, against Cephes' two branches (an `exp` and a polynomial, both
//! computed and one selected): 2.4x fewer operations, for an error of at
//! most 6.13 units in the last place instead of 2 (3.7e-7 relative, at
//! 7.56; tested against `f64::tanh` over every float in `[2^-20, 10]`).
//! The rounding of about five operations on numbers near 1 is most of it:
//! the fit itself is within 1.14 units.
//!
//! Only `+ * /`, fused multiply-adds, `min` and bit operations are used
//! (no library call), each correctly rounded by IEEE 754, so the result
//! depends on the input alone: not on the vector width, the CPU or the
//! thread. Where the CPU has no fused multiply-add, [`f32::mul_add`] still
//! rounds once (in software, slowly).

/// `P`'s coefficients in `x^2`, highest degree first (`P(0) = 1`), from
/// `scripts/fit-tanh.py`.
const P: [f32; 7] = [-4.071_835e-15, 2.054_119e-11, -1.342_204_8e-8, 9.465_768e-6, 2.942_484e-3, 0.129_396_36, 1.0];
/// `Q`'s coefficients in `x^2`, highest degree first (`Q(0) = 1`).
const Q: [f32; 4] = [2.310_911_8e-4, 2.385_261_5e-2, 0.462_729_63, 1.0];
/// `ln(2^26 - 1) / 2`: from here on `tanh(x) > 1 - 2^-25` rounds to 1.
const CLAMP: f32 = 9.010_913;

/// `a[i] = tanh(z[i])` for every element of `z` (`a` at least as long):
/// in 16-wide AVX-512 registers (written out with intrinsics) or 8-wide AVX2
/// ones (the compiler's) where the CPU has them, else in the baseline's
/// 4-wide ones. All compute the same operations, so give the same bits.
pub fn tanh_slice(z: &[f32], a: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        unsafe { tanh_slice_avx512(z, a) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA.
        unsafe { tanh_slice_avx2(z, a) };
        return;
    }
    tanh_slice_portable(z, a);
}

fn tanh_slice_portable(z: &[f32], a: &mut [f32]) {
    for (a, &z) in a[..z.len()].iter_mut().zip(z) {
        *a = tanh(z);
    }
}

/// [`tanh`] in 16-lane AVX-512 registers: the same IEEE operations in the
/// same order, written out with intrinsics (the sign in one ternary-logic
/// step); the exhaustive test below compares every input from 2^-20 to 10
/// with the scalar [`tanh`].
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tanh_slice_avx512(z: &[f32], a: &mut [f32]) {
    use std::arch::x86_64::*;
    let a = &mut a[..z.len()];
    for (zs, outs) in z.chunks(16).zip(a.chunks_mut(16)) {
        let mask: __mmask16 = if zs.len() == 16 { 0xffff } else { (1u16 << zs.len()) - 1 };
        let x = _mm512_maskz_loadu_ps(mask, zs.as_ptr());
        _mm512_mask_storeu_ps(outs.as_mut_ptr(), mask, tanh16(x));
    }
}

/// [`tanh`] of 16 lanes (see [`tanh_slice_avx512`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn tanh16(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let splat = _mm512_set1_ps;
    let ax = _mm512_min_ps(_mm512_abs_ps(x), splat(CLAMP));
    let s = _mm512_mul_ps(ax, ax);
    let horner = |coefficients: &[f32]| {
        coefficients[1..].iter().fold(splat(coefficients[0]), |acc, &c| _mm512_fmadd_ps(acc, s, splat(c)))
    };
    let (p, q) = (horner(&P), horner(&Q));
    let y = _mm512_min_ps(_mm512_div_ps(_mm512_mul_ps(ax, p), q), splat(1.0));
    // The sign of x on y's bits in one ternary-logic step (bit = sign mask
    // ? x : y); NaN stays x.
    let sign = _mm512_set1_epi32(i32::MIN);
    let signed = _mm512_ternarylogic_epi32::<0xCA>(sign, _mm512_castps_si512(x), _mm512_castps_si512(y));
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x), _mm512_castsi512_ps(signed), x)
}

/// [`tanh_slice_portable`] compiled for AVX2 with FMA ([`f32::mul_add`]
/// becomes one instruction; Rust never fuses a multiply and an add on its
/// own, so the bits stay the same).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tanh_slice_avx2(z: &[f32], a: &mut [f32]) {
    for (a, &z) in a[..z.len()].iter_mut().zip(z) {
        *a = tanh(z);
    }
}

/// `tanh(x)` within 6.13 ulp, never above 1 in magnitude; odd to the bit;
/// NaN stays NaN, `-0` stays `-0`.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let ax = x.abs().min(CLAMP);
    let s = ax * ax;
    let horner = |coefficients: &[f32]| coefficients[1..].iter().fold(coefficients[0], |acc, &c| acc.mul_add(s, c));
    let y = (ax * horner(&P) / horner(&Q)).min(1.0).copysign(x);
    if x.is_nan() {
        x
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units in the last place between `y` and the exact `reference`.
    fn ulps(y: f32, reference: f64) -> f64 {
        let r = reference as f32;
        let ulp = (f32::from_bits(r.abs().to_bits() + 1) - r.abs()) as f64;
        (y as f64 - reference).abs() / ulp
    }

    #[test]
    fn within_six_and_a_half_ulp_of_the_exact_value_and_never_above_one_over_every_float_that_matters() {
        // Every float from 2^-20 to 10 (beyond 10 tanh rounds to 1; below,
        // tanh(x) = x - x^3/3 rounds to x, as P(x^2) / Q(x^2) rounds to 1),
        // both signs.
        let (start, end) = ((2.0f32).powi(-20).to_bits(), 10.0f32.to_bits());
        let mut worst = (0.0, 0.0f32);
        let mut ys = vec![0.0; 1 << 20];
        for block in (start..=end).collect::<Vec<u32>>().chunks(1 << 20) {
            let xs: Vec<f32> = block.iter().map(|&b| f32::from_bits(b)).collect();
            tanh_slice(&xs, &mut ys);
            for (&x, &y) in xs.iter().zip(&ys) {
                let e = ulps(y, (x as f64).tanh());
                if e > worst.0 {
                    worst = (e, x);
                }
                assert!(y <= 1.0, "{y} above 1 at {x}");
                assert_eq!(tanh(-x).to_bits(), (-y).to_bits(), "odd at {x}");
                assert_eq!(tanh(x).to_bits(), y.to_bits(), "the slice's code differs from the scalar's at {x}");
            }
        }
        eprintln!("worst: {} ulp at {}", worst.0, worst.1);
        assert!(worst.0 <= 6.5, "{} ulp at {}", worst.0, worst.1);
    }

    /// Every code path this CPU can run gives the portable path's bits.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn every_vector_width_gives_the_same_bits() {
        let mut xs: Vec<f32> = (0..1 << 20).map(|i| (i as f32 - 524_288.0) * 2e-5).collect();
        // The edges, and a length that leaves a partial last vector.
        let edges = [0.0, -0.0, CLAMP, -CLAMP, 10.0, -10.0, 1e30, -1e30, 1e-30, f32::INFINITY, f32::NEG_INFINITY];
        xs.extend(edges.iter().chain(&[f32::NAN, -f32::NAN, f32::from_bits(0x7fa0_0001)]));
        let mut portable = vec![0.0; xs.len()];
        tanh_slice_portable(&xs, &mut portable);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mut wide = vec![0.0; xs.len()];
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: checked just above.
            unsafe { tanh_slice_avx2(&xs, &mut wide) };
            assert_eq!(bits(&wide), bits(&portable), "AVX2");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: checked just above.
            unsafe { tanh_slice_avx512(&xs, &mut wide) };
            assert_eq!(bits(&wide), bits(&portable), "AVX-512");
        }
    }

    #[test]
    fn edges_are_exact() {
        assert_eq!(tanh(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh(10.0), 1.0);
        assert_eq!(tanh(CLAMP), 1.0);
        assert_eq!(tanh(f32::from_bits(CLAMP.to_bits() - 1)), 1.0);
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh(1e30), 1.0);
        assert!(tanh(f32::NAN).is_nan());
        assert_eq!(tanh(1e-30), 1e-30);
    }
}
