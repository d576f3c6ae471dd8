//! One variant's training loop, its events, and checkpoints that let it
//! stop at any step boundary and continue bit-identically.

use super::checkpoint::{Checkpoint, OptimizerState};
use super::cursor::Cursor;
use super::Trainer;
use crate::data::batch::{epoch_order, fill_batch, validation_split};
use crate::data::order::{EpochOrders, Orders, TorchLoaders};
use crate::data::Dataset;
use crate::nn::{load_into, lsuv, Init, Model, Workspace};
use crate::optim::Optimizer;
use crate::rng::RngKind;
use crate::schedule::RunSchedule;
use crate::spec::RunSpec;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Correct predictions out of a total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Correctly classified.
    pub correct: usize,
    /// Classified.
    pub total: usize,
}

impl Accuracy {
    /// In percent (0 when nothing was classified).
    pub fn percent(self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            100.0 * self.correct as f64 / self.total as f64
        }
    }
}

/// What one epoch achieved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based.
    pub epoch: usize,
    /// Mean of the epoch's minibatch losses.
    #[serde(with = "crate::nonfinite::nan_as_null")]
    pub mean_loss: f64,
    /// Over the full batches of a fresh shuffle of the training set, as the
    /// original iterates its training loader again.
    pub train: Accuracy,
    /// Over the validation set.
    pub valid: Accuracy,
    /// Seconds since the variant started training (wall clock).
    pub elapsed_s: f64,
}

/// What a whole variant achieved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantSummary {
    /// The run's name (the variant's, or `<variant>-seed<N>`).
    pub name: String,
    /// The variant's name as written in the experiment (runs with several
    /// seeds share it).
    #[serde(default)]
    pub group: String,
    /// The run's seed.
    #[serde(default)]
    pub seed: u64,
    /// The generator the seed drove (initial weights and batch orders).
    #[serde(default)]
    pub rng: RngKind,
    /// Optimisation steps taken.
    pub steps: usize,
    /// The step whose loss was NaN or infinite, where training stopped.
    #[serde(default)]
    pub diverged_at: Option<usize>,
    /// Loss of the very first batch, before any update.
    #[serde(with = "crate::nonfinite::nan_as_null")]
    pub initial_loss: f64,
    /// Mean minibatch loss of the last epoch.
    #[serde(with = "crate::nonfinite::nan_as_null")]
    pub final_loss: f64,
    /// Training accuracy after the last epoch.
    pub train: Accuracy,
    /// Validation accuracy after the last epoch.
    pub valid: Accuracy,
    /// Test accuracy of the final model.
    pub test: Accuracy,
    /// Wall-clock seconds of training and evaluation.
    pub seconds: f64,
    /// The probe's diagnoses (filled in by whoever ran the probe).
    #[serde(default)]
    pub verdicts: Vec<crate::verdict::Verdict>,
}

/// How a variant's training ended.
#[derive(Debug)]
pub enum VariantOutcome {
    /// Every epoch ran (or it diverged); the results.
    Finished(VariantSummary),
    /// The stop flag was raised; where it stopped.
    Interrupted(Checkpoint),
    /// The stop flag was raised while the model was being initialised:
    /// nothing was recorded, and `resume` starts the variant afresh.
    NotStarted,
}

/// What happens while a variant trains, in order.
pub enum Event<'a> {
    /// Before the first step; `model` holds the initial parameters.
    Start {
        /// The model.
        model: &'a Model,
        /// Steps per epoch.
        steps_per_epoch: usize,
        /// Epochs to run.
        epochs: usize,
    },
    /// Instead of `Start` when continuing from a checkpoint; observers
    /// restore what they had recorded up to it.
    Resume {
        /// The model with the checkpoint's parameters.
        model: &'a Model,
        /// Steps per epoch.
        steps_per_epoch: usize,
        /// Epochs to run.
        epochs: usize,
        /// Where training continues.
        checkpoint: &'a Checkpoint,
    },
    /// After each step's forward and backward pass, before its update.
    Step {
        /// 1-based epoch.
        epoch: usize,
        /// 0-based step within the epoch.
        step: usize,
        /// The batch's loss before the update.
        loss: f32,
        /// The trainer before the update: the parameters the step used, its
        /// gradient and the batch's activations (see
        /// [`Trainer::batch_activations`]).
        trainer: &'a Trainer,
    },
    /// After each step's update (not after a step whose loss diverged,
    /// which is not applied): observers can measure the update itself.
    Updated {
        /// The model after the update.
        model: &'a Model,
    },
    /// After each epoch's evaluation.
    Epoch {
        /// What the epoch achieved.
        metrics: &'a EpochMetrics,
        /// The model at the end of the epoch.
        model: &'a Model,
        /// Its optimiser, with the state a checkpoint needs.
        optimizer: &'a Optimizer,
        /// Where the next epoch starts.
        checkpoint: &'a Checkpoint,
    },
    /// Training stopped at a step boundary on request.
    Interrupted {
        /// The model after the last update.
        model: &'a Model,
        /// Its optimiser, with the state a checkpoint needs.
        optimizer: &'a Optimizer,
        /// Where to continue.
        checkpoint: &'a Checkpoint,
    },
    /// After the test evaluation; `model` holds the final parameters.
    End {
        /// The model.
        model: &'a Model,
        /// The results.
        summary: &'a VariantSummary,
        /// The final model's prediction for each test image, in file order.
        test_predictions: &'a [u8],
        /// The test images' labels.
        test_labels: &'a [u8],
    },
}

/// Receives a variant's [`Event`]s: the console, the run records, probes.
pub trait Observer {
    /// Called for every event of the variant named `variant`.
    fn on_event(&mut self, variant: &str, event: &Event) -> Result<()>;
}

/// Trains one run (a variant with a seed) of `exp` on `data`, telling
/// `observer` everything.
/// Starts afresh, or from `resume` (a checkpoint and its parameters). After
/// every step it asks `stop`: when it says so (a signal, or another
/// variant of the run failed), it returns [`VariantOutcome::Interrupted`]
/// at that step boundary. A lockstep group of one (see
/// [`super::lockstep`]): training alone and in a group is one loop.
pub fn train_variant(
    spec: &RunSpec,
    data: &Dataset,
    threads: usize,
    resume: Option<(&Checkpoint, &[crate::tensorfile::NamedTensor], &OptimizerState)>,
    stop: &(dyn Fn() -> bool + Sync),
    observer: &mut dyn Observer,
) -> Result<VariantOutcome> {
    let job = super::lockstep::Job { spec, resume, stop, failed: None, observer };
    super::lockstep::train_lockstep(vec![job], data, threads).pop().expect("one job, one outcome")
}

/// A run resuming: its checkpoint, parameters and optimiser state.
pub type Resume<'a> = Option<(&'a Checkpoint, &'a [crate::tensorfile::NamedTensor], &'a OptimizerState)>;

/// One run being trained, a step at a time: its trainer, batch orders,
/// schedule and position, and its observer. The lockstep loop drives it:
/// [`Member::next_batch`], the group's gradient, [`Member::after_gradients`],
/// until `next_batch` says the run has ended, then [`Member::finish`].
pub(crate) struct Member<'a> {
    spec: &'a RunSpec,
    data: &'a Dataset,
    split: Split,
    /// The model, its optimiser and buffers.
    pub(crate) trainer: Trainer,
    orders: Orders,
    /// The orders of the epoch in progress.
    epoch_orders: EpochOrders,
    schedule: RunSchedule,
    at: Cursor,
    diverged_at: Option<usize>,
    /// Seconds trained before this process, and when this one started: a
    /// checkpoint may hold more seconds than the machine has been up, so
    /// no Instant is moved back by them.
    before: f64,
    started: Instant,
    observer: &'a mut dyn Observer,
    stop: &'a (dyn Fn() -> bool + Sync),
}

/// How [`Member::begin`] left a run.
pub(crate) enum Begun<'a> {
    /// Ready for its next step.
    Training(Box<Member<'a>>),
    /// Already over: stopped while initialising or right after.
    Ended(VariantOutcome),
}

impl<'a> Member<'a> {
    /// Initialises the model (or restores `resume`), tells the observer,
    /// and stands before the first step to take.
    pub(crate) fn begin(
        spec: &'a RunSpec,
        data: &'a Dataset,
        threads: usize,
        resume: Resume,
        stop: &'a (dyn Fn() -> bool + Sync),
        observer: &'a mut dyn Observer,
    ) -> Result<Begun<'a>> {
        let split = Split::new(spec, data)?;
        let Some((model, mut orders)) = initial_model(spec, data, &split, stop)? else {
            return Ok(Begun::Ended(VariantOutcome::NotStarted));
        };
        let optimizer = spec.optimizer(&model);
        let mut trainer = Trainer::with_optimizer(model, optimizer, spec.batch_size, threads)
            .with_loss(spec.loss)
            .with_clip(spec.clip);
        let at = start_or_resume(&mut trainer, &spec.name, split.steps_per_epoch, spec.epochs, resume, observer)?;
        let schedule = RunSchedule::start(
            &spec.schedule,
            (spec.optimizer.lr, &spec.group_lrs()),
            (split.steps_per_epoch, spec.epochs),
            (at.steps_taken, at.epoch),
        )
        .map_err(crate::error::input)?;
        let epoch_orders = orders.epoch(at.epoch.min(spec.epochs).max(1));
        let (before, started) = (at.elapsed_s, Instant::now());
        let member = Member {
            spec,
            data,
            split,
            trainer,
            orders,
            epoch_orders,
            schedule,
            at,
            diverged_at: None,
            before,
            started,
            observer,
            stop,
        };
        // A signal between initialisation and the first step stops the run
        // there, with a checkpoint like any other.
        if stop() {
            let mut member = member;
            return member.interrupt().map(Begun::Ended);
        }
        Ok(Begun::Training(Box::new(member)))
    }

    fn elapsed(&self) -> f64 {
        self.before + self.started.elapsed().as_secs_f64()
    }

    /// The trainer, and the images at `range` of the epoch's order (what
    /// [`Member::next_batch`] returned).
    pub(crate) fn trainer_and_batch(&mut self, range: std::ops::Range<usize>) -> (&mut Trainer, &[u32]) {
        (&mut self.trainer, &self.epoch_orders.train[range])
    }

    /// The range in the epoch's order of the images of the next step, with the step's learning rates set; or
    /// `None` when the run has ended (every epoch done, or diverged), after
    /// evaluating any epoch that ended first.
    pub(crate) fn next_batch(&mut self) -> Result<Option<std::ops::Range<usize>>> {
        loop {
            if self.at.epoch > self.spec.epochs {
                return Ok(None);
            }
            if self.at.step < self.split.steps_per_epoch && self.diverged_at.is_none() {
                self.trainer.set_scheduled(&self.schedule.values());
                let size = self.spec.batch_size;
                return Ok(Some(self.at.step * size..(self.at.step + 1) * size));
            }
            self.end_epoch()?;
            if self.diverged_at.is_some() {
                return Ok(None);
            }
            if self.at.epoch <= self.spec.epochs {
                self.epoch_orders = self.orders.epoch(self.at.epoch);
            }
        }
    }

    /// Evaluates the epoch that just ended and tells the observer.
    fn end_epoch(&mut self) -> Result<()> {
        let elapsed = self.elapsed();
        let metrics =
            evaluate_epoch(&mut self.trainer, self.spec, self.data, &self.split, &self.epoch_orders, &self.at, elapsed);
        self.schedule.after_epoch();
        self.at = self.at.next_epoch(&metrics);
        let checkpoint = &self.at.checkpoint(&self.spec.name);
        let trainer = &self.trainer;
        let event =
            Event::Epoch { metrics: &metrics, model: trainer.model(), optimizer: trainer.optimizer(), checkpoint };
        self.observer.on_event(&self.spec.name, &event)
    }

    /// After the group computed this step's gradient (the batch's mean loss
    /// `loss`): tells the observer, stops on a non-finite loss, else
    /// applies the update. `Some` when the run stopped on request here.
    pub(crate) fn after_gradients(&mut self, loss: f32) -> Result<Option<VariantOutcome>> {
        let (epoch, step) = (self.at.epoch, self.at.step);
        if self.at.steps_taken == 0 {
            self.at.initial_loss = f64::from(loss);
        }
        self.at.loss_sum += f64::from(loss);
        self.at.step = step + 1;
        self.observer.on_event(&self.spec.name, &Event::Step { epoch, step, loss, trainer: &self.trainer })?;
        if !loss.is_finite() {
            // Diverged: every later number would be NaN too. Stop this
            // variant after evaluating the epoch; its records so far are kept.
            self.diverged_at = Some(self.at.steps_taken);
            return Ok(None);
        }
        self.trainer.apply_update();
        self.schedule.after_step();
        self.observer.on_event(&self.spec.name, &Event::Updated { model: self.trainer.model() })?;
        self.at.steps_taken += 1;
        if (self.stop)() {
            return self.interrupt().map(Some);
        }
        Ok(None)
    }

    /// Stops at a step boundary: the observers save a checkpoint.
    fn interrupt(&mut self) -> Result<VariantOutcome> {
        let elapsed = self.elapsed();
        interrupt(&self.trainer, &self.spec.name, self.at.clone(), elapsed, &mut *self.observer)
    }

    /// Tests the final model and tells the observer the run's results.
    pub(crate) fn finish(mut self) -> Result<VariantOutcome> {
        let elapsed = self.elapsed();
        let (spec, data, at) = (self.spec, self.data, self.at.clone());
        let summary = finish(&mut self.trainer, spec, data, &at, self.diverged_at, elapsed, &mut *self.observer)?;
        Ok(VariantOutcome::Finished(summary))
    }
}

/// The model as the variant initialises it: sizes from the data and the
/// settings, each layer's schemes, then the data-driven parts (weights
/// from a file, LSUV's rescaling on one batch from its own stream); and
/// where the batch orders come from (with `rng = "torch"`, the generator
/// as the initialisation left it). `None` when `stop` interrupted it.
fn initial_model(
    spec: &RunSpec,
    data: &Dataset,
    split: &Split,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Option<(Model, Orders)>> {
    let seed = spec.seed;
    if data.test.pixels_per_image() != data.train.pixels_per_image() {
        return Err(crate::error::input(format!(
            "the test images are {}x{} but the training images {}x{}: the model cannot take both",
            data.test.rows, data.test.cols, data.train.rows, data.train.cols
        )));
    }
    let Some((mut model, generator)) = spec.drawn_model(stop) else {
        return Ok(None);
    };
    let (train, valid) = (split.train.clone(), split.valid.clone());
    let orders = match generator {
        None => Orders::Streams { seed, train, valid, shuffle: spec.shuffle },
        Some(after_init) => Orders::Torch(Box::new(TorchLoaders::new(after_init, train, valid, spec.shuffle))),
    };
    match &spec.weight_init {
        Init::FromFile { path } => load_into(&mut model, path)?,
        Init::Lsuv { tol, max_iter } => {
            let mut ws = Workspace::new(&model, spec.batch_size);
            let order = epoch_order(0..data.train.count, true, seed, "init/lsuv", 0);
            let rows = spec.batch_size.min(order.len());
            let mut labels = Vec::new();
            fill_batch(&data.train, &order[..rows], &mut ws.input, &mut labels);
            lsuv(&mut model, &mut ws, rows, *tol, *max_iter);
        }
        _ => {}
    }
    Ok(Some((model, orders)))
}

/// The training file cut into training and validation images, and the
/// full batches an epoch takes.
struct Split {
    train: std::ops::Range<usize>,
    valid: std::ops::Range<usize>,
    steps_per_epoch: usize,
}

impl Split {
    fn new(spec: &RunSpec, data: &Dataset) -> Result<Self> {
        let (train, valid) = validation_split(data.train.count, spec.validation_fraction);
        let full_batches = train.len() / spec.batch_size; // the last partial batch is dropped
        let steps_per_epoch = spec.steps_per_epoch.map_or(full_batches, |cap| cap.min(full_batches));
        if steps_per_epoch == 0 {
            return Err(crate::error::input(format!(
                "batch_size: {} is larger than the {} training images",
                spec.batch_size,
                train.len()
            )));
        }
        Ok(Split { train, valid, steps_per_epoch })
    }
}

/// Restores `resume` into the trainer, or starts afresh; tells the
/// observer which, and returns where training stands.
fn start_or_resume(
    trainer: &mut Trainer,
    variant: &str,
    steps_per_epoch: usize,
    epochs: usize,
    resume: Option<(&Checkpoint, &[crate::tensorfile::NamedTensor], &OptimizerState)>,
    observer: &mut dyn Observer,
) -> Result<Cursor> {
    let Some((checkpoint, tensors, state)) = resume else {
        observer.on_event(variant, &Event::Start { model: trainer.model(), steps_per_epoch, epochs })?;
        return Ok(Cursor::start());
    };
    trainer.restore_model(tensors, &format!("the checkpoint of {variant}"), checkpoint.steps_taken)?;
    trainer.set_optimizer_state(state);
    observer.on_event(variant, &Event::Resume { model: trainer.model(), steps_per_epoch, epochs, checkpoint })?;
    Ok(Cursor::resumed(checkpoint))
}

/// Stops at a step boundary: the observers save a checkpoint of `at`.
fn interrupt(
    trainer: &Trainer,
    variant: &str,
    at: Cursor,
    elapsed_s: f64,
    observer: &mut dyn Observer,
) -> Result<VariantOutcome> {
    let checkpoint = Cursor { elapsed_s, ..at }.checkpoint(variant);
    let event = Event::Interrupted { model: trainer.model(), optimizer: trainer.optimizer(), checkpoint: &checkpoint };
    observer.on_event(variant, &event)?;
    Ok(VariantOutcome::Interrupted(checkpoint))
}

/// The epoch's metrics. The original evaluates on its training loader
/// again: a new order (`orders.train_eval`), the last partial batch dropped.
fn evaluate_epoch(
    trainer: &mut Trainer,
    spec: &RunSpec,
    data: &Dataset,
    split: &Split,
    orders: &EpochOrders,
    at: &Cursor,
    elapsed_s: f64,
) -> EpochMetrics {
    let full = split.steps_per_epoch * spec.batch_size;
    EpochMetrics {
        epoch: at.epoch,
        mean_loss: at.loss_sum / at.step.max(1) as f64,
        train: trainer.accuracy(&data.train, &orders.train_eval[..full]),
        valid: trainer.accuracy(&data.train, &orders.valid),
        elapsed_s,
    }
}

/// Tests the final model and tells the observer the variant's results.
fn finish(
    trainer: &mut Trainer,
    spec: &RunSpec,
    data: &Dataset,
    at: &Cursor,
    diverged_at: Option<usize>,
    seconds: f64,
    observer: &mut dyn Observer,
) -> Result<VariantSummary> {
    let last = at.last_epoch.clone().expect("epochs >= 1 is validated");
    let test_order: Vec<u32> = (0..data.test.count as u32).collect();
    let test_predictions = trainer.predict(&data.test, &test_order);
    let summary = VariantSummary {
        name: spec.name.clone(),
        group: spec.group.clone(),
        seed: spec.seed,
        rng: spec.rng,
        steps: at.steps_taken,
        diverged_at,
        initial_loss: at.initial_loss,
        final_loss: last.mean_loss,
        train: last.train,
        valid: last.valid,
        test: Accuracy {
            correct: test_predictions.iter().zip(&data.test.labels).filter(|(p, l)| p == l).count(),
            total: data.test.count,
        },
        seconds,
        verdicts: Vec::new(),
    };
    let event = Event::End {
        model: trainer.model(),
        summary: &summary,
        test_predictions: &test_predictions,
        test_labels: &data.test.labels,
    };
    observer.on_event(&spec.name, &event)?;
    Ok(summary)
}
