//! What a normalisation is compensating for. A network with batch norm or
//! layer norm hides its initialisation's scale from the signal: the norms
//! put every normalised input back to unit variance. The question a user
//! asks is what the network would do without them, and mean-field theory
//! answers it before training: the same network, the same schemes, the
//! norms taken out ([`without_norms`]). The verdict ([`norm_verdict`])
//! puts that prediction beside what the norms measurably divided out at
//! step 0 (the probe's pre-activation std of a plain network, the stream's
//! RMS entering a residual network's blocks).

use super::{predict, VariantPrediction};
use crate::nn::residual::BranchNorm;
use crate::spec::RunSpec;
use crate::verdict::{Verdict, VerdictKind};

/// A change of the signal's RMS by more than this factor over the depth
/// (10^4 in variance) is one the network could not train through without
/// the norm: the bound of the probe's exploding-stream verdict, and the
/// hundredfold fall of its vanishing-signal verdict, read both ways.
pub const NORM_NEEDED: f64 = 100.0;

/// A change of the backpropagated squared error by more than this factor
/// from the output to the first layer (100x in the gradient's norm, either
/// way): the scale at which the probe calls gradients vanishing relative
/// to the output layer's, squared to a variance.
pub const GRADIENT_NEEDED: f64 = 1e4;

/// The prediction for `spec`'s network with its norms taken out (the
/// plain network's batch norm, or every residual branch's norm and the
/// final one); `None` when it has no norm.
pub fn without_norms(spec: &RunSpec, input_second_moment: f64) -> Option<VariantPrediction> {
    let mut bare = spec.clone();
    match &mut bare.residual {
        Some(net) if net.norm != BranchNorm::None => net.norm = BranchNorm::None,
        None if spec.batch_norm => bare.batch_norm = false,
        _ => return None,
    }
    Some(predict(&bare, input_second_moment))
}

/// What the norms measured at step 0: per Linear (plain) or per block
/// (residual), `(index from 1, value)`.
pub struct NormInputs<'a> {
    /// `(layer, pre-activation std)`: a plain network's Linear outputs,
    /// each the input of the batch norm after it.
    pub pre_std: &'a [(usize, f64)],
    /// `(block, stream RMS)`: the residual stream entering each block.
    pub stream_rms: &'a [(usize, f64)],
}

/// The verdict on what `spec`'s norms compensate for, from `bare` (its
/// [`without_norms`] prediction) and the norms' measured inputs; `None`
/// without norms or measurements.
pub fn norm_verdict(spec: &RunSpec, bare: &VariantPrediction, measured: &NormInputs) -> Option<Verdict> {
    let (what, measured_part, predicted) = match &spec.residual {
        Some(net) => (norm_name(net.norm), measured_stream(measured.stream_rms)?, predicted_stream(bare)),
        None => ("batch norm", measured_pre_std(measured.pre_std)?, predicted_signal(bare)),
    };
    let predicted = match predicted {
        Some((sentence, change)) => format!("{sentence}{}", judgement(change, bare.jacobian_gain)),
        None => format!(
            "what it would do without them is not predicted ({})",
            bare.note.clone().unwrap_or_else(|| "the theory does not cover this network".into())
        ),
    };
    Some(Verdict::new(
        VerdictKind::NormCompensating,
        format!("{what} compensating: {measured_part}; without the norms, {predicted}"),
    ))
}

fn norm_name(norm: BranchNorm) -> &'static str {
    match norm {
        BranchNorm::LayerNorm => "layer norm",
        _ => "batch norm",
    }
}

/// The first and last of `values` (sorted by index) that are finite.
fn ends(values: &[(usize, f64)]) -> Option<((usize, f64), (usize, f64))> {
    let mut finite = values.iter().copied().filter(|v| v.1.is_finite() && v.1 > 0.0);
    let first = finite.next()?;
    Some((first, finite.next_back().unwrap_or(first)))
}

fn measured_stream(stream_rms: &[(usize, f64)]) -> Option<String> {
    let ((b1, a), (bl, b)) = ends(stream_rms)?;
    Some(format!(
        "at step 0 the residual stream's RMS is {a:.3} entering block {b1} and {b:.3} entering block {bl} ({}), and the norms bring what each branch normalises back to unit scale",
        factor(b / a)
    ))
}

fn measured_pre_std(pre_std: &[(usize, f64)]) -> Option<String> {
    let hidden: Vec<(usize, f64)> = pre_std[..pre_std.len().saturating_sub(1)].to_vec();
    let ((l1, a), (ll, b)) = ends(&hidden)?;
    let (lo, hi) = hidden
        .iter()
        .filter(|v| v.1.is_finite())
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v.1), hi.max(v.1)));
    Some(format!(
        "at step 0 the pre-activations reaching the norms have std {a:.3e} at layer {l1} and {b:.3e} at layer {ll} (from {lo:.3e} to {hi:.3e}), and the norms scale each back to 1 (by {} to {})",
        factor(1.0 / hi),
        factor(1.0 / lo)
    ))
}

/// The predicted stream change over the blocks, and its sentence.
fn predicted_stream(bare: &VariantPrediction) -> Option<(String, f64)> {
    let (first, last) = (bare.blocks.first()?, bare.blocks.last()?);
    let (a, b) = (first.stream_in.sqrt(), last.stream_out.sqrt());
    let change = b / a;
    let sentence = format!(
        "mean-field theory predicts this initialisation's stream would go from RMS {a:.3} to {b:.3e} over the {} blocks ({})",
        bare.blocks.len(),
        factor(change)
    );
    Some((sentence, change))
}

/// The predicted change of the pre-activation std from the first hidden
/// layer to the last, and its sentence.
fn predicted_signal(bare: &VariantPrediction) -> Option<(String, f64)> {
    let hidden = &bare.layers[..bare.layers.len().saturating_sub(1)];
    let (a, b) = (hidden.first()?.pre_std?, hidden.last()?.pre_std?);
    let change = b / a;
    let sentence = format!(
        "mean-field theory predicts this initialisation's pre-activation std would go from {a:.3e} at layer 1 to {b:.3e} at layer {} ({})",
        hidden.len(),
        factor(change)
    );
    Some((sentence, change))
}

/// What the predicted change (and the squared gradient's change through
/// the whole network, `gain`) means for training.
fn judgement(change: f64, gain: Option<f64>) -> String {
    let gradient = gain.filter(|g| g.is_finite() && *g > 0.0);
    let gradient_part = gradient.map_or(String::new(), |g| {
        format!(", and the backpropagated squared error {} from the output to the first layer", factor(g))
    });
    let gradient_off = gradient.is_some_and(|g| !(1.0 / GRADIENT_NEEDED..=GRADIENT_NEEDED).contains(&g));
    let verdict = if change > NORM_NEEDED {
        "the signal would explode: the norms are what keep this initialisation trainable"
    } else if change < 1.0 / NORM_NEEDED {
        "the signal would vanish: the norms are what keep this initialisation trainable"
    } else if gradient_off {
        "the signal keeps its scale but the gradient would not: the norms are what keep the gradient's scale"
    } else {
        "the scales would stay within 100x: at initialisation the norms compensate for little"
    };
    format!("{gradient_part}; {verdict}")
}

/// [`super::factor`] for any positive ratio: `1/62x` below 1, `3.1e5x`
/// from 10^4.
fn factor(x: f64) -> String {
    match x {
        x if !x.is_finite() => format!("{x}x"),
        x if x < 1.0 => format!("1/{}", factor(1.0 / x)),
        x if x >= 1e4 => format!("{x:.1e}x"),
        x => super::factor(x),
    }
}
