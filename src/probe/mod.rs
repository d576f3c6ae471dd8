//! Looking inside training: per-layer statistics of weights, gradients and
//! activations while a variant trains, recorded as plain files, and the
//! verdicts drawn from them.
//!
//! Everything at step `s` is measured on the parameters that step used
//! (after `s` updates): the weights, the batch's gradient and the batch's
//! activations. Files, per variant:
//!
//! ```text
//! probe/layers.csv       one row per recorded step and layer (scalars)
//! probe/histograms.csv   64-bin histograms of weights, weight gradients and
//!                        activations (before and after the nonlinearity)
//! probe/changes.csv      per epoch and layer: parameters that changed
//! probe/jacobian.csv     the input-output Jacobian's gain at step 0
//!                        (not with batch norm)
//! probe/blocks.csv       residual networks only: per recorded step and
//!                        block, the stream against the branch, and alpha
//! ```

pub mod blocks;
pub mod diagnose;
pub mod jacobian;
pub mod stats;

use crate::experiment::ProbeSettings;
use crate::nn::{Activation, Model};
use crate::record::dir::{PROBE, STEPS};
use crate::record::rows::{
    histogram_columns, BlockStatsRow, ChangeRow, HistogramRow, JacobianRow, LayerStatsRow, StepRow,
    BLOCK_STATS_COLUMNS, CHANGE_COLUMNS, JACOBIAN_COLUMNS, LAYER_STATS_COLUMNS,
};
use crate::table::{read_rows, write_rows, CsvBuffer};
use crate::train::{Checkpoint, Event, Observer, Trainer};
use crate::verdict::Verdict;
use anyhow::{Context, Result};
use stats::{Histogram, Moments};
use std::path::PathBuf;

/// |a| above this counts as saturated for tanh, a outside
/// [1 - this, this] for sigmoid (the flat tails where f' < 0.02).
const SATURATION: f32 = 0.99;

/// Records statistics as a variant trains and draws verdicts at its end.
pub struct Probe {
    settings: ProbeSettings,
    threads: usize,
    run_dir: PathBuf,
    total_steps: usize,
    step: usize,
    /// `layers.csv` and `histograms.csv` as CSV text, each row encoded once
    /// as it arrives; written whole at each epoch's end.
    layers_csv: CsvBuffer,
    histograms_csv: CsvBuffer,
    /// The residual blocks' rows (`blocks.csv`), for a residual network.
    block_rows: Vec<BlockStatsRow>,
    residual: bool,
    /// The Jacobian's gain at step 0 (`jacobian.csv`).
    jacobian: Vec<JacobianRow>,
    /// Every recorded row of the variant so far (what the verdicts read).
    scalars: Vec<LayerStatsRow>,
    history: diagnose::StepHistory,
    changes: Vec<ChangeRow>,
    snapshot: Vec<f32>,
    /// The rows of the step being recorded, until its update is measured.
    pending: Vec<LayerStatsRow>,
    /// The parameters that step used (before its update).
    before_update: Vec<f32>,
    alive: Vec<bool>,
    verdicts: Vec<Verdict>,
}

impl Probe {
    /// A probe recording into `run_dir/<variant>/probe/`, computing with up
    /// to `threads` threads (the results do not depend on it).
    pub fn new(run_dir: &std::path::Path, settings: ProbeSettings, threads: usize) -> Self {
        Probe {
            settings,
            threads,
            run_dir: run_dir.into(),
            total_steps: 0,
            step: 0,
            layers_csv: CsvBuffer::new(&LAYER_STATS_COLUMNS),
            histograms_csv: CsvBuffer::new(&histogram_columns(stats::BINS)),
            block_rows: Vec::new(),
            residual: false,
            jacobian: Vec::new(),
            scalars: Vec::new(),
            history: diagnose::StepHistory::default(),
            changes: Vec::new(),
            snapshot: Vec::new(),
            pending: Vec::new(),
            before_update: Vec::new(),
            alive: Vec::new(),
            verdicts: Vec::new(),
        }
    }

    /// The verdicts of the last variant that ended.
    pub fn verdicts(&self) -> &[Verdict] {
        &self.verdicts
    }

    /// `(layer, pre-activation std)` at the first recorded step of the
    /// current variant: what mean-field theory predicts, measured.
    pub fn first_step_pre_std(&self) -> Vec<(usize, f64)> {
        let Some(first) = self.scalars.iter().map(|r| r.step).min() else { return Vec::new() };
        self.scalars.iter().filter(|r| r.step == first).map(|r| (r.layer, r.pre_std)).collect()
    }

    /// `(block, stream RMS)` at the first recorded step of the current
    /// variant (empty for a plain network): what a residual network's norms
    /// divide out.
    pub fn first_step_stream_rms(&self) -> Vec<(usize, f64)> {
        let Some(first) = self.block_rows.iter().map(|r| r.step).min() else { return Vec::new() };
        self.block_rows.iter().filter(|r| r.step == first).map(|r| (r.block, r.stream_rms)).collect()
    }

    fn histogram_due(&self) -> bool {
        let every = self.settings.histogram_every;
        self.step == 0 || self.step + 1 == self.total_steps || (every > 0 && self.step.is_multiple_of(every))
    }

    fn push_histogram(&mut self, kind: &str, layer: usize, parts: &[&[f32]], moments: &Moments) {
        let h = Histogram::of_parts(parts, moments);
        let row = HistogramRow {
            step: self.step,
            kind: kind.to_string(),
            layer,
            min: h.min,
            max: h.max,
            nonfinite: h.nonfinite,
            counts: h.counts,
        };
        self.histograms_csv.push(&row);
    }

    fn record_weight_histograms(&mut self, model: &Model) {
        for (l, layer) in model.linears().enumerate() {
            let w = &model.params[layer.weight_range()];
            self.push_histogram("weight", l + 1, &[w], &Moments::of(w));
        }
    }

    fn record_step(&mut self, trainer: &Trainer) {
        let model = trainer.model();
        let histograms = self.histogram_due();
        if histograms {
            self.record_weight_histograms(model);
        }
        // The weights' and the gradients' statistics are the bulk of the
        // work (twice the parameter count). With two threads, one computes
        // the weights' and all but the first layer's gradients while the
        // other computes the first layer's gradient and the activations:
        // about equal halves for the seed network.
        let grads = trainer.grads();
        let tensors = |from: usize| -> (Vec<Moments>, Vec<Moments>) {
            let weights = model.linears().map(|layer| Moments::of(&model.params[layer.weight_range()])).collect();
            let grads = model.linears().skip(from).map(|layer| Moments::of(&grads[layer.weight_range()])).collect();
            (weights, grads)
        };
        let (rows, weights, weight_grads) = if self.threads > 1 {
            std::thread::scope(|scope| {
                let handle = scope.spawn(|| tensors(1));
                let first = Moments::of(&grads[model.linear(0).weight_range()]);
                let rows = self.layer_rows_without_weights(trainer, histograms);
                let (weights, rest) = handle.join().expect("statistics never panic");
                (rows, weights, std::iter::once(first).chain(rest).collect::<Vec<_>>())
            })
        } else {
            let (weights, grads) = tensors(0);
            (self.layer_rows_without_weights(trainer, histograms), weights, grads)
        };
        for ((mut row, weight), weight_grad) in rows.into_iter().zip(weights).zip(weight_grads) {
            fill_weights(&mut row, &weight, &weight_grad);
            self.pending.push(row);
        }
        self.before_update.clear();
        self.before_update.extend_from_slice(&model.params);
        self.block_rows.extend(blocks::block_rows(trainer, self.step));
        if self.step == 0 {
            let gain = jacobian::jacobian_gain(trainer, 0);
            self.jacobian = gain.map(|gain| JacobianRow { step: 0, gain }).into_iter().collect();
        }
    }

    /// Completes the pending rows with the update just applied (`model`
    /// after it; NaN for a layer whose weights were all zero) and records
    /// them.
    fn record_update(&mut self, model: &Model) {
        for (row, layer) in self.pending.iter_mut().zip(model.linears()) {
            let range = layer.weight_range();
            let after = &model.params[range.clone()];
            let before = &self.before_update[range];
            let moved: f64 = after.iter().zip(before).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum();
            let norm = row.w_norm;
            row.update_ratio = if norm > 0.0 { moved.sqrt() / norm } else { f64::NAN };
        }
        self.flush_pending();
    }

    /// Records the pending rows as they are (a step whose update was not
    /// applied keeps NaN update ratios).
    fn flush_pending(&mut self) {
        for row in std::mem::take(&mut self.pending) {
            self.push_row(row);
        }
    }

    /// Every statistic of every layer but the weights' and the weight
    /// gradients' (and the update ratio, which needs both).
    fn layer_rows_without_weights(&mut self, trainer: &Trainer, histograms: bool) -> Vec<LayerStatsRow> {
        let model = trainer.model();
        let grads = trainer.grads();
        let mut out = Vec::with_capacity(model.linear_count());
        for (l, layer) in model.linears().enumerate() {
            let bias_grad = Moments::of(&grads[layer.bias_range()]);
            let n = layer.fan_out;
            let pre_parts: Vec<&[f32]> =
                trainer.batch_activations().map(|(ws, rows)| &model.pre(ws, l)[..rows * n]).collect();
            let pre = moments_of_parts(&pre_parts);
            let (post, saturated, dead_units) = if model.post_position(l).is_some() {
                let post_parts: Vec<&[f32]> = trainer
                    .batch_activations()
                    .filter_map(|(ws, rows)| model.post(ws, l).map(|post| &post[..rows * n]))
                    .collect();
                let m = moments_of_parts(&post_parts);
                let saturated = saturated_fraction(
                    model.activation().expect("a hidden layer has an activation"),
                    &post_parts,
                    m.count + m.nonfinite,
                );
                let dead = self.dead_units(&post_parts, n);
                if histograms {
                    self.push_histogram("post", l + 1, &post_parts, &m);
                }
                (Some(m), saturated, dead)
            } else {
                (None, 0.0, 0)
            };
            if histograms {
                self.push_histogram("pre", l + 1, &pre_parts, &pre);
                let g = &grads[layer.weight_range()];
                self.push_histogram("weight_grad", l + 1, &[g], &Moments::of(g));
            }
            let (pm, ps, pz) = post.map_or((f64::NAN, f64::NAN, f64::NAN), |m| (m.mean(), m.std(), m.zero_fraction()));
            out.push(LayerStatsRow {
                gb_norm: bias_grad.norm(),
                gb_mean_abs: bias_grad.mean_abs(),
                gb_std: bias_grad.std(),
                pre_mean: pre.mean(),
                pre_std: pre.std(),
                post_mean: pm,
                post_std: ps,
                post_zero_frac: pz,
                post_saturated_frac: saturated,
                dead_units,
                nonfinite: bias_grad.nonfinite + pre.nonfinite + post.map_or(0, |m| m.nonfinite),
                ..LayerStatsRow::unmeasured(self.step, l + 1)
            });
        }
        out
    }

    /// Units (columns) that are zero in every row of every part.
    fn dead_units(&mut self, parts: &[&[f32]], width: usize) -> usize {
        self.alive.clear();
        self.alive.resize(width, false);
        for part in parts {
            for row in part.chunks_exact(width) {
                for (alive, &v) in self.alive.iter_mut().zip(row) {
                    *alive |= v != 0.0;
                }
            }
        }
        self.alive.iter().filter(|&&a| !a).count()
    }

    fn reset(&mut self, total_steps: usize, step: usize, model: &Model) {
        self.residual = !model.blocks().is_empty();
        self.block_rows.clear();
        self.jacobian.clear();
        self.total_steps = total_steps;
        self.step = step;
        self.layers_csv = CsvBuffer::new(&LAYER_STATS_COLUMNS);
        self.histograms_csv = CsvBuffer::new(&histogram_columns(stats::BINS));
        self.scalars.clear();
        self.history = diagnose::StepHistory::default();
        self.changes.clear();
        self.verdicts.clear();
    }

    /// Adds a row to the CSV text and to the verdicts' rows.
    fn push_row(&mut self, row: LayerStatsRow) {
        self.layers_csv.push(&row);
        self.scalars.push(row);
    }

    /// Restores what was recorded before the checkpoint from the files.
    fn restore(&mut self, variant: &str, model: &Model, checkpoint: &Checkpoint) -> Result<()> {
        let vdir = self.run_dir.join(variant);
        let dir = vdir.join(PROBE);
        let before = checkpoint.steps_taken;
        for row in read_if_written::<LayerStatsRow>(&dir.join("layers.csv"))?.iter().filter(|r| r.step < before) {
            self.scalars.push(row.clone());
            self.layers_csv.push(row);
        }
        for row in read_if_written::<HistogramRow>(&dir.join("histograms.csv"))?.iter().filter(|r| r.step < before) {
            self.histograms_csv.push(row);
        }
        self.jacobian = read_if_written::<JacobianRow>(&dir.join("jacobian.csv"))?;
        self.jacobian.retain(|r| r.step < before);
        let blocks = read_if_written::<BlockStatsRow>(&dir.join("blocks.csv"))?;
        self.block_rows = blocks.into_iter().filter(|r| r.step < before).collect();
        self.changes = read_if_written::<ChangeRow>(&dir.join("changes.csv"))?;
        self.changes.retain(|c| c.epoch < checkpoint.epoch);
        let steps = read_if_written::<StepRow>(&vdir.join(STEPS))?;
        self.history.losses = steps.iter().take(before).map(|r| r.loss).collect();
        self.history.clipped = steps.iter().take(before).map(|r| r.clipped).collect();
        self.snapshot = if checkpoint.step > 0 {
            crate::tensorfile::load_vector(&dir.join("epoch-start.safetensors"))?
        } else {
            model.params.clone()
        };
        Ok(())
    }

    fn write_files(&mut self, variant: &str) -> Result<()> {
        let dir = self.run_dir.join(variant).join(PROBE);
        std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
        self.layers_csv.write(&dir.join("layers.csv"))?;
        self.histograms_csv.write(&dir.join("histograms.csv"))?;
        if self.residual {
            write_rows(&dir.join("blocks.csv"), &BLOCK_STATS_COLUMNS, &self.block_rows)?;
        }
        if !self.jacobian.is_empty() {
            write_rows(&dir.join("jacobian.csv"), &JACOBIAN_COLUMNS, &self.jacobian)?;
        }
        write_rows(&dir.join("changes.csv"), &CHANGE_COLUMNS, &self.changes)
    }

    /// Counts, per layer, the parameters that differ from the snapshot.
    fn record_changes(&mut self, epoch: usize, model: &Model) {
        for (l, layer) in model.linears().enumerate() {
            let range = layer.offset..layer.offset + layer.num_params();
            let changed = model.params[range.clone()]
                .iter()
                .zip(&self.snapshot[range.clone()])
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            self.changes.push(ChangeRow { epoch, layer: l + 1, changed, total: range.len() });
        }
        self.snapshot.copy_from_slice(&model.params);
    }
}

/// The rows of a record to continue from, none when it was never written;
/// one that exists but cannot be read is an input error naming it (resuming
/// without it would lose its history).
fn read_if_written<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<Vec<T>> {
    if path.exists() {
        read_rows(path)
    } else {
        Ok(Vec::new())
    }
}

fn moments_of_parts(parts: &[&[f32]]) -> Moments {
    let mut m = Moments::new();
    parts.iter().for_each(|p| m.add(p));
    m
}

/// Completes `row` with the weights' and the weight gradient's statistics.
fn fill_weights(row: &mut LayerStatsRow, weight: &Moments, weight_grad: &Moments) {
    (row.w_mean, row.w_std, row.w_min, row.w_max, row.w_norm) =
        (weight.mean(), weight.std(), weight.min, weight.max, weight.norm());
    (row.gw_norm, row.gw_mean_abs, row.gw_std) = (weight_grad.norm(), weight_grad.mean_abs(), weight_grad.std());
    row.nonfinite += weight.nonfinite + weight_grad.nonfinite;
}

fn saturated_fraction(activation: Activation, parts: &[&[f32]], total: u64) -> f64 {
    let is_saturated: fn(f32) -> bool = match activation {
        Activation::Tanh => |a| a.abs() > SATURATION,
        Activation::Sigmoid => |a| !(1.0 - SATURATION..=SATURATION).contains(&a),
        _ => return 0.0,
    };
    let count: usize = parts.iter().map(|p| p.iter().filter(|&&a| is_saturated(a)).count()).sum();
    if total == 0 {
        0.0
    } else {
        count as f64 / total as f64
    }
}

impl Observer for Probe {
    fn on_event(&mut self, variant: &str, event: &Event) -> Result<()> {
        match event {
            Event::Start { model, steps_per_epoch, epochs } => {
                self.reset(steps_per_epoch * epochs, 0, model);
                self.snapshot = model.params.clone();
            }
            Event::Resume { model, steps_per_epoch, epochs, checkpoint } => {
                self.reset(steps_per_epoch * epochs, checkpoint.steps_taken, model);
                self.restore(variant, model, checkpoint)?;
            }
            Event::Updated { model } => {
                if !self.pending.is_empty() {
                    self.record_update(model);
                }
            }
            Event::Interrupted { checkpoint, .. } => {
                self.flush_pending();
                self.write_files(variant)?;
                if checkpoint.step > 0 {
                    let path = self.run_dir.join(variant).join(PROBE).join("epoch-start.safetensors");
                    crate::tensorfile::save_vector("params", &self.snapshot, &path)?;
                }
            }
            Event::Step { loss, trainer, .. } => {
                self.history.losses.push(*loss);
                self.history.clipped.push(trainer.clip_outcome().clipped);
                self.history.loss = trainer.loss();
                let every = self.settings.every;
                if (every > 0 && self.step.is_multiple_of(every)) || self.histogram_due() {
                    self.record_step(trainer);
                }
                self.step += 1;
            }
            Event::Epoch { metrics, model, .. } => {
                self.flush_pending();
                self.record_changes(metrics.epoch, model);
                self.write_files(variant)?;
            }
            Event::End { model, .. } => {
                self.flush_pending();
                // The final weights, after the last update.
                self.step = self.total_steps;
                self.record_weight_histograms(model);
                self.verdicts =
                    diagnose::diagnose(&self.scalars, &self.history, &self.changes, &self.block_rows, model);
                self.write_files(variant)?;
            }
        }
        Ok(())
    }
}
