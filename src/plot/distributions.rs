//! Distributions: weight densities with a kernel-density curve, per-layer
//! histograms at the start and end of training (after Glorot & Bengio
//! 2010, Figs. 6 and 7), and weight histograms over time (as TensorBoard's
//! histogram dashboard stacks them).

use super::ticks::{significant, NiceAxis};
use super::{colour, legend, nice_chart, padded_range, Figure, FAMILY};
use crate::record::rows::HistogramRow;
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Bars of the density histogram.
const BARS: usize = 60;
/// Grid points of the kernel-density curve.
const GRID: usize = 400;

/// A Gaussian kernel-density estimate of `values` on `GRID` points of
/// `[lo, hi]`, with Scott's bandwidth `h = sd * n^(-1/5)` (Scott 1992,
/// Eq. 6.42, for one dimension). The values are first binned on the grid
/// (a binned KDE, Silverman 1982), which keeps it fast for 400,000 weights.
pub fn kde(values: &[f32], lo: f64, hi: f64) -> Vec<(f64, f64)> {
    let n = values.iter().filter(|v| v.is_finite()).count() as f64;
    if n == 0.0 || hi <= lo {
        return Vec::new();
    }
    let step = (hi - lo) / (GRID - 1) as f64;
    let mut counts = vec![0.0f64; GRID];
    let (mut sum, mut sq) = (0.0, 0.0);
    for &v in values.iter().filter(|v| v.is_finite()) {
        let x = f64::from(v);
        sum += x;
        sq += x * x;
        let i = ((x - lo) / step).round();
        if (0.0..GRID as f64).contains(&i) {
            counts[i as usize] += 1.0;
        }
    }
    let mean = sum / n;
    let sd = (sq / n - mean * mean).max(0.0).sqrt();
    let h = (sd * n.powf(-0.2)).max(step * 0.5);
    let reach = (4.0 * h / step).ceil() as isize;
    let norm = 1.0 / (n * h * (2.0 * std::f64::consts::PI).sqrt());
    (0..GRID)
        .map(|i| {
            let mut d = 0.0;
            for j in (i as isize - reach).max(0)..(i as isize + reach + 1).min(GRID as isize) {
                let u = (i as isize - j) as f64 * step / h;
                d += counts[j as usize] * (-0.5 * u * u).exp();
            }
            (lo + i as f64 * step, d * norm)
        })
        .collect()
}

/// Each layer's weight distribution on one chart: a density histogram and
/// a kernel-density curve per layer, legend "Layer 1".."Layer n".
pub struct WeightDistributionChart {
    /// Title.
    pub title: String,
    /// One weight tensor per layer.
    pub layers: Vec<Vec<f32>>,
    /// The x range; `None` fits the weights.
    pub x_range: Option<(f64, f64)>,
}

/// Several variants' weight distributions side by side on one shared x
/// axis, so that their scales compare at a glance (a narrow N(0, 0.001)
/// spike beside Kaiming's uniform blocks).
pub struct WeightComparisonChart {
    /// Title.
    pub title: String,
    /// One chart per variant (their `x_range` is overridden).
    pub panels: Vec<WeightDistributionChart>,
}

impl Figure for WeightComparisonChart {
    fn size(&self) -> (u32, u32) {
        (700 * self.panels.len().max(1) as u32, 520)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let root = root.titled(&self.title, (FAMILY, 22))?;
        let range = padded_range(
            self.panels.iter().flat_map(|p| p.layers.iter().flat_map(|w| w.iter().map(|&v| f64::from(v)))),
        );
        for (area, panel) in root.split_evenly((1, self.panels.len().max(1))).iter().zip(&self.panels) {
            let shared = WeightDistributionChart {
                title: panel.title.clone(),
                layers: panel.layers.clone(),
                x_range: Some(range),
            };
            shared.draw(area)?;
        }
        Ok(())
    }
}

impl Figure for WeightDistributionChart {
    fn size(&self) -> (u32, u32) {
        (900, 500)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let (lo, hi) = self
            .x_range
            .unwrap_or_else(|| padded_range(self.layers.iter().flat_map(|w| w.iter().map(|&v| f64::from(v)))));
        let width = (hi - lo) / BARS as f64;
        let mut bars = Vec::new();
        let mut curves = Vec::new();
        let mut y_max: f64 = 0.0;
        for w in &self.layers {
            let mut counts = vec![0usize; BARS];
            for &v in w.iter().filter(|v| v.is_finite()) {
                counts[(((f64::from(v) - lo) / width) as usize).min(BARS - 1)] += 1;
            }
            let density: Vec<f64> = counts.iter().map(|&c| c as f64 / (w.len() as f64 * width)).collect();
            let curve = kde(w, lo, hi);
            y_max = y_max
                .max(density.iter().copied().fold(0.0, f64::max))
                .max(curve.iter().map(|p| p.1).fold(0.0, f64::max));
            bars.push(density);
            curves.push(curve);
        }
        let (x, y) = ((NiceAxis::new(lo, hi, 10), "Weight value"), (NiceAxis::new(0.0, y_max * 1.08, 10), "Density"));
        let mut chart = nice_chart(root, &self.title, x, y, 80)?;
        for (l, (density, curve)) in bars.iter().zip(&curves).enumerate() {
            let c = colour(l);
            chart.draw_series(density.iter().enumerate().map(|(b, &d)| {
                let x0 = lo + b as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, d)], c.mix(0.22).filled())
            }))?;
            chart
                .draw_series(LineSeries::new(curve.iter().copied(), c.stroke_width(2)))?
                .label(format!("Layer {}", l + 1))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], c.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}

/// One recorded histogram (a row of `probe/histograms.csv`).
#[derive(Clone, Debug)]
pub struct RecordedHistogram {
    /// Updates applied before it was taken.
    pub step: usize,
    /// `weight`, `weight_grad`, `pre` or `post`.
    pub kind: String,
    /// 1-based layer.
    pub layer: usize,
    /// Left edge of the first bin.
    pub min: f64,
    /// Right edge of the last bin.
    pub max: f64,
    /// Counts per bin.
    pub counts: Vec<f64>,
}

impl RecordedHistogram {
    /// A recorded histogram row, its counts as numbers to plot.
    pub fn from_row(row: &HistogramRow) -> Self {
        RecordedHistogram {
            step: row.step,
            kind: row.kind.clone(),
            layer: row.layer,
            min: row.min,
            max: row.max,
            counts: row.counts.iter().map(|&c| c as f64).collect(),
        }
    }

    /// `(bin centre, density)` points.
    pub fn density(&self) -> Vec<(f64, f64)> {
        let n: f64 = self.counts.iter().sum();
        let bins = self.counts.len().max(1) as f64;
        let width = (self.max - self.min) / bins;
        if n == 0.0 || width <= 0.0 {
            return vec![(self.min, 1.0)];
        }
        self.counts.iter().enumerate().map(|(i, c)| (self.min + (i as f64 + 0.5) * width, c / (n * width))).collect()
    }

    /// Standard deviation estimated from the bins.
    pub fn sd(&self) -> f64 {
        let d = self.density();
        let n: f64 = self.counts.iter().sum();
        if n == 0.0 {
            return 0.0;
        }
        let mean = d.iter().zip(&self.counts).map(|((x, _), c)| x * c).sum::<f64>() / n;
        (d.iter().zip(&self.counts).map(|((x, _), c)| (x - mean).powi(2) * c).sum::<f64>() / n).sqrt()
    }
}

/// Per-layer histograms of one kind at the first and the last recorded
/// step: a grid with a row for each moment and a column for each layer,
/// each panel on its own x range (the layers' scales may differ by orders
/// of magnitude; each panel's title gives its standard deviation).
pub struct StartEndChart {
    /// Title.
    pub title: String,
    /// x-axis description.
    pub x_desc: String,
    /// Histograms at the start, one per layer.
    pub start: Vec<RecordedHistogram>,
    /// Histograms at the end, one per layer.
    pub end: Vec<RecordedHistogram>,
}

impl Figure for StartEndChart {
    fn size(&self) -> (u32, u32) {
        (1500, 640)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let root = root.titled(&self.title, (FAMILY, 22))?;
        let layers = self.start.len().max(self.end.len()).max(1);
        let panels = root.split_evenly((2, layers));
        for (r, (label, hists)) in [("start", &self.start), ("end", &self.end)].into_iter().enumerate() {
            for (l, h) in hists.iter().enumerate() {
                let panel = &panels[r * layers + l];
                let (lo, hi) = padded_range([h.min, h.max]);
                let d = h.density();
                let y_max = d.iter().map(|p| p.1).filter(|v| v.is_finite()).fold(1e-300, f64::max);
                let mut chart = ChartBuilder::on(panel)
                    .caption(
                        format!("Layer {}, {label} (step {}), sd {}", h.layer, h.step, significant(h.sd(), 2)),
                        (FAMILY, 14),
                    )
                    .margin(8)
                    .x_label_area_size(if r == 1 { 40 } else { 25 })
                    .y_label_area_size(20)
                    .build_cartesian_2d(NiceAxis::new(lo, hi, 4), 0.0..y_max * 1.1)?;
                chart
                    .configure_mesh()
                    .y_labels(0)
                    .x_desc(if r == 1 { self.x_desc.as_str() } else { "" })
                    .label_style((FAMILY, 12))
                    .disable_mesh()
                    .draw()?;
                let c = colour(h.layer - 1);
                let mut area = vec![(h.min, 0.0)];
                area.extend(d.iter().copied());
                area.push((h.max, 0.0));
                chart.draw_series(std::iter::once(Polygon::new(area, c.mix(0.3).filled())))?;
                chart.draw_series(LineSeries::new(d, c.stroke_width(2)))?;
            }
        }
        Ok(())
    }
}

/// Weight histograms over time, one panel per layer: each recorded step a
/// curve, stacked upwards with time (TensorBoard's "offset" view).
pub struct WeightsOverTimeChart {
    /// Title.
    pub title: String,
    /// Per layer, the weight histograms in step order.
    pub layers: Vec<Vec<RecordedHistogram>>,
}

impl Figure for WeightsOverTimeChart {
    fn size(&self) -> (u32, u32) {
        (1500, 520)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let root = root.titled(&self.title, (FAMILY, 22))?;
        let panels = root.split_evenly((1, self.layers.len().max(1)));
        for (l, (panel, slices)) in panels.iter().zip(&self.layers).enumerate() {
            let last_step = slices.last().map_or(1, |h| h.step).max(1) as f64;
            let height = last_step / slices.len().max(1) as f64 * 3.0;
            let (lo, hi) = padded_range(slices.iter().flat_map(|h| [h.min, h.max]));
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("Layer {}", l + 1), (FAMILY, 17))
                .margin(8)
                .x_label_area_size(40)
                .y_label_area_size(if l == 0 { 60 } else { 40 })
                .build_cartesian_2d(NiceAxis::new(lo, hi, 4), NiceAxis::new(0.0, last_step + height * 1.1, 8))?;
            chart
                .configure_mesh()
                .y_desc(if l == 0 { "Step" } else { "" })
                .label_style((FAMILY, 12))
                .disable_x_mesh()
                .draw()?;
            for (i, h) in slices.iter().enumerate().rev() {
                let d = h.density();
                let peak = d.iter().map(|p| p.1).fold(1e-300, f64::max);
                let t = i as f64 / slices.len().max(2).saturating_sub(1).max(1) as f64;
                let c = RGBColor((230.0 - 200.0 * t) as u8, (120.0 - 60.0 * t) as u8, (40.0 + 100.0 * t) as u8);
                let base = h.step as f64;
                let points: Vec<(f64, f64)> = d.iter().map(|&(x, y)| (x, base + height * y / peak)).collect();
                let mut area = vec![(h.min, base)];
                area.extend(points.iter().copied());
                area.push((h.max, base));
                chart.draw_series(std::iter::once(Polygon::new(area, WHITE.filled())))?;
                chart.draw_series(LineSeries::new(points, c.stroke_width(1)))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kde_integrates_to_one_and_follows_a_uniform_shape() {
        let values: Vec<f32> = (0..100_000).map(|i| (i as f32 / 100_000.0) * 2.0 - 1.0).collect();
        let curve = kde(&values, -1.5, 1.5);
        let step = curve[1].0 - curve[0].0;
        let area: f64 = curve.iter().map(|p| p.1 * step).sum();
        assert!((area - 1.0).abs() < 0.01, "area {area}");
        // Inside U(-1, 1) the density is 0.5; well outside it is 0.
        let at = |x: f64| curve.iter().min_by(|a, b| (a.0 - x).abs().total_cmp(&(b.0 - x).abs())).unwrap().1;
        assert!((at(0.0) - 0.5).abs() < 0.02, "{}", at(0.0));
        assert!(at(1.4) < 1e-3);
    }
}
