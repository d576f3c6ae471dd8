//! The run directory: plain files that the report and other tools read.
//!
//! ```text
//! <run>/experiment.toml         the resolved settings (runnable again)
//! <run>/summary.json            per-variant results and the environment
//! <run>/log.txt                 the console log
//! <run>/<variant>/steps.csv     step,epoch,batch,loss  (every minibatch)
//! <run>/<variant>/epochs.csv    per-epoch loss and accuracies
//! <run>/<variant>/timings.csv   per-epoch wall-clock seconds
//! <run>/<variant>/initial.safetensors, final.safetensors
//! <run>/<variant>/test_predictions.csv   index,label,predicted
//! <run>/examples-images-idx3-ubyte       the first 15 test images (for the example grid)
//! ```
//! Metrics files hold no timings, so two runs with one seed give
//! byte-identical metrics. Every file is written whole and renamed into
//! place ([`write_atomic`]).

use crate::fsutil::write_atomic;
use crate::nn::state_dict;
use crate::train::checkpoint::{remove_checkpoints, save_checkpoint};
use crate::train::{EpochMetrics, Event, Observer, VariantSummary};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
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
    write_atomic(&dir.join("examples-images-idx3-ubyte"), &crate::data::idx::encode(&array))
}

/// `summary.json`: everything a report needs without the CSVs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSummary {
    /// The experiment's name.
    pub experiment: String,
    /// `running`, `interrupted` (continue with `initscope resume`) or `complete`.
    #[serde(default)]
    pub status: String,
    /// Where and with what it ran.
    pub environment: Environment,
    /// One entry per finished variant, in order.
    pub variants: Vec<VariantSummary>,
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
        Environment { initscope_version: env!("CARGO_PKG_VERSION").into(), cpu, threads }
    }
}

/// A record's text, read to continue it from a checkpoint that kept `rows`
/// of its data rows: a file that is missing (when rows are needed), cannot
/// be read or holds fewer rows is an error naming it, never a history
/// silently lost.
fn read_for_resume(path: &Path, rows: usize) -> Result<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && rows == 0 => return Ok(String::new()),
        Err(e) => {
            return Err(crate::error::input(format!(
                "{}: cannot read it to resume ({e}); it must hold the {rows} rows before the checkpoint",
                path.display()
            )))
        }
    };
    let found = text.lines().skip(1).filter(|l| !l.is_empty()).count();
    if found < rows {
        return Err(crate::error::input(format!(
            "{}: {found} rows, but the checkpoint follows {rows}: the records do not belong to this checkpoint",
            path.display()
        )));
    }
    Ok(text)
}

/// Keeps the header and the first `rows` data lines of a CSV file's text.
fn first_rows(text: &str, rows: usize) -> String {
    text.lines().take(rows + 1).map(|l| format!("{l}\n")).collect()
}

/// Keeps the header and the data lines whose first field (the epoch) is
/// below `epoch`.
fn rows_before_epoch(text: &str, epoch: usize) -> String {
    let mut lines = text.lines();
    let mut out = lines.next().map(|h| format!("{h}\n")).unwrap_or_default();
    for l in lines.filter(|l| l.split(',').next().and_then(|e| e.parse::<usize>().ok()).is_some_and(|e| e < epoch)) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// Writes each variant's records as its events arrive.
pub struct Recorder {
    run_dir: PathBuf,
    steps: String,
    epochs: String,
    timings: String,
    step_index: usize,
}

const STEPS_HEADER: &str = "step,epoch,batch,loss\n";
const EPOCHS_HEADER: &str =
    "epoch,mean_loss,train_accuracy,valid_accuracy,train_correct,train_total,valid_correct,valid_total\n";
const TIMINGS_HEADER: &str = "epoch,elapsed_s\n";

impl Recorder {
    /// Records into `run_dir`, which must exist.
    pub fn new(run_dir: &Path) -> Self {
        Recorder {
            run_dir: run_dir.into(),
            steps: String::new(),
            epochs: String::new(),
            timings: String::new(),
            step_index: 0,
        }
    }

    fn variant_dir(&self, variant: &str) -> PathBuf {
        self.run_dir.join(variant)
    }

    fn write_csvs(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join("steps.csv"), self.steps.as_bytes())?;
        write_atomic(&dir.join("epochs.csv"), self.epochs.as_bytes())?;
        write_atomic(&dir.join("timings.csv"), self.timings.as_bytes())
    }

    fn epoch_row(&mut self, m: &EpochMetrics) {
        let _ = writeln!(
            self.epochs,
            "{},{:.6},{:.4},{:.4},{},{},{},{}",
            m.epoch,
            m.mean_loss,
            m.train.percent(),
            m.valid.percent(),
            m.train.correct,
            m.train.total,
            m.valid.correct,
            m.valid.total
        );
        let _ = writeln!(self.timings, "{},{:.3}", m.epoch, m.elapsed_s);
    }
}

impl Observer for Recorder {
    fn on_event(&mut self, variant: &str, event: &Event) -> Result<()> {
        let dir = self.variant_dir(variant);
        match event {
            Event::Start { model, .. } => {
                std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
                self.steps = STEPS_HEADER.into();
                self.epochs = EPOCHS_HEADER.into();
                self.timings = TIMINGS_HEADER.into();
                self.step_index = 0;
                remove_checkpoints(&dir, None, None)?;
                state_dict::save(model, &dir.join("initial.safetensors"))?;
            }
            Event::Resume { checkpoint, .. } => {
                let epochs_done = checkpoint.epoch.saturating_sub(1);
                let steps = read_for_resume(&dir.join("steps.csv"), checkpoint.steps_taken)?;
                self.steps = first_rows(&steps, checkpoint.steps_taken);
                let epochs = read_for_resume(&dir.join("epochs.csv"), epochs_done)?;
                self.epochs = rows_before_epoch(&epochs, checkpoint.epoch);
                let timings = read_for_resume(&dir.join("timings.csv"), epochs_done)?;
                self.timings = rows_before_epoch(&timings, checkpoint.epoch);
                for (text, header) in [
                    (&mut self.steps, STEPS_HEADER),
                    (&mut self.epochs, EPOCHS_HEADER),
                    (&mut self.timings, TIMINGS_HEADER),
                ] {
                    if text.is_empty() {
                        *text = header.into();
                    }
                }
                self.step_index = checkpoint.steps_taken;
            }
            Event::Interrupted { model, optimizer, checkpoint } => {
                self.write_csvs(&dir)?;
                save_checkpoint(&dir, checkpoint, model, optimizer)?;
            }
            Event::Step { epoch, step, loss, .. } => {
                let _ = writeln!(self.steps, "{},{epoch},{step},{loss}", self.step_index);
                self.step_index += 1;
            }
            Event::Epoch { metrics, model, optimizer, checkpoint } => {
                self.epoch_row(metrics);
                self.write_csvs(&dir)?;
                save_checkpoint(&dir, checkpoint, model, optimizer)?;
            }
            Event::End { model, test_predictions, test_labels, .. } => {
                state_dict::save(model, &dir.join("final.safetensors"))?;
                let mut csv = String::from("index,label,predicted\n");
                for (i, (l, p)) in test_labels.iter().zip(test_predictions.iter()).enumerate() {
                    let _ = writeln!(csv, "{i},{l},{p}");
                }
                write_atomic(&dir.join("test_predictions.csv"), csv.as_bytes())?;
                remove_checkpoints(&dir, None, None)?;
            }
        }
        Ok(())
    }
}
