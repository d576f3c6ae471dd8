//! The residual blocks at a recorded step: the stream entering each block
//! against its branch's output (`probe/blocks.csv`), from the step's batch
//! activations, and the branch multiplier alpha as it trains.

use crate::nn::Model;
use crate::record::rows::BlockStatsRow;
use crate::train::Trainer;

/// Root mean square over the parts, each `rows x width` values long.
fn rms(parts: &[&[f32]]) -> f64 {
    let (sum, count) = parts.iter().fold((0.0f64, 0usize), |(s, n), p| {
        (s + p.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>(), n + p.len())
    });
    if count == 0 {
        f64::NAN
    } else {
        (sum / count as f64).sqrt()
    }
}

/// One row per block of `trainer`'s model at `step` (none for a plain
/// network).
pub fn block_rows(trainer: &Trainer, step: usize) -> Vec<BlockStatsRow> {
    let model: &Model = trainer.model();
    let part = |p: usize| -> Vec<&[f32]> {
        trainer.batch_activations().map(|(ws, rows)| &ws.outputs[p][..rows * ws.widths[p]]).collect()
    };
    let blocks = model.blocks();
    blocks
        .iter()
        .enumerate()
        .map(|(b, slots)| {
            let (stream_rms, branch_rms) = (rms(&part(slots.skip)), rms(&part(slots.branch)));
            BlockStatsRow {
                step,
                block: b + 1,
                stream_rms,
                branch_rms,
                branch_ratio: branch_rms / stream_rms,
                alpha: slots.alpha.map_or(1.0, |a| f64::from(a.get(&model.params))),
            }
        })
        .collect()
}
