//! Theory beside measurement: what mean-field theory predicts of a
//! variant's network before training, layer by layer (pre-activation
//! variance, gradient norms) and for the network as a whole (fixed point,
//! chi_1, depth scales, the edge of chaos and the variant's side of it).
//! Computed from the settings and the data's second moment alone; each run
//! writes it as `<variant>/theory.json` beside the measurements.

pub mod diagram;
pub mod file_weights;
pub mod meanfield;
pub mod norms;
pub mod quadrature;
pub mod residual;

use crate::data::batch::validation_split;
use crate::data::Dataset;
use crate::experiment::Experiment;
use crate::nn::{Activation, Init};
use crate::parametrisation::LayerScale;
use crate::spec::{DataShape, RunSpec};
use crate::verdict::{Verdict, VerdictKind};
use meanfield::{FixedPoint, MeanField, Regime};
use serde::{Deserialize, Serialize};

/// One Linear layer's prediction (numbered from 1, as the probe's records).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerPrediction {
    /// The layer, 1 for the first.
    pub layer: usize,
    /// Its inputs.
    pub fan_in: usize,
    /// Its outputs.
    pub fan_out: usize,
    /// sigma_w^2 = fan_in x Var(W).
    pub weight_variance: Option<f64>,
    /// sigma_b^2 = Var(b).
    pub bias_variance: Option<f64>,
    /// q^l, the pre-activation variance (Poole et al. 2016, Eq. 3; the
    /// first layer from the data: sigma_w^2 E[x_i^2] + sigma_b^2).
    pub pre_variance: Option<f64>,
    /// sqrt(q^l): what the probe measures as `pre_std` at step 0.
    pub pre_std: Option<f64>,
    /// E[phi(h)^2], the post-activation second moment (hidden layers).
    pub post_second_moment: Option<f64>,
    /// chi at this hidden layer: sigma_{w,l+1}^2 E[phi'(sqrt(q^l) z)^2]
    /// (Poole Eq. 7, Schoenholz et al. 2017 Eq. 5), the factor by which
    /// the squared backpropagated error shrinks from layer l+1 to layer l.
    pub chi1: Option<f64>,
    /// Predicted |dL/dW^l| / |dL/dW^L| (Schoenholz Eq. 12 for the error,
    /// times the norm of the layer's input).
    pub grad_ratio: Option<f64>,
    /// Why a number is missing: what the theory does not cover here.
    pub note: Option<String>,
}

/// A variant's prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantPrediction {
    /// The variant.
    pub name: String,
    /// Its hidden layers' activation.
    pub activation: String,
    /// E[x_i^2] of the inputs, measured on the training split.
    pub input_second_moment: f64,
    /// Per Linear layer.
    pub layers: Vec<LayerPrediction>,
    /// The hidden layers' shared sigma_w^2 and sigma_b^2 when they share
    /// them (a uniform network in the theory's sense).
    pub uniform: Option<(f64, f64)>,
    /// The uniform network's fixed point and depth scales.
    pub fixed_point: Option<FixedPoint>,
    /// chi_1: at the fixed point for a uniform network, else the geometric
    /// mean of the hidden layers' chi.
    pub chi1: Option<f64>,
    /// Ordered, critical, chaotic (or mixed, per layer).
    pub regime: Option<Regime>,
    /// The sigma_w^2 of the edge of chaos for this activation and the
    /// hidden layers' sigma_b^2.
    pub critical_weight_variance: Option<f64>,
    /// What is not covered, for the network as a whole.
    pub note: Option<String>,
    /// The input-output Jacobian's gain from the first layer's output to
    /// the logits, `E|J^T v|^2 / E|v|^2`: the product of the layers' chi
    /// (Poole et al. 2016, Eq. 7 chained; for residual blocks the product
    /// of their gradient growth). The probe measures it at step 0
    /// (`probe/jacobian.csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jacobian_gain: Option<f64>,
    /// Per residual block (empty for a plain network).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<residual::BlockPrediction>,
}

/// The prediction of every variant of `exp` on `data` (its inputs' second
/// moment measured on the training split).
pub fn predict_all(exp: &Experiment, data: &Dataset) -> Vec<VariantPrediction> {
    let (train, _) = validation_split(data.train.count, exp.validation_fraction);
    let moment = data.train_second_moment(train.end);
    RunSpec::per_variant(exp, DataShape::of(data)).iter().map(|spec| predict(spec, moment)).collect()
}

/// Adds the theory's prediction to a vanishing-signal verdict it explains:
/// the factor by which the pre-activation std was predicted to shrink per
/// layer over the hidden layers, beside the factor measured at the first
/// step (`measured`: (layer, pre_std) at that step).
pub fn quote_in_verdicts(verdicts: &mut [Verdict], prediction: &VariantPrediction, measured: &[(usize, f64)]) {
    let hidden = prediction.layers.len().saturating_sub(1);
    if hidden < 2 {
        return;
    }
    let predicted = |l: usize| prediction.layers.get(l - 1).and_then(|p| p.pre_std);
    let measured = |l: usize| measured.iter().find(|m| m.0 == l).map(|m| m.1);
    let per_layer = |first: f64, last: f64| (first / last).powf(1.0 / (hidden - 1) as f64);
    let (Some(p1), Some(pn), Some(m1), Some(mn)) = (predicted(1), predicted(hidden), measured(1), measured(hidden))
    else {
        return;
    };
    let (predicted, measured) = (per_layer(p1, pn), per_layer(m1, mn));
    if !(predicted > 1.0 && measured.is_finite()) {
        return;
    }
    for v in verdicts.iter_mut().filter(|v| v.kind == VerdictKind::VanishingSignal) {
        v.message.push_str(&format!(
            "; mean-field theory predicted it before training: the std shrinks {} per layer from layer 1 to {hidden}, measured {}",
            factor(predicted),
            factor(measured)
        ));
    }
}

/// `62x` or `1.4x`.
fn factor(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}x")
    } else {
        format!("{x:.2}x")
    }
}

/// sigma^2 of one scheme for a layer, or why there is none.
fn variance(init: &Init, fan_in: usize, fan_out: usize, scale_by_fan_in: bool) -> Result<f64, String> {
    let v = init.zero_mean_variance(fan_in, fan_out)?;
    Ok(if scale_by_fan_in { v * fan_in as f64 } else { v })
}

/// The prediction for run `spec` (named after its variant) on inputs with
/// second moment `input_second_moment`.
pub fn predict(spec: &RunSpec, input_second_moment: f64) -> VariantPrediction {
    match file_weights::with_file_moments(spec) {
        Some(Ok(measured)) => return predict(&measured, input_second_moment),
        Some(Err(note)) => {
            return VariantPrediction { note: Some(note), ..VariantPrediction::empty(spec, input_second_moment) }
        }
        None => {}
    }
    if let Some(net) = &spec.residual {
        return residual::predict(spec, net, input_second_moment);
    }
    let (widths, schemes) = (&spec.widths, &spec.schemes);
    let field = MeanField::new(spec.activation);
    let mut layers = propagate(&field, (widths, schemes, &spec.layer_scales), spec.batch_norm, input_second_moment);
    gradient_ratios(&mut layers, input_second_moment);
    let mut prediction = VariantPrediction { layers, ..VariantPrediction::empty(spec, input_second_moment) };
    let hidden = &prediction.layers[..prediction.layers.len() - 1];
    prediction.jacobian_gain = hidden.iter().map(|l| l.chi1).product::<Option<f64>>().filter(|_| !spec.batch_norm);
    whole_network(&field, &mut prediction);
    prediction
}

impl VariantPrediction {
    /// Run `spec`'s prediction with nothing predicted yet.
    fn empty(spec: &RunSpec, input_second_moment: f64) -> Self {
        VariantPrediction {
            name: spec.group.clone(),
            activation: activation_name(spec.activation),
            input_second_moment,
            layers: Vec::new(),
            uniform: None,
            fixed_point: None,
            chi1: None,
            regime: None,
            critical_weight_variance: None,
            note: None,
            jacobian_gain: None,
            blocks: Vec::new(),
        }
    }
}

fn activation_name(activation: Activation) -> String {
    match activation {
        Activation::LeakyRelu { slope } => format!("leaky_relu({slope})"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The forward recursion, layer by layer, stopping at the first layer the
/// theory does not cover. Each layer's sigma_w^2 is the effective one: its
/// scheme's times the square of its init factor and input multiplier
/// (`W (m x)` with `W = s W0` has variance `(s m)^2 Var(W0)`), and sigma_b^2
/// its scheme's times the square of its bias factor, so the prediction
/// follows every parametrisation.
fn propagate(
    field: &MeanField,
    (widths, schemes, scales): (&[usize], &[(Init, Init)], &[LayerScale]),
    batch_norm: bool,
    input_second_moment: f64,
) -> Vec<LayerPrediction> {
    let last = widths.len() - 1;
    let mut input_moment = Some(input_second_moment);
    let mut out: Vec<LayerPrediction> = Vec::with_capacity(last);
    for l in 1..=last {
        let (fan_in, fan_out) = (widths[l - 1], widths[l]);
        let (weight, bias) = &schemes[l - 1];
        let from_file = matches!(weight, Init::FromFile { .. });
        let scale = scales.get(l - 1).copied().unwrap_or(LayerScale::IDENTITY);
        let w = variance(weight, fan_in, fan_out, true).map(|v| v * (scale.weight_init * scale.multiplier).powi(2));
        let b = if from_file {
            Err("biases from a file have no formula".into())
        } else {
            variance(bias, fan_in, fan_out, false).map(|v| v * scale.bias_init.powi(2))
        };
        let mut note =
            w.as_ref().err().map(|e| format!("weights: {e}")).or(b.as_ref().err().map(|e| format!("biases: {e}")));
        if batch_norm && l > 1 {
            note = Some("after batch norm, which the theory does not cover".into());
        }
        let q = match (&w, &b, input_moment, &note) {
            (Ok(w), Ok(b), Some(m), None) => Some(w * m + b),
            _ => None,
        };
        if q.is_none() && note.is_none() {
            note = Some("an earlier layer is not covered".into());
        }
        let hidden = l < last;
        let post = q.filter(|_| hidden).map(|q| field.post_second_moment(q));
        input_moment = post;
        out.push(LayerPrediction {
            layer: l,
            fan_in,
            fan_out,
            weight_variance: w.ok(),
            bias_variance: b.ok(),
            pre_variance: q,
            pre_std: q.map(f64::sqrt),
            post_second_moment: post,
            chi1: None,
            grad_ratio: None,
            note,
        });
    }
    // chi of each hidden layer needs the next layer's sigma_w^2.
    for l in 0..last.saturating_sub(1) {
        let next_w = out[l + 1].weight_variance;
        out[l].chi1 = match (out[l].pre_variance, next_w) {
            (Some(q), Some(w)) => Some(w * field.derivative_moment(q)),
            _ => None,
        };
    }
    out
}

/// |dL/dW^l|^2 is |delta^l|^2 |x^{l-1}|^2 for one input; |delta^l|^2 =
/// chi_l |delta^{l+1}|^2 (Schoenholz Eq. 12 summed over units) and
/// |x^{l-1}|^2 = fan_in E[phi(h^{l-1})^2]. Relative to the output layer.
fn gradient_ratios(layers: &mut [LayerPrediction], input_second_moment: f64) {
    let last = layers.len() - 1;
    let input_norm = |l: usize| -> Option<f64> {
        let moment = if l == 0 { Some(input_second_moment) } else { layers[l - 1].post_second_moment };
        moment.map(|m| m * layers[l].fan_in as f64)
    };
    let Some(output_input) = input_norm(last) else { return };
    let mut error = Some(1.0);
    let mut ratios = vec![None; layers.len()];
    for l in (0..=last).rev() {
        if l < last {
            error = error.zip(layers[l].chi1).map(|(e, chi)| e * chi);
        }
        ratios[l] = error.zip(input_norm(l)).map(|(e, x)| (e * x / output_input).sqrt());
    }
    for (layer, ratio) in layers.iter_mut().zip(ratios) {
        layer.grad_ratio = ratio;
    }
}

/// The network as a whole: fixed point and depth scales when the hidden
/// layers share sigma_w^2 and sigma_b^2, else per-layer chi summarised.
fn whole_network(field: &MeanField, p: &mut VariantPrediction) {
    let hidden = p.layers.len() - 1;
    // The layers that take a hidden layer's output and feed another.
    let inner = if hidden >= 2 { &p.layers[1..hidden] } else { &p.layers[1..] };
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300);
    let pairs: Option<Vec<(f64, f64)>> = inner.iter().map(|l| l.weight_variance.zip(l.bias_variance)).collect();
    let Some(pairs) = pairs.filter(|p| !p.is_empty()) else {
        p.note = Some("the hidden layers' variances are not all covered".into());
        return;
    };
    let bias_shared = pairs.iter().all(|q| same(q.1, pairs[0].1));
    if bias_shared {
        p.critical_weight_variance = field.critical_weight_variance(pairs[0].1);
    }
    if bias_shared && pairs.iter().all(|q| same(q.0, pairs[0].0)) {
        let (w, b) = pairs[0];
        p.uniform = Some((w, b));
        p.fixed_point = field.fixed_point(w, b);
        p.chi1 = Some(p.fixed_point.as_ref().map_or(f64::INFINITY, |f| f.chi1));
        p.regime = p.chi1.map(Regime::of);
        if p.fixed_point.is_none() {
            p.note = Some("no fixed point: the variance grows without bound".into());
        }
        return;
    }
    let chis: Vec<f64> = p.layers.iter().filter_map(|l| l.chi1).collect();
    if chis.len() == hidden && !chis.is_empty() {
        let mean = (chis.iter().map(|c| c.ln()).sum::<f64>() / chis.len() as f64).exp();
        let regimes: Vec<Regime> = chis.iter().map(|&c| Regime::of(c)).collect();
        p.chi1 = Some(mean);
        p.regime = Some(if regimes.iter().all(|r| *r == regimes[0]) { regimes[0] } else { Regime::Mixed });
    }
    p.note = Some("the hidden layers differ in sigma_w^2 or sigma_b^2: chi1 is the geometric mean over layers".into());
}

#[cfg(test)]
mod tests;
