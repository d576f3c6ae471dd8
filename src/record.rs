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
use crate::optim::Optimizer;
use crate::train::{Checkpoint, EpochMetrics, Event, Observer, OptimizerState, VariantSummary};
use anyhow::{Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Saves a model's parameters as safetensors with the original PyTorch
/// module's names (`my_network.1.weight` ...), loadable by `load_state_dict`.
pub fn save_safetensors(model: &Mlp, path: &Path) -> Result<()> {
    let le = |values: &[f32]| -> Vec<u8> { values.iter().flat_map(|v| v.to_le_bytes()).collect() };
    // (name, dtype, shape, bytes): parameters, batch-norm running statistics,
    // and each batch norm's int64 batch counter, as PyTorch's state_dict has.
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, shape, range) in model.tensors() {
        tensors.push((name, Dtype::F32, shape, le(&model.params[range])));
    }
    for (name, shape, range) in model.buffers() {
        tensors.push((name, Dtype::F32, shape, le(&model.running[range])));
    }
    for name in model.counters() {
        tensors.push((name, Dtype::I64, Vec::new(), (model.batches_tracked as i64).to_le_bytes().to_vec()));
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            (name.clone(), TensorView::new(*dtype, shape.clone(), data).expect("shape matches data"))
        })
        .collect();
    let out = safetensors::serialize(views, &None).context("cannot encode safetensors")?;
    write_atomic(path, &out)
}

/// Saves one f32 vector as a safetensors file with a single tensor `name`.
pub fn save_vector(name: &str, values: &[f32], path: &Path) -> Result<()> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, vec![values.len()], &bytes).expect("shape matches data");
    let out = safetensors::serialize(vec![(name.to_string(), view)], &None).context("cannot encode safetensors")?;
    write_atomic(path, &out)
}

/// Reads back the single vector of [`save_vector`] (or every tensor of a
/// file, concatenated in name order).
pub fn load_vector(path: &Path) -> Result<Vec<f32>> {
    Ok(load_safetensors(path)?.into_iter().flat_map(|t| t.2).collect())
}

/// A named f32 tensor read back from a safetensors file: `(name, shape, values)`.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Reads the f32 tensors saved by [`save_safetensors`], sorted by name
/// (the int64 batch counters are left out).
pub fn load_safetensors(path: &Path) -> Result<Vec<NamedTensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .filter(|(_, view)| view.dtype() == Dtype::F32)
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

/// `<variant>/checkpoint.json`: a [`Checkpoint`] and the file holding its
/// parameters. The JSON is written last, so it never names a file that is
/// not complete.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointFile {
    /// Where training stands.
    pub checkpoint: Checkpoint,
    /// The parameters' file, beside this one.
    pub params_file: String,
    /// The optimiser's state file beside this one (none for plain SGD).
    pub optimizer_file: Option<String>,
    /// Updates the optimiser has applied (Adam's `t`).
    pub optimizer_steps: u64,
    /// How the random streams are positioned.
    pub random_streams: String,
}

/// Saves a checkpoint of `model` into `variant_dir`, then removes older
/// parameter files.
pub fn save_checkpoint(variant_dir: &Path, checkpoint: &Checkpoint, model: &Mlp, optimizer: &Optimizer) -> Result<()> {
    let params_file = format!("checkpoint-{}.safetensors", checkpoint.steps_taken);
    save_safetensors(model, &variant_dir.join(&params_file))?;
    let optimizer_file = if optimizer.first.is_empty() {
        None
    } else {
        let name = format!("checkpoint-{}-optimizer.safetensors", checkpoint.steps_taken);
        let first: Vec<u8> = optimizer.first.iter().flat_map(|v| v.to_le_bytes()).collect();
        let second: Vec<u8> = optimizer.second.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut views = vec![("first".to_string(), TensorView::new(Dtype::F32, vec![optimizer.first.len()], &first)?)];
        if !second.is_empty() {
            views.push(("second".to_string(), TensorView::new(Dtype::F32, vec![optimizer.second.len()], &second)?));
        }
        let bytes = safetensors::serialize(views, &None).context("cannot encode safetensors")?;
        write_atomic(&variant_dir.join(&name), &bytes)?;
        Some(name)
    };
    let file = CheckpointFile {
        checkpoint: checkpoint.clone(),
        params_file: params_file.clone(),
        optimizer_file: optimizer_file.clone(),
        optimizer_steps: optimizer.steps,
        random_streams: format!(
            "per-epoch ChaCha8 streams (seed, \"shuffle/train\", epoch); epoch {} is replayed from its start and its first {} batches skipped",
            checkpoint.epoch, checkpoint.step
        ),
    };
    let json = serde_json::to_string_pretty(&file).expect("checkpoints always serialise");
    write_atomic(&variant_dir.join("checkpoint.json"), json.as_bytes())?;
    remove_checkpoints(variant_dir, Some(&params_file), optimizer_file.as_deref())
}

/// Removes a variant's checkpoint files but `keep` and `keep_too` (and,
/// with `keep` = `None`, its checkpoint.json).
pub fn remove_checkpoints(variant_dir: &Path, keep: Option<&str>, keep_too: Option<&str>) -> Result<()> {
    if keep.is_none() {
        let _ = std::fs::remove_file(variant_dir.join("checkpoint.json"));
    }
    for entry in std::fs::read_dir(variant_dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let kept = Some(name.as_str()) == keep || Some(name.as_str()) == keep_too;
        if name.starts_with("checkpoint-") && name.ends_with(".safetensors") && !kept {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// A variant's last checkpoint, its model's tensors by name and its
/// optimiser state.
pub type LoadedCheckpoint = (Checkpoint, Vec<NamedTensor>, OptimizerState);

/// A variant's last checkpoint, if it has one.
pub fn load_checkpoint(variant_dir: &Path) -> Result<Option<LoadedCheckpoint>> {
    let path = variant_dir.join("checkpoint.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    let file: CheckpointFile =
        serde_json::from_str(&text).map_err(|e| crate::error::input(format!("{}: {e}", path.display())))?;
    let tensors = load_safetensors(&variant_dir.join(&file.params_file))?;
    let mut state = OptimizerState { steps: file.optimizer_steps, ..Default::default() };
    if let Some(name) = &file.optimizer_file {
        for (tensor, _, values) in load_safetensors(&variant_dir.join(name))? {
            match tensor.as_str() {
                "first" => state.first = values,
                "second" => state.second = values,
                _ => {}
            }
        }
    }
    Ok(Some((file.checkpoint, tensors, state)))
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
                save_safetensors(model, &dir.join("initial.safetensors"))?;
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
                save_safetensors(model, &dir.join("final.safetensors"))?;
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
