//! Optimisers with PyTorch's exact update rules (`torch.optim.SGD`, `Adam`,
//! `AdamW`, `Adagrad`, `RMSprop`, the single-tensor versions PyTorch runs
//! on the CPU). Each owns
//! its state and updates a parameter buffer in place from a gradient
//! buffer of the same layout.
//!
//! The arithmetic follows PyTorch 2.15's kernels operation for operation,
//! so that one step from the same gradient gives the same float32 bits
//! (checked against PyTorch-made fixtures in `tests/optim_torch.rs`):
//! - `add(x, alpha=a)` is one fused multiply-add, `x * a + self`
//!   (`ufunc/add.h` vectorises it as `fmadd`);
//! - `lerp_` is a fused multiply-add of `end - start` (see `lerp` below);
//! - `addcmul_(t1, t2, value)` is `fma(value * t1, t2, self)`: GCC fuses
//!   the final product into the addition in PyTorch's AVX2/AVX-512 builds;
//! - `addcdiv_(t1, t2, value)` is `self + value * t1 / t2`, unfused;
//! - scalars such as `1 - beta1`, `1 - dampening`, `1 - lr * weight_decay`
//!   and the bias corrections are computed in f64 (Python floats, `**` as
//!   `pow`) and rounded to f32 once, where the kernel takes them.

use crate::error::SettingError;
use serde::{Deserialize, Serialize};

pub mod clip;
mod kernels;

use std::ops::Range;

/// Which update rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Stochastic gradient descent, with optional momentum, dampening,
    /// Nesterov momentum and L2 weight decay.
    #[default]
    Sgd,
    /// Adam (Kingma & Ba 2015, Algorithm 1), weight decay as an L2 term.
    Adam,
    /// AdamW (Loshchilov & Hutter 2019, Algorithm 2): decoupled weight decay.
    Adamw,
    /// Adagrad (Duchi, Hazan & Singer 2011): each parameter's step divided
    /// by the root of its summed squared gradients (ReZero's optimiser).
    Adagrad,
    /// RMSprop (Hinton's lecture 6e; PyTorch's form, optionally centred
    /// and with momentum): the step divided by the root of a running mean
    /// of squared gradients.
    Rmsprop,
}

/// The seed experiment's learning rate.
fn seed_lr() -> f64 {
    0.1
}

fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}

fn default_eps() -> f64 {
    1e-8
}

/// `torch.optim.Adagrad`'s default eps.
const ADAGRAD_EPS: f64 = 1e-10;
/// `torch.optim.RMSprop`'s default smoothing constant.
const RMSPROP_ALPHA: f64 = 0.99;

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}
fn is_rmsprop_alpha(v: &f64) -> bool {
    *v == RMSPROP_ALPHA
}
fn is_false(v: &bool) -> bool {
    !v
}

/// The optimiser's settings; the seed experiment's is `lr = 0.1` alone
/// (plain SGD). Fields that a kind does not use must keep their defaults.
/// Read through `OptimizerFile`, which fills in PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "OptimizerFile")]
pub struct OptimizerSettings {
    /// `sgd` (default), `adam`, `adamw`, `adagrad` or `rmsprop`.
    pub kind: OptimizerKind,
    /// Learning rate.
    pub lr: f64,
    /// SGD's and RMSprop's momentum (0: none).
    pub momentum: f64,
    /// SGD dampening of the momentum.
    pub dampening: f64,
    /// SGD Nesterov momentum (needs momentum > 0 and dampening 0).
    pub nesterov: bool,
    /// L2 penalty (SGD, Adam, Adagrad, RMSprop) or decoupled decay (AdamW).
    pub weight_decay: f64,
    /// Adam's decay rates of the first and second moments.
    pub betas: [f64; 2],
    /// The denominator term of Adam, Adagrad and RMSprop.
    pub eps: f64,
    /// Adagrad's learning-rate decay: step t uses `lr / (1 + (t - 1) lr_decay)`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lr_decay: f64,
    /// Adagrad's starting value of the summed squares.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub initial_accumulator_value: f64,
    /// RMSprop's smoothing constant of the mean squared gradient.
    #[serde(default = "rmsprop_alpha", skip_serializing_if = "is_rmsprop_alpha")]
    pub alpha: f64,
    /// RMSprop centred: divide by the gradient's estimated variance rather
    /// than its mean square.
    #[serde(default, skip_serializing_if = "is_false")]
    pub centered: bool,
}

fn rmsprop_alpha() -> f64 {
    RMSPROP_ALPHA
}

/// [`OptimizerSettings`] as written in a file: every field but `lr` may be
/// left out and takes the default of PyTorch's optimiser of that kind
/// (`weight_decay` 0.01 for `torch.optim.AdamW`, 0 for SGD and Adam).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptimizerFile {
    #[serde(default)]
    kind: OptimizerKind,
    /// Unsaid, the seed experiment's.
    #[serde(default = "seed_lr")]
    lr: f64,
    #[serde(default)]
    momentum: f64,
    #[serde(default)]
    dampening: f64,
    #[serde(default)]
    nesterov: bool,
    weight_decay: Option<f64>,
    #[serde(default = "default_betas")]
    betas: [f64; 2],
    eps: Option<f64>,
    #[serde(default)]
    lr_decay: f64,
    #[serde(default)]
    initial_accumulator_value: f64,
    #[serde(default = "rmsprop_alpha")]
    alpha: f64,
    #[serde(default)]
    centered: bool,
}

impl From<OptimizerFile> for OptimizerSettings {
    fn from(f: OptimizerFile) -> Self {
        let default_decay = if f.kind == OptimizerKind::Adamw { 0.01 } else { 0.0 };
        OptimizerSettings {
            kind: f.kind,
            lr: f.lr,
            momentum: f.momentum,
            dampening: f.dampening,
            nesterov: f.nesterov,
            weight_decay: f.weight_decay.unwrap_or(default_decay),
            betas: f.betas,
            eps: f.eps.unwrap_or(if f.kind == OptimizerKind::Adagrad { ADAGRAD_EPS } else { default_eps() }),
            lr_decay: f.lr_decay,
            initial_accumulator_value: f.initial_accumulator_value,
            alpha: f.alpha,
            centered: f.centered,
        }
    }
}

impl OptimizerSettings {
    /// Plain SGD with learning rate `lr` (the seed experiment's optimiser).
    pub fn sgd(lr: f64) -> Self {
        OptimizerSettings {
            kind: OptimizerKind::Sgd,
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            betas: default_betas(),
            eps: default_eps(),
            lr_decay: 0.0,
            initial_accumulator_value: 0.0,
            alpha: RMSPROP_ALPHA,
            centered: false,
        }
    }

    /// PyTorch's defaults for `kind` with learning rate `lr`.
    pub fn of_kind(kind: OptimizerKind, lr: f64) -> Self {
        let eps = if kind == OptimizerKind::Adagrad { ADAGRAD_EPS } else { default_eps() };
        let weight_decay = if kind == OptimizerKind::Adamw { 0.01 } else { 0.0 };
        OptimizerSettings { kind, eps, weight_decay, ..Self::sgd(lr) }
    }

    /// Rejects settings PyTorch would reject, naming the field.
    pub fn validate(&self) -> Result<(), SettingError> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(SettingError::new("optimizer.lr", format!("must be a positive number, got {}", self.lr)));
        }
        let unit = |name: &str, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(SettingError::new(format!("optimizer.{name}"), format!("must be in [0, 1), got {v}")))
            }
        };
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(SettingError::new(
                "optimizer.weight_decay",
                format!("must be >= 0, got {}", self.weight_decay),
            ));
        }
        let kind = self.kind;
        use OptimizerKind::*;
        match kind {
            Sgd => {
                if !(0.0..=1.0).contains(&self.dampening) {
                    return Err(SettingError::new(
                        "optimizer.dampening",
                        format!("must be in [0, 1], got {}", self.dampening),
                    ));
                }
                if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
                    return Err(SettingError::new("optimizer.nesterov", "needs momentum > 0 and dampening 0"));
                }
            }
            Adam | Adamw => {
                unit("betas[0]", self.betas[0])?;
                unit("betas[1]", self.betas[1])?;
            }
            Adagrad => {
                for (name, v) in
                    [("lr_decay", self.lr_decay), ("initial_accumulator_value", self.initial_accumulator_value)]
                {
                    if !(v.is_finite() && v >= 0.0) {
                        return Err(SettingError::new(format!("optimizer.{name}"), format!("must be >= 0, got {v}")));
                    }
                }
            }
            Rmsprop => {
                if !(0.0..=1.0).contains(&self.alpha) {
                    return Err(SettingError::new("optimizer.alpha", format!("must be in [0, 1], got {}", self.alpha)));
                }
            }
        }
        if !(self.momentum.is_finite() && self.momentum >= 0.0) {
            return Err(SettingError::new("optimizer.momentum", format!("must be >= 0, got {}", self.momentum)));
        }
        if kind != Sgd && !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(SettingError::new("optimizer.eps", format!("must be a positive number, got {}", self.eps)));
        }
        self.unused_at_defaults()
    }

    /// A field the kind does not use must keep its default (a setting that
    /// would silently do nothing is an error).
    fn unused_at_defaults(&self) -> Result<(), SettingError> {
        use OptimizerKind::*;
        let kind = self.kind;
        let fields: [(&str, bool, &str); 9] = [
            ("momentum", self.momentum != 0.0 && !matches!(kind, Sgd | Rmsprop), "sgd and rmsprop"),
            ("dampening", self.dampening != 0.0 && kind != Sgd, "sgd"),
            ("nesterov", self.nesterov && kind != Sgd, "sgd"),
            ("betas", self.betas != default_betas() && !matches!(kind, Adam | Adamw), "adam and adamw"),
            ("eps", kind == Sgd && self.eps != default_eps(), "adam, adamw, adagrad and rmsprop"),
            ("lr_decay", self.lr_decay != 0.0 && kind != Adagrad, "adagrad"),
            ("initial_accumulator_value", self.initial_accumulator_value != 0.0 && kind != Adagrad, "adagrad"),
            ("alpha", self.alpha != RMSPROP_ALPHA && kind != Rmsprop, "rmsprop"),
            ("centered", self.centered && kind != Rmsprop, "rmsprop"),
        ];
        match fields.iter().find(|f| f.1) {
            Some((name, _, kinds)) => {
                Err(SettingError::new(format!("optimizer.{name}"), format!("applies to {kinds} only")))
            }
            None => Ok(()),
        }
    }
}

/// Some parameters with their own learning rate and weight decay, as one
/// of PyTorch's `param_groups` (the rest take the optimiser's settings).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGroup {
    /// Their ranges in the parameter buffer.
    pub ranges: Vec<Range<usize>>,
    /// The group's learning rate (a schedule moves it as PyTorch moves
    /// each group's: from this value).
    pub lr: f64,
    /// The group's weight decay.
    pub weight_decay: f64,
}

/// An optimiser: its settings and its state.
#[derive(Clone, Debug)]
pub struct Optimizer {
    /// The settings.
    pub settings: OptimizerSettings,
    /// Updates applied so far (Adam's `t`).
    pub steps: u64,
    /// SGD's momentum buffer, or Adam's first moment (`exp_avg`); empty
    /// until the first step that needs it.
    pub first: Vec<f32>,
    /// Adam's second moment (`exp_avg_sq`), Adagrad's summed squares
    /// (`sum`), RMSprop's mean square (`square_avg`); empty for SGD.
    pub second: Vec<f32>,
    /// Centred RMSprop's mean gradient (`grad_avg`); otherwise empty.
    pub third: Vec<f32>,
    /// Parameter groups with their own lr and weight decay (none: one
    /// group, the settings').
    groups: Vec<ParamGroup>,
    /// The buffer cut into runs of one group each (`None`: the settings'),
    /// in buffer order; empty without groups.
    segments: Vec<(Range<usize>, Option<usize>)>,
}

impl Optimizer {
    /// A fresh optimiser.
    pub fn new(settings: OptimizerSettings) -> Self {
        Optimizer {
            settings,
            steps: 0,
            first: Vec::new(),
            second: Vec::new(),
            third: Vec::new(),
            groups: Vec::new(),
            segments: Vec::new(),
        }
    }

    /// Gives `groups` (disjoint ranges of a buffer of `len` parameters)
    /// their own lr and weight decay.
    pub fn with_groups(mut self, groups: Vec<ParamGroup>, len: usize) -> Self {
        let mut owner: Vec<(Range<usize>, usize)> =
            groups.iter().enumerate().flat_map(|(g, group)| group.ranges.iter().map(move |r| (r.clone(), g))).collect();
        owner.sort_by_key(|(r, _)| r.start);
        let mut at = 0;
        for (r, g) in owner {
            assert!(r.start >= at && r.end <= len, "parameter groups overlap or run past the buffer");
            if r.start > at {
                self.segments.push((at..r.start, None));
            }
            at = r.end;
            self.segments.push((r, Some(g)));
        }
        if at < len && !groups.is_empty() {
            self.segments.push((at..len, None));
        }
        self.groups = groups;
        self
    }

    /// The learning rate the next step uses (outside any group).
    pub fn lr(&self) -> f64 {
        self.settings.lr
    }

    /// Sets the learning rate, and the momentum (SGD's and RMSprop's, or
    /// Adam's beta1) where given, of the next step: a schedule's values, as
    /// PyTorch's schedulers write them into `param_groups`; `group_lrs`
    /// are each group's.
    pub fn set_scheduled(&mut self, lr: f64, momentum: Option<f64>, group_lrs: &[f64]) {
        self.settings.lr = lr;
        self.groups.iter_mut().zip(group_lrs).for_each(|(g, &lr)| g.lr = lr);
        if let Some(m) = momentum {
            match self.settings.kind {
                OptimizerKind::Sgd | OptimizerKind::Rmsprop => self.settings.momentum = m,
                OptimizerKind::Adam | OptimizerKind::Adamw => self.settings.betas[0] = m,
                OptimizerKind::Adagrad => {}
            }
        }
    }

    /// One update of every parameter from `grads`, with FMA instructions
    /// where the CPU has them (the results are the same without: `mul_add`
    /// is then the C library's correctly rounded `fmaf`, only slower).
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        assert_eq!(params.len(), grads.len(), "parameter and gradient buffers differ");
        self.steps += 1;
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports FMA, checked just above.
            unsafe { self.update_fma(params, grads) };
            return;
        }
        self.update(params, grads);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "fma")]
    unsafe fn update_fma(&mut self, params: &mut [f32], grads: &[f32]) {
        self.update(params, grads);
    }

    /// The state buffers this step needs, created on the first step that
    /// needs them as PyTorch creates its state; whether SGD's momentum
    /// buffer was created now (its first step clones the gradient).
    fn allocate(&mut self, n: usize) -> bool {
        let s = &self.settings;
        let empty = |v: &Vec<f32>| v.is_empty();
        match s.kind {
            OptimizerKind::Sgd => {
                let fresh = s.momentum != 0.0 && empty(&self.first);
                if fresh {
                    self.first = vec![0.0; n];
                }
                return fresh;
            }
            OptimizerKind::Adam | OptimizerKind::Adamw if empty(&self.first) => {
                (self.first, self.second) = (vec![0.0; n], vec![0.0; n]);
            }
            OptimizerKind::Adagrad if empty(&self.second) => {
                self.second = vec![s.initial_accumulator_value as f32; n];
            }
            OptimizerKind::Rmsprop if empty(&self.second) => {
                self.second = vec![0.0; n];
                if s.momentum > 0.0 {
                    self.first = vec![0.0; n];
                }
                if s.centered {
                    self.third = vec![0.0; n];
                }
            }
            _ => {}
        }
        false
    }

    /// PyTorch's single-tensor update, kernel by kernel (see the module
    /// documentation and `optim/kernels.rs`), group by group: each group's
    /// scalars from its own lr and weight decay.
    #[inline(always)]
    fn update(&mut self, params: &mut [f32], grads: &[f32]) {
        let n = params.len();
        let first_step = self.allocate(n);
        let Optimizer { settings, steps, first, second, third, groups, segments } = self;
        let whole = [(0..n, None)];
        let segments = if segments.is_empty() { &whole[..] } else { &segments[..] };
        for (r, group) in segments {
            let mut s = *settings;
            if let Some(g) = group.map(|g| &groups[g]) {
                (s.lr, s.weight_decay) = (g.lr, g.weight_decay);
            }
            let (p, g) = (&mut params[r.clone()], &grads[r.clone()]);
            let (m, v, a) = (part(first, r), part(second, r), part(third, r));
            match s.kind {
                OptimizerKind::Sgd => kernels::sgd(&s, p, g, m, first_step),
                OptimizerKind::Adam | OptimizerKind::Adamw => kernels::adam(&s, *steps, p, g, m, v),
                OptimizerKind::Adagrad => kernels::adagrad(&s, *steps, p, g, v),
                OptimizerKind::Rmsprop => kernels::rmsprop(&s, p, g, v, m, a),
            }
        }
    }
}

/// The range `r` of a state buffer, or the buffer itself when this
/// optimiser does not keep it (empty).
fn part<'a>(buffer: &'a mut [f32], r: &Range<usize>) -> &'a mut [f32] {
    if buffer.is_empty() {
        buffer
    } else {
        &mut buffer[r.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(kind: OptimizerKind, lr: f64) -> OptimizerSettings {
        OptimizerSettings { kind, ..OptimizerSettings::sgd(lr) }
    }

    #[test]
    fn sgd_moves_against_the_gradient() {
        let mut p = vec![1.0, -2.0];
        Optimizer::new(OptimizerSettings::sgd(0.5)).step(&mut p, &[2.0, -4.0]);
        assert_eq!(p, vec![0.0, 0.0]);
    }

    /// On f(p) = p^2 / 2 (gradient p), momentum 0.9 and dampening 0.5 from
    /// p = 1 with lr 0.1, by hand: buf1 = 1, p1 = 0.9; buf2 = 0.9 + 0.5 * 0.9
    /// = 1.35, p2 = 0.765; Nesterov instead steps by g + 0.9 buf.
    #[test]
    fn sgd_momentum_dampening_and_nesterov_follow_pytorch() {
        let mut opt =
            Optimizer::new(OptimizerSettings { momentum: 0.9, dampening: 0.5, ..OptimizerSettings::sgd(0.1) });
        let mut p = vec![1.0f32];
        for _ in 0..2 {
            let g = p.clone();
            opt.step(&mut p, &g);
        }
        assert!((p[0] - 0.765).abs() < 1e-6, "{}", p[0]);
        let mut opt =
            Optimizer::new(OptimizerSettings { momentum: 0.9, nesterov: true, ..OptimizerSettings::sgd(0.1) });
        let mut p = vec![1.0f32];
        opt.step(&mut p, &[1.0]); // buf = 1, step 1 + 0.9 = 1.9
        assert!((p[0] - 0.81).abs() < 1e-6, "{}", p[0]);
        // Weight decay adds wd * p to the gradient.
        let mut opt = Optimizer::new(OptimizerSettings { weight_decay: 0.5, ..OptimizerSettings::sgd(0.1) });
        let mut p = vec![2.0f32];
        opt.step(&mut p, &[1.0]); // d = 1 + 1 = 2
        assert!((p[0] - 1.8).abs() < 1e-6);
    }

    /// Adam's first step is lr * g / (|g| + eps') for every parameter: the
    /// bias corrections make m_hat = g and sqrt(v_hat) = |g|. The second
    /// step is checked against the formulas in f64.
    #[test]
    fn adam_and_adamw_follow_the_papers() {
        let mut opt = Optimizer::new(settings(OptimizerKind::Adam, 0.01));
        let mut p = vec![1.0f32, -3.0];
        opt.step(&mut p, &[0.5, -2.0]);
        assert!((p[0] - 0.99).abs() < 1e-6 && (p[1] + 2.99).abs() < 1e-6, "{p:?}");
        opt.step(&mut p, &[0.25, -2.0]);
        let (b1, b2, lr) = (0.9f64, 0.999f64, 0.01f64);
        let m = b1 * (1.0 - b1) * 0.5 + (1.0 - b1) * 0.25;
        let v = b2 * (1.0 - b2) * 0.25 + (1.0 - b2) * 0.0625;
        let expected = 0.99 - lr / (1.0 - b1 * b1) * m / ((v / (1.0 - b2 * b2)).sqrt() + 1e-8);
        assert!((f64::from(p[0]) - expected).abs() < 1e-6, "{} vs {expected}", p[0]);

        // AdamW shrinks the weights before the Adam step; Adam adds wd * p to g.
        let mut w = Optimizer::new(OptimizerSettings { weight_decay: 0.1, ..settings(OptimizerKind::Adamw, 0.01) });
        let mut p = vec![1.0f32];
        w.step(&mut p, &[0.5]);
        assert!((f64::from(p[0]) - (1.0 * (1.0 - 0.001) - 0.01)).abs() < 1e-6, "{}", p[0]);
        let mut a = Optimizer::new(OptimizerSettings { weight_decay: 0.1, ..settings(OptimizerKind::Adam, 0.01) });
        let mut p = vec![1.0f32];
        a.step(&mut p, &[-0.05]); // g + wd p = 0.05: still a step of lr
        assert!((p[0] - 0.99).abs() < 1e-6, "{}", p[0]);
    }

    /// Adagrad's first step is lr * g / (|g| + eps): about lr for every
    /// parameter; its second divides by sqrt(g1^2 + g2^2). RMSprop's first
    /// is lr * g / (sqrt(1 - alpha) |g| + eps), ten times lr at alpha 0.99;
    /// centred, the root is of (1 - alpha) alpha g^2.
    #[test]
    fn adagrad_and_rmsprop_follow_their_formulas() {
        let mut opt = Optimizer::new(OptimizerSettings::of_kind(OptimizerKind::Adagrad, 0.1));
        let mut p = vec![1.0f32, -1.0];
        opt.step(&mut p, &[0.5, -2.0]);
        assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] + 0.9).abs() < 1e-6, "{p:?}");
        opt.step(&mut p, &[0.5, 0.0]);
        let expected = 0.9 - 0.1 * 0.5 / (0.5f64.powi(2) * 2.0).sqrt();
        assert!((f64::from(p[0]) - expected).abs() < 1e-6 && (p[1] + 0.9).abs() < 1e-6, "{p:?}");
        let decayed = OptimizerSettings { lr_decay: 1.0, ..OptimizerSettings::of_kind(OptimizerKind::Adagrad, 0.1) };
        let mut opt = Optimizer::new(decayed);
        let mut p = vec![0.0f32];
        opt.step(&mut p, &[1.0]);
        opt.step(&mut p, &[0.0]);
        opt.step(&mut p, &[1.0]); // lr / (1 + 2) over sqrt(2)
        assert!((f64::from(p[0]) + 0.1 + 0.1 / 3.0 / 2f64.sqrt()).abs() < 1e-6, "{}", p[0]);

        let mut opt = Optimizer::new(OptimizerSettings::of_kind(OptimizerKind::Rmsprop, 0.01));
        let mut p = vec![1.0f32];
        opt.step(&mut p, &[3.0]);
        assert!((f64::from(p[0]) - (1.0 - 0.01 / 0.1)).abs() < 1e-5, "{}", p[0]);
        let centred = OptimizerSettings { centered: true, ..OptimizerSettings::of_kind(OptimizerKind::Rmsprop, 0.01) };
        let mut opt = Optimizer::new(centred);
        let mut p = vec![1.0f32];
        opt.step(&mut p, &[3.0]);
        let expected = 1.0 - 0.01 * 3.0 / (0.01f64 * 0.99 * 9.0).sqrt();
        assert!((f64::from(p[0]) - expected).abs() < 1e-4, "{} vs {expected}", p[0]);
        assert_eq!(opt.third.len(), 1);
    }

    #[test]
    fn impossible_settings_are_rejected() {
        let adagrad = OptimizerSettings::of_kind(OptimizerKind::Adagrad, 0.01);
        assert_eq!(adagrad.eps, 1e-10);
        assert!(OptimizerSettings { lr_decay: -1.0, ..adagrad }
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("optimizer.lr_decay:"));
        assert!(OptimizerSettings { momentum: 0.9, ..adagrad }
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("optimizer.momentum:"));
        let rms = OptimizerSettings::of_kind(OptimizerKind::Rmsprop, 0.01);
        assert!(OptimizerSettings { momentum: 0.9, centered: true, ..rms }.validate().is_ok());
        assert!(OptimizerSettings { alpha: 1.5, ..rms }
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("optimizer.alpha:"));
        assert!(OptimizerSettings { centered: true, ..adagrad }
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("optimizer.centered:"));
        assert!(OptimizerSettings { lr_decay: 0.1, ..rms }
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("optimizer.lr_decay:"));
        assert!(OptimizerSettings::sgd(0.0).validate().is_err());
        assert!(OptimizerSettings { nesterov: true, ..OptimizerSettings::sgd(0.1) }.validate().is_err());
        assert!(OptimizerSettings { momentum: 0.9, ..settings(OptimizerKind::Adam, 0.1) }.validate().is_err());
        assert!(OptimizerSettings { betas: [1.0, 0.9], ..settings(OptimizerKind::Adam, 0.1) }.validate().is_err());
        assert!(settings(OptimizerKind::Adamw, 1e-3).validate().is_ok());
    }

    /// Left out, weight decay takes PyTorch's default for the kind:
    /// `torch.optim.AdamW(params)` decays by 0.01, SGD and Adam not at all.
    #[test]
    fn weight_decay_defaults_follow_pytorch() {
        let read = |text: &str| toml::from_str::<OptimizerSettings>(text).unwrap();
        assert_eq!(read("kind = \"adamw\"\nlr = 0.001").weight_decay, 0.01);
        assert_eq!(read("kind = \"adam\"\nlr = 0.001").weight_decay, 0.0);
        assert_eq!(read("lr = 0.1").weight_decay, 0.0);
        assert_eq!(read("kind = \"adamw\"\nlr = 0.001\nweight_decay = 0.0").weight_decay, 0.0);
        let resolved = toml::to_string(&read("kind = \"adamw\"\nlr = 0.001")).unwrap();
        assert!(resolved.contains("weight_decay = 0.01"), "{resolved}");
        assert!(toml::from_str::<OptimizerSettings>("lr = 0.1\nmomentun = 0.9").is_err());
    }

    /// A group with the settings' own lr and decay changes nothing; a
    /// group's own lr moves only its parameters by it (SGD: lr * g), and
    /// Adam's first step is its group's lr for every parameter.
    #[test]
    fn parameter_groups_take_their_own_lr_and_decay() {
        let grads = [1.0f32, 2.0, -1.0, 4.0];
        for kind in [OptimizerKind::Sgd, OptimizerKind::Adam] {
            let settings = OptimizerSettings { momentum: 0.0, ..OptimizerSettings::of_kind(kind, 0.1) };
            let mut plain = Optimizer::new(settings);
            let same = ParamGroup { ranges: std::iter::once(1..3).collect(), lr: 0.1, weight_decay: 0.0 };
            let mut grouped = Optimizer::new(settings).with_groups(vec![same], 4);
            let (mut a, mut b) = (vec![1.0f32; 4], vec![1.0f32; 4]);
            for _ in 0..3 {
                plain.step(&mut a, &grads);
                grouped.step(&mut b, &grads);
            }
            assert_eq!(a, b, "{kind:?}");
        }
        let slow = ParamGroup { ranges: vec![0..1, 3..4], lr: 0.01, weight_decay: 0.5 };
        let mut opt = Optimizer::new(OptimizerSettings::sgd(0.1)).with_groups(vec![slow], 4);
        let mut p = vec![1.0f32; 4];
        opt.step(&mut p, &grads);
        let expected = [1.0 - 0.01 * 1.5, 1.0 - 0.2, 1.1, 1.0 - 0.01 * 4.5];
        assert!(p.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6), "{p:?}");
        let mut adam = Optimizer::new(OptimizerSettings::of_kind(OptimizerKind::Adam, 0.1))
            .with_groups(vec![ParamGroup { ranges: std::iter::once(2..4).collect(), lr: 0.001, weight_decay: 0.0 }], 4);
        let mut p = vec![0.0f32; 4];
        adam.step(&mut p, &grads);
        assert!(p.iter().zip([-0.1, -0.1, 0.001, -0.001]).all(|(a, b)| (a - b).abs() < 1e-6), "{p:?}");
    }
}
