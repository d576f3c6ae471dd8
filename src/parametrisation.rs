//! Width parametrisations: how each Linear's initial scale, forward
//! multiplier and learning rate change as the network widens, relative to
//! a base width at which every one of them is PyTorch's standard
//! parametrisation (SP).
//!
//! A parametrisation resolves, for a network's Linear shapes, into one
//! [`LayerScale`] per Linear: factors on the weights and biases the
//! layer's scheme draws, a multiplier on its input (the weight's
//! contribution, `y = W (m x) + b`, as `mup`'s `MuReadout` multiplies its
//! input), and factors on the learning rate and weight decay of its weight
//! and bias parameter groups. The model, the optimiser and the theory take
//! these factors; nothing else knows which parametrisation it was.
//!
//! A dimension is a *width* when it is a hidden width that differs from
//! the base width (`mup`'s `zip_infshape` with `fin_if_same`); its width
//! multiplier is `width / base_width`. The input pixels and the classes are
//! never widths. The rules, for `m_in` and `m_out` the multipliers of a
//! Linear's fan-in and fan-out (1 where not a width):
//!
//! - `standard`: every factor 1.
//! - `mup` (Yang & Hu 2021, arXiv 2011.14522; Yang et al. 2022, Tensor
//!   Programs V, arXiv 2203.03466, Table 8 as the `mup` 1.0.0 package
//!   implements it): `set_base_shapes(rescale_params=True)` and
//!   `MuReadout`, then `MuSGD` or `MuAdam`; see [`mup`].
//! - `ntk` (Jacot et al. 2018; Tensor Programs IV, arXiv 2011.14522,
//!   Table 1, a = 1/2, b = 0, c = 0 for every layer with a width fan-in):
//!   the weight's multiplier is `m_in^(-1/2)` and its draw is scaled by
//!   `m_in^(1/2)`, so that its initial function is SP's and its learning
//!   rate stays put.
//! - `mean_field` (Mei, Montanari & Nguyen 2018 for one hidden layer;
//!   Nguyen & Pham 2020, arXiv 2001.11443, for several; Tensor Programs
//!   IV, Table 1, a = 1, b = 0, c = -1): the multiplier is `m_in^(-1)`,
//!   the draw scaled by `m_in^(1/2)`, and under SGD every learning rate
//!   is multiplied by the width multiplier the layer touches (its
//!   fan-in's, or its fan-out's for the first layer); under an Adam-like
//!   optimiser (whose step does not scale with the gradient) it stays.
//!
//! Weight decay follows `mup` (`decoupled_wd = False`): each group's
//! decay is divided by its learning-rate factor, so that `lr * wd`, the
//! decay per step, stays the base's; `decoupled_wd = true` keeps it.

use crate::error::SettingError;
use crate::optim::OptimizerKind;
use serde::{Deserialize, Serialize};

/// A parametrisation by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ParametrisationName {
    /// PyTorch's standard parametrisation: nothing scales with width.
    #[default]
    Standard,
    /// The neural tangent parametrisation.
    Ntk,
    /// The maximal update parametrisation, as the `mup` package.
    Mup,
    /// The mean-field parametrisation.
    MeanField,
}

/// The `[model] parametrisation = { ... }` table.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parametrisation {
    /// Which rules.
    pub name: ParametrisationName,
    /// The width at which the network is SP (`mup`'s base model's).
    pub base_width: usize,
    /// `MuReadout`'s `output_mult`: a constant on the readout's multiplier
    /// (`mup` only).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub output_multiplier: f64,
    /// Keep each group's weight decay instead of dividing it by the
    /// group's learning-rate factor (`mup`'s `decoupled_wd`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decoupled_wd: bool,
}

fn one() -> f64 {
    1.0
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

/// One dimension of a Linear's weight: its size and whether it is a width
/// (with its multiplier), as `mup`'s `InfDim`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dim {
    /// The multiplier `size / base`, when the dimension is a width.
    pub width_mult: Option<f64>,
}

impl Dim {
    /// A dimension that does not scale (pixels, classes, a hidden width
    /// equal to the base's).
    pub const FIXED: Dim = Dim { width_mult: None };

    /// A hidden dimension of `size` against the base width `base`.
    pub fn hidden(size: usize, base: usize) -> Self {
        Dim { width_mult: (size != base).then(|| size as f64 / base as f64) }
    }

    /// Its multiplier, 1 when it does not scale.
    pub fn mult(self) -> f64 {
        self.width_mult.unwrap_or(1.0)
    }
}

/// A Linear's weight shape `[out, in]` as dimensions, and whether it is
/// the readout (the last Linear).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearShape {
    /// The fan-out dimension.
    pub out: Dim,
    /// The fan-in dimension.
    pub fan_in: Dim,
    /// The network's output layer.
    pub readout: bool,
}

impl LinearShape {
    /// Width dimensions of the weight (`InfShape.ninf`).
    fn widths(&self) -> usize {
        usize::from(self.out.width_mult.is_some()) + usize::from(self.fan_in.width_mult.is_some())
    }

    /// The multiplier of its last width dimension (`InfShape.width_mult`:
    /// the fan-in's when it is a width, else the fan-out's, else 1).
    fn main_mult(&self) -> f64 {
        self.fan_in.width_mult.or(self.out.width_mult).unwrap_or(1.0)
    }
}

/// What a parametrisation does to one Linear, as factors (all 1 under SP).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerScale {
    /// On the weights the scheme draws.
    pub weight_init: f64,
    /// On the biases the scheme draws.
    pub bias_init: f64,
    /// On the layer's input, in the forward pass: `y = W (multiplier x) + b`.
    pub multiplier: f64,
    /// On the weight's learning rate.
    pub weight_lr: f64,
    /// On the bias's learning rate.
    pub bias_lr: f64,
    /// On the weight's weight decay.
    pub weight_wd: f64,
    /// On the bias's weight decay.
    pub bias_wd: f64,
}

impl LayerScale {
    /// Every factor 1.
    pub const IDENTITY: LayerScale = LayerScale {
        weight_init: 1.0,
        bias_init: 1.0,
        multiplier: 1.0,
        weight_lr: 1.0,
        bias_lr: 1.0,
        weight_wd: 1.0,
        bias_wd: 1.0,
    };

    /// Whether it changes the optimiser's groups.
    pub fn has_own_group(&self) -> bool {
        [self.weight_lr, self.bias_lr, self.weight_wd, self.bias_wd].iter().any(|&f| f != 1.0)
    }
}

/// Whether `kind` normalises its step entrywise (Adam-like in `mup`'s
/// sense: its learning rate scales as Adam's), rather than following the
/// gradient's size (SGD-like).
pub fn is_adam_like(kind: OptimizerKind) -> bool {
    !matches!(kind, OptimizerKind::Sgd)
}

impl Parametrisation {
    /// One [`LayerScale`] per Linear of `shapes`, for optimiser `kind`.
    pub fn scales(&self, shapes: &[LinearShape], kind: OptimizerKind) -> Vec<LayerScale> {
        shapes.iter().map(|s| self.scale(s, kind)).collect()
    }

    fn scale(&self, shape: &LinearShape, kind: OptimizerKind) -> LayerScale {
        let adam = is_adam_like(kind);
        let mut scale = match self.name {
            ParametrisationName::Standard => LayerScale::IDENTITY,
            ParametrisationName::Mup => mup(shape, adam, self.output_multiplier),
            ParametrisationName::Ntk => ntk(shape),
            ParametrisationName::MeanField => mean_field(shape, adam),
        };
        if !self.decoupled_wd {
            scale.weight_wd = 1.0 / scale.weight_lr;
            scale.bias_wd = 1.0 / scale.bias_lr;
        }
        scale
    }

    /// The one-line complaint about these settings, if any (`key` names
    /// the table).
    pub fn check(&self, key: &str) -> Result<(), SettingError> {
        if self.base_width == 0 {
            return Err(SettingError::new(format!("{key}.base_width"), "must be at least 1"));
        }
        if !(self.output_multiplier.is_finite() && self.output_multiplier > 0.0) {
            return Err(SettingError::new(format!("{key}.output_multiplier"), "must be a positive number"));
        }
        if self.output_multiplier != 1.0 && self.name != ParametrisationName::Mup {
            return Err(SettingError::new(
                format!("{key}.output_multiplier"),
                "only `mup` has one (MuReadout's output_mult)",
            ));
        }
        Ok(())
    }
}

/// `mup` 1.0.0's rules for one Linear:
/// - `set_base_shapes(rescale_params=True)`: a `MuReadout` multiplies its
///   weights and biases by `width_mult^(1/2)` (`MuReadout._rescale_parameters`);
///   any other Linear its biases by `m_in^(1/2)` (`rescale_linear_bias`);
/// - `MuReadout.forward`: the input times `output_mult / width_mult`;
/// - `MuSGD`: a vector-like parameter (one width dimension) has its lr
///   multiplied by its width multiplier, a matrix-like one (two) divided by
///   `m_in / m_out` (`fanin_fanout_mult_ratio`);
/// - `MuAdam` (and Adam-like optimisers): a matrix-like weight's lr divided
///   by `m_in`, everything else kept.
pub fn mup(shape: &LinearShape, adam: bool, output_multiplier: f64) -> LayerScale {
    let m = shape.main_mult();
    let (weight_init, multiplier) = if shape.readout { (m.sqrt(), output_multiplier / m) } else { (1.0, 1.0) };
    let bias_init = if shape.readout { m.sqrt() } else { shape.fan_in.mult().sqrt() };
    let (weight_lr, bias_lr) = match (adam, shape.widths()) {
        (true, 2) => (1.0 / m, 1.0),
        (true, _) => (1.0, 1.0),
        (false, 2) => (shape.out.mult() / shape.fan_in.mult(), shape.out.mult()),
        (false, 1) => (m, shape.out.mult()),
        (false, _) => (1.0, 1.0),
    };
    LayerScale { weight_init, bias_init, multiplier, weight_lr, bias_lr, ..LayerScale::IDENTITY }
}

/// The neural tangent parametrisation's rules for one Linear (see the
/// module's doc).
pub fn ntk(shape: &LinearShape) -> LayerScale {
    let m = shape.fan_in.mult();
    LayerScale { weight_init: m.sqrt(), multiplier: 1.0 / m.sqrt(), ..LayerScale::IDENTITY }
}

/// The mean-field parametrisation's rules for one Linear (see the module's
/// doc).
pub fn mean_field(shape: &LinearShape, adam: bool) -> LayerScale {
    let m = shape.fan_in.mult();
    let lr = if adam { 1.0 } else { shape.fan_in.width_mult.unwrap_or(shape.out.mult()) };
    LayerScale { weight_init: m.sqrt(), multiplier: 1.0 / m, weight_lr: lr, bias_lr: lr, ..LayerScale::IDENTITY }
}

#[cfg(test)]
mod tests;
