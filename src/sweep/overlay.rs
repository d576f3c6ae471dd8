//! Theory drawn over a sweep's phase diagram: for plain networks over depth
//! and a weight scale, the mean-field depth scales (Schoenholz et al. 2017);
//! for residual networks over blocks and a weight scale, where the predicted
//! backpropagated gradient has grown tenfold and a hundredfold (Yang &
//! Schoenholz 2017). Each from the `theory.json` the points' runs wrote.

use super::report::Dimension;
use super::{Point, SweepDir, SweepSpec};
use crate::plot::grid::grid_position;
use crate::record::dir::THEORY;

/// A named curve in the diagram's cell coordinates.
type Curve = (String, Vec<(f64, f64)>);

/// The theory curves for `group`'s diagram over `dimensions` (depth or
/// blocks up, a weight scale across); none for other axes.
pub(super) fn theory_curves(
    sweep: &SweepDir,
    spec: &SweepSpec,
    points: &[Point],
    dimensions: &[Dimension],
    group: &str,
) -> Vec<Curve> {
    let (y_dim, x_dim) = (&dimensions[0], &dimensions[1]);
    let weight_scale = x_dim.title.ends_with("weight_init.gain") || x_dim.title.ends_with("weight_init.std");
    let ascending = |d: &Dimension| d.numbers.clone().filter(|n| n.windows(2).all(|w| w[0] < w[1]));
    let Some(depths) = ascending(y_dim).filter(|_| weight_scale) else { return Vec::new() };
    if y_dim.title == "model.depth" {
        depth_scale_curves(sweep, spec, points, (y_dim, x_dim), &depths, group)
    } else if spec.axes[y_dim.axis].keys[0].ends_with("residual.blocks") {
        gradient_curves(sweep, spec, points, (y_dim, x_dim), &depths, group)
    } else {
        Vec::new()
    }
}

/// The prediction the first run of variant `group` in `point` wrote, if it did.
fn written_theory(sweep: &SweepDir, point: &Point, group: &str) -> Option<crate::theory::VariantPrediction> {
    let unit = point.experiment.runs().into_iter().find(|u| u.group == group)?;
    crate::record::read::read_theory(&sweep.run_dir(point).join(&unit.variant.name).join(THEORY)).ok().flatten()
}

/// Mean-field theory's depth scales over a phase diagram of depth (up)
/// against a weight scale (across), as Schoenholz et al. 2017 Fig. 5 draw
/// them: xi_c and 6 xi_c, the depth to which they find networks trainable.
/// Each column's xi_c comes from the prediction a run of the column wrote
/// (`theory.json`; only the hidden layers' sigma_w^2 and sigma_b^2
/// matter); none when the network is not uniform or a column has not run.
fn depth_scale_curves(
    sweep: &SweepDir,
    spec: &SweepSpec,
    points: &[Point],
    (_, x_dim): (&Dimension, &Dimension),
    depths: &[f64],
    group: &str,
) -> Vec<Curve> {
    let mut xi_c = Vec::new();
    for x in 0..x_dim.labels.len() {
        let column = points.iter().filter(|p| spec.positions(p.index)[x_dim.axis] == x);
        let Some(theory) = column.filter_map(|p| written_theory(sweep, p, group)).next() else { return Vec::new() };
        let Some(fixed) = theory.fixed_point else { return Vec::new() };
        xi_c.push((x as f64 + 0.5, fixed.xi_c));
    }
    let top = depths.len() as f64;
    let curve = |factor: f64| -> Vec<(f64, f64)> {
        xi_c.iter()
            .filter_map(|&(x, xi)| {
                let depth = factor * xi;
                if depth > depths[depths.len() - 1] {
                    Some((x, top))
                } else {
                    grid_position(depths, depth).map(|y| (x, y))
                }
            })
            .collect()
    };
    vec![("xi_c".into(), curve(1.0)), ("6 xi_c".into(), curve(6.0))]
}

/// Norm factors of the backpropagated gradient whose contours are drawn.
const GRADIENT_GROWTH: [f64; 2] = [10.0, 100.0];

/// Over a diagram of residual blocks (up) against a weight scale (across):
/// per column, the depth at which theory's backpropagated gradient, from
/// the output to the first block's input, has grown by each factor of
/// [`GRADIENT_GROWTH`] (the product of the blocks' `gradient_growth`, a
/// squared-norm factor each). Yang & Schoenholz 2017 (arXiv 1712.08969)
/// find trainability of tanh residual networks set by this
/// gradient explosion rather than by a depth scale. Between the depths of
/// two rows the log growth is interpolated linearly; a column without a
/// prediction is left out.
fn gradient_curves(
    sweep: &SweepDir,
    spec: &SweepSpec,
    points: &[Point],
    (y_dim, x_dim): (&Dimension, &Dimension),
    depths: &[f64],
    group: &str,
) -> Vec<Curve> {
    // Per (column, row), log10 of the gradient's norm growth, one theory
    // file read per point.
    let mut growth = std::collections::BTreeMap::new();
    for p in points {
        let Some(theory) = written_theory(sweep, p, group).filter(|t| !t.blocks.is_empty()) else { continue };
        let g = theory.blocks.iter().map(|b| b.gradient_growth.log10()).sum::<f64>() / 2.0;
        let at = spec.positions(p.index);
        if g.is_finite() {
            growth.entry((at[x_dim.axis], at[y_dim.axis])).or_insert(g);
        }
    }
    // Per column, (depth, growth) per row that has one.
    let columns: Vec<(f64, Vec<(f64, f64)>)> = (0..x_dim.labels.len())
        .map(|x| {
            let rows = (0..depths.len()).filter_map(|y| growth.get(&(x, y)).map(|&g| (depths[y], g)));
            (x as f64 + 0.5, rows.collect())
        })
        .collect();
    let top = depths.len() as f64;
    GRADIENT_GROWTH
        .iter()
        .map(|&factor| {
            let level = factor.log10();
            let curve = columns
                .iter()
                .filter(|(_, rows)| !rows.is_empty())
                .filter_map(|(x, rows)| match crossing(rows, level) {
                    Crossing::Below => Some((*x, 0.0)),
                    Crossing::At(depth) => grid_position(depths, depth).map(|y| (*x, y)),
                    Crossing::Never => Some((*x, top)),
                })
                .collect();
            (format!("gradient x{factor}"), curve)
        })
        .collect()
}

/// Where a column's growth first reaches a level.
#[derive(Debug, PartialEq)]
enum Crossing {
    /// Already at the shallowest row.
    Below,
    /// At this depth, interpolated between two rows.
    At(f64),
    /// Not within the rows.
    Never,
}

/// Where `rows` ((depth, growth), depth ascending) first reach `level`.
fn crossing(rows: &[(f64, f64)], level: f64) -> Crossing {
    match rows.iter().position(|&(_, g)| g >= level) {
        None => Crossing::Never,
        Some(0) => Crossing::Below,
        Some(i) => {
            let ((d0, g0), (d1, g1)) = (rows[i - 1], rows[i]);
            Crossing::At(d0 + (d1 - d0) * (level - g0) / (g1 - g0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crossing_is_interpolated_between_the_rows_that_bracket_it() {
        let rows = [(10.0, 0.2), (20.0, 0.6), (50.0, 1.8)];
        assert_eq!(crossing(&rows, 1.0), Crossing::At(20.0 + 30.0 * 0.4 / 1.2));
        assert_eq!(crossing(&rows, 0.1), Crossing::Below);
        assert_eq!(crossing(&rows, 2.0), Crossing::Never);
        assert_eq!(crossing(&rows, 0.6), Crossing::At(20.0));
    }
}
