//! The sweep's report: `report.html`, one self-contained page with the
//! table and charts chosen from the axes (a metric against one setting, a
//! phase diagram over two, small multiples beyond), built from the points'
//! run directories alone, so a partial sweep has one too.

use super::spec::{value_text, Point, SweepSpec};
use super::table::{ResultRow, VariantResult};
use super::SweepDir;
use crate::lr_transfer::{transfers, Cell as TransferCell, Transfer};
use crate::plot::curves::mean_sd;
use crate::plot::grid::{AxisChart, Cell, ColourScale, HeatmapChart, XScale};
use crate::plot::ticks::significant;
use crate::plot::{save, Written};
use crate::report::page::Figure;
use anyhow::Result;
use askama::Template;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The metric a sweep's charts show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Metric {
    /// Final test accuracy (%).
    #[default]
    TestAccuracy,
    /// Final validation accuracy (%).
    ValidAccuracy,
    /// Final training accuracy (%).
    TrainAccuracy,
    /// Best validation accuracy of any epoch (%).
    BestValidAccuracy,
    /// Mean loss of the last epoch.
    FinalLoss,
}

impl Metric {
    /// Its name on the charts.
    pub fn label(self) -> &'static str {
        match self {
            Metric::TestAccuracy => "test accuracy (%)",
            Metric::ValidAccuracy => "validation accuracy (%)",
            Metric::TrainAccuracy => "training accuracy (%)",
            Metric::BestValidAccuracy => "best validation accuracy (%)",
            Metric::FinalLoss => "final loss",
        }
    }

    /// Its value in a finished variant's result (NaN when it has none).
    pub fn of(self, r: &VariantResult) -> f64 {
        match self {
            Metric::TestAccuracy => r.test,
            Metric::ValidAccuracy => r.valid,
            Metric::TrainAccuracy => r.train,
            Metric::BestValidAccuracy => r.best_valid.map_or(f64::NAN, |(acc, _)| acc),
            Metric::FinalLoss => r.final_loss,
        }
    }

    fn is_accuracy(self) -> bool {
        self != Metric::FinalLoss
    }
}

/// Most panels of small multiples drawn; the table holds the rest.
const MAX_PANELS: usize = 36;

/// A dimension of the charts: an axis of the sweep with more than one
/// position (a `seed` axis is not one: its points are averaged over).
pub(super) struct Dimension {
    /// The axis's place in the sweep.
    pub(super) axis: usize,
    /// Its keys, as the axis title.
    pub(super) title: String,
    /// Per position, the label.
    pub(super) labels: Vec<String>,
    /// Per position, the value when the axis's (first) key is numeric.
    pub(super) numbers: Option<Vec<f64>>,
}

/// The cells of one group, keyed by the positions of the dimensions.
#[derive(Default)]
struct Gathered {
    values: Vec<f64>,
    diverged: bool,
    failed: bool,
}

/// Rewrites `sweep.csv` from the run directories of the sweep in `dir` and
/// builds its `report.html` with charts of `metric`; returns the report's path.
pub fn build_sweep_report(dir: &Path, metric: Metric) -> Result<PathBuf> {
    let (spec, sweep) = SweepDir::open(dir)?;
    let points = spec.points()?;
    for point in &points {
        if let Some(why) = sweep.corrupt_record(point) {
            eprintln!("warning: point {}: {why}; `--retry-failed` runs it from scratch", point.index + 1);
        }
    }
    let states = super::queue::point_states(&sweep, &points);
    let rows: Vec<Vec<ResultRow>> =
        points.iter().zip(&states).map(|(p, state)| sweep.rows(p, state)).collect::<Result<_>>()?;
    sweep.write_table(&spec, &rows)?;
    let flat: Vec<ResultRow> = rows.into_iter().flatten().collect();
    let dimensions = dimensions(&spec);
    let mut charts = draw_charts(&sweep, &spec, &points, &dimensions, &flat, metric, &dir.join("plots"))?;
    let transfers = lr_transfers(&spec, &dimensions, &flat);
    if !transfers.is_empty() {
        sweep.write_lr_optima(&crate::lr_transfer::optima_csv(&transfers))?;
        let chart = crate::plot::transfer::TransferChart { transfers: transfers.clone() };
        charts.insert(0, save(&chart, &dir.join("plots"), "lr-transfer")?);
    }
    let page = SweepPage {
        title: spec.name(),
        dir: dir.display().to_string(),
        counts: counts(&flat),
        reading: reading(&dimensions, metric),
        transfer: transfers.iter().map(|t| t.statement()).collect(),
        optima: optima_rows(&transfers),
        figures: charts.iter().map(Figure::of).collect(),
        header: super::table::header(&spec.keys()),
        rows: flat.iter().map(super::table::row_cells).collect(),
        settings: std::fs::read_to_string(dir.join("sweep.toml"))?,
    };
    let path = dir.join("report.html");
    crate::fsutil::write_atomic(&path, page.render()?.as_bytes())?;
    Ok(path)
}

/// The axes with more than one position, other than a `seed` axis.
fn dimensions(spec: &SweepSpec) -> Vec<Dimension> {
    spec.axes
        .iter()
        .enumerate()
        .filter(|(_, a)| a.values.len() > 1 && a.keys != ["seed"])
        .map(|(axis, a)| {
            // Tied keys (a zip) are placed by the first key's numbers and
            // titled by it, the others counted.
            let numbers: Option<Vec<f64>> =
                a.values.iter().map(|v| v[0].as_float().or(v[0].as_integer().map(|i| i as f64))).collect();
            let labels = match &numbers {
                Some(numbers) => numbers.iter().map(|&x| significant(x, 4)).collect(),
                None => a.values.iter().map(|v| v.iter().map(value_text).collect::<Vec<_>>().join(" / ")).collect(),
            };
            let title = match a.keys.len() {
                1 => a.keys[0].clone(),
                n if numbers.is_some() => format!("{} (and {} tied keys)", a.keys[0], n - 1),
                _ => a.keys.join(" / "),
            };
            Dimension { axis, title, labels, numbers }
        })
        .collect()
}

/// Every row's result gathered per group and per positions of `dimensions`.
fn gather(
    spec: &SweepSpec,
    dimensions: &[Dimension],
    rows: &[ResultRow],
    metric: Metric,
) -> Vec<(String, BTreeMap<Vec<usize>, Gathered>)> {
    let mut groups: Vec<(String, BTreeMap<Vec<usize>, Gathered>)> = Vec::new();
    for row in rows {
        let positions = spec.positions(row.point - 1);
        let key: Vec<usize> = dimensions.iter().map(|d| positions[d.axis]).collect();
        let group = match groups.iter().position(|(g, _)| *g == row.group) {
            Some(g) => g,
            None => {
                groups.push((row.group.clone(), BTreeMap::new()));
                groups.len() - 1
            }
        };
        let cell = groups[group].1.entry(key).or_default();
        match &row.result {
            Some(r) => {
                cell.values.push(metric.of(r));
                cell.diverged |= r.diverged_at.is_some();
            }
            None => cell.failed |= row.status == "failed",
        }
    }
    groups
}

/// With exactly two dimensions, a width (`...model.width`) and a learning
/// rate (`...optimizer.lr`), every variant's learning-rate transfer from
/// the final training loss; otherwise none.
fn lr_transfers(spec: &SweepSpec, dimensions: &[Dimension], rows: &[ResultRow]) -> Vec<Transfer> {
    let ends = |d: &Dimension, key: &str| d.numbers.is_some() && spec.axes[d.axis].keys[0].ends_with(key);
    let find = |key: &str| dimensions.iter().find(|d| ends(d, key));
    let (Some(width), Some(lr)) = (find("model.width"), find("optimizer.lr")) else { return Vec::new() };
    if dimensions.len() != 2 {
        return Vec::new();
    }
    let mut cells: Vec<TransferCell> = Vec::new();
    for row in rows {
        let Some(result) = &row.result else { continue };
        let positions = spec.positions(row.point - 1);
        let number = |d: &Dimension| d.numbers.as_ref().map_or(f64::NAN, |n| n[positions[d.axis]]);
        let (w, l) = (number(width), number(lr));
        match cells.iter_mut().find(|c| c.group == row.group && c.width == w && c.lr == l) {
            Some(c) => c.losses.push(result.final_loss),
            None => {
                cells.push(TransferCell { group: row.group.clone(), width: w, lr: l, losses: vec![result.final_loss] })
            }
        }
    }
    transfers(&cells)
}

/// The page's table of optima: a row per variant and width.
fn optima_rows(transfers: &[Transfer]) -> Vec<Vec<String>> {
    let row = |t: &Transfer, o: &crate::lr_transfer::Optimum| {
        let edge = if o.at_edge { "at the grid's edge" } else { "" };
        vec![
            t.group.clone(),
            format!("{}", o.width),
            significant(o.lr, 4),
            format!("{:.2}", o.lr.log2()),
            format!("{:.4}", o.loss),
            edge.into(),
        ]
    };
    transfers.iter().flat_map(|t| t.optima.iter().map(move |o| row(t, o))).collect()
}

/// The charts the axes call for, drawn into `plots`.
fn draw_charts(
    sweep: &SweepDir,
    spec: &SweepSpec,
    points: &[Point],
    dimensions: &[Dimension],
    rows: &[ResultRow],
    metric: Metric,
    plots: &Path,
) -> Result<Vec<Written>> {
    let groups = gather(spec, dimensions, rows, metric);
    match dimensions {
        [] => Ok(Vec::new()),
        [only] => Ok(vec![save(&axis_chart(only, &groups, metric), plots, "sweep-metric")?]),
        _ => {
            let mut out = Vec::new();
            for (group, cells) in &groups {
                for (panel, fixed) in panels(dimensions).into_iter().enumerate().take(MAX_PANELS) {
                    let mut chart = heatmap(dimensions, group, cells, &fixed, metric);
                    if dimensions.len() == 2 {
                        chart.curves = super::overlay::theory_curves(sweep, spec, points, dimensions, group);
                    }
                    let name = if fixed.is_empty() {
                        format!("phase-{group}")
                    } else {
                        format!("phase-{group}-{}", panel + 1)
                    };
                    out.push(save(&chart, plots, &name)?);
                }
            }
            Ok(out)
        }
    }
}

/// A metric against the one dimension, a series per group.
fn axis_chart(d: &Dimension, groups: &[(String, BTreeMap<Vec<usize>, Gathered>)], metric: Metric) -> AxisChart {
    let x_scale = match &d.numbers {
        Some(x) => {
            let (lo, hi) = x.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            if lo > 0.0 && hi / lo >= 20.0 {
                XScale::Log
            } else {
                XScale::Linear
            }
        }
        None => XScale::Categories(d.labels.clone()),
    };
    let series = groups
        .iter()
        .map(|(group, cells)| {
            let points = cells
                .iter()
                .filter(|(_, c)| !c.values.is_empty())
                .map(|(key, c)| {
                    let x = d.numbers.as_ref().map_or(key[0] as f64, |n| n[key[0]]);
                    let (mean, sd) = mean_sd(&c.values);
                    (x, mean, sd)
                })
                .collect();
            (group.clone(), points)
        })
        .collect();
    AxisChart {
        title: format!("{} against {}", metric.label(), d.title),
        x_desc: d.title.clone(),
        y_desc: metric.label().into(),
        x_scale,
        series,
    }
}

/// Per panel, the fixed positions of every dimension but the last two
/// (one empty panel with two dimensions).
fn panels(dimensions: &[Dimension]) -> Vec<Vec<usize>> {
    let outer = &dimensions[..dimensions.len() - 2];
    let mut all = vec![Vec::new()];
    for d in outer {
        all = all
            .into_iter()
            .flat_map(|p: Vec<usize>| (0..d.labels.len()).map(move |i| [p.clone(), vec![i]].concat()))
            .collect();
    }
    all
}

/// The phase diagram of `group` over the last two dimensions, the others
/// held at `fixed`.
fn heatmap(
    dimensions: &[Dimension],
    group: &str,
    cells: &BTreeMap<Vec<usize>, Gathered>,
    fixed: &[usize],
    metric: Metric,
) -> HeatmapChart {
    let (y_dim, x_dim) = (&dimensions[dimensions.len() - 2], &dimensions[dimensions.len() - 1]);
    let grid: Vec<Vec<Cell>> = (0..y_dim.labels.len())
        .map(|y| {
            (0..x_dim.labels.len())
                .map(|x| match cells.get(&[fixed, &[y, x]].concat()) {
                    Some(c) if !c.values.is_empty() => {
                        Cell::Value { value: mean_sd(&c.values).0, diverged: c.diverged }
                    }
                    Some(c) if c.failed => Cell::Failed,
                    _ => Cell::Empty,
                })
                .collect()
        })
        .collect();
    let scale = if metric.is_accuracy() {
        ColourScale { lo: 0.0, hi: 100.0, log: false }
    } else {
        let finite = cells.values().flat_map(|c| c.values.iter().copied()).filter(|v| v.is_finite() && *v > 0.0);
        let (lo, hi) = finite.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo.is_finite() {
            ColourScale { lo, hi: hi.max(lo * 1.01), log: true }
        } else {
            ColourScale { lo: 0.1, hi: 10.0, log: true }
        }
    };
    let held: Vec<String> =
        dimensions.iter().zip(fixed).map(|(d, &i)| format!("{} = {}", d.title, d.labels[i])).collect();
    let title = if held.is_empty() { group.to_string() } else { format!("{group}, {}", held.join(", ")) };
    HeatmapChart {
        title,
        x_desc: x_dim.title.clone(),
        y_desc: y_dim.title.clone(),
        value_desc: metric.label().into(),
        x_labels: x_dim.labels.clone(),
        y_labels: y_dim.labels.clone(),
        cells: grid,
        scale,
        curves: Vec::new(),
    }
}

/// `N points done, ...`: the table's rows per status.
fn counts(rows: &[ResultRow]) -> String {
    let mut by_status: Vec<(&str, usize)> = Vec::new();
    for row in rows {
        match by_status.iter_mut().find(|(s, _)| *s == row.status) {
            Some((_, n)) => *n += 1,
            None => by_status.push((row.status, 1)),
        }
    }
    let parts: Vec<String> = by_status.iter().map(|(s, n)| format!("{n} {s}")).collect();
    format!("{} runs (points x variants): {}", rows.len(), parts.join(", "))
}

/// How to read the charts.
fn reading(dimensions: &[Dimension], metric: Metric) -> String {
    match dimensions.len() {
        0 => "The sweep has no axis with more than one value (other than seeds): the table is the result.".into(),
        1 => format!("The {} of each variant against {}: the mean over seeds, with a band of one standard deviation where there are several.", metric.label(), dimensions[0].title),
        n => format!(
            "Phase diagrams of the {}: one cell per pair of grid values, the mean over seeds. A red cross marks a cell where training diverged (a non-finite loss), grey with F a failed point, white a point not yet run.{}",
            metric.label(),
            if n > 2 { format!(" With {n} axes, one diagram per value of the others (at most {MAX_PANELS} per variant).") } else { String::new() }
        ),
    }
}

/// The sweep's page, rendered by `templates/sweep.html`.
#[derive(Template)]
#[template(path = "sweep.html")]
struct SweepPage {
    title: String,
    dir: String,
    counts: String,
    reading: String,
    transfer: Vec<String>,
    optima: Vec<Vec<String>>,
    figures: Vec<Figure>,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    settings: String,
}
