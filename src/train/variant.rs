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
/// at that step boundary.
pub fn train_variant(
    spec: &RunSpec,
    data: &Dataset,
    threads: usize,
    resume: Option<(&Checkpoint, &[crate::tensorfile::NamedTensor], &OptimizerState)>,
    stop: &(dyn Fn() -> bool + Sync),
    observer: &mut dyn Observer,
) -> Result<VariantOutcome> {
    let split = Split::new(spec, data)?;
    let Some((model, mut orders)) = initial_model(spec, data, &split, stop)? else {
        return Ok(VariantOutcome::NotStarted);
    };
    let optimizer = spec.optimizer(&model);
    let mut trainer =
        Trainer::with_optimizer(model, optimizer, spec.batch_size, threads).with_loss(spec.loss).with_clip(spec.clip);
    let mut at = start_or_resume(&mut trainer, &spec.name, split.steps_per_epoch, spec.epochs, resume, observer)?;
    let mut schedule = RunSchedule::start(
        &spec.schedule,
        (spec.optimizer.lr, &spec.group_lrs()),
        (split.steps_per_epoch, spec.epochs),
        (at.steps_taken, at.epoch),
    )
    .map_err(crate::error::input)?;
    // Seconds trained before this process, plus this process's: a checkpoint
    // may hold more seconds than the machine has been up, so no Instant is
    // moved back by them.
    let (started, before) = (Instant::now(), at.elapsed_s);
    let elapsed = || before + started.elapsed().as_secs_f64();
    // A signal between initialisation and the first step stops the run
    // there, with a checkpoint like any other.
    if stop() {
        return interrupt(&trainer, &spec.name, at, elapsed(), observer);
    }
    let mut diverged_at = None;
    while at.epoch <= spec.epochs {
        let epoch = at.epoch;
        let epoch_orders = orders.epoch(epoch);
        let batches = epoch_orders.train.chunks_exact(spec.batch_size).take(split.steps_per_epoch);
        for (step, batch) in batches.enumerate().skip(at.step) {
            trainer.set_scheduled(&schedule.values());
            let loss = trainer.compute_gradients(&data.train, batch);
            if at.steps_taken == 0 {
                at.initial_loss = f64::from(loss);
            }
            at.loss_sum += f64::from(loss);
            at.step = step + 1;
            observer.on_event(&spec.name, &Event::Step { epoch, step, loss, trainer: &trainer })?;
            if !loss.is_finite() {
                // Diverged: every later number would be NaN too. Stop this
                // variant here; its records so far are kept.
                diverged_at = Some(at.steps_taken);
                break;
            }
            trainer.apply_update();
            schedule.after_step();
            observer.on_event(&spec.name, &Event::Updated { model: trainer.model() })?;
            at.steps_taken += 1;
            if stop() {
                return interrupt(&trainer, &spec.name, at, elapsed(), observer);
            }
        }
        let metrics = evaluate_epoch(&mut trainer, spec, data, &split, &epoch_orders, &at, elapsed());
        schedule.after_epoch();
        at = at.next_epoch(&metrics);
        let checkpoint = &at.checkpoint(&spec.name);
        let event =
            Event::Epoch { metrics: &metrics, model: trainer.model(), optimizer: trainer.optimizer(), checkpoint };
        observer.on_event(&spec.name, &event)?;
        if diverged_at.is_some() {
            break;
        }
    }
    let summary = finish(&mut trainer, spec, data, &at, diverged_at, elapsed(), observer)?;
    Ok(VariantOutcome::Finished(summary))
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
