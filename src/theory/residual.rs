//! Mean-field theory of residual networks at initialisation (Yang &
//! Schoenholz 2017, "Mean Field Residual Networks: On the Edge of Chaos",
//! arXiv 1712.08969, Sec. 3, the "full residual" network).
//!
//! In the pre-activation order the stream is `x_{b+1} = x_b + alpha F(x_b)`.
//! At initialisation the branch's last weights are independent of the
//! stream and have mean zero, so the stream and the branch output are
//! uncorrelated and second moments add (their Eq. 5 and Theorem 3.2):
//! `s_{b+1} = s_b + alpha^2 q_m`, where `q_m` is the branch's last
//! pre-activation variance, found by the plain recursion inside the branch
//! from the branch input (`s_b`, or 1 after a norm). Backward, each block
//! multiplies the squared error by `1 + alpha^2 prod_k chi_k` (their
//! Theorem 3.3), `chi_k = sigma_{w,k}^2 E[phi'(h)^2]` divided by the norm's
//! input variance where a norm rescales it. Growth is polynomial instead of
//! exponential: a ReLU stream with He-scaled branches grows by the fixed
//! factor `1 + alpha^2` per block.
//!
//! Layer norm and batch norm make their output's per-feature second moment
//! exactly 1 (scale 1, shift 0 at initialisation) in the wide limit; the
//! post-activation order is not covered (the stream after the addition is
//! a nonlinearity of a sum of non-Gaussian terms), and says so.

use super::meanfield::MeanField;
use super::{variance, LayerPrediction, VariantPrediction};
use crate::nn::residual::{BlockOrder, BranchNorm, Residual};
use crate::spec::RunSpec;
use serde::{Deserialize, Serialize};

/// One residual block's prediction (numbered from 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockPrediction {
    /// The block, 1 for the first.
    pub block: usize,
    /// E[x^2] per feature of the stream entering the block.
    pub stream_in: f64,
    /// E[(alpha F(x))^2] per feature of the branch's output, alpha applied.
    pub branch_out: f64,
    /// E[x^2] per feature of the stream leaving it: `stream_in + branch_out`.
    pub stream_out: f64,
    /// sqrt(branch_out / stream_in): the branch's share of the block's
    /// output that Fixup and SkipInit make small.
    pub branch_ratio: f64,
    /// The factor `1 + alpha^2 prod_k chi_k` by which the block multiplies
    /// the squared backpropagated error.
    pub gradient_growth: f64,
}

/// The prediction for residual run `spec` with blocks `net` on inputs of
/// second moment `input_second_moment`.
pub fn predict(spec: &RunSpec, net: &Residual, input_second_moment: f64) -> VariantPrediction {
    let field = MeanField::new(spec.activation);
    let mut prediction = VariantPrediction::empty(spec, input_second_moment);
    match sigmas(spec, net) {
        Err(note) => prediction.note = Some(note),
        Ok(_) if net.order == BlockOrder::Post => {
            prediction.note =
                Some("post-activation blocks are not covered: the stream after the addition is not Gaussian".into());
        }
        Ok(sigmas) => {
            let (layers, blocks, jacobian) = Stream::new(&field, net, spec, &sigmas).run(input_second_moment);
            prediction.layers = layers;
            prediction.blocks = blocks;
            prediction.jacobian_gain = Some(jacobian).filter(|_| net.norm != BranchNorm::BatchNorm);
        }
    }
    prediction
}

/// Every Linear's (sigma_w^2, sigma_b^2) as initialised, the rule's
/// factors applied; or what is not covered.
fn sigmas(spec: &RunSpec, net: &Residual) -> Result<Vec<(f64, f64)>, String> {
    let (inputs, width, classes) = (spec.widths[0], spec.widths[1], spec.widths[2]);
    let factors = net.weight_factors();
    let last = factors.len() - 1;
    // Input Linear in -> W, every branch Linear W -> W, output W -> classes.
    let fans = |l: usize| match l {
        0 => (inputs, width),
        l if l == last => (width, classes),
        _ => (width, width),
    };
    let layers = spec.schemes.iter().zip(factors).zip(&spec.layer_scales).enumerate();
    layers
        .map(|(l, (((weight, bias), f), scale))| {
            let (fi, fo) = fans(l);
            let w = variance(weight, fi, fo, true).map_err(|e| format!("layer {}: weights: {e}", l + 1))?;
            let b = variance(bias, fi, fo, false).map_err(|e| format!("layer {}: biases: {e}", l + 1))?;
            // The rule's factor, the parametrisation's init factors and the
            // input multiplier (a fixed scalar before the Linear) all scale
            // the effective weights: sigma_w^2 by their squares.
            let f = f64::from(f) * scale.weight_init * scale.multiplier;
            Ok((w * f * f, if f == 0.0 { 0.0 } else { b * scale.bias_init.powi(2) }))
        })
        .collect()
}

/// The forward and backward recursions through the stream.
struct Stream<'a> {
    field: &'a MeanField,
    net: &'a Residual,
    sigmas: &'a [(f64, f64)],
    widths: (usize, usize, usize),
    alpha2: f64,
}

impl<'a> Stream<'a> {
    fn new(field: &'a MeanField, net: &'a Residual, spec: &RunSpec, sigmas: &'a [(f64, f64)]) -> Self {
        let alpha = f64::from(net.alpha().init);
        let widths = (spec.widths[0], spec.widths[1], spec.widths[2]);
        Stream { field, net, sigmas, widths, alpha2: alpha * alpha }
    }

    /// The variance a norm hands on: 1 after a norm, else its input's.
    fn normed(&self, v: f64) -> f64 {
        if self.net.norm == BranchNorm::None {
            v
        } else {
            1.0
        }
    }

    /// The norm's factor on the squared error: 1/v after a norm of input
    /// variance v.
    fn norm_jacobian(&self, v: f64) -> f64 {
        if self.net.norm == BranchNorm::None {
            1.0
        } else {
            1.0 / v
        }
    }

    fn layer(&self, l: usize, fans: (usize, usize), q: f64, post: Option<f64>) -> LayerPrediction {
        let (w, b) = self.sigmas[l];
        LayerPrediction {
            layer: l + 1,
            fan_in: fans.0,
            fan_out: fans.1,
            weight_variance: Some(w),
            bias_variance: Some(b),
            pre_variance: Some(q),
            pre_std: Some(q.sqrt()),
            post_second_moment: post,
            chi1: None,
            grad_ratio: None,
            note: None,
        }
    }

    /// The layers, the blocks and the Jacobian's gain.
    fn run(&self, input_second_moment: f64) -> (Vec<LayerPrediction>, Vec<BlockPrediction>, f64) {
        let (inputs, width, classes) = self.widths;
        let f = self.field;
        let (w0, b0) = self.sigmas[0];
        let mut s = w0 * input_second_moment + b0;
        let mut layers = vec![self.layer(0, (inputs, width), s, Some(f.post_second_moment(self.normed(s))))];
        let mut blocks = Vec::with_capacity(self.net.blocks);
        // Per Linear: the chi that carries its output's error back to its input.
        let mut chis = vec![0.0; self.sigmas.len()];
        for b in 0..self.net.blocks {
            let (mut v, mut chain) = (s, 1.0);
            let branch = self.net.branch_linears(b);
            for l in branch.clone() {
                let (w, bias) = self.sigmas[l];
                let n = self.normed(v);
                let q = w * f.post_second_moment(n) + bias;
                chis[l] = w * f.derivative_moment(n) * self.norm_jacobian(v);
                chain *= chis[l];
                let post = (l + 1 < branch.end).then(|| f.post_second_moment(self.normed(q)));
                layers.push(self.layer(l, (width, width), q, post));
                v = q;
            }
            let branch_out = self.alpha2 * v;
            blocks.push(BlockPrediction {
                block: b + 1,
                stream_in: s,
                branch_out,
                stream_out: s + branch_out,
                branch_ratio: (branch_out / s).sqrt(),
                gradient_growth: 1.0 + self.alpha2 * chain,
            });
            s += branch_out;
        }
        let out = self.sigmas.len() - 1;
        let (w, bias) = self.sigmas[out];
        let n = self.normed(s);
        layers.push(self.layer(out, (width, classes), w * f.post_second_moment(n) + bias, None));
        chis[out] = w * f.derivative_moment(n) * self.norm_jacobian(s);
        self.gradient_ratios(&mut layers, &blocks, &chis, input_second_moment);
        let jacobian = chis[out] * blocks.iter().map(|b| b.gradient_growth).product::<f64>();
        (layers, blocks, jacobian)
    }

    /// |dL/dW^l| / |dL/dW^out| = sqrt(|delta^l|^2 |x^{l-1}|^2 / the output
    /// layer's), the squared errors carried back through the blocks'
    /// growth and, inside a branch, alpha^2 and the later layers' chi.
    fn gradient_ratios(&self, layers: &mut [LayerPrediction], blocks: &[BlockPrediction], chis: &[f64], m_in: f64) {
        let f = self.field;
        let (inputs, width, _) = self.widths;
        let out = layers.len() - 1;
        let input_norm = |l: usize, v: f64| -> f64 {
            if l == 0 {
                m_in * inputs as f64
            } else {
                f.post_second_moment(self.normed(v)) * width as f64
            }
        };
        let last_stream = blocks.last().map_or(layers[0].pre_variance.unwrap_or(0.0), |b| b.stream_out);
        let output_input = input_norm(out, last_stream);
        // The squared error on the stream leaving each block, last first.
        let mut error = chis[out];
        for b in (0..self.net.blocks).rev() {
            let branch = self.net.branch_linears(b);
            let mut inner = self.alpha2 * error;
            for l in branch.clone().rev() {
                let v = if l == branch.start { blocks[b].stream_in } else { layers[l - 1].pre_variance.unwrap_or(0.0) };
                layers[l].grad_ratio = Some((inner * input_norm(l, v) / output_input).sqrt());
                inner *= chis[l];
            }
            error *= blocks[b].gradient_growth;
        }
        layers[0].grad_ratio = Some((error * input_norm(0, 0.0) / output_input).sqrt());
        layers[out].grad_ratio = Some(1.0);
    }
}
