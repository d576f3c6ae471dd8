//! The rows of a variant's CSV records (`steps.csv`, `epochs.csv`,
//! `timings.csv`, `test_predictions.csv`), written and read back through
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
            StepRow { step: 0, epoch: 1, batch: 0, loss: 2.125 },
            StepRow { step: 1, epoch: 1, batch: 1, loss: f32::NAN },
        ];
        write(&path, &["step", "epoch", "batch", "loss"], &rows).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "step,epoch,batch,loss\n0,1,0,2.125\n1,1,1,NaN\n");
        let back: Vec<StepRow> = read(&path).unwrap();
        assert_eq!(back[0], rows[0]);
        assert!(back[1].loss.is_nan());
        write::<StepRow>(&path, &["step", "epoch", "batch", "loss"], &[]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "step,epoch,batch,loss\n");
        std::fs::write(&path, "step,epoch,batch,loss\n0,1,0,2.3\n1,1,x,2.3\n").unwrap();
        let err = read::<StepRow>(&path).unwrap_err().to_string();
        assert!(err.contains("steps.csv:3:"), "{err}");
    }
}
