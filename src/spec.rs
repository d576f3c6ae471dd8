//! One resolved run: everything one run (a variant with a seed) of an
//! experiment needs, resolved once from the experiment, the variant's
//! overrides and the data's shape. The trainer, theory and the benchmark
//! take a [`RunSpec`]; none of them looks at the experiment's overrides
//! again, so "which network, which optimiser, which schemes" has one answer.

use crate::data::{Dataset, CLASSES};
use crate::experiment::{Experiment, RunUnit};
use crate::nn::loss::Loss;
use crate::nn::residual::Residual;
use crate::nn::{Activation, Init, Model};
use crate::optim::clip::ClipSettings;
use crate::optim::OptimizerSettings;
use crate::parametrisation::{Dim, LayerScale, LinearShape, Parametrisation};
use crate::rng::torch::TorchGenerator;
use crate::rng::RngKind;
use crate::schedule::ScheduleSettings;

/// The shape of the data a run trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataShape {
    /// Features per input sample (pixels per image).
    pub input_width: usize,
    /// Classes of the labels.
    pub classes: usize,
}

impl DataShape {
    /// The shape of `data`'s training images, with initscope's 10 classes.
    pub fn of(data: &Dataset) -> Self {
        DataShape { input_width: data.train.pixels_per_image(), classes: CLASSES }
    }
}

/// One Linear's own learning rate and weight decay (of its weight, and
/// of its bias), as PyTorch's `param_groups` would hold them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerGroup {
    /// The Linear, 1 for the first.
    pub layer: usize,
    /// The weight's lr (the optimiser's times the layer's `lr_scale`).
    pub weight_lr: f64,
    /// The bias's lr (times `bias_lr_scale`, or `lr_scale`).
    pub bias_lr: f64,
    /// The weight's weight decay.
    pub weight_decay: f64,
    /// The bias's weight decay.
    pub bias_weight_decay: f64,
}

/// The layers of `variant` with their own learning rate or weight decay,
/// its per-layer settings on top of its parametrisation's factors
/// (`scales`, one per Linear).
fn layer_groups(
    variant: &crate::experiment::Variant,
    optimizer: &OptimizerSettings,
    scales: &[LayerScale],
) -> Vec<LayerGroup> {
    let own = |layer: usize| variant.layers.iter().find(|o| o.layer == layer);
    (1..=scales.len())
        .filter(|&l| scales[l - 1].has_own_group() || own(l).is_some_and(|o| o.has_own_group()))
        .map(|layer| {
            let (o, s) = (own(layer), &scales[layer - 1]);
            let lr_scale = o.and_then(|o| o.lr_scale).unwrap_or(1.0);
            let bias_lr_scale = o.and_then(|o| o.bias_lr_scale).unwrap_or(lr_scale);
            let wd = o.and_then(|o| o.weight_decay).unwrap_or(optimizer.weight_decay);
            LayerGroup {
                layer,
                weight_lr: optimizer.lr * lr_scale * s.weight_lr,
                bias_lr: optimizer.lr * bias_lr_scale * s.bias_lr,
                weight_decay: wd * s.weight_wd,
                bias_weight_decay: wd * s.bias_wd,
            }
        })
        .collect()
}

/// Each Linear's `(fan_in, fan_out)`, first to last, of the network of
/// `widths` (input, hidden..., classes; with `residual`, input, stream,
/// classes and every branch Linear stream to stream).
fn linear_fans(widths: &[usize], residual: Option<&Residual>) -> Vec<(usize, usize)> {
    match residual {
        Some(net) => {
            let (input, stream, classes) = (widths[0], widths[1], widths[2]);
            let branches = std::iter::repeat_n((stream, stream), net.blocks * net.branch_layers);
            std::iter::once((input, stream)).chain(branches).chain([(stream, classes)]).collect()
        }
        None => widths.windows(2).map(|w| (w[0], w[1])).collect(),
    }
}

/// The weight shapes of Linears of `fans` for a parametrisation: the first
/// layer's fan-in (the pixels) and the last's fan-out (the classes) never
/// scale; every other dimension is a hidden width against `base`.
fn linear_shapes(fans: &[(usize, usize)], base: usize) -> Vec<LinearShape> {
    let last = fans.len() - 1;
    let dim = |size: usize, fixed: bool| if fixed { Dim::FIXED } else { Dim::hidden(size, base) };
    let shape = |(l, &(fan_in, out)): (usize, &(usize, usize))| LinearShape {
        fan_in: dim(fan_in, l == 0),
        out: dim(out, l == last),
        readout: l == last,
    };
    fans.iter().enumerate().map(shape).collect()
}

/// Each Linear's factors: the parametrisation's, times the variant's
/// per-layer `init_scale`, `bias_init_scale` and `multiplier`.
fn layer_scales(
    variant: &crate::experiment::Variant,
    fans: &[(usize, usize)],
    parametrisation: Option<&Parametrisation>,
    kind: crate::optim::OptimizerKind,
) -> Vec<LayerScale> {
    let mut scales = match parametrisation {
        Some(p) => p.scales(&linear_shapes(fans, p.base_width), kind),
        None => vec![LayerScale::IDENTITY; fans.len()],
    };
    for o in &variant.layers {
        let s = &mut scales[o.layer - 1];
        s.weight_init *= o.init_scale.unwrap_or(1.0);
        s.bias_init *= o.bias_init_scale.unwrap_or(1.0);
        s.multiplier *= o.multiplier.unwrap_or(1.0);
    }
    scales
}

/// One run, resolved.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The run's name (`<variant>`, or `<variant>-seed<N>` with several seeds).
    pub name: String,
    /// The variant's name in the experiment.
    pub group: String,
    /// The seed.
    pub seed: u64,
    /// The generator the seed drives.
    pub rng: RngKind,
    /// The network's widths, input first, classes last.
    pub widths: Vec<usize>,
    /// The nonlinearity after each hidden Linear.
    pub activation: Activation,
    /// Batch normalisation between each hidden Linear and its nonlinearity.
    pub batch_norm: bool,
    /// Residual blocks on a stream of width `widths[1]` (then `widths` is
    /// input, stream, classes), instead of a plain chain.
    pub residual: Option<Residual>,
    /// Each Linear's (weight, bias) scheme, first to last.
    pub schemes: Vec<(Init, Init)>,
    /// The variant's weight scheme as written (its data-driven parts,
    /// weights from a file or LSUV's rescaling, act on the whole model).
    pub weight_init: Init,
    /// The optimiser and its settings.
    pub optimizer: OptimizerSettings,
    /// How the learning rate moves over the run.
    pub schedule: ScheduleSettings,
    /// Gradient clipping before each update.
    pub clip: Option<ClipSettings>,
    /// The loss trained on.
    pub loss: Loss,
    /// Linears with their own learning rate or weight decay, each a
    /// parameter group of its weight and one of its bias.
    pub param_groups: Vec<LayerGroup>,
    /// Each Linear's init factors and input multiplier (from the
    /// parametrisation and the per-layer settings), first to last.
    pub layer_scales: Vec<LayerScale>,
    /// Images per training batch.
    pub batch_size: usize,
    /// Passes over the training images.
    pub epochs: usize,
    /// The cap on steps per epoch, if any.
    pub steps_per_epoch: Option<usize>,
    /// Share of the training file held out for validation.
    pub validation_fraction: f64,
    /// A new order of the training images every epoch.
    pub shuffle: bool,
}

impl RunSpec {
    /// Resolves run `unit` of `exp` for data of shape `shape`.
    pub fn resolve(exp: &Experiment, unit: &RunUnit, shape: DataShape) -> Self {
        let variant = &unit.variant;
        let model = exp.model_of(variant);
        let mut widths = vec![shape.input_width];
        widths.extend(&model.hidden);
        widths.push(shape.classes);
        let optimizer = *exp.optimizer_of(variant);
        let fans = linear_fans(&widths, model.residual.as_ref());
        let layer_scales = layer_scales(variant, &fans, model.parametrisation.as_ref(), optimizer.kind);
        RunSpec {
            name: variant.name.clone(),
            group: unit.group.clone(),
            seed: unit.seed,
            rng: unit.rng,
            schemes: variant.layer_schemes(model.linear_count()),
            widths,
            activation: model.activation,
            batch_norm: model.batch_norm,
            residual: model.residual,
            weight_init: variant.weight_init.clone(),
            optimizer,
            schedule: exp.schedule_of(variant).clone(),
            clip: exp.clip_of(variant),
            loss: exp.loss_of(variant),
            param_groups: layer_groups(variant, &optimizer, &layer_scales),
            layer_scales,
            batch_size: exp.batch_size,
            epochs: exp.epochs,
            steps_per_epoch: exp.steps_per_epoch,
            validation_fraction: exp.validation_fraction,
            shuffle: exp.shuffle,
        }
    }

    /// Every run of `exp` on data of shape `shape`, in [`Experiment::runs`]'s order.
    pub fn all(exp: &Experiment, shape: DataShape) -> Vec<RunSpec> {
        exp.runs().iter().map(|unit| RunSpec::resolve(exp, unit, shape)).collect()
    }

    /// The first run of each variant (theory's prediction does not depend
    /// on the seed), in the experiment's order.
    pub fn per_variant(exp: &Experiment, shape: DataShape) -> Vec<RunSpec> {
        let mut out: Vec<RunSpec> = Vec::new();
        for spec in Self::all(exp, shape) {
            if !out.iter().any(|s| s.group == spec.group) {
                out.push(spec);
            }
        }
        out
    }

    /// The optimiser, with a weight group and a bias group for each of
    /// [`RunSpec::param_groups`] on `model`'s buffer.
    pub fn optimizer(&self, model: &Model) -> crate::optim::Optimizer {
        let groups = self
            .param_groups
            .iter()
            .flat_map(|g| {
                let linear = model.linear(g.layer - 1);
                let group =
                    |range, lr, weight_decay| crate::optim::ParamGroup { ranges: vec![range], lr, weight_decay };
                [
                    group(linear.weight_range(), g.weight_lr, g.weight_decay),
                    group(linear.bias_range(), g.bias_lr, g.bias_weight_decay),
                ]
            })
            .collect();
        crate::optim::Optimizer::new(self.optimizer).with_groups(groups, model.params.len())
    }

    /// Each parameter group's initial lr, in [`RunSpec::optimizer`]'s order.
    pub fn group_lrs(&self) -> Vec<f64> {
        self.param_groups.iter().flat_map(|g| [g.weight_lr, g.bias_lr]).collect()
    }

    /// The network, every Linear zero (the layers, not yet initialised),
    /// with its input multipliers.
    pub fn model(&self) -> Model {
        let multipliers: Vec<f32> = self.layer_scales.iter().map(|s| s.multiplier as f32).collect();
        Self::network(&self.widths, self.activation, self.batch_norm, self.residual.as_ref(), &multipliers)
    }

    /// The network with its drawn initial weights: each Linear's schemes
    /// from the run's generator, then the residual rule's and the
    /// parametrisation's factors; not yet the parts that need the data or a
    /// file (LSUV, `from_file`). With `rng = "torch"`, also PyTorch's
    /// generator as the draws left it (the data loaders draw on from there).
    /// `None` when `stop` interrupted it.
    pub fn drawn_model(&self, stop: &dyn Fn() -> bool) -> Option<(Model, Option<TorchGenerator>)> {
        let mut model = self.model();
        let generator = match self.rng {
            RngKind::Chacha => {
                if !model.initialise_layers_until(&self.schemes, self.seed, stop) {
                    return None;
                }
                None
            }
            RngKind::Torch => Some(crate::nn::torch_init::initialise(&mut model, &self.schemes, self.seed)),
        };
        if let Some(net) = &self.residual {
            model.scale_linears(&net.weight_factors());
        }
        self.scale_initial(&mut model);
        Some((model, generator))
    }

    /// Multiplies each Linear's drawn weights and biases by its init
    /// factors ([`RunSpec::layer_scales`]).
    fn scale_initial(&self, model: &mut Model) {
        for (l, s) in self.layer_scales.iter().enumerate() {
            model.scale_linear(l, s.weight_init as f32, s.bias_init as f32);
        }
    }

    fn network(
        widths: &[usize],
        activation: Activation,
        batch_norm: bool,
        residual: Option<&Residual>,
        multipliers: &[f32],
    ) -> Model {
        match residual {
            Some(net) => Model::residual_multiplied((widths[0], widths[1], widths[2]), activation, net, multipliers),
            None => Model::mlp_multiplied(widths, activation, batch_norm, multipliers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fans a parametrisation reads without building the network are
    /// the built network's.
    #[test]
    fn linear_fans_are_the_built_networks() {
        let net: Residual = toml::from_str("blocks = 3\nbranch_layers = 2").unwrap();
        for (widths, residual) in [(vec![784, 300, 200, 10], None), (vec![20, 16, 5], Some(&net))] {
            let model = RunSpec::network(&widths, Activation::Relu, false, residual, &[]);
            let built: Vec<(usize, usize)> = model.linears().map(|l| (l.fan_in, l.fan_out)).collect();
            assert_eq!(linear_fans(&widths, residual), built);
        }
    }
}
