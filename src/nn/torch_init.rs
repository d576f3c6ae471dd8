//! Initialisation as PyTorch draws it from a seed (`rng = "torch"`):
//! `torch.manual_seed(seed)` right before the model is built, every
//! `nn.Linear`'s own `reset_parameters` in construction order, then the
//! notebook's loop re-initialising every Linear with `torch.nn.init`.
//!
//! The bounds and standard deviations are computed in f64 in the order
//! `torch/nn/init.py` computes them (`std = gain / sqrt(fan)`, then
//! `bound = sqrt(3) * std`), because a different rounding of the bound
//! would change the float32 weights.

use super::init::{FanMode, Gain, Init};
use super::linear::Linear;
use super::model::Model;
use crate::rng::torch::TorchGenerator;

/// Why a scheme cannot be drawn as PyTorch draws it, or `Ok` for those that
/// can: the schemes `torch.nn.init` defines plus LeCun's (PyTorch's Kaiming
/// schemes with the `linear` gain), the construction's own draws
/// (`pytorch_default`, which keeps them) and weights from a file.
pub fn check_scheme(init: &Init) -> Result<(), String> {
    match init {
        Init::TruncatedNormal { .. } | Init::Orthogonal { .. } | Init::Lsuv { .. } => Err(format!(
            "rng = \"torch\" draws only the schemes whose PyTorch draws initscope reproduces \
             (kaiming_*, xavier_*, lecun_*, normal, uniform, constant, pytorch_default, from_file); \
             {} is not one of them",
            init.name()
        )),
        _ => Ok(()),
    }
}

/// Draws the model's Linear parameters as PyTorch would from `seed` and
/// returns the generator after the last draw (the data loaders draw on
/// from there). Batch-norm layers draw nothing in PyTorch and keep their
/// ones and zeros. Schemes must have passed [`check_scheme`].
pub fn initialise(model: &mut Model, schemes: &[(Init, Init)], seed: u64) -> TorchGenerator {
    assert_eq!(schemes.len(), model.linear_count(), "one scheme pair per Linear");
    let mut generator = TorchGenerator::manual_seed(seed);
    let layers: Vec<Linear> = model.linears().copied().collect();
    for layer in &layers {
        reset_parameters(model, layer, &mut generator);
    }
    for (layer, (weight, bias)) in layers.iter().zip(schemes) {
        draw(weight, &mut model.params[layer.weight_range()], layer, &mut generator);
        draw(bias, &mut model.params[layer.bias_range()], layer, &mut generator);
    }
    generator
}

/// `nn.Linear.reset_parameters`: `kaiming_uniform_(weight, a=sqrt(5))`,
/// then `uniform_(bias, -1/sqrt(fan_in), 1/sqrt(fan_in))`.
fn reset_parameters(model: &mut Model, layer: &Linear, generator: &mut TorchGenerator) {
    let a = 5f64.sqrt();
    let gain = (2.0 / (1.0 + a * a)).sqrt(); // calculate_gain("leaky_relu", sqrt(5))
    let bound = kaiming_std(gain, layer.fan_in) * 3f64.sqrt();
    generator.fill_uniform(&mut model.params[layer.weight_range()], -bound, bound);
    let bound = 1.0 / (layer.fan_in as f64).sqrt();
    generator.fill_uniform(&mut model.params[layer.bias_range()], -bound, bound);
}

/// `gain / sqrt(fan)`, as `kaiming_uniform_` and `kaiming_normal_` compute it.
fn kaiming_std(gain: f64, fan: usize) -> f64 {
    gain / (fan as f64).sqrt()
}

/// `gain * sqrt(2 / (fan_in + fan_out))`, as the Xavier schemes compute it.
fn xavier_std(gain: f64, layer: &Linear) -> f64 {
    gain * (2.0 / (layer.fan_in + layer.fan_out) as f64).sqrt()
}

/// Re-draws one tensor (`out`) of `layer` with `init`'s `torch.nn.init` call.
fn draw(init: &Init, out: &mut [f32], layer: &Linear, generator: &mut TorchGenerator) {
    let gain = |g: &Gain| g.value().expect("validated before use");
    let fan = |mode: &FanMode| match mode {
        FanMode::FanIn => layer.fan_in,
        FanMode::FanOut => layer.fan_out,
    };
    let mut uniform = |bound: f64| generator.fill_uniform(out, -bound, bound);
    match init {
        Init::KaimingUniform { mode, gain: g } => uniform(kaiming_std(gain(g), fan(mode)) * 3f64.sqrt()),
        Init::XavierUniform { gain: g } => uniform(xavier_std(gain(g), layer) * 3f64.sqrt()),
        Init::LecunUniform => uniform(kaiming_std(1.0, layer.fan_in) * 3f64.sqrt()),
        Init::KaimingNormal { mode, gain: g } => generator.fill_normal(out, 0.0, kaiming_std(gain(g), fan(mode))),
        Init::XavierNormal { gain: g } => generator.fill_normal(out, 0.0, xavier_std(gain(g), layer)),
        Init::LecunNormal => generator.fill_normal(out, 0.0, kaiming_std(1.0, layer.fan_in)),
        Init::Normal { mean, std } => generator.fill_normal(out, *mean, *std),
        Init::Uniform { a, b } => generator.fill_uniform(out, *a, *b),
        Init::Constant { value } => out.fill(*value as f32),
        // The construction's draws stay; a file's weights are loaded later.
        Init::PytorchDefault | Init::FromFile { .. } => {}
        Init::TruncatedNormal { .. } | Init::Orthogonal { .. } | Init::Lsuv { .. } => {
            unreachable!("check_scheme refuses {}", init.name())
        }
    }
}
