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
use crate::nn::Mlp;
use crate::train::{EpochMetrics, Event, Observer, VariantSummary};
use anyhow::{Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Saves a model's parameters as safetensors with the original PyTorch
/// module's names (`my_network.1.weight` ...), loadable by `load_state_dict`.
pub fn save_safetensors(model: &Mlp, path: &Path) -> Result<()> {
    let tensors = model.tensors();
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, range)| model.params[range.clone()].iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), data)| {
            (name.clone(), TensorView::new(Dtype::F32, shape.clone(), data).expect("shape matches data"))
        })
        .collect();
    let out = safetensors::serialize(views, &None).context("cannot encode safetensors")?;
    write_atomic(path, &out)
}

/// A named f32 tensor read back from a safetensors file: `(name, shape, values)`.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Reads tensors saved by [`save_safetensors`], sorted by name.
pub fn load_safetensors(path: &Path) -> Result<Vec<NamedTensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            (name, view.shape().to_vec(), values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

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
                save_safetensors(model, &dir.join("initial.safetensors"))?;
            }
            Event::Step { epoch, step, loss, .. } => {
                let _ = writeln!(self.steps, "{},{epoch},{step},{loss}", self.step_index);
                self.step_index += 1;
            }
            Event::Epoch { metrics, .. } => {
                self.epoch_row(metrics);
                write_atomic(&dir.join("steps.csv"), self.steps.as_bytes())?;
                write_atomic(&dir.join("epochs.csv"), self.epochs.as_bytes())?;
                write_atomic(&dir.join("timings.csv"), self.timings.as_bytes())?;
            }
            Event::End { model, test_predictions, test_labels, .. } => {
                save_safetensors(model, &dir.join("final.safetensors"))?;
                let mut csv = String::from("index,label,predicted\n");
                for (i, (l, p)) in test_labels.iter().zip(test_predictions.iter()).enumerate() {
                    let _ = writeln!(csv, "{i},{l},{p}");
                }
                write_atomic(&dir.join("test_predictions.csv"), csv.as_bytes())?;
            }
        }
        Ok(())
    }
}

/// Serde for f64 fields that may be NaN (a diverged loss): JSON has no NaN,
/// so it is written as `null` and read back as NaN.
pub mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    /// NaN and infinities as `null`.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    /// `null` as NaN.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}
