//! Verdicts: short diagnoses, each fired only by a measured condition and
//! quoting the numbers that fired it. The thresholds are constants below,
//! each with its reason.

use crate::nn::{Activation, Mlp};
use serde::{Deserialize, Serialize};

/// One diagnosis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Machine-readable kind: `vanishing_gradients`, `exploding_gradients`,
    /// `parameters_unchanged`, `flat_loss`, `dead_relu`, `nonfinite_loss`.
    pub kind: String,
    /// One sentence with the evidence.
    pub message: String,
}

/// A hidden layer's median weight-gradient norm below this fraction of the
/// output layer's means its updates are three orders of magnitude smaller
/// than the output layer's: it effectively does not learn at the same
/// learning rate. Healthy ReLU networks with He init keep the ratio within
/// about one order of magnitude (He et al. 2015, Sec. 2.2).
pub const VANISHING_RATIO: f64 = 1e-3;

/// A weight-gradient norm above this at any step: with learning rates
/// around 0.1 one update then moves a layer by more than 100 in norm,
/// far beyond the norm of any sensibly initialised layer (about 10-30 here).
pub const EXPLODING_NORM: f64 = 1e3;

/// The signal vanishes in depth when, at the first step, a hidden layer's
/// pre-activation standard deviation is below this fraction of the first
/// layer's: a hundredfold fall means each layer shrinks its input, as
/// Xavier's init does in a deep ReLU network (He et al. 2015, Eq. 10 and
/// Fig. 3) and N(0, 0.001) does at once.
pub const VANISHING_SIGNAL_RATIO: f64 = 1e-2;

/// Updates stall when a layer's median update ratio `lr |dW| / |W|` over
/// training is below this: healthy training moves weights by about 1e-3 of
/// their norm per step (the CS231n rule of thumb), so below 1e-6 a layer
/// would need a million steps to change noticeably.
pub const TINY_UPDATE_RATIO: f64 = 1e-6;

/// Steps per window when looking for a flat loss.
pub const FLAT_WINDOW: usize = 100;

/// The loss is flat when the mean of every window of a stretch stays within
/// this relative distance of the stretch's first window ...
pub const FLAT_TOLERANCE: f64 = 0.01;

/// ... for at least this many steps (more than two epochs of the seed
/// experiment's 421 steps: a real plateau, not a pause) ...
pub const FLAT_MIN_STEPS: usize = 1000;

/// ... and stays above this level: a loss that has converged near zero is
/// not a failure (its windows differ by far more than 1% anyway).
pub const FLAT_MIN_LEVEL: f64 = 0.05;

/// A ReLU layer with more than this share of units that output zero for
/// every sample of the batch, on average over the last tenth of training,
/// has lost most of its capacity (the "dying ReLU" of Lu et al. 2019).
pub const DEAD_FRACTION: f64 = 0.5;

/// What the verdicts need of one recorded layer row (the rest is in
/// `probe/layers.csv`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowScalars {
    /// Updates applied before the row was recorded.
    pub step: usize,
    /// 1-based layer.
    pub layer: usize,
    /// L2 norm of the weight gradient.
    pub grad_norm: f64,
    /// Non-finite values among the layer's weights, gradients and activations.
    pub nonfinite: u64,
    /// Units that output zero for the whole batch.
    pub dead_units: usize,
    /// Standard deviation of the pre-activations on the batch.
    pub pre_std: f64,
    /// `lr * |dW| / |W|`.
    pub update_ratio: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn verdict(kind: &str, message: String) -> Verdict {
    Verdict { kind: kind.into(), message }
}

/// Draws the verdicts from a variant's recorded rows, every step's loss,
/// the per-epoch parameter changes `(epoch, layer, changed, total)` and the
/// final model.
pub fn diagnose(
    rows: &[RowScalars],
    losses: &[f32],
    changes: &[(usize, usize, usize, usize)],
    model: &Mlp,
) -> Vec<Verdict> {
    let mut out = Vec::new();
    let layers = model.layers.len();
    if let Some(step) = losses.iter().position(|l| !l.is_finite()) {
        out.push(verdict("nonfinite_loss", format!("the loss became {} at step {step}", losses[step])));
    }
    let finite_rows = || rows.iter().filter(|r| r.nonfinite == 0 && r.grad_norm.is_finite());
    let medians: Vec<f64> =
        (1..=layers).map(|l| median(finite_rows().filter(|r| r.layer == l).map(|r| r.grad_norm).collect())).collect();
    let steps_seen = rows.iter().filter(|r| r.layer == 1).count();
    let output = medians[layers - 1];

    let vanishing: Vec<String> = (0..layers - 1)
        .filter(|&l| output > 0.0 && medians[l] / output < VANISHING_RATIO)
        .map(|l| format!("layer {} {:.1e} ({:.1e} of the output layer's)", l + 1, medians[l], medians[l] / output))
        .collect();
    if !vanishing.is_empty() {
        out.push(verdict(
            "vanishing_gradients",
            format!(
                "vanishing gradients: median weight-gradient norm over {steps_seen} steps: {}; output layer {output:.1e}",
                vanishing.join(", ")
            ),
        ));
    }

    let first_step = rows.iter().map(|r| r.step).min().unwrap_or(0);
    let start_std = |l: usize| rows.iter().find(|r| r.step == first_step && r.layer == l).map(|r| r.pre_std);
    if let Some(first) = start_std(1).filter(|s| *s > 0.0) {
        let faded: Vec<String> = (2..layers)
            .filter_map(|l| start_std(l).map(|s| (l, s)))
            .filter(|(_, s)| *s < VANISHING_SIGNAL_RATIO * first)
            .map(|(l, s)| format!("layer {l} {s:.1e}"))
            .collect();
        if !faded.is_empty() {
            let shown: Vec<String> = faded.iter().take(4).cloned().collect();
            let more = if faded.len() > 4 { format!(" and {} more layers", faded.len() - 4) } else { String::new() };
            out.push(verdict(
                "vanishing_signal",
                format!(
                    "vanishing signal: at step {first_step} the pre-activation std falls from {first:.1e} in layer 1 to {}{more}",
                    shown.join(", ")
                ),
            ));
        }
    }
    let stalled: Vec<(usize, f64)> = (1..=layers)
        .map(|l| {
            (
                l,
                median(
                    rows.iter()
                        .filter(|r| r.layer == l && r.update_ratio.is_finite())
                        .map(|r| r.update_ratio)
                        .collect(),
                ),
            )
        })
        .filter(|(_, m)| m.is_finite() && *m < TINY_UPDATE_RATIO)
        .collect();
    if !stalled.is_empty() {
        let shown: Vec<String> = stalled.iter().take(4).map(|(l, m)| format!("layer {l} {m:.1e}")).collect();
        let more = if stalled.len() > 4 { format!(" and {} more layers", stalled.len() - 4) } else { String::new() };
        out.push(verdict(
            "stalled_updates",
            format!(
                "stalled updates: median lr*|dW|/|W| per step {}{more} (healthy training is near 1e-3)",
                shown.join(", ")
            ),
        ));
    }

    let exploding = rows.iter().find(|r| r.nonfinite > 0 || !r.grad_norm.is_finite() || r.grad_norm > EXPLODING_NORM);
    if let Some(r) = exploding {
        let what = if r.nonfinite > 0 || !r.grad_norm.is_finite() {
            format!("{} non-finite values", r.nonfinite.max(1))
        } else {
            format!("norm {:.2e}", r.grad_norm)
        };
        out.push(verdict(
            "exploding_gradients",
            format!("exploding gradients: layer {}'s weights or gradients reached {what} at step {}", r.layer, r.step),
        ));
    }

    let epochs = changes.iter().map(|c| c.0).max().unwrap_or(0);
    if epochs > 0 {
        let frozen: Vec<usize> =
            (1..=layers).filter(|&l| changes.iter().filter(|c| c.1 == l).all(|c| c.2 == 0)).collect();
        if frozen.len() == layers {
            let max_grad = finite_rows().map(|r| r.grad_norm).fold(0.0, f64::max);
            out.push(verdict(
                "parameters_unchanged",
                format!(
                    "parameters did not change: not one of the {} parameters moved in {epochs} epochs, although the weight-gradient norm reached {max_grad:.2e}: the optimiser is not updating this model",
                    model.params.len()
                ),
            ));
        } else if !frozen.is_empty() {
            let names: Vec<String> = frozen.iter().map(|l| l.to_string()).collect();
            out.push(verdict(
                "parameters_unchanged",
                format!(
                    "parameters did not change: layer(s) {} kept every parameter in {epochs} epochs",
                    names.join(", ")
                ),
            ));
        }
    }

    if let Some(v) = flat_loss(losses, model.classes()) {
        out.push(v);
    }

    if model.activation == Activation::Relu {
        let recorded: Vec<usize> = {
            let mut s: Vec<usize> = rows.iter().map(|r| r.step).collect();
            s.dedup();
            s
        };
        let tail_start = recorded.get(recorded.len() * 9 / 10).copied().unwrap_or(0);
        for l in 1..layers {
            let width = model.layers[l - 1].fan_out as f64;
            let tail: Vec<f64> = rows
                .iter()
                .filter(|r| r.layer == l && r.step >= tail_start)
                .map(|r| r.dead_units as f64 / width)
                .collect();
            if tail.is_empty() {
                continue;
            }
            let mean = tail.iter().sum::<f64>() / tail.len() as f64;
            if mean > DEAD_FRACTION {
                out.push(verdict(
                    "dead_relu",
                    format!(
                        "dead ReLU units: {:.0}% of layer {l}'s {} units output zero for every sample of the batch over the last tenth of training",
                        100.0 * mean,
                        width
                    ),
                ));
            }
        }
    }
    out
}

/// The longest stretch of windows whose means stay within
/// [`FLAT_TOLERANCE`] of its first window's, if it is long and high enough.
fn flat_loss(losses: &[f32], classes: usize) -> Option<Verdict> {
    let means: Vec<f64> = losses
        .chunks_exact(FLAT_WINDOW)
        .map(|w| w.iter().map(|&l| f64::from(l)).sum::<f64>() / FLAT_WINDOW as f64)
        .collect();
    let mut best: Option<(usize, usize)> = None;
    let mut start = 0;
    while start < means.len() {
        let level = means[start];
        let mut end = start + 1;
        while end < means.len() && (means[end] - level).abs() <= FLAT_TOLERANCE * level.abs() {
            end += 1;
        }
        if level.is_finite() && level > FLAT_MIN_LEVEL && best.is_none_or(|(s, e)| end - start > e - s) {
            best = Some((start, end));
        }
        start = end;
    }
    let (s, e) = best?;
    let steps = (e - s) * FLAT_WINDOW;
    if steps < FLAT_MIN_STEPS {
        return None;
    }
    let level = means[s];
    let chance = (classes as f64).ln();
    let note = if (level - chance).abs() < 0.05 * chance {
        format!(", next to the loss of a uniform guess over {classes} classes, ln {classes} = {chance:.4}")
    } else {
        String::new()
    };
    Some(verdict(
        "flat_loss",
        format!(
            "loss flat at {level:.4} from step {} to step {} ({steps} steps within {:.0}%){note}",
            s * FLAT_WINDOW,
            e * FLAT_WINDOW,
            100.0 * FLAT_TOLERANCE
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plateau_at_chance_is_flat_and_a_falling_loss_is_not() {
        let plateau: Vec<f32> = (0..3000).map(|i| 2.3013 + 0.01 * ((i % 7) as f32 - 3.0) / 3.0).collect();
        let v = flat_loss(&plateau, 10).expect("flat");
        assert!(v.message.contains("ln 10"), "{}", v.message);
        let falling: Vec<f32> = (0..3000).map(|i| 2.3 * (-(i as f32) / 500.0).exp() + 0.001).collect();
        assert!(flat_loss(&falling, 10).is_none());
        let converged: Vec<f32> = vec![0.001; 3000];
        assert!(flat_loss(&converged, 10).is_none());
    }
}
