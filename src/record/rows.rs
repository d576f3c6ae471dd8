//! The rows of every CSV record of a variant (`steps.csv`, `epochs.csv`,
//! `timings.csv`, `test_predictions.csv`, and the probe's `layers.csv`,
//! `histograms.csv`, `changes.csv`), written and read back through
//! [`crate::table`] as these serde structs, in the order of their columns.

use serde::{Deserialize, Serialize};

/// One minibatch of `steps.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRow {
    /// Updates applied before it, over the whole run.
    pub step: usize,
    /// 1-based epoch.
    pub epoch: usize,
    /// 0-based batch within the epoch.
    pub batch: usize,
    /// The batch's loss before the update (NaN once diverged).
    pub loss: f32,
    /// The learning rate of the step's update (the schedule's).
    #[serde(default)]
    pub lr: f64,
    /// The gradient's global L2 norm before any clipping.
    #[serde(default)]
    pub grad_norm: f32,
    /// Whether clipping changed the gradient.
    #[serde(default)]
    pub clipped: bool,
}

/// One epoch of `epochs.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean of the epoch's minibatch losses (6 decimals).
    pub mean_loss: f64,
    /// Training accuracy in percent (4 decimals).
    pub train_accuracy: f64,
    /// Validation accuracy in percent (4 decimals).
    pub valid_accuracy: f64,
    /// Correct training predictions.
    pub train_correct: usize,
    /// Training images evaluated.
    pub train_total: usize,
    /// Correct validation predictions.
    pub valid_correct: usize,
    /// Validation images.
    pub valid_total: usize,
}

/// One epoch of `timings.csv` (kept apart so the metrics hold no timings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimingRow {
    /// 1-based epoch.
    pub epoch: usize,
    /// Seconds since the variant started training (3 decimals).
    pub elapsed_s: f64,
}

/// One test image of `test_predictions.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionRow {
    /// Position in the test file.
    pub index: usize,
    /// True class.
    pub label: u8,
    /// The final model's class.
    pub predicted: u8,
}

/// The columns of `steps.csv`, in [`StepRow`]'s order.
pub const STEPS_COLUMNS: [&str; 7] = ["step", "epoch", "batch", "loss", "lr", "grad_norm", "clipped"];
/// The columns of `epochs.csv`, in [`EpochRow`]'s order.
pub const EPOCHS_COLUMNS: [&str; 8] = [
    "epoch",
    "mean_loss",
    "train_accuracy",
    "valid_accuracy",
    "train_correct",
    "train_total",
    "valid_correct",
    "valid_total",
];
/// The columns of `timings.csv`, in [`TimingRow`]'s order.
pub const TIMINGS_COLUMNS: [&str; 2] = ["epoch", "elapsed_s"];
/// The columns of `test_predictions.csv`, in [`PredictionRow`]'s order.
pub const PREDICTIONS_COLUMNS: [&str; 3] = ["index", "label", "predicted"];

/// One layer at one recorded step of `probe/layers.csv`: the weights', the
/// gradients' and the activations' statistics on the step's batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerStatsRow {
    /// Updates applied before the step.
    pub step: usize,
    /// 1-based layer.
    pub layer: usize,
    /// Weights: mean, standard deviation, extremes and L2 norm.
    pub w_mean: f64,
    /// See `w_mean`.
    pub w_std: f64,
    /// See `w_mean`.
    pub w_min: f64,
    /// See `w_mean`.
    pub w_max: f64,
    /// See `w_mean`.
    pub w_norm: f64,
    /// Weight gradient: L2 norm, mean |g| and standard deviation.
    pub gw_norm: f64,
    /// See `gw_norm`.
    pub gw_mean_abs: f64,
    /// See `gw_norm`.
    pub gw_std: f64,
    /// Bias gradient: L2 norm, mean |g| and standard deviation.
    pub gb_norm: f64,
    /// See `gb_norm`.
    pub gb_mean_abs: f64,
    /// See `gb_norm`.
    pub gb_std: f64,
    /// `|W_after - W_before| / |W_before|`: the update this step applied,
    /// relative to the weights (measured around the optimiser's step).
    pub update_ratio: f64,
    /// Pre-activations `z = x W^T + b`: mean and standard deviation.
    pub pre_mean: f64,
    /// See `pre_mean`.
    pub pre_std: f64,
    /// Post-activations (hidden layers; NaN for the output): mean,
    /// standard deviation, share of exact zeros, share saturated.
    pub post_mean: f64,
    /// See `post_mean`.
    pub post_std: f64,
    /// See `post_mean`.
    pub post_zero_frac: f64,
    /// See `post_mean`.
    pub post_saturated_frac: f64,
    /// Units that output zero for the whole batch.
    pub dead_units: usize,
    /// NaN and infinite values among all of the above's inputs.
    pub nonfinite: u64,
}

impl LayerStatsRow {
    /// Layer `layer`'s row at `step` with nothing measured yet (every
    /// statistic NaN, the counts 0): the probe fills it in as the step's
    /// activations, gradients, weights and update become known.
    pub fn unmeasured(step: usize, layer: usize) -> Self {
        let nan = f64::NAN;
        LayerStatsRow {
            step,
            layer,
            w_mean: nan,
            w_std: nan,
            w_min: nan,
            w_max: nan,
            w_norm: nan,
            gw_norm: nan,
            gw_mean_abs: nan,
            gw_std: nan,
            gb_norm: nan,
            gb_mean_abs: nan,
            gb_std: nan,
            update_ratio: nan,
            pre_mean: nan,
            pre_std: nan,
            post_mean: nan,
            post_std: nan,
            post_zero_frac: nan,
            post_saturated_frac: nan,
            dead_units: 0,
            nonfinite: 0,
        }
    }
}

/// The columns of `probe/layers.csv`, in [`LayerStatsRow`]'s order.
pub const LAYER_STATS_COLUMNS: [&str; 22] = [
    "step",
    "layer",
    "w_mean",
    "w_std",
    "w_min",
    "w_max",
    "w_norm",
    "gw_norm",
    "gw_mean_abs",
    "gw_std",
    "gb_norm",
    "gb_mean_abs",
    "gb_std",
    "update_ratio",
    "pre_mean",
    "pre_std",
    "post_mean",
    "post_std",
    "post_zero_frac",
    "post_saturated_frac",
    "dead_units",
    "nonfinite",
];

/// One histogram of `probe/histograms.csv`: a layer's weights, weight
/// gradients or activations at one step, in equal bins from `min` to `max`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramRow {
    /// Updates applied before it was taken.
    pub step: usize,
    /// `weight`, `weight_grad`, `pre` or `post`.
    pub kind: String,
    /// 1-based layer.
    pub layer: usize,
    /// Left edge of the first bin.
    pub min: f64,
    /// Right edge of the last bin.
    pub max: f64,
    /// NaN and infinite values (in no bin).
    pub nonfinite: u64,
    /// Counts per bin, as the columns `c0`, `c1`, ...
    pub counts: Vec<u64>,
}

/// The columns of `probe/histograms.csv` with `bins` bins.
pub fn histogram_columns(bins: usize) -> Vec<String> {
    let fixed = ["step", "kind", "layer", "min", "max", "nonfinite"].map(String::from);
    fixed.into_iter().chain((0..bins).map(|b| format!("c{b}"))).collect()
}

/// One layer in one epoch of `probe/changes.csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRow {
    /// 1-based epoch.
    pub epoch: usize,
    /// 1-based Linear layer.
    pub layer: usize,
    /// Its parameters that differ from the epoch's start.
    pub changed: usize,
    /// Its parameters.
    pub total: usize,
}

/// The columns of `probe/changes.csv`.
pub const CHANGE_COLUMNS: [&str; 4] = ["epoch", "layer", "changed", "total"];

/// One residual block at one recorded step of `probe/blocks.csv`: the
/// stream entering it against its branch's output on the step's batch,
/// the quantity Fixup and SkipInit keep small at the start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockStatsRow {
    /// Updates applied before the step.
    pub step: usize,
    /// 1-based block.
    pub block: usize,
    /// Root mean square of the stream entering the block.
    pub stream_rms: f64,
    /// Root mean square of the branch's output, alpha applied.
    pub branch_rms: f64,
    /// `branch_rms / stream_rms`.
    pub branch_ratio: f64,
    /// The branch multiplier alpha (1 where the block has none).
    pub alpha: f64,
}

/// `probe/jacobian.csv`: the input-output Jacobian's gain at a step
/// (see `probe::jacobian`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JacobianRow {
    /// Updates applied before the step.
    pub step: usize,
    /// `E|J^T v|^2 / E|v|^2` from the logits to the first layer's output.
    pub gain: f64,
}

/// The columns of `probe/jacobian.csv`, in [`JacobianRow`]'s order.
pub const JACOBIAN_COLUMNS: [&str; 2] = ["step", "gain"];

/// The columns of `probe/blocks.csv`, in [`BlockStatsRow`]'s order.
pub const BLOCK_STATS_COLUMNS: [&str; 6] = ["step", "block", "stream_rms", "branch_rms", "branch_ratio", "alpha"];

/// `x` rounded to `decimals` places: records show what is measured, not
/// float noise.
pub fn rounded(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    if x.is_finite() {
        (x * scale).round() / scale
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{read_rows as read, write_rows as write};

    #[test]
    fn rows_round_trip_and_bad_rows_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steps.csv");
        let rows = vec![
            StepRow { step: 0, epoch: 1, batch: 0, loss: 2.125, lr: 0.1, grad_norm: 1.5, clipped: false },
            StepRow { step: 1, epoch: 1, batch: 1, loss: f32::NAN, lr: 0.05, grad_norm: f32::NAN, clipped: true },
        ];
        write(&path, &STEPS_COLUMNS, &rows).unwrap();
        let text = "step,epoch,batch,loss,lr,grad_norm,clipped\n0,1,0,2.125,0.1,1.5,false\n1,1,1,NaN,0.05,NaN,true\n";
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let back: Vec<StepRow> = read(&path).unwrap();
        assert_eq!(back[0], rows[0]);
        assert!(back[1].loss.is_nan());
        write::<StepRow>(&path, &["step", "epoch", "batch", "loss"], &[]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "step,epoch,batch,loss\n");
        std::fs::write(&path, "step,epoch,batch,loss\n0,1,0,2.3\n1,1,x,2.3\n").unwrap();
        let err = read::<StepRow>(&path).unwrap_err().to_string();
        assert!(err.contains("steps.csv:3:"), "{err}");
    }

    /// Each record's columns are its row struct's fields, in order (what
    /// csv writes as the header when it names them itself).
    #[test]
    fn columns_are_the_row_fields() {
        fn header<T: Serialize>(row: T) -> String {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.serialize(row).unwrap();
            String::from_utf8(w.into_inner().unwrap()).unwrap().lines().next().unwrap().to_string()
        }
        assert_eq!(
            header(StepRow { step: 0, epoch: 1, batch: 0, loss: 0.0, lr: 0.1, grad_norm: 0.0, clipped: false }),
            STEPS_COLUMNS.join(",")
        );
        let epoch = EpochRow {
            epoch: 1,
            mean_loss: 0.0,
            train_accuracy: 0.0,
            valid_accuracy: 0.0,
            train_correct: 0,
            train_total: 0,
            valid_correct: 0,
            valid_total: 0,
        };
        assert_eq!(header(epoch), EPOCHS_COLUMNS.join(","));
        assert_eq!(header(TimingRow { epoch: 1, elapsed_s: 0.0 }), TIMINGS_COLUMNS.join(","));
        assert_eq!(header(PredictionRow { index: 0, label: 0, predicted: 0 }), PREDICTIONS_COLUMNS.join(","));
        let layer = LayerStatsRow {
            step: 0,
            layer: 1,
            w_mean: 0.0,
            w_std: 0.0,
            w_min: 0.0,
            w_max: 0.0,
            w_norm: 0.0,
            gw_norm: 0.0,
            gw_mean_abs: 0.0,
            gw_std: 0.0,
            gb_norm: 0.0,
            gb_mean_abs: 0.0,
            gb_std: 0.0,
            update_ratio: 0.0,
            pre_mean: 0.0,
            pre_std: 0.0,
            post_mean: 0.0,
            post_std: 0.0,
            post_zero_frac: 0.0,
            post_saturated_frac: 0.0,
            dead_units: 0,
            nonfinite: 0,
        };
        assert_eq!(header(layer), LAYER_STATS_COLUMNS.join(","));
        assert_eq!(histogram_columns(2).join(","), "step,kind,layer,min,max,nonfinite,c0,c1");
    }
}
