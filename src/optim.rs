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

use serde::{Deserialize, Serialize};

pub mod clip;

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
    pub fn validate(&self) -> Result<(), String> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("optimizer.lr: must be a positive number, got {}", self.lr));
        }
        let unit = |name: &str, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("optimizer.{name}: must be in [0, 1), got {v}"))
            }
        };
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(format!("optimizer.weight_decay: must be >= 0, got {}", self.weight_decay));
        }
        let kind = self.kind;
        use OptimizerKind::*;
        match kind {
            Sgd => {
                if !(0.0..=1.0).contains(&self.dampening) {
                    return Err(format!("optimizer.dampening: must be in [0, 1], got {}", self.dampening));
                }
                if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
                    return Err("optimizer.nesterov: needs momentum > 0 and dampening 0".into());
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
                        return Err(format!("optimizer.{name}: must be >= 0, got {v}"));
                    }
                }
            }
            Rmsprop => {
                if !(0.0..=1.0).contains(&self.alpha) {
                    return Err(format!("optimizer.alpha: must be in [0, 1], got {}", self.alpha));
                }
            }
        }
        if !(self.momentum.is_finite() && self.momentum >= 0.0) {
            return Err(format!("optimizer.momentum: must be >= 0, got {}", self.momentum));
        }
        if kind != Sgd && !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(format!("optimizer.eps: must be a positive number, got {}", self.eps));
        }
        self.unused_at_defaults()
    }

    /// A field the kind does not use must keep its default (a setting that
    /// would silently do nothing is an error).
    fn unused_at_defaults(&self) -> Result<(), String> {
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
            Some((name, _, kinds)) => Err(format!("optimizer.{name}: applies to {kinds} only")),
            None => Ok(()),
        }
    }
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
}

impl Optimizer {
    /// A fresh optimiser.
    pub fn new(settings: OptimizerSettings) -> Self {
        Optimizer { settings, steps: 0, first: Vec::new(), second: Vec::new(), third: Vec::new() }
    }

    /// The learning rate the next step uses.
    pub fn lr(&self) -> f64 {
        self.settings.lr
    }

    /// Sets the learning rate, and the momentum (SGD's and RMSprop's, or
    /// Adam's beta1) where given, of the next step: a schedule's values, as
    /// PyTorch's schedulers write them into `param_groups`.
    pub fn set_scheduled(&mut self, lr: f64, momentum: Option<f64>) {
        self.settings.lr = lr;
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

    /// PyTorch's single-tensor update, kernel by kernel (see the module
    /// documentation): scalars are Python floats (f64) rounded once to f32
    /// where a kernel takes them.
    #[inline(always)]
    fn update(&mut self, params: &mut [f32], grads: &[f32]) {
        let s = self.settings;
        let wd = s.weight_decay as f32;
        match s.kind {
            OptimizerKind::Sgd => self.sgd(&s, params, grads),
            OptimizerKind::Adagrad => self.adagrad(&s, params, grads),
            OptimizerKind::Rmsprop => self.rmsprop(&s, params, grads),
            OptimizerKind::Adam | OptimizerKind::Adamw => {
                if self.first.is_empty() {
                    self.first = vec![0.0; params.len()];
                    self.second = vec![0.0; params.len()];
                }
                let decoupled = s.kind == OptimizerKind::Adamw;
                // torch.optim.Adam's scalars, in Python floats.
                let t = self.steps as f64;
                let step_size = s.lr / (1.0 - s.betas[0].powf(t));
                let correction2_sqrt = (1.0 - s.betas[1].powf(t)).powf(0.5) as f32;
                let (b2, one_minus_b1, one_minus_b2) =
                    (s.betas[1] as f32, (1.0 - s.betas[0]) as f32, (1.0 - s.betas[1]) as f32);
                let (eps, minus_step_size) = (s.eps as f32, (-step_size) as f32);
                let shrink = (1.0 - s.lr * s.weight_decay) as f32;
                for (((p, &g), m), v) in
                    params.iter_mut().zip(grads).zip(self.first.iter_mut()).zip(self.second.iter_mut())
                {
                    let g = if decoupled {
                        if wd != 0.0 {
                            *p *= shrink; // param.mul_(1 - lr * weight_decay)
                        }
                        g
                    } else if wd != 0.0 {
                        p.mul_add(wd, g) // grad.add(param, alpha=weight_decay)
                    } else {
                        g
                    };
                    *m = lerp(*m, g, one_minus_b1); // exp_avg.lerp_(grad, 1 - beta1)
                                                    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    *v = (one_minus_b2 * g).mul_add(g, *v * b2);
                    // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                    let denom = v.sqrt() / correction2_sqrt + eps;
                    // param.addcdiv_(exp_avg, denom, value=-step_size)
                    *p += minus_step_size * *m / denom;
                }
            }
        }
    }

    /// `torch.optim.SGD`'s single-tensor update.
    #[inline(always)]
    fn sgd(&mut self, s: &OptimizerSettings, params: &mut [f32], grads: &[f32]) {
        let (wd, momentum, minus_lr) = (s.weight_decay as f32, s.momentum as f32, (-s.lr) as f32);
        let one_minus_dampening = (1.0 - s.dampening) as f32;
        let decay = |p: f32, g: f32| if wd != 0.0 { p.mul_add(wd, g) } else { g }; // grad.add(param, alpha=wd)
        if s.momentum == 0.0 {
            for (p, &g) in params.iter_mut().zip(grads) {
                *p = decay(*p, g).mul_add(minus_lr, *p); // param.add_(grad, alpha=-lr)
            }
            return;
        }
        let first_step = self.first.is_empty();
        if first_step {
            self.first = vec![0.0; params.len()];
        }
        for ((p, &g), buf) in params.iter_mut().zip(grads).zip(self.first.iter_mut()) {
            let d = decay(*p, g);
            // The first step clones the gradient; then
            // buf.mul_(momentum).add_(grad, alpha=1 - dampening).
            *buf = if first_step { d } else { d.mul_add(one_minus_dampening, *buf * momentum) };
            // Nesterov: grad.add(buf, alpha=momentum).
            let d = if s.nesterov { buf.mul_add(momentum, d) } else { *buf };
            *p = d.mul_add(minus_lr, *p);
        }
    }
}

impl Optimizer {
    /// `torch.optim.Adagrad`'s single-tensor update: `sum.addcmul_(g, g)`,
    /// `std = sum.sqrt().add_(eps)`, `param.addcdiv_(g, std, value=-clr)`
    /// with `clr = lr / (1 + (t - 1) lr_decay)` in Python floats.
    #[inline(always)]
    fn adagrad(&mut self, s: &OptimizerSettings, params: &mut [f32], grads: &[f32]) {
        if self.second.is_empty() {
            self.second = vec![s.initial_accumulator_value as f32; params.len()];
        }
        let clr = s.lr / (1.0 + (self.steps as f64 - 1.0) * s.lr_decay);
        let (wd, eps, minus_clr) = (s.weight_decay as f32, s.eps as f32, (-clr) as f32);
        for ((p, &g), sum) in params.iter_mut().zip(grads).zip(self.second.iter_mut()) {
            let g = if wd != 0.0 { p.mul_add(wd, g) } else { g }; // grad.add(param, alpha=wd)
            *sum = g.mul_add(g, *sum); // addcmul_(grad, grad, value=1)
            let std = sum.sqrt() + eps;
            *p += minus_clr * g / std;
        }
    }

    /// `torch.optim.RMSprop`'s single-tensor update:
    /// `square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)`; centred,
    /// `grad_avg.lerp_(g, 1 - alpha)` and `avg = square_avg.addcmul(
    /// grad_avg, grad_avg, value=-1).sqrt_()`, else `avg = square_avg.sqrt()`;
    /// `avg.add_(eps)`; with momentum `buf.mul_(momentum).addcdiv_(g, avg)`
    /// and `param.add_(buf, alpha=-lr)`, else `param.addcdiv_(g, avg, value=-lr)`.
    #[inline(always)]
    fn rmsprop(&mut self, s: &OptimizerSettings, params: &mut [f32], grads: &[f32]) {
        let n = params.len();
        if self.second.is_empty() {
            self.second = vec![0.0; n];
            if s.momentum > 0.0 {
                self.first = vec![0.0; n];
            }
            if s.centered {
                self.third = vec![0.0; n];
            }
        }
        let (wd, eps, minus_lr) = (s.weight_decay as f32, s.eps as f32, (-s.lr) as f32);
        let (alpha, one_minus_alpha, momentum) = (s.alpha as f32, (1.0 - s.alpha) as f32, s.momentum as f32);
        for i in 0..n {
            let p = params[i];
            let g = if wd != 0.0 { p.mul_add(wd, grads[i]) } else { grads[i] };
            let sq = &mut self.second[i];
            *sq = (one_minus_alpha * g).mul_add(g, *sq * alpha);
            let avg = if s.centered {
                let mean = &mut self.third[i];
                *mean = lerp(*mean, g, one_minus_alpha);
                (-*mean).mul_add(*mean, *sq).sqrt() + eps
            } else {
                sq.sqrt() + eps
            };
            params[i] = if s.momentum > 0.0 {
                let buf = &mut self.first[i];
                *buf = *buf * momentum + g / avg; // addcdiv_(grad, avg, value=1)
                buf.mul_add(minus_lr, p)
            } else {
                p + minus_lr * g / avg
            };
        }
    }
}

/// `torch.lerp(start, end, weight)` on the CPU: `start + weight * (end -
/// start)` for |weight| < 0.5, else `end - (end - start) * (1 - weight)`,
/// each one fused multiply-add as in its vectorised kernel.
#[inline(always)]
fn lerp(start: f32, end: f32, weight: f32) -> f32 {
    if weight.abs() < 0.5 {
        weight.mul_add(end - start, start)
    } else {
        (weight - 1.0).mul_add(end - start, end)
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
            .starts_with("optimizer.lr_decay:"));
        assert!(OptimizerSettings { momentum: 0.9, ..adagrad }
            .validate()
            .unwrap_err()
            .starts_with("optimizer.momentum:"));
        let rms = OptimizerSettings::of_kind(OptimizerKind::Rmsprop, 0.01);
        assert!(OptimizerSettings { momentum: 0.9, centered: true, ..rms }.validate().is_ok());
        assert!(OptimizerSettings { alpha: 1.5, ..rms }.validate().unwrap_err().starts_with("optimizer.alpha:"));
        assert!(OptimizerSettings { centered: true, ..adagrad }
            .validate()
            .unwrap_err()
            .starts_with("optimizer.centered:"));
        assert!(OptimizerSettings { lr_decay: 0.1, ..rms }.validate().unwrap_err().starts_with("optimizer.lr_decay:"));
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
}
