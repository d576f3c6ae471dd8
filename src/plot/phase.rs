//! Draws theory's order-to-chaos phase diagram ([`PhaseDiagram`]): chi_1
//! on a log colour scale, the edge of chaos chi_1 = 1 through it.

use super::grid::{grid_position, Cell, ColourScale, HeatmapChart};
use super::ticks::significant;
use super::{save, Written};
use crate::theory::diagram::PhaseDiagram;
use anyhow::Result;
use std::path::Path;

/// Draws `diagram` as `<dir>/<name>.svg` and `.png`.
pub fn draw_phase_diagram(diagram: &PhaseDiagram, dir: &Path, name: &str) -> Result<Written> {
    let cells: Vec<Vec<Cell>> = diagram
        .chi1
        .iter()
        .map(|row| {
            // No fixed point: the variance explodes, marked like a divergence.
            row.iter().map(|&chi1| Cell::Value { value: chi1.min(1e3), diverged: !chi1.is_finite() }).collect()
        })
        .collect();
    let weights = &diagram.weight_variances;
    // The edge of chaos through the rows (row y centred at y + 0.5).
    let edge = diagram
        .critical
        .iter()
        .enumerate()
        .filter_map(|(y, (_, w))| w.and_then(|w| grid_position(weights, w)).map(|x| (x, y as f64 + 0.5)))
        .collect();
    let chart = HeatmapChart {
        title: format!("chi_1 of {:?}: ordered (< 1) and chaotic (> 1)", diagram.activation),
        x_desc: "weight variance sigma_w^2".into(),
        y_desc: "bias variance sigma_b^2".into(),
        value_desc: "chi_1 at the fixed point (log scale)".into(),
        x_labels: weights.iter().map(|&w| significant(w, 4)).collect(),
        y_labels: diagram.bias_variances.iter().map(|&b| significant(b, 4)).collect(),
        cells,
        scale: ColourScale { lo: 0.1, hi: 10.0, log: true },
        curves: vec![("chi_1 = 1".into(), edge)],
    };
    save(&chart, dir, name)
}
