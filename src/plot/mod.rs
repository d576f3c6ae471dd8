//! Charts, drawn with `plotters` from the run records only, each written
//! as SVG (for the report) and PNG (for image viewers).

pub mod coord;
pub mod curves;
pub mod distributions;
pub mod grid;
pub mod images;
pub mod optimizer;
pub mod phase;
pub mod ticks;
pub mod transfer;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// The font every chart uses, shipped with the program (DejaVu Sans; see
/// `assets/DejaVuSans-LICENSE.txt`) so that PNGs render the same anywhere.
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The family name charts ask for.
pub const FAMILY: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is a fixed, valid file: failure here is a build defect.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Colours for series, in order (Tableau 10: distinguishable, and
/// printable in grey).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The `i`-th series colour.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A chart that can draw itself on any plotters backend.
pub trait Figure {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

/// A chart written to disk: its SVG text and the paths of both files.
pub struct Written {
    /// File stem, e.g. `kaiming-loss`.
    pub name: String,
    /// The SVG document.
    pub svg: String,
    /// `plots/<name>.png`.
    pub png: PathBuf,
}

/// Draws `figure` as `dir/<name>.svg` and `dir/<name>.png`, each written to
/// a temporary file and renamed into place.
pub fn save(figure: &impl Figure, dir: &Path, name: &str) -> Result<Written> {
    register_font();
    std::fs::create_dir_all(dir)?;
    let size = figure.size();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        figure.draw(&root)?;
        root.present().map_err(|e| anyhow!("{name}.svg: {e}"))?;
    }
    crate::fsutil::write_atomic(&dir.join(format!("{name}.svg")), svg.as_bytes())?;
    let png = dir.join(format!("{name}.png"));
    let tmp = dir.join(format!(".tmp-{name}.png"));
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        figure.draw(&root)?;
        root.present().map_err(|e| anyhow!("{name}.png: {e}"))?;
    }
    std::fs::rename(&tmp, &png)?;
    Ok(Written { name: name.into(), svg, png })
}

/// The finite `(x, y)` points only: charts skip NaN and infinities.
pub fn finite(points: impl IntoIterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    points.into_iter().filter(|(x, y)| x.is_finite() && y.is_finite()).collect()
}

/// A range that contains `values` with a margin, never empty.
pub fn padded_range(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 * lo.abs().max(1e-30) {
        let pad = lo.abs().max(1e-12) * 0.5;
        return (lo - pad, hi + pad);
    }
    let pad = 0.05 * (hi - lo);
    (lo - pad, hi + pad)
}

/// A log-axis range containing the positive finite `values`.
pub fn log_range(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (1e-12, 1.0);
    }
    (lo / 2.0, hi * 2.0)
}

/// An axis and what it shows.
pub type Axis<'a> = (ticks::NiceAxis, &'a str);

/// A titled chart on `root` in the style the full-size charts share: `x`
/// and `y` as [`ticks::NiceAxis`] (each labelling its own ticks) with their
/// descriptions, `y_label_area` pixels for the y labels, the mesh drawn.
pub fn nice_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    (x, x_desc): Axis,
    (y, y_desc): Axis,
    y_label_area: u32,
) -> Result<ChartContext<'a, DB, plotters::coord::cartesian::Cartesian2d<ticks::NiceAxis, ticks::NiceAxis>>>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(y_label_area)
        .build_cartesian_2d(x, y)?;
    chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).label_style((FAMILY, 14)).draw()?;
    Ok(chart)
}

/// A legend in its own column beside a chart, `(label, colour)` per
/// series from the top: where the series fill the plotting area (a sweep's
/// curves over the whole x range), a legend inside it would cover points.
pub fn side_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[(String, RGBColor)]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let font = (FAMILY, 15).into_font().color(&BLACK);
    for (i, (label, c)) in entries.iter().enumerate() {
        let y = 60 + 24 * i as i32;
        area.draw(&PathElement::new(vec![(8, y), (30, y)], c.stroke_width(2)))?;
        area.draw(&Circle::new((19, y), 4, c.filled()))?;
        area.draw(&Text::new(label.clone(), (38, y - 8), font.clone()))?;
    }
    Ok(())
}

/// The width in pixels of a [`side_legend`] of `labels` (about 8.5 pixels
/// a character at size 15, plus the line's key), within `[80, max]`.
pub fn side_legend_width<'a>(labels: impl Iterator<Item = &'a str>, max: u32) -> u32 {
    let longest = labels.map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    (48 + longest * 17 / 2).clamp(80, max)
}

/// The legend style every chart shares.
pub fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FAMILY, 15))
        .draw()?;
    Ok(())
}
