//! The run directory: plain files that the report and other tools read.
//!
//! ```text
//! <run>/experiment.toml         the resolved settings (runnable again)
//! <run>/summary.json            per-variant results and the environment
//! <run>/log.txt                 the console log
//! <run>/<variant>/steps.csv     step,epoch,batch,loss  (every minibatch; the rows in [`rows`])
//! <run>/<variant>/epochs.csv    per-epoch loss and accuracies
//! <run>/<variant>/timings.csv   per-epoch wall-clock seconds
//! <run>/<variant>/initial.safetensors, final.safetensors
//! <run>/<variant>/test_predictions.csv   index,label,predicted
//! <run>/examples-images-idx3-ubyte       the first 15 test images (for the example grid)
//! ```
//! Metrics files hold no timings, so two runs with one seed give
//! byte-identical metrics. Every file is written whole and renamed into
//! place ([`write_atomic`]).

pub mod dir;
pub mod read;
pub mod rows;

pub use dir::{RunDir, RunStatus};

use crate::fsutil::write_atomic;
use crate::nn::state_dict;
use crate::table::{write_rows, CsvBuffer};
use crate::train::checkpoint::{remove_checkpoints, save_checkpoint, Checkpoint};
use crate::train::{EpochMetrics, Event, Observer, VariantSummary};
use anyhow::{Context, Result};
use dir::{EPOCHS, EXAMPLES, FINAL_WEIGHTS, INITIAL_WEIGHTS, PREDICTIONS, STEPS, TIMINGS};
use rows::{
    rounded, EpochRow, PredictionRow, StepRow, TimingRow, EPOCHS_COLUMNS, PREDICTIONS_COLUMNS, STEPS_COLUMNS,
    TIMINGS_COLUMNS,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Images kept in the run directory for the example grid.
pub const EXAMPLE_IMAGES: usize = 15;

/// Writes the first [`EXAMPLE_IMAGES`] test images as an IDX file, so that
/// charts of predictions need only the run directory.
pub fn save_examples(test: &crate::data::LabeledImages, dir: &Path) -> Result<()> {
    let n = EXAMPLE_IMAGES.min(test.count);
    let array = crate::data::idx::IdxArray {
        dims: vec![n, test.rows, test.cols],
        data: test.pixels[..n * test.pixels_per_image()].to_vec(),
    };
    write_atomic(&dir.join(EXAMPLES), &crate::data::idx::encode(&array))
}

/// `summary.json`: everything a report needs without the CSVs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSummary {
    /// The experiment's name.
    pub experiment: String,
    /// Where the run stands.
    #[serde(default)]
    pub status: RunStatus,
    /// Where and with what it ran.
    pub environment: Environment,
    /// One entry per finished variant, in order.
    pub variants: Vec<VariantSummary>,
}

impl RunSummary {
    /// The summary of run `experiment` starting now on `threads` threads:
    /// running, no variant finished.
    pub fn started(experiment: &str, threads: usize) -> Self {
        RunSummary {
            experiment: experiment.into(),
            status: RunStatus::Running,
            environment: Environment::current(threads),
            variants: Vec::new(),
        }
    }
}

/// The software and machine a run used.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Environment {
    /// initscope's version.
    pub initscope_version: String,
    /// The CPU's model name, where the system tells it.
    pub cpu: String,
    /// Worker threads used.
    pub threads: usize,
    /// What the bits depend on beyond the inputs and shapes
    /// ([`crate::nn::matmul::numerics_fingerprint`]): runs with the same
    /// fingerprint are bit-identical on any machine. Empty in records made
    /// before it was recorded.
    #[serde(default)]
    pub numerics: String,
    /// Variants continued from a checkpoint made under other numerics
    /// (`initscope resume --allow-other-numerics`), as `variant: made ->
    /// continued`: those are no longer bit-identical to an uninterrupted run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub numerics_changed: Vec<String>,
}

impl Environment {
    /// The environment of this process.
    pub fn current(threads: usize) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Environment {
            initscope_version: env!("CARGO_PKG_VERSION").into(),
            cpu,
            threads,
            numerics: crate::nn::matmul::numerics_fingerprint(),
            numerics_changed: Vec::new(),
        }
    }
}

/// A record's rows, read to continue it from a checkpoint that kept `rows`
/// of them: a file that is missing (when rows are needed), cannot be read,
/// is malformed or holds fewer rows is an error naming it, never a history
/// silently lost.
fn read_for_resume<T: serde::de::DeserializeOwned>(path: &Path, rows: usize) -> Result<Vec<T>> {
    if rows == 0 && !path.exists() {
        return Ok(Vec::new());
    }
    let found: Vec<T> = crate::table::read_rows(path).map_err(|e| {
        crate::error::input(format!("{e:#}; it must hold the {rows} rows before the checkpoint to resume"))
    })?;
    if found.len() < rows {
        return Err(crate::error::input(format!(
            "{}: {} rows, but the checkpoint follows {rows}: the records do not belong to this checkpoint",
            path.display(),
            found.len()
        )));
    }
    Ok(found)
}

/// Writes each variant's records as its events arrive.
pub struct Recorder {
    run_dir: PathBuf,
    /// `steps.csv`, a row per step, encoded as it comes.
    steps: CsvBuffer,
    epochs: Vec<EpochRow>,
    timings: Vec<TimingRow>,
}

impl Recorder {
    /// Records into `run_dir`, which must exist.
    pub fn new(run_dir: &Path) -> Self {
        Recorder {
            run_dir: run_dir.into(),
            steps: CsvBuffer::new(&STEPS_COLUMNS),
            epochs: Vec::new(),
            timings: Vec::new(),
        }
    }

    fn variant_dir(&self, variant: &str) -> PathBuf {
        self.run_dir.join(variant)
    }

    fn write_csvs(&mut self, dir: &Path) -> Result<()> {
        self.steps.write(&dir.join(STEPS))?;
        write_rows(&dir.join(EPOCHS), &EPOCHS_COLUMNS, &self.epochs)?;
        write_rows(&dir.join(TIMINGS), &TIMINGS_COLUMNS, &self.timings)
    }

    fn epoch_row(&mut self, m: &EpochMetrics) {
        self.epochs.push(EpochRow {
            epoch: m.epoch,
            mean_loss: rounded(m.mean_loss, 6),
            train_accuracy: rounded(m.train.percent(), 4),
            valid_accuracy: rounded(m.valid.percent(), 4),
            train_correct: m.train.correct,
            train_total: m.train.total,
            valid_correct: m.valid.correct,
            valid_total: m.valid.total,
        });
        self.timings.push(TimingRow { epoch: m.epoch, elapsed_s: rounded(m.elapsed_s, 3) });
    }

    /// Takes up the records of a run stopped at `checkpoint`.
    fn resume(&mut self, dir: &Path, checkpoint: &Checkpoint) -> Result<()> {
        let epochs_done = checkpoint.epoch.saturating_sub(1);
        let steps: Vec<StepRow> = read_for_resume(&dir.join(STEPS), checkpoint.steps_taken)?;
        self.steps = CsvBuffer::new(&STEPS_COLUMNS);
        steps.iter().take(checkpoint.steps_taken).for_each(|row| self.steps.push(row));
        self.epochs = read_for_resume(&dir.join(EPOCHS), epochs_done)?;
        self.epochs.retain(|r| r.epoch < checkpoint.epoch);
        self.timings = read_for_resume(&dir.join(TIMINGS), epochs_done)?;
        self.timings.retain(|r| r.epoch < checkpoint.epoch);
        Ok(())
    }
}

impl Observer for Recorder {
    fn on_event(&mut self, variant: &str, event: &Event) -> Result<()> {
        let dir = self.variant_dir(variant);
        match event {
            Event::Start { model, .. } => {
                std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
                self.steps = CsvBuffer::new(&STEPS_COLUMNS);
                (self.epochs, self.timings) = (Vec::new(), Vec::new());
                remove_checkpoints(&dir, None, None)?;
                state_dict::save(model, &dir.join(INITIAL_WEIGHTS))?;
            }
            Event::Resume { checkpoint, .. } => self.resume(&dir, checkpoint)?,
            Event::Interrupted { model, optimizer, checkpoint } => {
                self.write_csvs(&dir)?;
                save_checkpoint(&dir, checkpoint, model, optimizer)?;
            }
            Event::Step { epoch, step, loss, trainer } => {
                let clip = trainer.clip_outcome();
                self.steps.push(&StepRow {
                    step: self.steps.rows(),
                    epoch: *epoch,
                    batch: *step,
                    loss: *loss,
                    lr: trainer.optimizer().lr(),
                    grad_norm: clip.norm,
                    clipped: clip.clipped,
                });
            }
            Event::Updated { .. } => {}
            Event::Epoch { metrics, model, optimizer, checkpoint } => {
                self.epoch_row(metrics);
                self.write_csvs(&dir)?;
                save_checkpoint(&dir, checkpoint, model, optimizer)?;
            }
            Event::End { model, test_predictions, test_labels, .. } => {
                state_dict::save(model, &dir.join(FINAL_WEIGHTS))?;
                let predictions: Vec<PredictionRow> = test_labels
                    .iter()
                    .zip(test_predictions.iter())
                    .enumerate()
                    .map(|(index, (&label, &predicted))| PredictionRow { index, label, predicted })
                    .collect();
                write_rows(&dir.join(PREDICTIONS), &PREDICTIONS_COLUMNS, &predictions)?;
                remove_checkpoints(&dir, None, None)?;
            }
        }
        Ok(())
    }
}
