//! The training loop. The [`Trainer`] owns a model together with its
//! optimiser and buffers, so an optimiser can never step another model's
//! parameters (the original notebook's bug). [`train_variant`] runs one
//! variant of an experiment and reports what happens as [`Event`]s.

use crate::data::batch::{epoch_order, fill_batch, validation_split};
use crate::data::{Dataset, LabeledImages};
use crate::experiment::{Experiment, Variant};
use crate::nn::loss::argmax_rows;
use crate::nn::{Mlp, Workspace};
use crate::optim::Sgd;
use crate::parallel::{for_each_split, part};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Samples per forward pass when evaluating (larger than a training batch:
/// evaluation keeps no gradients, and bigger products run faster).
const EVAL_BATCH: usize = 1000;

/// Every training batch is computed as this many shards, whatever the
/// thread count: the shards' shapes, and the fixed order in which their
/// gradients are summed, make the result independent of the threads.
pub const SHARDS: usize = 2;

/// One shard's share of a step: its rows' buffers and gradient.
struct Shard {
    ws: Workspace,
    grads: Vec<f32>,
    labels: Vec<u8>,
    loss_sum: f64,
}

/// One evaluation worker's buffers.
struct EvalWorker {
    ws: Workspace,
    labels: Vec<u8>,
    predictions: Vec<u8>,
}

/// One evaluation worker's share of a prediction: contiguous chunks.
struct EvalJob<'a> {
    worker: &'a mut EvalWorker,
    chunks: &'a [&'a [u32]],
    out: Vec<u8>,
}

/// A model, its optimiser, its gradient buffers and its workspaces.
pub struct Trainer {
    model: Mlp,
    optimizer: Sgd,
    shards: Vec<Shard>,
    eval: Vec<EvalWorker>,
    threads: usize,
}

impl Trainer {
    /// Takes ownership of `model` and `optimizer`; `batch_size` is the
    /// largest training batch [`Trainer::step`] will see; `threads` the
    /// worker threads (results do not depend on it).
    pub fn new(model: Mlp, optimizer: Sgd, batch_size: usize, threads: usize) -> Self {
        let threads = threads.max(1);
        let shard_rows = batch_size.div_ceil(SHARDS);
        let shards = (0..SHARDS)
            .map(|_| Shard {
                ws: Workspace::new(&model, shard_rows),
                grads: vec![0.0; model.params.len()],
                labels: Vec::new(),
                loss_sum: 0.0,
            })
            .collect();
        let eval = (0..threads)
            .map(|_| EvalWorker { ws: Workspace::new(&model, EVAL_BATCH), labels: Vec::new(), predictions: Vec::new() })
            .collect();
        Trainer { model, optimizer, shards, eval, threads }
    }

    /// The model being trained.
    pub fn model(&self) -> &Mlp {
        &self.model
    }

    /// The gradient of the last step, in the layout of the parameters.
    pub fn grads(&self) -> &[f32] {
        &self.shards[0].grads
    }

    /// The optimiser's learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.optimizer.lr
    }

    /// The last training batch's activations: each shard's workspace with
    /// the number of rows it held. Together they cover the whole batch.
    pub fn batch_activations(&self) -> impl Iterator<Item = (&Workspace, usize)> {
        self.shards.iter().map(|s| (&s.ws, s.labels.len()))
    }

    /// One optimisation step on the images at `indices`; returns the
    /// batch's mean loss before the update.
    pub fn step(&mut self, data: &LabeledImages, indices: &[u32]) -> f32 {
        let loss = self.compute_gradients(data, indices);
        self.apply_update();
        loss
    }

    /// Forward and backward on the images at `indices`: afterwards
    /// [`Trainer::grads`] holds the batch's gradient and
    /// [`Trainer::batch_activations`] its activations, both for the current
    /// parameters. Returns the batch's mean loss.
    pub fn compute_gradients(&mut self, data: &LabeledImages, indices: &[u32]) -> f32 {
        let batch = indices.len();
        let model = &self.model;
        for_each_split(&mut self.shards, self.threads, |s, shard| {
            let rows = &indices[part(batch, SHARDS, s)];
            fill_batch(data, rows, &mut shard.ws.input, &mut shard.labels);
            shard.loss_sum = model.forward_backward_part(&mut shard.ws, &shard.labels, &mut shard.grads, batch);
        });
        // Sum the shards' gradients into the first, in shard order.
        let (first, rest) = self.shards.split_first_mut().expect("SHARDS >= 1");
        let mut loss_sum = first.loss_sum;
        for shard in rest {
            first.grads.iter_mut().zip(&shard.grads).for_each(|(g, s)| *g += s);
            loss_sum += shard.loss_sum;
        }
        (loss_sum / batch as f64) as f32
    }

    /// Updates the parameters with the gradient of the last
    /// [`Trainer::compute_gradients`].
    pub fn apply_update(&mut self) {
        self.optimizer.step(&mut self.model.params, &self.shards[0].grads);
    }

    /// Predicted class of each image at `indices`, in order. Chunks of
    /// [`EVAL_BATCH`] are spread over the threads; each row's result does
    /// not depend on which thread computes it.
    pub fn predict(&mut self, data: &LabeledImages, indices: &[u32]) -> Vec<u8> {
        let chunks: Vec<&[u32]> = indices.chunks(EVAL_BATCH).collect();
        let workers = self.eval.len();
        let mut jobs: Vec<EvalJob> = self
            .eval
            .iter_mut()
            .enumerate()
            .map(|(w, worker)| EvalJob { worker, chunks: &chunks[part(chunks.len(), workers, w)], out: Vec::new() })
            .collect();
        let model = &self.model;
        for_each_split(&mut jobs, workers, |_, job| {
            let worker = &mut *job.worker;
            for chunk in job.chunks {
                fill_batch(data, chunk, &mut worker.ws.input, &mut worker.labels);
                model.forward(&mut worker.ws, chunk.len());
                argmax_rows(model.logits(&worker.ws, chunk.len()), model.classes(), &mut worker.predictions);
                job.out.extend_from_slice(&worker.predictions);
            }
        });
        jobs.into_iter().flat_map(|job| job.out).collect()
    }

    /// Accuracy in percent over the images at `indices`.
    pub fn accuracy(&mut self, data: &LabeledImages, indices: &[u32]) -> Accuracy {
        let predicted = self.predict(data, indices);
        let correct = predicted.iter().zip(indices).filter(|(&p, &i)| data.labels[i as usize] == p).count();
        Accuracy { correct, total: indices.len() }
    }
}

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
    #[serde(with = "crate::record::nan_as_null")]
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
    /// The variant's name.
    pub name: String,
    /// Optimisation steps taken.
    pub steps: usize,
    /// The step whose loss was NaN or infinite, where training stopped.
    #[serde(default)]
    pub diverged_at: Option<usize>,
    /// Loss of the very first batch, before any update.
    #[serde(with = "crate::record::nan_as_null")]
    pub initial_loss: f64,
    /// Mean minibatch loss of the last epoch.
    #[serde(with = "crate::record::nan_as_null")]
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
    pub verdicts: Vec<crate::probe::Verdict>,
}

/// What happens while a variant trains, in order.
pub enum Event<'a> {
    /// Before the first step; `model` holds the initial parameters.
    Start {
        /// The model.
        model: &'a Mlp,
        /// Steps per epoch.
        steps_per_epoch: usize,
        /// Epochs to run.
        epochs: usize,
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
    /// After each epoch's evaluation.
    Epoch {
        /// What the epoch achieved.
        metrics: &'a EpochMetrics,
        /// The model at the end of the epoch.
        model: &'a Mlp,
    },
    /// After the test evaluation; `model` holds the final parameters.
    End {
        /// The model.
        model: &'a Mlp,
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

/// Trains one variant of `exp` on `data`, telling `observer` everything.
pub fn train_variant(
    exp: &Experiment,
    variant: &Variant,
    data: &Dataset,
    threads: usize,
    observer: &mut dyn Observer,
) -> Result<VariantSummary> {
    let pixels = data.train.pixels_per_image();
    if data.test.pixels_per_image() != pixels {
        bail!(
            "test images are {}x{} but training images {}x{}",
            data.test.rows,
            data.test.cols,
            data.train.rows,
            data.train.cols
        );
    }
    let mut sizes = vec![pixels];
    sizes.extend(&exp.model.hidden);
    sizes.push(crate::data::CLASSES);
    let mut model = Mlp::new(&sizes, exp.model.activation);
    model.initialise(&variant.weight_init, &variant.bias_init, exp.seed);

    let (train_range, valid_range) = validation_split(data.train.count, exp.validation_fraction);
    let steps_per_epoch = train_range.len() / exp.batch_size; // the last partial batch is dropped
    if steps_per_epoch == 0 {
        bail!("batch_size: {} is larger than the {} training images", exp.batch_size, train_range.len());
    }
    let valid_order: Vec<u32> = valid_range.map(|i| i as u32).collect();
    let mut trainer = Trainer::new(model, exp.optimizer.clone(), exp.batch_size, threads);
    observer.on_event(&variant.name, &Event::Start { model: trainer.model(), steps_per_epoch, epochs: exp.epochs })?;

    let start = Instant::now();
    let mut initial_loss = f64::NAN;
    let mut last: Option<EpochMetrics> = None;
    let mut steps_taken = 0;
    let mut diverged_at = None;
    for epoch in 1..=exp.epochs {
        let order = epoch_order(train_range.clone(), exp.shuffle, exp.seed, "shuffle/train", epoch as u64);
        let mut loss_sum = 0.0f64;
        let mut steps_this_epoch = 0;
        for (step, batch) in order.chunks_exact(exp.batch_size).enumerate() {
            let loss = trainer.compute_gradients(&data.train, batch);
            if epoch == 1 && step == 0 {
                initial_loss = f64::from(loss);
            }
            loss_sum += f64::from(loss);
            steps_this_epoch += 1;
            observer.on_event(&variant.name, &Event::Step { epoch, step, loss, trainer: &trainer })?;
            if !loss.is_finite() {
                // Diverged: every later number would be NaN too. Stop this
                // variant here; its records so far are kept.
                diverged_at = Some(steps_taken);
                break;
            }
            trainer.apply_update();
            steps_taken += 1;
        }
        // The original evaluates on its training loader again: a new order,
        // the last partial batch dropped.
        let eval_order = epoch_order(train_range.clone(), exp.shuffle, exp.seed, "shuffle/train-eval", epoch as u64);
        let full = steps_per_epoch * exp.batch_size;
        let metrics = EpochMetrics {
            epoch,
            mean_loss: loss_sum / steps_this_epoch as f64,
            train: trainer.accuracy(&data.train, &eval_order[..full]),
            valid: trainer.accuracy(&data.train, &valid_order),
            elapsed_s: start.elapsed().as_secs_f64(),
        };
        observer.on_event(&variant.name, &Event::Epoch { metrics: &metrics, model: trainer.model() })?;
        last = Some(metrics);
        if diverged_at.is_some() {
            break;
        }
    }
    let last = last.expect("epochs >= 1 is validated");
    let test_order: Vec<u32> = (0..data.test.count as u32).collect();
    let test_predictions = trainer.predict(&data.test, &test_order);
    let summary = VariantSummary {
        name: variant.name.clone(),
        steps: steps_taken,
        diverged_at,
        initial_loss,
        final_loss: last.mean_loss,
        train: last.train,
        valid: last.valid,
        test: Accuracy {
            correct: test_predictions.iter().zip(&data.test.labels).filter(|(p, l)| p == l).count(),
            total: data.test.count,
        },
        seconds: start.elapsed().as_secs_f64(),
        verdicts: Vec::new(),
    };
    observer.on_event(
        &variant.name,
        &Event::End {
            model: trainer.model(),
            summary: &summary,
            test_predictions: &test_predictions,
            test_labels: &data.test.labels,
        },
    )?;
    Ok(summary)
}
