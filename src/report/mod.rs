//! The HTML report: one self-contained file per run (charts inline, no
//! network), built from the run directory's records alone, and comparison
//! reports across runs.

pub mod interactive;
pub mod page;

use crate::plot::curves::{
    mean_sd, running_mean, AccuracyChart, BandChart, LayerProfileChart, LinesChart, LogLinesChart, LossChart, Series,
};
use crate::plot::distributions::{
    RecordedHistogram, StartEndChart, WeightComparisonChart, WeightDistributionChart, WeightsOverTimeChart,
};
use crate::plot::images::{confusion, ConfusionChart, ExamplesChart};
use crate::plot::optimizer::OptimizerChart;
use crate::plot::{save, Written};
use crate::record::read::{RunRecords, VariantRecords};
use crate::record::rows::LayerStatsRow;
use anyhow::Result;
use askama::Template as _;
use page::{seed_rows, summary_rows, verdict_lines, Figure, ReportPage, Section};
use std::path::{Path, PathBuf};

/// The original's running-average window.
const LOSS_WINDOW: usize = 20;

/// Charts of one variant, drawn into `plots`, in report order.
fn variant_charts(
    v: &VariantRecords,
    examples: Option<&(usize, usize, Vec<Vec<u8>>)>,
    plots: &Path,
    prefix: &str,
) -> Result<Vec<Written>> {
    let file = |chart: &str| format!("{prefix}{}-{chart}", v.name);
    let mut out = Vec::new();
    training_charts(v, plots, &file, &mut out)?;
    prediction_charts(v, examples, plots, &file, &mut out)?;
    probe_charts(v, plots, &file, &mut out)?;
    histogram_charts(v, plots, &file, &mut out)?;
    Ok(out)
}

/// The loss, the accuracy and the weight distributions before and after.
fn training_charts(
    v: &VariantRecords,
    plots: &Path,
    file: &dyn Fn(&str) -> String,
    out: &mut Vec<Written>,
) -> Result<()> {
    let name = &v.name;
    out.push(save(
        &LossChart {
            title: format!("{name}: training loss"),
            series: vec![(name.clone(), v.losses.clone())],
            steps_per_epoch: v.steps_per_epoch,
            window: LOSS_WINDOW,
        },
        plots,
        &file("loss"),
    )?);
    if !v.epochs.is_empty() {
        out.push(save(
            &AccuracyChart {
                title: format!("{name}: accuracy"),
                series: vec![(
                    name.clone(),
                    v.epochs.iter().map(|e| (e.epoch as f64, e.train_accuracy, e.valid_accuracy)).collect(),
                )],
            },
            plots,
            &file("accuracy"),
        )?);
    }
    if let Some(chart) = optimizer_chart(v) {
        out.push(save(&chart, plots, &file("optimizer"))?);
    }
    for (when, weights) in [("initial", &v.initial_weights), ("final", &v.final_weights)] {
        if !weights.is_empty() {
            let title = format!(
                "{name}: weight distributions, {}",
                if when == "initial" { "before training" } else { "after training" }
            );
            out.push(save(
                &WeightDistributionChart { title, layers: weights.clone(), x_range: None },
                plots,
                &file(&format!("weights-{when}")),
            )?);
        }
    }
    Ok(())
}

/// The learning rate and gradient norm per step, when the schedule moved
/// the lr or the variant clips its gradients.
fn optimizer_chart(v: &VariantRecords) -> Option<OptimizerChart> {
    let lr: Vec<f64> = v.steps.iter().map(|r| r.lr).collect();
    let moved = lr.iter().any(|&x| x != lr[0]);
    if lr.is_empty() || !(moved || v.clip.is_some()) {
        return None;
    }
    Some(OptimizerChart {
        title: format!("{}: learning rate and gradient norm", v.name),
        lr,
        grad_norm: v.steps.iter().map(|r| f64::from(r.grad_norm)).collect(),
        clipped: v.steps.iter().map(|r| r.clipped).collect(),
        max_norm: v.clip.and_then(|c| c.max_norm),
    })
}

/// The example test images with their predictions, and the confusion matrix.
fn prediction_charts(
    v: &VariantRecords,
    examples: Option<&(usize, usize, Vec<Vec<u8>>)>,
    plots: &Path,
    file: &dyn Fn(&str) -> String,
    out: &mut Vec<Written>,
) -> Result<()> {
    let name = &v.name;
    if let (Some((rows, cols, images)), false) = (examples, v.test_predictions.is_empty()) {
        let images = images.iter().zip(&v.test_predictions).map(|(px, &(t, p))| (px.clone(), t, p)).collect();
        out.push(save(
            &ExamplesChart {
                title: format!("{name}: test images, predicted (P) and true (T)"),
                rows: *rows,
                cols: *cols,
                images,
            },
            plots,
            &file("examples"),
        )?);
    }
    if !v.test_predictions.is_empty() {
        out.push(save(
            &ConfusionChart {
                title: format!("{name}: confusion matrix (test)"),
                matrix: confusion(&v.test_predictions, 10),
            },
            plots,
            &file("confusion"),
        )?);
    }
    Ok(())
}

/// Per-layer curves from the probe's scalars: gradient flow, update ratio.
fn probe_charts(v: &VariantRecords, plots: &Path, file: &dyn Fn(&str) -> String, out: &mut Vec<Written>) -> Result<()> {
    let name = &v.name;
    if let Some(layers) = &v.layers {
        let layer_count = layers.iter().map(|r| r.layer).max().unwrap_or(0);
        let per_layer = |value: fn(&LayerStatsRow) -> f64| -> Vec<Series> {
            (1..=layer_count)
                .map(|l| {
                    let points = layers.iter().filter(|r| r.layer == l).map(|r| (r.step as f64, value(r))).collect();
                    (format!("Layer {l}"), points)
                })
                .collect()
        };
        out.push(save(
            &LogLinesChart {
                title: format!("{name}: gradient flow (weight-gradient norm per layer)"),
                y_desc: "||dL/dW|| (log)".into(),
                series: per_layer(|r| r.gw_norm),
            },
            plots,
            &file("gradient-flow"),
        )?);
        if let Some(chart) = theory_chart(v, layers) {
            out.push(save(&chart, plots, &file("theory"))?);
        }
        out.push(save(
            &LogLinesChart {
                title: format!("{name}: update ratio ||W_after - W_before|| / ||W|| per layer"),
                y_desc: "update ratio (log)".into(),
                series: per_layer(|r| r.update_ratio),
            },
            plots,
            &file("update-ratio"),
        )?);
    }
    if let Some(chart) = branch_chart(v) {
        out.push(save(&chart, plots, &file("branch-ratio"))?);
    }
    if let Some(chart) = alpha_chart(v) {
        out.push(save(&chart, plots, &file("alpha"))?);
    }
    Ok(())
}

/// Most blocks drawn on the branch-ratio chart, spread over the depth.
const MAX_BLOCK_LINES: usize = 6;

/// A residual network's branch ratio ||alpha F(x)|| / ||x|| against the
/// step for up to [`MAX_BLOCK_LINES`] blocks from first to last: what
/// Fixup, SkipInit and ReZero keep small at the start, and how it grows.
fn branch_chart(v: &VariantRecords) -> Option<LogLinesChart> {
    let (count, series) = block_series(v, |r| r.branch_ratio)?;
    Some(LogLinesChart {
        title: format!("{}: branch ratio ||alpha F(x)|| / ||x|| per block ({count} blocks)", v.name),
        y_desc: "branch ratio (log)".into(),
        series,
    })
}

/// A residual network's branch multipliers alpha against the step, for the
/// blocks [`branch_chart`] shows; none when every alpha stays where it is
/// (fixed, or no multiplier).
fn alpha_chart(v: &VariantRecords) -> Option<LinesChart> {
    let blocks = v.blocks.as_ref()?;
    let first = blocks.first()?.alpha;
    if blocks.iter().all(|r| r.alpha == first) {
        return None;
    }
    let (count, series) = block_series(v, |r| r.alpha)?;
    Some(LinesChart {
        title: format!("{}: branch multiplier alpha per block ({count} blocks)", v.name),
        y_desc: "alpha".into(),
        series,
    })
}

/// The block count and, for up to [`MAX_BLOCK_LINES`] blocks from first to
/// last, `value` of each recorded step.
fn block_series(
    v: &VariantRecords,
    value: fn(&crate::record::rows::BlockStatsRow) -> f64,
) -> Option<(usize, Vec<Series>)> {
    let blocks = v.blocks.as_ref().filter(|b| !b.is_empty())?;
    let count = blocks.iter().map(|r| r.block).max()?;
    let lines = count.min(MAX_BLOCK_LINES);
    let mut shown: Vec<usize> = (0..lines).map(|i| 1 + i * (count - 1) / (lines - 1).max(1)).collect();
    shown.dedup();
    let series = shown
        .into_iter()
        .map(|b| {
            let points = blocks.iter().filter(|r| r.block == b).map(|r| (r.step as f64, value(r))).collect();
            (format!("block {b}"), points)
        })
        .collect();
    Some((count, series))
}

/// Mean-field theory's predicted pre-activation std per layer against the
/// probe's measurement at step 0 (before any update).
fn theory_chart(v: &VariantRecords, layers: &[LayerStatsRow]) -> Option<LayerProfileChart> {
    let theory = v.theory.as_ref()?;
    let first_step = layers.iter().map(|r| r.step).min()?;
    let measured: Vec<(f64, f64)> =
        layers.iter().filter(|r| r.step == first_step).map(|r| (r.layer as f64, r.pre_std)).collect();
    let predicted: Vec<(f64, f64)> =
        theory.layers.iter().filter_map(|l| l.pre_std.map(|s| (l.layer as f64, s))).collect();
    if predicted.is_empty() {
        return None;
    }
    Some(LayerProfileChart {
        title: format!("{}: pre-activation std at step {first_step}, mean-field theory against measured", v.name),
        y_desc: "pre-activation std (log)".into(),
        series: vec![
            ("predicted (mean-field theory)".into(), predicted, true),
            (format!("measured at step {first_step}"), measured, false),
        ],
    })
}

/// Per-layer histograms from the probe: activations and gradients at the
/// start and the end, weights over training.
fn histogram_charts(
    v: &VariantRecords,
    plots: &Path,
    file: &dyn Fn(&str) -> String,
    out: &mut Vec<Written>,
) -> Result<()> {
    let name = &v.name;
    if let Some(rows) = &v.histograms {
        let all: Vec<RecordedHistogram> = rows.iter().map(RecordedHistogram::from_row).collect();
        let start_end = |kind: &str| {
            let of_kind: Vec<&RecordedHistogram> = all.iter().filter(|h| h.kind == kind).collect();
            let first = of_kind.iter().map(|h| h.step).min().unwrap_or(0);
            let last = of_kind.iter().map(|h| h.step).max().unwrap_or(0);
            let at = |s: usize| of_kind.iter().filter(|h| h.step == s).map(|h| (*h).clone()).collect::<Vec<_>>();
            (at(first), at(last))
        };
        for (kind, chart, title, x_desc) in [
            ("pre", "activations", "activations before the nonlinearity per layer", "z = xW^T + b"),
            ("weight_grad", "gradients", "weight gradients per layer", "dL/dW"),
        ] {
            let (start, end) = start_end(kind);
            if !start.is_empty() {
                out.push(save(
                    &StartEndChart { title: format!("{name}: {title}"), x_desc: x_desc.into(), start, end },
                    plots,
                    &file(chart),
                )?);
            }
        }
        let weights: Vec<&RecordedHistogram> = all.iter().filter(|h| h.kind == "weight").collect();
        let n = weights.iter().map(|h| h.layer).max().unwrap_or(0);
        if n > 0 {
            let layers =
                (1..=n).map(|l| weights.iter().filter(|h| h.layer == l).map(|h| (*h).clone()).collect()).collect();
            out.push(save(
                &WeightsOverTimeChart { title: format!("{name}: weight histograms over training"), layers },
                plots,
                &file("weights-over-time"),
            )?);
        }
    }
    Ok(())
}

/// Charts overlaying every variant of `runs` (labels `run/variant` when
/// there are several runs).
fn overlay_charts(runs: &[(String, &RunRecords)], plots: &Path) -> Result<Vec<Written>> {
    let label =
        |run: &str, v: &VariantRecords| if runs.len() > 1 { format!("{run}/{}", v.name) } else { v.name.clone() };
    let variants: Vec<(String, &VariantRecords)> =
        runs.iter().flat_map(|(run, r)| r.variants.iter().map(move |v| (label(run, v), v))).collect();
    if variants.len() < 2 {
        return Ok(Vec::new());
    }
    let steps_per_epoch = variants[0].1.steps_per_epoch;
    let mut out = vec![save(
        &LossChart {
            title: "Training loss, all variants".into(),
            series: variants.iter().map(|(l, v)| (l.clone(), v.losses.clone())).collect(),
            steps_per_epoch,
            window: LOSS_WINDOW,
        },
        plots,
        "all-loss",
    )?];
    out.push(save(
        &AccuracyChart {
            title: "Accuracy, all variants".into(),
            series: variants
                .iter()
                .map(|(l, v)| {
                    (l.clone(), v.epochs.iter().map(|e| (e.epoch as f64, e.train_accuracy, e.valid_accuracy)).collect())
                })
                .collect(),
        },
        plots,
        "all-accuracy",
    )?);
    out.extend(band_charts(&variants, plots)?);
    for (when, label) in [("initial", "before training"), ("final", "after training")] {
        let panels: Vec<WeightDistributionChart> = variants
            .iter()
            .filter(|(_, v)| !v.initial_weights.is_empty())
            .map(|(l, v)| WeightDistributionChart {
                title: l.clone(),
                layers: if when == "initial" { v.initial_weights.clone() } else { v.final_weights.clone() },
                x_range: None,
            })
            .filter(|p| !p.layers.is_empty())
            .collect();
        if panels.len() > 1 {
            let title = format!("Weight distributions {label}, all variants on one axis");
            out.push(save(&WeightComparisonChart { title, panels }, plots, &format!("all-weights-{when}"))?);
        }
    }
    Ok(out)
}

/// Variants run with several seeds, grouped: `(group, members)`, in order.
fn seed_groups<'a>(variants: &[(String, &'a VariantRecords)]) -> Vec<(String, Vec<&'a VariantRecords>)> {
    let mut groups: Vec<(String, Vec<&VariantRecords>)> = Vec::new();
    for (_, v) in variants {
        match groups.iter_mut().find(|g| g.0 == v.group) {
            Some(g) => g.1.push(v),
            None => groups.push((v.group.clone(), vec![v])),
        }
    }
    groups.retain(|g| g.1.len() > 1);
    groups
}

/// Mean and spread over seeds of each multi-seed variant's running-average
/// loss and validation accuracy.
fn band_charts(variants: &[(String, &VariantRecords)], plots: &Path) -> Result<Vec<Written>> {
    let groups = seed_groups(variants);
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let loss = groups
        .iter()
        .map(|(name, members)| {
            let curves: Vec<Vec<(f64, f64)>> = members.iter().map(|v| running_mean(&v.losses, LOSS_WINDOW)).collect();
            let len = curves.iter().map(Vec::len).min().unwrap_or(0);
            let points = (0..len)
                .step_by((len / 400).max(1))
                .map(|i| {
                    let (m, sd) = mean_sd(&curves.iter().map(|c| c[i].1).collect::<Vec<_>>());
                    (i as f64, m, sd)
                })
                .collect();
            (format!("{name} ({} seeds)", members.len()), points)
        })
        .collect();
    let accuracy = groups
        .iter()
        .map(|(name, members)| {
            let len = members.iter().map(|v| v.epochs.len()).min().unwrap_or(0);
            let points = (0..len)
                .map(|e| {
                    let (m, sd) = mean_sd(&members.iter().map(|v| v.epochs[e].valid_accuracy).collect::<Vec<_>>());
                    (members[0].epochs[e].epoch as f64, m, sd)
                })
                .collect();
            (format!("{name} ({} seeds)", members.len()), points)
        })
        .collect();
    Ok(vec![
        save(
            &BandChart {
                title: "Training loss over seeds (running average)".into(),
                x_desc: "Iterations".into(),
                y_desc: "Loss".into(),
                series: loss,
            },
            plots,
            "seeds-loss",
        )?,
        save(
            &BandChart {
                title: "Validation accuracy over seeds".into(),
                x_desc: "Epoch".into(),
                y_desc: "Accuracy (%)".into(),
                series: accuracy,
            },
            plots,
            "seeds-accuracy",
        )?,
    ])
}

/// Mean and spread over seeds of each multi-seed variant's results.
fn run_label(dir: &Path) -> String {
    dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The charts a run's page shows as pictures: the curves the page draws
/// interactively are left out (their PNG and SVG stay in `plots/`), and the
/// example digits go in as PNG.
fn page_figures(charts: &[Written]) -> Result<Vec<Figure>> {
    let interactive = ["-loss", "-accuracy", "-gradient-flow", "-update-ratio"];
    charts
        .iter()
        .filter(|w| w.name.starts_with("seeds-") || !interactive.iter().any(|s| w.name.ends_with(s)))
        .map(|w| if w.name.ends_with("-examples") { Figure::png(w) } else { Ok(Figure::of(w)) })
        .collect()
}

/// Draws every chart of a run into `<dir>/plots/` and writes
/// `<dir>/report.html`; returns the report's path.
pub fn build_run_report(dir: &Path) -> Result<PathBuf> {
    let records = RunRecords::load(dir)?;
    let plots = dir.join("plots");
    let runs = [(run_label(dir), &records)];
    let mut sections = Vec::new();
    let overlays = overlay_charts(&runs, &plots)?;
    if !overlays.is_empty() {
        sections.push(Section { heading: "All variants".into(), figures: page_figures(&overlays)? });
    }
    for v in &records.variants {
        let charts = variant_charts(v, records.examples.as_ref(), &plots, "")?;
        sections.push(Section { heading: format!("Variant {}", v.name), figures: page_figures(&charts)? });
    }
    let curves = interactive::run_curves(&records);
    let page = ReportPage {
        title: records.summary.experiment.clone(),
        heading: format!("initscope report: {}", records.summary.experiment),
        dirs: vec![dir.display().to_string()],
        verdicts: verdict_lines(&runs),
        summary: summary_rows(&runs),
        seeds: seed_rows(&runs),
        sections,
        settings: vec![("Settings".into(), records.settings.clone())],
        environment: Some(records.summary.environment.clone()),
        curve_ids: curves.iter().map(|c| c.id.clone()).collect(),
        curves_json: interactive::curves_json(&curves),
        uplot_js: interactive::UPLOT_JS,
        uplot_css: interactive::UPLOT_CSS,
    };
    let path = dir.join("report.html");
    crate::fsutil::write_atomic(&path, page.render()?.as_bytes())?;
    Ok(path)
}

/// A report comparing several runs: their summaries and verdicts side by
/// side, every variant's loss and accuracy overlaid, written to `out`
/// (its charts into `<out's directory>/plots/`).
pub fn build_comparison_report(dirs: &[PathBuf], out: &Path) -> Result<PathBuf> {
    let records: Vec<RunRecords> = dirs.iter().map(|d| RunRecords::load(d)).collect::<Result<_>>()?;
    let runs: Vec<(String, &RunRecords)> = dirs.iter().map(|d| run_label(d)).zip(&records).collect();
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let overlays = overlay_charts(&runs, &parent.join("plots"))?;
    let page = ReportPage {
        title: "comparison".into(),
        heading: format!("initscope comparison of {} runs", runs.len()),
        dirs: dirs.iter().map(|d| d.display().to_string()).collect(),
        verdicts: verdict_lines(&runs),
        summary: summary_rows(&runs),
        seeds: seed_rows(&runs),
        sections: vec![Section { heading: String::new(), figures: overlays.iter().map(Figure::of).collect() }],
        settings: runs.iter().map(|(run, r)| (format!("Settings of {run}"), r.settings.clone())).collect(),
        environment: None,
        curve_ids: Vec::new(),
        curves_json: String::new(),
        uplot_js: "",
        uplot_css: "",
    };
    crate::fsutil::write_atomic(out, page.render()?.as_bytes())?;
    Ok(out.into())
}
