//! The verdicts only a residual network can earn, from `probe/blocks.csv`'s
//! rows: a stream that explodes over the blocks, and branches that start
//! switched off and are still off at the end.

use super::first_four;
use crate::record::rows::BlockStatsRow;
use crate::verdict::{Verdict, VerdictKind};

/// The stream's RMS growing by more than this from the first block to the
/// last at the first step (a 10^4 growth of its variance): each block adds
/// its branch's variance, so unscaled branches make it grow geometrically.
pub const EXPLODING_STREAM: f64 = 100.0;
/// A branch whose output is below this share of the stream contributes
/// nothing the float32 sum can keep (2^-24 is f32's relative precision;
/// this is a little above it).
pub const BRANCH_OFF_RATIO: f64 = 1e-7;

/// The block verdicts; none for a plain network (no rows).
pub(super) fn block_verdicts(rows: &[BlockStatsRow]) -> Vec<Verdict> {
    let (Some(first), Some(last)) = (rows.iter().map(|r| r.step).min(), rows.iter().map(|r| r.step).max()) else {
        return Vec::new();
    };
    let at = |step: usize| -> Vec<&BlockStatsRow> { rows.iter().filter(|r| r.step == step).collect() };
    let mut out = Vec::new();
    let start = at(first);
    if let (Some(a), Some(b)) = (start.first(), start.last()) {
        let growth = b.stream_rms / a.stream_rms;
        if growth > EXPLODING_STREAM || (b.stream_rms.is_finite() && !a.stream_rms.is_finite()) {
            out.push(Verdict::new(
                VerdictKind::ExplodingStream,
                format!(
                    "exploding stream: at step {first} the residual stream's RMS grows {growth:.0}x from block {} ({:.2e}) to block {} ({:.2e}); each block adds its branch's variance, so scale the branches down (Fixup, SkipInit, alpha below 1/sqrt(blocks)) or normalise inside them",
                    a.block, a.stream_rms, b.block, b.stream_rms
                ),
            ));
        }
    }
    let off = |r: &&&BlockStatsRow| r.branch_ratio.is_finite() && r.branch_ratio < BRANCH_OFF_RATIO;
    let off_at_start: Vec<usize> = start.iter().filter(off).map(|r| r.block).collect();
    let still: Vec<String> = at(last)
        .iter()
        .filter(off)
        .filter(|r| off_at_start.contains(&r.block) && last > first)
        .map(|r| format!("block {} (alpha {})", r.block, r.alpha))
        .collect();
    if !still.is_empty() {
        out.push(Verdict::new(
            VerdictKind::BranchesOff,
            format!(
                "branches off: {} contributed nothing at step {first} and still nothing at step {last} (|branch| / |stream| below {BRANCH_OFF_RATIO:.0e}); a multiplier at 0 that is not trained, or zero branch weights that receive no gradient, keep a block an identity",
                first_four(&still)
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: usize, block: usize, stream_rms: f64, branch_rms: f64, alpha: f64) -> BlockStatsRow {
        BlockStatsRow { step, block, stream_rms, branch_rms, branch_ratio: branch_rms / stream_rms, alpha }
    }

    #[test]
    fn a_geometric_stream_explodes_and_a_fixed_zero_alpha_stays_off() {
        // Doubling per block: 2^5 = 32x from block 1 to 6 is within bounds, 2^7 = 128x to block 8 is not.
        let mut rows: Vec<BlockStatsRow> = (1..=6).map(|b| row(0, b, 2f64.powi(b as i32), 1.0, 1.0)).collect();
        assert!(block_verdicts(&rows).is_empty(), "{:?}", block_verdicts(&rows));
        rows.extend((7..=8).map(|b| row(0, b, 2f64.powi(b as i32), 1.0, 1.0)));
        let kinds: Vec<VerdictKind> = block_verdicts(&rows).iter().map(|v| v.kind).collect();
        assert_eq!(kinds, [VerdictKind::ExplodingStream]);
        // ReZero's zero alpha at step 0 that trains is not off; one that stays 0 is.
        let trained = [row(0, 1, 1.0, 0.0, 0.0), row(90, 1, 1.0, 0.05, 0.02)];
        assert!(block_verdicts(&trained).is_empty());
        let stuck =
            [row(0, 1, 1.0, 0.0, 0.0), row(90, 1, 1.3, 0.0, 0.0), row(0, 2, 1.0, 0.2, 1.0), row(90, 2, 1.3, 0.3, 1.0)];
        let verdicts = block_verdicts(&stuck);
        assert_eq!(verdicts.len(), 1);
        assert!(
            verdicts[0].message.contains("block 1 (alpha 0)") && !verdicts[0].message.contains("block 2"),
            "{}",
            verdicts[0].message
        );
    }
}
