//! Reading a run directory back: everything the charts and the report
//! need, from the files alone.

use crate::data::idx;
use crate::record::rows::{EpochRow, HistogramRow, LayerStatsRow, PredictionRow, StepRow};
use crate::record::RunSummary;
use crate::table::read_rows;
use crate::tensorfile;
use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};

/// One variant's records.
pub struct VariantRecords {
    /// Its name.
    pub name: String,
    /// The variant it is a seed of (its own name with one seed).
    pub group: String,
    /// Every minibatch loss, in step order.
    pub losses: Vec<f64>,
    /// Steps per epoch (from the steps file).
    pub steps_per_epoch: usize,
    /// Per epoch: (epoch, mean loss, train %, valid %).
    pub epochs: Vec<(f64, f64, f64, f64)>,
    /// Per layer, the initial and final weights (when saved).
    pub initial_weights: Vec<Vec<f32>>,
    /// See `initial_weights`.
    pub final_weights: Vec<Vec<f32>>,
    /// Test (label, prediction) pairs.
    pub test_predictions: Vec<(u8, u8)>,
    /// The probe's per-layer rows, if recorded.
    pub layers: Option<Vec<LayerStatsRow>>,
    /// The probe's histograms, if recorded.
    pub histograms: Option<Vec<HistogramRow>>,
    /// Mean-field theory's prediction (`theory.json`), if written.
    pub theory: Option<crate::theory::VariantPrediction>,
}

/// A whole run directory.
pub struct RunRecords {
    /// The directory.
    pub dir: PathBuf,
    /// `summary.json` (variants that finished).
    pub summary: RunSummary,
    /// `experiment.toml` as written.
    pub settings: String,
    /// Each variant that has records, in the settings' order.
    pub variants: Vec<VariantRecords>,
    /// The example test images: (rows, cols, pixels per image).
    pub examples: Option<(usize, usize, Vec<Vec<u8>>)>,
}

fn weights(path: &Path) -> Result<Vec<Vec<f32>>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut tensors: Vec<(usize, Vec<f32>)> = tensorfile::load(path)?
        .into_iter()
        .filter(|(name, shape, _)| name.ends_with(".weight") && shape.len() == 2)
        .map(|(name, _, values)| {
            let index = name.split('.').nth(1).and_then(|i| i.parse().ok()).unwrap_or(usize::MAX);
            (index, values)
        })
        .collect();
    tensors.sort_by_key(|t| t.0);
    Ok(tensors.into_iter().map(|t| t.1).collect())
}

impl VariantRecords {
    fn load(dir: &Path, name: &str) -> Result<Self> {
        let vdir = dir.join(name);
        let steps: Vec<StepRow> = read_rows(&vdir.join("steps.csv"))?;
        let losses = steps.iter().map(|r| f64::from(r.loss)).collect();
        let steps_per_epoch = steps.iter().map(|r| r.batch).max().unwrap_or(0) + 1;
        let epochs: Vec<EpochRow> = read_rows_if_written(&vdir.join("epochs.csv"))?.unwrap_or_default();
        let epochs = epochs.iter().map(|r| (r.epoch as f64, r.mean_loss, r.train_accuracy, r.valid_accuracy)).collect();
        let predictions: Vec<PredictionRow> =
            read_rows_if_written(&vdir.join("test_predictions.csv"))?.unwrap_or_default();
        let test_predictions = predictions.iter().map(|r| (r.label, r.predicted)).collect();
        Ok(VariantRecords {
            name: name.into(),
            group: name.into(),
            losses,
            steps_per_epoch,
            epochs,
            initial_weights: weights(&vdir.join("initial.safetensors"))?,
            final_weights: weights(&vdir.join("final.safetensors"))?,
            test_predictions,
            layers: read_rows_if_written(&vdir.join("probe/layers.csv"))?,
            histograms: read_rows_if_written(&vdir.join("probe/histograms.csv"))?,
            theory: read_theory(&vdir.join("theory.json"))?,
        })
    }
}

impl RunRecords {
    /// Reads a run directory written by `initscope run`.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(crate::error::input(format!("{}: not a run directory (it does not exist)", dir.display())));
        }
        let settings_path = dir.join("experiment.toml");
        let settings = std::fs::read_to_string(&settings_path)
            .with_context(|| format!("{}: cannot read (is this a run directory?)", settings_path.display()))?;
        let experiment: crate::experiment::Experiment =
            toml::from_str(&settings).map_err(|e| anyhow!("{}: {}", settings_path.display(), e.message()))?;
        let summary_path = dir.join("summary.json");
        let summary: RunSummary = if summary_path.exists() {
            serde_json::from_str(&std::fs::read_to_string(&summary_path)?)
                .with_context(|| format!("{}: not a valid summary", summary_path.display()))?
        } else {
            RunSummary {
                experiment: experiment.name.clone(),
                status: "running".into(),
                environment: crate::record::Environment::current(0),
                variants: Vec::new(),
            }
        };
        let mut variants = Vec::new();
        for unit in experiment.runs() {
            let name = &unit.variant.name;
            if dir.join(name).join("steps.csv").exists() {
                let mut records = VariantRecords::load(dir, name)?;
                records.group = unit.group.clone();
                variants.push(records);
            }
        }
        let examples_path = dir.join("examples-images-idx3-ubyte");
        let examples = if examples_path.exists() {
            let a = idx::read(&examples_path)?;
            let per = a.dims[1] * a.dims[2];
            Some((a.dims[1], a.dims[2], a.data.chunks(per).map(<[u8]>::to_vec).collect()))
        } else {
            None
        };
        Ok(RunRecords { dir: dir.into(), summary, settings, variants, examples })
    }
}

/// A record's rows, or `None` when the run did not write it.
fn read_rows_if_written<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<Vec<T>>> {
    if path.exists() {
        read_rows(path).map(Some)
    } else {
        Ok(None)
    }
}

/// `theory.json`, or `None` for runs made before it existed.
fn read_theory(path: &Path) -> Result<Option<crate::theory::VariantPrediction>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str(&text).map(Some).map_err(|e| crate::error::input(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::error::input(format!("{}: cannot read ({e})", path.display()))),
    }
}
