//! Charts of a grid of runs: a metric against one setting (with its spread
//! over seeds), and a phase diagram (heatmap) of a metric over two.

use super::curves::{draw_bands, BandSeries};
use super::ticks::{significant, NiceAxis};
use super::{colour, padded_range, side_legend, side_legend_width, Figure, FAMILY};
use anyhow::Result;
use plotters::coord::ranged1d::AsRangedCoord;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// How the x axis of an [`AxisChart`] is laid out.
#[derive(Clone, Debug, PartialEq)]
pub enum XScale {
    /// Linear in the value.
    Linear,
    /// Logarithmic: for rates and standard deviations spanning decades.
    Log,
    /// One evenly spaced place per label (x is the place, 0-based).
    Categories(Vec<String>),
}

/// A metric against one setting: a line with markers per group, and a
/// band of one standard deviation over seeds where there are several.
pub struct AxisChart {
    /// Title.
    pub title: String,
    /// The setting.
    pub x_desc: String,
    /// The metric.
    pub y_desc: String,
    /// The x axis's layout.
    pub x_scale: XScale,
    /// One series per group.
    pub series: Vec<BandSeries>,
}

impl Figure for AxisChart {
    fn size(&self) -> (u32, u32) {
        (900, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        // The legend beside the chart: the series run over the whole x range.
        let labels = self.series.iter().map(|s| s.0.as_str());
        let (width, _) = root.dim_in_pixel();
        let (root, key) = root.split_horizontally(width - side_legend_width(labels, width / 3));
        let entries: Vec<(String, RGBColor)> =
            self.series.iter().enumerate().map(|(i, s)| (s.0.clone(), colour(i))).collect();
        side_legend(&key, &entries)?;
        let root = &root;
        let xs: Vec<f64> = self.series.iter().flat_map(|s| s.1.iter().map(|p| p.0)).collect();
        match &self.x_scale {
            XScale::Log => {
                let positive = xs.iter().copied().filter(|x| *x > 0.0);
                let lo = positive.clone().fold(f64::INFINITY, f64::min);
                let hi = positive.fold(0.0, f64::max);
                let (lo, hi) = if lo.is_finite() { (lo / 1.5, hi * 1.5) } else { (1e-3, 1.0) };
                self.draw_on(root, NiceAxis::log(lo, hi), None)
            }
            XScale::Linear => {
                let (lo, hi) = padded_range(xs);
                self.draw_on(root, NiceAxis::new(lo, hi, 10), None)
            }
            XScale::Categories(labels) => {
                let n = labels.len().max(1) as f64;
                let label = |x: &f64| {
                    let i = x.round();
                    let on_place = (x - i).abs() < 1e-6 && i >= 0.0;
                    labels.get(i as usize).filter(|_| on_place).cloned().unwrap_or_default()
                };
                self.draw_on(root, (-0.5..n - 0.5).step(1.0), Some(&label))
            }
        }
    }
}

impl AxisChart {
    fn draw_on<DB: DrawingBackend, X>(
        &self,
        root: &DrawingArea<DB, Shift>,
        x_range: X,
        x_label: Option<&dyn Fn(&f64) -> String>,
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
        X: AsRangedCoord<Value = f64>,
        X::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
    {
        let ys = self.series.iter().flat_map(|s| s.1.iter().flat_map(|p| [p.1 - p.2, p.1 + p.2]));
        let (lo, hi) = padded_range(ys);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range, NiceAxis::new(lo, hi, 10))?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(self.x_desc.as_str()).y_desc(self.y_desc.as_str()).label_style((FAMILY, 14));
        if let Some(label) = x_label {
            mesh.x_label_formatter(label);
        }
        mesh.draw()?;
        draw_bands(&mut chart, &self.series, "")?;
        Ok(())
    }
}

/// The pixels of a heatmap's cell corners, for overlays.
struct Corners {
    xs: Vec<i32>,
    ys: Vec<i32>,
}

impl Corners {
    /// The pixel of a position in cell units, between the corners.
    fn at(pixels: &[i32], v: f64) -> i32 {
        let i = (v.floor() as usize).min(pixels.len() - 2);
        let f = v - i as f64;
        (pixels[i] as f64 + f * (pixels[i + 1] - pixels[i]) as f64).round() as i32
    }

    fn x(&self, v: f64) -> i32 {
        Self::at(&self.xs, v)
    }

    fn y(&self, v: f64) -> i32 {
        Self::at(&self.ys, v)
    }
}

/// One cell of a phase diagram.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Not run yet.
    Empty,
    /// The point failed (a crash or an I/O error): no result.
    Failed,
    /// The metric (mean over seeds), and whether training diverged.
    Value {
        /// The metric.
        value: f64,
        /// A run of this cell stopped at a non-finite loss.
        diverged: bool,
    },
}

/// The colour scale of a phase diagram.
#[derive(Clone, Debug, PartialEq)]
pub struct ColourScale {
    /// The value of the darkest colour.
    pub lo: f64,
    /// The value of the brightest colour.
    pub hi: f64,
    /// Colours spread over log(value) instead of value.
    pub log: bool,
}

impl ColourScale {
    /// Where `v` lies on the scale, 0 to 1.
    fn place(&self, v: f64) -> f64 {
        let (v, lo, hi) =
            if self.log { (v.max(1e-300).ln(), self.lo.ln(), self.hi.ln()) } else { (v, self.lo, self.hi) };
        if hi > lo {
            ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
        } else {
            0.5
        }
    }
}

/// Viridis (van der Walt and Smith, matplotlib's default colour map) at
/// nine stops: perceptually uniform and readable in grey.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// The colour at `t` in 0..=1 on the viridis map.
pub fn viridis(t: f64) -> RGBColor {
    let x = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A phase diagram: a metric over a grid of two settings, one cell per
/// pair of grid values (ticks at the values themselves), failed cells grey
/// with an F, diverged ones crossed, and a colour bar.
pub struct HeatmapChart {
    /// Title.
    pub title: String,
    /// The setting across.
    pub x_desc: String,
    /// The setting up.
    pub y_desc: String,
    /// The metric (the colour bar's label).
    pub value_desc: String,
    /// The grid values across, as labels.
    pub x_labels: Vec<String>,
    /// The grid values up, as labels (first at the bottom).
    pub y_labels: Vec<String>,
    /// `cells[y][x]`.
    pub cells: Vec<Vec<Cell>>,
    /// How values map to colours.
    pub scale: ColourScale,
    /// Curves drawn over the cells, in cell units (cell (x, y) spans
    /// [x, x + 1] x [y, y + 1]; see [`grid_position`]), each with a label
    /// written at its last point: a theory's prediction over a measurement.
    pub curves: Vec<(String, Vec<(f64, f64)>)>,
}

/// Where `value` lies on an axis whose cells hold `grid` (ascending, cell i
/// centred at i + 0.5), by linear interpolation between centres; `None`
/// outside the first and last centres.
pub fn grid_position(grid: &[f64], value: f64) -> Option<f64> {
    if !value.is_finite() || grid.is_empty() {
        return None;
    }
    if grid.len() == 1 {
        return (value == grid[0]).then_some(0.5);
    }
    let i = grid.windows(2).position(|w| (w[0]..=w[1]).contains(&value))?;
    let (a, b) = (grid[i], grid[i + 1]);
    Some(i as f64 + 0.5 + if b > a { (value - a) / (b - a) } else { 0.0 })
}

impl Figure for HeatmapChart {
    fn size(&self) -> (u32, u32) {
        (820, 600)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let (main, bar) = root.split_horizontally(700);
        let pixel = self.draw_cells(&main)?;
        self.draw_curves(&main, &pixel)?;
        self.draw_colour_bar(&bar)
    }
}

impl HeatmapChart {
    /// Draws the cells; returns the pixel of each cell corner (x, y) for
    /// [`Self::draw_curves`].
    fn draw_cells<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<Corners>
    where
        DB::ErrorType: 'static,
    {
        let (nx, ny) = (self.x_labels.len().max(1), self.y_labels.len().max(1));
        // Cell (x, y) is segment x across and y up; the ticks sit at the
        // segments' centres, labelled with the grid values. (A discrete
        // range includes its end: 0..n-1 has n segments.)
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FAMILY, 20))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d((0..nx - 1).into_segmented(), (0..ny - 1).into_segmented())?;
        let label = |labels: &[String], v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .x_labels(nx.min(25))
            .y_labels(ny.min(25))
            .x_label_formatter(&|v| label(&self.x_labels, v))
            .y_label_formatter(&|v| label(&self.y_labels, v))
            .label_style((FAMILY, 13))
            .draw()?;
        let show_values = nx <= 14 && ny <= 20;
        for (y, row) in self.cells.iter().enumerate() {
            for (x, cell) in row.iter().enumerate() {
                let (x0, y0) = (SegmentValue::Exact(x), SegmentValue::Exact(y));
                let (x1, y1) = (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1));
                let (fill, text): (RGBColor, String) = match cell {
                    Cell::Empty => (WHITE, String::new()),
                    Cell::Failed => (RGBColor(190, 190, 190), "F".into()),
                    Cell::Value { value, .. } => (
                        viridis(self.scale.place(*value)),
                        if show_values { significant(*value, 4) } else { String::new() },
                    ),
                };
                let corners = [(x0.clone(), y0.clone()), (x1.clone(), y1.clone())];
                chart.draw_series([
                    Rectangle::new(corners.clone(), fill.filled()),
                    Rectangle::new(corners, WHITE.stroke_width(1)),
                ])?;
                if let Cell::Value { diverged: true, .. } = cell {
                    let cross = RGBColor(230, 30, 30).stroke_width(2);
                    chart.draw_series([
                        PathElement::new(vec![(x0.clone(), y0.clone()), (x1.clone(), y1.clone())], cross),
                        PathElement::new(vec![(x0, y1), (x1, y0)], cross),
                    ])?;
                }
                if !text.is_empty() {
                    let dark = matches!(cell, Cell::Value { value, .. } if self.scale.place(*value) < 0.6);
                    let style = TextStyle::from((FAMILY, 12).into_font())
                        .color(if dark { &WHITE } else { &BLACK })
                        .pos(Pos::new(HPos::Center, VPos::Center));
                    let centre = (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y));
                    chart.draw_series(std::iter::once(Text::new(text, centre, style)))?;
                }
            }
        }
        let xs = (0..=nx).map(|x| chart.backend_coord(&(SegmentValue::Exact(x), SegmentValue::Exact(0))).0).collect();
        let ys = (0..=ny).map(|y| chart.backend_coord(&(SegmentValue::Exact(0), SegmentValue::Exact(y))).1).collect();
        Ok(Corners { xs, ys })
    }

    /// Draws the overlaid curves, clipped to the cells.
    fn draw_curves<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, corners: &Corners) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (x_max, y_max) = ((corners.xs.len() - 1) as f64, (corners.ys.len() - 1) as f64);
        for (i, (label, points)) in self.curves.iter().enumerate() {
            let colour = if i % 2 == 0 { WHITE } else { RGBColor(255, 120, 60) };
            let style = colour.stroke_width(3);
            let inside: Vec<(i32, i32)> = points
                .iter()
                .filter(|(x, y)| (0.0..=x_max).contains(x) && (0.0..=y_max).contains(y))
                .map(|&(x, y)| (corners.x(x), corners.y(y)))
                .collect();
            if inside.len() < 2 {
                continue;
            }
            area.draw(&PathElement::new(inside.clone(), style))?;
            // A key in the grid's top-left corner: the line's sample and its
            // name on a dark box, readable over any cell.
            let (left, top) = (corners.x(0.0) + 6, corners.y(y_max) + 6 + 22 * i as i32);
            area.draw(&Rectangle::new([(left, top - 3), (left + 150, top + 17)], BLACK.mix(0.6).filled()))?;
            area.draw(&PathElement::new(vec![(left + 4, top + 7), (left + 28, top + 7)], style))?;
            let text = TextStyle::from((FAMILY, 14).into_font()).color(&WHITE);
            area.draw(&Text::new(label.clone(), (left + 34, top), text))?;
        }
        Ok(())
    }

    fn draw_colour_bar<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (lo, hi) = (self.scale.lo, self.scale.hi);
        self.draw_bar(area, if self.scale.log { NiceAxis::log(lo, hi) } else { NiceAxis::new(lo, hi, 6) })
    }

    /// The colour bar on the value axis `y`.
    fn draw_bar<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, y: NiceAxis) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (lo, hi) = (self.scale.lo, self.scale.hi);
        let steps = 100;
        let value_at =
            |t: f64| if self.scale.log { (lo.ln() + t * (hi.ln() - lo.ln())).exp() } else { lo + t * (hi - lo) };
        let mut chart = ChartBuilder::on(area)
            .margin_top(45)
            .margin_bottom(62)
            .margin_right(8)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..1.0, y)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_desc(self.value_desc.as_str())
            .label_style((FAMILY, 12))
            .draw()?;
        chart.draw_series((0..steps).map(|i| {
            let (a, b) = (i as f64 / steps as f64, (i + 1) as f64 / steps as f64);
            Rectangle::new([(0.0, value_at(a)), (1.0, value_at(b))], viridis(a).filled())
        }))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_runs_from_purple_to_yellow() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(0.5), RGBColor(33, 144, 141));
    }

    #[test]
    fn a_log_scale_places_by_decades() {
        let scale = ColourScale { lo: 0.01, hi: 1.0, log: true };
        assert!((scale.place(0.1) - 0.5).abs() < 1e-12);
        assert_eq!(scale.place(10.0), 1.0);
    }
}
