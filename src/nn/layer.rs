//! One layer of a model as a value: its kind and its own forward/backward
//! pair (each kind's pass is in its file: [`Linear`], [`BatchNorm`],
//! [`LayerNorm`], [`Activation`], [`Scalar`], [`ResidualAdd`]), and the [`LayerInfo`] that everything keyed on a layer
//! (the probe, theory, the verdicts, the charts, TensorBoard, per-layer
//! settings, the state-dict names) reads. A new kind is a variant here and
//! a file beside it; the trainer does not change.

use super::activation::Activation;
use super::batchnorm::BatchNorm;
use super::layernorm::LayerNorm;
use super::linear::Linear;
use super::residual::ResidualAdd;
use super::scalar::Scalar;

/// A layer of a [`super::Model`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Layer {
    /// `y = x W^T + b`.
    Linear(Linear),
    /// Batch normalisation over the batch (training) or with running
    /// statistics (evaluation).
    BatchNorm(BatchNorm),
    /// Layer normalisation over each sample's features.
    LayerNorm(LayerNorm),
    /// An element-wise nonlinearity.
    Activation(Activation),
    /// A scalar multiplier or shift (a residual branch's alpha, Fixup's
    /// scalar biases).
    Scalar(Scalar),
    /// The end of a residual block: the skip (an earlier layer's output)
    /// plus the branch (the layer before).
    Add(ResidualAdd),
}

/// What kind of layer a [`Layer`] is (for [`LayerInfo`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// See [`Layer::Linear`].
    Linear,
    /// See [`Layer::BatchNorm`].
    BatchNorm,
    /// See [`Layer::LayerNorm`].
    LayerNorm,
    /// See [`Layer::Activation`].
    Activation,
    /// See [`Layer::Scalar`].
    Scalar,
    /// See [`Layer::Add`].
    Add,
}

/// A layer described for everything that keys on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// Its kind.
    pub kind: LayerKind,
    /// Its position in the model's sequence (from 0).
    pub position: usize,
    /// The Linear layer it belongs to (from 0): the Linear itself, or the
    /// one whose output it normalises or activates. The probe's, theory's
    /// and the charts' "layer l" is Linear `linear` (shown from 1).
    pub linear: usize,
    /// Features in per sample.
    pub fan_in: usize,
    /// Features out per sample.
    pub fan_out: usize,
    /// Its module name in the PyTorch module it mirrors: in the original
    /// `nn.Sequential`, `my_network.<i>` (index 0 being its Flatten); in a
    /// residual network, `input`, `blocks.<b>.fc1`, `output` and the like
    /// (a scalar's name is its parameter's).
    pub torch_name: String,
}

impl Layer {
    /// Its kind.
    pub fn kind(&self) -> LayerKind {
        match self {
            Layer::Linear(_) => LayerKind::Linear,
            Layer::BatchNorm(_) => LayerKind::BatchNorm,
            Layer::LayerNorm(_) => LayerKind::LayerNorm,
            Layer::Activation(_) => LayerKind::Activation,
            Layer::Scalar(_) => LayerKind::Scalar,
            Layer::Add(_) => LayerKind::Add,
        }
    }

    /// Features out per sample, given `fan_in` features in.
    pub fn fan_out(&self, fan_in: usize) -> usize {
        match self {
            Layer::Linear(linear) => linear.fan_out,
            Layer::BatchNorm(bn) => bn.width,
            Layer::LayerNorm(ln) => ln.width,
            Layer::Activation(_) | Layer::Scalar(_) | Layer::Add(_) => fan_in,
        }
    }

    /// Its parameters in the model's buffer (weights and biases, or scale
    /// and shift).
    pub fn num_params(&self) -> usize {
        match self {
            Layer::Linear(linear) => linear.num_params(),
            Layer::BatchNorm(bn) => 2 * bn.width,
            Layer::LayerNorm(ln) => 2 * ln.width,
            Layer::Scalar(scalar) => scalar.num_params(),
            Layer::Activation(_) | Layer::Add(_) => 0,
        }
    }
}
