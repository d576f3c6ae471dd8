//! `sweep.csv`: one row per point and variant, read from the points' run
//! directories, so that the table of a partial sweep is always at hand.

use super::spec::{value_text, Point};
use crate::record::dir::EPOCHS;
use crate::record::rows::EpochRow;
use crate::record::RunSummary;
use crate::table::{read_rows, CsvBuffer};
use crate::train::VariantSummary;
use anyhow::Result;
use std::path::Path;

/// Where a point stands.
#[derive(Clone, Debug, PartialEq)]
pub enum PointState {
    /// Not started.
    Pending,
    /// Started and stopped (interrupted or killed): it resumes from its checkpoint.
    Interrupted,
    /// Another live process holds its run directory (its lock names it),
    /// or a running Slurm task is on it.
    Running(String),
    /// A Slurm task (named) that has not started will run it.
    Queued(String),
    /// Its Slurm task (named) was requeued and waits to start again.
    Requeued(String),
    /// Every variant finished (diverged ones too: divergence is a result).
    Done,
    /// It failed (a crash or an I/O error); why, in one line.
    Failed(String),
}

impl PointState {
    /// The name in the table's `status` column.
    pub fn as_str(&self) -> &'static str {
        match self {
            PointState::Pending => "pending",
            PointState::Interrupted => "interrupted",
            PointState::Running(_) => "running",
            PointState::Queued(_) => "queued",
            PointState::Requeued(_) => "requeued",
            PointState::Done => "done",
            PointState::Failed(_) => "failed",
        }
    }
}

/// One variant of one point: its place in the sweep and what it reached.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultRow {
    /// The point, 1-based.
    pub point: usize,
    /// The point's run directory, relative to the sweep's.
    pub run: String,
    /// The variant's name (`<variant>-seed<N>` with several seeds).
    pub variant: String,
    /// The variant's name in the experiment.
    pub group: String,
    /// The value of each axis, in the sweep's key order.
    pub axes: Vec<toml::Value>,
    /// The point's state's name ([`PointState::as_str`]), or `done` for a
    /// variant that finished in a point still running.
    pub status: &'static str,
    /// The results, once the variant finished.
    pub result: Option<VariantResult>,
}

/// What a finished variant reached.
#[derive(Clone, Debug, PartialEq)]
pub struct VariantResult {
    /// Final accuracies in percent.
    pub train: f64,
    /// See `train`.
    pub valid: f64,
    /// See `train`.
    pub test: f64,
    /// Loss of the first batch, before any update (NaN when non-finite).
    pub initial_loss: f64,
    /// Mean loss of the last epoch (NaN after divergence).
    pub final_loss: f64,
    /// The best validation accuracy of any epoch, and that epoch (1-based).
    pub best_valid: Option<(f64, usize)>,
    /// Optimisation steps taken.
    pub steps: usize,
    /// The step whose loss was not finite, where training stopped.
    pub diverged_at: Option<usize>,
    /// The verdict kinds that fired, each once, in the order they fired.
    pub verdicts: Vec<&'static str>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The fixed columns after the point, run, variant and axis columns.
pub const RESULT_COLUMNS: [&str; 13] = [
    "status",
    "train_accuracy",
    "valid_accuracy",
    "test_accuracy",
    "initial_loss",
    "final_loss",
    "best_valid_accuracy",
    "best_valid_epoch",
    "steps",
    "diverged_at_step",
    "verdicts",
    "seconds",
    "group",
];

/// The rows of `point`, whose run directory is `run_dir` (named `run` in
/// the table) and whose summary is `summary`, in state `state`: one per
/// variant and seed.
pub fn point_rows(
    point: &Point,
    run: &str,
    run_dir: &Path,
    summary: Option<RunSummary>,
    state: &PointState,
) -> Result<Vec<ResultRow>> {
    let finished = summary.map(|s| s.variants).unwrap_or_default();
    point
        .experiment
        .runs()
        .into_iter()
        .map(|unit| {
            let done = finished.iter().find(|v| v.name == unit.variant.name);
            let result = done.map(|v| variant_result(v, &run_dir.join(&v.name))).transpose()?;
            Ok(ResultRow {
                point: point.index + 1,
                run: run.into(),
                variant: unit.variant.name,
                group: unit.group,
                axes: point.values.iter().map(|(_, v)| v.clone()).collect(),
                status: if result.is_some() { "done" } else { state.as_str() },
                result,
            })
        })
        .collect()
}

fn variant_result(v: &VariantSummary, dir: &Path) -> Result<VariantResult> {
    let epochs_path = dir.join(EPOCHS);
    let epochs: Vec<EpochRow> = if epochs_path.exists() { read_rows(&epochs_path)? } else { Vec::new() };
    // The first epoch of the highest accuracy.
    let best_valid =
        epochs.iter().filter(|e| e.valid_accuracy.is_finite()).fold(None, |best: Option<(f64, usize)>, e| match best {
            Some((acc, _)) if acc >= e.valid_accuracy => best,
            _ => Some((e.valid_accuracy, e.epoch)),
        });
    Ok(VariantResult {
        train: v.train.percent(),
        valid: v.valid.percent(),
        test: v.test.percent(),
        initial_loss: v.initial_loss,
        final_loss: v.final_loss,
        best_valid,
        steps: v.steps,
        diverged_at: v.diverged_at,
        verdicts: v.verdicts.iter().fold(Vec::new(), |mut kinds, verdict| {
            // A kind that fired in several layers is listed once.
            if !kinds.contains(&verdict.kind.as_str()) {
                kinds.push(verdict.kind.as_str());
            }
            kinds
        }),
        seconds: v.seconds,
    })
}

/// Writes `rows` as `sweep.csv` text to `path` atomically; `keys` are the
/// axis columns' names.
pub fn write_table(path: &Path, keys: &[String], rows: &[ResultRow]) -> Result<()> {
    let mut buffer = CsvBuffer::new(&header(keys));
    for row in rows {
        buffer.push(&row_cells(row));
    }
    buffer.write(path)
}

/// The table's columns: point, run, variant, the axes (`keys`), then
/// [`RESULT_COLUMNS`].
pub fn header(keys: &[String]) -> Vec<String> {
    let mut header: Vec<String> = ["point", "run", "variant"].map(String::from).to_vec();
    header.extend(keys.iter().cloned());
    header.extend(RESULT_COLUMNS.map(String::from));
    header
}

/// One row's cells, as `sweep.csv` and the report's table show it.
pub fn row_cells(row: &ResultRow) -> Vec<String> {
    let number = |x: f64| if x.is_finite() { format!("{x}") } else { String::new() };
    let mut cells = vec![row.point.to_string(), row.run.clone(), row.variant.clone()];
    cells.extend(row.axes.iter().map(value_text));
    cells.push(row.status.into());
    match &row.result {
        Some(r) => cells.extend([
            format!("{:.4}", r.train),
            format!("{:.4}", r.valid),
            format!("{:.4}", r.test),
            number(r.initial_loss),
            number(r.final_loss),
            r.best_valid.map_or(String::new(), |(acc, _)| format!("{acc:.4}")),
            r.best_valid.map_or(String::new(), |(_, epoch)| epoch.to_string()),
            r.steps.to_string(),
            r.diverged_at.map_or(String::new(), |s| s.to_string()),
            r.verdicts.join(" "),
            format!("{:.3}", r.seconds),
        ]),
        None => cells.extend(std::iter::repeat_n(String::new(), RESULT_COLUMNS.len() - 2)),
    }
    cells.push(row.group.clone());
    cells
}
