//! Building a [`Model`] layer by layer: a [`Builder`] hands each layer its
//! place in the parameter and running buffers, its PyTorch name and its
//! initial constants (norm scales 1, running variances 1, scalars' inits).
//! The MLP constructors are here; the residual network's is in
//! `residual.rs` beside it.

use super::Model;
use crate::nn::activation::Activation;
use crate::nn::batchnorm::BatchNorm;
use crate::nn::layer::Layer;
use crate::nn::layernorm::LayerNorm;
use crate::nn::linear::Linear;
use crate::nn::residual::ResidualAdd;
use crate::nn::scalar::{Scalar, ScalarOp, ScalarValue};

/// A model under construction, input first.
pub(super) struct Builder {
    input_width: usize,
    /// Features per sample out of the last layer added.
    width: usize,
    layers: Vec<Layer>,
    names: Vec<String>,
    params: usize,
    running: usize,
    /// Values the buffers start at other than 0: `(range, value)`.
    params_init: Vec<(std::ops::Range<usize>, f32)>,
    running_init: Vec<(std::ops::Range<usize>, f32)>,
    /// Each Linear's input multiplier (unsaid: 1), first to last.
    multipliers: Vec<f32>,
    /// Linears added so far.
    linears: usize,
}

impl Builder {
    /// An empty model taking `input_width` features per sample.
    pub(super) fn new(input_width: usize) -> Self {
        Builder {
            input_width,
            width: input_width,
            layers: Vec::new(),
            names: Vec::new(),
            params: 0,
            running: 0,
            params_init: Vec::new(),
            running_init: Vec::new(),
            multipliers: Vec::new(),
            linears: 0,
        }
    }

    /// Multiplies Linear `l`'s input by `multipliers[l]` (a fixed scalar
    /// layer `<name>.multiplier` before it, where not 1).
    pub(super) fn with_multipliers(mut self, multipliers: &[f32]) -> Self {
        self.multipliers = multipliers.to_vec();
        self
    }

    /// The position the next layer will have.
    pub(super) fn next_position(&self) -> usize {
        self.layers.len()
    }

    /// Features per sample out of the last layer added.
    pub(super) fn width(&self) -> usize {
        self.width
    }

    fn push(&mut self, layer: Layer, name: String) {
        self.params += layer.num_params();
        self.width = layer.fan_out(self.width);
        self.layers.push(layer);
        self.names.push(name);
    }

    /// A Linear to `fan_out` features (all zero until initialised), behind
    /// its input multiplier where that is not 1.
    pub(super) fn linear(&mut self, fan_out: usize, name: String) {
        let multiplier = self.multipliers.get(self.linears).copied().unwrap_or(1.0);
        self.linears += 1;
        if multiplier != 1.0 {
            let scalar = Scalar { op: ScalarOp::Multiply, value: ScalarValue::Fixed(multiplier) };
            self.push(Layer::Scalar(scalar), format!("{name}.multiplier"));
        }
        self.push(Layer::Linear(Linear { fan_in: self.width, fan_out, offset: self.params }), name);
    }

    /// A batch norm: scale 1, shift 0, running mean 0 and variance 1.
    pub(super) fn batch_norm(&mut self, name: String) {
        let (width, offset, running) = (self.width, self.params, self.running);
        let bn = BatchNorm { width, offset, running };
        self.params_init.push((bn.gamma_range(), 1.0));
        self.running_init.push((running + width..running + 2 * width, 1.0));
        self.running += 2 * width;
        self.push(Layer::BatchNorm(bn), name);
    }

    /// A layer norm: scale 1, shift 0.
    pub(super) fn layer_norm(&mut self, name: String) {
        let ln = LayerNorm { width: self.width, offset: self.params };
        self.params_init.push((ln.gamma_range(), 1.0));
        self.push(Layer::LayerNorm(ln), name);
    }

    /// An element-wise nonlinearity.
    pub(super) fn activation(&mut self, activation: Activation, name: String) {
        self.push(Layer::Activation(activation), name);
    }

    /// A scalar multiplier or shift starting at `init`, a parameter when
    /// `trainable`.
    pub(super) fn scalar(&mut self, op: ScalarOp, init: f32, trainable: bool, name: String) {
        let value = if trainable {
            self.params_init.push((self.params..self.params + 1, init));
            ScalarValue::Param(self.params)
        } else {
            ScalarValue::Fixed(init)
        };
        self.push(Layer::Scalar(Scalar { op, value }), name);
    }

    /// The end of a residual block whose skip is the output of the layer at
    /// position `from`.
    pub(super) fn add(&mut self, from: usize, name: String) {
        self.push(Layer::Add(ResidualAdd { from }), name);
    }

    /// The model, its buffers at their initial constants.
    pub(super) fn finish(self) -> Model {
        let linear_positions =
            self.layers.iter().enumerate().filter(|(_, l)| matches!(l, Layer::Linear(_))).map(|p| p.0).collect();
        let mut model = Model {
            layers: self.layers,
            names: self.names,
            input_width: self.input_width,
            params: vec![0.0; self.params],
            running: vec![0.0; self.running],
            batches_tracked: 0,
            linear_positions,
        };
        self.params_init.into_iter().for_each(|(r, v)| model.params[r].fill(v));
        self.running_init.into_iter().for_each(|(r, v)| model.running[r].fill(v));
        model
    }
}

impl Model {
    /// The MLP `sizes[0] -> sizes[1] -> ... -> sizes[last]`, `activation`
    /// after every Linear but the last, all parameters zero; see
    /// [`Model::initialise`].
    pub fn mlp(sizes: &[usize], activation: Activation) -> Self {
        Self::mlp_with_batch_norm(sizes, activation, false)
    }

    /// [`Model::mlp`], with batch normalisation between each hidden Linear
    /// and its activation when `batch_norm` (scale 1, shift 0, running mean
    /// 0 and variance 1), as the original `nn.Sequential` orders them; the
    /// layers are named `my_network.<i>` after it (index 0 its Flatten).
    pub fn mlp_with_batch_norm(sizes: &[usize], activation: Activation, batch_norm: bool) -> Self {
        Self::mlp_multiplied(sizes, activation, batch_norm, &[])
    }

    /// [`Model::mlp_with_batch_norm`] with Linear `l`'s input multiplied by
    /// `multipliers[l]` (unsaid: 1), as a fixed scalar layer named
    /// `<linear>.multiplier` before it (the original's modules keep their
    /// names).
    pub fn mlp_multiplied(sizes: &[usize], activation: Activation, batch_norm: bool, multipliers: &[f32]) -> Self {
        assert!(sizes.len() >= 2 && sizes.iter().all(|&s| s > 0), "bad sizes {sizes:?}");
        let mut b = Builder::new(sizes[0]).with_multipliers(multipliers);
        let mut module = 0;
        let mut name = || {
            module += 1;
            format!("my_network.{module}")
        };
        for (l, &out) in sizes[1..].iter().enumerate() {
            b.linear(out, name());
            if l == sizes.len() - 2 {
                break;
            }
            if batch_norm {
                b.batch_norm(name());
            }
            b.activation(activation, name());
        }
        b.finish()
    }
}
