//! Where a variant's training loop stands, as it runs: the loop's own
//! value, apart from the [`Checkpoint`] that is saved of it at an epoch's
//! end or a stop (which adds the variant and the numerics).

use super::checkpoint::Checkpoint;
use super::EpochMetrics;

/// The loop's position and running sums.
#[derive(Clone, Debug, PartialEq)]
pub struct Cursor {
    /// The epoch in progress, 1-based (`epochs + 1` once all are done).
    pub epoch: usize,
    /// Steps of that epoch already taken.
    pub step: usize,
    /// Updates applied in all.
    pub steps_taken: usize,
    /// Sum of this epoch's losses so far.
    pub loss_sum: f64,
    /// Loss of the very first batch (NaN before it).
    pub initial_loss: f64,
    /// Wall-clock seconds trained, as of the last epoch's end or stop.
    pub elapsed_s: f64,
    /// The last finished epoch's metrics.
    pub last_epoch: Option<EpochMetrics>,
}

impl Cursor {
    /// Before the first step.
    pub fn start() -> Self {
        Cursor {
            epoch: 1,
            step: 0,
            steps_taken: 0,
            loss_sum: 0.0,
            initial_loss: f64::NAN,
            elapsed_s: 0.0,
            last_epoch: None,
        }
    }

    /// Where `checkpoint` stood.
    pub fn resumed(checkpoint: &Checkpoint) -> Self {
        Cursor {
            epoch: checkpoint.epoch,
            step: checkpoint.step,
            steps_taken: checkpoint.steps_taken,
            loss_sum: checkpoint.loss_sum,
            initial_loss: checkpoint.initial_loss,
            elapsed_s: checkpoint.elapsed_s,
            last_epoch: checkpoint.last_epoch.clone(),
        }
    }

    /// The next epoch's start, after `metrics` of the one just finished.
    pub fn next_epoch(&self, metrics: &EpochMetrics) -> Self {
        Cursor {
            epoch: self.epoch + 1,
            step: 0,
            loss_sum: 0.0,
            elapsed_s: metrics.elapsed_s,
            last_epoch: Some(metrics.clone()),
            ..self.clone()
        }
    }

    /// The checkpoint of `variant` at this position, its parameters
    /// computed under this machine's numerics.
    pub fn checkpoint(&self, variant: &str) -> Checkpoint {
        Checkpoint {
            variant: variant.into(),
            epoch: self.epoch,
            step: self.step,
            steps_taken: self.steps_taken,
            loss_sum: self.loss_sum,
            initial_loss: self.initial_loss,
            elapsed_s: self.elapsed_s,
            last_epoch: self.last_epoch.clone(),
            numerics: crate::nn::matmul::numerics_fingerprint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_trips_the_cursor() {
        let cursor = Cursor {
            epoch: 3,
            step: 17,
            steps_taken: 99,
            loss_sum: 4.5,
            initial_loss: 2.3,
            elapsed_s: 12.5,
            ..Cursor::start()
        };
        let checkpoint = cursor.checkpoint("kaiming");
        assert_eq!((checkpoint.variant.as_str(), checkpoint.elapsed_s), ("kaiming", 12.5));
        assert_eq!(checkpoint.numerics, crate::nn::matmul::numerics_fingerprint());
        assert_eq!(
            Cursor { initial_loss: 2.3, ..Cursor::resumed(&checkpoint) },
            Cursor { initial_loss: 2.3, ..cursor }
        );
    }
}
