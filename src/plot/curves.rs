//! Line charts over steps or epochs: loss, accuracy, gradient flow and
//! update ratios.

use super::ticks::NiceAxis;
use super::{colour, finite, legend, log_range, nice_chart, padded_range, Figure, FAMILY};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Running mean over a window of `k` (numpy's `convolve(..., mode='valid')`):
/// one point per full window, at the window's first index.
pub fn running_mean(values: &[f64], k: usize) -> Vec<(f64, f64)> {
    if k == 0 || values.len() < k {
        return Vec::new();
    }
    values.windows(k).enumerate().map(|(i, w)| (i as f64, w.iter().sum::<f64>() / k as f64)).collect()
}

/// The y-limit rule of the original: past 1000 iterations the axis runs to
/// 1.5 times the largest loss after iteration 1000, so the first spike does
/// not flatten the rest.
pub fn loss_y_max(losses: &[f64]) -> f64 {
    let tail = if losses.len() > 1000 { &losses[1000..] } else { losses };
    let max = tail.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
    if losses.len() > 1000 { 1.5 * max } else { 1.05 * max }.max(1e-6)
}

/// Minibatch loss of one or more series, against iterations, with the
/// epochs on a second axis below.
pub struct LossChart {
    /// Title.
    pub title: String,
    /// `(label, losses)`; one series draws its minibatch losses and running
    /// average, several draw only their running averages.
    pub series: Vec<(String, Vec<f64>)>,
    /// Iterations per epoch, for the epoch axis.
    pub steps_per_epoch: usize,
    /// Window of the running average (the original uses 20).
    pub window: usize,
}

impl Figure for LossChart {
    fn size(&self) -> (u32, u32) {
        (900, 520)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let n = self.series.iter().map(|s| s.1.len()).max().unwrap_or(0).max(1) as f64;
        let y_max = self.series.iter().map(|s| loss_y_max(&s.1)).fold(0.0, f64::max);
        let (main, axis) = root.split_vertically(460);
        let mut chart = ChartBuilder::on(&main)
            .caption(&self.title, (FAMILY, 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(NiceAxis::new(0.0, n, 10), NiceAxis::new(0.0, y_max, 10))?;
        chart.configure_mesh().x_desc("Iterations").y_desc("Loss").label_style((FAMILY, 14)).draw()?;
        let single = self.series.len() == 1;
        for (i, (label, losses)) in self.series.iter().enumerate() {
            let points = finite(losses.iter().enumerate().map(|(i, &l)| (i as f64, l.min(y_max))));
            if single {
                let light = colour(0).mix(0.35);
                chart
                    .draw_series(LineSeries::new(points, light))?
                    .label("Minibatch Loss")
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], light));
            }
            let c = if single { colour(1) } else { colour(i) };
            // Short runs: a window of at most a quarter of the losses, so the
            // average is still a curve (long runs keep the original's 20).
            let window = self.window.min(losses.len() / 4).max(1);
            let avg = finite(running_mean(losses, window).into_iter().map(|(x, y)| (x, y.min(y_max))));
            let name = if single { "Running Average".to_string() } else { format!("{label} (running average)") };
            chart
                .draw_series(LineSeries::new(avg, c.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        // The epoch axis: same pixel range as the iterations above.
        let epochs = n / self.steps_per_epoch.max(1) as f64;
        let mut epoch_axis = ChartBuilder::on(&axis)
            .margin_left(12)
            .margin_right(12)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(NiceAxis::new(0.0, epochs, epochs.ceil() as usize + 1), 0.0..1.0)?;
        epoch_axis
            .configure_mesh()
            .disable_y_axis()
            .disable_mesh()
            .x_desc("Epochs")
            .x_labels(epochs.ceil() as usize + 1)
            .label_style((FAMILY, 14))
            .draw()?;
        Ok(())
    }
}

/// A labelled line: `(label, points)`.
pub type Series = (String, Vec<(f64, f64)>);

/// A labelled accuracy history: `(label, [(epoch, train %, valid %)])`.
pub type AccuracySeries = (String, Vec<(f64, f64, f64)>);

/// Training and validation accuracy per epoch, for one or more variants.
pub struct AccuracyChart {
    /// Title.
    pub title: String,
    /// `(label, [(epoch, train %, valid %)])`.
    pub series: Vec<AccuracySeries>,
}

impl Figure for AccuracyChart {
    fn size(&self) -> (u32, u32) {
        (900, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let epochs = self.series.iter().flat_map(|s| s.1.iter().map(|p| p.0)).fold(1.0, f64::max);
        let (lo, hi) = padded_range(self.series.iter().flat_map(|s| s.1.iter().flat_map(|p| [p.1, p.2])));
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(
                NiceAxis::new(0.5, epochs + 0.5, (epochs as usize).max(3)),
                NiceAxis::new(lo.max(0.0), hi.min(100.5), 10),
            )?;
        chart
            .configure_mesh()
            .x_desc("Epoch")
            .y_desc("Accuracy (%)")
            .x_labels((epochs as usize + 1).max(3))
            .label_style((FAMILY, 14))
            .draw()?;
        let single = self.series.len() == 1;
        for (i, (label, points)) in self.series.iter().enumerate() {
            let (train_c, valid_c) = if single { (colour(0), colour(1)) } else { (colour(i), colour(i)) };
            let train = finite(points.iter().map(|p| (p.0, p.1)));
            let valid = finite(points.iter().map(|p| (p.0, p.2)));
            let (tl, vl) = if single {
                ("Training".to_string(), "Validation".to_string())
            } else {
                (format!("{label} training"), format!("{label} validation"))
            };
            chart
                .draw_series(LineSeries::new(train.clone(), train_c.stroke_width(2)))?
                .label(tl)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], train_c.stroke_width(2)));
            chart.draw_series(train.iter().map(|&p| Circle::new(p, 3, train_c.filled())))?;
            let dashed = valid_c.mix(if single { 1.0 } else { 0.6 });
            chart
                .draw_series(DashedLineSeries::new(valid.clone(), 6, 4, dashed.stroke_width(2)))?
                .label(vl)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], dashed.stroke_width(2)));
            chart.draw_series(valid.iter().map(|&p| TriangleMarker::new(p, 4, valid_c.filled())))?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    }
}

/// One line per layer (or per variant) against the step, on a log y axis:
/// gradient norms ("gradient flow") and update ratios.
pub struct LogLinesChart {
    /// Title.
    pub title: String,
    /// y-axis description.
    pub y_desc: String,
    /// `(label, [(step, value)])`.
    pub series: Vec<Series>,
}

impl Figure for LogLinesChart {
    fn size(&self) -> (u32, u32) {
        (900, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (lo, hi) = log_range(self.series.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
        draw_lines(root, (&self.title, &self.y_desc), &self.series, NiceAxis::log(lo, hi), true)
    }
}

/// One line per series against the step on a linear y axis: values that
/// may be zero or change sign (a residual branch's alpha).
pub struct LinesChart {
    /// Title.
    pub title: String,
    /// y-axis description.
    pub y_desc: String,
    /// `(label, [(step, value)])`.
    pub series: Vec<Series>,
}

impl Figure for LinesChart {
    fn size(&self) -> (u32, u32) {
        (900, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (lo, hi) = super::padded_range(self.series.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
        draw_lines(root, (&self.title, &self.y_desc), &self.series, NiceAxis::new(lo, hi, 8), false)
    }
}

/// The lines of [`LogLinesChart`] and [`LinesChart`] on `y` (only the
/// positive values when `positive_only`, for a log axis).
fn draw_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (title, y_desc): (&str, &str),
    series: &[Series],
    y: NiceAxis,
    positive_only: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let x_max = series.iter().flat_map(|s| s.1.iter().map(|p| p.0)).fold(1.0, f64::max);
    let x = (NiceAxis::new(0.0, x_max, 10), "Step");
    let mut chart = nice_chart(root, title, x, (y, y_desc), 80)?;
    // Thousands of steps per layer drawn raw overlap into one band:
    // the raw values faint, a running median over them in full colour
    // (as TensorBoard smooths), so layers can be told apart.
    let longest = series.iter().map(|s| s.1.len()).max().unwrap_or(0);
    let window = smoothing_window(longest);
    for (i, (label, points)) in series.iter().enumerate() {
        let c = colour(i);
        let points: Vec<(f64, f64)> =
            finite(points.iter().copied()).into_iter().filter(|p| !positive_only || p.1 > 0.0).collect();
        let line = if window > 1 {
            chart.draw_series(LineSeries::new(points.iter().copied(), c.mix(0.18)))?;
            running_median(&points, window)
        } else {
            points
        };
        chart
            .draw_series(LineSeries::new(line, c.stroke_width(2)))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    if window > 1 {
        let note = format!("lines: running median over {window} recorded steps; faint: every recorded step");
        root.draw(&Text::new(note, (90, 470), (FAMILY, 12).into_font().color(&RGBColor(90, 90, 90))))?;
    }
    Ok(())
}

/// The running median's window for a series of `n` points: none below 200
/// points, else about n / 60, odd.
pub fn smoothing_window(n: usize) -> usize {
    if n < 200 {
        1
    } else {
        (n / 60) | 1
    }
}

/// The median of each centred window of `window` points (shorter at the
/// ends), at each point's x: robust to the spikes of single steps.
pub fn running_median(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let half = window / 2;
    (0..points.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(points.len());
            let mut values: Vec<f64> = points[lo..hi].iter().map(|p| p.1).collect();
            values.sort_by(f64::total_cmp);
            (points[i].0, values[values.len() / 2])
        })
        .collect()
}

/// A band per group: `(label, [(x, mean, spread)])`.
pub type BandSeries = (String, Vec<(f64, f64, f64)>);

/// Mean curves with a shaded band of one standard deviation either side:
/// several seeds of each variant at a glance.
pub struct BandChart {
    /// Title.
    pub title: String,
    /// x-axis description.
    pub x_desc: String,
    /// y-axis description.
    pub y_desc: String,
    /// One band per variant.
    pub series: Vec<BandSeries>,
}

impl Figure for BandChart {
    fn size(&self) -> (u32, u32) {
        (900, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let xs = self.series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
        let (x_lo, x_hi) = padded_range(xs);
        let (lo, hi) = padded_range(self.series.iter().flat_map(|s| s.1.iter().flat_map(|p| [p.1 - p.2, p.1 + p.2])));
        let (x, y) = ((NiceAxis::new(x_lo, x_hi, 10), &*self.x_desc), (NiceAxis::new(lo, hi, 10), &*self.y_desc));
        let mut chart = nice_chart(root, &self.title, x, y, 70)?;
        draw_bands(&mut chart, &self.series, " (mean +- sd)")?;
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}

/// Draws each series as its mean line with markers (a single point is
/// still seen) over a band of one spread either side where it has any,
/// labelled `<label><suffix>` in the legend.
pub fn draw_bands<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>, series: &[BandSeries], suffix: &str) -> Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    for (i, (label, points)) in series.iter().enumerate() {
        let c = colour(i);
        let points: Vec<(f64, f64, f64)> =
            points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite() && p.2.is_finite()).collect();
        if points.iter().any(|p| p.2 > 0.0) {
            let mut band: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1 + p.2)).collect();
            band.extend(points.iter().rev().map(|p| (p.0, p.1 - p.2)));
            chart.draw_series(std::iter::once(Polygon::new(band, c.mix(0.2).filled())))?;
        }
        chart.draw_series(points.iter().map(|p| Circle::new((p.0, p.1), 4, c.filled())))?;
        chart
            .draw_series(LineSeries::new(points.iter().map(|p| (p.0, p.1)), c.stroke_width(2)))?
            .label(format!("{label}{suffix}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    Ok(())
}

/// A labelled per-layer series `(label, [(layer, value)], predicted)`.
pub type ProfileSeries = (String, Vec<(f64, f64)>, bool);

/// A per-layer profile, predicted against measured: one line per series
/// over the layers, on a log y axis; predicted series are dashed.
pub struct LayerProfileChart {
    /// Title.
    pub title: String,
    /// y-axis description.
    pub y_desc: String,
    /// `(label, [(layer, value)], predicted)`.
    pub series: Vec<ProfileSeries>,
}

impl Figure for LayerProfileChart {
    fn size(&self) -> (u32, u32) {
        (900, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let layers = self.series.iter().flat_map(|s| s.1.iter().map(|p| p.0)).fold(1.0, f64::max);
        let (lo, hi) = log_range(self.series.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
        let x = (NiceAxis::new(0.5, layers + 0.5, layers as usize), "Layer");
        let mut chart = nice_chart(root, &self.title, x, (NiceAxis::log(lo, hi), &self.y_desc), 80)?;
        for (i, (label, points, predicted)) in self.series.iter().enumerate() {
            let c = colour(i);
            let points: Vec<(f64, f64)> = finite(points.iter().copied()).into_iter().filter(|p| p.1 > 0.0).collect();
            let style = c.stroke_width(2);
            if *predicted {
                for pair in points.windows(2) {
                    chart.draw_series(DashedLineSeries::new(pair.iter().copied(), 8, 5, style))?;
                }
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 5, style)))?;
            } else {
                chart.draw_series(LineSeries::new(points.iter().copied(), style))?;
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
            }
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}

/// Mean and population standard deviation.
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    (mean, (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_median_ignores_a_spike() {
        let points: Vec<(f64, f64)> = (0..9).map(|i| (i as f64, if i == 4 { 100.0 } else { 1.0 })).collect();
        let m = running_median(&points, 3);
        assert!(m.iter().all(|p| p.1 == 1.0), "{m:?}");
        assert_eq!(m.len(), 9);
        assert_eq!(smoothing_window(100), 1);
        assert_eq!(smoothing_window(6315), 105);
    }

    #[test]
    fn running_mean_has_one_point_per_full_window() {
        let r = running_mean(&[1.0, 2.0, 3.0, 4.0], 2);
        assert_eq!(r, vec![(0.0, 1.5), (1.0, 2.5), (2.0, 3.5)]);
        assert!(running_mean(&[1.0], 2).is_empty());
    }

    #[test]
    fn y_limit_ignores_the_first_thousand_iterations() {
        let mut losses = vec![5.0; 1000];
        losses.extend(vec![0.2; 500]);
        assert!((loss_y_max(&losses) - 0.3).abs() < 1e-12);
        assert!((loss_y_max(&[2.0, 1.0]) - 2.1).abs() < 1e-12);
    }
}
