//! One layer of a model as a value: its kind and its own forward/backward
//! pair (each kind's pass is in its file: [`Linear`], [`BatchNorm`],
//! [`Activation`]), and the [`LayerInfo`] that everything keyed on a layer
//! (the probe, theory, the verdicts, the charts, TensorBoard, per-layer
//! settings, the state-dict names) reads. A new kind is a variant here and
//! a file beside it; the trainer does not change.

use super::activation::Activation;
use super::batchnorm::BatchNorm;
use super::linear::Linear;

/// A layer of a [`super::Model`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Layer {
    /// `y = x W^T + b`.
    Linear(Linear),
    /// Batch normalisation over the batch (training) or with running
    /// statistics (evaluation).
    BatchNorm(BatchNorm),
    /// An element-wise nonlinearity.
    Activation(Activation),
}

/// What kind of layer a [`Layer`] is (for [`LayerInfo`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// See [`Layer::Linear`].
    Linear,
    /// See [`Layer::BatchNorm`].
    BatchNorm,
    /// See [`Layer::Activation`].
    Activation,
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
    /// Its module name in the original PyTorch `nn.Sequential`
    /// (`my_network.<i>`, index 0 being its Flatten).
    pub torch_name: String,
}

impl Layer {
    /// Its kind.
    pub fn kind(&self) -> LayerKind {
        match self {
            Layer::Linear(_) => LayerKind::Linear,
            Layer::BatchNorm(_) => LayerKind::BatchNorm,
            Layer::Activation(_) => LayerKind::Activation,
        }
    }

    /// Features out per sample, given `fan_in` features in.
    pub fn fan_out(&self, fan_in: usize) -> usize {
        match self {
            Layer::Linear(linear) => linear.fan_out,
            Layer::BatchNorm(bn) => bn.width,
            Layer::Activation(_) => fan_in,
        }
    }

    /// Its parameters in the model's buffer (weights and biases, or scale
    /// and shift).
    pub fn num_params(&self) -> usize {
        match self {
            Layer::Linear(linear) => linear.num_params(),
            Layer::BatchNorm(bn) => 2 * bn.width,
            Layer::Activation(_) => 0,
        }
    }
}
