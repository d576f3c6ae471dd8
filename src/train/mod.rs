//! Training. The [`Trainer`] owns a model together with its optimiser and
//! buffers, so an optimiser can never step another model's parameters (the
//! original notebook's bug). [`train_variant`] runs one variant of an
//! experiment, reports what happens as [`Event`]s to observers, and can
//! stop at a step boundary and continue from a [`Checkpoint`].

pub mod checkpoint;
pub mod cursor;
pub mod grouping;
pub mod lockstep;
mod variant;

pub use checkpoint::{Checkpoint, OptimizerState};
pub use variant::{train_variant, Accuracy, EpochMetrics, Event, Observer, VariantOutcome, VariantSummary};

use crate::data::batch::fill_batch;
use crate::data::LabeledImages;
use crate::nn::loss::{argmax_rows, Loss};
use crate::nn::{Model, Workspace};
use crate::optim::clip::{self, ClipOutcome, ClipSettings};
use crate::optim::{Optimizer, OptimizerSettings};
use crate::parallel::{for_each_split, part};

/// Samples per forward pass when evaluating (larger than a training batch:
/// evaluation keeps no gradients, and bigger products run faster).
pub const EVAL_BATCH: usize = 1000;

/// Every training batch is computed as this many shards, whatever the
/// thread count: the shards' shapes, and the fixed order in which their
/// gradients are summed, make the result independent of the threads. (A
/// model with batch norm uses one shard: its statistics span the batch.)
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
    model: Model,
    optimizer: Optimizer,
    shards: Vec<Shard>,
    eval: Vec<EvalWorker>,
    threads: usize,
    loss: Loss,
    clip: Option<ClipSettings>,
    /// Each parameter tensor's range (the norm is PyTorch's, per tensor).
    tensors: Vec<std::ops::Range<usize>>,
    /// What clipping saw in the last gradient.
    clip_outcome: ClipOutcome,
}

impl Trainer {
    /// Takes ownership of `model` and `optimizer`; `batch_size` is the
    /// largest training batch [`Trainer::step`] will see; `threads` the
    /// worker threads (results do not depend on it).
    pub fn new(model: Model, optimizer: OptimizerSettings, batch_size: usize, threads: usize) -> Self {
        Self::with_optimizer(model, Optimizer::new(optimizer), batch_size, threads)
    }

    /// [`Trainer::new`] with an optimiser already made (with parameter
    /// groups, say).
    pub fn with_optimizer(model: Model, optimizer: Optimizer, batch_size: usize, threads: usize) -> Self {
        let threads = threads.max(1);
        let count = model.shards_per_batch(SHARDS);
        let shard_rows = batch_size.div_ceil(count);
        let shards = (0..count)
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
        let tensors = model.tensors().into_iter().map(|t| t.range).collect();
        let (loss, clip, clip_outcome) = (Loss::default(), None, ClipOutcome::default());
        Trainer { model, optimizer, shards, eval, threads, loss, clip, tensors, clip_outcome }
    }

    /// Trains on `loss` instead of cross-entropy.
    pub fn with_loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// Clips each gradient before its update.
    pub fn with_clip(mut self, clip: Option<ClipSettings>) -> Self {
        self.clip = clip;
        self
    }

    /// The loss trained on.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// The last gradient's global norm before clipping, and whether
    /// [`Trainer::apply_update`] clips it.
    pub fn clip_outcome(&self) -> ClipOutcome {
        self.clip_outcome
    }

    /// Sets the next step's learning rates and momentum (a schedule's).
    pub fn set_scheduled(&mut self, values: &crate::schedule::Scheduled) {
        self.optimizer.set_scheduled(values.lr, values.momentum, &values.group_lrs);
    }

    /// The model being trained.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The optimiser and its state (for checkpoints).
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    /// Restores the optimiser's state from a checkpoint.
    pub fn set_optimizer_state(&mut self, state: &OptimizerState) {
        self.optimizer.steps = state.steps;
        self.optimizer.first = state.first.clone();
        self.optimizer.second = state.second.clone();
        self.optimizer.third = state.third.clone();
    }

    /// Restores the model's tensors from a checkpoint taken after
    /// `steps` updates.
    pub fn restore_model(
        &mut self,
        tensors: &[crate::tensorfile::NamedTensor],
        source: &str,
        steps: usize,
    ) -> anyhow::Result<()> {
        crate::nn::set_tensors(&mut self.model, tensors, source)?;
        self.model.set_batches_tracked(steps);
        Ok(())
    }

    /// The gradient of the last step, in the layout of the parameters.
    pub fn grads(&self) -> &[f32] {
        &self.shards[0].grads
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
        let (model, loss) = (&self.model, &self.loss);
        let shard_count = self.shards.len();
        for_each_split(&mut self.shards, self.threads, |s, shard| {
            let rows = &indices[part(batch, shard_count, s)];
            fill_batch(data, rows, &mut shard.ws.input, &mut shard.labels);
            shard.loss_sum = model.forward_backward_part(&mut shard.ws, &shard.labels, &mut shard.grads, batch, loss);
        });
        self.reduce_shards(batch)
    }

    /// Sums the shards' gradients into the first, in shard order, measures
    /// the norm clipping looks at, and returns the batch's mean loss.
    fn reduce_shards(&mut self, batch: usize) -> f32 {
        let (first, rest) = self.shards.split_first_mut().expect("SHARDS >= 1");
        let loss_sum = rest.iter().fold(first.loss_sum, |sum, shard| sum + shard.loss_sum);
        let others: Vec<&[f32]> = rest.iter().map(|shard| shard.grads.as_slice()).collect();
        let norm = clip::sum_into_and_norm(&mut first.grads, &others, &self.tensors);
        self.clip_outcome = clip::outcome(self.clip.as_ref(), &first.grads, norm);
        (loss_sum / batch as f64) as f32
    }

    /// Updates the parameters with the gradient of the last
    /// [`Trainer::compute_gradients`], clipped first if the trainer clips.
    pub fn apply_update(&mut self) {
        if let Some(settings) = &self.clip {
            clip::clip(settings, &mut self.shards[0].grads, self.clip_outcome.norm);
        }
        self.optimizer.step(&mut self.model.params, &self.shards[0].grads);
        let rows = self.shards[0].labels.len();
        self.model.update_running(&self.shards[0].ws, rows);
    }

    /// Predicted class of each image at `indices`, in order. Chunks of
    /// `EVAL_BATCH` are spread over the threads; each row's result does
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
