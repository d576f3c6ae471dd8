//! The losses of logits against labels, each as PyTorch computes it with
//! its default mean reduction: softmax cross-entropy
//! (`F.cross_entropy(logits, labels, label_smoothing=eps)`) and the mean
//! squared error to a one-hot target or to a centred one
//! (`F.mse_loss(logits, one_hot - 1 / C)`, Tensor Programs V's MLP and
//! `mup`'s examples). [`Loss`] is what a file's `[loss]` says.

use crate::error::SettingError;
use serde::{Deserialize, Serialize};

/// `[loss]`: which loss the network is trained on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Loss {
    /// Softmax cross-entropy; with `label_smoothing` eps the target is
    /// `(1 - eps) one_hot + eps / C` (Szegedy et al. 2016, section 7).
    CrossEntropy {
        /// In [0, 1].
        #[serde(default)]
        label_smoothing: f64,
    },
    /// Mean squared error of the logits to a target made of the label,
    /// averaged over every sample and class.
    Mse {
        /// `one_hot` (default) or `centered` (one-hot minus 1 / C).
        #[serde(default)]
        target: MseTarget,
    },
}

/// The regression target of [`Loss::Mse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MseTarget {
    /// 1 for the label's class, 0 elsewhere.
    #[default]
    OneHot,
    /// The one-hot vector minus 1 / C: zero mean over the classes.
    Centered,
}

impl Default for Loss {
    fn default() -> Self {
        Loss::CrossEntropy { label_smoothing: 0.0 }
    }
}

impl Loss {
    /// Whether this is the seed's loss (plain cross-entropy).
    pub fn is_default(&self) -> bool {
        *self == Loss::default()
    }

    /// Rejects impossible settings, naming the field under `key`.
    pub fn validate(&self, key: &str) -> Result<(), SettingError> {
        match self {
            Loss::CrossEntropy { label_smoothing: e } if !(0.0..=1.0).contains(e) => {
                Err(SettingError::new(format!("{key}.label_smoothing"), format!("must be in [0, 1], got {e}")))
            }
            _ => Ok(()),
        }
    }

    /// The loss of the best output that ignores the input, and how to say
    /// it: a uniform softmax (ln C, with or without smoothing), or for MSE
    /// the target's mean over the classes, `(C - 1) / C^2`.
    pub fn constant_guess(&self, classes: usize) -> (f64, String) {
        let c = classes as f64;
        match self {
            Loss::CrossEntropy { .. } => {
                (c.ln(), format!("the loss of a uniform guess over {classes} classes, ln {classes}"))
            }
            Loss::Mse { .. } => (
                (c - 1.0) / (c * c),
                format!("the squared error of the best constant output over {classes} classes, (C - 1) / C^2"),
            ),
        }
    }

    /// Forward and backward at once for a shard of a batch of `batch`
    /// (see [`softmax_cross_entropy_sum`] for the shapes): writes dL/dlogits
    /// of the batch's mean loss, returns the shard's per-sample loss SUM.
    pub fn sum(&self, logits: &[f32], labels: &[u8], dlogits: &mut [f32], classes: usize, batch: usize) -> f64 {
        match *self {
            Loss::CrossEntropy { label_smoothing: 0.0 } => {
                softmax_cross_entropy_sum(logits, labels, dlogits, classes, batch)
            }
            Loss::CrossEntropy { label_smoothing } => {
                smoothed_cross_entropy_sum(logits, labels, dlogits, classes, batch, label_smoothing)
            }
            Loss::Mse { target } => mse_sum(logits, labels, dlogits, classes, batch, target),
        }
    }
}

/// Cross-entropy to `(1 - eps) one_hot + eps / C`, as PyTorch's
/// `label_smoothing`: per sample `(1 - eps) nll + (eps / C) sum_c -log p_c`;
/// its gradient `(softmax - target) / batch`.
fn smoothed_cross_entropy_sum(
    logits: &[f32],
    labels: &[u8],
    dlogits: &mut [f32],
    classes: usize,
    batch: usize,
    eps: f64,
) -> f64 {
    let scale = 1.0 / batch as f32;
    let (keep, spread) = ((1.0 - eps) as f32, (eps / classes as f64) as f32);
    let mut total = 0.0f64;
    for ((row, grad), &label) in logits.chunks_exact(classes).zip(dlogits.chunks_exact_mut(classes)).zip(labels) {
        let label = usize::from(label);
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|&z| (z - max).exp()).sum();
        let log_sum = sum.ln() + max;
        let nll = f64::from(log_sum - row[label]);
        let smooth: f64 = row.iter().map(|&z| f64::from(log_sum - z)).sum();
        total += (1.0 - eps) * nll + eps / classes as f64 * smooth;
        for (c, (g, &z)) in grad.iter_mut().zip(row).enumerate() {
            let target = if c == label { keep + spread } else { spread };
            *g = ((z - max).exp() / sum - target) * scale;
        }
    }
    total
}

/// Mean squared error to the label's target, averaged over `batch * C`
/// entries: returns each sample's `sum_c (z_c - y_c)^2 / C`, summed; the
/// gradient is `2 (z - y) / (batch C)`, as `mse_loss_backward`.
fn mse_sum(logits: &[f32], labels: &[u8], dlogits: &mut [f32], classes: usize, batch: usize, target: MseTarget) -> f64 {
    let norm = (2.0 / (batch * classes) as f64) as f32;
    let shift = match target {
        MseTarget::OneHot => 0.0f32,
        MseTarget::Centered => (1.0 / classes as f64) as f32,
    };
    let mut total = 0.0f64;
    for ((row, grad), &label) in logits.chunks_exact(classes).zip(dlogits.chunks_exact_mut(classes)).zip(labels) {
        let mut squares = 0.0f64;
        for (c, (g, &z)) in grad.iter_mut().zip(row).enumerate() {
            let y = if c == usize::from(label) { 1.0f32 } else { 0.0 } - shift;
            let d = z - y;
            squares += f64::from(d) * f64::from(d);
            *g = norm * d;
        }
        total += squares / classes as f64;
    }
    total
}

/// Forward and backward at once, for `rows = labels.len()` samples that
/// are part of a batch of `batch` (a batch may be computed in shards).
///
/// - `logits`: `[rows, classes]`
/// - `labels`: `[rows]`, each `< classes`
/// - `dlogits`: `[rows, classes]`, overwritten with
///   `dL/dlogits = (softmax(logits) - onehot(label)) / batch`
///
/// Returns the SUM over the rows of `logsumexp(logits_b) - logits_b[label_b]`
/// in f64 (divide by `batch` for the mean), computed with the maximum
/// subtracted so that exp cannot overflow.
pub fn softmax_cross_entropy_sum(
    logits: &[f32],
    labels: &[u8],
    dlogits: &mut [f32],
    classes: usize,
    batch: usize,
) -> f64 {
    let scale = 1.0 / batch as f32;
    let mut total = 0.0f64;
    for ((row, grad), &label) in logits.chunks_exact(classes).zip(dlogits.chunks_exact_mut(classes)).zip(labels) {
        let label = usize::from(label);
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for (g, &z) in grad.iter_mut().zip(row) {
            *g = (z - max).exp();
            sum += *g;
        }
        total += f64::from(sum.ln() + max - row[label]);
        let inv = scale / sum;
        grad.iter_mut().for_each(|g| *g *= inv);
        grad[label] -= scale;
    }
    total
}

/// Mean loss over a whole batch: [`softmax_cross_entropy_sum`] with
/// `batch = labels.len()`, divided by it.
pub fn softmax_cross_entropy(logits: &[f32], labels: &[u8], dlogits: &mut [f32], classes: usize) -> f32 {
    let batch = labels.len();
    (softmax_cross_entropy_sum(logits, labels, dlogits, classes, batch) / batch as f64) as f32
}

/// Index of the largest logit of each row (the first one on ties, like
/// `torch.argmax`).
pub fn argmax_rows(logits: &[f32], classes: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend(logits.chunks_exact(classes).map(|row| {
        let mut best = 0;
        for (i, &v) in row.iter().enumerate() {
            if v > row[best] {
                best = i;
            }
        }
        best as u8
    }));
}
