//! Checkpoints: where a variant stands between two steps, saved as
//! `<variant>/checkpoint.json` beside its parameters and optimiser state,
//! so that training stops at any step boundary and continues
//! bit-identically. The one home of writing, reading and pruning them.

use crate::fsutil::write_atomic;
use crate::nn::{state_dict, Model};
use crate::optim::Optimizer;
use crate::tensorfile::{self, NamedTensor, Values};
use crate::train::EpochMetrics;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where a variant stands between two steps: with the parameters (saved
/// beside it) enough to continue exactly as if it had never stopped. The
/// random draws need no position: each epoch's order is replayed from the
/// seed (its own ChaCha stream `(seed, "shuffle/train", epoch)`, or with
/// `rng = "torch"` PyTorch's generator replayed through the earlier
/// epochs) and skipped to `step`; SGD without momentum has no state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The variant.
    pub variant: String,
    /// The epoch in progress, 1-based (`epochs + 1` once all are done).
    pub epoch: usize,
    /// Steps of that epoch already taken.
    pub step: usize,
    /// Updates applied in all.
    pub steps_taken: usize,
    /// Sum of this epoch's losses so far.
    pub loss_sum: f64,
    /// Loss of the very first batch.
    #[serde(with = "crate::nonfinite::nan_as_null")]
    pub initial_loss: f64,
    /// Wall-clock seconds trained so far.
    pub elapsed_s: f64,
    /// The last finished epoch's metrics.
    pub last_epoch: Option<EpochMetrics>,
    /// The numerics the parameters were computed under
    /// ([`crate::nn::matmul::numerics_fingerprint`]; empty in checkpoints
    /// made before it was recorded): continuing under others is not
    /// bit-identical, so `resume` refuses unless told otherwise.
    #[serde(default)]
    pub numerics: String,
}

/// The optimiser's state saved with a checkpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimizerState {
    /// Updates applied (Adam's `t`).
    pub steps: u64,
    /// Momentum buffer or Adam's first moment (may be empty).
    pub first: Vec<f32>,
    /// Adam's second moment, Adagrad's or RMSprop's sum of squares (may be empty).
    pub second: Vec<f32>,
    /// Centred RMSprop's mean gradient (may be empty).
    pub third: Vec<f32>,
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
pub fn save_checkpoint(
    variant_dir: &Path,
    checkpoint: &Checkpoint,
    model: &Model,
    optimizer: &Optimizer,
) -> Result<()> {
    let params_file = format!("checkpoint-{}.safetensors", checkpoint.steps_taken);
    state_dict::save(model, &variant_dir.join(&params_file))?;
    let buffers = [("first", &optimizer.first), ("second", &optimizer.second), ("third", &optimizer.third)];
    let tensors: Vec<_> = buffers
        .iter()
        .filter(|(_, b)| !b.is_empty())
        .map(|(name, b)| (name.to_string(), vec![b.len()], Values::F32(b)))
        .collect();
    let optimizer_file = if tensors.is_empty() {
        None
    } else {
        let name = format!("checkpoint-{}-optimizer.safetensors", checkpoint.steps_taken);
        tensorfile::save(&variant_dir.join(&name), &tensors)?;
        Some(name)
    };
    let file = CheckpointFile {
        checkpoint: checkpoint.clone(),
        params_file: params_file.clone(),
        optimizer_file: optimizer_file.clone(),
        optimizer_steps: optimizer.steps,
        random_streams: format!(
            "epoch {}'s order is replayed from the seed and its first {} batches skipped",
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
    let tensors = tensorfile::load(&variant_dir.join(&file.params_file))?;
    let mut state = OptimizerState { steps: file.optimizer_steps, ..Default::default() };
    if let Some(name) = &file.optimizer_file {
        for (tensor, _, values) in tensorfile::load(&variant_dir.join(name))? {
            match tensor.as_str() {
                "first" => state.first = values,
                "second" => state.second = values,
                "third" => state.third = values,
                _ => {}
            }
        }
    }
    Ok(Some((file.checkpoint, tensors, state)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Activation;
    use crate::optim::{OptimizerKind, OptimizerSettings};

    /// Every buffer an optimiser keeps comes back: Adagrad's sums alone
    /// (no first buffer), centred RMSprop with momentum's three.
    #[test]
    fn every_optimiser_buffer_survives_a_checkpoint() {
        let tmp = tempfile::tempdir().unwrap();
        let model = Model::mlp(&[3, 2], Activation::Relu);
        let checkpoint = Checkpoint {
            variant: "v".into(),
            epoch: 1,
            step: 2,
            steps_taken: 2,
            loss_sum: 1.0,
            initial_loss: 2.3,
            elapsed_s: 0.0,
            last_epoch: None,
            numerics: String::new(),
        };
        let centred = OptimizerSettings {
            momentum: 0.9,
            centered: true,
            ..OptimizerSettings::of_kind(OptimizerKind::Rmsprop, 0.01)
        };
        for settings in [OptimizerSettings::of_kind(OptimizerKind::Adagrad, 0.01), centred] {
            let mut optimizer = Optimizer::new(settings);
            let mut params = model.params.clone();
            optimizer.step(&mut params, &[0.5, -0.25, 1.0, 0.0, 2.0, -1.0, 0.3, 0.1]);
            save_checkpoint(tmp.path(), &checkpoint, &model, &optimizer).unwrap();
            let (_, _, state) = load_checkpoint(tmp.path()).unwrap().unwrap();
            assert!(!optimizer.second.is_empty());
            assert_eq!((state.first, state.second, state.third), (optimizer.first, optimizer.second, optimizer.third));
        }
    }
}
