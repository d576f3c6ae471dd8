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
    /// The weight decay of both.
    pub weight_decay: f64,
}

/// The layers of `variant` with their own learning rate or weight decay.
fn layer_groups(variant: &crate::experiment::Variant, optimizer: &OptimizerSettings) -> Vec<LayerGroup> {
    let mut groups: Vec<LayerGroup> = variant
        .layers
        .iter()
        .filter(|o| o.has_own_group())
        .map(|o| {
            let scale = o.lr_scale.unwrap_or(1.0);
            LayerGroup {
                layer: o.layer,
                weight_lr: optimizer.lr * scale,
                bias_lr: optimizer.lr * o.bias_lr_scale.unwrap_or(scale),
                weight_decay: o.weight_decay.unwrap_or(optimizer.weight_decay),
            }
        })
        .collect();
    groups.sort_by_key(|g| g.layer);
    groups
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
    /// Images per training batch.
    pub batch_size: usize,
    /// Passes over the training images.
    pub epochs: usize,
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
            optimizer: *exp.optimizer_of(variant),
            schedule: exp.schedule_of(variant).clone(),
            clip: exp.clip_of(variant),
            loss: exp.loss_of(variant),
            param_groups: layer_groups(variant, exp.optimizer_of(variant)),
            batch_size: exp.batch_size,
            epochs: exp.epochs,
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
                    |range, lr| crate::optim::ParamGroup { ranges: vec![range], lr, weight_decay: g.weight_decay };
                [group(linear.weight_range(), g.weight_lr), group(linear.bias_range(), g.bias_lr)]
            })
            .collect();
        crate::optim::Optimizer::new(self.optimizer).with_groups(groups, model.params.len())
    }

    /// Each parameter group's initial lr, in [`RunSpec::optimizer`]'s order.
    pub fn group_lrs(&self) -> Vec<f64> {
        self.param_groups.iter().flat_map(|g| [g.weight_lr, g.bias_lr]).collect()
    }

    /// The network, every Linear zero (the layers, not yet initialised).
    pub fn model(&self) -> Model {
        match &self.residual {
            Some(net) => Model::residual(self.widths[0], self.widths[1], self.widths[2], self.activation, net),
            None => Model::mlp_with_batch_norm(&self.widths, self.activation, self.batch_norm),
        }
    }
}
