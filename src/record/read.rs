//! Reading a run directory back: everything the charts, the report and
//! the TensorBoard export need, from the files alone (through [`RunDir`]).

use super::dir::{
    RunDir, EPOCHS, EXAMPLES, FINAL_WEIGHTS, INITIAL_WEIGHTS, PREDICTIONS, PROBE, SETTINGS, STEPS, THEORY,
};
use super::RunSummary;
use crate::data::idx;
use crate::record::rows::{EpochRow, HistogramRow, LayerStatsRow, PredictionRow, StepRow};
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
    /// Every step's row (its lr, gradient norm and clipping too).
    pub steps: Vec<StepRow>,
    /// The gradient clipping the variant trained with.
    pub clip: Option<crate::optim::clip::ClipSettings>,
    /// Steps per epoch (from the steps file).
    pub steps_per_epoch: usize,
    /// `epochs.csv`'s rows (empty before the first epoch ends).
    pub epochs: Vec<EpochRow>,
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
    /// The probe's residual-block rows (`probe/blocks.csv`), if recorded.
    pub blocks: Option<Vec<crate::record::rows::BlockStatsRow>>,
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
    fn load(run: &RunDir, name: &str, clip: Option<crate::optim::clip::ClipSettings>) -> Result<Self> {
        let file = |f: &str| run.variant_file(name, f);
        let steps: Vec<StepRow> = read_rows(&file(STEPS))?;
        let losses = steps.iter().map(|r| f64::from(r.loss)).collect();
        let steps_per_epoch = steps.iter().map(|r| r.batch).max().unwrap_or(0) + 1;
        let epochs: Vec<EpochRow> = read_rows_if_written(&file(EPOCHS))?.unwrap_or_default();
        let predictions: Vec<PredictionRow> = read_rows_if_written(&file(PREDICTIONS))?.unwrap_or_default();
        let test_predictions = predictions.iter().map(|r| (r.label, r.predicted)).collect();
        Ok(VariantRecords {
            name: name.into(),
            group: name.into(),
            losses,
            steps,
            clip,
            steps_per_epoch,
            epochs,
            initial_weights: weights(&file(INITIAL_WEIGHTS))?,
            final_weights: weights(&file(FINAL_WEIGHTS))?,
            test_predictions,
            layers: read_rows_if_written(&file(PROBE).join("layers.csv"))?,
            histograms: read_rows_if_written(&file(PROBE).join("histograms.csv"))?,
            blocks: read_rows_if_written(&file(PROBE).join("blocks.csv"))?,
            theory: read_theory(&file(THEORY))?,
        })
    }
}

impl RunRecords {
    /// Reads a run directory written by `initscope run`.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(crate::error::input(format!("{}: not a run directory (it does not exist)", dir.display())));
        }
        let run = RunDir::new(dir);
        let settings_path = run.file(SETTINGS);
        let settings = std::fs::read_to_string(&settings_path)
            .with_context(|| format!("{}: cannot read (is this a run directory?)", settings_path.display()))?;
        let experiment: crate::experiment::Experiment =
            toml::from_str(&settings).map_err(|e| anyhow!("{}: {}", settings_path.display(), e.message()))?;
        let summary = run.read_summary()?.unwrap_or_else(|| RunSummary::started(&experiment.name, 0));
        let mut variants = Vec::new();
        for unit in experiment.runs() {
            let name = &unit.variant.name;
            if run.variant_file(name, STEPS).exists() {
                let mut records = VariantRecords::load(&run, name, experiment.clip_of(&unit.variant))?;
                records.group = unit.group.clone();
                variants.push(records);
            }
        }
        let examples_path = run.file(EXAMPLES);
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
pub fn read_theory(path: &Path) -> Result<Option<crate::theory::VariantPrediction>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str(&text).map(Some).map_err(|e| crate::error::input(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::error::input(format!("{}: cannot read ({e})", path.display()))),
    }
}
