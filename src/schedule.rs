//! Learning-rate schedules with `torch.optim.lr_scheduler`'s semantics:
//! what a file's `[schedule]` says ([`ScheduleSettings`]), and the
//! schedule while it runs ([`LrSchedule`]), which keeps the same f64 values
//! PyTorch keeps in the optimiser's `param_groups[0]["lr"]` (and, for
//! OneCycle, its momentum), step for step.
//!
//! ```toml
//! [schedule]
//! kind = "cosine"        # constant, step, multi_step, exponential, cosine,
//! t_max = 4220           # linear, one_cycle or sequence
//! interval = "step"      # advance after every optimiser step (or "epoch")
//! warmup_steps = 200     # a linear warm-up in front (SequentialLR)
//! ```
//!
//! As in PyTorch, the schedule advances after the optimiser's step: the
//! update at step `k` (0-based) uses the value after `k` advances. The
//! value is a function of the advances alone, so a resumed run replays
//! them and continues with the same bits.

mod torch_port;

use crate::error::SettingError;
use serde::{Deserialize, Serialize};
pub use torch_port::LrSchedule;

/// When a schedule advances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// After every epoch (`scheduler.step()` at the end of each epoch).
    #[default]
    Epoch,
    /// After every optimiser step.
    Step,
}

fn tenth() -> f64 {
    0.1
}
fn third() -> f64 {
    1.0 / 3.0
}
fn one() -> f64 {
    1.0
}
fn five() -> usize {
    5
}

/// A schedule's shape: one of `torch.optim.lr_scheduler`'s, with its
/// parameters and PyTorch's defaults (counts are in intervals).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Shape {
    /// The optimiser's lr throughout (as `LambdaLR` with `lambda _: 1`).
    Constant,
    /// `StepLR`: multiply by `gamma` every `step_size` intervals.
    Step {
        /// Intervals between decays.
        step_size: usize,
        /// The factor of each decay.
        #[serde(default = "tenth")]
        gamma: f64,
    },
    /// `MultiStepLR`: multiply by `gamma` at each milestone.
    MultiStep {
        /// The intervals after which the lr decays (increasing).
        milestones: Vec<usize>,
        /// The factor of each decay.
        #[serde(default = "tenth")]
        gamma: f64,
    },
    /// `ExponentialLR`: multiply by `gamma` every interval.
    Exponential {
        /// The factor per interval.
        gamma: f64,
    },
    /// `CosineAnnealingLR` (Loshchilov & Hutter 2017, SGDR, eq. 5 without
    /// restarts): from the lr down to `eta_min` over `t_max` intervals.
    Cosine {
        /// Intervals of the half cosine.
        t_max: usize,
        /// The lowest lr.
        #[serde(default)]
        eta_min: f64,
    },
    /// `LinearLR`: the lr times a factor going linearly from `start_factor`
    /// to `end_factor` over `total_iters` intervals (a warm-up).
    Linear {
        /// The first factor, in (0, 1].
        #[serde(default = "third")]
        start_factor: f64,
        /// The last factor, in [0, 1].
        #[serde(default = "one")]
        end_factor: f64,
        /// Intervals from the first to the last.
        #[serde(default = "five")]
        total_iters: usize,
    },
    /// `OneCycleLR` (Smith & Topin 2019): up from `max_lr / div_factor` to
    /// `max_lr`, then down to `initial / final_div_factor`, and the
    /// momentum (SGD's, RMSprop's, or Adam's beta1) the other way.
    OneCycle(OneCycle),
    /// `SequentialLR`: `schedules[i]` from `milestones[i - 1]` on.
    Sequence {
        /// The schedules, in order (none of them a sequence or OneCycle).
        schedules: Vec<Shape>,
        /// Where each schedule after the first takes over (increasing).
        milestones: Vec<usize>,
    },
}

/// `OneCycleLR`'s parameters, with its defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneCycle {
    /// The peak lr (the optimiser's own lr is not used, as in PyTorch).
    pub max_lr: f64,
    /// Intervals of the whole cycle; unsaid, the run's (its steps, or its
    /// epochs with `interval = "epoch"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_steps: Option<usize>,
    /// Share of the cycle spent rising.
    #[serde(default = "one_cycle_pct_start")]
    pub pct_start: f64,
    /// `cos` or `linear`.
    #[serde(default)]
    pub anneal_strategy: Anneal,
    /// Cycle the momentum inversely to the lr (PyTorch's default: on, which
    /// turns SGD's momentum on at `max_momentum`).
    #[serde(default = "yes")]
    pub cycle_momentum: bool,
    /// The momentum at the peak lr.
    #[serde(default = "one_cycle_base_momentum")]
    pub base_momentum: f64,
    /// The momentum at the lowest lr.
    #[serde(default = "one_cycle_max_momentum")]
    pub max_momentum: f64,
    /// The first lr is `max_lr / div_factor`.
    #[serde(default = "one_cycle_div_factor")]
    pub div_factor: f64,
    /// The last lr is the first over `final_div_factor`.
    #[serde(default = "one_cycle_final_div_factor")]
    pub final_div_factor: f64,
    /// Fall back to the first lr before annealing to the last (fast.ai's
    /// three phases).
    #[serde(default)]
    pub three_phase: bool,
}

fn one_cycle_pct_start() -> f64 {
    0.3
}
fn yes() -> bool {
    true
}
fn one_cycle_base_momentum() -> f64 {
    0.85
}
fn one_cycle_max_momentum() -> f64 {
    0.95
}
fn one_cycle_div_factor() -> f64 {
    25.0
}
fn one_cycle_final_div_factor() -> f64 {
    1e4
}
fn warmup_start() -> f64 {
    0.01
}
fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// OneCycle's interpolation between its phases' ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Anneal {
    /// Half a cosine.
    #[default]
    Cos,
    /// A straight line.
    Linear,
}

/// `[schedule]`: a shape, when it advances, and an optional warm-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSettings {
    /// The schedule.
    #[serde(flatten)]
    pub shape: Shape,
    /// `epoch` (default) or `step`.
    #[serde(default)]
    pub interval: Interval,
    /// Optimiser steps of linear warm-up before `shape` takes over: the
    /// schedule becomes `SequentialLR([LinearLR(warmup_start_factor, 1,
    /// warmup_steps), shape], milestones = [warmup_steps])`. Needs
    /// `interval = "step"`; 0 (default): none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warmup_steps: usize,
    /// The warm-up's first factor of the lr, in (0, 1].
    #[serde(default = "warmup_start")]
    pub warmup_start_factor: f64,
}

impl ScheduleSettings {
    /// No schedule: the optimiser's lr throughout.
    pub fn constant() -> Self {
        ScheduleSettings {
            shape: Shape::Constant,
            interval: Interval::Epoch,
            warmup_steps: 0,
            warmup_start_factor: warmup_start(),
        }
    }

    /// The shape that runs: `shape`, behind its warm-up if there is one.
    pub fn effective_shape(&self) -> Shape {
        if self.warmup_steps == 0 {
            return self.shape.clone();
        }
        let warmup =
            Shape::Linear { start_factor: self.warmup_start_factor, end_factor: 1.0, total_iters: self.warmup_steps };
        Shape::Sequence { schedules: vec![warmup, self.shape.clone()], milestones: vec![self.warmup_steps] }
    }

    /// Whether the lr never changes.
    pub fn is_constant(&self) -> bool {
        self.shape == Shape::Constant && self.warmup_steps == 0
    }

    /// Rejects what PyTorch would reject, or what would silently do
    /// nothing, naming the field under `key` (`schedule`).
    pub fn validate(&self, key: &str, lr: f64) -> Result<(), SettingError> {
        if self.warmup_steps > 0 {
            if self.interval != Interval::Step {
                return Err(SettingError::new(
                    format!("{key}.warmup_steps"),
                    "counts optimiser steps, so needs interval = \"step\"",
                ));
            }
            if !(self.warmup_start_factor > 0.0 && self.warmup_start_factor <= 1.0) {
                return Err(SettingError::new(
                    format!("{key}.warmup_start_factor"),
                    format!("must be in (0, 1], got {}", self.warmup_start_factor),
                ));
            }
            if matches!(self.shape, Shape::Sequence { .. } | Shape::OneCycle(_)) {
                return Err(SettingError::new(
                    format!("{key}.warmup_steps"),
                    "a sequence takes its warm-up among its schedules, and one_cycle has its own (pct_start)",
                ));
            }
        }
        self.shape.validate(key, lr, true)
    }
}

impl Shape {
    /// The checks of one shape; `top` is false inside a sequence.
    fn validate(&self, key: &str, lr: f64, top: bool) -> Result<(), SettingError> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(SettingError::new(format!("{key}.{name}"), format!("must be a positive number, got {v}")))
            }
        };
        let increasing = |name: &str, m: &[usize]| match m.windows(2).position(|w| w[1] <= w[0]) {
            Some(i) => Err(SettingError::new(
                format!("{key}.{name}[{}]", i + 1),
                format!("milestones must increase, got {} after {}", m[i + 1], m[i]),
            )),
            None => Ok(()),
        };
        match self {
            Shape::Constant => Ok(()),
            Shape::Step { step_size, gamma } => {
                if *step_size == 0 {
                    return Err(SettingError::new(format!("{key}.step_size"), "must be at least 1"));
                }
                positive("gamma", *gamma)
            }
            Shape::MultiStep { milestones, gamma } => {
                increasing("milestones", milestones)?;
                positive("gamma", *gamma)
            }
            Shape::Exponential { gamma } => positive("gamma", *gamma),
            Shape::Cosine { t_max, eta_min } => {
                if *t_max == 0 {
                    return Err(SettingError::new(format!("{key}.t_max"), "must be at least 1"));
                }
                if !(eta_min.is_finite() && *eta_min >= 0.0 && *eta_min <= lr) {
                    return Err(SettingError::new(
                        format!("{key}.eta_min"),
                        format!("must be in [0, lr = {lr}], got {eta_min}"),
                    ));
                }
                Ok(())
            }
            Shape::Linear { start_factor, end_factor, total_iters } => {
                if !(*start_factor > 0.0 && *start_factor <= 1.0) {
                    return Err(SettingError::new(
                        format!("{key}.start_factor"),
                        format!("must be in (0, 1], got {start_factor}"),
                    ));
                }
                if !(0.0..=1.0).contains(end_factor) {
                    return Err(SettingError::new(
                        format!("{key}.end_factor"),
                        format!("must be in [0, 1], got {end_factor}"),
                    ));
                }
                if *total_iters == 0 {
                    return Err(SettingError::new(format!("{key}.total_iters"), "must be at least 1"));
                }
                Ok(())
            }
            Shape::OneCycle(c) => {
                if !top {
                    return Err(SettingError::new(format!("{key}.kind"), "one_cycle cannot be part of a sequence"));
                }
                c.validate(key)
            }
            Shape::Sequence { schedules, milestones } => {
                if !top {
                    return Err(SettingError::new(format!("{key}.kind"), "a sequence cannot hold another sequence"));
                }
                if schedules.is_empty() || milestones.len() + 1 != schedules.len() {
                    return Err(SettingError::new(
                        format!("{key}.milestones"),
                        format!(
                            "{} schedules need {} milestones, got {}",
                            schedules.len(),
                            schedules.len().saturating_sub(1),
                            milestones.len()
                        ),
                    ));
                }
                increasing("milestones", milestones)?;
                if milestones.first() == Some(&0) {
                    return Err(SettingError::new(format!("{key}.milestones[0]"), "must be at least 1"));
                }
                for (i, s) in schedules.iter().enumerate() {
                    s.validate(&format!("{key}.schedules[{i}]"), lr, false)?;
                }
                Ok(())
            }
        }
    }
}

impl OneCycle {
    fn validate(&self, key: &str) -> Result<(), SettingError> {
        for (name, v) in
            [("max_lr", self.max_lr), ("div_factor", self.div_factor), ("final_div_factor", self.final_div_factor)]
        {
            if !(v.is_finite() && v > 0.0) {
                return Err(SettingError::new(format!("{key}.{name}"), format!("must be a positive number, got {v}")));
            }
        }
        if !(0.0..=1.0).contains(&self.pct_start) {
            return Err(SettingError::new(
                format!("{key}.pct_start"),
                format!("must be in [0, 1], got {}", self.pct_start),
            ));
        }
        if self.total_steps == Some(0) {
            return Err(SettingError::new(format!("{key}.total_steps"), "must be at least 1"));
        }
        for (name, v) in [("base_momentum", self.base_momentum), ("max_momentum", self.max_momentum)] {
            if !(0.0..1.0).contains(&v) {
                return Err(SettingError::new(format!("{key}.{name}"), format!("must be in [0, 1), got {v}")));
            }
        }
        Ok(())
    }
}

/// A run's schedule: the value for each step, advanced after each step or
/// each epoch as its interval says.
#[derive(Clone, Debug)]
pub struct RunSchedule {
    schedule: LrSchedule,
    /// One per parameter group, from the group's own lr (PyTorch steps
    /// every group's lr from its own `initial_lr`).
    groups: Vec<LrSchedule>,
    interval: Interval,
}

/// What a schedule gives the next optimiser step.
#[derive(Clone, Debug, PartialEq)]
pub struct Scheduled {
    /// The learning rate outside any parameter group.
    pub lr: f64,
    /// The momentum (SGD's and RMSprop's, or Adam's beta1), where the
    /// schedule sets it (OneCycle).
    pub momentum: Option<f64>,
    /// Each parameter group's learning rate.
    pub group_lrs: Vec<f64>,
}

impl RunSchedule {
    /// The schedule of `settings` for an optimiser of learning rate `lr`
    /// (and parameter groups of `group_lrs`) over `epochs` epochs of
    /// `steps_per_epoch`, advanced to where a run stands after
    /// `steps_taken` steps in its (1-based) `epoch`. Errors name the field.
    pub fn start(
        settings: &ScheduleSettings,
        (lr, group_lrs): (f64, &[f64]),
        (steps_per_epoch, epochs): (usize, usize),
        (steps_taken, epoch): (usize, usize),
    ) -> Result<Self, String> {
        let (intervals, done) = match settings.interval {
            Interval::Step => (steps_per_epoch * epochs, steps_taken),
            Interval::Epoch => (epochs, epoch.saturating_sub(1)),
        };
        let shape = settings.effective_shape();
        if !group_lrs.is_empty() && matches!(shape, Shape::OneCycle(_)) {
            return Err("schedule.kind: one_cycle gives every parameter group the same max_lr; per-layer learning rates (lr_scale, or a parametrisation's) would be ignored".into());
        }
        let build = |lr: f64| LrSchedule::new(&shape, lr, intervals).map(|s| s.advanced(done));
        let groups = group_lrs.iter().map(|&lr| build(lr)).collect::<Result<_, _>>()?;
        Ok(RunSchedule { schedule: build(lr)?, groups, interval: settings.interval })
    }

    /// The lrs and (where the schedule sets it) the momentum of the next step.
    pub fn values(&self) -> Scheduled {
        Scheduled {
            lr: self.schedule.lr(),
            momentum: self.schedule.momentum(),
            group_lrs: self.groups.iter().map(LrSchedule::lr).collect(),
        }
    }

    fn advance(&mut self) {
        self.schedule.advance();
        self.groups.iter_mut().for_each(LrSchedule::advance);
    }

    /// After an optimiser step.
    pub fn after_step(&mut self) {
        if self.interval == Interval::Step {
            self.advance();
        }
    }

    /// After an epoch.
    pub fn after_epoch(&mut self) {
        if self.interval == Interval::Epoch {
            self.advance();
        }
    }
}

#[cfg(test)]
mod tests;
