//! Softmax cross-entropy of logits, averaged over the batch, as PyTorch's
//! `F.cross_entropy(logits, labels)` with its default mean reduction.

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
