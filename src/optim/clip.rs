//! Gradient clipping before the update, as `torch.nn.utils`'
//! `clip_grad_norm_` (the global L2 norm over every parameter tensor) and
//! `clip_grad_value_` do it.

use crate::error::SettingError;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// `[clip]`: one of `max_norm` or `max_value`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipSettings {
    /// Scale the whole gradient down when its global L2 norm exceeds this
    /// (`clip_grad_norm_(params, max_norm)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_norm: Option<f64>,
    /// Clamp every gradient entry to `[-max_value, max_value]`
    /// (`clip_grad_value_(params, max_value)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value: Option<f64>,
}

impl ClipSettings {
    /// Exactly one bound, positive; `key` names the table in errors.
    pub fn validate(&self, key: &str) -> Result<(), SettingError> {
        let (name, bound) = match (self.max_norm, self.max_value) {
            (Some(n), None) => ("max_norm", n),
            (None, Some(v)) => ("max_value", v),
            (Some(_), Some(_)) => {
                return Err(SettingError::new(format!("{key}.max_value"), "give max_norm or max_value, not both"))
            }
            (None, None) => return Err(SettingError::new(key, "needs max_norm or max_value")),
        };
        if bound.is_finite() && bound > 0.0 {
            Ok(())
        } else {
            Err(SettingError::new(format!("{key}.{name}"), format!("must be a positive number, got {bound}")))
        }
    }
}

/// What clipping saw and did at one step.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct ClipOutcome {
    /// The gradient's global L2 norm before clipping (as PyTorch computes
    /// it: each tensor's norm, then the norm of those).
    pub norm: f32,
    /// Whether clipping changed the gradient.
    pub clipped: bool,
}

/// The global L2 norm of `grads` over the parameter tensors at `tensors`
/// (PyTorch's `total_norm`: the norm of the per-tensor norms, each
/// rounded to f32; the sums here run in f64).
///
/// Every step records this norm, so it must be cheap: one f64 sum in
/// order is a chain of dependent additions (a tenth of a 784-512-256-128-
/// 64-10 step's time). Each tensor's sum of squares is `LANES` (32)
/// partial sums (element `i` into partial `i % LANES`) added in order at
/// the end: a fixed order, so the result depends on the values alone, and
/// the compiler keeps the partials in four AVX-512 registers, four
/// independent chains (with 8 partials in one register, each addition
/// waited for the one before: 2.75 % of a 784-64^20-10 sweep, now 2.0 %).
/// In f64, the order moves the f32 norm by far less than its last place:
/// going from 8 to 32 partials moved no record.
pub fn global_norm(grads: &[f32], tensors: &[Range<usize>]) -> f32 {
    let tensor_norm = |r: &Range<usize>| sum_of_squares(&grads[r.clone()]).sqrt() as f32;
    tensors.iter().map(|r| f64::from(tensor_norm(r)).powi(2)).sum::<f64>().sqrt() as f32
}

/// [`global_norm`] of `into` after `others` are added into it, element by
/// element in order (`into += others[0]; into += others[1]; ...`): the
/// shards' gradients summed and their norm taken in one pass over memory,
/// with the bits of adding first and then calling [`global_norm`]. The
/// sum of squares is a chain of dependent additions, and the adds hide in
/// its shadow. Positions outside `tensors` are summed too. Tensors that
/// are not in memory order, one after another (a model's are), are summed
/// first and measured after.
pub fn sum_into_and_norm(into: &mut [f32], others: &[&[f32]], tensors: &[Range<usize>]) -> f32 {
    if !tensors.windows(2).all(|pair| pair[0].end <= pair[1].start) {
        add_into(into, others, 0);
        return global_norm(into, tensors);
    }
    // From -0, as `Iterator::sum` starts: no tensors give global_norm's -0.
    let (mut sum, mut covered) = (-0.0f64, 0);
    for r in tensors {
        add_into(&mut into[covered..r.start], others, covered);
        let tensor_norm = sum_of_squares_after_adding(&mut into[r.clone()], others, r.start).sqrt() as f32;
        sum += f64::from(tensor_norm).powi(2);
        covered = r.end;
    }
    add_into(&mut into[covered..], others, covered);
    sum.sqrt() as f32
}

/// `into += others[k][from..]` for each `k` in order.
fn add_into(into: &mut [f32], others: &[&[f32]], from: usize) {
    for other in others {
        into.iter_mut().zip(&other[from..]).for_each(|(a, b)| *a += b);
    }
}

/// [`sum_of_squares`] of `into` after [`add_into`].
fn sum_of_squares_after_adding(into: &mut [f32], others: &[&[f32]], from: usize) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { sum_of_squares_after_adding_avx512(into, others, from) };
    }
    sum_of_squares_after_adding_portable(into, others, from)
}

/// [`sum_of_squares_after_adding_portable`] compiled for AVX-512F.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sum_of_squares_after_adding_avx512(into: &mut [f32], others: &[&[f32]], from: usize) -> f64 {
    sum_of_squares_after_adding_portable(into, others, from)
}

#[inline(always)]
fn sum_of_squares_after_adding_portable(into: &mut [f32], others: &[&[f32]], from: usize) -> f64 {
    match others {
        [] => sum_of_squares_portable(into),
        [other] => {
            let other = &other[from..from + into.len()];
            let mut partial = [0.0f64; LANES];
            let done = into.len() - into.len() % LANES;
            for (chunk, add) in into[..done].chunks_exact_mut(LANES).zip(other.chunks_exact(LANES)) {
                for ((p, x), &y) in partial.iter_mut().zip(chunk).zip(add) {
                    *x += y;
                    *p += f64::from(*x) * f64::from(*x);
                }
            }
            for ((p, x), &y) in partial.iter_mut().zip(&mut into[done..]).zip(&other[done..]) {
                *x += y;
                *p += f64::from(*x) * f64::from(*x);
            }
            partial.iter().sum()
        }
        _ => {
            add_into(into, others, from);
            sum_of_squares_portable(into)
        }
    }
}

/// Partial sums of [`sum_of_squares`].
const LANES: usize = 32;

/// `sum of x^2` in f64 over [`LANES`] interleaved partial sums, in
/// AVX-512 registers where the CPU has them (each partial sum is the same
/// sequence of operations at any width, so the bits are the same).
fn sum_of_squares(xs: &[f32]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { sum_of_squares_avx512(xs) };
    }
    sum_of_squares_portable(xs)
}

/// [`sum_of_squares_portable`] compiled for AVX-512F.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sum_of_squares_avx512(xs: &[f32]) -> f64 {
    sum_of_squares_portable(xs)
}

#[inline(always)]
fn sum_of_squares_portable(xs: &[f32]) -> f64 {
    let mut partial = [0.0f64; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (p, &x) in partial.iter_mut().zip(chunk) {
            *p += f64::from(x) * f64::from(x);
        }
    }
    for (p, &x) in partial.iter_mut().zip(tail) {
        *p += f64::from(x) * f64::from(x);
    }
    partial.iter().sum()
}

/// Whether clipping with `settings` would change `grads` whose global
/// norm is `norm`, and the outcome to record.
pub fn outcome(settings: Option<&ClipSettings>, grads: &[f32], norm: f32) -> ClipOutcome {
    let clipped = match settings {
        Some(s) if s.max_norm.is_some() => norm_coefficient(s, norm) < 1.0,
        Some(ClipSettings { max_value: Some(v), .. }) => {
            let v = *v as f32;
            grads.iter().any(|g| g.abs() > v)
        }
        _ => false,
    };
    ClipOutcome { norm, clipped }
}

/// `clip_grad_norm_`'s factor: `clamp(max_norm / (total_norm + 1e-6),
/// max = 1)` in f32, the division as PyTorch's `__rtruediv__` does it
/// (`reciprocal() * max_norm`).
fn norm_coefficient(settings: &ClipSettings, norm: f32) -> f32 {
    let max_norm = settings.max_norm.expect("norm clipping") as f32;
    ((1.0 / (norm + 1e-6f32)) * max_norm).min(1.0)
}

/// Clips `grads` in place as `settings` says, given their global `norm`.
pub fn clip(settings: &ClipSettings, grads: &mut [f32], norm: f32) {
    if settings.max_norm.is_some() {
        let coef = norm_coefficient(settings, norm);
        if coef < 1.0 {
            grads.iter_mut().for_each(|g| *g *= coef);
        }
    } else if let Some(v) = settings.max_value {
        let v = v as f32;
        grads.iter_mut().for_each(|g| *g = g.clamp(-v, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Summing the shards' gradients and taking the norm in one pass gives
    /// the bits of adding first and calling `global_norm`: one shard, two,
    /// three, tensors in memory order and out of it, none, tails and gaps
    /// outside every tensor.
    #[test]
    fn summing_while_taking_the_norm_gives_the_bits_of_summing_first() {
        let mut state = 7u64;
        let mut draw = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
                })
                .collect()
        };
        let len = 1000;
        let shards: Vec<Vec<f32>> = (0..4).map(|_| draw(len)).collect();
        let in_order = [0..29, 37..300, 300..301, 301..990];
        let out_of_order = [37..300, 0..29, 300..301, 301..990];
        let tensor_sets: [&[Range<usize>]; 3] = [&in_order, &out_of_order, &[]];
        for (count, tensors) in (1..=4).flat_map(|c| tensor_sets.map(|t| (c, t))) {
            let others: Vec<&[f32]> = shards[1..count].iter().map(Vec::as_slice).collect();
            let mut added = shards[0].clone();
            for other in &others {
                added.iter_mut().zip(other.iter()).for_each(|(a, b)| *a += b);
            }
            let mut fused = shards[0].clone();
            let norm = sum_into_and_norm(&mut fused, &others, tensors);
            assert_eq!(norm.to_bits(), global_norm(&added, tensors).to_bits(), "{count} shards: the norm");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fused), bits(&added), "{count} shards: the sum, gaps included");
        }
    }

    /// The interleaved sum against the sum in order: both within f64
    /// rounding of each other (relative 1e-13 over 100,003 terms), so the
    /// f32 norms agree to their last place.
    #[test]
    fn interleaved_sum_of_squares_is_the_sum_in_order_to_f64_rounding() {
        let mut state = 1u64;
        let xs: Vec<f32> = (0..100_003)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 1e-2
            })
            .collect();
        let in_order: f64 = xs.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        let interleaved = sum_of_squares(&xs);
        assert!(((interleaved - in_order) / in_order).abs() < 1e-13, "{interleaved} vs {in_order}");
        assert_eq!(interleaved.to_bits(), sum_of_squares_portable(&xs).to_bits(), "every width, the same bits");
        assert!((sum_of_squares(&xs[..5]) - xs[..5].iter().map(|&x| f64::from(x).powi(2)).sum::<f64>()).abs() < 1e-18);
        let norm = global_norm(&xs, &[0..50_000, 50_000..xs.len()]);
        let in_order = xs[..50_000].iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt() as f32;
        let rest = xs[50_000..].iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt() as f32;
        let in_order = (f64::from(in_order).powi(2) + f64::from(rest).powi(2)).sqrt();
        assert!((f64::from(norm) - in_order).abs() <= f64::from(norm) * f64::from(f32::EPSILON));
    }

    /// The norm of a gradient of two tensors (3, 4) and (12) is 13; a bound
    /// of 6.5 halves it; a bound above leaves it; value clipping clamps.
    #[test]
    fn clipping_follows_its_definitions() {
        let ranges = [0..2, 2..3];
        let mut g = vec![3.0f32, 4.0, 12.0];
        let norm = global_norm(&g, &ranges);
        assert_eq!(norm, 13.0);
        let halve = ClipSettings { max_norm: Some(6.5), max_value: None };
        assert!(outcome(Some(&halve), &g, norm).clipped);
        clip(&halve, &mut g, norm);
        assert!(g.iter().zip([1.5f32, 2.0, 6.0]).all(|(a, b)| (a - b).abs() < 1e-5), "{g:?}");
        let loose = ClipSettings { max_norm: Some(100.0), max_value: None };
        let mut h = vec![3.0f32, 4.0, 12.0];
        assert!(!outcome(Some(&loose), &h, 13.0).clipped);
        clip(&loose, &mut h, 13.0);
        assert_eq!(h, vec![3.0, 4.0, 12.0]);
        let value = ClipSettings { max_norm: None, max_value: Some(3.5) };
        assert!(outcome(Some(&value), &h, 13.0).clipped);
        clip(&value, &mut h, 13.0);
        assert_eq!(h, vec![3.0, 3.5, 3.5]);
        assert!(ClipSettings { max_norm: Some(1.0), max_value: Some(1.0) }.validate("clip").is_err());
        assert!(ClipSettings { max_norm: Some(-1.0), max_value: None }
            .validate("clip")
            .unwrap_err()
            .to_string()
            .starts_with("clip.max_norm"));
        assert!(ClipSettings { max_norm: None, max_value: None }.validate("clip").is_err());
    }
}
