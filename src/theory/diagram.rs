//! The order-to-chaos phase diagram of an activation (Poole et al. 2016,
//! Fig. 2; Schoenholz et al. 2017, Fig. 1): chi_1 at the fixed point over a
//! grid of weight variance sigma_w^2 and bias variance sigma_b^2.

use super::meanfield::MeanField;
use crate::nn::Activation;
use crate::plot::grid::{grid_position, Cell, ColourScale, HeatmapChart};
use crate::plot::ticks::significant;
use crate::plot::{save, Written};
use anyhow::Result;
use std::path::Path;

/// The sigma_w^2 across the diagram.
pub fn weight_variances() -> Vec<f64> {
    (1..=20).map(|i| 0.25 * i as f64).collect()
}

/// The sigma_b^2 up the diagram.
pub const BIAS_VARIANCES: [f64; 8] = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0];

/// Per sigma_b^2, the critical sigma_w^2 (none when there is none in range).
pub type CriticalLine = Vec<(f64, Option<f64>)>;

/// Draws the diagram of `activation` as `<dir>/<name>.svg` and `.png`, and
/// returns it with the critical sigma_w^2 of each sigma_b^2.
pub fn phase_diagram(activation: Activation, dir: &Path, name: &str) -> Result<(Written, CriticalLine)> {
    let field = MeanField::new(activation);
    let weights = weight_variances();
    let cells: Vec<Vec<Cell>> = BIAS_VARIANCES
        .iter()
        .map(|&b| {
            weights
                .iter()
                .map(|&w| {
                    let chi1 = field.chi1_at(w, b);
                    // No fixed point: the variance explodes, marked like a divergence.
                    Cell::Value { value: chi1.min(1e3), diverged: !chi1.is_finite() }
                })
                .collect()
        })
        .collect();
    let critical: CriticalLine = BIAS_VARIANCES.iter().map(|&b| (b, field.critical_weight_variance(b))).collect();
    // The edge of chaos through the rows (row y centred at y + 0.5).
    let edge = critical
        .iter()
        .enumerate()
        .filter_map(|(y, (_, w))| w.and_then(|w| grid_position(&weights, w)).map(|x| (x, y as f64 + 0.5)))
        .collect();
    let chart = HeatmapChart {
        title: format!("chi_1 of {activation:?}: ordered (< 1) and chaotic (> 1)"),
        x_desc: "weight variance sigma_w^2".into(),
        y_desc: "bias variance sigma_b^2".into(),
        value_desc: "chi_1 at the fixed point (log scale)".into(),
        x_labels: weights.iter().map(|&w| significant(w, 4)).collect(),
        y_labels: BIAS_VARIANCES.iter().map(|&b| significant(b, 4)).collect(),
        cells,
        scale: ColourScale { lo: 0.1, hi: 10.0, log: true },
        curves: vec![("chi_1 = 1".into(), edge)],
    };
    Ok((save(&chart, dir, name)?, critical))
}
