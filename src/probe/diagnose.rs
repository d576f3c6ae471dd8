//! Drawing the verdicts: one check per [`VerdictKind`], each fired only by
//! a measured condition and quoting the numbers that fired it. The
//! thresholds are constants below, each with its reason; those that count
//! steps scale with the length of the run, so a short run is judged too.

use crate::nn::loss::Loss;
use crate::nn::{Activation, Model};
use crate::record::rows::{BlockStatsRow, ChangeRow, LayerStatsRow};
use crate::verdict::{Verdict, VerdictKind};

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

/// Updates stall when a layer's median update ratio `|W_after - W_before|
/// / |W_before|` (the update applied, under any optimiser) over training
/// is below this: healthy training moves weights by about 1e-3 of their
/// norm per step (the CS231n rule of thumb), so below 1e-6 a layer
/// would need a million steps to change noticeably.
pub const TINY_UPDATE_RATIO: f64 = 1e-6;

/// Steps per window when looking for a flat loss, at most: a run of n steps
/// uses windows of n / 20 steps, between [`FLAT_MIN_WINDOW`] and this.
pub const FLAT_WINDOW: usize = 100;

/// The shortest window: fewer batch losses average out too little noise.
pub const FLAT_MIN_WINDOW: usize = 5;

/// The loss is flat when the mean of every window of a stretch stays within
/// this relative distance of the stretch's first window ...
pub const FLAT_TOLERANCE: f64 = 0.01;

/// ... for at least this many steps (more than two epochs of the seed
/// experiment's 421 steps: a real plateau, not a pause), or half of a
/// shorter run, and at least four windows ...
pub const FLAT_MIN_STEPS: usize = 1000;

/// ... and stays above this level: a loss that has converged near zero is
/// not a failure (its windows differ by far more than 1% anyway).
pub const FLAT_MIN_LEVEL: f64 = 0.05;

/// Clipping that changes the gradient on more than this share of the
/// steps is no longer a guard against the odd spike: the run is being held
/// together by clipping, and its effective step is set by `max_norm` (or
/// `max_value`) rather than by the learning rate.
pub const CLIPPED_MOST: f64 = 0.5;

/// A ReLU layer with more than this share of units that output zero for
/// every sample of the batch, on average over the last tenth of training,
/// has lost most of its capacity (the "dying ReLU" of Lu et al. 2019).
pub const DEAD_FRACTION: f64 = 0.5;

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// "layer 1 a, layer 2 b, layer 3 c, layer 4 d and 2 more layers".
/// Layers as a list with runs of more than three collapsed: `1, 2, 3`,
/// `1-1001`, `2, 5-40`.
fn layer_runs(layers: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < layers.len() {
        let mut j = i;
        while j + 1 < layers.len() && layers[j + 1] == layers[j] + 1 {
            j += 1;
        }
        if j - i >= 3 {
            parts.push(format!("{}-{}", layers[i], layers[j]));
        } else {
            parts.extend(layers[i..=j].iter().map(|l| l.to_string()));
        }
        i = j + 1;
    }
    parts.join(", ")
}

fn first_four(items: &[String]) -> String {
    let shown = items.iter().take(4).cloned().collect::<Vec<_>>().join(", ");
    match items.len() {
        n if n > 4 => format!("{shown} and {} more layers", n - 4),
        _ => shown,
    }
}

/// Every step's loss and clipping, and the loss they are of.
#[derive(Clone, Debug, Default)]
pub struct StepHistory {
    /// Each step's batch loss before its update.
    pub losses: Vec<f32>,
    /// Whether clipping changed each step's gradient.
    pub clipped: Vec<bool>,
    /// The loss trained on.
    pub loss: Loss,
}

/// What the checks share: the inputs and the per-layer figures several of
/// them use.
struct Evidence<'a> {
    rows: &'a [LayerStatsRow],
    losses: &'a [f32],
    history: &'a StepHistory,
    changes: &'a [ChangeRow],
    model: &'a Model,
    layers: usize,
    /// Per layer (0-based), the median weight-gradient norm over the finite rows.
    grad_medians: Vec<f64>,
    /// Recorded steps (rows of layer 1).
    steps_seen: usize,
    /// Per hidden ReLU layer (0-based), the mean share of dead units over
    /// the last tenth of the recorded steps; `None` where not measured.
    dead_shares: Vec<Option<f64>>,
}

impl<'a> Evidence<'a> {
    fn new(rows: &'a [LayerStatsRow], history: &'a StepHistory, changes: &'a [ChangeRow], model: &'a Model) -> Self {
        let losses = &history.losses[..];
        let layers = model.linear_count();
        let finite = |r: &&LayerStatsRow| r.nonfinite == 0 && r.gw_norm.is_finite();
        let grad_medians = (1..=layers)
            .map(|l| median(rows.iter().filter(finite).filter(|r| r.layer == l).map(|r| r.gw_norm).collect()))
            .collect();
        let steps_seen = rows.iter().filter(|r| r.layer == 1).count();
        let dead_shares = Self::dead_shares(rows, model);
        Evidence { rows, losses, history, changes, model, layers, grad_medians, steps_seen, dead_shares }
    }

    /// Per hidden layer of a ReLU network, the mean share of dead units over
    /// the last tenth of the recorded steps.
    fn dead_shares(rows: &[LayerStatsRow], model: &Model) -> Vec<Option<f64>> {
        let hidden = model.linear_count() - 1;
        if model.activation() != Some(Activation::Relu) {
            return vec![None; hidden];
        }
        let mut recorded: Vec<usize> = rows.iter().map(|r| r.step).collect();
        recorded.dedup();
        let tail_start = recorded.get(recorded.len() * 9 / 10).copied().unwrap_or(0);
        let share = |l: usize| {
            let width = model.linear(l - 1).fan_out as f64;
            let tail = rows.iter().filter(|r| r.layer == l && r.step >= tail_start);
            let shares: Vec<f64> = tail.map(|r| r.dead_units as f64 / width).collect();
            (!shares.is_empty()).then(|| shares.iter().sum::<f64>() / shares.len() as f64)
        };
        (1..=hidden).map(share).collect()
    }

    /// Layers (1-based) whose median weight gradient is exactly zero.
    fn zero_gradient_layers(&self) -> Vec<usize> {
        (1..=self.layers).filter(|&l| self.grad_medians[l - 1] == 0.0).collect()
    }
}

/// Draws the verdicts from a variant's recorded rows, every step's loss
/// and clipping, the per-epoch parameter changes `(epoch, layer, changed,
/// total)` and the final model.
pub fn diagnose(
    rows: &[LayerStatsRow],
    history: &StepHistory,
    changes: &[ChangeRow],
    blocks: &[BlockStatsRow],
    model: &Model,
) -> Vec<Verdict> {
    let e = Evidence::new(rows, history, changes, model);
    let checks: [fn(&Evidence) -> Vec<Verdict>; 10] = [
        nonfinite_loss,
        vanishing_gradients,
        zero_gradients,
        vanishing_signal,
        stalled_updates,
        exploding_gradients,
        parameters_unchanged,
        |e| flat_loss(e.losses, &e.history.loss, e.model.classes()).into_iter().collect(),
        dead_relu,
        clipped_most_steps,
    ];
    let mut verdicts: Vec<Verdict> = checks.iter().flat_map(|check| check(&e)).collect();
    verdicts.extend(residual::block_verdicts(blocks));
    verdicts
}

fn nonfinite_loss(e: &Evidence) -> Vec<Verdict> {
    let Some(step) = e.losses.iter().position(|l| !l.is_finite()) else { return Vec::new() };
    vec![Verdict::new(VerdictKind::NonfiniteLoss, format!("the loss became {} at step {step}", e.losses[step]))]
}

/// Hidden layers whose (non-zero) median gradient is below
/// [`VANISHING_RATIO`] of the output layer's.
fn vanishing_gradients(e: &Evidence) -> Vec<Verdict> {
    let output = e.grad_medians[e.layers - 1];
    let m = &e.grad_medians;
    let vanishing: Vec<String> = (0..e.layers - 1)
        .filter(|&l| output > 0.0 && m[l] > 0.0 && m[l] / output < VANISHING_RATIO)
        .map(|l| format!("layer {} {:.1e} ({:.1e} of the output layer's)", l + 1, m[l], m[l] / output))
        .collect();
    if vanishing.is_empty() {
        return Vec::new();
    }
    let message = format!(
        "vanishing gradients: median weight-gradient norm over {} steps: {}; output layer {output:.1e}",
        e.steps_seen,
        first_four(&vanishing)
    );
    vec![Verdict::new(VerdictKind::VanishingGradients, message)]
}

/// Layers whose weight gradient is exactly zero at most recorded steps,
/// with the cause where the probe saw it: a ReLU layer whose every unit
/// outputs zero passes no gradient back, and gives none to the weights
/// that read it.
fn zero_gradients(e: &Evidence) -> Vec<Verdict> {
    let zero = e.zero_gradient_layers();
    if zero.is_empty() {
        return Vec::new();
    }
    let all_dead: Vec<usize> =
        (1..e.layers).filter(|&l| e.dead_shares[l - 1].is_some_and(|share| share >= 1.0)).collect();
    let cause = match all_dead.first() {
        Some(l) => format!(
            "; every unit of layer {l} outputs 0 for every sample (dead ReLUs), so no gradient passes back through it"
        ),
        None => String::new(),
    };
    let message = format!(
        "zero gradients: the weight gradients of layer(s) {} were exactly 0 at most of the {} recorded steps: these weights receive no training signal at all, they cannot learn{cause}",
        layer_runs(&zero),
        e.steps_seen
    );
    vec![Verdict::new(VerdictKind::ZeroGradients, message)]
}

/// At the first recorded step, hidden layers whose pre-activation std is
/// below [`VANISHING_SIGNAL_RATIO`] of the first layer's.
fn vanishing_signal(e: &Evidence) -> Vec<Verdict> {
    let first_step = e.rows.iter().map(|r| r.step).min().unwrap_or(0);
    let start_std = |l: usize| e.rows.iter().find(|r| r.step == first_step && r.layer == l).map(|r| r.pre_std);
    let Some(first) = start_std(1).filter(|s| *s > 0.0) else { return Vec::new() };
    // The layers whose output goes on through an activation: not the
    // logits, nor a residual branch's end (which may start at 0 by design).
    let activated = |l: &usize| e.model.post_position(l - 1).is_some();
    let faded: Vec<String> = (2..e.layers)
        .filter(activated)
        .filter_map(|l| start_std(l).map(|s| (l, s)))
        .filter(|(_, s)| *s < VANISHING_SIGNAL_RATIO * first)
        .map(|(l, s)| format!("layer {l} {s:.1e}"))
        .collect();
    if faded.is_empty() {
        return Vec::new();
    }
    let message = format!(
        "vanishing signal: at step {first_step} the pre-activation std falls from {first:.1e} in layer 1 to {}",
        first_four(&faded)
    );
    vec![Verdict::new(VerdictKind::VanishingSignal, message)]
}

/// Layers whose median update ratio is below [`TINY_UPDATE_RATIO`]; layers
/// with exactly zero gradients are left to [`zero_gradients`], which says
/// more.
fn stalled_updates(e: &Evidence) -> Vec<Verdict> {
    let zero = e.zero_gradient_layers();
    let stalled: Vec<String> = (1..=e.layers)
        .filter(|l| !zero.contains(l))
        .map(|l| {
            let ratios = e.rows.iter().filter(|r| r.layer == l && r.update_ratio.is_finite()).map(|r| r.update_ratio);
            (l, median(ratios.collect()))
        })
        .filter(|(_, m)| m.is_finite() && *m < TINY_UPDATE_RATIO)
        .map(|(l, m)| format!("layer {l} {m:.1e}"))
        .collect();
    if stalled.is_empty() {
        return Vec::new();
    }
    let message = format!(
        "stalled updates: median |dW_applied|/|W| per step {} (healthy training is near 1e-3)",
        first_four(&stalled)
    );
    vec![Verdict::new(VerdictKind::StalledUpdates, message)]
}

/// The first row with non-finite values or a gradient norm above
/// [`EXPLODING_NORM`].
fn exploding_gradients(e: &Evidence) -> Vec<Verdict> {
    let hit = e.rows.iter().find(|r| r.nonfinite > 0 || !r.gw_norm.is_finite() || r.gw_norm > EXPLODING_NORM);
    let Some(r) = hit else { return Vec::new() };
    let what = if r.nonfinite > 0 || !r.gw_norm.is_finite() {
        format!("{} non-finite values", r.nonfinite.max(1))
    } else {
        format!("norm {:.2e}", r.gw_norm)
    };
    let message =
        format!("exploding gradients: layer {}'s weights or gradients reached {what} at step {}", r.layer, r.step);
    vec![Verdict::new(VerdictKind::ExplodingGradients, message)]
}

/// Layers that kept every parameter through every recorded epoch.
fn parameters_unchanged(e: &Evidence) -> Vec<Verdict> {
    let epochs = e.changes.iter().map(|c| c.epoch).max().unwrap_or(0);
    if epochs == 0 {
        return Vec::new();
    }
    let frozen: Vec<usize> =
        (1..=e.layers).filter(|&l| e.changes.iter().filter(|c| c.layer == l).all(|c| c.changed == 0)).collect();
    let message = if frozen.is_empty() {
        return Vec::new();
    } else if frozen.len() == e.layers {
        let finite = e.rows.iter().filter(|r| r.nonfinite == 0 && r.gw_norm.is_finite());
        let max_grad = finite.map(|r| r.gw_norm).fold(0.0, f64::max);
        format!(
            "parameters did not change: not one of the {} parameters moved in {epochs} epochs, although the weight-gradient norm reached {max_grad:.2e}: the optimiser is not updating this model",
            e.model.params.len()
        )
    } else {
        format!("parameters did not change: layer(s) {} kept every parameter in {epochs} epochs", layer_runs(&frozen))
    };
    vec![Verdict::new(VerdictKind::ParametersUnchanged, message)]
}

/// Hidden ReLU layers with more than [`DEAD_FRACTION`] of their units dead
/// over the last tenth of training.
fn dead_relu(e: &Evidence) -> Vec<Verdict> {
    let dead: Vec<(usize, f64)> =
        (1..e.layers).filter_map(|l| e.dead_shares[l - 1].filter(|&s| s > DEAD_FRACTION).map(|s| (l, s))).collect();
    // Up to four layers, a verdict each; more (a deep network), one for all.
    if dead.len() > 4 {
        let layers: Vec<String> = dead.iter().map(|(l, s)| format!("layer {l} {:.0}%", 100.0 * s)).collect();
        let message = format!(
            "dead ReLU units in {} layers (the share of a layer's units that output zero for every sample of the batch over the last tenth of training): {}",
            dead.len(),
            first_four(&layers)
        );
        return vec![Verdict::new(VerdictKind::DeadRelu, message)];
    }
    let each = |&(l, share): &(usize, f64)| {
        let message = format!(
            "dead ReLU units: {:.0}% of layer {l}'s {} units output zero for every sample of the batch over the last tenth of training",
            100.0 * share,
            e.model.linear(l - 1).fan_out
        );
        Verdict::new(VerdictKind::DeadRelu, message)
    };
    dead.iter().map(each).collect()
}

/// The window and the shortest plateau for a run of `steps` losses, or
/// `None` when the run is too short to tell a plateau from a pause.
fn flat_scale(steps: usize) -> Option<(usize, usize)> {
    let window = (steps / 20).clamp(FLAT_MIN_WINDOW, FLAT_WINDOW);
    let min_steps = FLAT_MIN_STEPS.min(steps / 2).max(4 * window);
    (min_steps <= steps).then_some((window, min_steps))
}

/// The longest stretch of windows whose means stay within
/// [`FLAT_TOLERANCE`] of its first window's, if it is long and high enough.
fn flat_loss(losses: &[f32], loss: &Loss, classes: usize) -> Option<Verdict> {
    let (window, min_steps) = flat_scale(losses.len())?;
    let means: Vec<f64> =
        losses.chunks_exact(window).map(|w| w.iter().map(|&l| f64::from(l)).sum::<f64>() / window as f64).collect();
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
    let steps = (e - s) * window;
    if steps < min_steps {
        return None;
    }
    let level = means[s];
    let (chance, what) = loss.constant_guess(classes);
    let note =
        if (level - chance).abs() < 0.05 * chance { format!(", next to {what} = {chance:.4}") } else { String::new() };
    let message = format!(
        "loss flat at {level:.4} from step {} to step {} ({steps} steps within {:.0}%){note}",
        s * window,
        e * window,
        100.0 * FLAT_TOLERANCE
    );
    Some(Verdict::new(VerdictKind::FlatLoss, message))
}

/// Clipping changed the gradient on more than [`CLIPPED_MOST`] of the steps.
fn clipped_most_steps(e: &Evidence) -> Vec<Verdict> {
    let clipped = e.history.clipped.iter().filter(|&&c| c).count();
    let steps = e.history.clipped.len();
    if steps == 0 || (clipped as f64) <= CLIPPED_MOST * steps as f64 {
        return Vec::new();
    }
    let last_tenth = &e.history.clipped[steps - steps.div_ceil(10)..];
    let late = 100.0 * last_tenth.iter().filter(|&&c| c).count() as f64 / last_tenth.len() as f64;
    let message = format!(
        "clipping fired on {clipped} of {steps} steps ({:.0}%; {late:.0}% of the last tenth): the run is held together by clipping, its step size set by the bound rather than the learning rate",
        100.0 * clipped as f64 / steps as f64
    );
    vec![Verdict::new(VerdictKind::ClippedMostSteps, message)]
}

mod residual;
pub use residual::{BRANCH_OFF_RATIO, EXPLODING_STREAM};

#[cfg(test)]
mod tests;
