//! The report's interactive curves: the data of the loss, accuracy,
//! gradient-flow and update-ratio charts, inlined as JSON and drawn in the
//! browser by uPlot (Leon Sorokin, MIT licence, `assets/uplot/`, itself
//! inlined), with hover read-outs, drag-to-zoom, series shown or hidden from
//! the legend, and a linear/log switch. The static PNG and SVG of the same
//! charts stay in `plots/`, for papers.

use crate::plot::curves::{running_mean, running_median, smoothing_window};
use crate::record::read::{RunRecords, VariantRecords};
use serde::Serialize;

/// uPlot's script, inlined in the page.
pub const UPLOT_JS: &str = include_str!("../../assets/uplot/uPlot.iife.min.js");
/// uPlot's style sheet.
pub const UPLOT_CSS: &str = include_str!("../../assets/uplot/uPlot.min.css");

/// One interactive chart: shared x values and series aligned to them
/// (`null` where a series has no value), as uPlot takes its data.
#[derive(Clone, Debug, Serialize)]
pub struct CurveChart {
    /// Its element id.
    pub id: String,
    /// Title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Start on a log y axis.
    pub log_y: bool,
    /// The x values.
    pub x: Vec<f64>,
    /// The series, aligned to `x`.
    pub series: Vec<CurveSeries>,
}

/// One series of a [`CurveChart`].
#[derive(Clone, Debug, Serialize)]
pub struct CurveSeries {
    /// Legend label.
    pub label: String,
    /// One value per x (`null` where there is none).
    pub values: Vec<Option<f32>>,
    /// Palette index: a raw series and its smoothed line share a colour.
    pub colour: usize,
    /// Drawn faint and thin: the raw values under a smoothed line.
    pub faint: bool,
}

/// The window of the loss's running average (the original's).
const LOSS_WINDOW: usize = 20;

fn value(v: f64) -> Option<f32> {
    v.is_finite().then_some(v as f32)
}

/// The charts of a run: loss and accuracy over every variant, then each
/// variant's gradient flow and update ratio per layer.
pub fn run_curves(records: &RunRecords) -> Vec<CurveChart> {
    let variants = &records.variants;
    if variants.is_empty() {
        return Vec::new();
    }
    let mut charts = vec![loss_chart(variants), accuracy_chart(variants)];
    for (i, v) in variants.iter().enumerate() {
        charts.extend(probe_chart(
            v,
            i,
            "gradient-flow",
            "gradient flow: weight-gradient norm per layer",
            "||dL/dW||",
            |r| r.gw_norm,
        ));
        charts.extend(probe_chart(
            v,
            i,
            "update-ratio",
            "update ratio ||W_after - W_before|| / ||W|| per layer",
            "update ratio",
            |r| r.update_ratio,
        ));
    }
    charts
}

fn loss_chart(variants: &[VariantRecords]) -> CurveChart {
    let steps = variants.iter().map(|v| v.losses.len()).max().unwrap_or(0);
    let mut series = Vec::new();
    for v in variants {
        let mut raw: Vec<Option<f32>> = v.losses.iter().map(|&l| value(l)).collect();
        raw.resize(steps, None);
        let mut average = vec![None; steps];
        for (x, y) in running_mean(&v.losses, LOSS_WINDOW.min(v.losses.len() / 4).max(1)) {
            average[x as usize] = value(y);
        }
        let colour = series.len() / 2;
        series.push(CurveSeries { label: format!("{} (minibatch)", v.name), values: raw, colour, faint: true });
        series.push(CurveSeries {
            label: format!("{} (running average)", v.name),
            values: average,
            colour,
            faint: false,
        });
    }
    CurveChart {
        id: "curve-loss".into(),
        title: "Training loss".into(),
        x_label: "Iteration".into(),
        y_label: "Loss".into(),
        log_y: false,
        x: (0..steps).map(|s| s as f64).collect(),
        series,
    }
}

fn accuracy_chart(variants: &[VariantRecords]) -> CurveChart {
    let epochs = variants.iter().map(|v| v.epochs.len()).max().unwrap_or(0);
    let mut series = Vec::new();
    for v in variants {
        let column = |pick: fn(&crate::record::rows::EpochRow) -> f64| {
            let mut values: Vec<Option<f32>> = v.epochs.iter().map(|e| value(pick(e))).collect();
            values.resize(epochs, None);
            values
        };
        for (label, values) in
            [("training", column(|e| e.train_accuracy)), ("validation", column(|e| e.valid_accuracy))]
        {
            let colour = series.len();
            series.push(CurveSeries { label: format!("{} {label}", v.name), values, colour, faint: false });
        }
    }
    CurveChart {
        id: "curve-accuracy".into(),
        title: "Accuracy per epoch".into(),
        x_label: "Epoch".into(),
        y_label: "Accuracy (%)".into(),
        log_y: false,
        x: (1..=epochs).map(|e| e as f64).collect(),
        series,
    }
}

fn probe_chart(
    v: &VariantRecords,
    index: usize,
    id: &str,
    title: &str,
    y_label: &str,
    pick: fn(&crate::record::rows::LayerStatsRow) -> f64,
) -> Option<CurveChart> {
    let rows = v.layers.as_ref()?;
    let layers = rows.iter().map(|r| r.layer).max()?;
    let mut steps: Vec<usize> = rows.iter().map(|r| r.step).collect();
    steps.dedup();
    let position = |step: usize| steps.binary_search(&step).ok();
    // Per layer, the positive finite values (a log axis shows no others).
    let mut points: Vec<Vec<(f64, f64)>> = vec![Vec::new(); layers];
    for r in rows {
        let y = pick(r);
        if y.is_finite() && y > 0.0 {
            points[r.layer - 1].push((r.step as f64, y));
        }
    }
    // As the static chart (plot::curves::LogLinesChart): thousands of raw
    // steps per layer overlap into one band, so above 200 recorded steps
    // each layer is its raw values faint under their running median.
    let window = smoothing_window(steps.len());
    let aligned = |values: &[(f64, f64)]| {
        let mut out = vec![None; steps.len()];
        for &(x, y) in values {
            if let Some(p) = position(x as usize) {
                out[p] = value(y);
            }
        }
        out
    };
    let mut series = Vec::new();
    for (l, layer_points) in points.iter().enumerate() {
        let label = format!("Layer {}", l + 1);
        if window > 1 {
            let raw = aligned(layer_points);
            series.push(CurveSeries { label: format!("{label} (every step)"), values: raw, colour: l, faint: true });
            let median = aligned(&running_median(layer_points, window));
            let label = format!("{label} (running median of {window})");
            series.push(CurveSeries { label, values: median, colour: l, faint: false });
        } else {
            series.push(CurveSeries { label, values: aligned(layer_points), colour: l, faint: false });
        }
    }
    Some(CurveChart {
        id: format!("curve-{index}-{id}"),
        title: format!("{}: {title}", v.name),
        x_label: "Step".into(),
        y_label: y_label.into(),
        log_y: true,
        x: steps.iter().map(|&s| s as f64).collect(),
        series,
    })
}

/// The charts as JSON safe inside a `<script>` element (no `</`).
pub fn curves_json(charts: &[CurveChart]) -> String {
    serde_json::to_string(charts).expect("charts always serialise").replace("</", "<\\/")
}
