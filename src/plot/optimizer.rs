//! What the optimiser was told at each step: the learning rate the
//! schedule gave it (top), and the gradient's global norm before clipping
//! with the clipping bound and the steps where it fired (bottom).

use super::ticks::NiceAxis;
use super::{colour, finite, legend, log_range, nice_chart, padded_range, Figure, FAMILY};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The learning rate and the gradient norm of one variant, per step.
pub struct OptimizerChart {
    /// Title.
    pub title: String,
    /// Each step's learning rate.
    pub lr: Vec<f64>,
    /// Each step's gradient norm before clipping.
    pub grad_norm: Vec<f64>,
    /// Whether clipping fired at each step.
    pub clipped: Vec<bool>,
    /// Norm clipping's bound, drawn as a line.
    pub max_norm: Option<f64>,
}

impl Figure for OptimizerChart {
    fn size(&self) -> (u32, u32) {
        (900, 640)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(300);
        self.draw_lr(&top)?;
        self.draw_norm(&bottom)
    }
}

impl OptimizerChart {
    fn steps(&self) -> f64 {
        (self.lr.len().max(2) - 1) as f64
    }

    /// The learning rate, on a log axis when it spans two decades.
    fn draw_lr<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let points = finite(self.lr.iter().enumerate().map(|(k, &v)| (k as f64, v)));
        let (lo, hi) = points.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
        let y = if lo > 0.0 && hi / lo > 100.0 {
            let (lo, hi) = log_range(points.iter().map(|p| p.1));
            NiceAxis::log(lo, hi)
        } else {
            let (lo, hi) = padded_range(points.iter().map(|p| p.1).chain([0.0]));
            NiceAxis::new(lo, hi, 6)
        };
        let x = (NiceAxis::new(0.0, self.steps(), 10), "Step");
        let mut chart = nice_chart(area, &self.title, x, (y, "Learning rate"), 80)?;
        chart.draw_series(LineSeries::new(points, colour(0).stroke_width(2)))?;
        Ok(())
    }

    /// The gradient norm (log axis), the bound dashed, clipped steps marked.
    fn draw_norm<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let points: Vec<(f64, f64)> = finite(self.grad_norm.iter().enumerate().map(|(k, &v)| (k as f64, v)))
            .into_iter()
            .filter(|p| p.1 > 0.0)
            .collect();
        let (lo, hi) = log_range(points.iter().map(|p| p.1).chain(self.max_norm));
        let x = (NiceAxis::new(0.0, self.steps(), 10), "Step");
        let mut chart = nice_chart(area, "", x, (NiceAxis::log(lo, hi), "Gradient norm before clipping"), 80)?;
        let c = colour(1);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(1)))?
            .label("global L2 norm")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        if let Some(bound) = self.max_norm {
            let line = vec![(0.0, bound), (self.steps(), bound)];
            chart
                .draw_series(DashedLineSeries::new(line, 6, 4, BLACK.stroke_width(2)))?
                .label(format!("max_norm = {bound}"))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        }
        let fired: Vec<(f64, f64)> =
            points.iter().copied().filter(|p| self.clipped.get(p.0 as usize).copied().unwrap_or(false)).collect();
        if !fired.is_empty() {
            let share = 100.0 * fired.len() as f64 / self.clipped.len().max(1) as f64;
            let red = colour(3);
            chart
                .draw_series(fired.iter().map(|&p| Circle::new(p, 2, red.filled())))?
                .label(format!("clipped ({share:.0}% of steps)"))
                .legend(move |(x, y)| Circle::new((x + 10, y), 3, red.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        let note = "the update used the clipped gradient; the line is the gradient before clipping";
        area.draw(&Text::new(note, (90, 0), (FAMILY, 12).into_font().color(&RGBColor(90, 90, 90))))?;
        Ok(())
    }
}
