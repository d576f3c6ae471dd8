//! The learning-rate transfer chart Tensor Programs V draws (Yang et al.
//! 2022, Fig. 1): one panel per variant, training loss (log scale) against
//! log2 of the learning rate, one curve per width, each width's optimum
//! marked. Optima that line up vertically are a rate that transfers.

use super::{colour, legend, Figure, FAMILY};
use crate::lr_transfer::Transfer;
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The chart of every variant's transfer, side by side on one loss scale.
pub struct TransferChart {
    /// The variants' transfers.
    pub transfers: Vec<Transfer>,
}

impl TransferChart {
    /// Every (log2 lr, loss) that is drawn, to fix the shared axes.
    fn extent(&self) -> ((f64, f64), (f64, f64)) {
        let points = self.transfers.iter().flat_map(|t| t.curves.iter().flat_map(|(_, c)| c.iter()));
        let (xs, ys): (Vec<f64>, Vec<Option<f64>>) = points.map(|&(lr, l)| (lr.log2(), l)).unzip();
        let x = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let x = if x.0.is_finite() { (x.0 - 0.5, x.1 + 0.5) } else { (-1.0, 1.0) };
        (x, super::log_range(ys.into_iter().flatten()))
    }
}

impl Figure for TransferChart {
    fn size(&self) -> (u32, u32) {
        (520 * self.transfers.len().max(1) as u32 + 40, 500)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let root = root.titled("Learning-rate transfer: training loss against log2 lr, per width", (FAMILY, 18))?;
        let panels = root.split_evenly((1, self.transfers.len().max(1)));
        let ((x_lo, x_hi), (y_lo, y_hi)) = self.extent();
        for (i, (panel, t)) in panels.iter().zip(&self.transfers).enumerate() {
            let drift =
                t.octaves_per_doubling.map_or(String::new(), |s| format!(": optimum {s:+.2} octaves per doubling"));
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("{}{drift}", t.group), (FAMILY, 16))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(x_lo..x_hi, (y_lo..y_hi).log_scale())?;
            chart
                .configure_mesh()
                .x_desc("log2 learning rate")
                .y_desc(if i == 0 { "training loss (last epoch)" } else { "" })
                .label_style((FAMILY, 12))
                .light_line_style(TRANSPARENT)
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{v:.2}"))
                .draw()?;
            draw_curves(&mut chart, t, y_hi)?;
            if i == 0 {
                legend(&mut chart, SeriesLabelPosition::UpperRight)?;
            }
        }
        Ok(())
    }
}

/// One panel's curves, each width's optimum as a ringed star and its
/// diverged rates as crosses along the top.
fn draw_curves<DB: DrawingBackend, CT>(chart: &mut ChartContext<'_, DB, CT>, t: &Transfer, top: f64) -> Result<()>
where
    DB::ErrorType: 'static,
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    for (j, (width, curve)) in t.curves.iter().enumerate() {
        let c = colour(j);
        let finite: Vec<(f64, f64)> = curve.iter().filter_map(|&(lr, l)| l.map(|l| (lr.log2(), l))).collect();
        chart
            .draw_series(LineSeries::new(finite.iter().copied(), c.stroke_width(2)))?
            .label(format!("width {width}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
        chart.draw_series(finite.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
        let diverged = curve.iter().filter(|(_, l)| l.is_none()).map(|&(lr, _)| (lr.log2(), top / 1.2));
        chart.draw_series(diverged.map(|p| Cross::new(p, 5, c.stroke_width(2))))?;
        if let Some(o) = t.optima.iter().find(|o| o.width == *width) {
            let at = (o.lr.log2(), o.loss);
            chart.draw_series([Circle::new(at, 9, c.stroke_width(2)), Circle::new(at, 5, BLACK.filled())])?;
        }
    }
    Ok(())
}
