//! The schedulers of `torch/optim/lr_scheduler.py` (PyTorch 2.15) as the
//! state machines they are: each keeps `last_epoch` and `_step_count`,
//! reads and writes the group's `lr` (most of them recursively, from the
//! last value rather than a closed form), and `SequentialLR` replays
//! PyTorch's construction side effects (each sub-scheduler's initial step,
//! then the undo of one epoch). Every operation is the f64 operation the
//! Python code does, in its order, so the values are PyTorch's bits.

use super::{Anneal, OneCycle, Shape};
use std::f64::consts::PI;

/// The optimiser's `param_groups[0]` as the schedulers see it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Group {
    /// `group["lr"]`.
    lr: f64,
    /// `group["initial_lr"]`, set by the first scheduler built on it.
    initial_lr: Option<f64>,
    /// The momentum OneCycle writes (`group["momentum"]` or `betas[0]`).
    momentum: Option<f64>,
}

/// One scheduler's rule and the constants it needs.
#[derive(Clone, Debug)]
enum Rule {
    Constant,
    Step {
        step_size: i64,
        gamma: f64,
    },
    /// Milestones sorted, repeated as often as given (a `Counter`).
    MultiStep {
        milestones: Vec<i64>,
        gamma: f64,
    },
    Exponential {
        gamma: f64,
    },
    Cosine {
        t_max: i64,
        eta_min: f64,
    },
    Linear {
        start: f64,
        end: f64,
        total: i64,
    },
    OneCycle(Box<Cycle>),
}

/// OneCycle's resolved phases and ends.
#[derive(Clone, Debug)]
struct Cycle {
    total_steps: i64,
    /// (end_step, start_lr, end_lr, start_momentum, end_momentum).
    phases: Vec<(f64, f64, f64, f64, f64)>,
    cos: bool,
    cycle_momentum: bool,
}

/// One `LRScheduler` subclass instance.
#[derive(Clone, Debug)]
struct Scheduler {
    rule: Rule,
    last_epoch: i64,
    step_count: u64,
    base_lr: f64,
    is_initial: bool,
}

/// Python's `bisect.bisect_right`.
fn bisect_right(sorted: &[i64], x: i64) -> usize {
    sorted.partition_point(|&m| m <= x)
}

impl Scheduler {
    /// `LRScheduler.__init__(optimizer, last_epoch=-1)`: records the
    /// group's initial lr and takes the initial step.
    fn new(rule: Rule, group: &mut Group) -> Self {
        let initial = *group.initial_lr.get_or_insert(group.lr);
        let mut s = Scheduler { rule, last_epoch: -1, step_count: 0, base_lr: initial, is_initial: false };
        s.initial_step(group);
        s
    }

    /// `_initial_step`: the step counter reset and one step in initial mode.
    fn initial_step(&mut self, group: &mut Group) {
        self.step_count = 0;
        self.is_initial = true;
        self.step(group);
        self.is_initial = false;
    }

    /// `step()`.
    fn step(&mut self, group: &mut Group) {
        self.step_count += 1;
        self.update_lr(None, group);
    }

    /// `_update_lr(epoch)`: the next value, recursive, or the closed form
    /// at `epoch` where the class has one.
    fn update_lr(&mut self, epoch: Option<i64>, group: &mut Group) {
        group.lr = match epoch {
            None => {
                self.last_epoch += 1;
                self.get_lr(group)
            }
            Some(e) => {
                self.last_epoch = e;
                self.closed_form().unwrap_or_else(|| self.get_lr(group))
            }
        };
    }

    /// `get_lr()`, each class's recursive form.
    fn get_lr(&self, group: &mut Group) -> f64 {
        let (e, lr, base) = (self.last_epoch, group.lr, self.base_lr);
        match &self.rule {
            Rule::Constant => base * 1.0,
            Rule::Step { step_size, gamma } => {
                if e == 0 || e % step_size != 0 {
                    lr
                } else {
                    lr * gamma
                }
            }
            Rule::MultiStep { milestones, gamma } => {
                let count = milestones.iter().filter(|&&m| m == e).count();
                if count == 0 {
                    lr
                } else {
                    lr * gamma.powf(count as f64)
                }
            }
            Rule::Exponential { gamma } => {
                if self.is_initial {
                    lr
                } else {
                    lr * gamma
                }
            }
            Rule::Cosine { t_max, eta_min } => self.cosine(*t_max, *eta_min, lr),
            Rule::Linear { start, end, total } => {
                if e == 0 {
                    lr * start
                } else if self.is_initial || e > *total {
                    lr
                } else {
                    lr * (1.0 + (end - start) / (*total as f64 * start + (e - 1) as f64 * (end - start)))
                }
            }
            Rule::OneCycle(c) => {
                let (value, momentum) = c.at(e);
                if c.cycle_momentum {
                    group.momentum = Some(momentum);
                }
                value
            }
        }
    }

    /// `CosineAnnealingLR.get_lr`.
    fn cosine(&self, t_max: i64, eta_min: f64, lr: f64) -> f64 {
        let (e, t) = (self.last_epoch, t_max as f64);
        if self.is_initial {
            lr
        } else if self.step_count == 1 && e > 0 {
            eta_min + (self.base_lr - eta_min) * (1.0 + (e as f64 * PI / t).cos()) / 2.0
        } else if (e - 1 - t_max).rem_euclid(2 * t_max) == 0 {
            lr + (self.base_lr - eta_min) * (1.0 - (PI / t).cos()) / 2.0
        } else {
            (1.0 + (PI * e as f64 / t).cos()) / (1.0 + (PI * (e - 1) as f64 / t).cos()) * (lr - eta_min) + eta_min
        }
    }

    /// `_get_closed_form_lr()`, for the classes that have one.
    fn closed_form(&self) -> Option<f64> {
        let (e, base) = (self.last_epoch, self.base_lr);
        Some(match &self.rule {
            Rule::Step { step_size, gamma } => base * gamma.powf(e.div_euclid(*step_size) as f64),
            Rule::MultiStep { milestones, gamma } => base * gamma.powf(bisect_right(milestones, e) as f64),
            Rule::Exponential { gamma } => base * gamma.powf(e as f64),
            Rule::Cosine { t_max, eta_min } => {
                eta_min + (base - eta_min) * (1.0 + (PI * e as f64 / *t_max as f64).cos()) / 2.0
            }
            Rule::Linear { start, end, total } => {
                base * (start + (end - start) * (*total).min(e) as f64 / *total as f64)
            }
            Rule::Constant | Rule::OneCycle(_) => return None,
        })
    }
}

impl Cycle {
    /// `OneCycleLR.__init__`'s phases for `total_steps`, writing the
    /// group's initial lr and momentum as it does.
    fn new(c: &OneCycle, total_steps: usize, group: &mut Group) -> Result<Self, String> {
        let total = total_steps as f64;
        let initial = c.max_lr / c.div_factor;
        let min = initial / c.final_div_factor;
        let (lo_m, hi_m) = (c.base_momentum, c.max_momentum);
        let rise = c.pct_start * total - 1.0;
        let phases = if c.three_phase {
            vec![
                (rise, initial, c.max_lr, hi_m, lo_m),
                (2.0 * c.pct_start * total - 2.0, c.max_lr, initial, lo_m, hi_m),
                (total - 1.0, initial, min, hi_m, hi_m),
            ]
        } else {
            vec![(rise, initial, c.max_lr, hi_m, lo_m), (total - 1.0, c.max_lr, min, lo_m, hi_m)]
        };
        // Each phase must span at least one step: PyTorch divides by its length.
        let mut start = 0.0;
        for (i, p) in phases.iter().enumerate() {
            if p.0 <= start {
                return Err(format!(
                    "schedule: one_cycle's phase {} is empty with pct_start {} over {total_steps} steps (PyTorch divides by zero)",
                    i + 1,
                    c.pct_start
                ));
            }
            start = p.0;
        }
        group.initial_lr = Some(initial);
        if c.cycle_momentum {
            group.momentum = Some(hi_m);
        }
        let cos = c.anneal_strategy == Anneal::Cos;
        Ok(Cycle { total_steps: total_steps as i64, phases, cos, cycle_momentum: c.cycle_momentum })
    }

    /// `OneCycleLR.get_lr` at step `step_num`: the lr and the momentum.
    fn at(&self, step_num: i64) -> (f64, f64) {
        debug_assert!(step_num <= self.total_steps, "validated when built");
        let anneal = |start: f64, end: f64, pct: f64| {
            if self.cos {
                let cos_out = (PI * pct).cos() + 1.0;
                end + (start - end) / 2.0 * cos_out
            } else {
                (end - start) * pct + start
            }
        };
        let mut start_step = 0.0;
        for (i, &(end_step, lr0, lr1, m0, m1)) in self.phases.iter().enumerate() {
            if step_num as f64 <= end_step || i == self.phases.len() - 1 {
                let pct = (step_num as f64 - start_step) / (end_step - start_step);
                return (anneal(lr0, lr1, pct), anneal(m0, m1, pct));
            }
            start_step = end_step;
        }
        unreachable!("the last phase always matches")
    }
}

/// The top of a schedule: one scheduler, or `SequentialLR` over several.
#[derive(Clone, Debug)]
enum Top {
    One(Scheduler),
    Sequence { last_epoch: i64, schedulers: Vec<Scheduler>, milestones: Vec<i64> },
}

/// A running schedule: the lr (and OneCycle's momentum) for the next
/// optimiser step, advanced with [`LrSchedule::advance`].
#[derive(Clone, Debug)]
pub struct LrSchedule {
    group: Group,
    top: Top,
    /// Advances so far.
    advances: usize,
    /// The most advances the schedule allows (OneCycle's total steps).
    limit: Option<usize>,
}

impl LrSchedule {
    /// The schedule `shape` on an optimiser whose lr is `lr`, built as
    /// PyTorch builds it; `intervals` is the run's count of intervals
    /// (OneCycle's default total). Errors name the field.
    pub fn new(shape: &Shape, lr: f64, intervals: usize) -> Result<Self, String> {
        let mut group = Group { lr, initial_lr: None, momentum: None };
        let mut limit = None;
        let top = match shape {
            Shape::Sequence { schedules, milestones } => {
                let mut built = Vec::new();
                for s in schedules {
                    built.push(Scheduler::new(rule_of(s, intervals, &mut group, &mut limit)?, &mut group));
                }
                // SequentialLR.__init__: back to the initial lr, every
                // scheduler one epoch back, then the first's initial step.
                group.lr = group.initial_lr.expect("set by the first scheduler");
                built.iter_mut().for_each(|s| s.last_epoch -= 1);
                let milestones: Vec<i64> = milestones.iter().map(|&m| m as i64).collect();
                let idx = bisect_right(&milestones, 0);
                built[idx].initial_step(&mut group);
                Top::Sequence { last_epoch: 0, schedulers: built, milestones }
            }
            _ => Top::One(Scheduler::new(rule_of(shape, intervals, &mut group, &mut limit)?, &mut group)),
        };
        Ok(LrSchedule { group, top, advances: 0, limit })
    }

    /// The lr the next optimiser step uses.
    pub fn lr(&self) -> f64 {
        self.group.lr
    }

    /// The momentum (SGD's and RMSprop's, or Adam's beta1) the next step
    /// uses, where the schedule sets it (OneCycle); `None`: the optimiser's.
    pub fn momentum(&self) -> Option<f64> {
        self.group.momentum
    }

    /// `scheduler.step()`, after an interval. Past OneCycle's total it
    /// keeps the last value (PyTorch raises; the run checks the total
    /// before it starts).
    pub fn advance(&mut self) {
        if self.limit.is_some_and(|l| self.advances >= l) {
            return;
        }
        self.advances += 1;
        match &mut self.top {
            Top::One(s) => s.step(&mut self.group),
            Top::Sequence { last_epoch, schedulers, milestones } => {
                *last_epoch += 1;
                let idx = bisect_right(milestones, *last_epoch);
                if idx > 0 && milestones[idx - 1] == *last_epoch {
                    schedulers[idx].update_lr(Some(0), &mut self.group);
                } else {
                    schedulers[idx].step(&mut self.group);
                }
            }
        }
    }

    /// The schedule after `n` advances from its start (a resumed run's).
    pub fn advanced(mut self, n: usize) -> Self {
        (0..n).for_each(|_| self.advance());
        self
    }
}

/// The scheduler of one (non-sequence) shape.
fn rule_of(shape: &Shape, intervals: usize, group: &mut Group, limit: &mut Option<usize>) -> Result<Rule, String> {
    Ok(match shape {
        Shape::Constant => Rule::Constant,
        Shape::Step { step_size, gamma } => Rule::Step { step_size: *step_size as i64, gamma: *gamma },
        Shape::MultiStep { milestones, gamma } => {
            let mut milestones: Vec<i64> = milestones.iter().map(|&m| m as i64).collect();
            milestones.sort_unstable();
            Rule::MultiStep { milestones, gamma: *gamma }
        }
        Shape::Exponential { gamma } => Rule::Exponential { gamma: *gamma },
        Shape::Cosine { t_max, eta_min } => Rule::Cosine { t_max: *t_max as i64, eta_min: *eta_min },
        Shape::Linear { start_factor, end_factor, total_iters } => {
            Rule::Linear { start: *start_factor, end: *end_factor, total: *total_iters as i64 }
        }
        Shape::OneCycle(c) => {
            let total = c.total_steps.unwrap_or(intervals);
            if total < intervals {
                return Err(format!(
                    "schedule.total_steps: one_cycle's {total} steps are fewer than the run's {intervals} (PyTorch raises past its total)"
                ));
            }
            *limit = Some(total);
            Rule::OneCycle(Box::new(Cycle::new(c, total, group)?))
        }
        Shape::Sequence { .. } => return Err("schedule: a sequence cannot hold another sequence".into()),
    })
}
