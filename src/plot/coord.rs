//! The coord check's chart, as `mup`'s `plot_coord_data` draws it: for one
//! variant, one log-log panel per step, mean |x| of each layer's output
//! against the width, one line per layer; flat lines are a parametrisation
//! that holds.

use super::{colour, legend, Figure, FAMILY};
use crate::coord_check::{seed_means, CoordRow};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

/// One layer's curve in one panel: its label and (log2 width, mean l1) points.
pub type LayerCurve = (String, Vec<(f64, f64)>);

/// One variant's coord-check chart.
pub struct CoordChart {
    /// The title: the variant and its verdict.
    pub title: String,
    /// Per step (from 1), each layer's (name, [(log2 width, mean l1)]).
    pub steps: Vec<Vec<LayerCurve>>,
}

impl CoordChart {
    /// The chart of `variant`'s rows, titled `title`.
    pub fn new(rows: &[CoordRow], variant: &str, title: String) -> Self {
        let means = seed_means(rows);
        let last = rows.iter().map(|r| r.step).max().unwrap_or(0);
        let steps = (1..=last)
            .map(|step| {
                means
                    .iter()
                    .filter(|((v, _, s), _)| v == variant && *s == step)
                    .map(|((_, layer, _), pts)| {
                        let kind = rows.iter().find(|r| &r.layer == layer).map_or("", |r| r.kind.as_str());
                        (format!("{layer} ({kind})"), pts.iter().map(|&(w, l)| ((w as f64).log2(), l)).collect())
                    })
                    .collect()
            })
            .collect();
        CoordChart { title, steps }
    }
}

impl Figure for CoordChart {
    fn size(&self) -> (u32, u32) {
        (380 * self.steps.len().max(1) as u32 + 40, 460)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let root = root.titled(&self.title, (FAMILY, 18))?;
        let panels = root.split_evenly((1, self.steps.len().max(1)));
        let all = self.steps.iter().flatten().flat_map(|(_, pts)| pts.iter().copied());
        let (xs, ys): (Vec<f64>, Vec<f64>) = all.filter(|p| p.1 > 0.0 && p.1.is_finite()).unzip();
        let (lo, hi) = (xs.iter().copied().fold(f64::INFINITY, f64::min), xs.iter().copied().fold(0.0, f64::max));
        let x = (lo - 0.3)..(hi + 0.3);
        let ticks = (hi - lo).round() as usize + 1;
        let y = super::log_range(ys);
        for (i, (panel, layers)) in panels.iter().zip(&self.steps).enumerate() {
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("step {}", i + 1), (FAMILY, 16))
                .margin(8)
                .x_label_area_size(40)
                .y_label_area_size(55)
                .build_cartesian_2d(x.clone(), (y.0..y.1).log_scale())?;
            chart
                .configure_mesh()
                .x_desc("width (log scale)")
                .x_labels(ticks.min(12))
                .y_desc(if i == 0 { "mean |x|" } else { "" })
                .label_style((FAMILY, 12))
                .x_label_formatter(&|v| format!("{:.0}", v.exp2()))
                .y_label_formatter(&|v| format!("{v:.1e}"))
                .draw()?;
            for (j, (layer, pts)) in layers.iter().enumerate() {
                let style = colour(j).stroke_width(2);
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), style))?
                    .label(layer.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour(j).stroke_width(2)));
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour(j).filled())))?;
            }
            if i == 0 {
                legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
            }
        }
        Ok(())
    }
}
