//! What to run: the resolved settings of an experiment, its variants, and
//! the built-in seed experiment.

use crate::data::{DataSource, DatasetName};
use crate::error::input;
use crate::error::{InputError, SettingError};
use crate::nn::loss::Loss;
use crate::nn::residual::{BranchNorm, Residual};
use crate::nn::{Activation, Init};
use crate::optim::clip::ClipSettings;
use crate::optim::{OptimizerKind, OptimizerSettings};
use crate::parametrisation::Parametrisation;
use crate::rng::RngKind;
use crate::schedule::{ScheduleSettings, Shape};
use crate::toml_lines::TomlLines;
use anyhow::Result;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The network's shape (input and output widths come from the data).
/// In a file, the hidden widths are `hidden = [...]` or, for a uniform
/// network, `width = W` and `depth = D` (D hidden layers of W units), so
/// that depth can be a sweep axis. A residual network is `width = W` (its
/// stream's width) with `residual = { blocks = L, ... }` ([`Residual`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "ModelFile")]
pub struct ModelSettings {
    /// Widths of the hidden layers, first to last.
    pub hidden: Vec<usize>,
    /// Nonlinearity after each hidden Linear layer.
    pub activation: Activation,
    /// Batch normalisation between each hidden Linear and its nonlinearity.
    #[serde(default, skip_serializing_if = "is_false")]
    pub batch_norm: bool,
    /// Residual blocks on a stream of width `hidden[0]` (then `hidden` has
    /// that one width), instead of a plain chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residual: Option<Residual>,
    /// How each Linear's init, multiplier and learning rate scale with the
    /// width, from a base width (unsaid: PyTorch's standard parametrisation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parametrisation: Option<Parametrisation>,
}

impl ModelSettings {
    /// The Linear layers of this network.
    pub fn linear_count(&self) -> usize {
        match &self.residual {
            Some(r) => 2 + r.blocks * r.branch_layers,
            None => self.hidden.len() + 1,
        }
    }

    /// Whether some layer normalises over the batch.
    pub fn has_batch_norm(&self) -> bool {
        self.batch_norm || self.residual.is_some_and(|r| r.norm == BranchNorm::BatchNorm)
    }
}

/// [`ModelSettings`] as a file writes it: the hidden widths as a list or
/// as a width and a depth.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    hidden: Option<Vec<usize>>,
    width: Option<usize>,
    depth: Option<usize>,
    #[serde(default = "seed_activation")]
    activation: Activation,
    #[serde(default)]
    batch_norm: bool,
    residual: Option<Residual>,
    parametrisation: Option<Parametrisation>,
}

impl TryFrom<ModelFile> for ModelSettings {
    type Error = String;

    fn try_from(file: ModelFile) -> std::result::Result<Self, String> {
        let hidden = match (file.hidden, file.width, file.depth) {
            (Some(hidden), None, None) => hidden,
            (None, Some(width), None) if file.residual.is_some() => vec![width],
            (None, Some(width), Some(depth)) => vec![width; depth],
            // Unsaid, the seed network's.
            (None, None, None) if file.residual.is_some() => {
                return Err("a residual network needs `width` (its stream's)".into())
            }
            (None, None, None) => Experiment::seed_experiment().model.hidden,
            (Some(_), _, _) => return Err("give either `hidden` or `width` and `depth`, not both".into()),
            (None, Some(_), None) => return Err("`width` needs `depth` (the number of hidden layers)".into()),
            (None, None, Some(_)) => return Err("`depth` needs `width` (the units of each hidden layer)".into()),
        };
        if file.residual.is_some() && (file.depth.is_some() || hidden.len() != 1) {
            return Err("a residual network has one `width` (its stream's) and `residual.blocks`, not `depth` or several hidden widths".into());
        }
        let (activation, batch_norm, residual) = (file.activation, file.batch_norm, file.residual);
        Ok(ModelSettings { hidden, activation, batch_norm, residual, parametrisation: file.parametrisation })
    }
}

fn is_false(b: &bool) -> bool {
    !b
}

/// One arm of the comparison: how its layers are initialised, and any
/// setting of the experiment it overrides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Name, used for the variant's directory and in every report.
    pub name: String,
    /// Scheme of every Linear layer's weights.
    pub weight_init: Init,
    /// Scheme of every Linear layer's biases (unsaid: zeros, as the seed's).
    #[serde(default = "Init::zeros")]
    pub bias_init: Init,
    /// Per-layer schemes instead of `weight_init`/`bias_init` for the
    /// layers named (1-based), e.g. `layers = [{ layer = 5, weight_init =
    /// { scheme = "xavier_uniform" } }]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerInit>,
    /// This variant's network, instead of the experiment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSettings>,
    /// This variant's optimiser, instead of the experiment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<OptimizerSettings>,
    /// This variant's learning-rate schedule, instead of the experiment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleSettings>,
    /// This variant's gradient clipping, instead of the experiment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipSettings>,
    /// This variant's loss, instead of the experiment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<Loss>,
}

/// One layer's own initialisation in a variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerInit {
    /// The Linear layer, 1 for the first.
    pub layer: usize,
    /// Its weights' scheme (default: the variant's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_init: Option<Init>,
    /// Its biases' scheme (default: the variant's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_init: Option<Init>,
    /// Its weights' learning rate as a multiple of the optimiser's (a
    /// parameter group of PyTorch's with `lr = lr * lr_scale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_scale: Option<f64>,
    /// Its biases' learning-rate multiple (default: `lr_scale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_lr_scale: Option<f64>,
    /// Its weights' and biases' weight decay (default: the optimiser's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    /// A factor on the weights its scheme draws (on top of the
    /// parametrisation's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_scale: Option<f64>,
    /// A factor on the biases its scheme draws.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_init_scale: Option<f64>,
    /// A constant its input is multiplied by in the forward pass, `y = W
    /// (multiplier x) + b` (on top of the parametrisation's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<f64>,
}

impl LayerInit {
    /// Whether it gives the layer its own learning rate or weight decay.
    pub fn has_own_group(&self) -> bool {
        self.lr_scale.is_some() || self.bias_lr_scale.is_some() || self.weight_decay.is_some()
    }
}

impl Variant {
    /// A variant with the experiment's network and optimiser.
    pub fn new(name: &str, weight_init: Init, bias_init: Init) -> Self {
        Variant {
            name: name.into(),
            weight_init,
            bias_init,
            layers: Vec::new(),
            model: None,
            optimizer: None,
            schedule: None,
            clip: None,
            loss: None,
        }
    }

    /// The (weight, bias) schemes of each of `layers` Linear layers.
    pub fn layer_schemes(&self, layers: usize) -> Vec<(Init, Init)> {
        (1..=layers)
            .map(|l| {
                let own = self.layers.iter().find(|o| o.layer == l);
                (
                    own.and_then(|o| o.weight_init.clone()).unwrap_or_else(|| self.weight_init.clone()),
                    own.and_then(|o| o.bias_init.clone()).unwrap_or_else(|| self.bias_init.clone()),
                )
            })
            .collect()
    }
}

/// Every setting of a run, fully resolved: saved as `experiment.toml` in
/// the run directory so the run can be repeated from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Name, the prefix of the run directory (unsaid: the file's stem).
    #[serde(default)]
    pub name: String,
    /// What the experiment asks, in a sentence (shown by `initscope presets`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The data: `"mnist"`, `"fashion-mnist"` or a directory of IDX files.
    #[serde(default = "seed_dataset")]
    pub dataset: DataSource,
    /// The seed every random stream derives from.
    #[serde(default = "seed_seed")]
    pub seed: u64,
    /// Several seeds: every variant runs once per seed (as
    /// `<variant>-seed<N>`), and the report shows the mean and spread.
    /// Empty: `seed` alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<u64>,
    /// The generator of the initial weights and batch orders: `chacha`
    /// (initscope's streams) or `torch` (PyTorch's, as the notebook draws).
    #[serde(default)]
    pub rng: RngKind,
    /// Passes over the training set.
    #[serde(default = "seed_epochs")]
    pub epochs: usize,
    /// Samples per training step.
    #[serde(default = "seed_batch_size")]
    pub batch_size: usize,
    /// At most this many steps per epoch, the first batches of each
    /// epoch's order (unsaid: every full batch of the training images). Short
    /// epochs make the last epoch's mean loss the loss of the last steps,
    /// the measure of learning-rate transfer (Tensor Programs V, Fig. 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_per_epoch: Option<usize>,
    /// Share of the training file held out (its last images) for validation.
    #[serde(default = "seed_validation_fraction")]
    pub validation_fraction: f64,
    /// Reshuffle the training set every epoch.
    #[serde(default = "seed_shuffle")]
    pub shuffle: bool,
    /// Print a loss line every this many steps (0: never).
    #[serde(default = "seed_log_every")]
    pub log_every: usize,
    /// The network.
    #[serde(default = "seed_model")]
    pub model: ModelSettings,
    /// The optimiser.
    #[serde(default = "seed_optimizer")]
    pub optimizer: OptimizerSettings,
    /// The learning-rate schedule (unsaid: the optimiser's lr throughout).
    #[serde(default = "ScheduleSettings::constant", skip_serializing_if = "ScheduleSettings::is_constant")]
    pub schedule: ScheduleSettings,
    /// Gradient clipping before each update (unsaid: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipSettings>,
    /// The loss trained on (unsaid: cross-entropy, the seed's).
    #[serde(default, skip_serializing_if = "Loss::is_default")]
    pub loss: Loss,
    /// What the probe records while training.
    #[serde(default)]
    pub probe: ProbeSettings,
    /// The arms compared.
    pub variants: Vec<Variant>,
}

// Every setting a file leaves unsaid takes the seed experiment's value
// (the variants excepted), so a short file says only what it changes.
fn seed_dataset() -> DataSource {
    Experiment::seed_experiment().dataset
}
fn seed_seed() -> u64 {
    Experiment::seed_experiment().seed
}
fn seed_epochs() -> usize {
    Experiment::seed_experiment().epochs
}
fn seed_batch_size() -> usize {
    Experiment::seed_experiment().batch_size
}
fn seed_validation_fraction() -> f64 {
    Experiment::seed_experiment().validation_fraction
}
fn seed_shuffle() -> bool {
    Experiment::seed_experiment().shuffle
}
fn seed_log_every() -> usize {
    Experiment::seed_experiment().log_every
}
fn seed_model() -> ModelSettings {
    Experiment::seed_experiment().model
}
fn seed_activation() -> Activation {
    Experiment::seed_experiment().model.activation
}
fn seed_optimizer() -> OptimizerSettings {
    Experiment::seed_experiment().optimizer
}

fn validate_model(model: &ModelSettings, key: &str) -> Result<(), SettingError> {
    if model.hidden.is_empty() {
        return Err(SettingError::new(format!("{key}.hidden"), "the model needs at least one hidden layer"));
    }
    if let Some(i) = model.hidden.iter().position(|&w| w == 0) {
        return Err(SettingError::new(format!("{key}.hidden[{i}]"), "a layer needs at least one unit"));
    }
    if let Some(residual) = &model.residual {
        residual.validate(&format!("{key}.residual"))?;
        if model.batch_norm {
            return Err(SettingError::new(format!("{key}.batch_norm"), "a residual network's norm is `residual.norm`"));
        }
    }
    if let Some(p) = &model.parametrisation {
        p.check(&format!("{key}.parametrisation"))?;
    }
    if let Activation::LeakyRelu { slope } = model.activation {
        if !slope.is_finite() {
            return Err(SettingError::new(format!("{key}.activation"), "the leaky_relu slope must be finite"));
        }
    }
    Ok(())
}

/// One training run of an experiment: a variant with one seed.
#[derive(Clone, Debug, PartialEq)]
pub struct RunUnit {
    /// The variant, named `<variant>` or, with several seeds, `<variant>-seed<N>`.
    pub variant: Variant,
    /// The variant's name as written in the experiment.
    pub group: String,
    /// Its seed.
    pub seed: u64,
    /// The generator the seed drives.
    pub rng: RngKind,
}

impl Experiment {
    /// Every run the experiment makes, in order: each variant, once per seed.
    pub fn runs(&self) -> Vec<RunUnit> {
        let seeds = if self.seeds.is_empty() { vec![self.seed] } else { self.seeds.clone() };
        let many = !self.seeds.is_empty();
        self.variants
            .iter()
            .flat_map(|v| {
                seeds.iter().map(move |&seed| {
                    let mut variant = v.clone();
                    if many {
                        variant.name = format!("{}-seed{seed}", v.name);
                    }
                    RunUnit { variant, group: v.name.clone(), seed, rng: self.rng }
                })
            })
            .collect()
    }

    /// The network `variant` trains.
    pub fn model_of<'a>(&'a self, variant: &'a Variant) -> &'a ModelSettings {
        variant.model.as_ref().unwrap_or(&self.model)
    }

    /// The optimiser `variant` trains with.
    pub fn optimizer_of<'a>(&'a self, variant: &'a Variant) -> &'a OptimizerSettings {
        variant.optimizer.as_ref().unwrap_or(&self.optimizer)
    }

    /// The learning-rate schedule `variant` trains with.
    pub fn schedule_of<'a>(&'a self, variant: &'a Variant) -> &'a ScheduleSettings {
        variant.schedule.as_ref().unwrap_or(&self.schedule)
    }

    /// The gradient clipping `variant` trains with.
    pub fn clip_of(&self, variant: &Variant) -> Option<ClipSettings> {
        variant.clip.or(self.clip)
    }

    /// The loss `variant` trains on.
    pub fn loss_of(&self, variant: &Variant) -> Loss {
        variant.loss.unwrap_or(self.loss)
    }

    /// The original notebook's experiment (see the README): MNIST, MLP
    /// 784-512-256-128-64-10 with ReLU, Kaiming-uniform against N(0, 0.001),
    /// SGD lr 0.1, batch 128, 15 epochs, seed 123.
    pub fn seed_experiment() -> Self {
        Experiment {
            name: "seed".into(),
            description: "The original notebook: Kaiming-uniform against N(0, 0.001) on the MNIST MLP".into(),
            dataset: DataSource::Known(DatasetName::Mnist),
            seed: 123,
            seeds: Vec::new(),
            rng: RngKind::Chacha,
            epochs: 15,
            batch_size: 128,
            steps_per_epoch: None,
            validation_fraction: 0.1,
            shuffle: true,
            log_every: 50,
            model: ModelSettings {
                hidden: vec![512, 256, 128, 64],
                activation: Activation::Relu,
                batch_norm: false,
                residual: None,
                parametrisation: None,
            },
            optimizer: OptimizerSettings::sgd(0.1),
            schedule: ScheduleSettings::constant(),
            clip: None,
            loss: Loss::default(),
            probe: ProbeSettings::default(),
            variants: vec![
                Variant::new("kaiming", Init::kaiming_relu(), Init::zeros()),
                Variant::new("normal", Init::Normal { mean: 0.0, std: 0.001 }, Init::zeros()),
            ],
        }
    }

    /// Rejects settings that cannot run, naming the field (an input error).
    pub fn validate(&self) -> Result<()> {
        self.check().map_err(|e| InputError::from(e).into())
    }

    /// The first setting that cannot run, as a key and a message (for
    /// errors placed at the setting's line in its file).
    pub fn check_settings(&self) -> Result<(), SettingError> {
        self.check()
    }

    fn check(&self) -> Result<(), SettingError> {
        if self.epochs == 0 {
            return Err(SettingError::new("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(SettingError::new("batch_size", "must be at least 1"));
        }
        if self.steps_per_epoch == Some(0) {
            return Err(SettingError::new("steps_per_epoch", "must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return Err(SettingError::new(
                "validation_fraction",
                format!("must be in [0, 1), got {}", self.validation_fraction),
            ));
        }
        self.optimizer.validate()?;
        validate_model(&self.model, "model")?;
        if self.variants.is_empty() {
            return Err(SettingError::new("variants", "at least one is needed"));
        }
        if let Some(i) = (1..self.seeds.len()).find(|&i| self.seeds[..i].contains(&self.seeds[i])) {
            return Err(SettingError::new(format!("seeds[{i}]"), format!("{} appears twice", self.seeds[i])));
        }
        for (i, v) in self.variants.iter().enumerate() {
            let ok = !v.name.is_empty()
                && v.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && !v.name.starts_with('.');
            if !ok {
                return Err(SettingError::new(
                    format!("variants[{i}].name"),
                    format!("{:?} must be letters, digits, '-', '_' or '.'", v.name),
                ));
            }
            if self.variants[..i].iter().any(|o| o.name == v.name) {
                return Err(SettingError::new(format!("variants[{i}].name"), format!("{:?} appears twice", v.name)));
            }
            self.check_scheme(&format!("variants[{i}].weight_init"), &v.weight_init)?;
            self.check_scheme(&format!("variants[{i}].bias_init"), &v.bias_init)?;
            if let Some(model) = &v.model {
                validate_model(model, &format!("variants[{i}].model"))?;
            }
            if let Some(optimizer) = &v.optimizer {
                optimizer.validate().map_err(|e| e.under(&format!("variants[{i}]")))?;
            }
            self.check_recipe(v, i)?;
            if self.model_of(v).has_batch_norm() && self.batch_size < 2 {
                return Err(SettingError::new("batch_size", format!("variant {:?} uses batch norm, which needs at least 2 samples per training batch (PyTorch refuses a batch of 1 in training mode)",
                    v.name)));
            }
            let depth = self.model_of(v).linear_count();
            if self.model_of(v).residual.is_some() && matches!(v.weight_init, Init::Lsuv { .. }) {
                return Err(SettingError::new(
                    format!("variants[{i}].weight_init"),
                    "lsuv rescales a plain chain of layers; this network is residual",
                ));
            }
            for (j, o) in v.layers.iter().enumerate() {
                let key = format!("variants[{i}].layers[{j}]");
                if o.layer == 0 || o.layer > depth {
                    return Err(SettingError::new(
                        format!("{key}.layer"),
                        format!("{} is not a layer of this {depth}-layer network (1..={depth})", o.layer),
                    ));
                }
                if v.layers[..j].iter().any(|p| p.layer == o.layer) {
                    return Err(SettingError::new(format!("{key}.layer"), format!("layer {} appears twice", o.layer)));
                }
                let factors = [
                    ("lr_scale", o.lr_scale),
                    ("bias_lr_scale", o.bias_lr_scale),
                    ("init_scale", o.init_scale),
                    ("bias_init_scale", o.bias_init_scale),
                    ("multiplier", o.multiplier),
                ];
                for (name, v) in factors {
                    if v.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                        return Err(SettingError::new(
                            format!("{key}.{name}"),
                            format!("must be a positive number, got {}", v.unwrap_or_default()),
                        ));
                    }
                }
                if o.weight_decay.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
                    return Err(SettingError::new(
                        format!("{key}.weight_decay"),
                        format!("must be >= 0, got {}", o.weight_decay.unwrap_or_default()),
                    ));
                }
                for (part, scheme) in [("weight_init", &o.weight_init), ("bias_init", &o.bias_init)] {
                    if let Some(scheme) = scheme {
                        if matches!(scheme, Init::Lsuv { .. } | Init::FromFile { .. }) {
                            return Err(SettingError::new(
                                format!("{key}.{part}"),
                                "lsuv and from_file apply to the whole network",
                            ));
                        }
                        if part == "bias_init" && matches!(scheme, Init::Orthogonal { .. }) {
                            return Err(SettingError::new(
                                format!("{key}.bias_init"),
                                "orthogonal needs a matrix; a bias is a vector",
                            ));
                        }
                        self.check_scheme(&format!("{key}.{part}"), scheme)?;
                    }
                }
            }
            if matches!(v.bias_init, Init::Lsuv { .. } | Init::FromFile { .. }) {
                return Err(SettingError::new(
                    format!("variants[{i}].bias_init"),
                    "lsuv and from_file are weight schemes (from_file sets the biases too)",
                ));
            }
            if matches!(v.bias_init, Init::Orthogonal { .. }) {
                return Err(SettingError::new(
                    format!("variants[{i}].bias_init"),
                    "orthogonal needs a matrix; a bias is a vector",
                ));
            }
        }
        Ok(())
    }

    /// The schedule, clipping and loss `v` trains with, each named where it
    /// is written (the variant's own, or the experiment's).
    fn check_recipe(&self, v: &Variant, i: usize) -> Result<(), SettingError> {
        let at = |own: bool, name: &str| if own { format!("variants[{i}].{name}") } else { name.to_string() };
        let key = at(v.schedule.is_some(), "schedule");
        let optimizer = self.optimizer_of(v);
        let schedule = self.schedule_of(v);
        schedule.validate(&key, optimizer.lr)?;
        if let Shape::OneCycle(c) = &schedule.shape {
            if c.cycle_momentum && optimizer.kind == OptimizerKind::Adagrad {
                return Err(SettingError::new(
                    format!("{key}.cycle_momentum"),
                    "adagrad has no momentum to cycle (PyTorch refuses); set it to false",
                ));
            }
        }
        if let Some(clip) = self.clip_of(v) {
            clip.validate(&at(v.clip.is_some(), "clip"))?;
        }
        self.loss_of(v).validate(&at(v.loss.is_some(), "loss"))?;
        Ok(())
    }

    /// A scheme's numbers, and with `rng = "torch"` whether initscope
    /// reproduces PyTorch's draws of it; `key` names it in the error.
    fn check_scheme(&self, key: &str, scheme: &Init) -> Result<(), SettingError> {
        scheme.validate().map_err(|e| SettingError::new(key, e))?;
        if self.rng == RngKind::Torch {
            crate::nn::torch_init::check_scheme(scheme).map_err(|e| SettingError::new(key, e))?;
        }
        Ok(())
    }

    /// Reads an experiment file (TOML). Unknown keys, missing keys and bad
    /// values are one-line errors naming the file, line and key.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| input(format!("{}: cannot read: {e}", path.display())))?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates experiment-file text; `path` names it in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        let mut exp: Experiment = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| crate::toml_lines::line_of_offset(text, span.start));
            let at = line.map_or(String::new(), |l| format!(":{l}"));
            input(format!("{}{at}: {}", path.display(), e.message().trim().replace('\n', " ")))
        })?;
        if exp.name.is_empty() {
            exp.name = stem_name(path);
        }
        exp.check().map_err(|e| {
            let at = TomlLines::new(text).line_of(&e.key).map_or(String::new(), |l| format!(":{l}"));
            input(format!("{}{at}: {e}", path.display()))
        })?;
        Ok(exp)
    }

    /// The settings as TOML, as saved in the run directory (every setting
    /// stated, defaults included).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("settings always serialise")
    }
}

/// How often the probe records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSettings {
    /// Record the per-layer scalars every this many steps (0: never).
    pub every: usize,
    /// Record histograms every this many steps, and always at the first and
    /// last step (0: only those two).
    pub histogram_every: usize,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings { every: 1, histogram_every: 200 }
    }
}

/// The name a file gives an experiment that does not name itself: its stem
/// (`runs/xavier.toml` is `xavier`).
pub fn stem_name(path: &Path) -> String {
    path.file_stem().map_or_else(|| "experiment".into(), |s| s.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_experiment_is_valid_and_round_trips_through_toml() {
        let seed = Experiment::seed_experiment();
        seed.validate().unwrap();
        let back: Experiment = toml::from_str(&seed.to_toml()).unwrap();
        assert_eq!(back, seed);
    }

    #[test]
    fn a_uniform_model_is_a_width_and_a_depth() {
        let seed = Experiment::seed_experiment().to_toml();
        let uniform = seed.replace("hidden = [512, 256, 128, 64]", "width = 32\ndepth = 3");
        assert_ne!(uniform, seed);
        let exp = Experiment::from_toml(&uniform, Path::new("u.toml")).unwrap();
        assert_eq!(exp.model.hidden, vec![32, 32, 32]);
        // The resolved file states the widths.
        assert!(exp.to_toml().contains("hidden = [32, 32, 32]"));
        let both = seed.replace("hidden = [512, 256, 128, 64]", "hidden = [4]\nwidth = 32\ndepth = 3");
        let err = Experiment::from_toml(&both, Path::new("b.toml")).unwrap_err().to_string();
        assert!(err.starts_with("b.toml:") && err.contains("not both"), "{err}");
        let half = seed.replace("hidden = [512, 256, 128, 64]", "width = 32");
        let err = Experiment::from_toml(&half, Path::new("h.toml")).unwrap_err().to_string();
        assert!(err.contains("`width` needs `depth`"), "{err}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let mut e = Experiment::seed_experiment();
        e.optimizer.lr = 0.0;
        assert!(e.validate().unwrap_err().to_string().starts_with("optimizer.lr"));
        let mut e = Experiment::seed_experiment();
        e.batch_size = 0;
        assert!(e.validate().unwrap_err().to_string().starts_with("batch_size"));
        let mut e = Experiment::seed_experiment();
        e.variants[1].name = "kaiming".into();
        assert!(e.validate().unwrap_err().to_string().contains("appears twice"));
    }

    #[test]
    fn a_short_file_takes_the_seed_experiments_values() {
        let text = "[[variants]]\nname = \"xavier\"\nweight_init = { scheme = \"xavier_uniform\" }\n";
        let exp = Experiment::from_toml(text, Path::new("somewhere/short.toml")).unwrap();
        let seed = Experiment::seed_experiment();
        assert_eq!(exp.name, "short");
        assert_eq!(exp.variants.len(), 1);
        assert_eq!(exp.variants[0].bias_init, Init::zeros());
        let expected = Experiment {
            name: "short".into(),
            description: String::new(),
            variants: exp.variants.clone(),
            ..seed.clone()
        };
        assert_eq!(exp, expected);
        // The resolved file states everything, and reads back the same.
        let resolved = exp.to_toml();
        for key in ["name = ", "dataset = ", "epochs = 15", "batch_size = 128", "lr = 0.1", "bias_init"] {
            assert!(resolved.contains(key), "{key} missing from\n{resolved}");
        }
        assert_eq!(Experiment::from_toml(&resolved, Path::new("x.toml")).unwrap(), exp);
        // A model or optimiser table says only what it changes.
        let text = format!("[model]\nactivation = \"tanh\"\n[optimizer]\nkind = \"adam\"\n{text}");
        let exp = Experiment::from_toml(&text, Path::new("short.toml")).unwrap();
        assert_eq!(exp.model.hidden, seed.model.hidden);
        assert_eq!(exp.optimizer.lr, seed.optimizer.lr);
        // The variants are the one thing a file must say.
        let err = Experiment::from_toml("epochs = 2\n", Path::new("empty.toml")).unwrap_err().to_string();
        assert!(err.contains("variants"), "{err}");
    }
}
