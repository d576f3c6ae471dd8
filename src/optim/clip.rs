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
pub fn global_norm(grads: &[f32], tensors: &[Range<usize>]) -> f32 {
    let tensor_norm =
        |r: &Range<usize>| grads[r.clone()].iter().map(|&g| f64::from(g) * f64::from(g)).sum::<f64>().sqrt() as f32;
    tensors.iter().map(|r| f64::from(tensor_norm(r)).powi(2)).sum::<f64>().sqrt() as f32
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
